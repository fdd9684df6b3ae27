//! Findings in other tools' formats: SARIF 2.1.0 and OCSF 1.4 (Detection Finding, class
//! 2004, for threats; IAM Analysis Finding, class 2008, for posture).
//!
//! A posture finding's remediation becomes its SARIF result's `fixes`. SARIF describes a
//! fix as changes to files, and requires at least one (§3.55.3); the remediation changes
//! cloud and cluster state, not a file of the repository. So the fix's `description`
//! holds the steps and their commands (text and Markdown), and its one artifact change
//! creates the script of them, `keyward-remediation/<finding id>.sh` (an insertion at the
//! start of an empty file), in which the steps for after a grace period are comments.

use serde_json::{Value, json};

use crate::finding::{Finding, Kind, Severity, Status};
use crate::remediation::Remediation;
use crate::rules::Catalog;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` scale (0–10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// One SARIF log with one run; rules are those the findings reference (titles from the
/// catalog when it knows them).
pub fn sarif(findings: &[Finding], catalog: &Catalog) -> Value {
    let mut rule_ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.rule_id == *id);
            let info = catalog.get(id);
            let title = info
                .map(|r| r.title.clone())
                .or_else(|| f.map(|f| f.title.clone()))
                .unwrap_or_default();
            let sev = info.map(|r| r.severity).or(f.map(|f| f.severity)).unwrap_or(Severity::Info);
            let mut tags: Vec<String> = vec!["security".into()];
            if let Some(f) = f {
                tags.push(f.kind.as_str().into());
                tags.extend(f.attack.iter().map(|t| format!("external/attack/{t}")));
            }
            json!({
                "id": id,
                "name": title,
                "shortDescription": {"text": title},
                "fullDescription": {"text": info.map(|r| r.description.clone()).filter(|d| !d.is_empty()).unwrap_or(title.clone())},
                "defaultConfiguration": {"level": sarif_level(sev)},
                "properties": {"tags": tags, "security-severity": security_severity(sev)},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = rule_ids.iter().position(|r| *r == f.rule_id).unwrap_or(0);
            let mut r = json!({
                "ruleId": f.rule_id,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "kind": if f.status == Status::Resolved { "pass" } else { "fail" },
                "message": {"text": f.summary},
                "partialFingerprints": {"keywardFinding/v1": f.id},
                "properties": {
                    "findingId": f.id, "kind": f.kind.as_str(), "status": f.status.as_str(),
                    "severity": f.severity.as_str(), "attack": f.attack, "events": f.events,
                    "firstSeen": keyward_model::time::format(f.first_seen),
                    "lastSeen": keyward_model::time::format(f.last_seen),
                    "count": f.count, "path": f.path, "details": f.details,
                },
            });
            if let (Some(id), Value::Object(m)) = (&f.identity, &mut r) {
                m.insert(
                    "locations".into(),
                    json!([{"logicalLocations": [{"fullyQualifiedName": id, "kind": "resource"}]}]),
                );
            }
            if let (Some(fix), Value::Object(m)) = (sarif_fix(f), &mut r) {
                m.insert("fixes".into(), json!([fix]));
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyward", "version": VERSION,
                "informationUri": "https://github.com/keyward/keyward",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// The SARIF `fix` of a finding's remediation (see the module's notes), if it has one.
fn sarif_fix(f: &Finding) -> Option<Value> {
    let r = Remediation::of(f).filter(|r| !r.steps.is_empty())?;
    let script = r.script(&format!("{} ({}): {}", f.title, f.id, f.summary));
    Some(json!({
        "description": {"text": r.text(), "markdown": r.markdown()},
        "artifactChanges": [{
            "artifactLocation": {"uri": format!("keyward-remediation/{}.sh", f.id)},
            "replacements": [{
                "deletedRegion": {"startLine": 1, "startColumn": 1, "endColumn": 1},
                "insertedContent": {"text": script},
            }],
        }],
    }))
}

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn status_id(s: Status) -> (u8, &'static str) {
    match s {
        Status::Open => (1, "New"),
        Status::Acknowledged => (2, "In Progress"),
        Status::FalsePositive => (3, "Suppressed"),
        Status::Resolved => (4, "Resolved"),
        Status::Expected => (99, "Expected"),
    }
}

/// One OCSF event per finding.
pub fn ocsf(f: &Finding) -> Value {
    let (class_uid, class_name) = match f.kind {
        Kind::Threat => (2004u32, "Detection Finding"),
        Kind::Posture => (2008u32, "IAM Analysis Finding"),
    };
    let (status_id, status) = status_id(f.status);
    let attacks: Vec<Value> = f
        .attack
        .iter()
        .map(|t| json!({"technique": {"uid": t}, "version": "v16"}))
        .collect();
    let mut v = json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": class_uid * 100 + 1,
        "severity_id": severity_id(f.severity),
        "severity": f.severity.as_str(),
        "status_id": status_id,
        "status": status,
        "time": f.last_seen,
        "message": f.summary,
        "count": f.count,
        "metadata": {
            "version": "1.4.0",
            "product": {"name": "Keyward", "vendor_name": "Keyward", "version": VERSION},
            "uid": f.id,
        },
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.summary,
            "first_seen_time": f.first_seen,
            "last_seen_time": f.last_seen,
            "analytic": {"uid": f.rule_id, "name": f.title, "type_id": 1, "type": "Rule"},
            "attacks": attacks,
            "related_events": f.events.iter().map(|e| json!({"uid": e})).collect::<Vec<_>>(),
            "types": [f.kind.as_str()],
        },
        "unmapped": {"details": f.details, "path": f.path},
    });
    if let (Some(id), Value::Object(m)) = (&f.identity, &mut v) {
        m.insert(
            "resources".into(),
            json!([{"uid": id, "type": "Identity", "name": id}]),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn finding(kind: Kind) -> Finding {
        Finding {
            id: "kwf-1".into(),
            rule_id: "kw-x".into(),
            title: "X".into(),
            severity: Severity::High,
            kind,
            identity: Some("arn:aws:iam::1:user/a".into()),
            attack: vec!["T1098".into()],
            events: vec!["e1".into()],
            path: vec![],
            first_seen: 1,
            last_seen: 2,
            count: 1,
            status: Status::Open,
            summary: "s".into(),
            details: Value::Null,
        }
    }

    #[test]
    fn ocsf_classes() {
        let t = ocsf(&finding(Kind::Threat));
        assert_eq!(t["class_uid"], 2004);
        assert_eq!(t["type_uid"], 200_401);
        assert_eq!(t["severity_id"], 4);
        let p = ocsf(&finding(Kind::Posture));
        assert_eq!(p["class_uid"], 2008);
        assert_eq!(p["resources"][0]["uid"], "arn:aws:iam::1:user/a");
    }

    /// What SARIF 2.1.0 requires of a result's `fixes` (§3.55–3.57, §3.30, §3.11): a
    /// message with text, one or more artifact changes to distinct artifacts, each with a
    /// location (a relative URI reference) and one or more replacements whose deleted
    /// region has positive line and column numbers.
    fn check_fixes(result: &Value) {
        for fix in result["fixes"].as_array().unwrap() {
            assert!(fix["description"]["text"].is_string(), "{fix}");
            let changes = fix["artifactChanges"].as_array().unwrap();
            assert!(!changes.is_empty(), "{fix}");
            let mut uris: Vec<&str> = changes
                .iter()
                .map(|c| c["artifactLocation"]["uri"].as_str().unwrap())
                .collect();
            uris.dedup();
            assert_eq!(uris.len(), changes.len(), "distinct artifacts");
            for c in changes {
                let uri = c["artifactLocation"]["uri"].as_str().unwrap();
                assert!(!uri.contains(':') && !uri.starts_with('/') && !uri.contains(' '));
                let replacements = c["replacements"].as_array().unwrap();
                assert!(!replacements.is_empty());
                for r in replacements {
                    let region = r["deletedRegion"].as_object().unwrap();
                    assert!(region.values().all(|v| v.as_u64().is_some_and(|n| n >= 1)));
                    assert!(r["insertedContent"]["text"].is_string());
                }
            }
        }
    }

    #[test]
    fn a_posture_finding_s_remediation_is_its_sarif_fix() {
        use crate::remediation::Step;
        let mut f = finding(Kind::Posture);
        let r = Remediation::new(vec![
            Step::now(
                "Disable it",
                vec!["aws iam update-access-key --user-name 'x'\\''; rm -rf /' --access-key-id AKIAIOSFODNN7EXAMPLE --status Inactive".into()],
            ),
            Step::later("Delete it", vec!["aws iam delete-user --user-name a".into()]),
        ]);
        f.details = json!({"remediation": r});
        let threat = finding(Kind::Threat);
        let s = sarif(&[f, threat], &Catalog::default());
        let results = s["runs"][0]["results"].as_array().unwrap();
        assert!(results[1].get("fixes").is_none(), "no remediation, no fix");
        let fix = &results[0]["fixes"][0];
        check_fixes(&results[0]);
        let text = fix["description"]["text"].as_str().unwrap();
        assert!(
            text.contains("$ aws iam update-access-key --user-name 'x'\\''; rm -rf /'"),
            "{text}"
        );
        assert!(text.contains("2. after 30 days: Delete it"), "{text}");
        assert!(
            fix["description"]["markdown"]
                .as_str()
                .unwrap()
                .contains("```sh")
        );
        let change = &fix["artifactChanges"][0];
        assert_eq!(
            change["artifactLocation"]["uri"],
            "keyward-remediation/kwf-1.sh"
        );
        let script = change["replacements"][0]["insertedContent"]["text"]
            .as_str()
            .unwrap();
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
        assert!(
            script.contains("\n# aws iam delete-user --user-name a\n"),
            "{script}"
        );
    }

    #[test]
    fn sarif_shape() {
        let s = sarif(&[finding(Kind::Threat)], &Catalog::default());
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "kw-x");
        assert_eq!(run["results"][0]["ruleIndex"], 0);
        assert_eq!(run["results"][0]["level"], "error");
    }
}
