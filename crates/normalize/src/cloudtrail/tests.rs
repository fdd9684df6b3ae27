//! Tests of the CloudTrail reader: every shape, the fast path against serde, the memo.

use super::*;

/// UTF-8 is checked block by block: records holding multi-byte characters, across the
/// blocks' ends, all take the fast path; a block with invalid bytes sends only its own
/// records to serde, and parsing goes on.
#[test]
fn utf8_checked_by_block() {
    let record = |i: usize| {
        format!(
            r#"{{"eventVersion":"1.08","eventID":"e{i}","eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userAgent":"ünïcödé 🔑 {}"}}"#,
            "é".repeat(i % 977)
        )
    };
    let n = 2_000;
    let body: Vec<String> = (0..n).map(record).collect();
    let array = format!("[{}]", body.join(",")).into_bytes();
    assert!(array.len() > 4 * UTF8_BLOCK);
    let walk = |array: &[u8]| {
        let mut checked = Checked::new(array, 0, 0, UTF8_BLOCK);
        let mut elements = crate::split::elements(array);
        let (mut fast_ok, mut slow, mut again) = (0, 0, 0);
        while let Some(Ok(start)) = elements.start() {
            let mut rec = Record::default();
            let end = match checked.fast(array, start, &mut rec) {
                Some(end) => {
                    elements.ended_at(end);
                    Some(end)
                }
                None => {
                    let raw = elements.element(start).unwrap();
                    let end = start + raw.len();
                    let retried = checked.again(array, start, end, &mut rec);
                    again += usize::from(retried.is_some());
                    retried
                }
            };
            if let Some(end) = end {
                let raw = std::str::from_utf8(&array[start..end]).unwrap();
                assert!(raw.starts_with('{') && raw.ends_with('}'), "{raw}");
                let want = format!("e{}", fast_ok + slow);
                assert_eq!(rec.event_id.get(), Some(want.as_str()));
                fast_ok += 1;
            } else {
                slow += 1;
            }
        }
        (fast_ok, slow, again)
    };
    // Any block size reads the document as one block does.
    let doc = [&b"{\"Records\":"[..], &array, b"}"].concat();
    for block in [1, 2, 3, 7, 64, 1000, 4096] {
        assert_eq!(blocks_agree(&doc, block), Ok(n));
    }
    // Every block's end cuts a record, tried again from its start.
    let (fast_ok, slow, again) = walk(&array);
    assert_eq!((fast_ok, slow), (n, 0));
    assert!(again >= 4, "{again}");
    assert_eq!(parse_only(&array), n);
    // One invalid byte inside a user agent, past the first block.
    let mut bad = array.clone();
    let at = bad
        .windows(4)
        .enumerate()
        .skip(UTF8_BLOCK + 1000)
        .find(|(_, w)| w == b"\xc3\xbcn\xc3")
        .map(|(i, _)| i)
        .unwrap();
    bad[at] = 0xff;
    let (fast_ok, slow, _) = walk(&bad);
    assert_eq!(fast_ok + slow, n);
    assert!(slow >= 1 && fast_ok > n / 2, "{fast_ok} {slow}");
    let bad_doc = [&b"{\"Records\":"[..], &bad, b"}"].concat();
    for block in [1, 5, 300, 70_000] {
        assert_eq!(blocks_agree(&bad_doc, block), Ok(n));
    }
}

/// CloudTrail records from the corpora: the Stratus detonation logs and Panther's
/// CloudTrail samples (compact and pretty-printed).
fn corpus_records() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(root) = keyward_testkit::corpora() else {
        return out;
    };
    let dir = root.join("aws-cloudtrail-stratus-detonations/detonation-logs");
    for path in keyward_testkit::sorted_dir(&dir) {
        let doc = std::fs::read(path).unwrap();
        for raw in crate::split::elements(trim_start(&doc)) {
            out.push(raw.unwrap().to_vec());
        }
    }
    let panther = root.join("panther-labelled-events/events/AWS.CloudTrail.jsonl");
    for line in std::fs::read_to_string(panther).unwrap().lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        out.push(serde_json::to_vec(&t["event"]).unwrap());
        out.push(serde_json::to_vec_pretty(&t["event"]).unwrap());
    }
    out
}

/// The fast path reads every record it decides exactly as serde does, and decides
/// nearly all real ones.
#[test]
fn fast_path_reads_as_serde_does() {
    let records = corpus_records();
    if records.is_empty() {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    }
    let mut decided = 0;
    for r in &records {
        match fast_path_agrees(r) {
            Ok(d) => decided += usize::from(d),
            Err(e) => panic!("{e}\nrecord: {}", String::from_utf8_lossy(r)),
        }
    }
    println!("fast path decided {decided} of {} records", records.len());
    assert!(
        decided * 10 >= records.len() * 9,
        "{decided} of {}",
        records.len()
    );
}

/// Damaged records: every byte of a sample of real records deleted, or replaced by a
/// byte that matters to JSON. The fast path never accepts what serde rejects, and
/// reads the same where both accept.
#[test]
fn fast_path_agrees_on_damaged_records() {
    let mut records = corpus_records();
    records.truncate(40);
    records.push(
        br#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::1:assumed-role/r/s","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r"},"webIdentityFederationData":{},"webIdFederationData":{"federatedProvider":"p","attributes":{"a":"1","a":"2","b":null}}}},"eventTime":"2026-11-10T00:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","requestParameters":{"roleArn":"arn","durationSeconds":3600,"x":[1.5e3,-0,{"y":[]}]},"responseElements":{"credentials":{"accessKeyId":"ASIA"},"user":"a string","role":[1],"accessKey":null},"readOnly":true,"errorCode":"a\"b\\c\/d\ne"}"#
            .to_vec(),
    );
    let (mut decided, mut total) = (0, 0);
    for r in &records {
        let step = (r.len() / 300).max(1);
        for i in (0..r.len()).step_by(step) {
            let mut variants = vec![[&r[..i], &r[i + 1..]].concat()];
            for b in [
                b'"', b'\\', b'{', b'}', b'[', b',', b':', b'1', b'n', 1, 0xff,
            ] {
                let mut v = r.clone();
                v[i] = b;
                variants.push(v);
            }
            variants.push(r[..i].to_vec());
            for v in variants {
                match fast_path_agrees(&v) {
                    Ok(d) => decided += usize::from(d),
                    Err(e) => panic!("{e}\nrecord: {}", String::from_utf8_lossy(&v)),
                }
                total += 1;
            }
        }
    }
    println!("fast path decided {decided} of {total} damaged records");
    assert!(decided > 0);
}

/// Edge cases of the lenient field types, each decided by the fast path.
#[test]
fn fast_path_reads_lenient_fields_as_serde_does() {
    for r in [
        r#"{"eventName":null,"eventSource":true,"awsRegion":false,"userAgent":{"a":1},"errorCode":[]}"#,
        r#"{"userIdentity":null,"requestParameters":"text","responseElements":[{"a":1}]}"#,
        r#"{"userIdentity":{"type":{"x":1},"arn":null,"sessionContext":true}}"#,
        r#"{"responseElements":{"credentials":{},"federatedUser":{"arn":"a","arn2":"b"}}}"#,
        r#" { "eventID" : "a" , "eventTime" : "" } "#,
        r#"{}"#,
    ] {
        assert_eq!(fast_path_agrees(r.as_bytes()), Ok(true), "{r}");
    }
    // Left to serde: numbers where a field is read, duplicates, `\u` escapes,
    // escaped keys, a wrapped record, a record that is not an object.
    for r in [
        r#"{"eventName":1}"#,
        r#"{"eventName":"a","eventName":"b"}"#,
        r#"{"userIdentity":{"arn":"a","arn":"b"}}"#,
        r#"{"eventName":"\u0041"}"#,
        r#"{"event\u004eame":"a"}"#,
        r#"{"CloudTrailEvent":"{}"}"#,
        r#"["a"]"#,
    ] {
        assert_eq!(fast_path_agrees(r.as_bytes()), Ok(false), "{r}");
    }
}

#[test]
fn java_dates() {
    assert_eq!(
        parse_time("Nov 10, 2026 8:15:02 AM"),
        time::parse("2026-11-10T08:15:02Z")
    );
    assert_eq!(
        parse_time("Nov 10, 2026, 8:15:02 PM"),
        time::parse("2026-11-10T20:15:02Z")
    );
    assert_eq!(
        parse_time("Jan 1, 2026 12:00:00 AM"),
        time::parse("2026-01-01T00:00:00Z")
    );
    assert_eq!(parse_time("garbage"), None);
}

#[test]
fn github_subjects() {
    let v = github_subject("repo:acme/api:ref:refs/heads/main").unwrap();
    assert_eq!(v["repository"], "acme/api");
    assert_eq!(v["branch"], "main");
    let v = github_subject("repo:acme/api:environment:production").unwrap();
    assert_eq!(v["environment"], "production");
    let v = github_subject("repo:acme/api:pull_request").unwrap();
    assert_eq!(v["pull_request"], true);
    let v = github_subject("repo:acme/api:environment:prod:job_workflow_ref:acme/wf/.github/workflows/d.yml@refs/heads/main").unwrap();
    assert_eq!(
        v["job_workflow_ref"],
        "acme/wf/.github/workflows/d.yml@refs/heads/main"
    );
    assert_eq!(github_subject("system:serviceaccount:a:b"), None);
    assert_eq!(
        irsa_subject("system:serviceaccount:orders:api"),
        Some(("orders", "api"))
    );
}

/// Records parsed ahead reach the sink exactly as if each went on its own: every
/// record, accepted or rejected, in document order, and a document cut short still
/// yields every record before the cut.
#[test]
fn records_reach_the_sink_in_order() {
    #[derive(Default)]
    struct Log(Vec<String>);
    impl Sink for Log {
        fn accept(&mut self, out: Output<'_>) {
            let e = out.event.unwrap();
            self.0.push(format!("ok {}", e.native_id));
        }
        fn reject(&mut self, d: Diagnostic) {
            self.0.push(format!("err {:?}", d.record));
        }
    }
    let mut doc = String::from(r#"{"Records":["#);
    let mut want = Vec::new();
    for n in 0..40 {
        if n > 0 {
            doc.push(',');
        }
        if n == 7 || n == 23 {
            doc.push_str("[1]");
            want.push(format!("err Some({n})"));
        } else {
            doc.push_str(&format!(
                r#"{{"eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e{n}","userIdentity":{{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}}}"#
            ));
            want.push(format!("ok e{n}"));
        }
    }
    let whole = format!("{doc}]}}");
    let mut log = Log::default();
    normalize_document(whole.as_bytes(), &mut CallerMemo::default(), &mut log);
    assert_eq!(log.0, want);
    // Cut inside the 41st record: the 40 before it, then the cut.
    let cut = format!(r#"{doc},{{"eventTime":"2026-11"#);
    let mut log = Log::default();
    normalize_document(cut.as_bytes(), &mut CallerMemo::default(), &mut log);
    assert_eq!(log.0.get(..40), Some(&want[..]));
    assert_eq!(log.0.get(40..), Some(&["err Some(40)".to_owned()][..]));
}

/// The fields handed to rules are exact by JSON type: a string (even empty) or an
/// absent field under an object the parser read; anything else stays unknown.
#[test]
fn known_fields_are_exact() {
    let rec = |ui: &str| {
        format!(
            r#"{{"eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{ui}}}"#
        )
    };
    let known = |ui: &str| {
        let doc = rec(ui);
        normalize_record(doc.as_bytes())
            .unwrap()
            .unwrap()
            .into_owned()
            .read_fields
    };
    let k = known(
        r#"{"type":"AssumedRole","arn":"","sessionContext":{"sessionIssuer":{"type":"Role"}}}"#,
    );
    assert_eq!(k.get("userIdentity.type"), Some(Some("AssumedRole")));
    assert_eq!(k.get("userIdentity.arn"), Some(Some("")));
    assert_eq!(
        k.get("userIdentity.sessionContext.sessionIssuer.type"),
        Some(Some("Role"))
    );
    let k = known(r#"{"type":7,"arn":null}"#);
    assert_eq!(k.get("userIdentity.type"), None);
    assert_eq!(k.get("userIdentity.arn"), None);
    // No session context: the issuer's type is not answered here.
    assert_eq!(
        k.get("userIdentity.sessionContext.sessionIssuer.type"),
        None
    );
    let k = known(r#"{"accountId":"111122223333"}"#);
    assert_eq!(k.get("userIdentity.type"), Some(None));
    assert_eq!(known(r#""AssumedRole""#).get("userIdentity.type"), None);
}
