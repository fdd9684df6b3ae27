//! Rotation schedules: how old an access key may get before it is rotated, and when the
//! warning starts. Pure; the clock is an argument.
//!
//! The rule: a **high-privilege** identity (permission scope P ≥ 6 in the risk score: write
//! access to IAM, STS, KMS, Secrets Manager, SSM or Organizations, a privilege-escalation
//! path, or administrator) rotates every 30 days; every other identity every 90 days (PCI
//! DSS 8.3.9 / 8.6.3's longest period). The warning starts at five sixths of the period,
//! PCI DSS's early warning for 90 days (day 75, 15 days ahead) and its 30-day equivalent
//! (day 25, 5 days ahead). Both periods are configurable (`--high-days`, `--standard-days`).

use keyward_model::time::Millis;
use serde::Serialize;

const DAY_MS: Millis = 86_400_000;

/// The permission scope from which an identity is high-privilege.
pub const HIGH_PRIVILEGE_P: f64 = 6.0;

/// The two periods, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub high_days: u32,
    pub standard_days: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            high_days: 30,
            standard_days: 90,
        }
    }
}

/// Where a key stands against its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Due {
    Overdue,
    DueSoon,
    Ok,
}

impl Due {
    pub fn as_str(self) -> &'static str {
        match self {
            Due::Overdue => "overdue",
            Due::DueSoon => "due-soon",
            Due::Ok => "ok",
        }
    }
}

/// One key's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyDue {
    pub identity: String,
    pub user: String,
    pub key_id: String,
    /// When the key was made (RFC 3339).
    pub created: String,
    #[serde(skip)]
    pub created_ms: Millis,
    pub age_days: u64,
    pub schedule_days: u32,
    pub warn_from_day: u32,
    /// When the key must have been rotated (RFC 3339).
    pub deadline: String,
    pub status: Due,
    pub reason: String,
}

/// The day from which a key on a `days` schedule is due soon: five sixths of it (75 of 90,
/// 25 of 30).
pub fn warn_from(days: u32) -> u32 {
    days - days / 6
}

/// A key's standing: `p` is the identity's permission scope (0–10), `created` the key's
/// creation time.
pub fn due(
    s: Schedule,
    identity: &str,
    user: &str,
    key_id: &str,
    p: f64,
    created: Millis,
    now: Millis,
) -> KeyDue {
    let high = p >= HIGH_PRIVILEGE_P;
    let days = if high { s.high_days } else { s.standard_days };
    let age_days = u64::try_from((now - created).max(0) / DAY_MS).unwrap_or(0);
    let warn = warn_from(days);
    let status = if age_days >= u64::from(days) {
        Due::Overdue
    } else if age_days >= u64::from(warn) {
        Due::DueSoon
    } else {
        Due::Ok
    };
    let class = if high {
        format!("high-privilege (permission scope {p} ≥ {HIGH_PRIVILEGE_P}): every {days} days")
    } else {
        format!("standard (permission scope {p} < {HIGH_PRIVILEGE_P}): every {days} days")
    };
    let reason = match status {
        Due::Overdue => format!("{age_days} days old, past its {days}-day schedule; {class}"),
        Due::DueSoon => format!("{age_days} days old, warned from day {warn}; {class}"),
        Due::Ok => format!("{age_days} days old; {class}"),
    };
    KeyDue {
        identity: identity.to_owned(),
        user: user.to_owned(),
        key_id: key_id.to_owned(),
        created: keyward_model::time::format(created),
        created_ms: created,
        age_days,
        schedule_days: days,
        warn_from_day: warn,
        deadline: keyward_model::time::format(created + Millis::from(days) * DAY_MS),
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_790_000_000_000;

    fn at(days_old: i64, p: f64) -> KeyDue {
        due(
            Schedule::default(),
            "arn:aws:iam::1:user/u",
            "u",
            "AKIA1",
            p,
            NOW - days_old * DAY_MS,
            NOW,
        )
    }

    #[test]
    fn pci_early_warning_for_90_and_30_days() {
        assert_eq!(warn_from(90), 75);
        assert_eq!(warn_from(30), 25);
        assert_eq!(at(74, 2.0).status, Due::Ok);
        assert_eq!(at(75, 2.0).status, Due::DueSoon);
        assert_eq!(at(90, 2.0).status, Due::Overdue);
        assert_eq!(at(24, 6.0).status, Due::Ok);
        assert_eq!(at(25, 6.0).status, Due::DueSoon);
        assert_eq!(at(31, 10.0).status, Due::Overdue);
        assert_eq!(at(31, 10.0).schedule_days, 30);
        assert_eq!(at(31, 4.0).schedule_days, 90);
    }

    #[test]
    fn the_deadline_is_creation_plus_the_period() {
        let d = due(
            Schedule {
                high_days: 7,
                standard_days: 60,
            },
            "i",
            "u",
            "AKIA1",
            8.0,
            0,
            3 * DAY_MS,
        );
        assert_eq!(d.deadline, "1970-01-08T00:00:00Z");
        assert_eq!((d.age_days, d.warn_from_day), (3, 6));
        assert!(d.reason.contains("high-privilege"), "{}", d.reason);
    }
}
