//! Regression tests for damaged input, concurrent processes and what the binary prints,
//! through the real `keyward` binary; each is named after what broke.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{estate, http, keyward, spawn, text};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn record(n: usize, user: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
            "arn": format!("arn:aws:iam::111122223333:user/{user}"),
            "accountId": "111122223333", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": user},
        "eventTime": format!("2026-11-20T10:{:02}:{:02}Z", n / 60 % 60, n % 60),
        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2",
        "eventID": format!("00000000-0000-0000-0000-{n:012}"), "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    })
}

fn s3_object(range: std::ops::Range<usize>, user: &str) -> Vec<u8> {
    let records: Vec<_> = range.map(|n| record(n, user)).collect();
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
}

#[test]
fn one_damaged_gzip_does_not_lose_the_other_files() {
    let data = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let dir = input.path();
    std::fs::write(dir.join("a-good.json.gz"), gzip(&s3_object(0..10, "good"))).unwrap();
    // An interrupted `aws s3 sync`: half of a gzip.
    let whole = gzip(&s3_object(10..3000, "cut"));
    std::fs::write(dir.join("b-truncated.json.gz"), &whole[..whole.len() / 2]).unwrap();
    // A whole gzip member followed by garbage.
    let mut tail = gzip(&s3_object(3000..3005, "tail"));
    tail.extend_from_slice(b"trailing garbage");
    std::fs::write(dir.join("c-trailing.json.gz"), tail).unwrap();
    std::fs::write(
        dir.join("d-good.json.gz"),
        gzip(&s3_object(4000..4010, "late")),
    )
    .unwrap();

    let o = keyward(
        data.path(),
        &["ingest", "--no-detect", dir.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("b-truncated.json.gz:1: the file is damaged here"),
        "{err}"
    );
    assert!(
        err.contains("c-trailing.json.gz:1: the file is damaged here"),
        "{err}"
    );
    assert!(text(&o.stdout).contains("2 damaged"), "{}", text(&o.stdout));
    // Every good file, the records before each damage, and the whole member before the
    // garbage are stored.
    let users = keyward(
        data.path(),
        &["inventory", "--format", "json", "--kind", "iam_user"],
    );
    let users = text(&users.stdout);
    for u in ["user/good", "user/late", "user/tail", "user/cut"] {
        assert!(users.contains(u), "{u} missing: {users}");
    }
    let letters = keyward(data.path(), &["dead-letters"]);
    assert!(
        text(&letters.stdout).contains("damaged"),
        "{}",
        text(&letters.stdout)
    );
}

#[test]
fn reingest_changes_no_finding_count_or_last_seen() {
    let data = tempfile::tempdir().unwrap();
    let e = estate();
    let e = e.to_str().unwrap();
    assert!(keyward(data.path(), &["ingest", e]).status.success());
    let before = keyward(data.path(), &["findings", "--format", "json"]).stdout;
    let inv_before = keyward(data.path(), &["inventory", "--format", "json"]).stdout;
    assert!(before.len() > 1000);
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["ingest"];
        args.extend_from_slice(extra);
        args.push(e);
        assert!(keyward(data.path(), &args).status.success());
        let after = keyward(data.path(), &["findings", "--format", "json"]).stdout;
        assert!(before == after, "findings changed after ingest {extra:?}");
        let inv = keyward(data.path(), &["inventory", "--format", "json"]).stdout;
        assert!(
            inv_before == inv,
            "inventory changed after ingest {extra:?}"
        );
    }
}

/// The estate split in two halves that two processes ingest.
fn halves() -> [PathBuf; 2] {
    let e = estate();
    [e.join("AWSLogs"), e.join("k8s")]
}

fn snapshot(data: &Path) -> (Vec<u8>, Vec<u8>) {
    let inv = keyward(data, &["inventory", "--format", "json"]).stdout;
    let findings = keyward(data, &["findings", "--format", "json"]).stdout;
    // Finding ids, rule, identity and count: what a user triages.
    let v: serde_json::Value = serde_json::from_slice(&findings).unwrap();
    let mut rows: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f["id"], f["rule_id"], f["identity"], f["count"], f["status"]
            )
        })
        .collect();
    rows.sort();
    (inv, rows.join("\n").into_bytes())
}

#[test]
fn concurrent_ingests_equal_a_serial_run() {
    let [a, b] = halves();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let serial = tempfile::tempdir().unwrap();
    assert!(keyward(serial.path(), &["ingest", a]).status.success());
    assert!(keyward(serial.path(), &["ingest", b]).status.success());
    // Posture judged after the first half differs by which half came first (a role is
    // stale until the other half's events show it used, then that finding is resolved):
    // a concurrent run must give what one of the two serial orders gives.
    let reversed = tempfile::tempdir().unwrap();
    assert!(keyward(reversed.path(), &["ingest", b]).status.success());
    assert!(keyward(reversed.path(), &["ingest", a]).status.success());
    let wants = [snapshot(serial.path()), snapshot(reversed.path())];
    assert!(
        wants[0].0 == wants[1].0,
        "the inventory does not depend on the order"
    );
    for round in 0..3 {
        // A new data dir (schema set-up races), then an existing one.
        let data = tempfile::tempdir().unwrap();
        let kids = [
            spawn(data.path(), &["ingest", a]),
            spawn(data.path(), &["ingest", b]),
            spawn(data.path(), &["ingest", a]),
        ];
        for k in kids {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", text(&o.stderr));
        }
        let got = snapshot(data.path());
        assert!(got.0 == wants[0].0, "round {round}: inventories differ");
        assert!(
            wants.iter().any(|w| w.1 == got.1),
            "round {round}: findings differ from both serial runs:\n{}\n--- serial:\n{}",
            text(&got.1),
            text(&wants[0].1)
        );
        assert_eq!(
            keyward(data.path(), &["dead-letters"]).stdout,
            keyward(serial.path(), &["dead-letters"]).stdout,
        );
    }
}

#[test]
fn data_dir_and_store_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("new-data");
    let o = keyward(&data, &["inventory"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The store's file, when the store is the embedded one (the PostgreSQL pass keeps the
    // audit keys here, and the rows on the server).
    let file = (!common::suite_on_postgres()).then(|| data.join("keyward.db"));
    assert_eq!(mode(&data), 0o700);
    if let Some(f) = &file {
        assert_eq!(mode(f), 0o600);
    }
    // An existing store with loose modes is tightened when opened.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(f) = &file {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert!(keyward(&data, &["inventory"]).status.success());
    assert_eq!(mode(&data), 0o700);
    if let Some(f) = &file {
        assert_eq!(mode(f), 0o600);
    }
}

#[test]
fn control_characters_from_ingested_data_are_escaped() {
    let data = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let user = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\rname\u{9b}31m";
    let file = input.path().join("trail.json");
    std::fs::write(&file, s3_object(0..2, user)).unwrap();
    assert!(
        keyward(data.path(), &["ingest", file.to_str().unwrap()])
            .status
            .success()
    );
    for args in [
        &["inventory"][..],
        &["inventory", "--format", "csv"][..],
        &["inventory", "--format", "json"][..],
        &["show", "arn:aws:iam::111122223333:user/evil"][..],
        &["findings"][..],
    ] {
        let o = keyward(data.path(), args);
        let out = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        let shown = text(&out);
        assert!(
            !shown.contains(['\u{1b}', '\u{7}', '\r', '\u{9b}']),
            "{args:?} printed a control character: {shown:?}"
        );
    }
    let o = keyward(data.path(), &["inventory"]);
    assert!(
        text(&o.stdout).contains("evil\\u001b]0;owned"),
        "{}",
        text(&o.stdout)
    );
    // JSON stays JSON, with the name intact.
    let o = keyward(data.path(), &["inventory", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v.as_array().unwrap().iter().any(|i| i["name"] == user),
        "{v}"
    );
}

#[test]
fn dead_letters_do_not_echo_values() {
    let data = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let secret = "kw_5ecret5ecret5ecret";
    let file = input.path().join("people.csv");
    std::fs::write(
        &file,
        format!(
            "email,name,team,status\nann@acme.example,Ann,ops,{secret}\n{secret},Bob,ops,active\n"
        ),
    )
    .unwrap();
    let o = keyward(data.path(), &["ingest", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let letters = keyward(data.path(), &["dead-letters"]);
    for out in [&o.stdout, &o.stderr, &letters.stdout, &letters.stderr] {
        assert!(!text(out).contains("5ecret"), "{}", text(out));
    }
    // An unknown status is a warning (the row is kept), and it does not echo the value.
    assert!(
        text(&o.stderr).contains("`status` is not a known status"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&letters.stdout).contains("`email`"),
        "{}",
        text(&letters.stdout)
    );
}

#[test]
fn a_server_and_cli_ingests_share_a_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let o = keyward(
        data.path(),
        &["token", "create", "--role", "operator", "--name", "t"],
    );
    let token = text(&o.stdout).trim().to_owned();
    let server = common::serve(data.path());
    let port = server.port;
    // A CLI ingest and server ingests at the same time: both succeed.
    let e = estate();
    let cli = spawn(
        data.path(),
        &["ingest", e.join("AWSLogs").to_str().unwrap()],
    );
    let lines: Vec<u8> = (0..50)
        .flat_map(|n| {
            let mut l = serde_json::to_vec(&record(90_000 + n, "via-server")).unwrap();
            l.push(b'\n');
            l
        })
        .collect();
    for _ in 0..3 {
        let (status, body) = http(port, "POST", "/api/ingest", &token, &lines);
        assert_eq!(status, 200, "{body}");
    }
    let o = cli.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The server answers from what the CLI wrote, and the CLI sees what the server wrote.
    let cli_view = keyward(data.path(), &["inventory", "--format", "json"]);
    let cli_view: serde_json::Value = serde_json::from_slice(&cli_view.stdout).unwrap();
    let (status, body) = http(port, "GET", "/api/identities?limit=1", &token, b"");
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        api["total"].as_u64(),
        Some(cli_view.as_array().unwrap().len() as u64)
    );
    let names = serde_json::to_string(&cli_view).unwrap();
    assert!(names.contains("user/via-server"), "the server's writes");
    assert!(cli_view.as_array().unwrap().len() > 50, "the CLI's writes");
}

#[test]
fn a_gzip_bomb_file_stops_at_its_limit() {
    let data = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let dir = input.path();
    // 32 MiB of a record's worth of spaces after its last byte: a thousand-fold expansion.
    let mut content = s3_object(0..5, "before-bomb");
    content.extend(std::iter::repeat_n(b' ', 32 << 20));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&content).unwrap();
    std::fs::write(dir.join("bomb.json.gz"), enc.finish().unwrap()).unwrap();
    std::fs::write(
        dir.join("good.json.gz"),
        gzip(&s3_object(10..12, "after-bomb")),
    )
    .unwrap();
    let o = keyward(
        data.path(),
        &["ingest", "--no-detect", dir.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("expands past"),
        "{}",
        text(&o.stderr)
    );
    let users = keyward(
        data.path(),
        &["inventory", "--format", "json", "--kind", "iam_user"],
    );
    let users = text(&users.stdout);
    assert!(
        users.contains("user/before-bomb") && users.contains("user/after-bomb"),
        "{users}"
    );
}
