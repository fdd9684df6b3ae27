//! RoleBindings and ClusterRoleBindings: which name a service account, removing it from them
//! (`remove_bindings`) without touching their other subjects, deleting one binding
//! (`delete_binding`), and putting both back as they were.
//!
//! A subject names the service account when it is `ServiceAccount` `ns/name` (in a
//! RoleBinding an empty subject namespace means the binding's own, as the RBAC authorizer
//! reads it) or the `User` `system:serviceaccount:ns:name` its tokens authenticate as. The
//! groups every service account is in (`system:serviceaccounts[:ns]`) name others too: they
//! are reported, never changed.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::{
    BindingRef, RETRIES, Sa, api, delete_exactly, fresh, is_already_exists, is_conflict,
    is_not_found, managed_by_keyward, names, post_params, precondition, to_json, with_note,
};
use crate::action::BindingKind;
use crate::{ConnectorError, Verified};

/// A RoleBinding or a ClusterRoleBinding.
#[derive(Debug, Clone)]
pub(super) enum Binding {
    Role(RoleBinding),
    Cluster(ClusterRoleBinding),
}

impl Binding {
    pub fn kind(&self) -> BindingKind {
        match self {
            Binding::Role(_) => BindingKind::RoleBinding,
            Binding::Cluster(_) => BindingKind::ClusterRoleBinding,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Binding::Role(b) => &b.metadata,
            Binding::Cluster(b) => &b.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Binding::Role(b) => &mut b.metadata,
            Binding::Cluster(b) => &mut b.metadata,
        }
    }

    pub fn subjects(&self) -> &[Subject] {
        match self {
            Binding::Role(b) => b.subjects.as_deref().unwrap_or_default(),
            Binding::Cluster(b) => b.subjects.as_deref().unwrap_or_default(),
        }
    }

    fn set_subjects(&mut self, subjects: Vec<Subject>) {
        match self {
            Binding::Role(b) => b.subjects = Some(subjects),
            Binding::Cluster(b) => b.subjects = Some(subjects),
        }
    }

    pub fn role_ref(&self) -> &RoleRef {
        match self {
            Binding::Role(b) => &b.role_ref,
            Binding::Cluster(b) => &b.role_ref,
        }
    }

    pub fn reference(&self) -> BindingRef {
        BindingRef {
            kind: self.kind(),
            namespace: match self {
                Binding::Role(b) => b.metadata.namespace.clone(),
                Binding::Cluster(_) => None,
            },
            name: self.meta().name.clone().unwrap_or_default(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Binding::Role(b) => to_json(b),
            Binding::Cluster(b) => to_json(b),
        }
    }

    pub fn from_json(kind: BindingKind, v: Value) -> Result<Binding, serde_json::Error> {
        Ok(match kind {
            BindingKind::RoleBinding => Binding::Role(serde_json::from_value(v)?),
            BindingKind::ClusterRoleBinding => Binding::Cluster(serde_json::from_value(v)?),
        })
    }

    /// A binding made for another subject: same kind, namespace and role, `name`, one subject.
    pub fn copy_for(&self, name: String, subject: Subject, meta: ObjectMeta) -> Binding {
        let metadata = ObjectMeta {
            name: Some(name),
            namespace: self.meta().namespace.clone(),
            ..meta
        };
        match self {
            Binding::Role(b) => Binding::Role(RoleBinding {
                metadata,
                role_ref: b.role_ref.clone(),
                subjects: Some(vec![subject]),
            }),
            Binding::Cluster(b) => Binding::Cluster(ClusterRoleBinding {
                metadata: ObjectMeta {
                    namespace: None,
                    ..metadata
                },
                role_ref: b.role_ref.clone(),
                subjects: Some(vec![subject]),
            }),
        }
    }

    /// Whether one of its subjects is the service account.
    pub fn names(&self, sa: Sa<'_>) -> bool {
        let ns = self.meta().namespace.as_deref();
        self.subjects().iter().any(|s| subject_names(s, ns, sa))
    }

    /// The service-account group of `sa` it grants to, if any.
    fn group_of(&self, sa: Sa<'_>) -> Option<String> {
        let own = format!("system:serviceaccounts:{}", sa.ns);
        self.subjects()
            .iter()
            .find(|s| s.kind == "Group" && (s.name == "system:serviceaccounts" || s.name == own))
            .map(|s| s.name.clone())
    }
}

/// Whether a subject of a binding in `binding_ns` (none for a ClusterRoleBinding) is the
/// service account.
pub(super) fn subject_names(s: &Subject, binding_ns: Option<&str>, sa: Sa<'_>) -> bool {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .or(binding_ns);
            s.name == sa.name && ns == Some(sa.ns)
        }
        "User" => s.name == sa.user(),
        _ => false,
    }
}

fn role_bindings(c: &Client, ns: Option<&str>) -> Api<RoleBinding> {
    match ns {
        Some(ns) => Api::namespaced(c.clone(), ns),
        None => Api::all(c.clone()),
    }
}

fn cluster_role_bindings(c: &Client) -> Api<ClusterRoleBinding> {
    Api::all(c.clone())
}

/// Every RoleBinding (all namespaces: one may name a service account of another) and every
/// ClusterRoleBinding.
pub(super) async fn list_all(c: &Client) -> Result<Vec<Binding>, ConnectorError> {
    let lp = ListParams::default();
    let rbs = role_bindings(c, None)
        .list(&lp)
        .await
        .map_err(|e| api("list rolebindings", "all namespaces", e))?;
    let crbs = cluster_role_bindings(c)
        .list(&lp)
        .await
        .map_err(|e| api("list clusterrolebindings", "the cluster", e))?;
    Ok(rbs
        .items
        .into_iter()
        .map(Binding::Role)
        .chain(crbs.items.into_iter().map(Binding::Cluster))
        .collect())
}

/// The bindings that name the service account.
pub(super) async fn naming(c: &Client, sa: Sa<'_>) -> Result<Vec<Binding>, ConnectorError> {
    Ok(list_all(c)
        .await?
        .into_iter()
        .filter(|b| b.names(sa))
        .collect())
}

pub(super) async fn get(c: &Client, r: &BindingRef) -> Result<Option<Binding>, ConnectorError> {
    let call = format!("get {}", r.kind.resource());
    match r.kind {
        BindingKind::RoleBinding => {
            let Some(ns) = r.namespace.as_deref() else {
                return Err(precondition(r, "a RoleBinding needs its namespace"));
            };
            role_bindings(c, Some(ns))
                .get_opt(&r.name)
                .await
                .map(|b| b.map(Binding::Role))
        }
        BindingKind::ClusterRoleBinding => cluster_role_bindings(c)
            .get_opt(&r.name)
            .await
            .map(|b| b.map(Binding::Cluster)),
    }
    .map_err(|e| api(call, r, e))
}

/// Deletes the binding as it was read (not one changed or re-created since).
async fn delete(c: &Client, b: &Binding) -> Result<(), kube::Error> {
    let dp = delete_exactly(b.meta(), true);
    let name = b.meta().name.as_deref().unwrap_or_default();
    match b {
        Binding::Role(x) => role_bindings(c, x.metadata.namespace.as_deref())
            .delete(name, &dp)
            .await
            .map(drop),
        Binding::Cluster(_) => cluster_role_bindings(c).delete(name, &dp).await.map(drop),
    }
}

/// Replaces the binding (optimistically: its resource version must still be current).
async fn replace(c: &Client, b: &Binding) -> Result<(), kube::Error> {
    let name = b.meta().name.as_deref().unwrap_or_default();
    match b {
        Binding::Role(x) => role_bindings(c, x.metadata.namespace.as_deref())
            .replace(name, &post_params(), x)
            .await
            .map(drop),
        Binding::Cluster(x) => cluster_role_bindings(c)
            .replace(name, &post_params(), x)
            .await
            .map(drop),
    }
}

pub(super) async fn create(c: &Client, b: &Binding) -> Result<(), kube::Error> {
    match b {
        Binding::Role(x) => role_bindings(c, x.metadata.namespace.as_deref())
            .create(&post_params(), x)
            .await
            .map(drop),
        Binding::Cluster(x) => cluster_role_bindings(c)
            .create(&post_params(), x)
            .await
            .map(drop),
    }
}

/// Deletes a binding Keyward made (labelled so); one gone already is fine.
pub(super) async fn delete_ours(c: &Client, r: &BindingRef) -> Result<(), ConnectorError> {
    let Some(b) = get(c, r).await? else {
        return Ok(());
    };
    if !managed_by_keyward(b.meta()) {
        return Err(precondition(
            r,
            "it is not labelled as made by Keyward: left alone",
        ));
    }
    match delete(c, &b).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api(format!("delete {}", r.kind.resource()), r, e)),
    }
}

/// The Roles and ClusterRoles the bindings grant, each once (`{kind, name, missing: true}`
/// for one that does not exist).
pub(super) async fn granted_roles(
    c: &Client,
    bindings: &[Binding],
) -> Result<Vec<Value>, ConnectorError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for b in bindings {
        let r = b.role_ref();
        let ns = match r.kind.as_str() {
            "Role" => b.meta().namespace.clone(),
            _ => None,
        };
        if !seen.insert((r.kind.clone(), ns.clone(), r.name.clone())) {
            continue;
        }
        let found = match (&ns, r.kind.as_str()) {
            (Some(ns), "Role") => Api::<Role>::namespaced(c.clone(), ns)
                .get_opt(&r.name)
                .await
                .map(|o| o.map(|x| to_json(&x))),
            _ => Api::<ClusterRole>::all(c.clone())
                .get_opt(&r.name)
                .await
                .map(|o| o.map(|x| to_json(&x))),
        }
        .map_err(|e| api(format!("get {}", r.kind.to_lowercase()), &r.name, e))?;
        out.push(found.unwrap_or_else(
            || json!({"kind": r.kind, "namespace": ns, "name": r.name, "missing": true}),
        ));
    }
    Ok(out)
}

/// The bindings that grant to a service-account group the service account is in, as
/// `{binding, group}` (reported, not changed: they name others too).
pub(super) fn via_groups(all: &[Binding], sa: Sa<'_>) -> Vec<Value> {
    all.iter()
        .filter_map(|b| {
            b.group_of(sa)
                .map(|g| json!({"binding": b.reference().to_string(), "group": g}))
        })
        .collect()
}

/// A subject removed from a binding, and where it stood.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RemovedSubject {
    pub index: usize,
    pub subject: Subject,
}

/// A binding `remove_bindings` changed: deleted (the service account was its only subject)
/// or with the service account's subjects dropped. `object` is the binding as it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Removed {
    pub kind: BindingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub deleted: bool,
    pub subjects: Vec<RemovedSubject>,
    pub object: Value,
}

impl Removed {
    fn reference(&self) -> BindingRef {
        BindingRef {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// What `remove_bindings` returns for its undo.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct RemoveState {
    pub bindings: Vec<Removed>,
}

/// Removes the service account from every binding that names it. Stops at the first
/// failure, after putting back the bindings it had already changed.
pub(super) async fn remove(c: &Client, sa: Sa<'_>) -> Result<RemoveState, ConnectorError> {
    let mut state = RemoveState::default();
    for b in naming(c, sa).await? {
        match remove_one(c, b, sa).await {
            Ok(Some(r)) => state.bindings.push(r),
            Ok(None) => {}
            Err(e) if state.bindings.is_empty() => return Err(e),
            Err(e) => {
                let note = match restore(c, &state).await {
                    Ok(()) => "the bindings changed before it were put back".to_owned(),
                    Err(r) => {
                        format!("putting back the bindings changed before it failed too: {r}")
                    }
                };
                return Err(with_note(e, &note));
            }
        }
    }
    Ok(state)
}

/// Removes the service account from one binding, read again when someone changed it in
/// between; `None` when it no longer names the service account.
async fn remove_one(
    c: &Client,
    mut b: Binding,
    sa: Sa<'_>,
) -> Result<Option<Removed>, ConnectorError> {
    let r = b.reference();
    for _ in 0..RETRIES {
        let ns = b.meta().namespace.clone();
        let (removed, kept): (Vec<_>, Vec<_>) = b
            .subjects()
            .iter()
            .cloned()
            .enumerate()
            .partition(|(_, s)| subject_names(s, ns.as_deref(), sa));
        if removed.is_empty() {
            return Ok(None);
        }
        let deleted = kept.is_empty();
        let outcome = if deleted {
            delete(c, &b).await
        } else {
            let mut changed = b.clone();
            changed.set_subjects(kept.into_iter().map(|(_, s)| s).collect());
            replace(c, &changed).await
        };
        match outcome {
            Ok(()) => {
                return Ok(Some(Removed {
                    kind: r.kind,
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    deleted,
                    subjects: removed
                        .into_iter()
                        .map(|(index, subject)| RemovedSubject { index, subject })
                        .collect(),
                    object: b.to_json(),
                }));
            }
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) if is_conflict(&e) => match get(c, &r).await? {
                Some(now) => b = now,
                None => return Ok(None),
            },
            Err(e) => {
                let call = if deleted { "delete" } else { "update" };
                return Err(api(format!("{call} {}", r.kind.resource()), &r, e));
            }
        }
    }
    Err(gave_up("remove the subject", &r))
}

fn gave_up(what: &str, r: &BindingRef) -> ConnectorError {
    ConnectorError::Api {
        call: what.to_owned(),
        target: r.to_string(),
        message: format!("the binding kept changing: gave up after {RETRIES} conflicts"),
    }
}

/// Puts the bindings back as they were: a deleted one re-created (without what the server
/// sets), a removed subject put back at its place in one that is still there.
pub(super) async fn restore(c: &Client, state: &RemoveState) -> Result<(), ConnectorError> {
    for r in &state.bindings {
        restore_one(c, r).await?;
    }
    Ok(())
}

async fn restore_one(c: &Client, removed: &Removed) -> Result<(), ConnectorError> {
    let r = removed.reference();
    let original = Binding::from_json(removed.kind, removed.object.clone()).map_err(|e| {
        precondition(
            &r,
            format!("the binding kept in the step's state does not parse: {e}"),
        )
    })?;
    for _ in 0..RETRIES {
        let Some(live) = get(c, &r).await? else {
            let mut b = original.clone();
            fresh(b.meta_mut());
            match create(c, &b).await {
                Ok(()) => return Ok(()),
                Err(e) if is_already_exists(&e) => continue,
                Err(e) => return Err(api(format!("create {}", r.kind.resource()), &r, e)),
            }
        };
        if live.role_ref() != original.role_ref() {
            return Err(precondition(
                &r,
                format!(
                    "it now grants {} `{}`, not {} `{}` as it did: left alone",
                    live.role_ref().kind,
                    live.role_ref().name,
                    original.role_ref().kind,
                    original.role_ref().name
                ),
            ));
        }
        let mut subjects = live.subjects().to_vec();
        let mut changed = false;
        for rs in &removed.subjects {
            if !subjects.contains(&rs.subject) {
                subjects.insert(rs.index.min(subjects.len()), rs.subject.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        let mut b = live;
        b.set_subjects(subjects);
        match replace(c, &b).await {
            Ok(()) => return Ok(()),
            Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
            Err(e) => return Err(api(format!("update {}", r.kind.resource()), &r, e)),
        }
    }
    Err(gave_up("put the subject back", &r))
}

/// No binding names the service account any more.
pub(super) async fn verify_removed(c: &Client, sa: Sa<'_>) -> Result<Verified, ConnectorError> {
    let all = list_all(c).await?;
    let still: Vec<String> = all
        .iter()
        .filter(|b| b.names(sa))
        .map(|b| b.reference().to_string())
        .collect();
    let groups: Vec<String> = via_groups(&all, sa)
        .iter()
        .filter_map(|g| {
            Some(format!(
                "{} ({})",
                g.get("binding")?.as_str()?,
                g.get("group")?.as_str()?
            ))
        })
        .collect();
    let group_note = match groups.len() {
        0 => String::new(),
        _ => format!(
            "; still granted through its service-account groups by {} (not changed: they name every service account of the group)",
            names(&groups, 5)
        ),
    };
    Ok(if still.is_empty() {
        Verified {
            ok: true,
            observed: format!("no RoleBinding or ClusterRoleBinding names `{sa}`{group_note}"),
        }
    } else {
        Verified {
            ok: false,
            observed: format!("`{sa}` is still a subject of {}", names(&still, 5)),
        }
    })
}

/// Every binding in the state is back: it exists, grants the same role, and has the removed
/// subjects again (a re-created one: exactly its old subjects).
pub(super) async fn verify_restored(
    c: &Client,
    state: &RemoveState,
) -> Result<Verified, ConnectorError> {
    let mut wrong = Vec::new();
    for removed in &state.bindings {
        let r = removed.reference();
        let original = Binding::from_json(removed.kind, removed.object.clone()).ok();
        let live = get(c, &r).await?;
        let fine = match (&live, &original) {
            (Some(live), Some(original)) => {
                live.role_ref() == original.role_ref()
                    && removed
                        .subjects
                        .iter()
                        .all(|s| live.subjects().contains(&s.subject))
                    && (!removed.deleted || live.subjects() == original.subjects())
            }
            _ => false,
        };
        if !fine {
            wrong.push(r.to_string());
        }
    }
    let all: Vec<String> = state
        .bindings
        .iter()
        .map(|r| r.reference().to_string())
        .collect();
    Ok(if wrong.is_empty() {
        Verified {
            ok: true,
            observed: match all.len() {
                0 => "no binding had been changed".into(),
                _ => format!("back as they were: {}", names(&all, 5)),
            },
        }
    } else {
        Verified {
            ok: false,
            observed: format!("not as they were: {}", names(&wrong, 5)),
        }
    })
}

/// The forensic snapshot of one binding: the object and the role it grants.
pub(super) async fn snapshot_one(c: &Client, r: &BindingRef) -> Result<Value, ConnectorError> {
    let b = get(c, r).await?;
    let role = match &b {
        Some(b) => granted_roles(c, std::slice::from_ref(b)).await?.pop(),
        None => None,
    };
    Ok(json!({
        "binding": b.as_ref().map(Binding::to_json),
        "role": role,
    }))
}

/// What `delete_binding` returns for its undo: the binding as it was (`null` when it was
/// gone already, e.g. removed by the same plan's `remove_bindings`: then there is nothing to
/// do, nor to undo).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DeletedBinding {
    pub object: Value,
}

pub(super) async fn delete_one(
    c: &Client,
    r: &BindingRef,
) -> Result<DeletedBinding, ConnectorError> {
    let Some(b) = get(c, r).await? else {
        return Ok(DeletedBinding {
            object: Value::Null,
        });
    };
    match delete(c, &b).await {
        Ok(()) => Ok(DeletedBinding {
            object: b.to_json(),
        }),
        Err(e) if is_not_found(&e) => Ok(DeletedBinding {
            object: Value::Null,
        }),
        Err(e) => Err(api(format!("delete {}", r.kind.resource()), r, e)),
    }
}

pub(super) async fn verify_deleted(c: &Client, r: &BindingRef) -> Result<Verified, ConnectorError> {
    Ok(match get(c, r).await? {
        None => Verified {
            ok: true,
            observed: format!("binding `{r}` gone"),
        },
        Some(b) => Verified {
            ok: false,
            observed: format!(
                "binding `{r}` still exists (uid {})",
                b.meta().uid.as_deref().unwrap_or("?")
            ),
        },
    })
}

/// Re-creates the deleted binding as it was; one that exists again with the same role and
/// subjects is fine, one with others is left alone (an error).
pub(super) async fn recreate(
    c: &Client,
    r: &BindingRef,
    state: &DeletedBinding,
) -> Result<Verified, ConnectorError> {
    if state.object.is_null() {
        return Ok(Verified {
            ok: true,
            observed: format!("nothing to re-create: binding `{r}` was gone when the step ran"),
        });
    }
    let original = Binding::from_json(r.kind, state.object.clone()).map_err(|e| {
        precondition(
            r,
            format!("the binding kept in the step's state does not parse: {e}"),
        )
    })?;
    let mut b = original.clone();
    fresh(b.meta_mut());
    match create(c, &b).await {
        Ok(()) => {}
        Err(e) if is_already_exists(&e) => {}
        Err(e) => return Err(api(format!("create {}", r.kind.resource()), r, e)),
    }
    Ok(match get(c, r).await? {
        Some(live)
            if live.role_ref() == original.role_ref() && live.subjects() == original.subjects() =>
        {
            Verified {
                ok: true,
                observed: format!("binding `{r}` exists again as it was"),
            }
        }
        Some(_) => Verified {
            ok: false,
            observed: format!(
                "binding `{r}` exists with another role or other subjects: left alone"
            ),
        },
        None => Verified {
            ok: false,
            observed: format!("binding `{r}` is not there"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(subject, binding namespace, names app in ns "ci")`.
    #[test]
    fn which_subjects_name_the_account() {
        let sa = Sa {
            ns: "ci",
            name: "app",
        };
        let cases: [(serde_json::Value, Option<&str>, bool); 9] = [
            (
                json!({"kind": "ServiceAccount", "name": "app", "namespace": "ci"}),
                None,
                true,
            ),
            (
                json!({"kind": "ServiceAccount", "name": "app", "namespace": "ci"}),
                Some("other"),
                true,
            ),
            // In a RoleBinding, no namespace is the binding's own.
            (
                json!({"kind": "ServiceAccount", "name": "app"}),
                Some("ci"),
                true,
            ),
            (
                json!({"kind": "ServiceAccount", "name": "app"}),
                Some("other"),
                false,
            ),
            (
                json!({"kind": "ServiceAccount", "name": "app"}),
                None,
                false,
            ),
            (
                json!({"kind": "ServiceAccount", "name": "app", "namespace": "prod"}),
                Some("ci"),
                false,
            ),
            (
                json!({"kind": "User", "name": "system:serviceaccount:ci:app"}),
                None,
                true,
            ),
            (json!({"kind": "User", "name": "app"}), Some("ci"), false),
            (
                json!({"kind": "Group", "name": "system:serviceaccounts:ci"}),
                Some("ci"),
                false,
            ),
        ];
        for (subject, ns, want) in cases {
            let s: Subject = serde_json::from_value(subject.clone()).unwrap();
            assert_eq!(subject_names(&s, ns, sa), want, "{subject} in {ns:?}");
        }
    }

    #[test]
    fn a_service_account_group_is_reported_not_matched() {
        let b: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "all-sa", "namespace": "ci"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ci"}],
        }))
        .unwrap();
        let sa = Sa {
            ns: "ci",
            name: "app",
        };
        let b = Binding::Role(b);
        assert!(!b.names(sa));
        assert_eq!(
            via_groups(&[b], sa),
            [json!({"binding": "RoleBinding/ci/all-sa", "group": "system:serviceaccounts:ci"})]
        );
    }
}
