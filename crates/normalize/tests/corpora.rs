//! Every format against the third-party data in `../shared/corpora` (see its README).
//! The corpora are loaded from the sibling `shared/` checkout, never copied; without it
//! these tests say they were skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keyward_model::{Diagnostic, IdentityKind, Observation};
use keyward_normalize::{
    Context, Format, Layout, Output, Sink, normalize_document, normalize_line, sniff,
};
use serde_json::Value;

#[derive(Default)]
struct Collect {
    outs: Vec<Output<'static>>,
    rejects: Vec<Diagnostic>,
}

impl Sink for Collect {
    fn accept(&mut self, out: Output<'_>) {
        self.outs.push(out.into_owned());
    }
    fn reject(&mut self, diag: Diagnostic) {
        self.rejects.push(diag);
    }
}

impl Collect {
    fn observations(&self) -> impl Iterator<Item = &Observation> {
        self.outs.iter().flat_map(|o| o.observations.iter())
    }
    fn events(&self) -> usize {
        self.outs.iter().filter(|o| o.event.is_some()).count()
    }
    fn kinds(&self) -> BTreeMap<IdentityKind, usize> {
        let mut m = BTreeMap::new();
        for o in self.observations() {
            *m.entry(o.kind).or_default() += 1;
        }
        m
    }
}

use keyward_testkit::corpora;

/// Reads a file the way the engine does: sniff, then lines or document.
fn run(path: &Path, cluster: &str) -> (Option<(Layout, Format)>, Collect) {
    let bytes = std::fs::read(path).unwrap();
    let name = path.to_string_lossy();
    let mut sink = Collect::default();
    let mut ctx = Context::new(cluster);
    let sniffed = sniff(&bytes, &name);
    match sniffed {
        Some((Layout::Document, f)) => normalize_document(f, &bytes, &mut ctx, &mut sink),
        Some((Layout::Lines, f)) => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if !line.trim_ascii().is_empty() {
                    normalize_line(f, line.trim_ascii(), i as u64 + 1, &mut ctx, &mut sink);
                }
            }
        }
        None => {}
    }
    (sniffed, sink)
}

use keyward_testkit::sorted_dir as files;

#[test]
fn stratus_detonations_every_record_accepted() {
    let Some(c) = corpora() else { return };
    let root = c.join("aws-cloudtrail-stratus-detonations");
    let index: Vec<Value> =
        serde_json::from_slice(&std::fs::read(root.join("techniques_index.json")).unwrap())
            .unwrap();
    let mut total = 0;
    let mut kinds = BTreeMap::new();
    for t in &index {
        let id = t["technique_id"].as_str().unwrap();
        let (sniffed, sink) = run(
            &root.join("detonation-logs").join(format!("{id}.json")),
            "x",
        );
        assert_eq!(
            sniffed,
            Some((Layout::Document, Format::Cloudtrail)),
            "{id}"
        );
        assert!(sink.rejects.is_empty(), "{id}: {:?}", sink.rejects);
        assert_eq!(sink.events() as u64, t["events"].as_u64().unwrap(), "{id}");
        total += sink.events();
        for (k, n) in sink.kinds() {
            *kinds.entry(k).or_insert(0) += n;
        }
    }
    assert_eq!(total, 310);
    for k in [
        IdentityKind::IamUser,
        IdentityKind::IamRole,
        IdentityKind::StsSession,
        IdentityKind::FederatedUser,
        IdentityKind::TemporaryAccessKey,
    ] {
        assert!(kinds.contains_key(&k), "no {k:?} discovered: {kinds:?}");
    }
}

fn stratus(c: &Path, id: &str) -> Collect {
    run(
        &c.join("aws-cloudtrail-stratus-detonations/detonation-logs")
            .join(format!("{id}.json")),
        "x",
    )
    .1
}

#[test]
fn stratus_backdoor_key_is_discovered_with_its_creation() {
    let Some(c) = corpora() else { return };
    let sink = stratus(&c, "aws.persistence.iam-backdoor-user");
    let key = sink
        .observations()
        .find(|o| o.id == "AKIAL80DWDVKKM0UXEER")
        .expect("created key");
    assert_eq!(key.kind, IdentityKind::AccessKey);
    // `Jul 30, 2024 9:53:13 PM` in responseElements.
    assert_eq!(
        key.facts.created,
        keyward_model::time::parse("2024-07-30T21:53:13Z")
    );
    assert_eq!(
        key.facts.parent.as_deref(),
        Some("arn:aws:iam::946986569305:user/stratus-red-team-backdoor-u-user")
    );
    assert_eq!(
        key.facts.created_by.as_deref(),
        Some("arn:aws:iam::946986569305:user/christophe")
    );
    // Pseudonymised key ids are not valid base32: no account is invented.
    assert_eq!(key.facts.account, None);
}

#[test]
fn stratus_admin_user_and_federation_token() {
    let Some(c) = corpora() else { return };
    let sink = stratus(&c, "aws.persistence.iam-create-admin-user");
    let created: Vec<_> = sink
        .observations()
        .filter(|o| o.kind == IdentityKind::IamUser && o.facts.created.is_some())
        .collect();
    assert!(!created.is_empty(), "CreateUser must reveal the new user");
    assert!(created.iter().all(|o| o.facts.created_by.is_some()));

    let sink = stratus(&c, "aws.persistence.sts-federation-token");
    let fed = sink
        .observations()
        .find(|o| o.kind == IdentityKind::FederatedUser && o.facts.created.is_some())
        .expect("federated session");
    assert_eq!(
        fed.id,
        "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    );
    assert!(
        fed.facts
            .parent
            .as_deref()
            .unwrap()
            .ends_with(":user/stratus-red-team-user-federation-user")
    );
    let key = sink
        .observations()
        .find(|o| o.id == "ASIASTJKC5GCM7ZE6LUP" && o.facts.created.is_some())
        .expect("its temporary key");
    assert_eq!(key.facts.parent.as_deref(), Some(fed.id.as_str()));

    let sink = stratus(&c, "aws.persistence.iam-create-user-login-profile");
    assert!(
        sink.observations()
            .any(|o| o.facts.credentials.iter().any(|c| c.id == "password"))
    );
}

#[test]
fn stratus_sessions_know_their_role() {
    let Some(c) = corpora() else { return };
    let sink = stratus(&c, "aws.credential-access.ec2-get-password-data");
    let s = sink
        .observations()
        .find(|o| o.kind == IdentityKind::StsSession)
        .expect("a session");
    assert!(s.facts.parent.as_deref().unwrap().contains(":role/"));
}

/// Panther's samples are hand-made: some lack `eventTime`, `eventSource` or `eventName`
/// (real CloudTrail never does). Those, and only those, are rejected, each for that reason.
#[test]
fn panther_cloudtrail_samples() {
    let Some(c) = corpora() else { return };
    let text =
        std::fs::read_to_string(c.join("panther-labelled-events/events/AWS.CloudTrail.jsonl"))
            .unwrap();
    let mut sink = Collect::default();
    let mut expected_rejects = 0;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let ev = &v["event"];
        let has = |k: &str| {
            ev.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        let time_ok = ev
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(keyward_model::time::parse)
            .is_some();
        if !(time_ok && has("eventSource") && has("eventName")) {
            expected_rejects += 1;
        }
        normalize_line(
            Format::Cloudtrail,
            ev.to_string().as_bytes(),
            i as u64 + 1,
            &mut Context::default(),
            &mut sink,
        );
    }
    assert_eq!(
        sink.rejects.len(),
        expected_rejects,
        "{:?}",
        sink.rejects.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        sink.rejects
            .iter()
            .all(|d| d.reason.to_string().contains("eventTime")
                || d.reason.to_string().contains("eventSource")
                || d.reason.to_string().contains("eventName"))
    );
    assert_eq!(sink.events(), 484 - expected_rejects);
    let kinds = sink.kinds();
    for k in [
        IdentityKind::AccountRoot,
        IdentityKind::ExternalAccount,
        IdentityKind::AwsService,
        IdentityKind::FederatedUser,
        IdentityKind::StsSession,
        IdentityKind::IamUser,
    ] {
        assert!(kinds.contains_key(&k), "{k:?} missing: {kinds:?}");
    }
}

#[test]
fn panther_eks_audit_samples() {
    let Some(c) = corpora() else { return };
    let text =
        std::fs::read_to_string(c.join("panther-labelled-events/events/Amazon.EKS.Audit.jsonl"))
            .unwrap();
    let mut sink = Collect::default();
    let mut expected_rejects = 0;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let ev = &v["event"];
        let t = ["stageTimestamp", "requestReceivedTimestamp", "timestamp"]
            .iter()
            .find_map(|k| ev.get(*k).and_then(Value::as_str));
        let verb = ev
            .get("verb")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if t.and_then(keyward_model::time::parse).is_none() || !verb {
            expected_rejects += 1;
        }
        normalize_line(
            Format::K8sAudit,
            ev.to_string().as_bytes(),
            i as u64 + 1,
            &mut Context::new("eks"),
            &mut sink,
        );
    }
    assert_eq!(
        sink.rejects.len(),
        expected_rejects,
        "{:?}",
        sink.rejects.iter().take(5).collect::<Vec<_>>()
    );
    assert!(sink.events() > 0);
    // EKS maps IAM principals into Kubernetes users through `user.extra`.
    assert!(
        sink.observations()
            .any(|o| o.kind == IdentityKind::ServiceAccount)
    );
}

#[test]
fn falco_k8s_audit_fixtures() {
    let Some(c) = corpora() else { return };
    let mut events = 0;
    let mut malformed = Vec::new();
    for f in files(&c.join("falco-k8s-audit/trace_files")) {
        let lines = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let (sniffed, sink) = run(&f, "falco");
        if sniffed.is_none() {
            // Falco's own invalid-input fixtures: forced as audit input they are rejected
            // with a reason, never accepted and never a panic.
            let mut forced = Collect::default();
            normalize_document(
                Format::K8sAudit,
                &std::fs::read(&f).unwrap(),
                &mut Context::default(),
                &mut forced,
            );
            assert_eq!(
                (forced.events(), forced.rejects.len()),
                (0, 1),
                "{}",
                f.display()
            );
            malformed.push(f.file_name().unwrap().to_string_lossy().into_owned());
            continue;
        }
        assert_eq!(
            sniffed.map(|s| s.1),
            Some(Format::K8sAudit),
            "{}",
            f.display()
        );
        assert!(
            sink.rejects.is_empty(),
            "{}: {:?}",
            f.display(),
            sink.rejects
        );
        assert_eq!(sink.events(), lines, "{}", f.display());
        events += lines;
    }
    assert_eq!(malformed, ["fal_01_003.json"]);
    assert_eq!(events, 51);
    let (sniffed, sink) = run(
        &c.join("falco-k8s-audit/trace_files_cloudtrail/alice_start_instances.json"),
        "x",
    );
    assert_eq!(sniffed.map(|s| s.1), Some(Format::Cloudtrail));
    assert!(sink.rejects.is_empty() && sink.events() == 1);
}

#[test]
fn audit2rbac_impersonation() {
    let Some(c) = corpora() else { return };
    let (sniffed, sink) = run(&c.join("k8s-audit2rbac-demo/demo.log"), "demo");
    assert_eq!(sniffed, Some((Layout::Lines, Format::K8sAudit)));
    assert!(sink.rejects.is_empty(), "{:?}", sink.rejects);
    assert_eq!(sink.events(), 37);
    let bob = sink
        .observations()
        .find(|o| o.id == "k8s:demo/user:bob")
        .expect("impersonated user");
    assert_eq!(
        bob.facts
            .details
            .get("impersonated_by")
            .and_then(Value::as_str),
        Some("k8s:demo/user:system:admin")
    );
    assert!(
        sink.outs
            .iter()
            .filter_map(|o| o.event.as_ref())
            .any(|e| e.error_code.is_some()),
        "403s are kept as errors"
    );
}

#[test]
fn kubescape_rbac_fixtures() {
    let Some(c) = corpora() else { return };
    let mut inputs = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for p in files(d) {
            if p.is_dir() {
                walk(&p, out);
            } else if p.parent().is_some_and(|d| d.ends_with("input")) {
                out.push(p);
            }
        }
    }
    walk(&c.join("k8s-rbac-posture-kubescape/rules"), &mut inputs);
    assert!(inputs.len() > 100);
    let (mut sas, mut objects, mut skipped) = (0, 0, 0);
    for f in &inputs {
        let bytes = std::fs::read(f).unwrap();
        let name = f.to_string_lossy();
        let is_k8s = sniff(&bytes, &name).map(|s| s.1) == Some(Format::K8sSnapshot);
        if !is_k8s {
            // Fixtures for cloud-provider controls (IAM/EKS descriptions) are not RBAC.
            skipped += 1;
            continue;
        }
        let mut sink = Collect::default();
        normalize_document(
            Format::K8sSnapshot,
            &bytes,
            &mut Context::new("ks"),
            &mut sink,
        );
        assert!(
            sink.rejects.is_empty(),
            "{}: {:?}",
            f.display(),
            sink.rejects
        );
        sas += sink
            .observations()
            .filter(|o| o.kind == IdentityKind::ServiceAccount)
            .count();
        objects += sink.outs.iter().map(|o| o.objects.len()).sum::<usize>();
    }
    assert!(
        sas > 20 && objects > 100,
        "{sas} service accounts, {objects} objects, {skipped} skipped"
    );
    assert!(
        skipped < inputs.len() / 5,
        "{skipped} of {} inputs were not recognised",
        inputs.len()
    );
}

#[test]
fn iam_authorization_details_fixture() {
    let Some(c) = corpora() else { return };
    let (sniffed, sink) = run(&c.join("aws-iam-authz-small/small-authz-details.json"), "x");
    assert_eq!(
        sniffed,
        Some((Layout::Document, Format::IamAuthorizationDetails))
    );
    assert!(sink.rejects.is_empty(), "{:?}", sink.rejects);
    let kinds = sink.kinds();
    assert_eq!(kinds.get(&IdentityKind::IamUser), Some(&3));
    assert_eq!(kinds.get(&IdentityKind::IamRole), Some(&3));
    let mut objects: BTreeMap<String, usize> = BTreeMap::new();
    for o in sink.outs.iter().flat_map(|o| &o.objects) {
        *objects.entry(o.kind.clone()).or_default() += 1;
    }
    assert_eq!(
        objects,
        BTreeMap::from([
            ("iam_group".into(), 2),
            ("iam_policy".into(), 32),
            ("iam_role".into(), 3),
            ("iam_user".into(), 3)
        ])
    );
    let role = sink.observations().find(|o| o.name == "MyRole").unwrap();
    assert_eq!(
        role.facts.created,
        keyward_model::time::parse("2019-08-16T17:27:59Z")
    );
    assert_eq!(
        role.facts.details["trusted_principals"]["Service"][0],
        "ssm.amazonaws.com"
    );
    let obama = sink.observations().find(|o| o.name == "obama").unwrap();
    assert_eq!(obama.facts.details["groups"][0], "admin");
}

/// CloudTrail Lake `get-query-results` output, as the CLI prints it, built from a real
/// Stratus record.
#[test]
fn cloudtrail_lake_query_results() {
    let Some(c) = corpora() else { return };
    let recs: Vec<Value> = serde_json::from_slice(&std::fs::read(c.join("aws-cloudtrail-stratus-detonations/detonation-logs/aws.persistence.iam-backdoor-user.json")).unwrap()).unwrap();
    let rows: Vec<Value> = recs
        .iter()
        .map(|r| serde_json::json!([{"eventJson": r.to_string()}]))
        .collect();
    let mut rows = rows;
    rows.push(serde_json::json!([{"eventTime": "2024-01-01"}]));
    let doc = serde_json::to_vec_pretty(&serde_json::json!({"QueryStatus": "FINISHED", "QueryStatistics": {"ResultsCount": rows.len()}, "QueryResultRows": rows})).unwrap();
    assert_eq!(
        sniff(&doc, "lake.json"),
        Some((Layout::Document, Format::Cloudtrail))
    );
    let mut sink = Collect::default();
    normalize_document(Format::Cloudtrail, &doc, &mut Context::default(), &mut sink);
    assert_eq!(sink.events(), recs.len());
    assert_eq!(sink.rejects.len(), 1);
    assert!(sink.rejects[0].reason.to_string().contains("eventJson") && sink.rejects[0].line > 1);
}

/// Panther's GitHub webhook test events (bodies without their headers), each wrapped as a
/// delivery with the event type its keys show. Workflow runs and jobs become activity of
/// their workflow, with the sender as actor; other event types are skipped, none rejected.
#[test]
fn panther_github_webhooks() {
    let Some(dir) = corpora() else { return };
    let text =
        std::fs::read_to_string(dir.join("panther-labelled-events/events/GitHub.Webhook.jsonl"))
            .unwrap();
    let mut sink = Collect::default();
    let mut ctx = Context::default();
    let (mut read, mut skipped) = (0, 0);
    for (i, line) in text.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        let payload = &case["event"];
        let event = [
            "workflow_run",
            "workflow_job",
            "pull_request",
            "issue",
            "commits",
        ]
        .into_iter()
        .find(|k| payload.get(*k).is_some())
        .map_or("push", |k| match k {
            "issue" => "issues",
            "commits" => "push",
            k => k,
        });
        let delivery = serde_json::json!({
            "guid": format!("panther-{i}"),
            "delivered_at": "2026-11-20T10:00:00Z",
            "event": event,
            "request": {"headers": {}, "payload": payload},
        });
        let before = sink.outs.len();
        normalize_line(
            Format::GithubWebhook,
            &serde_json::to_vec(&delivery).unwrap(),
            i as u64 + 1,
            &mut ctx,
            &mut sink,
        );
        if sink.outs.len() > before {
            read += 1;
        } else {
            skipped += 1;
        }
    }
    assert!(sink.rejects.is_empty(), "{:?}", sink.rejects);
    assert_eq!(read, 28, "workflow_run and workflow_job deliveries");
    assert_eq!(
        skipped, 48,
        "push, pull_request, issues, comments: no identity"
    );
    let kinds = sink.kinds();
    // One job ("Self-hosted runner with empty name") names no workflow: an event only.
    assert_eq!(
        kinds.get(&IdentityKind::GithubWorkflow),
        Some(&27),
        "{kinds:?}"
    );
    let ids: std::collections::BTreeSet<&str> = sink
        .observations()
        .filter(|o| o.kind == IdentityKind::GithubWorkflow)
        .map(|o| o.id.as_str())
        .collect();
    assert!(
        ids.iter().all(|id| id.starts_with("github:workflow/")),
        "{ids:?}"
    );
    eprintln!("workflows: {ids:?}");
}
