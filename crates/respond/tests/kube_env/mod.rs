//! The Kubernetes API server the tests talk to (`../shared/tools/k8s/kube-up` writes
//! `KEYWARD_TEST_KUBE_URL`, `_TOKEN`, `_CA`); without it a test says it was skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use keyward_respond::kube::KubeConnector;
use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

/// The connector on the test cluster, as its admin.
pub async fn kube_connector() -> Option<KubeConnector> {
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
    Some(KubeConnector::from_config(config).unwrap())
}
