//! The server's state: the engine on a thread of its own, the configuration and its
//! limits, the policies and the metrics (dashboard sessions are in the store).

use std::sync::Arc;

use keyward_engine::Engine;
use keyward_model::time::Millis;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::{ConnLimits, github};

/// Largest request body accepted (compressed size): 32 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 32 << 20;

/// The largest form or JSON body of a route that is not an ingest route.
pub const SMALL_BODY_LIMIT: usize = 64 << 10;

/// A job for the engine thread.
type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// The engine, owned by its own thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: std::sync::mpsc::Sender<Job>,
}

/// Why the engine thread did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The thread could not be created.
    #[error("{0}")]
    Thread(#[source] std::io::Error),
    /// The opener failed: its message, for a person to read.
    #[error("{0}")]
    Open(String),
    /// The thread ended before the opener answered.
    #[error("the engine thread stopped while opening")]
    Stopped,
}

impl EngineHandle {
    /// Starts the engine thread. `open` runs on it (the engine never leaves it); its error,
    /// whatever its type, is returned written out (with its causes, `{:#}`) as
    /// [`SpawnError::Open`].
    pub fn spawn<F, E>(open: F) -> Result<Self, SpawnError>
    where
        F: FnOnce() -> Result<Engine, E> + Send + 'static,
        E: std::fmt::Display,
    {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), SpawnError>>();
        std::thread::Builder::new()
            .name("keyward-engine".into())
            // The engine parses records nested up to `normalize::MAX_NESTING` deep.
            .stack_size(keyward_normalize::depth::STACK)
            .spawn(move || {
                let mut engine = match open() {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(SpawnError::Open(format!("{e:#}"))));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    // Another process (`keyward ingest`, a second server) may have written
                    // since the last job: answer from what the store holds now.
                    if let Err(e) = engine.refresh() {
                        eprintln!("keyward: reloading from the store failed: {e}");
                    }
                    job(&mut engine);
                }
            })
            .map_err(SpawnError::Thread)?;
        ready_rx.recv().map_err(|_| SpawnError::Stopped)??;
        Ok(EngineHandle { tx })
    }

    /// Runs `f`, which writes, on the engine thread holding the store's writer lock (other
    /// processes on the same data directory write one at a time), and waits for its answer.
    pub async fn write<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine) -> R + Send + 'static,
    {
        self.call(move |e| {
            let _writing = e.write_lock()?;
            Ok::<R, keyward_engine::EngineError>(f(e))
        })
        .await?
        .map_err(ApiError::internal)
    }

    /// [`EngineHandle::write`] for a thread that may block (a plan's executor, which runs
    /// on a blocking thread with a runtime of its own and records every step before the
    /// next platform call).
    pub fn blocking_write<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine) -> R + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx
            .send(Box::new(move |e: &mut Engine| {
                let r = e.write_lock().map(|_writing| f(e));
                let _ = tx.send(r);
            }))
            .map_err(|_| ApiError::unavailable())?;
        rx.recv()
            .map_err(|_| ApiError::unavailable())?
            .map_err(ApiError::internal)
    }

    /// Runs `f` on the engine thread and waits for its answer.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |e: &mut Engine| {
                let _ = tx.send(f(e));
            }))
            .map_err(|_| ApiError::unavailable())?;
        rx.await.map_err(|_| ApiError::unavailable())
    }
}

/// Configuration of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    pub body_limit: usize,
    /// Days without use before an identity counts as stale.
    pub stale_after_days: i64,
    /// The GitHub webhook's secret; without it GitHub deliveries are refused.
    pub github_secret: Option<github::WebhookSecret>,
    /// Served over TLS: session cookies are marked `Secure`.
    pub tls: bool,
    /// Approved foreign accounts given on the command line (`--allow-account`).
    pub allowed_accounts_flags: Vec<String>,
    /// Automatic response (`--response-policy`): plans for matching findings, executed
    /// at once where the policy says `auto`.
    pub response_policy: Option<Arc<keyward_respond::policy::PolicyFile>>,
    /// Connection limits of the listener.
    pub conn: ConnLimits,
    /// Limits on what an ingest body may cost.
    pub ingest: IngestLimits,
    /// The anchor file checkpoints are appended to (`--audit-anchor`); `GET
    /// /api/audit/verify` checks the chain against it.
    pub audit_anchor: Option<std::path::PathBuf>,
    /// Told after every committed ingest (the playbook scheduler evaluates its event,
    /// finding and inventory triggers at once instead of at its next period).
    pub ingested: Option<IngestHook>,
    /// `/mcp` offers its triage and plan tools too (`--mcp-write-tools`), each call decided
    /// by the policies for the request's token.
    pub mcp_write_tools: bool,
}

/// A function called after every committed ingest; it must return at once (it runs on the
/// request's task).
#[derive(Clone)]
pub struct IngestHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for IngestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestHook")
    }
}

/// What one ingest request may cost: decompressed size, expansion ratio, time to send the
/// body, and how many bodies are decoded at once (the engine takes them one at a time).
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// The largest decompressed body.
    pub max_decompressed: usize,
    /// The largest expansion of a gzip body (decompressed / compressed size).
    pub max_ratio: usize,
    /// How long a client has to send a whole body.
    pub body_read_timeout: std::time::Duration,
    /// Bodies read and decoded at once; the rest wait their turn.
    pub concurrent: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_decompressed: 64 << 20,
            max_ratio: keyward_sources::MAX_RATIO as usize,
            body_read_timeout: std::time::Duration::from_secs(60),
            concurrent: 2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            body_limit: DEFAULT_BODY_LIMIT,
            stale_after_days: 30,
            github_secret: None,
            tls: false,
            allowed_accounts_flags: Vec::new(),
            response_policy: None,
            conn: ConnLimits::default(),
            ingest: IngestLimits::default(),
            audit_anchor: None,
            ingested: None,
            mcp_write_tools: false,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Ingest bodies being read and decoded ([`IngestLimits::concurrent`]).
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// GitHub deliveries being read (unauthenticated until their signature is checked, so
    /// kept apart from the token holders' ingest).
    pub webhook_permits: Arc<tokio::sync::Semaphore>,
    /// Who may do what (the built-in roles unless [`AppState::with_policies`]).
    pub policies: Arc<keyward_policy::Policies>,
    /// `/mcp`: the MCP tools over streamable HTTP, on the same engine.
    pub mcp: crate::mcp::HttpService,
    /// The credential broker (`/broker/…`), when configured.
    pub broker: Option<Arc<crate::broker::Broker>>,
}

impl AppState {
    /// A server's state: the engine and the configuration; metrics start empty;
    /// the built-in roles decide.
    pub fn new(engine: EngineHandle, config: Config) -> Result<Self, keyward_policy::PolicyError> {
        let policies = keyward_policy::load::builtin()?.policies;
        Ok(Self::with_policies(engine, config, policies))
    }

    /// The same state with the credential broker mounted.
    pub fn with_broker(mut self, broker: Arc<crate::broker::Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// A server's state with its own policy set.
    pub fn with_policies(
        engine: EngineHandle,
        config: Config,
        policies: keyward_policy::Policies,
    ) -> Self {
        let policies = Arc::new(policies);
        let writes = config
            .mcp_write_tools
            .then(|| crate::mcp::Writes::per_request(policies.clone()));
        AppState {
            mcp: crate::mcp::http_service(engine.clone(), config.stale_after_days, writes),
            policies,
            engine,
            broker: None,
            metrics: Arc::default(),
            ingest_permits: Arc::new(tokio::sync::Semaphore::new(config.ingest.concurrent.max(1))),
            webhook_permits: Arc::new(tokio::sync::Semaphore::new(config.ingest.concurrent.max(1))),
            config: Arc::new(config),
        }
    }
}

pub(crate) fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
