#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Panther's labelled unit-test events (../shared/corpora/panther-labelled-events) for the
//! Panther rules whose intent is one of the built-in rules': the built-in rule fires exactly
//! where Panther's does, except for the cases listed in `EXCEPTIONS` with the reason.
//! Tests that depend on Panther's mocks (lookups, allow-lists) are skipped.

use std::collections::BTreeMap;

use keyward_detect::{Catalog, Detector, NoLookup, testing};
use keyward_model::SourceKind;
use serde_json::Value;

/// Panther rule → the built-in rule with the same intent.
const MAPPING: &[(&str, &str)] = &[
    // AWS.CloudTrail
    ("AWS.CloudTrail.Stopped", "kw-aws-cloudtrail-tampering"),
    (
        "AWS.CloudTrail.EventSelectorsDisabled",
        "kw-aws-cloudtrail-tampering",
    ),
    (
        "AWS.CloudTrail.AttemptToLeaveOrg",
        "kw-aws-organizations-leave",
    ),
    (
        "AWS.CloudTrail.LoginProfileCreatedOrModified",
        "kw-aws-login-profile",
    ),
    ("AWS.User.Login.Profile.Modified", "kw-aws-login-profile"),
    (
        "AWS.IAM.AttachAdminRolePolicy",
        "kw-aws-admin-policy-attached",
    ),
    (
        "AWS.IAM.AttachAdminUserPolicy",
        "kw-aws-admin-policy-attached",
    ),
    ("AWS.IAM.Backdoor.User.Keys", "kw-aws-backdoor-access-key"),
    ("AWS.IAM.BackdoorRole", "kw-aws-backdoor-role"),
    ("AWS.IAM.CreateUser", "kw-aws-create-user"),
    (
        "AWS.SecretsManager.BatchRetrieveSecrets",
        "kw-aws-secrets-batch-retrieval",
    ),
    (
        "AWS.SecretsManager.BatchRetrieveSecretsCatchAll",
        "kw-aws-secrets-batch-retrieval",
    ),
    (
        "AWS.CloudTrail.IMDSCredentialExfiltration",
        "kw-aws-instance-credentials-recon",
    ),
    // Its tests all rely on mocks: listed for the record, none runs.
    (
        "AWS.Console.LoginWithoutMFA",
        "kw-aws-console-login-without-mfa",
    ),
    // Amazon.EKS.Audit
    ("Kubernetes.Pod.Exec", "kw-k8s-exec-attach"),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "kw-k8s-cluster-admin-binding",
    ),
    ("Kubernetes.Role.Wildcard", "kw-k8s-wildcard-role"),
    ("Kubernetes.Secrets.DumpAllNamespaces", "kw-k8s-secret-dump"),
    (
        "Kubernetes.ServiceAccount.TokenCreated",
        "kw-k8s-token-creation",
    ),
    (
        "Kubernetes.ClientCertificate.Created",
        "kw-k8s-client-certificate",
    ),
    ("Amazon.EKS.AnonymousAPIAccess", "kw-k8s-anonymous-access"),
    ("Kubernetes.API.AnonymousAccess", "kw-k8s-anonymous-access"),
];

/// (Panther rule, test name, why the built-in rule decides otherwise).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "AWS.CloudTrail.EventSelectorsDisabled",
        "Event Selector Enabled",
        "kw-aws-cloudtrail-tampering reports every PutEventSelectors: it does not read the selectors to tell a widening from a narrowing",
    ),
    (
        "AWS.SecretsManager.BatchRetrieveSecretsCatchAll",
        "BatchGetSecretValue Catch-All with other filters",
        "kw-aws-secrets-batch-retrieval reports every batch retrieval, whatever its filter; Panther's rule is about one catch-all filter trick",
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "RoleBinding (not ClusterRoleBinding)",
        "a RoleBinding to cluster-admin gives full control of the namespace, its secrets and service-account tokens: kw-k8s-cluster-admin-binding reports it",
    ),
    (
        "Kubernetes.Role.Wildcard",
        "Updating existing role (not creating)",
        "kw-k8s-wildcard-role reports updates too: a role updated to wildcards grants what a new one would",
    ),
    (
        "Amazon.EKS.AnonymousAPIAccess",
        "ELB Health Check from Public IP",
        "health endpoints are public by design: kw-k8s-anonymous-access ignores /healthz, /livez, /readyz whoever probes them",
    ),
    (
        "Amazon.EKS.AnonymousAPIAccess",
        "Anonymous API Access Web Scanner Denied",
        "kw-k8s-anonymous-access reports anonymous requests that were allowed; refused ones are the internet's background scanning",
    ),
];

/// Panther's hand-made samples leave out the fields their own rule does not read, some of
/// which every real record has and the normalizers require: a missing timestamp gets a
/// fixed one, and an audit event without a verb gets `get` (they are all plain reads:
/// health checks, `GET /version`, `GET` of a pod). No built-in rule mapped here reads
/// either field on those samples.
fn with_time(mut e: Value, source: SourceKind) -> Value {
    if let Value::Object(m) = &mut e {
        m.retain(|k, _| !k.starts_with("p_"));
        match source {
            SourceKind::K8sAudit => {
                let has = ["requestReceivedTimestamp", "stageTimestamp", "timestamp"]
                    .iter()
                    .any(|k| m.get(*k).is_some_and(|v| !v.is_null()));
                if !has {
                    m.insert(
                        "requestReceivedTimestamp".into(),
                        "2024-01-01T00:00:00Z".into(),
                    );
                }
                m.entry("verb").or_insert_with(|| "get".into());
            }
            _ => {
                if m.get("eventTime").is_none_or(Value::is_null) {
                    m.insert("eventTime".into(), "2024-01-01T00:00:00Z".into());
                }
            }
        }
    }
    e
}

/// Whether `rule` fires on the one event; `Err` when the event cannot be read.
fn fires(
    catalog: &Catalog,
    source: SourceKind,
    event: &Value,
    rule: &str,
) -> Result<bool, testing::ExampleError> {
    let bytes = serde_json::to_vec(event).unwrap();
    let (event, raw, known) = testing::normalize(source, &bytes)?;
    let mut det = Detector::new(catalog.clone(), Default::default()).unwrap();
    det.on_event(&event, &raw, &known, &NoLookup);
    det.close_hours();
    Ok(det.take_findings().iter().any(|f| f.rule_id == rule))
}

#[test]
fn panther_labelled_events() {
    let Some(root) = keyward_testkit::corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let catalog = Catalog::builtin();
    let dir = root.join("panther-labelled-events/events");
    let mut agree: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut differ = Vec::new();
    let mut skipped_mocks = 0;
    for (file, source) in [
        ("AWS.CloudTrail.jsonl", SourceKind::Cloudtrail),
        ("Amazon.EKS.Audit.jsonl", SourceKind::K8sAudit),
    ] {
        for line in std::fs::read_to_string(dir.join(file)).unwrap().lines() {
            let t: Value = serde_json::from_str(line).unwrap();
            let Some(&(panther, ours)) = MAPPING.iter().find(|(p, _)| t["rule_id"] == *p) else {
                continue;
            };
            if t["has_mocks"].as_bool().unwrap_or(false) {
                skipped_mocks += 1;
                continue;
            }
            let name = t["test_name"].as_str().unwrap().to_owned();
            let expected = t["expected_result"].as_bool().unwrap();
            let event = with_time(t["event"].clone(), source);
            let outcome = fires(&catalog, source, &event, ours);
            let listed = EXCEPTIONS
                .iter()
                .find(|(p, n, _)| *p == panther && *n == name);
            println!("{panther} / {name}: expected {expected}, {ours} {outcome:?}");
            match (outcome, listed) {
                (Ok(got), None) if got == expected => {
                    let e = agree.entry(ours).or_default();
                    if expected { e.0 += 1 } else { e.1 += 1 }
                }
                (Ok(got), Some((_, _, why))) if got != expected => {
                    differ.push((panther, name, *why))
                }
                (got, _) => panic!(
                    "{panther} / {name}: Panther expects {expected}, {ours} gives {got:?}; \
                     EXCEPTIONS says {listed:?}"
                ),
            }
        }
    }
    assert_eq!(
        differ.len(),
        EXCEPTIONS.len(),
        "an exception no longer applies"
    );
    let (pos, neg) = agree.values().fold((0, 0), |(p, n), (a, b)| (p + a, n + b));
    for (rule, (p, n)) in &agree {
        println!("{rule}: agrees on {p} positive and {n} negative tests");
    }
    println!(
        "agreement on {pos} positive and {neg} negative tests; {} exceptions; {skipped_mocks} tests with mocks skipped",
        differ.len()
    );
    // docs/detection-coverage.md quotes these numbers.
    assert_eq!(
        (pos, neg, differ.len(), skipped_mocks),
        (32, 52, 6, 11),
        "update docs/detection-coverage.md"
    );
}
