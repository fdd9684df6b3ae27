//! One step of a run: started (persisted, audited), carried out, finished (persisted,
//! audited). Connector steps make a response plan, record its id in the run, then execute
//! it; a resumed step reads its recorded plan's status first.

use keyward_model::time::Millis;
use keyward_respond::playbook::run::{Run, RunStatus, StepStatus};
use keyward_respond::playbook::{StepSpec, parse_duration};
use keyward_respond::{Plan, PlanStatus};
use keyward_store::AuditEntry;

use super::Effects;
use crate::respond::PlanAsk;
use crate::{Engine, EngineError};

/// How a step ended (for now).
enum Outcome {
    Done(String),
    /// Nothing to do; the run goes on.
    Skipped(String),
    /// Not yet (a wait not due, an approval not given): nothing to write.
    NotYet,
    /// Asleep until the time (written once).
    Sleep(Millis),
    /// Paused for approval (written once).
    Approval(String),
    /// A check stopped the run.
    Stop(String),
    Fail(String),
}

/// What a connector step's plan comes to.
enum Made {
    Plan(Box<Plan>),
    /// No plan is needed (a rotation with nothing issued yet).
    Nothing(String),
}

impl Engine {
    /// Runs step `i` of `run`; `Ok(true)` when the run may go on to the next step.
    pub(super) fn step(
        &mut self,
        run: &mut Run,
        i: usize,
        fx: &mut dyn Effects,
        actor: &str,
        now: Millis,
    ) -> Result<bool, EngineError> {
        let Some(spec) = run.steps.get(i).map(|s| s.spec.clone()) else {
            return Ok(false);
        };
        let n = i + 1;
        let kind = spec.kind();
        if run
            .steps
            .get(i)
            .is_some_and(|s| s.status == StepStatus::Pending)
        {
            if let Some(s) = run.steps.get_mut(i) {
                s.status = StepStatus::Running;
                s.started_at = Some(now);
            }
            run.status = RunStatus::Running;
            let _w = self.write_lock()?;
            self.save_step(run, now, actor, format!("step {n} {kind}: started"))?;
        }
        let unresolved = run.steps.get(i).and_then(|s| s.unresolved.clone());
        let outcome = if let Some(why) = unresolved {
            Outcome::Fail(why)
        } else {
            self.carry_out(run, i, &spec, fx, now)?
        };
        self.finish_step(run, i, outcome, actor, now)
    }

    fn carry_out(
        &mut self,
        run: &mut Run,
        i: usize,
        spec: &StepSpec,
        fx: &mut dyn Effects,
        now: Millis,
    ) -> Result<Outcome, EngineError> {
        let n = i + 1;
        Ok(match spec {
            StepSpec::ValidateTags(tags) => match &run.subject {
                None => Outcome::Stop("the run has no subject whose tags to check".into()),
                Some(s) => match s.missing_tags(tags) {
                    Some(missing) => Outcome::Stop(format!(
                        "{} ({}) is missing required tags: {missing}",
                        s.name,
                        s.terraform.as_deref().unwrap_or(&s.id)
                    )),
                    None => Outcome::Done(format!("tags present: {}", tags.join(", "))),
                },
            },
            StepSpec::Wait(d) => match run.steps.get(i).and_then(|s| s.wake_at) {
                Some(at) if now >= at => Outcome::Done(format!("waited {d}")),
                Some(_) => Outcome::NotYet,
                None => match parse_duration(d) {
                    Ok(ms) => Outcome::Sleep(now + ms),
                    Err(e) => Outcome::Fail(e),
                },
            },
            StepSpec::Approval(a) => {
                let asked =
                    run.steps.get(i).map(|s| s.status) == Some(StepStatus::AwaitingApproval);
                if asked {
                    Outcome::NotYet
                } else {
                    Outcome::Approval(a.reason.clone().unwrap_or_else(|| {
                        format!(
                            "approve with `keyward playbook approve {}` (not as {})",
                            run.id, run.started_by
                        )
                    }))
                }
            }
            StepSpec::Notify(nt) => {
                if run.execute {
                    let body = summary(run, n, nt.message.as_deref());
                    match fx.notify(&nt.url, &body) {
                        Ok(()) => Outcome::Done(format!("sent to {}", nt.url)),
                        Err(e) => Outcome::Fail(format!("POST {}: {e}", nt.url)),
                    }
                } else {
                    Outcome::Skipped(format!("dry run: not sent to {}", nt.url))
                }
            }
            StepSpec::Rotate(_)
            | StepSpec::Disable(_)
            | StepSpec::Enable(_)
            | StepSpec::Contain(_)
            | StepSpec::RevertDrift(_)
            | StepSpec::VaultIssue(_)
            | StepSpec::VaultRotate(_)
            | StepSpec::VaultRevoke(_) => self.plan_step(run, i, spec, fx, now)?,
        })
    }

    fn save_step(
        &mut self,
        run: &Run,
        now: Millis,
        actor: &str,
        detail: String,
    ) -> Result<(), EngineError> {
        self.save_run(run, now, actor, "playbook.step", detail)
    }

    fn finish_step(
        &mut self,
        run: &mut Run,
        i: usize,
        outcome: Outcome,
        actor: &str,
        now: Millis,
    ) -> Result<bool, EngineError> {
        let (status, message, go_on) = match outcome {
            Outcome::NotYet => return Ok(false),
            Outcome::Done(m) => (StepStatus::Done, m, true),
            Outcome::Skipped(m) => (StepStatus::Skipped, m, true),
            Outcome::Sleep(at) => {
                if let Some(s) = run.steps.get_mut(i) {
                    s.wake_at = Some(at);
                }
                run.status = RunStatus::Waiting;
                (
                    StepStatus::Waiting,
                    format!("until {}", keyward_model::time::format(at)),
                    false,
                )
            }
            Outcome::Approval(m) => {
                run.status = RunStatus::AwaitingApproval;
                (StepStatus::AwaitingApproval, m, false)
            }
            Outcome::Stop(m) => {
                run.status = RunStatus::Stopped;
                run.reason = Some(m.clone());
                (StepStatus::Failed, m, false)
            }
            Outcome::Fail(m) => {
                run.status = RunStatus::Failed;
                run.reason = Some(format!("step {} failed: {m}", i + 1));
                (StepStatus::Failed, m, false)
            }
        };
        let Some(s) = run.steps.get_mut(i) else {
            return Ok(false);
        };
        s.status = status;
        s.message = message.clone();
        if status.finished() || status == StepStatus::Failed {
            s.finished_at = Some(now);
        }
        if go_on {
            run.status = RunStatus::Running;
        }
        let detail = format!(
            "step {} {}: {}: {message}",
            s.n,
            s.spec.kind(),
            status.as_str()
        );
        let _w = self.write_lock()?;
        self.save_step(run, now, actor, detail)?;
        Ok(go_on)
    }

    /// A connector step: its plan made and recorded (once), then executed unless the run
    /// is a dry run; a recorded plan's status says what is left to do.
    fn plan_step(
        &mut self,
        run: &mut Run,
        i: usize,
        spec: &StepSpec,
        fx: &mut dyn Effects,
        now: Millis,
    ) -> Result<Outcome, EngineError> {
        let plan_actor = format!("playbook:{}", run.id);
        let recorded = run.steps.get(i).and_then(|s| s.plan.clone());
        let plan = match recorded {
            Some(id) => match self.response_plan(&id)? {
                Some(p) => p,
                None => return Ok(Outcome::Fail(format!("its plan {id} is not in the store"))),
            },
            None => {
                let made = match self.make_plan(run, spec, fx, &plan_actor, now) {
                    Ok(m) => m,
                    Err(e) => return Ok(Outcome::Fail(e)),
                };
                let plan = match made {
                    Made::Nothing(why) => return Ok(Outcome::Skipped(why)),
                    Made::Plan(p) => *p,
                };
                if let Some(s) = run.steps.get_mut(i) {
                    s.plan = Some(plan.id.clone());
                }
                let _w = self.write_lock()?;
                // The enable step's plan is an existing one (to undo): not saved again.
                if self.response_plan(&plan.id)?.is_none() {
                    self.save_plan(
                        &plan,
                        AuditEntry {
                            at: now,
                            actor: plan_actor.clone(),
                            action: "respond.plan".into(),
                            target: Some(plan.id.clone()),
                            detail: Some(format!(
                                "{} steps for {} (playbook run {} step {})",
                                plan.steps.len(),
                                plan.identity,
                                run.id,
                                i + 1
                            )),
                            before: None,
                            after: None,
                        },
                    )?;
                }
                let detail = format!("step {} {}: plan {} recorded", i + 1, spec.kind(), plan.id);
                self.save_step(run, now, &run.started_by.clone(), detail)?;
                plan
            }
        };
        let undo = matches!(spec, StepSpec::Enable(_));
        if !run.execute {
            return Ok(Outcome::Skipped(format!(
                "dry run: plan {} stored, not {} (run with --execute)",
                plan.id,
                if undo { "undone" } else { "executed" }
            )));
        }
        let id = plan.id.clone();
        let status = plan.status;
        let after = match (undo, status) {
            (false, PlanStatus::Executed) | (true, PlanStatus::Undone) => {
                return Ok(Outcome::Done(format!("plan {id} {}", status.as_str())));
            }
            (false, PlanStatus::Planned | PlanStatus::Failed) => {
                fx.execute(self, plan, &plan_actor)
            }
            (true, PlanStatus::Executed | PlanStatus::Failed | PlanStatus::UndoFailed) => {
                fx.undo(self, plan, &plan_actor)
            }
            (_, PlanStatus::Executing) => {
                return Ok(Outcome::Fail(format!(
                    "plan {id} was interrupted mid-way: see `keyward respond show {id}`, then `keyward respond execute {id}` or undo it"
                )));
            }
            (false, s @ (PlanStatus::Undone | PlanStatus::UndoFailed))
            | (true, s @ PlanStatus::Planned) => {
                return Ok(Outcome::Fail(format!("plan {id} is {}", s.as_str())));
            }
        };
        Ok(match after {
            Ok(p) if !undo && p.status == PlanStatus::Executed => {
                Outcome::Done(format!("plan {id} executed"))
            }
            Ok(p) if undo && p.status == PlanStatus::Undone => {
                Outcome::Done(format!("plan {id} undone"))
            }
            Ok(p) => Outcome::Fail(format!(
                "plan {id} is {}: {}",
                p.status.as_str(),
                failed_step(&p)
            )),
            Err(e) => Outcome::Fail(format!("plan {id}: {e}")),
        })
    }

    /// The plan a connector step makes.
    fn make_plan(
        &mut self,
        run: &Run,
        spec: &StepSpec,
        fx: &mut dyn Effects,
        actor: &str,
        now: Millis,
    ) -> Result<Made, String> {
        let subject_id = run.subject.as_ref().map(|s| s.id.clone());
        let target = |t: &Option<String>| {
            t.clone()
                .or_else(|| subject_id.clone())
                .ok_or_else(|| "the run has no subject: name an identity".to_owned())
        };
        let _w = self.write_lock().map_err(|e| e.to_string())?;
        match spec {
            StepSpec::Disable(t) => {
                let who = target(&t.identity)?;
                self.plan_response(&ask(&who, true, false, now, actor))
                    .map(|p| Made::Plan(Box::new(p)))
                    .map_err(|e| e.to_string())
            }
            StepSpec::Contain(c) => {
                let who = c
                    .target
                    .clone()
                    .or_else(|| run.trigger.finding.clone())
                    .map_or_else(|| target(&None), Ok)?;
                let mut a = ask(&who, false, c.blue_green, now, actor);
                let since = c.since.as_deref().and_then(keyward_model::time::parse);
                a.since = since;
                self.plan_response(&a)
                    .map(|p| Made::Plan(Box::new(p)))
                    .map_err(|e| e.to_string())
            }
            StepSpec::Enable(t) => {
                let who = target(&t.identity)?;
                let id = match self.resolve(&who) {
                    crate::Resolve::Found(i) => i.id.clone(),
                    crate::Resolve::NotFound | crate::Resolve::Ambiguous(_) => who.clone(),
                };
                match self
                    .latest_plan_for(&id, PlanStatus::Executed)
                    .map_err(|e| e.to_string())?
                {
                    Some(p) => Ok(Made::Plan(Box::new(p))),
                    None => Ok(Made::Nothing(format!("{who} has no executed plan to undo"))),
                }
            }
            StepSpec::RevertDrift(t) => {
                let who = target(&t.identity)?;
                let Ok(mut found) = self.baselined_principals(Some(&who)) else {
                    return Ok(Made::Nothing(format!(
                        "{who} has no approved baseline as an IAM user or role: nothing to revert"
                    )));
                };
                let Some((identity, principal, baseline)) = found.pop() else {
                    return Ok(Made::Nothing(format!("{who} has no approved baseline")));
                };
                drop(_w);
                let live = fx.governed_facts(&principal)?;
                let why = format!(
                    "the live state of {} differs from the baseline approved {} by {}",
                    identity.id,
                    keyward_model::time::format(baseline.approved_at),
                    baseline.approved_by
                );
                Ok(
                    match self.revert_plan(&identity, &baseline, &live, &why, actor, now) {
                        Some(p) => Made::Plan(Box::new(p)),
                        None => Made::Nothing(format!(
                            "{} matches its approved baseline live: nothing to revert",
                            identity.id
                        )),
                    },
                )
            }
            StepSpec::Rotate(t) => {
                let who = target(&t.identity)?;
                let user = who.rsplit(['/', ':']).next().unwrap_or(&who).to_owned();
                drop(_w);
                fx.rotation_plan(&user, now, actor)
                    .map(|p| Made::Plan(Box::new(p)))
            }
            StepSpec::VaultIssue(_) | StepSpec::VaultRotate(_) | StepSpec::VaultRevoke(_) => {
                drop(_w);
                self.vault_plan(run, spec, actor, now)
            }
            StepSpec::ValidateTags(_)
            | StepSpec::Wait(_)
            | StepSpec::Approval(_)
            | StepSpec::Notify(_) => Err(format!("a {} step makes no plan", spec.kind())),
        }
    }

    /// A Vault step's plan (`vault_issue`, `vault_rotate`, `vault_revoke`). The token a
    /// destination holds now is known by its accessor from the stored plans that wrote it
    /// ([`Engine::vault_accessor_in`]); the token itself is never stored.
    fn vault_plan(
        &mut self,
        run: &Run,
        spec: &StepSpec,
        actor: &str,
        now: Millis,
    ) -> Result<Made, String> {
        use keyward_respond::playbook::DEFAULT_TOKEN_KEY;
        use keyward_respond::rotate::SecretLocation;
        use keyward_respond::vault::{TokenRequest, plan_issue, plan_revoke, plan_rotate};
        let identity = run
            .subject
            .as_ref()
            .map_or_else(|| run.playbook.clone(), |s| s.id.clone());
        match spec {
            StepSpec::VaultIssue(v) | StepSpec::VaultRotate(v) => {
                let into = SecretLocation::parse(&v.into)?;
                let key = v.key.as_deref().unwrap_or(DEFAULT_TOKEN_KEY);
                let ttl_secs = u64::try_from(parse_duration(&v.ttl)? / 1000).unwrap_or(0);
                let req = TokenRequest {
                    identity: &identity,
                    role: &v.role,
                    ttl_secs,
                    policies: &v.policies,
                    meta: &v.meta,
                    into: &into,
                    key,
                    now,
                    actor,
                };
                if matches!(spec, StepSpec::VaultIssue(_)) {
                    return Ok(Made::Plan(Box::new(plan_issue(&req))));
                }
                match self
                    .vault_accessor_in(&into, key)
                    .map_err(|e| e.to_string())?
                {
                    Held::Token(old) => Ok(Made::Plan(Box::new(plan_rotate(&req, &old)))),
                    Held::Revoked(by) => Ok(Made::Nothing(format!(
                        "the token in {into} was revoked (plan {by}): not rotated"
                    ))),
                    Held::Nothing => Ok(Made::Nothing(format!(
                        "no token was issued into {into}: nothing to rotate"
                    ))),
                }
            }
            StepSpec::VaultRevoke(r) => {
                let mut accessors = Vec::new();
                let mut notes = Vec::new();
                for from in &r.from {
                    let into = SecretLocation::parse(from)?;
                    match self
                        .vault_accessor_in(&into, DEFAULT_TOKEN_KEY)
                        .map_err(|e| e.to_string())?
                    {
                        Held::Token(a) => {
                            accessors.push((a, format!("the token in {into}")));
                        }
                        Held::Revoked(by) => notes.push(format!("{into}: revoked by plan {by}")),
                        Held::Nothing => notes.push(format!("{into}: no token was issued")),
                    }
                }
                if accessors.is_empty() {
                    return Ok(Made::Nothing(format!(
                        "nothing to revoke ({})",
                        notes.join("; ")
                    )));
                }
                let mut plan = plan_revoke(&identity, &accessors, &[], now, actor);
                plan.notes.extend(notes);
                Ok(Made::Plan(Box::new(plan)))
            }
            StepSpec::ValidateTags(_)
            | StepSpec::Rotate(_)
            | StepSpec::Disable(_)
            | StepSpec::Enable(_)
            | StepSpec::Contain(_)
            | StepSpec::RevertDrift(_)
            | StepSpec::Wait(_)
            | StepSpec::Approval(_)
            | StepSpec::Notify(_) => Err(format!("a {} step is not a Vault step", spec.kind())),
        }
    }

    /// The token a destination holds, by accessor: the newest executed plan that issued a
    /// token into it and wrote it there; `Revoked` when an executed plan revoked that one.
    pub fn vault_accessor_in(
        &self,
        into: &keyward_respond::rotate::SecretLocation,
        key: &str,
    ) -> Result<Held, EngineError> {
        use keyward_respond::Action;
        let plans = self.response_plans(100_000)?;
        let ok = |s: &keyward_respond::Step| s.result.as_ref().is_some_and(|r| r.ok);
        let mut revoked = std::collections::BTreeMap::new();
        for p in &plans {
            for s in p.steps.iter().filter(|s| ok(s)) {
                if let Action::RevokeVaultToken { accessor, .. } = &s.action {
                    revoked.insert(accessor.clone(), p.id.clone());
                }
            }
        }
        for p in &plans {
            let written = p.steps.iter().any(|s| {
                ok(s)
                    && matches!(&s.action, Action::WriteVaultToken { into: i, key: k } if i == into && k == key)
            });
            if !written {
                continue;
            }
            let issued = p.steps.iter().find_map(|s| {
                let Action::IssueVaultToken {
                    into: i, key: k, ..
                } = &s.action
                else {
                    return None;
                };
                if i != into || k != key || !ok(s) {
                    return None;
                }
                s.result
                    .as_ref()?
                    .state
                    .get("accessor")?
                    .as_str()
                    .map(str::to_owned)
            });
            if let Some(a) = issued {
                return Ok(match revoked.get(&a) {
                    Some(by) => Held::Revoked(by.clone()),
                    None => Held::Token(a),
                });
            }
        }
        Ok(Held::Nothing)
    }
}

/// What a destination holds, as the stored plans tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A token, by its accessor.
    Token(String),
    /// The last token written was revoked, by this plan.
    Revoked(String),
    Nothing,
}

fn ask<'a>(
    target: &'a str,
    everywhere: bool,
    blue_green: bool,
    now: Millis,
    actor: &'a str,
) -> PlanAsk<'a> {
    PlanAsk {
        target,
        since: None,
        now,
        actor,
        protect: &[],
        k8s: if blue_green {
            keyward_respond::plan::K8sStrategy::BlueGreen
        } else {
            keyward_respond::plan::K8sStrategy::Contain
        },
        everywhere,
    }
}

/// The first failed step of a plan, in words.
fn failed_step(p: &Plan) -> String {
    p.steps
        .iter()
        .find_map(|s| {
            let r = s.result.as_ref().or(s.undo_result.as_ref())?;
            (!r.ok).then(|| format!("step {} {}: {}", s.n, s.action.name(), r.message))
        })
        .unwrap_or_else(|| "no step failed".into())
}

/// What a notification says: the run and its steps (never a secret: a run holds none).
fn summary(run: &Run, n: usize, message: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "run": run.id,
        "playbook": run.playbook,
        "status": run.status.as_str(),
        "step": n,
        "message": message,
        "trigger": { "kind": run.trigger.kind, "finding": run.trigger.finding, "event": run.trigger.event },
        "identity": run.subject.as_ref().map(|s| serde_json::json!({
            "id": s.id, "name": s.name, "kind": s.kind, "tags": s.tags,
        })),
        "steps": run.steps.iter().map(|s| serde_json::json!({
            "n": s.n, "kind": s.spec.kind(), "status": s.status.as_str(), "plan": s.plan, "message": s.message,
        })).collect::<Vec<_>>(),
    })
}
