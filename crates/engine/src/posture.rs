//! Posture findings from the inventory and the graph, and the risk score per identity.
//!
//! Posture controls (rule ids `kw-posture-*`), each one finding per identity, re-evaluated
//! after every ingest; a condition that no longer holds resolves its finding:
//! stale (unused > 30 days), rotation overdue (30 days for high privilege, 90 for standard,
//! a warning from 75 days), two active keys, unfederated static credentials, orphaned
//! (owner departed, no workload, function deleted, unreferenced), admin wildcard,
//! escalation-capable, trusted by an unknown account, risky Kubernetes RBAC, and active
//! after its workload was terminated.

use keyward_detect::finding::finding_id;
use keyward_detect::risk::{self, Risk};
use keyward_detect::{Finding, Kind, Severity, Status};
use keyward_graph::analysis::{self, OrphanReason};
use keyward_graph::{EdgeKind, Graph, NodeId};
use keyward_model::LifecycleConfig;
use keyward_model::time::Millis;
use keyward_model::{CredentialKind, CredentialStatus, Identity, IdentityKind, Lifecycle};
use keyward_store::FindingChange;
use rustc_hash::FxHashMap;
use serde_json::json;

use crate::{Engine, EngineError};

const DAY: Millis = 86_400_000;
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

/// Permission scope 0–10, why, and the target of the grant that decided it.
struct Scope {
    p: f64,
    why: String,
    target: Option<String>,
}

/// Permission scope 0–10 and why.
fn permission_scope(g: &Graph, node: NodeId) -> Scope {
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
            if a == "*" && (target == "*" || target.ends_with(":*")) {
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

struct Facts<'a> {
    identity: &'a Identity,
    lifecycle: Lifecycle,
    orphan: Option<OrphanReason>,
    p: Scope,
    /// Principals outside the estate and the allow-list that may assume it.
    foreign: &'a [analysis::ForeignTrust],
    networks: usize,
}

impl Engine {
    /// Evaluates every posture control and the risk score of every identity; writes new,
    /// changed and resolved posture findings. `allow` lists approved foreign accounts.
    pub fn evaluate_posture(
        &mut self,
        now: Millis,
        allow: &[String],
    ) -> Result<Posture, EngineError> {
        let g = self.graph();
        let lc = LifecycleConfig {
            as_of: now,
            stale_after_days: 30,
        };
        let coverage = analysis::Coverage::of(g);
        let mut foreign: FxHashMap<String, Vec<analysis::ForeignTrust>> = FxHashMap::default();
        for t in analysis::foreign_trusts(g, allow) {
            foreign.entry(t.role.clone()).or_default().push(t);
        }
        // Open threat findings per identity, for the anomaly factor.
        let mut anomaly: FxHashMap<String, (f64, String)> = FxHashMap::default();
        for r in self.store.findings(Some(now - 30 * DAY))? {
            if r.kind != "threat" || !matches!(r.status.as_str(), "open" | "acknowledged") {
                continue;
            }
            let f = crate::detection::from_row(&r)?;
            let a = f
                .details
                .get("score")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(match f.severity {
                    Severity::Critical => 9.0,
                    Severity::High => 7.0,
                    Severity::Medium => 5.0,
                    Severity::Low => 3.0,
                    Severity::Info => 1.0,
                });
            if let Some(id) = &f.identity {
                for key in [id.clone(), keyward_model::ids::principal(id).into_owned()] {
                    let slot = anomaly.entry(key).or_insert((0.0, String::new()));
                    if a > slot.0 {
                        *slot = (a, format!("{} ({})", f.title, f.id));
                    }
                }
            }
        }
        let mut out: Vec<Finding> = Vec::new();
        let mut risks = Vec::new();
        for i in self.inventory.iter() {
            if i.deleted.is_some()
                || !matches!(
                    i.kind,
                    IdentityKind::IamUser | IdentityKind::IamRole | IdentityKind::ServiceAccount
                )
                || i.id.contains(":role/aws-service-role/")
            {
                continue;
            }
            let Some(node) = g.find(&i.id) else { continue };
            let owners = analysis::ownership(g, node);
            let scope = i.account.as_deref().or(i.cluster.as_deref());
            let facts = Facts {
                identity: i,
                lifecycle: i.lifecycle(lc),
                orphan: analysis::orphan_reason(g, node, i.kind, scope, &owners, &coverage),
                p: permission_scope(g, node),
                foreign: foreign.get(&i.id).map_or(&[], Vec::as_slice),
                networks: self
                    .detector
                    .as_ref()
                    .and_then(|d| d.baseline(&i.id))
                    .map_or(0, |b| b.networks.len()),
            };
            let risk = risk_of(&facts, anomaly.get(&i.id), now);
            controls(&facts, &risk, now, &mut out);
            risks.push((i.id.clone(), risk));
        }
        for (cluster, objects) in crate::k8s_objects(self.store.as_ref())? {
            rbac_findings(&cluster, &objects, now, &mut out);
        }
        // Write: new or changed findings, and resolve the ones no longer found.
        let stored = self.store.findings(None)?;
        // Threat findings written before their identity reached the graph get its path.
        let mut backfill = Vec::new();
        for r in &stored {
            if r.kind == "threat" && matches!(r.status.as_str(), "open" | "acknowledged") {
                let mut f = crate::detection::from_row(r)?;
                if let (true, Some(id)) = (f.path.is_empty(), &f.identity) {
                    f.path = crate::detection::owner_path(g, id);
                    if !f.path.is_empty() {
                        backfill.push(f);
                    }
                }
            }
        }
        let mut batch = self.store.begin()?;
        for f in &backfill {
            batch.put_finding(&crate::detection::to_row(f)?)?;
        }
        let mut written = Vec::new();
        let found: rustc_hash::FxHashSet<String> = out.iter().map(|f| f.id.clone()).collect();
        for mut f in out {
            if let Some(row) = batch.finding(&f.id)? {
                let old = crate::detection::from_row(&row)?;
                f.first_seen = old.first_seen;
                // `count` is how many times the condition came about: once per reopening,
                // not once per evaluation, so evaluating unchanged data changes nothing.
                let reopened = old.status == Status::Resolved;
                f.count = old.count + u64::from(reopened);
                f.status = if reopened { Status::Open } else { old.status };
                let next = crate::detection::to_row(&f)?;
                if next.doc == row.doc && next.status == row.status {
                    continue;
                }
                batch.put_finding(&next)?;
                written.push(f);
                continue;
            }
            batch.put_finding(&crate::detection::to_row(&f)?)?;
            written.push(f);
        }
        for r in &stored {
            if r.kind == "posture"
                && r.status != "resolved"
                && r.status != "false-positive"
                && !found.contains(&r.id)
            {
                let mut f = crate::detection::from_row(r)?;
                f.status = Status::Resolved;
                batch.put_finding(&crate::detection::to_row(&f)?)?;
                batch.add_finding_change(&FindingChange {
                    finding_id: f.id.clone(),
                    at: now,
                    actor: "keyward".into(),
                    status: "resolved".into(),
                    note: Some("the condition no longer holds".into()),
                })?;
            }
        }
        batch.commit()?;
        risks.sort_by(|a, b| b.1.r.total_cmp(&a.1.r).then(a.0.cmp(&b.0)));
        Ok(Posture {
            findings: written,
            risks,
        })
    }
}

/// What a posture evaluation found.
pub struct Posture {
    /// Posture findings that hold now.
    pub findings: Vec<Finding>,
    /// Every evaluated identity's risk, highest first.
    pub risks: Vec<(String, Risk)>,
}

/// The risk score as a posture finding of its own (only at alert tier or above).
pub const RISK_RULE: &str = "kw-posture-risk";

fn active_keys(i: &Identity) -> Vec<&keyward_model::Credential> {
    i.credentials
        .iter()
        .filter(|c| c.kind == CredentialKind::AccessKey && c.status == CredentialStatus::Active)
        .collect()
}

fn risk_of(f: &Facts, anomaly: Option<&(f64, String)>, now: Millis) -> Risk {
    let i = f.identity;
    let mut why = vec![format!("P {}: {}", f.p.p, f.p.why)];
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
    risk::score(f.p.p, e, a, t, why)
}

fn controls(f: &Facts, risk: &Risk, now: Millis, out: &mut Vec<Finding>) {
    let i = f.identity;
    let mut add = |rule: &str,
                   title: &str,
                   severity: Severity,
                   summary: String,
                   attack: &[&str],
                   path: Vec<String>| {
        out.push(Finding {
            id: finding_id(rule, Some(&i.id), ""),
            rule_id: rule.into(),
            title: title.into(),
            severity,
            kind: Kind::Posture,
            identity: Some(i.id.clone()),
            attack: attack.iter().map(|s| (*s).to_owned()).collect(),
            events: Vec::new(),
            path,
            first_seen: now,
            last_seen: now,
            count: 1,
            status: Status::Open,
            summary,
            details: json!({"risk": risk}),
        });
    };
    if f.lifecycle == Lifecycle::Stale {
        let last = i
            .last_used
            .or(i.last_seen)
            .map_or("never".to_owned(), keyward_model::time::format);
        add(
            "kw-posture-stale",
            "Unused for more than 30 days",
            Severity::Low,
            format!("{} last used {last}", i.id),
            &["T1078.004"],
            Vec::new(),
        );
    }
    // identity → the grant's target, for the permission findings.
    let scope_path: Vec<String> = std::iter::once(i.id.clone())
        .chain(f.p.target.clone())
        .collect();
    let keys = active_keys(i);
    let high = f.p.p >= 8.0;
    for k in &keys {
        let Some(created) = k.created else { continue };
        let age = (now - created) / DAY;
        let limit = if high { 30 } else { 90 };
        if age >= limit {
            add(
                "kw-posture-rotation-overdue",
                "Access key rotation overdue",
                if high {
                    Severity::High
                } else {
                    Severity::Medium
                },
                format!(
                    "key {} is {age} days old (limit {limit} days{})",
                    k.id,
                    if high { " for high privilege" } else { "" }
                ),
                &["T1098.001"],
                Vec::new(),
            );
        } else if !high && age >= 75 {
            add(
                "kw-posture-rotation-due",
                "Access key rotation due soon (PCI 90-day limit)",
                Severity::Low,
                format!("key {} is {age} days old; rotate before 90", k.id),
                &[],
                Vec::new(),
            );
        }
    }
    if keys.len() >= 2 {
        add(
            "kw-posture-two-active-keys",
            "Two active access keys",
            Severity::Medium,
            format!("{} has {} active keys", i.id, keys.len()),
            &["T1098.001"],
            Vec::new(),
        );
    }
    if i.kind == IdentityKind::IamUser && !keys.is_empty() {
        add(
            "kw-posture-static-credentials",
            "Unfederated static credentials",
            Severity::Low,
            format!("{} authenticates with long-lived access keys", i.id),
            &["T1078.004"],
            Vec::new(),
        );
    }
    if let Some(o) = &f.orphan {
        add(
            "kw-posture-orphaned",
            "Orphaned identity",
            Severity::Medium,
            format!("{}: {}", i.id, o.as_str()),
            &[],
            Vec::new(),
        );
        if matches!(o, OrphanReason::FunctionDeleted | OrphanReason::NoWorkload)
            && i.last_used.is_some_and(|t| now - t < 30 * DAY)
        {
            add(
                "kw-posture-active-after-workload",
                "Active after its workload was terminated",
                Severity::High,
                format!("{} was used recently but its workload is gone", i.id),
                &["T1078.004"],
                Vec::new(),
            );
        }
    }
    if f.p.p >= 10.0 {
        add(
            "kw-posture-admin-wildcard",
            "Administrator wildcard permissions",
            Severity::High,
            format!("{}: {}", i.id, f.p.why),
            &["T1078.004"],
            scope_path.clone(),
        );
    } else if f.p.p >= 8.0 {
        add(
            "kw-posture-escalation",
            "Can escalate its privileges",
            Severity::High,
            format!("{}: {}", i.id, f.p.why),
            &["T1098"],
            scope_path.clone(),
        );
    }
    if let Some(first) = f.foreign.first() {
        let trusted: Vec<String> = f
            .foreign
            .iter()
            .map(|t| format!("{} ({})", t.trusted, t.trusted_account))
            .collect();
        add(
            "kw-posture-foreign-trust",
            "Trusted by an unknown account",
            Severity::High,
            format!("{} trusts {}", i.id, trusted.join(", ")),
            &["T1199"],
            vec![first.trusted.clone(), i.id.clone()],
        );
    }
    if risk.tier != risk::Tier::Log {
        let sev = if risk.tier == risk::Tier::AutoRemediate {
            Severity::Critical
        } else {
            Severity::High
        };
        add(
            RISK_RULE,
            "Risk score",
            sev,
            format!(
                "R = {:.2} (P {} × E {} × A {} / T {}): {}",
                risk.r,
                risk.p,
                risk.e,
                risk.a,
                risk.t,
                risk.tier.as_str()
            ),
            &[],
            Vec::new(),
        );
    }
}

fn is_anonymous(subject: &str) -> bool {
    matches!(subject, "system:anonymous" | "system:unauthenticated")
}

/// Risky Kubernetes RBAC, one finding per subject: the rule id of the control.
pub const RBAC_RULE: &str = "kw-posture-k8s-rbac";

/// What a risky-access check is worth and which ATT&CK technique it enables.
fn rbac_weight(check: &str, cluster_wide: bool) -> (Severity, &'static str) {
    match check {
        "rule-list-all-cluster-admins-v1"
        | "rule-can-bind-escalate"
        | "rule-can-impersonate-users-groups-v1"
        | "rule-can-modify-admission-webhooks"
        | "rule-can-approve-cert-signing-request" => (Severity::High, "T1098"),
        "rule-can-create-service-account-token" => (Severity::High, "T1528"),
        "rule-can-list-get-secrets-v1" if cluster_wide => (Severity::High, "T1552.007"),
        "rule-can-list-get-secrets-v1" => (Severity::Medium, "T1552.007"),
        "exec-into-container-v1" => (Severity::Medium, "T1609"),
        "rule-can-create-pod" | "rule-can-create-pv" if cluster_wide => (Severity::High, "T1610"),
        "rule-can-create-pod" | "rule-can-create-pv" => (Severity::Medium, "T1610"),
        "rule-can-delete-k8s-events-v1" => (Severity::Medium, "T1070"),
        _ => (Severity::Low, "T1078.004"),
    }
}

/// Risky RBAC grants (the kubescape-named checks of `graph rbac`) as posture findings, one
/// per subject, listing every risky capability with the binding and role that grant it.
/// Grants through the cluster's own bootstrap bindings (`system:` names) are not reported,
/// except to anonymous or unauthenticated subjects, which always are (critical).
fn rbac_findings(
    cluster: &str,
    objects: &[serde_json::Value],
    now: Millis,
    out: &mut Vec<Finding>,
) {
    use keyward_graph::k8s::{Rbac, risky_access};
    use std::collections::BTreeMap;
    type Key = (String, String, Option<String>);
    let mut by_subject: BTreeMap<Key, Vec<keyward_graph::k8s::Finding>> = BTreeMap::new();
    for f in risky_access(&Rbac::new(objects)) {
        let s = &f.grant.subject;
        let anonymous = is_anonymous(&s.name);
        let binding_name = f
            .grant
            .binding
            .rsplit([' ', '/'])
            .next()
            .unwrap_or_default();
        if !anonymous && binding_name.starts_with("system:") {
            continue;
        }
        by_subject
            .entry((s.kind.clone(), s.name.clone(), s.namespace.clone()))
            .or_default()
            .push(f);
    }
    for ((kind, name, ns), grants) in by_subject {
        let anonymous = is_anonymous(&name);
        let (identity, shown) = match (kind.as_str(), &ns) {
            ("ServiceAccount", Some(ns)) => (
                Some(keyward_model::ids::k8s_service_account(cluster, ns, &name)),
                format!("service account {ns}/{name}"),
            ),
            ("User", _) => (
                Some(keyward_model::ids::k8s_user(cluster, &name)),
                format!("user {name}"),
            ),
            _ => (None, format!("{} {name}", kind.to_lowercase())),
        };
        let mut severity = Severity::Info;
        let mut attack: Vec<String> = Vec::new();
        let mut worst: Option<&keyward_graph::k8s::Finding> = None;
        let mut what: Vec<String> = Vec::new();
        let mut details = Vec::new();
        for g in &grants {
            let (sev, technique) = rbac_weight(g.check, g.grant.namespace.is_none());
            let sev = if anonymous { Severity::Critical } else { sev };
            if worst.is_none() || sev > severity {
                severity = sev;
                worst = Some(g);
            }
            if !attack.iter().any(|a| a == technique) {
                attack.push(technique.to_owned());
            }
            if !what.iter().any(|w| w == g.title) {
                what.push(g.title.to_owned());
            }
            details.push(json!({
                "check": g.check,
                "title": g.title,
                "binding": g.grant.binding,
                "role": g.grant.role,
                "namespace": g.grant.namespace,
            }));
        }
        let Some(worst) = worst else { continue };
        let scope = match &worst.grant.namespace {
            Some(n) => format!("in namespace {n}"),
            None => "cluster-wide".to_owned(),
        };
        let subject = identity
            .clone()
            .unwrap_or_else(|| format!("k8s:{cluster}/{}", shown.replace(' ', ":")));
        out.push(Finding {
            id: finding_id(RBAC_RULE, identity.as_deref(), &subject),
            rule_id: RBAC_RULE.into(),
            title: if anonymous {
                "Anonymous Kubernetes access granted".into()
            } else {
                "Risky Kubernetes RBAC".into()
            },
            severity,
            kind: Kind::Posture,
            identity,
            attack,
            events: Vec::new(),
            path: vec![
                subject,
                worst.grant.binding.clone(),
                worst.grant.role.clone(),
            ],
            first_seen: now,
            last_seen: now,
            count: 1,
            status: Status::Open,
            summary: format!(
                "{shown} in cluster {cluster} {} ({scope} via {} → {})",
                what.join(", "),
                worst.grant.binding,
                worst.grant.role
            ),
            details: json!({"cluster": cluster, "grants": details}),
        });
    }
}
