//! Retirement judged whatever order the context and the events come in.
//!
//! `kw-aws-used-after-retirement` reports an event whose principal (the role of a
//! session, the user), actor or credential is marked retired: a `keyward:retired` tag or
//! label, which an IAM or Kubernetes snapshot brings. An owner's departure alone is not
//! such a mark: the workloads of someone who left go on running, and a use is then no
//! threat in itself; the identity is an orphan (posture), and a departure raises what a
//! dormant identity's return is graded ([`Lookup::retired_now`]). The mark may be taken
//! in before or after the events it judges: after them in path order (`AWSLogs/` sorts
//! before `aws/`), and in any order through the bus, where each worker commits its
//! partitions as it goes.
//!
//! So events are judged against the retired identities as of the last re-judgement
//! ([`Retired`], kept in the store), and a re-judgement — after every ingest and whenever
//! a worker's stream empties — works the set out again from the inventory and judges once
//! more the stored events that name an identity new to it. An event is counted once:
//! live, when an identity it names was retired at the last re-judgement, or at the first
//! re-judgement that finds one retired (the events naming an identity retired before were
//! judged with it, so they are left). The findings are then those of a run that had all
//! the context first, in any order of arrival.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use keyward_detect::checks::Check;
use keyward_detect::{Finding, Lookup};
use keyward_graph::Inventory;
use keyward_model::Event;
use keyward_model::time::Millis;
use keyward_store::Store;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

/// The detector state holding [`Retired`].
const RETIRED: &str = "retired";
const RULE: &str = "kw-aws-used-after-retirement";

/// The retired identities events are judged against.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Retired {
    /// Retired at the last re-judgement (canonical id), with why.
    pub now: BTreeMap<String, String>,
    /// Every identity ever in `now`: the stored events naming one were judged with it.
    pub ever: BTreeSet<String>,
}

impl Retired {
    /// What the store holds; `None` in a store no re-judgement ran on.
    fn stored(store: &dyn Store) -> Result<Option<Self>, EngineError> {
        store
            .detector_state(RETIRED)?
            .map(|doc| {
                serde_json::from_str(&doc).map_err(|e| {
                    EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                        "detector state `{RETIRED}`: {e}"
                    )))
                })
            })
            .transpose()
    }

    /// What an ingest judges its events by.
    pub(crate) fn load(store: &dyn Store) -> Result<BTreeMap<String, String>, EngineError> {
        Ok(Self::stored(store)?.map(|r| r.now).unwrap_or_default())
    }
}

/// The detector's lookups while events are taken in: retirement as of the last
/// re-judgement, and as the inventory and graph say this moment for a check that grades
/// by it ([`Lookup::retired_now`], cached per run).
pub(crate) struct JudgedLookup<'a> {
    pub retired: &'a BTreeMap<String, String>,
    pub inventory: &'a Inventory,
    pub graph: &'a keyward_graph::Graph,
    pub cache: &'a RefCell<FxHashMap<String, Option<String>>>,
}

impl Lookup for JudgedLookup<'_> {
    fn any_retired(&self) -> bool {
        !self.retired.is_empty()
            || self.inventory.any_marked_retired()
            || self.graph.any_departed_person()
    }

    fn retired(&self, identity: &str) -> Option<String> {
        self.retired.get(identity).cloned()
    }

    fn retired_now(&self, identity: &str) -> Option<String> {
        if let Some(hit) = self.cache.borrow().get(identity) {
            return hit.clone();
        }
        let answer = self.inventory.get(identity).and_then(|i| {
            let node = self.graph.find(identity);
            why_retired(
                i,
                node.map(|n| keyward_graph::analysis::ownership(self.graph, n)),
            )
        });
        self.cache
            .borrow_mut()
            .insert(identity.to_owned(), answer.clone());
        answer
    }

    fn reported_last_use(&self, identity: &str) -> Option<Millis> {
        crate::detection::reported_last_use(self.inventory, identity)
    }
}

/// Why `i` is retired, its owners found as `owners`: marked so, or every person found to
/// own it departed.
fn why_retired(
    i: &keyward_model::Identity,
    owners: Option<keyward_graph::analysis::Ownership>,
) -> Option<String> {
    if keyward_graph::inventory::marked_retired(i) {
        return Some(format!("{} is marked retired", i.id));
    }
    let o = owners?;
    o.all_departed().then(|| {
        let who: Vec<&str> = o.people.iter().map(|p| p.owner.as_str()).collect();
        format!("its owner {} departed", who.join(", "))
    })
}

/// The identities an event names that retirement is judged on: its credential, its actor
/// and the actor's principal.
fn named(e: &Event<'_>) -> [Option<String>; 3] {
    let actor = e.actor.as_deref();
    [
        e.credential.as_deref().map(str::to_owned),
        actor.map(str::to_owned),
        actor.map(|a| keyward_model::ids::principal(a).into_owned()),
    ]
}

/// The identities marked retired now, with why.
fn retired_now(inventory: &Inventory) -> BTreeMap<String, String> {
    if !inventory.any_marked_retired() {
        return BTreeMap::new();
    }
    inventory
        .iter()
        .filter_map(|i| why_retired(i, None).map(|why| (i.id.clone(), why)))
        .collect()
}

impl Engine {
    /// Works out the retired identities from the inventory, and judges the
    /// stored events naming those new to the set by `kw-aws-used-after-retirement`
    /// (module docs); the findings it opened or extended. Runs with detection on, after
    /// every ingest that takes events in (a gateway's go to the bus), under the writer
    /// lock the ingest holds.
    pub(crate) fn rejudge_retirement(&mut self) -> Result<Vec<Finding>, EngineError> {
        if self.forward.is_some() {
            return Ok(Vec::new());
        }
        let Some(det) = self.detector.as_mut() else {
            return Ok(Vec::new());
        };
        let store = self.store.as_ref();
        let now = retired_now(&self.inventory);
        let old = match Retired::stored(store)? {
            Some(old) if old.now == now => return Ok(Vec::new()),
            Some(old) => old,
            // A store whose events were judged by the retirement known as each came (before
            // re-judgement): what it reported stands, and judging starts from here.
            None if store.findings(None)?.iter().any(|f| f.rule_id == RULE) => Retired {
                now: BTreeMap::new(),
                ever: now.keys().cloned().collect(),
            },
            None => Retired::default(),
        };
        let fresh: BTreeSet<&str> = now
            .keys()
            .map(String::as_str)
            .filter(|id| !old.ever.contains(*id))
            .collect();
        // The actors whose stored events may name one: itself, a role's sessions, a key's
        // holder; but not those whose every event names an identity retired before (a
        // new session of a role retired earlier).
        let actors: Vec<&str> = self
            .inventory
            .iter()
            .filter(|i| {
                let principal = keyward_model::ids::principal(&i.id);
                !old.ever.contains(&i.id)
                    && !old.ever.contains(principal.as_ref())
                    && (fresh.contains(i.id.as_str())
                        || fresh.contains(principal.as_ref())
                        || i.credentials.iter().any(|c| fresh.contains(c.id.as_str())))
            })
            .map(|i| i.id.as_str())
            .collect();
        let mut events = Vec::new();
        for a in actors {
            events.extend(store.recent_events(a, usize::MAX)?);
        }
        // In time order, as a run that had the context first judged them.
        events.sort_by(|a, b| {
            a.time
                .cmp(&b.time)
                .then_with(|| a.native_id.cmp(&b.native_id))
        });
        let cache = RefCell::default();
        let judged = JudgedLookup {
            retired: &now,
            inventory: &self.inventory,
            graph: &self.topology.graph,
            cache: &cache,
        };
        for e in &events {
            if named(e).iter().flatten().any(|id| old.ever.contains(id)) {
                continue;
            }
            det.rejudge(|c| matches!(c, Check::UsedAfterRetirement), e, &judged);
        }
        let ever = old
            .ever
            .iter()
            .cloned()
            .chain(now.keys().cloned())
            .collect();
        let next = Retired { now, ever };
        let doc = serde_json::to_string(&next)
            .map_err(|e| EngineError::Store(keyward_store::StoreError::Corrupt(e.to_string())))?;
        let mut batch = self.store.begin()?;
        let found = crate::detection::write(&mut *batch, det, &self.topology.graph)?;
        batch.put_detector_state(RETIRED, &doc)?;
        batch.commit()?;
        Ok(found)
    }

    /// An ingest's report, with what re-judging retirement after it found.
    pub(crate) fn rejudged(
        &mut self,
        mut report: crate::IngestReport,
    ) -> Result<crate::IngestReport, EngineError> {
        report.findings.extend(self.rejudge_retirement()?);
        Ok(report)
    }
}
