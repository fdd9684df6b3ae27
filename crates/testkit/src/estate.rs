//! The generated estate the graph and query benchmarks share: 1M identities (by default)
//! of the shape described in `crates/graph/benches/graph.rs` — IAM users with owner tags,
//! keys and groups, roles with team tags trusted by users, STS sessions of those roles
//! created by users, long-term keys, Kubernetes service accounts bound and run by
//! workloads — and about ten edges per identity. Deterministic: the same `n` gives the
//! same estate.

use keyward_graph::derive;
use keyward_graph::{Detail, EdgeKind, EdgeSpec, Graph, NodeKind, NodeSpec};
use keyward_model::{Identity, IdentityKind, Platform};

use crate::Rng;

/// The account every generated AWS identity is in.
pub const ACCT: &str = "111122223333";

pub fn user(i: usize) -> String {
    format!("arn:aws:iam::{ACCT}:user/u{i}")
}

pub fn role(i: usize) -> String {
    format!("arn:aws:iam::{ACCT}:role/r{i}")
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

pub struct Estate {
    pub identities: Vec<Identity>,
    pub users: usize,
    pub roles: usize,
    pub sessions: usize,
    /// Resources shared by the identities' permissions.
    pub buckets: usize,
    pub tables: usize,
}

/// The estate of `n` identities.
pub fn estate(n: usize) -> Estate {
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

/// Where the generated estate goes: the graph, or nowhere (to time the generator alone,
/// which is subtracted from the build time).
pub trait Target {
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

/// Sends the estate's edges to `g`: identity edges as ingestion derives them, the rest per
/// origin as the snapshot derivations do (the account's through [`Target::add_edge`]),
/// sessions' creations as events are observed.
pub fn generate(e: &Estate, g: &mut impl Target) {
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

/// The estate's graph, as ingestion and the snapshot derivations would build it (the
/// account snapshot's edges under the account's node).
pub fn build(e: &Estate) -> Graph {
    let mut g = Graph::new();
    g.reserve(e.identities.len() * 2, e.identities.len() * 10);
    let account = g.ensure(&derive::account_node(ACCT));
    let mut t = Built { g, account };
    generate(e, &mut t);
    t.g
}
