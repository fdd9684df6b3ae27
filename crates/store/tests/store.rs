//! The store's behaviour, the same on every store (SQLite, and PostgreSQL when
//! `KEYWARD_TEST_POSTGRES_URL` is set: `common::each`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, each};
use keyward_model::{Event, EventKey, Identity, IdentityKind, Platform, SourceKind};
use keyward_store::{AuditEntry, EvidenceRow, FindingRow, JobRow, PlanRow, StoreError, TokenRow};

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

fn identity(id: &str) -> Identity {
    Identity::new(id.into(), Platform::Aws, IdentityKind::IamRole, id.into())
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        at: 1,
        actor: "cli:test".into(),
        action: action.into(),
        ..AuditEntry::default()
    }
}

#[test]
fn events_deduplicate_and_keep_latest_stage() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let mut bt = s.begin().unwrap();
        let file = bt.add_file("p", "h", "k8s-audit", 0).unwrap();
        assert!(bt.put_event(EventKey([1; 16]), &event(0), file).unwrap());
        let mut done = event(2);
        done.error_code = Some("Forbidden".into());
        assert!(!bt.put_event(EventKey([1; 16]), &done, file).unwrap());
        assert!(!bt.put_event(EventKey([1; 16]), &event(1), file).unwrap());
        bt.commit().unwrap();
        let evs = s.recent_events("x", 10).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(
            (evs[0].stage, evs[0].error_code.as_deref()),
            (2, Some("Forbidden"))
        );
        assert_eq!(s.event_count().unwrap(), 1);
        // Deduplication survives the batch: the keys were persisted.
        let mut bt = s.begin().unwrap();
        assert!(!bt.put_event(EventKey([1; 16]), &event(2), file).unwrap());
        let mut other = event(0);
        other.native_id = "b".into();
        other.time = 6;
        assert!(bt.put_event(EventKey([3; 16]), &other, file).unwrap());
        bt.commit().unwrap();
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
        // Bounded on both sides (an AI agent's window around a tool call): the limit counts
        // only events inside it, so a busy identity's later events cannot push them out.
        let between = |from, to, limit| -> Vec<String> {
            s.events_between("x", from, to, limit)
                .unwrap()
                .iter()
                .map(|e| e.native_id.to_string())
                .collect()
        };
        assert_eq!(between(0, 5, 1), ["a"]);
        assert_eq!(between(5, 6, 10), ["b", "a"]);
        assert!(between(7, 9, 10).is_empty());
        // A fresh connection reads the same (nothing was only in this one's cache).
        assert_eq!(f.open().event_count().unwrap(), 2);
        assert_eq!(s.file_by_hash("h").unwrap().unwrap().format, "k8s-audit");
    });
}

/// Identities stored in chunks read back as they were, across chunk boundaries, and
/// storing one again replaces it.
#[test]
fn identities_in_chunks_read_back() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
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
        let mut bt = s.begin().unwrap();
        bt.put_identities(&all.iter().collect::<Vec<_>>()).unwrap();
        all[70].event_count = 7_000;
        bt.put_identity(&all[70]).unwrap();
        bt.commit().unwrap();
        let mut back = s.load_identities().unwrap();
        back.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(back, all);
        assert_eq!(s.identity("aws:iam:role/r070").unwrap().unwrap(), all[70]);
        // Removing one (clusters merged).
        let mut bt = s.begin().unwrap();
        bt.delete_identity("aws:iam:role/r070").unwrap();
        bt.commit().unwrap();
        assert!(s.identity("aws:iam:role/r070").unwrap().is_none());
    });
}

/// A batch is one transaction: dropped uncommitted, none of it is stored, and the next
/// batch does not believe its event keys were.
#[test]
fn uncommitted_batch_leaves_nothing() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        {
            let mut bt = s.begin().unwrap();
            let file = bt.add_file("p", "h", "cloudtrail", 0).unwrap();
            bt.put_event(EventKey([2; 16]), &event(0), file).unwrap();
            bt.put_identity(&identity("i")).unwrap();
            bt.put_finding(&finding("f", 3, Some("i"), "open")).unwrap();
            bt.put_detector_state("d", "{}").unwrap();
        }
        assert_eq!(s.event_count().unwrap(), 0);
        assert!(s.load_identities().unwrap().is_empty());
        assert!(s.file_by_hash("h").unwrap().is_none());
        assert!(s.finding("f").unwrap().is_none());
        assert!(s.detector_state("d").unwrap().is_none());
        // Nor does another connection see any of it.
        assert!(f.open().load_identities().unwrap().is_empty());
        let mut bt = s.begin().unwrap();
        let file = bt.add_file("p", "h", "cloudtrail", 0).unwrap();
        assert!(bt.put_event(EventKey([2; 16]), &event(0), file).unwrap());
        bt.commit().unwrap();
        assert_eq!(s.event_count().unwrap(), 1);
    });
}

/// A live stream commits many small batches into one minute: keys are appended per
/// commit and cached across batches, and the cache never claims what the store lacks
/// (a dropped batch, another process's commit, rows of SQLite's old one-row-per-minute
/// form).
#[test]
fn small_commits_into_one_minute_stay_deduplicated() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let key = |i: u8| EventKey([i; 16]);
        let mut file = 0;
        for round in 0..5u8 {
            let mut bt = s.begin().unwrap();
            file = bt
                .add_file(&format!("p{round}"), &format!("h{round}"), "k8s-audit", 0)
                .unwrap();
            // Each round: two new keys, one seen last round (a re-delivery).
            assert!(bt.put_event(key(2 * round + 10), &event(0), file).unwrap());
            assert!(bt.put_event(key(2 * round + 11), &event(0), file).unwrap());
            if round > 0 {
                assert!(!bt.put_event(key(2 * round + 9), &event(0), file).unwrap());
            }
            bt.commit().unwrap();
        }
        assert_eq!(s.event_count().unwrap(), 10);
        assert_eq!(
            f.number("SELECT CAST(count(*) AS TEXT) FROM event_key_chunks"),
            5,
            "one chunk per commit, not a rewrite"
        );

        // A dropped batch: its key must not count as stored afterwards.
        {
            let mut bt = s.begin().unwrap();
            assert!(bt.put_event(key(99), &event(0), file).unwrap());
        }
        let mut bt = s.begin().unwrap();
        assert!(
            bt.put_event(key(99), &event(0), file).unwrap(),
            "not stored before"
        );
        bt.commit().unwrap();

        // Another connection (another process) commits into the same minute.
        {
            let mut other = f.open();
            let mut bt = other.begin().unwrap();
            assert!(!bt.put_event(key(99), &event(0), file).unwrap());
            assert!(bt.put_event(key(77), &event(0), file).unwrap());
            bt.commit().unwrap();
        }
        let mut bt = s.begin().unwrap();
        assert!(
            !bt.put_event(key(77), &event(0), file).unwrap(),
            "sees the other commit"
        );
        bt.commit().unwrap();
        let mut expected = 12;
        if b == Backend::Sqlite {
            // Rows of the old form are read too.
            f.exec(&format!(
                "INSERT INTO event_keys (minute, n, keys) VALUES (1, 1, x'{}00')",
                "37".repeat(16)
            ));
            let mut old = event(0);
            old.time = 60_000;
            let mut bt = s.begin().unwrap();
            assert!(!bt.put_event(EventKey([0x37; 16]), &old, file).unwrap());
            bt.commit().unwrap();
            expected += 1;
        }
        assert_eq!(s.event_count().unwrap(), expected);
    });
}

fn finding(id: &str, sev: u8, identity: Option<&str>, status: &str) -> FindingRow {
    FindingRow {
        id: id.into(),
        rule_id: "r".into(),
        kind: "threat".into(),
        severity: sev,
        identity: identity.map(str::to_owned),
        status: status.into(),
        first_seen: 1,
        last_seen: 2,
        doc: "{}".into(),
    }
}

#[test]
fn open_findings_are_counted_in_the_store() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let mut bt = s.begin().unwrap();
        for row in [
            finding("a", 4, Some("x"), "open"),
            finding("b", 2, Some("x"), "acknowledged"),
            finding("c", 3, Some("y"), "resolved"),
            finding("d", 1, Some("y"), "open"),
            finding("e", 2, None, "open"),
            finding("f", 4, Some("z"), "false-positive"),
        ] {
            bt.put_finding(&row).unwrap();
        }
        assert_eq!(
            bt.finding("d").unwrap().unwrap().severity,
            1,
            "seen in the batch"
        );
        bt.commit().unwrap();
        assert_eq!(s.open_finding_counts().unwrap(), [0, 1, 2, 0, 1]);
        let mut worst = s.worst_open_by_identity().unwrap();
        worst.sort();
        assert_eq!(worst, [("x".to_owned(), 4), ("y".to_owned(), 1)]);
        assert_eq!(s.findings(None).unwrap().len(), 6);
        assert_eq!(
            s.finding("a").unwrap().unwrap(),
            finding("a", 4, Some("x"), "open")
        );
    });
}

#[test]
fn reopens_persisted_store() {
    each(|b| {
        let f = b.fixture();
        {
            let mut s = f.open();
            let mut bt = s.begin().unwrap();
            bt.put_identity(&identity("i")).unwrap();
            bt.commit().unwrap();
        }
        let s = f.open();
        assert_eq!(
            s.identity("i").unwrap().unwrap().kind,
            IdentityKind::IamRole
        );
        // And through the URL the CLI's `--store` takes.
        let s = keyward_store::open(&f.location(), f.path()).unwrap();
        assert!(s.identity("i").unwrap().is_some());
    });
}

/// Opening a migrated store again applies nothing; a store written by a newer build is
/// refused.
#[test]
fn reopening_a_migrated_store_is_a_no_op_and_a_newer_schema_is_refused() {
    each(|b| {
        let f = b.fixture();
        drop(f.open());
        let (version, set) = match b {
            Backend::Sqlite => ("PRAGMA user_version", "PRAGMA user_version = 99"),
            #[cfg(feature = "postgres")]
            Backend::Postgres => (
                "SELECT CAST(version AS TEXT) FROM schema_version",
                "UPDATE schema_version SET version = 99",
            ),
        };
        let read = || match b {
            Backend::Sqlite => {
                f.number("SELECT CAST(user_version AS TEXT) FROM pragma_user_version")
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => f.number(version),
        };
        let _ = version;
        let before = read();
        assert!(before >= 1);
        for _ in 0..2 {
            drop(f.open());
            assert_eq!(read(), before);
        }
        f.exec(set);
        match f.try_open() {
            Err(StoreError::TooNew { found: 99, known }) => assert_eq!(known, before),
            Err(e) => panic!("{b:?}: {e}"),
            Ok(_) => panic!("{b:?}: a newer schema was opened"),
        }
    });
}

/// A job keeps its kind, parent and creation time from its first write; later writes
/// change its status and document; listings filter by kind and parent, newest first.
#[test]
fn jobs_are_upserted_and_listed_by_kind_and_parent() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let job = |id: &str, kind: &str, parent: Option<&str>, at: i64, status: &str| JobRow {
            id: id.into(),
            kind: kind.into(),
            parent: parent.map(str::to_owned),
            created_at: at,
            updated_at: at,
            status: status.into(),
            doc: format!("{{\"status\":\"{status}\"}}"),
        };
        s.put_job(
            &job("c1", "campaign", None, 1, "running"),
            Some(&audit("rotate.campaign")),
        )
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
    });
}

/// Settings, tokens, plans and evidence: each write lands with its audit entry; evidence
/// is written once.
#[test]
fn settings_tokens_plans_and_evidence_are_audited() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        assert!(s.setting("k").unwrap().is_none());
        s.put_setting("k", "1", &audit("config.set")).unwrap();
        s.put_setting("k", "2", &audit("config.set")).unwrap();
        assert_eq!(s.setting("k").unwrap().as_deref(), Some("2"));

        let token = TokenRow {
            id: "t1".into(),
            hash: "h1".into(),
            role: "admin".into(),
            name: "ci".into(),
            created_at: 5,
            revoked_at: None,
        };
        s.put_token(&token, &audit("token.create")).unwrap();
        assert_eq!(s.token_by_hash("h1").unwrap().unwrap(), token);
        assert!(s.revoke_token("t1", &audit("token.revoke")).unwrap());
        assert!(!s.revoke_token("t1", &audit("token.revoke")).unwrap());
        assert_eq!(s.tokens().unwrap()[0].revoked_at, Some(1));

        let plan = PlanRow {
            id: "p1".into(),
            created_at: 1,
            updated_at: 1,
            identity: "i".into(),
            finding: None,
            status: "draft".into(),
            doc: "{}".into(),
        };
        s.put_plan(&plan, &audit("plan.create")).unwrap();
        let done = PlanRow {
            status: "executed".into(),
            updated_at: 2,
            ..plan.clone()
        };
        s.put_plan(&done, &audit("plan.execute")).unwrap();
        assert_eq!(s.plan("p1").unwrap().unwrap(), done);
        assert_eq!(s.plans(10).unwrap(), [done]);
        let ev = EvidenceRow {
            plan_id: "p1".into(),
            taken_at: 3,
            hash: "x".into(),
            doc: "{\"before\":1}".into(),
        };
        s.put_evidence(&ev, &audit("plan.evidence")).unwrap();
        assert!(s.put_evidence(&ev, &audit("plan.evidence")).is_err());
        assert_eq!(s.evidence("p1").unwrap().unwrap(), ev);
        // The failed write left no audit entry behind.
        let actions: Vec<String> = s
            .audit_log(100)
            .unwrap()
            .into_iter()
            .map(|r| r.entry.action)
            .collect();
        assert_eq!(
            actions,
            [
                "plan.evidence",
                "plan.execute",
                "plan.create",
                "token.revoke",
                "token.create",
                "config.set",
                "config.set"
            ]
        );
        assert!(s.audit_verify(&[]).unwrap().ok);
    });
}

/// One writer at a time across connections (processes); released when dropped.
#[test]
fn the_writer_lock_is_exclusive_across_connections() {
    each(|b| {
        let f = b.fixture();
        let (one, two) = (f.open(), f.open());
        let held = one.lock_writer().unwrap();
        assert!(two.try_lock_writer().unwrap().is_none());
        drop(held);
        let again = two.try_lock_writer().unwrap();
        assert!(again.is_some());
        assert!(one.try_lock_writer().unwrap().is_none());
    });
}

/// `changed_elsewhere` sees another connection's commits, not this one's.
#[test]
fn changes_by_another_connection_are_noticed() {
    each(|b| {
        let f = b.fixture();
        let (mut one, mut two) = (f.open(), f.open());
        assert!(!one.changed_elsewhere().unwrap());
        let mut bt = one.begin().unwrap();
        bt.put_identity(&identity("i")).unwrap();
        bt.commit().unwrap();
        one.audit(&audit("x")).unwrap();
        assert!(!one.changed_elsewhere().unwrap(), "its own commits");
        assert!(two.changed_elsewhere().unwrap());
        assert!(!two.changed_elsewhere().unwrap(), "asked twice");
        two.put_setting("k", "v", &audit("config.set")).unwrap();
        assert!(one.changed_elsewhere().unwrap());
    });
}

/// Objects, observed edges, baselines and dead letters round-trip; deletes remove them.
#[test]
fn objects_edges_baselines_and_dead_letters_round_trip() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let object = keyward_model::SnapshotObject {
            kind: "iam-policy".into(),
            id: "p".into(),
            scope: Some("111122223333".into()),
            doc: serde_json::json!({"Statement": [{"Effect": "Allow"}]}),
        };
        let edge = keyward_model::ObservedEdge {
            kind: "assumed".into(),
            from: "a".into(),
            to: "b".into(),
            count: 3,
            first_seen: 1,
            last_seen: 2,
            event_ids: vec!["e1".into(), "e2".into()],
        };
        let mut bt = s.begin().unwrap();
        let file = bt.add_file("p", "h", "cloudtrail", 0).unwrap();
        bt.put_object(&object).unwrap();
        bt.put_observed_edge(&edge).unwrap();
        bt.put_baseline("a", "{\"n\":1}").unwrap();
        bt.put_dead_letter(
            file,
            "p",
            &keyward_model::Diagnostic {
                line: 7,
                record: Some(2),
                reason: "bad json".to_owned().into(),
            },
        )
        .unwrap();
        bt.finish_file(file, 3, 2, 1).unwrap();
        bt.commit().unwrap();
        assert_eq!(s.objects("iam-policy").unwrap(), [object]);
        assert_eq!(s.object_kinds().unwrap(), ["iam-policy"]);
        assert_eq!(s.observed_edges().unwrap(), [edge]);
        assert_eq!(s.baselines().unwrap(), [("a".into(), "{\"n\":1}".into())]);
        let dl = s.dead_letters(10).unwrap();
        assert_eq!((dl[0].path.as_str(), dl[0].diagnostic.line), ("p", 7));
        let rec = s.file_by_hash("h").unwrap().unwrap();
        assert_eq!((rec.records, rec.accepted, rec.rejected), (3, 2, 1));
        let mut bt = s.begin().unwrap();
        bt.delete_object("iam-policy", "p").unwrap();
        bt.delete_observed_edge("assumed", "a", "b").unwrap();
        bt.delete_baseline("a").unwrap();
        bt.commit().unwrap();
        assert!(s.objects("iam-policy").unwrap().is_empty());
        assert!(s.observed_edges().unwrap().is_empty());
        assert!(s.baselines().unwrap().is_empty());
    });
}

/// Processes opening a new store at once apply each migration once: every one of them
/// opens it, and it ends at the current version.
#[test]
fn stores_opened_at_once_migrate_once() {
    each(|b| {
        let f = b.fixture();
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (f, barrier) = (&f, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    f.open();
                });
            }
        });
        let mut s = f.open();
        s.put_setting("k", "v", &audit("config.set")).unwrap();
        assert_eq!(f.open().setting("k").unwrap().as_deref(), Some("v"));
    });
}

/// A claim (a bus partition) is held by one connection at a time, per name, until dropped.
#[test]
fn claims_are_exclusive_per_name() {
    each(|b| {
        let f = b.fixture();
        let (one, two) = (f.open(), f.open());
        let held = one.try_claim("KEYWARD/3").unwrap().expect("free");
        assert!(two.try_claim("KEYWARD/3").unwrap().is_none());
        let other = two.try_claim("KEYWARD/4").unwrap();
        assert!(other.is_some(), "another name is another claim");
        // The writer lock is not a claim.
        assert!(two.try_lock_writer().unwrap().is_some());
        drop(held);
        assert!(two.try_claim("KEYWARD/3").unwrap().is_some());
    });
}

/// A checkpoint moves only with its batch's commit, and every connection reads it.
#[test]
fn checkpoints_commit_with_their_batch() {
    each(|b| {
        let f = b.fixture();
        let (mut one, two) = (f.open(), f.open());
        assert_eq!(one.checkpoint("KEYWARD/0").unwrap(), None);
        let mut bt = one.begin().unwrap();
        bt.put_identity(&identity("i")).unwrap();
        bt.put_checkpoint("KEYWARD/0", 41, 1_000).unwrap();
        drop(bt);
        assert_eq!(two.checkpoint("KEYWARD/0").unwrap(), None, "rolled back");
        let mut bt = one.begin().unwrap();
        bt.put_checkpoint("KEYWARD/0", 41, 1_000).unwrap();
        bt.put_checkpoint("KEYWARD/1", 7, 1_000).unwrap();
        bt.commit().unwrap();
        let mut bt = one.begin().unwrap();
        bt.put_checkpoint("KEYWARD/0", 99, 2_000).unwrap();
        bt.commit().unwrap();
        assert_eq!(two.checkpoint("KEYWARD/0").unwrap(), Some(99));
        assert_eq!(two.checkpoint("KEYWARD/1").unwrap(), Some(7));
    });
}

/// A PostgreSQL store whose connection the server ended (a restart) connects again: the
/// call in flight may fail, the next ones work.
#[test]
fn a_postgres_store_reconnects_after_its_session_ends() {
    each(|b| {
        let f = b.fixture();
        if !f.location().starts_with("postgres") {
            return;
        }
        let mut store = f.open();
        let mut bt = store.begin().unwrap();
        bt.put_identity(&identity("i")).unwrap();
        bt.commit().unwrap();
        f.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        // Termination is a signal: wait until the session is gone.
        let others = "SELECT count(*)::text FROM pg_stat_activity \
                      WHERE datname = current_database() AND pid <> pg_backend_pid()";
        for _ in 0..200 {
            if f.strings(others) == ["0"] {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        // The first call may be the one that finds the connection gone.
        let _first = store.identity("i");
        assert!(store.identity("i").unwrap().is_some());
        let mut bt = store.begin().unwrap();
        bt.put_identity(&identity("j")).unwrap();
        bt.commit().unwrap();
        assert!(store.identity("j").unwrap().is_some());
    });
}
