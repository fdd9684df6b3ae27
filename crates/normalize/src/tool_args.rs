//! Credentials and secrets in an AI agent's tool-call arguments, read the same way
//! whichever log reported the call (OpenTelemetry spans, [`otel`](crate::otel); Claude
//! Desktop's MCP logs, [`mcp_log`](crate::mcp_log)).
//!
//! - [`Credentials::of`] finds what the arguments name: an IAM role ARN with a session name
//!   (`RoleArn` / `RoleSessionName` in any spelling, or `--role-arn` /
//!   `--role-session-name` of a CLI command) — the STS session the call assumes — and
//!   access key ids, each an access key the agent's session `used`.
//! - [`redact_arguments`] is the arguments as they may be stored: every value that is not an
//!   id (an ARN, an access key id, a short word) is `[redacted]`, and so is every value
//!   under a key that names a secret (`password`, `SecretAccessKey`, `apiToken`, …).

use keyward_model::{IdentityKind, Observation, Platform, SourceKind};
use keyward_model::{ids, time::Millis};
use serde_json::{Value, json};

/// How deep argument values are walked for credentials and kept in the stored record.
const MAX_ARG_DEPTH: usize = 8;
/// Argument strings longer than this are never kept (a pasted document, a prompt).
const MAX_KEPT_STRING: usize = 200;

/// Lower-case letters and digits only: `RoleArn`, `role_arn` and `--role-arn` alike.
fn squash(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// An IAM role ARN: (canonical id, account, name).
fn role_arn(s: &str) -> Option<(String, String, String)> {
    let a = ids::Arn::parse(s)?;
    match a.type_and_name() {
        Some(("role", name)) if a.service == "iam" && !name.is_empty() && !a.account.is_empty() => {
            Some((
                ids::iam(a.account, "role", name),
                a.account.to_owned(),
                name.to_owned(),
            ))
        }
        _ => None,
    }
}

/// Whether `s` is a valid STS role session name (`[\w+=,.@-]{2,64}`).
fn session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// Credentials a tool call's arguments name.
#[derive(Default)]
pub(crate) struct Credentials {
    /// The role named: (canonical id, account, name).
    pub(crate) role: Option<(String, String, String)>,
    /// The role session name.
    pub(crate) session: Option<String>,
    /// Access key ids, in the order found.
    pub(crate) keys: Vec<String>,
}

impl Credentials {
    pub(crate) fn of(args: &Value) -> Credentials {
        let mut c = Credentials::default();
        c.walk("", args, 0);
        c
    }

    fn walk(&mut self, key: &str, v: &Value, depth: usize) {
        if depth > MAX_ARG_DEPTH {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    self.walk(k, x, depth + 1);
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.walk(key, x, depth + 1);
                }
            }
            Value::String(s) => self.text(&squash(key), s),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn text(&mut self, key: &str, s: &str) {
        let s = s.trim();
        match key {
            "rolearn" if self.role.is_none() => self.role = role_arn(s),
            "rolesessionname" | "sessionname" if self.session.is_none() && session_name(s) => {
                self.session = Some(s.to_owned());
            }
            _ => {}
        }
        // A command line (`aws sts assume-role --role-arn … --role-session-name …`), or
        // ids anywhere in a value.
        let words: Vec<&str> = s
            .split(|c: char| c.is_whitespace() || (c == '=' && !s.starts_with("arn:")))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).map(|n| n.trim_matches(['"', '\'']));
            match squash(w).as_str() {
                "rolearn" if self.role.is_none() => self.role = next.and_then(role_arn),
                "rolesessionname" | "sessionname" if self.session.is_none() => {
                    self.session = next.filter(|n| session_name(n)).map(str::to_owned);
                }
                _ => {}
            }
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if ids::access_key_type(w).is_some() && !self.keys.iter().any(|k| k == w) {
                self.keys.push(w.to_owned());
            }
            if self.role.is_none() {
                self.role = role_arn(w.trim_matches(['"', '\'']));
            }
        }
    }

    /// The STS session the call assumed: the role's session of that name, created by the
    /// agent's session (`by`), as `source` reported the call.
    pub(crate) fn sts_session(
        &self,
        at: Millis,
        by: &str,
        source: SourceKind,
    ) -> Option<Observation> {
        let (role, account, name) = self.role.as_ref()?;
        let session = self.session.as_deref()?;
        let id = format!("arn:aws:sts::{account}:assumed-role/{name}/{session}");
        let mut o = Observation::new(
            id.clone(),
            Platform::Aws,
            IdentityKind::StsSession,
            session,
            source,
        );
        o.seen_at = Some(at);
        o.facts.arn = Some(id);
        o.facts.account = Some(account.clone());
        o.facts.parent = Some(role.clone());
        o.facts.assumed_by = Some(by.to_owned());
        Some(o)
    }
}

impl Credentials {
    /// The access keys the call named, each `used` by `by` (the agent's session): the
    /// graph joins the session to what CloudTrail reports the key did around the call.
    pub(crate) fn used_keys(
        &self,
        at: Millis,
        by: &str,
        source: SourceKind,
    ) -> impl Iterator<Item = Observation> + '_ {
        let by = by.to_owned();
        self.keys.iter().filter_map(move |k| {
            let kind = match ids::access_key_type(k)? {
                ids::AccessKeyType::LongTerm => IdentityKind::AccessKey,
                ids::AccessKeyType::Temporary => IdentityKind::TemporaryAccessKey,
            };
            let mut o = Observation::new(k.clone(), Platform::Aws, kind, k.as_str(), source);
            o.seen_at = Some(at);
            o.facts.account = ids::account_from_access_key(k);
            o.facts.used_by = Some(by.clone());
            Some(o)
        })
    }
}

/// Whether an argument's key names a secret (`password`, `SecretAccessKey`, `apiToken`).
fn secret_key(key: &str) -> bool {
    let k = squash(key);
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "authorization",
        "credential",
        "privatekey",
        "cookie",
        "signature",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Whether a value may be kept: an ARN, an access key id, or a short word that does not
/// look like a generated secret (long runs mixing cases and digits).
fn keepable(s: &str) -> bool {
    if s.starts_with("arn:") || ids::access_key_type(s).is_some() {
        return s.len() <= MAX_KEPT_STRING;
    }
    if s.len() > MAX_KEPT_STRING {
        return false;
    }
    !s.split(|c: char| c.is_whitespace() || c == '/' || c == ',')
        .any(|w| {
            let classes = [
                w.bytes().any(|b| b.is_ascii_lowercase()),
                w.bytes().any(|b| b.is_ascii_uppercase()),
                w.bytes().any(|b| b.is_ascii_digit()),
            ];
            w.len() >= 20 && classes.iter().filter(|c| **c).count() >= 2
                || w.len() >= 32 && !w.contains(['-', '.', ':'])
        })
}

/// A value as it may be stored (the arguments of a tool call, an attribute of a span):
/// ids and plain words kept, the rest `[redacted]`; `key` is the value's own key.
pub(crate) fn redact_value(key: &str, v: &Value) -> Value {
    redact(key, v, 0)
}

/// A tool call's arguments as they may be stored.
pub(crate) fn redact_arguments(args: &Value) -> Value {
    redact("", args, 0)
}

/// An argument value as it may be stored: ids and plain words kept, the rest
/// `[redacted]`.
fn redact(key: &str, v: &Value, depth: usize) -> Value {
    if depth > MAX_ARG_DEPTH {
        return json!("[redacted]");
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), redact(k, x, depth + 1)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(key, x, depth + 1)).collect()),
        Value::String(s) if !secret_key(key) && keepable(s) => v.clone(),
        Value::Null | Value::Bool(_) | Value::Number(_) if !secret_key(key) => v.clone(),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            json!("[redacted]")
        }
    }
}
