//! The query tables, the same on every store (SQLite, and PostgreSQL when
//! `KEYWARD_TEST_POSTGRES_URL` is set): nodes keep the rank they first got, an origin's
//! edges are replaced without touching another's, a node's edges come newest origin first
//! and observed ones bytewise by kind and key whatever the database's collation, a role's
//! findings come with its sessions', the marker says whether the tables hold the estate,
//! and a read snapshot sees one commit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::each;
use keyward_model::ObservedEdge;
use keyward_store::{Direction, FindingRow, GraphEdgeRow, GraphNodeRow, LogSpan};

fn node(key: &str, kind: &str) -> GraphNodeRow {
    GraphNodeRow {
        key: key.into(),
        rank: 0,
        kind: kind.into(),
        label: String::new(),
        gone: false,
        gone_because: None,
    }
}

fn edge(src: &str, kind: &str, dst: &str) -> GraphEdgeRow {
    GraphEdgeRow {
        origin: 0,
        pos: 0,
        src: src.into(),
        kind: kind.into(),
        dst: dst.into(),
        at: 7,
        detail: Some(r#"{"source":"tag owner"}"#.into()),
    }
}

fn observed(kind: &str, from: &str, to: &str) -> ObservedEdge {
    ObservedEdge {
        kind: kind.into(),
        from: from.into(),
        to: to.into(),
        count: 2,
        first_seen: 1,
        last_seen: 3,
        event_ids: vec!["e1".into()],
    }
}

/// (src, dst) of a node's derived edges as read.
fn ends(rows: &[GraphEdgeRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|e| (e.src.clone(), e.dst.clone()))
        .collect()
}

#[test]
fn nodes_keep_their_first_rank_and_origins_replace_only_their_edges() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        assert!(!s.query_tables_filled().unwrap(), "a new store's are empty");
        let mut bt = s.begin().unwrap();
        for k in ["a", "b", "c", "person:p"] {
            bt.put_graph_node(&node(k, "identity:iam_role")).unwrap();
        }
        bt.set_origin_edges(
            "a",
            &mut [edge("a", "can_assume", "c"), edge("person:p", "owns", "a")].into_iter(),
        )
        .unwrap();
        bt.set_origin_edges("b", &mut [edge("b", "can_assume", "c")].into_iter())
            .unwrap();
        assert!(
            bt.set_origin_edges("nobody", &mut [].into_iter()).is_err(),
            "an origin must be a node"
        );
        bt.set_query_tables_filled(true).unwrap();
        bt.commit().unwrap();
        assert!(s.query_tables_filled().unwrap());

        // Updated, a node keeps its rank; a new one takes the next.
        let mut bt = s.begin().unwrap();
        let mut gone = node("a", "identity:iam_role");
        gone.gone = true;
        gone.gone_because = Some("not in people.csv".into());
        gone.label = "A".into();
        bt.put_graph_node(&gone).unwrap();
        bt.put_graph_node(&node("d", "team")).unwrap();
        // `a` re-derived: its rows replaced, `b`'s untouched.
        bt.set_origin_edges("a", &mut [edge("a", "member_of", "d")].into_iter())
            .unwrap();
        bt.commit().unwrap();

        let a = s.graph_node("a").unwrap().unwrap();
        assert_eq!((a.rank, a.gone, a.label.as_str()), (1, true, "A"));
        assert_eq!(a.gone_because.as_deref(), Some("not in people.csv"));
        assert_eq!(s.graph_node("d").unwrap().unwrap().rank, 5);
        let mut many = s.graph_nodes(&["d", "zz", "b"]).unwrap();
        many.sort_by_key(|n| n.rank);
        assert_eq!(
            many.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(),
            ["b", "d"]
        );

        let into_c = s.graph_edges(&["c"], Direction::In, None, 10).unwrap();
        assert_eq!(
            ends(&into_c),
            [("b".into(), "c".into())],
            "a's edge to c is gone"
        );
        let out_a = s.graph_edges(&["a"], Direction::Out, None, 10).unwrap();
        assert_eq!(ends(&out_a), [("a".into(), "d".into())]);
        assert_eq!((out_a[0].origin, out_a[0].pos, out_a[0].at), (1, 0, 7));
        assert_eq!(
            out_a[0].detail.as_deref(),
            Some(r#"{"source":"tag owner"}"#)
        );
        assert!(
            s.graph_edges(&["person:p"], Direction::Out, None, 10)
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn a_nodes_edges_come_newest_origin_first_and_observed_ones_bytewise() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let mut bt = s.begin().unwrap();
        for k in ["x", "o1", "o2", "B", "_y", "a"] {
            bt.put_graph_node(&node(k, "resource")).unwrap();
        }
        bt.set_origin_edges(
            "o1",
            &mut [edge("o1", "can", "x"), edge("B", "can", "x")].into_iter(),
        )
        .unwrap();
        bt.set_origin_edges(
            "o2",
            &mut [edge("o2", "can", "x"), edge("a", "owns", "x")].into_iter(),
        )
        .unwrap();
        // Bytewise, `B` < `_y` < `a`; most collations put `_y` first or `a` before `B`.
        for from in ["a", "B", "_y"] {
            bt.put_observed_edge(&observed("assumed", from, "x"))
                .unwrap();
        }
        bt.put_observed_edge(&observed("created", "a", "x"))
            .unwrap();
        bt.commit().unwrap();

        let into = s.graph_edges(&["x"], Direction::In, None, 10).unwrap();
        assert_eq!(
            into.iter().map(|e| e.src.as_str()).collect::<Vec<_>>(),
            ["a", "o2", "B", "o1"],
            "origin, then position, descending"
        );
        assert_eq!(
            s.graph_edges(&["x"], Direction::In, None, 2).unwrap().len(),
            2
        );
        let srcs = |kinds: &[&str], n| {
            s.graph_edges(&["x"], Direction::In, Some(kinds), n)
                .unwrap()
                .iter()
                .map(|e| e.src.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(srcs(&["owns"], 10), ["a"], "only the kinds asked for");
        assert_eq!(srcs(&["can"], 2), ["o2", "B"], "in order, up to the limit");
        assert_eq!(srcs(&["can", "owns"], 10), ["a", "o2", "B", "o1"]);
        assert!(srcs(&["member_of"], 10).is_empty());
        let obs = s
            .observed_edges_at(&["x"], Direction::In, None, 10)
            .unwrap();
        assert_eq!(
            obs.iter()
                .map(|e| format!("{} {}", e.kind, e.from))
                .collect::<Vec<_>>(),
            ["created a", "assumed a", "assumed _y", "assumed B"]
        );
        assert_eq!(obs[0].event_ids, ["e1"]);
        let kinds = |rows: Vec<ObservedEdge>| {
            rows.iter()
                .map(|e| format!("{} {}", e.kind, e.from))
                .collect::<Vec<_>>()
        };
        let some = s
            .observed_edges_at(&["x"], Direction::In, Some(&["owns", "created"]), 10)
            .unwrap();
        assert_eq!(kinds(some), ["created a"], "only the kinds asked for");
        let first = s
            .observed_edges_at(&["x"], Direction::In, Some(&["assumed", "created"]), 2)
            .unwrap();
        assert_eq!(
            kinds(first),
            ["created a", "assumed a"],
            "in order, up to the limit"
        );
        let mut counts: Vec<(String, usize, usize)> = s
            .edge_counts(&["x", "a", "nobody"], Direction::In, 3)
            .unwrap()
            .into_iter()
            .map(|c| (c.key, c.observed, c.derived))
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("a".into(), 0, 0),
                ("nobody".into(), 0, 0),
                ("x".into(), 3, 3)
            ],
            "counted up to the limit"
        );
        let out_a = s.edge_counts(&["a"], Direction::Out, 10).unwrap();
        assert_eq!((out_a[0].observed, out_a[0].derived), (2, 1));
        let out = s
            .observed_edges_at(&["a"], Direction::Out, None, 1)
            .unwrap();
        assert_eq!((out.len(), out[0].kind.as_str()), (1, "created"));
    });
}

/// A batch of many rows (PostgreSQL's writes them many per statement, in chunks) is the
/// one-row writes in order: an origin set twice keeps its second edges, one set past a
/// chunk keeps all of them in order, a node put twice keeps its first rank and takes its
/// last kind, identities and observed edges put twice keep their last value and one
/// deleted after it was put in the same batch is gone; a hop's nodes are read together,
/// each up to the limit.
#[test]
fn many_rows_in_one_batch_are_the_one_row_writes() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let mut bt = s.begin().unwrap();
        for k in ["o", "p", "x"] {
            bt.put_graph_node(&node(k, "resource")).unwrap();
        }
        bt.set_origin_edges("o", &mut [edge("o", "can", "x")].into_iter())
            .unwrap();
        bt.set_origin_edges(
            "p",
            &mut (0..25_000).map(|i| edge("p", "can", &format!("r{i:05}"))),
        )
        .unwrap();
        bt.set_origin_edges("o", &mut [edge("o", "owns", "p")].into_iter())
            .unwrap();
        bt.put_graph_node(&node("o", "team")).unwrap();
        bt.put_graph_node(&node("y", "resource")).unwrap();
        let mut first = keyward_model::Identity::new(
            "i1".into(),
            keyward_model::Platform::Aws,
            keyward_model::IdentityKind::IamUser,
            "first".into(),
        );
        bt.put_identity(&first).unwrap();
        first.name = "second".into();
        let gone = keyward_model::Identity::new(
            "i2".into(),
            keyward_model::Platform::Aws,
            keyward_model::IdentityKind::IamUser,
            "gone".into(),
        );
        bt.put_identities(&[&first, &gone]).unwrap();
        bt.delete_identity("i2").unwrap();
        bt.put_observed_edge(&observed("assumed", "a", "x"))
            .unwrap();
        let mut more = observed("assumed", "a", "x");
        more.count = 5;
        bt.put_observed_edge(&more).unwrap();
        bt.put_observed_edge(&observed("created", "a", "x"))
            .unwrap();
        bt.delete_observed_edge("created", "a", "x").unwrap();
        bt.commit().unwrap();

        let o = s.graph_node("o").unwrap().unwrap();
        assert_eq!((o.rank, o.kind.as_str()), (1, "team"));
        assert_eq!(s.graph_node("y").unwrap().unwrap().rank, 4);
        assert_eq!(
            ends(&s.graph_edges(&["o"], Direction::Out, None, 10).unwrap()),
            [("o".into(), "p".into())]
        );
        let p = s.graph_edges(&["p"], Direction::Out, None, 30_000).unwrap();
        assert_eq!(p.len(), 25_000);
        assert_eq!((p[0].pos, p[0].dst.as_str()), (24_999, "r24999"));
        assert_eq!((p[24_999].pos, p[24_999].dst.as_str()), (0, "r00000"));
        let hop = s
            .graph_edges(&["p", "x", "o"], Direction::Out, None, 2)
            .unwrap();
        assert_eq!(
            ends(&hop).into_iter().filter(|e| e.0 == "p").count(),
            2,
            "each node up to the limit"
        );
        assert_eq!(hop.len(), 3);
        assert_eq!(s.identity("i1").unwrap().unwrap().name, "second");
        assert!(s.identity("i2").unwrap().is_none());
        let obs = s
            .observed_edges_at(&["a", "x"], Direction::Out, None, 10)
            .unwrap();
        assert_eq!(
            obs.iter()
                .map(|e| (e.kind.as_str(), e.count))
                .collect::<Vec<_>>(),
            [("assumed", 5)]
        );

        // Set again in a later batch: only the new edges are left.
        let mut bt = s.begin().unwrap();
        bt.set_origin_edges("p", &mut [edge("p", "can", "x")].into_iter())
            .unwrap();
        bt.commit().unwrap();
        assert_eq!(
            ends(&s.graph_edges(&["p"], Direction::Out, None, 30_000).unwrap()),
            [("p".into(), "x".into())]
        );
    });
}

fn finding(id: &str, identity: &str, last_seen: i64) -> FindingRow {
    FindingRow {
        id: id.into(),
        rule_id: "r".into(),
        kind: "threat".into(),
        severity: 2,
        identity: Some(identity.into()),
        status: "open".into(),
        first_seen: 1,
        last_seen,
        doc: "{}".into(),
    }
}

#[test]
fn a_roles_findings_come_with_its_sessions() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let role = "arn:aws:iam::1:role/app_x";
        let sessions = "arn:aws:sts::1:assumed-role/app_x";
        let mut bt = s.begin().unwrap();
        for row in [
            finding("f1", role, 5),
            finding("f2", &format!("{sessions}/s1"), 9),
            finding("f3", &format!("{sessions}/s2"), 5),
            // `_` is a LIKE wildcard: `app_x` must not match `appYx`.
            finding("f4", "arn:aws:sts::1:assumed-role/appYx/s", 9),
            finding("f5", "arn:aws:iam::1:role/other", 9),
        ] {
            bt.put_finding(&row).unwrap();
        }
        bt.commit().unwrap();
        let ids = |rows: Vec<FindingRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.findings_about(role, Some(sessions)).unwrap()),
            ["f2", "f1", "f3"],
            "newest first, then by id"
        );
        assert_eq!(ids(s.findings_about(role, None).unwrap()), ["f1"]);
    });
}

#[test]
fn spans_coverage_and_the_marker() {
    each(|b| {
        let f = b.fixture();
        let mut s = f.open();
        let span = |first, last| LogSpan {
            source: "cloudtrail".into(),
            scope: "111".into(),
            first_seen: first,
            last_seen: last,
        };
        let mut bt = s.begin().unwrap();
        bt.put_log_span(&span(5, 9)).unwrap();
        bt.put_log_span(&span(3, 12)).unwrap();
        bt.put_coverage("lambda", "111").unwrap();
        bt.put_coverage("lambda", "111").unwrap();
        bt.put_graph_node(&node("a", "team")).unwrap();
        bt.set_query_tables_filled(true).unwrap();
        bt.set_query_tables_filled(true).unwrap();
        bt.commit().unwrap();
        assert_eq!(s.log_span("cloudtrail", "111").unwrap(), Some(span(3, 12)));
        assert_eq!(s.log_span("k8s_audit", "111").unwrap(), None);
        assert!(s.covered("lambda", "111").unwrap());
        assert!(!s.covered("workloads", "111").unwrap());
        assert!(s.query_tables_filled().unwrap());

        let mut bt = s.begin().unwrap();
        bt.clear_query_tables().unwrap();
        bt.commit().unwrap();
        assert!(!s.query_tables_filled().unwrap());
        assert_eq!(s.log_span("cloudtrail", "111").unwrap(), None);
        assert!(!s.covered("lambda", "111").unwrap());
        assert_eq!(s.graph_node("a").unwrap(), None);
    });
}

/// A walk reads many rows: inside a read snapshot, another connection's commit is not
/// seen until it ends.
#[test]
fn a_read_snapshot_sees_one_commit() {
    each(|b| {
        let f = b.fixture();
        let mut writer = f.open();
        let mut bt = writer.begin().unwrap();
        bt.put_graph_node(&node("a", "team")).unwrap();
        bt.commit().unwrap();
        let reader = f.open();
        reader.read_snapshot(true).unwrap();
        assert!(reader.graph_node("a").unwrap().is_some());
        let mut bt = writer.begin().unwrap();
        bt.put_graph_node(&node("b", "team")).unwrap();
        bt.commit().unwrap();
        assert_eq!(reader.graph_node("b").unwrap(), None, "within the snapshot");
        reader.read_snapshot(false).unwrap();
        assert!(reader.graph_node("b").unwrap().is_some());
    });
}
