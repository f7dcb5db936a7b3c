//! Consumers outside any group: a listener thread per reply topic and per served service's
//! cancel topic (every partition assigned, no offsets committed), and the dead-letter reader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tonic::Status;

use super::records;
use super::super::wire::Envelope;

/// How long a listener blocks in one poll (it checks for its stop flag in between).
const POLL: Duration = Duration::from_millis(50);
/// Metadata and offset look-ups give up after this.
const LOOKUP: Duration = Duration::from_secs(5);

/// A running listener: set `stop`, then `done` fires.
pub(crate) struct Listener {
    pub stop: Arc<AtomicBool>,
    pub done: oneshot::Receiver<()>,
}

/// A consumer that assigns partitions itself: librdkafka assigns partitions only to a consumer
/// with a group id, and this one never joins the group nor commits, so the id is only a name.
pub(crate) fn unjoined_consumer(config: &ClientConfig) -> Result<BaseConsumer, Status> {
    let mut config = config.clone();
    config.set("group.id", format!("sb.listener.{:016x}", fastrand::u64(..))).set("enable.auto.commit", "false");
    config.create().map_err(|e| Status::unavailable(format!("creating a Kafka consumer: {e}")))
}

/// Listens to every partition of `topic` from `from` (its end, or its beginning for a topic
/// created just now), calling `each` with every record, and with `None` when a poll found
/// nothing, until `each` returns false or the listener is stopped.
pub(crate) async fn listen(
    config: &ClientConfig,
    topic: &str,
    from: Offset,
    mut each: impl FnMut(Option<Envelope>) -> bool + Send + 'static,
) -> Result<Listener, Status> {
    let consumer = unjoined_consumer(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = oneshot::channel();
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), Status>>();
    let topic = topic.to_owned();
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("sb-kafka-listener".into())
        .spawn(move || {
            // Partitions are looked up here, on the listener's thread (blocking metadata requests).
            let assigned = assign_all(&consumer, &topic, from);
            let ok = assigned.is_ok();
            let _ = ready_tx.send(assigned);
            while ok && !stopped.load(Ordering::Acquire) {
                let record = match consumer.poll(POLL) {
                    Some(Ok(message)) => Some(records::envelope_of(&message)),
                    _ => None,
                };
                if !each(record) {
                    break;
                }
            }
            close(consumer);
            let _ = done_tx.send(());
        })
        .map_err(|e| Status::internal(format!("starting a Kafka listener thread: {e}")))?;
    match tokio::time::timeout(LOOKUP + Duration::from_secs(1), ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(Listener { stop, done }),
        Ok(Ok(Err(status))) => Err(status),
        _ => {
            stop.store(true, Ordering::Release);
            Err(Status::unavailable(format!("assigning the partitions of {} timed out", "the listener's topic")))
        }
    }
}

/// Closes a consumer that never joined a group, bounded in time (its drop would wait for the
/// close without bound).
pub(crate) fn close(consumer: BaseConsumer) {
    if consumer.close_queue().is_ok() {
        let until = Instant::now() + Duration::from_secs(2);
        while !consumer.closed() && Instant::now() < until {
            let _ = consumer.poll(POLL);
        }
    }
    if consumer.closed() {
        drop(consumer);
    } else {
        std::mem::forget(consumer);
    }
}

/// Assigns every partition of `topic`, from `from`.
pub(crate) fn assign_all(consumer: &BaseConsumer, topic: &str, from: Offset) -> Result<(), Status> {
    let partitions = partitions_of(consumer, topic, LOOKUP)?;
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for partition in partitions {
        tpl.add_partition_offset(topic, partition, from).map_err(|e| Status::internal(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| Status::unavailable(format!("assigning {topic}: {e}")))
}

/// The partitions of `topic` (waits a little for a topic created just now to show up).
fn partitions_of<C: rdkafka::consumer::ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, wait: Duration) -> Result<Vec<i32>, Status> {
    let until = Instant::now() + wait;
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), LOOKUP).map_err(|e| Status::unavailable(format!("reading the metadata of {topic}: {e}")))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic).filter(|t| t.error().is_none() && !t.partitions().is_empty());
        if let Some(t) = found {
            return Ok(t.partitions().iter().map(|p| p.id()).collect());
        }
        if Instant::now() >= until {
            return Err(Status::failed_precondition(format!("the Kafka topic `{topic}` does not exist")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads up to `max` records of `topic` that group `group` has not taken yet, and commits past
/// them (blocking: run it on a blocking thread). Each record comes back with its partition and
/// offset in `sb-dlq-partition` / `sb-dlq-offset`.
pub(crate) fn take(config: &ClientConfig, topic: &str, group: &str, max: usize) -> Result<Vec<Envelope>, Status> {
    let unavailable = |e: rdkafka::error::KafkaError| Status::unavailable(format!("reading {topic}: {e}"));
    let mut config = config.clone();
    config.set("group.id", group).set("enable.auto.commit", "false").set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create().map_err(unavailable)?;
    let partitions = match partitions_of(&consumer, topic, Duration::ZERO) {
        Ok(p) => p,
        // Nothing was ever dead-lettered there.
        Err(status) if status.code() == tonic::Code::FailedPrecondition => return Ok(Vec::new()),
        Err(status) => return Err(status),
    };
    // Where the reader group stands, and where each partition ends.
    let mut wanted = TopicPartitionList::with_capacity(partitions.len());
    for &p in &partitions {
        wanted.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(wanted, LOOKUP).map_err(unavailable)?;
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    let mut left = Vec::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, LOOKUP).map_err(unavailable)?;
        let from = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= low => o,
            _ => low,
        };
        if from < high {
            tpl.add_partition_offset(topic, p, Offset::Offset(from)).map_err(unavailable)?;
            left.push((p, high));
        }
    }
    let mut out = Vec::new();
    if left.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(unavailable)?;
    let mut next: Vec<(i32, i64)> = Vec::new();
    let until = Instant::now() + LOOKUP;
    while out.len() < max && !left.is_empty() && Instant::now() < until {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let (p, offset) = (message.partition(), message.offset());
        let mut env = records::envelope_of(&message);
        env.push("sb-dlq-partition", p.to_string());
        env.push("sb-dlq-offset", offset.to_string());
        out.push(env);
        match next.iter_mut().find(|(q, _)| *q == p) {
            Some(slot) => slot.1 = offset + 1,
            None => next.push((p, offset + 1)),
        }
        if let Some(i) = left.iter().position(|(q, high)| *q == p && offset + 1 >= *high) {
            left.remove(i);
        }
    }
    if !next.is_empty() {
        let mut commit = TopicPartitionList::with_capacity(next.len());
        for (p, offset) in next {
            commit.add_partition_offset(topic, p, Offset::Offset(offset)).map_err(unavailable)?;
        }
        consumer.commit(&commit, CommitMode::Sync).map_err(unavailable)?;
    }
    close(consumer);
    Ok(out)
}
