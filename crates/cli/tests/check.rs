//! `keyward check` through the binary: exit codes, the JSON report, SARIF that GitHub code
//! scanning accepts (checked structurally), `--baseline`, and a run over third-party
//! policies and manifests from the corpora.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check")
}

/// Runs `keyward check ARGS` in `dir`.
fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir)
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `RULE file` of every problem.
fn found(report: &Value) -> BTreeSet<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["rule"].as_str().unwrap(),
                p["file"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn fixtures_report_the_bad_files_and_nothing_in_the_clean_ones() {
    let out = check(&fixtures(), &[".", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    let expected: BTreeSet<String> = [
        "KW-CHECK-007 infra/iam.tf",
        "KW-CHECK-009 infra/iam.tf",
        "KW-CHECK-001 infra/iam.tf",
        "KW-CHECK-008 infra/iam.tf",
        "KW-CHECK-003 policies/passrole.json",
        "KW-CHECK-002 policies/passrole.json",
        "KW-CHECK-005 policies/trust.json",
        "KW-CHECK-010 k8s/rbac.yaml",
        "KW-CHECK-011 k8s/rbac.yaml",
        "KW-CHECK-012 k8s/rbac.yaml",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(found(&report), expected);
    // Two `KW-CHECK-009`: the role lacks `team`, the user both tags.
    assert_eq!(report["summary"]["problems"], 11, "{report:#}");
    assert_eq!(report["summary"]["files"], 7);
    assert_eq!(report["errors"], serde_json::json!([]));
    let admin = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["rule"] == "KW-CHECK-001")
        .unwrap();
    assert_eq!(admin["line"], 27, "{admin:#}");
    assert_eq!(
        admin["key"],
        "aws_iam_policy.admin/policy/statement:Everything/action:*"
    );
    assert_eq!(admin["severity"], "high");

    // The clean files alone: exit 0, and the text form says so.
    let out = check(
        &fixtures(),
        &[
            "infra/clean.tf",
            "policies/readonly.json",
            "k8s/app.yaml",
            "k8s/rbac.yaml",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("k8s/rbac.yaml:12:9: KW-CHECK-010 [high]"),
        "{text}"
    );
    let out = check(
        &fixtures(),
        &["infra/clean.tf", "policies/readonly.json", "k8s/app.yaml"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sarif_is_what_code_scanning_accepts() {
    let out = check(
        &fixtures(),
        &["infra", "policies", "k8s", "--format", "sarif"],
    );
    assert_eq!(out.status.code(), Some(1));
    let log = json_of(&out);
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    for field in ["name", "version", "informationUri"] {
        assert!(
            !driver[field].as_str().unwrap().is_empty(),
            "driver.{field}"
        );
    }
    let rules: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(!r["shortDescription"]["text"].as_str().unwrap().is_empty());
            assert!(!r["help"]["text"].as_str().unwrap().is_empty());
            assert!(r["properties"]["security-severity"].is_string());
            r["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(rules.len(), 12);
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 11);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        assert!(rules.contains(&id), "{id} is not in rules[]");
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize], id);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            !uri.starts_with('/') && !uri.starts_with("./") && !uri.contains(':'),
            "{uri}"
        );
        assert!(fixtures().join(uri).is_file(), "{uri}");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        if let Some(c) = loc["region"].get("startColumn") {
            assert!(c.as_u64().unwrap() >= 1);
        }
        assert_eq!(
            r["partialFingerprints"]["keyward/v1"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
        assert!(r.get("baselineState").is_none());
    }
}

/// Copies the fixtures to a scratch repository.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["infra", "policies", "k8s"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for f in std::fs::read_dir(fixtures().join(sub)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.path().join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn baseline_fails_only_on_new_problems() {
    let repo = scratch();
    let dir = repo.path();
    for format in ["json", "sarif"] {
        let out = check(dir, &[".", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        let baseline = dir.join(format!("../baseline-{format}.json"));
        std::fs::write(&baseline, &out.stdout).unwrap();
        let baseline = baseline.to_str().unwrap().to_owned();

        // Unchanged: clean.
        let out = check(dir, &[".", "--baseline", &baseline]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let baseline = dir.join("../baseline-json.json");
    let baseline = baseline.to_str().unwrap();

    // Moved: the same problems on other lines are not new.
    let tf = std::fs::read_to_string(dir.join("infra/iam.tf")).unwrap();
    std::fs::write(dir.join("infra/iam.tf"), format!("\n\n\n{tf}")).unwrap();
    let out = check(dir, &[".", "--baseline", baseline, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["summary"]["failing"], 0);

    // One new problem: exit 1, and only it fails.
    std::fs::write(
        dir.join("policies/new.json"),
        r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}"#,
    )
    .unwrap();
    let out = check(dir, &[".", "--baseline", baseline, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    let failing: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["baselined"] == false)
        .collect();
    assert_eq!(failing.len(), 1, "{report:#}");
    assert_eq!(failing[0]["file"], "policies/new.json");
    let sarif = check(dir, &[".", "--baseline", baseline, "--format", "sarif"]);
    let log = json_of(&sarif);
    let states: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["baselineState"].as_str().unwrap())
        .filter(|s| *s == "new")
        .collect();
    assert_eq!(states, ["new"]);

    // A baseline that is neither: an error, not a pass.
    std::fs::write(dir.join("../bogus.json"), "[]").unwrap();
    let out = check(dir, &[".", "--baseline", "../bogus.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither"));
}

#[test]
fn unparseable_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\n  \"Statement\": [\n    {oops}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        "resource \"aws_iam_user\" \"u\" {\n  name =\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("k8s.yaml"),
        "kind: Role\nmetadata: {name: [\n",
    )
    .unwrap();
    let out = check(dir.path(), &["."]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error: broken.json:3: invalid JSON"), "{err}");
    assert!(err.contains("error: main.tf:2: invalid HCL"), "{err}");
    assert!(err.contains("error: k8s.yaml:1: invalid YAML"), "{err}");
    let out = check(dir.path(), &["nowhere"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Writes `doc` as `dir/name.json`.
fn write_policy(dir: &Path, name: &str, doc: &Value) {
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_vec_pretty(doc).unwrap(),
    )
    .unwrap();
}

#[test]
fn third_party_policies_and_manifests() {
    let Some(corpora) = keyward_testkit::corpora() else {
        return;
    };
    // Kubescape's RBAC fixtures, whole: every file read without a crash; the cluster-admin
    // bindings and wildcard roles found where kubescape says they are.
    let kubescape = corpora.join("k8s-rbac-posture-kubescape/rules");
    let out = check(&kubescape, &[".", "--format", "json"]);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{out:?}");
    let report = json_of(&out);
    let seen = found(&report);
    for bad in [
        "KW-CHECK-010 cluster-admin-role/test/clusterrole-clusterrolebinding/input/clusterrolebinding.yaml",
        "KW-CHECK-010 cluster-admin-role/test/clusterrole-rolebinding/input/rolebinding.yaml",
        "KW-CHECK-011 cluster-admin-role/test/clusterrole-clusterrolebinding/input/clusterrole.yaml",
    ] {
        assert!(seen.contains(bad), "{bad} not found in {seen:#?}");
    }
    assert!(
        report["summary"]["files"].as_u64().unwrap() > 100,
        "{}",
        report["summary"]
    );
    // An error names a file of the corpus and a line.
    for e in report["errors"].as_array().unwrap() {
        assert!(kubescape.join(e["file"].as_str().unwrap()).is_file(), "{e}");
        assert!(e["line"].as_u64().unwrap() >= 1);
    }

    // Cloudsplaining's authorization details: each policy's default version and each
    // role's trust policy as a document of its own (written to a scratch directory).
    let authz: Value = serde_json::from_slice(
        &std::fs::read(corpora.join("aws-iam-authz-small/small-authz-details.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for p in authz["Policies"].as_array().unwrap() {
        let name = p["PolicyName"].as_str().unwrap();
        let default = p["DefaultVersionId"].as_str().unwrap();
        for v in p["PolicyVersionList"].as_array().unwrap() {
            if v["VersionId"] == default {
                write_policy(dir.path(), name, &v["Document"]);
            }
        }
    }
    for r in authz["RoleDetailList"].as_array().unwrap() {
        let name = format!("trust-{}", r["RoleName"].as_str().unwrap());
        write_policy(dir.path(), &name, &r["AssumeRolePolicyDocument"]);
    }
    let out = check(dir.path(), &[".", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    let seen = found(&report);
    for bad in [
        "KW-CHECK-001 AdministratorAccess.json",
        "KW-CHECK-001 IAMFullAccess.json",
        "KW-CHECK-001 AmazonS3FullAccess.json",
        "KW-CHECK-001 PowerUserAccess.json",
        "KW-CHECK-002 PowerUserAccess.json",
    ] {
        assert!(seen.contains(bad), "{bad} not found in {seen:#?}");
    }
    assert!(
        !seen.iter().any(|s| s.ends_with(" IAMReadOnlyAccess.json")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|s| s.ends_with(" SecurityAudit.json")),
        "{seen:#?}"
    );
}
