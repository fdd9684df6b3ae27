//! `keyward worker`: takes the bus's partitions into the store (see `keyward-bus`'s
//! `worker` module), and `--bus` for the gateways (`keyward ingest`, `keyward serve`).

use std::path::Path;

use anyhow::Context as _;
use keyward_bus::{BusConfig, worker};
use keyward_engine::Engine;

use crate::Outcome;
use crate::output::{cli_actor, now_ms};

/// Where the message bus is (NATS JetStream).
#[derive(clap::Args, Clone, Debug)]
pub struct BusArgs {
    /// The NATS JetStream server (`nats://HOST:PORT`; a user and password or a token may
    /// be in the URL). With it, inputs are published to the bus and `keyward worker`
    /// processes take them in.
    #[arg(long, env = "KEYWARD_BUS", value_name = "nats://HOST:PORT")]
    pub bus: Option<String>,
    /// The JetStream stream's name.
    #[arg(long, default_value = keyward_bus::DEFAULT_STREAM, value_name = "NAME")]
    pub bus_stream: String,
    /// Partitions of the stream, when this process makes it (an existing stream keeps its
    /// own count).
    #[arg(long, default_value_t = keyward_bus::DEFAULT_PARTITIONS, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub bus_partitions: u32,
}

impl BusArgs {
    pub fn config(&self) -> Option<BusConfig> {
        self.bus.as_deref().map(|url| BusConfig {
            stream: self.bus_stream.clone(),
            partitions: self.bus_partitions,
            ..BusConfig::new(url)
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Records taken from each partition per store commit.
    #[arg(long, default_value_t = 5_000, value_name = "N")]
    pub batch: usize,
    /// Stop once the stream has been empty for two seconds, something having been
    /// published to it (a catch-up run, tests); otherwise run until stopped.
    #[arg(long)]
    pub drain: bool,
    /// Seconds between two counts of the live workers (a new or dead worker's share of the
    /// partitions moves within about two of them).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub rebalance: u64,
    /// Seconds between two lines of figures on standard error.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub stats_interval: u64,
    /// Ingest only: no rules, baselines, posture findings or risk scores.
    #[arg(long)]
    pub no_detect: bool,
    #[command(flatten)]
    pub detect: crate::cmd_rules::DetectArgs,
    /// AI agents' declared purposes, from the configuration (`agents:`).
    #[arg(skip)]
    pub intents: keyward_detect::intent::Intents,
}

struct Host<'a> {
    dir: &'a Path,
    args: &'a Args,
}

impl worker::Host for Host<'_> {
    fn open(&self) -> Result<Engine, String> {
        let open = || -> anyhow::Result<Engine> {
            let mut engine = Engine::open(self.dir)
                .with_context(|| format!("opening the store in `{}`", self.dir.display()))?;
            engine.set_durable(true)?;
            if !self.args.no_detect {
                engine.enable_detection(self.args.detect.catalog(), self.args.detect.settings())?;
            }
            Ok(engine)
        };
        open().map_err(|e| format!("{e:#}"))
    }

    fn drained(&self, engine: &mut Engine) -> Result<(), String> {
        if self.args.no_detect {
            return Ok(());
        }
        let mut judge = || -> anyhow::Result<()> {
            // As `keyward ingest` does: judged as of the newest event.
            let as_of = engine.latest_event_time()?.unwrap_or_else(now_ms);
            engine.evaluate_posture(as_of, &self.args.detect.allow_account)?;
            engine.evaluate_intent(&self.args.intents)?;
            Ok(())
        };
        judge().map_err(|e| format!("{e:#}"))
    }

    fn owns(&self, engine: &mut Engine, partitions: &[u32]) -> Result<(), String> {
        let list: Vec<String> = partitions.iter().map(u32::to_string).collect();
        let entry = keyward_store::AuditEntry {
            at: now_ms(),
            actor: cli_actor(),
            action: "worker.partitions".into(),
            target: Some(format!("stream {}", self.args.bus.bus_stream)),
            detail: Some(format!("owns partitions [{}]", list.join(", "))),
            before: None,
            after: None,
        };
        engine.audit(&entry).map(|_| ()).map_err(|e| e.to_string())
    }
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    let Some(bus) = args.bus.config() else {
        anyhow::bail!("keyward worker needs --bus nats://HOST:PORT (or KEYWARD_BUS)");
    };
    {
        let mut engine = Engine::open(dir)
            .with_context(|| format!("opening the store in `{}`", dir.display()))?;
        crate::policy::require(
            &mut engine,
            keyward_policy::Act::Ingest,
            &keyward_policy::Resource::Estate,
            &crate::policy::here(),
        )?;
    }
    let config = worker::WorkerConfig {
        batch: args.batch.max(1),
        stats: std::time::Duration::from_secs(args.stats_interval.max(1)),
        drain: args.drain,
        rebalance: std::time::Duration::from_secs(args.rebalance.max(1)),
        ..worker::WorkerConfig::new(bus)
    };
    eprintln!(
        "keyward worker: taking stream {} from {} into the store",
        config.bus.stream,
        keyward_bus::redact(&config.bus.url)
    );
    let totals = worker::run(&config, &Host { dir, args: &args })?;
    println!(
        "took in {} records in {} commits (publish → commit p50 {} ms, p99 {} ms); \
         {:.1} s taking from the bus, {:.1} s committing, {:.1} s acknowledging",
        totals.records,
        totals.commits,
        totals.latency_ms(0.5).unwrap_or(0),
        totals.latency_ms(0.99).unwrap_or(0),
        totals.fetching.as_secs_f64(),
        totals.committing.as_secs_f64(),
        totals.acknowledging.as_secs_f64(),
    );
    Ok(Outcome::Clean)
}

/// A publisher on `bus` for this process's gateway engine, on the runtime `rt` (the
/// engine calls it from a thread of its own).
pub fn publisher(
    bus: &BusConfig,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<keyward_bus::Publisher> {
    let connected = rt
        .block_on(keyward_bus::Bus::connect(bus.clone()))
        .with_context(|| format!("the bus at {}", keyward_bus::redact(&bus.url)))?;
    Ok(connected.publisher(rt.handle().clone()))
}
