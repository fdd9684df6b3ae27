//! One record per identity, merged from observations.
//!
//! Merge rules (applied the same whatever order files arrive in, except where noted):
//! - scalar facts (`arn`, `account`, …): a value replaces a different one; absence never erases;
//!   from logs, only a record at least as new as the newest seen replaces (older ones fill gaps);
//! - `created`: earliest, unless the identity was deleted and is created again later;
//! - `last_used`: latest of snapshot-reported use and observed use; `first_seen` /
//!   `last_seen` / `event_count`: only from log events, counted once per stored event;
//! - tags come whole from IAM snapshots, labels and annotations whole from Kubernetes
//!   snapshots (a later snapshot can remove one); other sources only add;
//! - credentials merge by id; a status seen only through use (`unknown`) never overrides a
//!   known one.

use std::collections::BTreeMap;

use keyward_model::{
    Credential, CredentialStatus, Identity, IdentityKind, Observation, SourceKind,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// What applying one observation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    Updated,
    Unchanged,
}

/// The in-memory inventory: identities in a vector, found by id through an index.
///
/// The four facts every event moves (last use, first and last sighting, event count) live
/// in `hot`, a compact array that stays in cache, and are copied into the identity records
/// when an observation is merged and when changed identities are taken for writing. Only
/// those two paths and reads after [`Inventory::take_dirty`] see the records, so they are
/// always current where they are read.
#[derive(Debug, Default)]
pub struct Inventory {
    slots: Vec<Identity>,
    hot: Vec<Hot>,
    index: FxHashMap<String, u32>,
    /// Per slot: changed since the last [`Inventory::take_dirty`].
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
    /// Identities that [`marked_retired`] says are retired.
    retired_marks: usize,
    /// Every identity some session's chain ends in (its assumer; never shrinks).
    assumers: FxHashSet<String>,
    /// An assumer's chain changed (or chains were loaded) since [`Inventory::link`] last
    /// brought the sessions under it up to date.
    chains_moved: bool,
    /// Every slot that has held links or IRSA details ([`can_link`]): all [`Inventory::link`]
    /// looks at, so a small input costs no pass over every identity (a broker lease has
    /// neither). A slot joins when it is inserted or marked changed; none ever leaves.
    linkable: FxHashSet<u32>,
}

/// Whether [`Inventory::link`] has anything to do with an identity.
fn can_link(i: &Identity) -> bool {
    !i.links.is_empty() || i.details.contains_key("irsa")
}

/// Tag or label names that mark an identity retired (value `true`, `yes` or `1`).
pub const RETIRED_TAGS: &[&str] = &["keyward:retired", "keyward.io/retired", "retired"];

/// Whether a tag or label marks the identity retired ([`RETIRED_TAGS`]).
pub fn marked_retired(i: &Identity) -> bool {
    i.tags.iter().chain(&i.labels).any(|(k, v)| {
        RETIRED_TAGS.iter().any(|t| k.eq_ignore_ascii_case(t))
            && ["true", "yes", "1"]
                .iter()
                .any(|y| v.eq_ignore_ascii_case(y))
    })
}

/// Per-event facts of one identity (see [`Inventory`]).
#[derive(Debug, Clone, Copy, Default)]
struct Hot {
    last_used: Option<i64>,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    event_count: u64,
}

impl Hot {
    fn of(i: &Identity) -> Self {
        Hot {
            last_used: i.last_used,
            first_seen: i.first_seen,
            last_seen: i.last_seen,
            event_count: i.event_count,
        }
    }

    fn store(self, i: &mut Identity) {
        i.last_used = self.last_used;
        i.first_seen = self.first_seen;
        i.last_seen = self.last_seen;
        i.event_count = self.event_count;
    }
}

/// A handle to an identity in one [`Inventory`] (valid for its lifetime: identities are
/// never removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u32);

const MAX_CHAIN: usize = 16;

fn set<T: PartialEq + Clone>(slot: &mut Option<T>, v: Option<T>) -> bool {
    match v {
        Some(v) if slot.as_ref() != Some(&v) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

fn set_max(slot: &mut Option<i64>, v: Option<i64>) -> bool {
    match v {
        Some(v) if slot.is_none_or(|s| v > s) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

fn set_min(slot: &mut Option<i64>, v: Option<i64>) -> bool {
    match v {
        Some(v) if slot.is_none_or(|s| v < s) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

/// Adds a credential to an identity's list, kept in id order: the list reads the same
/// whichever source told of each credential first (records of one identity may arrive from
/// several bus partitions).
fn add_credential(list: &mut Vec<Credential>, c: Credential) {
    let at = list.partition_point(|x| x.id < c.id);
    list.insert(at, c);
}

fn merge_credential(list: &mut Vec<Credential>, c: Credential) -> bool {
    let Some(cur) = list.iter_mut().find(|x| x.id == c.id) else {
        add_credential(list, c);
        return true;
    };
    let mut changed = false;
    if c.status != CredentialStatus::Unknown && cur.status != c.status {
        cur.status = c.status;
        changed = true;
    }
    changed |= set_min(&mut cur.created, c.created);
    if c.last_used > cur.last_used {
        cur.last_used = c.last_used;
        set(&mut cur.last_used_region, c.last_used_region);
        set(&mut cur.last_used_service, c.last_used_service);
        changed = true;
    }
    changed
}

fn replace_map(
    slot: &mut BTreeMap<String, String>,
    v: BTreeMap<String, String>,
    whole: bool,
) -> bool {
    if whole {
        if *slot != v {
            *slot = v;
            return true;
        }
        return false;
    }
    let mut changed = false;
    for (k, val) in v {
        if slot.get(&k) != Some(&val) {
            slot.insert(k, val);
            changed = true;
        }
    }
    changed
}

impl Inventory {
    pub fn new(identities: impl IntoIterator<Item = Identity>) -> Self {
        let mut inv = Inventory::default();
        for i in identities {
            inv.insert(i);
        }
        inv
    }

    fn insert(&mut self, i: Identity) -> u32 {
        let slot = self.slots.len() as u32;
        self.retired_marks += usize::from(marked_retired(&i));
        if let Some(by) = i.chain.last() {
            self.assumers.insert(by.clone());
            self.chains_moved = true;
        }
        self.index.insert(i.id.clone(), slot);
        if can_link(&i) {
            self.linkable.insert(slot);
        }
        self.hot.push(Hot::of(&i));
        self.slots.push(i);
        self.dirty.push(false);
        slot
    }

    fn mark(&mut self, slot: u32) {
        if self.slots.get(slot as usize).is_some_and(can_link) {
            self.linkable.insert(slot);
        }
        if let Some(d) = self.dirty.get_mut(slot as usize)
            && !*d
        {
            *d = true;
            self.dirty_list.push(slot);
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether any identity is [`marked_retired`] (kept as the inventory changes).
    pub fn any_marked_retired(&self) -> bool {
        self.retired_marks > 0
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Identity> {
        self.index.get(id).and_then(|&s| self.slots.get(s as usize))
    }

    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.index.get(id).map(|&s| Slot(s))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Identity> {
        self.slots.iter()
    }

    /// Identities changed since the last call, for the store to write.
    pub fn take_dirty(&mut self) -> Vec<&Identity> {
        let list = std::mem::take(&mut self.dirty_list);
        for &s in &list {
            if let Some(d) = self.dirty.get_mut(s as usize) {
                *d = false;
            }
            if let (Some(h), Some(i)) = (self.hot.get(s as usize), self.slots.get_mut(s as usize)) {
                h.store(i);
            }
        }
        list.iter()
            .filter_map(|&s| self.slots.get(s as usize))
            .collect()
    }

    /// Merges one observation. `count` says whether the event behind it is new to the store
    /// (so a re-read event does not count twice).
    pub fn apply(&mut self, obs: Observation, count: bool) -> Applied {
        let chain = obs.facts.assumed_by.as_deref().map(|by| {
            if !self.assumers.contains(by) {
                self.assumers.insert(by.to_owned());
            }
            self.chain_through(by, &obs.id)
        });
        // An assumer's chain moving leaves the chains under it to follow (`link`).
        let under = (chain.is_some() && self.assumers.contains(obs.id.as_str())).then(|| {
            self.get(&obs.id)
                .map(|i| i.chain.clone())
                .unwrap_or_default()
        });
        let (slot, is_new) = match self.index.get(obs.id.as_str()) {
            Some(&s) => (s, false),
            None => {
                let i = Identity::new(obs.id.clone(), obs.platform, obs.kind, obs.name.clone());
                (self.insert(i), true)
            }
        };
        let (Some(ident), Some(hot)) = (
            self.slots.get_mut(slot as usize),
            self.hot.get_mut(slot as usize),
        ) else {
            return Applied::Unchanged;
        };
        hot.store(ident);
        let was_marked = marked_retired(ident);
        let changed = merge(ident, obs, count, chain) || is_new;
        self.chains_moved |= under.is_some_and(|c| c != ident.chain);
        crate::graph::recount(&mut self.retired_marks, was_marked, marked_retired(ident));
        *hot = Hot::of(ident);
        if changed {
            self.mark(slot);
            if is_new {
                Applied::New
            } else {
                Applied::Updated
            }
        } else {
            Applied::Unchanged
        }
    }

    /// Records that an identity already known acted again at `at` (no new facts).
    /// `count` says whether the event is new to the store.
    pub fn touch(&mut self, id: &str, at: i64, count: bool) -> Applied {
        match self.slot(id) {
            Some(s) => self.touch_slot(s, at, count),
            None => Applied::Unchanged,
        }
    }

    /// [`Inventory::touch`] by handle.
    pub fn touch_slot(&mut self, slot: Slot, at: i64, count: bool) -> Applied {
        let Some(i) = self.hot.get_mut(slot.0 as usize) else {
            return Applied::Unchanged;
        };
        let mut c = set_max(&mut i.last_used, Some(at));
        c |= set_min(&mut i.first_seen, Some(at));
        c |= set_max(&mut i.last_seen, Some(at));
        if count {
            i.event_count += 1;
            c = true;
        }
        if c {
            self.mark(slot.0);
            Applied::Updated
        } else {
            Applied::Unchanged
        }
    }

    /// Records a use of credential `key` of the identity at `owner`.
    pub fn touch_credential(
        &mut self,
        owner: Slot,
        key: &str,
        at: i64,
        region: Option<&str>,
        service: Option<&str>,
    ) {
        let Some(i) = self.slots.get_mut(owner.0 as usize) else {
            return;
        };
        let Some(c) = i.credentials.iter_mut().find(|c| c.id == key) else {
            return;
        };
        if c.last_used.is_none_or(|t| at > t) {
            c.last_used = Some(at);
            c.last_used_region = region.map(str::to_owned);
            c.last_used_service = service.map(str::to_owned);
            self.mark(owner.0);
        }
    }

    /// The chain of a session assumed by `by`: `by`'s own chain, then `by`.
    fn chain_through(&self, by: &str, target: &str) -> Vec<String> {
        let mut chain = self.get(by).map(|i| i.chain.clone()).unwrap_or_default();
        if chain.iter().any(|c| c == target) || by == target {
            return Vec::new();
        }
        chain.push(by.to_owned());
        if chain.len() > MAX_CHAIN {
            chain.drain(..chain.len() - MAX_CHAIN);
        }
        chain
    }

    /// Makes links symmetric and ties EKS IRSA subjects to the service accounts they stand
    /// for (same namespace and name, annotated with a role the subject assumed). Run after a
    /// batch of files; returns how many identities changed.
    pub fn link(&mut self) -> usize {
        let mut add: Vec<(u32, String)> = Vec::new();
        let mut sa_by_role: FxHashMap<&str, Vec<&Identity>> = FxHashMap::default();
        // In slot order, as a pass over every identity would meet them.
        let mut linkable: Vec<u32> = self.linkable.iter().copied().collect();
        linkable.sort_unstable();
        let slots = &self.slots;
        let each = || {
            linkable
                .iter()
                .filter_map(|&s| Some((s as usize, slots.get(s as usize)?)))
        };
        for (_, i) in each() {
            for l in &i.links {
                if let Some(&t) = self.index.get(l.as_str())
                    && self
                        .slots
                        .get(t as usize)
                        .is_some_and(|t| !t.links.contains(&i.id))
                {
                    add.push((t, i.id.clone()));
                }
            }
            if i.kind == IdentityKind::ServiceAccount {
                for l in &i.links {
                    sa_by_role.entry(l.as_str()).or_default().push(i);
                }
            }
        }
        for (slot, i) in each() {
            let Some(irsa) = i.details.get("irsa") else {
                continue;
            };
            let (Some(ns), Some(sa)) = (
                irsa.get("namespace").and_then(|v| v.as_str()),
                irsa.get("service_account").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            for role in &i.links {
                for acct in sa_by_role.get(role.as_str()).into_iter().flatten() {
                    if acct.namespace.as_deref() == Some(ns) && acct.name == sa {
                        if !i.links.contains(&acct.id) {
                            add.push((slot as u32, acct.id.clone()));
                        }
                        if !acct.links.contains(&i.id)
                            && let Some(&a) = self.index.get(acct.id.as_str())
                        {
                            add.push((a, i.id.clone()));
                        }
                    }
                }
            }
        }
        let mut changed = 0;
        for (slot, to) in add {
            if let Some(i) = self.slots.get_mut(slot as usize)
                && i.links.insert(to)
            {
                self.mark(slot);
                changed += 1;
            }
        }
        changed + self.follow_chains()
    }

    /// Brings each session's chain up to date with its assumer's ([`Self::chain_through`]):
    /// a session taken in before its assumer's own chain was known (a later file, another
    /// bus partition) ends as one taken in after it. Repeated while chains grow, at most
    /// as many times as a chain is long (a loop cut short at `MAX_CHAIN` cannot cycle on).
    fn follow_chains(&mut self) -> usize {
        if !std::mem::take(&mut self.chains_moved) {
            return 0;
        }
        let mut changed = std::collections::BTreeSet::new();
        for _ in 0..=MAX_CHAIN {
            let stale: Vec<(usize, Vec<String>)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(slot, i)| {
                    let chain = self.chain_through(i.chain.last()?, &i.id);
                    (!chain.is_empty() && chain != i.chain).then_some((slot, chain))
                })
                .collect();
            if stale.is_empty() {
                break;
            }
            for (slot, chain) in stale {
                if let Some(i) = self.slots.get_mut(slot) {
                    i.chain = chain;
                    self.mark(slot as u32);
                    changed.insert(slot);
                }
            }
        }
        changed.len()
    }
}

fn merge(i: &mut Identity, obs: Observation, count: bool, chain: Option<Vec<String>>) -> bool {
    let Observation {
        kind,
        name,
        source,
        used_at,
        seen_at,
        facts: f,
        ..
    } = obs;
    let mut c = false;
    if i.kind == IdentityKind::Unknown && kind != IdentityKind::Unknown {
        i.kind = kind;
        c = true;
    }
    if i.name.is_empty() && !name.is_empty() {
        i.name = name;
        c = true;
    }
    let is_log = source.is_log();
    // A log record older than the newest one already seen only fills gaps: the newest
    // record's facts win whatever order files arrive in.
    let fresh = !is_log
        || used_at
            .or(seen_at)
            .is_none_or(|t| i.last_seen.is_none_or(|ls| t >= ls));
    let put = |slot: &mut Option<String>, v: Option<String>| {
        if fresh || slot.is_none() {
            set(slot, v)
        } else {
            false
        }
    };
    if is_log {
        if !i.evidence.dynamic_log {
            i.evidence.dynamic_log = true;
            c = true;
        }
    } else if !i.evidence.static_config {
        i.evidence.static_config = true;
        c = true;
    }
    if !i.sources.contains(source.as_str()) {
        i.sources.insert(source.as_str().to_owned());
        c = true;
    }
    c |= put(&mut i.arn, f.arn);
    c |= put(&mut i.native_id, f.native_id);
    c |= put(&mut i.account, f.account);
    c |= put(&mut i.cluster, f.cluster);
    c |= put(&mut i.namespace, f.namespace);
    c |= put(&mut i.subject, f.subject);
    c |= put(&mut i.issuer, f.issuer);
    c |= put(&mut i.parent, f.parent);
    c |= put(&mut i.source_identity, f.source_identity);
    // Creation: a creation after a deletion is a re-creation.
    if let Some(created) = f.created {
        match i.deleted {
            Some(d) if created > d => {
                i.created = Some(created);
                i.deleted = None;
                c = true;
            }
            _ => c |= set_min(&mut i.created, Some(created)),
        }
    }
    c |= set_max(&mut i.deleted, f.deleted);
    c |= set_max(&mut i.last_used, f.last_used);
    c |= set_max(&mut i.last_used, used_at);
    if is_log {
        let t = used_at.or(seen_at);
        c |= set_min(&mut i.first_seen, t);
        c |= set_max(&mut i.last_seen, t);
        if count && used_at.is_some() {
            i.event_count += 1;
            c = true;
        }
    }
    if let Some(by) = f.assumed_by {
        c |= i.assumed_by.insert(by);
    }
    if let Some(by) = f.created_by {
        c |= i.created_by.insert(by);
    }
    if let Some(chain) = chain
        && (fresh || i.chain.is_empty())
        && !chain.is_empty()
        && i.chain != chain
    {
        i.chain = chain;
        c = true;
    }
    for l in f.links {
        if l != i.id {
            c |= i.links.insert(l);
        }
    }
    for cred in f.credentials {
        c |= merge_credential(&mut i.credentials, cred);
    }
    for (id, status) in f.credential_status {
        match i.credentials.iter_mut().find(|x| x.id == id) {
            Some(cur) if cur.status != status => {
                cur.status = status;
                c = true;
            }
            Some(_) => {}
            None => {
                let kind = if id == "password" {
                    keyward_model::CredentialKind::Password
                } else {
                    keyward_model::CredentialKind::AccessKey
                };
                let cred = Credential {
                    id,
                    kind,
                    status,
                    created: None,
                    last_used: None,
                    last_used_region: None,
                    last_used_service: None,
                };
                add_credential(&mut i.credentials, cred);
                c = true;
            }
        }
    }
    c |= replace_map(
        &mut i.tags,
        f.tags,
        source == SourceKind::IamAuthorizationDetails,
    );
    let k8s_whole = source == SourceKind::K8sSnapshot;
    c |= replace_map(&mut i.labels, f.labels, k8s_whole);
    c |= replace_map(&mut i.annotations, f.annotations, k8s_whole);
    for (k, v) in f.details {
        if (fresh || !i.details.contains_key(&k)) && i.details.get(&k) != Some(&v) {
            i.details.insert(k, v);
            c = true;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_model::{CredentialKind, Platform};

    fn obs(id: &str, kind: IdentityKind, source: SourceKind) -> Observation {
        Observation::new(id.into(), Platform::Aws, kind, id, source)
    }

    #[test]
    fn same_observation_twice_changes_nothing() {
        let mut inv = Inventory::default();
        let mut o = obs("r", IdentityKind::IamRole, SourceKind::Cloudtrail);
        o.used_at = Some(10);
        assert_eq!(inv.apply(o.clone(), true), Applied::New);
        assert_eq!(inv.apply(o.clone(), false), Applied::Unchanged);
        let r = inv.get("r").unwrap();
        assert_eq!(r.event_count, 1);
        assert_eq!(
            (r.first_seen, r.last_seen, r.last_used),
            (Some(10), Some(10), Some(10))
        );
        assert!(r.evidence.dynamic_log && !r.evidence.static_config);
    }

    #[test]
    fn evidence_from_both_kinds_of_source() {
        let mut inv = Inventory::default();
        inv.apply(
            obs(
                "r",
                IdentityKind::IamRole,
                SourceKind::IamAuthorizationDetails,
            ),
            false,
        );
        let mut o = obs("r", IdentityKind::IamRole, SourceKind::Cloudtrail);
        o.used_at = Some(5);
        assert_eq!(inv.apply(o, true), Applied::Updated);
        assert_eq!(inv.get("r").unwrap().evidence.label(), "both");
    }

    #[test]
    fn chains_follow_assumers() {
        let mut inv = Inventory::default();
        let mut a = obs("s1", IdentityKind::StsSession, SourceKind::Cloudtrail);
        a.facts.assumed_by = Some("user".into());
        inv.apply(a, true);
        let mut b = obs("s2", IdentityKind::StsSession, SourceKind::Cloudtrail);
        b.facts.assumed_by = Some("s1".into());
        inv.apply(b, true);
        assert_eq!(
            inv.get("s2").unwrap().chain,
            vec!["user".to_owned(), "s1".to_owned()]
        );
        // A loop does not grow without bound.
        let mut c = obs("s1", IdentityKind::StsSession, SourceKind::Cloudtrail);
        c.facts.assumed_by = Some("s2".into());
        inv.apply(c, true);
        assert_eq!(inv.get("s1").unwrap().chain, vec!["user".to_owned()]);
    }

    #[test]
    fn a_chain_taken_in_before_its_assumers_follows_it_once_linked() {
        let session = |id: &str, by: &str| {
            let mut o = obs(id, IdentityKind::StsSession, SourceKind::Cloudtrail);
            o.facts.assumed_by = Some(by.into());
            o
        };
        // The third hop arrives first (another partition), then the second, then the first.
        let mut inv = Inventory::default();
        inv.apply(session("s3", "s2"), true);
        inv.apply(session("s2", "s1"), true);
        inv.apply(session("s1", "aws-service:ecs-tasks.amazonaws.com"), true);
        assert_eq!(inv.get("s3").unwrap().chain, ["s2"]);
        inv.take_dirty();
        assert_eq!(inv.link(), 2, "s2 and s3 follow");
        let want = ["aws-service:ecs-tasks.amazonaws.com", "s1", "s2"];
        assert_eq!(inv.get("s3").unwrap().chain, want);
        assert_eq!(inv.get("s2").unwrap().chain, want[..2]);
        assert_eq!(inv.take_dirty().len(), 2, "both are written again");
        // Arrived in order, the same chains, and linking again changes nothing.
        let mut ordered = Inventory::default();
        ordered.apply(session("s1", "aws-service:ecs-tasks.amazonaws.com"), true);
        ordered.apply(session("s2", "s1"), true);
        ordered.apply(session("s3", "s2"), true);
        assert_eq!(ordered.get("s3").unwrap().chain, want);
        assert_eq!(ordered.link(), 0);
        assert_eq!(inv.link(), 0);
        // A loop stays cut.
        inv.apply(session("s1", "s3"), true);
        inv.link();
        assert_eq!(inv.get("s1").unwrap().chain, want[..1]);
    }

    #[test]
    fn links_made_symmetric_whatever_arrives_first_and_after_many_unlinked_ones() {
        let sa = |links: &[&str]| {
            let mut o = Observation::new(
                "k8s:c/system:serviceaccount:pay:api".into(),
                Platform::Kubernetes,
                IdentityKind::ServiceAccount,
                "api",
                SourceKind::K8sSnapshot,
            );
            o.facts.namespace = Some("pay".into());
            o.facts.links = links.iter().map(|l| (*l).to_owned()).collect();
            o
        };
        let subject = || {
            let mut o = obs(
                "oidc:eks/pay/api",
                IdentityKind::OidcSubject,
                SourceKind::Cloudtrail,
            );
            o.facts.links = vec!["role/pay".into()];
            o.facts.details.insert(
                "irsa".into(),
                serde_json::json!({"namespace": "pay", "service_account": "api"}),
            );
            o
        };
        let role = || obs("role/pay", IdentityKind::IamRole, SourceKind::Cloudtrail);
        let check = |inv: &Inventory| {
            let links =
                |id: &str| -> Vec<String> { inv.get(id).unwrap().links.iter().cloned().collect() };
            assert_eq!(
                links("role/pay"),
                ["k8s:c/system:serviceaccount:pay:api", "oidc:eks/pay/api"]
            );
            assert_eq!(
                links("oidc:eks/pay/api"),
                ["k8s:c/system:serviceaccount:pay:api", "role/pay"]
            );
            assert_eq!(
                links("k8s:c/system:serviceaccount:pay:api"),
                ["oidc:eks/pay/api", "role/pay"]
            );
        };
        // Each in its own input, the linked role last, after thousands of identities with
        // nothing to link: every link made both ways, the IRSA subject tied to its account.
        let mut inv = Inventory::default();
        inv.apply(sa(&["role/pay"]), false);
        inv.link();
        inv.apply(subject(), true);
        inv.link();
        for n in 0..5_000 {
            inv.apply(
                obs(
                    &format!("lease/{n}"),
                    IdentityKind::BrokerCredential,
                    SourceKind::BrokerLeases,
                ),
                true,
            );
            inv.link();
        }
        inv.apply(role(), true);
        inv.take_dirty();
        assert_eq!(inv.link(), 2, "the role, both ways");
        check(&inv);
        assert_eq!(inv.link(), 0, "nothing left to do");
        // The same from an inventory loaded whole, the role now first.
        let stored: Vec<Identity> = ["k8s:c/system:serviceaccount:pay:api", "oidc:eks/pay/api"]
            .iter()
            .map(|id| {
                let mut i = inv.get(id).unwrap().clone();
                i.links.retain(|l| l == "role/pay");
                i
            })
            .collect();
        let mut loaded = Inventory::new(stored);
        loaded.apply(role(), true);
        loaded.link();
        check(&loaded);
    }

    #[test]
    fn unknown_status_does_not_override_known() {
        let mut inv = Inventory::default();
        let mut o = obs("u", IdentityKind::IamUser, SourceKind::Cloudtrail);
        o.facts
            .credential_status
            .push(("AKIA1".into(), CredentialStatus::Inactive));
        inv.apply(o, true);
        let mut used = obs("u", IdentityKind::IamUser, SourceKind::Cloudtrail);
        used.facts.credentials.push(Credential {
            id: "AKIA1".into(),
            kind: CredentialKind::AccessKey,
            status: CredentialStatus::Unknown,
            created: None,
            last_used: Some(3),
            last_used_region: None,
            last_used_service: None,
        });
        inv.apply(used, true);
        let c = &inv.get("u").unwrap().credentials[0];
        assert_eq!(
            (c.status, c.last_used),
            (CredentialStatus::Inactive, Some(3))
        );
    }

    #[test]
    fn recreation_after_deletion() {
        let mut inv = Inventory::default();
        let mut d = obs("u", IdentityKind::IamUser, SourceKind::Cloudtrail);
        d.facts.created = Some(1);
        d.facts.deleted = Some(5);
        inv.apply(d, true);
        let mut again = obs("u", IdentityKind::IamUser, SourceKind::Cloudtrail);
        again.facts.created = Some(9);
        inv.apply(again, true);
        let u = inv.get("u").unwrap();
        assert_eq!((u.created, u.deleted), (Some(9), None));
    }
}
