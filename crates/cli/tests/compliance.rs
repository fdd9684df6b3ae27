//! Compliance scorecards of the bundled example estate: every framework scores, a failing
//! control names the findings that decide it and each finding it cites opens with
//! `keyward findings show`; the audit chain's head it cites is in the exported log; an
//! access review (baselines approved) turns the review controls from fail to pass; every
//! run is audited and `compliance trend` reads the runs back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{estate, keyward, text};
use serde_json::Value;

fn report(data: &std::path::Path, framework: &str) -> (Value, i32) {
    let out = keyward(
        data,
        &[
            "compliance",
            "report",
            "--framework",
            framework,
            "--format",
            "json",
        ],
    );
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", text(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), code)
}

fn control<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id}: {r}"))
}

#[test]
fn the_example_estate_scores_with_evidence_that_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = keyward(&data, &["ingest", estate().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (soc2, code) = report(&data, "soc2");
    assert_eq!(code, 1, "the example estate has failing controls");
    assert!(soc2["fail"].as_u64().unwrap() >= 1, "{soc2}");
    // Least privilege fails on the estate's admin wildcards; every finding it cites opens.
    let cc61 = control(&soc2, "CC6.1");
    assert_eq!(cc61["status"], "fail", "{cc61}");
    assert!(!cc61["identities"].as_array().unwrap().is_empty());
    let mut opened = 0;
    for e in soc2["controls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["evidence"].as_array().unwrap())
        .filter(|e| e["kind"] == "finding")
        .take(20)
    {
        let id = e["reference"].as_str().unwrap();
        let shown = keyward(&data, &["findings", "show", id]);
        assert!(shown.status.success(), "{id}: {}", text(&shown.stderr));
        assert!(text(&shown.stdout).contains(id));
        opened += 1;
    }
    assert!(opened > 0, "{soc2}");
    // The audit chain it cites is the exported one.
    let audit = control(&soc2, "CC7.2")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "audit")
        .cloned()
        .expect("CC7.2 cites the audit chain");
    let seq = audit["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("audit:");
    let export = keyward(&data, &["audit", "export"]);
    assert!(
        text(&export.stdout).contains(&format!("\"seq\":{seq}")),
        "audit entry {seq} not exported"
    );

    // No access review yet: the review controls fail; approving baselines passes them.
    let (pci, _) = report(&data, "pci-dss-4");
    assert_eq!(control(&pci, "7.2.4")["status"], "fail", "{pci}");
    let out = keyward(&data, &["baseline", "approve", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (pci, _) = report(&data, "pci-dss-4");
    assert_eq!(control(&pci, "7.2.4")["status"], "pass", "{pci}");
    let (iso, _) = report(&data, "iso27001-2022");
    assert_eq!(iso["controls"].as_array().unwrap().len(), 7);

    for format in ["csv", "html", "table"] {
        let out = keyward(
            &data,
            &[
                "compliance",
                "report",
                "--framework",
                "soc2",
                "--format",
                format,
            ],
        );
        assert!(text(&out.stdout).contains("CC6.1"), "{format}");
    }

    // Every run is in the audit log, and the trend reads them back in order.
    let out = keyward(&data, &["compliance", "trend", "--format", "json"]);
    let trend: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trend.len(), 7, "{trend:?}");
    let pci_points: Vec<&Value> = trend
        .iter()
        .filter(|p| p["framework"] == "pci-dss-4")
        .collect();
    assert_eq!(pci_points.len(), 2);
    assert!(
        pci_points[1]["fail"].as_u64() < pci_points[0]["fail"].as_u64(),
        "the review lowered the failures: {pci_points:?}"
    );
}
