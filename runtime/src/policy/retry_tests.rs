//! The policy layer over a scripted transport, on tokio's paused clock: every wait is measured
//! in the clock's own time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::{MethodConfig, Policies, PolicyLayer, ServiceConfig};
use crate::client::{run, BoxFuture, Call, DefaultTimeout, Exchange, Layers, TransportKind};
use crate::{CallShape, Idempotency, MethodDescriptor, ServiceDescriptor};

static SERVICE: ServiceDescriptor = ServiceDescriptor::new(
    "t",
    "S",
    "t.S",
    &[
        MethodDescriptor::new("Get", "get", "/t.S/Get", CallShape::Unary).idempotency(Idempotency::NoSideEffects),
        MethodDescriptor::new("Create", "create", "/t.S/Create", CallShape::Unary),
        MethodDescriptor::new("Up", "up", "/t.S/Up", CallShape::ClientStreaming).idempotency(Idempotency::Idempotent),
    ],
);

/// Answers attempts from a script (then hangs), recording when each came and its metadata.
#[derive(Clone, Default)]
struct Scripted(Arc<Inner>);

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Result<u32, Status>>>,
    seen: Mutex<Vec<(Instant, MetadataMap)>>,
}

impl Scripted {
    fn new(script: impl IntoIterator<Item = Result<u32, Status>>) -> Self {
        let s = Scripted::default();
        s.0.script.lock().unwrap().extend(script);
        s
    }

    fn failing(code: Code, n: usize) -> Self {
        Self::new((0..n).map(|_| Err(Status::new(code, "scripted"))))
    }

    fn attempts(&self) -> usize {
        self.0.seen.lock().unwrap().len()
    }

    /// The time between consecutive attempts.
    fn gaps(&self) -> Vec<Duration> {
        let seen = self.0.seen.lock().unwrap();
        seen.windows(2).map(|w| w[1].0 - w[0].0).collect()
    }

    fn previous_attempts(&self) -> Vec<Option<String>> {
        let seen = self.0.seen.lock().unwrap();
        seen.iter().map(|(_, m)| m.get("grpc-previous-rpc-attempts").map(|v| v.to_str().unwrap().to_owned())).collect()
    }
}

impl Exchange for Scripted {
    type Message = u32;
    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<u32>, Status>> {
        self.0.seen.lock().unwrap().push((Instant::now(), call.metadata().clone()));
        let next = self.0.script.lock().unwrap().pop_front();
        Box::pin(async move {
            match next {
                Some(outcome) => outcome.map(Response::new),
                None => std::future::pending().await,
            }
        })
    }
    fn send_once<'a>(self, _: Call) -> BoxFuture<'a, Result<Response<u32>, Status>> {
        unreachable!("the policy layer is installed")
    }
}

fn config(json: &str) -> PolicyLayer {
    PolicyLayer::new(Policies::new().runtime(ServiceConfig::from_json(json).unwrap()))
}

const RETRY_100MS_X2: &str = r#"{"methodConfig": [{"name": [{"service": "t.S"}], "retryPolicy": {
    "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "10s", "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

async fn call_with(layer: &Arc<PolicyLayer>, method: usize, request: Request<()>, exchange: &Scripted) -> Result<u32, Status> {
    let mut layers = Layers::default();
    layers.push(layer.clone());
    let (metadata, extensions, ()) = request.into_parts();
    let call = Call::new(&SERVICE, method, TransportKind::Grpc, metadata, extensions, DefaultTimeout::default());
    run(&layers, call, exchange.clone()).await.map(Response::into_inner)
}

async fn get(layer: &Arc<PolicyLayer>, exchange: &Scripted) -> Result<u32, Status> {
    call_with(layer, 0, Request::new(()), exchange).await
}

fn within(d: Duration, from_ms: u64, to_ms: u64) -> bool {
    d >= Duration::from_millis(from_ms) && d <= Duration::from_millis(to_ms)
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_with_jitter_and_each_retry_says_how_many_went_before() {
    let layer = Arc::new(config(RETRY_100MS_X2));
    for _ in 0..20 {
        let exchange = Scripted::failing(Code::Unavailable, 4);
        let status = get(&layer, &exchange).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(exchange.attempts(), 4);
        let gaps = exchange.gaps();
        assert!(within(gaps[0], 80, 120) && within(gaps[1], 160, 240) && within(gaps[2], 320, 480), "{gaps:?}");
        assert_eq!(exchange.previous_attempts(), [None, Some("1".into()), Some("2".into()), Some("3".into())]);
    }
    // Success on the third attempt ends it.
    let exchange = Scripted::new([Err(Status::unavailable("a")), Err(Status::unavailable("b")), Ok(7)]);
    assert_eq!(get(&layer, &exchange).await.unwrap(), 7);
    assert_eq!(exchange.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn pushback_sets_the_next_wait_and_a_negative_one_stops() {
    let layer = Arc::new(config(RETRY_100MS_X2));
    let mut pushed = Status::unavailable("busy");
    pushed.metadata_mut().insert("grpc-retry-pushback-ms", "300".parse().unwrap());
    let exchange = Scripted::new([Err(pushed), Err(Status::unavailable("again")), Ok(1)]);
    assert_eq!(get(&layer, &exchange).await.unwrap(), 1);
    let gaps = exchange.gaps();
    assert_eq!(gaps[0], Duration::from_millis(300));
    assert!(within(gaps[1], 80, 120), "the backoff starts again after pushback: {gaps:?}");

    let mut stop = Status::unavailable("go away");
    stop.metadata_mut().insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
    let exchange = Scripted::new([Err(stop), Ok(1)]);
    assert_eq!(get(&layer, &exchange).await.unwrap_err().message(), "go away");
    assert_eq!(exchange.attempts(), 1);

    // REST's Retry-After (seconds) on an error response.
    let mut later = Status::unavailable("HTTP 503");
    later.metadata_mut().insert("retry-after", "1".parse().unwrap());
    let exchange = Scripted::new([Err(later), Ok(2)]);
    assert_eq!(get(&layer, &exchange).await.unwrap(), 2);
    assert_eq!(exchange.gaps(), [Duration::from_secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn only_retryable_codes_on_calls_safe_to_repeat_are_retried() {
    let layer = Arc::new(config(RETRY_100MS_X2));
    let exchange = Scripted::failing(Code::InvalidArgument, 4);
    assert_eq!(get(&layer, &exchange).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(exchange.attempts(), 1);

    // `Create` declares no idempotency: without a key it is sent once, with one it is retried.
    let exchange = Scripted::failing(Code::Unavailable, 4);
    assert!(call_with(&layer, 1, Request::new(()), &exchange).await.is_err());
    assert_eq!(exchange.attempts(), 1);
    let exchange = Scripted::new([Err(Status::unavailable("x")), Ok(3)]);
    let keyed = crate::client::CallOptions::new().idempotency_key("order-42").request(());
    assert_eq!(call_with(&layer, 1, keyed, &exchange).await.unwrap(), 3);
    assert_eq!(exchange.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn throttling_stops_retries_at_half_the_tokens() {
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s",
            "maxBackoff": "0.01s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    ));
    let mut attempts = 0;
    for _ in 0..5 {
        let exchange = Scripted::failing(Code::Unavailable, 5);
        assert!(get(&layer, &exchange).await.is_err());
        attempts += exchange.attempts();
    }
    // 10 tokens: the first call fails 5 times (10 → 5 tokens: at half, no more retries), then
    // each call is sent once.
    assert_eq!(attempts, 5 + 4);
    assert_eq!(layer.throttle_tokens(), Some(1.0));
    // Successes give tokens back (0.1 each): after 52 of them (6.2 tokens) a failure leaves 5.2,
    // above half, and is retried again.
    for _ in 0..52 {
        get(&layer, &Scripted::new([Ok(1)])).await.unwrap();
    }
    let exchange = Scripted::new([Err(Status::unavailable("x")), Ok(1)]);
    assert_eq!(get(&layer, &exchange).await.unwrap(), 1);
    assert_eq!(exchange.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_at_a_share_of_the_calls() {
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.001s",
            "maxBackoff": "0.001s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}],
            "x-switchboard": {"retryBudget": {"percent": 20, "minRetriesPerSecond": 1, "ttl": "10s"}}}"#,
    ));
    let mut retries = 0;
    for _ in 0..200 {
        let exchange = Scripted::failing(Code::Unavailable, 5);
        assert!(get(&layer, &exchange).await.is_err());
        retries += exchange.attempts() - 1;
    }
    // 20 % of 200 calls, plus 1 per second over the 10 s window.
    assert!((40..=50).contains(&retries), "{retries} retries");
    // Without a budget: every call uses all 5 attempts.
    let unbudgeted = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.001s",
            "maxBackoff": "0.001s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    ));
    let exchange = Scripted::failing(Code::Unavailable, 5);
    assert!(get(&unbudgeted, &exchange).await.is_err());
    assert_eq!(exchange.attempts(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_method_timeout_covers_every_attempt_and_wait() {
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "timeout": "0.5s", "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s",
            "maxBackoff": "0.1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    ));
    let start = Instant::now();
    // Attempts that fail at once, then one that hangs: the call ends at the timeout.
    let exchange = Scripted::failing(Code::Unavailable, 2);
    let status = get(&layer, &exchange).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(within(start.elapsed(), 490, 520), "{:?}", start.elapsed());
    assert_eq!(exchange.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_config_on_the_call_comes_first() {
    let layer = Arc::new(config(RETRY_100MS_X2));
    let once = MethodConfig::default();
    let request = crate::client::CallOptions::new().extension(once).request(());
    let exchange = Scripted::failing(Code::Unavailable, 4);
    assert!(call_with(&layer, 0, request, &exchange).await.is_err());
    assert_eq!(exchange.attempts(), 1, "the call's own config has no retry policy");
}
