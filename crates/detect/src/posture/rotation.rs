//! `kw-posture-rotation-overdue` and `kw-posture-rotation-due`: access keys older than the
//! framework's rotation schedule (30 days for high privilege, 90 for standard), with PCI's
//! early warning from day 75.

use super::{Control, DAY, Facts, Hit, active_keys, fix};
use crate::Severity;
use crate::remediation::{GRACE_DAYS, Remediation, Step, shell_quote as q};
use keyward_model::Credential;
use keyward_model::time::Millis;

pub(super) const OVERDUE: Control = Control {
    id: "kw-posture-rotation-overdue",
    title: "Access key rotation overdue",
    description: "An active access key older than 30 days on a high-privilege identity \
                  (permission scope 8 or more), or 90 days on any other.",
};

pub(super) const DUE: Control = Control {
    id: "kw-posture-rotation-due",
    title: "Access key rotation due soon (PCI 90-day limit)",
    description: "An active access key of a standard identity aged 75 to 89 days: rotate it \
                  before PCI DSS's 90-day limit.",
};

pub(super) fn check(f: &Facts, now: Millis, out: &mut Vec<Hit>) {
    let high = f.p.p >= 8.0;
    for k in active_keys(f.identity) {
        let Some(created) = k.created else { continue };
        let age = (now - created) / DAY;
        let limit = if high { 30 } else { 90 };
        if age >= limit {
            let severity = if high {
                Severity::High
            } else {
                Severity::Medium
            };
            let summary = format!(
                "key {} is {age} days old (limit {limit} days{})",
                k.id,
                if high { " for high privilege" } else { "" }
            );
            out.push(
                Hit::of(&OVERDUE, severity, summary)
                    .attack(&["T1098.001"])
                    .remediation(remediation(f, k)),
            );
        } else if !high && age >= 75 {
            let summary = format!("key {} is {age} days old; rotate before 90", k.id);
            out.push(Hit::of(&DUE, Severity::Low, summary).remediation(remediation(f, k)));
        }
    }
}

/// Rotate: a new key, its consumers moved to it, the old one deactivated, then deleted.
fn remediation(f: &Facts, old: &Credential) -> Remediation {
    let i = f.identity;
    let user = i.name.as_str();
    let label = fix::key_label(old);
    let mut create = format!("Create a new access key for user `{user}`");
    if active_keys(i).len() >= 2 {
        create.push_str(
            ": it has two already and AWS allows no third, so finish with the other first (kw-posture-two-active-keys)",
        );
    }
    let mut steps = vec![Step::now(
        create,
        vec![format!("aws iam create-access-key --user-name {}", q(user))],
    )];
    let mut used = format!("Put the new key where {label} is used");
    if let Some(service) = &old.last_used_service {
        used.push_str(&format!(" (last used for `{service}`"));
        if let Some(region) = &old.last_used_region {
            used.push_str(&format!(" in `{region}`"));
        }
        if let Some(t) = old.last_used {
            used.push_str(&format!(" at {}", keyward_model::time::format(t)));
        }
        used.push(')');
    }
    used.push_str("; Keyward does not know its consumers' configuration");
    let Some(arg) = fix::key_arg(user, old) else {
        used.push_str(&format!(
            ", nor the old key's id or creation date: find it with `aws iam list-access-keys --user-name {}`, then deactivate it, and delete it after {GRACE_DAYS} days",
            q(user)
        ));
        steps.push(Step::now(used, Vec::new()));
        return Remediation::new(steps);
    };
    used.push_str("; the old key's last use shows when they have moved");
    steps.push(Step::now(
        used,
        vec![format!(
            "aws iam get-access-key-last-used --access-key-id {arg}"
        )],
    ));
    steps.push(Step::now(
        format!("Deactivate the old key, {label} (`--status Active` undoes it)"),
        vec![fix::deactivate_key(user, &arg)],
    ));
    steps.push(Step::later(
        format!("Delete the old key, {label}"),
        vec![fix::delete_key(user, &arg)],
    ));
    let mut r = Remediation::new(steps);
    r.terraform = fix::terraform(
        &f.defined_in,
        "if the key is an `aws_iam_access_key` resource, replace it (`terraform apply -replace=<its address>`) and pass the new secret to its consumers",
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, key, user};

    #[test]
    fn rotates_the_overdue_key_by_its_real_id() {
        let mut i = user("deploy");
        i.credentials = vec![key("AKIAIOSFODNN7EXAMPLE", Some("2026-01-01T00:00:00Z"))];
        let now = keyward_model::time::parse("2026-12-01T00:00:00Z").unwrap();
        let mut out = Vec::new();
        check(&facts(&i), now, &mut out);
        assert_eq!(out[0].rule, OVERDUE.id);
        assert_eq!(
            commands(&out[0]),
            [
                "aws iam create-access-key --user-name deploy",
                "aws iam get-access-key-last-used --access-key-id AKIAIOSFODNN7EXAMPLE",
                "aws iam update-access-key --user-name deploy --access-key-id AKIAIOSFODNN7EXAMPLE --status Inactive",
                "aws iam delete-access-key --user-name deploy --access-key-id AKIAIOSFODNN7EXAMPLE",
            ]
        );
    }

    #[test]
    fn a_hostile_user_name_stays_one_argument() {
        let mut i = user("x'; rm -rf /");
        i.credentials = vec![key("AKIAIOSFODNN7EXAMPLE", Some("2026-01-01T00:00:00Z"))];
        let now = keyward_model::time::parse("2026-12-01T00:00:00Z").unwrap();
        let mut out = Vec::new();
        check(&facts(&i), now, &mut out);
        assert_eq!(
            commands(&out[0])[0],
            r"aws iam create-access-key --user-name 'x'\''; rm -rf /'"
        );
    }
}
