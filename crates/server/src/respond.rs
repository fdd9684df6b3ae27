//! Running response plans from the server (the API, the dashboard's buttons, automatic
//! response): the executor runs on a blocking thread with a runtime of its own, so each
//! step's record reaches the store before the next platform call, while the server's own
//! runtime keeps answering.

use keyward_engine::respond::step_audit;
use keyward_model::time::Millis;
use keyward_respond::Plan;
use keyward_respond::execute::{Connectors, ExecuteError, Phase, Recorder};

use crate::error::ApiError;
use crate::state::{EngineHandle, now};

/// The identity plan `id` acts on, as the policies see it (with its risk tier and
/// environment in the situation); `None` when there is no such plan.
pub(crate) async fn plan_target(
    engine: &EngineHandle,
    id: &str,
) -> Result<Option<(keyward_policy::Resource, keyward_policy::Situation)>, ApiError> {
    let id = id.to_owned();
    engine
        .call(move |e| {
            let Some(plan) = e.response_plan(&id)? else {
                return Ok(None);
            };
            let mut situation = keyward_policy::Situation::default();
            let resource = e.policy_resource(&plan.identity, &mut situation)?;
            Ok::<_, keyward_engine::EngineError>(Some((resource, situation)))
        })
        .await?
        .map_err(ApiError::internal)
}

/// Records through the engine thread.
struct Remote {
    engine: EngineHandle,
    actor: String,
}

impl Recorder for Remote {
    fn evidence(&mut self, plan: &Plan, doc: &serde_json::Value) -> Result<String, String> {
        let (plan, doc, actor) = (plan.clone(), doc.clone(), self.actor.clone());
        self.engine
            .blocking_write(move |e| e.put_response_evidence(&plan, &doc, now(), &actor))
            .map_err(|e| e.message)?
            .map_err(|e| e.to_string())
    }

    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String> {
        let (plan, actor) = (plan.clone(), self.actor.clone());
        self.engine
            .blocking_write(move |e| {
                let audit = step_audit(&plan, n, phase, &actor, now());
                e.save_plan(&plan, audit)
            })
            .map_err(|e| e.message)?
            .map_err(|e| e.to_string())
    }
}

/// What running a plan came to: the plan as it now stands, and the error that stopped it.
pub struct Ran {
    pub plan: Plan,
    pub error: Option<String>,
}

/// Executes (or undoes) stored plan `id` as `actor`. `None` when there is no such plan.
pub async fn run(
    engine: &EngineHandle,
    id: String,
    actor: String,
    undo: bool,
) -> Result<Option<Ran>, ApiError> {
    let Some(plan) = engine
        .call(move |e| e.response_plan(&id))
        .await?
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    if plan.steps.iter().any(|s| s.action.grants_access()) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "plan {} applies a time-bound access grant: `/api/access/grants/{{id}}/apply|revoke` or `keyward access apply|revoke` run it (run bare, the access would never expire)",
                plan.id
            ),
        ));
    }
    run_plan(engine, plan, actor, undo).await.map(Some)
}

/// Executes (or undoes) `plan` through the connectors from the environment as `actor`,
/// every step recorded through the engine thread.
pub(crate) async fn run_plan(
    engine: &EngineHandle,
    mut plan: Plan,
    actor: String,
    undo: bool,
) -> Result<Ran, ApiError> {
    let engine = engine.clone();
    let kube_context = std::env::var("KEYWARD_KUBE_CONTEXT").ok();
    tokio::task::spawn_blocking(move || -> Result<Ran, ApiError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ApiError::internal)?;
        let mut rec = Remote { engine, actor };
        let clock: &dyn Fn() -> Millis = &now;
        let result = rt.block_on(async {
            let c = Connectors::from_env(kube_context.as_deref()).await;
            if undo {
                keyward_respond::execute::undo(&mut plan, &c, &mut rec, clock).await
            } else {
                keyward_respond::execute::execute(&mut plan, &c, &mut rec, clock).await
            }
        });
        match result {
            Ok(()) => Ok(Ran { plan, error: None }),
            Err(e @ (ExecuteError::Step { .. } | ExecuteError::Connector(_))) => Ok(Ran {
                plan,
                error: Some(e.to_string()),
            }),
            Err(e @ (ExecuteError::NotExecutable(..) | ExecuteError::NotUndoable(..))) => Err(
                ApiError::new(axum::http::StatusCode::CONFLICT, e.to_string()),
            ),
            Err(e) => Err(ApiError::internal(e)),
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// Automatic response after an ingest: plans for the findings the response policy matches
/// (`Config::response_policy`), the `auto` ones executed at once — in the background, so
/// the ingest answer does not wait for the platforms. Every plan and step is audited.
/// The playbook scheduler, when one runs, is told too (`Config::ingested`).
pub fn after_ingest(state: &crate::AppState, findings: &[keyward_detect::Finding]) {
    if let Some(hook) = &state.config.ingested {
        (hook.0)();
    }
    let Some(policy) = state.config.response_policy.clone() else {
        return;
    };
    if findings.is_empty() {
        return;
    }
    let findings = findings.to_vec();
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let made = engine
            .call(move |e| e.auto_plans(&policy, &findings, now()))
            .await;
        let plans = match made {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                eprintln!("keyward: automatic response: {e}");
                return;
            }
            Err(e) => {
                eprintln!("keyward: automatic response: {}", e.message);
                return;
            }
        };
        for auto in plans {
            if auto.mode != keyward_respond::policy::Mode::Auto {
                continue;
            }
            let actor = format!("auto:{}", auto.policy);
            match run(&engine, auto.plan.id.clone(), actor, false).await {
                Ok(Some(Ran {
                    error: Some(e),
                    plan,
                })) => {
                    eprintln!("keyward: automatic response plan {}: {e}", plan.id)
                }
                Ok(_) => {}
                Err(e) => eprintln!(
                    "keyward: automatic response plan {}: {}",
                    auto.plan.id, e.message
                ),
            }
        }
    });
}
