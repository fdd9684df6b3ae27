//! The MCP tools that change Keyward's own state: triage a finding, make a containment
//! plan. They exist only when configured (`keyward serve --mcp-write-tools`, `keyward mcp
//! --write-tools --token-file FILE`); without that, no client sees them. Each call is
//! decided by the policies for the caller's token (`triage`, `plan`; an operator's role
//! by default) on surface `mcp`, the decision audited whatever it is, then done as the API
//! does it and audited again. A plan changes nothing on any platform; nothing here
//! executes one.

use std::net::IpAddr;
use std::sync::Arc;

use keyward_detect::Status;
use keyward_engine::respond::PlanAsk;
use keyward_policy::{Act, Ask, Policies, Resource, Situation, Surface};
use keyward_respond::plan::K8sStrategy;
use rmcp::RoleServer;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, tool, tool_router};
use serde::Deserialize;
use serde_json::json;

use super::{Mcp, ToolResult, answer, refuse, to_value};
use crate::auth::Caller;
use crate::state::now;

/// The authority the triage and plan tools need: the policies, and over stdio the caller
/// its token file names (over HTTP, each request's bearer token is the caller).
#[derive(Clone)]
pub struct Writes {
    policies: Arc<Policies>,
    caller: Option<Caller>,
}

impl Writes {
    /// For `/mcp`: the caller is the request's bearer token.
    pub fn per_request(policies: Arc<Policies>) -> Self {
        Writes {
            policies,
            caller: None,
        }
    }

    /// For stdio: one caller, the token `keyward mcp --token-file` read and checked.
    pub fn as_caller(policies: Arc<Policies>, caller: Caller) -> Self {
        Writes {
            policies,
            caller: Some(caller),
        }
    }
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TriageParams {
    /// The finding's id (`kwf-…`).
    pub id: String,
    /// The new status: `open`, `acknowledged`, `false-positive` (adapts the identity's
    /// baseline), `resolved` or `expected`.
    pub status: String,
    /// Why, kept with the change and in the audit log.
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct PlanParams {
    /// A finding id (`kwf-…`) or an identity (canonical id, ARN or unique name).
    pub target: String,
    /// Also revoke what it created or changed from this RFC 3339 instant (defaults to a
    /// finding's first event).
    pub since: Option<String>,
    /// Globs of identities never to contain, beyond the built-in and stored ones.
    #[serde(default)]
    pub protect: Vec<String>,
}

impl Mcp {
    /// The caller of this tool call and its address: the stdio token's, or the HTTP
    /// request's bearer token (put there by `/mcp`'s authentication).
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Option<(Caller, Option<IpAddr>)> {
        let writes = self.writes.as_ref()?;
        if let Some(c) = &writes.caller {
            return Some((c.clone(), Some(IpAddr::from([127, 0, 0, 1]))));
        }
        let parts = ctx.extensions.get::<axum::http::request::Parts>()?;
        let caller = parts.extensions.get::<Caller>()?.clone();
        Some((caller, crate::auth::peer(&parts.headers)))
    }

    /// The policies' answer for `act` by the caller, audited; `Err` is the refusal the
    /// client reads.
    async fn decide(
        &self,
        ctx: &RequestContext<RoleServer>,
        tool: &str,
        act: Act,
    ) -> Result<Caller, ToolResult> {
        let (Some(writes), Some((caller, peer))) = (self.writes.as_ref(), self.caller(ctx)) else {
            return Err(refuse(format!(
                "`{tool}` needs a caller: this server has no token to decide it for"
            )));
        };
        let principal = caller.principal();
        let situation = Situation {
            now: now(),
            source_ip: peer,
            surface: Surface::Mcp,
            ..Situation::default()
        };
        let ask = Ask {
            principal: &principal,
            action: act,
            resource: &Resource::Estate,
            situation: &situation,
        };
        let decision = crate::auth::decide_audited(&writes.policies, &self.engine, &ask, false)
            .await
            .map_err(|e| Err(ErrorData::internal_error(e.message, None)))?;
        if !decision.allowed {
            return Err(refuse(format!(
                "refused by policy: {} (this needs a token the policies let `{}`; an operator's by default)",
                decision.denial(&ask),
                act.as_str()
            )));
        }
        Ok(caller)
    }
}

#[tool_router(router = write_router, vis = "pub(super)")]
impl Mcp {
    #[tool(
        description = "Triage a finding: set its status (`open`, `acknowledged`, `false-positive`, `resolved` or `expected`) with a note. A false positive adapts the identity's behavioural baseline. Needs a token the policies let triage (operator); decided and audited.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true
        )
    )]
    async fn triage_finding(
        &self,
        Parameters(p): Parameters<TriageParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        eprintln!("keyward mcp: tool `triage_finding`");
        let Some(status) = Status::parse(&p.status) else {
            return refuse(format!(
                "`status`: `{}` is not one of open, acknowledged, false-positive, resolved, expected",
                p.status
            ));
        };
        if p.note
            .as_ref()
            .is_some_and(|n| n.len() > keyward_engine::MAX_NOTE_BYTES)
        {
            return refuse(format!(
                "`note`: at most {} bytes",
                keyward_engine::MAX_NOTE_BYTES
            ));
        }
        let caller = match self.decide(&ctx, "triage_finding", Act::Triage).await {
            Ok(c) => c,
            Err(refused) => return refused,
        };
        let actor = caller.actor();
        let TriageParams { id, note, .. } = p;
        let asked = id.clone();
        let changed = self
            .engine
            .write(move |e| {
                crate::api::findings::set_status_audited(e, &asked, status, actor, note.as_deref())
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.message, None))?
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        match changed {
            None => refuse(format!("no finding `{id}`")),
            Some(f) => match to_value(&f) {
                Ok(v) => answer(&json!({"finding": v})),
                Err(m) => refuse(m),
            },
        }
    }

    #[tool(
        description = "Make a containment plan for a finding or an identity: the steps that would disable it, revoke what it created since an instant, and undo each, with the exact commands. A dry run: the plan is stored as `planned` and audited, nothing on any platform changes, and no MCP tool executes it (a person runs `keyward respond execute`). Needs a token the policies let plan (operator).",
        annotations(read_only_hint = false, destructive_hint = false)
    )]
    async fn plan_containment(
        &self,
        Parameters(p): Parameters<PlanParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        eprintln!("keyward mcp: tool `plan_containment`");
        let since = match super::instant(p.since.as_deref(), "since") {
            Ok(s) => s,
            Err(m) => return refuse(m),
        };
        let caller = match self.decide(&ctx, "plan_containment", Act::Plan).await {
            Ok(c) => c,
            Err(refused) => return refused,
        };
        let actor = caller.actor();
        let plan = self
            .engine
            .write(move |e| {
                e.plan_response(&PlanAsk {
                    everywhere: false,
                    target: &p.target,
                    since,
                    now: now(),
                    actor: &actor,
                    protect: &p.protect,
                    k8s: K8sStrategy::Contain,
                })
                .map_err(|e| e.to_string())
                .and_then(|plan| to_value(&plan))
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.message, None))?;
        match plan {
            Ok(v) => answer(
                &json!({"plan": v, "note": "a dry run: nothing was changed on any platform"}),
            ),
            Err(m) => refuse(m),
        }
    }
}
