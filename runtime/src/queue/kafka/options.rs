//! [`KafkaOptions`]: what a `kafka://` connection does beyond the URL's brokers.

use std::time::Duration;

/// Settings of a Kafka connection ([`Broker::connect_kafka`](super::super::Broker::connect_kafka);
/// `Broker::connect` reads the same ones from the URL's query: `kafka://h:9092?partitions=12&create_topics=false`).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::queue::{Broker, KafkaOptions};
/// let options = KafkaOptions::new()
///     .partitions(12)
///     .replication(3)
///     .group_instance_id("billing-0") // static membership: a restart within the session timeout keeps its partitions
///     .config("security.protocol", "plaintext");
/// let broker = Broker::connect_kafka("kafka://k1:9092,k2:9092", options).await?;
/// # let _ = broker; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub(crate) partitions: i32,
    pub(crate) replication: i32,
    pub(crate) create_topics: bool,
    pub(crate) group: Option<String>,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) session_timeout: Duration,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) reply_lease: Duration,
    pub(crate) reply_sweep: Duration,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            partitions: 6,
            replication: 1,
            create_topics: true,
            group: None,
            group_instance_id: None,
            session_timeout: Duration::from_secs(6),
            config: Vec::new(),
            reply_lease: Duration::from_secs(30),
            reply_sweep: Duration::from_secs(30),
        }
    }
}

impl KafkaOptions {
    /// The defaults: topics created on first use with 6 partitions and replication factor 1,
    /// one consumer group per service, a 6 s session timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Partitions of the topics this connection creates (events, retries, dead letters,
    /// requests). Default 6. URL: `partitions=`.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n.max(1);
        self
    }

    /// Replication factor of the topics this connection creates. Default 1. URL: `replication=`.
    pub fn replication(mut self, n: i32) -> Self {
        self.replication = n.max(1);
        self
    }

    /// Whether topics are created on first use (default) or must exist: with `false`, serving
    /// or publishing to a missing topic fails with FAILED_PRECONDITION naming the topic. URL:
    /// `create_topics=false`.
    pub fn create_topics(mut self, on: bool) -> Self {
        self.create_topics = on;
        self
    }

    /// The consumer group of every service's event consumers on this connection, instead of
    /// `sb.event.<service>`. URL: `group=`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Static group membership (`group.instance.id`, KIP-345): a consumer that restarts within
    /// the session timeout gets its partitions back without a rebalance. Give each replica its
    /// own stable id. URL: `group_instance_id=`.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// `session.timeout.ms` of the consumers. Default 6 s. URL: `session_timeout_ms=`.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Any librdkafka property, set on every client of the connection (producer, consumers,
    /// admin client), after switchboard's own (`security.protocol`, `sasl.*`, `linger.ms`, …).
    /// URL: any query parameter with a `.` in its name.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Reads `kafka://host:port[,host:port…][?query]`: the bootstrap servers, and the options
    /// in the query over `self`.
    pub(crate) fn parse_url(mut self, url: &str) -> Result<(String, Self), String> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        let servers: Vec<&str> = hosts
            .split(',')
            .map(|h| h.trim().trim_start_matches("kafka://").trim_end_matches('/'))
            .filter(|h| !h.is_empty())
            .collect();
        if servers.is_empty() {
            return Err("a kafka:// URL names at least one host:port".into());
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |v: &str| v.parse::<i64>().map_err(|_| format!("`{key}={v}`: not a number"));
            match key {
                "partitions" => self.partitions = number(value)?.clamp(1, i32::MAX.into()) as i32,
                "replication" => self.replication = number(value)?.clamp(1, i32::MAX.into()) as i32,
                "create_topics" => self.create_topics = !matches!(value, "false" | "0" | "no"),
                "group" => self.group = Some(value.to_owned()),
                "group_instance_id" => self.group_instance_id = Some(value.to_owned()),
                "session_timeout_ms" => self.session_timeout = Duration::from_millis(number(value)?.max(1) as u64),
                k if k.contains('.') => self.config.push((k.to_owned(), value.to_owned())),
                k => return Err(format!("unknown kafka:// URL parameter `{k}`")),
            }
        }
        Ok((servers.join(","), self))
    }

    /// How long this connection's reply topic stays leased after each renewal: the client
    /// renews its lease in `sb.reply.leases` every third of it, and request servers delete reply
    /// topics whose lease has run out (docs/queue-protocol.md, "Kafka"). Default 30 s.
    pub fn reply_lease(mut self, lease: Duration) -> Self {
        self.reply_lease = lease.max(Duration::from_millis(300));
        self
    }

    /// How often this connection's request servers look for reply topics whose lease ran out
    /// and delete them. Default 30 s; `Duration::ZERO`: never.
    pub fn reply_sweep(mut self, every: Duration) -> Self {
        self.reply_sweep = every;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (servers, o) = KafkaOptions::new().parse_url("kafka://a:9092,b:9093?partitions=3&create_topics=false&linger.ms=0").unwrap();
        assert_eq!(servers, "a:9092,b:9093");
        assert_eq!((o.partitions, o.create_topics), (3, false));
        assert_eq!(o.config, [("linger.ms".to_owned(), "0".to_owned())]);
        assert!(KafkaOptions::new().parse_url("kafka://").is_err());
        assert!(KafkaOptions::new().parse_url("kafka://a:1?bogus=1").is_err());
    }
}
