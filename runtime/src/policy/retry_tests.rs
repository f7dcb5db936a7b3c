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
    /// Answer OK once the script is done, instead of hanging.
    ok_after: std::sync::atomic::AtomicBool,
    /// Hanging attempts dropped before they ended (cancelled).
    cancelled: std::sync::atomic::AtomicUsize,
}

/// Counts a hanging attempt as cancelled when it is dropped.
struct CountDrop(Arc<Inner>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.cancelled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
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

    fn always_ok() -> Self {
        let s = Scripted::default();
        s.0.ok_after.store(true, std::sync::atomic::Ordering::SeqCst);
        s
    }

    fn push(&self, outcome: Result<u32, Status>) {
        self.0.script.lock().unwrap().push_back(outcome);
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
        let ok = self.0.ok_after.load(std::sync::atomic::Ordering::SeqCst);
        let inner = self.0.clone();
        Box::pin(async move {
            match next {
                Some(outcome) => outcome.map(Response::new),
                None if ok => Ok(Response::new(0)),
                None => {
                    let _count = CountDrop(inner);
                    std::future::pending().await
                }
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

const BREAKER: &str = r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"circuitBreaker": {
    "slidingWindowSize": 20, "minimumNumberOfCalls": 10, "failureRateThreshold": 50,
    "waitDurationInOpenState": "2s", "permittedNumberOfCallsInHalfOpenState": 3}}}]}"#;

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_fails_fast_probes_and_closes() {
    let layer = Arc::new(config(BREAKER));
    let exchange = Scripted::default();
    for i in 1..=10 {
        exchange.push(Err(Status::unavailable("down")));
        let status = get(&layer, &exchange).await.unwrap_err();
        assert_eq!(status.message(), "down", "call {i} reached the server");
    }
    // Open after the 10th failure: calls fail at once, and nothing is sent.
    let started = Instant::now();
    for _ in 0..50 {
        let status = get(&layer, &exchange).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().starts_with("circuit breaker open"), "{status:?}");
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(exchange.attempts(), 10);

    // After 2 s, exactly 3 probes go through (here they hang), the 4th call is turned away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probes: Vec<_> = (0..3)
        .map(|_| {
            let (layer, exchange) = (layer.clone(), exchange.clone());
            tokio::spawn(async move { get(&layer, &exchange).await })
        })
        .collect();
    while exchange.attempts() < 13 {
        tokio::task::yield_now().await;
    }
    assert!(get(&layer, &exchange).await.unwrap_err().message().starts_with("circuit breaker open"));
    assert_eq!(exchange.attempts(), 13);
    // Probes that go away give their places back: three new ones succeed and close it.
    probes.iter().for_each(|p| p.abort());
    for p in probes {
        let _ = p.await;
    }
    for _ in 0..3 {
        exchange.push(Ok(1));
        get(&layer, &exchange).await.unwrap();
    }
    exchange.push(Ok(2));
    assert_eq!(get(&layer, &exchange).await.unwrap(), 2, "closed again");

    // Open it again (the window now holds that success: the 9th failure makes 10 calls); after
    // the wait one failed probe reopens it.
    for _ in 0..9 {
        exchange.push(Err(Status::internal("down")));
        assert_eq!(get(&layer, &exchange).await.unwrap_err().message(), "down");
    }
    assert!(get(&layer, &exchange).await.unwrap_err().message().starts_with("circuit breaker open"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    exchange.push(Err(Status::unavailable("still down")));
    assert_eq!(get(&layer, &exchange).await.unwrap_err().message(), "still down");
    assert!(get(&layer, &exchange).await.unwrap_err().message().starts_with("circuit breaker open"), "reopened by one failed probe");

    // The caller's own mistakes do not count: 20 INVALID_ARGUMENTs leave it closed.
    let layer = Arc::new(config(BREAKER));
    let exchange = Scripted::default();
    for _ in 0..20 {
        exchange.push(Err(Status::invalid_argument("bad")));
        assert_eq!(get(&layer, &exchange).await.unwrap_err().message(), "bad");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_slow_call_breaker() {
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"circuitBreaker": {
            "slidingWindowType": "TIME_BASED", "slidingWindowSize": 10, "minimumNumberOfCalls": 4,
            "slowCallRateThreshold": 50, "slowCallDurationThreshold": "0.5s", "waitDurationInOpenState": "1s"}}}]}"#,
    ));
    // Every attempt takes 600 ms, and succeeds.
    let exchange = Scripted::always_ok();
    for _ in 0..4 {
        let layer = layer.clone();
        let exchange = exchange.clone();
        let slow = async move {
            let mut layers = Layers::default();
            layers.push(layer);
            let (metadata, extensions, ()) = Request::new(()).into_parts();
            let call = Call::new(&SERVICE, 0, TransportKind::Grpc, metadata, extensions, DefaultTimeout::default());
            run(&layers, call, Delayed(exchange, Duration::from_millis(600))).await
        };
        slow.await.unwrap();
    }
    assert!(get(&layer, &exchange).await.unwrap_err().message().starts_with("circuit breaker open"));
}

/// An exchange whose attempts take `.1` before the scripted answer.
struct Delayed(Scripted, Duration);

impl Exchange for Delayed {
    type Message = u32;
    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<u32>, Status>> {
        let answer = self.0.send(call);
        let wait = self.1;
        Box::pin(async move {
            tokio::time::sleep(wait).await;
            answer.await
        })
    }
    fn send_once<'a>(self, _: Call) -> BoxFuture<'a, Result<Response<u32>, Status>> {
        unreachable!("the policy layer is installed")
    }
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_admits_its_rate_and_burst_and_never_retries_the_rest() {
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s",
            "maxBackoff": "0.01s", "backoffMultiplier": 1, "retryableStatusCodes": ["RESOURCE_EXHAUSTED"]},
            "x-switchboard": {"rateLimit": {"perSecond": 100, "burst": 10}}}]}"#,
    ));
    let exchange = Scripted::always_ok();
    let (mut accepted, mut rejected) = (0, 0);
    // 1,000 calls a second for 5 s.
    for _ in 0..5000 {
        match get(&layer, &exchange).await {
            Ok(_) => accepted += 1,
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted);
                assert!(s.message().starts_with("rate limit reached"), "{s:?}");
                rejected += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!((505..=515).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + rejected, 5000);
    assert_eq!(exchange.attempts(), accepted, "rejections are not sent, nor retried");
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_keeps_calls_in_flight_at_most_at_it() {
    let layer = Arc::new(config(r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"concurrencyLimit": {"maxInFlight": 8}}}]}"#));
    let exchange = Scripted::default(); // every attempt hangs
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (layer, exchange) = (layer.clone(), exchange.clone());
            tokio::spawn(async move { get(&layer, &exchange).await })
        })
        .collect();
    let mut rejected = 0;
    for c in calls {
        match tokio::time::timeout(Duration::from_secs(1), c).await {
            Ok(result) => {
                assert_eq!(result.unwrap().unwrap_err().code(), Code::ResourceExhausted);
                rejected += 1;
            }
            Err(_) => {} // in flight
        }
    }
    assert_eq!(exchange.attempts(), 8);
    assert_eq!(rejected, 12);
}

const HEDGE_20MS: &str = r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.02s",
    "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#;

#[tokio::test(start_paused = true)]
async fn hedging_sends_copies_and_the_first_success_wins() {
    let layer = Arc::new(config(HEDGE_20MS));
    // The first copy hangs; the second, 20 ms later, answers; the first is cancelled.
    let exchange = Scripted::default();
    let hang = exchange.clone();
    let start = Instant::now();
    let answer = {
        let exchange = exchange.clone();
        tokio::spawn(async move {
            // The second copy's answer: a copy that hangs first, then one that answers.
            tokio::time::sleep(Duration::from_millis(10)).await;
            exchange.push(Ok(2));
        })
    };
    // Attempt 1 finds an empty script (it hangs); attempt 2 finds `Ok(2)`.
    let got = get(&layer, &hang).await.unwrap();
    answer.await.unwrap();
    assert_eq!(got, 2);
    assert_eq!(start.elapsed(), Duration::from_millis(20));
    assert_eq!(exchange.attempts(), 2);
    assert_eq!(exchange.previous_attempts(), [None, Some("1".into())]);
    assert_eq!(exchange.0.cancelled.load(std::sync::atomic::Ordering::SeqCst), 1, "the losing copy was cancelled");

    // A non-fatal failure sends the next copy at once; a fatal one ends the call.
    let exchange = Scripted::new([Err(Status::unavailable("a")), Ok(5)]);
    let start = Instant::now();
    assert_eq!(get(&layer, &exchange).await.unwrap(), 5);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let exchange = Scripted::new([Err(Status::invalid_argument("bad"))]);
    assert_eq!(get(&layer, &exchange).await.unwrap_err().message(), "bad");
    assert_eq!(exchange.attempts(), 1);

    // All copies fail non-fatally: the last failure is the answer, after maxAttempts copies.
    let exchange = Scripted::failing(Code::Unavailable, 3);
    assert_eq!(get(&layer, &exchange).await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(exchange.attempts(), 3);

    // A method that is not safe to repeat is not hedged.
    let exchange = Scripted::default();
    let call = call_with(&layer, 1, Request::new(()), &exchange);
    assert!(tokio::time::timeout(Duration::from_secs(1), call).await.is_err());
    assert_eq!(exchange.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_never_reached_a_server_goes_again_at_once_once() {
    let never = || crate::client::not_delivered(Status::unavailable("no server consumes t.S"));
    // `Create` declares no idempotency and has no retry policy here: the transparent retry
    // still sends it again (no server saw it), at once, and it succeeds.
    let layer = Arc::new(config(r#"{"methodConfig": [{"name": [{"service": "other.Svc"}], "timeout": "1s"}]}"#));
    let exchange = Scripted::new([Err(never()), Ok(5)]);
    assert_eq!(call_with(&layer, 1, Request::new(()), &exchange).await.unwrap(), 5);
    assert_eq!(exchange.attempts(), 2);
    assert_eq!(exchange.gaps(), [Duration::ZERO]);
    assert_eq!(exchange.previous_attempts(), [None, None], "not an attempt of a retry policy");

    // Once: a second refusal is the answer.
    let exchange = Scripted::new([Err(never()), Err(never()), Ok(5)]);
    let status = call_with(&layer, 1, Request::new(()), &exchange).await.unwrap_err();
    assert!(crate::client::never_reached(&status), "{status:?}");
    assert_eq!(exchange.attempts(), 2);

    // A plain UNAVAILABLE (the server may have run it) is not sent again.
    let exchange = Scripted::new([Err(Status::unavailable("the server is draining")), Ok(5)]);
    assert_eq!(call_with(&layer, 1, Request::new(()), &exchange).await.unwrap_err().message(), "the server is draining");
    assert_eq!(exchange.attempts(), 1);

    // Under a retry policy it does not use up an attempt: 2 attempts + 1 transparent resend.
    let layer = Arc::new(config(
        r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.1s",
            "maxBackoff": "0.1s", "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    ));
    let exchange = Scripted::new([Err(never()), Err(Status::unavailable("a")), Ok(9)]);
    assert_eq!(get(&layer, &exchange).await.unwrap(), 9);
    assert_eq!(exchange.attempts(), 3);
    assert_eq!(exchange.previous_attempts(), [None, None, Some("1".into())]);
}

#[tokio::test(start_paused = true)]
async fn wait_for_ready_keeps_resending_until_a_server_takes_the_call() {
    let never = || crate::client::not_delivered(Status::unavailable("no server consumes t.S"));
    let layer = Arc::new(config(r#"{"methodConfig": [{"name": [{"service": "t.S"}], "waitForReady": true}]}"#));
    let exchange = Scripted::new([Err(never()), Err(never()), Err(never()), Err(never()), Ok(4)]);
    // `Create` is not idempotent: a call no server saw is safe to send again all the same.
    assert_eq!(call_with(&layer, 1, Request::new(()), &exchange).await.unwrap(), 4);
    assert_eq!(exchange.attempts(), 5);
    let ms = |n| Duration::from_millis(n);
    assert_eq!(exchange.gaps(), [ms(0), ms(10), ms(20), ms(40)], "at once, then 10 ms doubling");

    // Bounded by the call's deadline.
    let exchange = Scripted::new((0..1000).map(|_| Err(never())));
    let req = crate::client::CallOptions::new().timeout(Duration::from_millis(500)).request(());
    let started = Instant::now();
    assert_eq!(call_with(&layer, 1, req, &exchange).await.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(started.elapsed() <= Duration::from_millis(500), "{:?}", started.elapsed());

    // Any other failure ends it.
    let exchange = Scripted::new([Err(never()), Err(Status::unavailable("the server is draining")), Ok(4)]);
    assert_eq!(call_with(&layer, 1, Request::new(()), &exchange).await.unwrap_err().message(), "the server is draining");
    assert_eq!(exchange.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_over_max_request_message_bytes_is_not_sent() {
    let layer = Arc::new(config(r#"{"methodConfig": [{"name": [{"service": "t.S"}], "maxRequestMessageBytes": 64}]}"#));
    let exchange = Scripted::always_ok();
    let mut layers = Layers::default();
    layers.push(layer.clone());
    let sized = |size| {
        let (metadata, extensions, ()) = Request::new(()).into_parts();
        let mut call = Call::new(&SERVICE, 0, TransportKind::Grpc, metadata, extensions, DefaultTimeout::default());
        call.set_request_size(size);
        call
    };
    let status = run(&layers, sized(65), exchange.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "trying to send message larger than max (65 vs. 64)");
    assert_eq!(exchange.attempts(), 0);
    assert!(run(&layers, sized(64), exchange.clone()).await.is_ok());
    assert_eq!(exchange.attempts(), 1);
}
