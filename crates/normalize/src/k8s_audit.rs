//! Kubernetes `audit.k8s.io` events → events and identity observations.
//!
//! The API server writes one line per stage of a request (`RequestReceived`,
//! `ResponseStarted`, `ResponseComplete`, `Panic`) with the same `auditID`; the event key is
//! the `auditID`, so the store keeps one event per request and the inventory counts it once.
//! EKS adds `user.extra` fields that tie a Kubernetes user to an IAM session (`arn`,
//! `canonicalArn`, `accessKeyId`, `sessionName`); bound service-account tokens carry
//! `authentication.kubernetes.io/pod-name` and `credential-id`.

use keyward_model::Reason;
use std::borrow::Cow;
use std::collections::BTreeMap;

use keyward_model::ids::{self, AccessKeyType};
use keyward_model::{
    Credential, CredentialKind, CredentialStatus, Diagnostic, Event, IdentityKind, Observation,
    Platform, SourceKind, time,
};
use serde::Deserialize;
use serde_json::json;

use crate::lenient::{LStr, List, Obj};
use crate::{Context, LineCounter, Output, Sink, json_error, sniff::trim_start};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct AuditEvent<'a> {
    kind: LStr<'a>,
    #[serde(rename = "auditID")]
    audit_id: LStr<'a>,
    stage: LStr<'a>,
    verb: LStr<'a>,
    request_uri: LStr<'a>,
    user: Obj<UserInfo<'a>>,
    impersonated_user: Obj<UserInfo<'a>>,
    #[serde(rename = "sourceIPs")]
    source_ips: List<LStr<'a>>,
    user_agent: LStr<'a>,
    object_ref: Obj<ObjectRef<'a>>,
    response_status: Obj<Status<'a>>,
    stage_timestamp: LStr<'a>,
    request_received_timestamp: LStr<'a>,
    /// `audit.k8s.io/v1beta1` events carry a single `timestamp`.
    timestamp: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct UserInfo<'a> {
    username: LStr<'a>,
    uid: LStr<'a>,
    groups: List<LStr<'a>>,
    extra: Obj<BTreeMap<String, List<LStr<'a>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct ObjectRef<'a> {
    resource: LStr<'a>,
    namespace: LStr<'a>,
    name: LStr<'a>,
    subresource: LStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Status<'a> {
    code: LStr<'a>,
    reason: LStr<'a>,
}

fn stage_rank(stage: Option<&str>) -> u8 {
    match stage {
        Some("RequestReceived") => 0,
        Some("ResponseStarted") => 1,
        Some("Panic") => 3,
        _ => 2,
    }
}

fn k8s(id: String, kind: IdentityKind, name: &str, cluster: &str) -> Observation {
    let mut o = Observation::new(id, Platform::Kubernetes, kind, name, SourceKind::K8sAudit);
    o.facts.cluster = Some(cluster.to_owned());
    o
}

fn first<'x>(extra: Option<&'x BTreeMap<String, List<LStr<'_>>>>, key: &str) -> Option<&'x str> {
    extra?.get(key)?.0.first()?.get()
}

/// Observations for a Kubernetes user; returns its canonical id.
fn user_observations(
    user: &UserInfo,
    cluster: &str,
    at: i64,
    used: bool,
    obs: &mut Vec<Observation>,
) -> Option<String> {
    let username = user.username.get()?;
    let extra = user.extra.get();
    let mut o = if let Some(rest) = username.strip_prefix("system:serviceaccount:") {
        let (ns, name) = rest.split_once(':')?;
        let mut o = k8s(
            ids::k8s_service_account(cluster, ns, name),
            IdentityKind::ServiceAccount,
            name,
            cluster,
        );
        o.facts.namespace = Some(ns.to_owned());
        if let Some(pod) = first(extra, "authentication.kubernetes.io/pod-name") {
            o.facts.details.insert("last_pod".into(), json!(pod));
        }
        // The pod's uid is the snapshot's `metadata.uid`: evidence of which cluster it is.
        if let Some(uid) = first(extra, "authentication.kubernetes.io/pod-uid") {
            o.facts.details.insert("last_pod_uid".into(), json!(uid));
        }
        if let Some(cred) = first(extra, "authentication.kubernetes.io/credential-id") {
            o.facts.credentials.push(Credential {
                id: cred.to_owned(),
                kind: CredentialKind::ServiceAccountToken,
                status: CredentialStatus::Unknown,
                created: None,
                last_used: used.then_some(at),
                last_used_region: None,
                last_used_service: None,
            });
        }
        o
    } else if let Some(node) = username.strip_prefix("system:node:") {
        k8s(
            ids::k8s_user(cluster, username),
            IdentityKind::KubernetesNode,
            node,
            cluster,
        )
    } else if username.starts_with("system:") || username.starts_with("eks:") {
        k8s(
            ids::k8s_user(cluster, username),
            IdentityKind::KubernetesSystem,
            username,
            cluster,
        )
    } else {
        k8s(
            ids::k8s_user(cluster, username),
            IdentityKind::KubernetesUser,
            username,
            cluster,
        )
    };
    o.facts.native_id = user.uid.owned();
    if used {
        o.used_at = Some(at);
    } else {
        o.seen_at = Some(at);
    }
    let groups: Vec<&str> = user.groups.0.iter().filter_map(LStr::get).collect();
    if !groups.is_empty() {
        o.facts.details.insert("groups".into(), json!(groups));
    }
    // EKS: the IAM principal behind this Kubernetes user.
    if let Some(arn) = first(extra, "arn") {
        let mut aws_side = Vec::new();
        let canonical = first(extra, "canonicalArn").and_then(ids::canonical_iam_arn);
        if let Some((acct, _, session)) = ids::split_assumed_role(arn) {
            let mut s = Observation::new(
                arn.to_owned(),
                Platform::Aws,
                IdentityKind::StsSession,
                session,
                SourceKind::K8sAudit,
            );
            s.facts.arn = Some(arn.to_owned());
            s.facts.account = Some(acct.to_owned());
            s.facts.parent = canonical.clone();
            s.used_at = o.used_at;
            s.seen_at = o.seen_at;
            s.facts.links.push(o.id.clone());
            aws_side.push(s);
        }
        if let Some(role) = &canonical {
            let mut r = Observation::new(
                role.clone(),
                Platform::Aws,
                IdentityKind::IamRole,
                role.rsplit('/').next().unwrap_or(role),
                SourceKind::K8sAudit,
            );
            r.facts.account = ids::Arn::parse(role).map(|a| a.account.to_owned());
            r.seen_at = Some(at);
            r.facts.links.push(o.id.clone());
            aws_side.push(r);
        }
        if let Some(key) = first(extra, "accessKeyId")
            && ids::access_key_type(key).is_some()
        {
            let kind = if ids::access_key_type(key) == Some(AccessKeyType::LongTerm) {
                IdentityKind::AccessKey
            } else {
                IdentityKind::TemporaryAccessKey
            };
            let mut k = Observation::new(
                key.to_owned(),
                Platform::Aws,
                kind,
                key,
                SourceKind::K8sAudit,
            );
            k.facts.account = ids::account_from_access_key(key);
            k.facts.parent = Some(arn.to_owned());
            k.seen_at = Some(at);
            aws_side.push(k);
        }
        o.facts.links.push(arn.to_owned());
        o.facts.details.insert(
            "aws".into(),
            json!({"arn": arn, "canonical_arn": first(extra, "canonicalArn"), "session_name": first(extra, "sessionName"), "access_key_id": first(extra, "accessKeyId")}),
        );
        obs.extend(aws_side);
    }
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// Normalizes one audit event line.
pub fn normalize_event(bytes: &[u8], ctx: &Context) -> Result<Option<Output<'static>>, Reason> {
    crate::depth::check(bytes)?;
    let ev: AuditEvent = sonic_rs::from_slice(bytes).map_err(json_error)?;
    from_event(&ev, bytes, ctx).map(|mut o| {
        o.raw = Some(std::borrow::Cow::Owned(bytes.to_vec()));
        Some(o)
    })
}

fn from_event(ev: &AuditEvent, bytes: &[u8], ctx: &Context) -> Result<Output<'static>, Reason> {
    if let Some(kind) = ev.kind.get()
        && kind != "Event"
    {
        return Err("`kind` is not `Event`".into());
    }
    let audit_id = ev
        .audit_id
        .owned()
        .unwrap_or_else(|| crate::content_id(bytes));
    // The request's time, identical in every stage of it (the stage's own time is not).
    let raw_time = ev
        .request_received_timestamp
        .get()
        .or(ev.stage_timestamp.get())
        .or(ev.timestamp.get())
        .ok_or("missing `stageTimestamp` / `requestReceivedTimestamp`")?;
    let at = time::parse(raw_time).ok_or(Reason::Invalid {
        field: "requestReceivedTimestamp",
        expected: "a timestamp",
    })?;
    let verb = ev.verb.get().ok_or(Reason::Missing("verb".into()))?;
    let cluster = ctx.cluster.as_str();
    let mut out = Output::default();
    let actor = ev
        .user
        .get()
        .and_then(|u| user_observations(u, cluster, at, true, &mut out.observations));
    let oref = ev.object_ref.get();
    let code: Option<u16> = ev
        .response_status
        .get()
        .and_then(|s| s.code.get())
        .and_then(|c| c.parse().ok());
    let failed = code.is_some_and(|c| c >= 400);
    if let Some(imp) = ev.impersonated_user.get()
        && let Some(id) = user_observations(imp, cluster, at, false, &mut out.observations)
        && let (Some(a), Some(last)) = (&actor, out.observations.last_mut())
    {
        last.facts
            .details
            .insert("impersonated_by".into(), json!(a));
        let _ = id;
    }
    // Service-account lifecycle seen in the audit trail.
    if let Some(r) = oref
        && r.resource.get() == Some("serviceaccounts")
        && !failed
        && ev.stage.get() != Some("RequestReceived")
        && let (Some(ns), Some(name)) = (r.namespace.get(), r.name.get())
    {
        let mut o = k8s(
            ids::k8s_service_account(cluster, ns, name),
            IdentityKind::ServiceAccount,
            name,
            cluster,
        );
        o.facts.namespace = Some(ns.to_owned());
        o.seen_at = Some(at);
        match (verb, r.subresource.get()) {
            ("create", None) => {
                o.facts.created = Some(at);
                o.facts.created_by = actor.clone();
            }
            ("delete", None) => o.facts.deleted = Some(at),
            ("create", Some("token")) => {
                o.facts.credentials.push(Credential {
                    id: format!("token@{}", time::format(at)),
                    kind: CredentialKind::ServiceAccountToken,
                    status: CredentialStatus::Active,
                    created: Some(at),
                    last_used: None,
                    last_used_region: None,
                    last_used_service: None,
                });
                o.facts
                    .details
                    .insert("token_requested_by".into(), json!(actor));
            }
            _ => {}
        }
        out.observations.push(o);
    }
    let resource = oref.and_then(|r| r.resource.get());
    let action = match (resource, oref.and_then(|r| r.subresource.get())) {
        (Some(res), Some(sub)) => format!("{verb} {res}/{sub}"),
        (Some(res), None) => format!("{verb} {res}"),
        (None, _) => format!("{verb} {}", ev.request_uri.get().unwrap_or("/")),
    };
    let target = oref.and_then(|r| match (r.namespace.get(), r.name.get()) {
        (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
        (None, Some(n)) => Some(n.to_owned()),
        (Some(ns), None) => Some(ns.to_owned()),
        (None, None) => None,
    });
    let extra = ev.user.get().and_then(|u| u.extra.get());
    let owned = |v: Option<String>| v.map(Cow::Owned);
    out.event = Some(Event {
        native_id: Cow::Owned(audit_id),
        source: SourceKind::K8sAudit,
        time: at,
        action: Cow::Owned(action),
        actor: owned(actor),
        source_ip: owned(ev.source_ips.0.first().and_then(LStr::owned)),
        user_agent: owned(ev.user_agent.owned()),
        region: None,
        account: Some(Cow::Owned(cluster.to_owned())),
        error_code: failed.then(|| {
            Cow::Owned(
                ev.response_status
                    .get()
                    .and_then(|s| s.reason.owned())
                    .unwrap_or_else(|| code.unwrap_or(0).to_string()),
            )
        }),
        target: owned(target),
        credential: owned(
            first(extra, "authentication.kubernetes.io/credential-id")
                .or(first(extra, "accessKeyId"))
                .map(str::to_owned),
        ),
        invoked_by: None,
        shared_id: None,
        stage: stage_rank(ev.stage.get()),
    });
    Ok(out)
}

/// An `EventList` (what the API server's audit webhook posts), or a bare array of events.
pub fn normalize_document(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let mut lines = LineCounter::new(doc);
    let d = trim_start(doc);
    let items: Option<&[u8]> = if d.starts_with(b"[") {
        Some(d)
    } else {
        let mut found = None;
        for entry in sonic_rs::to_object_iter(d) {
            match entry {
                Ok((k, v)) if k.as_ref() == "items" => {
                    let raw = v.as_raw_str().as_bytes();
                    let start = (raw.as_ptr() as usize).saturating_sub(d.as_ptr() as usize);
                    found = d.get(start..start + raw.len());
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    sink.reject(Diagnostic {
                        line: 1,
                        record: None,
                        reason: json_error(e),
                    });
                    return;
                }
            }
        }
        found
    };
    let Some(items) = items else {
        // A single event object.
        crate::emit(sink, normalize_event(d, ctx), 1, None);
        return;
    };
    for (idx, item) in sonic_rs::to_array_iter(items).enumerate() {
        match item {
            Ok(v) => {
                let raw = v.as_raw_str().as_bytes();
                let line = lines.line_of(raw);
                crate::emit(sink, normalize_event(raw, ctx), line, Some(idx as u64))
            }
            Err(e) => {
                sink.reject(Diagnostic {
                    line: lines.line,
                    record: Some(idx as u64),
                    reason: format!("{}; the rest of the document was skipped", json_error(e))
                        .into(),
                });
                return;
            }
        }
    }
}
