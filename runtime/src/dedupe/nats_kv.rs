//! [`NatsKvStore`]: the idempotency window in a JetStream key-value bucket, shared by a service's
//! replicas (feature `nats`).
//!
//! ```text
//! bucket   history 1, max_age = the window: every key (claim or answer) is gone a window after
//!          its last write
//! claim    entry(k): absent or deleted → create(k, "c<lease ms>:<claim id>")  (fails if it exists)
//!          held by another claim, unchanged (same revision) for its whole lease as seen from
//!          here → update(k, our claim, that revision)  (compare-and-set: one taker wins)
//! refresh  held by our claim → update(k, same value, revision): a new revision, seen as alive
//! finish   held by our claim → update(k, "a<answer>", revision); absent → create; else leave it
//! release  held by our claim → delete(k, expecting that revision)
//! ```
//!
//! Keys are the server's keys in URL-safe base64 (a bucket's keys allow only `[-/_=.A-Za-z0-9]`).
//! A lapsed lease is told without comparing clocks: a claim is taken over only by a replica that
//! has seen it at the same revision for a whole lease (its holder renews it every third of one),
//! so a replica that first sees a dead claim waits up to one lease before running the message.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::stream;
use async_nats::ServerAddr;
use base64::Engine as _;
use futures_util::future::BoxFuture;

use super::store::record::{self, Record};
use super::store::Observed;
use super::{Answer, ClaimId, Claimed, DedupeStore, StoreError};

/// A JetStream key-value bucket holding a [`DedupeStore`]: the replicas of a service share one
/// idempotency window, so a message redelivered (or sent again by its caller) to another replica
/// is answered from the first run. See [`DedupeStore`] for what it guarantees.
///
/// The bucket's `max_age` is the window: answers are kept for it whatever window the servers
/// ask (a bucket that exists already keeps its own settings).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use switchboard::{Request, Response, Status};
/// # #[switchboard::service(package = "hello.v1", grpc = false)]
/// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
/// # struct Impl;
/// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use switchboard::dedupe::NatsKvStore;
/// let broker = switchboard::queue::Broker::connect("nats://127.0.0.1:4222").await?;
/// let store = NatsKvStore::connect("nats://127.0.0.1:4222", "greeter-dedupe", Duration::from_secs(300)).await?;
/// GreeterQueueServer::new(Impl).dedupe_store(Arc::new(store)).serve(&broker).await?;
/// # Ok(()) }
/// ```
pub struct NatsKvStore {
    kv: kv::Store,
    bucket: String,
    observed: Observed,
}

impl std::fmt::Debug for NatsKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsKvStore").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

/// A JetStream request that takes longer than this fails (the call is answered UNAVAILABLE).
const JS_TIMEOUT: Duration = Duration::from_secs(5);

fn nats_error(what: &str, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::with_source(what.to_owned(), err)
}

impl NatsKvStore {
    /// Connects to NATS at `url` (`nats://host:4222`, several separated by commas; JetStream
    /// enabled) and opens key-value bucket `bucket`, creating it with `window` as its `max_age`
    /// if it does not exist. The connection comes back by itself when it drops; meanwhile calls
    /// that need the store fail with UNAVAILABLE.
    pub async fn connect(url: &str, bucket: &str, window: Duration) -> Result<NatsKvStore, StoreError> {
        let addrs = url
            .split(',')
            .map(|u| u.trim().parse::<ServerAddr>().map_err(|e| nats_error("invalid NATS URL", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name("switchboard-dedupe")
            .connect(addrs)
            .await
            .map_err(|e| nats_error("connecting to NATS", e))?;
        let js = async_nats::jetstream::ContextBuilder::new().timeout(JS_TIMEOUT).build(client);
        // The bucket's stream, as `create_key_value` makes it (ADR-8), made here: that call first
        // reads the account's JetStream info, which async-nats cannot parse from a 2.9 server.
        let config = stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: window,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        };
        let made = js.get_or_create_stream(config).await;
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(e) => {
                let why = made.err().map_or_else(|| e.to_string(), |m| m.to_string());
                return Err(StoreError::new(format!("opening key-value bucket {bucket}: {why}")));
            }
        };
        Ok(NatsKvStore { kv, bucket: bucket.to_owned(), observed: Observed::default() })
    }

    fn key(key: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    }

    /// The key's current value and revision; `None` when absent or deleted.
    async fn current(&self, key: &str) -> Result<Option<(bytes::Bytes, u64)>, StoreError> {
        match self.kv.entry(key).await.map_err(|e| nats_error("reading the key-value bucket", e))? {
            Some(entry) if entry.operation == Operation::Put => Ok(Some((entry.value, entry.revision))),
            _ => Ok(None),
        }
    }
}

/// Tries of a compare-and-set that keeps losing to other writers before giving up for now.
const RACES: usize = 8;

impl DedupeStore for NatsKvStore {
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        Box::pin(async move {
            let k = Self::key(key);
            let value = record::claim(claim, lease);
            for _ in 0..RACES {
                let Some((held, revision)) = self.current(&k).await? else {
                    match self.kv.create(&k, value.clone()).await {
                        Ok(_) => {
                            self.observed.forget(&k);
                            return Ok(Claimed::Won);
                        }
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(nats_error("claiming a key", e)),
                    }
                };
                match record::read(&held) {
                    Some(Record::Answer(answer)) => {
                        self.observed.forget(&k);
                        return Ok(Claimed::Answered(answer));
                    }
                    Some(Record::Claim { id, .. }) if id == claim.as_str() => return Ok(Claimed::Won),
                    Some(Record::Claim { lease: theirs, .. }) => {
                        if !self.observed.lapsed(&k, revision, theirs) {
                            return Ok(Claimed::Running);
                        }
                        match self.kv.update(&k, value.clone(), revision).await {
                            Ok(_) => {
                                self.observed.forget(&k);
                                return Ok(Claimed::Won);
                            }
                            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                            Err(e) => return Err(nats_error("taking over a lapsed claim", e)),
                        }
                    }
                    None => return Err(StoreError::new(format!("key {k:?} of bucket {} holds a value that is not switchboard's", self.bucket))),
                }
            }
            Ok(Claimed::Running)
        })
    }

    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, _keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let k = Self::key(key);
            let value = record::answer(&answer);
            for _ in 0..RACES {
                let written = match self.current(&k).await? {
                    None => self.kv.create(&k, value.clone()).await.map(drop).map_err(|e| e.kind() == CreateErrorKind::AlreadyExists),
                    Some((held, revision)) => match record::read(&held) {
                        Some(Record::Claim { id, .. }) if id == claim.as_str() => {
                            self.kv.update(&k, value.clone(), revision).await.map(drop).map_err(|e| e.kind() == UpdateErrorKind::WrongLastRevision)
                        }
                        // Taken over after our lease lapsed, or answered already: theirs stands.
                        _ => return Ok(()),
                    },
                };
                match written {
                    Ok(()) => return Ok(()),
                    Err(true) => continue,
                    Err(false) => return Err(StoreError::new(format!("storing the answer of key {k:?} failed"))),
                }
            }
            Err(StoreError::new(format!("storing the answer of key {k:?} kept losing races")))
        })
    }

    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, _lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let k = Self::key(key);
            for _ in 0..RACES {
                let Some((held, revision)) = self.current(&k).await? else { return Ok(false) };
                if !matches!(record::read(&held), Some(Record::Claim { id, .. }) if id == claim.as_str()) {
                    return Ok(false);
                }
                match self.kv.update(&k, held, revision).await {
                    Ok(_) => return Ok(true),
                    Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                    Err(e) => return Err(nats_error("renewing a claim", e)),
                }
            }
            Ok(false)
        })
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let k = Self::key(key);
            let Some((held, revision)) = self.current(&k).await? else { return Ok(()) };
            if matches!(record::read(&held), Some(Record::Claim { id, .. }) if id == claim.as_str()) {
                // A lost race means someone else changed it: not ours to delete any more.
                let _ = self.kv.delete_expect_revision(&k, Some(revision)).await;
            }
            Ok(())
        })
    }
}
