//! `kw-posture-rotation-overdue` and `kw-posture-rotation-due`: access keys older than the
//! framework's rotation schedule (30 days for high privilege, 90 for standard), with PCI's
//! early warning from day 75.

use super::{Control, DAY, Facts, Hit, active_keys};
use crate::Severity;
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
            out.push(Hit::of(&OVERDUE, severity, summary).attack(&["T1098.001"]));
        } else if !high && age >= 75 {
            let summary = format!("key {} is {age} days old; rotate before 90", k.id);
            out.push(Hit::of(&DUE, Severity::Low, summary));
        }
    }
}
