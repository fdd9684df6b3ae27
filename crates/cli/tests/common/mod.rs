//! The `keyward` binary as the tests run it.

#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

pub mod bao;
pub mod moto;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Runs `keyward --data-dir DATA ARGS…` to its end (no standard input).
pub fn keyward(data: &Path, args: &[&str]) -> Output {
    spawn(data, args).wait_with_output().unwrap()
}

/// `keyward --data-dir DATA`, to which a test adds its arguments. When the suite runs on
/// PostgreSQL (`KEYWARD_TEST_SUITE_STORE=postgres`, `.ci/run`'s second pass), also
/// `--store` a database of the data directory's own (see [`suite_store`]).
pub fn command(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyward"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_STORE");
    if let Some(url) = suite_store(data) {
        c.arg("--store").arg(url);
    }
    c
}

pub use servers::suite_on_postgres;

/// In the PostgreSQL pass: the URL of `data`'s database on `KEYWARD_TEST_POSTGRES_URL`'s
/// server — named after that database and a hash of the directory, made the first time
/// (`.ci/run` drops them after the pass).
pub fn suite_store(data: &Path) -> Option<String> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static MADE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if !suite_on_postgres() {
        return None;
    }
    let base = std::env::var("KEYWARD_TEST_POSTGRES_URL")
        .expect("KEYWARD_TEST_SUITE_STORE=postgres needs KEYWARD_TEST_POSTGRES_URL");
    let (root, db) = base.rsplit_once('/').expect("a database URL");
    let db = db.split('?').next().unwrap_or(db);
    let hash = blake3::hash(data.to_string_lossy().as_bytes()).to_hex();
    let name = format!("{db}_s_{}", &hash[..16]);
    let mut made = MADE.lock().unwrap();
    if made.get_or_insert_default().insert(name.clone()) {
        let mut admin = postgres::Client::connect(&format!("{root}/postgres"), postgres::NoTls)
            .expect("the suite's PostgreSQL server");
        if let Err(e) = admin.batch_execute(&format!("CREATE DATABASE {name}"))
            && e.code() != Some(&postgres::error::SqlState::DUPLICATE_DATABASE)
        {
            panic!("CREATE DATABASE {name}: {e}");
        }
    }
    Some(format!("{root}/{name}"))
}

/// Runs `sql` on `data`'s store behind Keyward's back (tampering, as someone with access
/// to the database would): its SQLite file, or its database in the PostgreSQL pass.
pub fn tamper(data: &Path, sql: &str) {
    match suite_store(data) {
        Some(url) => postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        None => rusqlite::Connection::open(data.join("keyward.db"))
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
    }
}

/// The rows `sql` answers on `data`'s store, read behind Keyward's back, each value as
/// text ("" for NULL): from its SQLite file, or its database in the PostgreSQL pass. An
/// error when there is no store yet (or no such table).
pub fn rows(data: &Path, sql: &str) -> Result<Vec<Vec<String>>, String> {
    if let Some(url) = suite_store(data) {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| e.to_string())?;
        let answer = c.simple_query(sql).map_err(|e| e.to_string())?;
        return Ok(answer
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or_default().to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect());
    }
    let file = data.join("keyward.db");
    if !file.exists() {
        return Err("no store yet".into());
    }
    let c =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut st = c.prepare(sql).map_err(|e| e.to_string())?;
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Null => String::new(),
                    rusqlite::types::Value::Integer(v) => v.to_string(),
                    rusqlite::types::Value::Real(v) => v.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                })
            })
            .collect::<rusqlite::Result<Vec<String>>>()
    })
    .map_err(|e| e.to_string())?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(|e| e.to_string())
}

/// How many response steps of `action` the audit log of `data` holds as done
/// (`step N ACTION on …: ok`); 0 before there is a store.
pub fn steps_done(data: &Path, action: &str) -> usize {
    rows(
        data,
        &format!(
            "SELECT count(*) FROM audit_log WHERE action = 'respond.step' \
             AND detail LIKE 'step _ {action} on %: ok%'"
        ),
    )
    .ok()
    .and_then(|r| r.first()?.first()?.parse().ok())
    .unwrap_or(0)
}

/// Starts `keyward --data-dir DATA ARGS…` with its output captured.
pub fn spawn(data: &Path, args: &[&str]) -> Child {
    command(data)
        .args(args)
        .env_remove("KEYWARD_CONFIG")
        .env_remove("KEYWARD_POLICIES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The bundled example estate.
pub fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `keyward serve` on a free loopback port (its environment inherited), killed when
/// dropped. Its standard error stays open (a closed pipe would end it at its next line).
pub struct Served {
    child: Child,
    pub port: u16,
    _stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(data: &Path) -> Served {
    serve_with(data, &[], &[])
}

/// [`serve`] with global options (`--store …`) and options of `serve` (`--bus …`).
pub fn serve_with(data: &Path, globals: &[&str], args: &[&str]) -> Served {
    use std::io::BufRead as _;
    let mut child = command(data)
        .args(globals)
        .arg("serve")
        // A free port unless the caller names one.
        .args(if args.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        })
        .args(args)
        .env_remove("KEYWARD_CONFIG")
        .env_remove("KEYWARD_POLICIES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    // The line that says where it listens (others, such as the poller's, may come first).
    let mut first = String::new();
    for _ in 0..20 {
        first.clear();
        if stderr.read_line(&mut first).unwrap() == 0 || first.contains("serving on") {
            break;
        }
    }
    let port = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    Served {
        child,
        port,
        _stderr: stderr,
    }
}

/// A plain HTTP/1.1 exchange over loopback (a JSON body when `json`): the status and the
/// body.
pub fn http(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    exchange(port, method, path, token, None, body)
}

/// [`http`] with `Content-Type: application/json`.
pub fn http_json(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    exchange(port, method, path, token, Some("application/json"), body)
}

fn exchange(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let ct = content_type.map_or_else(String::new, |c| format!("Content-Type: {c}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         {ct}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, body.to_owned())
}
