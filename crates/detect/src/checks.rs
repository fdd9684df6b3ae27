//! Stateful checks: the parts of a rule that need more than one event or outside knowledge.
//! A rule with a `detection` runs its check only on the events the detection matched.

use std::collections::{BTreeMap, BTreeSet};

use keyward_model::SourceKind;
use keyward_model::time::Millis;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::baseline::{self, Baseline};
use crate::finding::Severity;
use crate::view::View;

/// A rule's `check:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Check {
    /// Activity in a region the principal (after its training window) or the whole estate
    /// never used. Global services (IAM, STS's global endpoint, Organizations, …) are not
    /// counted: their events always say `us-east-1`.
    NewRegion,
    /// A principal changing the permissions of itself: the user or role named in the
    /// request is the caller's own user or the role of the caller's session.
    SelfPermissionChange,
    /// One access key used from several networks within `window_seconds`.
    KeyMultiIp {
        #[serde(default = "default_window")]
        window_seconds: i64,
        #[serde(default = "default_networks")]
        networks: usize,
    },
    /// A role assumed from an account that is neither one of the estate's own nor on the
    /// approved list (`--allow-account`, `KEYWARD_ALLOWED_ACCOUNTS`).
    UntrustedAccount,
    /// A web-identity subject (GitHub repository and ref, …) that never assumed the role
    /// before; the subjects of the role's first [`baseline::TRAINING_DAYS`] are learned,
    /// not reported, and so is a new tag of a repository whose tags are known.
    NewWebIdentitySubject,
    /// A credential used after its identity was retired or its owner departed.
    UsedAfterRetirement,
    /// A data resource (bucket, secret, table, key, parameter; a Kubernetes secret) the
    /// principal never read, once it has read for [`baseline::TRAINING_DAYS`] and learned
    /// nothing new for `stable_days`: a set of reads that stopped growing, growing again.
    NewResource {
        #[serde(default = "default_stable_days")]
        stable_days: i64,
    },
    /// A principal unused for `days` or more (by its own history, or for one not seen
    /// before, by its platform's reported last use) used again; more severe from a network
    /// it never used or when its owner has left.
    DormantReuse {
        #[serde(default = "default_dormant_days")]
        days: i64,
    },
}

fn default_stable_days() -> i64 {
    7
}

fn default_dormant_days() -> i64 {
    30
}

fn default_window() -> i64 {
    30
}

fn default_networks() -> usize {
    2
}

/// What the outside world tells the checks.
pub trait Lookup {
    /// Why this identity (canonical id) must no longer act: retired, owner departed.
    fn retired(&self, identity: &str) -> Option<String>;

    /// [`Lookup::retired`] by what is known this moment, for a check that only grades what
    /// it reports by it (a dormant identity back in use). `retired` may answer as of an
    /// earlier judgement, so that what is counted does not depend on arrival order.
    fn retired_now(&self, identity: &str) -> Option<String> {
        self.retired(identity)
    }

    /// Whether any identity could be retired now; `false` lets the check skip its
    /// lookups on every event.
    fn any_retired(&self) -> bool {
        true
    }

    /// The identity's last use as its platform reported it in a snapshot (the credential
    /// report, IAM's `RoleLastUsed`), never moved by observed events.
    fn reported_last_use(&self, _identity: &str) -> Option<Millis> {
        None
    }
}

/// No outside knowledge.
pub struct NoLookup;

impl Lookup for NoLookup {
    fn retired(&self, _: &str) -> Option<String> {
        None
    }

    fn any_retired(&self) -> bool {
        false
    }
}

/// Check settings that come from configuration, not from rules.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub allowed_accounts: BTreeSet<String>,
}

/// A check fired: the discriminating subject (region, subject, target …) and the facts.
pub struct Hit {
    pub subject: String,
    pub summary: String,
    pub details: Value,
    /// More severe than the rule says, for this hit.
    pub severity: Option<Severity>,
}

/// Services whose events carry `us-east-1` whatever region the caller works in.
const GLOBAL: &[&str] = &[
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "organizations.amazonaws.com",
    "cloudfront.amazonaws.com",
    "route53.amazonaws.com",
    "support.amazonaws.com",
    "health.amazonaws.com",
    "signin.amazonaws.com",
    "s3.amazonaws.com",
    "account.amazonaws.com",
    "billingconsole.amazonaws.com",
    "ce.amazonaws.com",
    "sso.amazonaws.com",
    "trustedadvisor.amazonaws.com",
];

/// Long-lived check state; persisted with the baselines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Regions used anywhere, with when first seen.
    pub estate_regions: BTreeMap<String, Millis>,
    pub estate_first: Option<Millis>,
    /// Accounts whose logs are ingested (recipients of events).
    pub own_accounts: BTreeSet<String>,
    /// Web-identity subjects seen per role ARN (capped per role; tags as `refs/tags/*`).
    pub subjects: BTreeMap<String, Vec<String>>,
    /// When each role (ARN) was first assumed with a web identity.
    #[serde(default)]
    pub subjects_since: BTreeMap<String, Millis>,
    /// The data resources each principal read ([`Check::NewResource`]).
    #[serde(default)]
    pub reads: BTreeMap<String, Reads>,
    /// The networks each access key was used from lately, by the key's
    /// [`crate::keyed_hash`]. Keys and networks are told apart by hash, so a use reads none
    /// of the stored strings.
    #[serde(skip)]
    pub key_uses: hashbrown::HashMap<u64, KeyUses, FxBuildHasher>,
}

/// The networks an access key was used from within the window, each with its latest use.
/// The latest network is held inline, in the map's entry: a key used from one place (most
/// keys) is checked without reading anything else.
#[derive(Debug, Clone, Default)]
pub struct KeyUses {
    pub latest: NetworkUse,
    /// The other networks used within the window (at most [`MAX_NETWORKS`] − 1).
    pub others: Vec<NetworkUse>,
}

/// A network an access key was used from, and when it was last.
#[derive(Debug, Clone, Default)]
pub struct NetworkUse {
    pub time: Millis,
    /// The network's [`crate::keyed_hash`].
    pub net_hash: u64,
    /// The network's [`baseline::fingerprint`], once a comparison with the baseline needed
    /// it.
    pub fingerprint: Option<u32>,
    pub network: String,
}

/// Distinct networks remembered per access key.
pub const MAX_NETWORKS: usize = 64;

impl KeyUses {
    /// Records a use from `net` (hashed `net_hash`) at `time` and forgets networks not used
    /// since `since`. Returns whether other networks remain.
    fn record(&mut self, time: Millis, since: Millis, net_hash: u64, net: &str) -> bool {
        // A key's first use (networks are never empty strings).
        let fresh = self.latest.network.is_empty();
        if fresh || self.latest.net_hash != net_hash {
            let found = self.others.iter().position(|u| u.net_hash == net_hash);
            let mut now = match found {
                Some(i) => self.others.swap_remove(i),
                None => NetworkUse {
                    net_hash,
                    ..NetworkUse::default()
                },
            };
            if now.network.is_empty() {
                now.network.push_str(net);
            }
            let before = std::mem::replace(&mut self.latest, now);
            if !fresh {
                self.others.push(before);
            }
        }
        self.latest.time = self.latest.time.max(time);
        if !self.others.is_empty() {
            self.others.retain(|u| u.time >= since);
            if self.others.len() >= MAX_NETWORKS {
                // The least recently used go first.
                self.others
                    .sort_unstable_by_key(|u| std::cmp::Reverse(u.time));
                self.others.truncate(MAX_NETWORKS - 1);
            }
        }
        !self.others.is_empty()
    }

    #[cfg(test)]
    fn all(&self) -> impl Iterator<Item = &NetworkUse> {
        std::iter::once(&self.latest).chain(&self.others)
    }
}

/// The data resources one principal read: fingerprints, sorted, at most [`MAX_READS`]
/// (a full set judges nothing), with when it first read and when it last read one new.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reads {
    pub first: Millis,
    pub grew: Millis,
    pub items: Vec<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
}

const MAX_READS: usize = 256;
const MAX_READERS: usize = 100_000;
const MAX_SUBJECTS: usize = 256;
const MAX_KEYS: usize = 100_000;

impl State {
    /// Learns from every event, before checks run.
    pub fn learn(&mut self, v: &View) {
        let e = v.event;
        if let Some(a) = &e.account
            && self.own_accounts.len() < 10_000
            && !self.own_accounts.contains(a.as_ref())
        {
            self.own_accounts.insert(a.to_string());
        }
        self.estate_first = Some(self.estate_first.map_or(e.time, |f| f.min(e.time)));
    }

    /// Learns the event's region for the estate (after checks ran).
    pub fn learn_region(&mut self, v: &View) {
        // Looked up before inserting: almost every event is in a region already known.
        if let Some(r) = regional(v)
            && !self.estate_regions.contains_key(r)
        {
            self.estate_regions.insert(r.to_owned(), v.event.time);
        }
    }
}

/// The event's region, unless its service is global or the call failed before reaching
/// a region.
pub fn regional<'a>(v: &'a View) -> Option<&'a str> {
    let e = v.event;
    let service = e.action.split_once(':').map(|(s, _)| s)?;
    if GLOBAL.contains(&service) || e.invoked_by.is_some() {
        return None;
    }
    e.region.as_deref()
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::NewRegion => "new-region",
            Check::SelfPermissionChange => "self-permission-change",
            Check::KeyMultiIp { .. } => "key-multi-ip",
            Check::UntrustedAccount => "untrusted-account",
            Check::NewWebIdentitySubject => "new-web-identity-subject",
            Check::UsedAfterRetirement => "used-after-retirement",
            Check::NewResource { .. } => "new-resource",
            Check::DormantReuse { .. } => "dormant-reuse",
        }
    }

    /// Runs the check on one event. `baseline` is the principal's, before this event.
    pub fn run(
        &self,
        v: &View,
        state: &mut State,
        baseline: Option<&Baseline>,
        settings: &Settings,
        lookup: &dyn Lookup,
    ) -> Option<Hit> {
        match self {
            Check::NewRegion => new_region(v, state, baseline),
            Check::SelfPermissionChange => self_permission_change(v),
            Check::KeyMultiIp {
                window_seconds,
                networks,
            } => key_multi_ip(v, state, baseline, *window_seconds, *networks),
            Check::UntrustedAccount => untrusted_account(v, state, settings),
            Check::NewWebIdentitySubject => new_web_identity_subject(v, state),
            Check::UsedAfterRetirement => used_after_retirement(v, lookup),
            Check::NewResource { stable_days } => new_resource(v, state, *stable_days),
            Check::DormantReuse { days } => dormant_reuse(v, baseline, lookup, *days),
        }
    }
}

/// [`Check::NewRegion`]: a region new to the identity (once trained) or to the estate.
fn new_region(v: &View, state: &State, baseline: Option<&Baseline>) -> Option<Hit> {
    let e = v.event;
    let region = regional(v)?;
    let estate_trained = state
        .estate_first
        .is_some_and(|f| e.time - f >= baseline::TRAINING_DAYS * 86_400_000);
    let estate_new = estate_trained && !state.estate_regions.contains_key(region);
    let b = baseline?;
    let own_new = b.trained(e.time) && !b.knows_region(region);
    if !own_new && !estate_new {
        return None;
    }
    let scope = if estate_new {
        "the estate"
    } else {
        "this identity"
    };
    Some(Hit {
        subject: region.to_owned(),
        summary: format!("activity in {region}, a region {scope} never used"),
        details: json!({
            "region": region, "new_to_estate": estate_new,
            "usual_regions": b.regions,
        }),
        severity: None,
    })
}

/// [`Check::SelfPermissionChange`]: a principal changing its own permissions.
fn self_permission_change(v: &View) -> Option<Hit> {
    let e = v.event;
    if e.error_code.is_some() {
        return None;
    }
    let actor = e.actor.as_deref()?;
    let own = v.principal()?;
    let account = own.strip_prefix("arn:aws:iam::")?.split(':').next()?;
    let target = if let Some(u) = v.str_field("requestParameters.userName") {
        keyward_model::ids::iam(account, "user", &u)
    } else if let Some(r) = v.str_field("requestParameters.roleName") {
        keyward_model::ids::iam(account, "role", &r)
    } else {
        return None;
    };
    (target == own).then(|| Hit {
        subject: target.clone(),
        summary: format!("{actor} changed the permissions of {own}, itself"),
        details: json!({"principal": own, "action": e.action}),
        severity: None,
    })
}

/// [`Check::KeyMultiIp`]: an access key used from `networks` networks within the window,
/// one of them new to its principal.
fn key_multi_ip(
    v: &View,
    state: &mut State,
    baseline: Option<&Baseline>,
    window_seconds: i64,
    networks: usize,
) -> Option<Hit> {
    let e = v.event;
    let key = e.credential.as_deref()?;
    let ip = e.source_ip.as_deref()?;
    // AWS services calling with the key (`ec2.amazonaws.com`) are not places.
    if e.invoked_by.is_some() || !ip.contains(['.', ':']) || ip.ends_with(".com") {
        return None;
    }
    let net = v.network()?;
    let key_hash = crate::keyed_hash(key);
    if state.key_uses.len() >= MAX_KEYS && !state.key_uses.contains_key(&key_hash) {
        state.key_uses.clear();
    }
    let uses = state.key_uses.entry(key_hash).or_default();
    let since = e.time - window_seconds * 1000;
    let net_hash = crate::keyed_hash(net);
    if !uses.record(e.time, since, net_hash, net) && networks > 1 {
        return None;
    }
    // Only the networks used within the window of this event count, on both sides: events
    // come out of order (delivery files, event history), and a use remembered from hours
    // later is not "at once" with this one. One network in the window (the common case):
    // nothing to compare.
    let until = e.time + window_seconds * 1000;
    let near = |u: &&NetworkUse| u.time <= until;
    if uses.others.iter().filter(near).count() + 1 < networks {
        return None;
    }
    // Networks the principal already used in learned hours are its own (a VPC
    // endpoint and a NAT gateway, say): it takes one it never used to fire; without a
    // learned hour, nothing is known to be new. Each network is fingerprinted once.
    let b = baseline.filter(|b| b.hours > 0)?;
    for u in std::iter::once(&mut uses.latest).chain(uses.others.iter_mut()) {
        if u.time <= until {
            u.fingerprint
                .get_or_insert_with(|| baseline::fingerprint(&u.network));
        }
    }
    let counted = || std::iter::once(&uses.latest).chain(uses.others.iter().filter(near));
    let unknown = |u: &NetworkUse| !u.fingerprint.is_some_and(|fp| b.knows_fingerprint(fp));
    if !counted().any(unknown) {
        return None;
    }
    // Sorted, as a set would list them (each network is listed once).
    let mut distinct: Vec<&str> = counted().map(|u| u.network.as_str()).collect();
    distinct.sort_unstable();
    let mut new_networks: Vec<&str> = counted()
        .filter(|u| unknown(u))
        .map(|u| u.network.as_str())
        .collect();
    new_networks.sort_unstable();
    Some(Hit {
        subject: key.to_owned(),
        summary: format!(
            "access key {key} used from {} networks within {window_seconds} s",
            distinct.len()
        ),
        details: json!({"key": key, "networks": distinct, "new_networks": new_networks,
                        "window_seconds": window_seconds}),
        severity: None,
    })
}

/// [`Check::UntrustedAccount`]: a role assumed from an account neither the estate's own
/// nor approved.
fn untrusted_account(v: &View, state: &State, settings: &Settings) -> Option<Hit> {
    let e = v.event;
    if e.error_code.is_some() {
        return None;
    }
    let ty = v.str_field("userIdentity.type")?;
    if !matches!(
        ty.as_str(),
        "IAMUser" | "AssumedRole" | "Root" | "AWSAccount"
    ) {
        return None;
    }
    let caller = v.str_field("userIdentity.accountId")?;
    let role_account = v
        .str_field("requestParameters.roleArn")
        .and_then(|a| a.split(':').nth(4).map(str::to_owned))
        .or_else(|| e.account.as_deref().map(str::to_owned))?;
    if caller == role_account
        || settings.allowed_accounts.contains(&caller)
        || (settings.allowed_accounts.is_empty() && state.own_accounts.contains(&caller))
    {
        return None;
    }
    Some(Hit {
        subject: caller.clone(),
        summary: format!(
            "role in account {role_account} assumed from account {caller}, which is not approved"
        ),
        details: json!({
            "caller_account": caller, "role_account": role_account,
            "role": v.str_field("requestParameters.roleArn"),
            "approved": settings.allowed_accounts,
        }),
        severity: None,
    })
}

/// [`Check::NewWebIdentitySubject`]: a web-identity subject assuming a role for the first
/// time (the role's first subject is learned, not reported).
fn new_web_identity_subject(v: &View, state: &mut State) -> Option<Hit> {
    let e = v.event;
    if e.error_code.is_some() {
        return None;
    }
    let role = v.str_field("requestParameters.roleArn")?;
    let subject = v
        .str_field("responseElements.subjectFromWebIdentityToken")
        .or_else(|| v.str_field("userIdentity.userName"))?;
    let since = *state.subjects_since.entry(role.clone()).or_insert(e.time);
    let learned = subject_key(&subject);
    let seen = state.subjects.entry(role.clone()).or_default();
    if seen.iter().any(|s| *s == learned) {
        return None;
    }
    if seen.len() < MAX_SUBJECTS {
        seen.push(learned.into_owned());
    }
    // The subjects of a role's first days are its own.
    if e.time - since < baseline::TRAINING_DAYS * DAY {
        return None;
    }
    let claims = keyward_normalize::cloudtrail::github_subject(&subject);
    Some(Hit {
        subject: subject.clone(),
        summary: format!("{subject} assumed {role} for the first time"),
        details: json!({"role": role, "subject": subject, "claims": claims,
                        "known_subjects": seen.len() - 1}),
        severity: None,
    })
}

/// What a web-identity subject is learned as: itself, or for a GitHub tag, every tag of
/// its repository (`repo:o/r:ref:refs/tags/*`): each release is a new tag.
fn subject_key(subject: &str) -> std::borrow::Cow<'_, str> {
    const TAGS: &str = ":ref:refs/tags/";
    match subject.find(TAGS) {
        Some(at) => format!("{}*", subject.get(..at + TAGS.len()).unwrap_or(subject)).into(),
        None => subject.into(),
    }
}

/// [`Check::UsedAfterRetirement`]: a retired identity (or one whose owner departed) used.
fn used_after_retirement(v: &View, lookup: &dyn Lookup) -> Option<Hit> {
    let e = v.event;
    if !lookup.any_retired() {
        return None;
    }
    let actor = e.actor.as_deref();
    // A session's role too; a user or key is its own principal.
    let own = v.principal().filter(|p| Some(*p) != actor);
    // The most lasting identity first: the finding is about the user or role whatever
    // their sessions and keys (each new one is retired with it, and may not be known
    // retired yet when its first event comes), a key or session only when retired alone.
    let ids = [own, actor, e.credential.as_deref()];
    ids.into_iter().flatten().find_map(|id| {
        let why = lookup.retired(id)?;
        Some(Hit {
            subject: id.to_owned(),
            summary: format!("{id} was used although {why}"),
            details: json!({"identity": id, "reason": why,
                            "credential": e.credential}),
            severity: None,
        })
    })
}

const DAY: Millis = 86_400_000;

/// The data resource an event reads: `service:name` for AWS (a bucket, secret, table,
/// key or parameter), `namespace/name` of a Kubernetes secret.
fn data_resource(v: &View) -> Option<String> {
    let e = v.event;
    match e.source {
        SourceKind::Cloudtrail => {
            let service = e
                .action
                .split_once('.')
                .map_or(e.action.as_ref(), |(s, _)| s);
            [
                "requestParameters.bucketName",
                "requestParameters.secretId",
                "requestParameters.tableName",
                "requestParameters.keyId",
                "requestParameters.name",
            ]
            .iter()
            .find_map(|f| v.str_field(f))
            .map(|r| format!("{service}:{r}"))
        }
        SourceKind::K8sAudit => {
            let name = v.str_field("objectRef.name")?;
            let ns = v.str_field("objectRef.namespace").unwrap_or_default();
            Some(format!("{ns}/{name}"))
        }
        _ => None,
    }
}

/// [`Check::NewResource`]: learns what each principal reads; fires on a resource outside a
/// set trained for [`baseline::TRAINING_DAYS`] that learned nothing new for
/// `stable_days`. A resource that fired is learned, but the set is not counted as growing,
/// so the next new one fires too (and extends the same finding).
fn new_resource(v: &View, state: &mut State, stable_days: i64) -> Option<Hit> {
    let e = v.event;
    if e.error_code.is_some() {
        return None;
    }
    let principal = v.principal()?;
    let resource = data_resource(v)?;
    let fp = baseline::fingerprint(&resource);
    if state.reads.len() >= MAX_READERS && !state.reads.contains_key(principal) {
        return None;
    }
    let reads = state
        .reads
        .entry(principal.to_owned())
        .or_insert_with(|| Reads {
            first: e.time,
            grew: e.time,
            ..Reads::default()
        });
    let Err(at) = reads.items.binary_search(&fp) else {
        return None;
    };
    let judged = !reads.full
        && !reads.items.is_empty()
        && e.time - reads.first >= baseline::TRAINING_DAYS * DAY
        && e.time - reads.grew >= stable_days * DAY;
    let known = reads.items.len();
    if reads.items.len() >= MAX_READS {
        reads.full = true;
    } else {
        reads.items.insert(at, fp);
    }
    if !judged {
        reads.grew = reads.grew.max(e.time);
        return None;
    }
    let since = keyward_model::time::format(reads.first);
    let stable = keyward_model::time::format(reads.grew);
    Some(Hit {
        subject: resource.clone(),
        summary: format!(
            "{principal} read {resource}, outside the {known} resources it has read since \
             {since} (none new since {stable})"
        ),
        details: json!({"resources": [resource], "known_resources": known,
                        "reading_since": since, "unchanged_since": stable}),
        severity: None,
    })
}

/// [`Check::DormantReuse`]: a principal back after `days` or more unused.
fn dormant_reuse(
    v: &View,
    baseline: Option<&Baseline>,
    lookup: &dyn Lookup,
    days: i64,
) -> Option<Hit> {
    let e = v.event;
    if e.error_code.is_some() {
        return None;
    }
    let principal = v.principal()?;
    let (last, known_from) = match baseline {
        Some(b) if b.events > 0 => (b.last_seen, "its activity"),
        _ => (
            lookup.reported_last_use(principal)?,
            "its platform's report",
        ),
    };
    let idle = e.time - last;
    if idle < days * DAY {
        return None;
    }
    let network = v.network();
    let new_network = network
        .is_some_and(|n| !baseline.is_some_and(|b| b.knows_fingerprint(baseline::fingerprint(n))));
    let departed = if lookup.any_retired() {
        lookup.retired_now(principal)
    } else {
        None
    };
    let severity = match (new_network, departed.is_some()) {
        (true, true) => Some(Severity::High),
        (true, false) | (false, true) => Some(Severity::Medium),
        (false, false) => None,
    };
    let mut why = format!("unused for {} days (by {known_from})", idle / DAY);
    if new_network && let Some(n) = network {
        why.push_str(&format!(", now from {n}, a network it never used"));
    }
    if let Some(d) = &departed {
        why.push_str(&format!("; {d}"));
    }
    Some(Hit {
        subject: principal.to_owned(),
        summary: format!("{principal} used again: {why}"),
        details: json!({"idle_days": idle / DAY, "last_used": keyward_model::time::format(last),
                        "known_from": known_from, "network": network,
                        "new_network": new_network, "owner_departed": departed,
                        "credential": e.credential}),
        severity,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_uses_keep_distinct_networks_in_the_window() {
        let mut u = KeyUses::default();
        let h = |n: &str| crate::keyed_hash(n);
        let nets = |u: &KeyUses| {
            let mut v: Vec<String> = u.all().map(|x| x.network.clone()).collect();
            v.sort();
            v
        };
        // One network, used again and again: nothing else is held.
        for t in [0, 1_000, 2_000] {
            assert!(!u.record(t, t - 10_000, h("10.0.0.0/24"), "10.0.0.0/24"));
        }
        assert_eq!(u.latest.time, 2_000);
        // A second and a third network within the window.
        assert!(u.record(3_000, -7_000, h("192.0.2.0/24"), "192.0.2.0/24"));
        assert!(u.record(4_000, -6_000, h("198.51.100.0/24"), "198.51.100.0/24"));
        assert_eq!(nets(&u), ["10.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24"]);
        // The first comes back: it is the latest again, each network is held once.
        assert!(u.record(5_000, -5_000, h("10.0.0.0/24"), "10.0.0.0/24"));
        assert_eq!(u.latest.network, "10.0.0.0/24");
        assert_eq!(u.others.len(), 2);
        // An event out of order does not move a network's latest use back.
        assert!(u.record(4_500, -5_500, h("10.0.0.0/24"), "10.0.0.0/24"));
        assert_eq!(u.latest.time, 5_000);
        // Ten seconds on, the others left the window.
        assert!(!u.record(14_500, 4_500, h("10.0.0.0/24"), "10.0.0.0/24"));
        assert_eq!(nets(&u), ["10.0.0.0/24"]);
        // At most MAX_NETWORKS networks are held, the least recently used dropped first.
        for i in 0..100i64 {
            let n = format!("203.0.{i}.0/24");
            u.record(20_000 + i, 0, h(&n), &n);
        }
        assert_eq!(u.all().count(), MAX_NETWORKS);
        assert_eq!(u.latest.network, "203.0.99.0/24");
        assert!(
            u.others
                .iter()
                .all(|x| x.time >= 20_000 + 100 - MAX_NETWORKS as i64)
        );
    }
}
