#![no_main]
//! The identity graph's derivations and analyses over arbitrary JSON: IAM snapshots (policy
//! parsing, evaluation, trust, escalation), snapshot objects of every kind the graph reads
//! (Terraform, CODEOWNERS, people, Lambda, Kubernetes), Kubernetes posture, then ownership,
//! blast radius and export over the resulting graph. Nothing may panic.
use keyward_graph::analysis::{BlastOptions, Coverage, blast_radius, orphan_reason, ownership};
use keyward_graph::derive::{self, Names};
use keyward_graph::iam::authz::Snapshot;
use keyward_graph::{Graph, export};
use keyward_model::{IdentityKind, SnapshotObject};
use libfuzzer_sys::fuzz_target;

const KINDS: [&str; 8] = [
    "tf_resource",
    "codeowners",
    "person",
    "lambda_function",
    "k8s:RoleBinding",
    "k8s:ClusterRole",
    "k8s:Deployment",
    "k8s:Pod",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let mut g = Graph::new();
    let names = Names::default();
    let snap = Snapshot::new(&doc);
    g.set_edges(
        &derive::account_node("111122223333"),
        derive::account_edges("111122223333", &snap, &names),
    );
    let kind = KINDS[selector as usize % KINDS.len()];
    let o = SnapshotObject {
        kind: kind.to_owned(),
        id: "x".to_owned(),
        scope: Some("c".to_owned()),
        doc: doc.clone(),
    };
    if let Some(edges) = derive::object_edges(&o, &names) {
        g.set_edges(&derive::object_node(&o), edges);
    }
    let files = ["file:a/b.tf", "github:o/a"];
    g.set_edges(
        &derive::object_node(&o),
        derive::codeowners_edges(&o, &files, |p, path| p == path),
    );
    let _ = keyward_graph::k8s_posture::posture(std::slice::from_ref(&doc));
    let cov = Coverage::of(&g);
    let ids: Vec<_> = g.nodes().map(|(id, _, _)| id).take(16).collect();
    for id in ids {
        let own = ownership(&g, id);
        for acted in [false, true] {
            let _ = orphan_reason(
                &g,
                id,
                IdentityKind::IamRole,
                Some("111122223333"),
                &own,
                &cov,
                acted,
            );
        }
        let _ = blast_radius(&g, id, BlastOptions::default());
    }
    let mut sink = Vec::new();
    let _ = export::json(&g, &|_| true, &mut sink);
    let _ = export::graphml(&g, &|_| true, &mut sink);
});
