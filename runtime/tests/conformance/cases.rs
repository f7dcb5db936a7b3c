//! The cases, each written once against [`Transport`] and asserted from the caller's side (with
//! the handler's own report where the case is about what the handler sees).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use switchboard::metadata::BinaryMetadataValue;
use switchboard::{Code, Request};

use crate::service::*;
use crate::transports::*;

/// Generous bound for things that should happen at once (CI machines are slow).
const SOON: Duration = Duration::from_secs(5);

fn msg(id: &str) -> Msg {
    Msg { id: id.to_owned(), ..Default::default() }
}

/// A deadline shorter than the handler: the caller gets DEADLINE_EXCEEDED on time, the handler
/// saw the deadline, and its cancellation fires.
pub async fn deadline_exceeded_cancels_the_handler(t: Transport) {
    let id = call_id("deadline", &t);
    let mut req = Request::new(msg(&id));
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = t.caller.slow(req).await.expect_err("a call past its deadline succeeded");
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}: {err:?}", t.name);
    assert!(took < SOON, "{}: DEADLINE_EXCEEDED after {took:?} for a 300 ms deadline", t.name);

    let seen = tokio::time::timeout(SOON, PROBE.wait_started(&id))
        .await
        .unwrap_or_else(|_| panic!("{}: the handler never started", t.name));
    let left = seen.deadline.unwrap_or_else(|| panic!("{}: the handler saw no deadline", t.name));
    assert!(left <= Duration::from_millis(300), "{}: the handler saw {left:?} left of a 300 ms deadline", t.name);
    tokio::time::timeout(SOON, seen.cancellation.cancelled())
        .await
        .unwrap_or_else(|_| panic!("{}: the handler's cancellation did not fire at the deadline", t.name));
}

/// A response stream still running at the deadline: the caller gets the messages sent so far,
/// then DEADLINE_EXCEEDED; the handler saw the deadline and its cancellation fires (its stream is
/// dropped).
pub async fn deadline_ends_a_response_stream(t: Transport) {
    let id = call_id("ticks", &t);
    let mut req = Request::new(msg(&id));
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut ticks = t.caller.ticks(req).await.unwrap_or_else(|e| panic!("{}: ticks: {e:?}", t.name)).into_inner();
    let mut received = 0;
    let err = loop {
        let next = tokio::time::timeout(SOON, ticks.message()).await;
        match next.unwrap_or_else(|_| panic!("{}: the stream stalled past its deadline", t.name)) {
            Ok(Some(m)) => {
                assert_eq!((m.id.as_str(), m.n), (id.as_str(), received), "{}: tick {received}", t.name);
                received += 1;
            }
            Ok(None) => panic!("{}: the stream ended without a status", t.name),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}: {err:?}", t.name);
    assert!(received >= 1, "{}: no message before the deadline", t.name);
    assert!(started.elapsed() < SOON, "{}: the stream ended after {:?}", t.name, started.elapsed());
    let seen = tokio::time::timeout(SOON, PROBE.wait_started(&id))
        .await
        .unwrap_or_else(|_| panic!("{}: the handler never started", t.name));
    assert!(seen.deadline.is_some_and(|d| d <= Duration::from_millis(300)), "{}: deadline seen: {:?}", t.name, seen.deadline);
    tokio::time::timeout(SOON, seen.cancellation.cancelled())
        .await
        .unwrap_or_else(|_| panic!("{}: the stream's cancellation did not fire at the deadline", t.name));
}

/// The caller drops the call while the handler runs: the handler's cancellation fires — at
/// once where the transport carries cancellation, at the call's deadline where it does not
/// (queues: see [`CallerCancel`]).
pub async fn dropped_call_cancels_the_handler(t: Transport) {
    let id = call_id("dropped", &t);
    let (timeout, wait) = match t.caller_cancel {
        // A deadline far away, so that only the drop can explain a cancellation.
        CallerCancel::Propagated => (Duration::from_secs(120), SOON),
        CallerCancel::AtDeadline => (Duration::from_secs(1), Duration::from_secs(1) + SOON),
    };
    let mut req = Request::new(msg(&id));
    req.set_timeout(timeout);
    let mut call = t.caller.slow(req);
    let seen = tokio::select! {
        r = &mut call => panic!("{}: the call ended before it was dropped: {r:?}", t.name),
        seen = tokio::time::timeout(SOON, PROBE.wait_started(&id)) => {
            seen.unwrap_or_else(|_| panic!("{}: the handler never started", t.name))
        }
    };
    assert!(!seen.cancellation.is_cancelled(), "{}: cancelled before the caller went away", t.name);
    drop(call); // the caller walks away
    let dropped = Instant::now();
    tokio::time::timeout(wait, seen.cancellation.cancelled()).await.unwrap_or_else(|_| {
        panic!("{}: the handler's cancellation did not fire within {wait:?} of the caller dropping the call ({:?})", t.name, t.caller_cancel)
    });
    if t.caller_cancel == CallerCancel::Propagated {
        assert!(dropped.elapsed() < SOON);
    }
}

/// Request metadata reaches the handler; response metadata and trailers reach the caller (every
/// transport documents carrying them: gRPC headers and trailers, REST response headers, queue
/// reply headers); an error's code, message (non-ASCII included) and metadata come back, for
/// every code.
pub async fn metadata_trailers_and_errors_round_trip(t: Transport) {
    let id = call_id("metadata", &t);
    let mut req = Request::new(Msg { id: id.clone(), text: "hello".into(), n: -42, ..Default::default() });
    req.metadata_mut().insert("x-tenant", "blue".parse().unwrap());
    req.metadata_mut().insert_bin("x-blob-bin", BinaryMetadataValue::from_bytes(&[0, 1, 2, 255]));
    let resp = t.caller.echo(req).await.unwrap_or_else(|e| panic!("{}: echo: {e:?}", t.name));
    assert_eq!(resp.get_ref(), &Msg { id, text: "hello".into(), n: -42, fail_code: 0 }, "{}", t.name);
    let md = resp.metadata();
    assert_eq!(md.get("x-tenant").map(|v| v.to_str().unwrap()), Some("blue"), "{}: response metadata: {md:?}", t.name);
    assert_eq!(
        md.get_bin("x-blob-bin").map(|v| v.to_bytes().unwrap().to_vec()),
        Some(vec![0, 1, 2, 255]),
        "{}: binary response metadata: {md:?}",
        t.name
    );
    assert_eq!(md.get("x-checksum").map(|v| v.to_str().unwrap()), Some("sum-1"), "{}: trailers: {md:?}", t.name);

    let message = "refused: «quota» ☺ 😈, 100% of it";
    for code in 1..=16 {
        let code = Code::from_i32(code);
        let m = Msg { id: call_id("error", &t), text: message.into(), fail_code: code as i32, n: 0 };
        let err = t.caller.echo(Request::new(m)).await.expect_err("echo with fail_code succeeded");
        assert_eq!((err.code(), err.message()), (code, message), "{}: {err:?}", t.name);
        assert_eq!(
            err.metadata().get("x-reason").map(|v| v.to_str().unwrap()),
            Some("quota"),
            "{}: error metadata of {code:?}: {:?}",
            t.name,
            err.metadata()
        );
    }
}

/// A method whose handler panics answers INTERNAL (REST: a 500 the client reads as INTERNAL),
/// every time, whether it panics in its future or before returning one (`n: 1`), and the server
/// goes on serving: 1,000 calls to another method all succeed.
pub async fn a_panic_answers_internal_and_the_server_keeps_serving(t: Transport) {
    for n in 0..2 {
        let mut req = Request::new(Msg { n, ..msg(&call_id("boom", &t)) });
        // A server that dies instead of answering must not hang the test.
        req.set_timeout(Duration::from_secs(10));
        let err = t.caller.boom(req).await.expect_err("a panicking handler succeeded");
        assert_eq!(err.code(), Code::Internal, "{}: {err:?}", t.name);
    }
    let calls = futures_util::stream::iter(0..1000i64)
        .map(|i| {
            let t = &t;
            async move {
                let mut req = Request::new(Msg { id: format!("after-boom-{i}"), n: i, ..Default::default() });
                req.set_timeout(Duration::from_secs(30));
                (i, t.caller.echo(req).await.map(|r| r.into_inner().n))
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<_> = calls.iter().filter(|(i, r)| r.as_ref().ok() != Some(i)).collect();
    assert!(
        failed.is_empty(),
        "{}: {} of 1,000 calls after the panics failed, e.g. {:?}",
        t.name,
        failed.len(),
        &failed[..failed.len().min(3)]
    );
}

/// A response stream that panics after its first message: the caller gets that message, then
/// INTERNAL, and the server still answers.
pub async fn a_panicking_stream_ends_with_internal(t: Transport) {
    let id = call_id("boom-stream", &t);
    let mut req = Request::new(msg(&id));
    req.set_timeout(Duration::from_secs(10));
    let mut stream = t.caller.boom_stream(req).await.unwrap_or_else(|e| panic!("{}: boom_stream: {e:?}", t.name)).into_inner();
    let first = stream.message().await.unwrap_or_else(|e| panic!("{}: the first message: {e:?}", t.name));
    assert_eq!(first.map(|m| m.id), Some(id), "{}", t.name);
    let err = stream.message().await.expect_err("a panicking stream ended well");
    assert_eq!(err.code(), Code::Internal, "{}: {err:?}", t.name);
    let mut req = Request::new(Msg { id: call_id("after-boom-stream", &t), n: 7, ..Default::default() });
    req.set_timeout(Duration::from_secs(10));
    let after = t.caller.echo(req).await.unwrap_or_else(|e| panic!("{}: a call after the panic: {e:?}", t.name));
    assert_eq!(after.get_ref().n, 7);
}

/// An event whose handler panics is retried and, after its attempts, lands in the dead-letter
/// queue with INTERNAL as its last error (queue transports: the only ones with events).
pub async fn a_panicking_event_is_dead_lettered(t: Transport) {
    let (client, broker) = t.queue.clone().expect("a queue transport");
    let id = call_id("explode", &t);
    client.publish_explode(msg(&id)).await.unwrap_or_else(|e| panic!("{}: publish: {e:?}", t.name));
    // The last attempt's outcome shows only in the dead-letter queue: look there until it comes.
    // Dead letters of other runs (durable queues on a real broker) are taken and ignored.
    let until = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let taken = broker.dead_letters(SERVICE, "Explode", 100).await.unwrap_or_else(|e| panic!("{}: dead letters: {e:?}", t.name));
        let ours = taken.into_iter().find(|env| {
            <Msg as switchboard::prost::Message>::decode(env.body.as_ref()).is_ok_and(|m| m.id == id)
        });
        if let Some(env) = ours {
            break env;
        }
        assert!(
            Instant::now() < until,
            "{}: the event never reached the dead-letter queue (the handler ran {} times)",
            t.name,
            PROBE.attempts(&id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead.header("sb-status"), Some("13"), "{}: {:?}", t.name, dead.headers);
    assert_eq!(dead.header("sb-attempt"), Some(MAX_ATTEMPTS.to_string().as_str()), "{}: {:?}", t.name, dead.headers);
    assert_eq!(PROBE.attempts(&id), MAX_ATTEMPTS, "{}: handler runs", t.name);
}

/// Over queues a request with an idempotency key is answered once per key (the dedupe window),
/// but a handler that panicked did not answer: its key is released, and the caller's retry with
/// the same key runs the handler again (and does not wait for the first run forever).
pub async fn a_panicked_request_is_not_remembered(t: Transport) {
    let id = call_id("boom-keyed", &t);
    for run in 1..=2 {
        let mut req = Request::new(msg(&id));
        req.metadata_mut().insert("idempotency-key", id.parse().unwrap());
        req.set_timeout(Duration::from_secs(10));
        let err = t.caller.boom(req).await.expect_err("a panicking handler succeeded");
        assert_eq!(err.code(), Code::Internal, "{}: {err:?}", t.name);
        assert_eq!(PROBE.attempts(&id), run, "{}: handler runs after call {run} with one key", t.name);
    }
}
