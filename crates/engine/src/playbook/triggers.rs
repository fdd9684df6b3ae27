//! A tick: every playbook's trigger evaluated against the store as it now is, a run started
//! for each new match (its id derives from the playbook and the trigger's key — the event
//! or finding id, the schedule's slot, the subject and its fingerprint — so evaluating the
//! same state twice starts nothing twice), then every unfinished run resumed where it
//! stopped (a wait only once its persisted wake-up time has come).

use keyward_model::time::Millis;
use keyward_respond::playbook::run::{Run, RunStatus, SCHEDULE_KIND, ScheduleState, TriggerFacts};
use keyward_respond::playbook::{
    EventFacts, FindingFacts, Playbook, Subject, SubjectMatch, Trigger, parse_duration,
};
use serde::{Deserialize, Serialize};

use super::{Effects, RUN_LIMIT};
use crate::jobs::Job;
use crate::{Engine, EngineError};

/// What a tick is asked.
pub struct Tick<'a> {
    pub now: Millis,
    /// Runs started by this tick execute their plans (else: dry runs).
    pub execute: bool,
    /// Who ticks (`cli:alice`, `serve:scheduler`).
    pub actor: &'a str,
}

/// What a tick did.
#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    /// Runs started (ids).
    pub started: Vec<String>,
    /// Runs advanced, as they now stand.
    pub advanced: Vec<Run>,
    /// `(playbook, subject, why)`: a trigger matched but the conditions did not hold.
    pub not_started: Vec<(String, String, String)>,
}

const CURSOR_KIND: &str = "playbook_cursor";
const EVENT_CURSOR: &str = "pc-events";
/// Events read per identity for event triggers.
const EVENTS_PER_IDENTITY: usize = 500;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// Events at or after this time are looked at.
    after: Millis,
}

impl Engine {
    /// Evaluates the playbooks' triggers, then resumes every unfinished run that is due.
    pub fn playbook_tick(
        &mut self,
        books: &[Playbook],
        fx: &mut dyn Effects,
        t: &Tick<'_>,
    ) -> Result<TickReport, EngineError> {
        self.refresh()?;
        let mut report = TickReport::default();
        for book in books {
            let Some(trigger) = &book.trigger else {
                continue;
            };
            let fired = match trigger {
                Trigger::Inventory(m) => self.inventory_fired(m, t.now)?,
                Trigger::Schedule(s) => self.schedule_fired(book, s, t.now, t.execute)?,
                Trigger::Finding(m) => self.findings_fired(m)?,
                Trigger::Event(m) => self.events_fired(m)?,
            };
            for (subject, facts) in fired {
                if let Some(s) = &subject
                    && let Err(why) = book.conditions_hold(s, t.now)
                {
                    report
                        .not_started
                        .push((book.name.clone(), s.id.clone(), why));
                    continue;
                }
                if let Some(run) =
                    self.playbook_start(book, subject, facts, t.execute, t.actor, t.now)?
                {
                    report.started.push(run.id);
                }
            }
        }
        self.advance_event_cursor(books)?;
        let mut due: Vec<Run> = self
            .playbook_runs(RUN_LIMIT)?
            .into_iter()
            .filter(|r| match r.status {
                RunStatus::Running => true,
                RunStatus::Waiting => r.wake_at().is_none_or(|at| at <= t.now),
                RunStatus::AwaitingApproval
                | RunStatus::Done
                | RunStatus::Stopped
                | RunStatus::Failed => false,
            })
            .collect();
        due.sort_by_key(|r| r.started_at);
        for run in due {
            report
                .advanced
                .push(self.playbook_advance(&run.id, fx, t.actor, t.now)?);
        }
        Ok(report)
    }

    /// Every subject: the inventory's identities and those Terraform defines (merged by id).
    pub fn playbook_subjects(&self) -> Result<Vec<Subject>, EngineError> {
        let mut out = self.terraform_subjects()?;
        let known: std::collections::BTreeSet<String> = out.iter().map(|s| s.id.clone()).collect();
        for i in self.inventory.iter() {
            let s = Subject::from_identity(i);
            if known.contains(&s.id) {
                if let Some(tf) = out.iter_mut().find(|t| t.id == s.id) {
                    tf.source = format!("terraform,{}", s.source);
                    tf.credential_created = s.credential_created;
                }
                continue;
            }
            out.push(s);
        }
        Ok(out)
    }

    fn inventory_fired(
        &self,
        m: &SubjectMatch,
        now: Millis,
    ) -> Result<Vec<(Option<Subject>, TriggerFacts)>, EngineError> {
        Ok(self
            .playbook_subjects()?
            .into_iter()
            .filter(|s| m.matches(s))
            .map(|s| {
                let facts = TriggerFacts {
                    kind: "inventory".into(),
                    key: format!("inventory\n{}\n{}", s.key(), s.fingerprint()),
                    time: now,
                    ..TriggerFacts::default()
                };
                (Some(s), facts)
            })
            .collect())
    }

    fn schedule_fired(
        &mut self,
        book: &Playbook,
        s: &keyward_respond::playbook::Schedule,
        now: Millis,
        execute: bool,
    ) -> Result<Vec<(Option<Subject>, TriggerFacts)>, EngineError> {
        let every = parse_duration(&s.every).map_err(EngineError::Respond)?;
        let start = s.start.as_deref().and_then(keyward_model::time::parse);
        let subjects: Vec<Option<Subject>> = match &s.for_each {
            None => vec![None],
            Some(m) => self
                .playbook_subjects()?
                .into_iter()
                .filter(|x| m.matches(x))
                .map(Some)
                .collect(),
        };
        let mut out = Vec::new();
        let _w = self.write_lock()?;
        for subject in subjects {
            let sid = subject.as_ref().map(|x| x.key().to_owned());
            let id = ScheduleState::id_for(&book.name, sid.as_deref());
            let state = self.job::<ScheduleState>(&id)?.map(|j| j.doc);
            let mut state = match state {
                Some(st) => st,
                None => ScheduleState {
                    playbook: book.name.clone(),
                    subject: sid.clone(),
                    // First seen now: due one period later, or at the start given.
                    next_due: start.unwrap_or(now + every),
                    last_run: None,
                },
            };
            let fire = now >= state.next_due;
            if fire {
                let slot = state.next_due;
                let facts = TriggerFacts {
                    kind: "schedule".into(),
                    key: format!("schedule\n{}\n{slot}", sid.as_deref().unwrap_or("")),
                    time: slot,
                    ..TriggerFacts::default()
                };
                state.last_run = Some(Run::id_for(&book.name, &facts.key));
                // Missed periods are not caught up one by one: the next is after `now`.
                let behind = (now - slot) / every + 1;
                state.next_due = slot + behind * every;
                out.push((subject, facts));
            }
            // A dry tick reads the schedule but never moves it: the real runs keep their slots.
            if !execute {
                continue;
            }
            self.put_job(
                &Job {
                    id: id.clone(),
                    kind: SCHEDULE_KIND.into(),
                    parent: None,
                    created_at: now,
                    updated_at: now,
                    status: "scheduled".into(),
                    doc: state,
                },
                None,
            )?;
        }
        Ok(out)
    }

    fn subject_for(&self, identity: &str) -> Result<Subject, EngineError> {
        let principal = keyward_model::ids::principal(identity).into_owned();
        Ok(self
            .playbook_subject(&principal)?
            .unwrap_or_else(|| Subject {
                id: principal.clone(),
                name: principal
                    .rsplit(['/', ':'])
                    .next()
                    .unwrap_or(&principal)
                    .to_owned(),
                ..Subject::default()
            }))
    }

    fn findings_fired(
        &self,
        m: &keyward_respond::playbook::FindingMatch,
    ) -> Result<Vec<(Option<Subject>, TriggerFacts)>, EngineError> {
        let q = crate::FindingQuery {
            statuses: vec![
                keyward_detect::Status::Open,
                keyward_detect::Status::Acknowledged,
            ],
            ..crate::FindingQuery::default()
        };
        let mut out = Vec::new();
        for f in self.findings(&q)? {
            let Some(identity) = f.identity.clone() else {
                continue;
            };
            let principal = keyward_model::ids::principal(&identity).into_owned();
            let facts = FindingFacts {
                id: f.id.clone(),
                rules: f.rules().map(str::to_owned).collect(),
                severity: f.severity.as_str().to_owned(),
                identities: if principal == identity {
                    vec![identity.clone()]
                } else {
                    vec![identity.clone(), principal]
                },
                first_seen: f.first_seen,
            };
            if !m.matches(&facts) {
                continue;
            }
            out.push((
                Some(self.subject_for(&identity)?),
                TriggerFacts {
                    kind: "finding".into(),
                    key: format!("finding\n{}", f.id),
                    finding: Some(f.id.clone()),
                    rule: Some(f.rule_id.clone()),
                    severity: Some(facts.severity),
                    time: f.first_seen,
                    ..TriggerFacts::default()
                },
            ));
        }
        Ok(out)
    }

    fn events_fired(
        &self,
        m: &keyward_respond::playbook::EventMatch,
    ) -> Result<Vec<(Option<Subject>, TriggerFacts)>, EngineError> {
        let after = self
            .job::<Cursor>(EVENT_CURSOR)?
            .map_or(Millis::MIN, |j| j.doc.after);
        let mut out = Vec::new();
        let ids: Vec<String> = self
            .inventory
            .iter()
            .filter(|i| i.last_seen.is_some_and(|t| t >= after))
            .map(|i| i.id.clone())
            .collect();
        for id in ids {
            for e in self.recent_events(&id, EVENTS_PER_IDENTITY)? {
                if e.time < after {
                    continue;
                }
                let facts = EventFacts {
                    id: e.native_id.to_string(),
                    time: e.time,
                    action: e.action.to_string(),
                    source: e.source.as_str().to_owned(),
                    actor: e.actor.as_deref().map(str::to_owned),
                    identity: id.clone(),
                    target: e.target.as_deref().map(str::to_owned),
                };
                if !m.matches(&facts) {
                    continue;
                }
                out.push((
                    Some(self.subject_for(&id)?),
                    TriggerFacts {
                        kind: "event".into(),
                        key: format!("event\n{}\n{}", facts.source, facts.id),
                        event: Some(facts.id),
                        action: Some(facts.action),
                        actor: facts.actor,
                        target: facts.target,
                        time: facts.time,
                        ..TriggerFacts::default()
                    },
                ));
            }
        }
        Ok(out)
    }

    /// After the event triggers ran: later ticks read only events from the newest seen on
    /// (less an hour, for late deliveries; run ids keep a re-read event from starting twice).
    fn advance_event_cursor(&mut self, books: &[Playbook]) -> Result<(), EngineError> {
        if !books
            .iter()
            .any(|b| matches!(b.trigger, Some(Trigger::Event(_))))
        {
            return Ok(());
        }
        let Some(latest) = self.latest_event_time()? else {
            return Ok(());
        };
        let _w = self.write_lock()?;
        self.put_job(
            &Job {
                id: EVENT_CURSOR.into(),
                kind: CURSOR_KIND.into(),
                parent: None,
                created_at: latest,
                updated_at: latest,
                status: "cursor".into(),
                doc: Cursor {
                    after: latest - 3_600_000,
                },
            },
            None,
        )
    }
}
