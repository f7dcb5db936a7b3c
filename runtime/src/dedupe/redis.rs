//! [`RedisStore`]: the idempotency window in Redis, shared by a service's replicas whatever their
//! broker (feature `redis`).
//!
//! ```text
//! claim    GET k; absent → SET k "c<lease ms>:<claim id>" PX lease        (one Lua script: atomic)
//! refresh  k holds our claim → PEXPIRE k lease
//! finish   k holds our claim, or is absent → SET k "a<answer>" PX window   (first answer wins)
//! release  k holds our claim → DEL k
//! wait     polled by the server (5 ms doubling up to a quarter of the lease)
//! ```
//!
//! A claim lapses by Redis's own expiry when its holder stops renewing it (the process died), so
//! leases need no clock shared between replicas. With one Redis node (or a primary and replicas
//! read through the primary) claims are atomic; a failover to a replica that had not received
//! the latest writes can lose claims and answers written just before it, as any Redis lock can.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::store::record::{self, Record};
use super::{Answer, ClaimId, Claimed, DedupeStore, StoreError};

/// Whether `v` (a key's value) is the claim `ARGV[1]` names.
const MINE: &str = "local function mine(v, id)
  return v and string.sub(v, 1, 1) == 'c' and string.sub(v, -(#id + 1)) == ':' .. id
end
local v = redis.call('GET', KEYS[1])
";

/// Redis holding a [`DedupeStore`]: the replicas of a service (on any broker) share one
/// idempotency window, so a message redelivered to another replica is answered from the first
/// run. Keys are `<prefix><server's key>` (prefix `switchboard:dedupe:` unless set); each holds a
/// claim (expiring with its lease) or an answer (expiring with the window). See
/// [`DedupeStore`] for what it guarantees.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use switchboard::{Request, Response, Status};
/// # #[switchboard::service(package = "hello.v1", grpc = false)]
/// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
/// # struct Impl;
/// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::dedupe::RedisStore;
/// let broker = switchboard::queue::Broker::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// GreeterQueueServer::new(Impl).dedupe_store(Arc::new(store)).serve(&broker).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    claim: Script,
    finish: Script,
    refresh: Script,
    release: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A command that takes longer than this fails (the call is answered UNAVAILABLE).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisStore {
    /// Connects to Redis at `url` (`redis://[user:password@]host:port[/db]`). The connection is
    /// re-established by itself when it drops; meanwhile calls that need the store fail with
    /// UNAVAILABLE.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::with_source("invalid Redis URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| StoreError::with_source("connecting to Redis", e))?;
        let script = |body: &str| Script::new(&format!("{MINE}{body}"));
        let scripts = Scripts {
            claim: script(
                "if v then return v end
                 redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                 return 1",
            ),
            finish: script(
                "if not v or mine(v, ARGV[1]) then
                   redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                   return 1
                 end
                 return 0",
            ),
            refresh: script(
                "if mine(v, ARGV[1]) then
                   redis.call('PEXPIRE', KEYS[1], ARGV[2])
                   return 1
                 end
                 return 0",
            ),
            release: script(
                "if mine(v, ARGV[1]) then
                   redis.call('DEL', KEYS[1])
                   return 1
                 end
                 return 0",
            ),
        };
        Ok(RedisStore { conn, prefix: "switchboard:dedupe:".to_owned(), scripts: std::sync::Arc::new(scripts) })
    }

    /// Puts this store's keys under `prefix` instead of `switchboard:dedupe:` (several
    /// deployments on one Redis, say).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<Value, StoreError> {
        let mut invocation = script.key(self.key(key));
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await.map_err(|e| StoreError::with_source("Redis", e))
    }
}

/// Milliseconds for `PX` / `PEXPIRE`: at least 1.
fn millis(d: Duration) -> String {
    d.as_millis().clamp(1, i64::MAX as u128).to_string()
}

impl DedupeStore for RedisStore {
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        Box::pin(async move {
            let value = record::claim(claim, lease);
            let found = self.run(&self.scripts.claim, key, &[claim.as_str().as_bytes(), &value, millis(lease).as_bytes()]).await?;
            match found {
                Value::Int(1) => Ok(Claimed::Won),
                Value::BulkString(held) => match record::read(&held) {
                    Some(Record::Answer(answer)) => Ok(Claimed::Answered(answer)),
                    // Our own claim: a claim sent again after its reply was lost.
                    Some(Record::Claim { id, .. }) if id == claim.as_str() => Ok(Claimed::Won),
                    Some(Record::Claim { .. }) => Ok(Claimed::Running),
                    None => Err(StoreError::new(format!("Redis key {:?} holds a value that is not switchboard's", self.key(key)))),
                },
                other => Err(StoreError::new(format!("unexpected reply from Redis: {other:?}"))),
            }
        })
    }

    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let value = record::answer(&answer);
            self.run(&self.scripts.finish, key, &[claim.as_str().as_bytes(), &value, millis(keep).as_bytes()]).await?;
            Ok(())
        })
    }

    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let renewed = self.run(&self.scripts.refresh, key, &[claim.as_str().as_bytes(), millis(lease).as_bytes()]).await?;
            Ok(matches!(renewed, Value::Int(1)))
        })
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.run(&self.scripts.release, key, &[claim.as_str().as_bytes()]).await?;
            Ok(())
        })
    }
}
