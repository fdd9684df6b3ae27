//! Runs a store test against every store: SQLite always, PostgreSQL when
//! `KEYWARD_TEST_POSTGRES_URL` names a server (each test in a fresh database of its own,
//! dropped afterwards). Tests get a [`Backend`], make [`Fixture`]s from it (a store and
//! its data directory) and reach the database underneath with raw SQL, as an attacker
//! or another program would.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_store::audit::KeyFiles;
use keyward_store::{SqliteStore, Store};

/// The variable naming a PostgreSQL server (and a database to connect to first).
pub const PG_ENV: &str = "KEYWARD_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// Runs `test` on SQLite, then on PostgreSQL when [`PG_ENV`] is set (saying so when it is
/// skipped).
pub fn each(test: impl Fn(Backend)) {
    test(Backend::Sqlite);
    match std::env::var(PG_ENV).ok().filter(|v| !v.is_empty()) {
        None => eprintln!("skipped: {PG_ENV} not set"),
        #[cfg(feature = "postgres")]
        Some(_) => test(Backend::Postgres),
        #[cfg(not(feature = "postgres"))]
        Some(_) => eprintln!("skipped: PostgreSQL (built without the `postgres` feature)"),
    }
}

impl Backend {
    pub fn fixture(self) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        match self {
            Backend::Sqlite => Fixture {
                backend: self,
                dir,
                #[cfg(feature = "postgres")]
                pg: None,
            },
            #[cfg(feature = "postgres")]
            Backend::Postgres => Fixture {
                backend: self,
                dir,
                pg: Some(pg::Database::create()),
            },
        }
    }
}

/// A store's place: its data directory (the SQLite database, the audit keys) and, on
/// PostgreSQL, its database.
pub struct Fixture {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    #[cfg(feature = "postgres")]
    pg: Option<pg::Database>,
}

impl Fixture {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new connection to the store, its audit keys in the data directory.
    pub fn open(&self) -> Box<dyn Store> {
        self.open_with(KeyFiles::in_dir(self.path()))
    }

    pub fn try_open(&self) -> keyward_store::Result<Box<dyn Store>> {
        self.try_open_with(KeyFiles::in_dir(self.path()))
    }

    pub fn open_with(&self, keys: KeyFiles) -> Box<dyn Store> {
        self.try_open_with(keys).unwrap()
    }

    pub fn try_open_with(&self, keys: KeyFiles) -> keyward_store::Result<Box<dyn Store>> {
        match self.backend {
            Backend::Sqlite => Ok(Box::new(SqliteStore::open_with(self.path(), keys)?)),
            #[cfg(feature = "postgres")]
            Backend::Postgres => Ok(Box::new(keyward_store::PgStore::open(
                &self.pg.as_ref().unwrap().url,
                keys,
            )?)),
        }
    }

    /// The store's location as `keyward_store::open` reads it.
    pub fn location(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite:{}", self.path().display()),
            #[cfg(feature = "postgres")]
            Backend::Postgres => self.pg.as_ref().unwrap().url.clone(),
        }
    }

    /// Runs SQL statements on the database directly.
    pub fn exec(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => self.sqlite().execute_batch(sql).unwrap(),
            #[cfg(feature = "postgres")]
            Backend::Postgres => self
                .pg
                .as_ref()
                .unwrap()
                .client()
                .batch_execute(sql)
                .unwrap(),
        }
    }

    /// The first column of every row of a query, as text (`CAST` numbers in the SQL).
    pub fn strings(&self, sql: &str) -> Vec<String> {
        match self.backend {
            Backend::Sqlite => {
                let c = self.sqlite();
                let mut st = c.prepare(sql).unwrap();
                st.query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => self
                .pg
                .as_ref()
                .unwrap()
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect(),
        }
    }

    /// A single number from a query (`CAST(… AS TEXT)` is added by the caller's SQL).
    pub fn number(&self, sql: &str) -> i64 {
        self.strings(sql)[0].parse().unwrap()
    }

    fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("keyward.db")).unwrap()
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::PG_ENV;

    /// A database created for one fixture, dropped with it.
    pub struct Database {
        pub url: String,
        name: String,
        admin_url: String,
    }

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    impl Database {
        pub fn create() -> Self {
            let admin_url = std::env::var(PG_ENV).unwrap();
            let name = format!(
                "kw_test_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
            );
            let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            Database {
                url: with_database(&admin_url, &name),
                name,
                admin_url,
            }
        }

        pub fn client(&self) -> postgres::Client {
            postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    /// `url` with its database replaced by `name`.
    fn with_database(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url, String::new()),
        };
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let path_start = base[authority_start..]
            .find('/')
            .map_or(base.len(), |i| authority_start + i);
        format!("{}/{name}{query}", &base[..path_start])
    }
}
