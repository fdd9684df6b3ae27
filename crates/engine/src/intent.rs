//! AI agents judged against their declared purpose, after every ingest: for each session
//! of an agent that has a purpose (`keyward_detect::intent`), the STS sessions its tool
//! calls assumed (observed `created` edges from the session in the graph, whose ids are
//! the assumed-role ARNs CloudTrail reports) and their stored CloudTrail events, and the
//! access keys its tool calls named (observed `used` edges) with the calls CloudTrail
//! reports with them around those tool calls (`Engine::held_events`); the calls
//! outside the purpose are one finding per agent session and credential, with the tool
//! calls that preceded them and the person who prompted the session as evidence.
//!
//! An exception of the rule (`keyward findings except`, an exceptions file) keeps an action
//! out when it matches: its identities are tried against the agent (id and name), the
//! agent session, the credential and its role; its accounts and networks against the
//! call's.
//!
//! Run after ingest rather than per event because its two halves come from different
//! sources in any order: the agent's traces may be read before or after the CloudTrail
//! they explain, and the judgement is the same either way.

use keyward_detect::Finding;
use keyward_detect::exceptions::{Compiled, Subject};
use keyward_detect::intent::{self, Action, Intents, Prompt, ToolCall};
use keyward_graph::EdgeKind;
use keyward_model::{IdentityKind, SourceKind};

use crate::agents::{Held, held};
use crate::{Engine, EngineError};

/// How many of a credential's most recent events, and of a session's tool calls, are read.
const RECENT: usize = 1_000;

impl Engine {
    /// Judges every agent session with a purpose; writes new and changed findings and
    /// returns them. Nothing to judge without purposes.
    pub fn evaluate_intent(&mut self, intents: &Intents) -> Result<Vec<Finding>, EngineError> {
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        let excepted = self.intent_exceptions()?;
        let g = self.graph();
        let mut out = Vec::new();
        for s in self.inventory.iter() {
            if s.kind != IdentityKind::AgentSession {
                continue;
            }
            let Some(agent_id) = s.parent.as_deref() else {
                continue;
            };
            let agent_name = self
                .inventory
                .get(agent_id)
                .map_or(agent_id, |a| a.name.as_str());
            let Some(purpose) = intents.purpose_of(agent_id, agent_name) else {
                continue;
            };
            // The STS sessions its tool calls assumed, and the access keys they named.
            let mut credentials: Vec<Held> = held(g, &s.id, EdgeKind::Created, None)
                .into_iter()
                .filter(|h| h.kind == IdentityKind::StsSession)
                .chain(
                    held(g, &s.id, EdgeKind::Used, None)
                        .into_iter()
                        .filter(Held::is_key),
                )
                .collect();
            credentials.sort_by(|a, b| a.id.cmp(&b.id));
            if credentials.is_empty() {
                continue;
            }
            let calls: Vec<ToolCall> = self
                .store
                .recent_events(&s.id, RECENT)?
                .into_iter()
                .filter(|e| crate::agents::is_tool_call(&e.action))
                .map(|e| ToolCall {
                    event_id: e.native_id.into_owned(),
                    time: e.time,
                    tool: e.target.map(|t| t.into_owned()),
                })
                .collect();
            let details = s.details.get("agent_session");
            let conversation = details
                .and_then(|d| d.get("session"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or(s.name.rsplit('/').next().unwrap_or(&s.name));
            let prompted_by = crate::agents::prompted_by(s);
            let path = crate::detection::owner_path(g, &s.id);
            for held in &credentials {
                let cred = held.id.as_str();
                let role = self.inventory.get(cred).and_then(|c| c.parent.as_deref());
                let about = [
                    Some(agent_id),
                    Some(agent_name),
                    Some(s.id.as_str()),
                    Some(cred),
                    role,
                ];
                let actions: Vec<Action> = self
                    .held_events(held)?
                    .into_iter()
                    .filter(|e| e.source == SourceKind::Cloudtrail)
                    .filter(|e| {
                        let subject = Subject {
                            identities: &about,
                            namespace: None,
                            account: e.account.as_deref(),
                            source_ip: e.source_ip.as_deref(),
                        };
                        !excepted.iter().any(|x| x.matches_subject(&subject))
                    })
                    .map(|e| Action {
                        denied: e.denied(),
                        event_id: e.native_id.into_owned(),
                        time: e.time,
                        action: e.action.into_owned(),
                        target: e.target.map(|t| t.into_owned()),
                    })
                    .collect();
                let prompt = Prompt {
                    agent: agent_id,
                    agent_name,
                    session: &s.id,
                    conversation,
                    prompted_by,
                    credential: cred,
                    role,
                };
                out.extend(intent::judge(
                    purpose,
                    &prompt,
                    &actions,
                    &calls,
                    path.clone(),
                ));
            }
        }
        self.write_intent(out)
    }

    /// The intent rule's exceptions: the detector's (rule files, exception files, the store)
    /// when detection is on, else those saved in the store.
    fn intent_exceptions(&self) -> Result<Vec<Compiled>, EngineError> {
        let written = match self.detector() {
            Some(d) => d
                .catalog()
                .rules
                .iter()
                .filter(|r| r.id == intent::RULE)
                .flat_map(|r| r.exceptions.clone())
                .collect(),
            None => self
                .stored_exceptions()?
                .into_iter()
                .filter(|e| e.rule.as_deref() == Some(intent::RULE))
                .collect::<Vec<_>>(),
        };
        // Each was checked when it was taken; one that does not compile is skipped.
        Ok(written
            .iter()
            .filter_map(|e| Compiled::new(e).ok())
            .collect())
    }

    /// Writes the findings that are new or changed, keeping a stored finding's triage
    /// (status, first sighting); returns those written.
    fn write_intent(&mut self, found: Vec<Finding>) -> Result<Vec<Finding>, EngineError> {
        let mut batch = self.store.begin()?;
        let mut written = Vec::new();
        for mut f in found {
            if let Some(row) = batch.finding(&f.id)? {
                let old = crate::detection::from_row(&row)?;
                f.first_seen = old.first_seen.min(f.first_seen);
                f.status = old.status;
                let next = crate::detection::to_row(&f)?;
                if next.doc == row.doc && next.status == row.status {
                    continue;
                }
                batch.put_finding(&next)?;
            } else {
                batch.put_finding(&crate::detection::to_row(&f)?)?;
            }
            written.push(f);
        }
        batch.commit()?;
        Ok(written)
    }
}
