//! The MCP server (`keyward mcp` over stdio; streamable HTTP at `/mcp` on `keyward
//! serve`, behind the API's bearer tokens, a viewer's role enough): read-only tools an LLM
//! client calls to ask about the estate — the inventory, one identity, its ownership, blast radius, escalation
//! paths, findings, risk, compliance, and the AI-agent questions (docs/mcp.md). Every tool
//! answers JSON built from the engine's query facade, as the API and the CLI do, on the
//! engine's own thread ([`EngineHandle`]); nothing here analyses. Tool errors are answers
//! the client reads (`isError`), never a dropped session. To add a tool: a method with
//! `#[tool]` in the `#[tool_router]` block, its parameters a `Deserialize + JsonSchema`
//! struct whose field docs are the schema the client's model reads. The triage and plan
//! tools ([`write`]) exist only where configured, and are decided per call.

mod write;

pub use write::Writes;

use keyward_detect::{Kind, Severity, Status};
use keyward_engine::{Engine, Escalation, FindingQuery, Resolve};
use keyward_govern::compliance::{self, Framework};
use keyward_graph::analysis::{BlastOptions, blast_radius};
use keyward_model::time::{self, Millis};
use keyward_model::{Identity, IdentityKind, LifecycleConfig, Platform};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{AppState, EngineHandle, SMALL_BODY_LIMIT, now};

/// Inventory pages and finding lists are at most this long.
const MAX_LIMIT: usize = 1_000;
/// Lifecycle states over stdio: an identity unused this many days is `stale` (the CLI's
/// `--stale-days` default; `/mcp` takes `serve`'s).
pub const STALE_AFTER_DAYS: i64 = 30;

type ToolResult = Result<CallToolResult, ErrorData>;

/// The MCP service: the engine's handle and the tools.
#[derive(Clone)]
pub struct Mcp {
    engine: EngineHandle,
    stale_after_days: i64,
    /// The triage and plan tools' authority, when they are configured.
    writes: Option<Writes>,
    tool_router: ToolRouter<Self>,
}

/// Serves MCP over stdin and stdout until the client closes them; with `writes`, the
/// triage and plan tools too.
pub async fn serve_stdio(
    engine: EngineHandle,
    writes: Option<Writes>,
) -> Result<(), std::io::Error> {
    let running = Mcp::new(engine, STALE_AFTER_DAYS, writes)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// The streamable HTTP transport of the tools (`/mcp`).
pub type HttpService = rmcp::transport::streamable_http_server::StreamableHttpService<
    Mcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
>;

/// The `/mcp` service over `engine`: stateless (each POST one JSON-RPC request answered
/// with JSON), so nothing is kept between requests and every request is authorized. With
/// `writes`, the triage and plan tools too.
pub fn http_service(
    engine: EngineHandle,
    stale_after_days: i64,
    writes: Option<Writes>,
) -> HttpService {
    let mut config = rmcp::transport::streamable_http_server::StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.max_request_body_bytes = SMALL_BODY_LIMIT;
    // rmcp accepts loopback `Host`s only by default, against DNS rebinding of servers that
    // trust whoever can reach them; `/mcp` trusts only a bearer token, which a rebinding
    // page does not hold, and `keyward serve` listens where it is told.
    let config = config.disable_allowed_hosts();
    HttpService::new(
        move || Ok(Mcp::new(engine.clone(), stale_after_days, writes.clone())),
        std::sync::Arc::default(),
        config,
    )
}

/// `/mcp`: the caller's bearer token and the policy first (`view`, as every read route:
/// an allow counted, a deny audited), then the MCP transport, the caller in the request's
/// extensions for the tools that decide per call.
pub(crate) async fn http(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use tower::ServiceExt as _;
    match crate::authorize(&state, req.headers(), keyward_policy::Act::View).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
        }
        Err(e) => return e.into_response(),
    }
    match state.mcp.clone().oneshot(req).await {
        Ok(resp) => resp.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// A tool's JSON answer.
fn answer(v: &Value) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::text(
        keyward_model::json::sorted_pretty(v),
    )]))
}

/// A tool's refusal, for the client's model to read and correct.
fn refuse(message: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::error(vec![ContentBlock::text(
        message.into(),
    )]))
}

/// An optional RFC 3339 instant; `name` says which parameter was wrong.
fn instant(s: Option<&str>, name: &str) -> Result<Option<Millis>, String> {
    match s {
        None => Ok(None),
        Some(v) => time::parse(v)
            .map(Some)
            .ok_or_else(|| format!("`{name}`: `{v}` is not an RFC 3339 time")),
    }
}

/// One identity by id, ARN or unique name.
fn resolve<'e>(e: &'e Engine, q: &str) -> Result<&'e Identity, String> {
    match e.resolve(q) {
        Resolve::Found(i) => Ok(i),
        Resolve::NotFound => Err(format!("no identity matches `{q}`")),
        Resolve::Ambiguous(many) => {
            let ids: Vec<&str> = many.iter().take(10).map(|i| i.id.as_str()).collect();
            Err(format!(
                "`{q}` matches {} identities; use one of the ids: {}",
                many.len(),
                ids.join(", ")
            ))
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("serializing the answer: {e}"))
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchParams {
    /// Platform: `aws`, `kubernetes`, `github`, `oidc` or `ai`.
    pub platform: Option<String>,
    /// Identity kind, e.g. `iam_role`, `iam_user`, `access_key`, `sts_session`,
    /// `service_account`, `deploy_key`, `ai_agent`, `agent_session`.
    pub kind: Option<String>,
    /// Case-insensitive substring of the identity's id or name.
    pub text: Option<String>,
    /// Owner: an email, a `@handle` or a team name.
    pub owner: Option<String>,
    /// Only identities without a live owner.
    pub orphaned: Option<bool>,
    /// How many identities to return (default 50, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct IdentityParams {
    /// The identity: its canonical id (e.g. `arn:aws:iam::111122223333:role/deploy`,
    /// `ai:agent/asst_finops_01`), an ARN, or a unique name (e.g. `finops-agent`).
    pub id: String,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct BlastParams {
    /// The identity: canonical id, ARN or unique name.
    pub id: String,
    /// Only what it actually created at or after this RFC 3339 time (containment mode).
    pub since: Option<String>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct EscalationParams {
    /// Only paths starting at this identity (canonical id, ARN or unique name); all
    /// principals when absent.
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct FindingsParams {
    /// Only findings about this identity (canonical id, ARN or unique name).
    pub identity: Option<String>,
    /// Minimum severity: `info`, `low`, `medium`, `high` or `critical`.
    pub min_severity: Option<String>,
    /// `threat` (from events) or `posture` (from configuration).
    pub kind: Option<String>,
    /// Only these statuses: `open`, `acknowledged`, `false-positive`, `resolved`,
    /// `expected`. All when absent.
    pub status: Option<Vec<String>>,
    /// Only findings last seen at or after this RFC 3339 time.
    pub since: Option<String>,
    /// How many findings to return, most severe first (default 50, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ComplianceParams {
    /// The framework: `soc2`, `pci-dss-4` or `iso27001-2022`.
    pub framework: String,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct CreatedParams {
    /// The window's end, RFC 3339 (default: now).
    pub until: Option<String>,
    /// The window's length in hours, ending at `until` (default 24).
    pub hours: Option<u32>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct AgentParams {
    /// The agent: its name (e.g. `finops-agent`), its id (`ai:agent/…`), or the id of
    /// one of its sessions.
    pub agent: String,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct AccessParams {
    /// Only events at or after this RFC 3339 time (default: everything stored).
    pub since: Option<String>,
    /// How many resources to return, most accessed first (default 20, at most 1000).
    pub limit: Option<usize>,
}

impl Mcp {
    pub fn new(engine: EngineHandle, stale_after_days: i64, writes: Option<Writes>) -> Self {
        let mut tool_router = Self::tool_router();
        if writes.is_some() {
            tool_router += Self::write_router();
        }
        Mcp {
            engine,
            stale_after_days,
            writes,
            tool_router,
        }
    }

    /// Runs `f` on the engine thread; its `Err` becomes the tool's refusal. Each call is
    /// noted on stderr by tool name only (reads are not audited, as the CLI's and the
    /// API's are not: `docs/policy.md`); arguments never are.
    async fn run<F>(&self, tool: &'static str, f: F) -> ToolResult
    where
        F: FnOnce(&Engine) -> Result<Value, String> + Send + 'static,
    {
        eprintln!("keyward mcp: tool `{tool}`");
        let out = self
            .engine
            .call(move |e| f(e))
            .await
            .map_err(|e| ErrorData::internal_error(e.message, None))?;
        match out {
            Ok(v) => answer(&v),
            Err(message) => refuse(message),
        }
    }
}

#[tool_router]
impl Mcp {
    #[tool(
        description = "Search the inventory of non-human identities (cloud roles and users, access keys, STS sessions, Kubernetes service accounts, GitHub deploy keys and apps, AI agents and their sessions). Filters combine; returns `total` and the first `limit` identities with platform, kind, lifecycle state, last use, owner and team.",
        annotations(read_only_hint = true)
    )]
    async fn search_inventory(&self, Parameters(p): Parameters<SearchParams>) -> ToolResult {
        let stale_after_days = self.stale_after_days;
        self.run("search_inventory", move |e| {
            let platform = match p.platform.as_deref() {
                None => None,
                Some(s) => {
                    Some(Platform::parse(s).ok_or_else(|| format!("`platform`: unknown `{s}`"))?)
                }
            };
            let kind = match p.kind.as_deref() {
                None => None,
                Some(s) => {
                    Some(IdentityKind::parse(s).ok_or_else(|| format!("`kind`: unknown `{s}`"))?)
                }
            };
            let filter = keyward_engine::Filter {
                platform,
                kind,
                ..Default::default()
            };
            let lc = LifecycleConfig {
                as_of: now(),
                stale_after_days,
            };
            let rows = crate::listing::search(e, &filter, lc, p.text.as_deref().unwrap_or(""));
            let owners = keyward_engine::OwnerFilter {
                owner: p.owner.clone(),
                orphaned: p.orphaned.unwrap_or(false),
            };
            let rows = e.owned(rows, &owners, false);
            let total = rows.len();
            let limit = p.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
            let mut page: Vec<_> = rows.into_iter().take(limit).collect();
            e.fill_owners(&mut page);
            let items: Vec<Value> = page
                .iter()
                .map(|((i, s), o)| {
                    json!({
                        "id": i.id, "name": i.name, "platform": i.platform.as_str(),
                        "kind": i.kind.as_str(), "state": s.as_str(), "account": i.account,
                        "namespace": i.namespace,
                        "last_used": i.last_used.map(time::format),
                        "owner": o.as_ref().and_then(|o| o.ownership.owner.clone()),
                        "team": o.as_ref().and_then(|o| o.ownership.team.clone()),
                        "orphaned": o.as_ref().is_some_and(|o| o.orphan.is_some()),
                    })
                })
                .collect();
            Ok(json!({"total": total, "limit": limit, "items": items}))
        })
        .await
    }

    #[tool(
        description = "Everything known about one identity: its facts (kind, account, parent, credentials, tags), lifecycle state, owner with evidence, its threat and posture findings, and its 20 most recent events.",
        annotations(read_only_hint = true)
    )]
    async fn get_identity(&self, Parameters(p): Parameters<IdentityParams>) -> ToolResult {
        let stale_after_days = self.stale_after_days;
        self.run("get_identity", move |e| {
            let i = resolve(e, &p.id)?;
            let lc = LifecycleConfig {
                as_of: now(),
                stale_after_days,
            };
            let owner = e.owner_infos(&[i]).into_iter().next();
            let events = e.recent_events(&i.id, 20).map_err(|e| e.to_string())?;
            let findings = e
                .findings(&FindingQuery {
                    identity: Some(i.id.clone()),
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?;
            Ok(json!({
                "identity": to_value(i)?,
                "state": e.lifecycles(lc).of(i).as_str(),
                "owner": owner.as_ref().map(|o| json!({
                    "ownership": o.ownership,
                    "orphan": o.orphan.as_ref().map(|r| r.as_str()),
                })),
                "findings": to_value(&findings)?,
                "recent_events": to_value(&events)?,
            }))
        })
        .await
    }

    #[tool(
        description = "Who owns an identity and why: the most likely person and team, every candidate with its confidence (0–1) and the graph path (hops) that names it, and why it looks orphaned when it does (owner departed, workload gone, unreferenced).",
        annotations(read_only_hint = true)
    )]
    async fn ownership_chain(&self, Parameters(p): Parameters<IdentityParams>) -> ToolResult {
        self.run("ownership_chain", move |e| {
            let i = resolve(e, &p.id)?;
            let info = e.owner_info(i, &e.coverage());
            Ok(json!({
                "identity": i.id,
                "ownership": info.ownership,
                "orphan_reason": info.orphan.as_ref().map(|r| r.as_str()),
            }))
        })
        .await
    }

    #[tool(
        description = "Blast radius of an identity: the tree of identities, credentials and resources it reaches in the identity graph (assumes, sessions, keys, permissions), with counts. With `since`, only what it actually created from then on (what to revoke to contain it).",
        annotations(read_only_hint = true)
    )]
    async fn blast_radius(&self, Parameters(p): Parameters<BlastParams>) -> ToolResult {
        self.run("blast_radius", move |e| {
            let since = instant(p.since.as_deref(), "since")?;
            let i = resolve(e, &p.id)?;
            let g = e.graph();
            let node = g
                .find(&i.id)
                .ok_or_else(|| format!("`{}` is not in the graph", i.id))?;
            let b = blast_radius(
                g,
                node,
                BlastOptions {
                    since,
                    ..BlastOptions::default()
                },
            );
            to_value(&b)
        })
        .await
    }

    #[tool(
        description = "Privilege-escalation paths to administrator in AWS IAM (from ingested authorization details): the admin-equivalent principals and each path's steps (technique, from, to, conditions). Optionally only the paths from one identity.",
        annotations(read_only_hint = true)
    )]
    async fn escalation_paths(&self, Parameters(p): Parameters<EscalationParams>) -> ToolResult {
        self.run("escalation_paths", move |e| {
            let from = match &p.from {
                None => None,
                Some(q) => Some(resolve(e, q)?.id.clone()),
            };
            if e.iam_snapshots().map_err(|e| e.to_string())?.is_empty() {
                return Ok(json!({
                    "note": "no IAM authorization details ingested (aws iam get-account-authorization-details)",
                    "admin_equivalent": [], "paths": [],
                }));
            }
            let as_of = e
                .latest_event_time()
                .map_err(|e| e.to_string())?
                .unwrap_or_else(now);
            let (admins, found) = e
                .escalation_paths(from.as_deref(), as_of)
                .map_err(|e| e.to_string())?;
            let paths: Vec<Value> = found.iter().map(Escalation::to_json).collect();
            Ok(json!({"admin_equivalent": admins, "paths": paths}))
        })
        .await
    }

    #[tool(
        description = "Threat findings (detections on events, including AI agents acting outside their declared purpose) and posture findings (risky configuration), most severe first, with rule, severity, status, identity, summary and evidence.",
        annotations(read_only_hint = true)
    )]
    async fn findings(&self, Parameters(p): Parameters<FindingsParams>) -> ToolResult {
        self.run("findings", move |e| {
            let min_severity = match p.min_severity.as_deref() {
                None => None,
                Some(s) => Some(
                    Severity::parse(s).ok_or_else(|| format!("`min_severity`: unknown `{s}`"))?,
                ),
            };
            let kind = match p.kind.as_deref() {
                None => None,
                Some(s) => Some(Kind::parse(s).ok_or_else(|| format!("`kind`: unknown `{s}`"))?),
            };
            let statuses = p
                .status
                .unwrap_or_default()
                .iter()
                .map(|s| Status::parse(s).ok_or_else(|| format!("`status`: unknown `{s}`")))
                .collect::<Result<Vec<_>, _>>()?;
            let identity = match &p.identity {
                None => None,
                Some(q) => Some(resolve(e, q)?.id.clone()),
            };
            let q = FindingQuery {
                since: instant(p.since.as_deref(), "since")?,
                min_severity,
                identity,
                kind,
                statuses,
            };
            let mut found = e.findings(&q).map_err(|e| e.to_string())?;
            found.sort_by(|a, b| {
                (b.severity as u8)
                    .cmp(&(a.severity as u8))
                    .then(b.last_seen.cmp(&a.last_seen))
            });
            let total = found.len();
            let limit = p.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
            found.truncate(limit);
            Ok(json!({"total": total, "findings": to_value(&found)?}))
        })
        .await
    }

    #[tool(
        description = "An identity's risk: the risk score R = (P × E × A) / T with its factors (permission scope, exposure, anomaly, days since rotation) and tier, and the severity of its worst open finding.",
        annotations(read_only_hint = true)
    )]
    async fn risk(&self, Parameters(p): Parameters<IdentityParams>) -> ToolResult {
        self.run("risk", move |e| {
            let i = resolve(e, &p.id)?;
            let scored = e
                .findings(&FindingQuery {
                    identity: Some(i.id.clone()),
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|f| f.rule_id == keyward_engine::RISK_RULE);
            let worst = e.risk_tier(&i.id).map_err(|e| e.to_string())?;
            Ok(json!({
                "identity": i.id,
                "worst_open_finding": worst,
                "risk": scored.as_ref().and_then(|f| f.details.get("risk").cloned()),
                "risk_finding": scored.map(|f| json!({
                    "id": f.id, "severity": f.severity.as_str(), "status": f.status.as_str(),
                    "summary": f.summary,
                })),
            }))
        })
        .await
    }

    #[tool(
        description = "Compliance status for a framework (`soc2`, `pci-dss-4` or `iso27001-2022`): each control passing, warning or failing, with the findings and facts that decide it.",
        annotations(read_only_hint = true)
    )]
    async fn compliance_status(&self, Parameters(p): Parameters<ComplianceParams>) -> ToolResult {
        self.run("compliance_status", move |e| {
            let framework = Framework::parse(&p.framework).ok_or_else(|| {
                format!(
                    "`framework`: unknown `{}` (soc2, pci-dss-4 or iso27001-2022)",
                    p.framework
                )
            })?;
            let facts = e.compliance_facts(now()).map_err(|e| e.to_string())?;
            to_value(&compliance::report(framework, &facts))
        })
        .await
    }

    #[tool(
        description = "Which AI agents have created identities in a time window (default: the last 24 hours). For each agent: its sessions (conversations), the person who prompted each, and the identities each created (e.g. STS sessions its tool calls assumed) with when. Give `until` to ask about a window that ends in the past.",
        annotations(read_only_hint = true)
    )]
    async fn agents_created_identities(
        &self,
        Parameters(p): Parameters<CreatedParams>,
    ) -> ToolResult {
        self.run("agents_created_identities", move |e| {
            let to = instant(p.until.as_deref(), "until")?.unwrap_or_else(now);
            let hours = i64::from(p.hours.unwrap_or(24));
            let from = to - hours * 3_600_000;
            let agents = e.agent_creations(from, to);
            Ok(json!({
                "window": {"from": time::format(from), "until": time::format(to)},
                "agents": to_value(&agents)?,
            }))
        })
        .await
    }

    #[tool(
        description = "The identity chains an AI agent created: for each of its sessions, the person who prompted it, the tools it called, the identities it created (STS sessions and the roles they belong to) and the cloud actions those credentials performed (counted, with denials), plus the chain as a tree.",
        annotations(read_only_hint = true)
    )]
    async fn agent_identity_chains(&self, Parameters(p): Parameters<AgentParams>) -> ToolResult {
        self.run("agent_identity_chains", move |e| {
            // An agent's name is often its role's too (`finops-agent`): an agent first.
            let named = e
                .agents()
                .into_iter()
                .find(|a| a.id == p.agent || a.name == p.agent);
            let found = match named {
                Some(a) => a,
                None => resolve(e, &p.agent)?,
            };
            // An agent, or the agent of one of its sessions; any other kind is refused.
            let agent = if found.kind == IdentityKind::AiAgent {
                found
            } else if found.kind == IdentityKind::AgentSession {
                found
                    .parent
                    .as_deref()
                    .and_then(|a| e.inventory().get(a))
                    .ok_or_else(|| format!("the agent of `{}` is not known", found.id))?
            } else {
                return Err(format!(
                    "`{}` is a `{}`, not an AI agent (kind `ai_agent`)",
                    found.id,
                    found.kind.as_str()
                ));
            };
            let chains = e.agent_chains(agent).map_err(|e| e.to_string())?;
            to_value(&chains)
        })
        .await
    }

    #[tool(
        description = "What resources AI agents access most frequently: counted from the stored cloud events of the credentials their sessions created and from their tool calls. Each row says where its name comes from: `target` (the resource the event names), `action` (the event names no resource, so the service and action stand in) or `tool` (a tool an agent called); with the agents and actions.",
        annotations(read_only_hint = true)
    )]
    async fn agent_resource_access(&self, Parameters(p): Parameters<AccessParams>) -> ToolResult {
        self.run("agent_resource_access", move |e| {
            let since = instant(p.since.as_deref(), "since")?;
            let mut rows = e.agent_access(since).map_err(|e| e.to_string())?;
            let total = rows.len();
            rows.truncate(p.limit.unwrap_or(20).clamp(1, MAX_LIMIT));
            Ok(json!({
                "total_resources": total,
                "note": "`from`: `target` names the resource the event acted on; `action` means the event named none and its service:action stands in; `tool` is a tool call of an agent session",
                "resources": to_value(&rows)?,
            }))
        })
        .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("keyward", env!("CARGO_PKG_VERSION")))
            .with_instructions(if self.writes.is_some() {
                "Keyward: inventory, ownership, risk and detections for non-human identities \
             (cloud roles, keys, sessions, service accounts, AI agents). Every tool reads, except \
             `triage_finding` (sets a finding's status) and `plan_containment` (stores a dry-run \
             plan), which the policies decide per call. Identities are named by canonical id, \
             ARN or unique name."
            } else {
                "Keyward: inventory, ownership, risk and detections for non-human identities \
             (cloud roles, keys, sessions, service accounts, AI agents). Every tool is read-only. \
             Identities are named by canonical id, ARN or unique name."
            })
    }
}
