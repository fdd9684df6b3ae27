//! The Kubernetes connector against a real API server (kube-apiserver and
//! kube-controller-manager 1.20 from `shared/tools/k8s/kube-up`), driven through
//! `execute` and `undo` as the CLI drives it. Reads `KEYWARD_TEST_KUBE_URL`,
//! `KEYWARD_TEST_KUBE_TOKEN` and `KEYWARD_TEST_KUBE_CA`; without them each test says it was
//! skipped. Each test works in namespaces of its own.
#![cfg(feature = "kubernetes")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use keyward_graph::{Graph, Inventory};
use keyward_model::time::Millis;
use keyward_model::{Event, Identity, IdentityKind, Platform, SourceKind};
use keyward_respond::action::{Action, BindingKind};
use keyward_respond::execute::{Connectors, Phase, Recorder, execute, undo};
use keyward_respond::kube::{KubeConnector, KubeOptions, RolloutCheck};
use keyward_respond::plan::{self, K8sStrategy, Plan, PlanStatus, Protected, Request};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

/// 2026-05-29T09:06:40Z: plans and replacement names are made as of it.
const NOW: Millis = 1_780_045_600_000;

/// The connector for the test cluster, built from the explicit variables (the process
/// environment is not changed: tests run in parallel).
async fn connector() -> Option<KubeConnector> {
    let Ok(url) = std::env::var("KEYWARD_TEST_KUBE_URL") else {
        println!("skipped: KEYWARD_TEST_KUBE_URL not set");
        return None;
    };
    let token = std::env::var("KEYWARD_TEST_KUBE_TOKEN").expect("KEYWARD_TEST_KUBE_TOKEN");
    let ca = std::env::var("KEYWARD_TEST_KUBE_CA").expect("KEYWARD_TEST_KUBE_CA");
    let kubeconfig: Kubeconfig = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    }))
    .unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let k = KubeConnector::from_config(config).unwrap();
    // No kubelet here: a rollout is done when its new ReplicaSet runs as the replacement.
    Some(k.with_options(KubeOptions {
        wait: Duration::from_secs(60),
        rollout: RolloutCheck::NewReplicaSet,
    }))
}

fn connectors(k: KubeConnector) -> Connectors {
    Connectors {
        kube: Some(k),
        ..Connectors::default()
    }
}

/// Keeps what execution records, as the store would.
#[derive(Default)]
struct Mem {
    evidence: Vec<Value>,
    steps: Vec<(usize, Phase, PlanStatus)>,
}

impl Recorder for Mem {
    fn evidence(&mut self, _plan: &Plan, doc: &Value) -> Result<String, String> {
        self.evidence.push(doc.clone());
        Ok(format!("evidence-{}", self.evidence.len()))
    }

    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String> {
        self.steps.push((n, phase, plan.status));
        Ok(())
    }
}

fn clock() -> Millis {
    NOW + 60_000
}

fn service_account(cluster: &str, ns: &str, name: &str) -> Identity {
    let mut i = Identity::new(
        format!("k8s:{cluster}/system:serviceaccount:{ns}:{name}"),
        Platform::Kubernetes,
        IdentityKind::ServiceAccount,
        name.to_owned(),
    );
    i.cluster = Some(cluster.to_owned());
    i.namespace = Some(ns.to_owned());
    i
}

fn build(
    identity: Identity,
    k8s: K8sStrategy,
    since: Option<Millis>,
    events: &[Event<'static>],
) -> Plan {
    let id = identity.id.clone();
    let inv = Inventory::new(vec![identity]);
    let protected = Protected::new(&[]).unwrap();
    plan::build(
        &inv,
        &Graph::new(),
        &Request {
            identity: &id,
            finding: None,
            since,
            now: NOW,
            actor: "test:kube_api",
            protected: &protected,
            k8s,
            events,
        },
    )
    .unwrap()
}

async fn create<K>(api: &Api<K>, v: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v).unwrap();
    // A namespace made again right after it was deleted can refuse content for a moment
    // ("being terminated", from the admission plugin's cache).
    let mut last = None;
    for _ in 0..40 {
        match api.create(&PostParams::default(), &obj).await {
            Ok(o) => return o,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("create {:?}: {last:?}", obj.meta().name)
}

/// A fresh namespace (an old one of the same name, from an earlier run, deleted first).
async fn namespace(c: &Client, name: &str) {
    let nss: Api<Namespace> = Api::all(c.clone());
    if nss.get_opt(name).await.unwrap().is_some() {
        let _ = nss.delete(name, &DeleteParams::default()).await;
        eventually(&format!("namespace {name} deleted"), async || {
            nss.get_opt(name).await.unwrap().is_none()
        })
        .await;
    }
    create(&nss, json!({"metadata": {"name": name}})).await;
}

async fn drop_namespace(c: &Client, name: &str) {
    let _ = Api::<Namespace>::all(c.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

async fn cluster_binding(c: &Client, v: Value) -> ClusterRoleBinding {
    let api: Api<ClusterRoleBinding> = Api::all(c.clone());
    let name = v["metadata"]["name"].as_str().unwrap().to_owned();
    let _ = api.delete(&name, &DeleteParams::default()).await;
    create(&api, v).await
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..240 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The token secrets of a service account (with data: the test compares against it).
async fn token_secrets(c: &Client, ns: &str, sa: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(c.clone(), ns)
        .list(&ListParams::default().fields("type=kubernetes.io/service-account-token"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| {
            s.metadata.annotations.as_ref().unwrap()["kubernetes.io/service-account.name"] == sa
        })
        .collect()
}

async fn pods_of(c: &Client, ns: &str, sa: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(c.clone(), ns)
        .list(&ListParams::default().fields(&format!("spec.serviceAccountName={sa}")))
        .await
        .unwrap()
        .items
}

fn uids<T: kube::Resource>(items: &[T]) -> BTreeSet<String> {
    items.iter().filter_map(|i| i.meta().uid.clone()).collect()
}

fn deployment(name: &str, sa: &str, replicas: i32) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "serviceAccountName": sa,
                    "containers": [{
                        "name": "app",
                        "image": "registry.example/app:1",
                        "env": [{"name": "DB_PASSWORD", "value": "hunter2-in-the-template"}],
                    }],
                },
            },
        },
    })
}

fn subjects_of(v: &Value) -> Value {
    v["subjects"].clone()
}

/// Containment: bindings (one deleted, one shared with others only losing the account),
/// token secrets, pods; the snapshot keeps the bindings and no token; undo puts the
/// bindings back exactly.
#[tokio::test]
async fn contain_removes_bindings_tokens_and_pods_and_undo_restores_the_bindings() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-contain";
    let crb = "kw-contain-shared";
    namespace(&c, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    create(&sas, json!({"metadata": {"name": "app"}})).await;
    create(&sas, json!({"metadata": {"name": "other"}})).await;
    create(
        &Api::<Role>::namespaced(c.clone(), ns),
        json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
    )
    .await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    create(
        &rbs,
        json!({"metadata": {"name": "app-read"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": ns}]}),
    )
    .await;
    // A subject without a namespace means the binding's own (as the authorizer reads it).
    create(
        &rbs,
        json!({"metadata": {"name": "app-implicit"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "app"}]}),
    )
    .await;
    let shared_subjects = json!([
        {"kind": "ServiceAccount", "name": "other", "namespace": ns},
        {"kind": "ServiceAccount", "name": "app", "namespace": ns},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
    ]);
    cluster_binding(
        &c,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": shared_subjects}),
    )
    .await;
    create(
        &Api::<Deployment>::namespaced(c.clone(), ns),
        deployment("web", "app", 2),
    )
    .await;
    eventually("the token secret of app", async || {
        !token_secrets(&c, ns, "app").await.is_empty()
    })
    .await;
    eventually("two pods of web", async || {
        pods_of(&c, ns, "app").await.len() == 2
    })
    .await;
    let old_secrets = token_secrets(&c, ns, "app").await;
    let old_tokens: Vec<String> = old_secrets
        .iter()
        .map(|s| String::from_utf8(s.data.as_ref().unwrap()["token"].0.clone()).unwrap())
        .collect();
    let old_pods = uids(&pods_of(&c, ns, "app").await);

    let mut plan = build(
        service_account("test", ns, "app"),
        K8sStrategy::Contain,
        None,
        &[],
    );
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        ["remove_bindings", "delete_token_secrets", "restart_pods"]
    );
    let cs = connectors(k);
    let mut rec = Mem::default();
    execute(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    for s in &plan.steps {
        let r = s.result.as_ref().unwrap();
        assert!(r.ok, "step {} not ok: {r:?}", s.n);
        assert!(r.verified.as_ref().unwrap().ok);
    }

    // The snapshot: the bindings whole, the token secrets' metadata, never a token.
    let doc = &rec.evidence[0];
    let target = &doc["targets"][format!("kubernetes:{ns}/serviceaccount/app")];
    assert_eq!(target["service_account"]["metadata"]["name"], "app");
    let bound: BTreeSet<String> = target["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}/{}",
                b["kind"].as_str().unwrap(),
                b["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        bound,
        BTreeSet::from([
            "RoleBinding/app-read".to_owned(),
            "RoleBinding/app-implicit".to_owned(),
            format!("ClusterRoleBinding/{crb}"),
        ])
    );
    let roles: BTreeSet<&str> = target["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, BTreeSet::from(["reader", "view"]));
    let secrets = target["token_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), old_secrets.len());
    assert_eq!(secrets[0]["type"], "kubernetes.io/service-account-token");
    assert!(secrets[0].get("data").is_none());
    assert_eq!(target["pods"].as_array().unwrap().len(), 2);
    let owner_kinds: BTreeSet<&str> = target["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(owner_kinds, BTreeSet::from(["ReplicaSet", "Deployment"]));
    let text = serde_json::to_string(doc).unwrap();
    for t in &old_tokens {
        assert!(!text.contains(t.as_str()), "a token is in the snapshot");
    }
    assert!(
        !text.contains("hunter2"),
        "a pod template's env value is in the snapshot"
    );
    for s in &plan.steps {
        let state = serde_json::to_string(&s.result.as_ref().unwrap().state).unwrap();
        for t in &old_tokens {
            assert!(
                !state.contains(t.as_str()),
                "a token is in step {}'s state",
                s.n
            );
        }
    }

    // The effect, read back independently.
    assert!(rbs.get_opt("app-read").await.unwrap().is_none());
    assert!(rbs.get_opt("app-implicit").await.unwrap().is_none());
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    let shared = serde_json::to_value(crbs.get(crb).await.unwrap()).unwrap();
    assert_eq!(
        subjects_of(&shared),
        json!([
            {"kind": "ServiceAccount", "name": "other", "namespace": ns},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
        ])
    );
    let now_secrets = uids(&token_secrets(&c, ns, "app").await);
    assert!(uids(&old_secrets).is_disjoint(&now_secrets));
    assert!(old_pods.is_disjoint(&uids(&pods_of(&c, ns, "app").await)));
    eventually("web's pods re-made", async || {
        pods_of(&c, ns, "app").await.len() == 2
    })
    .await;

    undo(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert!(
        plan.steps[2]
            .undo_result
            .as_ref()
            .unwrap()
            .message
            .starts_with("cannot be undone automatically")
    );
    let read = serde_json::to_value(rbs.get("app-read").await.unwrap()).unwrap();
    assert_eq!(read["roleRef"]["name"], "reader");
    assert_eq!(
        subjects_of(&read),
        json!([{"kind": "ServiceAccount", "name": "app", "namespace": ns}])
    );
    let implicit = serde_json::to_value(rbs.get("app-implicit").await.unwrap()).unwrap();
    assert_eq!(
        subjects_of(&implicit),
        json!([{"kind": "ServiceAccount", "name": "app"}])
    );
    let shared = serde_json::to_value(crbs.get(crb).await.unwrap()).unwrap();
    assert_eq!(shared["roleRef"]["name"], "view");
    assert_eq!(subjects_of(&shared), shared_subjects);
    // The token secrets come back by name, with new tokens.
    let back = token_secrets(&c, ns, "app").await;
    for old in &old_secrets {
        let again = back
            .iter()
            .find(|s| s.metadata.name == old.metadata.name)
            .unwrap();
        assert_ne!(again.metadata.uid, old.metadata.uid);
    }

    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    drop_namespace(&c, ns).await;
}

/// Blue-green: the replacement takes the Deployment and copies of the bindings, the old
/// account goes; undo brings it all back.
#[tokio::test]
async fn blue_green_moves_the_deployment_to_a_replacement_and_undo_moves_it_back() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-bluegreen";
    let crb = "kw-bluegreen-api-view";
    namespace(&c, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    create(
        &sas,
        json!({"metadata": {"name": "api", "labels": {"team": "payments"}}}),
    )
    .await;
    create(
        &Api::<Role>::namespaced(c.clone(), ns),
        json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    )
    .await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    create(
        &rbs,
        json!({"metadata": {"name": "api-read"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": ns}]}),
    )
    .await;
    cluster_binding(
        &c,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": ns}]}),
    )
    .await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), ns);
    create(&deps, deployment("api", "api", 1)).await;
    create(&deps, deployment("unrelated", "default", 1)).await;
    eventually("the pod of api", async || {
        pods_of(&c, ns, "api").await.len() == 1
    })
    .await;

    let mut plan = build(
        service_account("test", ns, "api"),
        K8sStrategy::BlueGreen,
        None,
        &[],
    );
    let Action::BlueGreen { replacement, .. } = plan.steps[0].action.clone() else {
        panic!("not a blue-green plan: {:?}", plan.steps[0].action);
    };
    assert_eq!(replacement, "api-20260529-0906");
    let cs = connectors(k);
    let mut rec = Mem::default();
    execute(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(
        plan.status,
        PlanStatus::Executed,
        "{:?}",
        plan.steps[0].result
    );
    let target = &rec.evidence[0]["targets"][format!("kubernetes:{ns}/serviceaccount/api")];
    assert_eq!(target["deployments"][0]["metadata"]["name"], "api");

    let template_sa = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .clone()
            .unwrap()
    };
    assert_eq!(template_sa(&deps.get("api").await.unwrap()), replacement);
    assert_eq!(
        template_sa(&deps.get("unrelated").await.unwrap()),
        "default"
    );
    let repl = sas.get(&replacement).await.unwrap();
    let labels = repl.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "keyward");
    assert_eq!(labels["team"], "payments");
    assert!(sas.get_opt("api").await.unwrap().is_none());
    let copy =
        serde_json::to_value(rbs.get(&format!("api-read-{replacement}")).await.unwrap()).unwrap();
    assert_eq!(copy["roleRef"]["name"], "reader");
    assert_eq!(
        subjects_of(&copy),
        json!([{"kind": "ServiceAccount", "name": replacement, "namespace": ns}])
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    let ccopy =
        serde_json::to_value(crbs.get(&format!("{crb}-{replacement}")).await.unwrap()).unwrap();
    assert_eq!(ccopy["roleRef"]["name"], "view");
    let observed = &plan.steps[0]
        .result
        .as_ref()
        .unwrap()
        .verified
        .as_ref()
        .unwrap()
        .observed;
    assert!(observed.contains("`api`"), "{observed}");

    undo(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(
        plan.status,
        PlanStatus::Undone,
        "{:?}",
        plan.steps[0].undo_result
    );
    assert!(sas.get_opt("api").await.unwrap().is_some());
    assert!(sas.get_opt(&replacement).await.unwrap().is_none());
    assert_eq!(template_sa(&deps.get("api").await.unwrap()), "api");
    assert!(
        rbs.get_opt(&format!("api-read-{replacement}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        crbs.get_opt(&format!("{crb}-{replacement}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(rbs.get_opt("api-read").await.unwrap().is_some());
    assert!(crbs.get_opt(crb).await.unwrap().is_some());

    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    drop_namespace(&c, ns).await;
}

fn audit(n: u32, actor: &str, action: &str, target: &str) -> Event<'static> {
    Event {
        native_id: format!("audit-{n}").into(),
        source: SourceKind::K8sAudit,
        time: NOW - 3_600_000 + i64::from(n),
        action: action.to_owned().into(),
        actor: Some(actor.to_owned().into()),
        source_ip: None,
        user_agent: None,
        region: None,
        account: None,
        error_code: None,
        target: Some(target.to_owned().into()),
        credential: None,
        invoked_by: None,
        shared_id: None,
        stage: 3,
    }
}

/// Blast radius: the bindings the compromised account created are deleted (one of them it
/// had bound itself to, which containment already removed: nothing left to do) and undo
/// re-creates them.
#[tokio::test]
async fn blast_radius_deletes_the_bindings_the_attacker_created_and_undo_recreates_them() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-blast";
    let crb = "kw-blast-backdoor";
    namespace(&c, ns).await;
    create(
        &Api::<ServiceAccount>::namespaced(c.clone(), ns),
        json!({"metadata": {"name": "intruder"}}),
    )
    .await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    create(
        &rbs,
        json!({"metadata": {"name": "backdoor"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
    )
    .await;
    cluster_binding(
        &c,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "intruder", "namespace": ns}]}),
    )
    .await;
    let identity = service_account("test", ns, "intruder");
    let events = [
        audit(
            1,
            &identity.id,
            "create rolebindings",
            &format!("{ns}/backdoor"),
        ),
        audit(2, &identity.id, "create clusterrolebindings", crb),
    ];
    let mut plan = build(
        identity,
        K8sStrategy::Contain,
        Some(NOW - 86_400_000),
        &events,
    );
    let deletes: Vec<&Action> = plan
        .steps
        .iter()
        .map(|s| &s.action)
        .filter(|a| matches!(a, Action::DeleteBinding { .. }))
        .collect();
    assert_eq!(deletes.len(), 2, "{:?}", plan.steps);
    let cs = connectors(k);
    let mut rec = Mem::default();
    execute(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    let doc = &rec.evidence[0]["targets"];
    assert_eq!(
        doc[format!("kubernetes:RoleBinding/{ns}/backdoor")]["binding"]["subjects"][0]["name"],
        "mallory"
    );
    assert_eq!(
        doc[format!("kubernetes:ClusterRoleBinding/{crb}")]["binding"]["roleRef"]["name"],
        "cluster-admin"
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    assert!(rbs.get_opt("backdoor").await.unwrap().is_none());
    assert!(crbs.get_opt(crb).await.unwrap().is_none());

    undo(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    let back = serde_json::to_value(rbs.get("backdoor").await.unwrap()).unwrap();
    assert_eq!(back["roleRef"]["name"], "edit");
    assert_eq!(
        subjects_of(&back),
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}])
    );
    let back = serde_json::to_value(crbs.get(crb).await.unwrap()).unwrap();
    assert_eq!(back["roleRef"]["name"], "cluster-admin");

    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    drop_namespace(&c, ns).await;
}

/// A step whose precondition fails stops the plan: the plan is Failed, the failure is
/// recorded on the step, the steps after it did not run.
#[tokio::test]
async fn a_failing_step_stops_the_plan_with_its_result_recorded() {
    let Some(k) = connector().await else { return };
    let mut plan = build(
        service_account("test", "kw-no-such-namespace", "ghost"),
        K8sStrategy::Contain,
        None,
        &[],
    );
    let cs = connectors(k);
    let mut rec = Mem::default();
    let err = execute(&mut plan, &cs, &mut rec, &clock).await.unwrap_err();
    assert!(err.to_string().contains("step 1 (remove_bindings"), "{err}");
    assert_eq!(plan.status, PlanStatus::Failed);
    let r = plan.steps[0].result.as_ref().unwrap();
    assert!(!r.ok);
    assert!(r.message.contains("precondition failed"), "{}", r.message);
    assert!(r.message.contains("does not exist"), "{}", r.message);
    assert!(plan.steps[1..].iter().all(|s| s.result.is_none()));
    assert_eq!(
        rec.evidence.len(),
        1,
        "the snapshot is taken before the first step"
    );
    assert_eq!(
        rec.steps.last(),
        Some(&(1, Phase::Execute, PlanStatus::Failed))
    );
}

/// A failure in the middle of a hand-made plan: the step before it stays done (and undo
/// takes it back), the step after it does not run.
#[tokio::test]
async fn a_failure_midway_keeps_what_ran_before_it_and_undo_takes_that_back() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-midway";
    namespace(&c, ns).await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    for name in ["first", "third"] {
        create(
            &rbs,
            json!({"metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]}),
        )
        .await;
    }
    let delete = |name: &str| Action::DeleteBinding {
        cluster: None,
        kind: BindingKind::RoleBinding,
        namespace: Some(ns.to_owned()),
        name: name.to_owned(),
    };
    let restart = Action::RestartPods {
        cluster: None,
        namespace: ns.to_owned(),
        service_account: "nobody".to_owned(),
    };
    let mut plan = build(
        service_account("test", ns, "unused"),
        K8sStrategy::Contain,
        None,
        &[],
    );
    plan.steps = plan.steps[..1].to_vec();
    plan.steps[0].action = delete("first");
    plan.steps.push(plan.steps[0].clone());
    plan.steps[1].action = restart;
    plan.steps.push(plan.steps[0].clone());
    plan.steps[2].action = delete("third");
    for (i, s) in plan.steps.iter_mut().enumerate() {
        s.n = i + 1;
        s.target = s.action.target();
    }
    let cs = connectors(k);
    let mut rec = Mem::default();
    let err = execute(&mut plan, &cs, &mut rec, &clock).await.unwrap_err();
    assert!(err.to_string().contains("step 2 (restart_pods"), "{err}");
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(plan.steps[0].result.as_ref().unwrap().ok);
    assert!(!plan.steps[1].result.as_ref().unwrap().ok);
    assert!(plan.steps[2].result.is_none());
    assert!(rbs.get_opt("first").await.unwrap().is_none());
    assert!(rbs.get_opt("third").await.unwrap().is_some());

    undo(&mut plan, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert!(rbs.get_opt("first").await.unwrap().is_some());
    drop_namespace(&c, ns).await;
}

/// A blue-green that fails midway (a binding copy's name is taken by someone else's
/// binding) puts back what it had done: the copy it made and the replacement are deleted,
/// the old account and its Deployment are as they were, the other binding is not touched.
#[tokio::test]
async fn a_blue_green_that_fails_midway_puts_back_what_it_did() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-bg-fail";
    let crb = "kw-bg-fail-view";
    namespace(&c, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    create(&sas, json!({"metadata": {"name": "api"}})).await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    create(
        &rbs,
        json!({"metadata": {"name": "api-read"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": ns}]}),
    )
    .await;
    cluster_binding(
        &c,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": ns}]}),
    )
    .await;
    let mut plan = build(
        service_account("test", ns, "api"),
        K8sStrategy::BlueGreen,
        None,
        &[],
    );
    let Action::BlueGreen { replacement, .. } = plan.steps[0].action.clone() else {
        panic!("not a blue-green plan");
    };
    let squatter = format!("{crb}-{replacement}");
    cluster_binding(
        &c,
        json!({"metadata": {"name": squatter},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}),
    )
    .await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), ns);
    create(&deps, deployment("api", "api", 1)).await;

    let cs = connectors(k);
    let mut rec = Mem::default();
    let err = execute(&mut plan, &cs, &mut rec, &clock).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("is not Keyward's copy"), "{msg}");
    assert!(msg.contains("what the step had done was put back"), "{msg}");
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(sas.get_opt("api").await.unwrap().is_some());
    assert!(sas.get_opt(&replacement).await.unwrap().is_none());
    assert!(
        rbs.get_opt(&format!("api-read-{replacement}"))
            .await
            .unwrap()
            .is_none()
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    let kept = serde_json::to_value(crbs.get(&squatter).await.unwrap()).unwrap();
    assert_eq!(kept["subjects"][0]["name"], "carol");
    let d = deps.get("api").await.unwrap();
    assert_eq!(
        d.spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("api")
    );

    for name in [crb, squatter.as_str()] {
        let _ = crbs.delete(name, &DeleteParams::default()).await;
    }
    drop_namespace(&c, ns).await;
}

/// A retired service account deleted once its grace period is over: refused while a binding
/// names it again (someone put it back in use), deleted when none does; no undo.
#[tokio::test]
async fn a_retired_service_account_is_deleted_after_its_grace_period_unless_bound_again() {
    let Some(k) = connector().await else { return };
    let c = k.client().clone();
    let ns = "kw-purge";
    namespace(&c, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    create(&sas, json!({"metadata": {"name": "old-job"}})).await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    let binding = json!({"metadata": {"name": "old-job-view"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
           "subjects": [{"kind": "ServiceAccount", "name": "old-job", "namespace": ns}]});
    create(&rbs, binding.clone()).await;

    let identity = service_account("test", ns, "old-job");
    let id = identity.id.clone();
    let inv = Inventory::new(vec![identity]);
    let protected = Protected::new(&[]).unwrap();
    let req = Request {
        identity: &id,
        finding: None,
        since: None,
        now: NOW,
        actor: "test:kube_api",
        protected: &protected,
        k8s: K8sStrategy::Contain,
        events: &[],
    };
    let mut retire = plan::retire(&inv, &Graph::new(), &req, "retire: unused", 30).unwrap();
    let cs = connectors(k);
    let mut rec = Mem::default();
    execute(&mut retire, &cs, &mut rec, &clock).await.unwrap();
    assert!(rbs.get_opt("old-job-view").await.unwrap().is_none());

    let ran = clock();
    assert!(keyward_respond::purge::plan(&retire, ran + 29 * 86_400_000, "t").is_err());
    let fresh = || keyward_respond::purge::plan(&retire, ran + 31 * 86_400_000, "t").unwrap();

    // Bound again by hand: the deletion is refused, the account kept.
    create(&rbs, binding).await;
    let mut delete = fresh();
    let err = execute(&mut delete, &cs, &mut rec, &clock)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bound again"), "{err}");
    assert!(sas.get_opt("old-job").await.unwrap().is_some());

    // Unbound: deleted, verified, and there is nothing to undo.
    rbs.delete("old-job-view", &DeleteParams::default())
        .await
        .unwrap();
    let mut delete = fresh();
    execute(&mut delete, &cs, &mut rec, &clock).await.unwrap();
    assert_eq!(delete.status, PlanStatus::Executed);
    assert!(sas.get_opt("old-job").await.unwrap().is_none());
    let verified = delete.steps[0].result.as_ref().unwrap().verified.clone();
    assert!(verified.is_some_and(|v| v.ok && v.observed.contains("does not exist")));
    assert!(delete.steps[0].undo.is_empty());
    drop_namespace(&c, ns).await;
}
