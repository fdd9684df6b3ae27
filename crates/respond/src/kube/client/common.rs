//! What every Kubernetes action shares: the service account and binding references, errors
//! that name the call and the target, waiting for a controller, and objects made fit to be
//! created again.

use std::fmt;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PatchParams, PostParams, Preconditions};
use serde_json::Value;

use crate::ConnectorError;
use crate::action::{BindingKind, MANAGED_BY_LABEL};

/// The field manager Keyward's writes are recorded under (`metadata.managedFields`).
pub(super) const FIELD_MANAGER: &str = "keyward";
/// The annotation `kubectl apply` keeps the last applied manifest in: a secret's or a pod
/// template's may hold secret values, so it never goes into a snapshot.
pub(super) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The value of [`MANAGED_BY_LABEL`] on what Keyward creates.
pub(super) const MANAGED_BY: &str = "keyward";
/// How often a read-modify-write is tried again when someone else changed the object.
pub(super) const RETRIES: usize = 5;
/// How often a wait reads the platform again.
const POLL: Duration = Duration::from_millis(250);

/// A service account: its namespace and name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sa<'a> {
    pub ns: &'a str,
    pub name: &'a str,
}

impl Sa<'_> {
    /// The user name its tokens authenticate as.
    pub fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.ns, self.name)
    }
}

impl fmt::Display for Sa<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

/// One binding, as `Kind/namespace/name` (`ClusterRoleBinding/name`): the form of
/// [`crate::Action::RemoveBindings`]' `known` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BindingRef {
    pub kind: BindingKind,
    /// Set for a RoleBinding, never for a ClusterRoleBinding.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{:?}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{:?}/{}", self.kind, self.name),
        }
    }
}

/// A failed API call: the call, the target and the server's message (which never holds a
/// credential: a token is only ever in a request header).
pub(super) fn api(
    call: impl Into<String>,
    target: impl fmt::Display,
    e: kube::Error,
) -> ConnectorError {
    let message = match &e {
        kube::Error::Api(s) if !s.message.is_empty() => format!("{} ({})", s.message, s.code),
        _ => e.to_string(),
    };
    ConnectorError::Api {
        call: call.into(),
        target: target.to_string(),
        message,
    }
}

/// A precondition that does not hold.
pub(super) fn precondition(
    target: impl fmt::Display,
    message: impl Into<String>,
) -> ConnectorError {
    ConnectorError::Precondition {
        target: target.to_string(),
        message: message.into(),
    }
}

/// The error with a note appended (what was rolled back after it).
pub(super) fn with_note(e: ConnectorError, note: &str) -> ConnectorError {
    match e {
        ConnectorError::Api {
            call,
            target,
            message,
        } => ConnectorError::Api {
            call,
            target,
            message: format!("{message}; {note}"),
        },
        ConnectorError::Precondition { target, message } => ConnectorError::Precondition {
            target,
            message: format!("{message}; {note}"),
        },
        ConnectorError::Unavailable(p, m) => ConnectorError::Unavailable(p, format!("{m}; {note}")),
        ConnectorError::Refused(m) => ConnectorError::Refused(format!("{m}; {note}")),
    }
}

/// Whether Keyward made the object (it carries `app.kubernetes.io/managed-by: keyward`).
pub(super) fn managed_by_keyward(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

/// The labels of an object Keyward makes.
pub(super) fn keyward_labels() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned())])
}

pub(super) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

pub(super) fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_conflict())
}

pub(super) fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_already_exists())
}

pub(super) fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.into()),
    }
}

pub(super) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// A delete that only happens to the object as it was read (same uid and, when given, same
/// resource version): one re-created or changed since is left alone (409 Conflict).
pub(super) fn delete_exactly(meta: &ObjectMeta, with_version: bool) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: if with_version {
                meta.resource_version.clone()
            } else {
                None
            },
        }),
        ..DeleteParams::default()
    }
}

/// Clears what the server sets, so the object can be created again as it was.
pub(super) fn fresh(meta: &mut ObjectMeta) {
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    meta.self_link = None;
    meta.generation = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
}

/// Metadata for a snapshot of an object whose body may hold secrets (a secret, a pod, a
/// workload): without the last applied manifest and without the managed fields.
pub(super) fn meta_summary(meta: &ObjectMeta) -> Value {
    let mut m = meta.clone();
    m.managed_fields = None;
    if let Some(a) = m.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    to_json(&m)
}

/// An object as JSON (a typed Kubernetes object always serializes; `null` if not).
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The owner that controls the object (`controller: true`).
pub(super) fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.controller == Some(true))
}

/// Reads until `check` says done or `wait` has passed; returns the last reading and whether
/// it was done.
pub(super) async fn wait_until<T>(
    wait: Duration,
    mut check: impl AsyncFnMut() -> Result<(bool, T), ConnectorError>,
) -> Result<(bool, T), ConnectorError> {
    let start = tokio::time::Instant::now();
    loop {
        let (done, value) = check().await?;
        if done || start.elapsed() >= wait {
            return Ok((done, value));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `a`, `b` and `c` as `` `a`, `b`, `c` `` (at most `max`, then how many more).
pub(super) fn names<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(max)
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    if items.len() > max {
        out.push(format!("{} more", items.len() - max));
    }
    out.join(", ")
}
