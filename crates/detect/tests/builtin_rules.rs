#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every built-in rule loads and passes its own examples.

use keyward_detect::{Catalog, testing};

#[test]
fn builtin_rules_pass_their_examples() {
    let c = Catalog::builtin();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let outcomes = testing::run(&c, None);
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &outcomes {
        println!(
            "{} {} {}: {}",
            if o.passed { "ok  " } else { "FAIL" },
            o.rule,
            o.example,
            o.message
        );
    }
    assert!(failed.is_empty(), "{failed:#?}");
    // Every Keyward rule has at least one example and one negative example.
    for (id, f) in &c.files {
        assert!(!f.examples.is_empty(), "{id} has no example");
        assert!(
            !f.negative_examples.is_empty(),
            "{id} has no negative example"
        );
    }
}

/// A correlation finding lists the events of its window as evidence: the correlation
/// engine keeps only event references (`id`), handed to it without parsing the record.
#[test]
fn correlation_findings_list_their_window_as_evidence() {
    use keyward_detect::{Detector, NoLookup, Settings};
    use keyward_model::SourceKind;

    let c = Catalog::builtin();
    let rule = "kw-aws-secrets-bulk-retrieval";
    let example = c.files[rule].examples[0].clone();
    let mut det = Detector::new(c, Settings::default()).unwrap();
    let mut ids = Vec::new();
    for raw in example.events() {
        ids.push(raw["eventID"].as_str().unwrap().to_owned());
        let bytes = serde_json::to_vec(raw).unwrap();
        let (event, bytes, known) = testing::normalize(SourceKind::Cloudtrail, &bytes).unwrap();
        det.on_event(&event, &bytes, &known, &NoLookup);
    }
    assert_eq!(ids.len(), 10);
    let findings = det.take_findings();
    let f = findings.iter().find(|f| f.rule_id == rule).unwrap();
    let mut got = f.events.clone();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "{f:#?}");
}

/// A Sigma correlation counts its rule's matches, referenced by name; the rule reports on
/// its own only with `generate: true`. A rule no correlation counts always reports.
#[test]
fn sigma_correlations_count_their_rules_and_keep_them_quiet_unless_generated() {
    use keyward_detect::{Detector, NoLookup, Settings};
    use keyward_model::SourceKind;

    let rules = |generate: bool| {
        format!(
            r#"title: Parameter read
id: 3c2b3f0e-6d0f-4d53-9a0e-111111111111
name: parameter_read
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection: {{eventName: GetParameter}}
  condition: selection
level: low
---
title: Secret read
id: 3c2b3f0e-6d0f-4d53-9a0e-222222222222
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection: {{eventName: GetSecretValue}}
  condition: selection
level: low
---
title: Many parameter reads
id: 3c2b3f0e-6d0f-4d53-9a0e-333333333333
correlation:
  type: event_count
  rules: [parameter_read]
  group-by: [userIdentity.arn]
  timespan: 1m
  condition: {{gte: 3}}
  generate: {generate}
level: high
"#
        )
    };
    let event = |n: u32, name: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventID":"e{n}","eventTime":"2026-11-10T08:00:0{n}Z","eventSource":"ssm.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/app","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"app"}}}}"#
        )
    };
    for generate in [false, true] {
        let mut c = keyward_detect::Catalog::default();
        c.add_text("test.yml", &rules(generate));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let mut det = Detector::new(c, Settings::default()).unwrap();
        for n in 1..=4 {
            let raw = event(
                n,
                if n < 4 {
                    "GetParameter"
                } else {
                    "GetSecretValue"
                },
            );
            let (e, raw, known) =
                testing::normalize(SourceKind::Cloudtrail, raw.as_bytes()).unwrap();
            det.on_event(&e, &raw, &known, &NoLookup);
        }
        let mut fired: Vec<(String, u64)> = det
            .take_findings()
            .into_iter()
            .map(|f| (f.title, f.count))
            .collect();
        fired.sort();
        let mut want = vec![
            ("Many parameter reads".to_owned(), 1),
            ("Secret read".to_owned(), 1),
        ];
        if generate {
            want.push(("Parameter read".to_owned(), 3));
            want.sort();
        }
        assert_eq!(fired, want, "generate: {generate}");
    }
}
