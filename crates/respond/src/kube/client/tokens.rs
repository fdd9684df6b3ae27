//! A service account's token secrets (`delete_token_secrets`): listed metadata-only, so a
//! token never enters this process; deleted and dropped from the service account's
//! `secrets` list; verified by uid, because clusters up to 1.23 re-create a token secret for
//! the account at once (a new secret, a new token: fine) and only the old ones must be gone.
//!
//! Undo cannot bring a deleted token back (that is the point): it re-creates each secret by
//! name, empty, and the token controller issues it a new token.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::{
    LAST_APPLIED, RETRIES, Sa, api, delete_exactly, is_already_exists, is_conflict, is_not_found,
    meta_summary, names, post_params, precondition, wait_until,
};
use crate::{ConnectorError, Verified};

pub(super) const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME: &str = "kubernetes.io/service-account.name";
const SA_UID: &str = "kubernetes.io/service-account.uid";

fn secrets(c: &Client, ns: &str) -> Api<Secret> {
    Api::namespaced(c.clone(), ns)
}

/// The service account's token secrets, metadata only (never `data`).
pub(super) async fn list(c: &Client, sa: Sa<'_>) -> Result<Vec<ObjectMeta>, ConnectorError> {
    let lp = ListParams::default().fields(&format!("type={TOKEN_TYPE}"));
    let list = secrets(c, sa.ns)
        .list_metadata(&lp)
        .await
        .map_err(|e| api("list secrets (metadata)", sa, e))?;
    Ok(list
        .items
        .into_iter()
        .map(|m| m.metadata)
        .filter(|m| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(SA_NAME))
                .is_some_and(|n| n == sa.name)
        })
        .collect())
}

/// A token secret in a snapshot: its type and metadata (names, annotations, creation).
pub(super) fn summary(meta: &ObjectMeta) -> Value {
    json!({"type": TOKEN_TYPE, "metadata": meta_summary(meta)})
}

/// What `delete_token_secrets` did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TokensState {
    /// The deleted secrets' snapshots (metadata only).
    pub secrets: Vec<Value>,
    /// Their names that the service account's `secrets` list held.
    pub referenced: Vec<String>,
}

/// The token secrets that existed before the delete: uid → name.
#[derive(Debug, Clone, Default)]
pub(super) struct Before(pub BTreeMap<String, String>);

pub(super) async fn delete(
    c: &Client,
    sa: Sa<'_>,
) -> Result<(TokensState, Before), ConnectorError> {
    let found = list(c, sa).await?;
    let mut state = TokensState::default();
    let mut before = Before::default();
    let api_ = secrets(c, sa.ns);
    for m in &found {
        let name = m.name.clone().unwrap_or_default();
        before
            .0
            .insert(m.uid.clone().unwrap_or_default(), name.clone());
        match api_.delete(&name, &delete_exactly(m, false)).await {
            Ok(_) => state.secrets.push(summary(m)),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("delete secret `{name}`"), sa, e)),
        }
    }
    let deleted: BTreeSet<String> = before.0.values().cloned().collect();
    state.referenced = edit_references(c, sa, |refs| {
        let had: Vec<String> = refs
            .iter()
            .filter_map(|r| r.name.clone())
            .filter(|n| deleted.contains(n))
            .collect();
        refs.retain(|r| !r.name.as_ref().is_some_and(|n| deleted.contains(n)));
        had
    })
    .await?;
    Ok((state, before))
}

/// Changes the service account's `secrets` list with `edit` (read again on a conflict, as
/// the token controller writes it too); returns what `edit` returned. No write when `edit`
/// returns nothing.
async fn edit_references(
    c: &Client,
    sa: Sa<'_>,
    mut edit: impl FnMut(&mut Vec<ObjectReference>) -> Vec<String>,
) -> Result<Vec<String>, ConnectorError> {
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), sa.ns);
    for _ in 0..RETRIES {
        let Some(mut obj) = sas
            .get_opt(sa.name)
            .await
            .map_err(|e| api("get serviceaccount", sa, e))?
        else {
            return Err(precondition(sa, "the service account does not exist"));
        };
        let mut refs = obj.secrets.take().unwrap_or_default();
        let changed = edit(&mut refs);
        if changed.is_empty() {
            return Ok(changed);
        }
        obj.secrets = Some(refs);
        match sas.replace(sa.name, &post_params(), &obj).await {
            Ok(_) => return Ok(changed),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(api("update serviceaccount", sa, e)),
        }
    }
    Err(ConnectorError::Api {
        call: "update serviceaccount".into(),
        target: sa.to_string(),
        message: format!("it kept changing: gave up after {RETRIES} conflicts"),
    })
}

/// None of the token secrets that existed before the delete is left, by uid (the token
/// controller may have made new ones since: new tokens, fine). A deleted secret's name still
/// in the service account's `secrets` list is only a name (its token is invalid without the
/// secret): the token controller may have added it while the delete ran; it is waited for
/// briefly and otherwise reported, not failed on.
pub(super) async fn verify(
    c: &Client,
    sa: Sa<'_>,
    before: Option<&Before>,
    wait: Duration,
) -> Result<Verified, ConnectorError> {
    let Some(before) = before else {
        return Ok(Verified {
            ok: false,
            observed: format!(
                "cannot tell old token secrets of `{sa}` from new ones: this connector deleted none in this process"
            ),
        });
    };
    let is_old = |m: &ObjectMeta| m.uid.as_ref().is_some_and(|u| before.0.contains_key(u));
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), sa.ns);
    let (_, (old, new, listed)) = wait_until(wait.min(Duration::from_secs(10)), async || {
        let now = list(c, sa).await?;
        let old: Vec<String> = now
            .iter()
            .filter(|m| is_old(m))
            .filter_map(|m| m.name.clone())
            .collect();
        let new: Vec<String> = now
            .iter()
            .filter(|m| !is_old(m))
            .filter_map(|m| m.name.clone())
            .collect();
        let listed: Vec<String> = match sas
            .get_opt(sa.name)
            .await
            .map_err(|e| api("get serviceaccount", sa, e))?
        {
            Some(obj) => obj
                .secrets
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.name)
                .filter(|n| before.0.values().any(|b| b == n) && !new.contains(n))
                .collect(),
            None => Vec::new(),
        };
        Ok((old.is_empty() && listed.is_empty(), (old, new, listed)))
    })
    .await?;
    if !old.is_empty() {
        return Ok(Verified {
            ok: false,
            observed: format!("token secret(s) {} of `{sa}` still exist", names(&old, 5)),
        });
    }
    let gone: Vec<&String> = before.0.values().collect();
    let mut observed = match gone.len() {
        0 => format!("`{sa}` had no token secret"),
        n => format!(
            "the {n} token secret(s) of `{sa}` from before are gone ({})",
            names(&gone, 5)
        ),
    };
    if !new.is_empty() {
        observed.push_str(&format!(
            "; created since by the token controller, with new tokens: {}",
            names(&new, 5)
        ));
    }
    if !listed.is_empty() {
        observed.push_str(&format!(
            "; the service account still lists {} by name only (the secret and its token are gone)",
            names(&listed, 5)
        ));
    }
    Ok(Verified { ok: true, observed })
}

/// Re-creates each deleted token secret by name, empty, for the service account as it is
/// now (its current uid): the token controller fills in a new token. Puts the names back
/// in the service account's `secrets` list where they were.
pub(super) async fn recreate(
    c: &Client,
    sa: Sa<'_>,
    state: &TokensState,
    wait: Duration,
) -> Result<Verified, ConnectorError> {
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), sa.ns);
    let Some(account) = sas
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
    else {
        return Err(precondition(
            sa,
            "the service account does not exist: its token secrets cannot be re-created",
        ));
    };
    let uid = account.metadata.uid.clone().unwrap_or_default();
    let api_ = secrets(c, sa.ns);
    let mut made = Vec::new();
    for s in &state.secrets {
        let Ok(mut meta) =
            serde_json::from_value::<ObjectMeta>(s.get("metadata").cloned().unwrap_or_default())
        else {
            continue;
        };
        let name = meta.name.clone().unwrap_or_default();
        let mut annotations = meta.annotations.take().unwrap_or_default();
        annotations.remove(LAST_APPLIED);
        annotations.insert(SA_NAME.into(), sa.name.into());
        annotations.insert(SA_UID.into(), uid.clone());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(sa.ns.into()),
                labels: meta.labels.take(),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            type_: Some(TOKEN_TYPE.into()),
            ..Secret::default()
        };
        match api_.create(&post_params(), &secret).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(api(format!("create secret `{name}`"), sa, e)),
        }
        made.push(name);
    }
    let referenced = state.referenced.clone();
    edit_references(c, sa, |refs| {
        let missing: Vec<String> = referenced
            .iter()
            .filter(|n| !refs.iter().any(|r| r.name.as_ref() == Some(*n)))
            .cloned()
            .collect();
        refs.extend(missing.iter().map(|n| ObjectReference {
            name: Some(n.clone()),
            ..ObjectReference::default()
        }));
        missing
    })
    .await?;
    // Filled = the token controller wrote `data.token` (seen in the managed fields, so
    // the token itself is never read).
    let (filled, present) = wait_until(wait.min(Duration::from_secs(15)), async || {
        let now = list(c, sa).await?;
        let present: Vec<&ObjectMeta> = now
            .iter()
            .filter(|m| m.name.as_ref().is_some_and(|n| made.contains(n)))
            .collect();
        let all_filled = present.len() == made.len() && present.iter().all(|m| has_token(m));
        Ok((all_filled, present.len()))
    })
    .await?;
    Ok(if present < made.len() {
        Verified {
            ok: false,
            observed: format!(
                "{present} of {} token secret(s) re-created for `{sa}`",
                made.len()
            ),
        }
    } else {
        Verified {
            ok: true,
            observed: format!(
                "token secret(s) {} re-created for `{sa}` {}; the deleted tokens stay invalid",
                names(&made, 5),
                if filled {
                    "and filled with new tokens by the token controller"
                } else {
                    "(the token controller has not filled them yet)"
                }
            ),
        }
    })
}

/// Whether the token controller has written the secret's token (its managed fields name
/// `data.token`).
fn has_token(m: &ObjectMeta) -> bool {
    m.managed_fields
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|f| {
            f.fields_v1
                .as_ref()
                .is_some_and(|v| v.0.get("f:data").and_then(|d| d.get("f:token")).is_some())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_seen_filled_from_the_managed_fields_only() {
        let meta = |fields: Value| -> ObjectMeta {
            serde_json::from_value(json!({"managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
            ]}))
            .unwrap()
        };
        assert!(has_token(&meta(
            json!({"f:data": {".": {}, "f:ca.crt": {}, "f:token": {}}})
        )));
        assert!(!has_token(&meta(
            json!({"f:metadata": {"f:annotations": {}}})
        )));
        assert!(!has_token(&ObjectMeta::default()));
    }
}
