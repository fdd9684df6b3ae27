//! `kw-posture-risk`: the framework's risk score R = P × E × A / T as a finding, at the
//! alert tier or above.

use super::{Control, Hit};
use crate::Severity;
use crate::risk::{Risk, Tier};

/// The risk score as a posture finding of its own (only at alert tier or above).
pub const RISK_RULE: &str = "kw-posture-risk";

pub(super) const CONTROL: Control = Control {
    id: RISK_RULE,
    title: "Risk score",
    description: "R = P × E × A / T above the log tier: high at the alert tier, critical at \
                  the automated-remediation tier (R > 3.0).",
};

pub(super) fn check(risk: &Risk) -> Option<Hit> {
    if risk.tier == Tier::Log {
        return None;
    }
    let severity = if risk.tier == Tier::AutoRemediate {
        Severity::Critical
    } else {
        Severity::High
    };
    let summary = format!(
        "R = {:.2} (P {} × E {} × A {} / T {}): {}",
        risk.r,
        risk.p,
        risk.e,
        risk.a,
        risk.t,
        risk.tier.as_str()
    );
    Some(Hit::of(&CONTROL, severity, summary))
}
