//! What may stop an attempt before it is sent: the circuit breaker, the rate limit and the
//! concurrency limit of a `methodConfig` entry (`x-switchboard`). One [`Guards`] per entry, shared
//! by the calls it covers. Their rejections fail at once and are never retried.
//!
//! The rate limit is GCRA written here rather than `governor`'s: its clocks do not follow
//! tokio's paused clock, which the policy tests run on; the algorithm is a few lines.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::{Code, Status};

use super::config::{CircuitBreaker, MethodConfig, RateLimit, SlidingWindow};

/// The guards of one `methodConfig` entry.
#[derive(Debug)]
pub(crate) struct Guards {
    breaker: Option<Breaker>,
    rate: Option<Gcra>,
    concurrency: Option<std::sync::Arc<Semaphore>>,
}

/// What an admitted attempt holds until it ends ([`Admitted::finish`]); dropped unfinished (the
/// call went away), a half-open probe gives its place back.
pub(crate) struct Admitted<'a> {
    guards: &'a Guards,
    _permit: Option<OwnedSemaphorePermit>,
    started: Instant,
    probe: bool,
    finished: bool,
}

impl Admitted<'_> {
    /// Records how the attempt ended.
    pub(crate) fn finish(mut self, outcome: Result<(), Code>) {
        self.finished = true;
        if let Some(b) = &self.guards.breaker {
            b.record(self.probe, is_failure(outcome), self.started.elapsed());
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if !self.finished && self.probe {
            if let Some(b) = &self.guards.breaker {
                b.cancel_probe();
            }
        }
    }
}

impl Guards {
    /// The guards `config` asks for, if any.
    pub(crate) fn of(config: &MethodConfig) -> Option<Self> {
        let g = Guards {
            breaker: config.circuit_breaker.as_ref().map(Breaker::new),
            rate: config.rate_limit.as_ref().map(Gcra::new),
            concurrency: config.concurrency_limit.as_ref().map(|c| std::sync::Arc::new(Semaphore::new(c.max_in_flight as usize))),
        };
        (g.breaker.is_some() || g.rate.is_some() || g.concurrency.is_some()).then_some(g)
    }

    /// Lets an attempt through, or says why not (a status that is never retried).
    pub(crate) fn admit(&self) -> Result<Admitted<'_>, Status> {
        let probe = match &self.breaker {
            Some(b) => b.admit()?,
            None => false,
        };
        let release = |e: Status| {
            if probe {
                if let Some(b) = &self.breaker {
                    b.cancel_probe();
                }
            }
            e
        };
        if let Some(rate) = &self.rate {
            rate.admit().map_err(release)?;
        }
        let permit = match &self.concurrency {
            Some(s) => Some(s.clone().try_acquire_owned().map_err(|_| {
                release(Status::resource_exhausted("concurrency limit reached (x-switchboard.concurrencyLimit): not sent"))
            })?),
            None => None,
        };
        Ok(Admitted { guards: self, _permit: permit, started: Instant::now(), probe, finished: false })
    }
}

/// Whether an outcome counts against the breaker: failures of the server or the way to it, not
/// the caller's own mistakes (INVALID_ARGUMENT, NOT_FOUND, ...).
fn is_failure(outcome: Result<(), Code>) -> bool {
    matches!(
        outcome,
        Err(Code::Unknown | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Internal | Code::Unavailable | Code::DataLoss)
    )
}

/// A circuit breaker with resilience4j's states: closed (counting), open (failing fast), half
/// open (a few probes). In half open, one failed or slow probe opens it again; when every
/// permitted probe has succeeded, it closes.
#[derive(Debug)]
struct Breaker {
    settings: CircuitBreaker,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Closed { window: Window },
    Open { until: Instant },
    HalfOpen { admitted: u32, succeeded: u32 },
}

/// The sliding window: the last N outcomes, or the outcomes of the last N seconds.
#[derive(Debug, Default)]
struct Window {
    /// (when, failed, slow)
    outcomes: VecDeque<(Instant, bool, bool)>,
}

impl Breaker {
    fn new(settings: &CircuitBreaker) -> Self {
        Breaker { settings: settings.clone(), state: Mutex::new(State::Closed { window: Window::default() }) }
    }

    fn open_status(&self) -> Status {
        Status::unavailable("circuit breaker open (x-switchboard.circuitBreaker): not sent")
    }

    /// Whether an attempt may go; `Ok(true)` for a half-open probe.
    fn admit(&self) -> Result<bool, Status> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Open { until } = *state {
            if Instant::now() < until {
                return Err(self.open_status());
            }
            *state = State::HalfOpen { admitted: 0, succeeded: 0 };
        }
        match &mut *state {
            State::Closed { .. } => Ok(false),
            State::HalfOpen { admitted, .. } if *admitted < self.settings.permitted_number_of_calls_in_half_open_state => {
                *admitted += 1;
                Ok(true)
            }
            _ => Err(self.open_status()),
        }
    }

    /// A probe that was admitted but not sent (another guard refused it).
    fn cancel_probe(&self) {
        if let State::HalfOpen { admitted, .. } = &mut *self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            *admitted = admitted.saturating_sub(1);
        }
    }

    fn record(&self, probe: bool, failed: bool, took: Duration) {
        let s = &self.settings;
        let slow = took >= s.slow_call_duration_threshold;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *state {
            State::HalfOpen { succeeded, .. } if probe => {
                if failed || slow {
                    *state = State::Open { until: now + s.wait_duration_in_open_state };
                } else {
                    *succeeded += 1;
                    if *succeeded >= s.permitted_number_of_calls_in_half_open_state {
                        *state = State::Closed { window: Window::default() };
                    }
                }
            }
            State::Closed { window } => {
                let w = &mut window.outcomes;
                w.push_back((now, failed, slow));
                match s.sliding_window {
                    SlidingWindow::CountBased => {
                        while w.len() > s.sliding_window_size as usize {
                            w.pop_front();
                        }
                    }
                    SlidingWindow::TimeBased => {
                        let span = Duration::from_secs(u64::from(s.sliding_window_size));
                        while w.front().is_some_and(|(t, _, _)| now.duration_since(*t) >= span) {
                            w.pop_front();
                        }
                    }
                }
                let calls = w.len() as f64;
                if w.len() >= s.minimum_number_of_calls as usize {
                    let failures = w.iter().filter(|o| o.1).count() as f64;
                    let slows = w.iter().filter(|o| o.2).count() as f64;
                    if failures * 100.0 / calls >= s.failure_rate_threshold || slows * 100.0 / calls >= s.slow_call_rate_threshold {
                        *state = State::Open { until: now + s.wait_duration_in_open_state };
                    }
                }
            }
            // An attempt admitted before the breaker opened, or a probe of an earlier half-open
            // round: its outcome no longer decides anything.
            _ => {}
        }
    }
}

/// The generic cell rate algorithm: one theoretical arrival time; a call may come at most
/// `burst - 1` intervals early.
#[derive(Debug)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
    tat: Mutex<Option<Instant>>,
}

impl Gcra {
    fn new(limit: &RateLimit) -> Self {
        let interval = Duration::from_secs_f64(1.0 / limit.per_second);
        Gcra { interval, tolerance: interval * (limit.burst - 1), tat: Mutex::new(None) }
    }

    fn admit(&self) -> Result<(), Status> {
        let now = Instant::now();
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let at = tat.map_or(now, |t| t.max(now));
        if at > now + self.tolerance {
            return Err(Status::resource_exhausted("rate limit reached (x-switchboard.rateLimit): not sent"));
        }
        *tat = Some(at + self.interval);
        Ok(())
    }
}
