//! Time-bound access in the store: grants, break-glass reviews and privileged requests are
//! typed jobs in the `jobs` table (kinds [`GRANT`], [`REVIEW`], [`REQUEST`]), each write in
//! one transaction with its audit entry, so a grant's expiry survives any restart: whoever
//! runs expiry next (`keyward access expire`, `keyward serve --access-expire`) finds it here.
//! The model (states, caps, who may approve) is `keyward_govern::access`; the platform change
//! is the grant's response plan, stored and run like any other.
//!
//! Audit actions: `access.grant`, `access.revoke`, `access.expire`, `access.break_glass`,
//! `access.review`, `access.request`, `access.approve`, `access.deny`.

use keyward_govern::access::{End, Entitlement, Grant, GrantAsk, Grantee, Request, Review};
use keyward_model::time::Millis;
use keyward_respond::Plan;
use keyward_respond::playbook::format_duration;
use keyward_store::AuditEntry;

use crate::jobs::Job;
use crate::{Engine, EngineError};

/// The job kind of a grant (its id is the grant's).
pub const GRANT: &str = "access_grant";
/// The job kind of a break-glass review (its parent is the grant).
pub const REVIEW: &str = "access_review";
/// The job kind of a privileged request.
pub const REQUEST: &str = "access_request";

/// How many of each kind listings read.
const LIMIT: usize = 100_000;

/// An audit entry about a grant: its id as the target, `detail` in words, its state after.
pub fn audit(action: &str, actor: &str, at: Millis, grant: &Grant, detail: String) -> AuditEntry {
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(grant.id.clone()),
        detail: Some(detail),
        before: None,
        after: Some(grant.state.as_str().to_owned()),
    }
}

impl Engine {
    /// Stores a new grant's plan (`respond.plan`) and the grant itself (`audit`), each with its
    /// audit entry. The caller holds the writer lock.
    pub fn create_grant(
        &mut self,
        grant: &Grant,
        plan: &Plan,
        audit: AuditEntry,
    ) -> Result<(), EngineError> {
        self.save_plan(
            plan,
            AuditEntry {
                at: audit.at,
                actor: audit.actor.clone(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!("access grant {} for {}", grant.id, plan.identity)),
                before: None,
                after: None,
            },
        )?;
        self.put_grant(grant, audit)
    }

    /// Writes a grant's state with its audit entry. The caller holds the writer lock.
    pub fn put_grant(&mut self, grant: &Grant, audit: AuditEntry) -> Result<(), EngineError> {
        let job = Job {
            id: grant.id.clone(),
            kind: GRANT.into(),
            parent: grant.request.clone(),
            created_at: grant.created_at,
            updated_at: audit.at,
            status: grant.state.as_str().into(),
            doc: grant.clone(),
        };
        self.put_job(&job, Some(audit))
    }

    pub fn access_grant(&self, id: &str) -> Result<Option<Grant>, EngineError> {
        Ok(self
            .job::<Grant>(id)?
            .filter(|j| j.kind == GRANT)
            .map(|j| j.doc))
    }

    /// Every grant, newest first.
    pub fn access_grants(&self) -> Result<Vec<Grant>, EngineError> {
        Ok(self
            .jobs::<Grant>(GRANT, None, LIMIT)?
            .into_iter()
            .map(|j| j.doc)
            .collect())
    }

    /// The grants expiry ends at `now` (not ended, `expires_at` reached), oldest expiry first.
    pub fn due_grants(&self, now: Millis) -> Result<Vec<Grant>, EngineError> {
        let mut due: Vec<Grant> = self
            .access_grants()?
            .into_iter()
            .filter(|g| g.due(now))
            .collect();
        due.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.id.cmp(&b.id)));
        Ok(due)
    }

    /// Writes a review with its audit entry. The caller holds the writer lock.
    pub fn put_review(&mut self, review: &Review, audit: AuditEntry) -> Result<(), EngineError> {
        let job = Job {
            id: review.id.clone(),
            kind: REVIEW.into(),
            parent: Some(review.grant.clone()),
            created_at: review.opened_at,
            updated_at: audit.at,
            status: review.state.as_str().into(),
            doc: review.clone(),
        };
        self.put_job(&job, Some(audit))
    }

    /// The review of a break-glass grant.
    pub fn access_review(&self, grant: &str) -> Result<Option<Review>, EngineError> {
        Ok(self
            .jobs::<Review>(REVIEW, Some(grant), 1)?
            .into_iter()
            .next()
            .map(|j| j.doc))
    }

    /// Every review, newest first.
    pub fn access_reviews(&self) -> Result<Vec<Review>, EngineError> {
        Ok(self
            .jobs::<Review>(REVIEW, None, LIMIT)?
            .into_iter()
            .map(|j| j.doc)
            .collect())
    }

    /// Writes a request with its audit entry. The caller holds the writer lock.
    pub fn put_request(&mut self, request: &Request, audit: AuditEntry) -> Result<(), EngineError> {
        let job = Job {
            id: request.id.clone(),
            kind: REQUEST.into(),
            parent: None,
            created_at: request.requested_at,
            updated_at: audit.at,
            status: request.state.as_str().into(),
            doc: request.clone(),
        };
        self.put_job(&job, Some(audit))
    }

    pub fn access_request(&self, id: &str) -> Result<Option<Request>, EngineError> {
        Ok(self
            .job::<Request>(id)?
            .filter(|j| j.kind == REQUEST)
            .map(|j| j.doc))
    }

    /// Every request, newest first.
    pub fn access_requests(&self) -> Result<Vec<Request>, EngineError> {
        Ok(self
            .jobs::<Request>(REQUEST, None, LIMIT)?
            .into_iter()
            .map(|j| j.doc)
            .collect())
    }
}

impl Engine {
    /// Records how applying grant `g`'s plan went: active until its expiry, or failed with
    /// the error (`access.grant` either way). The caller holds the writer lock.
    pub fn grant_applied(
        &mut self,
        mut g: Grant,
        result: Result<(), String>,
        actor: &str,
        now: Millis,
    ) -> Result<Grant, EngineError> {
        let detail = match result {
            Ok(()) => {
                g.activate(now)?;
                format!(
                    "{} until {}",
                    g.describe("active"),
                    keyward_model::time::format(g.expires_at)
                )
            }
            Err(e) => {
                let detail = format!("{}: {e}", g.describe("failed"));
                g.fail(e)?;
                detail
            }
        };
        self.put_grant(&g, audit("access.grant", actor, now, &g, detail))?;
        Ok(g)
    }

    /// Records how undoing grant `id`'s plan went (`access.expire` or `access.revoke`):
    /// ended as of `asof` (never before `now`), or still in force with the error kept. The
    /// stored state wins: a grant another process ended meanwhile is left as it is. `None`
    /// when the grant is no longer stored. The caller holds the writer lock.
    pub fn grant_ended(
        &mut self,
        id: &str,
        how: End,
        asof: Millis,
        undone: Result<(), String>,
        actor: &str,
        now: Millis,
    ) -> Result<Option<Grant>, EngineError> {
        let verb = match how {
            End::Expired => "access.expire",
            End::Revoked => "access.revoke",
        };
        let Some(mut g) = self.access_grant(id)? else {
            return Ok(None);
        };
        if g.state.ended() {
            return Ok(Some(g));
        }
        let detail = match undone {
            Ok(()) => {
                g.end(how, asof.max(now), actor)?;
                g.ended_at = Some(now);
                g.describe(g.state.as_str())
            }
            Err(e) => {
                let detail = format!("revocation failed, still {}: {e}", g.state.as_str());
                g.last_error = Some(e);
                detail
            }
        };
        self.put_grant(&g, audit(verb, actor, now, &g, detail))?;
        Ok(Some(g))
    }
}

/// An audit entry about a request: its id as the target, its state after.
fn request_audit(action: &str, actor: &str, at: Millis, r: &Request, detail: String) -> AuditEntry {
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(r.id.clone()),
        detail: Some(detail),
        before: None,
        after: Some(r.state.as_str().into()),
    }
}

/// A request for access, as asked at the command line or over the API.
#[derive(Debug, Clone)]
pub struct AccessAsk<'a> {
    /// Who receives it, as written (a name the inventory knows, an ARN, …).
    pub to: &'a str,
    pub entitlement: Entitlement,
    pub duration: Millis,
    pub reason: &'a str,
}

impl Engine {
    /// The grantee `to` names: the inventory's identity when the name resolves to one, else
    /// as written.
    pub fn grantee(&self, to: &str) -> Result<Grantee, EngineError> {
        if let crate::Resolve::Found(i) = self.resolve(to)
            && let Ok(g) = Grantee::parse(i.arn.as_deref().unwrap_or(&i.id))
        {
            return Ok(g);
        }
        Ok(Grantee::parse(to)?)
    }

    /// Stores a pending request by `actor` (`access.request`). The caller holds the writer
    /// lock.
    pub fn request_access(
        &mut self,
        ask: &AccessAsk<'_>,
        actor: &str,
        now: Millis,
    ) -> Result<Request, EngineError> {
        let r = Request::new(
            self.grantee(ask.to)?,
            ask.entitlement.clone(),
            ask.duration,
            ask.reason,
            actor,
            now,
        )?;
        let detail = format!(
            "{} to {} for {}: {}",
            r.entitlement.describe(),
            r.grantee.id(),
            format_duration(r.duration),
            r.reason
        );
        self.put_request(&r, request_audit("access.request", actor, now, &r, detail))?;
        Ok(r)
    }

    /// The stored request `id`, or [`AccessError::NoRequest`](keyward_govern::access::AccessError).
    pub fn pending_request(&self, id: &str) -> Result<Request, EngineError> {
        self.access_request(id)?.ok_or_else(|| {
            EngineError::Access(keyward_govern::access::AccessError::NoRequest(
                id.to_owned(),
            ))
        })
    }

    /// Approves request `id` as `approver` (`access.approve`): it becomes a planned grant
    /// (`access.grant`), applied later through the connectors. The caller holds the writer
    /// lock and has asked the policy whether `approver` may.
    pub fn approve_request(
        &mut self,
        id: &str,
        approver: &str,
        now: Millis,
    ) -> Result<(Request, Grant, Plan), EngineError> {
        let mut r = self.pending_request(id)?;
        r.may_approve(approver)?;
        let (g, plan) = Grant::new(&GrantAsk {
            grantee: r.grantee.clone(),
            entitlement: r.entitlement.clone(),
            duration: r.duration,
            reason: &r.reason,
            requester: &r.requester,
            approver: Some(approver),
            request: Some(&r.id),
            break_glass: false,
            now,
        })?;
        r.approve(approver, &g.id, now)?;
        let detail = format!("approved: becomes grant {}", g.id);
        self.put_request(
            &r,
            request_audit("access.approve", approver, now, &r, detail),
        )?;
        let detail = g.describe("planned (approved)");
        self.create_grant(&g, &plan, audit("access.grant", approver, now, &g, detail))?;
        Ok((r, g, plan))
    }

    /// Denies request `id` for `reason` (`access.deny`). The caller holds the writer lock.
    pub fn deny_request(
        &mut self,
        id: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Request, EngineError> {
        let mut r = self.pending_request(id)?;
        r.deny(actor, reason, now)?;
        let detail = format!("denied: {}", reason.trim());
        self.put_request(&r, request_audit("access.deny", actor, now, &r, detail))?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use keyward_govern::access::{Entitlement, GrantAsk, GrantState, Grantee};

    use super::*;

    const H: Millis = 3_600_000;

    fn grant(now: Millis) -> (Grant, Plan) {
        Grant::new(&GrantAsk {
            grantee: Grantee::parse("user/deploy").unwrap(),
            entitlement: Entitlement::Group {
                name: "admins".into(),
            },
            duration: 2 * H,
            reason: "INC-7",
            requester: "cli:alice",
            approver: None,
            request: None,
            break_glass: false,
            now,
        })
        .unwrap()
    }

    #[test]
    fn a_grant_and_its_expiry_outlive_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (mut g, plan) = grant(0);
        {
            let mut e = Engine::open(dir.path()).unwrap();
            let _w = e.write_lock().unwrap();
            e.create_grant(
                &g,
                &plan,
                audit("access.grant", "cli:alice", 0, &g, "x".into()),
            )
            .unwrap();
            g.activate(H).unwrap();
            e.put_grant(&g, audit("access.grant", "cli:alice", H, &g, "y".into()))
                .unwrap();
        }
        let e = Engine::open(dir.path()).unwrap();
        assert!(e.due_grants(2 * H).unwrap().is_empty());
        let due = e.due_grants(3 * H).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].state, GrantState::Active);
        assert_eq!(
            e.response_plan(&g.plan).unwrap().map(|p| p.id),
            Some(g.plan)
        );
        let actions: Vec<String> = e
            .audit_log(100)
            .unwrap()
            .into_iter()
            .map(|a| a.entry.action)
            .collect();
        assert!(actions.iter().filter(|a| *a == "access.grant").count() == 2);
    }
}
