//! Servers the scale-out tests own: a fresh database on the machine's PostgreSQL, a private
//! PostgreSQL cluster they may restart, and a NATS JetStream server they may restart.
//! Each says the calling test is skipped when what it needs is not there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Whether this run of the suite puts every data directory's store on PostgreSQL
/// (`KEYWARD_TEST_SUITE_STORE=postgres`, `.ci/run`'s second pass).
pub fn suite_on_postgres() -> bool {
    std::env::var("KEYWARD_TEST_SUITE_STORE").is_ok_and(|s| s == "postgres")
}

/// Whether this is the suite's PostgreSQL pass (said so): the tests with servers of their
/// own compare the stores (and so ran on both in the first pass).
fn skipped_in_postgres_pass() -> bool {
    let skip = suite_on_postgres();
    if skip {
        println!("skipped: the suite's PostgreSQL pass (this test ran in the first)");
    }
    skip
}

/// A fresh database on the server `base` names (`KEYWARD_TEST_POSTGRES_URL`'s server),
/// dropped when this is.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    /// On the machine's server (`KEYWARD_TEST_POSTGRES_URL`, made by `.ci/postgres.sh`).
    pub fn new(prefix: &str) -> Option<Database> {
        if skipped_in_postgres_pass() {
            return None;
        }
        let Ok(base) = std::env::var("KEYWARD_TEST_POSTGRES_URL") else {
            println!("skipped: KEYWARD_TEST_POSTGRES_URL not set (.ci/postgres.sh)");
            return None;
        };
        Some(Database::on(&base, prefix))
    }

    /// On the server of the database URL `base`.
    pub fn on(base: &str, prefix: &str) -> Database {
        let name = unique(prefix);
        let (server, query) = match base.split_once('?') {
            Some((s, q)) => (s.to_owned(), format!("?{q}")),
            None => (base.to_owned(), String::new()),
        };
        let root = &server[..server.rfind('/').unwrap()];
        let admin = format!("{root}/postgres{query}");
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Database {
            url: format!("{root}/{name}{query}"),
            admin,
            name,
        }
    }

    /// One number from a query on this database.
    pub fn count(&self, sql: &str) -> i64 {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        c.query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A PostgreSQL cluster of the test's own (`KEYWARD_TEST_PG_BIN`: the directory of
/// `initdb` and `pg_ctl`), so it may be restarted; stopped and removed when dropped. Run
/// as the `postgres` user when the test runs as root (PostgreSQL refuses root).
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl PgCluster {
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = std::env::var_os("KEYWARD_TEST_PG_BIN").map(PathBuf::from) else {
            println!("skipped: KEYWARD_TEST_PG_BIN not set (the directory of initdb and pg_ctl)");
            return None;
        };
        let dir = PathBuf::from(format!("/tmp/{}", unique("kw_pg")));
        std::fs::create_dir_all(&dir).unwrap();
        let c = PgCluster {
            bin,
            dir,
            port: free_port(),
        };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&c.dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown the cluster's directory");
        }
        let data = c.dir.join("data");
        let out = c
            .as_owner(&c.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.pg_ctl("start");
        Some(c)
    }

    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, verb: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let out = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.dir.join("data"))
            .args(["-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &opts, verb])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if verb != "stop" {
            wait_for_port(self.port, "PostgreSQL");
        }
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: sessions are ended) and starts it again.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A NATS server with JetStream of the test's own (`KEYWARD_TEST_NATS_SERVER`: the
/// `nats-server` binary), on a free port, its store in a temporary directory; killed when
/// dropped.
pub struct Nats {
    binary: PathBuf,
    store: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Nats {
    pub fn start() -> Option<Nats> {
        if skipped_in_postgres_pass() {
            return None;
        }
        let Some(binary) = std::env::var_os("KEYWARD_TEST_NATS_SERVER").map(PathBuf::from) else {
            println!("skipped: KEYWARD_TEST_NATS_SERVER not set (the nats-server binary)");
            return None;
        };
        let store = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Nats::spawn(&binary, store.path(), port);
        Some(Nats {
            binary,
            store,
            child,
            port,
        })
    }

    fn spawn(binary: &Path, store: &Path, port: u16) -> Child {
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "nats-server");
        child
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Where JetStream keeps its files.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Stops the server (SIGTERM: a clean shutdown) and starts it again on the same port
    /// and store, after `down`.
    pub fn restart(&mut self, down: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Nats::spawn(&self.binary, self.store.path(), self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
