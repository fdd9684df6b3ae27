//! Questions about one identity answered from the store's query tables
//! ([`Engine::open_about`]) answer as the whole estate does: `show` (state, owners, orphan
//! reason, threat findings), `findings --identity`, `graph chain` (owners, what it is bound
//! to), `graph blast-radius` (with and without `--since`) and inventory pages, for every identity of the
//! example estate and of the corpora, on SQLite and (with `KEYWARD_TEST_POSTGRES_URL`) on
//! PostgreSQL. The tables are kept in step by every write — ingest in pieces, ingest again,
//! clusters merged — and equal the graph a fresh load builds; a store whose tables were
//! never filled (an older version's) answers from the estate until a writer fills them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyward_engine::{
    Engine, Filter, FindingQuery, IngestOptions, Need, OwnerFilter, Page, Resolve,
};
use keyward_graph::analysis::{BlastOptions, blast_radius};
use keyward_graph::{EdgeKind, NodeKind};
use keyward_model::{IdentityKind, LifecycleConfig, Platform};
use keyward_store::{Direction, Store};

fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

/// 2026-12-01, the golden answers' `--as-of`, and a year later (nothing spans it).
const AS_OF: [i64; 2] = [1_796_083_200_000, 1_827_619_200_000];

fn ingest(e: &mut Engine, paths: &[PathBuf]) {
    let _lock = e.write_lock().unwrap();
    e.ingest(paths, &IngestOptions::default(), &mut (), 1_800_000_000_000)
        .unwrap();
}

/// What `need` asks about `id`, as text to compare.
fn answer(e: &Engine, id: &str, need: Need) -> String {
    let Resolve::Found(ident) = e.resolve(id) else {
        panic!("`{id}` not found");
    };
    let mut out = Vec::new();
    let g = e.graph();
    let node = g.find(&ident.id);
    match need {
        Need::Show | Need::Chain => {
            for as_of in AS_OF {
                let lc = LifecycleConfig {
                    as_of,
                    stale_after_days: 30,
                };
                out.push(format!("{:?}", e.lifecycles(lc).of(ident)));
            }
            let o = e.owner_info(ident, &e.coverage());
            out.push(serde_json::to_string(&o.ownership).unwrap());
            out.push(format!("{:?}", o.orphan));
            let threats = FindingQuery {
                identity: Some(ident.id.clone()),
                kind: Some(keyward_detect::Kind::Threat),
                ..FindingQuery::default()
            };
            out.push(serde_json::to_string(&e.findings(&threats).unwrap()).unwrap());
            if need == Need::Chain
                && let Some(n) = node
            {
                let opts = BlastOptions {
                    since: None,
                    max_depth: 4,
                    max_nodes: 200,
                };
                out.push(serde_json::to_string(&blast_radius(g, n, opts)).unwrap());
                for m in g.out_edges(n).filter(|x| x.kind == EdgeKind::MemberOf) {
                    out.push(format!("{} {:?}", g.key(m.to), m.last_seen));
                }
            }
        }
        Need::Findings => {
            let all = FindingQuery {
                identity: Some(id.to_owned()),
                ..FindingQuery::default()
            };
            out.push(serde_json::to_string(&e.findings(&all).unwrap()).unwrap());
        }
        Need::Blast { since, depth } => {
            if let Some(n) = node {
                let opts = BlastOptions {
                    since,
                    max_depth: depth,
                    ..BlastOptions::default()
                };
                out.push(serde_json::to_string(&blast_radius(g, n, opts)).unwrap());
            }
        }
    }
    out.join("\n")
}

const NEEDS: [Need; 5] = [
    Need::Show,
    Need::Findings,
    Need::Chain,
    Need::Blast {
        since: None,
        depth: 6,
    },
    Need::Blast {
        since: Some(0),
        depth: 6,
    },
];

/// Every identity of `full`, asked every question through a view of `open`'s store:
/// each answer as `full`'s. Returns how many identities were asked about.
fn views_answer_as(full: &Engine, open: &dyn Fn() -> Box<dyn Store>) -> usize {
    let mut ids: Vec<String> = full.inventory().iter().map(|i| i.id.clone()).collect();
    ids.sort();
    for id in &ids {
        for need in NEEDS {
            let view = Engine::about(open(), id, need).unwrap();
            assert!(view.is_view(), "`{id}` {need:?}: answered from the estate");
            assert_eq!(
                answer(&view, id, need),
                answer(full, id, need),
                "`{id}` {need:?}"
            );
        }
    }
    ids.len()
}

/// Inventory pages (filters, offsets, limits) listed from `open`'s tables: each as
/// `full` lists it, rows, states and owners.
fn pages_answer_as(full: &Engine, open: &dyn Fn() -> Box<dyn Store>) {
    let account = full
        .inventory()
        .iter()
        .find_map(|i| i.account.clone())
        .unwrap_or_default();
    let cluster = full
        .inventory()
        .iter()
        .find_map(|i| i.cluster.clone())
        .unwrap_or_default();
    let filters = [
        Filter::default(),
        Filter {
            platform: Some(Platform::Aws),
            ..Filter::default()
        },
        Filter {
            platform: Some(Platform::Aws),
            kind: Some(IdentityKind::IamRole),
            account: Some(account),
            ..Filter::default()
        },
        Filter {
            account: Some(cluster),
            ..Filter::default()
        },
        Filter {
            kind: Some(IdentityKind::StsSession),
            ..Filter::default()
        },
    ];
    let rows = |e: &Engine, f: &Filter, offset, limit| -> Vec<String> {
        let lc = LifecycleConfig {
            as_of: AS_OF[0],
            stale_after_days: 30,
        };
        e.page(f, lc, &OwnerFilter::default(), offset, limit)
            .into_iter()
            .map(|((i, s), o)| {
                let o = o.unwrap();
                format!(
                    "{} {s:?} {} {:?}",
                    i.id,
                    serde_json::to_string(&o.ownership).unwrap(),
                    o.orphan
                )
            })
            .collect()
    };
    for filter in filters {
        for (offset, limit) in [(0, 10), (3, 40), (150, 25), (0, 5_000)] {
            let page = Page {
                filter: filter.clone(),
                offset,
                limit,
            };
            let view = Engine::page_of(open(), &page).unwrap();
            assert!(view.is_view(), "{page:?}: answered from the estate");
            let want = rows(full, &filter, offset, limit);
            let have = rows(&view, &filter, offset, limit);
            assert_eq!(have.len(), want.len(), "{page:?}");
            for (h, w) in have.iter().zip(&want) {
                assert_eq!(h, w, "{page:?}");
            }
        }
    }
}

/// Differences between the store's tables and the graph a fresh load builds: every node
/// with its kind, label and departure, every derived edge (by its ends, kind, time and
/// evidence), the log spans' and coverage's rows for what the graph shows.
fn tables_against_graph(store: &dyn Store, full: &Engine) -> Vec<String> {
    let g = full.graph();
    let mut wrong = Vec::new();
    for (id, key, n) in g.nodes() {
        let Some(row) = store.graph_node(key).unwrap() else {
            wrong.push(format!("node `{key}` missing"));
            continue;
        };
        if NodeKind::from_code(&row.kind) != Some(n.kind)
            || row.label != *n.label
            || row.gone != n.gone
            || row.gone_because.as_deref() != g.gone_because(id)
        {
            wrong.push(format!("node `{key}`: {row:?} vs {n:?}"));
        }
        let mut want: Vec<String> = g
            .out_edges(id)
            .filter(|e| e.origin.is_some())
            .map(|e| {
                let detail = e
                    .detail
                    .filter(|d| **d != keyward_graph::Detail::default())
                    .map(|d| serde_json::to_string(d).unwrap());
                format!(
                    "{} {} {} {:?} {detail:?}",
                    g.key(e.from),
                    e.kind,
                    g.key(e.to),
                    e.first_seen.unwrap_or(0)
                )
            })
            .collect();
        let mut have: Vec<String> = store
            .graph_edges(&[key], Direction::Out, None, usize::MAX >> 1)
            .unwrap()
            .into_iter()
            .map(|e| {
                let detail = e.detail.map(|d| {
                    let d: keyward_graph::Detail = serde_json::from_str(&d).unwrap();
                    serde_json::to_string(&d).unwrap()
                });
                format!("{} {} {} {:?} {detail:?}", e.src, e.kind, e.dst, e.at)
            })
            .collect();
        want.sort();
        have.sort();
        if want != have {
            wrong.push(format!(
                "edges of `{key}`:\n  want {want:?}\n  have {have:?}"
            ));
        }
    }
    wrong
}

#[test]
fn views_of_the_example_estate_answer_as_the_estate() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    ingest(&mut e, &[estate()]);
    drop(e);
    let full = Engine::open(dir.path()).unwrap();
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    let n = views_answer_as(&full, &open);
    assert!(n > 500, "the estate loaded ({n})");
    pages_answer_as(&full, &open);
    let store = keyward_store::SqliteStore::open(dir.path()).unwrap();
    assert_eq!(tables_against_graph(&store, &full), Vec::<String>::new());
}

/// Ingested piece by piece, in an order unlike a directory walk's, then again: the tables
/// equal a fresh load's graph and the views answer as it does.
#[test]
fn the_tables_follow_ingest_in_pieces_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    let mut pieces = keyward_testkit::sorted_dir(&estate());
    pieces.reverse();
    for p in &pieces {
        ingest(&mut e, std::slice::from_ref(p));
    }
    ingest(&mut e, &[estate()]);
    drop(e);
    let full = Engine::open(dir.path()).unwrap();
    let store = keyward_store::SqliteStore::open(dir.path()).unwrap();
    assert_eq!(tables_against_graph(&store, &full), Vec::<String>::new());
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    views_answer_as(&full, &open);
    pages_answer_as(&full, &open);
}

/// A store whose tables were never filled (an older version wrote it) answers from the
/// estate, never from empty tables; the next writer fills them.
#[test]
fn unfilled_tables_are_never_read_and_the_next_writer_fills_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    ingest(&mut e, &[estate()]);
    drop(e);
    {
        let mut store = keyward_store::SqliteStore::open(dir.path()).unwrap();
        let mut batch = store.begin().unwrap();
        batch.clear_query_tables().unwrap();
        batch.commit().unwrap();
    }
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    let full = Engine::open(dir.path()).unwrap();
    let id = full.inventory().iter().next().unwrap().id.clone();
    let view = Engine::about(open(), &id, Need::Show).unwrap();
    assert!(!view.is_view(), "unfilled tables were read");
    assert_eq!(
        answer(&view, &id, Need::Show),
        answer(&full, &id, Need::Show)
    );
    let mut writer = Engine::open(dir.path()).unwrap();
    drop(writer.write_lock().unwrap());
    assert!(Engine::about(open(), &id, Need::Show).unwrap().is_view());
    views_answer_as(&full, &open);
}

/// An identity named by something other than its id or ARN (a name, a suffix) needs every
/// row: the estate answers.
#[test]
fn a_name_is_resolved_over_the_estate() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    ingest(&mut e, &[estate()]);
    let named = e
        .inventory()
        .iter()
        .find(|i| !i.name.is_empty() && i.name != i.id)
        .unwrap()
        .name
        .clone();
    drop(e);
    let store = Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap());
    let view = Engine::about(store, &named, Need::Show).unwrap();
    assert!(!view.is_view());
}

/// Two clusters stored under different names, joined at the next ingest on their shared
/// service-account uids: identities, objects and edges re-keyed, rows deleted. The tables
/// equal a fresh load's graph.
#[test]
fn the_tables_follow_a_cluster_merge() {
    let root = tempfile::tempdir().unwrap();
    let k8s = estate().join("k8s/prod-eks");
    let (rbac, audit) = (
        root.path().join("in/rbac.json"),
        root.path().join("in/audit.log"),
    );
    std::fs::create_dir_all(root.path().join("in")).unwrap();
    std::fs::copy(k8s.join("rbac-snapshot.json"), &rbac).unwrap();
    std::fs::copy(k8s.join("audit.jsonl"), &audit).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    {
        let _lock = e.write_lock().unwrap();
        let opts = IngestOptions {
            cluster: Some("audit".into()),
            ..IngestOptions::default()
        };
        e.ingest(&[audit], &opts, &mut (), 1_800_000_000_000)
            .unwrap();
    }
    ingest(&mut e, &[rbac]);
    let clusters: BTreeSet<String> = e.clusters().into_keys().collect();
    assert_eq!(clusters.len(), 1, "joined: {clusters:?}");
    drop(e);
    let full = Engine::open(dir.path()).unwrap();
    let store = keyward_store::SqliteStore::open(dir.path()).unwrap();
    assert_eq!(tables_against_graph(&store, &full), Vec::<String>::new());
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    views_answer_as(&full, &open);
    pages_answer_as(&full, &open);
}

/// The corpora (AWS authorization details, privilege-escalation labs, Kubernetes RBAC and
/// audit logs): every identity's views answer as the estate.
#[test]
fn views_of_the_corpora_answer_as_the_estate() {
    let Some(corpora) = keyward_testkit::corpora() else {
        eprintln!("skipped: no corpora (KEYWARD_CORPORA)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    let inputs: Vec<PathBuf> = [
        "aws-iam-authz-small",
        "aws-privesc-pathfinding-cloud",
        "k8s-audit2rbac-demo",
        "k8s-rbac-posture-kubescape",
        "aws-cloudtrail-stratus-detonations",
    ]
    .iter()
    .map(|d| corpora.join(d))
    .filter(|p| p.exists())
    .collect();
    ingest(&mut e, &inputs);
    drop(e);
    let full = Engine::open(dir.path()).unwrap();
    let store = keyward_store::SqliteStore::open(dir.path()).unwrap();
    assert_eq!(tables_against_graph(&store, &full), Vec::<String>::new());
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    let n = views_answer_as(&full, &open);
    assert!(n > 50, "the corpora loaded ({n})");
    pages_answer_as(&full, &open);
}

#[test]
fn views_answer_as_the_estate_on_postgres() {
    let Some(db) = common::Database::new("kw_test_views") else {
        return;
    };
    let url = db.url.clone();
    let keys = tempfile::tempdir().unwrap();
    let mut e = Engine::open_url(&url, keys.path()).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    let mut pieces = keyward_testkit::sorted_dir(&estate());
    pieces.reverse();
    for p in &pieces {
        ingest(&mut e, std::slice::from_ref(p));
    }
    drop(e);
    let full = Engine::open_url(&url, keys.path()).unwrap();
    let store = keyward_store::open(&url, keys.path()).unwrap();
    let wrong = tables_against_graph(store.as_ref(), &full);
    drop(store);
    let open = || keyward_store::open(&url, keys.path()).unwrap();
    let n = views_answer_as(&full, &open);
    pages_answer_as(&full, &open);
    drop(full);
    assert_eq!(wrong, Vec::<String>::new());
    assert!(n > 500);
}

/// Pages of the generated estate (`keyward_testkit::estate`: roles with many sessions and
/// assumers, users with keys and owner tags), its graph written into `store` as the query
/// benchmark writes it: each row's owners and orphan reason, walked for the whole page
/// together (`view/owners.rs`), are what `OwnershipCache` and `orphan_reason` give over
/// the whole graph.
fn generated_pages_answer_as_the_graph(store: &mut dyn Store, open: &dyn Fn() -> Box<dyn Store>) {
    use keyward_graph::analysis::{Coverage, OwnershipCache, orphan_reason};
    let e = keyward_testkit::estate::estate(4_000);
    let mut g = keyward_testkit::estate::build(&e);
    let mut batch = store.begin().unwrap();
    batch
        .put_identities(&e.identities.iter().collect::<Vec<_>>())
        .unwrap();
    batch.commit().unwrap();
    keyward_engine::write_query_tables(store, &mut g, &e.identities).unwrap();
    let coverage = Coverage::of(&g);
    let mut cache = OwnershipCache::without_chains();
    let lc = LifecycleConfig {
        as_of: AS_OF[0],
        stale_after_days: 30,
    };
    for (kind, offset, limit) in [
        (IdentityKind::IamRole, 20, 50),
        (IdentityKind::StsSession, 100, 50),
        (IdentityKind::StsSession, 2_550, 100),
        (IdentityKind::AccessKey, 0, 30),
        (IdentityKind::IamUser, 390, 50),
    ] {
        let filter = Filter {
            kind: Some(kind),
            ..Filter::default()
        };
        let mut listed: Vec<&keyward_model::Identity> =
            e.identities.iter().filter(|i| i.kind == kind).collect();
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        let want: Vec<String> = listed
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|i| {
                let node = g.find(&i.id).unwrap();
                let o = cache.get(&g, node);
                let scope = i.account.as_deref().or(i.cluster.as_deref());
                let why = orphan_reason(&g, node, i.kind, scope, &o, &coverage, false);
                format!("{} {} {why:?}", i.id, serde_json::to_string(&o).unwrap())
            })
            .collect();
        let page = Page {
            filter: filter.clone(),
            offset,
            limit,
        };
        let view = Engine::page_of(open(), &page).unwrap();
        assert!(view.is_view(), "{page:?}: answered from the estate");
        let have: Vec<String> = view
            .page(&filter, lc, &OwnerFilter::default(), offset, limit)
            .into_iter()
            .map(|((i, _), o)| {
                let o = o.unwrap();
                format!(
                    "{} {} {:?}",
                    i.id,
                    serde_json::to_string(&o.ownership).unwrap(),
                    o.orphan
                )
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(have, want, "{page:?}");
    }
}

#[test]
fn pages_of_the_generated_estate_walk_their_owners_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = keyward_store::SqliteStore::open(dir.path()).unwrap();
    let open =
        || -> Box<dyn Store> { Box::new(keyward_store::SqliteStore::open(dir.path()).unwrap()) };
    generated_pages_answer_as_the_graph(&mut store, &open);
}

#[test]
fn pages_of_the_generated_estate_walk_their_owners_together_on_postgres() {
    let Some(db) = common::Database::new("kw_test_pages") else {
        return;
    };
    let url = db.url.clone();
    let keys = tempfile::tempdir().unwrap();
    let mut store = keyward_store::open(&url, keys.path()).unwrap();
    let open = || keyward_store::open(&url, keys.path()).unwrap();
    generated_pages_answer_as_the_graph(store.as_mut(), &open);
    drop(store);
}
