//! The service every transport serves: a hand-written trait (code-first) with prost + serde
//! types, and a handler that reports what it saw (started, cancelled, attempts) to [`PROBE`],
//! keyed by the call's `id`, so a case can check the handler's side from the caller's.

use std::future::Future;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use switchboard::metadata::MetadataMap;
use switchboard::{Cancellation, Code, Request, RequestExt, Response, Status, Streaming};
use futures_util::StreamExt;
use tokio::sync::Notify;

/// The wire name of the service (`package.Trait`).
pub const SERVICE: &str = "test.conformance.v1.Conformance";

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Msg {
    /// Unique per call: what the handler reports under.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Echoed back; on `echo` with `fail_code` set, the error message.
    #[prost(string, tag = "2")]
    pub text: String,
    /// `echo` fails with this gRPC code (0: succeeds).
    #[prost(int32, tag = "3")]
    pub fail_code: i32,
    /// Echoed back.
    #[prost(int64, tag = "4")]
    pub n: i64,
}

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", default)]
pub struct Empty {}

/// The conformance service. Written by hand: no .proto anywhere.
#[switchboard::service(package = "test.conformance.v1")]
pub trait Conformance {
    /// Echoes the message. Request metadata `x-tenant` and `x-blob-bin` come back as response
    /// metadata, and a trailer `x-checksum: sum-1` is set. With `fail_code`, fails with that
    /// code, `text` as the message and `x-reason: quota` as the error's metadata.
    async fn echo(&self, req: Request<Msg>) -> Result<Response<Msg>, Status>;
    /// Reports its start (with its cancellation) and then sleeps for a minute: callers give up
    /// first.
    async fn slow(&self, req: Request<Msg>) -> Result<Response<Msg>, Status>;
    /// Counts the run (under the call's id) and panics: in its future, or (with `n: 1`) before
    /// it returns one.
    async fn boom(&self, req: Request<Msg>) -> Result<Response<Msg>, Status>;
    /// Reports its start (like `slow`), then streams a message every 20 ms, forever.
    async fn ticks(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status>;
    /// Streams one message, then panics while producing the next.
    async fn boom_stream(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status>;
    /// An event whose handler counts the attempt and panics.
    #[rpc(event)]
    async fn explode(&self, req: Request<Msg>) -> Result<Response<Empty>, Status>;
}

/// The handler. Stateless: what it sees goes to the process-wide [`PROBE`], so that any server
/// of this process (one per transport) reports to the same place.
pub struct Impl;

impl Conformance for Impl {
    async fn echo(&self, req: Request<Msg>) -> Result<Response<Msg>, Status> {
        let tenant = req.metadata().get("x-tenant").cloned();
        let blob = req.metadata().get_bin("x-blob-bin").cloned();
        let msg = req.into_inner();
        if msg.fail_code != 0 {
            let mut metadata = MetadataMap::new();
            metadata.insert("x-reason", "quota".parse().unwrap());
            return Err(Status::with_metadata(Code::from_i32(msg.fail_code), msg.text, metadata));
        }
        let mut resp = Response::new(msg);
        if let Some(v) = tenant {
            resp.metadata_mut().insert("x-tenant", v);
        }
        if let Some(v) = blob {
            resp.metadata_mut().insert_bin("x-blob-bin", v);
        }
        let mut trailers = MetadataMap::new();
        trailers.insert("x-checksum", "sum-1".parse().unwrap());
        resp.extensions_mut().insert(switchboard::Trailers(trailers));
        Ok(resp)
    }

    async fn slow(&self, req: Request<Msg>) -> Result<Response<Msg>, Status> {
        PROBE.started(&req.get_ref().id, Started { cancellation: req.cancellation(), deadline: req.deadline().map(|d| d.remaining()) });
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(Response::new(req.into_inner()))
    }

    // A plain `fn`: with `n: 1` it panics before it returns a future, which the server catches
    // as it catches a panic inside the future.
    #[allow(refining_impl_trait)]
    fn boom(&self, req: Request<Msg>) -> impl Future<Output = Result<Response<Msg>, Status>> + Send {
        let run = PROBE.attempt(&req.get_ref().id);
        if req.get_ref().n == 1 {
            panic!("boom before the future (call {}, run {run})", req.get_ref().id)
        }
        async move { panic!("boom (call {}, run {run})", req.get_ref().id) }
    }

    async fn ticks(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status> {
        PROBE.started(&req.get_ref().id, Started { cancellation: req.cancellation(), deadline: req.deadline().map(|d| d.remaining()) });
        let id = req.into_inner().id;
        let ticks = futures_util::stream::unfold(0i64, move |n| {
            let id = id.clone();
            async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some((Ok(Msg { id, n, ..Default::default() }), n + 1))
            }
        });
        Ok(Response::new(Streaming::new(ticks)))
    }

    async fn boom_stream(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status> {
        let first = Msg { n: 0, ..req.into_inner() };
        let id = first.id.clone();
        let then_panic = futures_util::stream::once(async move {
            tokio::task::yield_now().await;
            panic!("boom in the stream of {id}")
        });
        Ok(Response::new(Streaming::new(futures_util::stream::iter([Ok(first)]).chain(then_panic))))
    }

    async fn explode(&self, req: Request<Msg>) -> Result<Response<Empty>, Status> {
        let attempt = PROBE.attempt(&req.get_ref().id);
        panic!("explode (event {}, attempt {attempt})", req.get_ref().id)
    }
}

/// What a `slow` handler saw when it started.
#[derive(Clone)]
pub struct Started {
    /// The call's cancellation signal.
    pub cancellation: Cancellation,
    /// Time left until the call's deadline, if it had one.
    pub deadline: Option<Duration>,
}

/// What the handlers saw, by call id.
#[derive(Default)]
pub struct Probe {
    started: Mutex<HashMap<String, Started>>,
    attempts: Mutex<HashMap<String, u32>>,
    changed: Notify,
}

pub static PROBE: LazyLock<Probe> = LazyLock::new(Probe::default);

impl Probe {
    fn started(&self, id: &str, started: Started) {
        self.started.lock().unwrap().insert(id.to_owned(), started);
        self.changed.notify_waiters();
    }

    fn attempt(&self, id: &str) -> u32 {
        let mut attempts = self.attempts.lock().unwrap();
        let n = attempts.entry(id.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// How many times `boom` or the event handler ran for `id`.
    pub fn attempts(&self, id: &str) -> u32 {
        self.attempts.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    /// Waits until a `slow` handler has started for `id`.
    pub async fn wait_started(&self, id: &str) -> Started {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check, so a start in between is not missed.
            changed.as_mut().enable();
            if let Some(c) = self.started.lock().unwrap().get(id) {
                return c.clone();
            }
            changed.await;
        }
    }
}
