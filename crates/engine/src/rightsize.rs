//! `keyward rightsize`'s engine side: an IAM role's or user's calls over the window (from
//! the store), its policies (from the last authorization-details snapshot) and how far
//! its account's CloudTrail reaches, handed to [`keyward_govern::rightsize`]; and the
//! response plan that applies the proposal, stored and audited like every plan.

use keyward_govern::rightsize::{self, Call, Input, Refusal, Report, plan::PlanError};
use keyward_model::time::Millis;
use keyward_model::{Identity, SourceKind};
use keyward_respond::action::IamPrincipal;
use keyward_respond::plan::{Plan, Protected};
use keyward_store::AuditEntry;

use crate::lifecycle::LogSpans;
use crate::{Engine, EngineError, Resolve};

/// The most calls one rightsizing reads; more is refused rather than read in part (the
/// oldest calls would be lost, and with them actions still in use).
const MAX_CALLS: usize = 2_000_000;

/// A rightsizing with the identity it is for.
pub struct Rightsized {
    pub identity: Identity,
    pub principal: IamPrincipal,
    pub report: Report,
}

/// The IAM name of a role or user: the ARN's last path segment (paths are not names).
impl Engine {
    /// Rightsizes the role or user `query` names over the last `days` days of stored
    /// CloudTrail (ending at the newest stored event).
    pub fn rightsize(&self, query: &str, days: u32) -> Result<Rightsized, EngineError> {
        let identity = match self.resolve(query) {
            Resolve::Found(i) => i.clone(),
            Resolve::NotFound => {
                return Err(EngineError::Respond(format!(
                    "no identity matches `{query}`"
                )));
            }
            Resolve::Ambiguous(v) => {
                return Err(EngineError::Respond(format!(
                    "`{query}` matches {} identities: use a canonical id",
                    v.len()
                )));
            }
        };
        let Some(principal) = crate::drift::principal_of(&identity) else {
            return Err(EngineError::Respond(format!(
                "`{}` is a {}: rightsize works on IAM roles and users",
                identity.id,
                identity.kind.as_str()
            )));
        };
        let now = self.latest_event_time()?.ok_or_else(|| Refusal::NoLogs {
            identity: identity.id.clone(),
        })?;
        let coverage = identity
            .account
            .as_deref()
            .and_then(|a| LogSpans::of(self.inventory.iter()).span(SourceKind::Cloudtrail, a));
        let from = now - Millis::from(days) * 86_400_000;
        let mut events = Vec::new();
        for actor in self.acting_as(&identity, &principal) {
            events.extend(self.events_since(&actor, from, MAX_CALLS - events.len())?);
            if events.len() >= MAX_CALLS {
                break;
            }
        }
        if events.len() >= MAX_CALLS {
            return Err(EngineError::Respond(format!(
                "`{}` made more than {MAX_CALLS} calls in {days} days: ask for fewer days",
                identity.id
            )));
        }
        let calls: Vec<Call<'_>> = events
            .iter()
            .filter(|e| e.source == SourceKind::Cloudtrail && e.time <= now)
            .map(|e| Call {
                action: &e.action,
                target: e.target.as_deref(),
                error_code: e.error_code.as_deref(),
            })
            .collect();
        let policies = self
            .iam_snapshots()?
            .into_iter()
            .filter(|(account, _)| identity.account.as_deref() == Some(account.as_str()))
            .find_map(|(_, snap)| snap.principals().remove(&identity.id))
            .unwrap_or_default();
        let report = rightsize::rightsize(&Input {
            identity: &identity.id,
            days,
            now,
            coverage,
            calls: &calls,
            grants: &policies.identity,
            unresolved: &policies.unresolved,
        })?;
        Ok(Rightsized {
            identity,
            principal,
            report,
        })
    }

    /// Who acts with the identity's permissions in CloudTrail: the user, or the role and
    /// each of its assumed-role sessions (events name the session, `assumed-role/<role>/<s>`).
    fn acting_as(&self, i: &Identity, p: &IamPrincipal) -> Vec<String> {
        let mut out = vec![i.id.clone()];
        if let (IamPrincipal::Role(name), Some(account)) = (p, i.account.as_deref()) {
            let prefix = format!("arn:aws:sts::{account}:assumed-role/{name}/");
            out.extend(
                self.inventory
                    .iter()
                    .filter(|s| s.id.starts_with(&prefix))
                    .map(|s| s.id.clone()),
            );
        }
        out
    }

    /// The plan that applies `r` (never for a protected identity), stored and audited as a
    /// dry run. The caller holds the writer lock.
    pub fn save_rightsize_plan(
        &mut self,
        r: &Rightsized,
        protect: &[String],
        actor: &str,
        now: Millis,
    ) -> Result<Plan, EngineError> {
        let mut extra = self.protected_patterns()?;
        extra.extend(protect.iter().cloned());
        if let Some(p) = Protected::new(&extra)?.matches(&r.identity) {
            return Err(PlanError::Protected(r.identity.id.clone(), p.to_owned()).into());
        }
        let plan = rightsize::plan::plan(&rightsize::plan::Request {
            report: &r.report,
            principal: r.principal.clone(),
            account: r.identity.account.as_deref(),
            now,
            actor,
        })?;
        self.save_plan(
            &plan,
            AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!(
                    "rightsize {}: {} actions proposed for {} granted patterns ({} steps)",
                    plan.identity,
                    r.report.proposed_actions,
                    r.report.granted_patterns,
                    plan.steps.len()
                )),
                before: None,
                after: None,
            },
        )?;
        Ok(plan)
    }
}
