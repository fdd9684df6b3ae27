//! `kw-posture-admin-wildcard` (`Allow *` on `*`) and `kw-posture-escalation` (a grant that
//! lets the identity raise its own privileges), from its permission scope.

use super::{Control, Facts, Hit};
use crate::Severity;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-admin-wildcard",
    title: "Administrator wildcard permissions",
    description: "Allowed every action on every resource (permission scope 10).",
};

pub(super) const ESCALATION: Control = Control {
    id: "kw-posture-escalation",
    title: "Can escalate its privileges",
    description: "Holds a grant on an IAM identity or an escalation technique of the \
                  pathfinding.cloud catalogue that makes it admin-equivalent (scope 8).",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let i = f.identity;
    // identity → the grant's target.
    let path = || {
        std::iter::once(i.id.clone())
            .chain(f.p.target.clone())
            .collect()
    };
    let summary = || format!("{}: {}", i.id, f.p.why);
    if f.p.p >= 10.0 {
        Some(
            Hit::of(&CONTROL, Severity::High, summary())
                .attack(&["T1078.004"])
                .path(path()),
        )
    } else if f.p.p >= 8.0 {
        Some(
            Hit::of(&ESCALATION, Severity::High, summary())
                .attack(&["T1098"])
                .path(path()),
        )
    } else {
        None
    }
}
