//! `kw-posture-stale`: an identity unused for more than 30 days — when something could
//! have seen it used. Without an activity log covering the period, or the platform's own
//! record of last use, its state is unknown and it is not reported.

use super::{Activity, Control, Facts, Hit};
use crate::Severity;
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
        .attack(&["T1078.004"]),
    )
}
