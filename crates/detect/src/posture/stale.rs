//! `kw-posture-stale`: an identity unused for more than 30 days.

use super::{Control, Facts, Hit};
use crate::Severity;
use keyward_model::Lifecycle;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-stale",
    title: "Unused for more than 30 days",
    description: "An IAM user or role, or a Kubernetes service account, with no use (or, \
                  never used, no creation) in the last 30 days: a credential nobody needs is \
                  one an attacker can use unnoticed.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    if f.lifecycle != Lifecycle::Stale {
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
        .attack(&["T1078.004"]),
    )
}
