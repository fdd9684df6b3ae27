//! API tokens: created at random, shown once, stored as a hash; roles ordered by power.

use axum::http::{HeaderMap, StatusCode, header};
use keyward_engine::{Engine, EngineError};
use keyward_model::time::Millis;
use keyward_store::{AuditEntry, TokenRow};

use crate::{ApiError, AppState};

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads inventory, findings, metrics.
    Viewer,
    /// Also acknowledges and resolves findings and posts events.
    Operator,
    /// Also manages tokens and reads the audit log.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The prefix of every Keyward API token (lets secret scanners recognise a leaked one).
pub const TOKEN_PREFIX: &str = "kw_";

/// The stored form of a token: BLAKE3 of its text, hex.
pub fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Who is calling: the token's id and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
}

impl Caller {
    /// The audit log's name for this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }

    /// How the dashboard shows who is signed in.
    pub fn label(&self) -> String {
        format!("{} · {}", self.role.as_str(), self.token_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A new token of `role`, stored hashed with an audit entry by `actor`. Returns the token
/// text (shown once; it cannot be recovered later) and its row.
pub fn create(
    engine: &mut Engine,
    role: Role,
    name: &str,
    actor: &str,
    now: Millis,
) -> Result<(String, TokenRow), TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let h = hash(&token);
    let row = TokenRow {
        id: h.chars().take(12).collect(),
        hash: h,
        role: role.as_str().to_owned(),
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    engine.put_token(
        &row,
        &AuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: "token.create".into(),
            target: Some(row.id.clone()),
            detail: None,
            before: None,
            // The token's id, role and name; never the token.
            after: Some(
                serde_json::json!({"id": row.id, "role": row.role, "name": row.name}).to_string(),
            ),
        },
    )?;
    Ok((token, row))
}

/// The caller a presented token stands for, if it is a known, unrevoked token.
pub fn verify(engine: &Engine, token: &str) -> Result<Option<Caller>, EngineError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 256 {
        return Ok(None);
    }
    let Some(row) = engine.token_by_hash(&hash(token))? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(Role::parse(&row.role).map(|role| Caller {
        token_id: row.id,
        role,
    }))
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110, 11.1), and any run of spaces or tabs may follow it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The caller behind the request's bearer token, if its role is at least `need`.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    need: Role,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` (create one with `keyward token create`)",
            )
        })?
        .to_owned();
    let caller = state
        .engine
        .call(move |e| verify(e, &token))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token"))?;
    if caller.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} role; the token is {}",
                need.as_str(),
                caller.role.as_str()
            ),
        ));
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use keyward_store::SqliteStore;

    #[test]
    fn created_tokens_verify_and_revoked_ones_do_not() {
        let mut store = Engine::with_store(Box::new(SqliteStore::in_memory().unwrap())).unwrap();
        let (token, row) = create(&mut store, Role::Operator, "ci", "cli", 1_000).unwrap();
        assert!(token.starts_with("kw_") && token.len() == 67);
        // Only the hash is stored.
        assert_ne!(row.hash, token);
        assert!(!store.tokens().unwrap()[0].hash.contains(&token[3..]));
        let caller = verify(&store, &token).unwrap().unwrap();
        assert_eq!(caller.role, Role::Operator);
        assert_eq!(verify(&store, "kw_nope").unwrap(), None);
        assert_eq!(verify(&store, "").unwrap(), None);
        let audit = AuditEntry {
            at: 2_000,
            actor: "cli".into(),
            action: "token.revoke".into(),
            target: Some(row.id.clone()),
            ..AuditEntry::default()
        };
        assert!(store.revoke_token(&row.id, &audit).unwrap());
        assert!(!store.revoke_token(&row.id, &audit).unwrap());
        assert_eq!(verify(&store, &token).unwrap(), None);
        let log = store.audit_log(10).unwrap();
        assert_eq!(
            log.iter()
                .map(|e| e.entry.action.as_str())
                .collect::<Vec<_>>(),
            ["token.revoke", "token.create"]
        );
        // The entry names the token, never holds it.
        let created = &log[1].entry;
        for field in [&created.detail, &created.before, &created.after] {
            assert!(!field.as_deref().unwrap_or("").contains(&token[3..]));
        }
        assert!(store.audit_verify(&[]).unwrap().ok);
    }

    #[test]
    fn two_tokens_differ() {
        let mut store = Engine::with_store(Box::new(SqliteStore::in_memory().unwrap())).unwrap();
        let (a, _) = create(&mut store, Role::Viewer, "a", "cli", 1).unwrap();
        let (b, _) = create(&mut store, Role::Viewer, "b", "cli", 1).unwrap();
        assert_ne!(a, b);
    }
}
