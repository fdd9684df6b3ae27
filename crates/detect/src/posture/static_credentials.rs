//! `kw-posture-static-credentials`: an IAM user that authenticates with long-lived keys.

use super::{Control, Facts, Hit, active_keys, fix};
use crate::Severity;
use crate::remediation::{GRACE_DAYS, Remediation, Step};
use keyward_model::IdentityKind;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-static-credentials",
    title: "Unfederated static credentials",
    description: "An IAM user with an active access key: a long-lived secret where a role \
                  with federated or workload identity would issue short-lived credentials.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let i = f.identity;
    (i.kind == IdentityKind::IamUser && !active_keys(i).is_empty()).then(|| {
        let summary = format!("{} authenticates with long-lived access keys", i.id);
        Hit::of(&CONTROL, Severity::Low, summary)
            .attack(&["T1078.004"])
            .remediation(remediation(f))
    })
}

/// Move the workload to a role, then deactivate the keys and delete them later.
fn remediation(f: &Facts) -> Remediation {
    let i = f.identity;
    let user = i.name.as_str();
    let mut deactivate = Vec::new();
    let mut delete = Vec::new();
    let mut unnamed = Vec::new();
    for k in active_keys(i) {
        match fix::key_arg(user, k) {
            Some(arg) => {
                deactivate.push(fix::deactivate_key(user, &arg));
                delete.push(fix::delete_key(user, &arg));
            }
            None => unnamed.push(fix::key_label(k)),
        }
    }
    let mut off = format!(
        "Once nothing uses them, deactivate the access keys of user `{user}` \
         (`--status Active` undoes it)"
    );
    if !unnamed.is_empty() {
        off.push_str(&format!(
            "; Keyward knows neither the id nor the creation date of {}: \
             `aws iam list-access-keys` shows them",
            unnamed.join(", ")
        ));
    }
    let mut r = Remediation::new(vec![
        Step::now(
            format!(
                "Give what runs as `{user}` a role with short-lived credentials instead (an \
                 instance profile, IRSA, GitHub OIDC, IAM Roles Anywhere): Keyward cannot tell \
                 which fits its consumer"
            ),
            Vec::new(),
        ),
        Step::now(off, deactivate),
        Step::later(
            format!("Delete the keys after {GRACE_DAYS} days without a failure"),
            delete,
        ),
    ]);
    r.terraform = fix::terraform(
        &f.defined_in,
        "replace the `aws_iam_access_key` resources with a role its consumer assumes",
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, key, user};

    #[test]
    fn deactivates_then_deletes_every_active_key() {
        let mut i = user("svc-reporting");
        i.credentials = vec![key("AKIAIOSFODNN7EXAMPLE", None)];
        let h = check(&facts(&i)).unwrap();
        assert_eq!(
            commands(&h),
            [
                "aws iam update-access-key --user-name svc-reporting --access-key-id AKIAIOSFODNN7EXAMPLE --status Inactive",
                "aws iam delete-access-key --user-name svc-reporting --access-key-id AKIAIOSFODNN7EXAMPLE",
            ]
        );
    }

    #[test]
    fn a_key_known_only_by_slot_is_said_to_be_unknown() {
        let mut i = user("svc");
        i.credentials = vec![key("access_key_1", None)];
        let r = check(&facts(&i)).unwrap().remediation.unwrap();
        assert!(r.steps[1].commands.is_empty());
        assert!(
            r.steps[1].summary.contains("slot `access_key_1`"),
            "{}",
            r.steps[1].summary
        );
    }
}
