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
use keyward_graph::derive;
use keyward_graph::{Detail, EdgeKind, EdgeSpec, Graph, NodeKind, NodeSpec};
use keyward_model::{Identity, IdentityKind, Platform};
use keyward_testkit::Rng;

const ACCT: &str = "111122223333";

fn user(i: usize) -> String {
    format!("arn:aws:iam::{ACCT}:user/u{i}")
}

fn role(i: usize) -> String {
    format!("arn:aws:iam::{ACCT}:role/r{i}")
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .and_then(|p| p.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn spec(key: &str, kind: NodeKind) -> NodeSpec {
    NodeSpec::new(key, kind, "")
}

fn can(from: NodeSpec, resource: String, actions: &[&str]) -> EdgeSpec {
    EdgeSpec {
        from,
        kind: EdgeKind::Can,
        to: NodeSpec::new(resource, NodeKind::Resource, ""),
        detail: Some(Detail {
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            ..Detail::default()
        }),
        at: None,
    }
}

struct Estate {
    identities: Vec<Identity>,
    users: usize,
    roles: usize,
    sessions: usize,
    /// Resources shared by the identities' permissions.
    buckets: usize,
    tables: usize,
}

fn estate(n: usize) -> Estate {
    let users = n / 10;
    let roles = n / 20;
    let keys = n / 10;
    let sas = n / 10;
    let sessions = n - users - roles - keys - sas;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut identities = Vec::with_capacity(n);
    for i in 0..users {
        let mut u = Identity::new(
            user(i),
            Platform::Aws,
            IdentityKind::IamUser,
            format!("u{i}"),
        );
        if i % 5 != 0 {
            u.tags
                .insert("owner".into(), format!("p{}@acme.example", i % 5_000));
        }
        identities.push(u);
    }
    for i in 0..roles {
        let mut r = Identity::new(
            role(i),
            Platform::Aws,
            IdentityKind::IamRole,
            format!("r{i}"),
        );
        r.tags.insert("team".into(), format!("team-{}", i % 200));
        identities.push(r);
    }
    for i in 0..keys {
        let mut k = Identity::new(
            format!("AKIA{i:016}"),
            Platform::Aws,
            IdentityKind::AccessKey,
            format!("AKIA{i:016}"),
        );
        k.parent = Some(user(i % users));
        k.created = Some(1_700_000_000_000 + i as i64);
        identities.push(k);
    }
    for i in 0..sessions {
        let r = rng.index(roles);
        let mut s = Identity::new(
            format!("arn:aws:sts::{ACCT}:assumed-role/r{r}/s{i}"),
            Platform::Aws,
            IdentityKind::StsSession,
            format!("s{i}"),
        );
        s.parent = Some(role(r));
        identities.push(s);
    }
    for i in 0..sas {
        let mut a = Identity::new(
            format!("k8s:c{}/system:serviceaccount:ns{}:sa{i}", i % 10, i % 500),
            Platform::Kubernetes,
            IdentityKind::ServiceAccount,
            format!("sa{i}"),
        );
        a.labels.insert("team".into(), format!("team-{}", i % 200));
        identities.push(a);
    }
    Estate {
        identities,
        users,
        roles,
        sessions,
        buckets: (n / 10).max(1),
        tables: (n / 4).max(1),
    }
}

/// Builds the graph as ingestion and the snapshot derivations would.
/// Where the generated estate goes: the graph, or nowhere (to time the generator alone,
/// which is subtracted from the build time).
trait Target {
    fn set_edges(&mut self, origin: &NodeSpec, edges: Vec<EdgeSpec>);
    /// An edge of the account snapshot's origin.
    fn add_edge(&mut self, spec: EdgeSpec);
    fn observe(
        &mut self,
        kind: EdgeKind,
        from: &NodeSpec,
        to: &NodeSpec,
        at: i64,
        id: Option<&str>,
    );
}

struct Built {
    g: Graph,
    account: keyward_graph::NodeId,
}

impl Target for Built {
    fn set_edges(&mut self, origin: &NodeSpec, edges: Vec<EdgeSpec>) {
        self.g.set_edges(origin, edges);
    }
    fn add_edge(&mut self, spec: EdgeSpec) {
        self.g.add_edge(self.account, spec);
    }
    fn observe(
        &mut self,
        kind: EdgeKind,
        from: &NodeSpec,
        to: &NodeSpec,
        at: i64,
        id: Option<&str>,
    ) {
        self.g.observe(kind, from, to, at, id);
    }
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

fn build(e: &Estate) -> Graph {
    let mut g = Graph::new();
    g.reserve(e.identities.len() * 2, e.identities.len() * 10);
    let account = g.ensure(&derive::account_node(ACCT));
    let mut t = Built { g, account };
    generate(e, &mut t);
    t.g
}

fn generate(e: &Estate, g: &mut impl Target) {
    let mut rng = Rng(42);
    for i in &e.identities {
        g.set_edges(&derive::identity_node(i), derive::identity_edges(i));
    }
    let uk = NodeKind::Identity(IdentityKind::IamUser);
    let rk = NodeKind::Identity(IdentityKind::IamRole);
    // The account snapshot: group membership, permissions, trust.
    for u in 0..e.users {
        let me = spec(&user(u), uk);
        for gi in 0..3 {
            g.add_edge(EdgeSpec {
                from: me.clone(),
                kind: EdgeKind::MemberOf,
                to: spec(
                    &format!("arn:aws:iam::{ACCT}:group/g{}", (u + gi * 7) % 300),
                    NodeKind::Group,
                ),
                detail: None,
                at: None,
            });
        }
        for _ in 0..15 {
            let r = rng.index(e.buckets);
            g.add_edge(can(
                me.clone(),
                format!("arn:aws:s3:::bucket-{r}/*"),
                &["s3:GetObject"],
            ));
        }
    }
    for r in 0..e.roles {
        let me = spec(&role(r), rk);
        for _ in 0..80 {
            let x = rng.index(e.tables);
            g.add_edge(can(
                me.clone(),
                format!("arn:aws:dynamodb:us-east-1:{ACCT}:table/t{x}"),
                &["dynamodb:GetItem", "dynamodb:PutItem"],
            ));
        }
        for _ in 0..20 {
            let u = rng.index(e.users);
            g.add_edge(EdgeSpec {
                from: spec(&user(u), uk),
                kind: EdgeKind::CanAssume,
                to: me.clone(),
                detail: None,
                at: None,
            });
        }
    }
    // Kubernetes: a binding and a workload per service account.
    for (i, sa) in e
        .identities
        .iter()
        .filter(|i| i.kind == IdentityKind::ServiceAccount)
        .enumerate()
    {
        let b = NodeSpec::new(format!("k8s-obj:{}/rb", sa.id), NodeKind::Binding, "");
        g.set_edges(
            &b,
            vec![
                EdgeSpec {
                    from: derive::identity_node(sa),
                    kind: EdgeKind::BoundTo,
                    to: b.clone(),
                    detail: None,
                    at: None,
                },
                EdgeSpec {
                    from: b.clone(),
                    kind: EdgeKind::BoundTo,
                    to: spec(&format!("k8s-obj:role{}", i % 1000), NodeKind::Policy),
                    detail: None,
                    at: None,
                },
            ],
        );
        let w = NodeSpec::new(format!("k8s-obj:{}/deploy", sa.id), NodeKind::Workload, "");
        g.set_edges(
            &w,
            vec![EdgeSpec {
                from: w.clone(),
                kind: EdgeKind::RunsAs,
                to: derive::identity_node(sa),
                detail: None,
                at: None,
            }],
        );
    }
    // Activity: who created each session, and assumed its role.
    for i in e
        .identities
        .iter()
        .filter(|i| i.kind == IdentityKind::StsSession)
    {
        let by = spec(&user(rng.index(e.users)), uk);
        let t = 1_700_000_000_000 + rng.below(1_000_000_000) as i64;
        g.observe(
            EdgeKind::Created,
            &by,
            &derive::identity_node(i),
            t,
            Some("e"),
        );
        if let Some(p) = &i.parent {
            g.observe(EdgeKind::Assumed, &by, &spec(p, rk), t, None);
        }
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
