//! Issuing, renewing and revoking: the policy asked, the credential minted, the lease
//! committed with its audit entry; a revocation cascades to every lease issued under it.

use std::net::IpAddr;

use axum::http::StatusCode;
use keyward_broker::jose::Claims;
use keyward_broker::lease::{self, Issue};
use keyward_broker::{ProofKind, Workload};
use keyward_engine::broker::LeaseWrite;
use keyward_model::lease::{LeaseKind, LeaseRecord, LeaseState};
use keyward_model::time::Millis;
use keyward_policy::{Act, Ask, Principal, Resource, Situation, Surface};
use keyward_store::AuditEntry;
use serde_json::{Value, json};

use super::{AssumeRequest, Broker};
use crate::AppState;
use crate::error::ApiError;

/// STS's shortest session.
const STS_MIN_SECS: Millis = 900;

/// What a workload asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Asked {
    /// An audience, a role ARN, a SPIFFE id or a secret's name (an SVID's defaults to the
    /// workload's own SPIFFE id).
    pub target: Option<String>,
    pub ttl_ms: Option<Millis>,
    /// An SVID's certificate signing request (the workload keeps its key).
    pub csr: Option<String>,
}

/// What was issued: the lease, and the credential (returned once, never stored).
#[derive(Debug)]
pub(crate) struct Issued {
    pub lease: LeaseRecord,
    pub credential: Value,
}

/// The workload a Keyward token names: the one it was first issued to, under the token's
/// lease.
pub(crate) fn workload_of_own(c: &Claims) -> Result<Workload, ApiError> {
    let kw = c.all.get("kw").and_then(Value::as_object);
    let text = |k: &str| kw.and_then(|m| m.get(k)).and_then(Value::as_str);
    let (Some(sub), Some(jti)) = (c.sub.as_deref(), c.jti.as_deref()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the token has no subject or lease",
        ));
    };
    let mut attrs: std::collections::BTreeMap<String, String> = kw
        .and_then(|m| m.get("attrs"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    for k in [
        "workload_kind",
        "workload_platform",
        "workload_name",
        "proof",
    ] {
        if let Some(v) = text(k) {
            attrs.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(Workload {
        proof: ProofKind::Keyward,
        issuer: c.iss.clone(),
        subject: text("subject").unwrap_or(sub).to_owned(),
        identity: sub.to_owned(),
        attrs,
        expires_at: c.exp.saturating_mul(1000),
        lease: Some(jti.to_owned()),
    })
}

/// The SPIFFE id a workload gets by default: `ns/<namespace>/sa/<name>` for a Kubernetes
/// service account (the convention), else `<proof>/<its subject's parts>`.
fn default_spiffe_id(trust_domain: &str, w: &Workload) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    if let (Some(ns), Some(sa)) = (w.attrs.get("namespace"), w.attrs.get("service_account")) {
        return format!("spiffe://{trust_domain}/ns/{}/sa/{}", clean(ns), clean(sa));
    }
    let parts: Vec<String> = w
        .subject
        .split([':', '/'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(clean)
        .collect();
    format!(
        "spiffe://{trust_domain}/{}/{}",
        w.proof.as_str(),
        parts.join("/")
    )
}

/// The policy's view of a workload.
fn principal(w: &Workload, agent: bool) -> Principal {
    let mut attrs = w.attrs.clone();
    if agent {
        attrs.insert("agent".into(), "true".into());
    }
    Principal::Workload(Box::new(keyward_policy::Workload {
        identity: w.identity.clone(),
        proof: w.proof.as_str().to_owned(),
        issuer: w.issuer.clone(),
        subject: w.subject.clone(),
        cluster: attrs.get("cluster").cloned(),
        namespace: attrs.get("namespace").cloned(),
        attrs,
    }))
}

fn denied(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

fn bad_gateway(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, format!("{what}: {e}"))
}

/// Issues a credential of `kind` to `w`: Cedar decides (`issue` on the credential, the TTL
/// in the context), the credential is minted, and its lease is committed with its audit
/// entry before it is returned. A refusal is audited too.
pub(crate) async fn issue(
    state: &AppState,
    broker: &Broker,
    w: Workload,
    kind: LeaseKind,
    asked: Asked,
    source_ip: Option<IpAddr>,
    now: Millis,
) -> Result<Issued, ApiError> {
    let cfg = &broker.config;
    let target = match (kind, asked.target) {
        (LeaseKind::Svid, None) => default_spiffe_id(&cfg.trust_domain, &w),
        (_, Some(t)) if !t.is_empty() => t,
        (LeaseKind::Jwt, _) => return Err(ApiError::bad_request("`audience` is required")),
        (LeaseKind::Aws, _) => return Err(ApiError::bad_request("`role_arn` is required")),
        (LeaseKind::Svid | LeaseKind::Secret, _) => {
            return Err(ApiError::bad_request("a secret's name is required"));
        }
    };
    let agent = cfg.is_agent(&w);
    let mut ttl = cfg.ttl(kind);
    if agent {
        ttl.max_ms = ttl.max_ms.min(cfg.agent_ttl_ms);
        ttl.default_ms = ttl.default_ms.min(ttl.max_ms);
    }
    let mut ttl_ms = ttl.grant(asked.ttl_ms);
    // Nothing outlives the lease whose token asked for it.
    if w.lease.is_some() {
        ttl_ms = ttl_ms.min(w.expires_at.saturating_sub(now));
    }
    let principal = principal(&w, agent);
    let resource = Resource::Credential {
        kind: kind.as_str().to_owned(),
        target: target.clone(),
    };
    let situation = Situation {
        now,
        source_ip,
        surface: Surface::Broker,
        duration: Some(ttl_ms),
        ..Situation::default()
    };
    let ask = Ask {
        principal: &principal,
        action: Act::Issue,
        resource: &resource,
        situation: &situation,
    };
    let decision = state.policies.decide(&ask);
    state.metrics.policy_decision("issue", decision.word());
    let actor = principal.actor();
    if !decision.allowed {
        let entry = keyward_engine::authz::decision_entry(&decision, &ask);
        state
            .engine
            .write(move |e| e.audit(&entry).map(|_| ()))
            .await?
            .map_err(ApiError::internal)?;
        return Err(denied(decision.denial(&ask)));
    }
    if let Some(parent) = &w.lease {
        let id = parent.clone();
        let p = state
            .engine
            .call(move |e| e.lease(&id))
            .await?
            .map_err(ApiError::internal)?;
        if p.is_none_or(|p| p.state_at(now) != LeaseState::Active) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("lease {parent} is no longer active"),
            ));
        }
    }
    let id = lease::new_id(now).map_err(|_| ApiError::internal("no randomness"))?;
    let mut what = Issue {
        kind,
        target: target.clone(),
        identity: None,
        reference: None,
        account: None,
        boundary: agent.then(|| "agent".to_owned()),
        policies: decision.policies.clone(),
        ttl_ms,
        max_ms: ttl.max_ms,
    };
    let credential = match kind {
        LeaseKind::Jwt => {
            // Signed below, from the lease itself.
            what.reference = Some(id.clone());
            Value::Null
        }
        LeaseKind::Aws => {
            let platforms = broker.platforms.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "the AWS connector is not built in",
                )
            })?;
            let secs = ttl_ms.div_euclid(1000).max(STS_MIN_SECS);
            let creds = platforms
                .assume_role(AssumeRequest {
                    role_arn: target.clone(),
                    session_name: id.clone(),
                    duration_secs: u32::try_from(secs).unwrap_or(u32::MAX),
                    source_identity: Some(source_identity(&w.subject)),
                    tags: vec![("keyward-lease".into(), id.clone())],
                    session_policy: agent.then(|| platforms.agent_boundary()),
                })
                .await
                .map_err(|e| bad_gateway("STS AssumeRole", e))?;
            what.identity = Some(creds.assumed_role_arn.clone());
            what.account = creds.assumed_role_arn.split(':').nth(4).map(str::to_owned);
            what.reference = Some(creds.access_key_id.clone());
            what.ttl_ms = creds.expiration.saturating_sub(now).max(1_000);
            json!({
                "access_key_id": creds.access_key_id,
                "secret_access_key": creds.secret_access_key,
                "session_token": creds.session_token,
                "expiration": creds.expiration,
                "assumed_role_arn": creds.assumed_role_arn,
            })
        }
        LeaseKind::Svid => {
            let ttl = std::time::Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
            let svid = broker
                .ca
                .issue(&target, asked.csr.as_deref(), Some(ttl), now)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            what.reference = Some(svid.serial_hex.clone());
            what.ttl_ms = svid.not_after.saturating_sub(now).max(1_000);
            json!({
                "spiffe_id": svid.spiffe_id,
                "cert_pem": svid.cert_pem,
                "key_pem": svid.key_pem,
                "bundle_pem": svid.bundle_pem,
            })
        }
        LeaseKind::Secret => {
            let path = cfg.secrets.get(&target).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no secret `{target}` is configured"),
                )
            })?;
            let platforms = broker.platforms.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "the OpenBao connector is not built in",
                )
            })?;
            let s = platforms
                .dynamic_secret(path)
                .await
                .map_err(|e| bad_gateway("OpenBao", e))?;
            what.reference = Some(s.lease_id.clone());
            let granted = i64::try_from(s.lease_duration_secs)
                .unwrap_or(0)
                .saturating_mul(1000);
            what.ttl_ms = granted.min(what.ttl_ms).max(1_000);
            json!({"data": s.data, "renewable": s.renewable})
        }
    };
    let record = lease::issue(id, &w, what, now);
    let credential = match kind {
        LeaseKind::Jwt => jwt(broker, &record, &w.attrs, now)?,
        LeaseKind::Aws | LeaseKind::Svid | LeaseKind::Secret => credential,
    };
    let audit = AuditEntry {
        at: now,
        actor,
        action: format!("broker.issue.{}", kind.as_str()),
        target: Some(record.identity.clone()),
        detail: Some(decision.audit_detail(&ask)),
        before: None,
        after: Some(keyward_model::json::sorted(&lease_json(&record))),
    };
    let stored = broker
        .ledger
        .commit(vec![LeaseWrite {
            lease: record.clone(),
            audit,
        }])
        .await;
    if let Err(e) = stored {
        // Nothing unrecorded stays out: an OpenBao lease is revoked at once.
        if let (LeaseKind::Secret, Some(p), Some(r)) =
            (kind, broker.platforms.as_ref(), record.reference.as_deref())
        {
            let _ = p.revoke_secret(r).await;
        }
        return Err(e);
    }
    Ok(Issued {
        lease: record,
        credential,
    })
}

/// A lease's JWT: `sub` its workload, `aud` its target, `jti` its id, until it expires;
/// `kw` the workload's attributes (what a policy sees when the token is a proof).
fn jwt(
    broker: &Broker,
    l: &LeaseRecord,
    attrs: &std::collections::BTreeMap<String, String>,
    now: Millis,
) -> Result<Value, ApiError> {
    let claims = json!({
        "iss": broker.config.issuer,
        "sub": l.workload,
        "aud": l.target,
        "iat": now.div_euclid(1000),
        "nbf": now.div_euclid(1000),
        "exp": l.expires_at.div_euclid(1000),
        "jti": l.lease_id,
        "kw": {
            // The first proof: a lease's token names the one its lease was issued on.
            "proof": attrs.get("proof").map_or(l.proof.as_str(), String::as_str),
            "subject": l.subject,
            "workload_kind": l.workload_kind.as_str(),
            "workload_platform": l.workload_platform.as_str(),
            "workload_name": l.workload_name,
            "attrs": attrs,
            "boundary": l.boundary,
        },
    });
    let token = broker
        .keyring
        .read()
        .map_err(|_| ApiError::internal("keyring"))?
        .sign(&claims)
        .map_err(ApiError::internal)?;
    Ok(json!({"token": token, "token_type": "Bearer"}))
}

/// `sts:SourceIdentity`: 2–64 characters of `[\w+=,.@-]`.
fn source_identity(subject: &str) -> String {
    let s: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if s.len() < 2 { format!("kw-{s}") } else { s }
}

/// A stored lease; 404 when there is none.
pub(crate) async fn stored_lease(state: &AppState, id: &str) -> Result<LeaseRecord, ApiError> {
    let id = id.to_owned();
    state
        .engine
        .call(move |e| e.lease(&id))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such lease"))
}

/// A lease and every lease issued under it, parents first; 404 when there is none.
pub(crate) async fn lease_tree(state: &AppState, id: &str) -> Result<Vec<LeaseRecord>, ApiError> {
    let id = id.to_owned();
    let tree = state
        .engine
        .call(move |e| e.lease_tree(&id))
        .await?
        .map_err(ApiError::internal)?;
    if tree.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such lease"));
    }
    Ok(tree)
}

/// A lease as the API shows it (its state as of now).
pub(crate) fn lease_json(l: &LeaseRecord) -> Value {
    serde_json::to_value(l).unwrap_or(Value::Null)
}

/// Extends a lease held by `w` (its own workload, or its own token): a JWT is issued again
/// with the new expiry, an OpenBao lease is renewed there. AWS sessions and SVIDs cannot be
/// extended: ask for new ones.
pub(crate) async fn renew(
    state: &AppState,
    broker: &Broker,
    w: &Workload,
    lease_id: &str,
    ttl_ms: Option<Millis>,
    now: Millis,
) -> Result<Issued, ApiError> {
    let mut l = stored_lease(state, lease_id).await?;
    let holds =
        l.workload == w.identity && (w.lease.is_none() || w.lease.as_deref() == Some(lease_id));
    if !holds {
        return Err(denied(format!(
            "{} does not hold lease {lease_id}",
            w.identity
        )));
    }
    let increment = broker.config.ttl(l.kind).grant(ttl_ms);
    let before = lease_json(&l);
    lease::renew(&mut l, increment, now)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    let credential = match l.kind {
        LeaseKind::Jwt => jwt(broker, &l, &w.attrs, now)?,
        LeaseKind::Secret => {
            let (Some(p), Some(r)) = (broker.platforms.as_ref(), l.reference.as_deref()) else {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "the OpenBao connector is not built in",
                ));
            };
            let secs =
                u64::try_from(l.expires_at.saturating_sub(now).div_euclid(1000)).unwrap_or(0);
            let granted = p
                .renew_secret(r, secs)
                .await
                .map_err(|e| bad_gateway("OpenBao", e))?;
            l.expires_at =
                now.saturating_add(i64::try_from(granted).unwrap_or(0).saturating_mul(1000));
            json!({})
        }
        LeaseKind::Aws | LeaseKind::Svid => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} credentials cannot be extended: ask for new ones",
                    l.kind.as_str()
                ),
            ));
        }
    };
    let audit = AuditEntry {
        at: now,
        actor: format!("workload:{}", w.identity),
        action: "broker.renew".into(),
        target: Some(l.identity.clone()),
        detail: Some(format!("until {}", l.expires_at)),
        before: Some(keyward_model::json::sorted(&before)),
        after: Some(keyward_model::json::sorted(&lease_json(&l))),
    };
    broker
        .ledger
        .commit(vec![LeaseWrite {
            lease: l.clone(),
            audit,
        }])
        .await?;
    Ok(Issued {
        lease: l,
        credential,
    })
}

/// Revokes a lease and every lease issued under it: OpenBao leases are revoked there, AWS
/// sessions denied on their role until their expiry (`keyward_respond::aws::revoked`), and
/// tokens and SVIDs refused as proofs from now on. Returns the leases revoked now, parents
/// first.
pub(crate) async fn revoke_tree(
    state: &AppState,
    broker: &Broker,
    lease_id: &str,
    by: &str,
    reason: &str,
    now: Millis,
) -> Result<Vec<LeaseRecord>, ApiError> {
    let tree = lease_tree(state, lease_id).await?;
    let befores: std::collections::HashMap<String, Value> = tree
        .iter()
        .map(|l| (l.lease_id.clone(), lease_json(l)))
        .collect();
    let changed = lease::cascade(tree, by, reason, now);
    let mut failures = Vec::new();
    let mut ended = std::collections::HashMap::new();
    for l in &changed {
        let Some(p) = broker.platforms.as_ref() else {
            break;
        };
        let done = match (l.kind, l.reference.as_deref()) {
            (LeaseKind::Secret, Some(r)) => p.revoke_secret(r).await.map(|()| None),
            (LeaseKind::Aws, _) if l.expires_at > now => p
                .revoke_session(&l.target, &l.lease_id, l.expires_at, now)
                .await
                .map(Some),
            (LeaseKind::Secret | LeaseKind::Aws | LeaseKind::Jwt | LeaseKind::Svid, _) => Ok(None),
        };
        match done {
            Ok(Some(how)) => {
                ended.insert(l.lease_id.clone(), how);
            }
            Ok(None) => {}
            Err(e) => failures.push(format!("{}: {e}", l.lease_id)),
        }
    }
    let writes = changed
        .iter()
        .map(|l| LeaseWrite {
            lease: l.clone(),
            audit: AuditEntry {
                at: now,
                actor: by.to_owned(),
                action: "broker.revoke".into(),
                target: Some(l.identity.clone()),
                detail: Some({
                    let mut d = if l.lease_id == lease_id {
                        reason.to_owned()
                    } else {
                        format!("{reason} (issued under {lease_id})")
                    };
                    if let Some(how) = ended.get(&l.lease_id) {
                        d = format!("{d}; {how}");
                    }
                    d
                }),
                before: befores.get(&l.lease_id).map(keyward_model::json::sorted),
                after: Some(keyward_model::json::sorted(&lease_json(l))),
            },
        })
        .collect();
    broker.ledger.commit(writes).await?;
    broker.forget_proofs();
    if !failures.is_empty() {
        return Err(bad_gateway(
            "revoked here, but the platform refused",
            failures.join("; "),
        ));
    }
    Ok(changed)
}
