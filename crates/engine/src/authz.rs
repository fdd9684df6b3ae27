//! Identities as the policies see them: the Cedar resource for an identity (kind, account,
//! cluster, namespace, owning team) and the facts it adds to a request's situation (risk
//! tier from its worst open finding, environment from its tags); a decision's audit entry.

use keyward_policy::{Ask, Decision, Resource, Situation, Target};
use keyward_store::AuditEntry;

/// The audit entry of a decision (`policy.decide`): who, on what, the answer, and in its
/// detail the action and the policies that decided.
pub fn decision_entry(decision: &Decision, ask: &Ask<'_>) -> AuditEntry {
    AuditEntry {
        at: ask.situation.now,
        actor: ask.principal.actor(),
        action: "policy.decide".into(),
        target: Some(ask.resource.label()),
        detail: Some(decision.audit_detail(ask)),
        before: None,
        after: Some(decision.word().into()),
    }
}

use crate::{Engine, EngineError, Resolve};

impl Engine {
    /// The identity `id` as a policy resource, from the inventory when it knows it (else by
    /// its id alone); sets `situation`'s risk tier and environment from it.
    pub fn policy_resource(
        &self,
        id: &str,
        situation: &mut Situation,
    ) -> Result<Resource, EngineError> {
        let Resolve::Found(i) = self.resolve(id) else {
            return Ok(Resource::Identity(Target::named(id)));
        };
        situation.risk_tier = Some(self.risk_tier(&i.id)?.to_owned());
        situation.environment = keyward_policy::environment(i);
        let team = self
            .graph()
            .find(&i.id)
            .and_then(|node| keyward_graph::analysis::ownership(self.graph(), node).team);
        Ok(Resource::Identity(Target::of(i, team)))
    }

    /// The severity name of `id`'s worst open finding (`none` without one).
    pub fn risk_tier(&self, id: &str) -> Result<&'static str, EngineError> {
        let worst = self
            .store
            .worst_open_by_identity()?
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s);
        Ok(match worst {
            None => "none",
            Some(0) => "info",
            Some(1) => "low",
            Some(2) => "medium",
            Some(3) => "high",
            Some(_) => "critical",
        })
    }
}
