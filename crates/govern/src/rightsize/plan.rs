//! A rightsizing as a response plan: put the proposal as the inline policy
//! [`POLICY_NAME`], then detach the managed policies and delete the inline policies it
//! replaces. Every step is a reversible [`Change`]: the documents replaced or deleted are
//! kept in the steps' results, so `keyward respond undo PLAN` restores them exactly.

use keyward_model::time::Millis;
use keyward_respond::action::{Action, IamPrincipal};
use keyward_respond::plan::{Plan, PlanStatus, Step};
use keyward_respond::restore::Change;

use super::{POLICY_NAME, Report};

/// Why no plan is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("not applied: {0}")]
    Blocked(String),
    #[error("`{0}` is protected (`{1}`): rightsizing never changes it")]
    Protected(String, String),
}

/// What the plan is made for.
pub struct Request<'a> {
    pub report: &'a Report,
    pub principal: IamPrincipal,
    pub account: Option<&'a str>,
    pub now: Millis,
    pub actor: &'a str,
}

/// The plan (dry run until executed), or why not.
pub fn plan(req: &Request<'_>) -> Result<Plan, PlanError> {
    let r = req.report;
    if !r.blockers.is_empty() {
        return Err(PlanError::Blocked(r.blockers.join("; ")));
    }
    let document = serde_json::to_string(&r.proposal)
        .map_err(|e| PlanError::Blocked(format!("the proposal does not serialize: {e}")))?;
    let mut changes = vec![Change::PutInlinePolicy {
        name: POLICY_NAME.to_owned(),
        document,
    }];
    for source in &r.replaces {
        match source.split_once(':') {
            Some(("managed", arn)) => changes.push(Change::DetachPolicy {
                arn: arn.to_owned(),
            }),
            Some(("inline", name)) if name != POLICY_NAME => {
                changes.push(Change::DeleteInlinePolicy {
                    name: name.to_owned(),
                });
            }
            _ => {}
        }
    }
    let steps = changes
        .into_iter()
        .enumerate()
        .map(|(i, change)| {
            let why = match &change {
                Change::PutInlinePolicy { .. } => format!(
                    "least privilege: the {} actions used (or kept) over {} days",
                    r.proposed_actions, r.days
                ),
                other => format!("replaced by {POLICY_NAME} ({})", other.name()),
            };
            let action = Action::RestoreBaseline {
                account: req.account.map(str::to_owned),
                principal: req.principal.clone(),
                change,
            };
            Step {
                n: i + 1,
                target: action.target(),
                why,
                precondition: action.precondition(),
                command: action.commands(),
                undo: action.undo_commands(),
                terraform: None,
                action,
                result: None,
                undo_result: None,
            }
        })
        .collect();
    let seed = format!("rightsize\n{}\n{}\n{}", r.identity, req.now, req.actor);
    let kind = match req.principal {
        IamPrincipal::Role(_) => "iam_role",
        IamPrincipal::User(_) => "iam_user",
    };
    let mut notes = vec![
        format!(
            "rightsize: {} actions proposed for {} granted patterns, from {} calls over {} days",
            r.proposed_actions, r.granted_patterns, r.calls, r.days
        ),
        "every step is reversible: `keyward respond undo PLAN` puts the replaced policies back exactly".into(),
    ];
    notes.extend(r.notes.iter().cloned());
    Ok(Plan {
        id: format!(
            "rp-{}",
            blake3::hash(seed.as_bytes())
                .to_hex()
                .chars()
                .take(16)
                .collect::<String>()
        ),
        created_at: req.now,
        created_by: req.actor.to_owned(),
        identity: r.identity.clone(),
        identity_kind: kind.into(),
        identity_name: req.principal.name().to_owned(),
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: Vec::new(),
        notes,
        steps,
        evidence: None,
        grace_days: None,
    })
}
