//! `bench-load`: a closed-loop load generator for `bench.Echo/Unary`, over
//! gRPC (default) or REST (`--rest`), and for the OpenAPI petstore's
//! `GET /v1/pets/{petId}` (`--openapi`).
//!
//! gRPC: keeps `--concurrency` unary calls in flight, spread round-robin over
//! `--connections` HTTP/2 channels (default 4).
//!
//! REST (`--rest`): `POST /bench.Echo/Unary` with `content-type:
//! application/json` and the body `{"body":"<base64 of the payload>"}` over
//! HTTP/1.1 keep-alive connections (hyper 1 client, one
//! `hyper::client::conn::http1` connection per caller). HTTP/1.1 carries one
//! request at a time per connection, so `--connections` defaults to, and
//! must equal, `--concurrency`. A response counts as a success if it is
//! `200` and its body is byte-for-byte the request JSON. Before the load
//! starts, one probe request checks exactly that (plus the
//! `application/json` content type) and stops with the server's answer if it
//! does not hold.
//!
//! OpenAPI (`--openapi`): `GET /v1/pets/{id}` over HTTP/1.1 keep-alive, the
//! same connections and closed loop as `--rest`. Each caller walks through
//! the ids 1..=`--ids` (100), starting at its own offset, so the path and
//! the answer change from one request to the next. Before the load starts,
//! one probe per id checks `200`, `application/json` and a body holding
//! `"id":<id>`, and keeps that body; and `GET /v1/pets/0` must answer `400`
//! (the document's `minimum: 1`). During the load a response counts as a
//! success if it is `200` and byte for byte the probe's body for its id.
//! `--payload` does not apply.
//!
//! All modes run `--warmup` seconds (not counted) and then `--seconds`
//! seconds (measured). A request counts toward the result if it *completes*
//! inside the measured window. Prints one JSON line on stdout:
//! `{"requests":N,"errors":E,"seconds":S,"rps":R,"p50_us":..,"p99_us":..}`.
//!
//! Run: `bench-load --addr http://127.0.0.1:50051 --seconds 10`
//!      `bench-load --rest --addr http://127.0.0.1:8080 --seconds 10 --concurrency 64`
//!      `bench-load --openapi --addr http://127.0.0.1:8080 --seconds 10 --concurrency 64`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bench::{EchoMsg, PETS_PATH, UNARY_PATH};
use bytes::Bytes;
use clap::Parser;
use http::uri::{Authority, PathAndQuery};
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};

/// How long after the end of the window an in-flight call may still take
/// before it is abandoned (it is not counted either way).
const GRACE: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    name = "bench-load",
    about = "Unary load generator for bench.Echo (gRPC, or REST with --rest) and GET /v1/pets/{id} (--openapi)"
)]
struct Args {
    /// Server address, e.g. http://127.0.0.1:50051
    #[arg(long)]
    addr: String,
    /// REST mode: POST /bench.Echo/Unary with a JSON body over HTTP/1.1
    /// instead of gRPC.
    #[arg(long, conflicts_with = "openapi")]
    rest: bool,
    /// OpenAPI mode: GET /v1/pets/{id} over HTTP/1.1 (the petstore's getPet).
    #[arg(long)]
    openapi: bool,
    /// OpenAPI mode: the ids requested, 1..=IDS.
    #[arg(long, default_value_t = 100)]
    ids: u32,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before the measured window, in seconds (not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Number of requests kept in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Number of connections. gRPC: HTTP/2 channels, requests are spread
    /// round-robin [default: 4]. REST and OpenAPI: HTTP/1.1 connections, one
    /// request in flight on each [default and only allowed value: --concurrency].
    #[arg(long)]
    connections: Option<usize>,
    /// Size of EchoMsg.body in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Tokio worker threads for the load generator (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one worker saw inside the measured window.
#[derive(Default)]
struct Stats {
    /// Latency of each successful call, in microseconds.
    latencies_us: Vec<u32>,
    errors: u64,
}

fn main() {
    let args = Args::parse();
    let http1 = args.rest || args.openapi;
    let connections = args
        .connections
        .unwrap_or(if http1 { args.concurrency } else { 4 });
    if args.concurrency == 0 || connections == 0 || args.threads == 0 {
        eprintln!("bench-load: --concurrency, --connections and --threads must be at least 1");
        std::process::exit(2);
    }
    if http1 && connections != args.concurrency {
        eprintln!(
            "bench-load: --rest / --openapi: HTTP/1.1 carries one request at a time per connection, \
             so --connections ({connections}) must equal --concurrency ({})",
            args.concurrency
        );
        std::process::exit(2);
    }
    if args.ids == 0 {
        eprintln!("bench-load: --ids must be at least 1");
        std::process::exit(2);
    }
    if !(args.seconds > 0.0 && args.warmup >= 0.0) {
        eprintln!("bench-load: --seconds must be > 0 and --warmup >= 0");
        std::process::exit(2);
    }

    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("build tokio runtime");

    let outcome = if args.rest {
        runtime.block_on(run_rest(&args))
    } else if args.openapi {
        runtime.block_on(run_openapi(&args))
    } else {
        runtime.block_on(run(&args, connections))
    };
    match outcome {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("bench-load: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: &Args, connections: usize) -> Result<String, BoxError> {
    let endpoint = Endpoint::from_shared(args.addr.clone())?.tcp_nodelay(true);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        // Each `connect` opens its own HTTP/2 connection.
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect to {}: {e:?}", args.addr))?;
        clients.push(Grpc::new(channel));
    }
    let clients: Arc<[Grpc<Channel>]> = clients.into();

    let body = vec![0xA5u8; args.payload];
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.seconds);

    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let clients = Arc::clone(&clients);
            let next = Arc::clone(&next);
            let body = body.clone();
            tokio::spawn(worker(clients, next, body, window_start, window_end))
        })
        .collect();

    report(workers, window_end - window_start).await
}

/// Collects the workers' stats into the one-line JSON result.
async fn report(
    workers: Vec<tokio::task::JoinHandle<Stats>>,
    window: Duration,
) -> Result<String, BoxError> {
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0u64;
    for w in workers {
        let stats = w.await?;
        latencies.extend_from_slice(&stats.latencies_us);
        errors += stats.errors;
    }

    let seconds = window.as_secs_f64();
    let requests = latencies.len();
    latencies.sort_unstable();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    Ok(format!(
        "{{\"requests\":{requests},\"errors\":{errors},\"seconds\":{seconds},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
        requests as f64 / seconds,
        json_opt(p50),
        json_opt(p99),
    ))
}

/// One closed-loop caller: issue a request, wait for it, repeat.
async fn worker(
    clients: Arc<[Grpc<Channel>]>,
    next: Arc<AtomicUsize>,
    body: Vec<u8>,
    window_start: Instant,
    window_end: Instant,
) -> Stats {
    // Own clones: a `Channel` hands out readiness per handle.
    let mut clients: Vec<Grpc<Channel>> = clients.to_vec();
    let path = PathAndQuery::from_static(UNARY_PATH);
    let deadline = window_end + GRACE;
    let mut stats = Stats::default();

    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed) % clients.len();
        let client = &mut clients[i];
        let call = async {
            client
                .ready()
                .await
                .map_err(|e| tonic::Status::unknown(format!("channel not ready: {e}")))?;
            let codec = tonic_prost::ProstCodec::<EchoMsg, EchoMsg>::default();
            let request = tonic::Request::new(EchoMsg { body: body.clone() });
            client.unary(request, path.clone(), codec).await
        };
        let outcome = tokio::time::timeout_at(deadline, call).await;
        let done = Instant::now();
        if done < window_start || done >= window_end {
            if outcome.is_err() {
                break; // deadline passed: stop this worker
            }
            continue;
        }
        match outcome {
            Ok(Ok(resp)) if resp.get_ref().body.len() == body.len() => {
                let us = (done - sent).as_micros();
                stats
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            // Wrong echo, gRPC error, or timeout: all count as errors.
            _ => stats.errors += 1,
        }
    }
    stats
}

/// One HTTP/1.1 connection to the REST server.
struct RestConn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl RestConn {
    async fn connect(authority: &Authority) -> Result<Self, BoxError> {
        let port = authority.port_u16().unwrap_or(80);
        let tcp = TcpStream::connect((authority.host(), port))
            .await
            .map_err(|e| format!("connect to {authority}: {e}"))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        // The connection task drives the socket; it ends when the sender is dropped.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one `POST /bench.Echo/Unary` and reads the whole answer.
    async fn call(
        &mut self,
        authority: &Authority,
        json: &Bytes,
    ) -> Result<(StatusCode, Option<http::HeaderValue>, Bytes), BoxError> {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(UNARY_PATH)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(json.clone()))?;
        self.send(request).await
    }

    /// Sends one `GET` of `uri` (a path) and reads the whole answer.
    async fn get(
        &mut self,
        authority: &Authority,
        uri: &http::Uri,
    ) -> Result<(StatusCode, Option<http::HeaderValue>, Bytes), BoxError> {
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(uri.clone())
            .header(header::HOST, authority.as_str())
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(
        &mut self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Option<http::HeaderValue>, Bytes), BoxError> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, content_type, body))
    }
}

/// REST mode: one closed-loop caller per HTTP/1.1 connection.
async fn run_rest(args: &Args) -> Result<String, BoxError> {
    let uri: http::Uri = args.addr.parse()?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("--addr {} has no host:port", args.addr))?;
    // proto3 JSON of EchoMsg { body }: bytes are standard base64 with padding.
    let json = Bytes::from(format!(
        "{{\"body\":\"{}\"}}",
        STANDARD.encode(vec![0xA5u8; args.payload])
    ));

    let mut conns = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        conns.push(RestConn::connect(&authority).await?);
    }

    // Probe: the answer must be 200, application/json, and the request JSON echoed.
    let (status, content_type, body) = conns[0]
        .call(&authority, &json)
        .await
        .map_err(|e| format!("probe POST {UNARY_PATH}: {e}"))?;
    let json_type = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status != StatusCode::OK || !json_type || body != json {
        return Err(format!(
            "probe POST {UNARY_PATH}: expected 200 application/json {}, got {status} {content_type:?} {}",
            String::from_utf8_lossy(&json),
            String::from_utf8_lossy(&body),
        )
        .into());
    }

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.seconds);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            tokio::spawn(rest_worker(
                conn,
                authority.clone(),
                json.clone(),
                window_start,
                window_end,
            ))
        })
        .collect();
    report(workers, window_end - window_start).await
}

/// One closed-loop REST caller on its own connection: send, wait for the
/// whole answer, check it, repeat. A failed connection is replaced.
async fn rest_worker(
    mut conn: RestConn,
    authority: Authority,
    json: Bytes,
    window_start: Instant,
    window_end: Instant,
) -> Stats {
    let deadline = window_end + GRACE;
    let mut stats = Stats::default();

    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let outcome = tokio::time::timeout_at(deadline, conn.call(&authority, &json)).await;
        let done = Instant::now();
        let ok = matches!(&outcome, Ok(Ok((status, _, body))) if *status == StatusCode::OK && *body == json);
        if matches!(outcome, Ok(Err(_))) || conn.sender.is_closed() {
            // Transport error: the connection is unusable, open a new one.
            match RestConn::connect(&authority).await {
                Ok(c) => conn = c,
                Err(_) => {
                    if done >= window_start && done < window_end {
                        stats.errors += 1;
                    }
                    break;
                }
            }
        }
        if done < window_start || done >= window_end {
            if outcome.is_err() {
                break; // deadline passed: stop this worker
            }
            continue;
        }
        if ok {
            let us = (done - sent).as_micros();
            stats
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            // Wrong status or body, transport error, or timeout: all count as errors.
            stats.errors += 1;
        }
    }
    stats
}

/// OpenAPI mode: one closed-loop caller per HTTP/1.1 connection, `GET /v1/pets/{id}`.
async fn run_openapi(args: &Args) -> Result<String, BoxError> {
    let uri: http::Uri = args.addr.parse()?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("--addr {} has no host:port", args.addr))?;

    let mut conns = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        conns.push(RestConn::connect(&authority).await?);
    }

    // Probes: every id answers 200 application/json with its id in the body; that body is what
    // the load expects for the id. And id 0 is refused (the document's `minimum: 1`).
    let probe = &mut conns[0];
    let zero: http::Uri = format!("{PETS_PATH}/0").parse()?;
    let (status, _, body) = probe
        .get(&authority, &zero)
        .await
        .map_err(|e| format!("probe GET {zero}: {e}"))?;
    if status != StatusCode::BAD_REQUEST {
        return Err(format!(
            "probe GET {zero}: expected 400, got {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    let mut targets = Vec::with_capacity(args.ids as usize);
    for id in 1..=args.ids {
        let uri: http::Uri = format!("{PETS_PATH}/{id}").parse()?;
        let (status, content_type, body) = probe
            .get(&authority, &uri)
            .await
            .map_err(|e| format!("probe GET {uri}: {e}"))?;
        let json_type = content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let id_field = format!("\"id\":{id}");
        let holds_id = body.windows(id_field.len()).enumerate().any(|(at, w)| {
            w == id_field.as_bytes()
                && !body
                    .get(at + id_field.len())
                    .is_some_and(u8::is_ascii_digit)
        });
        if status != StatusCode::OK || !json_type || !holds_id {
            return Err(format!(
                "probe GET {uri}: expected 200 application/json with {id_field}, got {status} {content_type:?} {}",
                String::from_utf8_lossy(&body),
            )
            .into());
        }
        targets.push((uri, body));
    }
    let targets: Arc<[(http::Uri, Bytes)]> = targets.into();

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.seconds);
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            tokio::spawn(openapi_worker(
                conn,
                authority.clone(),
                Arc::clone(&targets),
                i,
                window_start,
                window_end,
            ))
        })
        .collect();
    report(workers, window_end - window_start).await
}

/// One closed-loop OpenAPI caller on its own connection: `GET` the next id, check the answer,
/// repeat. A failed connection is replaced.
async fn openapi_worker(
    mut conn: RestConn,
    authority: Authority,
    targets: Arc<[(http::Uri, Bytes)]>,
    offset: usize,
    window_start: Instant,
    window_end: Instant,
) -> Stats {
    let deadline = window_end + GRACE;
    let mut stats = Stats::default();
    let mut next = offset;

    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let (uri, expected) = &targets[next % targets.len()];
        next += 1;
        let outcome = tokio::time::timeout_at(deadline, conn.get(&authority, uri)).await;
        let done = Instant::now();
        let ok = matches!(&outcome, Ok(Ok((status, _, body))) if *status == StatusCode::OK && body == expected);
        if matches!(outcome, Ok(Err(_))) || conn.sender.is_closed() {
            match RestConn::connect(&authority).await {
                Ok(c) => conn = c,
                Err(_) => {
                    if done >= window_start && done < window_end {
                        stats.errors += 1;
                    }
                    break;
                }
            }
        }
        if done < window_start || done >= window_end {
            if outcome.is_err() {
                break; // deadline passed: stop this worker
            }
            continue;
        }
        if ok {
            let us = (done - sent).as_micros();
            stats
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            stats.errors += 1;
        }
    }
    stats
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn json_opt(v: Option<u32>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}
