#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Falco's Kubernetes-audit regression cases (../shared/corpora/falco-k8s-audit): wherever
//! the Falco rule a case expects has a Keyward counterpart of the same intent, the built-in
//! rule fires on the case's trace file; and no built-in rule fires on a case Falco expects
//! silence from.

use std::collections::BTreeSet;
use std::path::Path;

use keyward_detect::{Catalog, Detector, NoLookup, detector::ANOMALY_RULE, testing};
use keyward_model::SourceKind;
use serde_json::Value;

/// Falco k8saudit rule (0.6.0 names) → the built-in rule with the same intent.
const MAPPING: &[(&str, &str)] = &[
    ("Attach/Exec Pod", "kw-k8s-exec-attach"),
    (
        "Attach to cluster-admin Role",
        "kw-k8s-cluster-admin-binding",
    ),
    ("ClusterRole With Wildcard Created", "kw-k8s-wildcard-role"),
    ("K8s Namespace Deleted", "kw-k8s-namespace-deletion"),
    ("Anonymous Request Allowed", "kw-k8s-anonymous-access"),
];

/// The cases where Falco must stay silent, and why. Most load an allow-list or trust rule
/// (`allow_*.yaml`, `trust_*.yaml`, `disallow_kactivity.yaml`) that makes an otherwise
/// matching Falco rule skip the event: they test Falco's exception handling, not a
/// detection. The rest are near misses of Falco rules about pods, services and config
/// maps, which no Keyward rule covers. Either way no built-in rule may fire on them.
const SILENT: &[(&str, &str)] = &[
    (
        "compat_engine_v4_create_allowed_pod",
        "allow-list: nginx image allowed",
    ),
    (
        "compat_engine_v4_create_privileged_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    (
        "compat_engine_v4_create_unprivileged_pod",
        "near miss: unprivileged pod",
    ),
    (
        "compat_engine_v4_create_hostnetwork_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    ("user_in_allowed_set", "allow-list: user some-user allowed"),
    ("create_allowed_pod", "allow-list: nginx image allowed"),
    (
        "create_privileged_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    ("create_unprivileged_pod", "near miss: unprivileged pod"),
    (
        "create_unprivileged_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    (
        "create_sensitive_mount_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    (
        "create_unsensitive_mount_pod",
        "near miss: no sensitive mount",
    ),
    (
        "create_unsensitive_mount_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    (
        "create_hostnetwork_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    ("create_nohostnetwork_pod", "near miss: no host network"),
    (
        "create_nohostnetwork_trusted_pod",
        "allow-list: trusted nginx container",
    ),
    ("create_nonodeport_service", "near miss: ClusterIP service"),
    (
        "create_configmap_no_private_creds",
        "near miss: config map without credentials",
    ),
    (
        "namespace_in_allowed_set",
        "allow-list: namespace foo allowed",
    ),
    (
        "create_service_account_token_secret",
        "exception of `K8s Secret Created`: the token controller's own secret (kw-k8s-token-creation skips it too)",
    ),
    (
        "create_kube_system_secret",
        "exception of `K8s Secret Created`: kube-system secret",
    ),
    (
        "fal_01_003",
        "malformed event (`{\"kind\": 0}`): must be rejected, not matched",
    ),
];

/// Every built-in rule that fires on a trace file (one audit event per line).
fn fired(catalog: &Catalog, path: &Path) -> (BTreeSet<String>, usize) {
    let mut det = Detector::new(catalog.clone(), Default::default()).unwrap();
    let mut out = BTreeSet::new();
    let mut unreadable = 0;
    for line in std::fs::read_to_string(path).unwrap().lines() {
        if line.trim().is_empty() {
            continue;
        }
        match testing::normalize(SourceKind::K8sAudit, line.as_bytes()) {
            Ok((event, raw, known)) => det.on_event(&event, &raw, &known, &NoLookup),
            Err(_) => unreadable += 1,
        }
    }
    det.close_hours();
    out.extend(det.take_findings().into_iter().map(|f| f.rule_id));
    out.remove(ANOMALY_RULE);
    (out, unreadable)
}

#[test]
fn falco_k8s_audit_cases() {
    let Some(root) = keyward_testkit::corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let base = root.join("falco-k8s-audit");
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(base.join("expected_detections.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 66);
    let catalog = Catalog::builtin();
    let mut mapped = 0;
    let mut silent = 0;
    let mut seen_silent = BTreeSet::new();
    for case in &cases {
        let name = case["test"].as_str().unwrap();
        let trace = base.join(case["trace_file"].as_str().unwrap());
        let (rules, unreadable) = fired(&catalog, &trace);
        if case["detect"].as_bool().unwrap() {
            let expected: Vec<&str> = case["detect_counts"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|m| m.as_object().unwrap().keys())
                .filter_map(|falco| MAPPING.iter().find(|(f, _)| f == falco).map(|(_, k)| *k))
                .collect();
            for kw in expected {
                println!("{name}: expects {kw}, fired {rules:?}");
                assert!(
                    rules.contains(kw),
                    "{name}: {kw} did not fire (fired: {rules:?})"
                );
                mapped += 1;
            }
        } else {
            let why = SILENT
                .iter()
                .find(|(t, _)| *t == name)
                .unwrap_or_else(|| panic!("{name}: a silent case with no reason in SILENT"));
            println!("{name}: silent ({}), fired {rules:?}", why.1);
            assert!(rules.is_empty(), "{name}: built-in rules fired: {rules:?}");
            if name == "fal_01_003" {
                assert_eq!(unreadable, 1, "the malformed event must be rejected");
            }
            silent += 1;
            seen_silent.insert(name);
        }
    }
    assert_eq!(
        seen_silent.len(),
        SILENT.len(),
        "SILENT names a case that is not silent"
    );
    println!("{mapped} mapped detections asserted, {silent} silent cases checked");
    assert_eq!(mapped, 7);
    assert_eq!(silent, 21);
}
