//! `kw-posture-stale`: an identity unused for more than 30 days — when something could
//! have seen it used. Without an activity log covering the period, or the platform's own
//! record of last use, its state is unknown and it is not reported.

use super::{Activity, Control, Facts, Hit, fix};
use crate::Severity;
use crate::remediation::{GRACE_DAYS, Remediation};
use keyward_model::Lifecycle;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-stale",
    title: "Unused for more than 30 days",
    description: "An IAM user or role, or a Kubernetes service account, with no use (or, \
                  never used, no creation) in the last 30 days, as an activity log covering \
                  those days (CloudTrail, the cluster's audit log) or the platform's record of \
                  last use (credential report, `RoleLastUsed`) shows; without either its use \
                  is unknown. Service-linked roles are left out.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    if f.lifecycle != Lifecycle::Stale || f.activity != Activity::Covered {
        return None;
    }
    let i = f.identity;
    let last = i
        .last_used
        .or(i.last_seen)
        .map_or("never".to_owned(), keyward_model::time::format);
    Some(
        Hit::of(
            &CONTROL,
            Severity::Low,
            format!("{} last used {last}", i.id),
        )
        .attack(&["T1078.004"])
        .remediation(remediation(f)),
    )
}

/// Disable now, delete after the grace period.
fn remediation(f: &Facts) -> Remediation {
    let mut r = Remediation::new(vec![fix::disable(f.identity), fix::retire(f.identity)]);
    r.terraform = fix::terraform(
        &f.defined_in,
        &format!(
            "remove the resource (and what refers to it) after the {GRACE_DAYS}-day grace period"
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::Definition;
    use crate::posture::testing::{commands, facts, key, role, service_account, user};
    use serde_json::json;

    fn stale(i: &keyward_model::Identity) -> Hit {
        let mut f = facts(i);
        f.lifecycle = Lifecycle::Stale;
        check(&f).unwrap()
    }

    #[test]
    fn a_stale_user_is_disabled_then_deleted_with_what_it_holds() {
        let mut i = user("old-ci");
        i.sources.insert("iam-credential-report".into());
        // The credential report names keys by slot: a key is found by its creation second.
        i.credentials = vec![key("access_key_1", Some("2025-01-02T03:04:05Z"))];
        i.credentials.push(keyward_model::Credential {
            kind: keyward_model::CredentialKind::Password,
            ..key("password", None)
        });
        i.details.insert("inline_policies".into(), json!(["own"]));
        i.details.insert(
            "attached_policies".into(),
            json!(["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        );
        i.details.insert("groups".into(), json!(["devs"]));
        let h = stale(&i);
        assert_eq!(
            commands(&h),
            [
                r#"aws iam update-access-key --user-name old-ci --access-key-id "$(aws iam list-access-keys --user-name old-ci --query 'AccessKeyMetadata[?starts_with(CreateDate, `"2025-01-02T03:04:05"`)].AccessKeyId' --output text)" --status Inactive"#,
                "aws iam delete-login-profile --user-name old-ci",
                r#"aws iam delete-access-key --user-name old-ci --access-key-id "$(aws iam list-access-keys --user-name old-ci --query 'AccessKeyMetadata[?starts_with(CreateDate, `"2025-01-02T03:04:05"`)].AccessKeyId' --output text)""#,
                "aws iam detach-user-policy --user-name old-ci --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess",
                "aws iam delete-user-policy --user-name old-ci --policy-name own",
                "aws iam remove-user-from-group --group-name devs --user-name old-ci",
                "aws iam delete-user --user-name old-ci",
            ]
        );
        let r = h.remediation.unwrap();
        assert_eq!(
            (r.steps[0].after_days, r.steps[1].after_days),
            (None, Some(30))
        );
        assert!(r.terraform.is_none());
    }

    #[test]
    fn a_user_without_a_credential_report_has_its_keys_looked_up() {
        let i = user("x'; rm -rf /");
        let h = stale(&i);
        let c = commands(&h);
        assert_eq!(
            c[0],
            r#"for k in $(aws iam list-access-keys --user-name 'x'\''; rm -rf /' --query 'AccessKeyMetadata[?Status==`"Active"`].AccessKeyId' --output text); do aws iam update-access-key --user-name 'x'\''; rm -rf /' --access-key-id "$k" --status Inactive; done"#
        );
        assert!(
            c.contains(&r"aws iam list-user-policies --user-name 'x'\''; rm -rf /'".to_owned()),
            "{c:?}"
        );
        assert_eq!(
            c.last().unwrap(),
            r"aws iam delete-user --user-name 'x'\''; rm -rf /'"
        );
    }

    #[test]
    fn a_stale_role_is_denied_everything_then_deleted() {
        let mut i = role("legacy-batch-role");
        i.details.insert("inline_policies".into(), json!([]));
        i.details.insert(
            "attached_policies".into(),
            json!(["arn:aws:iam::111122223333:policy/batch"]),
        );
        i.details
            .insert("instance_profiles".into(), json!(["batch"]));
        let mut f = facts(&i);
        f.lifecycle = Lifecycle::Stale;
        f.defined_in = vec![Definition {
            address: "aws_iam_role.legacy".into(),
            source: "infra/iam.tf:12".into(),
        }];
        let h = check(&f).unwrap();
        assert_eq!(
            commands(&h),
            [
                r#"aws iam put-role-policy --role-name legacy-batch-role --policy-name KeywardDenyAll --policy-document '{"Statement":[{"Action":"*","Effect":"Deny","Resource":"*"}],"Version":"2012-10-17"}'"#,
                "aws iam remove-role-from-instance-profile --instance-profile-name batch --role-name legacy-batch-role",
                "aws iam detach-role-policy --role-name legacy-batch-role --policy-arn arn:aws:iam::111122223333:policy/batch",
                "aws iam delete-role-policy --role-name legacy-batch-role --policy-name KeywardDenyAll",
                "aws iam delete-role --role-name legacy-batch-role",
            ]
        );
        let t = h.remediation.unwrap().terraform.unwrap();
        assert!(
            t.starts_with("`aws_iam_role.legacy` (infra/iam.tf:12) defines it"),
            "{t}"
        );
    }

    #[test]
    fn a_stale_service_account_leaves_its_bindings_then_goes() {
        let i = service_account("prod", "ci", "x'; rm -rf /");
        let h = stale(&i);
        assert_eq!(
            commands(&h),
            [
                r"kubectl --context prod -n ci get rolebinding jobs -o json | jq --arg kind ServiceAccount --arg name 'x'\''; rm -rf /' --arg ns ci --arg bns ci 'del(.subjects[]? | select(.kind == $kind and .name == $name and (.namespace // $bns) == $ns))' | kubectl --context prod replace -f -",
                r"kubectl --context prod -n ci delete serviceaccount 'x'\''; rm -rf /'",
            ]
        );
    }
}
