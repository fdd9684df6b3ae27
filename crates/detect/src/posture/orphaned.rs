//! `kw-posture-orphaned` (no live owner, and why) and `kw-posture-active-after-workload`
//! (still used after the workload that ran as it was terminated).

use super::{Control, DAY, Facts, Hit, fix};
use crate::Severity;
use crate::remediation::{GRACE_DAYS, Remediation, Step, shell_quote as q};
use keyward_graph::analysis::OrphanReason;
use keyward_model::time::Millis;
use keyward_model::{Identity, IdentityKind};

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-orphaned",
    title: "Orphaned identity",
    description: "No live owner: its owner departed, its function was deleted, no workload \
                  runs as it, or nothing references it (the identity graph's orphan rules, \
                  docs/graph.md).",
};

pub(super) const ACTIVE_AFTER_WORKLOAD: Control = Control {
    id: "kw-posture-active-after-workload",
    title: "Active after its workload was terminated",
    description: "Used in the last 30 days although the function or workload that ran as \
                  it is gone: someone else holds its credentials.",
};

pub(super) fn check(f: &Facts, now: Millis, out: &mut Vec<Hit>) {
    let Some(o) = &f.orphan else { return };
    let i = f.identity;
    let summary = format!("{}: {}", i.id, o.as_str());
    out.push(Hit::of(&CONTROL, Severity::Medium, summary).remediation(reassign_or_retire(f, o)));
    if matches!(o, OrphanReason::FunctionDeleted | OrphanReason::NoWorkload)
        && i.last_used.is_some_and(|t| now - t < 30 * DAY)
    {
        let summary = format!("{} was used recently but its workload is gone", i.id);
        out.push(
            Hit::of(&ACTIVE_AFTER_WORKLOAD, Severity::High, summary)
                .attack(&["T1078.004"])
                .remediation(contain(f)),
        );
    }
}

/// The environment variable the reassigning command reads the new owner from: Keyward
/// cannot know who takes it over, and the command refuses to run without it.
const NEW_OWNER: &str = "\"${NEW_OWNER:?set NEW_OWNER to the team or person taking it over}\"";

/// The command that names an owner in the tag or annotation Keyward reads (`owner`).
fn owner_command(i: &Identity) -> Option<String> {
    match i.kind {
        IdentityKind::IamUser | IdentityKind::IamRole => {
            let p = fix::principal(i)?;
            Some(format!(
                "aws iam tag-{} {} --tags Key=owner,Value={NEW_OWNER}",
                p.noun,
                p.arg()
            ))
        }
        IdentityKind::ServiceAccount => Some(format!(
            "{} -n {} annotate --overwrite serviceaccount {} owner={NEW_OWNER}",
            fix::kubectl(i.cluster.as_deref().unwrap_or_default()),
            q(i.namespace.as_deref().unwrap_or("default")),
            q(&i.name)
        )),
        // Posture evaluates only IAM users and roles and service accounts.
        _ => None,
    }
}

/// Reassign it to a live owner, or, when nobody needs it, retire it (disable, then delete).
fn reassign_or_retire(f: &Facts, why: &OrphanReason) -> Remediation {
    let i = f.identity;
    let why = match why {
        OrphanReason::OwnerDeparted => "everyone found to own it has left",
        OrphanReason::FunctionDeleted => "the Lambda function that used it is gone",
        OrphanReason::NoWorkload => "no workload runs as it",
        OrphanReason::Unreferenced => "nothing owns, runs as or refers to it",
    };
    let mut disable = fix::disable(i);
    disable.summary = format!("Or, if nobody needs it, retire it. {}", disable.summary);
    let mut r = Remediation::new(vec![
        Step::now(
            format!(
                "Reassign `{}` ({why}): record its new owner in the `owner` tag or annotation Keyward reads (who that is, Keyward cannot know: set `NEW_OWNER`)",
                i.id
            ),
            owner_command(i).into_iter().collect(),
        ),
        disable,
        fix::retire(i),
    ]);
    r.terraform = fix::terraform(
        &f.defined_in,
        &format!(
            "add `owner` to its `tags` (or `annotations`), or remove the resource after the {GRACE_DAYS}-day grace period"
        ),
    );
    r
}

/// Someone uses it though its workload is gone: disable it now, find out who, delete it.
fn contain(f: &Facts) -> Remediation {
    let i = f.identity;
    let mut r = Remediation::new(vec![
        fix::disable(i),
        Step::now(
            format!(
                "Find out who used it after its workload went: its recent activity and the networks it came from are in `keyward show {}`",
                q(&i.id)
            ),
            Vec::new(),
        ),
        fix::retire(i),
    ]);
    r.terraform = fix::terraform(
        &f.defined_in,
        &format!("remove the resource after the {GRACE_DAYS}-day grace period"),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, service_account};

    #[test]
    fn reassigns_by_annotation_or_retires_a_service_account() {
        let i = service_account("prod-eks", "payments", "legacy-cron");
        let mut f = facts(&i);
        f.orphan = Some(OrphanReason::NoWorkload);
        let mut out = Vec::new();
        check(&f, 0, &mut out);
        assert_eq!(
            commands(&out[0]),
            [
                r#"kubectl --context prod-eks -n payments annotate --overwrite serviceaccount legacy-cron owner="${NEW_OWNER:?set NEW_OWNER to the team or person taking it over}""#,
                "kubectl --context prod-eks -n payments get rolebinding jobs -o json | jq --arg kind ServiceAccount --arg name legacy-cron --arg ns payments --arg bns payments 'del(.subjects[]? | select(.kind == $kind and .name == $name and (.namespace // $bns) == $ns))' | kubectl --context prod-eks replace -f -",
                "kubectl --context prod-eks -n payments delete serviceaccount legacy-cron",
            ]
        );
        let r = out[0].remediation.as_ref().unwrap();
        assert!(r.steps[1].summary.starts_with("Or, if nobody needs it"));
        assert_eq!(r.steps[2].after_days, Some(30));
    }

    #[test]
    fn a_role_is_tagged_with_its_new_owner() {
        let i = crate::posture::testing::role("x'; rm -rf /");
        let mut f = facts(&i);
        f.orphan = Some(OrphanReason::OwnerDeparted);
        let mut out = Vec::new();
        check(&f, 0, &mut out);
        assert!(
            commands(&out[0])[0].starts_with(
                r"aws iam tag-role --role-name 'x'\''; rm -rf /' --tags Key=owner,Value="
            ),
            "{:?}",
            commands(&out[0])
        );
    }
}
