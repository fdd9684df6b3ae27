//! Response plans on the real pipeline: the example estate ingested with detection on, a
//! plan made from a finding (containment, then the key the identity created on another
//! user since the finding's first event), stored and audited; its evidence written once
//! and never again; a protected identity refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_engine::respond::PlanAsk;
use keyward_engine::{Engine, EngineError, IngestOptions};
use keyward_respond::Action;
use keyward_respond::plan::K8sStrategy;

const NOW: i64 = 1_800_000_000_000;

fn estate() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    e.ingest(&[root], &IngestOptions::default(), &mut (), NOW)
        .unwrap();
    (dir, e)
}

fn ask<'a>(target: &'a str, protect: &'a [String]) -> PlanAsk<'a> {
    PlanAsk {
        everywhere: false,
        target,
        since: None,
        now: NOW,
        actor: "test:respond",
        protect,
        k8s: K8sStrategy::Contain,
    }
}

#[test]
fn a_finding_gives_a_stored_audited_plan_with_its_blast_radius() {
    let (_dir, mut e) = estate();
    let backdoor = e
        .findings(&Default::default())
        .unwrap()
        .into_iter()
        .find(|f| f.rule_id == "kw-aws-backdoor-access-key")
        .expect("the estate's backdoor key finding");
    let plan = e.plan_response(&ask(&backdoor.id, &[])).unwrap();
    assert_eq!(plan.identity, "arn:aws:iam::111122223333:user/alice");
    assert_eq!(plan.finding.as_deref(), Some(backdoor.id.as_str()));
    assert_eq!(plan.since, Some(backdoor.first_seen));
    // Containment of the user first…
    assert!(
        matches!(plan.steps[0].action, Action::DenyAll { .. }),
        "{:#?}",
        plan.steps
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| !s.command.is_empty() || !s.action.changes_platform())
    );
    // …then the key alice created on another user after the finding's first event.
    let blast: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.why.starts_with("blast radius"))
        .collect();
    assert!(
        blast.iter().any(|s| matches!(&s.action,
            Action::DeactivateAccessKey { user, .. } if user == "svc-temp-migration")),
        "{blast:#?}"
    );
    // Stored as planned, with its audit entry.
    let stored = e.response_plan(&plan.id).unwrap().unwrap();
    assert_eq!(stored, plan);
    assert_eq!(e.response_plans(10).unwrap().len(), 1);
    let log = e.audit_log(10).unwrap();
    assert!(
        log.iter().any(|a| a.entry.action == "respond.plan"
            && a.entry.target.as_deref() == Some(plan.id.as_str()))
    );

    // Evidence is written once; the second write fails and the first stays.
    let doc = serde_json::json!({"targets": {"aws:x": {"Role": {}}}});
    let hash = e
        .put_response_evidence(&plan, &doc, NOW, "test:respond")
        .unwrap();
    assert!(
        e.put_response_evidence(&plan, &serde_json::json!({}), NOW, "test:respond")
            .is_err()
    );
    let ev = e.response_evidence(&plan.id).unwrap().unwrap();
    assert_eq!(ev.hash, hash);
    assert_eq!(blake3::hash(ev.doc.as_bytes()).to_hex().to_string(), hash);
    // What Keyward knows of the identity joins the platform's state.
    let local = e.local_evidence(&plan).unwrap();
    assert_eq!(local["identity_record"]["id"], plan.identity);
    assert!(!local["recent_events"].as_array().unwrap().is_empty());
}

#[test]
fn protected_identities_are_refused_and_unknown_targets_named() {
    let (_dir, mut e) = estate();
    let err = e
        .plan_response(&ask(
            "arn:aws:iam::111122223333:user/alice",
            &["*alice*".into()],
        ))
        .unwrap_err();
    assert!(matches!(err, EngineError::Plan(_)), "{err}");
    assert!(err.to_string().contains("protected"), "{err}");
    let err = e
        .plan_response(&ask("no-such-thing-anywhere", &[]))
        .unwrap_err();
    assert!(err.to_string().contains("no finding or identity"), "{err}");
    assert!(e.response_plans(10).unwrap().is_empty());
}

#[test]
fn disable_everywhere_takes_the_linked_identities_in_one_plan() {
    let (_dir, mut e) = estate();
    let mut a = ask("k8s:prod-eks/system:serviceaccount:orders:orders-api", &[]);
    a.everywhere = true;
    let plan = e.plan_response(&a).unwrap();
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        [
            "remove_bindings",
            "delete_token_secrets",
            "restart_pods",
            "deny_web_identity_subject",
            "revoke_sessions"
        ]
    );
    // The IRSA role is narrowed through the subject, never denied whole (others may use it).
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::DenyAll { .. }))
    );
    assert!(plan.steps[3].why.starts_with("linked identity oidc:"));
    let latest = e
        .latest_plan_for(&plan.identity, keyward_respond::PlanStatus::Planned)
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, plan.id);
}
