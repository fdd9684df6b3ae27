//! KV version 2: where a rotated access key lives (one bounded walk of the mounts, [`walk`],
//! searched for one key id or indexed for a campaign), its rewrite as a new version, and a
//! Vault token's KV destination.
//!
//! Every write is a check-and-set on the version read (`options.cas`): a secret that moved
//! in between is refused, never overwritten. Undo writes the data of the version before the
//! write (read from Vault by number: Vault keeps versions, Keyward no copy) as a new version.
//! What `apply` returns: `{"version": WRITTEN, "previous_version": READ}` (0: there was none).

use serde_json::{Map, Value, json};

use super::client::{api, precondition, verified};
use super::http::Http;
use crate::action::Action;
use crate::rotate::{self, SecretLocation, handoff};
use crate::{ConnectorError, Verified};

/// The most secrets one discovery reads, and how deep it walks.
const MAX_SECRETS: usize = 10_000;
const MAX_DEPTH: usize = 32;

/// A secret's data at one version.
pub(super) struct Read {
    pub data: Map<String, Value>,
    pub version: u64,
}

fn target(mount: &str, path: &str) -> String {
    format!("vault:{mount}/{path}")
}

/// The KV v2 mounts (`secret`, without the slash) `sys/mounts` lists.
pub(super) async fn kv2_mounts(h: &Http) -> Result<Vec<String>, ConnectorError> {
    let doc = h
        .get("sys/mounts")
        .await
        .map_err(|e| api("sys/mounts", h.addr(), e))?
        .unwrap_or_default();
    // Older servers answer the mounts at the top level, newer under `data` as well.
    let table = doc
        .get("data")
        .and_then(Value::as_object)
        .or_else(|| doc.as_object())
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = table
        .iter()
        .filter(|(_, m)| {
            m.get("type").and_then(Value::as_str) == Some("kv")
                && m.pointer("/options/version").and_then(Value::as_str) == Some("2")
        })
        .map(|(k, _)| k.trim_end_matches('/').to_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// The data of a secret's current version (`version` None) or of one version; `None` when
/// the secret (or that version) does not exist or was deleted.
pub(super) async fn read(
    h: &Http,
    mount: &str,
    path: &str,
    version: Option<u64>,
) -> Result<Option<Read>, ConnectorError> {
    let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
    let doc = h
        .get(&format!("{mount}/data/{path}{q}"))
        .await
        .map_err(|e| api("kv read", &target(mount, path), e))?;
    let Some(doc) = doc else { return Ok(None) };
    let version = doc
        .pointer("/data/metadata/version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(doc
        .pointer("/data/data")
        .and_then(Value::as_object)
        .map(|data| Read {
            data: data.clone(),
            version,
        }))
}

/// The current version number (0: no secret yet), from the metadata: a deleted current
/// version still has its number.
async fn current_version(h: &Http, mount: &str, path: &str) -> Result<u64, ConnectorError> {
    let doc = h
        .get(&format!("{mount}/metadata/{path}"))
        .await
        .map_err(|e| api("kv metadata", &target(mount, path), e))?;
    Ok(doc
        .and_then(|d| d.pointer("/data/current_version").and_then(Value::as_u64))
        .unwrap_or(0))
}

/// Writes `data` as a new version if the current one is still `cas`; returns the new one.
async fn write(
    h: &Http,
    mount: &str,
    path: &str,
    data: Map<String, Value>,
    cas: u64,
) -> Result<u64, ConnectorError> {
    let doc = h
        .post(
            &format!("{mount}/data/{path}"),
            &json!({"options": {"cas": cas}, "data": data}),
        )
        .await
        .map_err(|e| {
            let moved = e.status() == Some(400);
            let mut err = api("kv write", &target(mount, path), e);
            if moved && let ConnectorError::Api { message, .. } = &mut err {
                message.push_str(&format!(
                    " (the secret moved past version {cas} since it was read: refused, nothing written)"
                ));
            }
            err
        })?;
    Ok(doc
        .and_then(|d| d.pointer("/data/version").and_then(Value::as_u64))
        .unwrap_or(0))
}

/// The string fields (a key id can only be rewritten in text).
pub(super) fn texts(data: &Map<String, Value>) -> Vec<(String, String)> {
    data.iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

fn holds(data: &Map<String, Value>, needle: &str) -> bool {
    texts(data).iter().any(|(_, v)| v.contains(needle))
}

/// Every secret under `mounts` (every KV v2 mount `sys/mounts` lists when empty), its
/// current version read once and handed to `visit` with its mount and path; returns notes on
/// what could not be listed, read or reached. One walk serves both the search for one key
/// (single rotate) and the index of every key (a campaign). Depth-first over folders (`a/`),
/// bounded by [`MAX_DEPTH`] and [`MAX_SECRETS`]; `visit` sees the data in memory only.
pub(super) async fn walk(
    h: &Http,
    mounts: &[String],
    mut visit: impl FnMut(&str, &str, &Map<String, Value>),
) -> Result<Vec<String>, ConnectorError> {
    let mounts = if mounts.is_empty() {
        kv2_mounts(h).await?
    } else {
        mounts
            .iter()
            .map(|m| m.trim_matches('/').to_owned())
            .collect()
    };
    let mut notes = Vec::new();
    let mut read_count = 0usize;
    for mount in &mounts {
        let mut stack: Vec<(String, usize)> = vec![(String::new(), 0)];
        while let Some((prefix, depth)) = stack.pop() {
            let keys = match h.list(&format!("{mount}/metadata/{prefix}")).await {
                Ok(k) => k,
                Err(e) => {
                    notes.push(format!("vault:{mount}/{prefix} not listed: {e}"));
                    continue;
                }
            };
            for k in keys {
                let path = format!("{prefix}{k}");
                if k.ends_with('/') {
                    if depth + 1 < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    } else {
                        notes.push(format!(
                            "vault:{mount}/{path} not searched: deeper than {MAX_DEPTH} folders"
                        ));
                    }
                    continue;
                }
                if read_count >= MAX_SECRETS {
                    notes.push(format!(
                        "KV search stopped after {MAX_SECRETS} secrets: name the mounts to search with --vault-mount (or a secret with --also vault:MOUNT/PATH)"
                    ));
                    return Ok(notes);
                }
                read_count += 1;
                match read(h, mount, &path, None).await {
                    Ok(Some(r)) => visit(mount, &path, &r.data),
                    Ok(None) => {}
                    Err(e) => notes.push(format!("vault:{mount}/{path} not read: {e}")),
                }
            }
        }
    }
    Ok(notes)
}

/// The secrets under `mounts` (every KV v2 mount when empty) whose current data holds
/// `key_id`, and notes on what could not be searched.
pub(super) async fn containing(
    h: &Http,
    key_id: &str,
    mounts: &[String],
) -> Result<(Vec<SecretLocation>, Vec<String>), ConnectorError> {
    let mut found = Vec::new();
    let notes = walk(h, mounts, |mount, path, data| {
        if holds(data, key_id) {
            found.push(SecretLocation::Vault {
                mount: mount.to_owned(),
                path: path.to_owned(),
            });
        }
    })
    .await?;
    found.sort();
    Ok((found, notes))
}

/// The secret's metadata (versions, times) and its current field names, never values.
pub(super) async fn snapshot(h: &Http, mount: &str, path: &str) -> Result<Value, ConnectorError> {
    let meta = h
        .get(&format!("{mount}/metadata/{path}"))
        .await
        .map_err(|e| api("kv metadata", &target(mount, path), e))?;
    let fields: Vec<String> = read(h, mount, path, None)
        .await?
        .map(|r| r.data.keys().cloned().collect())
        .unwrap_or_default();
    Ok(json!({
        "target": target(mount, path),
        "current_version": meta.as_ref().and_then(|m| m.pointer("/data/current_version")).cloned(),
        "versions": meta.as_ref().and_then(|m| m.pointer("/data/versions")).cloned(),
        "fields": fields,
    }))
}

fn rotation_of(action: &Action) -> Result<(&str, &str), ConnectorError> {
    let Action::UpdateSecretValue { user, replaces, .. } = action else {
        return Err(precondition(
            &action.target(),
            format!("`{}` is not a key rotation's write", action.name()),
        ));
    };
    Ok((user, replaces))
}

/// A rotated access key written where the old one lives: every string field rewritten
/// ([`rotate::rewrite`]), the others as they were, as a new version (cas).
pub(super) async fn rotate_write(
    h: &Http,
    action: &Action,
    mount: &str,
    path: &str,
) -> Result<Value, ConnectorError> {
    let (user, old) = rotation_of(action)?;
    let t = target(mount, path);
    let new =
        handoff::get(user, old).ok_or_else(|| precondition(&t, rotate::lost_secret(user, old)))?;
    let cur = read(h, mount, path, None).await?.ok_or_else(|| {
        precondition(
            &t,
            "the secret does not exist (or its current version is deleted)",
        )
    })?;
    if holds(&cur.data, &new.id) {
        // Written by an earlier run of this step.
        return Ok(
            json!({"version": cur.version, "previous_version": cur.version.saturating_sub(1)}),
        );
    }
    let rewritten = rotate::rewrite(&texts(&cur.data), old, &new.id, new.secret.expose())
        .map_err(|e| precondition(&t, e.to_string()))?;
    let mut data = cur.data.clone();
    for (k, v) in rewritten {
        data.insert(k, Value::String(v));
    }
    let version = write(h, mount, path, data, cur.version).await?;
    Ok(json!({"version": version, "previous_version": cur.version}))
}

/// The current version holds the new key id and no longer the old one.
pub(super) async fn rotate_verify(
    h: &Http,
    action: &Action,
    mount: &str,
    path: &str,
) -> Result<Verified, ConnectorError> {
    let (user, old) = rotation_of(action)?;
    let Some(new) = handoff::get(user, old) else {
        return Ok(verified(false, rotate::lost_secret(user, old)));
    };
    let cur = read(h, mount, path, None).await?;
    let (ok, version) = match &cur {
        Some(r) => (holds(&r.data, &new.id) && !holds(&r.data, old), r.version),
        None => (false, 0),
    };
    Ok(verified(
        ok,
        format!(
            "vault:{mount}/{path} (version {version}) {} key {}",
            if ok { "holds" } else { "does not hold" },
            new.id
        ),
    ))
}

/// A token written into a field of a KV v2 secret (created when absent), as a new version.
pub(super) async fn write_token(
    h: &Http,
    mount: &str,
    path: &str,
    dest: &str,
    key: &str,
) -> Result<Value, ConnectorError> {
    let t = target(mount, path);
    let token = handoff::get_token(dest)
        .ok_or_else(|| precondition(&t, super::tokens::lost_token(dest)))?;
    let cur = read(h, mount, path, None).await?;
    let previous = match &cur {
        Some(r) => r.version,
        None => current_version(h, mount, path).await?,
    };
    let mut data = cur.map(|r| r.data).unwrap_or_default();
    if data.get(key).and_then(Value::as_str) == Some(token.token.expose()) {
        return Ok(json!({"version": previous, "previous_version": previous.saturating_sub(1)}));
    }
    data.insert(
        key.to_owned(),
        Value::String(token.token.expose().to_owned()),
    );
    let version = write(h, mount, path, data, previous).await?;
    Ok(json!({"version": version, "previous_version": previous, "accessor": token.accessor}))
}

/// The field holds the token issued for it (compared in memory).
pub(super) async fn verify_token(
    h: &Http,
    mount: &str,
    path: &str,
    dest: &str,
    key: &str,
) -> Result<Verified, ConnectorError> {
    let Some(token) = handoff::get_token(dest) else {
        return Ok(verified(false, super::tokens::lost_token(dest)));
    };
    let cur = read(h, mount, path, None).await?;
    let ok = cur
        .as_ref()
        .and_then(|r| r.data.get(key))
        .and_then(Value::as_str)
        == Some(token.token.expose());
    Ok(verified(
        ok,
        format!(
            "vault:{mount}/{path} field {key} {} the token of accessor {}",
            if ok { "holds" } else { "does not hold" },
            token.accessor
        ),
    ))
}

/// Writes the data of the version before the step's write back as a new version (cas on
/// the written one: a secret changed since is refused). No version before: empty data.
pub(super) async fn undo_write(
    h: &Http,
    action: &Action,
    mount: &str,
    path: &str,
    state: &Value,
) -> Result<Verified, ConnectorError> {
    let t = target(mount, path);
    let n = |k: &str| state.get(k).and_then(Value::as_u64);
    let (Some(written), Some(previous)) = (n("version"), n("previous_version")) else {
        return Err(precondition(&t, "the step's result names no versions"));
    };
    let now = current_version(h, mount, path).await?;
    if now != written {
        return Err(precondition(
            &t,
            format!(
                "the secret is at version {now}, not the version {written} the step wrote: changed since, left as it is"
            ),
        ));
    }
    let data = if previous == 0 {
        Map::new()
    } else {
        read(h, mount, path, Some(previous))
            .await?
            .ok_or_else(|| {
                precondition(
                    &t,
                    format!("version {previous} is deleted or destroyed: nothing to restore"),
                )
            })?
            .data
    };
    let restored = write(h, mount, path, data.clone(), written).await?;
    let back = read(h, mount, path, None).await?.map(|r| r.data);
    let ok = back.as_ref() == Some(&data);
    if let Action::UpdateSecretValue { replaces, .. } = action
        && let Some(b) = &back
        && !holds(b, replaces)
    {
        return Ok(verified(
            false,
            format!("{t} (version {restored}) does not hold {replaces} again"),
        ));
    }
    Ok(verified(
        ok,
        format!("{t}: version {previous}'s data written back as version {restored}"),
    ))
}
