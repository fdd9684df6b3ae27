//! API tokens: created at random, shown once, stored as a hash; each in a role. Whether a
//! caller may do something is Cedar's decision ([`decide`]): a token is a `Keyward::Token`
//! in its role, and the policy set in force (the built-in roles unless configured) says.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use keyward_engine::{Engine, EngineError};
use keyward_model::time::Millis;
use keyward_policy::{Act, Ask, Decision, Principal, Resource, Situation, Surface};
use keyward_store::{AuditEntry, TokenRow};

use crate::{ApiError, AppState};

/// The peer address of the connection a request came on, set by the accept loop (any
/// value a client sends is replaced): the policies' `context.source_ip`.
pub const PEER_HEADER: HeaderName = HeaderName::from_static("x-keyward-peer");

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

/// Who is calling: the token's id, role and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub name: String,
}

impl Caller {
    /// The audit log's name for this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }

    /// The caller as a policy principal.
    pub fn principal(&self) -> Principal {
        Principal::Token {
            id: self.token_id.clone(),
            role: self.role.as_str().to_owned(),
            name: self.name.clone(),
        }
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
    verify_hash(engine, &hash(token))
}

/// [`verify`] by the token's stored hash (a dashboard session keeps only that).
pub fn verify_hash(engine: &Engine, token_hash: &str) -> Result<Option<Caller>, EngineError> {
    let Some(row) = engine.token_by_hash(token_hash)? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(Role::parse(&row.role).map(|role| Caller {
        token_id: row.id,
        role,
        name: row.name,
    }))
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110, 11.1), and any run of spaces or tabs may follow it.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The caller behind the request's bearer token, if the policy lets it do `action` on the
/// estate.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    action: Act,
) -> Result<Caller, ApiError> {
    authorize_on(
        state,
        headers,
        action,
        Resource::Estate,
        Situation::default(),
    )
    .await
}

/// [`authorize`] for a read the policy restricts (the audit log, tokens, configuration):
/// an allow is counted in the metrics, not audited, so reading the audit log does not grow
/// it; a deny is audited.
pub async fn authorize_read(
    state: &AppState,
    headers: &HeaderMap,
    action: Act,
) -> Result<Caller, ApiError> {
    let caller = authenticate(state, headers).await?;
    let situation = Situation::default();
    judge(
        state,
        &caller,
        headers,
        action,
        Resource::Estate,
        situation,
        true,
    )
    .await?;
    Ok(caller)
}

/// The caller behind the request's bearer token, if the policy lets it do `action` on
/// `resource` in `situation` (its time, address and surface are filled in here).
pub async fn authorize_on(
    state: &AppState,
    headers: &HeaderMap,
    action: Act,
    resource: Resource,
    situation: Situation,
) -> Result<Caller, ApiError> {
    let caller = authenticate(state, headers).await?;
    decide(state, &caller, headers, action, resource, situation).await?;
    Ok(caller)
}

/// The caller behind the request's bearer token (known, unrevoked); no decision yet.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
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
    Ok(caller)
}

/// When nothing forbade it: which built-in role the policies would let do it, to say what
/// token to use instead.
fn stronger_role(state: &AppState, caller: &Caller, ask: &Ask<'_>) -> String {
    [Role::Viewer, Role::Operator, Role::Admin]
        .into_iter()
        .filter(|r| *r != caller.role)
        .find(|r| {
            let other = Principal::Token {
                id: caller.token_id.clone(),
                role: r.as_str().to_owned(),
                name: caller.name.clone(),
            };
            state
                .policies
                .decide(&Ask {
                    principal: &other,
                    ..*ask
                })
                .allowed
        })
        .map_or_else(String::new, |r| {
            format!(
                "; the policies allow it to a token with the {} role, this one is {}",
                r.as_str(),
                caller.role.as_str()
            )
        })
}

/// The request's peer address ([`PEER_HEADER`]).
pub fn peer(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether the policy lets `caller` do `action` on `resource` (not audited: for what a
/// page offers, never for acting).
pub fn permits(state: &AppState, caller: &Caller, action: Act, resource: &Resource) -> bool {
    permits_in(state, caller, action, resource, Situation::default())
}

/// [`permits`] in `situation` (its time and surface are filled in here).
pub fn permits_in(
    state: &AppState,
    caller: &Caller,
    action: Act,
    resource: &Resource,
    situation: Situation,
) -> bool {
    let principal = caller.principal();
    let situation = Situation {
        now: crate::now(),
        surface: Surface::Dashboard,
        ..situation
    };
    state
        .policies
        .decide(&Ask {
            principal: &principal,
            action,
            resource,
            situation: &situation,
        })
        .allowed
}

/// Cedar's decision on `caller` doing `action` on `resource`; audited (`policy.decide`,
/// with the deciding policy ids) unless it allows a read or an ingest, which are counted in
/// the metrics instead. A deny is a 403 that names the deciding policies.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    action: Act,
    resource: Resource,
    situation: Situation,
) -> Result<Decision, ApiError> {
    judge(state, caller, headers, action, resource, situation, false).await
}

/// The policies' answer to `ask`, audited — an allow only when not `quiet` — on every
/// surface that decides: the API and the dashboard here, the MCP tools over stdio too.
pub(crate) async fn decide_audited(
    policies: &keyward_policy::Policies,
    engine: &crate::EngineHandle,
    ask: &Ask<'_>,
    quiet: bool,
) -> Result<Decision, ApiError> {
    let decision = policies.decide(ask);
    if !(quiet && decision.allowed) {
        let entry = keyward_engine::authz::decision_entry(&decision, ask);
        engine
            .write(move |e| e.audit(&entry).map(|_| ()))
            .await?
            .map_err(ApiError::internal)?;
    }
    Ok(decision)
}

/// [`decide`]; `read`: the request only reads, so an allow is not audited.
async fn judge(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    action: Act,
    resource: Resource,
    situation: Situation,
    read: bool,
) -> Result<Decision, ApiError> {
    let principal = caller.principal();
    let situation = Situation {
        now: crate::now(),
        source_ip: peer(headers).or(situation.source_ip),
        // The dashboard says so; everything else through here is the API.
        surface: match situation.surface {
            Surface::Dashboard => Surface::Dashboard,
            Surface::Broker => Surface::Broker,
            Surface::Mcp => Surface::Mcp,
            Surface::Cli | Surface::Api | Surface::Scheduler => Surface::Api,
        },
        ..situation
    };
    let ask = Ask {
        principal: &principal,
        action,
        resource: &resource,
        situation: &situation,
    };
    let quiet = read || matches!(action, Act::View | Act::Ingest);
    let decision = decide_audited(&state.policies, &state.engine, &ask, quiet).await?;
    state
        .metrics
        .policy_decision(action.as_str(), decision.word());
    if !decision.allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "refused by policy: {}{}",
                decision.denial(&ask),
                stronger_role(state, caller, &ask)
            ),
        ));
    }
    Ok(decision)
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
