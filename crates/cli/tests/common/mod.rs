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

/// Starts `keyward --data-dir DATA ARGS…` with its output captured.
pub fn spawn(data: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--data-dir")
        .arg(data)
        .args(globals)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_CONFIG")
        .env_remove("KEYWARD_POLICIES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
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
