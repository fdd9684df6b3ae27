//! `keyward serve`: the HTTP API and live webhooks over the same store and pipeline.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_server::{AppState, Config, EngineHandle, Role, auth};

use crate::Outcome;
use crate::output::now_ms;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "KEYWARD_LISTEN")]
    pub listen: SocketAddr,
    /// On first start (no tokens yet), create an admin token and print it once.
    #[arg(long)]
    pub print_admin_token: bool,
    /// Largest request body in bytes (compressed).
    #[arg(long, default_value_t = keyward_server::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Largest decompressed ingest body in bytes (a gzip body also may not expand more
    /// than 200-fold).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_decompressed: usize,
    /// Seconds a client has to send a whole ingest body.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub body_timeout: u64,
    /// Seconds a client has to send a request head; also the idle keep-alive timeout.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Connections served at once (more wait in the listen backlog). Capped below the
    /// process's open-file limit.
    #[arg(long, default_value_t = 8192, value_name = "N")]
    pub max_connections: usize,
    /// Ingest only: no rules or baselines on posted events.
    #[arg(long)]
    pub no_detect: bool,
    /// File holding the GitHub webhook secret (trailing newline ignored). Without it (or
    /// KEYWARD_GITHUB_WEBHOOK_SECRET) GitHub deliveries are refused.
    #[arg(long, value_name = "FILE")]
    pub github_webhook_secret_file: Option<std::path::PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Ask TLS clients for a certificate issued by these CAs (PEM): a workload may prove
    /// itself to the credential broker with it (an SVID of `/broker/bundle`, say). Clients
    /// without one are still served.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// After every audited action, append a signed checkpoint of the audit chain's head to
    /// this file (one JSON line), outside the data directory. `keyward audit verify
    /// --anchor FILE` and `GET /api/audit/verify` then catch entries deleted from the tail.
    #[arg(long, value_name = "FILE", env = "KEYWARD_AUDIT_ANCHOR")]
    pub audit_anchor: Option<std::path::PathBuf>,
    /// `/mcp` also offers its triage and plan tools (set a finding's status; store a
    /// dry-run containment plan), each call decided by the policies for the request's
    /// token (an operator's by default) and audited. Without it, every MCP tool reads.
    #[arg(long, env = "KEYWARD_MCP_WRITE_TOOLS")]
    pub mcp_write_tools: bool,
    /// A response policy (YAML): plans for the findings it matches, executed at once where
    /// it says `execute: auto` (the AWS and Kubernetes connectors from the environment).
    #[arg(long, value_name = "FILE", env = "KEYWARD_RESPONSE_POLICY")]
    pub response_policy: Option<std::path::PathBuf>,
    /// Run the playbook scheduler: the built-in playbooks and this directory's, their
    /// triggers evaluated every --playbook-interval and after every ingest, due runs resumed.
    #[arg(long, value_name = "DIR", env = "KEYWARD_PLAYBOOKS")]
    pub playbooks: Option<std::path::PathBuf>,
    /// Runs the scheduler starts execute their plans (else they are dry runs).
    #[arg(long, requires = "playbooks")]
    pub playbooks_execute: bool,
    /// Seconds between two scheduler ticks.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub playbook_interval: u64,
    /// Revoke time-bound access grants past their expiry, executing, every
    /// --access-interval (what `keyward access expire --execute` does), with the
    /// connectors from the environment.
    #[arg(long)]
    pub access_expire: bool,
    /// Seconds between two expiry runs.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        requires = "access_expire"
    )]
    pub access_interval: u64,
    /// Take in what appears in a directory tree (or a file) or an S3 tree
    /// (`s3://BUCKET/PREFIX`, a trail's bucket as CloudTrail delivers it; the AWS
    /// credentials and endpoint from the environment) every --poll-interval; repeatable.
    /// With --bus the records are published, as the HTTP routes' are.
    #[arg(long, value_name = "PATH|s3://BUCKET/PREFIX", value_parser = crate::poll::parse_source)]
    pub poll: Vec<crate::poll::Source>,
    /// Seconds between two polling rounds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub poll_interval: u64,
    #[command(flatten)]
    pub detect: crate::cmd_rules::DetectArgs,
    /// Serve as an ingest gateway: posted events and webhook deliveries are checked and
    /// normalized here, then published to the bus; `keyward worker` processes take them in
    /// (and run detection).
    #[command(flatten)]
    pub bus: crate::cmd_worker::BusArgs,
}

/// The playbook scheduler on a thread of its own, with an engine of its own on the same
/// data directory (it writes under the store's writer lock like any other process, and
/// takes the store's `playbooks` claim so a `keyward playbook tick`, or a `serve` on another
/// machine sharing the store, never moves a run at the same time).
/// It ticks every `interval` and when an ingest says so; plans run through the connectors
/// on its own runtime, never on the server's.
fn spawn_scheduler(
    dir: &Path,
    config: &crate::config::Config,
    books: Vec<keyward_respond::playbook::Playbook>,
    execute: bool,
    interval: std::time::Duration,
) -> anyhow::Result<keyward_server::IngestHook> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let data = dir.to_path_buf();
    let config = config.clone();
    std::thread::Builder::new()
        .name("keyward-playbooks".into())
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(move || {
            let tick = || -> anyhow::Result<()> {
                let mut engine = Engine::open(&data)?;
                engine.set_durable(true)?;
                let mut fx = crate::cmd_playbook::CliEffects::new(config.clone())?;
                loop {
                    {
                        let _lock = crate::cmd_playbook::playbook_lock(&engine)?;
                        let report = engine.playbook_tick(
                            &books,
                            &mut fx,
                            &keyward_engine::playbook::triggers::Tick {
                                now: now_ms(),
                                execute,
                                actor: "serve:scheduler",
                            },
                        );
                        match report {
                            Ok(r) if !r.started.is_empty() || !r.advanced.is_empty() => eprintln!(
                                "keyward: playbooks: {} run(s) started, {} advanced",
                                r.started.len(),
                                r.advanced.len()
                            ),
                            Ok(_) => {}
                            Err(e) => eprintln!("keyward: playbooks: {e}"),
                        }
                    }
                    match rx.recv_timeout(interval) {
                        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
            };
            if let Err(e) = tick() {
                eprintln!("keyward: the playbook scheduler stopped: {e:#}");
            }
        })
        .context("starting the playbook scheduler")?;
    Ok(keyward_server::IngestHook(std::sync::Arc::new(move || {
        // Full: a tick is already due; it will see this ingest too.
        let _ = tx.try_send(());
    })))
}

/// The GitHub webhook secret from `--github-webhook-secret-file` or the environment
/// (never from a command-line value, which other users could read in `ps`).
fn github_secret(args: &Args) -> anyhow::Result<Option<keyward_server::github::WebhookSecret>> {
    let raw = match &args.github_webhook_secret_file {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("reading the GitHub webhook secret `{}`", p.display()))?,
        ),
        None => std::env::var_os("KEYWARD_GITHUB_WEBHOOK_SECRET").map(|v| v.into_encoded_bytes()),
    };
    let Some(raw) = raw else { return Ok(None) };
    let secret = raw.trim_ascii_end();
    if secret.is_empty() {
        anyhow::bail!("the GitHub webhook secret is empty");
    }
    Ok(Some(keyward_server::github::WebhookSecret::new(secret)))
}

/// Descriptors kept free of connections: the store, its WAL, TLS files, the listener.
const RESERVED_FDS: u64 = 64;

/// The connection cap: what was asked for, below the open-file limit (raised to its hard
/// limit first), so idle sockets can never take the descriptors the store needs.
fn connection_cap(asked: usize) -> usize {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            asked.min(room).max(1)
        }
        Err(_) => asked.max(1),
    }
}

pub fn run(dir: &Path, config: &crate::config::Config, args: Args) -> anyhow::Result<Outcome> {
    let github_secret = github_secret(&args)?;
    let max_connections = connection_cap(args.max_connections);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(keyward_server::tls::load_with_client_ca(
            c,
            k,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Request bodies are split into records here (see `normalize::depth::STACK`).
        .thread_stack_size(keyward_normalize::depth::STACK)
        .build()
        .context("starting the async runtime")?;
    let bus = args.bus.config();
    let publisher = match &bus {
        Some(b) => Some(crate::cmd_worker::publisher(b, &rt)?),
        None => None,
    };
    // A gateway detects nothing itself: the workers do, on what it publishes.
    let catalog = (!args.no_detect && bus.is_none()).then(|| args.detect.catalog());
    let settings = args.detect.settings();
    let data = dir.to_path_buf();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory `{}`", dir.display()))?;
    if let Some(a) = &args.audit_anchor {
        crate::cmd_audit::outside_data_dir(dir, a)?;
    }
    let anchor = args.audit_anchor.clone();
    let print_admin = args.print_admin_token;
    let engine = EngineHandle::spawn(move || {
        let mut engine = Engine::open(&data)
            .with_context(|| format!("opening the store in `{}`", data.display()))?;
        // A 2xx on an ingest route means stored, power loss included.
        engine.set_durable(true)?;
        engine.set_audit_anchor(anchor);
        if let Some(p) = publisher {
            engine.set_forward(Some(Box::new(p)));
        }
        if let Some(c) = catalog {
            engine.enable_detection(c, settings)?;
        }
        if print_admin && engine.tokens()?.is_empty() {
            let (token, row) = auth::create(
                &mut engine,
                Role::Admin,
                "first admin",
                &crate::output::cli_actor(),
                now_ms(),
            )?;
            // Printed once; only its hash is stored.
            println!("admin token (shown once; id {}): {token}", row.id);
        }
        Ok::<_, anyhow::Error>(engine)
    })?;
    // After the server's engine opened (and migrated) the store.
    let ingested = match &args.playbooks {
        Some(p) => {
            let books = crate::cmd_playbook::load_from(p, true)?;
            eprintln!(
                "keyward: playbook scheduler: {} playbook(s), every {} s{}",
                books.len(),
                args.playbook_interval.max(1),
                if args.playbooks_execute {
                    ", executing"
                } else {
                    ", dry runs (--playbooks-execute to act)"
                }
            );
            Some(spawn_scheduler(
                dir,
                config,
                books,
                args.playbooks_execute,
                std::time::Duration::from_secs(args.playbook_interval.max(1)),
            )?)
        }
        None => None,
    };
    if args.access_expire {
        eprintln!(
            "keyward: access expiry every {} s, executing",
            args.access_interval.max(1)
        );
        crate::cmd_access::spawn_expiry(
            dir,
            std::time::Duration::from_secs(args.access_interval.max(1)),
        )?;
    }
    if !args.poll.is_empty() {
        let every = std::time::Duration::from_secs(args.poll_interval.max(1));
        let names: Vec<String> = args.poll.iter().map(ToString::to_string).collect();
        eprintln!(
            "keyward: polling {} every {} s",
            names.join(", "),
            every.as_secs()
        );
        let keeping = crate::poll::Keeping {
            bus: bus.clone(),
            detect: (!args.no_detect && bus.is_none())
                .then(|| (args.detect.catalog(), args.detect.settings())),
            allow_accounts: args.detect.allow_account.clone(),
            intents: config.intents()?,
        };
        crate::poll::spawn(dir, args.poll.clone(), every, keeping)?;
    }
    let policy_source = crate::policy::source(dir)?;
    let policies = crate::policy::load_from(&policy_source)?.policies;
    let policy_line = format!(
        "{} Cedar policies from {policy_source} decide who may do what",
        policies.ids().len()
    );
    let state = AppState::with_policies(
        engine,
        Config {
            body_limit: args.body_limit,
            github_secret,
            tls: tls.is_some(),
            allowed_accounts_flags: args.detect.allow_account.clone(),
            response_policy: match &args.response_policy {
                Some(p) => Some(std::sync::Arc::new(crate::cmd_respond::load_policy(p)?)),
                None => None,
            },
            conn: keyward_server::ConnLimits {
                header_read_timeout: std::time::Duration::from_secs(args.header_timeout.max(1)),
                max_connections,
            },
            ingest: keyward_server::IngestLimits {
                max_decompressed: args.max_decompressed,
                body_read_timeout: std::time::Duration::from_secs(args.body_timeout.max(1)),
                ..keyward_server::IngestLimits::default()
            },
            audit_anchor: args.audit_anchor.clone(),
            ingested,
            mcp_write_tools: args.mcp_write_tools,
            ..Config::default()
        },
        policies,
    );
    let broker = match &config.broker {
        Some(b) => Some(
            b.resolve(config.path.as_deref(), dir)
                .map_err(|e| anyhow::anyhow!("broker: {e}"))?,
        ),
        None => None,
    };
    let gateway = bus.map(|b| {
        format!(
            "; a gateway to stream {} at {}",
            b.stream,
            keyward_bus::redact(&b.url)
        )
    });
    rt.block_on(async move {
        let state = match broker {
            Some(cfg) => {
                let platforms: std::sync::Arc<dyn keyward_server::broker::Platforms> =
                    std::sync::Arc::new(crate::broker_config::Connectors::default());
                let b = keyward_server::broker::Broker::open(
                    cfg,
                    Some(platforms),
                    state.engine.clone(),
                    now_ms(),
                )?;
                eprintln!("keyward: credential broker at {}", b.config.issuer);
                let b = std::sync::Arc::new(b);
                keyward_server::broker::spawn_upkeep(std::sync::Arc::clone(&b));
                state.with_broker(b)
            }
            None => state,
        };
        let listener = keyward_server::bind(args.listen)
            .with_context(|| format!("listening on {}", args.listen))?;
        let local = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!(
            "keyward serving on {scheme}://{local} (data: {}; {policy_line}{})",
            dir.display(),
            gateway.unwrap_or_default()
        );
        match tls {
            Some(config) => {
                let listener = keyward_server::tls::TlsListener::new(listener, config)?;
                keyward_server::serve(listener, state).await?;
            }
            None => keyward_server::serve(listener, state).await?,
        }
        anyhow::Ok(())
    })?;
    Ok(Outcome::Clean)
}
