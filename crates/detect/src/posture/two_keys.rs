//! `kw-posture-two-active-keys`: an identity with two active access keys.

use super::{Control, Facts, Hit, active_keys};
use crate::Severity;

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
        Hit::of(&CONTROL, Severity::Medium, summary).attack(&["T1098.001"])
    })
}
