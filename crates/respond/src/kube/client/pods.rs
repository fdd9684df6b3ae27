//! The pods that run as a service account and what owns them (`restart_pods`, and the
//! workloads in a snapshot). Restarting is deleting: a controller makes new pods (which get
//! no old token); a bare pod is gone for good, and the result says so.
//!
//! Pods and workloads go into snapshots as summaries — metadata, service account, images —
//! never whole: a pod spec may carry secret values in its environment.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::{
    Sa, api, controller, delete_exactly, is_not_found, meta_summary, names, wait_until,
};
use crate::{ConnectorError, Verified};

/// The pods whose `spec.serviceAccountName` is the service account.
pub(super) async fn running_as(c: &Client, sa: Sa<'_>) -> Result<Vec<Pod>, ConnectorError> {
    let lp = ListParams::default().fields(&format!("spec.serviceAccountName={}", sa.name));
    Ok(Api::<Pod>::namespaced(c.clone(), sa.ns)
        .list(&lp)
        .await
        .map_err(|e| api("list pods", sa, e))?
        .items)
}

fn containers(t: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Value {
    let spec = t.map(|s| {
        s.containers
            .iter()
            .map(|c| json!({"name": c.name, "image": c.image}))
            .collect::<Vec<_>>()
    });
    json!(spec.unwrap_or_default())
}

pub(super) fn pod_summary(p: &Pod) -> Value {
    let spec = p.spec.as_ref();
    json!({
        "kind": "Pod",
        "metadata": meta_summary(&p.metadata),
        "serviceAccountName": spec.and_then(|s| s.service_account_name.clone()),
        "nodeName": spec.and_then(|s| s.node_name.clone()),
        "containers": containers(spec),
        "phase": p.status.as_ref().and_then(|s| s.phase.clone()),
        "startTime": p.status.as_ref().and_then(|s| s.start_time.clone()),
    })
}

fn template_summary(t: Option<&PodTemplateSpec>) -> Value {
    let spec = t.and_then(|t| t.spec.as_ref());
    json!({
        "serviceAccountName": spec.map(template_sa_of),
        "containers": containers(spec),
    })
}

/// The service account a pod spec runs as (`serviceAccountName`, the deprecated
/// `serviceAccount`, else `default`).
pub(super) fn template_sa_of(s: &k8s_openapi::api::core::v1::PodSpec) -> String {
    s.service_account_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| s.service_account.clone().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "default".into())
}

pub(super) fn replica_set_summary(rs: &ReplicaSet) -> Value {
    json!({
        "kind": "ReplicaSet",
        "metadata": meta_summary(&rs.metadata),
        "replicas": rs.spec.as_ref().and_then(|s| s.replicas),
        "template": template_summary(rs.spec.as_ref().and_then(|s| s.template.as_ref())),
    })
}

pub(super) fn deployment_summary(d: &Deployment) -> Value {
    json!({
        "kind": "Deployment",
        "metadata": meta_summary(&d.metadata),
        "replicas": d.spec.as_ref().and_then(|s| s.replicas),
        "template": template_summary(d.spec.as_ref().map(|s| &s.template)),
        "observedGeneration": d.status.as_ref().and_then(|s| s.observed_generation),
    })
}

/// The pods' owners up the chain (ReplicaSet → Deployment), each once; an owner of another
/// kind (StatefulSet, DaemonSet, Job) as its owner reference.
pub(super) async fn owners(
    c: &Client,
    ns: &str,
    pods: &[Pod],
) -> Result<Vec<Value>, ConnectorError> {
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), ns);
    let deps: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in pods {
        let Some(o) = controller(&p.metadata) else {
            continue;
        };
        if !seen.insert(o.uid.clone()) {
            continue;
        }
        if o.kind != "ReplicaSet" {
            out.push(
                json!({"kind": o.kind, "name": o.name, "uid": o.uid, "apiVersion": o.api_version}),
            );
            continue;
        }
        let Some(rs) = rss
            .get_opt(&o.name)
            .await
            .map_err(|e| api("get replicaset", format!("{ns}/{}", o.name), e))?
        else {
            out.push(json!({"kind": "ReplicaSet", "name": o.name, "uid": o.uid, "missing": true}));
            continue;
        };
        out.push(replica_set_summary(&rs));
        let Some(d) = controller(&rs.metadata).filter(|d| d.kind == "Deployment") else {
            continue;
        };
        if !seen.insert(d.uid.clone()) {
            continue;
        }
        match deps
            .get_opt(&d.name)
            .await
            .map_err(|e| api("get deployment", format!("{ns}/{}", d.name), e))?
        {
            Some(d) => out.push(deployment_summary(&d)),
            None => out
                .push(json!({"kind": "Deployment", "name": d.name, "uid": d.uid, "missing": true})),
        }
    }
    Ok(out)
}

/// A deleted pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeletedPod {
    pub name: String,
    pub uid: String,
    /// `Kind/name` of its controller; none for a bare pod (deleted, not recreated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// What `restart_pods` did (it cannot be undone: the state is for the record).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct RestartState {
    pub pods: Vec<DeletedPod>,
}

impl RestartState {
    fn bare(&self) -> Vec<&str> {
        self.pods
            .iter()
            .filter(|p| p.owner.is_none())
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// Deletes every pod running as the service account (each as it was read: a pod re-made
/// under the same name since is not touched).
pub(super) async fn restart(c: &Client, sa: Sa<'_>) -> Result<RestartState, ConnectorError> {
    let pods_api: Api<Pod> = Api::namespaced(c.clone(), sa.ns);
    let mut state = RestartState::default();
    for p in running_as(c, sa).await? {
        let name = p.metadata.name.clone().unwrap_or_default();
        match pods_api
            .delete(&name, &delete_exactly(&p.metadata, false))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(api(format!("delete pod `{name}`"), sa, e)),
        }
        state.pods.push(DeletedPod {
            name,
            uid: p.metadata.uid.clone().unwrap_or_default(),
            owner: controller(&p.metadata).map(|o| format!("{}/{}", o.kind, o.name)),
        });
    }
    Ok(state)
}

/// The deleted pods' uids are gone (waiting up to `wait` for pods still terminating); says
/// which pods were made since and which bare pods were not recreated.
pub(super) async fn verify(
    c: &Client,
    sa: Sa<'_>,
    done: Option<&RestartState>,
    wait: Duration,
) -> Result<Verified, ConnectorError> {
    let Some(done) = done else {
        return Ok(Verified {
            ok: false,
            observed: format!(
                "cannot tell old pods of `{sa}` from new ones: this connector restarted none in this process"
            ),
        });
    };
    let old: BTreeMap<&str, &str> = done
        .pods
        .iter()
        .map(|p| (p.uid.as_str(), p.name.as_str()))
        .collect();
    let (gone, (left, new)) = wait_until(wait, async || {
        let now = running_as(c, sa).await?;
        let left: Vec<String> = now
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .filter_map(|u| old.get(u).map(|n| (*n).to_owned()))
            .collect();
        let new: Vec<String> = now
            .iter()
            .filter(|p| {
                !p.metadata
                    .uid
                    .as_deref()
                    .is_some_and(|u| old.contains_key(u))
            })
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        Ok((left.is_empty(), (left, new)))
    })
    .await?;
    if !gone {
        return Ok(Verified {
            ok: false,
            observed: format!(
                "pod(s) {} of `{sa}` still there after {} s",
                names(&left, 5),
                wait.as_secs()
            ),
        });
    }
    let mut observed = match done.pods.len() {
        0 => format!("no pod ran as `{sa}`"),
        n => format!("{n} pod(s) of `{sa}` deleted, their uids gone"),
    };
    if !new.is_empty() {
        observed.push_str(&format!(
            "; {} made since by their controllers: {}",
            new.len(),
            names(&new, 5)
        ));
    }
    let bare = done.bare();
    if !bare.is_empty() {
        observed.push_str(&format!(
            "; bare pod(s) {} deleted, not recreated",
            names(&bare, 5)
        ));
    }
    Ok(Verified { ok: true, observed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_a_template_runs_as() {
        let cases = [
            (json!({"serviceAccountName": "app"}), "app"),
            (json!({"serviceAccount": "legacy"}), "legacy"),
            (
                json!({"serviceAccountName": "", "serviceAccount": "legacy"}),
                "legacy",
            ),
            (json!({}), "default"),
        ];
        for (mut spec, want) in cases {
            spec["containers"] = json!([]);
            let s: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(spec).unwrap();
            assert_eq!(template_sa_of(&s), want);
        }
    }

    #[test]
    fn a_pod_summary_keeps_no_environment() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"env\": \"secret\"}"}},
            "spec": {"serviceAccountName": "app", "containers": [
                {"name": "app", "image": "registry.example/app:1", "env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}
            ]},
        }))
        .unwrap();
        let s = pod_summary(&p).to_string();
        assert!(!s.contains("hunter2") && !s.contains("secret"), "{s}");
        assert!(s.contains("registry.example/app:1"));
    }
}
