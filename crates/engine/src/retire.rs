//! Retirement (garbage collection): identities unused for N days, or whose workload is
//! known gone, get a plan that disables them in ways `undo` reverses; once its grace period
//! has passed and it still stands, a second plan deletes them ([`Engine::deletions_due`],
//! which also deletes a rotation's old key).

use keyward_graph::analysis::OrphanReason;
use keyward_model::time::{MS_PER_DAY, Millis};
use keyward_model::{IdentityKind, Lifecycle, LifecycleConfig};
use keyward_respond::Plan;
use keyward_respond::plan::{K8sStrategy, Protected, Request};
use keyward_store::AuditEntry;

use crate::{Engine, EngineError};

/// What `keyward lifecycle` is asked.
pub struct RetireAsk<'a> {
    /// Unused for at least this many days (and a log covering the window says so).
    pub unused_days: i64,
    /// Days between disabling and deleting ([`Engine::deletions_due`]).
    pub grace_days: i64,
    /// Whether identities whose workload is gone are retired.
    pub workload_gone: bool,
    /// Globs over ids, names and ARNs never retired.
    pub exempt: &'a [String],
    pub now: Millis,
    pub actor: &'a str,
    /// Store the plans (otherwise they are only shown).
    pub store: bool,
}

/// One identity to retire and why.
pub struct Retirement {
    pub reason: String,
    pub plan: Plan,
}

/// What was not planned, and why (protected, a kind Keyward cannot disable).
pub struct Skipped {
    pub identity: String,
    pub why: String,
}

/// Service-linked roles belong to AWS services: they take no inline policy.
fn service_linked(arn: Option<&str>, name: &str) -> bool {
    arn.is_some_and(|a| a.contains(":role/aws-service-role/")) || name.starts_with("AWSServiceRole")
}

impl Engine {
    /// The retirement plans due now: stale identities (unused ≥ `unused_days`, where a log
    /// or last-use record covers the window) and those whose workload is known gone (a
    /// deleted Lambda function's role, a service account no workload of its snapshotted
    /// cluster runs as) and that were not used within the window either. Identities that
    /// already have a plan not undone are left to it; a user's keys go with the user.
    pub fn retirements(
        &mut self,
        ask: &RetireAsk<'_>,
    ) -> Result<(Vec<Retirement>, Vec<Skipped>), EngineError> {
        let lc = LifecycleConfig {
            as_of: ask.now,
            stale_after_days: ask.unused_days,
        };
        let states = self.lifecycles(lc);
        let coverage = self.coverage();
        let busy: std::collections::BTreeSet<String> = self
            .store
            .plans(100_000)?
            .into_iter()
            .filter(|p| p.status != "undone")
            .map(|p| p.identity)
            .collect();
        let protected = Protected::new(&self.protected_patterns()?)?;
        let exempt = Protected::new(ask.exempt)?;
        let mut due: Vec<(String, String)> = Vec::new();
        let mut exempt_hits: Vec<(String, String)> = Vec::new();
        for i in self.inventory.iter() {
            let kind_ok = matches!(
                i.kind,
                IdentityKind::IamUser
                    | IdentityKind::IamRole
                    | IdentityKind::AccessKey
                    | IdentityKind::ServiceAccount
            );
            // A key goes with its user: not planned while the user has a plan of its own.
            let parent = i.parent.as_deref().and_then(|p| self.inventory.get(p));
            let user_busy = parent.is_some_and(|p| busy.contains(&p.id));
            if !kind_ok || i.deleted.is_some() || busy.contains(&i.id) || user_busy {
                continue;
            }
            if i.kind == IdentityKind::IamRole && service_linked(i.arn.as_deref(), &i.name) {
                continue;
            }
            // The cluster's own accounts (CNI, DNS, proxies run as DaemonSets a snapshot may
            // not list): never garbage, whatever the snapshot shows.
            if i.namespace
                .as_deref()
                .is_some_and(|n| n.starts_with("kube-"))
            {
                continue;
            }
            let state = states.of(i);
            let reason = match state {
                Lifecycle::Stale => Some(match i.last_used.or(i.last_seen) {
                    Some(t) => format!(
                        "unused for {} days (last used {})",
                        (ask.now - t) / MS_PER_DAY,
                        keyward_model::time::format(t)
                    ),
                    None => format!("never seen used in the last {} days", ask.unused_days),
                }),
                Lifecycle::Active | Lifecycle::Ephemeral | Lifecycle::Deleted => None,
                Lifecycle::Unknown if !ask.workload_gone => None,
                Lifecycle::Unknown => match self.owner_info(i, &coverage).orphan {
                    Some(r @ (OrphanReason::FunctionDeleted | OrphanReason::NoWorkload)) => {
                        Some(format!("workload gone ({})", r.as_str()))
                    }
                    _ => None,
                },
            };
            if let Some(r) = reason {
                match exempt
                    .matches(i)
                    .or_else(|| parent.and_then(|p| exempt.matches(p)))
                {
                    // The default protected patterns are in every `Protected`: only the
                    // configured ones are news here (the plan itself refuses the others).
                    Some(p) if ask.exempt.iter().any(|e| e == p) => {
                        exempt_hits.push((i.id.clone(), p.to_owned()))
                    }
                    Some(_) | None => due.push((i.id.clone(), r)),
                }
            }
        }
        // A key whose user retires goes with it.
        let users: std::collections::BTreeSet<String> =
            due.iter().map(|(id, _)| id.clone()).collect();
        due.retain(|(id, _)| {
            self.inventory
                .get(id)
                .and_then(|i| i.parent.as_ref())
                .is_none_or(|p| !users.contains(p))
        });
        let mut out = Vec::new();
        let mut skipped: Vec<Skipped> = exempt_hits
            .into_iter()
            .map(|(identity, p)| Skipped {
                identity,
                why: format!("exempt (lifecycle.exempt {p})"),
            })
            .collect();
        for (id, reason) in due {
            let req = Request {
                identity: &id,
                finding: None,
                since: None,
                now: ask.now,
                actor: ask.actor,
                protected: &protected,
                k8s: K8sStrategy::Contain,
                events: &[],
            };
            let why = format!("retire: {reason}");
            match keyward_respond::plan::retire(
                &self.inventory,
                self.graph(),
                &req,
                &why,
                ask.grace_days,
            ) {
                Ok(plan) if plan.steps.is_empty() => skipped.push(Skipped {
                    identity: id,
                    why: "nothing to disable".into(),
                }),
                Ok(plan) => out.push(Retirement { reason, plan }),
                Err(e) => skipped.push(Skipped {
                    identity: id,
                    why: e.to_string(),
                }),
            }
        }
        if ask.store {
            for r in &out {
                self.save_plan(
                    &r.plan,
                    AuditEntry {
                        at: ask.now,
                        actor: ask.actor.to_owned(),
                        action: "lifecycle.plan".into(),
                        target: Some(r.plan.id.clone()),
                        detail: Some(format!("retire {}: {}", r.plan.identity, r.reason)),
                        before: None,
                        after: None,
                    },
                )?;
            }
        }
        Ok((out, skipped))
    }
}

/// The deletions due now, and the grace periods still running.
pub struct Deletions {
    pub due: Vec<DueDeletion>,
    /// `plan id → when its grace period ends`.
    pub waiting: Vec<(String, Millis)>,
}

/// A deletion whose grace period has ended, and the plan it follows.
pub struct DueDeletion {
    pub plan: Plan,
    /// The rotation's or retirement's plan id.
    pub after: String,
}

impl Engine {
    /// The deletions due at `now`: for every executed rotation or retirement plan whose
    /// grace period ended and that has no deletion plan yet, the plan that deletes what it
    /// disabled ([`keyward_respond::purge`]); with `store`, each is saved (audited).
    pub fn deletions_due(
        &mut self,
        now: Millis,
        actor: &str,
        store: bool,
    ) -> Result<Deletions, EngineError> {
        use keyward_respond::purge::{self, NotDue};
        let rows = self.store.plans(1_000_000)?;
        let known: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        for row in &rows {
            if row.status != "executed" || known.contains(purge::id_for(&row.id).as_str()) {
                continue;
            }
            let source = crate::respond::parse_plan(row)?;
            match purge::plan(&source, now, actor) {
                Ok(plan) => due.push(DueDeletion {
                    plan,
                    after: source.id,
                }),
                Err(NotDue::Waiting(at)) => waiting.push((source.id, at)),
                Err(NotDue::NoGrace | NotDue::Status(_) | NotDue::Nothing) => {}
            }
        }
        if store {
            for d in &due {
                self.save_plan(
                    &d.plan,
                    AuditEntry {
                        at: now,
                        actor: actor.to_owned(),
                        action: "lifecycle.delete_plan".into(),
                        target: Some(d.plan.id.clone()),
                        detail: Some(format!(
                            "delete what plan {} disabled on {} (grace period over)",
                            d.after, d.plan.identity
                        )),
                        before: None,
                        after: None,
                    },
                )?;
            }
        }
        Ok(Deletions { due, waiting })
    }
}
