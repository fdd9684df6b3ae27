#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every rule of the SigmaHQ cloud corpus loads, or is listed with the exact reason.

use keyward_detect::rules::{Catalog, Form};

#[test]
fn sigma_cloud_corpus_loads() {
    let Some(root) = keyward_testkit::corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let dir = root.join("sigma-cloud-rules");
    let mut c = Catalog::default();
    c.add_path(&dir);
    for p in &c.problems {
        println!("problem: {} — {}", p.path, p.reason);
    }
    let files: std::collections::BTreeSet<&str> =
        c.rules.iter().map(|r| r.origin.as_str()).collect();
    println!(
        "{} rules from {} files; {} problems",
        c.rules.len(),
        files.len(),
        c.problems.len()
    );
    for r in c.rules.iter().filter(|r| r.note.is_some()) {
        println!(
            "rewritten: {} {:?} {}",
            r.origin,
            r.form,
            r.note.as_deref().unwrap_or("")
        );
    }
    assert_eq!(files.len() + c.problems.len(), 309);
    // The two rules Sigma itself cannot express: aggregations with no time window.
    let mut unloaded: Vec<(String, String)> = c
        .problems
        .iter()
        .map(|p| {
            (
                p.path.rsplit('/').next().unwrap().to_owned(),
                p.reason.clone(),
            )
        })
        .collect();
    unloaded.sort();
    assert_eq!(
        unloaded,
        [
            (
                "aws_lambda_function_created_or_invoked.yml".to_owned(),
                "aggregation `selection1 | near selection2` without `timeframe`".to_owned()
            ),
            (
                "azure_aad_secops_signin_failure_bad_password_threshold.yml".to_owned(),
                "aggregation `selection and not filter_computer | count(TargetUserName) by IpAddress > 10` without `timeframe`".to_owned()
            ),
        ]
    );
    let cloudtrail = c
        .rules
        .iter()
        .filter(|r| r.origin.contains("/rules/cloud/aws/") && r.form == Form::Sigma)
        .count();
    assert_eq!(cloudtrail, 57);
    keyward_detect::Detector::new(c, Default::default()).unwrap();
}
