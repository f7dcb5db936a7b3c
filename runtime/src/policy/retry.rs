//! The policy layer: a method's `timeout` and `retryPolicy` (gRPC A6), retry throttling and the
//! retry budget, the circuit breaker and the rate and concurrency limits, as ONE [`Layer`] on the
//! client call path, so they mean the same on gRPC, REST and queues.
//!
//! ```text
//! call ─▶ method config (Policies: run-time config, then the spec's default)
//!      ─▶ deadline = min(the call's, now + timeout)
//!      ─▶ breaker / rate / concurrency admit the attempt (or fail it at once, never retried)
//!      ─▶ attempt 1 ─▶ failure with a retryable code? ─▶ pushback / throttling / budget /
//!         attempts left? ─▶ wait (backoff with ±20 % jitter, or the server's pushback) ─▶
//!         attempt 2 (`grpc-previous-rpc-attempts: 1`) ─▶ … until success, a final failure, or
//!         the deadline (DEADLINE_EXCEEDED)
//! ```
//!
//! A call that never reached a server's application (connection refused, REFUSED_STREAM, no
//! consumer: [`client::never_reached`](crate::client::never_reached)) is sent again at once,
//! once, whatever its method and policy (A6's transparent retry).
//!
//! Every attempt is its own `Next::run` of a copy of the call, marked in its extensions (a
//! retry's `grpc-previous-rpc-attempts`, a hedged copy's number, a transparent retry): a layer
//! below this one that picks an endpoint per attempt (the fleet's balancer) can see which
//! attempt it routes and send a retry to another endpoint than the one that failed.
//!
//! Only calls that are safe to repeat are retried: methods declared idempotent (proto
//! `idempotency_level`, HTTP GET/PUT/DELETE/... for OpenAPI operations) or calls that carry an
//! idempotency key (the server runs a keyed call once). A request stream is never re-sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::Status;

use super::config::{HedgingPolicy, MethodConfig, RetryBudget, RetryPolicy, RetryThrottling};
use super::guard::Guards;
use super::Policies;
use crate::client::{BoxFuture, Call, Layer, Next, Outcome};
use crate::descriptor::Idempotency;

/// The trailer a gRPC server sets to tell the client when to retry (milliseconds; a negative or
/// unreadable value: do not retry).
pub const PUSHBACK_METADATA: &str = "grpc-retry-pushback-ms";
/// The metadata a retry carries: how many attempts went before it.
pub const PREVIOUS_ATTEMPTS_METADATA: &str = "grpc-previous-rpc-attempts";
/// REST's pushback: `Retry-After` in seconds on the error response.
const RETRY_AFTER: &str = "retry-after";

/// Applies the [`Policies`] to every call of a client: install it with `.layer(...)` on any
/// generated client (gRPC, REST or queue).
///
/// ```
/// use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
/// let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}],
///     "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#).unwrap();
/// let layer = PolicyLayer::new(Policies::new().runtime(config));
/// // EchoClient::new(channel).layer(layer)
/// # let _ = layer;
/// ```
#[derive(Debug)]
pub struct PolicyLayer {
    policies: Policies,
    throttle: Option<Throttle>,
    budget: Option<Budget>,
    /// Breaker and limits per `methodConfig` entry (by the entry's address, which the layer's
    /// `Policies` keep in place).
    guards: HashMap<usize, Guards>,
}

impl PolicyLayer {
    /// A layer applying `policies` (its throttling and budget are this layer's own: share one
    /// layer, e.g. in an `Arc`, between clients that should share them).
    pub fn new(policies: Policies) -> Self {
        let throttle = policies.retry_throttling().map(Throttle::new);
        let budget = policies.retry_budget().map(Budget::new);
        let guards = policies
            .configs()
            .flat_map(|c| c.method_configs())
            .filter_map(|m| Guards::of(m).map(|g| (m as *const MethodConfig as usize, g)))
            .collect();
        PolicyLayer { policies, throttle, budget, guards }
    }

    /// How many retries the budget allows right now (`None` without a budget).
    pub fn budget_left(&self) -> Option<u64> {
        self.budget.as_ref().map(Budget::left)
    }

    /// The throttling tokens left (`None` without `retryThrottling`).
    pub fn throttle_tokens(&self) -> Option<f64> {
        self.throttle.as_ref().map(|t| t.tokens.load(Ordering::Relaxed) as f64 / 1000.0)
    }
}

impl Layer for PolicyLayer {
    fn call<'a>(&'a self, mut call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        let method = call.method();
        // A config given on the call (`CallOptions::extension(method_config)`) comes first.
        let given = call.extensions().get::<MethodConfig>().cloned().map(std::sync::Arc::new);
        let config = match &given {
            Some(c) => Some(&**c),
            None => self.policies.method_config(call.service().full_name, method.name),
        };
        let Some(config) = config else {
            return Box::pin(async move { self.attempt(call, next, 1, None).await.unwrap_or_else(Err) });
        };
        // `maxRequestMessageBytes`: a larger request is not sent (grpc-go's wording).
        if let (Some(max), Some(size)) = (config.max_request_message_bytes, call.request_size()) {
            if size > max as usize {
                let status = Status::resource_exhausted(format!("trying to send message larger than max ({size} vs. {max})"));
                return Box::pin(std::future::ready(Err(status)));
            }
        }
        if let Some(max) = config.max_response_message_bytes {
            call.extensions_mut().insert(crate::client::ResponseLimit(max as usize));
        }
        if config.wait_for_ready == Some(true) {
            call.extensions_mut().insert(WaitForReady);
        }
        // A config given on the call has no breaker or limits of its own (they are shared state).
        let guards = if given.is_none() && !self.guards.is_empty() { self.guards.get(&(config as *const MethodConfig as usize)) } else { None };
        let safe = method.idempotency != Idempotency::Unknown || call.idempotency_key().is_some();
        let retry = config.retry.as_ref().filter(|_| safe && call.can_resend()).cloned();
        let hedging = config.hedging.as_ref().filter(|_| safe && call.can_resend()).cloned();
        let mut own_deadline = None;
        if let Some(timeout) = config.timeout {
            let deadline = Instant::now() + timeout;
            if call.deadline().is_none_or(|d| deadline < d) {
                call.set_deadline(deadline);
                own_deadline = Some(deadline);
            }
        }
        if retry.is_none() && hedging.is_none() && own_deadline.is_none() && self.throttle.is_none() && guards.is_none() {
            return Box::pin(async move { self.attempt(call, next, 1, None).await.unwrap_or_else(Err) });
        }
        if retry.is_some() || hedging.is_some() {
            // Later attempts count as retries or hedges in the call's metrics (observe, A96).
            crate::observe::client::resending(call.extensions_mut(), hedging.is_some());
        }
        let attempts: BoxFuture<'a, Outcome> = match hedging {
            Some(h) => Box::pin(self.hedged(call, next, h, guards)),
            None => Box::pin(self.attempts(call, next, retry, guards)),
        };
        Box::pin(async move {
            match own_deadline {
                Some(d) => tokio::time::timeout_at(d.into(), attempts).await.unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded (the method's timeout)"))),
                None => attempts.await,
            }
        })
    }
}

impl PolicyLayer {
    async fn attempts(&self, call: Call, next: Next<'_>, retry: Option<RetryPolicy>, guards: Option<&Guards>) -> Outcome {
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        let mut attempt = 1u32;
        let mut bound = retry.as_ref().map_or(Duration::ZERO, |r| r.initial_backoff);
        loop {
            // The breaker and limits may turn an attempt away before it is sent; that is final.
            let outcome = self.attempt(call.clone(), next, attempt, guards).await?;
            let status = match outcome {
                Ok(reply) => {
                    if let Some(t) = &self.throttle {
                        t.success();
                    }
                    return Ok(reply);
                }
                Err(status) => status,
            };
            let Some(policy) = &retry else {
                return Err(status);
            };
            if !policy.retryable_status_codes.contains(&status.code()) {
                return Err(status);
            }
            if let Some(t) = &self.throttle {
                t.failure();
            }
            let pushback = match pushback(&status) {
                Pushback::Stop => return Err(status),
                Pushback::After(d) => Some(d),
                Pushback::None => None,
            };
            if attempt >= policy.max_attempts || self.throttle.as_ref().is_some_and(Throttle::blocks) {
                return Err(status);
            }
            if self.budget.as_ref().is_some_and(|b| !b.withdraw()) {
                return Err(status);
            }
            let wait = match pushback {
                Some(d) => {
                    bound = policy.initial_backoff;
                    d
                }
                None => {
                    let d = bound.mul_f64(0.8 + 0.4 * fastrand::f64());
                    bound = bound.mul_f64(policy.backoff_multiplier).min(policy.max_backoff);
                    d
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

impl PolicyLayer {
    /// One attempt: `Err` when the guards turned it away (nothing was sent), else its outcome,
    /// recorded with the guards.
    async fn attempt(&self, mut call: Call, next: Next<'_>, number: u32, guards: Option<&Guards>) -> Result<Outcome, Status> {
        if number > 1 {
            call.metadata_mut().insert(PREVIOUS_ATTEMPTS_METADATA, MetadataValue::from(number - 1));
        }
        let admitted = guards.map(Guards::admit).transpose()?;
        let wait = call.extensions().get::<WaitForReady>().is_some();
        let mut spare = call.can_resend().then(|| call.clone());
        let mut outcome = next.run(call).await;
        // A call that never reached a server's application goes again at once, once, whatever
        // its method (gRPC A6's transparent retry): not an attempt of the retry policy. With
        // `waitForReady` it keeps going (10 ms, doubling to 1 s between tries) until a server
        // takes it or the deadline ends the call.
        let mut pause = Duration::from_millis(10);
        let mut first = true;
        while let Some(mut again) = spare.take().filter(|_| matches!(&outcome, Err(status) if crate::client::never_reached(status))) {
            if !first {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            if wait && again.can_resend() {
                spare = Some(again.clone());
            }
            first = false;
            again.extensions_mut().insert(crate::client::TransparentRetry);
            outcome = next.run(again).await;
        }
        if let Some(a) = admitted {
            a.finish(outcome.as_ref().map(|_| ()).map_err(Status::code));
        }
        Ok(outcome)
    }

    /// `hedgingPolicy`: the first copy at once, another every `hedgingDelay` (or at once after a
    /// non-fatal failure) up to `maxAttempts`; the first success wins and the copies still in
    /// flight are dropped (cancelled: gRPC and REST reset their requests, a queue reply that
    /// comes later is discarded); a fatal failure ends the call.
    async fn hedged(&self, call: Call, next: Next<'_>, policy: HedgingPolicy, guards: Option<&Guards>) -> Outcome {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0u32;
        let mut last = None;
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        // Each turn sends the next copy: first, after the delay, or after a non-fatal failure.
        let mut hedging = true;
        loop {
            if hedging && sent < policy.max_attempts {
                let allowed = sent == 0
                    || (!self.throttle.as_ref().is_some_and(Throttle::blocks) && !self.budget.as_ref().is_some_and(|b| !b.withdraw()));
                if allowed {
                    sent += 1;
                    // Each copy marked with its number: over queues it gets its own message id.
                    let mut copy = call.clone();
                    copy.extensions_mut().insert(crate::client::HedgedCopy(sent));
                    in_flight.push(self.attempt(copy, next, sent, guards));
                    timer.as_mut().reset(tokio::time::Instant::now() + policy.hedging_delay);
                } else {
                    hedging = false;
                }
            }
            if in_flight.is_empty() {
                return Err(last.unwrap_or_else(|| Status::unavailable("no hedged attempt could be sent")));
            }
            tokio::select! {
                Some(outcome) = in_flight.next() => match outcome {
                    // Turned away by the breaker or a limit: no more copies; those in flight go on.
                    Err(turned_away) => {
                        hedging = false;
                        last = Some(turned_away);
                    }
                    Ok(Ok(reply)) => {
                        if let Some(t) = &self.throttle {
                            t.success();
                        }
                        return Ok(reply);
                    }
                    Ok(Err(status)) if policy.non_fatal_status_codes.contains(&status.code()) => {
                        if let Some(t) = &self.throttle {
                            t.failure();
                        }
                        last = Some(status);
                    }
                    Ok(Err(status)) => return Err(status),
                },
                () = &mut timer, if hedging && sent < policy.max_attempts => {}
            }
        }
    }
}

/// In a call's extensions: its method config says `waitForReady: true`.
#[derive(Debug, Clone, Copy)]
struct WaitForReady;

enum Pushback {
    None,
    After(Duration),
    Stop,
}

/// The server's word on when to retry: `grpc-retry-pushback-ms` (gRPC), else `Retry-After` in
/// seconds (REST, e.g. with 503).
fn pushback(status: &Status) -> Pushback {
    if let Some(v) = status.metadata().get(PUSHBACK_METADATA) {
        return match v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()) {
            Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
            _ => Pushback::Stop,
        };
    }
    match status.metadata().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(secs) => Pushback::After(Duration::from_secs(secs)),
        None => Pushback::None,
    }
}

/// `retryThrottling`: tokens in thousandths.
#[derive(Debug)]
struct Throttle {
    tokens: AtomicU64,
    max: u64,
    ratio: u64,
}

impl Throttle {
    fn new(t: &RetryThrottling) -> Self {
        let max = u64::from(t.max_tokens) * 1000;
        Throttle { tokens: AtomicU64::new(max), max, ratio: (t.token_ratio * 1000.0).round() as u64 }
    }

    fn failure(&self) {
        let _ = self.tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_sub(1000)));
    }

    fn success(&self) {
        let _ = self.tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some((t + self.ratio).min(self.max)));
    }

    /// At or below half the tokens, nothing is retried.
    fn blocks(&self) -> bool {
        self.tokens.load(Ordering::Relaxed) <= self.max / 2
    }
}

/// Finagle's retry budget: over the last `ttl`, retries may be `percent` % of the calls plus
/// `min_retries_per_second` × `ttl`. Counted in one-second slots.
#[derive(Debug)]
struct Budget {
    percent: f64,
    reserve: u64,
    start: tokio::time::Instant,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    calls: u64,
    retries: u64,
}

impl Budget {
    fn new(b: &RetryBudget) -> Self {
        let seconds = b.ttl.as_secs().max(1);
        Budget {
            percent: b.percent,
            reserve: u64::from(b.min_retries_per_second) * seconds,
            start: tokio::time::Instant::now(),
            slots: Mutex::new(vec![Slot { second: u64::MAX, ..Slot::default() }; seconds as usize]),
        }
    }

    /// The current slot (cleared when it held an older second), and the window's totals.
    fn with_window<T>(&self, f: impl FnOnce(&mut Slot, u64, u64) -> T) -> T {
        let now = self.start.elapsed().as_secs();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let len = slots.len() as u64;
        let (calls, retries) = slots
            .iter()
            .filter(|s| s.second != u64::MAX && s.second + len > now)
            .fold((0, 0), |(c, r), s| (c + s.calls, r + s.retries));
        // The current second's slot; what it held is older than the window (counted above as
        // nothing), so it starts again.
        let slot = &mut slots[(now % len) as usize];
        if slot.second != now {
            *slot = Slot { second: now, calls: 0, retries: 0 };
        }
        f(slot, calls, retries)
    }

    fn allowed(&self, calls: u64) -> u64 {
        self.reserve + (calls as f64 * self.percent / 100.0) as u64
    }

    fn deposit(&self) {
        self.with_window(|slot, _, _| slot.calls += 1);
    }

    fn withdraw(&self) -> bool {
        self.with_window(|slot, calls, retries| {
            if retries < self.allowed(calls) {
                slot.retries += 1;
                true
            } else {
                false
            }
        })
    }

    fn left(&self) -> u64 {
        self.with_window(|_, calls, retries| self.allowed(calls).saturating_sub(retries))
    }
}
