//! Vault tokens: issued through a token role into this process's memory
//! ([`handoff`]), verified with `lookup-self` as themselves, revoked by accessor, looked up by
//! accessor for monitoring. Results hold accessors, never tokens.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AccessorInfo;
use super::client::{api, precondition, verified};
use super::http::Http;
use crate::action::Action;
use crate::rotate::handoff::{self, NewToken, Secret};
use crate::{ConnectorError, Verified};

fn accessor_target(a: &str) -> String {
    format!("vault:accessor/{a}")
}

/// The message of a step run without the issued token in memory.
pub(super) fn lost_token(dest: &str) -> String {
    format!(
        "the token issued for {dest} is not in this process's memory (it is never stored): undo this plan (`keyward respond undo PLAN`, which revokes it) and issue again"
    )
}

/// What Vault says of an accessor; an accessor Vault does not know (revoked, expired) is
/// `valid: false`.
pub(super) async fn lookup_accessor(
    h: &Http,
    accessor: &str,
) -> Result<AccessorInfo, ConnectorError> {
    let mut info = AccessorInfo {
        accessor: accessor.to_owned(),
        valid: false,
        display_name: String::new(),
        entity_id: String::new(),
        policies: Vec::new(),
        meta: BTreeMap::new(),
        expire_time: None,
        ttl_secs: 0,
        role: String::new(),
    };
    let doc = match h
        .post("auth/token/lookup-accessor", &json!({"accessor": accessor}))
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(info),
        // Vault answers 400 "invalid accessor" for a token it no longer has. A 403 is this
        // connector's own lack of permission: an error, never taken for "revoked".
        Err(e) if matches!(e.status(), Some(400 | 404)) => return Ok(info),
        Err(e) => {
            return Err(api(
                "auth/token/lookup-accessor",
                &accessor_target(accessor),
                e,
            ));
        }
    };
    let Some(d) = doc.get("data") else {
        return Ok(info);
    };
    let s = |k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    info.valid = true;
    info.display_name = s("display_name");
    info.entity_id = s("entity_id");
    info.role = s("role");
    info.expire_time = d
        .get("expire_time")
        .and_then(Value::as_str)
        .map(str::to_owned);
    info.ttl_secs = d.get("ttl").and_then(Value::as_u64).unwrap_or(0);
    info.policies = d
        .get("policies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    info.meta = d
        .get("meta")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(info)
}

/// The token role's settings (what bounds the tokens it issues).
pub(super) async fn role_snapshot(h: &Http, role: &str) -> Result<Value, ConnectorError> {
    let t = format!("vault:role/{role}");
    let doc = h
        .get(&format!("auth/token/roles/{role}"))
        .await
        .map_err(|e| api("auth/token/roles", &t, e))?;
    Ok(json!({"target": t, "role": doc.and_then(|d| d.get("data").cloned())}))
}

/// Creates the token (unless this process holds a valid one for the destination already)
/// and hands it over in memory; returns its accessor.
pub(super) async fn issue(h: &Http, action: &Action) -> Result<Value, ConnectorError> {
    let Action::IssueVaultToken {
        role,
        ttl_secs,
        policies,
        meta,
        into,
        key,
    } = action
    else {
        return Err(precondition(&action.target(), "not a token issue"));
    };
    let dest = super::dest_key(into, key);
    let t = format!("vault:role/{role}");
    if let Some(held) = handoff::get_token(&dest)
        && lookup_accessor(h, &held.accessor).await?.valid
    {
        return Ok(json!({"accessor": held.accessor, "role": role}));
    }
    let mut body = serde_json::Map::new();
    body.insert("ttl".into(), json!(format!("{ttl_secs}s")));
    body.insert("meta".into(), json!(meta));
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    let body = Value::Object(body);
    let doc = h
        .post(&format!("auth/token/create/{role}"), &body)
        .await
        .map_err(|e| api("auth/token/create", &t, e))?
        .ok_or_else(|| precondition(&t, "auth/token/create answered nothing"))?;
    let (Some(token), Some(accessor)) = (
        doc.pointer("/auth/client_token").and_then(Value::as_str),
        doc.pointer("/auth/accessor").and_then(Value::as_str),
    ) else {
        return Err(precondition(&t, "auth/token/create answered no token"));
    };
    handoff::put_token(
        &dest,
        NewToken {
            accessor: accessor.to_owned(),
            token: Secret::new(token.to_owned()),
        },
    );
    let expire = doc.pointer("/auth/lease_duration").and_then(Value::as_u64);
    Ok(json!({"accessor": accessor, "role": role, "ttl_secs": expire}))
}

/// The issued token is known to Vault.
pub(super) async fn verify_issued(h: &Http, dest: &str) -> Result<Verified, ConnectorError> {
    let Some(held) = handoff::get_token(dest) else {
        return Ok(verified(false, lost_token(dest)));
    };
    let info = lookup_accessor(h, &held.accessor).await?;
    Ok(verified(
        info.valid,
        format!(
            "token {} is {} (expires {})",
            held.accessor,
            if info.valid { "valid" } else { "not valid" },
            info.expire_time.as_deref().unwrap_or("never")
        ),
    ))
}

/// `auth/token/lookup-self` as the issued token: it works, and is the one issued. Returns
/// the state (`{"accessor"}`) and the verdict.
pub(super) async fn verify_new(h: &Http, dest: &str) -> Result<(Value, Verified), ConnectorError> {
    let Some(held) = handoff::get_token(dest) else {
        return Err(precondition(dest, lost_token(dest)));
    };
    let me = h.as_token(held.token.clone());
    let answer = me.get("auth/token/lookup-self").await;
    let seen = match &answer {
        Ok(Some(d)) => d
            .pointer("/data/accessor")
            .and_then(Value::as_str)
            .map(str::to_owned),
        Ok(None) | Err(_) => None,
    };
    let ok = seen.as_deref() == Some(held.accessor.as_str());
    let observed = match (&answer, ok) {
        (_, true) => format!(
            "the token of accessor {} authenticates (lookup-self)",
            held.accessor
        ),
        (Err(e), false) => format!(
            "lookup-self with the token of accessor {} failed: {e}",
            held.accessor
        ),
        (Ok(_), false) => format!(
            "lookup-self with the token of accessor {} answered accessor {}",
            held.accessor,
            seen.as_deref().unwrap_or("none")
        ),
    };
    Ok((json!({"accessor": held.accessor}), verified(ok, observed)))
}

/// Revokes the token behind an accessor (and its children); gone already is done.
pub(super) async fn revoke(h: &Http, accessor: &str) -> Result<Value, ConnectorError> {
    let t = accessor_target(accessor);
    let info = lookup_accessor(h, accessor).await?;
    if !info.valid {
        return Ok(json!({"revoked": false, "note": "no such token (revoked or expired already)"}));
    }
    h.post("auth/token/revoke-accessor", &json!({"accessor": accessor}))
        .await
        .map_err(|e| api("auth/token/revoke-accessor", &t, e))?;
    Ok(json!({"revoked": true, "display_name": info.display_name, "expire_time": info.expire_time}))
}

pub(super) async fn verify_revoked(h: &Http, accessor: &str) -> Result<Verified, ConnectorError> {
    let info = lookup_accessor(h, accessor).await?;
    Ok(verified(
        !info.valid,
        format!(
            "lookup-accessor {accessor}: {}",
            if info.valid {
                "the token is still valid"
            } else {
                "no such token"
            }
        ),
    ))
}

/// Revokes the token an issue step made (by the accessor it recorded) and forgets it.
pub(super) async fn undo_issue(
    h: &Http,
    state: &Value,
    dest: &str,
) -> Result<Verified, ConnectorError> {
    let Some(accessor) = state.get("accessor").and_then(Value::as_str) else {
        return Err(precondition(dest, "the step's result names no accessor"));
    };
    revoke(h, accessor).await?;
    if handoff::get_token(dest).is_some_and(|t| t.accessor == accessor) {
        handoff::forget_token(dest);
    }
    verify_revoked(h, accessor).await
}
