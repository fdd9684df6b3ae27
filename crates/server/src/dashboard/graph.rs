//! The identity page's graph, drawn here as SVG: the identity, its owners to the left and
//! what it reaches to the right.

use super::*;

pub(super) const NODE_W: i64 = 190;
pub(super) const NODE_H: i64 = 36;
pub(super) const COL_GAP: i64 = 250;
pub(super) const ROW_GAP: i64 = 52;
/// Nodes drawn per blast-radius level; the rest are summarized.
pub(super) const MAX_PER_LEVEL: usize = 12;

pub(super) struct GNode {
    col: i64,
    row: i64,
    label: String,
    kind: String,
    class: &'static str,
}

/// An edge between two nodes (indexes into the node list), with its label.
type GEdge = (usize, usize, String);

/// The ownership chains (leftwards, towards people and teams) and the blast radius
/// (rightwards, by distance) of one identity, as an SVG of boxes and labelled edges.
pub(super) fn draw(i: &Identity, owners: &analysis::Ownership, reach: Option<&Reach>) -> String {
    let mut nodes = vec![GNode {
        col: 0,
        row: 0,
        label: i.name.clone(),
        kind: i.kind.as_str().to_owned(),
        class: "root",
    }];
    let mut edges: Vec<GEdge> = Vec::new();
    owner_chains(owners, &mut nodes, &mut edges);
    if let Some(root) = reach {
        reach_levels(root, &mut nodes, &mut edges);
    }
    svg(&i.id, &nodes, &edges)
}

/// Ownership chains: one row per candidate, hop k at column -(k+1).
fn owner_chains(owners: &analysis::Ownership, nodes: &mut Vec<GNode>, edges: &mut Vec<GEdge>) {
    for (r, c) in owners
        .people
        .iter()
        .chain(&owners.teams)
        .take(MAX_PER_LEVEL)
        .enumerate()
    {
        let mut prev = 0;
        for (k, h) in c.chain.iter().enumerate() {
            let last = k + 1 == c.chain.len();
            nodes.push(GNode {
                col: -(k as i64 + 1),
                row: r as i64,
                label: h.label.clone(),
                kind: h.node_kind.to_owned(),
                class: if last { "owner" } else { "hop" },
            });
            let idx = nodes.len() - 1;
            edges.push((prev, idx, h.edge.as_str().to_owned()));
            prev = idx;
        }
    }
}

/// Blast radius: breadth-first levels at columns 1, 2, … (at most 6), each of at most
/// [`MAX_PER_LEVEL`] nodes and a `+n more` box for the rest.
fn reach_levels(root: &Reach, nodes: &mut Vec<GNode>, edges: &mut Vec<GEdge>) {
    let mut level: Vec<(usize, &Reach)> = vec![(0, root)];
    let mut col = 1;
    while !level.is_empty() && col <= 6 {
        let mut next = Vec::new();
        let mut row = 0i64;
        let mut hidden = 0usize;
        for (parent, r) in &level {
            for ch in &r.children {
                if row as usize >= MAX_PER_LEVEL {
                    hidden += 1;
                    continue;
                }
                let class = if ch.actions.is_empty() {
                    "reach"
                } else {
                    "resource"
                };
                let label = if ch.actions.is_empty() {
                    ch.label.clone()
                } else {
                    format!("{} [{}]", ch.label, ch.actions.len())
                };
                nodes.push(GNode {
                    col,
                    row,
                    label,
                    kind: ch.node_kind.to_owned(),
                    class,
                });
                let idx = nodes.len() - 1;
                edges.push((
                    *parent,
                    idx,
                    ch.via.map_or_else(String::new, |v| v.as_str().to_owned()),
                ));
                next.push((idx, ch));
                row += 1;
            }
        }
        if hidden > 0 {
            nodes.push(GNode {
                col,
                row,
                label: format!("+{hidden} more"),
                kind: String::new(),
                class: "more",
            });
        }
        level = next;
        col += 1;
    }
}

/// Where a node's box goes: its column's left edge and its row's top edge.
struct Grid {
    min_col: i64,
}

impl Grid {
    fn x(&self, col: i64) -> i64 {
        10 + (col - self.min_col) * COL_GAP
    }

    fn y(&self, row: i64) -> i64 {
        10 + row * ROW_GAP
    }
}

/// The nodes and edges laid out on the grid, as SVG text; `id` names the drawing.
fn svg(id: &str, nodes: &[GNode], edges: &[GEdge]) -> String {
    let grid = Grid {
        min_col: nodes.iter().map(|n| n.col).min().unwrap_or(0),
    };
    let max_col = nodes.iter().map(|n| n.col).max().unwrap_or(0);
    let rows = nodes.iter().map(|n| n.row).max().unwrap_or(0) + 1;
    let width = grid.x(max_col) + NODE_W + 10;
    let height = grid.y(rows - 1) + NODE_H + 10;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"ownership chain and blast \
         radius of {}\">",
        esc(id)
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 \
         L10,5 L0,10 z\" fill=\"#98a2b3\"/></marker></defs>",
    );
    for (a, b, label) in edges {
        let (Some(na), Some(nb)) = (nodes.get(*a), nodes.get(*b)) else {
            continue;
        };
        edge_svg(&mut s, &grid, na, nb, label);
    }
    for n in nodes {
        node_svg(&mut s, &grid, n);
    }
    s.push_str("</svg>");
    s
}

/// An edge from the left box to the right one, whichever way it was walked.
fn edge_svg(s: &mut String, grid: &Grid, na: &GNode, nb: &GNode, label: &str) {
    let (l, r) = if na.col <= nb.col { (na, nb) } else { (nb, na) };
    let (x1, y1) = (grid.x(l.col) + NODE_W, grid.y(l.row) + NODE_H / 2);
    let (x2, y2) = (grid.x(r.col), grid.y(r.row) + NODE_H / 2);
    let mid = (x1 + x2) / 2;
    let _ = write!(
        s,
        "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" \
         fill=\"none\" stroke=\"#98a2b3\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\
         <text class=\"edge-label\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (y1 + y2) / 2 - 4,
        esc(label)
    );
}

/// A node's box: colours by class, its label (cut at 28 characters) and its kind.
fn node_svg(s: &mut String, grid: &Grid, n: &GNode) {
    let (fill, stroke) = match n.class {
        "root" => ("#1d2430", "#1d2430"),
        "owner" => ("#ecfdf3", "#12b76a"),
        "hop" => ("#f2f4f7", "#98a2b3"),
        "resource" => ("#fffaeb", "#f79009"),
        "more" => ("#ffffff", "#d0d5dd"),
        _ => ("#eff4ff", "#2f5bea"),
    };
    let text = if n.class == "root" {
        "#ffffff"
    } else {
        "#1d2430"
    };
    let label: String = n.label.chars().take(28).collect();
    let label = if n.label.chars().count() > 28 {
        format!("{label}…")
    } else {
        label
    };
    let (x, y) = (grid.x(n.col), grid.y(n.row));
    let _ = write!(
        s,
        "<g class=\"node {}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{NODE_W}\" \
         height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" \
         y=\"{}\" fill=\"{text}\">{}</text><text x=\"{}\" y=\"{}\" fill=\"{text}\" \
         opacity=\"0.7\" font-size=\"10\">{}</text></g>",
        n.class,
        esc(&format!("{} ({})", n.label, n.kind)),
        x,
        y,
        x + 8,
        y + 15,
        esc(&label),
        x + 8,
        y + 29,
        esc(&n.kind.replace('_', " ")),
    );
}
