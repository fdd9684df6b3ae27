//! `kubectl` against the test cluster (`KEYWARD_TEST_KUBE_URL`, `_TOKEN`, `_CA`), for the
//! broker's test and benchmark: service accounts and their tokens (`kubectl create token`
//! sends the TokenRequest as protobuf, which the test cluster's 1.20 API server takes).

/// Runs kubectl; its standard output, trimmed. Panics with its standard error on failure.
pub fn kubectl(args: &[&str]) -> String {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} unset"));
    let out = std::process::Command::new("kubectl")
        .args(["--server", &var("KEYWARD_TEST_KUBE_URL")])
        .args(["--token", &var("KEYWARD_TEST_KUBE_TOKEN")])
        .args(["--certificate-authority", &var("KEYWARD_TEST_KUBE_CA")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"));
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
