//! OpenBao as the tests reach it (`KEYWARD_TEST_VAULT_ADDR`, `KEYWARD_TEST_VAULT_TOKEN`:
//! `../shared/tools/openbao/bao-up`): plain HTTP on loopback, spoken with the standard library.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

pub struct Bao {
    host: String,
    pub addr: String,
    pub root: String,
}

impl Bao {
    /// The test server, or `None` (the caller skips, as printed).
    pub fn from_env() -> Option<Bao> {
        let (Ok(addr), Ok(root)) = (
            std::env::var("KEYWARD_TEST_VAULT_ADDR"),
            std::env::var("KEYWARD_TEST_VAULT_TOKEN"),
        ) else {
            println!("skipped: KEYWARD_TEST_VAULT_ADDR / KEYWARD_TEST_VAULT_TOKEN not set");
            return None;
        };
        let host = addr
            .strip_prefix("http://")
            .expect("the test server speaks plain HTTP")
            .trim_end_matches('/')
            .to_owned();
        Some(Bao { host, addr, root })
    }

    /// `(status, body)` of one HTTP/1.1 call as `token`.
    pub fn call(&self, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let mut s = TcpStream::connect(&self.host).unwrap();
        write!(
            s,
            "{method} /v1/{path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let doc = answer
            .split_once("\r\n\r\n")
            .and_then(|(head, b)| {
                if head
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked")
                {
                    // One chunk: its size line, the JSON, the end.
                    serde_json::from_str(b.split_once("\r\n")?.1.rsplit_once("\r\n0")?.0.trim())
                        .ok()
                } else {
                    serde_json::from_str(b).ok()
                }
            })
            .unwrap_or(Value::Null);
        (status, doc)
    }

    pub fn works(&self, token: &str) -> bool {
        self.call(token, "GET", "auth/token/lookup-self", &Value::Null)
            .0
            == 200
    }
}
