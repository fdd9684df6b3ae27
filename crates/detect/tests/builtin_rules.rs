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
        let (event, bytes) = testing::normalize(SourceKind::Cloudtrail, &bytes).unwrap();
        det.on_event(&event, &bytes, &NoLookup);
    }
    assert_eq!(ids.len(), 10);
    let findings = det.take_findings();
    let f = findings.iter().find(|f| f.rule_id == rule).unwrap();
    let mut got = f.events.clone();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "{f:#?}");
}
