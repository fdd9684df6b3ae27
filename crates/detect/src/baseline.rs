//! Pattern of life per identity, and how far one hour of activity strays from it.
//!
//! A baseline belongs to a *principal*: an IAM role for all of its sessions, an IAM user
//! for all of its keys, a Kubernetes service account. It learns, from the events it sees:
//! call volume per active hour (mean and variance), endpoints (`service:action`), the hours
//! of the week it is active, resources it touches, source networks (IPv4 /24, IPv6 /48)
//! and user agents, and the regions it uses.
//!
//! **Bounded memory.** Endpoints, resources, networks and agents are kept as 32-bit
//! fingerprints in sorted vectors capped at [`CAP_ENDPOINTS`], [`CAP_RESOURCES`],
//! [`CAP_NETWORKS`] and [`CAP_AGENTS`]; regions by name, capped at [`CAP_REGIONS`]. A full
//! set stops judging novelty on that signal (it is reported `saturated`). So a baseline is
//! at most `168×2 + (512+256+64+32)×4 + 32×~16` bytes of payload plus fixed fields:
//! ≈ 4.4 KB, whatever the identity does. `docs/benchmarks.md` has the measured figure.
//!
//! **Scoring.** Activity is scored per clock hour, when the hour closes (the first event of
//! a later hour, or the end of an ingest run). Signals, each 0–10: volume (z-score of the
//! hour's count against the learned hours), new endpoints (more for IAM/STS/KMS/secrets),
//! timing (an hour of the week never active before), new resources, new network, new user
//! agent. The anomaly score is `min(10, s1 + s2/2 + s3/4)` over the three strongest.
//! An hour is learned only if it scored under the alert threshold; an anomalous hour is
//! learned when its finding is marked a false positive ([`Baseline::absorb`]).
//! A baseline is trusted after [`TRAINING_DAYS`] of history; before that it only learns.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

pub const TRAINING_DAYS: i64 = 14;
pub const ALERT_SCORE: f64 = 7.0;
pub const CAP_ENDPOINTS: usize = 512;
pub const CAP_RESOURCES: usize = 256;
pub const CAP_NETWORKS: usize = 64;
pub const CAP_AGENTS: usize = 32;
pub const CAP_REGIONS: usize = 32;
/// Rules remembered per principal as its pattern of life.
pub const CAP_RULES: usize = 64;
/// Weeks in the training window, each of which a rule must match in to be routine.
const TRAINING_WEEKS: i64 = TRAINING_DAYS / 7;
/// Names of new items kept per signal for the finding's evidence.
const SHOWN: usize = 8;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

/// A capped set of fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FpSet {
    items: Vec<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    saturated: bool,
}

impl FpSet {
    fn contains(&self, fp: u32) -> bool {
        self.items.binary_search(&fp).is_ok()
    }

    fn insert(&mut self, fp: u32, cap: usize) {
        if let Err(at) = self.items.binary_search(&fp) {
            if self.items.len() >= cap {
                self.saturated = true;
            } else {
                self.items.insert(at, fp);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

pub fn fingerprint(s: &str) -> u32 {
    let h = blake3::hash(s.as_bytes());
    let b = h.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Fingerprints of strings seen lately: most events repeat their endpoint, network and
/// user agent, and a map probe is cheaper than hashing them again.
///
/// The memo is a direct-mapped table (64 KiB, mostly in cache) keyed by
/// [`crate::keyed_hash`] of the string, not by the string: a probe touches no copy of the
/// string, which is rarely in cache; a string whose slot holds another is fingerprinted
/// again and takes the slot. Two strings sharing a key would share a fingerprint; that is
/// ~2³² times less likely than two strings sharing the 32-bit fingerprint itself, and
/// without the key it cannot be aimed.
#[derive(Debug)]
pub struct Fingerprints {
    /// (keyed hash, fingerprint) per slot; an empty slot holds (0, 0) and answers only a
    /// string whose keyed hash is 0, with that string's own fingerprint computed then.
    memo: Vec<(u64, u32)>,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Fingerprints {
            memo: vec![(0, 0); Self::SLOTS],
        }
    }
}

impl Fingerprints {
    /// Slots in the memo (a power of two).
    const SLOTS: usize = 4_096;

    pub fn of(&mut self, s: &str) -> u32 {
        let key = crate::keyed_hash(s);
        let i = (key as usize) & (Self::SLOTS - 1);
        match self.memo.get_mut(i) {
            Some(slot) if slot.0 == key && key != 0 => slot.1,
            Some(slot) => {
                let fp = fingerprint(s);
                *slot = (key, fp);
                fp
            }
            None => fingerprint(s),
        }
    }
}

/// The network an address belongs to: IPv4 /24, IPv6 /48; AWS service names as they are.
pub fn network(ip: &str) -> String {
    if let Ok(a) = ip.parse::<std::net::Ipv4Addr>() {
        // The first three octets as written (a parsed address has no leading zeros).
        let mut out = String::with_capacity(20);
        for o in a.octets().iter().take(3) {
            push_decimal(&mut out, *o);
            out.push('.');
        }
        out.push_str("0/24");
        return out;
    }
    if let Ok(a) = ip.parse::<std::net::Ipv6Addr>() {
        let s = a.segments();
        return format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]);
    }
    ip.to_owned()
}

fn push_decimal(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

/// New items seen in the open hour, not yet learned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Novel {
    pub fps: Vec<u32>,
    pub shown: Vec<String>,
}

impl Novel {
    /// Adds a new item; a window holds at most `CAP_ENDPOINTS` of a kind. Whether it was
    /// new to the window.
    fn add(&mut self, fp: u32, name: &str) -> bool {
        if self.fps.len() < CAP_ENDPOINTS && !self.fps.contains(&fp) {
            self.fps.push(fp);
            if self.shown.len() < SHOWN {
                self.shown.push(name.to_owned());
            }
            return true;
        }
        false
    }
}

/// The hour being accumulated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub hour: i64,
    pub count: u32,
    pub endpoints: Novel,
    pub sensitive_endpoints: u32,
    pub resources: Novel,
    pub networks: Novel,
    pub agents: Novel,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub events: u64,
    /// Learned active hours, and Welford's running mean / M2 of their event counts.
    pub hours: u32,
    pub mean: f64,
    pub m2: f64,
    /// Events per hour of the week (Monday 00:00 UTC = 0), saturating.
    pub week: Vec<u16>,
    pub endpoints: FpSet,
    pub resources: FpSet,
    pub networks: FpSet,
    pub agents: FpSet,
    pub regions: Vec<String>,
    pub window: Option<Window>,
    /// Rules the principal matched while it trained, by the rule id's [`fingerprint`]
    /// (sorted): bit `w` set when a match fell in week `w` of its training window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<(u32, u8)>,
    /// Of the hours learned after its first week (the week that sets the pattern), how
    /// many brought a new network, a new user agent, or activity at an hour of the week
    /// never active before: how often this principal's where, how and when change
    /// ([`Baseline::familiar`]).
    #[serde(default)]
    pub novel: Novelty,
}

/// Counts of learned hours that were new in a dimension whose novelty is discounted by
/// how often it happens (see [`Baseline::familiar`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    /// Hours learned after the first week.
    pub hours: u32,
    pub networks: u32,
    pub agents: u32,
    pub timing: u32,
}

/// One event as the baseline needs it.
pub struct Activity<'a> {
    pub time: Millis,
    pub endpoint: &'a str,
    pub resource: Option<&'a str>,
    /// The network of the source address ([`network`]).
    pub network: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub event_id: &'a str,
}

/// A scored hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub hour_start: Millis,
    pub score: f64,
    pub signals: Vec<Signal>,
    pub events: Vec<String>,
    /// What a false-positive verdict teaches the baseline.
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub name: &'static str,
    pub score: f64,
    pub detail: String,
}

fn hour_of_week(t: Millis) -> usize {
    // 1970-01-01 was a Thursday: shift so Monday 00:00 is 0.
    let hours = t.div_euclid(HOUR) + 3 * 24;
    hours.rem_euclid(168) as usize
}

/// Services and words whose endpoints touch secrets or permissions.
const SENSITIVE: [&str; 8] = [
    "iam.",
    "sts.",
    "kms.",
    "secretsmanager.",
    "ssm.",
    "organizations.",
    "cloudtrail.",
    "secrets",
];

/// Whether the endpoint, or a word of it after a space (`create serviceaccounts/token`),
/// starts with one of [`SENSITIVE`]. Byte comparisons only: it runs for every endpoint
/// new to an hour.
fn sensitive(endpoint: &str) -> bool {
    let starts = |s: &str| SENSITIVE.iter().any(|p| s.starts_with(p));
    starts(endpoint)
        || memchr::memchr_iter(b' ', endpoint.as_bytes())
            .any(|i| endpoint.get(i + 1..).is_some_and(starts))
}

impl Baseline {
    pub fn trained(&self, at: Millis) -> bool {
        self.events > 0 && at - self.first_seen >= TRAINING_DAYS * DAY
    }

    /// Records a match of the rule (by its id's [`fingerprint`]) at `at`: while the
    /// baseline trains, the week of the training window it fell in.
    pub fn note_rule(&mut self, rule: u32, at: Millis) {
        let week = (at - self.first_seen).div_euclid(7 * DAY);
        if !(0..TRAINING_WEEKS).contains(&week) {
            return;
        }
        let bit = 1u8 << week;
        match self.rules.binary_search_by_key(&rule, |&(r, _)| r) {
            Ok(i) => {
                if let Some(slot) = self.rules.get_mut(i) {
                    slot.1 |= bit;
                }
            }
            Err(i) if self.rules.len() < CAP_RULES => self.rules.insert(i, (rule, bit)),
            Err(_) => {}
        }
    }

    /// Whether a match of the rule at `at` is the principal's pattern of life: the
    /// baseline is trained and the rule matched in every week of its training window.
    pub fn routine(&self, rule: u32, at: Millis) -> bool {
        let all = (1u8 << TRAINING_WEEKS) - 1;
        self.trained(at)
            && self
                .rules
                .binary_search_by_key(&rule, |&(r, _)| r)
                .ok()
                .and_then(|i| self.rules.get(i))
                .is_some_and(|&(_, weeks)| weeks & all == all)
    }

    /// Approximate heap and inline bytes this baseline holds.
    pub fn bytes(&self) -> usize {
        let w = self.window.as_ref().map_or(0, |w| {
            std::mem::size_of::<Window>()
                + (w.endpoints.fps.len()
                    + w.resources.fps.len()
                    + w.networks.fps.len()
                    + w.agents.fps.len())
                    * 4
                + w.events.iter().map(|e| e.len() + 24).sum::<usize>()
        });
        std::mem::size_of::<Self>()
            + self.week.capacity() * 2
            + (self.endpoints.items.capacity()
                + self.resources.items.capacity()
                + self.networks.items.capacity()
                + self.agents.items.capacity())
                * 4
            + self.regions.iter().map(|r| r.len() + 24).sum::<usize>()
            + self.rules.capacity() * std::mem::size_of::<(u32, u8)>()
            + w
    }

    /// Whether the region is new to this principal (judged before learning it).
    /// Whether a learned (closed) hour used this network (see [`network`]).
    /// Whether the principal used the network (by its [`fingerprint`]) in learned hours.
    pub fn knows_fingerprint(&self, fp: u32) -> bool {
        self.networks.contains(fp)
    }

    pub fn knows_region(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }

    /// Adds an event. Returns the score of the hour this event closed, when one closed and
    /// the baseline was trusted at that time.
    pub fn observe(
        &mut self,
        a: &Activity,
        region: Option<&str>,
        fps: &mut Fingerprints,
    ) -> Option<Score> {
        let hour = a.time.div_euclid(HOUR);
        let mut closed = None;
        if self
            .window
            .as_ref()
            .is_some_and(|w| w.hour != hour && hour > w.hour)
        {
            closed = self.close();
        }
        if self.events == 0 {
            self.first_seen = a.time;
        }
        self.first_seen = self.first_seen.min(a.time);
        self.last_seen = self.last_seen.max(a.time);
        self.events += 1;
        if self.week.len() != 168 {
            self.week = vec![0; 168];
        }
        if let Some(r) = region
            && !self.knows_region(r)
            && self.regions.len() < CAP_REGIONS
        {
            self.regions.push(r.to_owned());
        }
        let w = self.window.get_or_insert_with(|| Window {
            hour,
            ..Window::default()
        });
        if hour < w.hour {
            // A late event of an hour already closed: learn its volume only.
            return closed;
        }
        w.count += 1;
        // Whether the event brought something new to the hour: the evidence of an
        // anomaly is such events (and the hour's first, for volume and timing).
        let mut novel = false;
        // A saturated set judges no novelty: its signal's string is not fingerprinted.
        if !self.endpoints.saturated {
            let fp = fps.of(a.endpoint);
            if !self.endpoints.contains(fp) {
                if !w.endpoints.fps.contains(&fp) && sensitive(a.endpoint) {
                    w.sensitive_endpoints += 1;
                }
                novel |= w.endpoints.add(fp, a.endpoint);
            }
        }
        if let Some(r) = a.resource.filter(|_| !self.resources.saturated) {
            let fp = fps.of(r);
            if !self.resources.contains(fp) {
                novel |= w.resources.add(fp, r);
            }
        }
        if let Some(net) = a.network.filter(|_| !self.networks.saturated) {
            let fp = fps.of(net);
            if !self.networks.contains(fp) {
                novel |= w.networks.add(fp, net);
            }
        }
        if let Some(ua) = a.agent.filter(|_| !self.agents.saturated) {
            let fp = fps.of(ua);
            if !self.agents.contains(fp) {
                novel |= w.agents.add(fp, ua);
            }
        }
        if (novel || w.events.is_empty()) && w.events.len() < SHOWN {
            w.events.push(a.event_id.to_owned());
        }
        if let Some(slot) = self.week.get_mut(hour_of_week(a.time)) {
            *slot = slot.saturating_add(1);
        }
        closed
    }

    /// Closes the open hour: scores it (when trusted) and learns it unless it alerts.
    pub fn close(&mut self) -> Option<Score> {
        let w = self.window.take()?;
        let start = w.hour * HOUR;
        let score = self.trained(start).then(|| self.score(&w));
        if score.as_ref().is_none_or(|s| s.score < ALERT_SCORE) {
            self.absorb(&w);
        }
        score.filter(|s| s.score >= ALERT_SCORE)
    }

    /// Learns a window: its volume and everything new in it.
    pub fn absorb(&mut self, w: &Window) {
        if w.hour * HOUR - self.first_seen >= 7 * DAY {
            self.novel.hours += 1;
            if self.new_timing(w) {
                self.novel.timing += 1;
            }
            if !w.networks.fps.is_empty() {
                self.novel.networks += 1;
            }
            if !w.agents.fps.is_empty() {
                self.novel.agents += 1;
            }
        }
        self.hours += 1;
        let x = f64::from(w.count);
        let delta = x - self.mean;
        self.mean += delta / f64::from(self.hours);
        self.m2 += delta * (x - self.mean);
        for &fp in &w.endpoints.fps {
            self.endpoints.insert(fp, CAP_ENDPOINTS);
        }
        for &fp in &w.resources.fps {
            self.resources.insert(fp, CAP_RESOURCES);
        }
        for &fp in &w.networks.fps {
            self.networks.insert(fp, CAP_NETWORKS);
        }
        for &fp in &w.agents.fps {
            self.agents.insert(fp, CAP_AGENTS);
        }
        if self.week.len() == 168 {
            // The hour of week counts as usual from now on.
            let how = hour_of_week(w.hour * HOUR);
            if let Some(slot) = self.week.get_mut(how) {
                *slot = (*slot).max(1);
            }
        }
    }

    /// Whether the window is active at an hour of the week (and next to hours) never
    /// active before. The slot itself counts this hour's own events: judged by the
    /// neighbours and by whether the slot held anything before this window.
    fn new_timing(&self, w: &Window) -> bool {
        let how = hour_of_week(w.hour * HOUR);
        let quiet = |h: usize| self.week.get(h % 168).is_none_or(|&c| c == 0);
        let own = self.week.get(how).copied().unwrap_or(0);
        u32::from(own) <= w.count && quiet(how + 1) && quiet(how + 167)
    }

    /// How much novelty in a dimension means, from how many hours learned after the first
    /// week were novel in it (`novel`): 1 for a principal whose networks (agents, hours)
    /// rarely change, falling to 0 for one new in a third or more of its hours, such as
    /// CI runs from a cloud provider's ever-changing addresses.
    fn familiar(&self, novel: u32) -> f64 {
        if self.novel.hours == 0 {
            return 1.0;
        }
        let rate = f64::from(novel) / f64::from(self.novel.hours);
        (1.0 - 3.0 * rate).clamp(0.0, 1.0)
    }

    fn score(&self, w: &Window) -> Score {
        let mut signals = Vec::new();
        let std = if self.hours > 1 {
            (self.m2 / f64::from(self.hours - 1)).sqrt()
        } else {
            0.0
        };
        let x = f64::from(w.count);
        let spread = std.max(1.0).max(0.25 * self.mean);
        let z = (x - self.mean) / spread;
        if w.count >= 20 && z > 3.0 {
            signals.push(Signal {
                name: "volume",
                score: ((z - 3.0) / 7.0 * 10.0).clamp(0.0, 10.0),
                detail: format!(
                    "{} events in the hour; usual {:.1} ± {:.1} (z = {z:.1})",
                    w.count, self.mean, std
                ),
            });
        }
        let n = w.endpoints.fps.len();
        if n > 0 {
            let base: f64 = match n {
                1 => 3.0,
                2 => 5.0,
                3 | 4 => 6.5,
                5..=9 => 8.0,
                _ => 10.0,
            };
            let s = (base + if w.sensitive_endpoints > 0 { 2.0 } else { 0.0 }).min(10.0);
            signals.push(Signal {
                name: "new_endpoints",
                score: s,
                detail: format!(
                    "{n} never called before ({} sensitive): {}",
                    w.sensitive_endpoints,
                    w.endpoints.shown.join(", ")
                ),
            });
        }
        let how = hour_of_week(w.hour * HOUR);
        if self.new_timing(w) {
            signals.push(Signal {
                name: "timing",
                score: 6.0 * self.familiar(self.novel.timing),
                detail: format!(
                    "active at hour {} of the week (day {} {:02}:00 UTC), never before",
                    how,
                    how / 24,
                    how % 24
                ),
            });
        }
        let r = w.resources.fps.len();
        if r > 0 {
            let s: f64 = match r {
                1 => 2.0,
                2..=4 => 3.5,
                5..=19 => 5.0,
                _ => 8.0,
            };
            signals.push(Signal {
                name: "new_resources",
                score: s,
                detail: format!("{r} never touched before: {}", w.resources.shown.join(", ")),
            });
        }
        if !w.networks.fps.is_empty() {
            signals.push(Signal {
                name: "new_network",
                score: 5.0 * self.familiar(self.novel.networks),
                detail: format!("from {}", w.networks.shown.join(", ")),
            });
        }
        if !w.agents.fps.is_empty() {
            signals.push(Signal {
                name: "new_user_agent",
                score: 4.0 * self.familiar(self.novel.agents),
                detail: w.agents.shown.join(", "),
            });
        }
        // A signal a principal's routine makes worthless says nothing.
        signals.retain(|s| s.score > 0.0);
        signals.sort_by(|a, b| b.score.total_cmp(&a.score));
        let weights = [1.0, 0.5, 0.25];
        let score = signals
            .iter()
            .zip(weights)
            .map(|(s, w)| s.score * w)
            .sum::<f64>()
            .min(10.0);
        Score {
            hour_start: w.hour * HOUR,
            score: (score * 10.0).round() / 10.0,
            signals,
            events: w.events.clone(),
            window: w.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// The first definition of `sensitive`: a pattern at the start or right after a space.
    fn sensitive_by_search(endpoint: &str) -> bool {
        SENSITIVE.iter().any(|p| {
            endpoint.starts_with(p)
                || endpoint
                    .match_indices(p)
                    .any(|(i, _)| endpoint.get(..i).is_some_and(|h| h.ends_with(' ')))
        })
    }

    #[test]
    fn sensitive_endpoints_are_found_by_word() {
        let cases = [
            "iam:CreateAccessKey",
            "iam.amazonaws.com:CreateAccessKey",
            "s3:GetObject",
            "create secrets",
            "get  secrets",
            "list pods/secrets",
            "xiam.y",
            "get configmaps secretsmanager.",
            "kms.",
            " sts.x",
            "",
            " ",
            "é sts.",
            "secretsmanager:GetSecretValue",
        ];
        for c in cases {
            assert_eq!(sensitive(c), sensitive_by_search(c), "{c}");
        }
        assert!(sensitive("create secrets"));
        assert!(!sensitive("list pods/secrets"));
    }

    #[test]
    fn memoized_fingerprints_are_the_fingerprints() {
        let mut fps = Fingerprints::default();
        // Many more strings than slots, so that they take each other's slots; every
        // string twice, and a few often (they stay remembered between the others).
        let n = Fingerprints::SLOTS * 16;
        for round in 0..2 {
            for i in 0..n {
                let s = format!("svc{}:Action{i}", i % 7);
                assert_eq!(fps.of(&s), fingerprint(&s), "round {round}, {s}");
                let hot = format!("hot{}", i % 3);
                assert_eq!(fps.of(&hot), fingerprint(&hot));
            }
        }
        assert_eq!(fps.memo.len(), Fingerprints::SLOTS);
        assert!(fps.memo.iter().filter(|&&(k, _)| k != 0).count() > Fingerprints::SLOTS / 2);
    }

    fn act<'a>(t: Millis, ep: &'a str, ip: &'a str) -> Activity<'a> {
        Activity {
            time: t,
            endpoint: ep,
            resource: None,
            network: Some(Box::leak(network(ip).into_boxed_str())),
            agent: Some("aws-sdk-go/1.0"),
            event_id: "e",
        }
    }

    /// 20 days of a job that calls two endpoints every hour from one network.
    fn trained() -> Baseline {
        let mut b = Baseline::default();
        for h in 0..(20 * 24) {
            for m in 0..10 {
                let t = h * HOUR + m * 60_000;
                b.observe(
                    &act(t, "s3:GetObject", "10.0.0.5"),
                    Some("eu-west-1"),
                    &mut Fingerprints::default(),
                );
                b.observe(
                    &act(t, "s3:PutObject", "10.0.0.6"),
                    Some("eu-west-1"),
                    &mut Fingerprints::default(),
                );
            }
        }
        b
    }

    #[test]
    fn routine_hours_do_not_alert_and_a_takeover_does() {
        let mut b = trained();
        let t0 = 20 * 24 * HOUR;
        for m in 0..10 {
            assert!(
                b.observe(
                    &act(t0 + m * 60_000, "s3:GetObject", "10.0.0.7"),
                    None,
                    &mut Fingerprints::default()
                )
                .is_none()
            );
        }
        // Next hour: stolen key from elsewhere, enumerating IAM and reading secrets.
        let t1 = t0 + HOUR;
        let mut s = b.observe(
            &act(t1, "iam:ListUsers", "203.0.113.9"),
            None,
            &mut Fingerprints::default(),
        );
        assert!(s.is_none(), "the routine hour closed quietly");
        for (i, ep) in [
            "iam:CreateAccessKey",
            "secretsmanager:GetSecretValue",
            "sts:GetCallerIdentity",
        ]
        .iter()
        .enumerate()
        {
            s = b.observe(
                &act(t1 + (i as i64 + 1) * 1000, ep, "203.0.113.9"),
                None,
                &mut Fingerprints::default(),
            );
            assert!(s.is_none());
        }
        let score = b.close().expect("the takeover hour alerts");
        assert!(score.score >= ALERT_SCORE, "{score:?}");
        let names: Vec<_> = score.signals.iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"new_endpoints") && names.contains(&"new_network"),
            "{names:?}"
        );
        // Not learned: the same hour again would alert again …
        assert!(!b.endpoints.contains(fingerprint("iam:CreateAccessKey")));
        // … until a false-positive verdict teaches it.
        b.absorb(&score.window);
        let t2 = t1 + HOUR;
        b.observe(
            &act(t2, "iam:CreateAccessKey", "203.0.113.9"),
            None,
            &mut Fingerprints::default(),
        );
        assert!(b.close().is_none());
    }

    /// CI runs from a cloud provider's runners: every run from a network never seen, at
    /// scattered hours. Neither is news for this principal; a new endpoint still is.
    #[test]
    fn ever_changing_networks_and_hours_are_not_news() {
        let mut b = Baseline::default();
        let mut fps = Fingerprints::default();
        for run in 0..80i64 {
            // Every 4 to 5 hours, a run from a fresh /24.
            let t = run * (4 * HOUR + 17 * 60_000);
            let ip = format!("20.{}.{}.9", run / 200, run % 200);
            b.observe(
                &act(t, "sts:AssumeRoleWithWebIdentity", &ip),
                None,
                &mut fps,
            );
            b.observe(
                &act(t + 1_000, "ecr:GetAuthorizationToken", &ip),
                None,
                &mut fps,
            );
        }
        let t = 80 * (4 * HOUR + 17 * 60_000) + 2 * HOUR;
        b.observe(
            &act(t, "sts:AssumeRoleWithWebIdentity", "52.1.1.9"),
            None,
            &mut fps,
        );
        b.observe(
            &act(t + HOUR, "sts:AssumeRoleWithWebIdentity", "52.1.2.9"),
            None,
            &mut fps,
        );
        assert!(b.novel.networks * 3 >= b.novel.hours, "{:?}", b.novel);
        assert!(b.close().is_none(), "a run like the others does not alert");
        // The same principal suddenly calling IAM and Secrets Manager does.
        let t = t + 3 * HOUR;
        for (i, ep) in [
            "iam:CreateAccessKey",
            "secretsmanager:GetSecretValue",
            "iam:ListUsers",
        ]
        .iter()
        .enumerate()
        {
            b.observe(&act(t + i as i64, ep, "52.1.3.9"), None, &mut fps);
        }
        let score = b.close().expect("new sensitive endpoints alert");
        let names: Vec<_> = score.signals.iter().map(|s| s.name).collect();
        assert!(!names.contains(&"new_network"), "{names:?}");
    }

    /// An anomaly cites what proves it: the events that brought something new (and the
    /// hour's first), not routine calls around them.
    #[test]
    fn evidence_is_the_novel_events() {
        let mut b = trained();
        let t = 20 * 24 * HOUR;
        let mut fps = Fingerprints::default();
        let ids = ["r1", "r2", "r3", "n1", "r4", "n2", "n3", "r5"];
        let eps = [
            "s3:GetObject",
            "s3:PutObject",
            "s3:GetObject",
            "iam:CreateAccessKey",
            "s3:GetObject",
            "secretsmanager:GetSecretValue",
            "iam:ListUsers",
            "s3:PutObject",
        ];
        for (i, (id, ep)) in ids.iter().zip(eps).enumerate() {
            let a = Activity {
                event_id: id,
                ..act(t + i as i64 * 1000, ep, "10.0.0.5")
            };
            b.observe(&a, None, &mut fps);
        }
        let score = b.close().expect("new sensitive endpoints alert");
        assert_eq!(score.events, ["r1", "n1", "n2", "n3"]);
    }

    #[test]
    fn untrained_baselines_only_learn() {
        let mut b = Baseline::default();
        for h in 0..48 {
            b.observe(
                &act(h * HOUR, &format!("svc:Call{h}"), &format!("198.51.{h}.1")),
                None,
                &mut Fingerprints::default(),
            );
        }
        assert!(b.close().is_none());
        assert!(b.endpoints.len() >= 47);
    }

    #[test]
    fn memory_is_bounded() {
        let mut b = trained();
        for i in 0..5000 {
            let t = 30 * DAY + i * 60_000;
            let ep = format!("svc:Call{i}");
            let net = network(&format!("10.{}.{}.1", i / 256 % 256, i % 256));
            let r = format!("arn:aws:s3:::bucket-{i}");
            let a = Activity {
                time: t,
                endpoint: &ep,
                resource: Some(&r),
                network: Some(&net),
                agent: Some(&ep),
                event_id: "e",
            };
            b.observe(
                &a,
                Some(&format!("region-{}", i % 100)),
                &mut Fingerprints::default(),
            );
            if i % 60 == 0 {
                b.close();
            }
        }
        b.close();
        assert!(b.endpoints.len() <= CAP_ENDPOINTS);
        assert!(b.regions.len() <= CAP_REGIONS);
        assert!(b.bytes() < 6 * 1024, "{}", b.bytes());
    }

    #[test]
    fn networks() {
        assert_eq!(network("192.0.2.77"), "192.0.2.0/24");
        assert_eq!(network("10.0.255.1"), "10.0.255.0/24");
        assert_eq!(network("8.80.108.9"), "8.80.108.0/24");
        assert_eq!(network("2001:db8:1:2::5"), "2001:db8:1::/48");
        assert_eq!(network("ec2.amazonaws.com"), "ec2.amazonaws.com");
    }
}
