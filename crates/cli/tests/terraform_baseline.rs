//! Baselines approved from Terraform, through the CLI on the bundled example estate: its
//! Terraform matches what was observed (no drift); a copy that does not declare one of the
//! attached policies makes that policy drift (`keyward drift` exits 1 and names it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{estate, keyward, text};

fn run(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = keyward(data, args);
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.code(), shown)
}

#[test]
fn a_policy_terraform_does_not_declare_is_drift() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tf = estate().join("terraform");
    let (code, shown) = run(
        &data,
        &["ingest", "--no-detect", estate().to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{shown}");

    let (code, shown) = run(
        &data,
        &[
            "baseline",
            "approve",
            "--from-terraform",
            tf.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(
            "approved  arn:aws:iam::111122223333:role/ec2-web-app  (aws_iam_role.ec2_web_app "
        ),
        "{shown}"
    );
    let (code, shown) = run(&data, &["drift"]);
    assert_eq!(
        code,
        Some(0),
        "the estate's Terraform is what was observed: {shown}"
    );

    // The same Terraform without the web app's S3 policy attachment.
    let full = std::fs::read_to_string(tf.join("iam.tf")).unwrap();
    let block = "resource \"aws_iam_role_policy_attachment\" \"ec2_web_app_web_app_s3_read\" {";
    let start = full.find(block).unwrap();
    let end = start + full[start..].find("\n}\n").unwrap() + 3;
    let fewer = dir.path().join("fewer.tf");
    std::fs::write(&fewer, format!("{}{}", &full[..start], &full[end..])).unwrap();
    let (code, shown) = run(
        &data,
        &[
            "baseline",
            "approve",
            "--from-terraform",
            fewer.to_str().unwrap(),
            "ec2-web-app",
        ],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("approved 1 of 1 identities"), "{shown}");

    let (code, shown) = run(&data, &["drift"]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "arn:aws:iam::111122223333:role/ec2-web-app  attached_policies  (baseline: terraform:{})",
            fewer.display()
        )),
        "{shown}"
    );
    assert!(
        shown.contains("  added:   arn:aws:iam::111122223333:policy/web-app-s3-read"),
        "{shown}"
    );
    assert!(shown.contains("1 drifts"), "{shown}");

    let (code, shown) = run(&data, &["baseline", "list"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("terraform:"), "{shown}");
}

#[test]
fn terraform_that_does_not_parse_approves_nothing_and_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("bad.tf");
    std::fs::write(&bad, "resource \"aws_iam_role\" \"r\" {\n  name = \n").unwrap();
    let (code, shown) = run(
        &data,
        &[
            "baseline",
            "approve",
            "--from-terraform",
            bad.to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0), "{shown}");
    assert!(
        shown.contains(&format!("`{}` line ", bad.display())),
        "{shown}"
    );
}
