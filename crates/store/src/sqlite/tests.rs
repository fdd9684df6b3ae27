//! Tests of the SQLite store.

use super::*;
use keyward_model::{IdentityKind, Platform, SourceKind};

fn event(stage: u8) -> Event<'static> {
    Event {
        native_id: "a".into(),
        source: SourceKind::K8sAudit,
        time: 5,
        action: "get pods".into(),
        actor: Some("x".into()),
        source_ip: None,
        user_agent: None,
        region: None,
        account: None,
        error_code: None,
        target: None,
        credential: None,
        invoked_by: None,
        shared_id: None,
        stage,
    }
}

#[test]
fn events_deduplicate_and_keep_latest_stage() {
    let mut s = SqliteStore::in_memory().unwrap();
    let mut b = s.begin().unwrap();
    let f = b.add_file("p", "h", "k8s-audit", 0).unwrap();
    assert!(b.put_event(EventKey([1; 16]), &event(0), f).unwrap());
    let mut done = event(2);
    done.error_code = Some("Forbidden".into());
    assert!(!b.put_event(EventKey([1; 16]), &done, f).unwrap());
    assert!(!b.put_event(EventKey([1; 16]), &event(1), f).unwrap());
    b.commit().unwrap();
    let evs = s.recent_events("x", 10).unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (evs[0].stage, evs[0].error_code.as_deref()),
        (2, Some("Forbidden"))
    );
    assert_eq!(s.event_count().unwrap(), 1);
    // Deduplication survives the batch: the keys were persisted.
    let mut b = s.begin().unwrap();
    assert!(!b.put_event(EventKey([1; 16]), &event(2), f).unwrap());
    let mut other = event(0);
    other.native_id = "b".into();
    other.time = 6;
    assert!(b.put_event(EventKey([3; 16]), &other, f).unwrap());
    b.commit().unwrap();
    assert_eq!(s.event_count().unwrap(), 2);
    let evs = s.recent_events("x", 10).unwrap();
    assert_eq!(
        evs.iter().map(|e| &*e.native_id).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(s.recent_events("x", 1).unwrap().len(), 1);
    assert!(s.recent_events("y", 10).unwrap().is_empty());
    assert_eq!(s.latest_event_time().unwrap(), Some(6));
    // A time-bounded scan (`keyward rightsize`'s window): only events at or after `since`.
    let since = |t| -> Vec<String> {
        s.events_since("x", t, 10)
            .unwrap()
            .iter()
            .map(|e| e.native_id.to_string())
            .collect()
    };
    assert_eq!(since(6), ["b"]);
    assert_eq!(since(5), ["b", "a"]);
    assert!(since(7).is_empty());
}

/// Identity documents are the bytes serde_json writes, with every field set, strings
/// that need escapes, and numbers of every kind in `details`.
#[test]
fn identity_documents_are_serde_json_bytes() {
    use keyward_model::{Credential, CredentialKind, CredentialStatus};
    let mut i = Identity::new(
        "aws:iam:role/é\"q\\\u{1}\u{7f}\n\t/😀".into(),
        Platform::Aws,
        IdentityKind::IamRole,
        "</script>\u{2028}".into(),
    );
    i.arn = Some("arn:aws:iam::1:role/r".into());
    i.created = Some(-5);
    i.last_used = Some(i64::MAX);
    i.event_count = u64::MAX;
    i.credentials.push(Credential {
        id: "AKIA".into(),
        kind: CredentialKind::AccessKey,
        status: CredentialStatus::Active,
        created: Some(1),
        last_used: None,
        last_used_region: Some("us-east-1".into()),
        last_used_service: None,
    });
    i.tags.insert("k\u{0}".into(), "v\u{1f}".into());
    i.sources.insert("cloudtrail".into());
    i.details.insert(
        "numbers".into(),
        serde_json::json!([
            0,
            -1,
            1.5,
            1e300,
            -2.5e-300,
            0.1,
            123456789.0,
            u64::MAX,
            i64::MIN,
            f64::MAX,
            5e-324
        ]),
    );
    i.details.insert(
        "nested".into(),
        serde_json::json!({"a": [null, true, {"b": "c\u{8}"}]}),
    );
    let mut out = b"before".to_vec();
    append_identity_doc(&i, &mut out).unwrap();
    let out = out.split_off(6);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        serde_json::to_string(&i).unwrap()
    );
}

/// Identities stored in chunks read back as they were, across chunk boundaries, and
/// storing one again replaces it.
#[test]
fn identities_in_chunks_read_back() {
    let mut s = SqliteStore::in_memory().unwrap();
    let mut all: Vec<Identity> = (0..150)
        .map(|n| {
            let mut i = Identity::new(
                format!("aws:iam:role/r{n:03}"),
                Platform::Aws,
                IdentityKind::IamRole,
                format!("r{n}é"),
            );
            i.event_count = n;
            i
        })
        .collect();
    let mut b = s.begin().unwrap();
    b.put_identities(&all.iter().collect::<Vec<_>>()).unwrap();
    all[70].event_count = 7_000;
    b.put_identity(&all[70]).unwrap();
    b.commit().unwrap();
    let mut back = s.load_identities().unwrap();
    back.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(back, all);
}

#[test]
fn uncommitted_batch_leaves_nothing() {
    let mut s = SqliteStore::in_memory().unwrap();
    {
        let mut b = s.begin().unwrap();
        let f = b.add_file("p", "h", "cloudtrail", 0).unwrap();
        b.put_event(EventKey([2; 16]), &event(0), f).unwrap();
        b.put_identity(&Identity::new(
            "i".into(),
            Platform::Aws,
            IdentityKind::IamRole,
            "i".into(),
        ))
        .unwrap();
    }
    assert_eq!(s.event_count().unwrap(), 0);
    assert!(s.load_identities().unwrap().is_empty());
    assert!(s.file_by_hash("h").unwrap().is_none());
}

/// A live stream commits many small batches into one minute: keys are appended per
/// commit and cached across batches, and the cache never claims what the store lacks
/// (a dropped batch, another process's commit, rows of the old one-row-per-minute form).
#[test]
fn small_commits_into_one_minute_stay_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path()).unwrap();
    let key = |i: u8| EventKey([i; 16]);
    let mut f = 0;
    for round in 0..5u8 {
        let mut b = s.begin().unwrap();
        f = b
            .add_file(&format!("p{round}"), &format!("h{round}"), "k8s-audit", 0)
            .unwrap();
        // Each round: two new keys, one seen last round (a re-delivery).
        assert!(b.put_event(key(2 * round + 10), &event(0), f).unwrap());
        assert!(b.put_event(key(2 * round + 11), &event(0), f).unwrap());
        if round > 0 {
            assert!(!b.put_event(key(2 * round + 9), &event(0), f).unwrap());
        }
        b.commit().unwrap();
    }
    assert_eq!(s.event_count().unwrap(), 10);
    let chunks: i64 = s
        .conn
        .query_row("SELECT count(*) FROM event_key_chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 5, "one chunk per commit, not a rewrite");

    // A dropped batch: its key must not count as stored afterwards.
    {
        let mut b = s.begin().unwrap();
        assert!(b.put_event(key(99), &event(0), f).unwrap());
    }
    let mut b = s.begin().unwrap();
    assert!(
        b.put_event(key(99), &event(0), f).unwrap(),
        "not stored before"
    );
    b.commit().unwrap();

    // Another connection (another process) commits into the same minute.
    {
        let mut other = SqliteStore::open(dir.path()).unwrap();
        let mut b = other.begin().unwrap();
        assert!(!b.put_event(key(99), &event(0), f).unwrap());
        assert!(b.put_event(key(77), &event(0), f).unwrap());
        b.commit().unwrap();
    }
    let mut b = s.begin().unwrap();
    assert!(
        !b.put_event(key(77), &event(0), f).unwrap(),
        "sees the other commit"
    );
    // Rows of the old form are read too.
    b.commit().unwrap();
    s.conn
        .execute(
            "INSERT INTO event_keys (minute, n, keys) VALUES (1, 1, ?1)",
            [[[55u8; 16].as_slice(), &[0]].concat()],
        )
        .unwrap();
    let mut old = event(0);
    old.time = 60_000;
    let mut b = s.begin().unwrap();
    assert!(!b.put_event(key(55), &old, f).unwrap());
    b.commit().unwrap();
    assert_eq!(s.event_count().unwrap(), 13);
}

#[test]
fn open_findings_are_counted_in_the_store() {
    let mut s = SqliteStore::in_memory().unwrap();
    let row = |id: &str, sev: u8, identity: Option<&str>, status: &str| FindingRow {
        id: id.into(),
        rule_id: "r".into(),
        kind: "threat".into(),
        severity: sev,
        identity: identity.map(str::to_owned),
        status: status.into(),
        first_seen: 1,
        last_seen: 2,
        doc: "{}".into(),
    };
    let mut b = s.begin().unwrap();
    for f in [
        row("a", 4, Some("x"), "open"),
        row("b", 2, Some("x"), "acknowledged"),
        row("c", 3, Some("y"), "resolved"),
        row("d", 1, Some("y"), "open"),
        row("e", 2, None, "open"),
        row("f", 4, Some("z"), "false-positive"),
    ] {
        b.put_finding(&f).unwrap();
    }
    b.commit().unwrap();
    assert_eq!(s.open_finding_counts().unwrap(), [0, 1, 2, 0, 1]);
    let mut worst = s.worst_open_by_identity().unwrap();
    worst.sort();
    assert_eq!(worst, [("x".to_owned(), 4), ("y".to_owned(), 1)]);
}

#[test]
fn reopens_persisted_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = SqliteStore::open(dir.path()).unwrap();
        let mut b = s.begin().unwrap();
        b.put_identity(&Identity::new(
            "i".into(),
            Platform::Aws,
            IdentityKind::IamRole,
            "i".into(),
        ))
        .unwrap();
        b.commit().unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        s.identity("i").unwrap().unwrap().kind,
        IdentityKind::IamRole
    );
}

/// A store at schema version 6 with `n` audit entries written the version 4 way.
fn version_6_with_legacy_entries(n: usize) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    for sql in MIGRATIONS.iter().take(6) {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 6).unwrap();
    let mut prev = String::new();
    for i in 0..n {
        let e = AuditEntry {
            at: i as i64,
            actor: "cli".into(),
            action: "token.create".into(),
            target: Some(format!("t{i}")),
            detail: (i % 2 == 0).then(|| "role admin".to_owned()),
            ..AuditEntry::default()
        };
        let hash = audit::legacy_hash(&prev, &e);
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, target, detail, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![e.at, e.actor, e.action, e.target, e.detail, hash],
        )
        .unwrap();
        prev = hash;
    }
    conn
}

#[test]
fn legacy_entries_keep_verifying_and_the_keyed_chain_starts_after_them() {
    let mut s = SqliteStore::init(version_6_with_legacy_entries(3), Keys::ephemeral()).unwrap();
    let r = s.audit_verify(&[]).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!((r.entries, r.legacy_entries), (3, 3));
    let legacy_head = s.audit_log(1).unwrap().remove(0);
    assert!(legacy_head.legacy);
    assert_eq!(
        s.audit(&AuditEntry {
            at: 9,
            actor: "cli".into(),
            action: "token.revoke".into(),
            ..AuditEntry::default()
        })
        .unwrap(),
        4
    );
    let r = s.audit_verify(&[]).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!((r.entries, r.legacy_entries), (4, 3));
    let prev: String = s
        .conn
        .query_row("SELECT prev FROM audit_log WHERE seq = 4", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        prev, legacy_head.mac,
        "the keyed chain starts from the legacy head"
    );

    // Rewriting a legacy entry (its hash recomputed, as anyone could) now breaks the
    // first keyed entry, whose MAC covers the legacy head.
    s.conn
        .execute("UPDATE audit_log SET actor = 'x' WHERE seq <= 3", [])
        .unwrap();
    let mut prev = String::new();
    for seq in 1..=3 {
        let e = s.audit_entries(seq - 1, 1).unwrap().remove(0).entry;
        let h = audit::legacy_hash(&prev, &e);
        s.conn
            .execute(
                "UPDATE audit_log SET legacy_hash = ?2 WHERE seq = ?1",
                params![seq, h],
            )
            .unwrap();
        prev = h;
    }
    let r = s.audit_verify(&[]).unwrap();
    let b = r.broken.unwrap();
    assert_eq!((b.seq, b.why), (4, audit::Break::Unlinked));

    // A legacy entry edited without recomputing is a legacy hash mismatch.
    let s = SqliteStore::init(version_6_with_legacy_entries(3), Keys::ephemeral()).unwrap();
    s.conn
        .execute("UPDATE audit_log SET target = 'x' WHERE seq = 2", [])
        .unwrap();
    let b = s.audit_verify(&[]).unwrap().broken.unwrap();
    assert_eq!((b.seq, b.why), (2, audit::Break::LegacyHashMismatch));
}

/// `actor_key` values are persisted: they are FNV-1a 64 of the actor's bytes, the published
/// test vectors and the hand-written loop that first wrote them.
#[test]
fn actor_key_is_fnv1a_64_of_the_bytes() {
    let known: [(&str, u64); 3] = [
        ("", 0xcbf2_9ce4_8422_2325),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("foobar", 0x8594_4171_f739_67e8),
    ];
    for (actor, want) in known {
        assert_eq!(actor_key(actor) as u64, want, "{actor:?}");
    }
    let by_hand = |s: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h as i64
    };
    for actor in [
        "arn:aws:iam::111122223333:user/ci",
        "system:serviceaccount:ci:runner",
        "ünïcödé/ロール",
    ] {
        assert_eq!(actor_key(actor), by_hand(actor), "{actor:?}");
    }
}

/// A job keeps its kind, parent and creation time from its first write; later writes
/// change its status and document; listings filter by kind and parent, newest first.
#[test]
fn jobs_are_upserted_and_listed_by_kind_and_parent() {
    let mut s = SqliteStore::in_memory().unwrap();
    let job = |id: &str, kind: &str, parent: Option<&str>, at: Millis, status: &str| JobRow {
        id: id.into(),
        kind: kind.into(),
        parent: parent.map(str::to_owned),
        created_at: at,
        updated_at: at,
        status: status.into(),
        doc: format!("{{\"status\":\"{status}\"}}"),
    };
    let audit = AuditEntry {
        at: 1,
        actor: "cli:test".into(),
        action: "rotate.campaign".into(),
        target: Some("c1".into()),
        detail: None,
        before: None,
        after: None,
    };
    s.put_job(&job("c1", "campaign", None, 1, "running"), Some(&audit))
        .unwrap();
    s.put_job(&job("c1/a", "item", Some("c1"), 2, "pending"), None)
        .unwrap();
    s.put_job(&job("c1/b", "item", Some("c1"), 3, "pending"), None)
        .unwrap();
    s.put_job(&job("c2/a", "item", Some("c2"), 4, "pending"), None)
        .unwrap();
    // An update: a later creation time and another kind are ignored.
    s.put_job(&job("c1/a", "other", None, 9, "done"), None)
        .unwrap();
    let a = s.job("c1/a").unwrap().unwrap();
    assert_eq!((a.kind.as_str(), a.parent.as_deref()), ("item", Some("c1")));
    assert_eq!(
        (a.created_at, a.updated_at, a.status.as_str()),
        (2, 9, "done")
    );
    assert_eq!(a.doc, "{\"status\":\"done\"}");
    let ids = |rows: Vec<JobRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.jobs("item", Some("c1"), 10).unwrap()),
        ["c1/b", "c1/a"]
    );
    assert_eq!(
        ids(s.jobs("item", None, 10).unwrap()),
        ["c2/a", "c1/b", "c1/a"]
    );
    assert_eq!(ids(s.jobs("item", None, 1).unwrap()), ["c2/a"]);
    assert!(s.job("nope").unwrap().is_none());
    assert_eq!(s.audit_log(10).unwrap()[0].entry.action, "rotate.campaign");
}
