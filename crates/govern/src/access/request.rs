//! The privileged path: a request for access (a job, `access_request`) is stored, not
//! applied; someone other than the requester approves it (it becomes a grant) or denies it.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use super::{AccessError, Entitlement, Grantee};

/// A request's state (its job's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
        }
    }
}

/// A request for time-bound access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `ar-` and 16 hex digits.
    pub id: String,
    pub grantee: Grantee,
    pub entitlement: Entitlement,
    pub duration: Millis,
    pub reason: String,
    pub requester: String,
    pub requested_at: Millis,
    pub state: RequestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Millis>,
    /// Why it was denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<String>,
    /// The grant it became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

impl Request {
    /// A pending request; refuses an empty reason and an entitlement the grantee's platform
    /// cannot hold (found now, not at approval).
    pub fn new(
        grantee: Grantee,
        entitlement: Entitlement,
        duration: Millis,
        reason: &str,
        requester: &str,
        now: Millis,
    ) -> Result<Request, AccessError> {
        if reason.trim().is_empty() {
            return Err(AccessError::NoReason);
        }
        let seed = format!(
            "request\n{}\n{}\n{requester}\n{now}",
            grantee.id(),
            serde_json::to_string(&entitlement).unwrap_or_default()
        );
        let id = super::id("ar", &seed);
        entitlement.action(&grantee, &id)?;
        Ok(Request {
            id,
            grantee,
            entitlement,
            duration,
            reason: reason.trim().to_owned(),
            requester: requester.to_owned(),
            requested_at: now,
            state: RequestState::Pending,
            decided_by: None,
            decided_at: None,
            denial: None,
            grant: None,
        })
    }

    fn pending(&self, verb: &'static str) -> Result<(), AccessError> {
        match self.state {
            RequestState::Pending => Ok(()),
            RequestState::Approved | RequestState::Denied => Err(AccessError::Transition {
                what: "request",
                id: self.id.clone(),
                state: self.state.as_str(),
                verb,
            }),
        }
    }

    /// Whether `approver` may approve it: it is pending and they did not make it.
    pub fn may_approve(&self, approver: &str) -> Result<(), AccessError> {
        self.pending("approved")?;
        if approver == self.requester {
            return Err(AccessError::SelfApproval {
                id: self.id.clone(),
                actor: approver.to_owned(),
            });
        }
        Ok(())
    }

    /// Approved by `approver`, becoming the grant `grant`.
    pub fn approve(&mut self, approver: &str, grant: &str, now: Millis) -> Result<(), AccessError> {
        self.may_approve(approver)?;
        self.state = RequestState::Approved;
        self.decided_by = Some(approver.to_owned());
        self.decided_at = Some(now);
        self.grant = Some(grant.to_owned());
        Ok(())
    }

    /// Denied by `actor` (the requester may withdraw their own) for `reason`.
    pub fn deny(&mut self, actor: &str, reason: &str, now: Millis) -> Result<(), AccessError> {
        self.pending("denied")?;
        if reason.trim().is_empty() {
            return Err(AccessError::NoReason);
        }
        self.state = RequestState::Denied;
        self.decided_by = Some(actor.to_owned());
        self.decided_at = Some(now);
        self.denial = Some(reason.trim().to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::new(
            Grantee::parse("user/deploy").unwrap(),
            Entitlement::Group {
                name: "admins".into(),
            },
            3_600_000,
            "release 4.2",
            "cli:alice",
            0,
        )
        .unwrap()
    }

    #[test]
    fn a_request_is_approved_by_someone_else_once() {
        let mut r = request();
        assert!(r.id.starts_with("ar-"));
        assert!(matches!(
            r.approve("cli:alice", "ag-1", 1),
            Err(AccessError::SelfApproval { .. })
        ));
        r.approve("cli:bob", "ag-1", 1).unwrap();
        assert_eq!(r.state, RequestState::Approved);
        assert!(r.approve("cli:carol", "ag-2", 2).is_err());
        assert!(r.deny("cli:carol", "no", 2).is_err());
    }

    #[test]
    fn a_denied_request_says_why() {
        let mut r = request();
        assert_eq!(r.deny("cli:bob", "", 1), Err(AccessError::NoReason));
        r.deny("cli:bob", "not during the freeze", 1).unwrap();
        assert_eq!(r.denial.as_deref(), Some("not during the freeze"));
        assert!(r.may_approve("cli:carol").is_err());
    }

    #[test]
    fn a_request_the_platform_cannot_hold_is_refused_at_once() {
        let e = Request::new(
            Grantee::parse("role/ops").unwrap(),
            Entitlement::Group {
                name: "admins".into(),
            },
            3_600_000,
            "why",
            "cli:alice",
            0,
        );
        assert!(matches!(e, Err(AccessError::Mismatch { .. })));
    }
}
