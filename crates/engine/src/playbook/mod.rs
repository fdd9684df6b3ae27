//! Playbook runs on the engine's state: started by a trigger ([`triggers`]) or by hand,
//! persisted as `playbook_run` jobs after every change, advanced step by step. A connector
//! step becomes an ordinary stored, audited response plan; its id is written into the run
//! before the plan runs, so a resumed run reads the plan's status instead of acting twice.
//! Every step's start and finish is audited (`playbook.step`, target the run id).
//!
//! The network is the caller's: it hands in [`Effects`] (execute a plan through the
//! connectors, POST a webhook, discover an access key's locations), as `keyward playbook`
//! and `keyward serve` do. Time is an argument (`--now` drives it in tests and demos).

mod steps;
pub use steps::Held;
pub mod triggers;

use keyward_model::time::Millis;
use keyward_respond::Plan;
use keyward_respond::playbook::run::{RUN_KIND, Run, RunStatus, RunStep, StepStatus, TriggerFacts};
use keyward_respond::playbook::{Playbook, Subject, resolve_step};
use keyward_store::AuditEntry;

use crate::jobs::Job;
use crate::{Engine, EngineError};

/// What a playbook run asks of the world outside the store.
pub trait Effects {
    /// Executes stored plan `plan` through the connectors, recording every step in the
    /// engine as it goes (`respond::PlanRecorder`); returns the plan as it now stands. An
    /// `Err` is a failure before any step ran (no connector).
    fn execute(&mut self, engine: &mut Engine, plan: Plan, actor: &str) -> Result<Plan, String>;
    /// Undoes stored plan `plan` the same way.
    fn undo(&mut self, engine: &mut Engine, plan: Plan, actor: &str) -> Result<Plan, String>;
    /// POSTs `body` as JSON to `url`.
    fn notify(&mut self, url: &str, body: &serde_json::Value) -> Result<(), String>;
    /// The rotation plan of an IAM user's access key (discovering where the key lives).
    fn rotation_plan(&mut self, user: &str, now: Millis, actor: &str) -> Result<Plan, String>;
    /// An IAM user's or role's governed facts read live (`AwsConnector::governed_facts`).
    fn governed_facts(
        &mut self,
        principal: &keyward_respond::IamPrincipal,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String>;
}

/// How many runs a listing or a tick reads.
pub const RUN_LIMIT: usize = 10_000;

impl Engine {
    /// A stored run.
    pub fn playbook_run(&self, id: &str) -> Result<Option<Run>, EngineError> {
        Ok(self.job::<Run>(id)?.map(|j| j.doc))
    }

    /// Runs, newest first.
    pub fn playbook_runs(&self, limit: usize) -> Result<Vec<Run>, EngineError> {
        Ok(self
            .jobs::<Run>(RUN_KIND, None, limit)?
            .into_iter()
            .map(|j| j.doc)
            .collect())
    }

    /// The subject `query` names: an identity of the inventory (id, ARN, name), else an
    /// identity a Terraform resource defines (by name or id).
    pub fn playbook_subject(&self, query: &str) -> Result<Option<Subject>, EngineError> {
        if let crate::Resolve::Found(i) = self.resolve(query) {
            let mut s = Subject::from_identity(i);
            if let Some(tf) = self
                .terraform_subjects()?
                .into_iter()
                .find(|t| t.id == s.id || (t.name == s.name && t.kind == s.kind))
            {
                // Terraform's tags are the declared ones: they win.
                s.tags.extend(tf.tags);
                s.terraform = tf.terraform;
                s.resource_type = tf.resource_type;
                s.origin = tf.origin;
            }
            return Ok(Some(s));
        }
        Ok(self
            .terraform_subjects()?
            .into_iter()
            .find(|t| t.id == query || t.name == query))
    }

    /// Every identity the stored Terraform resources define, with the inventory's canonical
    /// id when it knows the identity.
    pub fn terraform_subjects(&self) -> Result<Vec<Subject>, EngineError> {
        let mut out = Vec::new();
        for o in self.objects("tf_resource")? {
            let Some(mut s) = Subject::from_terraform(&o.doc) else {
                continue;
            };
            if let crate::Resolve::Found(i) = self.resolve(&s.name)
                && i.kind.as_str() == s.kind
            {
                s.id = i.id.clone();
                s.account = i.account.clone();
            }
            out.push(s);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    /// Starts a run of `book` (stored, audited `playbook.run`), unless the trigger already
    /// started one: then `None`. Its steps' variables are substituted now; a value missing
    /// (a tag the subject lacks) fails the run at once, saying which.
    pub fn playbook_start(
        &mut self,
        book: &Playbook,
        subject: Option<Subject>,
        trigger: TriggerFacts,
        execute: bool,
        actor: &str,
        now: Millis,
    ) -> Result<Option<Run>, EngineError> {
        // A dry run and an executing run of the same trigger are two runs: a dry tick
        // never keeps the real one from starting.
        let key = if execute {
            trigger.key.clone()
        } else {
            format!("{}\ndry run", trigger.key)
        };
        let id = Run::id_for(&book.name, &key);
        let _w = self.write_lock()?;
        if self.job::<serde_json::Value>(&id)?.is_some() {
            return Ok(None);
        }
        let mut run = Run {
            id: id.clone(),
            playbook: book.name.clone(),
            started_by: actor.to_owned(),
            started_at: now,
            trigger,
            subject,
            execute,
            status: RunStatus::Running,
            reason: None,
            steps: Vec::new(),
        };
        let lookup = |v: &str| lookup(&run, v);
        let mut steps = Vec::new();
        for (i, spec) in book.steps.iter().enumerate() {
            let (resolved, unresolved) = match resolve_step(spec, &lookup) {
                Ok(s) => (s, None),
                Err(e) => (spec.clone(), Some(e)),
            };
            steps.push(RunStep {
                n: i + 1,
                spec: resolved,
                status: StepStatus::Pending,
                plan: None,
                wake_at: None,
                approved_by: None,
                started_at: None,
                finished_at: None,
                message: String::new(),
                unresolved,
            });
        }
        run.steps = steps;
        let detail = format!(
            "{} run of {} ({}){}{}",
            if execute { "executing" } else { "dry" },
            book.name,
            run.trigger.kind,
            run.subject
                .as_ref()
                .map(|s| format!(" for {}", s.id))
                .unwrap_or_default(),
            run.reason
                .as_deref()
                .map(|r| format!(": failed: {r}"))
                .unwrap_or_default(),
        );
        self.save_run(&run, now, actor, "playbook.run", detail)?;
        Ok(Some(run))
    }

    /// Writes a run with its audit entry, in one transaction (the caller holds the lock).
    fn save_run(
        &mut self,
        run: &Run,
        at: Millis,
        actor: &str,
        action: &str,
        detail: String,
    ) -> Result<(), EngineError> {
        let job = Job {
            id: run.id.clone(),
            kind: RUN_KIND.to_owned(),
            parent: None,
            created_at: run.started_at,
            updated_at: at,
            status: run.status.as_str().to_owned(),
            doc: run.clone(),
        };
        self.put_job(
            &job,
            Some(AuditEntry {
                at,
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: Some(run.id.clone()),
                detail: Some(detail),
                before: None,
                after: Some(run.status.as_str().to_owned()),
            }),
        )
    }

    /// Records that someone other than the run's starter approves its pending approval
    /// step; the next advance goes on.
    pub fn playbook_approve(
        &mut self,
        id: &str,
        actor: &str,
        now: Millis,
    ) -> Result<Run, EngineError> {
        let _w = self.write_lock()?;
        let mut run = self
            .playbook_run(id)?
            .ok_or_else(|| EngineError::Respond(format!("no playbook run `{id}`")))?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(EngineError::Respond(format!(
                "run {id} is {}, not awaiting approval",
                run.status.as_str()
            )));
        }
        if run.started_by == actor {
            return Err(EngineError::Respond(format!(
                "run {id} was started by {actor}: someone else must approve it"
            )));
        }
        let Some(step) = run
            .steps
            .iter_mut()
            .find(|s| s.status == StepStatus::AwaitingApproval)
        else {
            return Err(EngineError::Respond(format!(
                "run {id} has no step awaiting approval"
            )));
        };
        step.approved_by = Some(actor.to_owned());
        step.status = StepStatus::Done;
        step.finished_at = Some(now);
        step.message = format!("approved by {actor}");
        let detail = format!("step {} approval: approved by {actor}", step.n);
        run.status = RunStatus::Running;
        self.save_run(&run, now, actor, "playbook.step", detail)?;
        Ok(run)
    }

    /// Moves a run as far as it can go now: each step started, carried out and finished
    /// (each persisted and audited) until one waits, needs approval, stops or fails, or
    /// every step is done.
    pub fn playbook_advance(
        &mut self,
        id: &str,
        fx: &mut dyn Effects,
        actor: &str,
        now: Millis,
    ) -> Result<Run, EngineError> {
        let mut run = self
            .playbook_run(id)?
            .ok_or_else(|| EngineError::Respond(format!("no playbook run `{id}`")))?;
        while run.status.unfinished() {
            let Some(i) = run.steps.iter().position(|s| !s.status.finished()) else {
                run.status = RunStatus::Done;
                let detail = format!("run of {} done", run.playbook);
                let _w = self.write_lock()?;
                self.save_run(&run, now, actor, "playbook.run", detail)?;
                break;
            };
            let outcome = self.step(&mut run, i, fx, actor, now)?;
            if !outcome {
                break;
            }
        }
        Ok(run)
    }
}

/// A `${…}` variable's value for a run.
fn lookup(run: &Run, v: &str) -> Option<String> {
    let t = &run.trigger;
    match v {
        "run" => Some(run.id.clone()),
        "identity" => run.subject.as_ref().map(|s| s.id.clone()),
        "trigger.kind" => Some(t.kind.clone()),
        "trigger.finding" => t.finding.clone(),
        "trigger.rule" => t.rule.clone(),
        "trigger.severity" => t.severity.clone(),
        "trigger.event" => t.event.clone(),
        "trigger.action" => t.action.clone(),
        "trigger.actor" => t.actor.clone(),
        "trigger.target" => t.target.clone(),
        "trigger.time" => Some(keyward_model::time::format(t.time)),
        _ => v
            .strip_prefix("identity.")
            .and_then(|f| run.subject.as_ref()?.field(f)),
    }
}

#[cfg(test)]
mod tests;
