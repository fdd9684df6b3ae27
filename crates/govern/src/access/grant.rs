//! A time-bound grant: its lifetime as a document the engine stores as a job
//! (`access_grant`), the states it moves through, and the one-step response plan that
//! applies it (revocation is that plan's undo).
//!
//! ```text
//! planned ──execute──▶ active ──expires_at passed──▶ expired
//!    │                   │ └──────revoke────────────▶ revoked
//!    └──execute fails──▶ failed (nothing in effect; expires or is revoked like the others)
//! ```

use keyward_model::time::Millis;
use keyward_respond::plan::{Plan, PlanStatus, Step};
use serde::{Deserialize, Serialize};

use super::{AccessError, Entitlement, Grantee};

/// A grant's state (its job's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Stored and shown; nothing applied (a dry run).
    Planned,
    /// Applied and read back; revoked at `expires_at`.
    Active,
    /// Revoked at (or after) its expiry.
    Expired,
    /// Revoked before its expiry by an operator.
    Revoked,
    /// Applying it failed: not in effect.
    Failed,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Planned => "planned",
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Failed => "failed",
        }
    }

    /// Whether the grant is over (nothing left to revoke).
    pub fn ended(self) -> bool {
        match self {
            GrantState::Expired | GrantState::Revoked => true,
            GrantState::Planned | GrantState::Active | GrantState::Failed => false,
        }
    }
}

/// How a grant ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Expired,
    Revoked,
}

/// A time-bound grant of one entitlement to one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `ag-` and 16 hex digits.
    pub id: String,
    /// The response plan that applies it (its undo revokes it).
    pub plan: String,
    pub grantee: Grantee,
    pub entitlement: Entitlement,
    /// Who asked for it (`cli:alice`); for a break-glass grant, who broke the glass.
    pub requester: String,
    /// Who approved its request (the privileged path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// The request it was approved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    pub reason: String,
    /// How long it lasts once applied.
    pub duration: Millis,
    pub created_at: Millis,
    /// When it was applied (none while planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<Millis>,
    /// When it is revoked: `granted_at + duration` (`created_at + duration` while planned).
    pub expires_at: Millis,
    pub state: GrantState,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// The last failure (applying it, or revoking it: then it stays active and the next
    /// expiry run tries again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a new grant is made from.
#[derive(Debug, Clone)]
pub struct GrantAsk<'a> {
    pub grantee: Grantee,
    pub entitlement: Entitlement,
    /// Checked against its path's cap ([`super::duration`]).
    pub duration: Millis,
    pub reason: &'a str,
    pub requester: &'a str,
    pub approver: Option<&'a str>,
    pub request: Option<&'a str>,
    pub break_glass: bool,
    pub now: Millis,
}

impl Grant {
    /// A planned grant and the plan that applies it. Refuses an empty reason and an
    /// entitlement the grantee's platform cannot hold.
    pub fn new(ask: &GrantAsk<'_>) -> Result<(Grant, Plan), AccessError> {
        let reason = ask.reason.trim();
        if reason.is_empty() {
            return Err(AccessError::NoReason);
        }
        let seed = format!(
            "access\n{}\n{}\n{}\n{}",
            ask.grantee.id(),
            serde_json::to_string(&ask.entitlement).unwrap_or_default(),
            ask.requester,
            ask.now
        );
        let id = super::id("ag", &seed);
        let action = ask.entitlement.action(&ask.grantee, &id)?;
        let plan_id = super::id("rp", &format!("{seed}\nplan"));
        let grant = Grant {
            id: id.clone(),
            plan: plan_id.clone(),
            grantee: ask.grantee.clone(),
            entitlement: ask.entitlement.clone(),
            requester: ask.requester.to_owned(),
            approver: ask.approver.map(str::to_owned),
            request: ask.request.map(str::to_owned),
            reason: reason.to_owned(),
            duration: ask.duration,
            created_at: ask.now,
            granted_at: None,
            expires_at: ask.now.saturating_add(ask.duration),
            state: GrantState::Planned,
            break_glass: ask.break_glass,
            ended_at: None,
            ended_by: None,
            last_error: None,
        };
        let why = format!(
            "{}access grant {id} for {}: {reason}",
            if ask.break_glass { "break-glass " } else { "" },
            keyward_respond::playbook::format_duration(ask.duration),
        );
        let mut step = Step::new(action, &why);
        step.n = 1;
        let plan = Plan {
            id: plan_id,
            created_at: ask.now,
            created_by: ask.requester.to_owned(),
            identity: ask.grantee.id(),
            identity_kind: ask.grantee.kind().to_owned(),
            identity_name: ask.grantee.name().to_owned(),
            finding: None,
            since: None,
            status: PlanStatus::Planned,
            workloads: Vec::new(),
            notes: vec![
                format!(
                    "grants {} to {} for {}; revoked by `keyward access expire --execute` once it expires (or `keyward access revoke {id} --execute`)",
                    ask.entitlement.describe(),
                    ask.grantee.id(),
                    keyward_respond::playbook::format_duration(ask.duration),
                ),
                format!("reason: {reason}"),
            ],
            steps: vec![step],
            evidence: None,
            grace_days: None,
        };
        Ok((grant, plan))
    }

    fn refuse(&self, verb: &'static str) -> AccessError {
        AccessError::Transition {
            what: "grant",
            id: self.id.clone(),
            state: self.state.as_str(),
            verb,
        }
    }

    /// `planned: managed policy ARN to user/x for 2h (reason)`, for the audit log.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}{}: {} to {} for {} ({})",
            if self.break_glass {
                " (break-glass)"
            } else {
                ""
            },
            self.entitlement.describe(),
            self.grantee.id(),
            keyward_respond::playbook::format_duration(self.duration),
            self.reason
        )
    }

    /// Its plan ran and was read back: active from `now` for its duration.
    pub fn activate(&mut self, now: Millis) -> Result<(), AccessError> {
        match self.state {
            GrantState::Planned | GrantState::Failed => {
                self.state = GrantState::Active;
                self.granted_at = Some(now);
                self.expires_at = now.saturating_add(self.duration);
                self.last_error = None;
                Ok(())
            }
            GrantState::Active | GrantState::Expired | GrantState::Revoked => {
                Err(self.refuse("activated"))
            }
        }
    }

    /// Its plan failed: not in effect.
    pub fn fail(&mut self, message: String) -> Result<(), AccessError> {
        match self.state {
            GrantState::Planned | GrantState::Failed => {
                self.state = GrantState::Failed;
                self.last_error = Some(message);
                Ok(())
            }
            GrantState::Active | GrantState::Expired | GrantState::Revoked => {
                Err(self.refuse("marked failed"))
            }
        }
    }

    /// Whether expiry should end it now: not ended, and `expires_at` reached.
    pub fn due(&self, now: Millis) -> bool {
        !self.state.ended() && now >= self.expires_at
    }

    /// Its revocation was read back (or there was nothing in effect): ended by `actor`.
    /// Expiry before `expires_at` is refused.
    pub fn end(&mut self, how: End, now: Millis, actor: &str) -> Result<(), AccessError> {
        if self.state.ended() {
            return Err(self.refuse(match how {
                End::Expired => "expired",
                End::Revoked => "revoked",
            }));
        }
        if how == End::Expired && now < self.expires_at {
            return Err(self.refuse("expired before its expiry"));
        }
        self.state = match how {
            End::Expired => GrantState::Expired,
            End::Revoked => GrantState::Revoked,
        };
        self.ended_at = Some(now);
        self.ended_by = Some(actor.to_owned());
        self.last_error = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn ask(now: Millis) -> GrantAsk<'static> {
        GrantAsk {
            grantee: Grantee::parse("user/deploy").unwrap(),
            entitlement: Entitlement::ManagedPolicy {
                arn: "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
            },
            duration: 2 * H,
            reason: "INC-42",
            requester: "cli:alice",
            approver: None,
            request: None,
            break_glass: false,
            now,
        }
    }

    #[test]
    fn a_grant_is_a_one_step_plan() {
        let (g, plan) = Grant::new(&ask(1_000)).unwrap();
        assert!(g.id.starts_with("ag-") && g.plan == plan.id);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(
            plan.steps[0].command,
            vec![
                "aws iam attach-user-policy --user-name deploy --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess"
            ]
        );
        assert!(plan.steps[0].undo[0].starts_with("aws iam detach-user-policy"));
        assert_eq!(g.state, GrantState::Planned);
        let mut no_reason = ask(1_000);
        no_reason.reason = "  ";
        assert_eq!(Grant::new(&no_reason).unwrap_err(), AccessError::NoReason);
    }

    #[test]
    fn a_grant_lives_from_activation_until_expiry() {
        let (mut g, _) = Grant::new(&ask(0)).unwrap();
        g.activate(10 * H).unwrap();
        assert_eq!(g.expires_at, 12 * H);
        assert!(!g.due(11 * H));
        assert!(g.due(12 * H));
        assert!(g.end(End::Expired, 11 * H, "serve").is_err());
        g.end(End::Expired, 12 * H, "serve").unwrap();
        assert_eq!(g.state, GrantState::Expired);
        assert!(!g.due(20 * H));
        assert!(g.end(End::Revoked, 13 * H, "cli:bob").is_err());
        assert!(g.activate(13 * H).is_err());
    }

    #[test]
    fn a_revoked_grant_is_over_before_its_expiry() {
        let (mut g, _) = Grant::new(&ask(0)).unwrap();
        g.activate(0).unwrap();
        g.end(End::Revoked, H, "cli:bob").unwrap();
        assert_eq!(g.state, GrantState::Revoked);
        assert_eq!(g.ended_by.as_deref(), Some("cli:bob"));
    }
}
