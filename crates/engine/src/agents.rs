//! The questions asked of AI agents (docs/graph.md, "AI agents"), answered from what is
//! stored: which agents created identities in a window (their sessions' observed `created`
//! edges), the identity chains an agent created (its sessions, the person who prompted
//! each, what each created and what those credentials did), and what agents access most
//! (the stored events of the credentials their sessions created, and their tool calls).
//! Reads only; the MCP server (`server/src/mcp.rs`) is their first surface.

use std::collections::BTreeMap;

use keyward_graph::analysis::{BlastOptions, BlastRadius, blast_radius};
use keyward_graph::{EdgeKind, Graph, NodeKind};
use keyward_model::time::{self, Millis};
use keyward_model::{Event, Identity, IdentityKind};
use serde::Serialize;

use crate::{Engine, EngineError};

/// How many of a credential's or a session's most recent events are read.
const RECENT: usize = 1_000;

/// What one agent session `created` (an observed edge), with when it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub id: String,
    pub name: String,
    /// e.g. `sts_session`, `access_key`, `iam_role`.
    pub kind: String,
    /// RFC 3339; the edge's first and last sighting.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// How many events showed it.
    pub count: u32,
}

/// An agent and the identities its sessions created in a window.
#[derive(Debug, Clone, Serialize)]
pub struct AgentCreations {
    pub agent: String,
    pub agent_name: String,
    pub sessions: Vec<SessionCreations>,
}

/// One session of an agent and what it created in the window.
#[derive(Debug, Clone, Serialize)]
pub struct SessionCreations {
    pub session: String,
    /// The person whose prompt started it, when the traces say.
    pub prompted_by: Option<String>,
    pub created: Vec<Created>,
}

/// One action of a credential, counted.
#[derive(Debug, Clone, Serialize)]
pub struct ActionCount {
    pub action: String,
    pub target: Option<String>,
    pub count: usize,
    /// How many of them were denied.
    pub denied: usize,
    pub last: String,
}

/// A credential an agent session created, and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedChain {
    #[serde(flatten)]
    pub created: Created,
    /// The role a session belongs to (`session_of`), when known.
    pub role: Option<String>,
    pub actions: Vec<ActionCount>,
}

/// One session of an agent: who prompted it, its tool calls, what it created.
#[derive(Debug, Clone, Serialize)]
pub struct SessionChain {
    pub session: String,
    pub name: String,
    pub prompted_by: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Tools called (their names), counted.
    pub tool_calls: BTreeMap<String, usize>,
    pub created: Vec<CreatedChain>,
    /// The access keys its tool calls named (its `used` edges; `role` is the key's user
    /// or session), and what CloudTrail reports they did around those calls.
    pub used: Vec<CreatedChain>,
    /// The session's blast radius limited to what was created (`graph blast-radius
    /// SESSION --since …`): the chain as a tree.
    pub tree: BlastRadius,
}

/// An agent's identity chains: person → session → credential → actions.
#[derive(Debug, Clone, Serialize)]
pub struct AgentChains {
    pub agent: String,
    pub agent_name: String,
    pub sessions: Vec<SessionChain>,
}

/// One resource agents accessed, counted.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceCount {
    pub resource: String,
    /// `target` (the event names the object), `action` (it names none: the service and
    /// action stand in) or `tool` (a tool an agent session called).
    pub from: &'static str,
    pub count: usize,
    /// The agents (names) whose credentials or sessions touched it.
    pub agents: Vec<String>,
    /// Actions seen on it, counted.
    pub actions: BTreeMap<String, usize>,
}

/// The sessions of `agent`, by id.
fn sessions_of<'e>(e: &'e Engine, agent: &str) -> Vec<&'e Identity> {
    let mut out: Vec<&Identity> = e
        .inventory
        .iter()
        .filter(|s| s.kind == IdentityKind::AgentSession && s.parent.as_deref() == Some(agent))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The person whose prompt started agent session `s`, when its traces say.
pub(crate) fn prompted_by(s: &Identity) -> Option<&str> {
    s.details
        .get("agent_session")
        .and_then(|d| d.get("prompted_by"))
        .and_then(serde_json::Value::as_str)
}

/// A credential an agent session holds: one it created (an observed `created` edge: the
/// STS session a tool call assumed) or one it used (an observed `used` edge: the access
/// key a tool call named), with the edge's sightings.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// `created` or `used`.
    pub via: EdgeKind,
    pub id: String,
    pub name: String,
    pub kind: IdentityKind,
    pub first: Option<Millis>,
    pub last: Option<Millis>,
    pub count: u32,
}

impl Held {
    /// An access key (long-lived or temporary): its calls are stored under its holder.
    pub fn is_key(&self) -> bool {
        matches!(
            self.kind,
            IdentityKind::AccessKey | IdentityKind::TemporaryAccessKey
        )
    }

    fn to_created(&self) -> Created {
        Created {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.as_str().to_owned(),
            first_seen: self.first.map(time::format),
            last_seen: self.last.map(time::format),
            count: self.count,
        }
    }
}

/// The identities `session` reaches by observed edges of `kind` (`created` or `used`),
/// those whose sightings (first to last) overlap `[from, to]` when a window is given.
pub(crate) fn held(
    g: &Graph,
    session: &str,
    kind: EdgeKind,
    window: Option<(Millis, Millis)>,
) -> Vec<Held> {
    let Some(node) = g.find(session) else {
        return Vec::new();
    };
    let mut out: Vec<Held> = g
        .out_edges(node)
        .filter(|e| e.kind == kind)
        .filter(|e| window.is_none_or(|w| sighted_within(e.first_seen, e.last_seen, w)))
        .filter_map(|e| {
            let n = g.node(e.to)?;
            let NodeKind::Identity(kind) = n.kind else {
                return None;
            };
            Some(Held {
                via: e.kind,
                id: g.key(e.to).to_owned(),
                name: n.label.to_string(),
                kind,
                first: e.first_seen,
                last: e.last_seen,
                count: e.count,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// What `session` created (observed `created` edges to identities), those whose sightings
/// overlap `[from, to]` when a window is given.
fn created_by(g: &Graph, session: &str, window: Option<(Millis, Millis)>) -> Vec<Created> {
    held(g, session, EdgeKind::Created, window)
        .iter()
        .map(Held::to_created)
        .collect()
}

/// How long after the last tool call that named an access key the key's calls count as
/// the agent's, and how long before the first (clocks differ between the agent's host and
/// AWS).
const USE_AFTER: Millis = 15 * 60_000;
const USE_BEFORE: Millis = 60_000;

impl Engine {
    /// Every AI agent (kind `ai_agent`), by id.
    pub fn agents(&self) -> Vec<&Identity> {
        let mut out: Vec<&Identity> = self
            .inventory
            .iter()
            .filter(|i| i.kind == IdentityKind::AiAgent)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The agents whose sessions created identities in `[from, to]` (a sighting of the
    /// `created` edge in it), with what they created; agents that created nothing in the
    /// window are left out.
    pub fn agent_creations(&self, from: Millis, to: Millis) -> Vec<AgentCreations> {
        let g = self.graph();
        self.agents()
            .into_iter()
            .filter_map(|a| {
                let sessions: Vec<SessionCreations> = sessions_of(self, &a.id)
                    .into_iter()
                    .filter_map(|s| {
                        let created = created_by(g, &s.id, Some((from, to)));
                        (!created.is_empty()).then(|| SessionCreations {
                            session: s.id.clone(),
                            prompted_by: prompted_by(s).map(str::to_owned),
                            created,
                        })
                    })
                    .collect();
                (!sessions.is_empty()).then(|| AgentCreations {
                    agent: a.id.clone(),
                    agent_name: a.name.clone(),
                    sessions,
                })
            })
            .collect()
    }

    /// The identity chains `agent` (an `ai_agent` identity) created: each session, who
    /// prompted it, its tool calls, the identities it created and their actions.
    pub fn agent_chains(&self, agent: &Identity) -> Result<AgentChains, EngineError> {
        let g = self.graph();
        let mut sessions = Vec::new();
        for s in sessions_of(self, &agent.id) {
            let mut tool_calls = BTreeMap::new();
            for e in self.store.recent_events(&s.id, RECENT)? {
                if is_tool_call(&e.action) {
                    let tool = e.target.as_deref().unwrap_or("(unnamed tool)").to_owned();
                    *tool_calls.entry(tool).or_insert(0) += 1;
                }
            }
            let chain = |kind: EdgeKind| -> Result<Vec<CreatedChain>, EngineError> {
                held(g, &s.id, kind, None)
                    .iter()
                    .map(|h| {
                        Ok(CreatedChain {
                            created: h.to_created(),
                            role: self.inventory.get(&h.id).and_then(|i| i.parent.clone()),
                            actions: Self::action_counts(self.held_events(h)?),
                        })
                    })
                    .collect()
            };
            let created = chain(EdgeKind::Created)?;
            let used = chain(EdgeKind::Used)?;
            let tree = match g.find(&s.id) {
                Some(node) => blast_radius(
                    g,
                    node,
                    BlastOptions {
                        since: Some(s.first_seen.unwrap_or(0)),
                        ..BlastOptions::default()
                    },
                ),
                None => continue,
            };
            sessions.push(SessionChain {
                session: s.id.clone(),
                name: s.name.clone(),
                prompted_by: prompted_by(s).map(str::to_owned),
                first_seen: s.first_seen.map(time::format),
                last_seen: s.last_seen.map(time::format),
                tool_calls,
                created,
                used,
                tree,
            });
        }
        Ok(AgentChains {
            agent: agent.id.clone(),
            agent_name: agent.name.clone(),
            sessions,
        })
    }

    /// The stored events made with a credential an agent session held: all of an STS
    /// session; an access key's are the calls CloudTrail reports with it, stored under the
    /// key's user or session (a key whose holder is unknown shows none). All of a key the
    /// session created; of a key it only named (long-lived, maybe shared), those from a
    /// minute before the first tool call that named it to 15 minutes after the last.
    pub(crate) fn held_events(&self, h: &Held) -> Result<Vec<Event<'static>>, EngineError> {
        if !h.is_key() {
            return Ok(self.store.recent_events(&h.id, RECENT)?);
        }
        let Some(holder) = self.inventory.get(&h.id).and_then(|k| k.parent.as_deref()) else {
            return Ok(Vec::new());
        };
        let (from, to) = if h.via == EdgeKind::Used {
            let (Some(first), Some(last)) = (h.first.or(h.last), h.last.or(h.first)) else {
                return Ok(Vec::new());
            };
            (first - USE_BEFORE, last + USE_AFTER)
        } else {
            (Millis::MIN, Millis::MAX)
        };
        Ok(self
            .store
            .events_between(holder, from, to, RECENT)?
            .into_iter()
            .filter(|e| e.credential.as_deref() == Some(h.id.as_str()))
            .collect())
    }

    /// Events counted by action and target, most frequent first.
    fn action_counts(events: Vec<Event<'static>>) -> Vec<ActionCount> {
        let mut counts: BTreeMap<(String, Option<String>), ActionCount> = BTreeMap::new();
        for e in events {
            let target = e.target.as_deref().map(str::to_owned);
            let denied = e.denied();
            let entry = counts
                .entry((e.action.to_string(), target.clone()))
                .or_insert_with(|| ActionCount {
                    action: e.action.to_string(),
                    target,
                    count: 0,
                    denied: 0,
                    last: time::format(e.time),
                });
            entry.count += 1;
            entry.denied += usize::from(denied);
        }
        let mut out: Vec<ActionCount> = counts.into_values().collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.action.cmp(&b.action)));
        out
    }

    /// What agents access most: the events of the identities their sessions created, of
    /// the access keys their tool calls named (around those calls), and their sessions'
    /// tool calls, at or after `since` when given, counted per resource
    /// (the event's target; its action when it names none; the tool for a tool call),
    /// most frequent first.
    pub fn agent_access(&self, since: Option<Millis>) -> Result<Vec<ResourceCount>, EngineError> {
        let g = self.graph();
        let mut counts: BTreeMap<(String, &'static str), ResourceCount> = BTreeMap::new();
        let mut add = |resource: String, from: &'static str, action: &str, agent: &str| {
            let entry = counts
                .entry((resource.clone(), from))
                .or_insert_with(|| ResourceCount {
                    resource,
                    from,
                    count: 0,
                    agents: Vec::new(),
                    actions: BTreeMap::new(),
                });
            entry.count += 1;
            *entry.actions.entry(action.to_owned()).or_insert(0) += 1;
            if !entry.agents.iter().any(|a| a == agent) {
                entry.agents.push(agent.to_owned());
            }
        };
        let recent = |id: &str| match since {
            Some(t) => self.store.events_since(id, t, RECENT),
            None => self.store.recent_events(id, RECENT),
        };
        for a in self.agents() {
            for s in sessions_of(self, &a.id) {
                for e in recent(&s.id)? {
                    if is_tool_call(&e.action) {
                        let tool = e.target.as_deref().unwrap_or("(unnamed tool)").to_owned();
                        add(tool, "tool", &e.action, &a.name);
                    }
                }
                // What the credentials it created did, and the keys it named around then.
                let mut events = Vec::new();
                for c in created_by(g, &s.id, None) {
                    events.extend(recent(&c.id)?);
                }
                for h in held(g, &s.id, EdgeKind::Used, None) {
                    let around = self.held_events(&h)?;
                    events.extend(
                        around
                            .into_iter()
                            .filter(|e| since.is_none_or(|t| e.time >= t)),
                    );
                }
                for e in &events {
                    match e.target.as_deref() {
                        Some(t) => add(t.to_owned(), "target", &e.action, &a.name),
                        None => add(e.action.to_string(), "action", &e.action, &a.name),
                    }
                }
            }
        }
        let mut out: Vec<ResourceCount> = counts.into_values().collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.resource.cmp(&b.resource)));
        Ok(out)
    }
}

/// Whether an edge seen from `first` to `last` was seen within `[from, to]`: an edge
/// keeps its first and last sighting only, so a creation repeated across the window (the
/// same session name assumed again) counts, as does one inside it.
fn sighted_within(
    first: Option<Millis>,
    last: Option<Millis>,
    (from, to): (Millis, Millis),
) -> bool {
    match (first, last) {
        (Some(f), Some(l)) => f <= to && l >= from,
        (Some(t), None) | (None, Some(t)) => t >= from && t <= to,
        (None, None) => false,
    }
}

/// A tool call as OTLP GenAI spans (`execute_tool`) and MCP logs (`tools/call`) name it.
pub(crate) fn is_tool_call(action: &str) -> bool {
    matches!(action, "execute_tool" | "tools/call")
}
