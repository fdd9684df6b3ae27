//! Writing the graph for other tools: Graphviz DOT, GraphML (Gephi, yEd, NetworkX) and
//! JSON. Streams node by node and edge by edge, so exporting a large graph holds no copy
//! of it. Node ids in every format are the graph's keys.

use std::io::{self, Write};

use serde::Serialize;

use crate::graph::{Detail, EdgeView, Graph, Node};

/// Which edges to write (nodes without any written edge are still written).
pub type EdgeFilter<'f> = &'f dyn Fn(&EdgeView<'_>) -> bool;

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text escaped for XML and HTML (GraphML here; the dashboard's SVG).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn shape(n: &Node) -> &'static str {
    use crate::graph::NodeKind as K;
    match n.kind {
        K::Identity(_) => "ellipse",
        K::Credential => "note",
        K::Person | K::Team => "house",
        K::Workload | K::Repository => "component",
        K::Iac => "folder",
        K::Resource => "cylinder",
        K::Policy | K::Binding | K::Group => "box",
        K::Account => "doubleoctagon",
    }
}

fn times(e: &EdgeView<'_>) -> (String, String) {
    let f = |t: Option<i64>| t.map(keyward_model::time::format).unwrap_or_default();
    (f(e.first_seen), f(e.last_seen))
}

fn detail_text(d: Option<&Detail>) -> (String, String, String, String) {
    match d {
        None => Default::default(),
        Some(d) => (
            d.source.clone(),
            d.actions.join(" "),
            d.conditions.join("; "),
            d.event_ids.join(" "),
        ),
    }
}

/// Graphviz DOT (`dot -Tsvg`).
pub fn dot(g: &Graph, keep: EdgeFilter<'_>, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "digraph keyward {{")?;
    writeln!(w, "  rankdir=LR;")?;
    writeln!(w, "  node [fontsize=10];")?;
    for (_, key, n) in g.nodes() {
        let label = if n.label.is_empty() { key } else { &n.label };
        writeln!(
            w,
            "  \"{}\" [label=\"{}\", shape={}, kind=\"{}\"{}];",
            dot_escape(key),
            dot_escape(label),
            shape(n),
            n.kind.as_str(),
            if n.gone { ", style=dashed" } else { "" }
        )?;
    }
    for e in g.edges().filter(|e| keep(e)) {
        let (first, last) = times(&e);
        let (source, actions, conditions, _) = detail_text(e.detail);
        writeln!(
            w,
            "  \"{}\" -> \"{}\" [label=\"{}\", count={}, first_seen=\"{}\", last_seen=\"{}\", source=\"{}\", actions=\"{}\", conditions=\"{}\"];",
            dot_escape(g.key(e.from)),
            dot_escape(g.key(e.to)),
            e.kind,
            e.count,
            first,
            last,
            dot_escape(&source),
            dot_escape(&actions),
            dot_escape(&conditions),
        )?;
    }
    writeln!(w, "}}")
}

/// GraphML with typed attributes (`kind`, `label`, `gone` on nodes; `kind`, `count`, times
/// and evidence on edges).
pub fn graphml(g: &Graph, keep: EdgeFilter<'_>, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">"#
    )?;
    for (id, target, name, ty) in [
        ("nk", "node", "kind", "string"),
        ("nl", "node", "label", "string"),
        ("ng", "node", "gone", "boolean"),
        ("ek", "edge", "kind", "string"),
        ("ec", "edge", "count", "int"),
        ("ef", "edge", "first_seen", "string"),
        ("el", "edge", "last_seen", "string"),
        ("es", "edge", "source", "string"),
        ("ea", "edge", "actions", "string"),
        ("eo", "edge", "conditions", "string"),
        ("ee", "edge", "event_ids", "string"),
    ] {
        writeln!(
            w,
            r#"  <key id="{id}" for="{target}" attr.name="{name}" attr.type="{ty}"/>"#
        )?;
    }
    writeln!(w, r#"  <graph id="keyward" edgedefault="directed">"#)?;
    for (_, key, n) in g.nodes() {
        writeln!(
            w,
            r#"    <node id="{}"><data key="nk">{}</data><data key="nl">{}</data><data key="ng">{}</data></node>"#,
            xml_escape(key),
            n.kind.as_str(),
            xml_escape(&n.label),
            n.gone
        )?;
    }
    for (i, e) in g.edges().filter(|e| keep(e)).enumerate() {
        let (first, last) = times(&e);
        let (source, actions, conditions, events) = detail_text(e.detail);
        writeln!(
            w,
            r#"    <edge id="e{i}" source="{}" target="{}"><data key="ek">{}</data><data key="ec">{}</data><data key="ef">{first}</data><data key="el">{last}</data><data key="es">{}</data><data key="ea">{}</data><data key="eo">{}</data><data key="ee">{}</data></edge>"#,
            xml_escape(g.key(e.from)),
            xml_escape(g.key(e.to)),
            e.kind,
            e.count,
            xml_escape(&source),
            xml_escape(&actions),
            xml_escape(&conditions),
            xml_escape(&events),
        )?;
    }
    writeln!(w, "  </graph>")?;
    writeln!(w, "</graphml>")
}

#[derive(Serialize)]
struct JsonNode<'a> {
    id: &'a str,
    kind: &'static str,
    class: &'static str,
    label: &'a str,
    gone: bool,
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: &'a str,
    to: &'a str,
    kind: crate::graph::EdgeKind,
    count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
    /// The origin an edge was derived from; absent for observed edges.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a Detail>,
}

/// `{"nodes": [...], "edges": [...]}`, one element per line.
pub fn json(g: &Graph, keep: EdgeFilter<'_>, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "{{\"nodes\": [")?;
    let mut first = true;
    for (_, key, n) in g.nodes() {
        let j = JsonNode {
            id: key,
            kind: n.kind.as_str(),
            class: n.kind.class(),
            label: &n.label,
            gone: n.gone,
        };
        write!(w, "{}", if first { "  " } else { ",\n  " })?;
        serde_json::to_writer(&mut *w, &j)?;
        first = false;
    }
    writeln!(w, "\n], \"edges\": [")?;
    first = true;
    for e in g.edges().filter(|e| keep(e)) {
        let j = JsonEdge {
            from: g.key(e.from),
            to: g.key(e.to),
            kind: e.kind,
            count: e.count,
            first_seen: e.first_seen.map(keyward_model::time::format),
            last_seen: e.last_seen.map(keyward_model::time::format),
            origin: e.origin.map(|o| g.key(o)),
            evidence: e.detail.filter(|d| **d != Detail::default()),
        };
        write!(w, "{}", if first { "  " } else { ",\n  " })?;
        serde_json::to_writer(&mut *w, &j)?;
        first = false;
    }
    writeln!(w, "\n]}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeKind, NodeKind, NodeSpec};
    use keyward_model::IdentityKind;

    fn sample() -> Graph {
        let mut g = Graph::new();
        let a = NodeSpec::new(
            "arn:aws:iam::1:user/a\"b",
            NodeKind::Identity(IdentityKind::IamUser),
            "a<b>&",
        );
        let b = NodeSpec::new("team:x", NodeKind::Team, "x");
        g.observe(EdgeKind::Created, &a, &b, 1_700_000_000_000, Some("ev-1"));
        g
    }

    #[test]
    fn formats_escape_and_parse() {
        let g = sample();
        let all: EdgeFilter<'_> = &|_| true;
        let mut out = Vec::new();
        json(&g, all, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
        assert_eq!(v["edges"][0]["kind"], "created");
        assert_eq!(v["edges"][0]["evidence"]["event_ids"][0], "ev-1");
        let mut out = Vec::new();
        dot(&g, all, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(r#""arn:aws:iam::1:user/a\"b" -> "team:x""#),
            "{s}"
        );
        let mut out = Vec::new();
        graphml(&g, all, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("a&lt;b&gt;&amp;"));
        assert!(s.contains(r#"source="arn:aws:iam::1:user/a&quot;b""#));
    }
}
