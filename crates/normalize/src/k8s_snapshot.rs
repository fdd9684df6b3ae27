//! `kubectl get serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,pods,deployments -A -o json`
//! (or `-o yaml`, or plain manifests) → service accounts with the bindings and workloads
//! that use them; RBAC objects and workloads are kept as snapshot objects.
//!
//! Accepts a `List` (and `*List` kinds), a single object, a JSON array, or multi-document
//! YAML. The cluster name comes from the [`Context`].

use std::collections::{BTreeMap, BTreeSet};

use keyward_model::{
    Diagnostic, IdentityKind, Observation, Platform, SnapshotObject, SourceKind, ids, time,
};
use serde_json::{Value, json};

use crate::{Context, Output, Sink, json_error, sniff::trim_start};

/// Annotations too large or too sensitive to carry in the inventory.
const DROPPED_ANNOTATIONS: [&str; 1] = ["kubectl.kubernetes.io/last-applied-configuration"];

const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Parses a document into its top-level objects, each with the line it starts on.
fn documents(doc: &[u8], sink: &mut dyn Sink) -> Vec<(u64, Value)> {
    let d = trim_start(doc);
    if d.starts_with(b"{") || d.starts_with(b"[") {
        if crate::reject_too_deep(doc, sink) {
            return Vec::new();
        }
        return match serde_json::from_slice::<Value>(d) {
            Ok(Value::Array(items)) => items.into_iter().map(|v| (1, v)).collect(),
            Ok(v) => vec![(1, v)],
            Err(e) => {
                sink.reject(Diagnostic {
                    line: e.line() as u64,
                    record: None,
                    reason: json_error(e),
                });
                Vec::new()
            }
        };
    }
    let Ok(text) = std::str::from_utf8(doc) else {
        sink.reject(Diagnostic {
            line: 1,
            record: None,
            reason: "not UTF-8 text".into(),
        });
        return Vec::new();
    };
    // Split on document markers ourselves so one broken document costs only itself.
    let mut out = Vec::new();
    let mut start_line = 1u64;
    let mut current = String::new();
    let flush = |buf: &mut String, line: u64, out: &mut Vec<(u64, Value)>, sink: &mut dyn Sink| {
        if buf.trim().is_empty()
            || buf
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            buf.clear();
            return;
        }
        match serde_saphyr::from_str_with_options::<Value>(buf, crate::depth::yaml_options()) {
            Ok(Value::Null) => {}
            Ok(v) => out.push((line, v)),
            Err(e) if crate::depth::yaml_too_deep(&e) => sink.reject(Diagnostic {
                line,
                record: None,
                reason: crate::TOO_DEEP.into(),
            }),
            Err(e) => sink.reject(Diagnostic {
                line,
                record: None,
                reason: format!("invalid YAML: {}", crate::parser_error(e)).into(),
            }),
        }
        buf.clear();
    };
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("---") {
            flush(&mut current, start_line, &mut out, sink);
            start_line = i as u64 + 2;
            continue;
        }
        if current.is_empty() && l.trim().is_empty() {
            start_line = i as u64 + 2;
            continue;
        }
        current.push_str(l);
        current.push('\n');
    }
    flush(&mut current, start_line, &mut out, sink);
    out
}

fn flatten(v: Value, out: &mut Vec<Value>) {
    let is_list = v
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && v.get("items").is_some();
    if is_list {
        if let Some(Value::Array(items)) = v.get("items").cloned() {
            for item in items {
                flatten(item, out);
            }
        }
    } else {
        out.push(v);
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !DROPPED_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect()
}

/// The pod spec of a workload, wherever its kind keeps it.
fn pod_spec(v: &Value, kind: &str) -> Option<Value> {
    match kind {
        "Pod" => v.get("spec").cloned(),
        "CronJob" => v.pointer("/spec/jobTemplate/spec/template/spec").cloned(),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => v.pointer("/spec/template/spec").cloned(),
        _ => None,
    }
}

#[derive(Default)]
struct SaFacts {
    bindings: BTreeSet<(String, String)>,
    workloads: BTreeSet<(String, String)>,
    token_mounted: Option<bool>,
}

/// Every top-level object becomes a snapshot object, except service accounts, which
/// become observations carrying the bindings and workloads that name them (pass 1 collects
/// those, pass 2 emits the accounts, then the ones only workloads mention).
pub fn normalize(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let cluster = ctx.cluster.as_str();
    // Pass 1: bindings and workloads per service account.
    let mut per_sa: BTreeMap<(String, String), SaFacts> = BTreeMap::new();
    let mut accounts: Vec<(u64, usize, Value)> = Vec::new();
    for (idx, (line, v)) in objects(doc, sink).into_iter().enumerate() {
        let Some((kind, name, ns)) = identify(&v, line, idx, sink) else {
            continue;
        };
        if kind == "ServiceAccount" {
            accounts.push((line, idx, v));
            continue;
        }
        match kind.as_str() {
            "RoleBinding" | "ClusterRoleBinding" => {
                bind_subjects(&v, &kind, &name, &ns, &mut per_sa);
            }
            _ => add_workload(&v, &kind, &name, &ns, &mut per_sa),
        }
        sink.accept(snapshot_object(cluster, kind, &name, ns.as_deref(), v));
    }
    // Pass 2: the service accounts themselves, then ones that only workloads mention.
    let mut seen = BTreeSet::new();
    for (line, idx, v) in accounts {
        let Some((key, o)) = service_account(cluster, line, idx, &v, &per_sa, sink) else {
            continue;
        };
        seen.insert(key);
        sink.accept(Output {
            event: None,
            observations: vec![o],
            ..Output::default()
        });
    }
    for ((ns, name), facts) in &per_sa {
        if seen.contains(&(ns.clone(), name.clone())) || facts.workloads.is_empty() {
            continue;
        }
        let o = sa_observation(cluster, ns, name, Some(facts));
        sink.accept(Output {
            event: None,
            observations: vec![o],
            ..Output::default()
        });
    }
}

/// Every object of the document, `List`s flattened, each with the line its document starts on;
/// a broken document is rejected into `sink` with that line. Public for `keyward check`,
/// which judges manifests object by object.
pub fn objects(doc: &[u8], sink: &mut dyn Sink) -> Vec<(u64, Value)> {
    let mut items = Vec::new();
    for (line, v) in documents(doc, sink) {
        let mut flat = Vec::new();
        flatten(v, &mut flat);
        items.extend(flat.into_iter().map(|v| (line, v)));
    }
    items
}

/// An object's `kind`, `metadata.name` and `metadata.namespace`; an object without a kind
/// or a name is rejected.
fn identify(
    v: &Value,
    line: u64,
    idx: usize,
    sink: &mut dyn Sink,
) -> Option<(String, String, Option<String>)> {
    let Some(kind) = str_at(v, &["kind"]).map(str::to_owned) else {
        sink.reject(Diagnostic {
            line,
            record: Some(idx as u64),
            reason: "object without `kind`".into(),
        });
        return None;
    };
    let Some(name) = str_at(v, &["metadata", "name"]).map(str::to_owned) else {
        sink.reject(Diagnostic {
            line,
            record: Some(idx as u64),
            reason: "an object without `metadata.name`".into(),
        });
        return None;
    };
    let ns = str_at(v, &["metadata", "namespace"]).map(str::to_owned);
    Some((kind, name, ns))
}

/// A `RoleBinding` or `ClusterRoleBinding`: the binding and its role, on every service
/// account among its subjects (in the binding's namespace unless the subject names one).
fn bind_subjects(
    v: &Value,
    kind: &str,
    name: &str,
    ns: &Option<String>,
    per_sa: &mut BTreeMap<(String, String), SaFacts>,
) {
    let role_ref = format!(
        "{} {}",
        str_at(v, &["roleRef", "kind"]).unwrap_or("Role"),
        str_at(v, &["roleRef", "name"]).unwrap_or("?")
    );
    let binding = match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    for subj in v
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_at(subj, &["kind"]) != Some("ServiceAccount") {
            continue;
        }
        let Some(sa) = str_at(subj, &["name"]) else {
            continue;
        };
        let sa_ns = str_at(subj, &["namespace"])
            .map(str::to_owned)
            .or_else(|| ns.clone())
            .unwrap_or_else(|| "default".into());
        per_sa
            .entry((sa_ns, sa.to_owned()))
            .or_default()
            .bindings
            .insert((binding.clone(), role_ref.clone()));
    }
}

/// A workload (any kind with a pod spec): the workload, and whether it mounts the token,
/// on the service account its pods run as.
fn add_workload(
    v: &Value,
    kind: &str,
    name: &str,
    ns: &Option<String>,
    per_sa: &mut BTreeMap<(String, String), SaFacts>,
) {
    let Some(spec) = pod_spec(v, kind) else {
        return;
    };
    let sa = str_at(&spec, &["serviceAccountName"])
        .or(str_at(&spec, &["serviceAccount"]))
        .unwrap_or("default");
    let ns = ns.clone().unwrap_or_else(|| "default".into());
    let facts = per_sa.entry((ns.clone(), sa.to_owned())).or_default();
    facts
        .workloads
        .insert((kind.to_owned(), format!("{ns}/{name}")));
    if let Some(m) = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        facts.token_mounted = Some(facts.token_mounted.unwrap_or(false) || m);
    } else if kind == "Pod" {
        facts.token_mounted = Some(true);
    }
}

/// Any object but a service account, kept whole as `k8s:<kind>` in the cluster.
fn snapshot_object(
    cluster: &str,
    kind: String,
    name: &str,
    ns: Option<&str>,
    v: Value,
) -> Output<'static> {
    let scope = Some(cluster.to_owned());
    let id = match ns {
        Some(ns) => format!("{cluster}/{ns}/{name}"),
        None => format!("{cluster}/{name}"),
    };
    Output {
        event: None,
        observations: Vec::new(),
        objects: vec![SnapshotObject {
            kind: format!("k8s:{kind}"),
            id,
            scope,
            doc: v,
        }],
        ..Output::default()
    }
}

/// A `ServiceAccount` object: its observation (with what pass 1 found for it, its labels,
/// annotations, IRSA role, token automount and secrets) and its `(namespace, name)`; a bad
/// `metadata.creationTimestamp` rejects it.
fn service_account(
    cluster: &str,
    line: u64,
    idx: usize,
    v: &Value,
    per_sa: &BTreeMap<(String, String), SaFacts>,
    sink: &mut dyn Sink,
) -> Option<((String, String), Observation)> {
    let ns = str_at(v, &["metadata", "namespace"])
        .unwrap_or("default")
        .to_owned();
    let name = str_at(v, &["metadata", "name"])
        .unwrap_or_default()
        .to_owned();
    let created = match str_at(v, &["metadata", "creationTimestamp"]) {
        None => None,
        Some(t) => match time::parse(t) {
            Some(ms) => Some(ms),
            None => {
                sink.reject(Diagnostic {
                    line,
                    record: Some(idx as u64),
                    reason: "`metadata.creationTimestamp` is not a timestamp".into(),
                });
                return None;
            }
        },
    };
    let mut o = sa_observation(cluster, &ns, &name, per_sa.get(&(ns.clone(), name.clone())));
    o.facts.created = created;
    o.facts.native_id = str_at(v, &["metadata", "uid"]).map(str::to_owned);
    o.facts.labels = string_map(v.pointer("/metadata/labels"));
    o.facts.annotations = string_map(v.pointer("/metadata/annotations"));
    if let Some(role_arn) = o.facts.annotations.get(IRSA_ANNOTATION).cloned() {
        o.facts.details.insert("irsa_role".into(), json!(role_arn));
        o.facts
            .details
            .insert("federation".into(), json!({"aws_role": role_arn}));
        o.facts.links.extend(ids::canonical_iam_arn(&role_arn));
    }
    if let Some(a) = v
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        o.facts.details.insert("automount_token".into(), json!(a));
    }
    let secrets: Vec<&str> = v
        .get("secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| str_at(s, &["name"]))
        .collect();
    if !secrets.is_empty() {
        o.facts.details.insert("secrets".into(), json!(secrets));
    }
    Some(((ns, name), o))
}

fn sa_observation(cluster: &str, ns: &str, name: &str, facts: Option<&SaFacts>) -> Observation {
    let mut o = Observation::new(
        ids::k8s_service_account(cluster, ns, name),
        Platform::Kubernetes,
        IdentityKind::ServiceAccount,
        name,
        SourceKind::K8sSnapshot,
    );
    o.facts.cluster = Some(cluster.to_owned());
    o.facts.namespace = Some(ns.to_owned());
    let f = facts.map_or_else(
        || (Vec::new(), Vec::new(), None),
        |f| {
            (
                f.bindings
                    .iter()
                    .map(|(b, r)| json!({"binding": b, "role": r}))
                    .collect::<Vec<_>>(),
                f.workloads
                    .iter()
                    .map(|(k, n)| json!({"kind": k, "name": n}))
                    .collect::<Vec<_>>(),
                f.token_mounted,
            )
        },
    );
    o.facts.details.insert("bindings".into(), Value::Array(f.0));
    o.facts
        .details
        .insert("workloads".into(), Value::Array(f.1));
    if let Some(m) = f.2 {
        o.facts
            .details
            .insert("token_mounted_in_pods".into(), json!(m));
    }
    o
}
