//! Group commit: each issuance waits for the commit of the batch it joined; a batch is
//! everything that arrived while the one before it was committing (one transaction on the
//! engine thread for all of them, `Engine::record_leases`). Committed leases are then taken
//! into the inventory and graph every [`PROJECT_EVERY`], all that gathered meanwhile in
//! inputs of at most [`PROJECT_CHUNK`] (`Engine::project_leases`): the graph follows within
//! a second, thousands of issuances a second cost a few ingests, and a commit waits behind
//! one chunk at most.
//!
//! Expiry ([`Ledger::expire_due`]): every active lease committed is scheduled by its expiry,
//! so an upkeep reads the leases that are due, not every active one. The store's active
//! leases are added at the first upkeep and every [`RESEED_EVERY`] after it: those an
//! earlier process or another `serve` on the same store committed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use keyward_engine::broker::LeaseWrite;
use keyward_model::lease::{LeaseRecord, LeaseState};
use keyward_model::time::Millis;
use keyward_store::AuditEntry;
use tokio::sync::{mpsc, oneshot};

use crate::EngineHandle;
use crate::error::ApiError;

/// The largest batch: a bound on one transaction's size.
const MAX_BATCH: usize = 4_096;
/// Issuances waiting at once; more wait for room (backpressure on the callers).
const QUEUE: usize = 65_536;
/// How often committed leases are taken into the graph.
pub(crate) const PROJECT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// The most leases one turn on the engine thread takes into the graph (a few ms).
const PROJECT_CHUNK: usize = 256;

struct Pending {
    write: LeaseWrite,
    done: oneshot::Sender<Result<(), String>>,
}

/// How often the expiry schedule takes in every active lease the store holds.
const RESEED_EVERY: Millis = 10 * 60 * 1000;

/// The queue to the lease committer, and the expiry schedule.
#[derive(Clone)]
pub(crate) struct Ledger {
    tx: mpsc::Sender<Pending>,
    engine: EngineHandle,
    expiries: Arc<Mutex<Expiries>>,
}

/// Active leases by expiry, soonest first. A renewal schedules the lease again (each
/// write of an active lease does); an entry whose lease was renewed or revoked since is
/// dropped when it comes due.
#[derive(Debug, Default)]
struct Expiries {
    /// When the store's active leases were last taken in.
    seeded_at: Option<Millis>,
    due: BinaryHeap<Reverse<(Millis, String)>>,
}

impl Expiries {
    fn schedule<'a>(&mut self, leases: impl IntoIterator<Item = &'a LeaseRecord>) {
        for l in leases {
            if l.state == LeaseState::Active {
                self.due.push(Reverse((l.expires_at, l.lease_id.clone())));
            }
        }
    }

    fn seeded(&self, now: Millis) -> bool {
        self.seeded_at
            .is_some_and(|at| now.saturating_sub(at) < RESEED_EVERY)
    }

    /// The store's active leases, with what is scheduled already, each expiry of each lease
    /// once (taking them in again does not grow the schedule).
    fn seed(&mut self, active: &[LeaseRecord], now: Millis) {
        let mut all: Vec<(Millis, String)> = self.due.drain().map(|Reverse(e)| e).collect();
        all.extend(
            active
                .iter()
                .filter(|l| l.state == LeaseState::Active)
                .map(|l| (l.expires_at, l.lease_id.clone())),
        );
        all.sort_unstable();
        all.dedup();
        self.due = all.into_iter().map(Reverse).collect();
        self.seeded_at = Some(now);
    }

    /// Leases to look at again at the next upkeep (reading or expiring them failed).
    fn again(&mut self, ids: Vec<String>, now: Millis) {
        self.due
            .extend(ids.into_iter().map(|id| Reverse((now, id))));
    }

    /// The leases due by `now`, each once.
    fn take_due(&mut self, now: Millis) -> Vec<String> {
        let mut ids = Vec::new();
        while self.due.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((_, id))) = self.due.pop() {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl Ledger {
    /// Starts the committer on the current runtime.
    pub(crate) fn start(engine: EngineHandle) -> Ledger {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        let expiries = Arc::new(Mutex::new(Expiries::default()));
        let scheduled = Arc::clone(&expiries);
        let ledger_engine = engine.clone();
        let committed = Arc::new(Mutex::new(Vec::<LeaseRecord>::new()));
        let to_project = Arc::clone(&committed);
        let projector = engine.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut buf, MAX_BATCH).await > 0 {
                let (writes, dones): (Vec<_>, Vec<_>) =
                    buf.drain(..).map(|p| (p.write, p.done)).unzip();
                let leases: Vec<LeaseRecord> = writes.iter().map(|w| w.lease.clone()).collect();
                let result = engine
                    .write(move |e| {
                        e.record_leases(&writes, crate::now())
                            .map_err(|e| e.to_string())
                    })
                    .await;
                let result = match result {
                    Ok(r) => r,
                    Err(e) => Err(e.message),
                };
                if result.is_ok() {
                    if let Ok(mut x) = scheduled.lock() {
                        x.schedule(&leases);
                    }
                    if let Ok(mut c) = committed.lock() {
                        c.extend(leases);
                    }
                }
                for d in dones {
                    let _ = d.send(result.clone());
                }
            }
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROJECT_EVERY);
            loop {
                tick.tick().await;
                let leases = match to_project.lock() {
                    Ok(mut c) if !c.is_empty() => std::mem::take(&mut *c),
                    Ok(_) | Err(_) => continue,
                };
                // In chunks, each its own turn on the engine thread: the commits waiting
                // behind a projection wait for one chunk, not for all of them.
                let mut rest = leases;
                while !rest.is_empty() {
                    let later = rest.split_off(rest.len().min(PROJECT_CHUNK));
                    let chunk = std::mem::replace(&mut rest, later);
                    let n = chunk.len();
                    let retry = chunk.clone();
                    let r = projector
                        .write(move |e| e.project_leases(&chunk, crate::now()).map(|_| ()))
                        .await;
                    let failed = match r {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(e) => Some(e.message),
                    };
                    if let Some(e) = failed {
                        // They are stored: tried again at the next tick, before what came
                        // since.
                        eprintln!("keyward: {n} leases not yet taken into the graph: {e}");
                        if let Ok(mut c) = to_project.lock() {
                            let mut again = retry;
                            again.append(&mut rest);
                            let since = std::mem::replace(&mut *c, again);
                            c.extend(since);
                        }
                        break;
                    }
                }
            }
        });
        Ledger {
            tx,
            engine: ledger_engine,
            expiries,
        }
    }

    /// Records the active leases past their expiry as expired (their identities leave the
    /// inventory); returns how many. Reads only the leases due, and every active one at
    /// the first upkeep and each [`RESEED_EVERY`].
    pub(crate) async fn expire_due(&self, now: Millis) -> Result<usize, ApiError> {
        if !self.expiries.lock().is_ok_and(|x| x.seeded(now)) {
            let active = self
                .engine
                .call(|e| e.active_leases(usize::MAX))
                .await?
                .map_err(ApiError::internal)?;
            if let Ok(mut x) = self.expiries.lock() {
                x.seed(&active, now);
            }
        }
        let ids = match self.expiries.lock() {
            Ok(mut x) => x.take_due(now),
            Err(_) => return Err(ApiError::internal("the expiry schedule")),
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let asked = ids.clone();
        let read = self
            .engine
            .call(move |e| {
                asked
                    .iter()
                    .filter_map(|id| e.lease(id).transpose())
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
        let leases = match read {
            Ok(Ok(leases)) => leases,
            Ok(Err(e)) => return Err(self.again(ids, now, ApiError::internal(e))),
            Err(e) => return Err(self.again(ids, now, e)),
        };
        let writes: Vec<LeaseWrite> = leases
            .into_iter()
            .filter_map(|mut l| {
                keyward_broker::lease::expire(&mut l, now).then(|| LeaseWrite {
                    audit: AuditEntry {
                        at: now,
                        actor: "keyward:broker".into(),
                        action: "broker.expire".into(),
                        target: Some(l.identity.clone()),
                        detail: Some(format!("lease {} expired", l.lease_id)),
                        before: None,
                        after: None,
                    },
                    lease: l,
                })
            })
            .collect();
        let n = writes.len();
        if n == 0 {
            return Ok(0);
        }
        if let Err(e) = self.commit(writes).await {
            return Err(self.again(ids, now, e));
        }
        Ok(n)
    }

    /// Puts leases back in the schedule, due at the next upkeep; returns `e`.
    fn again(&self, ids: Vec<String>, now: Millis, e: ApiError) -> ApiError {
        if let Ok(mut x) = self.expiries.lock() {
            x.again(ids, now);
        }
        e
    }

    /// Commits leases (with their audit entries); returns once they are stored.
    pub(crate) async fn commit(&self, writes: Vec<LeaseWrite>) -> Result<(), ApiError> {
        let mut waits = Vec::with_capacity(writes.len());
        for write in writes {
            let (done, wait) = oneshot::channel();
            self.tx
                .send(Pending { write, done })
                .await
                .map_err(|_| ApiError::unavailable())?;
            waits.push(wait);
        }
        for w in waits {
            w.await
                .map_err(|_| ApiError::unavailable())?
                .map_err(|e| ApiError::internal(format!("the lease was not stored: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lease(id: &str, expires_at: Millis) -> LeaseRecord {
        let sa = "k8s:prod/system:serviceaccount:pay:api";
        serde_json::from_value(serde_json::json!({
            "lease_id": id, "kind": "jwt", "state": "active",
            "workload": sa, "workload_kind": "service_account",
            "workload_platform": "kubernetes", "workload_name": "api", "proof": "kubernetes",
            "issuer": "https://k8s", "subject": "system:serviceaccount:pay:api",
            "created_by": sa, "target": "vault",
            "identity": format!("keyward:lease/{id}"), "reference": id,
            "issued_at": 1_000, "expires_at": expires_at, "max_expires_at": 3_601_000
        }))
        .unwrap()
    }

    fn write(l: &LeaseRecord) -> LeaseWrite {
        LeaseWrite {
            lease: l.clone(),
            audit: AuditEntry {
                at: l.issued_at,
                actor: "test".into(),
                action: "broker.issue.jwt".into(),
                target: Some(l.identity.clone()),
                detail: None,
                before: None,
                after: None,
            },
        }
    }

    /// A lease committed straight to the store, past the ledger (another process).
    async fn stored_elsewhere(engine: &EngineHandle, l: LeaseRecord) {
        let w = vec![write(&l)];
        engine
            .write(move |e| e.record_leases(&w, 1_000))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn upkeep_expires_the_leases_due_once_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let engine = EngineHandle::spawn(move || keyward_engine::Engine::open(&data)).unwrap();
        // Stored by an earlier process: the first upkeep finds it in the store.
        stored_elsewhere(&engine, lease("kwl-0", 5_000)).await;
        let ledger = Ledger::start(engine.clone());
        let ids = ["kwl-1", "kwl-2", "kwl-3", "kwl-4"];
        let [soon, later, renewed, revoked] = [10_000, 60_000, 10_000, 10_000]
            .iter()
            .zip(ids)
            .map(|(at, id)| lease(id, *at))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let all = [&soon, &later, &renewed, &revoked].map(write).to_vec();
        ledger.commit(all).await.unwrap();
        let mut r = renewed.clone();
        (r.expires_at, r.renewals) = (90_000, 1);
        let mut v = revoked.clone();
        (v.state, v.revoked_at) = (LeaseState::Revoked, Some(2_000));
        ledger.commit(vec![write(&r), write(&v)]).await.unwrap();

        assert_eq!(ledger.expire_due(2_000).await.unwrap(), 0);
        assert_eq!(
            ledger.expire_due(10_000).await.unwrap(),
            2,
            "kwl-0 and kwl-1"
        );
        assert_eq!(ledger.expire_due(10_000).await.unwrap(), 0, "each once");
        let states = || {
            let engine = engine.clone();
            async move {
                engine
                    .call(|e| {
                        ["kwl-0", "kwl-1", "kwl-2", "kwl-3", "kwl-4"]
                            .map(|id| e.lease(id).unwrap().unwrap().state)
                    })
                    .await
                    .unwrap()
            }
        };
        use LeaseState::{Active, Expired, Revoked};
        assert_eq!(states().await, [Expired, Expired, Active, Active, Revoked]);
        assert_eq!(ledger.expire_due(60_000).await.unwrap(), 1, "kwl-2");
        assert_eq!(
            ledger.expire_due(89_999).await.unwrap(),
            0,
            "kwl-3 was renewed"
        );
        assert_eq!(ledger.expire_due(90_000).await.unwrap(), 1);
        assert_eq!(
            states().await,
            [Expired, Expired, Expired, Expired, Revoked]
        );
        let audited = engine
            .call(|e| e.audit_log(100).unwrap())
            .await
            .unwrap()
            .iter()
            .filter(|a| a.entry.action == "broker.expire")
            .count();
        assert_eq!(audited, 4);
        // Another process's lease, committed past this ledger: found when the store is
        // read again, and the schedule does not grow by what it held already.
        stored_elsewhere(&engine, lease("kwl-5", 100_000)).await;
        ledger
            .commit(vec![write(&lease("kwl-6", 30 * 60 * 1000))])
            .await
            .unwrap();
        assert_eq!(ledger.expire_due(200_000).await.unwrap(), 0, "not read yet");
        let reseed = 2_000 + RESEED_EVERY;
        assert_eq!(ledger.expire_due(reseed).await.unwrap(), 1, "kwl-5");
        assert_eq!(ledger.expiries.lock().unwrap().due.len(), 1, "kwl-6, once");
        assert_eq!(ledger.expire_due(30 * 60 * 1000).await.unwrap(), 1);
    }
}
