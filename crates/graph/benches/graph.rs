//! The identity graph at estate scale: build time, p99 latency of ownership chains and
//! blast radius, and memory per identity, on a generated estate of 1M identities and about
//! 10M edges.
//!
//! ```text
//! taskset -c 0 cargo bench -p keyward-graph --bench graph
//! KEYWARD_BENCH_IDENTITIES=200000 taskset -c 0 cargo bench -p keyward-graph --bench graph
//! ```
//!
//! The estate: 10 % IAM users (an owner tag on most, one access key each, in three
//! groups), 5 % roles (a team tag, trusted by 20 users), 65 % STS sessions of those roles
//! (each created by a user, with its temporary key), 10 % long-term keys and 10 % Kubernetes
//! service accounts (bound through a RoleBinding, run by a Deployment). Roles can act on 80
//! of n/4 DynamoDB tables each and users on 15 of n/10 buckets, so resources are shared
//! as in a real account (each table is reachable from about 16 roles). Identity edges go through `derive::identity_edges`,
//! exactly as ingestion derives them; the rest is set per origin as the snapshot
//! derivations do, and sessions' creations are observed as events are.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use keyward_graph::analysis::{BlastOptions, blast_radius, ownership};
use keyward_graph::{EdgeKind, EdgeSpec, NodeSpec};
use keyward_testkit::Rng;
use keyward_testkit::estate::{Target, build, estate, generate};

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .and_then(|p| p.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Consumes what the generator makes, as the graph would (so it is not optimized away).
#[derive(Default)]
struct Null(usize);

impl Target for Null {
    fn set_edges(&mut self, origin: &NodeSpec, edges: Vec<EdgeSpec>) {
        self.0 += origin.key.len() + edges.iter().map(|e| e.to.key.len()).sum::<usize>();
    }
    fn add_edge(&mut self, spec: EdgeSpec) {
        self.0 += spec.to.key.len();
    }
    fn observe(&mut self, _: EdgeKind, from: &NodeSpec, to: &NodeSpec, _: i64, _: Option<&str>) {
        self.0 += from.key.len() + to.key.len();
    }
}

fn p99(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.5), at(0.99))
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("KEYWARD_BENCH_IDENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let e = estate(n);
    // The generator alone (formatting keys, building edge lists), to subtract.
    let t = Instant::now();
    let mut null = Null::default();
    generate(&e, &mut null);
    let gen_time = t.elapsed();
    let rss0 = rss_bytes();
    let t = Instant::now();
    let g = build(&e);
    let total = t.elapsed();
    let rss1 = rss_bytes();
    println!(
        "graph: {} identities, {} nodes, {} edges ({} sessions) built in {:.2} s \
         ({:.2} s with the generator's own {:.2} s; checksum {})",
        e.identities.len(),
        g.node_count(),
        g.edge_count(),
        e.sessions,
        total.saturating_sub(gen_time).as_secs_f64(),
        total.as_secs_f64(),
        gen_time.as_secs_f64(),
        null.0 % 1000
    );
    let graph_bytes = rss1.saturating_sub(rss0);
    println!(
        "memory: {:.0} MB resident for the graph = {:.0} bytes per identity ({:.0} per edge)",
        graph_bytes as f64 / 1e6,
        graph_bytes as f64 / e.identities.len() as f64,
        graph_bytes as f64 / g.edge_count().max(1) as f64
    );
    // Queries from a deterministic sample of identities of every kind.
    let mut rng = Rng(7);
    let samples = if smoke { 200 } else { 2_000 };
    let mut chain_t = Vec::with_capacity(samples);
    let mut blast_t = Vec::with_capacity(samples);
    let mut found = 0usize;
    let mut reached = 0usize;
    for _ in 0..samples {
        let i = &e.identities[rng.index(e.identities.len())];
        let node = g.find(&i.id).unwrap();
        let t = Instant::now();
        let own = ownership(&g, node);
        chain_t.push(t.elapsed());
        found += usize::from(own.confidence > 0.0);
        let t = Instant::now();
        let b = blast_radius(&g, node, BlastOptions::default());
        blast_t.push(t.elapsed());
        reached += b.identities + b.resources;
    }
    let (c50, c99) = p99(chain_t);
    let (b50, b99) = p99(blast_t);
    println!(
        "chain: p50 {:.3} ms, p99 {:.3} ms ({found}/{samples} with an owner)",
        c50.as_secs_f64() * 1e3,
        c99.as_secs_f64() * 1e3
    );
    println!(
        "blast radius: p50 {:.3} ms, p99 {:.3} ms (mean {} nodes reached)",
        b50.as_secs_f64() * 1e3,
        b99.as_secs_f64() * 1e3,
        reached / samples
    );
    // An inventory listing: the owner of every identity (short-lived ones inherit).
    let t = Instant::now();
    let mut cache = keyward_graph::analysis::OwnershipCache::without_chains();
    let mut owned = 0usize;
    for i in &e.identities {
        let node = g.find(&i.id).unwrap();
        owned += usize::from(cache.get(&g, node).confidence > 0.0);
    }
    println!(
        "owners of all {} identities (inventory listing): {:.2} s, {owned} with an owner",
        e.identities.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(g.edge_count() > n * 5, "the estate must be edge-dense");
}
