//! Administrator wildcard: whether a principal is allowed every action on every resource,
//! and by which of its policies.
//!
//! A principal holds it when one of its identity policies (inline, managed, or its
//! groups') has an `Allow` of `*` on `*`, its permissions boundary (if any) allows `*` on
//! `*` too, and no `Deny` statement certainly applies to an action on every resource. An
//! `Allow` under conditions left open still counts (the keys are reported); one decided
//! false at analysis time does not. The Organizations guardrails over its account (SCPs,
//! RCPs) must allow `*` on `*` as well.

use std::collections::BTreeSet;

use super::authz::PrincipalPolicies;
use super::policy::Context;

/// Who grants a principal `*` on `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminGrant {
    /// Sources of the granting policies: `inline:<name>`, `managed:<arn>`,
    /// `group:<group>/inline:<name>`, `group:<group>/managed:<arn>`.
    pub granted_by: Vec<String>,
    /// Condition keys the grant depends on (empty: unconditional).
    pub conditional: BTreeSet<String>,
}

/// The policies that give `p` every action on every resource, if they do.
pub fn admin_wildcard(p: &PrincipalPolicies, ctx: &Context) -> Option<AdminGrant> {
    let all = p.identity.iter().chain(&p.boundary);
    if all.clone().any(|s| s.policy.denies_everywhere(ctx)) {
        return None;
    }
    let capped = match &p.boundary {
        Some(b) => Some(b.policy.grants_everything(ctx)?),
        None => None,
    };
    // An SCP or RCP that leaves anything out caps the grant too.
    let guarded = match &p.org {
        Some(g) => Some(g.grants_everything(ctx)?),
        None => None,
    };
    let mut grant = AdminGrant::default();
    let mut unconditional = false;
    for s in &p.identity {
        if let Some(keys) = s.policy.grants_everything(ctx) {
            grant.granted_by.push(s.source.clone());
            unconditional |= keys.is_empty();
            grant.conditional.extend(keys);
        }
    }
    if grant.granted_by.is_empty() {
        return None;
    }
    if unconditional {
        grant.conditional.clear();
    }
    grant.conditional.extend(capped.into_iter().flatten());
    grant.conditional.extend(guarded.into_iter().flatten());
    Some(grant)
}
