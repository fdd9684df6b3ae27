//! `keyward serve --poll`: a directory tree and an S3 tree (moto, as CloudTrail delivers a
//! trail: gzipped `{"Records": […]}` objects under `AWSLogs/…`) taken in while the server
//! runs — what a round takes is what `keyward ingest` of the same files takes, a file is
//! taken once, a restarted server counts nothing twice. The S3 test needs
//! `KEYWARD_TEST_AWS_ENDPOINT` (`../shared/tools/aws/moto-up`) and says it was skipped
//! without it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{estate, keyward, serve_with, text};
use serde_json::Value;

/// The `after` of every audit entry of `action`, oldest first.
fn audited(data: &Path, action: &str) -> Vec<Value> {
    let o = keyward(data, &["audit", "export"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == action)
        .map(|e| serde_json::from_str(e["after"].as_str().unwrap()).unwrap())
        .collect()
}

/// The poll rounds that took something in, oldest first.
fn rounds(data: &Path) -> Vec<Value> {
    audited(data, "ingest.poll")
}

/// Waits until `data` holds `n` poll rounds; returns them.
fn wait_rounds(data: &Path, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let r = rounds(data);
        if r.len() >= n {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} poll round(s) after 60 s, {n} expected: {r:?}",
            r.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn sum(rounds: &[Value], field: &str) -> u64 {
    rounds.iter().map(|r| r[field].as_u64().unwrap()).sum()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_polled_directory_is_taken_in_once_as_ingest_takes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let data = tmp.path().join("data");
    let poll = ["--poll", inbox.to_str().unwrap(), "--poll-interval", "1"];
    let served = serve_with(&data, &[], &poll);
    // The estate lands while the server runs, at once (copied aside, settled, then moved
    // in, as a shipper that renames its files delivers): the files a round takes are
    // judged in their order, and rules that read context (an owner's departure, from
    // `people.csv`) depend on it. `keyward ingest` of the same files is the reference.
    let staging = tmp.path().join("staging");
    copy_tree(&estate(), &staging);
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::remove_dir(&inbox).unwrap();
    std::fs::rename(&staging, &inbox).unwrap();
    let reference = tmp.path().join("reference");
    let o = keyward(&reference, &["ingest", inbox.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let accepted = audited(&reference, "ingest")[0]["accepted"]
        .as_u64()
        .unwrap();
    // Taken in one round, or (a round falling while the copy settled) in a few.
    let start = Instant::now();
    let first = loop {
        let r = rounds(&data);
        if sum(&r, "accepted") >= accepted {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{r:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(sum(&first, "accepted"), accepted, "{first:?}");
    assert_eq!(sum(&first, "rejected"), 0, "{first:?}");
    let n = first.len();

    // The same inventory and findings as `keyward ingest`.
    let answers = |d: &Path| {
        let inv = keyward(d, &["inventory", "--format", "json"]);
        let found = keyward(d, &["findings", "--format", "json"]);
        let ids = |o: &std::process::Output| -> Vec<String> {
            let all: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
            let mut v: Vec<String> = all
                .iter()
                .map(|f| format!("{} {} {}", f["rule_id"], f["identity"], f["count"]))
                .collect();
            v.sort();
            v
        };
        (text(&inv.stdout), ids(&found))
    };
    let (got, want) = (answers(&data), answers(&reference));
    assert_eq!(got.0, want.0, "the inventory ({n} round(s): {first:?})");
    assert_eq!(got.1, want.1, "the findings ({n} round(s): {first:?})");

    // A new file: the next round takes it alone.
    let extra = inbox.join("late").join("cloudtrail.json");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    let late = serde_json::json!({"Records": [late_record("late-1"), late_record("late-2")]});
    std::fs::write(&extra, late.to_string()).unwrap();
    let second = wait_rounds(&data, n + 1);
    assert_eq!(second[n]["files"], 1, "{second:?}");
    assert_eq!(second[n]["accepted"], 2, "{second:?}");
    // Nothing new: no round.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rounds(&data).len(), n + 1);

    // A restarted server reads the files again and finds them all unchanged.
    drop(served);
    let _served = serve_with(&data, &[], &poll);
    let third = wait_rounds(&data, n + 2);
    assert_eq!(third[n + 1]["files"], 0, "{third:?}");
    assert_eq!(third[n + 1]["accepted"], 0, "{third:?}");
    assert!(
        third[n + 1]["unchanged"].as_u64().unwrap() > 10,
        "{third:?}"
    );
}

/// A CloudTrail record of the estate's account, new to it.
fn late_record(id: &str) -> Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDALATE",
            "arn": "arn:aws:iam::111122223333:user/late-poller", "accountId": "111122223333",
            "accessKeyId": "AKIALATEPOLLER000001", "userName": "late-poller"},
        "eventTime": "2026-11-30T12:00:00Z", "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "eventID": format!("00000000-0000-4000-8000-{id:0>12}"), "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": "111122223333", "eventCategory": "Management"
    })
}

#[cfg(feature = "aws")]
#[test]
fn a_polled_s3_tree_is_taken_in_as_cloudtrail_delivers_it() {
    use std::io::Write as _;

    use keyward_respond::aws::sdk::aws_sdk_s3 as s3;
    use keyward_respond::aws::static_config;

    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        println!("skipped: KEYWARD_TEST_AWS_ENDPOINT is not set (../shared/tools/aws/moto-up)");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = static_config(&endpoint, "us-east-1", "testing", "testing", None);
    let client = s3::Client::from_conf(
        s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("kw-poll-{}", std::process::id());
    rt.block_on(client.create_bucket().bucket(&bucket).send())
        .unwrap();
    let put = |key: &str, ids: &[&str]| {
        let records: Vec<Value> = ids.iter().map(|i| late_record(i)).collect();
        let doc = serde_json::json!({ "Records": records }).to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(doc.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        rt.block_on(
            client
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.into())
                .send(),
        )
        .unwrap();
    };
    let dir = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30";
    let name =
        |n: u32| format!("{dir}/111122223333_CloudTrail_us-east-1_20261130T12{n:02}Z_x{n}.json.gz");
    put(&name(0), &["s3-1", "s3-2", "s3-3"]);
    // Outside the prefix: never taken.
    put("elsewhere/other.json.gz", &["s3-9"]);

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tree = format!("s3://{bucket}/AWSLogs/");
    let poll = ["--poll", tree.as_str(), "--poll-interval", "1"];
    let served = serve_with(&data, &[], &poll);
    let first = wait_rounds(&data, 1);
    assert_eq!(
        (first[0]["files"].as_u64(), first[0]["accepted"].as_u64()),
        (Some(1), Some(3)),
        "{first:?}"
    );

    put(&name(5), &["s3-4"]);
    let second = wait_rounds(&data, 2);
    assert_eq!(
        (second[1]["files"].as_u64(), second[1]["accepted"].as_u64()),
        (Some(1), Some(1)),
        "{second:?}"
    );
    // The identity and its four calls.
    let o = keyward(
        &data,
        &["show", "arn:aws:iam::111122223333:user/late-poller"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Nothing is left in the spool.
    let spooled = walk_count(&data.join("spool"));
    assert_eq!(spooled, 0, "files left in the spool");

    // Restarted: the objects are read again, found unchanged, nothing counted twice.
    drop(served);
    let _served = serve_with(&data, &[], &poll);
    let third = wait_rounds(&data, 3);
    assert_eq!(
        (
            third[2]["files"].as_u64(),
            third[2]["unchanged"].as_u64(),
            third[2]["accepted"].as_u64()
        ),
        (Some(0), Some(2), Some(0)),
        "{third:?}"
    );
    // The file rows name the bucket and key.
    let o = keyward(&data, &["audit", "export"]);
    assert!(
        text(&o.stdout).contains(&format!("s3/{bucket}/AWSLogs/111122223333")),
        "{}",
        text(&o.stdout)
    );
}

#[cfg(feature = "aws")]
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}
