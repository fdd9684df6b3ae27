//! Time-bound access grants on Kubernetes: a RoleBinding or ClusterRoleBinding of one role
//! to one service account, labelled as Keyward's and annotated with the grant's id, so that
//! revocation deletes that binding and nothing else.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

use super::bindings::{self, Binding};
use super::common::{
    BindingRef, api, is_already_exists, keyward_labels, managed_by_keyward, precondition,
};
use crate::action::{BindingKind, GRANT_ANNOTATION, RoleKind};
use crate::{ConnectorError, Verified};

/// A `create_binding` action's fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct GrantBinding<'a> {
    pub kind: BindingKind,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub role_kind: RoleKind,
    pub role: &'a str,
    pub sa_namespace: &'a str,
    pub service_account: &'a str,
    pub grant: &'a str,
}

impl GrantBinding<'_> {
    pub fn reference(&self) -> BindingRef {
        BindingRef {
            kind: self.kind,
            namespace: self.namespace.map(str::to_owned),
            name: self.name.to_owned(),
        }
    }

    fn role_ref(&self) -> RoleRef {
        RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: self.role_kind.as_str().into(),
            name: self.role.to_owned(),
        }
    }

    fn subject(&self) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: self.service_account.to_owned(),
            namespace: Some(self.sa_namespace.to_owned()),
            api_group: None,
        }
    }

    /// The binding as Keyward creates it.
    fn object(&self) -> Binding {
        let metadata = ObjectMeta {
            name: Some(self.name.to_owned()),
            namespace: match self.kind {
                BindingKind::RoleBinding => self.namespace.map(str::to_owned),
                BindingKind::ClusterRoleBinding => None,
            },
            labels: Some(keyward_labels()),
            annotations: Some([(GRANT_ANNOTATION.to_owned(), self.grant.to_owned())].into()),
            ..ObjectMeta::default()
        };
        match self.kind {
            BindingKind::RoleBinding => Binding::Role(RoleBinding {
                metadata,
                role_ref: self.role_ref(),
                subjects: Some(vec![self.subject()]),
            }),
            BindingKind::ClusterRoleBinding => Binding::Cluster(ClusterRoleBinding {
                metadata,
                role_ref: self.role_ref(),
                subjects: Some(vec![self.subject()]),
            }),
        }
    }

    /// Whether a live binding is this grant's: Keyward's label, the grant's annotation, the
    /// same role and the one service account.
    fn is_ours(&self, b: &Binding) -> bool {
        let annotated = b
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(GRANT_ANNOTATION))
            .is_some_and(|g| g == self.grant);
        annotated
            && managed_by_keyward(b.meta())
            && b.role_ref() == &self.role_ref()
            && matches!(b.subjects(), [s] if s.kind == "ServiceAccount"
                && s.name == self.service_account
                && s.namespace.as_deref() == Some(self.sa_namespace))
    }
}

/// The binding (none before the grant) and the role it would grant.
pub(super) async fn snapshot(c: &Client, g: GrantBinding<'_>) -> Result<Value, ConnectorError> {
    let mut doc = bindings::snapshot_one(c, &g.reference()).await?;
    let role = role_exists(c, g).await?;
    if let Some(m) = doc.as_object_mut() {
        m.insert("target".into(), json!(g.reference().to_string()));
        m.insert(
            "granted_role".into(),
            json!({"kind": g.role_kind.as_str(), "name": g.role, "exists": role}),
        );
    }
    Ok(doc)
}

async fn role_exists(c: &Client, g: GrantBinding<'_>) -> Result<bool, ConnectorError> {
    let r = g.reference();
    match g.role_kind {
        RoleKind::Role => {
            let Some(ns) = g.namespace else {
                return Err(precondition(
                    &r,
                    "a Role can only be granted by a RoleBinding in its namespace",
                ));
            };
            Api::<Role>::namespaced(c.clone(), ns)
                .get_opt(g.role)
                .await
                .map(|x| x.is_some())
                .map_err(|e| api("get role", &r, e))
        }
        RoleKind::ClusterRole => Api::<ClusterRole>::all(c.clone())
            .get_opt(g.role)
            .await
            .map(|x| x.is_some())
            .map_err(|e| api("get clusterrole", &r, e)),
    }
}

/// Creates the binding. One of that name that is this grant's (a retried step) is fine;
/// any other is a precondition failure, left alone.
pub(super) async fn apply(c: &Client, g: GrantBinding<'_>) -> Result<Value, ConnectorError> {
    let r = g.reference();
    if !role_exists(c, g).await? {
        return Err(precondition(
            &r,
            format!("no {} `{}`", g.role_kind.as_str(), g.role),
        ));
    }
    if let Some(b) = bindings::get(c, &r).await? {
        if g.is_ours(&b) {
            return Ok(json!({"created": true}));
        }
        return Err(precondition(
            &r,
            "a binding of that name exists already and is not this grant's: left alone",
        ));
    }
    match bindings::create(c, &g.object()).await {
        Ok(()) => Ok(json!({"created": true})),
        Err(e) if is_already_exists(&e) => Err(precondition(
            &r,
            "a binding of that name was created meanwhile: left alone",
        )),
        Err(e) => Err(api(format!("create {}", r.kind.resource()), &r, e)),
    }
}

/// Reads the binding back: present, and this grant's.
pub(super) async fn verify(c: &Client, g: GrantBinding<'_>) -> Result<Verified, ConnectorError> {
    let r = g.reference();
    Ok(match bindings::get(c, &r).await? {
        Some(b) if g.is_ours(&b) => Verified {
            ok: true,
            observed: format!(
                "binding `{r}` grants {} {} to {}/{}",
                g.role_kind.as_str(),
                g.role,
                g.sa_namespace,
                g.service_account
            ),
        },
        Some(_) => Verified {
            ok: false,
            observed: format!("binding `{r}` exists but is not this grant's"),
        },
        None => Verified {
            ok: false,
            observed: format!("no binding `{r}`"),
        },
    })
}

/// Revokes: deletes the binding when it is still this grant's (one changed by someone else is
/// left, an error), then reads back that it is gone.
pub(super) async fn undo(c: &Client, g: GrantBinding<'_>) -> Result<Verified, ConnectorError> {
    let r = g.reference();
    match bindings::get(c, &r).await? {
        None => {}
        Some(b) if g.is_ours(&b) => bindings::delete_ours(c, &r).await?,
        Some(_) => {
            return Err(precondition(
                &r,
                "the binding is no longer the one this grant created: left alone",
            ));
        }
    }
    bindings::verify_deleted(c, &r).await
}
