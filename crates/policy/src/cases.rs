//! `keyward policy test`: expected decisions, written as data, checked against a policy set.
//!
//! ```yaml
//! - name: a viewer token cannot execute a plan
//!   principal: { token: ci, role: viewer }
//!   action: execute
//!   resource: { identity: "arn:aws:iam::111122223333:user/deploy", account: "111122223333" }
//!   expect: deny
//! - name: on-call may break the glass at night
//!   principal: { person: alice }
//!   action: grant
//!   context: { break_glass: true, time: "2026-12-06T03:00:00Z" }
//!   expect: allow
//!   by: [operator-breaks-glass]
//! ```

use std::net::IpAddr;

use serde::Deserialize;

use crate::{Act, Ask, Decision, Policies, Principal, Resource, Situation, Surface, Target};

/// One expected decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub principal: Who,
    pub action: Act,
    #[serde(default)]
    pub resource: What,
    #[serde(default)]
    pub context: When,
    pub expect: Expect,
    /// The policy ids expected to decide (checked when given).
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

/// Exactly one of `person`, `token` (with `role`) or `service`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {
    pub person: Option<String>,
    pub token: Option<String>,
    pub role: Option<String>,
    /// A token's name.
    pub name: Option<String>,
    pub service: Option<String>,
}

/// The estate when empty; else the most specific of identity, namespace, cluster, account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct What {
    pub identity: Option<String>,
    pub kind: Option<String>,
    pub platform: Option<String>,
    pub name: Option<String>,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub team: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// RFC 3339; the Unix epoch when absent.
    pub time: Option<String>,
    pub source_ip: Option<String>,
    pub surface: Option<Surface>,
    pub risk_tier: Option<String>,
    pub environment: Option<String>,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default)]
    pub revoke: bool,
    pub requester: Option<String>,
    pub duration_secs: Option<i64>,
}

/// A case's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    pub expected: Expect,
    pub decision: Option<Decision>,
    /// Why it failed (or could not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Who {
    fn principal(&self) -> Result<Principal, String> {
        match (&self.person, &self.token, &self.service) {
            (Some(name), None, None) => Ok(Principal::Person { name: name.clone() }),
            (None, Some(id), None) => Ok(Principal::Token {
                id: id.clone(),
                role: self
                    .role
                    .clone()
                    .ok_or("a token needs its `role` (viewer, operator, admin)")?,
                name: self.name.clone().unwrap_or_default(),
            }),
            (None, None, Some(name)) => Ok(Principal::Service { name: name.clone() }),
            _ => Err("`principal` needs exactly one of `person`, `token`, `service`".into()),
        }
    }
}

impl What {
    fn resource(&self) -> Result<Resource, String> {
        if let Some(id) = &self.identity {
            return Ok(Resource::Identity(Target {
                id: id.clone(),
                kind: self.kind.clone().unwrap_or_default(),
                platform: self.platform.clone().unwrap_or_default(),
                name: self.name.clone().unwrap_or_else(|| id.clone()),
                account: self.account.clone(),
                cluster: self.cluster.clone(),
                namespace: self.namespace.clone(),
                team: self.team.clone(),
            }));
        }
        Ok(match (&self.account, &self.cluster, &self.namespace) {
            (None, None, None) => Resource::Estate,
            (Some(a), None, None) => Resource::Account(a.clone()),
            (None, Some(c), None) => Resource::Cluster(c.clone()),
            (None, Some(c), Some(n)) => Resource::Namespace {
                cluster: c.clone(),
                name: n.clone(),
            },
            _ => return Err("`resource`: a namespace needs its cluster; an account stands alone (or give `identity`)".into()),
        })
    }
}

impl When {
    fn situation(&self) -> Result<Situation, String> {
        let now = match &self.time {
            Some(t) => keyward_model::time::parse(t)
                .ok_or_else(|| format!("`context.time`: `{t}` is not an RFC 3339 instant"))?,
            None => 0,
        };
        let source_ip = match &self.source_ip {
            Some(ip) => Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| format!("`context.source_ip`: `{ip}` is not an IP address"))?,
            ),
            None => None,
        };
        Ok(Situation {
            now,
            source_ip,
            surface: self.surface.unwrap_or_default(),
            risk_tier: self.risk_tier.clone(),
            environment: self.environment.clone(),
            break_glass: self.break_glass,
            revoke: self.revoke,
            requester: self.requester.clone(),
            duration: self.duration_secs.map(|s| s.saturating_mul(1000)),
        })
    }
}

/// Each case's outcome, in order.
pub fn run(policies: &Policies, cases: &[Case]) -> Vec<Outcome> {
    cases.iter().map(|c| one(policies, c)).collect()
}

fn one(policies: &Policies, case: &Case) -> Outcome {
    let fail = |problem: String| Outcome {
        name: case.name.clone(),
        passed: false,
        expected: case.expect,
        decision: None,
        problem: Some(problem),
    };
    let (principal, resource, situation) = match (
        case.principal.principal(),
        case.resource.resource(),
        case.context.situation(),
    ) {
        (Ok(p), Ok(r), Ok(s)) => (p, r, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(e),
    };
    let decision = policies.decide(&Ask {
        principal: &principal,
        action: case.action,
        resource: &resource,
        situation: &situation,
    });
    let got = if decision.allowed {
        Expect::Allow
    } else {
        Expect::Deny
    };
    let mut problem = None;
    if got != case.expect {
        problem = Some(format!(
            "expected {:?}, Cedar said {} (policies: {})",
            case.expect,
            decision.word(),
            if decision.policies.is_empty() {
                "none".to_owned()
            } else {
                decision.policies.join(", ")
            }
        ));
    } else if let Some(by) = &case.by {
        let mut want = by.clone();
        want.sort_unstable();
        if want != decision.policies {
            problem = Some(format!(
                "decided by [{}], expected [{}]",
                decision.policies.join(", "),
                want.join(", ")
            ));
        }
    }
    if !decision.errors.is_empty() && problem.is_none() {
        problem = Some(format!("evaluation errors: {}", decision.errors.join("; ")));
    }
    Outcome {
        name: case.name.clone(),
        passed: problem.is_none(),
        expected: case.expect,
        decision: Some(decision),
        problem,
    }
}
