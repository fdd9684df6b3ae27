#![no_main]
//! Detection on hostile events: the first byte picks CloudTrail, Kubernetes audit or (bit
//! 2) a GitHub webhook delivery, the rest is one record. Every built-in rule, check and
//! baseline sees it; one detector lives
//! across inputs, so state (baselines, correlation windows, merges) accumulates as in a
//! long `watch`. Findings must name a rule, a summary and their evidence.
use std::sync::{LazyLock, Mutex};

use keyward_detect::{Catalog, Detector, NoLookup, Settings};
use keyward_model::SourceKind;
use libfuzzer_sys::fuzz_target;

static DETECTOR: LazyLock<Mutex<Detector>> = LazyLock::new(|| {
    let settings = Settings {
        allowed_accounts: ["111122223333".to_owned()].into(),
    };
    Mutex::new(Detector::new(Catalog::builtin(), settings).expect("built-in rules compile"))
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, record)) = data.split_first() else {
        return;
    };
    let source = match (selector & 1, selector & 4) {
        (_, 4) => SourceKind::GithubWebhook,
        (0, _) => SourceKind::Cloudtrail,
        _ => SourceKind::K8sAudit,
    };
    let Ok((event, raw, known)) = keyward_detect::testing::normalize(source, record) else {
        return;
    };
    let mut d = DETECTOR.lock().unwrap_or_else(|e| e.into_inner());
    d.on_event(&event, &raw, &known, &NoLookup);
    if selector & 2 != 0 {
        d.close_hours();
    }
    for f in d.take_findings() {
        assert!(f.id.starts_with("kwf-") && !f.rule_id.is_empty() && !f.summary.is_empty());
        assert!(!f.events.is_empty() && f.events.len() <= keyward_detect::finding::MAX_EVIDENCE);
        assert!(f.first_seen <= f.last_seen && f.count >= 1);
    }
});
