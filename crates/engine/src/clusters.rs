//! One real Kubernetes cluster, one name: how an input's cluster is named, and clusters
//! joined on evidence rather than on folder names.
//!
//! An input's cluster is `--cluster` when given, else read from its path
//! ([`keyward_sources::cluster_from_path`]), else guessed: `default`. A name recorded by
//! `keyward clusters merge FROM INTO` is an alias: inputs named `FROM` (by their path or
//! the guess) are filed under `INTO`.
//!
//! After every ingest, clusters that share evidence — a service account's `uid` (the audit
//! log's `user.uid` is the snapshot's `metadata.uid`), a pod's `uid` (a service-account
//! token's `authentication.kubernetes.io/pod-uid`), at least [`MIN_SHARED_NODES`] node
//! names (an audit log's `system:node:<name>` users, a snapshot's pods' `spec.nodeName`) —
//! are one cluster. When one of the names is a guess (`default`, or a generic folder name
//! an older Keyward took for a cluster), the guess is merged into the other at once; two
//! deliberate names (paths, `--cluster`) are only reported, for `keyward clusters merge`.
//!
//! A merge re-keys the identities (`k8s:FROM/…` → `k8s:INTO/…`, twins merged into one
//! record), the references other identities hold to them, the cluster's snapshot objects
//! and its observed edges, in one store batch, then reloads the inventory and the graph.
//! Events keep the actor ids they were read with.

use std::collections::{BTreeMap, BTreeSet};

use keyward_model::{Identity, IdentityKind, Platform};
use keyward_store::{AuditEntry, Store};

use crate::{Engine, EngineError};

/// How an input's cluster was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClusterOrigin {
    /// No cluster in the path: `default` (pass `--cluster`).
    Guessed,
    /// From the path (`…/k8s/<cluster>/…`, `cluster=<name>`), or an alias of it.
    Path,
    /// `--cluster`.
    Given,
}

impl ClusterOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterOrigin::Guessed => "guessed",
            ClusterOrigin::Path => "path",
            ClusterOrigin::Given => "given",
        }
    }
}

/// The name of the cluster an input without one in its path is filed under.
pub const GUESSED_CLUSTER: &str = "default";

/// Node names two clusters must share to be one (a service-account uid is enough alone:
/// it is a UUID; node names such as `ip-10-0-1-23.ec2.internal` repeat across VPCs).
pub const MIN_SHARED_NODES: usize = 2;

/// The setting holding the aliases `keyward clusters merge` recorded (a JSON object).
const ALIASES: &str = "cluster.aliases";

/// What says two clusters are one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedEvidence {
    /// Service-account uids both hold.
    pub service_accounts: usize,
    /// Node names both name.
    pub nodes: usize,
    /// Pod uids both hold (an audit log's service-account token names its pod's uid).
    pub pods: usize,
}

impl SharedEvidence {
    /// Enough to say the two are one cluster.
    pub fn conclusive(&self) -> bool {
        self.service_accounts > 0 || self.pods > 0 || self.nodes >= MIN_SHARED_NODES
    }
}

/// Two clusters found to be one: `from` merged (or to be merged) into `into`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterJoin {
    pub from: String,
    pub into: String,
    pub evidence: SharedEvidence,
}

/// What a merge re-keyed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Identities moved to the other cluster's name.
    pub identities: usize,
    /// Of those, twins merged into an identity the other cluster already held.
    pub twins: usize,
    pub objects: usize,
    pub edges: usize,
    /// Findings whose identity moved with it.
    pub findings: usize,
}

/// How an input's cluster is named: `--cluster`, else its path, else the guess; path and
/// guessed names go through the recorded aliases.
pub(crate) fn name_for(
    path: Option<&std::path::Path>,
    given: Option<&str>,
    aliases: &BTreeMap<String, String>,
) -> (String, ClusterOrigin) {
    if let Some(c) = given {
        return (c.to_owned(), ClusterOrigin::Given);
    }
    let (name, origin) = match path.and_then(keyward_sources::cluster_from_path) {
        Some(c) => (c, ClusterOrigin::Path),
        None => (GUESSED_CLUSTER.to_owned(), ClusterOrigin::Guessed),
    };
    match aliases.get(&name) {
        Some(to) => (to.clone(), origin),
        None => (name, origin),
    }
}

/// The aliases `keyward clusters merge` recorded.
pub(crate) fn aliases(store: &dyn Store) -> Result<BTreeMap<String, String>, EngineError> {
    Ok(store
        .setting(ALIASES)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// How much a stored cluster's name is to be trusted: given in this run, a deliberate
/// name, the guess, a generic folder name (only an older Keyward filed under one).
fn rank(name: &str, given: &BTreeSet<String>) -> u8 {
    if given.contains(name) {
        3
    } else if keyward_sources::is_generic_folder(name) && name != GUESSED_CLUSTER {
        0
    } else if name == GUESSED_CLUSTER {
        1
    } else {
        2
    }
}

/// The evidence every pair of clusters shares (pairs in name order).
fn shared(
    inventory: &keyward_graph::Inventory,
    store: &dyn Store,
) -> Result<BTreeMap<(String, String), SharedEvidence>, EngineError> {
    let mut sa_uids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pod_uids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut clusters = BTreeSet::new();
    for i in inventory.iter() {
        if i.platform != Platform::Kubernetes {
            continue;
        }
        let Some(c) = i.cluster.as_deref() else {
            continue;
        };
        clusters.insert(c);
        match i.kind {
            IdentityKind::ServiceAccount => {
                if let Some(uid) = i.native_id.as_deref().filter(|u| !u.is_empty()) {
                    sa_uids.entry(uid).or_default().insert(c);
                }
                if let Some(pod) = i.details.get("last_pod_uid").and_then(|v| v.as_str()) {
                    pod_uids
                        .entry(pod.to_owned())
                        .or_default()
                        .insert(c.to_owned());
                }
            }
            IdentityKind::KubernetesNode => {
                nodes
                    .entry(i.name.clone())
                    .or_default()
                    .insert(c.to_owned());
            }
            _ => {}
        }
    }
    let mut out: BTreeMap<(String, String), SharedEvidence> = BTreeMap::new();
    if clusters.len() < 2 {
        return Ok(out);
    }
    // The nodes a snapshot's pods ran on, and the pods' uids.
    for o in store.objects("k8s:Pod")? {
        let Some(c) = o.scope else { continue };
        if let Some(node) = o.doc.pointer("/spec/nodeName").and_then(|v| v.as_str()) {
            nodes.entry(node.to_owned()).or_default().insert(c.clone());
        }
        if let Some(uid) = o.doc.pointer("/metadata/uid").and_then(|v| v.as_str()) {
            pod_uids.entry(uid.to_owned()).or_default().insert(c);
        }
    }
    let mut pairs = |set: Vec<&str>, add: &mut dyn FnMut(&mut SharedEvidence)| {
        for (n, a) in set.iter().enumerate() {
            for b in set.iter().skip(n + 1) {
                add(out.entry(((*a).to_owned(), (*b).to_owned())).or_default());
            }
        }
    };
    for set in sa_uids.values().filter(|s| s.len() > 1) {
        pairs(set.iter().copied().collect(), &mut |e| {
            e.service_accounts += 1
        });
    }
    for set in nodes.values().filter(|s| s.len() > 1) {
        pairs(set.iter().map(String::as_str).collect(), &mut |e| {
            e.nodes += 1
        });
    }
    for set in pod_uids.values().filter(|s| s.len() > 1) {
        pairs(set.iter().map(String::as_str).collect(), &mut |e| {
            e.pods += 1
        });
    }
    Ok(out)
}

/// `s` with the prefix `from` replaced by `into`, when it has it.
fn rekey(s: &str, from: &str, into: &str) -> Option<String> {
    s.strip_prefix(from).map(|rest| [into, rest].concat())
}

/// Re-keys every reference an identity holds to the prefix `from`; whether any changed.
fn rekey_refs(i: &mut Identity, from: &str, into: &str) -> bool {
    let mut changed = false;
    let mut one = |s: &mut String| {
        if let Some(n) = rekey(s, from, into) {
            *s = n;
            changed = true;
        }
    };
    if let Some(p) = i.parent.as_mut() {
        one(p);
    }
    i.chain.iter_mut().for_each(&mut one);
    for set in [&mut i.links, &mut i.assumed_by, &mut i.created_by] {
        if set.iter().any(|s| s.starts_with(from)) {
            *set = std::mem::take(set)
                .into_iter()
                .map(|mut s| {
                    one(&mut s);
                    s
                })
                .collect();
        }
    }
    changed
}

/// Merges the record of a twin (`from`, the same identity filed under another cluster's
/// name) into `into`: what one of them knows fills what the other does not; times widen;
/// events were counted once each, by one of them, so counts add up.
fn merge_twin(into: &mut Identity, from: Identity) {
    fn fill<T>(a: &mut Option<T>, b: Option<T>) {
        if a.is_none() {
            *a = b;
        }
    }
    fn widen(a: &mut Option<i64>, b: Option<i64>, later: bool) {
        *a = match (*a, b) {
            (Some(x), Some(y)) => Some(if later { x.max(y) } else { x.min(y) }),
            (x, y) => x.or(y),
        };
    }
    fill(&mut into.arn, from.arn);
    fill(&mut into.native_id, from.native_id);
    fill(&mut into.account, from.account);
    fill(&mut into.namespace, from.namespace);
    fill(&mut into.subject, from.subject);
    fill(&mut into.issuer, from.issuer);
    fill(&mut into.parent, from.parent);
    fill(&mut into.source_identity, from.source_identity);
    fill(&mut into.deleted, from.deleted);
    widen(&mut into.created, from.created, false);
    widen(&mut into.first_seen, from.first_seen, false);
    widen(&mut into.last_used, from.last_used, true);
    widen(&mut into.last_seen, from.last_seen, true);
    into.event_count += from.event_count;
    for c in from.credentials {
        if !into.credentials.iter().any(|k| k.id == c.id) {
            into.credentials.push(c);
        }
    }
    // Tags, labels and annotations come whole from one snapshot: the side that has them.
    for (a, b) in [
        (&mut into.tags, from.tags),
        (&mut into.labels, from.labels),
        (&mut into.annotations, from.annotations),
    ] {
        if a.is_empty() {
            *a = b;
        }
    }
    into.evidence.static_config |= from.evidence.static_config;
    into.evidence.dynamic_log |= from.evidence.dynamic_log;
    into.sources.extend(from.sources);
    into.assumed_by.extend(from.assumed_by);
    into.created_by.extend(from.created_by);
    into.links.extend(from.links);
    if into.chain.is_empty() {
        into.chain = from.chain;
    }
    for (k, v) in from.details {
        into.details.entry(k).or_insert(v);
    }
    if into.kind == IdentityKind::Unknown {
        into.kind = from.kind;
    }
}

impl Engine {
    /// Kubernetes clusters the inventory holds, with how many identities each.
    pub fn clusters(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for i in self.inventory.iter() {
            if let (Platform::Kubernetes, Some(c)) = (i.platform, i.cluster.as_deref()) {
                *out.entry(c.to_owned()).or_default() += 1;
            }
        }
        out
    }

    /// Pairs of clusters that share evidence of being one, each with the name that would
    /// be merged into the other (see the module's doc).
    pub fn cluster_evidence(&self) -> Result<Vec<ClusterJoin>, EngineError> {
        let given = BTreeSet::new();
        Ok(shared(&self.inventory, self.store.as_ref())?
            .into_iter()
            .filter(|(_, e)| e.conclusive())
            .map(|((a, b), evidence)| {
                let (from, into) = order(a, b, &given);
                ClusterJoin {
                    from,
                    into,
                    evidence,
                }
            })
            .collect())
    }

    /// Joins clusters that share evidence (after an ingest): a guessed name is merged into
    /// the other; two deliberate names are returned to be reported. `given`: the names
    /// `--cluster` gave in this run. Returns (merged, only reported).
    pub(crate) fn join_clusters(
        &mut self,
        given: &BTreeSet<String>,
    ) -> Result<(Vec<ClusterJoin>, Vec<ClusterJoin>), EngineError> {
        let pairs = shared(&self.inventory, self.store.as_ref())?;
        let (mut merged, mut reported) = (Vec::new(), Vec::new());
        // Where a name went: a later pair naming it joins its new name.
        let mut went: BTreeMap<String, String> = BTreeMap::new();
        let now = |n: &String, went: &BTreeMap<String, String>| {
            let mut n = n.clone();
            while let Some(to) = went.get(&n) {
                n = to.clone();
            }
            n
        };
        for ((a, b), evidence) in pairs {
            if !evidence.conclusive() {
                continue;
            }
            let (a, b) = (now(&a, &went), now(&b, &went));
            if a == b {
                continue;
            }
            let (from, into) = order(a, b, given);
            let join = ClusterJoin {
                from,
                into,
                evidence,
            };
            if rank(&join.from, given) >= 2 {
                reported.push(join);
                continue;
            }
            self.rename_cluster(&join.from, &join.into)?;
            went.insert(join.from.clone(), join.into.clone());
            merged.push(join);
        }
        Ok((merged, reported))
    }

    /// `keyward clusters merge FROM INTO`: files cluster `from`'s identities, objects and
    /// edges under `into`, records `from` as an alias of `into` (later inputs named `from`
    /// are filed under `into`), and audits it with `audit` (whose `after` is filled here).
    pub fn merge_clusters(
        &mut self,
        from: &str,
        into: &str,
        mut audit: AuditEntry,
    ) -> Result<MergeCounts, EngineError> {
        let counts = self.rename_cluster(from, into)?;
        let mut aliases = aliases(self.store.as_ref())?;
        // Names that went to `from` now go to `into`.
        for to in aliases.values_mut() {
            if to == from {
                *to = into.to_owned();
            }
        }
        aliases.remove(into);
        aliases.insert(from.to_owned(), into.to_owned());
        audit.after = Some(
            serde_json::json!({
                "identities": counts.identities,
                "twins": counts.twins,
                "objects": counts.objects,
                "edges": counts.edges,
                "findings": counts.findings,
            })
            .to_string(),
        );
        let value = serde_json::to_string(&aliases).map_err(|e| EngineError::Io {
            path: ALIASES.to_owned(),
            source: std::io::Error::other(e),
        })?;
        self.store.put_setting(ALIASES, &value, &audit)?;
        Ok(counts)
    }

    /// Re-keys cluster `from` as `into` in the store (one batch), then reloads the
    /// inventory and the graph.
    fn rename_cluster(&mut self, from: &str, into: &str) -> Result<MergeCounts, EngineError> {
        let mut counts = MergeCounts::default();
        if from == into {
            return Ok(counts);
        }
        self.resume_query_tables()?;
        let (pf, pi) = (format!("k8s:{from}/"), format!("k8s:{into}/"));
        let mut all: BTreeMap<String, Identity> = self
            .store
            .load_identities()?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let moving: Vec<String> = all
            .range(pf.clone()..)
            .take_while(|(k, _)| k.starts_with(&pf))
            .map(|(k, _)| k.clone())
            .collect();
        let mut deleted = Vec::new();
        let mut changed = BTreeSet::new();
        for old in moving {
            let Some(mut i) = all.remove(&old) else {
                continue;
            };
            let Some(new) = rekey(&old, &pf, &pi) else {
                continue;
            };
            i.id.clone_from(&new);
            i.cluster = Some(into.to_owned());
            counts.identities += 1;
            match all.get_mut(&new) {
                Some(twin) => {
                    merge_twin(twin, i);
                    counts.twins += 1;
                }
                None => {
                    all.insert(new.clone(), i);
                }
            }
            deleted.push(old);
            changed.insert(new);
        }
        for (id, i) in &mut all {
            if rekey_refs(i, &pf, &pi) {
                changed.insert(id.clone());
            }
        }
        let mut objects = Vec::new();
        for kind in self.store.object_kinds()? {
            if kind.starts_with("k8s:") {
                objects.extend(
                    self.store
                        .objects(&kind)?
                        .into_iter()
                        .filter(|o| o.scope.as_deref() == Some(from)),
                );
            }
        }
        let edges = self.store.observed_edges()?;
        let findings = self.store.findings(None)?;
        let baselines = self.store.baselines()?;
        let mut batch = self.store.begin()?;
        // Everything under the old name moves: the query tables are filled again after.
        self.tables.begin_split(&mut *batch)?;
        for id in &deleted {
            batch.delete_identity(id)?;
        }
        let put: Vec<&Identity> = changed.iter().filter_map(|id| all.get(id)).collect();
        batch.put_identities(&put)?;
        for mut o in objects {
            let Some(id) = rekey(&o.id, &format!("{from}/"), &format!("{into}/")) else {
                continue;
            };
            batch.delete_object(&o.kind, &o.id)?;
            o.id = id;
            o.scope = Some(into.to_owned());
            batch.put_object(&o)?;
            counts.objects += 1;
        }
        for mut e in edges {
            let (f, t) = (rekey(&e.from, &pf, &pi), rekey(&e.to, &pf, &pi));
            if f.is_none() && t.is_none() {
                continue;
            }
            batch.delete_observed_edge(&e.kind, &e.from, &e.to)?;
            if let Some(f) = f {
                e.from = f;
            }
            if let Some(t) = t {
                e.to = t;
            }
            batch.put_observed_edge(&e)?;
            counts.edges += 1;
        }
        // Findings follow their identity (their ids, once given, stay), and baselines
        // their principal; a twin's own baseline is kept.
        for row in findings {
            if !row.identity.as_deref().is_some_and(|i| i.starts_with(&pf)) {
                continue;
            }
            let mut f = crate::detection::from_row(&row)?;
            f.identity = f.identity.as_deref().and_then(|i| rekey(i, &pf, &pi));
            for step in &mut f.path {
                if let Some(k) = rekey(step, &pf, &pi) {
                    *step = k;
                }
            }
            batch.put_finding(&crate::detection::to_row(&f)?)?;
            counts.findings += 1;
        }
        let held: BTreeSet<&str> = baselines.iter().map(|(p, _)| p.as_str()).collect();
        for (p, doc) in &baselines {
            let Some(new) = rekey(p, &pf, &pi) else {
                continue;
            };
            if !held.contains(new.as_str()) {
                batch.put_baseline(&new, doc)?;
            }
            batch.delete_baseline(p)?;
        }
        batch.commit()?;
        let (inventory, topology) = crate::load(self.store.as_ref())?;
        self.inventory = inventory;
        self.topology = topology;
        if self.tables.kept {
            self.fill_query_tables()?;
        }
        // Detection's baselines and open findings are keyed by the old names: reloaded.
        if let Some(det) = self.detector.take() {
            let settings = self.detect_settings.clone();
            self.enable_detection(det.into_catalog(), settings)?;
        }
        Ok(counts)
    }
}

/// Which of two clusters sharing evidence goes into the other: the less trusted name
/// (see [`rank`]) goes; between equals, the later name in order.
fn order(a: String, b: String, given: &BTreeSet<String>) -> (String, String) {
    let (ra, rb) = (rank(&a, given), rank(&b, given));
    if ra < rb || (ra == rb && a > b) {
        (a, b)
    } else {
        (b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_given_read_or_guessed() {
        let none = BTreeMap::new();
        let p = Path::new("est/k8s/audit/audit.log");
        assert_eq!(
            name_for(Some(p), None, &none),
            ("default".to_owned(), ClusterOrigin::Guessed)
        );
        assert_eq!(
            name_for(Some(p), Some("prod"), &none),
            ("prod".to_owned(), ClusterOrigin::Given)
        );
        let p = Path::new("est/k8s/prod-eks/audit/audit.log");
        assert_eq!(
            name_for(Some(p), None, &none),
            ("prod-eks".to_owned(), ClusterOrigin::Path)
        );
        let aliases = BTreeMap::from([("prod-eks".to_owned(), "prod".to_owned())]);
        assert_eq!(
            name_for(Some(p), None, &aliases),
            ("prod".to_owned(), ClusterOrigin::Path)
        );
        // `--cluster` wins over an alias.
        assert_eq!(
            name_for(Some(p), Some("prod-eks"), &aliases),
            ("prod-eks".to_owned(), ClusterOrigin::Given)
        );
    }

    #[test]
    fn the_guess_goes_into_the_deliberate_name() {
        let given = BTreeSet::from(["a".to_owned()]);
        let o = |a: &str, b: &str| order(a.to_owned(), b.to_owned(), &given);
        assert_eq!(o("default", "prod"), ("default".into(), "prod".into()));
        assert_eq!(o("prod", "default"), ("default".into(), "prod".into()));
        assert_eq!(o("audit", "default"), ("audit".into(), "default".into()));
        assert_eq!(o("a", "prod"), ("prod".into(), "a".into()));
    }

    #[test]
    fn references_follow_the_rename() {
        let mut i = Identity::new(
            "arn:aws:iam::1:role/r".into(),
            Platform::Aws,
            IdentityKind::IamRole,
            "r".into(),
        );
        i.links
            .insert("k8s:default/system:serviceaccount:a:b".into());
        i.links.insert("k8s:defaults/user:x".into());
        assert!(rekey_refs(&mut i, "k8s:default/", "k8s:prod/"));
        assert!(i.links.contains("k8s:prod/system:serviceaccount:a:b"));
        assert!(i.links.contains("k8s:defaults/user:x"));
    }
}
