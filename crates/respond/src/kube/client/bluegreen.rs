//! Blue-green (`blue_green`): a replacement service account takes over from a compromised
//! one without an outage.
//!
//! Apply, in order: the replacement is created (labelled `app.kubernetes.io/managed-by:
//! keyward`, annotated with the account it replaces, with the old one's labels,
//! annotations, image pull secrets and automount setting); every binding naming the old
//! account is copied to `<binding>-<replacement>` naming the replacement; every Deployment
//! of the namespace whose pod template runs as the old account is moved to the replacement;
//! each rollout is awaited ([`RolloutCheck`]); only then is the old account deleted (its
//! token secrets go with it). A failure on the way puts back what was done.
//!
//! Not moved: StatefulSets, DaemonSets, Jobs and bare pods running as the old account (their
//! pods lose their tokens when it is deleted). The old bindings are left as they were, still
//! naming the deleted account, so undo only has to re-create it; remove them with
//! `remove_bindings` once the replacement is trusted, or an account re-created under the old
//! name would inherit them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ListParams, Patch};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bindings::{self, Binding};
use super::common::{
    BindingRef, LAST_APPLIED, Sa, api, controller, delete_exactly, fresh, is_already_exists,
    is_not_found, keyward_labels, managed_by_keyward, names, patch_params, post_params,
    precondition, to_json, wait_until, with_note,
};
use super::pods::template_sa_of;
use super::{KubeOptions, RolloutCheck};
use crate::action::BindingKind;
use crate::{ConnectorError, Verified};

/// On the replacement: the name of the account it replaces.
const REPLACES: &str = "keyward.io/replaces";
/// On a copied binding: `Kind/namespace/name` of the binding it copies.
const COPY_OF: &str = "keyward.io/copy-of";
/// The revision the Deployment controller writes on a Deployment and its ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// A binding copied to the replacement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Copied {
    pub kind: BindingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub copy_of: String,
}

impl Copied {
    fn reference(&self) -> BindingRef {
        BindingRef {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// A Deployment moved to the replacement, and the account it ran as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Moved {
    pub name: String,
    pub from: String,
}

/// What `blue_green` did, for its undo.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct BlueGreenState {
    /// The old service account as it was.
    pub old: Value,
    pub replacement: String,
    pub copies: Vec<Copied>,
    pub deployments: Vec<Moved>,
    pub old_deleted: bool,
}

fn accounts(c: &Client, ns: &str) -> Api<ServiceAccount> {
    Api::namespaced(c.clone(), ns)
}

fn deployments(c: &Client, ns: &str) -> Api<Deployment> {
    Api::namespaced(c.clone(), ns)
}

pub(super) async fn apply(
    c: &Client,
    sa: Sa<'_>,
    replacement: &str,
    opts: &KubeOptions,
) -> Result<BlueGreenState, ConnectorError> {
    if replacement == sa.name {
        return Err(precondition(
            sa,
            "the replacement has the account's own name",
        ));
    }
    let sas = accounts(c, sa.ns);
    let Some(old) = sas
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
    else {
        return Err(precondition(sa, "the service account does not exist"));
    };
    let repl = Sa {
        ns: sa.ns,
        name: replacement,
    };
    match sas
        .get_opt(replacement)
        .await
        .map_err(|e| api("get serviceaccount", repl, e))?
    {
        // An earlier, interrupted try made it: go on with it.
        Some(r) if is_replacement_of(&r.metadata, sa) => {}
        Some(_) => {
            return Err(precondition(
                sa,
                format!(
                    "service account `{repl}` already exists (and Keyward did not make it for this one)"
                ),
            ));
        }
        None => {
            sas.create(&post_params(), &replacement_for(&old, sa, replacement))
                .await
                .map_err(|e| api("create serviceaccount", repl, e))?;
        }
    }
    let mut state = BlueGreenState {
        old: to_json(&old),
        replacement: replacement.to_owned(),
        ..BlueGreenState::default()
    };
    match take_over(c, sa, &old, &mut state, opts).await {
        Ok(()) => Ok(state),
        Err(e) => {
            let note = match reverse(c, sa, &state, opts).await {
                Ok(()) => "what the step had done was put back".to_owned(),
                Err(r) => format!("putting back what the step had done failed too: {r}"),
            };
            Err(with_note(e, &note))
        }
    }
}

fn is_replacement_of(meta: &ObjectMeta, sa: Sa<'_>) -> bool {
    managed_by_keyward(meta)
        && meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(REPLACES))
            .is_some_and(|n| n == sa.name)
}

/// The replacement: the old account's labels, annotations (but the last applied
/// manifest), image pull secrets and automount setting; Keyward's label; no token secrets.
fn replacement_for(old: &ServiceAccount, sa: Sa<'_>, replacement: &str) -> ServiceAccount {
    let mut labels = old.metadata.labels.clone().unwrap_or_default();
    labels.extend(keyward_labels());
    let mut annotations = old.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    annotations.insert(REPLACES.into(), sa.name.into());
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(replacement.into()),
            namespace: Some(sa.ns.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        automount_service_account_token: old.automount_service_account_token,
        image_pull_secrets: old.image_pull_secrets.clone(),
        secrets: None,
    }
}

/// Copies the bindings, moves the Deployments, awaits their rollouts, deletes the old account;
/// `state` says how far it got.
async fn take_over(
    c: &Client,
    sa: Sa<'_>,
    old: &ServiceAccount,
    state: &mut BlueGreenState,
    opts: &KubeOptions,
) -> Result<(), ConnectorError> {
    let replacement = state.replacement.clone();
    for b in bindings::naming(c, sa).await? {
        state
            .copies
            .push(copy_binding(c, &b, sa, &replacement).await?);
    }
    let deps = deployments(c, sa.ns);
    let list = deps
        .list(&ListParams::default())
        .await
        .map_err(|e| api("list deployments", sa, e))?;
    for d in list.items {
        if d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(template_sa_of)
            .as_deref()
            != Some(sa.name)
        {
            continue;
        }
        let name = d.metadata.name.clone().unwrap_or_default();
        move_deployment(c, sa.ns, &name, &replacement).await?;
        state.deployments.push(Moved {
            name,
            from: sa.name.to_owned(),
        });
    }
    for m in &state.deployments {
        await_rollout(c, sa.ns, &m.name, &replacement, opts).await?;
    }
    match accounts(c, sa.ns)
        .delete(sa.name, &delete_exactly(&old.metadata, false))
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(api("delete serviceaccount", sa, e)),
    }
    state.old_deleted = true;
    Ok(())
}

async fn copy_binding(
    c: &Client,
    b: &Binding,
    sa: Sa<'_>,
    replacement: &str,
) -> Result<Copied, ConnectorError> {
    let of = b.reference();
    let name = format!("{}-{replacement}", of.name);
    let subject = Subject {
        api_group: None,
        kind: "ServiceAccount".into(),
        name: replacement.into(),
        namespace: Some(sa.ns.into()),
    };
    let meta = ObjectMeta {
        labels: Some(keyward_labels()),
        annotations: Some(BTreeMap::from([(COPY_OF.to_owned(), of.to_string())])),
        ..ObjectMeta::default()
    };
    let copy = b.copy_for(name.clone(), subject, meta);
    let copied = Copied {
        kind: of.kind,
        namespace: of.namespace.clone(),
        name,
        copy_of: of.to_string(),
    };
    match bindings::create(c, &copy).await {
        Ok(()) => Ok(copied),
        Err(e) if is_already_exists(&e) => match bindings::get(c, &copied.reference()).await? {
            Some(live) if managed_by_keyward(live.meta()) && live.role_ref() == b.role_ref() => {
                Ok(copied)
            }
            _ => Err(precondition(
                sa,
                format!(
                    "binding `{}` already exists and is not Keyward's copy of `{of}`",
                    copied.reference()
                ),
            )),
        },
        Err(e) => Err(api(
            format!("create {}", of.kind.resource()),
            copied.reference(),
            e,
        )),
    }
}

/// Points the Deployment's pod template at `account` (a merge patch of both the field and
/// its deprecated alias, as `kubectl set serviceaccount` does for the first).
async fn move_deployment(
    c: &Client,
    ns: &str,
    name: &str,
    account: &str,
) -> Result<(), ConnectorError> {
    let patch = json!({"spec": {"template": {"spec": {
        "serviceAccountName": account,
        "serviceAccount": account,
    }}}});
    deployments(c, ns)
        .patch(name, &patch_params(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| api("patch deployment", format!("{ns}/{name}"), e))
}

async fn await_rollout(
    c: &Client,
    ns: &str,
    name: &str,
    account: &str,
    opts: &KubeOptions,
) -> Result<(), ConnectorError> {
    let (done, how) = wait_until(opts.wait, async || {
        rollout(c, ns, name, account, opts.rollout).await
    })
    .await?;
    if done {
        return Ok(());
    }
    Err(ConnectorError::Api {
        call: "rollout".into(),
        target: format!("{ns}/deployment/{name}"),
        message: format!(
            "not rolled out to `{account}` within {} s: {how}",
            opts.wait.as_secs()
        ),
    })
}

/// Whether the Deployment has rolled out to pods running as `account`, and what was seen.
pub(super) async fn rollout(
    c: &Client,
    ns: &str,
    name: &str,
    account: &str,
    check: RolloutCheck,
) -> Result<(bool, String), ConnectorError> {
    let target = format!("{ns}/deployment/{name}");
    let Some(d) = deployments(c, ns)
        .get_opt(name)
        .await
        .map_err(|e| api("get deployment", &target, e))?
    else {
        return Ok((false, format!("deployment `{name}` is gone")));
    };
    let uses = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(template_sa_of)
        .unwrap_or_default();
    if uses != account {
        return Ok((false, format!("its pod template runs as `{uses}`")));
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Ok((
            false,
            format!(
                "the controller has not seen generation {generation} yet (observed {observed})"
            ),
        ));
    }
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION));
    let uid = d.metadata.uid.as_deref();
    let rss = Api::<ReplicaSet>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| api("list replicasets", &target, e))?;
    let new_rs = rss.items.iter().find(|rs| {
        controller(&rs.metadata).is_some_and(|o| Some(o.uid.as_str()) == uid)
            && rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                == revision
    });
    let Some(rs) = new_rs else {
        return Ok((false, "no ReplicaSet of its current revision yet".into()));
    };
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let rs_uses = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(template_sa_of)
        .unwrap_or_default();
    if rs_uses != account {
        return Ok((
            false,
            format!("its new ReplicaSet `{rs_name}` runs as `{rs_uses}`"),
        ));
    }
    if check == RolloutCheck::Available {
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let updated = status.updated_replicas.unwrap_or(0);
        let total = status.replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        if updated < want || total > updated || available < updated {
            return Ok((
                false,
                format!(
                    "{updated} of {want} replicas updated, {available} available, {total} in all"
                ),
            ));
        }
    }
    Ok((true, format!("ReplicaSet `{rs_name}` runs as `{account}`")))
}

/// Puts back what `apply` did, as far as `state` says it got: the old account re-created,
/// the Deployments moved back (and their rollouts awaited), the copies and the replacement
/// deleted (only if Keyward's).
pub(super) async fn reverse(
    c: &Client,
    sa: Sa<'_>,
    state: &BlueGreenState,
    opts: &KubeOptions,
) -> Result<(), ConnectorError> {
    let sas = accounts(c, sa.ns);
    if sas
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
        .is_none()
    {
        let mut old: ServiceAccount = serde_json::from_value(state.old.clone()).map_err(|e| {
            precondition(
                sa,
                format!("the account kept in the step's state does not parse: {e}"),
            )
        })?;
        fresh(&mut old.metadata);
        // Its token secrets were deleted with it; the token controller makes new ones.
        old.secrets = None;
        match sas.create(&post_params(), &old).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(api("create serviceaccount", sa, e)),
        }
    }
    let deps = deployments(c, sa.ns);
    for m in &state.deployments {
        let Some(d) = deps
            .get_opt(&m.name)
            .await
            .map_err(|e| api("get deployment", format!("{}/{}", sa.ns, m.name), e))?
        else {
            continue;
        };
        let uses = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(template_sa_of);
        if uses.as_deref() == Some(state.replacement.as_str()) {
            move_deployment(c, sa.ns, &m.name, &m.from).await?;
        }
    }
    for m in &state.deployments {
        await_rollout(c, sa.ns, &m.name, &m.from, opts).await?;
    }
    for copy in &state.copies {
        bindings::delete_ours(c, &copy.reference()).await?;
    }
    if let Some(r) = sas
        .get_opt(&state.replacement)
        .await
        .map_err(|e| api("get serviceaccount", &state.replacement, e))?
        && is_replacement_of(&r.metadata, sa)
    {
        match sas
            .delete(&state.replacement, &delete_exactly(&r.metadata, false))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api("delete serviceaccount", &state.replacement, e)),
        }
    }
    Ok(())
}

/// After apply: the replacement exists, the old account is gone, no Deployment of the
/// namespace runs as the old account, those on the replacement have rolled out, and every
/// binding naming the old account has its copy naming the replacement.
pub(super) async fn verify(
    c: &Client,
    sa: Sa<'_>,
    replacement: &str,
    check: RolloutCheck,
) -> Result<Verified, ConnectorError> {
    let sas = accounts(c, sa.ns);
    let mut wrong = Vec::new();
    match sas
        .get_opt(replacement)
        .await
        .map_err(|e| api("get serviceaccount", replacement, e))?
    {
        Some(r) if is_replacement_of(&r.metadata, sa) => {}
        Some(_) => wrong.push(format!(
            "`{replacement}` is not labelled as Keyward's replacement"
        )),
        None => wrong.push(format!("replacement `{replacement}` does not exist")),
    }
    if sas
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
        .is_some()
    {
        wrong.push(format!("`{sa}` still exists"));
    }
    let (on_old, on_new) = split_deployments(c, sa, replacement).await?;
    if !on_old.is_empty() {
        wrong.push(format!(
            "deployment(s) {} still run as it",
            names(&on_old, 5)
        ));
    }
    for d in &on_new {
        let (done, how) = rollout(c, sa.ns, d, replacement, check).await?;
        if !done {
            wrong.push(format!("deployment `{d}` not rolled out: {how}"));
        }
    }
    let originals = bindings::naming(c, sa).await?;
    let mut copied = Vec::new();
    for b in &originals {
        let of = b.reference();
        let copy = BindingRef {
            name: format!("{}-{replacement}", of.name),
            ..of.clone()
        };
        let repl = Sa {
            ns: sa.ns,
            name: replacement,
        };
        match bindings::get(c, &copy).await? {
            Some(x) if x.role_ref() == b.role_ref() && x.names(repl) => {
                copied.push(copy.to_string())
            }
            _ => wrong.push(format!(
                "binding `{of}` has no copy `{copy}` naming the replacement"
            )),
        }
    }
    Ok(if wrong.is_empty() {
        Verified {
            ok: true,
            observed: format!(
                "`{}/{replacement}` replaces `{sa}` (deleted); deployment(s) rolled out to it: {}; binding copies: {}{}",
                sa.ns,
                list_or_none(&on_new),
                list_or_none(&copied),
                if originals.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} old binding(s) still name the deleted account",
                        originals.len()
                    )
                }
            ),
        }
    } else {
        Verified {
            ok: false,
            observed: wrong.join("; "),
        }
    })
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        names(v, 5)
    }
}

/// The namespace's Deployments whose pod template runs as `sa`, and those on `other`.
async fn split_deployments(
    c: &Client,
    sa: Sa<'_>,
    other: &str,
) -> Result<(Vec<String>, Vec<String>), ConnectorError> {
    let list = deployments(c, sa.ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| api("list deployments", sa, e))?;
    let mut on_sa = Vec::new();
    let mut on_other = Vec::new();
    for d in list.items {
        let uses = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(template_sa_of)
            .unwrap_or_default();
        let name = d.metadata.name.unwrap_or_default();
        if uses == sa.name {
            on_sa.push(name);
        } else if uses == other {
            on_other.push(name);
        }
    }
    Ok((on_sa, on_other))
}

/// After undo: the old account is back, the moved Deployments run as it again and have
/// rolled out, the copies and the replacement are gone.
pub(super) async fn verify_reversed(
    c: &Client,
    sa: Sa<'_>,
    state: &BlueGreenState,
    check: RolloutCheck,
) -> Result<Verified, ConnectorError> {
    let sas = accounts(c, sa.ns);
    let mut wrong = Vec::new();
    if sas
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
        .is_none()
    {
        wrong.push(format!("`{sa}` does not exist"));
    }
    for m in &state.deployments {
        let (done, how) = rollout(c, sa.ns, &m.name, &m.from, check).await?;
        if !done {
            wrong.push(format!(
                "deployment `{}` not back on `{}`: {how}",
                m.name, m.from
            ));
        }
    }
    for copy in &state.copies {
        if bindings::get(c, &copy.reference()).await?.is_some() {
            wrong.push(format!("copy `{}` still exists", copy.reference()));
        }
    }
    if sas
        .get_opt(&state.replacement)
        .await
        .map_err(|e| api("get serviceaccount", &state.replacement, e))?
        .is_some()
    {
        wrong.push(format!("replacement `{}` still exists", state.replacement));
    }
    let moved: Vec<&str> = state.deployments.iter().map(|m| m.name.as_str()).collect();
    Ok(if wrong.is_empty() {
        Verified {
            ok: true,
            observed: format!(
                "`{sa}` is back; deployment(s) back on it: {}; {} copy(ies) and `{}` removed",
                if moved.is_empty() {
                    "none".into()
                } else {
                    names(&moved, 5)
                },
                state.copies.len(),
                state.replacement
            ),
        }
    } else {
        Verified {
            ok: false,
            observed: wrong.join("; "),
        }
    })
}
