//! The example estate through the PostgreSQL store answers as through SQLite: the same
//! inventory (as ingested, and as loaded again from the store), the same findings, the
//! same event count. Runs when `KEYWARD_TEST_POSTGRES_URL` names a server (in a fresh
//! database, dropped afterwards); says it was skipped otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use keyward_engine::{Engine, FindingQuery, IngestOptions};

fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

/// What the engine holds, in a comparable form.
fn answers(e: &Engine) -> (Vec<String>, Vec<String>, u64) {
    let mut inventory: Vec<String> = e
        .inventory()
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    inventory.sort();
    let mut findings: Vec<String> = e
        .findings(&FindingQuery::default())
        .unwrap()
        .iter()
        .map(|f| serde_json::to_string(f).unwrap())
        .collect();
    findings.sort();
    (inventory, findings, e.event_count().unwrap())
}

/// Ingests the estate (twice: the second run changes nothing), then reopens the store.
fn run(open: &dyn Fn() -> Engine) -> (Vec<String>, Vec<String>, u64) {
    let mut e = open();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    for _ in 0..2 {
        let _lock = e.write_lock().unwrap();
        let r = e
            .ingest(&[estate()], &IngestOptions::default(), &mut (), 0)
            .unwrap();
        assert_eq!(r.rejected, 0, "{:?}", r.rejections);
    }
    let ingested = answers(&e);
    drop(e);
    let mut again = open();
    again
        .enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    assert_eq!(answers(&again), ingested, "loaded back from the store");
    ingested
}

#[test]
fn the_estate_answers_the_same_on_postgres_and_sqlite() {
    let Some(db) = common::Database::new("kw_test_engine") else {
        return;
    };
    let url = db.url.clone();

    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = run(&|| Engine::open(sqlite_dir.path()).unwrap());
    let keys_dir = tempfile::tempdir().unwrap();
    let pg = run(&|| Engine::open_url(&url, keys_dir.path()).unwrap());

    assert!(
        sqlite.0.len() > 500 && !sqlite.1.is_empty(),
        "the estate loaded"
    );
    assert_eq!(pg.2, sqlite.2, "events");
    assert_eq!(pg.0, sqlite.0, "inventory");
    assert_eq!(pg.1, sqlite.1, "findings");
}
