//! The controls, each mapped to the findings that fail or warn it and the requirements it
//! needs besides. The mapping is ours, written from each framework's text for what machine
//! identities bear on.

use super::Framework::{self, Iso27001, PciDss4, Soc2};

/// Something a control needs besides the absence of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The audit log's keyed chain verifies end to end.
    AuditIntact,
    /// An access review: baselines approved within the last N days.
    BaselinesWithinDays(u32),
    /// Monitoring: an activity log read within the last N days.
    EventsWithinDays(u32),
    /// At least one identity inventoried.
    Inventory,
}

/// One control of one framework.
#[derive(Debug, Clone, Copy)]
pub struct ControlDef {
    pub framework: Framework,
    pub id: &'static str,
    pub title: &'static str,
    /// Open findings of these rules fail it.
    pub fail_on: &'static [&'static str],
    /// Open findings of these rules make it a warning.
    pub warn_on: &'static [&'static str],
    pub requires: &'static [Requirement],
}

const ADMIN: &str = "kw-posture-admin-wildcard";
const ESCALATION: &str = "kw-posture-escalation";
const STATIC: &str = "kw-posture-static-credentials";
const FOREIGN: &str = "kw-posture-foreign-trust";
const STALE: &str = "kw-posture-stale";
const ORPHANED: &str = "kw-posture-orphaned";
const AFTER_WORKLOAD: &str = "kw-posture-active-after-workload";
const OVERDUE: &str = "kw-posture-rotation-overdue";
const DUE: &str = "kw-posture-rotation-due";
const TWO_KEYS: &str = "kw-posture-two-active-keys";
const RBAC: &str = "kw-posture-k8s-rbac";
const CLUSTER_ADMIN: &str = "kw-k8s-cluster-admin-binding";
const UNTRUSTED_ASSUME: &str = "kw-aws-untrusted-account-assume";
const BACKDOOR_ROLE: &str = "kw-aws-backdoor-role";
const MULTI_IP: &str = "kw-aws-key-multi-ip";
const NO_MFA: &str = "kw-aws-console-login-without-mfa";
const AFTER_RETIREMENT: &str = "kw-aws-used-after-retirement";
const TRAIL_TAMPERING: &str = "kw-aws-cloudtrail-tampering";
const ANONYMOUS: &str = "kw-k8s-anonymous-access";
/// An AI agent used its credentials outside its declared purpose: they allowed more than
/// its job needs.
const AGENT_PURPOSE: &str = "kw-ai-agent-outside-purpose";

const NONE: &[&str] = &[];

const fn c(
    framework: Framework,
    id: &'static str,
    title: &'static str,
    fail_on: &'static [&'static str],
    warn_on: &'static [&'static str],
    requires: &'static [Requirement],
) -> ControlDef {
    ControlDef {
        framework,
        id,
        title,
        fail_on,
        warn_on,
        requires,
    }
}

use Requirement::{AuditIntact, BaselinesWithinDays, EventsWithinDays, Inventory};

/// Every control, in each framework's order.
pub const CONTROLS: &[ControlDef] = &[
    // SOC 2 Common Criteria.
    c(
        Soc2,
        "CC6.1",
        "Logical access security: least privilege, credentials protected",
        &[ADMIN, ESCALATION, STATIC, AGENT_PURPOSE],
        NONE,
        &[Inventory],
    ),
    c(
        Soc2,
        "CC6.2",
        "Identities registered, owned and removed when no longer used",
        &[ORPHANED, AFTER_WORKLOAD, AFTER_RETIREMENT],
        &[STALE],
        &[Inventory],
    ),
    c(
        Soc2,
        "CC6.3",
        "Access granted, changed and removed by role; reviewed",
        &[ADMIN, RBAC, CLUSTER_ADMIN],
        NONE,
        &[BaselinesWithinDays(90)],
    ),
    c(
        Soc2,
        "CC6.6",
        "Access from outside the system boundary restricted",
        &[FOREIGN, UNTRUSTED_ASSUME, BACKDOOR_ROLE, ANONYMOUS],
        &[MULTI_IP],
        &[Inventory],
    ),
    c(
        Soc2,
        "CC7.2",
        "System components monitored for anomalies; the record kept intact",
        &[TRAIL_TAMPERING],
        NONE,
        &[EventsWithinDays(7), AuditIntact],
    ),
    // PCI DSS v4.0.1.
    c(
        PciDss4,
        "7.2.1",
        "An access control model covers all system components",
        &[ADMIN, ESCALATION],
        NONE,
        &[Inventory],
    ),
    c(
        PciDss4,
        "7.2.2",
        "Access assigned by job function with least privileges",
        &[ADMIN, ESCALATION, RBAC, CLUSTER_ADMIN],
        NONE,
        &[Inventory],
    ),
    c(
        PciDss4,
        "7.2.4",
        "User accounts and access privileges reviewed at least every six months",
        NONE,
        NONE,
        &[BaselinesWithinDays(180)],
    ),
    c(
        PciDss4,
        "7.2.5",
        "System and application accounts assigned least privileges",
        &[ADMIN, ESCALATION, RBAC, AGENT_PURPOSE],
        NONE,
        &[Inventory],
    ),
    c(
        PciDss4,
        "7.2.5.1",
        "System and application account access reviewed periodically",
        NONE,
        NONE,
        &[BaselinesWithinDays(180)],
    ),
    c(
        PciDss4,
        "8.2.1",
        "Every identity is unique and owned",
        &[ORPHANED],
        NONE,
        &[Inventory],
    ),
    c(
        PciDss4,
        "8.2.6",
        "Inactive accounts removed or disabled within 90 days",
        &[AFTER_RETIREMENT, AFTER_WORKLOAD],
        &[STALE],
        &[Inventory],
    ),
    c(
        PciDss4,
        "8.3.9",
        "Single-factor credentials changed at least every 90 days",
        &[OVERDUE],
        &[DUE],
        &[Inventory],
    ),
    c(
        PciDss4,
        "8.6.1",
        "Interactive use of system and application accounts managed",
        &[NO_MFA],
        NONE,
        &[EventsWithinDays(30)],
    ),
    c(
        PciDss4,
        "8.6.2",
        "Credentials of system and application accounts not hard-coded or long-lived",
        &[STATIC],
        &[TWO_KEYS],
        &[Inventory],
    ),
    c(
        PciDss4,
        "8.6.3",
        "Credentials of system and application accounts protected and changed periodically",
        &[OVERDUE, MULTI_IP],
        &[DUE, TWO_KEYS],
        &[Inventory],
    ),
    c(
        PciDss4,
        "10.3.2",
        "Audit logs protected from modification",
        &[TRAIL_TAMPERING],
        NONE,
        &[AuditIntact],
    ),
    // ISO/IEC 27001:2022 Annex A.
    c(
        Iso27001,
        "A.5.15",
        "Access control",
        &[ADMIN, ESCALATION, FOREIGN, AGENT_PURPOSE],
        NONE,
        &[Inventory],
    ),
    c(
        Iso27001,
        "A.5.16",
        "Identity management: the full life cycle of identities",
        &[ORPHANED, AFTER_WORKLOAD, AFTER_RETIREMENT],
        &[STALE],
        &[Inventory],
    ),
    c(
        Iso27001,
        "A.5.17",
        "Authentication information allocated and managed",
        &[OVERDUE, STATIC],
        &[DUE, TWO_KEYS],
        &[Inventory],
    ),
    c(
        Iso27001,
        "A.5.18",
        "Access rights provisioned, reviewed, modified and removed",
        &[RBAC],
        &[STALE],
        &[BaselinesWithinDays(180)],
    ),
    c(
        Iso27001,
        "A.8.2",
        "Privileged access rights restricted and managed",
        &[ADMIN, ESCALATION, CLUSTER_ADMIN],
        NONE,
        &[Inventory],
    ),
    c(
        Iso27001,
        "A.8.5",
        "Secure authentication",
        &[NO_MFA, MULTI_IP, ANONYMOUS],
        NONE,
        &[EventsWithinDays(30)],
    ),
    c(
        Iso27001,
        "A.8.15",
        "Logging: logs produced, kept and protected",
        &[TRAIL_TAMPERING],
        NONE,
        &[EventsWithinDays(7), AuditIntact],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_are_unique_per_framework_and_every_framework_has_some() {
        for f in Framework::ALL {
            let ids: Vec<&str> = CONTROLS
                .iter()
                .filter(|c| c.framework == f)
                .map(|c| c.id)
                .collect();
            assert!(!ids.is_empty(), "{f:?}");
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len(), "{f:?}: {ids:?}");
        }
    }

    #[test]
    fn the_issue_s_controls_are_mapped() {
        for (f, id) in [
            (Soc2, "CC6.1"),
            (Soc2, "CC6.2"),
            (Soc2, "CC6.3"),
            (Soc2, "CC6.6"),
            (Soc2, "CC7.2"),
            (PciDss4, "8.3.9"),
            (PciDss4, "7.2.5"),
            (PciDss4, "8.6.3"),
            (Iso27001, "A.5.15"),
            (Iso27001, "A.5.18"),
            (Iso27001, "A.8.2"),
            (Iso27001, "A.8.5"),
        ] {
            assert!(
                CONTROLS.iter().any(|c| c.framework == f && c.id == id),
                "{f:?} {id}"
            );
        }
    }
}
