//! Platform calls on one thread, the store's on another. The PostgreSQL store's client
//! blocks on a runtime of its own, and a runtime cannot start inside another one: a
//! recorder that wrote to the store from inside the connectors' async code would panic
//! there. So the async work runs on a thread of its own ([`with_engine`]), and each store
//! call it makes comes back through a [`Relay`] to the thread that owns the engine,
//! outside any runtime, and is answered before the work goes on (a step is recorded
//! before the next platform call, as `respond::execute` requires).

use std::sync::mpsc;

use keyward_engine::Engine;
use keyward_respond::Plan;
use keyward_respond::execute::{Connectors, ExecuteError, Phase, Recorder};

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// A way back to the engine's thread.
#[derive(Clone)]
pub struct Relay {
    tx: mpsc::Sender<Job>,
}

impl Relay {
    /// Runs `f` on the engine's thread and waits for its answer.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Result<R, String> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.tx
            .send(Box::new(move |e| {
                let _ = answer.send(f(e));
            }))
            .map_err(|_| "the engine's thread has gone".to_owned())?;
        answered
            .recv()
            .map_err(|_| "the engine's thread dropped a call".to_owned())
    }
}

/// Runs `work` on a thread of its own, handing it a [`Relay`] to `engine`, and carries out
/// the relay's calls here until the work ends (with every copy of its relay). An error
/// only when the thread cannot be started.
pub fn with_engine<T: Send>(
    engine: &mut Engine,
    work: impl FnOnce(Relay) -> T + Send,
) -> std::io::Result<T> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("keyward-connectors".into())
            .stack_size(keyward_normalize::depth::STACK)
            .spawn_scoped(s, move || work(Relay { tx }))?;
        for job in rx {
            job(engine);
        }
        Ok(worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

/// Records a plan's steps through a [`Relay`], as `engine::respond::PlanRecorder` does.
pub struct RelayRecorder {
    pub relay: Relay,
    pub actor: String,
}

impl Recorder for RelayRecorder {
    fn evidence(&mut self, plan: &Plan, doc: &serde_json::Value) -> Result<String, String> {
        let (plan, doc, actor) = (plan.clone(), doc.clone(), self.actor.clone());
        self.relay.call(move |engine| {
            keyward_engine::respond::PlanRecorder {
                engine,
                actor,
                clock: crate::output::now_ms,
            }
            .evidence(&plan, &doc)
        })?
    }

    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String> {
        let (plan, actor) = (plan.clone(), self.actor.clone());
        self.relay.call(move |engine| {
            keyward_engine::respond::PlanRecorder {
                engine,
                actor,
                clock: crate::output::now_ms,
            }
            .step(&plan, n, phase)
        })?
    }
}

/// Executes (or undoes) `plan` through `connectors` on `rt`, on a thread of its own; each
/// step is recorded through `engine` here, as `actor`.
pub fn run_plan(
    engine: &mut Engine,
    rt: &tokio::runtime::Runtime,
    connectors: &Connectors,
    plan: &mut Plan,
    actor: &str,
    undo: bool,
) -> Result<(), ExecuteError> {
    let ran = with_engine(engine, |relay| {
        let mut rec = RelayRecorder {
            relay,
            actor: actor.to_owned(),
        };
        let clock = crate::output::now_ms;
        rt.block_on(async {
            if undo {
                keyward_respond::execute::undo(plan, connectors, &mut rec, &clock).await
            } else {
                keyward_respond::execute::execute(plan, connectors, &mut rec, &clock).await
            }
        })
    });
    ran.unwrap_or_else(|e| {
        Err(ExecuteError::Record(format!(
            "starting the connectors' thread: {e}"
        )))
    })
}
