#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Coverage of the Stratus Red Team AWS techniques (Datadog's recorded detonations): which
//! built-in rules fire on each technique's CloudTrail, and which rules of the SigmaHQ cloud
//! corpus do. The table in docs/detection-coverage.md is this test's output: it fails when
//! the doc says otherwise, and `KEYWARD_BLESS=1` rewrites the doc's generated section.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use keyward_detect::rules::Form;
use keyward_detect::{Catalog, Detector, NoLookup, detector::ANOMALY_RULE, testing};
use keyward_model::SourceKind;
use serde_json::Value;

/// The techniques about identities: credential access, persistence through IAM, STS and
/// Roles Anywhere, privilege escalation, CloudTrail tampering, leaving the organization and
/// console sign-in without MFA. Each must be detected by a built-in rule.
const IDENTITY: &[&str] = &[
    "aws.credential-access.ec2-get-password-data",
    "aws.credential-access.ec2-steal-instance-credentials",
    "aws.credential-access.secretsmanager-batch-retrieve-secrets",
    "aws.credential-access.secretsmanager-retrieve-secrets",
    "aws.credential-access.ssm-retrieve-securestring-parameters",
    "aws.defense-evasion.cloudtrail-delete",
    "aws.defense-evasion.cloudtrail-event-selectors",
    "aws.defense-evasion.cloudtrail-stop",
    "aws.defense-evasion.organizations-leave",
    "aws.initial-access.console-login-without-mfa",
    "aws.persistence.iam-backdoor-role",
    "aws.persistence.iam-backdoor-user",
    "aws.persistence.iam-create-admin-user",
    "aws.persistence.iam-create-backdoor-role",
    "aws.persistence.iam-create-user-login-profile",
    "aws.persistence.rolesanywhere-create-trust-anchor",
    "aws.persistence.sts-federation-token",
    "aws.privilege-escalation.iam-update-user-login-profile",
];

/// Why no built-in rule detects a technique: every technique the built-in rules miss is
/// listed here, and only those.
const WHY_NOT: &[(&str, &str)] = &[
    (
        "aws.defense-evasion.dns-delete-logs",
        "deletes a Route 53 Resolver query-log configuration: network telemetry, not an identity or its credentials",
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs",
        "deletes VPC flow logs: network telemetry; SigmaHQ's rule loads unmodified and covers it",
    ),
    (
        "aws.discovery.ec2-download-user-data",
        "reads instances' user data: one call looks like inventory tooling; a trained identity's baseline flags the new endpoint, the detonation has no history; SigmaHQ's rule covers it",
    ),
    (
        "aws.execution.ec2-launch-unusual-instances",
        "launches workloads (instance types): a trained baseline flags new endpoints and regions; the detonation has no history",
    ),
    (
        "aws.execution.ec2-user-data",
        "changes an instance's user data: a workload change, not an identity's",
    ),
    (
        "aws.execution.ssm-send-command",
        "runs commands on instances: host execution, not an identity's permissions",
    ),
    (
        "aws.execution.ssm-start-session",
        "opens a shell on an instance: host access, not an identity's permissions",
    ),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        "opens a security group: network exposure; SigmaHQ's rule covers it",
    ),
    (
        "aws.exfiltration.ec2-share-ami",
        "shares an AMI with another account: a data resource's sharing, not an identity's access",
    ),
    (
        "aws.exfiltration.ec2-share-ebs-snapshot",
        "shares an EBS snapshot with another account: a data resource's sharing; SigmaHQ's rule covers it",
    ),
    (
        "aws.exfiltration.rds-share-snapshot",
        "shares an RDS snapshot with another account: a data resource's sharing, not an identity's access",
    ),
    (
        "aws.impact.bedrock-invoke-model",
        "invokes a model: usage, not identity; a trained baseline flags the new endpoint, the detonation has no history",
    ),
    (
        "aws.lateral-movement.ec2-instance-connect",
        "pushes an SSH key to an instance: host access, not an IAM identity",
    ),
    (
        "aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
        "pushes an SSH key to a serial console: host access, not an IAM identity",
    ),
    (
        "aws.persistence.lambda-layer-extension",
        "changes a function's code (a layer): workload code; SigmaHQ's rule covers it",
    ),
    (
        "aws.persistence.lambda-overwrite-code",
        "changes a function's code: workload code, not an identity's permissions",
    ),
];

const BEGIN: &str = "<!-- BEGIN GENERATED -->";
const END: &str = "<!-- END GENERATED -->";

struct Row {
    technique: String,
    builtin: BTreeSet<String>,
    sigma: BTreeSet<String>,
}

/// Every rule that fired on the technique's records, replayed in time order.
fn fired(catalog: &Catalog, records: &[Value]) -> BTreeSet<String> {
    let mut records: Vec<&Value> = records.iter().collect();
    // The detonation logs are not in time order; a live trail would be.
    records.sort_by_key(|r| r["eventTime"].as_str().unwrap_or_default().to_owned());
    let mut det = Detector::new(catalog.clone(), Default::default()).unwrap();
    let mut out = BTreeSet::new();
    for r in records {
        let bytes = serde_json::to_vec(r).unwrap();
        let (event, raw, known) = testing::normalize(SourceKind::Cloudtrail, &bytes).unwrap();
        det.on_event(&event, &raw, &known, &NoLookup);
        for f in det.take_findings() {
            out.extend(f.rules().map(str::to_owned));
        }
    }
    det.close_hours();
    for f in det.take_findings() {
        out.extend(f.rules().map(str::to_owned));
    }
    // Behavioural baselines need weeks of history: not what this table measures.
    out.remove(ANOMALY_RULE);
    out
}

/// The built-in rules, as the doc lists them.
fn rule_list(catalog: &Catalog) -> String {
    let mut s = String::from("### Built-in rules\n\n");
    s.push_str("| Rule | Title | Severity | ATT&CK | Source | How |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    let mut rules: Vec<_> = catalog
        .rules
        .iter()
        .filter(|r| r.form == Form::Keyward)
        .collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    for r in rules {
        let file = &catalog.files[&r.id];
        let how = match (&file.detection, &file.correlation, &r.check) {
            (_, Some(c), _) => format!("correlation ({}, {})", c.ty, c.timespan),
            (Some(_), None, Some(c)) => format!("detection + check `{}`", c.name()),
            (None, None, Some(c)) => format!("check `{}`", c.name()),
            _ => "detection".to_owned(),
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.id,
            r.title,
            r.severity.as_str(),
            r.attack.join(", "),
            r.logsource.label,
            how
        ));
    }
    s
}

fn table(rows: &[Row]) -> String {
    let detected = rows.iter().filter(|r| !r.builtin.is_empty()).count();
    let identity: Vec<&Row> = rows
        .iter()
        .filter(|r| IDENTITY.contains(&r.technique.as_str()))
        .collect();
    let identity_detected = identity.iter().filter(|r| !r.builtin.is_empty()).count();
    let sigma = rows.iter().filter(|r| !r.sigma.is_empty()).count();
    let mut s = String::from("### Stratus Red Team techniques\n\n");
    s.push_str(&format!(
        "Built-in rules detect **{detected} of {}** techniques, **{identity_detected} of {}** \
         identity-related ones; the SigmaHQ cloud corpus detects {sigma} of {}.\n\n",
        rows.len(),
        identity.len(),
        rows.len()
    ));
    s.push_str("| Technique | Identity | Built-in rules that fired | Detected | SigmaHQ corpus rules that fired | Why not detected |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    let list = |set: &BTreeSet<String>| {
        if set.is_empty() {
            "—".to_owned()
        } else {
            set.iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for r in rows {
        let why = WHY_NOT
            .iter()
            .find(|(t, _)| *t == r.technique)
            .map_or("", |(_, w)| w);
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {why} |\n",
            r.technique,
            if IDENTITY.contains(&r.technique.as_str()) {
                "yes"
            } else {
                ""
            },
            list(&r.builtin),
            if r.builtin.is_empty() {
                "no"
            } else {
                "**yes**"
            },
            list(&r.sigma),
        ));
    }
    s
}

#[test]
fn stratus_techniques_coverage() {
    let Some(root) = keyward_testkit::corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let mut catalog = Catalog::builtin();
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    catalog.add_path(&root.join("sigma-cloud-rules"));
    let origin: BTreeMap<String, String> = catalog
        .rules
        .iter()
        .map(|r| (r.id.clone(), r.origin.clone()))
        .collect();
    let dir = root.join("aws-cloudtrail-stratus-detonations/detonation-logs");
    let mut rows = Vec::new();
    for f in keyward_testkit::sorted_dir(&dir) {
        let technique = f.file_stem().unwrap().to_string_lossy().into_owned();
        let records: Vec<Value> = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let mut row = Row {
            technique,
            builtin: BTreeSet::new(),
            sigma: BTreeSet::new(),
        };
        for id in fired(&catalog, &records) {
            let o = &origin[&id];
            if o.starts_with("builtin:") {
                row.builtin.insert(id);
            } else {
                // Sigma rules are named by their file (their ids are UUIDs).
                let stem = Path::new(o)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                row.sigma.insert(stem);
            }
        }
        rows.push(row);
    }
    assert_eq!(rows.len(), 35, "the corpus has 35 techniques");
    for t in IDENTITY {
        assert!(
            rows.iter().any(|r| r.technique == *t),
            "{t} is not in the corpus"
        );
    }
    let generated = format!("{}\n{}", rule_list(&Catalog::builtin()), table(&rows));
    println!("{generated}");

    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| IDENTITY.contains(&r.technique.as_str()) && r.builtin.is_empty())
        .map(|r| r.technique.as_str())
        .collect();
    assert!(
        missed.is_empty(),
        "identity techniques no built-in rule detects: {missed:?}"
    );
    // Every technique is detected or says why not, never both.
    for r in &rows {
        let listed = WHY_NOT.iter().any(|(t, _)| *t == r.technique);
        assert_eq!(
            listed,
            r.builtin.is_empty(),
            "{}: WHY_NOT must list exactly the techniques no built-in rule detects",
            r.technique
        );
    }

    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/detection-coverage.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let (head, rest) = doc.split_once(BEGIN).expect("doc has the BEGIN marker");
    let (current, tail) = rest.split_once(END).expect("doc has the END marker");
    let wanted = format!("\n{generated}");
    if std::env::var_os("KEYWARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&doc_path, format!("{head}{BEGIN}{wanted}{END}{tail}")).unwrap();
        eprintln!("blessed {}", doc_path.display());
    } else {
        assert_eq!(
            current, wanted,
            "docs/detection-coverage.md is out of date: run with KEYWARD_BLESS=1"
        );
    }
}
