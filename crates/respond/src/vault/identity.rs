//! `keyward disable` in Vault: the entities that stand for an identity (by alias or name),
//! its tokens (by entity, display name or metadata), the leases issued under a role named
//! for it; an entity disabled and enabled again; leases revoked by prefix.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::client::{api, precondition, verified};
use super::http::Http;
use super::{EntityMatch, Found, TokenMatch};
use crate::{ConnectorError, Verified};

/// The most token accessors one search looks up.
const MAX_ACCESSORS: usize = 20_000;
/// Mount types whose leases are not dynamic credentials of a workload.
const NOT_DYNAMIC: [&str; 7] = [
    "kv",
    "system",
    "identity",
    "cubbyhole",
    "token",
    "ns_system",
    "ns_identity",
];

fn entity_target(id: &str) -> String {
    format!("vault:entity/{id}")
}

/// Entities whose alias (or own name) is one of `candidates`, tokens of those entities or
/// named for a candidate, lease prefixes `MOUNT/creds/NAME` with leases.
pub(super) async fn find(h: &Http, candidates: &[String]) -> Result<Found, ConnectorError> {
    let wanted: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    let mut found = Found::default();
    let doc = h
        .get("identity/entity/id?list=true")
        .await
        .map_err(|e| api("LIST identity/entity/id", h.addr(), e))?
        .unwrap_or_default();
    if let Some(info) = doc.pointer("/data/key_info").and_then(Value::as_object) {
        for (id, e) in info {
            let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
            let by_alias = e
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|a| {
                    let n = a.get("name").and_then(Value::as_str)?;
                    wanted.contains(n).then(|| {
                        format!(
                            "alias {n} ({})",
                            a.get("mount_path").and_then(Value::as_str).unwrap_or("?")
                        )
                    })
                });
            let matched_by = match by_alias {
                Some(m) => m,
                None if wanted.contains(name) => format!("entity name {name}"),
                None => continue,
            };
            let disabled = h
                .get(&format!("identity/entity/id/{id}"))
                .await
                .map_err(|e| api("identity/entity/id", &entity_target(id), e))?
                .and_then(|d| d.pointer("/data/disabled").and_then(Value::as_bool))
                .unwrap_or(false);
            found.entities.push(EntityMatch {
                id: id.clone(),
                name: name.to_owned(),
                disabled,
                matched_by,
            });
        }
    }
    found.entities.sort_by(|a, b| a.id.cmp(&b.id));
    let own = own_accessor(h).await;
    match h.list("auth/token/accessors").await {
        Ok(accessors) => {
            if accessors.len() > MAX_ACCESSORS {
                found.notes.push(format!(
                    "Vault has {} token accessors: only the first {MAX_ACCESSORS} were looked up",
                    accessors.len()
                ));
            }
            let (mut failed, mut first_error) = (0usize, None::<String>);
            for acc in accessors.iter().take(MAX_ACCESSORS) {
                if own.as_deref() == Some(acc.as_str()) {
                    continue;
                }
                let info = match super::tokens::lookup_accessor(h, acc).await {
                    Ok(i) => i,
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                };
                if !info.valid {
                    continue;
                }
                let by_entity = found.entities.iter().find(|e| e.id == info.entity_id);
                let names = |s: &str| {
                    wanted.contains(s)
                        || wanted.iter().any(|w| {
                            s.strip_suffix(w)
                                .is_some_and(|p| p.ends_with('-') && !p.contains('/'))
                        })
                };
                let matched_by = if let Some(e) = by_entity {
                    format!("entity {}", e.name)
                } else if !info.display_name.is_empty() && names(&info.display_name) {
                    format!("display name {}", info.display_name)
                } else if let Some((k, v)) =
                    info.meta.iter().find(|(_, v)| wanted.contains(v.as_str()))
                {
                    format!("metadata {k}={v}")
                } else {
                    continue;
                };
                found.tokens.push(TokenMatch {
                    accessor: acc.clone(),
                    display: info.display_name.clone(),
                    entity_id: info.entity_id.clone(),
                    matched_by,
                });
            }
            if let Some(e) = first_error {
                found.notes.push(format!(
                    "{failed} Vault token accessors could not be looked up (their tokens were not searched): {e}"
                ));
            }
        }
        Err(e) => found.notes.push(format!(
            "Vault tokens not searched (LIST auth/token/accessors needs sudo): {e}"
        )),
    }
    match lease_prefixes(h, &wanted).await {
        Ok(p) => found.lease_prefixes = p,
        Err(e) => found.notes.push(format!("Vault leases not searched: {e}")),
    }
    Ok(found)
}

async fn own_accessor(h: &Http) -> Option<String> {
    h.get("auth/token/lookup-self")
        .await
        .ok()
        .flatten()?
        .pointer("/data/accessor")?
        .as_str()
        .map(str::to_owned)
}

/// `MOUNT/creds/NAME` (or `MOUNT/issue/NAME`) of every dynamic-secrets mount with leases
/// under it, for each candidate that can be a role name (no `/`, `:`).
async fn lease_prefixes(h: &Http, wanted: &BTreeSet<&str>) -> Result<Vec<String>, ConnectorError> {
    let doc = h
        .get("sys/mounts")
        .await
        .map_err(|e| api("sys/mounts", h.addr(), e))?
        .unwrap_or_default();
    let table = doc
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (mount, m) in &table {
        let kind = m.get("type").and_then(Value::as_str).unwrap_or_default();
        if NOT_DYNAMIC.contains(&kind) {
            continue;
        }
        for name in wanted
            .iter()
            .filter(|w| !w.contains(['/', ':']) && !w.is_empty())
        {
            // `creds/ROLE`: database, AWS, … secrets engines; `issue/ROLE`: PKI roles that
            // lease their certificates.
            for verb in ["creds", "issue"] {
                let prefix = format!("{}/{verb}/{name}", mount.trim_end_matches('/'));
                let leases = h
                    .list(&format!("sys/leases/lookup/{prefix}/"))
                    .await
                    .map_err(|e| api("LIST sys/leases/lookup", &prefix, e))?;
                if !leases.is_empty() {
                    out.push(prefix);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The entity as Vault holds it: name, aliases, policies, metadata, disabled.
pub(super) async fn entity_snapshot(h: &Http, id: &str) -> Result<Value, ConnectorError> {
    let t = entity_target(id);
    let doc = h
        .get(&format!("identity/entity/id/{id}"))
        .await
        .map_err(|e| api("identity/entity/id", &t, e))?;
    let d = doc.as_ref().and_then(|d| d.get("data"));
    let pick = |k: &str| d.and_then(|d| d.get(k)).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "target": t,
        "name": pick("name"),
        "disabled": pick("disabled"),
        "policies": pick("policies"),
        "metadata": pick("metadata"),
        "aliases": d.and_then(|d| d.get("aliases")).and_then(Value::as_array).map(|a| a.iter().map(|x| json!({
            "name": x.get("name"), "mount_path": x.get("mount_path"), "mount_type": x.get("mount_type"),
        })).collect::<Vec<_>>()),
    }))
}

/// Sets the entity's `disabled`; returns what it was (undo puts it back).
pub(super) async fn set_disabled(
    h: &Http,
    id: &str,
    disabled: bool,
) -> Result<Value, ConnectorError> {
    let t = entity_target(id);
    let was = h
        .get(&format!("identity/entity/id/{id}"))
        .await
        .map_err(|e| api("identity/entity/id", &t, e))?
        .ok_or_else(|| precondition(&t, "the entity does not exist"))?
        .pointer("/data/disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    h.post(
        &format!("identity/entity/id/{id}"),
        &json!({"disabled": disabled}),
    )
    .await
    .map_err(|e| api("update identity/entity/id", &t, e))?;
    Ok(json!({"was_disabled": was}))
}

pub(super) async fn verify_disabled(
    h: &Http,
    id: &str,
    want: bool,
) -> Result<Verified, ConnectorError> {
    let t = entity_target(id);
    let now = h
        .get(&format!("identity/entity/id/{id}"))
        .await
        .map_err(|e| api("identity/entity/id", &t, e))?
        .and_then(|d| d.pointer("/data/disabled").and_then(Value::as_bool));
    let ok = now == Some(want);
    Ok(verified(
        ok,
        match now {
            Some(true) => format!("entity {id} is disabled"),
            Some(false) => format!("entity {id} is enabled"),
            None => format!("entity {id} not found"),
        },
    ))
}

async fn leases(h: &Http, prefix: &str) -> Result<Vec<String>, ConnectorError> {
    // Lease ids sit under folders (`creds/NAME/ID`); one level is what `revoke-prefix` of a
    // role's creds covers, deeper folders are listed too.
    let mut out = Vec::new();
    let mut stack = vec![format!("{}/", prefix.trim_end_matches('/'))];
    while let Some(p) = stack.pop() {
        for k in h
            .list(&format!("sys/leases/lookup/{p}"))
            .await
            .map_err(|e| api("LIST sys/leases/lookup", prefix, e))?
        {
            if k.ends_with('/') {
                if out.len() + stack.len() < 10_000 {
                    stack.push(format!("{p}{k}"));
                }
            } else {
                out.push(format!("{p}{k}"));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(super) async fn leases_snapshot(h: &Http, prefix: &str) -> Result<Value, ConnectorError> {
    Ok(json!({"prefix": prefix, "leases": leases(h, prefix).await?}))
}

pub(super) async fn revoke_leases(h: &Http, prefix: &str) -> Result<Value, ConnectorError> {
    let before = leases(h, prefix).await?.len();
    h.post(
        &format!("sys/leases/revoke-prefix/{}", prefix.trim_end_matches('/')),
        &json!({}),
    )
    .await
    .map_err(|e| api("sys/leases/revoke-prefix", prefix, e))?;
    Ok(json!({"revoked": before}))
}

pub(super) async fn verify_leases_gone(h: &Http, prefix: &str) -> Result<Verified, ConnectorError> {
    let left = leases(h, prefix).await?.len();
    Ok(verified(
        left == 0,
        format!("{left} leases left under {prefix}"),
    ))
}
