//! Reply-topic leases: what cleans up the reply topics of clients that went away without closing
//! (docs/queue-protocol.md, "Kafka", "Reply topics and their leases").
//!
//! A client with a reply topic keeps a lease on it in the compacted topic `sb.reply.leases`
//! (1 partition): a record keyed by the reply topic's name whose value is the lease's length in
//! milliseconds (decimal ASCII), written before the reply topic is created and again every third
//! of the lease; on close, a tombstone (null value). Every request server reads that topic from
//! its beginning and, every sweep interval, deletes the `sb.reply.*` topics (from metadata) whose
//! lease ran out, whose client ended it, or for which it has read no lease for a whole lease
//! length (a topic of a client that never wrote one). A lease runs out on the reader's clock: the
//! lease's length after the reader read its latest record, so clocks need not agree. Before each
//! sweep the server writes a probe record (key `sb.sweep`) and waits to read it back: every lease
//! written before the sweep began has been read, so a reader that fell behind or lost its broker
//! does not take live clients' leases for expired ones.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use tokio::sync::{oneshot, OnceCell};
use tonic::Status;

use super::listener::{self, Listener};
use super::options::KafkaOptions;
use super::topics::Topics;

/// The lease topic.
pub(crate) const LEASES: &str = "sb.reply.leases";
/// Every reply topic's name starts with this (the lease topic's too: it is never swept).
const REPLY_PREFIX: &str = "sb.reply.";
/// The key of the servers' probe records.
const PROBE_KEY: &str = "sb.sweep";
/// Admin and metadata requests give up after this.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing a lease or a probe waits for the broker.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sweep waits to read its probe back before it gives up (and tries next time).
const CAUGHT_UP: Duration = Duration::from_secs(10);
/// The longest lease a record is taken to claim (a bogus value does not keep a topic for ever).
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// A connection's part in the leases: the renewal of its reply topic's lease, and the watch of
/// its request servers.
#[derive(Default)]
pub(crate) struct Leases {
    /// The lease topic is there (created, or found).
    topic: OnceCell<()>,
    /// The task renewing this connection's lease.
    renewer: Mutex<Option<tokio::task::AbortHandle>>,
    /// Whether this connection watches the leases (its first request server starts it).
    watching: AtomicBool,
}

impl Leases {
    /// Makes sure the lease topic exists: created compacted with 1 partition (when the
    /// connection creates topics; a broker that refuses the compaction setting gets it plain).
    async fn ensure_topic(&self, topics: &Topics, options: &KafkaOptions) -> Result<(), Status> {
        self.topic
            .get_or_try_init(|| async {
                if topics.is_mock() || !options.create_topics || !topics.existing(&[LEASES]).await?.is_empty() {
                    return topics.ensure_with(&[LEASES], Some(1)).await;
                }
                let admin = topics.admin();
                let compacted = NewTopic::new(LEASES, 1, TopicReplication::Fixed(options.replication)).set("cleanup.policy", "compact");
                let opts = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT));
                match admin.create_topics([&compacted], &opts).await.map(|mut r| r.pop()) {
                    Ok(Some(Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)))) => topics.ensure_with(&[LEASES], Some(1)).await,
                    // Not compacted, then (the topic grows with every renewal until retention).
                    _ => topics.ensure_with(&[LEASES], Some(1)).await,
                }
            })
            .await
            .map(|_| ())
    }

    /// Writes the first lease of `reply_topic` (before the topic is created) and starts renewing
    /// it every third of the lease until [`release`](Self::release).
    pub(crate) async fn hold(&self, topics: &Topics, producer: &FutureProducer, options: &KafkaOptions, reply_topic: &str) -> Result<(), Status> {
        self.ensure_topic(topics, options).await?;
        let lease = options.reply_lease;
        write(producer, reply_topic, Some(lease)).await?;
        let (producer, topic) = (producer.clone(), reply_topic.to_owned());
        let renewer = tokio::spawn(async move {
            let mut every = tokio::time::interval(lease / 3);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(status) = write(&producer, &topic, Some(lease)).await {
                    tracing::warn!(topic = %topic, error = %status.message(), "renewing the reply topic's lease failed");
                }
            }
        });
        if let Some(old) = self.renewer.lock().unwrap().replace(renewer.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    /// Stops renewing the lease.
    pub(crate) fn release(&self) {
        if let Some(renewer) = self.renewer.lock().unwrap().take() {
            renewer.abort();
        }
    }

    /// Ends the lease of `reply_topic` (a tombstone; 1 s at most): on a clean close, once the
    /// topic's consumer has stopped, for a server may delete the topic as soon as it reads it.
    pub(crate) async fn end(&self, producer: &FutureProducer, reply_topic: &str) {
        let record = FutureRecord::<[u8], [u8]>::to(LEASES).key(reply_topic.as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(1), producer.send(record, Duration::from_secs(1))).await;
    }

    /// Starts watching the leases and sweeping expired reply topics, once per connection (not on
    /// the mock cluster, which cannot delete topics; not when sweeping is off). The listener it
    /// returns stops both.
    pub(crate) async fn watch(
        &self,
        config: &ClientConfig,
        topics: &Topics,
        producer: &FutureProducer,
        options: &KafkaOptions,
    ) -> Result<Option<Listener>, Status> {
        if options.reply_sweep.is_zero() || topics.is_mock() || self.watching.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let started = async {
            self.ensure_topic(topics, options).await?;
            let id = format!("{:016x}", fastrand::u64(..));
            let seen = Arc::new(Mutex::new(Seen::default()));
            let listener = read(config, &id, seen.clone()).await?;
            let sweeper = Sweeper {
                id,
                seen,
                producer: producer.clone(),
                admin: topics.admin(),
                lease: options.reply_lease,
                every: options.reply_sweep,
                stop: listener.stop.clone(),
            };
            tokio::spawn(sweeper.run());
            Ok(Some(listener))
        };
        let result = started.await;
        if result.is_err() {
            self.watching.store(false, Ordering::Release);
        }
        result
    }
}

/// Writes a lease of `topic` for `lease`, or its tombstone, and waits for the broker's ack.
async fn write(producer: &FutureProducer, topic: &str, lease: Option<Duration>) -> Result<(), Status> {
    let value = lease.map(|l| l.as_millis().to_string());
    let mut record = FutureRecord::<[u8], [u8]>::to(LEASES).key(topic.as_bytes());
    if let Some(value) = &value {
        record = record.payload(value.as_bytes());
    }
    match producer.send(record, WRITE_TIMEOUT).await {
        Ok(_) => Ok(()),
        Err((err, _)) => Err(super::produce_error(LEASES, &err)),
    }
}

/// What a server's reader has read of the lease topic.
#[derive(Default)]
struct Seen {
    /// Reply topics with a lease, and when it runs out (on this process's clock).
    leases: HashMap<String, Instant>,
    /// Reply topics whose client ended its lease (a tombstone).
    ended: HashSet<String>,
    /// This server's probes read back.
    probes: HashSet<String>,
}

impl Seen {
    fn read(&mut self, id: &str, key: &[u8], value: Option<&[u8]>, now: Instant) {
        let Ok(key) = std::str::from_utf8(key) else { return };
        if key == PROBE_KEY {
            if let Some(probe) = value.and_then(|v| std::str::from_utf8(v).ok()).filter(|v| v.starts_with(id)) {
                self.probes.insert(probe.to_owned());
            }
            return;
        }
        if !key.starts_with(REPLY_PREFIX) || key == LEASES {
            return;
        }
        match value {
            None => {
                self.leases.remove(key);
                self.ended.insert(key.to_owned());
            }
            Some(value) => {
                // Unreadable: taken as the longest lease (kept, rather than deleted by mistake).
                let ms = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u64>().ok());
                let lease = ms.map_or(MAX_LEASE, |ms| Duration::from_millis(ms).min(MAX_LEASE));
                self.leases.insert(key.to_owned(), now + lease);
                self.ended.remove(key);
            }
        }
    }

    /// Which of the reply topics `existing` to delete at `now`: those whose lease ran out or was
    /// ended, and those without a lease since `unleased` first found them so, a `lease` ago.
    /// Forgets what concerns topics no longer there.
    fn expired(&mut self, existing: &HashSet<String>, unleased: &mut HashMap<String, Instant>, lease: Duration, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for topic in existing.iter().filter(|t| t.starts_with(REPLY_PREFIX) && t.as_str() != LEASES) {
            match self.leases.get(topic) {
                Some(until) if *until > now => {
                    unleased.remove(topic);
                }
                Some(_) => out.push(topic.clone()),
                None if self.ended.contains(topic) => out.push(topic.clone()),
                None => {
                    let since = *unleased.entry(topic.clone()).or_insert(now);
                    if now.duration_since(since) >= lease {
                        out.push(topic.clone());
                    }
                }
            }
        }
        self.leases.retain(|t, until| existing.contains(t) || *until > now);
        self.ended.retain(|t| existing.contains(t));
        unleased.retain(|t, _| existing.contains(t));
        out
    }
}

/// Reads the lease topic from its beginning on a thread of its own, into `seen`.
async fn read(config: &ClientConfig, id: &str, seen: Arc<Mutex<Seen>>) -> Result<Listener, Status> {
    let consumer = listener::unjoined_consumer(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = oneshot::channel();
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), Status>>();
    let (stopped, id) = (stop.clone(), id.to_owned());
    std::thread::Builder::new()
        .name("sb-kafka-leases".into())
        .spawn(move || {
            let assigned = listener::assign_all(&consumer, LEASES, Offset::Beginning);
            let ok = assigned.is_ok();
            let _ = ready_tx.send(assigned);
            while ok && !stopped.load(Ordering::Acquire) {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                    if let Some(key) = message.key() {
                        seen.lock().unwrap().read(&id, key, message.payload(), Instant::now());
                    }
                }
            }
            listener::close(consumer);
            let _ = done_tx.send(());
        })
        .map_err(|e| Status::internal(format!("starting the Kafka lease reader thread: {e}")))?;
    match tokio::time::timeout(Duration::from_secs(6), ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(Listener { stop, done }),
        Ok(Ok(Err(status))) => Err(status),
        _ => {
            stop.store(true, Ordering::Release);
            Err(Status::unavailable(format!("assigning the partitions of {LEASES} timed out")))
        }
    }
}

/// A server's sweeps.
struct Sweeper {
    id: String,
    seen: Arc<Mutex<Seen>>,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    lease: Duration,
    every: Duration,
    stop: Arc<AtomicBool>,
}

impl Sweeper {
    async fn run(self) {
        let started = Instant::now();
        let mut unleased = HashMap::new();
        let mut probes = 0u64;
        while self.pause(self.every).await {
            // The first sweep after a whole lease of reading: every live client renewed since.
            if started.elapsed() < self.lease {
                continue;
            }
            probes += 1;
            let probe = format!("{}.{probes}", self.id);
            if let Err(why) = self.caught_up(&probe).await {
                tracing::debug!(reason = %why, "reply-topic sweep skipped");
                continue;
            }
            let existing = match self.reply_topics().await {
                Ok(existing) => existing,
                Err(why) => {
                    tracing::debug!(reason = %why, "reply-topic sweep skipped");
                    continue;
                }
            };
            let expired = self.seen.lock().unwrap().expired(&existing, &mut unleased, self.lease, Instant::now());
            if expired.is_empty() || self.stop.load(Ordering::Acquire) {
                continue;
            }
            let names: Vec<&str> = expired.iter().map(String::as_str).collect();
            let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT));
            match tokio::time::timeout(ADMIN_TIMEOUT + Duration::from_secs(1), self.admin.delete_topics(&names, &options)).await {
                Ok(Ok(results)) => {
                    for result in results {
                        match result {
                            Ok(topic) => {
                                tracing::info!(topic = %topic, "deleted a reply topic whose lease ran out");
                                self.forget(&topic);
                            }
                            Err((topic, RDKafkaErrorCode::UnknownTopicOrPartition)) => self.forget(&topic),
                            Err((topic, code)) => tracing::warn!(topic = %topic, error = %code, "deleting an expired reply topic failed"),
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "deleting expired reply topics failed"),
                Err(_) => tracing::warn!("deleting expired reply topics timed out"),
            }
        }
    }

    /// Queues the tombstone of a deleted topic's lease, so that compaction drops its key (not
    /// waited for: the next sweep finds the topic gone either way).
    fn forget(&self, topic: &str) {
        let _ = self.producer.send_result(FutureRecord::<[u8], [u8]>::to(LEASES).key(topic.as_bytes()));
    }

    /// Sleeps `d`, a little at a time; false once the watch is stopped.
    async fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(250))).await;
        }
    }

    /// Writes `probe` and waits to read it back: the reader has then read every lease written
    /// before.
    async fn caught_up(&self, probe: &str) -> Result<(), String> {
        let record = FutureRecord::<[u8], [u8]>::to(LEASES).key(PROBE_KEY.as_bytes()).payload(probe.as_bytes());
        self.producer.send(record, WRITE_TIMEOUT).await.map_err(|(e, _)| format!("writing a probe to {LEASES}: {e}"))?;
        let until = Instant::now() + CAUGHT_UP;
        loop {
            if self.seen.lock().unwrap().probes.remove(probe) {
                return Ok(());
            }
            if Instant::now() >= until || self.stop.load(Ordering::Acquire) {
                return Err(format!("the probe written to {LEASES} was not read back within {CAUGHT_UP:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The reply topics the cluster has (a metadata request, on a blocking thread).
    async fn reply_topics(&self) -> Result<HashSet<String>, String> {
        let admin = self.admin.clone();
        let looked = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, ADMIN_TIMEOUT));
        match tokio::time::timeout(ADMIN_TIMEOUT + Duration::from_secs(1), looked).await {
            Ok(Ok(Ok(metadata))) => Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && t.name().starts_with(REPLY_PREFIX) && t.name() != LEASES)
                .map(|t| t.name().to_owned())
                .collect()),
            Ok(Ok(Err(e))) => Err(format!("reading Kafka metadata: {e}")),
            Ok(Err(e)) => Err(format!("reading Kafka metadata: {e}")),
            Err(_) => Err("reading Kafka metadata timed out".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn leases_keep_topics_until_they_run_out() {
        let lease = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut seen = Seen::default();
        let mut unleased = HashMap::new();
        seen.read("me", b"sb.reply.live", Some(b"30000"), t0);
        seen.read("me", b"sb.reply.gone", Some(b"30000"), t0);
        seen.read("me", b"sb.reply.closed", Some(b"30000"), t0);
        seen.read("me", b"sb.reply.closed", None, t0);
        seen.read("me", b"sb.sweep", Some(b"me.1"), t0);
        seen.read("me", b"sb.sweep", Some(b"other.1"), t0);
        assert_eq!(seen.probes, set(&["me.1"]));
        let existing = set(&["sb.reply.live", "sb.reply.gone", "sb.reply.closed", "sb.reply.old", "sb.reply.leases", "sb.rpc.x"]);
        // Before the leases run out: only the ended one goes; the one never leased is noted.
        let mut out = seen.expired(&existing, &mut unleased, lease, t0 + Duration::from_secs(10));
        out.sort();
        assert_eq!(out, ["sb.reply.closed"]);
        assert!(unleased.contains_key("sb.reply.old"));
        // The live one renewed; the other did not.
        seen.read("me", b"sb.reply.live", Some(b"30000"), t0 + Duration::from_secs(20));
        let mut out = seen.expired(&existing, &mut unleased, lease, t0 + Duration::from_secs(31));
        out.sort();
        assert_eq!(out, ["sb.reply.closed", "sb.reply.gone"]);
        // A lease of its own a whole lease after it was first found without one.
        let mut out = seen.expired(&existing, &mut unleased, lease, t0 + Duration::from_secs(41));
        out.sort();
        assert_eq!(out, ["sb.reply.closed", "sb.reply.gone", "sb.reply.old"]);
        // Gone from the cluster: forgotten, except a lease still running.
        let out = seen.expired(&set(&["sb.reply.live"]), &mut unleased, lease, t0 + Duration::from_secs(42));
        assert!(out.is_empty());
        assert!(unleased.is_empty() && seen.ended.is_empty());
        assert_eq!(seen.leases.keys().collect::<Vec<_>>(), ["sb.reply.live"]);
        // An unreadable lease keeps its topic.
        seen.read("me", b"sb.reply.odd", Some(b"soon"), t0);
        assert!(seen.expired(&set(&["sb.reply.odd"]), &mut unleased, lease, t0 + Duration::from_secs(3600)).is_empty());
    }
}
