//! The post-incident review a break-glass grant opens (a job, `access_review`, whose parent
//! is the grant): open until someone other than who broke the glass closes it with notes.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use super::{AccessError, Grant};

/// A review's state (its job's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Open,
    Closed,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Closed => "closed",
        }
    }
}

/// The review of one break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The job's id: `review-` and the grant's id.
    pub id: String,
    pub grant: String,
    pub grantee: String,
    /// Who broke the glass.
    pub opened_by: String,
    pub opened_at: Millis,
    pub reason: String,
    pub state: ReviewState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl Review {
    /// The review a break-glass grant opens.
    pub fn open(grant: &Grant, now: Millis) -> Review {
        Review {
            id: format!("review-{}", grant.id),
            grant: grant.id.clone(),
            grantee: grant.grantee.id(),
            opened_by: grant.requester.clone(),
            opened_at: now,
            reason: grant.reason.clone(),
            state: ReviewState::Open,
            closed_at: None,
            closed_by: None,
            notes: None,
        }
    }

    /// Closes it with `notes`: refused when it is closed already, without notes, or by who
    /// broke the glass.
    pub fn close(&mut self, actor: &str, notes: &str, now: Millis) -> Result<(), AccessError> {
        if self.state == ReviewState::Closed {
            return Err(AccessError::Transition {
                what: "review",
                id: self.id.clone(),
                state: self.state.as_str(),
                verb: "closed",
            });
        }
        if notes.trim().is_empty() {
            return Err(AccessError::NoNotes);
        }
        if actor == self.opened_by {
            return Err(AccessError::SelfReview {
                id: self.grant.clone(),
                actor: actor.to_owned(),
            });
        }
        self.state = ReviewState::Closed;
        self.closed_at = Some(now);
        self.closed_by = Some(actor.to_owned());
        self.notes = Some(notes.trim().to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Entitlement, GrantAsk, Grantee};

    #[test]
    fn a_break_glass_review_is_closed_by_someone_else_with_notes() {
        let (g, _) = Grant::new(&GrantAsk {
            grantee: Grantee::parse("role/oncall").unwrap(),
            entitlement: Entitlement::ManagedPolicy {
                arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(),
            },
            duration: 3_600_000,
            reason: "prod down",
            requester: "cli:alice",
            approver: None,
            request: None,
            break_glass: true,
            now: 0,
        })
        .unwrap();
        let mut r = Review::open(&g, 0);
        assert_eq!(r.state, ReviewState::Open);
        assert!(matches!(
            r.close("cli:alice", "fine", 1),
            Err(AccessError::SelfReview { .. })
        ));
        assert_eq!(r.close("cli:bob", " ", 1), Err(AccessError::NoNotes));
        r.close("cli:bob", "rolled back the bad deploy", 2).unwrap();
        assert_eq!(r.closed_by.as_deref(), Some("cli:bob"));
        assert!(r.close("cli:carol", "again", 3).is_err());
    }
}
