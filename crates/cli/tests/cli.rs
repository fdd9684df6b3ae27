//! The `keyward` binary as a user runs it: exit statuses, output formats, the demo.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Command, Output};

use common::{estate, keyward};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ingest_inventory_show() {
    let dir = tempfile::tempdir().unwrap();
    let e = estate();
    let o = keyward(dir.path(), &["ingest", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("cloudtrail") && out.contains("k8s-snapshot"),
        "{out}"
    );
    assert!(
        o.stderr.is_empty() || !stderr(&o).contains('\u{1b}'),
        "no progress bar when not a terminal"
    );

    let o = keyward(
        dir.path(),
        &[
            "inventory",
            "--format",
            "json",
            "--as-of",
            "2026-11-16T00:00:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rows.len() > 100);
    for key in [
        "id",
        "platform",
        "kind",
        "name",
        "arn",
        "account",
        "cluster",
        "namespace",
        "subject",
        "created",
        "last_used",
        "state",
        "sources",
        "evidence",
    ] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "`{key}` missing");
    }
    let reporting = rows.iter().find(|r| r["name"] == "svc-reporting").unwrap();
    assert_eq!(reporting["state"], "stale");
    assert_eq!(
        reporting["arn"],
        "arn:aws:iam::111122223333:user/svc-reporting"
    );

    let o = keyward(
        dir.path(),
        &[
            "inventory",
            "--kind",
            "service_account",
            "--namespace",
            "payments",
            "--format",
            "csv",
        ],
    );
    let csv = stdout(&o);
    assert!(csv.starts_with("id,platform,kind,name,"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",service_account,")));
    assert!(csv.contains("debug-sa"));

    let o = keyward(
        dir.path(),
        &[
            "inventory",
            "--state",
            "stale",
            "--platform",
            "aws",
            "--as-of",
            "2026-11-16T00:00:00Z",
        ],
    );
    let table = stdout(&o);
    assert!(
        table.contains("legacy-batch-role") && !table.contains("lambda-orders-processor"),
        "{table}"
    );

    let o = keyward(
        dir.path(),
        &["show", "svc-ci-legacy", "--as-of", "2026-11-16T00:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("access_key_1") && text.contains("recent events"),
        "{text}"
    );

    let o = keyward(dir.path(), &["show", "default"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("matches"), "ambiguous names say so");

    let o = keyward(dir.path(), &["graph", "paths", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths = v["paths"].as_array().unwrap();
    let tf = paths
        .iter()
        .find(|p| p["from"] == "arn:aws:iam::111122223333:user/terraform-runner")
        .expect("terraform-runner escalates");
    assert_eq!(tf["steps"][0]["technique"], "iam-019");
    assert_eq!(
        tf["steps"][0]["to"],
        "arn:aws:iam::111122223333:role/reports-exporter"
    );
    assert!(
        v["admin_equivalent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "arn:aws:iam::111122223333:user/alice")
    );
    let o = keyward(dir.path(), &["graph", "paths", "--from", "svc-backup"]);
    assert!(
        stdout(&o).contains("escalation paths to admin: 0"),
        "{}",
        stdout(&o)
    );

    let o = keyward(dir.path(), &["inventory", "--kind", "robot"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    assert!(stderr(&o).contains("unknown kind `robot`"));
}

#[test]
fn exit_status_says_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let bad = input.path().join("trail.jsonl");
    std::fs::write(&bad, "{\"eventVersion\":\"1.09\",\"eventID\":\"a\",\"eventTime\":\"2026-11-10T10:00:00Z\",\"eventSource\":\"s\",\"eventName\":\"n\"}\n{oops\n").unwrap();
    let o = keyward(dir.path(), &["ingest", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "rejected records → 2");
    assert!(
        stderr(&o).contains("trail.jsonl:2: invalid JSON"),
        "{}",
        stderr(&o)
    );
    let o = keyward(dir.path(), &["dead-letters"]);
    assert!(stdout(&o).contains("trail.jsonl:2: invalid JSON"));

    let o = keyward(dir.path(), &["ingest", "/nonexistent/keyward-input"]);
    assert_eq!(o.status.code(), Some(1), "fatal → 1");
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));

    let e = estate();
    let o = keyward(dir.path(), &["ingest", e.join("aws").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "clean → 0: {}", stderr(&o));
}

/// `[` × 50,000 and a CloudTrail record nested 1,000,000 deep aborted `keyward ingest`
/// with a stack overflow (exit 134): now each is a dead letter with its reason (exit 2),
/// and the records around the deep one are stored.
#[test]
fn deep_nesting_is_a_dead_letter_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let open = input.path().join("open.json");
    std::fs::write(&open, "[".repeat(50_000)).unwrap();
    let record = |id: &str, rp: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventID":"{id}","eventTime":"2026-11-10T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","accountId":"111122223333"}},"requestParameters":{rp}}}"#
        )
    };
    let depth = 1_000_000;
    let deep = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let lines = input.path().join("trail.jsonl");
    let trail = format!(
        "{}
{}
",
        record("a", "{}"),
        record("b", &deep)
    );
    std::fs::write(&lines, &trail).unwrap();
    let s3 = input.path().join("s3.json");
    let doc = format!(
        "{{\"Records\":[{},\n{},\n{}]}}",
        record("c", "{}"),
        record("d", &deep),
        record("e", "{}")
    );
    std::fs::write(&s3, doc).unwrap();
    for (file, letter) in [
        (&open, "open.json:1: nested deeper than 100"),
        (&lines, "trail.jsonl:2: nested deeper than 100"),
        (&s3, "s3.json:2 (record 1): nested deeper than 100"),
    ] {
        let o = keyward(dir.path(), &["ingest", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{letter}: {}", stderr(&o));
        assert!(stderr(&o).contains(letter), "{}", stderr(&o));
        let o = keyward(dir.path(), &["dead-letters"]);
        assert!(stdout(&o).contains(letter), "{}", stdout(&o));
    }
    let o = keyward(dir.path(), &["inventory", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn demo_runs_anywhere() {
    let cwd = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("demo")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "svc-reporting",
        "svc-ci-legacy",
        "debug-sa",
        "svc-temp-migration",
        "repo:acme/payments-api:ref:refs/heads/main",
        "999988887777",
        "old-test-role",
        "Longest role chain",
    ] {
        assert!(out.contains(needle), "demo output lacks `{needle}`:\n{out}");
    }
}

#[test]
fn audit_verify_export_and_anchor_catch_a_truncated_log() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let anchor = outside.path().join("anchor.jsonl");
    for name in ["a", "b"] {
        let o = keyward(
            dir.path(),
            &["token", "create", "--role", "viewer", "--name", name],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let id = {
        let o = keyward(dir.path(), &["audit", "export"]);
        // The first token created (each creation follows its `policy.decide` entry).
        let first: serde_json::Value = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["action"] == "token.create")
            .unwrap();
        first["target"].as_str().unwrap().to_owned()
    };
    let o = keyward(dir.path(), &["token", "revoke", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = keyward(dir.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("audit log intact: 6 entries"),
        "{}",
        stdout(&o)
    );

    // Export: every entry with its seq and MAC; OCSF Account Change for tokens.
    let o = keyward(dir.path(), &["audit", "export", "--format", "jsonl"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each token change follows the policy decision that allowed it.
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[4]["action"], "policy.decide");
    assert_eq!(lines[4]["after"], "allow");
    assert_eq!(lines[5]["seq"], 6);
    assert_eq!(lines[5]["action"], "token.revoke");
    assert_eq!(lines[5]["mac"].as_str().unwrap().len(), 64);
    assert!(lines[0]["actor"].as_str().unwrap().starts_with("cli"));
    let out = outside.path().join("audit.ocsf.jsonl");
    let o = keyward(
        dir.path(),
        &[
            "audit",
            "export",
            "--format",
            "ocsf",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ocsf: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ocsf[1]["class_uid"], 3001);
    assert_eq!(ocsf[5]["type_uid"], 300105);

    // An anchor inside the data directory is refused; outside it, appended.
    let inside = dir.path().join("anchor.jsonl");
    let o = keyward(
        dir.path(),
        &["audit", "anchor", "--to", inside.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("inside the data directory"),
        "{}",
        stderr(&o)
    );
    let o = keyward(
        dir.path(),
        &["audit", "anchor", "--to", anchor.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let a = anchor.to_str().unwrap();
    let o = keyward(dir.path(), &["audit", "verify", "--anchor", a]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // The last entry deleted: intact on its own, broken against the anchor.
    common::tamper(dir.path(), "DELETE FROM audit_log WHERE seq = 6");
    let o = keyward(dir.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("5 entries"), "{}", stdout(&o));
    let o = keyward(dir.path(), &["audit", "verify", "--anchor", a]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("audit log BROKEN at seq 6: truncated"),
        "{}",
        stdout(&o)
    );
    let o = keyward(dir.path(), &["audit", "verify", "--anchor", a, "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["ok"].as_bool(), r["broken"]["seq"].as_i64()),
        (Some(false), Some(6))
    );
}

/// Separate `keyward` processes writing to one store at once keep one linear chain.
#[test]
fn concurrent_processes_do_not_fork_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    // The store (schema) exists before the writers start.
    let o = keyward(dir.path(), &["token", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // All started before any is waited for.
    let spawned: Vec<_> = (0..6)
        .map(|i| {
            common::command(dir.path())
                .args([
                    "token",
                    "create",
                    "--role",
                    "viewer",
                    "--name",
                    &format!("q{i}"),
                ])
                .env_remove("KEYWARD_DATA_DIR")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in spawned {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = keyward(dir.path(), &["audit", "verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Six creations, each after its policy decision.
    assert_eq!(
        (r["ok"].as_bool(), r["entries"].as_u64()),
        (Some(true), Some(12))
    );
}

/// A cluster the path does not name is a guess, and the summary says so; two clusters
/// under deliberate names that share service-account uids are pointed out, and `keyward
/// clusters merge` makes them one (audited).
#[test]
fn cluster_guesses_and_merges_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let k8s = estate().join("k8s/prod-eks");
    for (from, to) in [
        ("rbac-snapshot.json", "k8s/rbac.json"),
        ("audit.jsonl", "k8s/audit/audit.log"),
    ] {
        let to = input.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(k8s.join(from), to).unwrap();
    }
    let data = dir.path().join("data");
    let o = keyward(&data, &["ingest", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("cluster name guessed: default (no cluster in path; pass --cluster)"),
        "{}",
        stdout(&o)
    );

    let data = dir.path().join("data2");
    let rbac = input.join("k8s/rbac.json");
    let audit = input.join("k8s/audit/audit.log");
    let o = keyward(
        &data,
        &[
            "ingest",
            "--no-detect",
            "--cluster",
            "blue",
            rbac.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = keyward(
        &data,
        &[
            "ingest",
            "--no-detect",
            "--cluster",
            "green",
            audit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("`keyward clusters merge blue green`"),
        "{}",
        stdout(&o)
    );
    let o = keyward(&data, &["clusters", "merge", "blue", "green"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("merged `blue` into `green`"),
        "{}",
        stdout(&o)
    );
    let o = keyward(&data, &["clusters", "list"]);
    let out = stdout(&o);
    assert!(out.contains("green") && !out.contains("blue"), "{out}");
    let o = keyward(&data, &["audit", "export"]);
    assert!(stdout(&o).contains("clusters.merge"), "{}", stdout(&o));
}

/// A people directory's unknown status is a warning on its line: the row is kept and the
/// exit status stays 0 (2 is for rejected records).
#[test]
fn an_unknown_person_status_warns_and_exits_clean() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people.csv");
    std::fs::write(
        &people,
        "email,status\na@acme.example,On Leave\nb@acme.example,garden leave\n",
    )
    .unwrap();
    let o = keyward(&dir.path().join("d"), &["ingest", people.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("warnings: 1 record(s)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("people.csv:3: `status` `garden leave`"),
        "{}",
        stderr(&o)
    );
    let o = keyward(
        &dir.path().join("d2"),
        &[
            "ingest",
            "--person-status",
            "Garden Leave=departed",
            people.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("warnings:"), "{}", stdout(&o));
}
