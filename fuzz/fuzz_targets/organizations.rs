#![no_main]
//! AWS Organizations output (`list-policies`, `describe-policy`, `list-targets-for-policy`,
//! `list-parents`): normalized under a path naming a policy and an account, then the
//! objects kept resolved into guardrails and evaluated. The first byte picks the path.
use keyward_graph::iam::org::Organization;
use keyward_graph::iam::policy::Context as PolicyContext;
use keyward_model::Diagnostic;
use keyward_normalize::{Context, Format, Output, Sink, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Checks the normalizer contract and keeps the objects.
#[derive(Default)]
struct Keep {
    check: common::Check,
    objects: Vec<keyward_model::SnapshotObject>,
}

impl Sink for Keep {
    fn accept(&mut self, out: Output<'_>) {
        self.objects.extend(out.objects.iter().cloned());
        self.check.accept(out);
    }
    fn reject(&mut self, d: Diagnostic) {
        self.check.reject(d);
    }
}

const PATHS: [&str; 3] = [
    "org/targets-p-abcd1234.json",
    "org/parents-222222222222.json",
    "org/parents-ou-ab12-cdef5678.json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, doc)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(pick) % PATHS.len()];
    let mut sink = Keep::default();
    let mut ctx = Context::default().with_path(path);
    normalize_document(Format::AwsOrganizations, doc, &mut ctx, &mut sink);
    let of = |kinds: &[&str]| -> Vec<serde_json::Value> {
        sink.objects
            .iter()
            .filter(|o| kinds.contains(&o.kind.as_str()))
            .map(|o| o.doc.clone())
            .collect()
    };
    let (org, _) = Organization::new(
        &of(&["org_policy_summary", "org_policy"]),
        &of(&["org_target"]),
        &of(&["org_parent"]),
    );
    let ctx = PolicyContext::default();
    for account in ["222222222222", "ou-ab12-cdef5678"] {
        if let Some(g) = org.guardrails(account) {
            let _ = g.check("iam:PassRole", "*", &ctx);
            let _ = g.grants_everything(&ctx);
        }
    }
});
