//! Readiness by signal: a test waits for the thing it needs (a successful call, a condition, a
//! "ready" line), up to a deadline, never for a fixed time.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The pause between tries: short at first, at most 200 ms.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis((10u64 << tries.min(5)).min(200))
}

/// Runs `attempt` until it returns `Ok`, and returns that value; panics with the last error if
/// `limit` passes first. For "the server answers" readiness: the first successful call is the
/// signal.
pub async fn retry_until<T, E, F, Fut>(what: &str, limit: Duration, mut attempt: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(err) if Instant::now() >= deadline => {
                panic!("{what}: still failing after {limit:?} ({} tries); last error: {err:?}", tries + 1)
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff(tries)).await;
        tries += 1;
    }
}

/// Waits until `check` holds; panics naming `what` if `limit` passes first.
pub async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut tries = 0;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(backoff(tries)).await;
        tries += 1;
    }
}

/// Reads lines from `reader` until one contains `needle`, and returns it; panics if the stream
/// ends or `limit` passes first (with the lines read so far). For processes that print a ready
/// line ("listening on ...", "queue: serving").
pub async fn wait_for_line<R: AsyncBufRead + Unpin>(reader: &mut R, needle: &str, limit: Duration) -> String {
    let mut seen = String::new();
    let read = async {
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).await.unwrap_or_else(|e| panic!("reading output: {e}"));
            if n == 0 {
                panic!("the output ended before a line with {needle:?}; it said:\n{seen}");
            }
            if line.contains(needle) {
                return line;
            }
            seen.push_str(&line);
        }
    };
    match tokio::time::timeout(limit, read).await {
        Ok(line) => line,
        Err(_) => panic!("no line with {needle:?} within {limit:?}"),
    }
}

/// Connects to `addr` until it accepts, up to `limit`.
pub async fn connect_until(addr: &str, limit: Duration) -> tokio::net::TcpStream {
    retry_until(&format!("connect to {addr}"), limit, || tokio::net::TcpStream::connect(addr)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retry_until_returns_the_first_success() {
        let n = AtomicU32::new(0);
        let got = retry_until("counter", Duration::from_secs(5), || async {
            let k = n.fetch_add(1, Ordering::SeqCst);
            if k < 3 { Err(k) } else { Ok(k) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never: still failing")]
    async fn retry_until_gives_up_at_the_deadline() {
        retry_until("never", Duration::from_millis(50), || async { Err::<(), _>("no") }).await;
    }

    #[tokio::test]
    async fn wait_for_line_finds_the_ready_line() {
        let mut input = tokio::io::BufReader::new(&b"starting\nlistening on 127.0.0.1:5\nmore\n"[..]);
        let line = wait_for_line(&mut input, "listening", Duration::from_secs(1)).await;
        assert_eq!(line.trim(), "listening on 127.0.0.1:5");
    }

    #[tokio::test]
    #[should_panic(expected = "ended before a line")]
    async fn wait_for_line_fails_when_the_output_ends() {
        let mut input = tokio::io::BufReader::new(&b"starting\n"[..]);
        wait_for_line(&mut input, "listening", Duration::from_secs(1)).await;
    }
}
