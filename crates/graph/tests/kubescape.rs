//! Kubernetes RBAC risky-access checks against the kubescape fixtures
//! (`../shared/corpora/k8s-rbac-posture-kubescape`): for every control Keyward implements
//! and every test case of it, the subjects we flag must be exactly the subjects kubescape's
//! `expected.json` alerts on. Controls not implemented are listed in
//! `docs/k8s-rbac-coverage.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyward_graph::k8s::{CHECKS, Rbac, risky_access};
use serde_json::Value;

use keyward_testkit::corpora;

fn objects(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if f.extension().is_some_and(|e| e == "json") {
            out.push(serde_json::from_str(&text).unwrap());
        } else {
            for doc in text.split("\n---") {
                if doc.trim().is_empty() {
                    continue;
                }
                let opts = serde_saphyr::options! { strict_booleans: true };
                out.push(serde_saphyr::from_str_with_options::<Value>(doc, opts).unwrap());
            }
        }
    }
    out
}

#[test]
fn implemented_controls_match_kubescape() {
    let Some(c) = corpora() else { return };
    let root = c.join("k8s-rbac-posture-kubescape/rules");
    let mut controls: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    controls.push("rule-list-all-cluster-admins-v1");
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for control in &controls {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(control).join("test"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for case in dirs {
            let expected: Vec<Value> =
                serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                    .unwrap();
            let want: BTreeSet<String> = expected
                .iter()
                .filter_map(|a| {
                    a.pointer("/alertObject/externalObjects/name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            let objs = objects(&case.join("input"));
            let rbac = Rbac::new(&objs);
            let got: BTreeSet<String> = risky_access(&rbac)
                .into_iter()
                .filter(|f| f.check == *control)
                .map(|f| f.grant.subject.name)
                .collect();
            if got != want {
                mismatches.push(format!(
                    "{control}/{}: kubescape {want:?}, keyward {got:?}",
                    case.file_name().unwrap().to_string_lossy()
                ));
            }
            cases += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {cases} cases differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(cases >= 40, "{cases} cases");
}

/// The names kubescape alerts on: the flagged API objects, else the external subject.
fn alerted(expected: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in expected {
        let objs = a
            .pointer("/alertObject/k8sApiObjects")
            .and_then(Value::as_array)
            .filter(|o| !o.is_empty());
        match objs {
            Some(objs) => out.extend(
                objs.iter()
                    .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
                    .map(str::to_owned),
            ),
            None => out.extend(
                a.pointer("/alertObject/externalObjects/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
        }
    }
    out
}

#[test]
fn posture_controls_match_kubescape() {
    let Some(c) = corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let root = c.join("k8s-rbac-posture-kubescape/rules");
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for (control, _) in keyward_graph::k8s_posture::POSTURE {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(control).join("test"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for case in dirs {
            let expected: Vec<Value> =
                serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                    .unwrap();
            let want = alerted(&expected);
            let objs = objects(&case.join("input"));
            let got: BTreeSet<String> = keyward_graph::k8s_posture::posture(&objs)
                .into_iter()
                .filter(|f| f.check == *control)
                .map(|f| f.name)
                .collect();
            if got != want {
                mismatches.push(format!(
                    "{control}/{}: kubescape {want:?}, keyward {got:?}",
                    case.file_name().unwrap().to_string_lossy()
                ));
            }
            cases += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(cases, 35, "posture cases run");
}
