//! One real Kubernetes cluster, one cluster in the inventory: inputs laid out the way users
//! lay them out (`k8s/rbac.json`, `k8s/audit/audit.log`) are one cluster; clusters that
//! share service-account uids are joined, in one run or already stored; `--cluster` wins;
//! two deliberate names are only reported, and merged on request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use keyward_engine::{ClusterOrigin, Engine, FindingQuery, IngestOptions, IngestReport};
use keyward_model::{Identity, IdentityKind, Lifecycle, LifecycleConfig, time::Millis};

fn estate_k8s() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/k8s/prod-eks")
}

/// Copies the example estate's snapshot and audit log to `rbac` and `audit` under `root`.
fn lay_out(root: &Path, rbac: &str, audit: &str) -> (PathBuf, PathBuf) {
    let (r, a) = (root.join(rbac), root.join(audit));
    for (to, from) in [(&r, "rbac-snapshot.json"), (&a, "audit.jsonl")] {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(estate_k8s().join(from), to).unwrap();
    }
    (r, a)
}

fn ingest(e: &mut Engine, paths: &[PathBuf], cluster: Option<&str>) -> IngestReport {
    let opts = IngestOptions {
        cluster: cluster.map(str::to_owned),
        ..IngestOptions::default()
    };
    e.ingest(paths, &opts, &mut (), 1_800_000_000_000).unwrap()
}

fn service_accounts(e: &Engine) -> Vec<&Identity> {
    e.inventory()
        .iter()
        .filter(|i| i.kind == IdentityKind::ServiceAccount)
        .collect()
}

/// `namespace/name` of the service accounts stale as of the newest event (what
/// `kw-posture-stale` reports).
fn stale(e: &mut Engine) -> BTreeSet<String> {
    let as_of: Millis = e.latest_event_time().unwrap().unwrap();
    let lc = LifecycleConfig {
        as_of,
        stale_after_days: 30,
    };
    service_accounts(e)
        .into_iter()
        .filter(|i| i.lifecycle(lc) == Lifecycle::Stale)
        .map(|i| format!("{}/{}", i.namespace.as_deref().unwrap(), i.name))
        .collect()
}

/// The estate as the example lays it out: `k8s/prod-eks/…`.
fn reference() -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    ingest(&mut e, &[estate_k8s()], None);
    let sas = service_accounts(&e)
        .iter()
        .map(|i| format!("{}/{}", i.namespace.as_deref().unwrap(), i.name))
        .collect();
    (sas, stale(&mut e))
}

/// Every service account once, keyed in `cluster`.
fn assert_one_cluster(e: &mut Engine, cluster: &str) {
    let (sas, stale_ref) = reference();
    assert_eq!(
        e.clusters().keys().collect::<Vec<_>>(),
        vec![cluster],
        "one cluster"
    );
    let mine: Vec<String> = service_accounts(e)
        .iter()
        .map(|i| format!("{}/{}", i.namespace.as_deref().unwrap(), i.name))
        .collect();
    assert_eq!(mine.len(), sas.len(), "every service account once");
    assert_eq!(mine.into_iter().collect::<BTreeSet<_>>(), sas);
    for i in service_accounts(e) {
        assert!(i.id.starts_with(&format!("k8s:{cluster}/")), "{}", i.id);
    }
    // The active ones are not stale: their activity is theirs.
    assert_eq!(stale(e), stale_ref);
}

/// Regression: `k8s/audit/audit.log` was filed under a cluster named `audit` and
/// `k8s/rbac.json` under `default`; every service account existed twice, and those the
/// audit log shows active were reported stale through their twin.
#[test]
fn a_user_layout_is_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (r, a) = lay_out(dir.path(), "k8s/rbac.json", "k8s/audit/audit.log");
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let report = ingest(&mut e, &[dir.path().join("k8s")], None);
    assert_eq!(
        report.clusters,
        BTreeMap::from([("default".to_owned(), ClusterOrigin::Guessed)])
    );
    assert!(report.clusters_merged.is_empty());
    assert_one_cluster(&mut e, "default");
    drop((r, a));
}

/// A snapshot whose path names its cluster and an audit log whose path does not: the
/// service-account uids they share make them one, under the path's name, in one run.
#[test]
fn shared_service_account_uids_join_a_guess_to_a_named_cluster() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path(), "k8s/prod-eks/rbac.json", "logs/audit.log");
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let report = ingest(&mut e, &[dir.path().to_path_buf()], None);
    assert_eq!(report.clusters["default"], ClusterOrigin::Guessed);
    assert_eq!(report.clusters["prod-eks"], ClusterOrigin::Path);
    assert_eq!(report.clusters_merged.len(), 1);
    let j = &report.clusters_merged[0];
    assert_eq!((j.from.as_str(), j.into.as_str()), ("default", "prod-eks"));
    assert!(j.evidence.service_accounts > 0);
    assert!(j.evidence.nodes >= 2, "{:?}", j.evidence);
    // The pods whose tokens the log shows are the snapshot's pods.
    assert!(j.evidence.pods >= 1, "{:?}", j.evidence);
    // Twins are counted once among the new identities.
    assert_eq!(report.identities_new as usize, e.inventory().len());
    assert_one_cluster(&mut e, "prod-eks");
}

/// Two clusters already stored under different names — as an older Keyward filed them,
/// `audit` and `default` — join at the next ingest that shows their shared uids.
#[test]
fn clusters_already_stored_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let (r, a) = lay_out(dir.path(), "in/rbac.json", "in/audit.log");
    let store = dir.path().join("store");
    {
        let mut e = Engine::open(&store).unwrap();
        // As an older Keyward filed them (the name given then, `audit`, is a folder's).
        ingest(&mut e, std::slice::from_ref(&a), Some("audit"));
        assert_eq!(e.clusters().keys().collect::<Vec<_>>(), vec!["audit"]);
    }
    let mut e = Engine::open(&store).unwrap();
    let report = ingest(&mut e, std::slice::from_ref(&r), None);
    let j = &report.clusters_merged[0];
    assert_eq!((j.from.as_str(), j.into.as_str()), ("audit", "default"));
    assert_one_cluster(&mut e, "default");
    // What was merged stays merged in a fresh engine over the store.
    let mut e = Engine::open(&store).unwrap();
    assert_one_cluster(&mut e, "default");
}

/// `--cluster` wins: the audit log named on the command line keeps that name, and the
/// guessed snapshot joins it.
#[test]
fn a_given_cluster_wins_over_the_guess() {
    let dir = tempfile::tempdir().unwrap();
    let (r, a) = lay_out(dir.path(), "k8s/rbac.json", "x/audit.log");
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    ingest(&mut e, &[r], None);
    let report = ingest(&mut e, &[a], Some("prod"));
    assert_eq!(report.clusters["prod"], ClusterOrigin::Given);
    assert_eq!(report.clusters_merged[0].into, "prod");
    assert_one_cluster(&mut e, "prod");
}

/// Two deliberate names are not merged on evidence alone: the report says they share it;
/// `merge_clusters` merges them, audited, and later inputs of the old name follow.
#[test]
fn deliberate_names_merge_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (r, a) = lay_out(dir.path(), "k8s/blue/rbac.json", "k8s/green/audit.log");
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let report = ingest(&mut e, &[dir.path().join("k8s")], None);
    assert!(report.clusters_merged.is_empty());
    assert_eq!(report.clusters_shared.len(), 1);
    let j = &report.clusters_shared[0];
    assert_eq!((j.from.as_str(), j.into.as_str()), ("green", "blue"));
    assert_eq!(e.clusters().len(), 2);
    assert_eq!(e.cluster_evidence().unwrap(), report.clusters_shared);

    let entry = keyward_store::AuditEntry {
        at: 1,
        actor: "cli:test".into(),
        action: "clusters merge".into(),
        target: Some("green blue".into()),
        detail: None,
        before: None,
        after: None,
    };
    let counts = e.merge_clusters("green", "blue", entry).unwrap();
    assert!(counts.identities > 0 && counts.twins > 0, "{counts:?}");
    assert_one_cluster(&mut e, "blue");
    let log = e.audit_log(1).unwrap();
    assert_eq!(log[0].entry.action, "clusters merge");
    // `green` is now an alias of `blue`: read again, the audit log is filed under `blue`.
    let opts = IngestOptions {
        force: true,
        ..IngestOptions::default()
    };
    let report = e.ingest(&[a], &opts, &mut (), 1_800_000_000_000).unwrap();
    assert_eq!(
        report.clusters,
        BTreeMap::from([("blue".to_owned(), ClusterOrigin::Path)])
    );
    assert_one_cluster(&mut e, "blue");
    drop(r);
}

/// The identity of the anonymous request's finding, filed under `audit`.
const ANONYMOUS_AUDIT: &str = "k8s:audit/user:system:anonymous";

/// A merge moves detection's findings and baselines with their identities: nothing is
/// left keyed by the old cluster's name, and the running detector follows.
#[test]
fn findings_and_baselines_follow_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let (r, a) = lay_out(dir.path(), "in/rbac.json", "in/audit.log");
    let store = dir.path().join("store");
    let detecting = |store: &Path| {
        let mut e = Engine::open(store).unwrap();
        e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
            .unwrap();
        e
    };
    let shadow = "system:serviceaccount:payments:debug-sa";
    {
        let mut e = detecting(&store);
        ingest(&mut e, std::slice::from_ref(&a), Some("audit"));
        let before = e.findings(&FindingQuery::default()).unwrap();
        assert!(
            before
                .iter()
                .any(|f| f.identity.as_deref() == Some(ANONYMOUS_AUDIT)),
            "{before:?}"
        );
    }
    let mut e = detecting(&store);
    let report = ingest(&mut e, std::slice::from_ref(&r), None);
    assert_eq!(report.clusters_merged[0].from, "audit");
    let after = e.findings(&FindingQuery::default()).unwrap();
    assert!(
        after.iter().all(|f| !f
            .identity
            .as_deref()
            .is_some_and(|i| i.starts_with("k8s:audit/"))),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|f| f.identity.as_deref() == Some("k8s:default/user:system:anonymous"))
    );
    let det = e.detector().unwrap();
    assert!(det.baseline(&format!("k8s:default/{shadow}")).is_some());
    assert!(det.baseline(&format!("k8s:audit/{shadow}")).is_none());
}
