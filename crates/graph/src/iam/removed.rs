//! Which boundary removed an escalation path: the paths the identity policies alone would
//! open but permissions boundaries and Organizations guardrails (SCPs, RCPs) close, each
//! with the steps and actions stopped and what stopped them.
//!
//! Run only to explain (`keyward graph paths`): it analyses the account a second time
//! without boundaries, which the posture and graph derivations never need.

use std::collections::BTreeMap;

use keyward_model::time::Millis;

use super::authz::{PrincipalPolicies, Snapshot};
use super::escalation::{ADMIN_PROBES, Analysis, Path, Step, Target, decide, technique};
use super::policy::{Context, Decision, Request, evaluate};

/// One action of one step that a boundary stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The step's index in the path (from 0); `None` for the principal's own
    /// admin-equivalence (a path of no steps).
    pub step: Option<usize>,
    pub action: String,
    /// What stopped it: a permissions boundary (by ARN), an SCP or an RCP (by name and id,
    /// with the root, OU or account it is attached to).
    pub by: String,
}

/// A path to admin the boundaries remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub from: String,
    /// The path as the identity policies alone would allow it.
    pub path: Path,
    /// Empty when no step is stopped itself: what it reaches is no longer
    /// admin-equivalent. A path of no steps is the principal's own admin-equivalence.
    pub blocked: Vec<Blocked>,
}

/// The paths from every principal (or only `from`) that `bounded`, the analysis of
/// `snap` with its boundaries, no longer finds, as of `now`.
pub fn removed(
    snap: &Snapshot,
    bounded: &Analysis,
    from: Option<&str>,
    now: Millis,
) -> Vec<Removed> {
    let has_boundary = snap.org.is_some()
        || snap
            .users
            .iter()
            .chain(&snap.roles)
            .any(|e| e.get("PermissionsBoundary").is_some());
    if !has_boundary {
        return Vec::new();
    }
    let free = Analysis::run_at(&snap.unbounded(), now);
    let principals = snap.principals();
    let groups: BTreeMap<String, PrincipalPolicies> = snap
        .groups()
        .into_iter()
        .filter_map(|g| keyward_model::ids::canonical_iam_arn(&g.arn).map(|id| (id, g)))
        .collect();
    let mut ctx = Context::default();
    ctx.at(now);
    let mut out = Vec::new();
    for (id, p) in &principals {
        if from.is_some_and(|f| f != id) || p.is_service_linked() {
            continue;
        }
        if bounded.path_to_admin(id).is_some() {
            continue;
        }
        let Some(path) = free.path_to_admin(id) else {
            continue;
        };
        let mut blocked = Vec::new();
        // Admin-equivalent by its own policies: which of the admin probes are stopped.
        if path.steps.is_empty() {
            for action in ADMIN_PROBES {
                if let Some(by) = stopped(p, action, "*", &ctx) {
                    blocked.push(Blocked {
                        step: None,
                        action: action.to_owned(),
                        by,
                    });
                }
            }
        }
        for (i, step) in path.steps.iter().enumerate() {
            let Some(subject) = principals
                .get(&step.from)
                .or_else(|| groups.get(&step.from))
            else {
                continue;
            };
            for action in technique(step.technique).map_or(&[][..], |t| t.actions) {
                let resource = resource(step, action, subject, &principals);
                if let Some(by) = stopped(subject, action, &resource, &ctx) {
                    blocked.push(Blocked {
                        step: Some(i),
                        action: (*action).to_owned(),
                        by,
                    });
                }
            }
        }
        out.push(Removed {
            from: id.clone(),
            path,
            blocked,
        });
    }
    out
}

/// What `action` of `step` acts on, as the escalation analysis asks it.
fn resource(
    step: &Step,
    action: &str,
    subject: &PrincipalPolicies,
    principals: &BTreeMap<String, PrincipalPolicies>,
) -> String {
    let arn_of = |id: &str| {
        principals
            .get(id)
            .map_or_else(|| id.to_owned(), |p| p.arn.clone())
    };
    let target = technique(step.technique).map(|t| t.target);
    match target {
        Some(Target::PassRole(_) | Target::ExistingWorkload(_)) => {
            if action.eq_ignore_ascii_case("iam:PassRole") {
                arn_of(&step.to)
            } else {
                "*".to_owned()
            }
        }
        Some(Target::SelfPolicy) => step.via.clone().unwrap_or_else(|| subject.arn.clone()),
        Some(Target::User | Target::Role) | None => arn_of(&step.to),
    }
}

/// Why `p`, allowed `action` on `resource` by its identity policies, is stopped: its
/// permissions boundary, or a guardrail of its account. `None` when it is not stopped.
fn stopped(p: &PrincipalPolicies, action: &str, resource: &str, ctx: &Context) -> Option<String> {
    if decide(p, action, resource, ctx).possibly_allowed() {
        return None;
    }
    let req = Request {
        action,
        resource,
        principal: None,
        context: ctx,
    };
    if let Some(b) = &p.boundary {
        let arn = b
            .source
            .strip_prefix("boundary:managed:")
            .unwrap_or(&b.source);
        match evaluate(&[&b.policy], None, &req).decision {
            Decision::ExplicitDeny => {
                return Some(format!("permissions boundary `{arn}` denies it"));
            }
            Decision::ImplicitDeny => {
                return Some(format!("permissions boundary `{arn}` does not allow it"));
            }
            Decision::Allow | Decision::ConditionalAllow(_) => {}
        }
    }
    p.org
        .as_ref()
        .and_then(|g| g.check(action, resource, ctx).err())
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    /// A user who may attach any policy to itself (iam-008), under a boundary of S3 only.
    fn snapshot(boundary: bool) -> Snapshot {
        let b = "arn:aws:iam::222222222222:policy/s3-only";
        let mut user = json!({
            "UserName": "dev", "Arn": "arn:aws:iam::222222222222:user/dev",
            "UserPolicyList": [{"PolicyName": "self", "PolicyDocument": {"Statement": [
                {"Effect": "Allow", "Action": "iam:AttachUserPolicy",
                 "Resource": "arn:aws:iam::222222222222:user/dev"}]}}],
        });
        if boundary {
            user["PermissionsBoundary"] = json!({"PermissionsBoundaryArn": b,
                "PermissionsBoundaryType": "Policy"});
        }
        Snapshot::new(&json!({
            "UserDetailList": [user],
            "Policies": [{"PolicyName": "s3-only", "Arn": b, "DefaultVersionId": "v1",
                "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true,
                    "Document": {"Statement": [
                        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}]}],
        }))
    }

    #[test]
    fn permissions_boundary_is_named_as_what_removed_the_path() {
        let dev = "arn:aws:iam::222222222222:user/dev";
        let free = snapshot(false);
        assert!(Analysis::run_at(&free, 0).path_to_admin(dev).is_some());
        assert!(removed(&free, &Analysis::run_at(&free, 0), None, 0).is_empty());

        let snap = snapshot(true);
        let bounded = Analysis::run_at(&snap, 0);
        assert!(bounded.path_to_admin(dev).is_none());
        let r = removed(&snap, &bounded, None, 0);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].from, dev);
        assert_eq!(r[0].path.steps[0].technique, "iam-008");
        assert_eq!(
            r[0].blocked,
            vec![Blocked {
                step: Some(0),
                action: "iam:AttachUserPolicy".into(),
                by: "permissions boundary `arn:aws:iam::222222222222:policy/s3-only` \
                     does not allow it"
                    .into(),
            }]
        );
    }
}
