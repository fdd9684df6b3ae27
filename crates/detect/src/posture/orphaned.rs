//! `kw-posture-orphaned` (no live owner, and why) and `kw-posture-active-after-workload`
//! (still used after the workload that ran as it was terminated).

use super::{Control, DAY, Facts, Hit};
use crate::Severity;
use keyward_graph::analysis::OrphanReason;
use keyward_model::time::Millis;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-orphaned",
    title: "Orphaned identity",
    description: "No live owner: its owner departed, its function was deleted, no workload \
                  runs as it, or nothing references it (the identity graph's orphan rules, \
                  docs/graph.md).",
};

pub(super) const ACTIVE_AFTER_WORKLOAD: Control = Control {
    id: "kw-posture-active-after-workload",
    title: "Active after its workload was terminated",
    description: "Used in the last 30 days although the function or workload that ran as \
                  it is gone: someone else holds its credentials.",
};

pub(super) fn check(f: &Facts, now: Millis, out: &mut Vec<Hit>) {
    let Some(o) = &f.orphan else { return };
    let i = f.identity;
    let summary = format!("{}: {}", i.id, o.as_str());
    out.push(Hit::of(&CONTROL, Severity::Medium, summary));
    if matches!(o, OrphanReason::FunctionDeleted | OrphanReason::NoWorkload)
        && i.last_used.is_some_and(|t| now - t < 30 * DAY)
    {
        let summary = format!("{} was used recently but its workload is gone", i.id);
        out.push(Hit::of(&ACTIVE_AFTER_WORKLOAD, Severity::High, summary).attack(&["T1078.004"]));
    }
}
