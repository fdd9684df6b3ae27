//! The identity graph as the engine keeps it: updated in place by ingestion, equal to a
//! rebuild from the store, and with observed edges (and their event ids) persisted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use keyward_engine::{Engine, IngestOptions};
use keyward_graph::{EdgeKind, Graph};

fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

fn ingest(engine: &mut Engine, paths: &[PathBuf]) {
    let r = engine
        .ingest(paths, &IngestOptions::default(), &mut (), 0)
        .unwrap();
    assert_eq!(r.rejected, 0, "{:?}", r.rejections);
}

/// Nodes and edges in a stable, comparable form.
fn dump(g: &Graph) -> (Vec<String>, Vec<String>) {
    let mut nodes: Vec<String> = g
        .nodes()
        .map(|(_, k, n)| format!("{k} {} {:?} {}", n.kind.as_str(), n.label, n.gone))
        .collect();
    nodes.sort();
    let mut edges: Vec<String> = g
        .edges()
        .map(|e| {
            format!(
                "{} -{}-> {} n={} {:?}..{:?} origin={:?} {:?}",
                g.key(e.from),
                e.kind,
                g.key(e.to),
                e.count,
                e.first_seen,
                e.last_seen,
                e.origin.map(|o| g.key(o)),
                e.detail
            )
        })
        .collect();
    edges.sort();
    (nodes, edges)
}

/// Asserts two dumps are equal, showing only what differs.
fn same(a: &(Vec<String>, Vec<String>), b: &(Vec<String>, Vec<String>)) {
    for (x, y, what) in [(&a.0, &b.0, "nodes"), (&a.1, &b.1, "edges")] {
        let only_x: Vec<&String> = x.iter().filter(|v| !y.contains(v)).collect();
        let only_y: Vec<&String> = y.iter().filter(|v| !x.contains(v)).collect();
        assert!(
            only_x.is_empty() && only_y.is_empty() && x.len() == y.len(),
            "{what} differ:\n only left: {only_x:#?}\n only right: {only_y:#?}"
        );
    }
}

/// Every top-level entry of the estate, one ingest call each.
fn parts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(estate())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    v.sort();
    v
}

#[test]
fn in_place_updates_equal_a_rebuild_and_all_at_once() {
    let a = tempfile::tempdir().unwrap();
    let mut inc = Engine::open(a.path()).unwrap();
    // Reverse order: snapshots after logs, Kubernetes before AWS.
    for p in parts().iter().rev() {
        ingest(&mut inc, std::slice::from_ref(p));
    }
    let live = dump(inc.graph());
    assert!(live.1.len() > 100, "{}", live.1.len());
    // EC2 instance profiles are workloads running as their role.
    assert!(live.1.iter().any(|e| e.starts_with(
        "instance-profile:arn:aws:iam::111122223333:instance-profile/ec2-web-app-profile -runs_as-> arn:aws:iam::111122223333:role/ec2-web-app"
    )));
    drop(inc);
    let rebuilt = dump(Engine::open(a.path()).unwrap().graph());
    same(&live, &rebuilt);
    let b = tempfile::tempdir().unwrap();
    let mut all = Engine::open(b.path()).unwrap();
    ingest(&mut all, &[estate()]);
    same(&dump(all.graph()), &live);
}

const ASSUME: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/svc-ci-legacy","accountId":"111122223333","accessKeyId":"AKIABTX3GSDSQCA27YLK","userName":"svc-ci-legacy"},"eventTime":"2026-11-20T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15.0","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/cross-account-deployer","roleSessionName":"late-night"},"responseElements":{"credentials":{"accessKeyId":"ASIAEXAMPLELATENIGHT","sessionToken":"x","expiration":"Nov 20, 2026, 11:00:00 AM"},"assumedRoleUser":{"assumedRoleId":"AROAEXAMPLE:late-night","arn":"arn:aws:sts::111122223333:assumed-role/cross-account-deployer/late-night"}},"requestID":"r-1","eventID":"11111111-2222-3333-4444-555555555555","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}
{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:late-night","arn":"arn:aws:sts::111122223333:assumed-role/cross-account-deployer/late-night","accountId":"111122223333","accessKeyId":"ASIAEXAMPLELATENIGHT","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/cross-account-deployer","accountId":"111122223333","userName":"cross-account-deployer"},"attributes":{"creationDate":"2026-11-20T10:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"2026-11-20T10:01:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15.0","requestParameters":{"userName":"backdoor"},"responseElements":{"user":{"path":"/","userName":"backdoor","userId":"AIDABACKDOOR","arn":"arn:aws:iam::111122223333:user/backdoor","createDate":"Nov 20, 2026, 10:01:00 AM"}},"requestID":"r-2","eventID":"66666666-2222-3333-4444-555555555555","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}
"#;

#[test]
fn events_add_evidence_in_place_and_it_persists() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    ingest(&mut e, &[estate()]);
    let user = "arn:aws:iam::111122223333:user/svc-ci-legacy";
    let role = "arn:aws:iam::111122223333:role/cross-account-deployer";
    let assumed = |g: &Graph| {
        let n = g.find(user).unwrap();
        g.out_edges(n)
            .find(|x| x.kind == EdgeKind::Assumed && g.key(x.to) == role)
            .map(|x| (x.count, x.detail.unwrap().event_ids.clone()))
            .unwrap()
    };
    let (before, _) = assumed(e.graph());
    let edges_before = e.graph().edge_count();
    let f = dir.path().join("late.jsonl");
    std::fs::write(&f, ASSUME).unwrap();
    ingest(&mut e, &[f]);
    let (after, ids) = assumed(e.graph());
    assert_eq!(after, before + 1);
    assert_eq!(
        ids.last().map(String::as_str),
        Some("11111111-2222-3333-4444-555555555555")
    );
    // New: the session (created by the user, a session of the role), its key, the
    // backdoor user created by the session.
    let g = e.graph();
    let session = "arn:aws:sts::111122223333:assumed-role/cross-account-deployer/late-night";
    let s = g.find(session).unwrap();
    assert!(
        g.in_edges(s)
            .any(|x| x.kind == EdgeKind::Created && g.key(x.from) == user)
    );
    assert!(
        g.out_edges(s).any(|x| x.kind == EdgeKind::Created
            && g.key(x.to) == "arn:aws:iam::111122223333:user/backdoor")
    );
    assert!(g.edge_count() > edges_before);
    // Containment from the user since the evening: the session and what it created.
    let b = keyward_graph::analysis::blast_radius(
        g,
        g.find(user).unwrap(),
        keyward_graph::analysis::BlastOptions {
            since: keyward_model::time::parse("2026-11-20T00:00:00Z"),
            ..Default::default()
        },
    );
    let s_node = b
        .root
        .children
        .iter()
        .find(|c| c.node == session)
        .expect("session created since");
    let mut below: Vec<&str> = s_node.children.iter().map(|c| c.node.as_str()).collect();
    below.sort();
    assert_eq!(
        below,
        vec![
            "ASIAEXAMPLELATENIGHT",
            "arn:aws:iam::111122223333:user/backdoor"
        ]
    );
    // A new process sees the same evidence.
    let live = dump(e.graph());
    drop(e);
    let again = Engine::open(dir.path()).unwrap();
    assert_eq!(assumed(again.graph()), (after, ids));
    same(&dump(again.graph()), &live);
}

#[test]
fn forced_reread_adds_no_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    ingest(&mut e, &[estate()]);
    let before = dump(e.graph());
    // The same events again: counts must not grow (edges with more events than the ids
    // they keep could not tell a replay from a new event).
    let opts = IngestOptions {
        force: true,
        ..Default::default()
    };
    e.ingest(&[estate()], &opts, &mut (), 0).unwrap();
    same(&dump(e.graph()), &before);
}
