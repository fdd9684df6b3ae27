//! The pipeline against the bundled example estate (`examples/estate`): what it must
//! discover, and the store's promises (idempotent, incremental, bad records dead-lettered).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};

use keyward_engine::{Engine, FileStatus, IngestOptions, IngestReport};
use keyward_model::{Identity, IdentityKind, Lifecycle, LifecycleConfig, Platform};

fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

fn ingest(engine: &mut Engine, paths: &[PathBuf]) -> IngestReport {
    engine
        .ingest(paths, &IngestOptions::default(), &mut (), 0)
        .unwrap()
}

fn loaded(dir: &Path) -> Engine {
    let mut e = Engine::open(dir).unwrap();
    let r = ingest(&mut e, &[estate()]);
    assert_eq!(r.rejected, 0, "{:?}", r.rejections);
    e
}

fn get<'a>(e: &'a Engine, id: &str) -> &'a Identity {
    e.inventory()
        .get(id)
        .unwrap_or_else(|| panic!("`{id}` not in the inventory"))
}

fn state(e: &Engine, i: &Identity) -> Lifecycle {
    let as_of = e.latest_event_time().unwrap().unwrap();
    e.lifecycles(LifecycleConfig {
        as_of,
        stale_after_days: 30,
    })
    .of(i)
}

const ACCT: &str = "111122223333";

/// Files in the estate that Keyward reads (all but its README).
const ESTATE_FILES: usize = 55;

fn iam(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:{kind}/{name}")
}

/// Identities in a stable, comparable form (the engine's, which are the stored ones: the
/// reopened engine below loads them from the store).
fn dump(e: &Engine) -> Vec<String> {
    let mut v: Vec<String> = e
        .inventory()
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn discovers_the_estate() {
    let dir = tempfile::tempdir().unwrap();
    let e = loaded(dir.path());

    // Static keys: two active on the legacy CI user, seen in every AWS source.
    let ci = get(&e, &iam("user", "svc-ci-legacy"));
    assert_eq!(ci.active_key_count(), 2);
    assert_eq!(ci.evidence.label(), "both");
    for s in [
        "cloudtrail",
        "iam-authorization-details",
        "iam-credential-report",
    ] {
        assert!(ci.sources.contains(s), "{s}: {:?}", ci.sources);
    }
    assert_eq!(
        ci.tags.get("owner").map(String::as_str),
        Some("bob@acme.example")
    );

    // Unused for months.
    assert_eq!(
        state(&e, get(&e, &iam("user", "svc-reporting"))),
        Lifecycle::Stale
    );
    assert_eq!(
        state(&e, get(&e, &iam("role", "legacy-batch-role"))),
        Lifecycle::Stale
    );
    assert_eq!(
        state(&e, get(&e, &iam("role", "lambda-orders-processor"))),
        Lifecycle::Active
    );
    // Never seen in a week of audit log, created months ago: nothing covers 30 days of it
    // (no log that long, and Kubernetes keeps no last use): unknown, not stale.
    let cron = get(
        &e,
        "k8s:prod-eks/system:serviceaccount:payments:legacy-cron",
    );
    assert_eq!(
        cron.lifecycle(LifecycleConfig {
            as_of: e.latest_event_time().unwrap().unwrap(),
            stale_after_days: 30,
        }),
        Lifecycle::Stale
    );
    assert_eq!(state(&e, cron), Lifecycle::Unknown);
    // Deleted during the week by `DeleteRole`.
    assert_eq!(
        state(&e, get(&e, &iam("role", "old-test-role"))),
        Lifecycle::Deleted
    );

    // Created during the week, seen only in CloudTrail, by a human.
    let tmp = get(&e, &iam("user", "svc-temp-migration"));
    assert_eq!(tmp.evidence.label(), "dynamic");
    assert!(tmp.created_by.contains(&iam("user", "alice")));
    assert_eq!(
        tmp.credentials
            .iter()
            .filter(|c| c.id.starts_with("AKIA"))
            .count(),
        1
    );

    // GitHub Actions OIDC subjects, parsed, federated into the deploy role.
    let main = get(
        &e,
        "oidc:token.actions.githubusercontent.com#repo:acme/payments-api:ref:refs/heads/main",
    );
    assert_eq!(
        (main.platform, main.kind),
        (Platform::Github, IdentityKind::OidcSubject)
    );
    assert_eq!(main.details["github"]["branch"], "main");
    assert_eq!(main.details["github"]["repository"], "acme/payments-api");
    assert!(
        main.details["github"]["job_workflow_ref"]
            .as_str()
            .unwrap()
            .contains(".github/workflows/")
    );
    assert!(main.links.contains(&iam("role", "github-actions-deploy")));
    assert!(
        e.inventory()
            .get("oidc:token.actions.githubusercontent.com#repo:acme/payments-api:pull_request")
            .is_some()
    );
    assert!(e.inventory().get("oidc:token.actions.githubusercontent.com#repo:acme/payments-api:environment:production").is_some());

    // EKS IRSA: subject ↔ service account ↔ role.
    let sa_id = "k8s:prod-eks/system:serviceaccount:orders:orders-api";
    let irsa = get(
        &e,
        "oidc:oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE#system:serviceaccount:orders:orders-api",
    );
    assert!(irsa.links.contains(sa_id), "{:?}", irsa.links);
    let sa = get(&e, sa_id);
    assert!(sa.links.contains(&irsa.id) && sa.links.contains(&iam("role", "irsa-orders-api")));
    assert_eq!(sa.evidence.label(), "both");

    // A service account active in the audit log but absent from the RBAC snapshot.
    let shadow = get(&e, "k8s:prod-eks/system:serviceaccount:payments:debug-sa");
    assert_eq!(shadow.evidence.label(), "dynamic");

    // Role chain across accounts, carrying the source identity.
    let chained: Vec<&Identity> = e
        .inventory()
        .iter()
        .filter(|i| {
            i.kind == IdentityKind::StsSession
                && i.parent.as_deref() == Some(&iam("role", "data-pipeline"))
        })
        .collect();
    assert!(!chained.is_empty());
    let s = chained
        .iter()
        .find(|s| s.chain.len() >= 2)
        .expect("a chained session");
    assert_eq!(s.chain[0], "arn:aws:iam::444455556666:root");
    assert!(s.chain[1].contains("assumed-role/cross-account-deployer/"));
    assert_eq!(s.source_identity.as_deref(), Some("deploy-bot"));

    // Temporary keys decode to the account that issued them.
    let asia = e
        .inventory()
        .iter()
        .find(|i| i.kind == IdentityKind::TemporaryAccessKey)
        .unwrap();
    assert_eq!(asia.account.as_deref(), Some(ACCT));
    assert_eq!(state(&e, asia), Lifecycle::Ephemeral);

    // Every userIdentity type in the estate became an identity.
    for k in [
        IdentityKind::AccountRoot,
        IdentityKind::FederatedUser,
        IdentityKind::SamlSubject,
        IdentityKind::IdentityCenterUser,
        IdentityKind::AwsService,
        IdentityKind::ExternalAccount,
        IdentityKind::KubernetesNode,
        IdentityKind::KubernetesUser,
    ] {
        assert!(e.inventory().iter().any(|i| i.kind == k), "no {k:?}");
    }

    // An EKS user mapped from an IAM role session links back to it.
    let eks_user = e
        .inventory()
        .iter()
        .find(|i| i.kind == IdentityKind::KubernetesUser && i.details.contains_key("aws"))
        .expect("IAM-mapped EKS user");
    assert!(
        eks_user
            .links
            .iter()
            .any(|l| l.contains("assumed-role/github-actions-deploy/"))
    );
}

#[test]
fn duplicates_and_stages_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let e = loaded(dir.path());
    // 1,751 S3 records + 20 lookup-events (10 of them the same events), the AI agent's
    // delivery file of 9 records and its 18 spans, Claude Desktop's 2 records and its 2
    // tool calls (the MCP log's other lines are no events), and 453 audit lines (one
    // request logged at several stages).
    let audit = std::fs::read_to_string(estate().join("k8s/prod-eks/audit.jsonl")).unwrap();
    let mut ids: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        e.event_count().unwrap(),
        1761 + 9 + 18 + 2 + 2 + ids.len() as u64
    );
}

#[test]
fn path_aware_inputs_are_stored_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let e = loaded(dir.path());
    let objects = |kind: &str| e.objects(kind).unwrap();
    let tf = objects("tf_resource");
    assert_eq!(tf.len(), 17);
    let file = estate().join("terraform/iam.tf").display().to_string();
    assert!(
        tf.iter()
            .all(|o| o.id.starts_with(&format!("{file}#")) && o.doc["file"] == file.as_str())
    );
    let owners = objects("codeowners");
    assert_eq!(owners.len(), 1);
    assert_eq!(
        owners[0].id,
        estate().join("terraform").display().to_string()
    );
    let people = objects("person");
    assert_eq!(people.len(), 5);
    assert!(
        people
            .iter()
            .any(|p| p.id == "bob@acme.example" && p.doc["status"] == "departed")
    );
    let functions = objects("lambda_function");
    assert_eq!(functions.len(), 2);
    assert!(functions.iter().all(|f| f.doc.get("Environment").is_none()));
    let role = get(&e, &iam("role", "lambda-orders-processor"));
    assert!(
        role.sources.contains("lambda-functions"),
        "{:?}",
        role.sources
    );
}

#[test]
fn same_files_twice_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = loaded(dir.path());
    let before = dump(&e);
    let events = e.event_count().unwrap();
    let again = ingest(&mut e, &[estate()]);
    assert!(again.files.iter().all(|f| f.status != FileStatus::Ingested));
    assert_eq!(
        again
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Unchanged)
            .count(),
        ESTATE_FILES
    );
    assert_eq!((again.identities_new, again.identities_updated), (0, 0));
    // Forced re-read: every record is processed again and still nothing changes.
    let forced = e
        .ingest(
            &[estate()],
            &IngestOptions {
                force: true,
                ..Default::default()
            },
            &mut (),
            0,
        )
        .unwrap();
    assert_eq!(
        forced
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Ingested)
            .count(),
        ESTATE_FILES
    );
    assert_eq!(
        (forced.identities_new, forced.identities_updated),
        (0, 0),
        "{:?}",
        forced.per_source
    );
    assert_eq!(dump(&e), before);
    assert_eq!(e.event_count().unwrap(), events);
    // And a fresh process sees the same inventory.
    drop(e);
    assert_eq!(dump(&Engine::open(dir.path()).unwrap()), before);
}

#[test]
fn incremental_equals_all_at_once() {
    let a = tempfile::tempdir().unwrap();
    let mut inc = Engine::open(a.path()).unwrap();
    ingest(&mut inc, &[estate().join("AWSLogs")]);
    ingest(&mut inc, &[estate().join("aws")]);
    let r = ingest(&mut inc, &[estate().join("k8s")]);
    assert!(r.identities_new > 0);
    // The AI agent's traces, after the CloudTrail they explain.
    let r = ingest(&mut inc, &[estate().join("agents")]);
    assert!(r.identities_new > 0);
    let b = tempfile::tempdir().unwrap();
    let all = loaded(b.path());
    assert_eq!(dump(&inc), dump(&all));
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn bad_records_are_dead_lettered_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let good = |id: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventID":"{id}","eventTime":"2026-11-10T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","accountId":"111122223333","userName":"a"}}}}"#
        )
    };
    let lines = [
        good("e1"),
        "{not json".into(),
        r#"{"eventVersion":"1.09","eventID":"e3","eventSource":"s","eventName":"n"}"#.into(),
        good("e4"),
    ]
    .join("\n");
    let jsonl = input.path().join("trail.jsonl.gz");
    std::fs::write(&jsonl, gz(lines.as_bytes())).unwrap();
    // An S3 object cut short: the records before the cut still count.
    let s3 = input.path().join("cut.json.gz");
    let doc = format!(
        r#"{{"Records":[{},{},{{"eventID":"e7","#,
        good("e5"),
        good("e6")
    );
    std::fs::write(&s3, gz(doc.as_bytes())).unwrap();
    let junk = input.path().join("notes.txt");
    std::fs::write(&junk, b"hello").unwrap();

    let mut e = Engine::open(dir.path()).unwrap();
    let r = ingest(&mut e, &[jsonl.clone(), s3.clone(), junk]);
    assert_eq!(r.per_source["cloudtrail"].accepted, 4);
    assert_eq!(r.unrecognized_explicit, 1);
    assert_eq!(r.rejected, 4, "{:?}", r.rejections);
    let dl = e.dead_letters(10).unwrap();
    let at: Vec<(String, u64)> = dl
        .iter()
        .map(|d| {
            (
                Path::new(&d.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                d.diagnostic.line,
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            ("trail.jsonl.gz".into(), 2),
            ("trail.jsonl.gz".into(), 3),
            ("cut.json.gz".into(), 1),
            ("notes.txt".into(), 1)
        ]
    );
    assert!(
        dl[0]
            .diagnostic
            .reason
            .to_string()
            .starts_with("invalid JSON")
    );
    assert_eq!(dl[1].diagnostic.reason, "missing `eventTime`");
    assert_eq!(dl[2].diagnostic.record, Some(2));
    assert_eq!(e.event_count().unwrap(), 4);
    assert_eq!(get(&e, "arn:aws:iam::111122223333:user/a").event_count, 4);
}
