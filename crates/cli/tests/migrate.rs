//! `keyward migrate`: the example estate's SQLite store copied into a fresh PostgreSQL
//! database answers as the original did — inventory, findings, tokens, the audit chain,
//! what the query tables answer —
//! and a second copy into the same database is refused. Needs `KEYWARD_TEST_POSTGRES_URL`
//! (`.ci/postgres.sh`); says it was skipped without it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::servers::Database;
use common::{estate, keyward, text};

#[test]
fn the_estate_moves_to_postgres_and_answers_as_before() {
    let Some(db) = Database::new("kw_migrate") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let o = keyward(data.path(), &["ingest", estate().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = keyward(
        data.path(),
        &["token", "create", "--role", "viewer", "--name", "dash"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = keyward(data.path(), &["migrate", "--to", &db.url]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("the audit chain verifies"), "{out}");
    assert!(out.contains("event_blocks"), "{out}");

    // Again into the same database: refused, nothing changed.
    let o = keyward(data.path(), &["migrate", "--to", &db.url]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("already holds Keyward data"),
        "{}",
        text(&o.stderr)
    );

    // The query tables came along (filled: the copy answers from them, no refill).
    assert_eq!(db.count("SELECT count(*) FROM query_tables"), 1);
    assert!(db.count("SELECT count(*) FROM graph_nodes") > 100);
    assert!(db.count("SELECT count(*) FROM graph_edges") > 100);

    // The same answers through either store, those the query tables give included.
    let role = "arn:aws:iam::111122223333:role/github-actions-deploy";
    for args in [
        &["findings", "--format", "json"][..],
        &["token", "list"][..],
        &["graph", "export", "--format", "json"][..],
        &[
            "inventory",
            "--platform",
            "aws",
            "--limit",
            "5",
            "--offset",
            "2",
        ][..],
        &["show", role][..],
        &["graph", "chain", role][..],
        &["graph", "blast-radius", role][..],
        &["findings", "--identity", role][..],
    ] {
        let sqlite = keyward(data.path(), args);
        let pg = keyward(data.path(), &[&["--store", &db.url][..], args].concat());
        assert!(pg.status.success(), "{args:?}: {}", text(&pg.stderr));
        // The clock's time of asking aside.
        let asked = |o: &[u8]| -> String {
            text(o)
                .lines()
                .map(|l| l.split(" as of ").next().unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(asked(&sqlite.stdout), asked(&pg.stdout), "{args:?}");
    }
    let o = keyward(data.path(), &["--store", &db.url, "audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    // The migration is in both audit logs, once (the refused second copy is not).
    for store in [None, Some(db.url.as_str())] {
        let mut args = vec![];
        if let Some(s) = store {
            args.extend(["--store", s]);
        }
        args.extend(["audit", "export"]);
        let o = keyward(data.path(), &args);
        let out = text(&o.stdout);
        let migrated: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("\"action\":\"store.migrate\""))
            .collect();
        assert_eq!(migrated.len(), 1, "{out}");
        assert!(migrated[0].contains("identities"), "{}", migrated[0]);
    }
}
