#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Against a real kube-apiserver: a service account's TokenRequest token verified through
//! the cluster's OIDC discovery and JWKS (both behind authentication), and refused when
//! meant for another audience or tampered with.
//!
//! Needs `KEYWARD_TEST_KUBE_URL` (the API server, also its issuer), `KEYWARD_TEST_KUBE_TOKEN`
//! (a bearer that may create service accounts and tokens) and `KEYWARD_TEST_KUBE_CA`;
//! skipped when the URL is unset.

use std::path::Path;
use std::process::Command;

use keyward_broker::jose::{self, JoseError};
use keyward_broker::verify::{TrustedIssuer, Verifier, VerifyError};
use keyward_broker::{ProofKind, Workload};
use serde_json::{Value, json};

/// `kubectl` against the test cluster, with a kubeconfig of its own (so the bearer is
/// not on a command line). kubectl sends TokenRequests as protobuf: a kube-apiserver 1.20
/// built with Go ≥ 1.18 panics decoding a JSON TokenRequest (json-iterator over an old
/// `reflect2`), so curl with a JSON body is no use there.
struct Kube {
    kubeconfig: std::path::PathBuf,
}

impl Kube {
    fn new(dir: &Path, url: &str, ca: &str, bearer: &str) -> Kube {
        let kubeconfig = dir.join("kubeconfig");
        let config = json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": ca}}],
            "users": [{"name": "admin", "user": {"token": bearer}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin", "namespace": "default"}}],
            "current-context": "test"});
        std::fs::write(&kubeconfig, config.to_string()).unwrap();
        Kube { kubeconfig }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--request-timeout", "20s"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn token(&self, sa: &str, audience: &str) -> String {
        self.run(&[
            "create",
            "token",
            sa,
            "--audience",
            audience,
            "--duration",
            "600s",
        ])
    }
}

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

#[tokio::test]
async fn service_account_tokens_verify_against_the_cluster() {
    let Ok(url) = std::env::var("KEYWARD_TEST_KUBE_URL") else {
        println!("skipped: KEYWARD_TEST_KUBE_URL unset");
        return;
    };
    let bearer = std::env::var("KEYWARD_TEST_KUBE_TOKEN").expect("KEYWARD_TEST_KUBE_TOKEN");
    let ca = std::env::var("KEYWARD_TEST_KUBE_CA").expect("KEYWARD_TEST_KUBE_CA");
    let dir = tempfile::tempdir().unwrap();
    let bearer_file = dir.path().join("bearer");
    std::fs::write(&bearer_file, &bearer).unwrap();
    let kube = Kube::new(dir.path(), &url, &ca, &bearer);

    let name = format!(
        "keyward-test-{}-{}",
        std::process::id(),
        now_ms() % 1_000_000
    );
    kube.run(&["create", "serviceaccount", &name]);
    let uid = kube.run(&[
        "get",
        "serviceaccount",
        &name,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let token = kube.token(&name, "keyward-test");
    let other = kube.token(&name, "someone-else");

    let verifier = Verifier::new(vec![TrustedIssuer {
        name: "test-kube".into(),
        kind: ProofKind::Kubernetes,
        issuer: url.clone(),
        audiences: vec!["keyward-test".into()],
        jwks_uri: None,
        ca_file: Some(ca.into()),
        bearer_token_file: Some(bearer_file),
        cluster: Some("test-cluster".into()),
    }])
    .unwrap();

    let w: Workload = verifier.verify(&token, now_ms()).await.unwrap();
    assert_eq!(w.proof, ProofKind::Kubernetes);
    assert_eq!(w.issuer, url);
    assert_eq!(w.subject, format!("system:serviceaccount:default:{name}"));
    assert_eq!(
        w.identity,
        keyward_model::ids::k8s_service_account("test-cluster", "default", &name)
    );
    assert_eq!(w.attrs["namespace"], "default");
    assert_eq!(w.attrs["service_account"], name);
    assert_eq!(w.attrs["service_account_uid"], uid);
    assert_eq!(w.attrs["cluster"], "test-cluster");
    assert_eq!(w.attrs["audience"], "keyward-test");
    assert!(
        !w.attrs.contains_key("pod"),
        "a TokenRequest without a pod binding"
    );
    let left = w.expires_at - now_ms();
    assert!((500_000..=660_000).contains(&left), "{left}");
    // kube-apiserver signs with RS256.
    assert_eq!(jose::peek(&token).unwrap().header.alg, "RS256");

    let err = verifier.verify(&other, now_ms()).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::Token(JoseError::Audience)),
        "{err}"
    );

    // The same signature over claims that name another namespace.
    let mut parts = token.split('.');
    let (header, payload, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut claims: Value = serde_json::from_slice(&jose::b64url_decode(payload).unwrap()).unwrap();
    claims["kubernetes.io"]["namespace"] = json!("kube-system");
    let forged = jose::b64url_encode(claims.to_string().as_bytes());
    let tampered = format!("{header}.{forged}.{sig}");
    let err = verifier.verify(&tampered, now_ms()).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::Token(JoseError::Signature)),
        "{err}"
    );

    kube.run(&["delete", "serviceaccount", &name]);
}
