//! The broker's leases in the engine: recorded with their audit entries, read back as a
//! tree, listed while active, and taken into the inventory and graph as identities created
//! by their workload or parent lease (a revoked one gone), on both stores' code path that
//! the embedded store runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_engine::Engine;
use keyward_engine::broker::LeaseWrite;
use keyward_graph::EdgeKind;
use keyward_model::lease::{LeaseKind, LeaseRecord, LeaseState};
use keyward_model::{IdentityKind, Platform};
use keyward_store::AuditEntry;

const SA: &str = "k8s:prod/system:serviceaccount:pay:api";

fn lease(id: &str, kind: LeaseKind, parent: Option<&str>, at: i64) -> LeaseRecord {
    LeaseRecord {
        lease_id: id.into(),
        kind,
        state: LeaseState::Active,
        parent: parent.map(str::to_owned),
        workload: SA.into(),
        workload_kind: IdentityKind::ServiceAccount,
        workload_platform: Platform::Kubernetes,
        workload_name: "api".into(),
        proof: "kubernetes".into(),
        issuer: "https://k8s".into(),
        subject: "system:serviceaccount:pay:api".into(),
        created_by: parent.map_or(SA.to_owned(), LeaseRecord::lease_identity),
        target: "vault".into(),
        identity: LeaseRecord::lease_identity(id),
        reference: Some(id.into()),
        account: None,
        boundary: None,
        policies: vec!["p".into()],
        issued_at: at,
        expires_at: at + 900_000,
        max_expires_at: at + 3_600_000,
        renewals: 0,
        revoked_at: None,
        revoked_by: None,
        reason: None,
    }
}

fn write(l: &LeaseRecord, action: &str) -> LeaseWrite {
    LeaseWrite {
        lease: l.clone(),
        audit: AuditEntry {
            at: l.issued_at,
            actor: format!("workload:{SA}"),
            action: action.into(),
            target: Some(l.identity.clone()),
            detail: None,
            before: None,
            after: None,
        },
    }
}

#[test]
fn leases_are_stored_audited_and_become_a_chain_in_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    let root = lease("kwl-a", LeaseKind::Jwt, None, 1_000);
    let child = lease("kwl-b", LeaseKind::Svid, Some("kwl-a"), 2_000);
    let grandchild = lease("kwl-c", LeaseKind::Secret, Some("kwl-b"), 3_000);
    let other = lease("kwl-d", LeaseKind::Jwt, None, 4_000);
    let all = [
        root.clone(),
        child.clone(),
        grandchild.clone(),
        other.clone(),
    ];
    let writes: Vec<LeaseWrite> = all.iter().map(|l| write(l, "broker.issue")).collect();
    e.record_leases(&writes, 5_000).unwrap();

    // Stored, and audited one entry per lease.
    assert_eq!(e.lease("kwl-b").unwrap().unwrap(), child);
    let tree: Vec<String> = e
        .lease_tree("kwl-a")
        .unwrap()
        .into_iter()
        .map(|l| l.lease_id)
        .collect();
    assert_eq!(tree, ["kwl-a", "kwl-b", "kwl-c"]);
    assert_eq!(e.active_leases(10).unwrap().len(), 4);
    let log = e.audit_log(10).unwrap();
    assert_eq!(
        log.iter()
            .filter(|a| a.entry.action == "broker.issue")
            .count(),
        4
    );
    assert!(e.audit_verify(&[]).unwrap().ok);

    // Into the graph: the service account created the root, which created the child.
    e.project_leases(&all, 5_000).unwrap();
    let c = e.inventory().get("keyward:lease/kwl-b").unwrap();
    assert_eq!(c.kind, IdentityKind::BrokerCredential);
    assert_eq!(c.platform, Platform::Keyward);
    let g = e.graph();
    let created = |from: &str, to: &str| {
        let (a, b) = (g.find(from).unwrap(), g.find(to).unwrap());
        g.out_edges(a)
            .any(|x| x.kind == EdgeKind::Created && x.to == b)
    };
    assert!(created(SA, "keyward:lease/kwl-a"));
    assert!(created("keyward:lease/kwl-a", "keyward:lease/kwl-b"));
    assert!(created("keyward:lease/kwl-b", "keyward:lease/kwl-c"));

    // Revoked: recorded, no longer active, gone from the inventory.
    let mut revoked = root.clone();
    revoked.state = LeaseState::Revoked;
    revoked.revoked_at = Some(6_000);
    e.record_leases(&[write(&revoked, "broker.revoke")], 6_000)
        .unwrap();
    e.project_leases(std::slice::from_ref(&revoked), 6_000)
        .unwrap();
    assert_eq!(e.active_leases(10).unwrap().len(), 3);
    assert!(
        e.inventory()
            .get("keyward:lease/kwl-a")
            .unwrap()
            .deleted
            .is_some()
    );
    // Reopened, the store says the same.
    drop(e);
    let e = Engine::open(dir.path()).unwrap();
    assert_eq!(
        e.lease("kwl-a").unwrap().unwrap().state,
        LeaseState::Revoked
    );
    assert!(e.inventory().get("keyward:lease/kwl-c").is_some());
}
