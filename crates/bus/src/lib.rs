//! Keyward past one machine: normalized records on a NATS JetStream stream, partitioned by
//! identity key (`async-nats` lives only here).
//!
//! - **Stream**: one JetStream stream (`KEYWARD` by default) on the subjects
//!   `keyward.records.<partition>`, file storage, work-queue retention (a record leaves the
//!   stream once a worker acknowledged it, after its store commit), a duplicate window for
//!   the message ids the gateway sets ([`wire::message_id`]). The partition count is fixed
//!   when the stream is made (one subject per partition); every process reads it back.
//! - **Gateway** ([`Publisher`]): implements the engine's [`keyward_engine::Forward`]; a
//!   flush publishes every pending record and waits for JetStream's acknowledgements,
//!   retrying (the ids make a retry harmless) until the bus answers or the deadline passes.
//! - **Worker** ([`worker`]): owns partitions through store claims, resumes each from the
//!   checkpoint its store holds, commits records and checkpoint in one transaction, then
//!   acknowledges.

pub use keyward_normalize::wire;
pub mod worker;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use keyward_engine::{Forward, ForwardOrigin};

/// The stream's name unless told otherwise.
pub const DEFAULT_STREAM: &str = "KEYWARD";
/// Partitions of a new stream unless told otherwise.
pub const DEFAULT_PARTITIONS: u32 = 8;
/// Records published before a flush is forced.
const PUBLISH_BATCH: usize = 2_048;
/// JetStream's duplicate window for the gateway's message ids.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{0}")]
    Nats(String),
    #[error(
        "the stream `{stream}` exists but is not Keyward's (its subjects are not `keyward.records.…`); name another with --bus-stream"
    )]
    NotOurs { stream: String },
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error(transparent)]
    Engine(#[from] keyward_engine::EngineError),
}

fn nats(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Nats(format!("{what}: {e}"))
}

/// Where the bus is and how its stream is laid out.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `nats://host:port` (user and password or a token may be in the URL).
    pub url: String,
    pub stream: String,
    /// Partitions if the stream is made now (an existing stream keeps its own).
    pub partitions: u32,
}

impl BusConfig {
    pub fn new(url: &str) -> Self {
        BusConfig {
            url: url.to_owned(),
            stream: DEFAULT_STREAM.to_owned(),
            partitions: DEFAULT_PARTITIONS,
        }
    }

    /// The subject of partition `p`.
    pub fn subject(&self, p: u32) -> String {
        format!("{}.{p}", self.prefix())
    }

    fn prefix(&self) -> String {
        format!("keyward.records.{}", self.stream.to_ascii_lowercase())
    }
}

/// A connection to the bus and its stream.
pub struct Bus {
    pub config: BusConfig,
    js: jetstream::Context,
    stream: stream::Stream,
    /// The stream's partition count.
    pub partitions: u32,
}

impl Bus {
    /// Connects (reconnecting by itself after a NATS restart) and finds or makes the stream.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("keyward")
            .connect(config.url.as_str())
            .await
            .map_err(|e| nats(&format!("connecting to {}", redact(&config.url)), e))?;
        let js = jetstream::new(client);
        let wanted = stream::Config {
            name: config.stream.clone(),
            description: Some("Keyward: normalized records, one subject per partition".into()),
            // One subject per partition: the count is read back from the stream (NATS
            // servers before 2.10 keep no stream metadata).
            subjects: (0..config.partitions).map(|p| config.subject(p)).collect(),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let mut stream = js
            .get_or_create_stream(wanted)
            .await
            .map_err(|e| nats(&format!("the stream `{}`", config.stream), e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| nats(&format!("the stream `{}`", config.stream), e))?;
        let subjects = &info.config.subjects;
        let partitions = u32::try_from(subjects.len())
            .ok()
            .filter(|&n| n > 0 && (0..n).all(|p| subjects.contains(&config.subject(p))))
            .ok_or_else(|| BusError::NotOurs {
                stream: config.stream.clone(),
            })?;
        Ok(Bus {
            config,
            js,
            stream,
            partitions,
        })
    }

    /// The checkpoint name of partition `p` (in the store).
    pub fn checkpoint_name(&self, p: u32) -> String {
        format!("{}/{p}", self.config.stream)
    }

    /// Records waiting in the stream (published, not yet acknowledged by a worker), and
    /// whether anything was ever published to it.
    pub async fn backlog(&mut self) -> Result<(u64, bool), BusError> {
        let info = self
            .stream
            .info()
            .await
            .map_err(|e| nats("stream info", e))?;
        Ok((info.state.messages, info.state.last_sequence > 0))
    }

    /// Partition `p`'s consumer, made afresh to deliver, in order, every record after
    /// `checkpoint` (the stream sequence of the last record the store holds): records at or
    /// before it are purged (committed, but their acknowledgements were lost with the worker
    /// that took them), and the old consumer goes with what it had delivered and not yet
    /// had acknowledged. Only the partition's owner may call this.
    pub async fn open_partition(&self, p: u32, checkpoint: u64) -> Result<Partition, BusError> {
        let subject = self.config.subject(p);
        if checkpoint > 0 {
            self.stream
                .purge()
                .filter(subject.as_str())
                .sequence(checkpoint + 1)
                .await
                .map_err(|e| nats(&format!("purging {subject}"), e))?;
        }
        let name = format!("keyward-{}-{p}", self.config.stream.to_ascii_lowercase());
        // Absent the first time; any other error shows when it is made again.
        let _absent = self.stream.delete_consumer(&name).await;
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("Keyward worker of partition {p}")),
                filter_subject: subject.clone(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|e| nats(&format!("the consumer {name}"), e))?;
        Ok(Partition {
            number: p,
            consumer,
            last: checkpoint,
            committed: checkpoint,
        })
    }

    /// A publisher for a gateway: records are buffered and published on flush, with the
    /// runtime `rt` (called from a thread outside it).
    pub fn publisher(&self, rt: tokio::runtime::Handle) -> Publisher {
        Publisher {
            js: self.js.clone(),
            config: self.config.clone(),
            partitions: self.partitions,
            rt,
            pending: Vec::new(),
            deadline: Duration::from_secs(120),
            published: 0,
        }
    }
}

/// A URL without its password or token, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!(
                "{}://…@{}",
                url.get(..s).unwrap_or(""),
                url.get(at + 1..).unwrap_or("")
            )
        }
        _ => url.to_owned(),
    }
}

/// One partition's consumer, owned by this worker.
pub struct Partition {
    pub number: u32,
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// The stream sequence of the last record fetched (committed, or waiting in the
    /// worker to be).
    pub last: u64,
    /// The stream sequence of the last record committed (the store's checkpoint).
    pub committed: u64,
}

/// A record delivered to a worker.
pub struct Delivered {
    /// Its stream sequence.
    pub sequence: u64,
    pub payload: bytes::Bytes,
    /// When JetStream stored it (for latency figures), in ms since the epoch.
    pub published_ms: i64,
    /// Records waiting after it on its partition when it was delivered.
    pub pending: u64,
    message: jetstream::Message,
}

impl Partition {
    /// Up to `max` records after those already fetched, in stream order, without waiting
    /// for more (empty: nothing waiting). A record delivered again is passed over:
    /// acknowledged if it is committed (its acknowledgement was lost), left alone if it
    /// waits in the worker (the commit's acknowledgement will do).
    pub async fn fetch(&mut self, max: usize) -> Result<Vec<Delivered>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| nats("fetching", e))?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let message = m.map_err(|e| nats("fetching", e))?;
            let (sequence, published_ms, pending) = {
                let info = message
                    .info()
                    .map_err(|e| nats("a delivery's metadata", e))?;
                let ms = info.published.unix_timestamp_nanos() / 1_000_000;
                let ms = i64::try_from(ms).unwrap_or(i64::MAX);
                (info.stream_sequence, ms, info.pending)
            };
            if sequence <= self.committed {
                // Committed before: let it go.
                let _ = message.ack().await;
                continue;
            }
            if sequence <= self.last {
                continue;
            }
            self.last = sequence;
            out.push(Delivered {
                sequence,
                payload: message.payload.clone(),
                published_ms,
                pending,
                message,
            });
        }
        Ok(out)
    }
}

/// Acknowledges records after their commit, so the stream lets them go. A lost
/// acknowledgement costs nothing: the checkpoint passes the record over when it comes
/// again.
pub async fn acknowledge(records: Vec<Delivered>) {
    let acks = records.iter().map(|d| d.message.ack());
    for r in futures_util::future::join_all(acks).await {
        // Nothing to do: see above.
        let _ = r;
    }
}

/// The gateway's side: accepted records to their partitions.
pub struct Publisher {
    js: jetstream::Context,
    config: BusConfig,
    partitions: u32,
    rt: tokio::runtime::Handle,
    /// Subject, message id and payload of records not yet acknowledged by JetStream.
    pending: Vec<(String, String, bytes::Bytes)>,
    /// How long a flush keeps retrying while the bus does not answer.
    pub deadline: Duration,
    /// Records acknowledged so far.
    pub published: u64,
}

impl Publisher {
    /// Publishes every pending record and waits for its acknowledgement; records that
    /// failed (the bus restarting) are published again until `deadline`.
    async fn publish_pending(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let mut failed = Vec::new();
            let mut last_error = None;
            let mut acks = Vec::with_capacity(self.pending.len());
            for (subject, id, payload) in self.pending.drain(..) {
                let msg = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(&id);
                match self.js.send_publish(subject.clone(), msg).await {
                    Ok(ack) => acks.push(((subject, id, payload), ack)),
                    Err(e) => {
                        last_error = Some(e.to_string());
                        failed.push((subject, id, payload));
                    }
                }
            }
            let (records, futures): (Vec<_>, Vec<_>) = acks.into_iter().unzip();
            let results =
                futures_util::future::join_all(futures.into_iter().map(|f| f.into_future())).await;
            for (record, r) in records.into_iter().zip(results) {
                match r {
                    Ok(_) => self.published += 1,
                    Err(e) => {
                        last_error = Some(e.to_string());
                        failed.push(record);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= self.deadline {
                let n = failed.len();
                self.pending = failed;
                return Err(format!(
                    "{n} records not acknowledged by {} within {} s: {}",
                    redact(&self.config.url),
                    self.deadline.as_secs(),
                    last_error.unwrap_or_default()
                ));
            }
            self.pending = failed;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

impl Forward for Publisher {
    fn send(
        &mut self,
        origin: &ForwardOrigin<'_>,
        out: keyward_normalize::Output<'_>,
    ) -> Result<(), String> {
        let (payload, key) = wire::encode(origin, &out).map_err(|e| e.to_string())?;
        let id = wire::message_id(&payload);
        let subject = self.config.subject(wire::partition(&key, self.partitions));
        self.pending.push((subject, id, payload.into()));
        if self.pending.len() >= PUBLISH_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rt = self.rt.clone();
        rt.block_on(self.publish_pending())
    }
}
