//! `keyward worker`: takes partitions of the bus into the store.
//!
//! **Ownership.** A worker first claims a member slot (`STREAM/member/k`, the lowest free
//! one) and counts the live members; it then owns partitions `p` with `p % members ==
//! rank` — each through a store claim (`STREAM/p`), so two workers never take one partition
//! even while they disagree about who is alive. A dead worker's claims go with its process
//! (file locks, or PostgreSQL advisory locks on its connections); the others re-count every
//! few seconds and take its partitions over.
//!
//! **Exactly once.** Each partition's consumer is made afresh when it is claimed, starting
//! after the checkpoint the store holds ([`crate::Bus::open_partition`]). Records are
//! committed with their partitions' new checkpoints in one store transaction (under the
//! store's writer lock, after reloading what other workers committed), and acknowledged
//! only after. A crash before the commit loses nothing (the records come again); after it,
//! nothing is taken twice (the checkpoint passes them over, and stored events are never
//! stored or detected again).
//!
//! **Crash-only.** Any error — the store or the bus gone — ends the session: everything is
//! dropped (claims included) and a new session starts from the store's checkpoints after a
//! pause.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keyward_engine::{BusInput, Engine, WriteLock};
use keyward_model::time::Millis;

use crate::{Bus, BusConfig, BusError, Delivered, Partition, acknowledge, wire};

/// What the command line gives a worker: how to open the engine (store, detection), what
/// to do once the partitions are drained (posture), and where to say what it did (audit).
pub trait Host {
    fn open(&self) -> Result<Engine, String>;
    /// Called under the writer lock once the whole stream is taken in after this worker
    /// took records (or every minute under a stream that never empties).
    fn drained(&self, engine: &mut Engine) -> Result<(), String>;
    /// The partitions this worker now owns (audited).
    fn owns(&self, engine: &mut Engine, partitions: &[u32]) -> Result<(), String>;
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bus: BusConfig,
    /// Records taken per partition per commit.
    pub batch: usize,
    /// How often members are counted and partitions re-balanced.
    pub rebalance: Duration,
    /// How often a line of figures is written to standard error.
    pub stats: Duration,
    /// Stop once the stream has been empty for two seconds, something having been
    /// published to it (tests, benchmarks, a catch-up run); otherwise run until killed.
    pub drain: bool,
}

impl WorkerConfig {
    pub fn new(bus: BusConfig) -> Self {
        WorkerConfig {
            bus,
            batch: 5_000,
            rebalance: Duration::from_secs(5),
            stats: Duration::from_secs(10),
            drain: false,
        }
    }
}

/// How often a worker whose partitions are idle judges posture while the stream as a whole
/// never empties.
const JUDGE_EVERY: Duration = Duration::from_secs(60);

/// How long the stream stays empty before a draining worker stops.
const DRAIN_QUIET: Duration = Duration::from_secs(2);

/// Member slots a worker looks through; more workers than this wait for a free slot.
const MAX_MEMBERS: u32 = 16;

/// Runs until killed (or drained, with `drain`), starting a new session after any error.
pub fn run(config: &WorkerConfig, host: &dyn Host) -> Result<Totals, BusError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BusError::Nats(format!("starting the runtime: {e}")))?;
    let mut totals = Totals::default();
    let mut pause = Duration::from_millis(200);
    loop {
        match session(config, host, &rt, &mut totals) {
            Ok(()) => return Ok(totals),
            Err(e) => {
                eprintln!("keyward worker: {e}; starting again from the store's checkpoints");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What a worker took in, over all its sessions.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub records: u64,
    pub commits: u64,
    /// Time spent taking records from the bus, committing them, and acknowledging them.
    pub fetching: Duration,
    pub committing: Duration,
    pub acknowledging: Duration,
    /// Publish → commit, in ms, of every record (for the figures).
    latencies: Vec<u32>,
}

impl Totals {
    /// The `q`-quantile (0–1) of publish → commit latency, in ms.
    pub fn latency_ms(&self, q: f64) -> Option<u32> {
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied()
    }
}

struct Owned {
    _claim: WriteLock,
    partition: Partition,
    /// Fetched, not yet taken (in stream order).
    buffer: std::collections::VecDeque<Delivered>,
    /// Whether the partition had more waiting after its last fetch.
    more: bool,
}

fn engine_error(e: impl std::fmt::Display) -> BusError {
    BusError::Nats(e.to_string())
}

fn session(
    config: &WorkerConfig,
    host: &dyn Host,
    rt: &tokio::runtime::Runtime,
    totals: &mut Totals,
) -> Result<(), BusError> {
    let mut engine = host.open().map_err(engine_error)?;
    let mut bus = rt.block_on(Bus::connect(config.bus.clone()))?;
    let (member, _member_claim) = claim_member(&engine, &bus)?;
    let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
    let mut balanced: Option<Instant> = None;
    let mut stats_at = Instant::now();
    let mut since_stats = (0u64, Vec::new());
    let mut undrained = false;
    let mut judged = Instant::now();
    let mut emptied: Option<Instant> = None;
    loop {
        if balanced.is_none_or(|t| t.elapsed() >= config.rebalance) {
            let changed = rebalance(&engine, &bus, rt, member, &mut owned)?;
            if changed {
                let list: Vec<u32> = owned.keys().copied().collect();
                host.owns(&mut engine, &list).map_err(engine_error)?;
            }
            balanced = Some(Instant::now());
        }
        let clock = Instant::now();
        let taken = take(&mut owned, rt, config.batch)?;
        totals.fetching += clock.elapsed();
        if taken.is_empty() {
            let backlog = rt.block_on(bus.backlog())?;
            // Hours are scored and posture judged once the whole stream is taken in (as at
            // the end of a `keyward ingest`: a record still on another worker's partition
            // could belong to an hour or change a fact), or, under a stream that never
            // empties, every JUDGE_EVERY.
            if undrained && (backlog.0 == 0 || judged.elapsed() >= JUDGE_EVERY) {
                let _lock = engine.write_lock().map_err(engine_error)?;
                engine
                    .ingest_bus(Vec::new(), &[], true, now_ms())
                    .map_err(engine_error)?;
                host.drained(&mut engine).map_err(engine_error)?;
                undrained = false;
                judged = Instant::now();
            }
            // Empty for DRAIN_QUIET in a row: a gateway still publishing leaves gaps.
            let quiet = backlog == (0, true) && !undrained;
            let empty_since = *emptied.get_or_insert_with(Instant::now);
            if !quiet {
                emptied = None;
            } else if config.drain && !owned.is_empty() && empty_since.elapsed() >= DRAIN_QUIET {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        } else {
            emptied = None;
            let clock = Instant::now();
            let n = commit(&mut engine, &bus, &taken)?;
            totals.committing += clock.elapsed();
            for (p, d) in &taken {
                if let Some(o) = owned.get_mut(p) {
                    o.partition.committed = o.partition.committed.max(d.sequence);
                }
            }
            let now = now_ms();
            for (_, d) in &taken {
                let ms = u32::try_from((now - d.published_ms).max(0)).unwrap_or(u32::MAX);
                since_stats.1.push(ms);
                totals.latencies.push(ms);
            }
            let clock = Instant::now();
            rt.block_on(acknowledge(taken.into_iter().map(|(_, d)| d).collect()));
            totals.acknowledging += clock.elapsed();
            since_stats.0 += n;
            totals.records += n;
            totals.commits += 1;
            undrained = true;
        }
        if stats_at.elapsed() >= config.stats {
            let secs = stats_at.elapsed().as_secs_f64();
            let (n, mut lat) = std::mem::take(&mut since_stats);
            lat.sort_unstable();
            let q = |f: f64| {
                lat.get(((lat.len() as f64 - 1.0) * f).round() as usize)
                    .copied()
                    .unwrap_or(0)
            };
            eprintln!(
                "keyward worker {member}: partitions {:?}; {n} records in {secs:.1} s ({:.0}/s); publish → commit p50 {} ms, p99 {} ms",
                owned.keys().collect::<Vec<_>>(),
                n as f64 / secs,
                q(0.5),
                q(0.99),
            );
            stats_at = Instant::now();
        }
    }
}

/// Tops up each owned partition's buffer, then takes up to `batch` records across them in
/// the stream's order (the gateways' publishing order): the smallest sequence first,
/// stopping where a partition whose buffer ran dry has more waiting — so one worker takes
/// records in the order a single process would have read them, whatever the partitions.
fn take(
    owned: &mut BTreeMap<u32, Owned>,
    rt: &tokio::runtime::Runtime,
    batch: usize,
) -> Result<Vec<(u32, Delivered)>, BusError> {
    for o in owned.values_mut() {
        if o.buffer.len() < batch {
            let got = rt.block_on(o.partition.fetch(batch - o.buffer.len()))?;
            if let Some(last) = got.last() {
                o.more = last.pending > 0;
            } else if o.buffer.is_empty() {
                o.more = false;
            }
            o.buffer.extend(got);
        }
    }
    let mut taken = Vec::new();
    while taken.len() < batch {
        let next = owned
            .iter()
            .filter_map(|(&p, o)| o.buffer.front().map(|d| (d.sequence, p)))
            .min();
        let Some((_, p)) = next else { break };
        let Some(o) = owned.get_mut(&p) else { break };
        let Some(d) = o.buffer.pop_front() else { break };
        taken.push((p, d));
        if o.buffer.is_empty() && o.more {
            break;
        }
    }
    Ok(taken)
}

/// Decodes what was taken (in stream order) and commits it, with each partition's
/// checkpoint, under the store's writer lock. Returns the records committed.
fn commit(engine: &mut Engine, bus: &Bus, taken: &[(u32, Delivered)]) -> Result<u64, BusError> {
    let mut inputs: Vec<BusInput> = Vec::new();
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let (Some(first), Some(end)) = (taken.first(), taken.last()) else {
        return Ok(0);
    };
    let span = format!("{}-{}", first.1.sequence, end.1.sequence);
    let mut n = 0u64;
    for (p, d) in taken {
        last.insert(*p, d.sequence);
        let rec = wire::decode(&d.payload).map_err(|e| {
            BusError::Nats(format!(
                "partition {p}, record {}: {e} (the worker stops rather than drop it)",
                d.sequence
            ))
        })?;
        // One input per run of one source's records, named by the positions taken.
        let same = inputs
            .last()
            .is_some_and(|i| i.format == rec.format && i.cluster == rec.cluster);
        if !same {
            inputs.push(BusInput {
                label: format!("bus:{}#{span} {}", bus.config.stream, rec.format.as_str()),
                format: rec.format,
                cluster: rec.cluster,
                outputs: Vec::new(),
            });
        }
        if let Some(i) = inputs.last_mut() {
            i.outputs.push(rec.output);
        }
        n += 1;
    }
    let checkpoints: Vec<(String, i64)> = last
        .into_iter()
        .map(|(p, seq)| {
            (
                bus.checkpoint_name(p),
                i64::try_from(seq).unwrap_or(i64::MAX),
            )
        })
        .collect();
    // File rows are named uniquely: a second run of one source in a batch gets a suffix.
    let mut seen = BTreeMap::<String, u32>::new();
    for i in &mut inputs {
        let k = seen.entry(i.label.clone()).or_default();
        *k += 1;
        if *k > 1 {
            i.label = format!("{} ({k})", i.label);
        }
    }
    let _lock = engine.write_lock().map_err(engine_error)?;
    engine
        .ingest_bus(inputs, &checkpoints, false, now_ms())
        .map_err(engine_error)?;
    Ok(n)
}

/// The lowest free member slot, held for the session.
fn claim_member(engine: &Engine, bus: &Bus) -> Result<(u32, WriteLock), BusError> {
    loop {
        for k in 0..MAX_MEMBERS {
            let name = format!("{}/member/{k}", bus.config.stream);
            if let Some(claim) = engine.try_claim(&name).map_err(engine_error)? {
                return Ok((k, claim));
            }
        }
        eprintln!("keyward worker: all {MAX_MEMBERS} member slots are taken; waiting");
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Counts the live members and takes this member's share of the partitions (letting go
/// of the rest). Whether what it owns changed.
fn rebalance(
    engine: &Engine,
    bus: &Bus,
    rt: &tokio::runtime::Runtime,
    member: u32,
    owned: &mut BTreeMap<u32, Owned>,
) -> Result<bool, BusError> {
    let mut live = Vec::new();
    for k in 0..MAX_MEMBERS {
        if k == member {
            live.push(k);
            continue;
        }
        let name = format!("{}/member/{k}", bus.config.stream);
        // Free (and let go at once), or held by a live worker.
        if engine.try_claim(&name).map_err(engine_error)?.is_none() {
            live.push(k);
        }
    }
    let members = u32::try_from(live.len()).unwrap_or(1).max(1);
    let rank = u32::try_from(live.iter().filter(|&&k| k < member).count()).unwrap_or(0);
    let mine = |p: u32| p % members == rank;
    let before: Vec<u32> = owned.keys().copied().collect();
    owned.retain(|&p, _| mine(p));
    for p in (0..bus.partitions).filter(|&p| mine(p)) {
        if owned.contains_key(&p) {
            continue;
        }
        let name = bus.checkpoint_name(p);
        let Some(claim) = engine.try_claim(&name).map_err(engine_error)? else {
            // Its previous owner has not let go yet: next round.
            continue;
        };
        let checkpoint = engine.checkpoint(&name).map_err(engine_error)?.unwrap_or(0);
        let partition =
            rt.block_on(bus.open_partition(p, u64::try_from(checkpoint).unwrap_or(0)))?;
        owned.insert(
            p,
            Owned {
                _claim: claim,
                partition,
                buffer: Default::default(),
                more: false,
            },
        );
    }
    Ok(owned.keys().copied().collect::<Vec<_>>() != before)
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
