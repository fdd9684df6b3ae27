//! The framework's risk score: `R = (P × E × A) / T`.
//!
//! * **P**, permission scope 0–10, from the identity's effective permissions in the graph:
//!   10 an `Allow` of `*` on `*` (admin); 8 a privilege-escalation path; 6 write access to
//!   IAM, STS, KMS, Secrets Manager, SSM or Organizations; 4 other write access; 2 read only;
//!   0 nothing known.
//! * **E**, exposure 0–10, summed and capped: +3 a long-lived static credential (an active
//!   access key, a service-account token secret); +2 that credential is older than 90 days;
//!   +2 the identity is used from 3 or more networks; +2 it is trusted by a foreign or any
//!   account, or federated to external subjects; +1 nobody owns it.
//! * **A**, anomaly 0–10: the strongest of the identity's open threat findings — a baseline
//!   anomaly's own score, else 9 / 7 / 5 / 3 / 1 for critical / high / medium / low / info.
//! * **T**, days since the credential was last rotated, at least 1 (temporary credentials
//!   count as rotated today).
//!
//! Tiers: R > 3.0 automated-remediation candidate; 1.0 ≤ R ≤ 3.0 alert for human review;
//! R < 1.0 logged only.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    AutoRemediate,
    Alert,
    Log,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::AutoRemediate => "auto-remediate",
            Tier::Alert => "alert",
            Tier::Log => "log",
        }
    }
}

/// A score and the factors it came from, with why each factor has its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Risk {
    pub p: f64,
    pub e: f64,
    pub a: f64,
    pub t: f64,
    pub r: f64,
    pub tier: Tier,
    pub why: Vec<String>,
}

/// `R = P × E × A / max(T, 1)`, rounded to two decimals.
pub fn score(p: f64, e: f64, a: f64, t_days: f64, why: Vec<String>) -> Risk {
    let clamp = |x: f64| x.clamp(0.0, 10.0);
    let (p, e, a) = (clamp(p), clamp(e), clamp(a));
    let t = t_days.max(1.0);
    let r = ((p * e * a / t) * 100.0).round() / 100.0;
    let tier = if r > 3.0 {
        Tier::AutoRemediate
    } else if r >= 1.0 {
        Tier::Alert
    } else {
        Tier::Log
    };
    Risk {
        p,
        e,
        a,
        t,
        r,
        tier,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frameworks_worked_example() {
        let r = score(10.0, 8.0, 9.0, 180.0, Vec::new());
        assert!((r.r - 4.0).abs() < 1e-9);
        assert_eq!(r.tier, Tier::AutoRemediate);
    }

    #[test]
    fn tiers_and_bounds() {
        assert_eq!(score(10.0, 3.0, 1.0, 10.0, vec![]).tier, Tier::Alert); // 3.0
        assert_eq!(score(10.0, 10.0, 3.0, 100.0, vec![]).tier, Tier::Alert); // 3.0
        assert_eq!(score(10.0, 10.0, 0.9, 100.0, vec![]).tier, Tier::Log);
        // T is at least one day; factors are clamped to 0–10.
        assert_eq!(score(20.0, 1.0, 1.0, 0.0, vec![]).r, 10.0);
        assert_eq!(score(4.0, 5.0, 0.0, 1.0, vec![]).tier, Tier::Log);
    }
}
