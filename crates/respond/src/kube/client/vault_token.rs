//! A Vault token written into a Kubernetes Secret's entry ([`Action::WriteVaultToken`]):
//! the token comes from this process's memory (`rotate::handoff`, put there by the issue
//! step), the Secret is created when absent (labelled as Keyward's), its other entries are
//! kept. The data before the write is kept in memory only, for an undo in the same process.
//! `apply` returns `{"resource_version", "created", "accessor"}`: never the token.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use super::common::{api, keyward_labels, precondition};
use crate::rotate::handoff;
use crate::vault::dest_key;
use crate::{ConnectorError, Verified};

/// The destination of a token write: namespace, name, entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dest<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub key: &'a str,
}

impl Dest<'_> {
    fn target(&self) -> String {
        format!("k8s:{}/{}#{}", self.ns, self.name, self.key)
    }

    /// The handoff key (the same the Vault side computes from the action).
    fn handoff(&self) -> String {
        dest_key(
            &crate::rotate::SecretLocation::Kubernetes {
                namespace: self.ns.to_owned(),
                name: self.name.to_owned(),
            },
            self.key,
        )
    }
}

fn lost(d: Dest<'_>) -> String {
    format!(
        "the token issued for {} is not in this process's memory (it is never stored): undo this plan (`keyward respond undo PLAN`, which revokes it) and issue again",
        d.target()
    )
}

async fn get(c: &Client, d: Dest<'_>) -> Result<Option<Secret>, ConnectorError> {
    Api::<Secret>::namespaced(c.clone(), d.ns)
        .get_opt(d.name)
        .await
        .map_err(|e| api("get secret", d.target(), e))
}

fn entry(s: &Secret, key: &str) -> Option<Vec<u8>> {
    s.data.as_ref()?.get(key).map(|v| v.0.clone())
}

/// The Secret's metadata and entry names, never values.
pub(super) async fn snapshot(c: &Client, d: Dest<'_>) -> Result<Value, ConnectorError> {
    let s = get(c, d).await?;
    Ok(json!({
        "target": d.target(),
        "exists": s.is_some(),
        "uid": s.as_ref().and_then(|s| s.metadata.uid.clone()),
        "resource_version": s.as_ref().and_then(|s| s.metadata.resource_version.clone()),
        "keys": s.as_ref().and_then(|s| s.data.as_ref()).map(|d| d.keys().cloned().collect::<Vec<_>>()),
    }))
}

pub(super) async fn apply(c: &Client, d: Dest<'_>) -> Result<Value, ConnectorError> {
    let target = d.target();
    let token = handoff::get_token(&d.handoff()).ok_or_else(|| precondition(&target, lost(d)))?;
    let value = token.token.expose().as_bytes().to_vec();
    let api_ = Api::<Secret>::namespaced(c.clone(), d.ns);
    match get(c, d).await? {
        Some(s) if entry(&s, d.key).as_deref() == Some(value.as_slice()) => Ok(json!({
            "resource_version": s.metadata.resource_version,
            "created": false,
            "accessor": token.accessor,
        })),
        Some(mut s) => {
            let before: BTreeMap<String, Vec<u8>> = s
                .data
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default();
            s.data
                .get_or_insert_with(BTreeMap::new)
                .insert(d.key.to_owned(), ByteString(value));
            // The resourceVersion read stays in `s`: a concurrent change fails the write.
            let written = api_
                .replace(d.name, &PostParams::default(), &s)
                .await
                .map_err(|e| api("replace secret", &target, e))?;
            handoff::keep_previous(&format!("{}/{}", d.ns, d.name), &token.accessor, before);
            Ok(json!({
                "resource_version": written.metadata.resource_version,
                "created": false,
                "accessor": token.accessor,
            }))
        }
        None => {
            let s: Secret = serde_json::from_value(json!({
                "metadata": {"name": d.name, "namespace": d.ns, "labels": keyward_labels()},
                "type": "Opaque",
            }))
            .map_err(|e| precondition(&target, e.to_string()))?;
            let mut s = s;
            s.data = Some(BTreeMap::from([(d.key.to_owned(), ByteString(value))]));
            let written = api_
                .create(&PostParams::default(), &s)
                .await
                .map_err(|e| api("create secret", &target, e))?;
            Ok(json!({
                "resource_version": written.metadata.resource_version,
                "created": true,
                "uid": written.metadata.uid,
                "accessor": token.accessor,
            }))
        }
    }
}

/// The entry holds the token issued for it (compared in memory).
pub(super) async fn verify(c: &Client, d: Dest<'_>) -> Result<Verified, ConnectorError> {
    let Some(token) = handoff::get_token(&d.handoff()) else {
        return Ok(Verified {
            ok: false,
            observed: lost(d),
        });
    };
    let s = get(c, d).await?;
    let ok = s.as_ref().and_then(|s| entry(s, d.key)).as_deref()
        == Some(token.token.expose().as_bytes());
    Ok(Verified {
        ok,
        observed: format!(
            "secret {}/{} entry {} {} the token of accessor {}",
            d.ns,
            d.name,
            d.key,
            if ok { "holds" } else { "does not hold" },
            token.accessor
        ),
    })
}

/// A Secret the step created is deleted; one it changed gets its data back (only the
/// process that wrote it has the data before).
pub(super) async fn undo(
    c: &Client,
    d: Dest<'_>,
    state: &Value,
) -> Result<Verified, ConnectorError> {
    let target = d.target();
    let api_ = Api::<Secret>::namespaced(c.clone(), d.ns);
    if state.get("created").and_then(Value::as_bool) == Some(true) {
        match api_.delete(d.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if super::common::is_not_found(&e) => {}
            Err(e) => return Err(api("delete secret", &target, e)),
        }
        let gone = get(c, d)
            .await?
            .is_none_or(|s| s.metadata.deletion_timestamp.is_some());
        return Ok(Verified {
            ok: gone,
            observed: format!(
                "secret {}/{} {}",
                d.ns,
                d.name,
                if gone { "deleted" } else { "still there" }
            ),
        });
    }
    let accessor = state
        .get("accessor")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(previous) = handoff::take_previous(&format!("{}/{}", d.ns, d.name), accessor) else {
        return Err(precondition(
            &target,
            "the secret's data before the write is kept only in the memory of the process that wrote it (never stored): the entry keeps the new token; put the old one back by hand if it must be",
        ));
    };
    let mut s = get(c, d)
        .await?
        .ok_or_else(|| precondition(&target, "the secret does not exist"))?;
    s.data = Some(
        previous
            .into_iter()
            .map(|(k, v)| (k, ByteString(v)))
            .collect(),
    );
    api_.replace(d.name, &PostParams::default(), &s)
        .await
        .map_err(|e| api("replace secret", &target, e))?;
    Ok(Verified {
        ok: true,
        observed: format!(
            "secret {}/{} has its data from before the write",
            d.ns, d.name
        ),
    })
}
