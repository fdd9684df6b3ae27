//! Tests of what only the SQLite store has (its legacy audit segment, its documents'
//! bytes, its persisted actor keys); what every store does is in `tests/store.rs`, run
//! against SQLite and PostgreSQL.

use super::*;
use keyward_model::{IdentityKind, Platform};

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
