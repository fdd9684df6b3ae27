//! `kw-posture-static-credentials`: an IAM user that authenticates with long-lived keys.

use super::{Control, Facts, Hit, active_keys};
use crate::Severity;
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
        Hit::of(&CONTROL, Severity::Low, summary).attack(&["T1078.004"])
    })
}
