#![no_main]
//! `keyward check` on arbitrary bytes as each input kind (the first byte picks it): never a
//! panic; every problem and error has a line ≥ 1; the SARIF form always serializes.
use keyward_govern::check::{Config, Input, Kind, check_as, sarif};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let (kind, path) = match first % 3 {
        0 => (Kind::Terraform, "fuzz/main.tf"),
        1 => (Kind::Policy, "fuzz/policy.json"),
        _ => (Kind::Kubernetes, "fuzz/k8s.yaml"),
    };
    let report = check_as(kind, Input { path, bytes: rest }, &Config::default());
    for p in &report.problems {
        assert!(p.line >= 1 && p.column.is_none_or(|c| c >= 1));
        assert_eq!(p.fingerprint().len(), 32);
    }
    for e in &report.errors {
        assert!(e.line >= 1 && !e.reason.is_empty());
    }
    assert!(serde_json::to_vec(&sarif::log(&report, "0", false)).is_ok());
});
