//! Group commit: each issuance waits for the commit of the batch it joined; a batch is
//! everything that arrived while the one before it was committing (one transaction on the
//! engine thread for all of them, `Engine::record_leases`). Committed leases are then taken
//! into the inventory and graph every [`PROJECT_EVERY`], all that gathered meanwhile in
//! inputs of at most [`PROJECT_CHUNK`] (`Engine::project_leases`): the graph follows within
//! a second, thousands of issuances a second cost a few ingests, and a commit waits behind
//! one chunk at most.

use keyward_engine::broker::LeaseWrite;
use keyward_model::lease::LeaseRecord;
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

/// The queue to the lease committer.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    tx: mpsc::Sender<Pending>,
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
        let committed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<LeaseRecord>::new()));
        let to_project = std::sync::Arc::clone(&committed);
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
                if result.is_ok()
                    && let Ok(mut c) = committed.lock()
                {
                    c.extend(leases);
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
        Ledger { tx }
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
