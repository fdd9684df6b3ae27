//! Posture controls: findings about how an identity is set up, not about what it did.
//!
//! Each control is a file here, a pure function of one identity's [`Facts`] (what the
//! inventory and the identity graph say of it) and the time, listed in [`CONTROLS`] with
//! its rule id so `keyward rules list` and `docs/detection-coverage.md` show it. The
//! engine gathers the facts after every ingest and writes what the controls return; a
//! condition that no longer holds resolves its finding there. Risky Kubernetes RBAC is
//! judged per subject from the cluster's RBAC objects ([`rbac`]).
//!
//! Every finding carries its remediation (`details.remediation`, see
//! [`crate::remediation`]): the exact commands for the identity, built by the control that
//! makes the finding, from the commands `fix.rs` shares.
//!
//! To add a control: a file with a `CONTROL` and a `check` (and its remediation), one line
//! in [`CONTROLS`] and one in [`evaluate`].

mod admin_wildcard;
mod escalation;
mod fix;
mod foreign_trust;
mod orphaned;
pub mod rbac;
mod risk_score;
mod rotation;
mod stale;
mod static_credentials;
mod two_keys;

use keyward_graph::analysis::{ForeignTrust, OrphanReason};
use keyward_graph::iam::admin::AdminGrant;
use keyward_graph::iam::escalation::Path;
use keyward_graph::{EdgeKind, Graph, NodeId};
use keyward_model::time::Millis;
use keyward_model::{CredentialKind, CredentialStatus, Identity, Lifecycle};
use serde_json::json;

use crate::finding::finding_id;
use crate::remediation::Remediation;
use crate::risk::{self, Risk};
use crate::{Finding, Kind, Severity, Status};

pub use escalation::group_finding;
pub use rbac::RBAC_RULE;
pub use risk_score::RISK_RULE;

pub(crate) const DAY: Millis = 86_400_000;

/// A posture control, as `keyward rules list` shows it.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

/// Every posture control, in the order they are evaluated.
pub const CONTROLS: &[Control] = &[
    stale::CONTROL,
    rotation::OVERDUE,
    rotation::DUE,
    two_keys::CONTROL,
    static_credentials::CONTROL,
    orphaned::CONTROL,
    orphaned::ACTIVE_AFTER_WORKLOAD,
    admin_wildcard::CONTROL,
    escalation::CONTROL,
    foreign_trust::CONTROL,
    risk_score::CONTROL,
    rbac::CONTROL,
];

/// What the inventory and the graph say of one identity, for the controls.
pub struct Facts<'a> {
    pub identity: &'a Identity,
    pub lifecycle: Lifecycle,
    pub orphan: Option<OrphanReason>,
    pub p: Scope,
    /// Principals outside the estate and the allow-list that may assume it.
    pub foreign: &'a [ForeignTrust],
    /// Networks its baseline learned.
    pub networks: usize,
    /// What its account's IAM snapshot says, for an AWS user or role a snapshot lists.
    pub iam: Option<IamFacts<'a>>,
    /// Whether anything that could show its use covers the stale window.
    pub activity: Activity,
    /// The Terraform resources that define it (the graph's `defined_in` edges).
    pub defined_in: Vec<Definition>,
    /// What it was seen doing, gathered only where a control needs it: for an AWS user or
    /// role its account's IAM snapshot finds allowed `*` on `*` (a policy of observed use).
    pub observed: Option<Observed>,
}

/// A Terraform resource that defines an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// `module.iam.aws_iam_role.deployer`.
    pub address: String,
    /// `infra/iam.tf:12` (the line when the configuration was read from `.tf`).
    pub source: String,
}

/// What an identity (and its sessions) was seen doing in the stored activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// IAM actions as CloudTrail names the calls (`s3:GetObject`), sorted.
    pub actions: Vec<String>,
    /// Events read.
    pub events: usize,
    /// Identities whose events were read: it and its most recent sessions.
    pub actors: usize,
}

/// What an account's IAM snapshot, analysed at the evaluation's time, says of a principal.
#[derive(Debug, Clone, Copy, Default)]
pub struct IamFacts<'a> {
    /// The policies that allow it `*` on `*`, if any do.
    pub admin: Option<&'a AdminGrant>,
    /// Its shortest path to admin-equivalent power, if it has one.
    pub escalation: Option<&'a Path>,
}

/// Whether an identity's use over the stale window is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// An activity log of its platform spans the window (CloudTrail of its account, the
    /// audit log of its cluster), or the platform keeps its own record of last use (the
    /// credential report for users, `RoleLastUsed` for roles).
    Covered,
    /// Nothing that could have seen it used covers the window: it may have been.
    Unknown,
}

/// Permission scope 0–10, why, and the target of the grant that decided it.
pub struct Scope {
    pub p: f64,
    pub why: String,
    pub target: Option<String>,
}

/// A control's verdict on one identity.
struct Hit {
    rule: &'static str,
    title: &'static str,
    severity: Severity,
    summary: String,
    attack: &'static [&'static str],
    path: Vec<String>,
    /// What the finding rests on, kept in its details.
    evidence: Option<serde_json::Value>,
    remediation: Option<Remediation>,
}

impl Hit {
    fn of(c: &Control, severity: Severity, summary: String) -> Self {
        Hit {
            rule: c.id,
            title: c.title,
            severity,
            summary,
            attack: &[],
            path: Vec::new(),
            evidence: None,
            remediation: None,
        }
    }

    fn remediation(mut self, remediation: Remediation) -> Self {
        self.remediation = Some(remediation);
        self
    }

    fn evidence(mut self, evidence: serde_json::Value) -> Self {
        self.evidence = Some(evidence);
        self
    }

    fn attack(mut self, attack: &'static [&'static str]) -> Self {
        self.attack = attack;
        self
    }

    fn path(mut self, path: Vec<String>) -> Self {
        self.path = path;
        self
    }
}

/// Every control on one identity: its findings, each carrying the identity's risk.
pub fn evaluate(f: &Facts, risk: &Risk, now: Millis, out: &mut Vec<Finding>) {
    let mut hits = Vec::new();
    hits.extend(stale::check(f));
    rotation::check(f, now, &mut hits);
    hits.extend(two_keys::check(f));
    hits.extend(static_credentials::check(f));
    orphaned::check(f, now, &mut hits);
    hits.extend(admin_wildcard::check(f));
    hits.extend(escalation::check(f));
    hits.extend(foreign_trust::check(f));
    hits.extend(risk_score::check(risk));
    let i = f.identity;
    out.extend(hits.into_iter().map(|h| Finding {
        id: finding_id(h.rule, Some(&i.id), ""),
        rule_id: h.rule.into(),
        title: h.title.into(),
        severity: h.severity,
        kind: Kind::Posture,
        identity: Some(i.id.clone()),
        attack: h.attack.iter().map(|s| (*s).to_owned()).collect(),
        events: Vec::new(),
        path: h.path,
        first_seen: now,
        last_seen: now,
        count: 1,
        status: Status::Open,
        summary: h.summary,
        details: details(risk, h.evidence, h.remediation),
    }));
}

/// A posture finding's details: the identity's risk, what the finding rests on and what to
/// do about it.
fn details(
    risk: &Risk,
    evidence: Option<serde_json::Value>,
    remediation: Option<Remediation>,
) -> serde_json::Value {
    let mut d = json!({"risk": risk});
    if let Some(m) = d.as_object_mut() {
        if let Some(e) = evidence {
            m.insert("evidence".into(), e);
        }
        if let Some(r) = remediation.filter(|r| !r.steps.is_empty()) {
            m.insert("remediation".into(), json!(r));
        }
    }
    d
}

/// Services whose write actions count as sensitive.
const SENSITIVE: &[&str] = &[
    "iam:",
    "sts:",
    "kms:",
    "secretsmanager:",
    "ssm:",
    "organizations:",
];

fn write_action(a: &str) -> bool {
    let name = a.split_once(':').map_or(a, |(_, n)| n);
    !(name.starts_with("Get")
        || name.starts_with("List")
        || name.starts_with("Describe")
        || name.starts_with("Head"))
}

/// Permission scope 0–10 and why, from the identity's `can` edges in the graph.
pub fn permission_scope(g: &Graph, node: NodeId) -> Scope {
    let mut p: f64 = 0.0;
    let mut why = "no known permissions".to_owned();
    let mut at = None;
    let mut bump = |v: f64, w: String, t: &str| {
        if v > p {
            p = v;
            why = w;
            at = Some(t.to_owned());
        }
    };
    for e in g.out_edges(node).filter(|e| e.kind == EdgeKind::Can) {
        let target = g.key(e.to);
        let Some(d) = e.detail else { continue };
        let is_identity = target.starts_with("arn:aws:iam::") && !target.contains(":policy/")
            || target.starts_with("aws-escalation:");
        if is_identity && !d.actions.iter().any(|a| a.contains(':')) {
            bump(
                8.0,
                format!("can escalate: {} → {target}", d.actions.join(", ")),
                target,
            );
            continue;
        }
        for a in &d.actions {
            // `resource:*@<account>` is the graph's node for every resource of an account.
            let everything =
                target == "*" || target.ends_with(":*") || target.starts_with("resource:*@");
            if a == "*" && everything {
                bump(10.0, "allowed `*` on `*`".into(), target);
            } else if SENSITIVE.iter().any(|s| a.starts_with(s)) && write_action(a) {
                bump(6.0, format!("may {a} on {target}"), target);
            } else if write_action(a) {
                bump(4.0, format!("may {a} on {target}"), target);
            } else {
                bump(2.0, "read-only access".into(), target);
            }
        }
    }
    Scope { p, why, target: at }
}

/// The identity's active access keys.
fn active_keys(i: &Identity) -> Vec<&keyward_model::Credential> {
    i.credentials
        .iter()
        .filter(|c| c.kind == CredentialKind::AccessKey && c.status == CredentialStatus::Active)
        .collect()
}

/// The framework's risk score R = P × E × A / T of one identity, with the factors' reasons;
/// `anomaly`: the score and title of its worst open threat finding.
pub fn risk_of(f: &Facts, anomaly: Option<&(f64, String)>, now: Millis) -> Risk {
    let i = f.identity;
    let (p, p_why) = permission_factor(f);
    let mut why = vec![format!("P {p}: {p_why}")];
    let keys = active_keys(i);
    let mut e: f64 = 0.0;
    let oldest = keys.iter().filter_map(|c| c.created).min();
    if !keys.is_empty() {
        e += 3.0;
        why.push(format!("E +3: {} active access key(s)", keys.len()));
        if oldest.is_some_and(|c| now - c > 90 * DAY) {
            e += 2.0;
            why.push("E +2: a key older than 90 days".into());
        }
    }
    if f.networks >= 3 {
        e += 2.0;
        why.push(format!("E +2: used from {} networks", f.networks));
    }
    if !f.foreign.is_empty() || !i.links.iter().all(|l| !l.starts_with("oidc:")) {
        e += 2.0;
        why.push("E +2: trusted by a foreign account or federated".into());
    }
    if f.orphan.is_some() {
        e += 1.0;
        why.push("E +1: nobody owns it".into());
    }
    let (a, a_why) = anomaly
        .cloned()
        .unwrap_or((0.0, "no open threat finding".into()));
    why.push(format!("A {a}: {a_why}"));
    let t = match oldest {
        Some(c) => ((now - c) / DAY) as f64,
        None => 1.0,
    };
    why.push(format!(
        "T {}: {}",
        t.max(1.0),
        if oldest.is_some() {
            "days since the oldest active key was created"
        } else {
            "temporary credentials"
        }
    ));
    risk::score(p, e, a, t, why)
}

/// P: the graph's permission scope, where 8 (a step to another identity) holds only for a
/// path to admin-equivalent power when the account's IAM snapshot was analysed; a step
/// to an identity no more powerful counts as the sensitive write it is (6).
fn permission_factor(f: &Facts) -> (f64, String) {
    let lateral = f.p.p == 8.0 && f.iam.as_ref().is_some_and(|iam| iam.escalation.is_none());
    if lateral {
        return (
            6.0,
            format!("{}, which leads to no admin-equivalent power", f.p.why),
        );
    }
    (f.p.p, f.p.why.clone())
}

/// Identities and facts for the controls' tests.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keyward_model::{Credential, IdentityKind, Platform};

    pub fn user(name: &str) -> Identity {
        let mut i = Identity::new(
            keyward_model::ids::iam("111122223333", "user", name),
            Platform::Aws,
            IdentityKind::IamUser,
            name.into(),
        );
        i.account = Some("111122223333".into());
        i
    }

    pub fn role(name: &str) -> Identity {
        let mut i = user(name);
        i.id = keyward_model::ids::iam("111122223333", "role", name);
        i.kind = IdentityKind::IamRole;
        i
    }

    /// A service account bound by `RoleBinding <ns>/jobs` to `Role <ns>/jobs`.
    pub fn service_account(cluster: &str, ns: &str, name: &str) -> Identity {
        let mut i = Identity::new(
            keyward_model::ids::k8s_service_account(cluster, ns, name),
            Platform::Kubernetes,
            IdentityKind::ServiceAccount,
            name.into(),
        );
        i.cluster = Some(cluster.into());
        i.namespace = Some(ns.into());
        i.details.insert(
            "bindings".into(),
            json!([{"binding": format!("RoleBinding {ns}/jobs"), "role": format!("Role {ns}/jobs")}]),
        );
        i
    }

    /// An active access key.
    pub fn key(id: &str, created: Option<&str>) -> Credential {
        Credential {
            id: id.into(),
            kind: CredentialKind::AccessKey,
            status: CredentialStatus::Active,
            created: created.map(|c| keyward_model::time::parse(c).unwrap()),
            last_used: None,
            last_used_region: None,
            last_used_service: None,
        }
    }

    /// What the controls know of `i` when nothing else is known.
    pub fn facts(i: &Identity) -> Facts<'_> {
        Facts {
            identity: i,
            lifecycle: Lifecycle::Active,
            orphan: None,
            p: Scope {
                p: 0.0,
                why: String::new(),
                target: None,
            },
            foreign: &[],
            networks: 0,
            iam: None,
            activity: Activity::Covered,
            defined_in: Vec::new(),
            observed: None,
        }
    }

    /// Every command of a finding's remediation, in order.
    pub(super) fn commands(h: &Hit) -> Vec<String> {
        h.remediation
            .iter()
            .flat_map(|r| &r.steps)
            .flat_map(|s| s.commands.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_listed_once_with_a_posture_id() {
        let mut ids: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
        assert!(ids.iter().all(|i| i.starts_with("kw-posture-")), "{ids:?}");
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "a control listed twice");
        assert!(
            CONTROLS
                .iter()
                .all(|c| !c.title.is_empty() && !c.description.is_empty())
        );
    }
}
