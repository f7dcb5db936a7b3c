//! NATS micro discovery (the NATS "Service API", ADR-32): every [`QueueServer`] on a NATS broker
//! answers `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` for the service it carries, and
//! [`discover`] asks them.
//!
//! ```text
//! $SRV.<VERB>                 every micro service instance on the NATS system answers
//! $SRV.<VERB>.<name>          every replica of one service answers (name: see micro_name)
//! $SRV.<VERB>.<name>.<id>     one replica answers
//!   VERB: PING → io.nats.micro.v1.ping_response  {type, name, id, version, metadata}
//!         INFO → io.nats.micro.v1.info_response  {…, description, endpoints: [{name, subject, queue_group, metadata}]}
//!         STATS → io.nats.micro.v1.stats_response {…, started, endpoints: [{name, subject, queue_group,
//!                 num_requests, num_errors, last_error, processing_time, average_processing_time, data}]}
//! ```
//!
//! Why not async-nats's `service` module: its endpoints own their subscriptions and answer
//! through `Request::respond` (one frame, its own error headers), and they count statistics only
//! there. switchboard's servers keep one `sb.rpc.<service>.*` queue subscription, answer in their
//! own frames (a stream is several, the status in `sb-status`), and run the shared call path;
//! so they answer the three verbs themselves (one task, three plain subscriptions, JSON made
//! here) and point INFO at the subjects they really serve. That is ADR-32's discovery contract
//! without a second request path.
//!
//! [`QueueServer`]: super::QueueServer

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tonic::Status;

use super::Broker;

/// Subject prefix of the Service API.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
const PREFIX: &str = "$SRV";

/// The NATS micro name of a service: its full name with every `.` turned into `-` and any other
/// character outside `[A-Za-z0-9_-]` into `_` (ADR-32 names are `[A-Za-z0-9_-]+`), e.g.
/// `echo.v1.Echo` → `echo-v1-Echo`. Protobuf names have no `-`, so two services never share
/// one. Replicas answer `$SRV.PING.<name>`, `$SRV.INFO.<name>` and `$SRV.STATS.<name>`.
///
/// ```
/// assert_eq!(switchboard::queue::micro_name("echo.v1.Echo"), "echo-v1-Echo");
/// ```
pub fn micro_name(service: &str) -> String {
    service
        .chars()
        .map(|c| match c {
            '.' => '-',
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => c,
            _ => '_',
        })
        .collect()
}

/// Whether `version` is a semantic version (`MAJOR.MINOR.PATCH[-pre][+build]`), as ADR-32 asks.
pub(crate) fn is_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let idents = |s: &str, leading_zeros: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (leading_zeros || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| idents(p, false))
        && build.is_none_or(|b| idents(b, true))
}

/// One replica of a service, as its `$SRV.INFO` answer describes it ([`discover`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInstance {
    /// The micro name ([`micro_name`] of the service's full name).
    pub name: String,
    /// This replica's id (unique per serving [`QueueServer`](super::QueueServer); a NUID).
    pub id: String,
    /// The version the replica reports (semver).
    pub version: String,
    /// Its description.
    pub description: String,
    /// Its metadata: switchboard replicas put the service's full name under
    /// `switchboard.service`, the body encoding under `switchboard.content_type` and the queue
    /// protocol's version under `switchboard.protocol`.
    pub metadata: BTreeMap<String, String>,
    /// What it serves: one endpoint per method.
    pub endpoints: Vec<InstanceEndpoint>,
}

impl ServiceInstance {
    /// The service's full name (`switchboard.service`), when a switchboard replica answered.
    pub fn service(&self) -> Option<&str> {
        self.metadata.get(META_SERVICE).map(String::as_str)
    }
}

/// One endpoint of a [`ServiceInstance`]: a method and the subject it is called on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceEndpoint {
    /// The endpoint's name (switchboard: the method's wire name).
    pub name: String,
    /// The subject requests go to (switchboard: `sb.rpc.<service>.<method>`).
    pub subject: String,
    /// The queue group its replicas share (switchboard: `sb.rpc.<service>`).
    pub queue_group: String,
    /// Its metadata (switchboard: `switchboard.method`, `switchboard.shape` — `unary` or
    /// `server_streaming` — and for event methods `switchboard.event_subject`).
    pub metadata: BTreeMap<String, String>,
}

const META_SERVICE: &str = "switchboard.service";

/// Asks the replicas of `service` (its full name, e.g. `echo.v1.Echo`; `""` for every micro
/// service on the NATS system) who they are: sends `$SRV.INFO.<name>` and collects the answers
/// that come within `timeout` (at once an empty list when nobody answers: NATS reports no
/// responders). Answers that are not ADR-32 info responses are skipped.
///
/// Only a `nats://` broker has discovery; other brokers fail with UNIMPLEMENTED.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let broker = switchboard::queue::Broker::connect("nats://127.0.0.1:4222").await?;
/// for replica in switchboard::queue::discover(&broker, "echo.v1.Echo", Duration::from_millis(500)).await? {
///     println!("{} {} {:?}", replica.id, replica.version, replica.endpoints.iter().map(|e| &e.subject).collect::<Vec<_>>());
/// }
/// # Ok(()) }
/// ```
pub async fn discover(broker: &Broker, service: &str, timeout: Duration) -> Result<Vec<ServiceInstance>, Status> {
    #[cfg(feature = "nats")]
    if let Some(nats) = broker.nats() {
        return nats::discover(nats.client(), service, timeout).await;
    }
    let _ = (service, timeout);
    Err(Status::unimplemented(format!("NATS micro discovery needs a nats:// broker, not {}", broker.url())))
}

/// What the replica's STATS answer counts, per endpoint (by method index): the requests answered
/// (not duplicates answered from the dedupe window, nor requests shed, expired or cancelled), the
/// ones answered with an error, and their processing time.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub(crate) struct Stats {
    endpoints: Vec<Option<EndpointStats>>,
}

#[derive(Default)]
struct EndpointStats {
    requests: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
    /// `<gRPC code number>:<message>` of the last error.
    last_error: Mutex<String>,
}

#[cfg_attr(not(feature = "nats"), allow(dead_code))]
impl Stats {
    /// Counters for the methods at `served` (indexes into the descriptor's methods).
    fn new(methods: usize, served: &[usize]) -> Stats {
        let mut endpoints: Vec<Option<EndpointStats>> = (0..methods).map(|_| None).collect();
        for &i in served {
            endpoints[i] = Some(EndpointStats::default());
        }
        Stats { endpoints }
    }

    /// One request of method `index` answered after `took`, with `error` unless it succeeded.
    pub(crate) fn record(&self, index: usize, took: Duration, error: Option<&Status>) {
        let Some(Some(e)) = self.endpoints.get(index) else { return };
        e.requests.fetch_add(1, Ordering::Relaxed);
        e.nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(status) = error {
            e.errors.fetch_add(1, Ordering::Relaxed);
            *e.last_error.lock().unwrap() = format!("{}:{}", status.code() as i32, status.message());
        }
    }
}

#[cfg(feature = "nats")]
pub(crate) use nats::register;

#[cfg(feature = "nats")]
mod nats {
    use super::*;

    use std::sync::Arc;

    use async_nats::{Client, StatusCode, Subscriber};
    use bytes::Bytes;
    use futures_util::StreamExt;
    use serde_json::{json, Value};
    use tokio::sync::{oneshot, watch};

    use crate::descriptor::ServiceDescriptor;
    use crate::queue::wire;
    use crate::CallShape;

    /// What a replica says about itself.
    struct Instance {
        name: String,
        id: String,
        version: String,
        metadata: BTreeMap<String, String>,
        started: String,
        /// (method index, endpoint info JSON).
        endpoints: Vec<(usize, Value)>,
        /// The PING and INFO answers (they never change).
        ping: Bytes,
        info: Bytes,
    }

    /// A replica answering the Service API. [`Registration::deregister`] (or dropping it) stops
    /// it: its subscriptions end, so it no longer answers.
    pub(crate) struct Registration {
        pub stats: Arc<Stats>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Registration {
        /// Stops answering; returns once the NATS server has dropped the subscriptions (or after
        /// a second, on a broken connection).
        pub(crate) async fn deregister(mut self) {
            drop(self.stop.take());
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.task).await;
        }
    }

    impl Drop for Registration {
        fn drop(&mut self) {
            // Ends the task (it unsubscribes on its way out).
            drop(self.stop.take());
        }
    }

    /// Starts answering `$SRV.*` for the service of `desc`, served on `methods` (indexes into its
    /// methods). `json` says whether its bodies are JSON (else protobuf).
    pub(crate) async fn register(
        client: &Client,
        shutdown: watch::Receiver<bool>,
        desc: &'static ServiceDescriptor,
        methods: &[usize],
        version: &str,
        json: bool,
    ) -> Result<Registration, Status> {
        let service = desc.full_name;
        let name = micro_name(service);
        // The inbox's last token is a NUID: unique per replica.
        let id = client.new_inbox().rsplit('.').next().unwrap_or_default().to_owned();
        let metadata: BTreeMap<String, String> = [
            (META_SERVICE, service.to_owned()),
            ("switchboard.content_type", (if json { wire::JSON } else { wire::PROTOBUF }).to_owned()),
            ("switchboard.protocol", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let queue_group = wire::request_queue(service);
        let endpoints: Vec<(usize, Value)> = methods
            .iter()
            .map(|&i| {
                let m = &desc.methods[i];
                let mut meta = BTreeMap::from([
                    ("switchboard.method", m.name.to_owned()),
                    ("switchboard.shape", (if m.shape == CallShape::ServerStreaming { "server_streaming" } else { "unary" }).to_owned()),
                ]);
                if m.event {
                    meta.insert("switchboard.event_subject", wire::event_address(service, m.name));
                }
                let info = json!({
                    "name": micro_name(m.name),
                    "subject": wire::request_subject(service, m.name),
                    "queue_group": queue_group,
                    "metadata": meta,
                });
                (i, info)
            })
            .collect();
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let ping = json!({
            "type": "io.nats.micro.v1.ping_response",
            "name": name,
            "id": id,
            "version": version,
            "metadata": metadata,
        });
        let info = json!({
            "type": "io.nats.micro.v1.info_response",
            "name": name,
            "id": id,
            "version": version,
            "description": format!("{service} (switchboard queue protocol 1)"),
            "metadata": metadata,
            "endpoints": endpoints.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        });
        let instance = Instance {
            ping: Bytes::from(ping.to_string()),
            info: Bytes::from(info.to_string()),
            name,
            id,
            version: version.to_owned(),
            metadata,
            started,
            endpoints,
        };
        let mut subscribers = Vec::with_capacity(3);
        for subject in [format!("{PREFIX}.*"), format!("{PREFIX}.*.{}", instance.name), format!("{PREFIX}.*.{}.{}", instance.name, instance.id)] {
            let subscriber = client
                .subscribe(subject.clone())
                .await
                .map_err(|e| Status::unavailable(format!("subscribing to {subject}: {e}")))?;
            subscribers.push(subscriber);
        }
        let stats = Arc::new(Stats::new(desc.methods.len(), methods));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(answer(client.clone(), subscribers, instance, stats.clone(), stopped, shutdown));
        Ok(Registration { stats, stop: Some(stop), task })
    }

    /// Answers the verbs until stopped, then unsubscribes and flushes, so the NATS server has
    /// forgotten this replica when [`Registration::deregister`] returns.
    async fn answer(
        client: Client,
        subscribers: Vec<Subscriber>,
        instance: Instance,
        stats: Arc<Stats>,
        mut stopped: oneshot::Receiver<()>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut requests = futures_util::stream::select_all(subscribers);
        loop {
            let message = tokio::select! {
                m = requests.next() => m,
                _ = &mut stopped => break,
                _ = shutdown.wait_for(|down| *down) => return,
            };
            let Some(message) = message else { return };
            let Some(reply) = message.reply else { continue };
            let body = match message.subject.split('.').nth(1) {
                Some("PING") => instance.ping.clone(),
                Some("INFO") => instance.info.clone(),
                Some("STATS") => Bytes::from(stats_answer(&instance, &stats).to_string()),
                // Verbs this replica does not know (SCHEMA, gone from ADR-32): no answer.
                _ => continue,
            };
            let _ = client.publish(reply, body).await;
        }
        for mut subscriber in requests.into_iter() {
            let _ = subscriber.unsubscribe().await;
        }
        let _ = client.flush().await;
    }

    fn stats_answer(instance: &Instance, stats: &Stats) -> Value {
        let endpoints: Vec<Value> = instance
            .endpoints
            .iter()
            .map(|(i, info)| {
                let (requests, errors, nanos, last_error) = match stats.endpoints.get(*i) {
                    Some(Some(e)) => (
                        e.requests.load(Ordering::Relaxed),
                        e.errors.load(Ordering::Relaxed),
                        e.nanos.load(Ordering::Relaxed),
                        e.last_error.lock().unwrap().clone(),
                    ),
                    _ => (0, 0, 0, String::new()),
                };
                json!({
                    "name": info["name"],
                    "subject": info["subject"],
                    "queue_group": info["queue_group"],
                    "num_requests": requests,
                    "num_errors": errors,
                    "last_error": last_error,
                    "processing_time": nanos,
                    "average_processing_time": nanos.checked_div(requests).unwrap_or(0),
                    "data": null,
                })
            })
            .collect();
        json!({
            "type": "io.nats.micro.v1.stats_response",
            "name": instance.name,
            "id": instance.id,
            "version": instance.version,
            "metadata": instance.metadata,
            "started": instance.started,
            "endpoints": endpoints,
        })
    }

    /// `$SRV.INFO[.<name>]` to everyone, answers gathered until `timeout`.
    pub(super) async fn discover(client: &Client, service: &str, timeout: Duration) -> Result<Vec<ServiceInstance>, Status> {
        let subject = match service {
            "" => format!("{PREFIX}.INFO"),
            s => format!("{PREFIX}.INFO.{}", micro_name(s)),
        };
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.map_err(|e| Status::unavailable(format!("subscribing to an inbox: {e}")))?;
        client
            .publish_with_reply(subject.clone(), inbox, Bytes::new())
            .await
            .map_err(|e| Status::unavailable(format!("publishing to {subject}: {e}")))?;
        let until = tokio::time::Instant::now() + timeout;
        let mut found = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await {
            match message.status {
                // Nobody subscribes to the subject: nobody will answer.
                Some(StatusCode::NO_RESPONDERS) => break,
                None | Some(StatusCode::OK) => {}
                Some(_) => continue,
            }
            if let Some(instance) = parse_info(&message.payload) {
                found.push(instance);
            }
        }
        let _ = answers.unsubscribe().await;
        Ok(found)
    }

    /// An `io.nats.micro.v1.info_response`, if `body` is one.
    fn parse_info(body: &[u8]) -> Option<ServiceInstance> {
        let v: Value = serde_json::from_slice(body).ok()?;
        if v.get("type").and_then(Value::as_str).is_some_and(|t| t != "io.nats.micro.v1.info_response") {
            return None;
        }
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let map = |v: &Value| -> BTreeMap<String, String> {
            v.get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default()
        };
        let endpoints = v
            .get("endpoints")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|e| {
                        Some(InstanceEndpoint {
                            name: text(e, "name")?,
                            subject: text(e, "subject")?,
                            queue_group: text(e, "queue_group").unwrap_or_default(),
                            metadata: map(e),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(ServiceInstance {
            name: text(&v, "name")?,
            id: text(&v, "id")?,
            version: text(&v, "version")?,
            description: text(&v, "description").unwrap_or_default(),
            metadata: map(&v),
            endpoints,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn info_answers_parse_back() {
            let body = br#"{"type":"io.nats.micro.v1.info_response","name":"echo-v1-Echo","id":"abc","version":"1.2.3",
                "description":"d","metadata":{"switchboard.service":"echo.v1.Echo"},
                "endpoints":[{"name":"Echo","subject":"sb.rpc.echo.v1.Echo.Echo","queue_group":"sb.rpc.echo.v1.Echo","metadata":null}]}"#;
            let i = parse_info(body).expect("parsed");
            assert_eq!((i.name.as_str(), i.id.as_str(), i.service()), ("echo-v1-Echo", "abc", Some("echo.v1.Echo")));
            assert_eq!(i.endpoints[0].subject, "sb.rpc.echo.v1.Echo.Echo");
            assert!(parse_info(br#"{"type":"io.nats.micro.v1.ping_response","name":"x","id":"y","version":"1.0.0"}"#).is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert_eq!(micro_name("echo.v1.Echo"), "echo-v1-Echo");
        assert_eq!(micro_name("grpc.testing.TestService"), "grpc-testing-TestService");
        assert_eq!(micro_name("a_b.C d"), "a_b-C_d");
        for ok in ["0.1.0", "1.2.3", "10.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+x-y"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["", "1", "1.2", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "v1.2.3", "1.2.3.4"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
