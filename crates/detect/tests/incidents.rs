#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! One alert per incident, and routine is not an alert:
//! - repeats of a rule by one identity extend its open finding, however far apart and
//!   whatever they touched;
//! - a match repeating what the identity did in every week of its training window is
//!   recorded as `expected` (and turns the open finding expected), unless the rule is
//!   marked `always`;
//! - anomalous hours no more than a day apart are one behavioural finding.

use keyward_detect::{Catalog, Detector, Finding, NoLookup, Settings, Status, testing};
use keyward_model::SourceKind;

const DAY: i64 = 86_400_000;
/// 2026-11-02T09:00:00Z, a Monday.
const START: i64 = 1_793_610_000_000;

fn stamp(ms: i64) -> String {
    keyward_model::time::format(ms)
}

/// A cluster-wide list of Secrets (`kw-k8s-secret-dump`) by `user`.
fn list_secrets(n: u32, at: i64, user: &str) -> Vec<u8> {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-4000-8000-{n:012}","stage":"ResponseComplete","requestURI":"/api/v1/secrets?limit=500","verb":"list","user":{{"username":"{user}","uid":"u-1","groups":["system:serviceaccounts"]}},"sourceIPs":["10.0.3.7"],"userAgent":"cert-manager/v1.14","objectRef":{{"resource":"secrets","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{t}","stageTimestamp":"{t}"}}"#,
        t = stamp(at)
    )
    .into_bytes()
}

/// A binding of `cluster-admin` (`kw-k8s-cluster-admin-binding`, marked `always`).
fn bind_cluster_admin(n: u32, at: i64, user: &str) -> Vec<u8> {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"00000000-0000-4000-9000-{n:012}","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create","user":{{"username":"{user}","uid":"u-1"}},"sourceIPs":["10.0.3.7"],"userAgent":"helm/3.14","objectRef":{{"resource":"clusterrolebindings","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1","name":"b-{n}"}},"requestObject":{{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{{"name":"b-{n}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}},"subjects":[{{"kind":"ServiceAccount","name":"x","namespace":"default"}}]}},"responseStatus":{{"code":201}},"requestReceivedTimestamp":"{t}","stageTimestamp":"{t}"}}"#,
        t = stamp(at)
    )
    .into_bytes()
}

fn feed(d: &mut Detector, raw: &[u8]) {
    let (e, raw, known) = testing::normalize(SourceKind::K8sAudit, raw).unwrap();
    d.on_event(&e, &raw, &known, &NoLookup);
}

fn of_rule(found: &[Finding], rule: &str) -> Vec<Finding> {
    found
        .iter()
        .filter(|f| f.rule_id == rule)
        .cloned()
        .collect()
}

const ADDON: &str = "system:serviceaccount:cert-manager:cert-manager";

/// Every day for three weeks the add-on lists secrets cluster-wide, as it does by design:
/// one finding, open while its baseline trains, then expected; never a second one.
#[test]
fn routine_behaviour_becomes_expected_and_stays_one_finding() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let mut n = 0;
    let mut taken = Vec::new();
    for day in 0..21 {
        for hour in [0, 6, 12] {
            n += 1;
            feed(
                &mut d,
                &list_secrets(n, START + day * DAY + hour * 3_600_000, ADDON),
            );
        }
        taken.extend(of_rule(&d.take_findings(), "kw-k8s-secret-dump"));
        if day == 3 {
            // Still training: an open alert.
            assert_eq!(taken.last().unwrap().status, Status::Open);
        }
    }
    let ids: std::collections::BTreeSet<&str> = taken.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one incident, one finding: {ids:?}");
    let last = taken.last().unwrap();
    assert_eq!(last.status, Status::Expected);
    assert_eq!(last.count, 63);
    assert_eq!(last.first_seen, START);
    assert!(
        last.details["expected"]
            .as_str()
            .unwrap()
            .contains("training window")
    );
    // The evidence is a capped sample; the count is the total.
    assert!(last.events.len() <= keyward_detect::finding::MAX_EVIDENCE);
}

/// Matching only in the first week of training is not a pattern of life: after training,
/// the finding stays open.
#[test]
fn behaviour_missing_from_a_training_week_is_not_routine() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let other = "system:serviceaccount:tools:backup";
    let mut n = 0;
    // It is active every day (so its baseline trains), and listed secrets only in week 1.
    for day in 0..21 {
        n += 1;
        let raw = if day < 7 || day == 18 {
            list_secrets(n, START + day * DAY, other)
        } else {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"00000000-0000-4000-a000-{n:012}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/tools/configmaps","verb":"list","user":{{"username":"{other}"}},"sourceIPs":["10.0.3.7"],"objectRef":{{"resource":"configmaps","namespace":"tools","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{t}","stageTimestamp":"{t}"}}"#,
                t = stamp(START + day * DAY)
            )
            .into_bytes()
        };
        feed(&mut d, &raw);
    }
    let dumps = of_rule(&d.take_findings(), "kw-k8s-secret-dump");
    assert_eq!(dumps.len(), 1);
    assert_eq!(dumps[0].status, Status::Open);
    assert_eq!(dumps[0].count, 8);
}

/// A rule marked `always` alerts however routine the behaviour.
#[test]
fn always_rules_are_never_routine() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let installer = "system:serviceaccount:ci:helm-installer";
    for day in 0..21 {
        let n = u32::try_from(day).unwrap();
        feed(&mut d, &bind_cluster_admin(n, START + day * DAY, installer));
    }
    let bindings = of_rule(&d.take_findings(), "kw-k8s-cluster-admin-binding");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].status, Status::Open);
    assert_eq!(bindings[0].count, 21);
}

/// A person reopening an expected finding overrides the pattern of life for it.
#[test]
fn a_reopened_expected_finding_stays_open() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let mut n = 0;
    for day in 0..16 {
        n += 1;
        feed(&mut d, &list_secrets(n, START + day * DAY, ADDON));
    }
    let mut f = of_rule(&d.take_findings(), "kw-k8s-secret-dump")
        .pop()
        .unwrap();
    assert_eq!(f.status, Status::Expected);
    f.status = Status::Open;
    f.details[keyward_detect::detector::OVERRIDDEN] = true.into();
    d.set_status(&f);
    n += 1;
    feed(&mut d, &list_secrets(n, START + 17 * DAY, ADDON));
    let again = of_rule(&d.take_findings(), "kw-k8s-secret-dump")
        .pop()
        .unwrap();
    assert_eq!(again.id, f.id);
    assert_eq!(again.status, Status::Open);
}

/// One event, one alert: an event two rules match (a trust policy rewritten to trust
/// another account: a backdoored role and a trust change) is one finding naming both;
/// the second rule's later matches extend it.
#[test]
fn two_rules_on_one_event_are_one_finding() {
    let catalog = Catalog::builtin();
    // The trust-policy rule's first example: the Stratus iam-backdoor-role detonation.
    let example = catalog.files["kw-aws-trust-policy-change"].examples[0].events()[0].clone();
    let mut d = Detector::new(catalog, Settings::default()).unwrap();
    let feed = |d: &mut Detector, v: &serde_json::Value| {
        let raw = serde_json::to_vec(v).unwrap();
        let (e, raw, known) = testing::normalize(SourceKind::Cloudtrail, &raw).unwrap();
        d.on_event(&e, &raw, &known, &NoLookup);
    };
    feed(&mut d, &example);
    let found = d.take_findings();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    let mut rules = vec![f.rule_id.clone()];
    rules.extend(
        f.details["also"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned()),
    );
    rules.sort();
    assert_eq!(
        rules,
        ["kw-aws-backdoor-role", "kw-aws-trust-policy-change"]
    );
    // The same change again, an hour later: the same finding, counted.
    let mut again = example.clone();
    again["eventID"] = "6a1b2c3d-0000-4000-8000-000000000002".into();
    let t = keyward_model::time::parse(again["eventTime"].as_str().unwrap()).unwrap();
    again["eventTime"] = stamp(t + 3_600_000).into();
    feed(&mut d, &again);
    let later = d.take_findings();
    assert_eq!(later.len(), 1, "{later:#?}");
    assert_eq!(later[0].id, f.id);
    assert_eq!(later[0].count, 2);
}

/// Exceptions as data: a file of exceptions (as `findings except` writes it) keeps the
/// add-on's matches from being reported, by identity glob or by network, and only those.
#[test]
fn exceptions_keep_who_a_rule_is_not_about_out() {
    let mut catalog = Catalog::builtin();
    let file = keyward_detect::exceptions::File {
        exceptions: vec![keyward_detect::exceptions::Exception {
            rule: Some("kw-k8s-secret-dump".into()),
            name: "cert-manager reads certificates everywhere".into(),
            identities: vec!["*:serviceaccount:cert-manager:*".into()],
            namespaces: vec![],
            accounts: vec![],
            networks: vec!["10.0.0.0/8".into()],
            note: Some("SEC-1".into()),
        }],
    };
    let text = serde_saphyr::to_string(&file).unwrap();
    catalog.add_text("exceptions.yml", &text);
    assert!(
        catalog.problems.is_empty(),
        "{:?}\n{text}",
        catalog.problems
    );
    assert_eq!(
        catalog.get("kw-k8s-secret-dump").unwrap().exceptions.len(),
        1
    );
    let mut d = Detector::new(catalog, Settings::default()).unwrap();
    feed(&mut d, &list_secrets(1, START, ADDON));
    assert!(d.take_findings().is_empty());
    assert_eq!(d.excepted, 1);
    // Another identity is reported …
    feed(
        &mut d,
        &list_secrets(2, START + 1_000, "system:serviceaccount:web:api"),
    );
    assert_eq!(of_rule(&d.take_findings(), "kw-k8s-secret-dump").len(), 1);
    // … and so is the add-on from outside the network the exception names.
    let outside = String::from_utf8(list_secrets(3, START + 2_000, ADDON))
        .unwrap()
        .replace("10.0.3.7", "203.0.113.9");
    feed(&mut d, outside.as_bytes());
    assert_eq!(of_rule(&d.take_findings(), "kw-k8s-secret-dump").len(), 1);
}

/// An exception that would except everything, names an unknown rule or sits in a rule
/// file naming another rule is refused with why.
#[test]
fn unusable_exceptions_are_refused() {
    let mut catalog = Catalog::builtin();
    catalog.add_text(
        "x.yml",
        "exceptions:\n  - rule: kw-k8s-secret-dump\n    name: all\n  - rule: kw-nope\n    name: n\n    accounts: ['1']\n  - name: norule\n    accounts: ['1']\n",
    );
    let reasons: Vec<&str> = catalog.problems.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("would except everything"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("no rule `kw-nope`"), "{reasons:?}");
    assert!(reasons[2].contains("needs `rule:`"), "{reasons:?}");
    let before = catalog.problems.len();
    catalog.add_text(
        "r.yml",
        "id: kw-test-copy\ntitle: t\nseverity: low\nsource: kubernetes/audit\ncheck: {type: new-region}\nexceptions:\n  - rule: kw-k8s-secret-dump\n    name: other\n    accounts: ['1']\n",
    );
    assert_eq!(catalog.problems.len(), before + 1);
    assert!(
        catalog.problems[before]
            .reason
            .contains("cannot name another rule")
    );
}
