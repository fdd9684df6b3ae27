//! What the engine's PostgreSQL tests share: a fresh database of their own.

#![allow(clippy::unwrap_used, dead_code)]

/// A fresh database on `KEYWARD_TEST_POSTGRES_URL`'s server, dropped with this.
pub struct Database {
    admin: postgres::Client,
    name: String,
    pub url: String,
}

impl Database {
    /// `None` (said so) without `KEYWARD_TEST_POSTGRES_URL`.
    pub fn new(prefix: &str) -> Option<Database> {
        let Some(admin) = std::env::var("KEYWARD_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            eprintln!("skipped: KEYWARD_TEST_POSTGRES_URL not set");
            return None;
        };
        let name = format!("{prefix}_{}", std::process::id());
        let mut server = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            server.batch_execute(&sql).unwrap();
        }
        let base = admin.split('?').next().unwrap();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Some(Database {
            admin: server,
            name,
            url,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
