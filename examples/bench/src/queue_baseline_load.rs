//! The load loop `queue-bench` (switchboard) and `queue-baseline` (hand-written lapin /
//! async-nats) share, so that both sides of a comparison are driven and measured by the same
//! code: `concurrency` callers, each sending its next call as soon as the last one is answered,
//! a warm-up that is not counted, then a measured window.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How hard and how long to drive the callers.
#[derive(Debug, Clone)]
pub struct Load {
    /// Callers in flight at once.
    pub concurrency: usize,
    /// Not measured, before the window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
}

/// What one measured window saw.
#[derive(Debug)]
pub struct Report {
    /// Calls answered correctly inside the window.
    pub calls: u64,
    /// Calls that failed (or were answered wrongly) inside the window.
    pub errors: u64,
    /// The window's real length.
    pub elapsed: Duration,
    /// This process's CPU time (user + system) over the window, in seconds.
    pub cpu_seconds: f64,
    /// Latencies of the correct calls, microseconds, sorted.
    latencies: Vec<u32>,
}

impl Report {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile `p` (0..=1), microseconds.
    pub fn percentile(&self, p: f64) -> u32 {
        let n = self.latencies.len();
        if n == 0 {
            return 0;
        }
        self.latencies[((n as f64 * p) as usize).min(n - 1)]
    }

    /// One JSON line (what queue.sh reads): `impl` and `url` say what was measured.
    pub fn json(&self, implementation: &str, url: &str, load: &Load, payload: usize) -> String {
        format!(
            "{{\"impl\":\"{implementation}\",\"url\":\"{url}\",\"concurrency\":{},\"payload\":{payload},\"calls\":{},\"errors\":{},\"seconds\":{:.3},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"client_cpu\":{:.2}}}",
            load.concurrency,
            self.calls,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.cpu_seconds / self.elapsed.as_secs_f64(),
        )
    }

    /// One line for people.
    pub fn human(&self, implementation: &str, url: &str, load: &Load, payload: usize) -> String {
        format!(
            "{implementation} url={url} concurrency={} payload={payload}B: {:.0} calls/s over {:.1}s ({} calls, {} errors), latency p50 {} µs, p99 {} µs, client CPU {:.0}% of a core",
            load.concurrency,
            self.rate(),
            self.elapsed.as_secs_f64(),
            self.calls,
            self.errors,
            self.percentile(0.50),
            self.percentile(0.99),
            100.0 * self.cpu_seconds / self.elapsed.as_secs_f64(),
        )
    }
}

/// CPU time (user + system) this process has used, seconds; 0 where /proc is missing.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // CLK_TCK is 100 on every Linux configuration this runs on.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Calls `call` until it succeeds (the server is up and consuming) or `wait` has passed.
pub async fn wait_for_server<F, Fut, E>(wait: Duration, call: F) -> Result<(), E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let until = Instant::now() + wait;
    loop {
        match call().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Runs `load.concurrency` callers of `call` (true = answered correctly) through the warm-up
/// and the window; returns what the window saw.
pub async fn run<F, Fut>(load: &Load, call: F) -> Report
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency {
        let (call, measuring, stop) = (call.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = call().await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies
                            .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(load.warmup).await;
    let cpu0 = process_cpu_seconds();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(load.window).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu_seconds = process_cpu_seconds() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort_unstable();
    Report {
        calls: latencies.len() as u64,
        errors,
        elapsed,
        cpu_seconds,
        latencies,
    }
}
