//! The queue suite on the embedded broker (`memory://`): runs everywhere, no broker to install.

#[path = "queue/suite.rs"]
mod suite;
#[path = "queue/cancel.rs"]
mod cancel;

use std::time::Duration;

use suite::*;
use switchboard::queue::Broker;
use switchboard::{Code, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_the_embedded_broker() {
    run_all("memory://suite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_calls_are_cancelled_on_the_embedded_broker() {
    cancel::run_all("memory://cancel").await;
    cancel::queued_and_cancelled_is_not_run("memory://cancel-queued").await;
}

#[tokio::test]
async fn unserved_calls_fail_fast() {
    unserved_is_unavailable("memory://nobody").await;
}

#[tokio::test]
async fn expired_requests_are_dropped_not_run() {
    let broker = Broker::connect("memory://expired").await.unwrap();
    let book = Impl::default();
    // One slot: the second request waits in the queue behind a slow one, past its deadline.
    let server = LedgerQueueServer::new(book.clone()).prefetch(1);
    let b = broker.clone();
    tokio::spawn(async move { server.serve(&b).await.unwrap() });
    until_serving(&broker).await;
    let client = LedgerQueueClient::new(&broker);
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.echo(suite::Entry { id: "slow".into(), sleep_ms: 500, ..Default::default() }).await }
    });
    until_started(&book.0, "slow").await;
    let mut late = Request::new(suite::Entry { id: "late".into(), ..Default::default() });
    late.set_timeout(Duration::from_millis(100));
    assert_eq!(client.echo(late).await.unwrap_err().code(), Code::DeadlineExceeded);
    slow.await.unwrap().unwrap();
    // The one slot takes the queue in order: once a request sent after `late` is answered, the
    // server has dealt with `late`.
    client.echo(suite::Entry { id: "after".into(), ..Default::default() }).await.unwrap();
    assert_eq!(*book.0.started.lock().unwrap(), ["slow", "after"], "the expired request ran");
}

#[tokio::test]
async fn a_killed_consumer_hands_its_message_to_another() {
    let broker = Broker::connect("memory://killed").await.unwrap();
    let book = Impl::default();
    // The first server dies while handling (its task is aborted before the ack).
    let first = LedgerQueueServer::new(book.clone());
    let b = broker.clone();
    let first = tokio::spawn(async move { first.serve(&b).await.unwrap() });
    until_serving(&broker).await;
    let client = LedgerQueueClient::new(&broker);
    let mut req = Request::new(suite::Entry { id: "k".into(), amount: 9, sleep_ms: 300, ..Default::default() });
    req.metadata_mut().insert("idempotency-key", "k-1".parse().unwrap());
    let call = tokio::spawn(async move { client.echo(req).await });
    until_started(&book.0, "k").await;
    first.abort();
    let _ = first.await;
    // A second consumer gets the unacked request and answers the caller still waiting.
    let second = LedgerQueueServer::new(book.clone());
    let b = broker.clone();
    tokio::spawn(async move { second.serve(&b).await.unwrap() });
    let resp = call.await.unwrap().expect("answered by the second consumer");
    assert_eq!(resp.get_ref().amount, 9);
    assert_eq!(*book.0.started.lock().unwrap(), ["k", "k"], "started by both servers");
}

#[tokio::test]
async fn a_bounded_drain_hands_unfinished_calls_to_another_server() {
    let broker = Broker::connect("memory://bounded-drain").await.unwrap();
    let book = Impl::default();
    // The first server is shut down while a call runs 30 s: it waits 200 ms for it, stops it,
    // and the message (never acknowledged) goes to the next server.
    let first = LedgerQueueServer::new(book.clone()).drain_timeout(Duration::from_millis(200));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let b = broker.clone();
    let first = tokio::spawn(async move { first.serve_with_shutdown(&b, async { _ = stopped.await }).await });
    until_serving(&broker).await;
    let client = LedgerQueueClient::new(&broker);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.echo(suite::Entry { id: "long".into(), amount: 4, sleep_ms: 30_000, ..Default::default() }).await }
    });
    until_started(&book.0, "long").await;
    let asked = std::time::Instant::now();
    stop.send(()).unwrap();
    first.await.unwrap().expect("the first server stops cleanly");
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "the drain took {took:?}");
    // The call has not failed: its request is queued again and the next server answers it.
    assert!(!call.is_finished(), "the caller got an answer from a server that stopped");
    let second = LedgerQueueServer::new(book.clone());
    let b = broker.clone();
    tokio::spawn(async move { second.serve(&b).await.unwrap() });
    let runs = || book.0.started.lock().unwrap().iter().filter(|id| *id == "long").count();
    switchboard_test_support::ready::eventually("the second server to take the call", Duration::from_secs(10), || runs() == 2).await;
    call.abort();
}
