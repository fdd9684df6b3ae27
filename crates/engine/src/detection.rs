//! Detection inside the engine: the detector runs on every event new to the store, its
//! findings, baselines and state are written in the same store batches as the events, and
//! verdicts on findings are recorded with who gave them.

use keyward_detect::baseline::Baseline;
use keyward_detect::checks::State;
use keyward_detect::{Catalog, Detector, Finding, Kind, Settings, Status};
use keyward_graph::Inventory;
use keyward_model::time::Millis;
use keyward_store::{Batch, FindingChange, FindingRow};

use crate::{Engine, EngineError};

/// The longest note a status change may carry, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;

const STATE: &str = "checks";

/// What `findings` lists.
#[derive(Debug, Clone, Default)]
pub struct FindingQuery {
    pub since: Option<Millis>,
    pub min_severity: Option<keyward_detect::Severity>,
    /// Canonical id, or a name `resolve` understands.
    pub identity: Option<String>,
    pub kind: Option<Kind>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<Status>,
}

pub(crate) fn to_row(f: &Finding) -> Result<FindingRow, EngineError> {
    Ok(FindingRow {
        id: f.id.clone(),
        rule_id: f.rule_id.clone(),
        kind: f.kind.as_str().into(),
        severity: f.severity as u8,
        identity: f.identity.clone(),
        status: f.status.as_str().into(),
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        doc: to_json(f)?,
    })
}

/// A finding, baseline or check state as the JSON stored for it (sonic-rs writes the same
/// JSON as serde_json, faster; it is read back with serde_json).
fn to_json<T: sonic_rs::Serialize + ?Sized>(v: &T) -> Result<String, EngineError> {
    Ok(sonic_rs::to_string(v)?)
}

pub(crate) fn from_row(r: &FindingRow) -> Result<Finding, EngineError> {
    serde_json::from_str(&r.doc).map_err(|e| {
        EngineError::Store(keyward_store::StoreError::Corrupt(format!(
            "finding `{}`: {e}",
            r.id
        )))
    })
}

/// The identity's last use as its platform reported it (the credential report, IAM's
/// `RoleLastUsed`).
pub(crate) fn reported_last_use(inventory: &Inventory, identity: &str) -> Option<Millis> {
    inventory
        .get(identity)?
        .details
        .get("reported_last_used")?
        .as_str()
        .and_then(keyward_model::time::parse)
}

/// The graph path behind a threat finding: the acting identity (or, for a session or key
/// not in the graph, its principal) → … → its most likely owner, person or team.
pub(crate) fn owner_path(g: &keyward_graph::Graph, identity: &str) -> Vec<String> {
    let principal = keyward_model::ids::principal(identity);
    let Some(node) = g.find(identity).or_else(|| g.find(&principal)) else {
        return Vec::new();
    };
    let owners = keyward_graph::analysis::ownership(g, node);
    let Some(best) = owners.people.first().or(owners.teams.first()) else {
        return Vec::new();
    };
    let mut path = vec![identity.to_owned()];
    if g.key(node) != identity {
        path.push(g.key(node).to_owned());
    }
    path.extend(best.chain.iter().map(|h| h.node.clone()));
    path
}

/// Writes what the detector produced since the last call into `batch`: findings merged
/// with their stored versions, changed baselines, and the check state. New threat findings
/// get their identity's ownership path from `graph`.
pub(crate) fn write(
    batch: &mut dyn Batch,
    det: &mut Detector,
    graph: &keyward_graph::Graph,
) -> Result<Vec<Finding>, EngineError> {
    // In stages, each over every finding, so that each stage's code (the graph, SQLite's
    // lookups, the serializer, SQLite's upserts) stays in cache: interleaved per finding,
    // they evicted each other's code at every one.
    let mut found = det.take_findings();
    for f in &mut found {
        if f.path.is_empty()
            && let Some(id) = &f.identity
        {
            f.path = owner_path(graph, id);
        }
    }
    let mut stored = Vec::with_capacity(found.len());
    for f in &found {
        stored.push(batch.finding(&f.id)?);
    }
    let mut written = Vec::with_capacity(found.len());
    for (mut f, old) in found.into_iter().zip(stored) {
        if let Some(old) = old {
            let old = from_row(&old)?;
            if !old.status.is_active() {
                // A closed finding seen again: a false positive stays one (its counts
                // move); a resolved one reopens.
                let mut merged = old.clone();
                merged.merge(&f);
                if old.status == Status::Resolved && f.kind == Kind::Threat {
                    merged.status = Status::Open;
                    batch.add_finding_change(&FindingChange {
                        finding_id: f.id.clone(),
                        at: f.last_seen,
                        actor: "keyward".into(),
                        status: Status::Open.as_str().into(),
                        note: Some("seen again after it was resolved".into()),
                    })?;
                }
                f = merged;
            } else {
                keep_verdict(batch, &old, &mut f)?;
            }
        }
        written.push(f);
    }
    let mut rows = written.iter().map(to_row).collect::<Result<Vec<_>, _>>()?;
    // Upserted in id order: each lands next to the last in the primary key's index.
    rows.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for row in &rows {
        batch.put_finding(row)?;
    }
    let baselines = det
        .take_dirty()
        .into_iter()
        .map(|(p, b)| Ok((p, to_json(b)?)))
        .collect::<Result<Vec<_>, EngineError>>()?;
    for (p, doc) in &baselines {
        batch.put_baseline(p, doc)?;
    }
    batch.put_detector_state(STATE, &to_json(&det.state)?)?;
    Ok(written)
}

/// Reconciles an active finding the detector extended (`f`) with its stored version: a
/// person's verdict made meanwhile (an acknowledgement, reopening an expected finding) is
/// kept; an open finding the detector found to repeat the identity's pattern of life
/// becomes expected, with a change recorded.
fn keep_verdict(batch: &mut dyn Batch, old: &Finding, f: &mut Finding) -> Result<(), EngineError> {
    let overridden = old
        .details
        .get(keyward_detect::detector::OVERRIDDEN)
        .is_some();
    if overridden && let serde_json::Value::Object(m) = &mut f.details {
        m.insert(
            keyward_detect::detector::OVERRIDDEN.into(),
            serde_json::Value::Bool(true),
        );
    }
    if old.status == Status::Open && f.status == Status::Expected && !overridden {
        batch.add_finding_change(&FindingChange {
            finding_id: f.id.clone(),
            at: f.last_seen,
            actor: "keyward".into(),
            status: Status::Expected.as_str().into(),
            note: Some(
                "the identity matched this rule in every week of its training window".into(),
            ),
        })?;
    } else if old.status != Status::Expected || overridden {
        f.status = old.status;
    }
    Ok(())
}

/// The setting holding run-time approved accounts.
const ALLOWED_ACCOUNTS: &str = "detect.allowed_accounts";
/// The setting holding exceptions saved at run time (`keyward findings except --save`).
const EXCEPTIONS: &str = "detect.exceptions";

impl Engine {
    /// Turns detection on for later ingests: compiles the catalog and loads baselines,
    /// check state and active findings from the store.
    pub fn enable_detection(
        &mut self,
        mut catalog: Catalog,
        mut settings: Settings,
    ) -> Result<(), EngineError> {
        self.detect_settings = settings.clone();
        for e in self.stored_exceptions()? {
            // One whose rule is not loaded this time (a custom rule left out) waits for it.
            if let Err(err) = catalog.add_exception(e) {
                catalog.problems.push(keyward_detect::rules::Problem {
                    path: format!("setting {EXCEPTIONS}"),
                    reason: err.to_string(),
                });
            }
        }
        settings
            .allowed_accounts
            .extend(self.stored_allowed_accounts()?);
        let mut det = Detector::new(catalog, settings)?;
        if let Some(doc) = self.store.detector_state(STATE)? {
            det.state = serde_json::from_str::<State>(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "detector state: {e}"
                )))
            })?;
        }
        for (p, doc) in self.store.baselines()? {
            let b: Baseline = serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "baseline `{p}`: {e}"
                )))
            })?;
            det.load_baseline(p, b);
        }
        let active = self
            .store
            .findings(None)?
            .iter()
            .filter(|r| {
                r.kind == "threat" && Status::parse(&r.status).is_some_and(|s| s.is_active())
            })
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        det.seed(active);
        self.detector = Some(det);
        Ok(())
    }

    pub fn detector(&self) -> Option<&Detector> {
        self.detector.as_ref()
    }

    /// Approved foreign accounts set at run time (`PUT /api/config/allowed-accounts`);
    /// detection uses them together with the ones given on the command line.
    pub fn stored_allowed_accounts(&self) -> Result<Vec<String>, EngineError> {
        match self.store.setting(ALLOWED_ACCOUNTS)? {
            None => Ok(Vec::new()),
            Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "setting `{ALLOWED_ACCOUNTS}`: {e}"
                )))
            }),
        }
    }

    /// Exceptions saved at run time, applied whenever detection is enabled.
    pub fn stored_exceptions(
        &self,
    ) -> Result<Vec<keyward_detect::exceptions::Exception>, EngineError> {
        match self.store.setting(EXCEPTIONS)? {
            None => Ok(Vec::new()),
            Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "setting `{EXCEPTIONS}`: {e}"
                )))
            }),
        }
    }

    /// Saves an exception (audited with `audit`) and applies it from the next event on.
    /// It must name a rule of the detector's catalog (the built-in one without detection).
    pub fn add_exception(
        &mut self,
        e: keyward_detect::exceptions::Exception,
        audit: &keyward_store::AuditEntry,
    ) -> Result<(), EngineError> {
        match self.detector.as_mut() {
            Some(det) => det.add_exception(e.clone())?,
            None => Catalog::builtin().add_exception(e.clone())?,
        }
        let mut all = self.stored_exceptions()?;
        all.push(e);
        let doc = serde_json::to_string(&all)
            .map_err(|e| EngineError::Store(keyward_store::StoreError::Corrupt(e.to_string())))?;
        self.store.put_setting(EXCEPTIONS, &doc, audit)?;
        Ok(())
    }

    /// Replaces the stored approved accounts (audited with `audit`) and applies them, with
    /// `from_flags`, to detection from the next event on. Returns every account now
    /// approved.
    pub fn set_allowed_accounts(
        &mut self,
        accounts: &[String],
        from_flags: &[String],
        audit: &keyward_store::AuditEntry,
    ) -> Result<std::collections::BTreeSet<String>, EngineError> {
        let doc = serde_json::to_string(accounts)
            .map_err(|e| EngineError::Store(keyward_store::StoreError::Corrupt(e.to_string())))?;
        self.store.put_setting(ALLOWED_ACCOUNTS, &doc, audit)?;
        let all: std::collections::BTreeSet<String> =
            accounts.iter().chain(from_flags).cloned().collect();
        if let Some(det) = self.detector.as_mut() {
            let mut s = det.settings().clone();
            s.allowed_accounts = all.clone();
            det.set_settings(s);
        }
        Ok(all)
    }

    /// Stored findings matching `q`, newest first.
    pub fn findings(&self, q: &FindingQuery) -> Result<Vec<Finding>, EngineError> {
        let identity = q.identity.as_deref().map(|i| match self.resolve(i) {
            crate::Resolve::Found(found) => found.id.clone(),
            _ => i.to_owned(),
        });
        let rows = match &identity {
            // Its own and, for a role, its sessions' (a superset, checked below).
            Some(id) => self
                .store
                .findings_about(id, crate::view::sessions_prefix(id).as_deref())?,
            None => self.store.findings(q.since)?,
        };
        let mut out = Vec::new();
        for r in rows {
            if q.since.is_some_and(|s| r.last_seen < s)
                || q.min_severity.is_some_and(|m| r.severity < m as u8)
                || q.kind.is_some_and(|k| r.kind != k.as_str())
                || (!q.statuses.is_empty() && !q.statuses.iter().any(|s| s.as_str() == r.status))
            {
                continue;
            }
            if let Some(id) = &identity
                && r.identity.as_deref() != Some(id.as_str())
                && r.identity
                    .as_deref()
                    .is_none_or(|x| keyward_model::ids::principal(x) != *id)
            {
                continue;
            }
            out.push(from_row(&r)?);
        }
        Ok(out)
    }

    pub fn finding(&self, id: &str) -> Result<Option<Finding>, EngineError> {
        self.store.finding(id)?.as_ref().map(from_row).transpose()
    }

    pub fn finding_changes(&self, id: &str) -> Result<Vec<FindingChange>, EngineError> {
        Ok(self.store.finding_changes(id)?)
    }

    /// Records a verdict. A false positive on a baseline anomaly teaches that identity's
    /// baseline the hour it flagged (detection must be enabled for that), so the same
    /// behaviour does not alert again.
    pub fn set_finding_status(
        &mut self,
        id: &str,
        status: Status,
        actor: &str,
        note: Option<&str>,
        now: Millis,
    ) -> Result<Finding, EngineError> {
        if note.is_some_and(|n| n.len() > MAX_NOTE_BYTES) {
            return Err(EngineError::NoteTooLong);
        }
        let mut f = self
            .finding(id)?
            .ok_or_else(|| EngineError::NoFinding(id.to_owned()))?;
        if f.status == Status::Expected
            && status == Status::Open
            && let serde_json::Value::Object(m) = &mut f.details
        {
            // A person says this is not routine: it stays open.
            m.insert(
                keyward_detect::detector::OVERRIDDEN.into(),
                serde_json::Value::Bool(true),
            );
        }
        f.status = status;
        let mut learned = false;
        if status == Status::FalsePositive
            && let Some(det) = self.detector.as_mut()
        {
            learned = det.absorb_false_positive(&f);
        }
        if let Some(det) = self.detector.as_mut() {
            det.set_status(&f);
        }
        let mut batch = self.store.begin()?;
        batch.put_finding(&to_row(&f)?)?;
        let note = match (note, learned) {
            (Some(n), true) => Some(format!("{n} (baseline adapted)")),
            (None, true) => Some("baseline adapted".to_owned()),
            (n, false) => n.map(str::to_owned),
        };
        batch.add_finding_change(&FindingChange {
            finding_id: id.to_owned(),
            at: now,
            actor: actor.to_owned(),
            status: status.as_str().into(),
            note,
        })?;
        if let Some(det) = self.detector.as_mut() {
            for (p, b) in det.take_dirty() {
                let doc = to_json(b)?;
                batch.put_baseline(p, &doc)?;
            }
        }
        batch.commit()?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_detect::Severity;

    /// The stored document is JSON serde_json reads back to the same finding, and the same
    /// JSON value serde_json itself writes (floats, escapes and non-ASCII included).
    #[test]
    fn stored_document_round_trips() {
        let f = Finding {
            id: "kw-1".into(),
            rule_id: "kw-aws-key-multi-ip".into(),
            title: "Key used from \"several\" networks\n\u{1F511}".into(),
            severity: Severity::High,
            kind: Kind::Threat,
            identity: Some("arn:aws:iam::123456789012:user/ci".into()),
            attack: vec!["T1078.004".into()],
            events: vec!["e1".into(), "e2".into()],
            path: Vec::new(),
            first_seen: -1,
            last_seen: 1_700_000_000_000,
            count: u64::MAX,
            status: Status::Open,
            summary: "ünïcode \\ back\tslash".into(),
            details: serde_json::json!({
                "score": 7.25, "tiny": 1e-300, "huge": 1.7976931348623157e308,
                "third": 1.0 / 3.0, "neg": -0.0, "n": -12, "big": u64::MAX,
                "nested": [null, true, {"k": "\u{0001}"}],
            }),
        };
        let row = to_row(&f).unwrap();
        assert_eq!(from_row(&row).unwrap(), f);
        let ours: serde_json::Value = serde_json::from_str(&row.doc).unwrap();
        let theirs = serde_json::to_value(&f).unwrap();
        assert_eq!(ours, theirs);
    }
}
