//! `keyward`: the command-line surface. One `cmd_<verb>.rs` per subcommand; business logic
//! lives in the library crates.

// First: its print macros replace std's in every module below.
#[macro_use]
mod term;

mod broker_config;
mod cmd_access;
mod cmd_audit;
mod cmd_broker;
mod cmd_check;
mod cmd_clusters;
mod cmd_compliance;
mod cmd_dead_letters;
mod cmd_demo;
mod cmd_disable;
mod cmd_drift;
mod cmd_findings;
mod cmd_graph;
mod cmd_ingest;
mod cmd_inventory;
mod cmd_lifecycle;
mod cmd_mcp;
mod cmd_migrate;
mod cmd_playbook;
mod cmd_policy;
mod cmd_respond;
mod cmd_rightsize;
mod cmd_rotate;
#[cfg(all(feature = "aws", feature = "kubernetes"))]
mod cmd_rotate_campaign;
mod cmd_rotate_due;
mod cmd_rules;
mod cmd_serve;
mod cmd_show;
mod cmd_token;
mod cmd_watch;
mod cmd_worker;
mod config;
mod http;
mod output;
mod policy;
mod poll;
mod relay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: ingest and detection allocate many short-lived strings; glibc malloc spent
/// about a sixth of ingest time in its free lists (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keyward: inventory, govern and defend non-human identities.
#[derive(Parser)]
#[command(name = "keyward", version, about)]
struct Cli {
    /// Data directory of the embedded store.
    #[arg(long, global = true, env = "KEYWARD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store: `postgres://USER@HOST:PORT/DB`, `sqlite:DIR`, or a data directory.
    /// Default: SQLite in the data directory, which keeps the audit keys either way.
    #[arg(long, global = true, env = "KEYWARD_STORE", value_name = "URL")]
    store: Option<String>,
    /// Policies file (retirement, rotation; `examples/keyward.yaml`). Default:
    /// ./keyward.yaml, else keyward.yaml in the data directory, if either exists.
    #[arg(long, global = true, env = "KEYWARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read log and configuration files into the store and the inventory.
    Ingest(cmd_ingest::Args),
    /// List identities.
    Inventory(cmd_inventory::Args),
    /// Everything known about one identity.
    Show(cmd_show::Args),
    /// Rejected records: where and why.
    DeadLetters(cmd_dead_letters::Args),
    /// Ingest the bundled example estate into a temporary store and tour it.
    Demo(cmd_demo::Args),
    /// Questions answered from the identity graph (escalation paths, …).
    #[command(subcommand)]
    Graph(cmd_graph::Command),
    /// Detection rules: list them, run their examples.
    #[command(subcommand)]
    Rules(cmd_rules::Command),
    /// Threat and posture findings.
    Findings(cmd_findings::Args),
    /// Follow a JSON-lines input and print findings as they fire.
    Watch(cmd_watch::Args),
    /// Serve the HTTP API and live webhooks (Kubernetes audit, event POSTs).
    Serve(cmd_serve::Args),
    /// The credential broker's client: a workload's credentials (token, AWS, SVID,
    /// secret), renewing and giving up its leases; operators list and revoke leases.
    #[command(subcommand)]
    Broker(cmd_broker::Command),
    /// An MCP server over stdio: read-only tools for an LLM client (inventory, identity,
    /// ownership, blast radius, escalation, findings, risk, compliance, AI agents).
    Mcp(cmd_mcp::Args),
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(cmd_token::Command),
    /// The audit log: verify its keyed MAC chain, export it, anchor its head.
    #[command(subcommand)]
    Audit(cmd_audit::Command),
    /// Kubernetes clusters: list them and the evidence that two are one; merge two.
    #[command(subcommand)]
    Clusters(cmd_clusters::Command),
    /// One switch, every platform: contain an identity and every identity linked to it,
    /// executed after confirmation. With VAULT_ADDR (or BAO_ADDR) and a token set, the
    /// Vault/OpenBao entities that stand for it are disabled and its other tokens and leases
    /// revoked.
    Disable(cmd_disable::Args),
    /// Undo the identity's last executed plan (`disable`, `respond execute`).
    Enable(cmd_disable::Args),
    /// Approved configuration baselines (IAM users, roles, service accounts).
    #[command(subcommand)]
    Baseline(cmd_drift::Baseline),
    /// What differs from the approved baselines, with revert commands; exit 1 on drift.
    Drift(cmd_drift::DriftArgs),
    /// Retirement: disable identities unused for N days or whose workload is gone (undo-able),
    /// deletion proposed after a grace period.
    #[command(subcommand)]
    Lifecycle(cmd_lifecycle::Command),
    /// Respond to a compromised identity: containment plans (dry run), execute, undo,
    /// evidence.
    #[command(subcommand)]
    Respond(cmd_respond::Command),
    /// Rotate an IAM user's access key without downtime: create, write it where the old
    /// one lives (Secrets Manager, Kubernetes Secrets, Vault/OpenBao KV v2), verify,
    /// deactivate the old one (a dry run without --execute). `--all --breach`: every key,
    /// highest risk first, as a resumable campaign; `--due`: keys past or near their
    /// rotation schedule.
    Rotate(cmd_rotate::Args),
    /// Declarative playbooks: list, validate, run, status, approve, tick (schedules and
    /// triggers; `keyward serve --playbooks` runs them continuously).
    #[command(subcommand)]
    Playbook(cmd_playbook::Command),
    /// Least privilege from observed use: used vs granted actions, a smaller policy (table,
    /// JSON, Terraform); `--execute` applies it as an undo-able plan.
    Rightsize(cmd_rightsize::Args),
    /// Compliance scorecards (SOC 2, PCI DSS 4.0, ISO 27001:2022) with evidence; their trend.
    #[command(subcommand)]
    Compliance(cmd_compliance::Command),
    /// The pull-request check: Terraform, IAM policies and Kubernetes manifests against
    /// the KW-CHECK rules; text, JSON or SARIF; exit 1 on a problem not in `--baseline`.
    Check(cmd_check::Args),
    /// Time-bound access that revokes itself: grant (standard or --break-glass), request,
    /// approve, deny, apply, revoke, expire, review, list.
    #[command(subcommand)]
    Access(cmd_access::Command),
    /// Who may do what: Cedar policies (validate, test, init, show). Every state-changing
    /// command and API call is decided by them and the decision audited.
    #[command(subcommand)]
    Policy(cmd_policy::Command),
    /// Take the records gateways published to the bus (NATS JetStream) into the store:
    /// partitions owned through the store, resumed from its checkpoints.
    Worker(cmd_worker::Args),
    /// Copy the embedded SQLite store into an empty PostgreSQL database (moving up); checked
    /// and audited on both.
    Migrate(cmd_migrate::Args),
}

/// Exit status: 0 clean, 1 fatal error or a failed check, 2 some records were rejected.
pub enum Outcome {
    Clean,
    Rejected,
    /// A check found a problem and said so (`audit verify`): exit 1.
    Broken,
}

fn data_dir(cli: Option<PathBuf>) -> PathBuf {
    if let Some(d) = cli {
        return d;
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("keyward");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/keyward"),
        None => PathBuf::from(".keyward"),
    }
}

fn main() -> ExitCode {
    // Parsers recurse per level of nesting, up to `normalize::MAX_NESTING` levels: the
    // commands run on a thread with the stack that takes (the main thread's size is
    // whatever `ulimit -s` says).
    let run = std::thread::Builder::new()
        .name("keyward".into())
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(run);
    match run.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        // The thread panicked (the panic was already printed) or could not start.
        Ok(Err(_)) => ExitCode::from(101),
        Err(e) => {
            eprintln!("error: starting the main thread: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    let dir = data_dir(cli.data_dir);
    policy::configure(cli.config.clone(), dir.clone());
    if let Some(store) = &cli.store
        && let Err(e) = keyward_engine::select_store(store)
    {
        eprintln!("error: --store: {e}");
        return ExitCode::from(1);
    }
    let config = || config::Config::load(cli.config.as_deref(), &dir);
    let result = match cli.command {
        Command::Ingest(mut a) => config().and_then(|k| {
            a.intents = k.intents()?;
            cmd_ingest::run(&dir, a)
        }),
        Command::Inventory(a) => cmd_inventory::run(&dir, a),
        Command::Show(a) => cmd_show::run(&dir, a),
        Command::DeadLetters(a) => cmd_dead_letters::run(&dir, a),
        Command::Demo(a) => cmd_demo::run(a),
        Command::Graph(c) => cmd_graph::run(&dir, c),
        Command::Rules(c) => cmd_rules::run(c),
        Command::Findings(a) => cmd_findings::run(&dir, a),
        Command::Watch(a) => cmd_watch::run(&dir, a),
        Command::Serve(a) => config().and_then(|k| cmd_serve::run(&dir, &k, a)),
        Command::Mcp(a) => cmd_mcp::run(&dir, a),
        Command::Broker(c) => cmd_broker::run(&dir, c),
        Command::Token(c) => cmd_token::run(&dir, c),
        Command::Audit(c) => cmd_audit::run(&dir, c),
        Command::Clusters(c) => cmd_clusters::run(&dir, c),
        Command::Respond(c) => cmd_respond::run(&dir, c),
        Command::Lifecycle(c) => config().and_then(|k| cmd_lifecycle::run(&dir, &k, c)),
        Command::Disable(a) => cmd_disable::disable(&dir, a),
        Command::Baseline(c) => cmd_drift::baseline(&dir, c),
        Command::Drift(a) => cmd_drift::drift(&dir, a),
        Command::Enable(a) => cmd_disable::enable(&dir, a),
        Command::Rotate(a) => config().and_then(|k| cmd_rotate::run(&dir, &k, a)),
        Command::Compliance(c) => cmd_compliance::run(&dir, c),
        Command::Rightsize(a) => cmd_rightsize::run(&dir, a),
        Command::Playbook(c) => config().and_then(|k| cmd_playbook::run(&dir, &k, c)),
        Command::Check(a) => cmd_check::run(a),
        Command::Access(c) => cmd_access::run(&dir, c),
        Command::Policy(c) => cmd_policy::run(&dir, c),
        Command::Migrate(a) => cmd_migrate::run(&dir, a),
        Command::Worker(mut a) => config().and_then(|k| {
            a.intents = k.intents()?;
            cmd_worker::run(&dir, a)
        }),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(2),
        Ok(Outcome::Broken) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
