//! The `kubectl` commands a plan shows for its Kubernetes steps, run by `bash` against a real
//! API server (from `shared/tools/k8s/kube-up`): they must do what the connector does.
//! Needs `KUBECONFIG` and `KEYWARD_TEST_KUBE_URL` (the env file of kube-up), `kubectl` and
//! `jq`; says it was skipped without them. The kubeconfig goes to the child processes only.
#![cfg(feature = "kubernetes")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use keyward_respond::action::Action;
use keyward_respond::kube::KubeConnector;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

/// A client for checking, and the kubeconfig path for the commands.
async fn setup() -> Option<(Client, String)> {
    let (Ok(_), Ok(kubeconfig)) = (
        std::env::var("KEYWARD_TEST_KUBE_URL"),
        std::env::var("KUBECONFIG"),
    ) else {
        println!("skipped: KEYWARD_TEST_KUBE_URL not set");
        return None;
    };
    for tool in ["kubectl", "jq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            println!("skipped: {tool} not installed");
            return None;
        }
    }
    let k = KubeConnector::from_kubeconfig_file(std::path::Path::new(&kubeconfig), None)
        .await
        .unwrap();
    Some((k.client().clone(), kubeconfig))
}

/// Runs each command line (but waits on rollouts: no kubelet here) with the kubeconfig.
fn run(kubeconfig: &str, lines: &[String]) {
    for line in lines {
        if line.starts_with('#') || line.contains("rollout status") {
            continue;
        }
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", line])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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

async fn fresh_namespace(c: &Client, name: &str) {
    let nss: Api<Namespace> = Api::all(c.clone());
    if nss.get_opt(name).await.unwrap().is_some() {
        let _ = nss.delete(name, &DeleteParams::default()).await;
        eventually(async || nss.get_opt(name).await.unwrap().is_none()).await;
    }
    create(&nss, json!({"metadata": {"name": name}})).await;
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..240 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out");
}

fn subjects(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()["subjects"].clone()
}

#[tokio::test]
async fn the_shown_commands_contain_an_account_as_the_connector_does() {
    let Some((c, kubeconfig)) = setup().await else {
        return;
    };
    let ns = "kw-kubectl";
    let crb = "kw-kubectl-shared";
    fresh_namespace(&c, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    create(&sas, json!({"metadata": {"name": "app"}})).await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
    create(
        &rbs,
        json!({"metadata": {"name": "implicit"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "app"}]}),
    )
    .await;
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    create(
        &crbs,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [
                   {"kind": "ServiceAccount", "name": "other", "namespace": ns},
                   {"kind": "ServiceAccount", "name": "app", "namespace": ns},
                   {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("system:serviceaccount:{ns}:app")},
               ]}),
    )
    .await;
    create(
        &Api::<Pod>::namespaced(c.clone(), ns),
        json!({"metadata": {"name": "bare"},
               "spec": {"serviceAccountName": "app", "containers": [{"name": "c", "image": "registry.example/x:1"}]}}),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let tokens = async || -> BTreeSet<String> {
        secrets
            .list(&ListParams::default().fields("type=kubernetes.io/service-account-token"))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|s| {
                s.metadata.annotations.as_ref().unwrap()["kubernetes.io/service-account.name"]
                    == "app"
            })
            .filter_map(|s| s.metadata.uid.clone())
            .collect()
    };
    eventually(async || !tokens().await.is_empty()).await;
    let old_tokens = tokens().await;

    let (namespace, service_account) = (ns.to_owned(), "app".to_owned());
    for action in [
        Action::RemoveBindings {
            cluster: None,
            namespace: namespace.clone(),
            service_account: service_account.clone(),
            known: vec![format!("ClusterRoleBinding/{crb}")],
        },
        Action::DeleteTokenSecrets {
            cluster: None,
            namespace: namespace.clone(),
            service_account: service_account.clone(),
        },
        Action::RestartPods {
            cluster: None,
            namespace,
            service_account,
        },
    ] {
        run(&kubeconfig, &action.commands());
    }
    // kubectl leaves a binding whose only subject it was without subjects (it grants
    // nothing); the connector deletes it.
    assert_eq!(subjects(&rbs.get("implicit").await.unwrap()), Value::Null);
    assert_eq!(
        subjects(&crbs.get(crb).await.unwrap()),
        json!([{"kind": "ServiceAccount", "name": "other", "namespace": ns}])
    );
    assert!(old_tokens.is_disjoint(&tokens().await));
    assert!(
        Api::<Pod>::namespaced(c.clone(), ns)
            .get_opt("bare")
            .await
            .unwrap()
            .is_none()
    );
    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    let _ = Api::<Namespace>::all(c.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

#[tokio::test]
async fn the_shown_blue_green_commands_and_their_undo_work() {
    let Some((c, kubeconfig)) = setup().await else {
        return;
    };
    let ns = "kw-kubectl-bg";
    let crb = "kw-kubectl-bg-view";
    let repl = "api-2";
    fresh_namespace(&c, ns).await;
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
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    for name in [crb.to_owned(), format!("{crb}-{repl}")] {
        let _ = crbs.delete(&name, &DeleteParams::default()).await;
    }
    create(
        &crbs,
        json!({"metadata": {"name": crb},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": ns}]}),
    )
    .await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), ns);
    create(
        &deps,
        json!({"metadata": {"name": "api"},
               "spec": {"selector": {"matchLabels": {"app": "api"}},
                        "template": {"metadata": {"labels": {"app": "api"}},
                                     "spec": {"serviceAccountName": "api", "containers": [{"name": "c", "image": "registry.example/x:1"}]}}}}),
    )
    .await;
    let action = Action::BlueGreen {
        cluster: None,
        namespace: ns.to_owned(),
        service_account: "api".to_owned(),
        replacement: repl.to_owned(),
    };
    let template_sa = async || {
        deps.get("api")
            .await
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .service_account_name
    };

    run(&kubeconfig, &action.commands());
    assert_eq!(template_sa().await.as_deref(), Some(repl));
    assert!(sas.get_opt("api").await.unwrap().is_none());
    let r = sas.get(repl).await.unwrap();
    assert_eq!(
        r.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "keyward"
    );
    assert_eq!(
        subjects(&rbs.get(&format!("api-read-{repl}")).await.unwrap()),
        json!([{"kind": "ServiceAccount", "name": repl, "namespace": ns}])
    );
    assert!(
        crbs.get_opt(&format!("{crb}-{repl}"))
            .await
            .unwrap()
            .is_some()
    );

    run(&kubeconfig, &action.undo_commands());
    assert_eq!(template_sa().await.as_deref(), Some("api"));
    assert!(sas.get_opt("api").await.unwrap().is_some());
    assert!(sas.get_opt(repl).await.unwrap().is_none());
    assert!(
        rbs.get_opt(&format!("api-read-{repl}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        crbs.get_opt(&format!("{crb}-{repl}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(crbs.get_opt(crb).await.unwrap().is_some());

    let _ = crbs.delete(crb, &DeleteParams::default()).await;
    let _ = Api::<Namespace>::all(c.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}
