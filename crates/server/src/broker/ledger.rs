//! Group commit: each issuance waits for the commit of the batch it joined; a batch is
//! everything that arrived while the one before it was committing (one transaction on the
//! engine thread for all of them, `Engine::record_leases`).

use keyward_engine::broker::LeaseWrite;
use tokio::sync::{mpsc, oneshot};

use crate::EngineHandle;
use crate::error::ApiError;

/// The largest batch: a bound on one transaction's size.
const MAX_BATCH: usize = 4_096;
/// Issuances waiting at once; more wait for room (backpressure on the callers).
const QUEUE: usize = 65_536;

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
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut buf, MAX_BATCH).await > 0 {
                let (writes, dones): (Vec<_>, Vec<_>) =
                    buf.drain(..).map(|p| (p.write, p.done)).unzip();
                let result = engine
                    .write(move |e| {
                        e.record_leases(&writes, crate::now())
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
                    .await;
                let result = match result {
                    Ok(r) => r,
                    Err(e) => Err(e.message),
                };
                for d in dones {
                    let _ = d.send(result.clone());
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
