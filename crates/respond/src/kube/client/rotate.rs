//! The Kubernetes side of a key rotation ([`crate::rotate`]): the Secrets whose data holds a
//! key id, and a Secret's data rewritten with the new key (and, in the same process only,
//! put back). Data is decoded in memory to search and rewrite it; it is never returned,
//! logged or put in an error. `apply` returns `{"resource_version": RV, "keys": [NAMES]}`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use super::common::{api, precondition};
use crate::action::Action;
use crate::rotate::{self, SecretLocation, handoff};
use crate::{ConnectorError, Verified};

type Data = BTreeMap<String, Vec<u8>>;

fn data_of(s: &Secret) -> Data {
    s.data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

/// The entries that are text (a binary entry cannot hold a key id we could rewrite).
fn texts(d: &Data) -> Vec<(String, String)> {
    d.iter()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.clone()).ok()?)))
        .collect()
}

fn holds(d: &Data, key_id: &str) -> bool {
    texts(d).iter().any(|(_, v)| v.contains(key_id))
}

/// The Secrets (`(namespace, name)`, sorted) in `namespaces` (every namespace when empty)
/// whose data holds `key_id`.
pub(super) async fn containing(
    c: &Client,
    key_id: &str,
    namespaces: &[String],
) -> Result<Vec<(String, String)>, ConnectorError> {
    let lists = if namespaces.is_empty() {
        vec![Api::<Secret>::all(c.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::<Secret>::namespaced(c.clone(), ns))
            .collect()
    };
    let mut out = Vec::new();
    for list in lists {
        let secrets = list
            .list(&ListParams::default())
            .await
            .map_err(|e| api("list secrets", "the cluster", e))?;
        for s in &secrets.items {
            if holds(&data_of(s), key_id)
                && let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name)
            {
                out.push((ns.clone(), name.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn verified(ok: bool, observed: String) -> Verified {
    Verified { ok, observed }
}

/// The rotation action's Secret, or an error for any other action.
fn secret_of(action: &Action) -> Result<(&str, &str, &str, &str), ConnectorError> {
    match action {
        Action::UpdateSecretValue {
            user,
            replaces,
            location: SecretLocation::Kubernetes { namespace, name },
        } => Ok((user, replaces, namespace, name)),
        Action::UpdateSecretValue {
            location: SecretLocation::Secretsmanager { .. } | SecretLocation::Vault { .. },
            ..
        }
        | Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::RemoveBindings { .. }
        | Action::DeleteTokenSecrets { .. }
        | Action::RestartPods { .. }
        | Action::BlueGreen { .. }
        | Action::DeleteBinding { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::VerifyAccessKey { .. }
        | Action::DisableVaultEntity { .. }
        | Action::RevokeVaultToken { .. }
        | Action::RevokeVaultLeases { .. }
        | Action::IssueVaultToken { .. }
        | Action::WriteVaultToken { .. }
        | Action::VerifyVaultToken { .. }
        | Action::Delete { .. }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::CreateBinding { .. }
        | Action::Review { .. } => Err(precondition(
            action.target(),
            format!("`{}` is not a Kubernetes rotation action", action.name()),
        )),
    }
}

async fn get(c: &Client, ns: &str, name: &str, target: &str) -> Result<Secret, ConnectorError> {
    Api::<Secret>::namespaced(c.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| api("get secret", target, e))?
        .ok_or_else(|| precondition(target, "the secret does not exist"))
}

async fn replace(
    c: &Client,
    mut s: Secret,
    data: Data,
    target: &str,
) -> Result<Secret, ConnectorError> {
    let (ns, name) = (
        s.metadata.namespace.clone().unwrap_or_default(),
        s.metadata.name.clone().unwrap_or_default(),
    );
    s.data = Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
    // The resourceVersion read stays in `s`: a concurrent change makes this fail, not lose it.
    Api::<Secret>::namespaced(c.clone(), &ns)
        .replace(&name, &PostParams::default(), &s)
        .await
        .map_err(|e| api("replace secret", target, e))
}

/// The Secret's metadata and data keys (never values).
pub(super) async fn snapshot(c: &Client, action: &Action) -> Result<Value, ConnectorError> {
    let (_, _, ns, name) = secret_of(action)?;
    let target = action.target();
    let s = get(c, ns, name, &target).await?;
    Ok(json!({
        "target": target,
        "uid": s.metadata.uid,
        "resource_version": s.metadata.resource_version,
        "type": s.type_,
        "keys": data_of(&s).keys().collect::<Vec<_>>(),
    }))
}

/// Rewrites the Secret's data with the new key; keeps the data before in memory (undo).
pub(super) async fn apply(c: &Client, action: &Action) -> Result<Value, ConnectorError> {
    let (user, old, ns, name) = secret_of(action)?;
    let target = action.target();
    let new = handoff::get(user, old)
        .ok_or_else(|| precondition(&target, rotate::lost_secret(user, old)))?;
    let s = get(c, ns, name, &target).await?;
    let before = data_of(&s);
    let keys: Vec<String> = before.keys().cloned().collect();
    if holds(&before, &new.id) {
        return Ok(json!({"resource_version": s.metadata.resource_version, "keys": keys}));
    }
    let rewritten = rotate::rewrite(&texts(&before), old, &new.id, new.secret.expose())
        .map_err(|e| precondition(&target, e.to_string()))?;
    let mut data = before.clone();
    for (k, v) in rewritten {
        data.insert(k, v.into_bytes());
    }
    let written = replace(c, s, data, &target).await?;
    handoff::keep_previous(&format!("{ns}/{name}"), &new.id, before);
    Ok(json!({"resource_version": written.metadata.resource_version, "keys": keys}))
}

/// The Secret holds the new key id and no longer the old one.
pub(super) async fn verify(c: &Client, action: &Action) -> Result<Verified, ConnectorError> {
    let (user, old, ns, name) = secret_of(action)?;
    let target = action.target();
    let Some(new) = handoff::get(user, old) else {
        return Ok(verified(false, rotate::lost_secret(user, old)));
    };
    let d = data_of(&get(c, ns, name, &target).await?);
    let ok = holds(&d, &new.id) && !holds(&d, old);
    Ok(verified(
        ok,
        format!(
            "secret {ns}/{name} {} key {}",
            if ok { "holds" } else { "does not hold" },
            new.id
        ),
    ))
}

/// Puts the data from before the write back: only the process that wrote it has it.
pub(super) async fn undo(
    c: &Client,
    action: &Action,
    state: &Value,
) -> Result<Verified, ConnectorError> {
    let (user, old, ns, name) = secret_of(action)?;
    let _ = state;
    let target = action.target();
    let new_id = handoff::get(user, old).map(|k| k.id);
    let previous = new_id
        .as_deref()
        .and_then(|id| handoff::take_previous(&format!("{ns}/{name}"), id));
    let Some(previous) = previous else {
        return Err(precondition(
            &target,
            format!(
                "the secret's value before the rotation is kept only in the memory of the process that rotated (never stored): the secret keeps the new key, which stays Active; put {old} back by hand if it must be"
            ),
        ));
    };
    let s = get(c, ns, name, &target).await?;
    replace(c, s, previous, &target).await?;
    let d = data_of(&get(c, ns, name, &target).await?);
    let ok = holds(&d, old);
    Ok(verified(
        ok,
        format!(
            "secret {ns}/{name} {} key {old} again",
            if ok { "holds" } else { "does not hold" }
        ),
    ))
}
