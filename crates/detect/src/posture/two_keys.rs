//! `kw-posture-two-active-keys`: an identity with two active access keys.

use super::{Control, Facts, Hit, active_keys, fix};
use crate::Severity;
use crate::remediation::{GRACE_DAYS, Remediation, Step, shell_quote as q};

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-two-active-keys",
    title: "Two active access keys",
    description: "Two keys active at once: a rotation that never finished, or a second \
                  key someone made for themselves. Deactivate the older.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let keys = active_keys(f.identity).len();
    (keys >= 2).then(|| {
        let summary = format!("{} has {keys} active keys", f.identity.id);
        Hit::of(&CONTROL, Severity::Medium, summary)
            .attack(&["T1098.001"])
            .remediation(remediation(f))
    })
}

/// Deactivate the older key (by creation), delete it after the grace period.
fn remediation(f: &Facts) -> Remediation {
    let i = f.identity;
    let user = i.name.as_str();
    let mut keys = active_keys(i);
    keys.sort_by_key(|k| (k.created.is_none(), k.created, k.id.clone()));
    let older = keys
        .first()
        .filter(|k| k.created.is_some())
        .and_then(|k| Some((*k, fix::key_arg(user, k)?)));
    let (which, arg) = match older {
        Some((k, arg)) => (fix::key_label(k), arg),
        // Creation dates unknown: the account knows which is older.
        None => (
            "the older active key (Keyward knows neither creation date; this looks it up)".into(),
            format!(
                "\"$(aws iam list-access-keys --user-name {} --query {} --output text)\"",
                q(user),
                q("sort_by(AccessKeyMetadata[?Status==`\"Active\"`], &CreateDate)[0].AccessKeyId")
            ),
        ),
    };
    let mut r = Remediation::new(vec![
        Step::now(
            format!(
                "Deactivate {which} of user `{user}`; the newer stays (`--status Active` undoes it)"
            ),
            vec![fix::deactivate_key(user, &arg)],
        ),
        Step::later(
            format!("Delete that key once nothing failed for {GRACE_DAYS} days"),
            vec![fix::delete_key(user, &arg)],
        ),
    ]);
    r.terraform = fix::terraform(
        &f.defined_in,
        "if the keys are `aws_iam_access_key` resources, set `status = \"Inactive\"` on the \
         older, and remove it after the grace period",
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, key, user};

    #[test]
    fn deactivates_the_older_key_by_creation() {
        let mut i = user("svc-ci");
        i.credentials = vec![
            key("AKIAIOSFODNN7NEWER01", Some("2026-10-06T15:02:31Z")),
            key("AKIAIOSFODNN7OLDER01", Some("2025-10-12T08:14:55Z")),
        ];
        let h = check(&facts(&i)).unwrap();
        assert_eq!(
            commands(&h),
            [
                "aws iam update-access-key --user-name svc-ci --access-key-id AKIAIOSFODNN7OLDER01 --status Inactive",
                "aws iam delete-access-key --user-name svc-ci --access-key-id AKIAIOSFODNN7OLDER01",
            ]
        );
        assert_eq!(h.remediation.unwrap().steps[1].after_days, Some(30));
    }

    #[test]
    fn a_slot_key_is_looked_up_by_its_creation_second_and_names_are_quoted() {
        let mut i = user("x'; rm -rf /");
        i.credentials = vec![
            key("access_key_2", Some("2026-10-06T15:02:31Z")),
            key("access_key_1", Some("2025-10-12T08:14:55Z")),
        ];
        let h = check(&facts(&i)).unwrap();
        assert_eq!(
            commands(&h)[0],
            r#"aws iam update-access-key --user-name 'x'\''; rm -rf /' --access-key-id "$(aws iam list-access-keys --user-name 'x'\''; rm -rf /' --query 'AccessKeyMetadata[?starts_with(CreateDate, `"2025-10-12T08:14:55"`)].AccessKeyId' --output text)" --status Inactive"#
        );
    }

    #[test]
    fn unknown_creation_dates_ask_the_account_for_the_older() {
        let mut i = user("svc");
        i.credentials = vec![key("access_key_1", None), key("access_key_2", None)];
        let h = check(&facts(&i)).unwrap();
        assert!(
            commands(&h)[0].contains("sort_by(AccessKeyMetadata"),
            "{:?}",
            commands(&h)
        );
    }
}
