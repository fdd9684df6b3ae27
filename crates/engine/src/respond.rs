//! Response plans on the engine's state: built from the inventory, the graph and the
//! stored events; stored and audited at every change; their evidence kept immutably.
//! Executing a plan (the network) is the caller's: it runs `keyward_respond::execute`
//! with a [`PlanRecorder`], which writes here.

use keyward_model::time::Millis;
use keyward_respond::execute::{Phase, Recorder};
use keyward_respond::plan::{K8sStrategy, Protected, Request};
use keyward_respond::{Plan, PlanStatus};
use keyward_store::{AuditEntry, EvidenceRow, PlanRow};

use crate::query::Resolve;
use crate::{Engine, EngineError};

/// The setting holding the protected identities' globs, as a JSON list.
pub const PROTECTED_SETTING: &str = "respond.protected";
/// How many of an identity's own events blast-radius revocation reads.
const EVENTS_PER_ACTOR: usize = 20_000;

/// What a plan is asked for.
pub struct PlanAsk<'a> {
    /// A finding id (`kwf-…`), or an identity (id, ARN, name) as `resolve` takes it.
    pub target: &'a str,
    pub since: Option<Millis>,
    pub now: Millis,
    pub actor: &'a str,
    /// Protected patterns beyond the defaults and the stored setting.
    pub protect: &'a [String],
    pub k8s: K8sStrategy,
    /// Also contain every identity linked to it (`keyward disable`).
    pub everywhere: bool,
}

impl Engine {
    /// The protected patterns saved in the store (beyond the built-in defaults).
    pub fn protected_patterns(&self) -> Result<Vec<String>, EngineError> {
        Ok(match self.store.setting(PROTECTED_SETTING)? {
            Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "setting {PROTECTED_SETTING}: {e}"
                )))
            })?,
            None => Vec::new(),
        })
    }

    /// Builds a plan for a finding's identity or an identity, stores it (status
    /// `planned`: nothing has touched a platform) and audits it.
    pub fn plan_response(&mut self, ask: &PlanAsk<'_>) -> Result<Plan, EngineError> {
        let (identity, finding, finding_since) = match self.finding(ask.target)? {
            Some(f) => {
                let id = f.identity.clone().ok_or_else(|| {
                    EngineError::Respond(format!("finding {} names no identity", f.id))
                })?;
                (id, Some(f.id.clone()), Some(f.first_seen))
            }
            None => match self.resolve(ask.target) {
                Resolve::Found(i) => (i.id.clone(), None, None),
                Resolve::NotFound => {
                    return Err(EngineError::Respond(format!(
                        "no finding or identity matches {:?}",
                        ask.target
                    )));
                }
                Resolve::Ambiguous(v) => {
                    let ids: Vec<&str> = v.iter().take(5).map(|i| i.id.as_str()).collect();
                    return Err(EngineError::Respond(format!(
                        "{:?} matches {} identities ({}…): use a canonical id",
                        ask.target,
                        v.len(),
                        ids.join(", ")
                    )));
                }
            },
        };
        let mut extra = self.protected_patterns()?;
        extra.extend(ask.protect.iter().cloned());
        let protected = Protected::new(&extra)?;
        let since = ask.since.or(finding_since);
        let mut plan = self.build_one(&identity, finding.as_deref(), since, ask, &protected)?;
        if ask.everywhere {
            self.add_linked(&mut plan, ask, &protected)?;
        }
        self.save_plan(
            &plan,
            AuditEntry {
                at: ask.now,
                actor: ask.actor.to_owned(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!(
                    "{} steps for {}{}",
                    plan.steps.len(),
                    plan.identity,
                    plan.finding
                        .as_deref()
                        .map(|f| format!(" (finding {f})"))
                        .unwrap_or_default()
                )),
                before: None,
                after: None,
            },
        )?;
        Ok(plan)
    }

    fn build_one(
        &self,
        identity: &str,
        finding: Option<&str>,
        since: Option<Millis>,
        ask: &PlanAsk<'_>,
        protected: &Protected,
    ) -> Result<Plan, EngineError> {
        let events = self.acting_events(identity)?;
        Ok(keyward_respond::plan::build(
            &self.inventory,
            self.graph(),
            &Request {
                identity,
                finding,
                since,
                now: ask.now,
                actor: ask.actor,
                protected,
                k8s: ask.k8s,
                events: &events,
            },
        )?)
    }

    /// One switch, every platform: the identities linked to the plan's (IRSA subject ↔
    /// service account, EKS user ↔ IAM session, OIDC subject → roles) are contained in the
    /// same plan, so the identity loses access wherever it has a credential.
    fn add_linked(
        &self,
        plan: &mut Plan,
        ask: &PlanAsk<'_>,
        protected: &Protected,
    ) -> Result<(), EngineError> {
        let Some(me) = self.inventory.get(&plan.identity) else {
            return Ok(());
        };
        let mut seen: std::collections::BTreeSet<String> = plan
            .steps
            .iter()
            .map(|s| serde_json::to_string(&s.action).unwrap_or_default())
            .collect();
        let federated = matches!(
            me.kind,
            keyward_model::IdentityKind::ServiceAccount | keyward_model::IdentityKind::OidcSubject
        );
        for link in me.links.clone() {
            let Some(other) = self.inventory.get(&link) else {
                continue;
            };
            // A role it reaches by federation is narrowed through its subject (the trust
            // denies that subject), not contained whole: others may use the role.
            if federated && other.kind == keyward_model::IdentityKind::IamRole {
                continue;
            }
            match self.build_one(&link, None, plan.since, ask, protected) {
                Ok(other) => {
                    for mut step in other.steps {
                        if seen.insert(serde_json::to_string(&step.action).unwrap_or_default()) {
                            step.why = format!("linked identity {link}: {}", step.why);
                            plan.steps.push(step);
                        }
                    }
                    for n in other.notes {
                        if !plan.notes.contains(&n) {
                            plan.notes.push(n);
                        }
                    }
                }
                Err(EngineError::Plan(e)) => {
                    plan.notes.push(format!("linked {link} not disabled: {e}"))
                }
                Err(e) => return Err(e),
            }
        }
        for (n, s) in plan.steps.iter_mut().enumerate() {
            s.n = n + 1;
        }
        Ok(())
    }

    /// The most recent plan for an identity with this status (`keyward enable` undoes the
    /// last executed one).
    pub fn latest_plan_for(
        &self,
        identity: &str,
        status: PlanStatus,
    ) -> Result<Option<Plan>, EngineError> {
        Ok(self
            .response_plans(100_000)?
            .into_iter()
            .find(|p| p.identity == identity && p.status == status))
    }

    /// The events of the identity, its sessions and its keys (what it did as any of them).
    fn acting_events(
        &self,
        identity: &str,
    ) -> Result<Vec<keyward_model::Event<'static>>, EngineError> {
        let mut ids = vec![identity.to_owned()];
        ids.extend(
            self.inventory
                .iter()
                .filter(|i| {
                    i.parent.as_deref() == Some(identity) || i.chain.iter().any(|c| c == identity)
                })
                .map(|i| i.id.clone()),
        );
        ids.sort();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids.iter().take(1_000) {
            out.extend(self.store.recent_events(id, EVENTS_PER_ACTOR)?);
        }
        Ok(out)
    }

    /// Writes a plan (as it is now) with its audit entry, in one transaction. The caller
    /// holds the writer lock ([`Engine::write_lock`]), as for every write.
    pub fn save_plan(&mut self, plan: &Plan, audit: AuditEntry) -> Result<(), EngineError> {
        let doc = serde_json::to_string(plan)
            .map_err(|e| EngineError::Respond(format!("plan {}: {e}", plan.id)))?;
        let row = PlanRow {
            id: plan.id.clone(),
            created_at: plan.created_at,
            updated_at: audit.at,
            identity: plan.identity.clone(),
            finding: plan.finding.clone(),
            status: plan.status.as_str().to_owned(),
            doc,
        };
        self.store.put_plan(&row, &audit)?;
        Ok(())
    }

    pub fn response_plan(&self, id: &str) -> Result<Option<Plan>, EngineError> {
        self.store.plan(id)?.map(|r| parse_plan(&r)).transpose()
    }

    /// Plans, newest first.
    pub fn response_plans(&self, limit: usize) -> Result<Vec<Plan>, EngineError> {
        self.store.plans(limit)?.iter().map(parse_plan).collect()
    }

    /// A plan's forensic snapshot.
    pub fn response_evidence(&self, plan_id: &str) -> Result<Option<EvidenceRow>, EngineError> {
        Ok(self.store.evidence(plan_id)?)
    }

    /// Stores a plan's evidence (once) — the platform state in `doc` and what Keyward
    /// itself knows of the identity ([`Engine::local_evidence`]); returns its BLAKE3 hash.
    pub fn put_response_evidence(
        &mut self,
        plan: &Plan,
        doc: &serde_json::Value,
        at: Millis,
        actor: &str,
    ) -> Result<String, EngineError> {
        let mut doc = doc.clone();
        if let (Some(d), serde_json::Value::Object(local)) =
            (doc.as_object_mut(), self.local_evidence(plan)?)
        {
            d.extend(local);
        }
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| EngineError::Respond(format!("evidence of {}: {e}", plan.id)))?;
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        let row = EvidenceRow {
            plan_id: plan.id.clone(),
            taken_at: at,
            hash: hash.clone(),
            doc: text,
        };
        let audit = AuditEntry {
            at,
            actor: actor.to_owned(),
            action: "respond.evidence".into(),
            target: Some(plan.id.clone()),
            detail: Some(format!(
                "snapshot of {} targets, blake3 {hash}",
                target_count(&doc)
            )),
            before: None,
            after: None,
        };
        self.store.put_evidence(&row, &audit)?;
        Ok(hash)
    }
}

/// How many recent events of the identity the evidence keeps.
const EVIDENCE_EVENTS: usize = 500;

impl Engine {
    /// What Keyward itself knows of a plan's identity, for its evidence: the inventory
    /// record, its most recent events (its sessions' and keys' included) and its graph
    /// neighbourhood (every edge into and out of it, with first and last seen).
    pub fn local_evidence(&self, plan: &Plan) -> Result<serde_json::Value, EngineError> {
        let mut events = self.acting_events(&plan.identity)?;
        events.sort_by_key(|e| std::cmp::Reverse(e.time));
        events.truncate(EVIDENCE_EVENTS);
        let g = self.graph();
        let mut edges = Vec::new();
        if let Some(node) = g.find(&plan.identity) {
            for e in g.out_edges(node).chain(g.in_edges(node)) {
                edges.push(serde_json::json!({
                    "from": g.key(e.from),
                    "kind": e.kind.as_str(),
                    "to": g.key(e.to),
                    "count": e.count,
                    "first_seen": e.first_seen.map(keyward_model::time::format),
                    "last_seen": e.last_seen.map(keyward_model::time::format),
                }));
            }
        }
        Ok(serde_json::json!({
            "identity_record": self.inventory.get(&plan.identity),
            "recent_events": events,
            "graph_neighbourhood": edges,
        }))
    }
}

fn target_count(doc: &serde_json::Value) -> usize {
    doc.get("targets")
        .and_then(serde_json::Value::as_object)
        .map_or(0, serde_json::Map::len)
}

pub(crate) fn parse_plan(r: &PlanRow) -> Result<Plan, EngineError> {
    serde_json::from_str(&r.doc).map_err(|e| {
        EngineError::Store(keyward_store::StoreError::Corrupt(format!(
            "plan {}: {e}",
            r.id
        )))
    })
}

/// Writes a running plan's progress to the engine (taking the writer lock for each write,
/// never across a platform call): the evidence, then the plan after
/// every step, each with its audit entry (`respond.execute`, `respond.step`,
/// `respond.undo`, `respond.undo_step`) naming the plan id.
pub struct PlanRecorder<'e> {
    pub engine: &'e mut Engine,
    pub actor: String,
    pub clock: fn() -> Millis,
}

impl Recorder for PlanRecorder<'_> {
    fn evidence(&mut self, plan: &Plan, doc: &serde_json::Value) -> Result<String, String> {
        let _lock = self.engine.write_lock().map_err(|e| e.to_string())?;
        self.engine
            .put_response_evidence(plan, doc, (self.clock)(), &self.actor)
            .map_err(|e| e.to_string())
    }

    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String> {
        let _lock = self.engine.write_lock().map_err(|e| e.to_string())?;
        self.engine
            .save_plan(
                plan,
                step_audit(plan, n, phase, &self.actor, (self.clock)()),
            )
            .map_err(|e| e.to_string())
    }
}

/// The audit entry for a plan's progress: step `n` (1-based), or the plan's status (0).
pub fn step_audit(plan: &Plan, n: usize, phase: Phase, actor: &str, at: Millis) -> AuditEntry {
    let (action, detail, target) = match n.checked_sub(1).and_then(|i| plan.steps.get(i)) {
        Some(s) => {
            let r = match phase {
                Phase::Execute => s.result.as_ref(),
                Phase::Undo => s.undo_result.as_ref(),
            };
            let outcome = r.map_or_else(
                || "not run".to_owned(),
                |r| format!("{}: {}", if r.ok { "ok" } else { "failed" }, r.message),
            );
            (
                if phase == Phase::Execute {
                    "respond.step"
                } else {
                    "respond.undo_step"
                },
                format!("step {n} {} on {}: {outcome}", s.action.name(), s.target),
                plan.id.clone(),
            )
        }
        None => (
            if phase == Phase::Execute {
                "respond.execute"
            } else {
                "respond.undo"
            },
            format!("plan {} for {}", plan.status.as_str(), plan.identity),
            plan.id.clone(),
        ),
    };
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.into(),
        target: Some(target),
        detail: Some(detail),
        before: None,
        after: Some(plan.status.as_str().to_owned()),
    }
}

/// Whether a plan's status lets it run.
pub fn executable(plan: &Plan) -> bool {
    matches!(plan.status, PlanStatus::Planned | PlanStatus::Failed)
}

/// A plan automatic response made for a finding.
pub struct AutoPlan {
    pub plan: Plan,
    pub policy: String,
    pub mode: keyward_respond::policy::Mode,
}

impl Engine {
    /// Automatic response: for each alert among `findings` that a policy of `policies`
    /// matches with `approve` or `auto`, a plan (unless the finding already has one that
    /// was not undone), stored and audited as made by `auto:<policy>`. The caller executes
    /// the `auto` ones. Holds the writer lock while it writes.
    pub fn auto_plans(
        &mut self,
        policies: &keyward_respond::policy::PolicyFile,
        findings: &[keyward_detect::Finding],
        now: Millis,
    ) -> Result<Vec<AutoPlan>, EngineError> {
        use keyward_respond::policy::{FindingFacts, Mode};
        // Findings that already have a plan not undone: read once, not per finding.
        let planned: std::collections::BTreeSet<String> = self
            .store
            .plans(10_000)?
            .into_iter()
            .filter(|p| p.status != "undone")
            .filter_map(|p| p.finding)
            .collect();
        let mut out = Vec::new();
        for f in findings
            .iter()
            .filter(|f| f.status.is_alert() && f.identity.is_some())
        {
            let rules: Vec<&str> = f.rules().collect();
            let facts = FindingFacts {
                rules: &rules,
                severity: f.severity.as_str(),
            };
            let Some(policy) = policies.matching(&facts) else {
                continue;
            };
            if policy.execute == Mode::Never {
                continue;
            }
            if planned.contains(&f.id) {
                continue;
            }
            let actor = format!("auto:{}", policy.name);
            let _writing = self.write_lock()?;
            let made = self.plan_response(&PlanAsk {
                everywhere: false,
                target: &f.id,
                since: None,
                now,
                actor: &actor,
                protect: &[],
                k8s: if policy.blue_green {
                    K8sStrategy::BlueGreen
                } else {
                    K8sStrategy::Contain
                },
            });
            match made {
                Ok(plan) => out.push(AutoPlan {
                    plan,
                    policy: policy.name.clone(),
                    mode: policy.execute,
                }),
                // A protected or unsupported identity: said in the audit log, not fatal.
                Err(EngineError::Plan(e)) => {
                    self.store.audit(&AuditEntry {
                        at: now,
                        actor,
                        action: "respond.refused".into(),
                        target: Some(f.id.clone()),
                        detail: Some(e.to_string()),
                        before: None,
                        after: None,
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
