//! The facts a compliance scorecard is judged from ([`keyward_govern::compliance`]): open
//! findings, the inventory's size, the newest event, the audit chain's verification and the
//! newest baseline approval — all read, nothing written.

use keyward_detect::Status;
use keyward_govern::compliance::{Facts, OpenFinding};
use keyward_model::time::Millis;

use crate::detection::FindingQuery;
use crate::{Engine, EngineError};

impl Engine {
    /// What the controls are judged from, as of `now`.
    pub fn compliance_facts(&self, now: Millis) -> Result<Facts, EngineError> {
        let findings = self
            .findings(&FindingQuery {
                statuses: vec![Status::Open],
                ..FindingQuery::default()
            })?
            .into_iter()
            .map(|f| OpenFinding {
                id: f.id,
                rule_id: f.rule_id,
                severity: f.severity.as_str().to_owned(),
                identity: f.identity,
                summary: f.summary,
            })
            .collect();
        let audit = self.audit_verify(&[])?;
        let baselines = self.baselines_approved()?;
        let latest_baseline = baselines
            .values()
            .max_by_key(|b| b.approved_at)
            .map(|b| (b.approved_at, b.approved_by.clone()));
        Ok(Facts {
            now,
            identities: self.inventory().len(),
            events: self.event_count()?,
            latest_event: self.latest_event_time()?,
            findings,
            audit_intact: audit.ok,
            audit_entries: audit.entries,
            audit_head: audit.head.map(|h| (h.seq, h.mac)),
            baselines: baselines.len(),
            latest_baseline,
        })
    }
}

/// The audit action a compliance report run is recorded under.
pub const REPORTED: &str = "compliance.report";

/// One report run: when, which framework, its counts, and who ran it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrendPoint {
    pub at: Millis,
    pub framework: String,
    pub pass: u64,
    pub warn: u64,
    pub fail: u64,
    pub by: String,
}

impl Engine {
    /// Every recorded report run (of `framework`, or of all), oldest first, read from the
    /// audit log a page at a time.
    pub fn compliance_trend(
        &self,
        framework: Option<&str>,
    ) -> Result<Vec<TrendPoint>, EngineError> {
        const PAGE: usize = 10_000;
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_entries(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                let e = &r.entry;
                if e.action != REPORTED {
                    continue;
                }
                let Some(doc) = e
                    .after
                    .as_deref()
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                else {
                    continue;
                };
                let name = doc.get("framework").and_then(|v| v.as_str()).unwrap_or("");
                if framework.is_some_and(|f| f != name) {
                    continue;
                }
                let n = |k: &str| doc.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                out.push(TrendPoint {
                    at: doc
                        .get("as_of")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(e.at),
                    framework: name.to_owned(),
                    pass: n("pass"),
                    warn: n("warn"),
                    fail: n("fail"),
                    by: e.actor.clone(),
                });
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }
}
