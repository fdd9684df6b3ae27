//! A playbook run's persisted state (the document of a `playbook_run` job): the playbook's
//! steps with every `${…}` substituted when the run started, and each step's progress. A
//! process that dies at any point resumes from it: a connector step records its plan's id
//! before the plan runs, so a resumed run reads that plan's status instead of acting twice;
//! a wait holds its wake-up time; an approval, who approved.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use super::{StepSpec, Subject};

/// The job kind of a run.
pub const RUN_KIND: &str = "playbook_run";
/// The job kind of a schedule's per-subject state (when it is next due).
pub const SCHEDULE_KIND: &str = "playbook_schedule";

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are being run (or a process died mid-step: the next tick resumes it).
    Running,
    /// Asleep until a wait step's wake-up time.
    Waiting,
    /// Paused until someone other than its starter approves.
    AwaitingApproval,
    /// Every step finished.
    Done,
    /// A check (tags) stopped it, with the reason.
    Stopped,
    /// A step failed, with the reason.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Done => "done",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed => "failed",
        }
    }

    /// Whether a tick may still move it.
    pub fn unfinished(self) -> bool {
        match self {
            RunStatus::Running | RunStatus::Waiting | RunStatus::AwaitingApproval => true,
            RunStatus::Done | RunStatus::Stopped | RunStatus::Failed => false,
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Started (its plan id recorded, when it has one); not yet finished.
    Running,
    Waiting,
    AwaitingApproval,
    Done,
    /// Nothing to do (a dry run's plan made but not executed, a rotation with no token yet).
    Skipped,
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::AwaitingApproval => "awaiting_approval",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
        }
    }

    pub fn finished(self) -> bool {
        match self {
            StepStatus::Done | StepStatus::Skipped => true,
            StepStatus::Pending
            | StepStatus::Running
            | StepStatus::Waiting
            | StepStatus::AwaitingApproval
            | StepStatus::Failed => false,
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerFacts {
    /// `manual`, `event`, `finding`, `schedule`, `inventory`.
    pub kind: String,
    /// What makes this run unique for its playbook (the event or finding id, the schedule's
    /// slot, the subject's fingerprint): the run id derives from it.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What the triggering event acted on (a role's ARN or name, a user's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When the trigger fired (the event's or finding's time, the schedule's slot).
    pub time: Millis,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStep {
    /// 1-based.
    pub n: usize,
    /// The step with its variables substituted.
    pub spec: StepSpec,
    pub status: StepStatus,
    /// The response plan it made (recorded before the plan runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A wait's wake-up time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    /// What happened, in words (never a secret).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Why its variables could not be substituted when the run started (a tag the subject
    /// lacks): the step fails with it when the run reaches it, so that earlier steps (a tag
    /// check) say first what is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

/// A run's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `pr-` and 16 hex digits of the playbook and the trigger's key.
    pub id: String,
    pub playbook: String,
    /// Who started it (`cli:alice`, `playbook:scheduler`).
    pub started_by: String,
    pub started_at: Millis,
    pub trigger: TriggerFacts,
    /// What it is about (none for a schedule without `for_each`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// Without it, a dry run: plans are made and stored, nothing is executed or sent.
    pub execute: bool,
    pub status: RunStatus,
    /// Why it stopped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: Vec<RunStep>,
}

impl Run {
    /// The run id for a playbook and a trigger key (the same trigger never starts two).
    pub fn id_for(playbook: &str, key: &str) -> String {
        let mut h = blake3::Hasher::new();
        for part in [playbook, key] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("pr-{}", &h.finalize().to_hex()[..16])
    }

    /// When the run next needs a tick: a wait's wake-up time; `None` when it needs none
    /// (running now: at once) or can only move by approval or not at all.
    pub fn wake_at(&self) -> Option<Millis> {
        self.steps
            .iter()
            .find(|s| s.status == StepStatus::Waiting)
            .and_then(|s| s.wake_at)
    }

    /// The first step not finished.
    pub fn current(&self) -> Option<&RunStep> {
        self.steps.iter().find(|s| !s.status.finished())
    }
}

/// A schedule's state for one subject (or the subject-less schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub playbook: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the next run is due.
    pub next_due: Millis,
    /// The last run started, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
}

impl ScheduleState {
    pub fn id_for(playbook: &str, subject: Option<&str>) -> String {
        let key = format!("{playbook}\n{}", subject.unwrap_or(""));
        format!("ps-{}", &blake3::hash(key.as_bytes()).to_hex()[..16])
    }
}
