//! The audit log proves itself: every kind of tampering is reported at the first broken
//! seq, truncation is caught against an anchor, and concurrent writers keep one chain. Each
//! test runs on SQLite and, with `KEYWARD_TEST_POSTGRES_URL`, on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Fixture, each};
use keyward_store::audit::{Break, Checkpoint, KeyFiles, VerifyReport};
use keyward_store::{AuditEntry, Store};

/// A MAC made without the key (64 hex digits), for forged entries.
const FORGED_MAC: &str = "'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'";

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        at: 1_700_000_000_000 + i as i64,
        actor: "cli:alice".into(),
        action: "finding.status".into(),
        target: Some(format!("kw-{i}")),
        detail: None,
        before: Some("open".into()),
        after: Some("resolved".into()),
    }
}

/// The store of `f` holding `n` entries, seq 1..=n.
fn filled(f: &Fixture, n: usize) -> Box<dyn Store> {
    let mut s = f.open();
    for i in 1..=n {
        assert_eq!(s.audit(&entry(i)).unwrap(), i as i64);
    }
    s
}

fn verify(f: &Fixture, anchors: &[Checkpoint]) -> VerifyReport {
    f.open().audit_verify(anchors).unwrap()
}

/// The first broken seq and the kind of break.
fn first_break(r: &VerifyReport) -> (i64, Break) {
    assert!(!r.ok, "{r:?}");
    let b = r.broken.clone().unwrap();
    (b.seq, b.why)
}

#[test]
fn an_intact_log_verifies() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        let r = verify(&f, &[]);
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries, r.legacy_entries), (10, 0));
        assert_eq!(r.head.unwrap().seq, 10);
        let json = serde_json::to_value(verify(&f, &[])).unwrap();
        assert_eq!(json["ok"], true);
        assert_eq!(json["broken"], serde_json::Value::Null);
    });
}

#[test]
fn an_edited_field_is_a_mac_mismatch_at_its_seq() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        f.exec("UPDATE audit_log SET after = 'open' WHERE seq = 6");
        let r = verify(&f, &[]);
        assert_eq!(first_break(&r), (6, Break::MacMismatch));
        assert_eq!(r.entries, 5);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["broken"]["seq"], 6);
        assert_eq!(json["broken"]["kind"], "mac-mismatch");
        assert!(json["broken"]["reason"].as_str().unwrap().contains("MAC"));
    });
}

#[test]
fn an_edited_actor_or_time_is_caught_too() {
    each(|b| {
        for sql in [
            "UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 3",
            "UPDATE audit_log SET at = at + 1 WHERE seq = 3",
            "UPDATE audit_log SET target = NULL WHERE seq = 3",
        ] {
            let f = b.fixture();
            filled(&f, 5);
            f.exec(sql);
            assert_eq!(
                first_break(&verify(&f, &[])),
                (3, Break::MacMismatch),
                "{sql}"
            );
        }
    });
}

#[test]
fn a_forged_entry_inserted_in_the_middle_is_reported_as_inserted() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        // Make room at seq 5 (5..=10 become 6..=11) and slip in an entry chained from seq 4,
        // with a MAC made without the key.
        f.exec(&format!(
            "UPDATE audit_log SET seq = -seq WHERE seq >= 5;
         UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;
         INSERT INTO audit_log (seq, at, actor, action, prev, mac)
         SELECT 5, 1, 'cli:mallory', 'token.create', mac, {FORGED_MAC}
         FROM audit_log WHERE seq = 4;"
        ));
        assert_eq!(first_break(&verify(&f, &[])), (5, Break::Inserted));
    });
}

#[test]
fn a_forged_entry_appended_at_the_end_is_a_mac_mismatch() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 4);
        f.exec(&format!(
            "INSERT INTO audit_log (seq, at, actor, action, prev, mac)
             SELECT 5, 1, 'cli:mallory', 'token.create', mac, {FORGED_MAC}
             FROM audit_log WHERE seq = 4;"
        ));
        assert_eq!(first_break(&verify(&f, &[])), (5, Break::MacMismatch));
    });
}

#[test]
fn two_reordered_entries_are_reported_out_of_order() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        f.exec(
            "UPDATE audit_log SET seq = -1 WHERE seq = 7;
             UPDATE audit_log SET seq = 7 WHERE seq = 8;
             UPDATE audit_log SET seq = 8 WHERE seq = -1;",
        );
        assert_eq!(
            first_break(&verify(&f, &[])),
            (7, Break::OutOfOrder { written_as: 8 })
        );
    });
}

#[test]
fn an_entry_deleted_in_the_middle_is_a_seq_gap() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        f.exec("DELETE FROM audit_log WHERE seq = 4");
        assert_eq!(
            first_break(&verify(&f, &[])),
            (4, Break::Missing { next: 5 })
        );
    });
}

#[test]
fn an_entry_deleted_and_the_rest_renumbered_is_caught() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 10);
        f.exec(
            "DELETE FROM audit_log WHERE seq = 4;
             UPDATE audit_log SET seq = -seq WHERE seq > 4;
             UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0;",
        );
        assert_eq!(
            first_break(&verify(&f, &[])),
            (4, Break::OutOfOrder { written_as: 5 })
        );
    });
}

#[test]
fn truncation_is_caught_against_the_anchor() {
    each(|b| {
        let f = b.fixture();
        let s = filled(&f, 10);
        let anchor = s.audit_checkpoint(1_700_000_100_000).unwrap();
        assert_eq!(anchor.seq, 10);
        assert!(verify(&f, std::slice::from_ref(&anchor)).ok);
        drop(s);
        f.exec("DELETE FROM audit_log WHERE seq > 7");
        // The chain alone cannot tell: it is intact up to its shorter head.
        let alone = verify(&f, &[]);
        assert!(alone.ok, "{alone:?}");
        assert_eq!(alone.head.unwrap().seq, 7);
        // The anchor can.
        let r = verify(&f, &[anchor]);
        assert_eq!(
            first_break(&r),
            (
                8,
                Break::Truncated {
                    anchored: 10,
                    head: 7
                }
            )
        );
        assert_eq!(r.entries, 7);
    });
}

#[test]
fn a_tail_rewritten_with_the_key_is_caught_against_the_anchor() {
    each(|b| {
        let f = b.fixture();
        let mut s = filled(&f, 6);
        let anchor = s.audit_checkpoint(1).unwrap();
        // Someone with the data directory (and so the key) deletes entries 5 and 6 and writes
        // others in their place: the chain verifies, the anchored MAC does not match.
        f.exec("DELETE FROM audit_log WHERE seq > 4");
        s.audit(&entry(50)).unwrap();
        s.audit(&entry(60)).unwrap();
        assert!(verify(&f, &[]).ok);
        assert_eq!(
            first_break(&verify(&f, &[anchor])),
            (6, Break::AnchorMismatch)
        );
    });
}

#[test]
fn a_forged_anchor_is_refused() {
    each(|b| {
        let f = b.fixture();
        let s = filled(&f, 3);
        let mut anchor = s.audit_checkpoint(1).unwrap();
        anchor.seq = 2;
        assert_eq!(
            first_break(&verify(&f, &[anchor])),
            (2, Break::BadSignature)
        );
        // Signed correctly, but by another store's key.
        let other = b.fixture();
        let foreign = filled(&other, 3).audit_checkpoint(1).unwrap();
        assert_eq!(first_break(&verify(&f, &[foreign])), (3, Break::ForeignKey));
    });
}

#[test]
fn anchors_round_trip_through_the_anchor_file() {
    each(|b| {
        let f = b.fixture();
        let mut s = filled(&f, 2);
        let file = f.path().join("anchor.jsonl");
        s.set_audit_anchor(Some(file.clone()));
        s.audit(&entry(3)).unwrap();
        s.audit(&entry(4)).unwrap();
        let anchors = keyward_store::audit::read_checkpoints(&file).unwrap();
        assert_eq!(anchors.iter().map(|a| a.seq).collect::<Vec<_>>(), [3, 4]);
        assert!(verify(&f, &anchors).ok);
        f.exec("DELETE FROM audit_log WHERE seq = 4");
        assert_eq!(
            first_break(&verify(&f, &anchors)).0,
            4,
            "the tail entry deleted"
        );
    });
}

#[cfg(unix)]
#[test]
fn the_key_file_is_0600_and_the_mac_changes_with_the_key() {
    each(|backend| {
        use std::os::unix::fs::PermissionsExt as _;
        let a = backend.fixture();
        filled(&a, 1);
        let mode = |name: &str| {
            std::fs::metadata(a.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("audit.key"), 0o600);
        assert_eq!(std::fs::read(a.path().join("audit.key")).unwrap().len(), 32);
        // The signing key is made on the first checkpoint.
        assert!(!a.path().join("audit-signing.key").exists());
        a.open().audit_checkpoint(1).unwrap();
        assert_eq!(mode("audit-signing.key"), 0o600);

        // The same entry in another store (another key) gets another MAC.
        let b = backend.fixture();
        filled(&b, 1);
        let mac = |f: &Fixture| f.open().audit_log(1).unwrap()[0].mac.clone();
        assert_ne!(mac(&a), mac(&b));
        // And a log checked with another key does not verify.
        std::fs::copy(b.path().join("audit.key"), a.path().join("audit.key")).unwrap();
        assert_eq!(first_break(&verify(&a, &[])), (1, Break::MacMismatch));
    });
}

#[test]
fn a_key_file_of_the_wrong_length_is_refused() {
    each(|b| {
        let f = b.fixture();
        std::fs::write(f.path().join("audit.key"), b"short").unwrap();
        let err = f.open().audit(&entry(1)).unwrap_err().to_string();
        assert!(err.contains("audit.key") && err.contains("not 32"), "{err}");
    });
}

#[test]
fn a_missing_key_file_is_refused_once_entries_were_made_with_it() {
    each(|b| {
        let f = b.fixture();
        filled(&f, 2);
        std::fs::remove_file(f.path().join("audit.key")).unwrap();
        let err = f.open().audit(&entry(3)).unwrap_err().to_string();
        assert!(err.contains("is missing"), "{err}");
        assert!(!f.path().join("audit.key").exists(), "no new key was made");
    });
}

#[test]
fn the_key_file_can_live_elsewhere() {
    each(|b| {
        let f = b.fixture();
        let keys = tempfile::tempdir().unwrap();
        let files = KeyFiles {
            mac_key: keys.path().join("k"),
            signing_key: keys.path().join("s"),
        };
        let mut s = f.open_with(files.clone());
        s.audit(&entry(1)).unwrap();
        assert!(keys.path().join("k").exists() && !f.path().join("audit.key").exists());
        let r = f.open_with(files).audit_verify(&[]).unwrap();
        assert!(r.ok);
    });
}

#[test]
fn concurrent_writers_do_not_fork_the_chain() {
    each(|b| {
        const WRITERS: usize = 4;
        const EACH: usize = 40;
        let f = b.fixture();
        // The schema is created first (opening runs the migrations, which are not what this
        // test is about); the key file is not: whichever writer gets there first creates it.
        drop(f.open());
        assert!(!f.path().join("audit.key").exists());
        // Every writer opens its own store (its own connection), as separate processes do,
        // and all start appending at once.
        let barrier = std::sync::Barrier::new(WRITERS);
        std::thread::scope(|scope| {
            for w in 0..WRITERS {
                let (dir, barrier) = (&f, &barrier);
                scope.spawn(move || {
                    let mut s = dir.open();
                    barrier.wait();
                    for i in 0..EACH {
                        s.audit(&entry(w * 1_000 + i)).unwrap();
                    }
                });
            }
        });
        let s = f.open();
        let r = s.audit_verify(&[]).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.entries, (WRITERS * EACH) as u64);
        // Linear: seq 1..=n, each entry's prev the MAC before it.
        let all = s.audit_entries(0, usize::MAX >> 1).unwrap();
        let seqs: Vec<i64> = all.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, (1..=(WRITERS * EACH) as i64).collect::<Vec<_>>());
        let prevs = f.strings("SELECT prev FROM audit_log ORDER BY seq");
        for (i, p) in prevs.iter().enumerate().skip(1) {
            assert_eq!(*p, all[i - 1].mac, "seq {} chains from seq {}", i + 1, i);
        }
    });
}
