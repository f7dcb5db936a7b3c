//! TestService through a broker: every queue case (`interop::queue::CASES`) through the
//! generated `TestServiceQueueClient` against the generated `TestServiceQueueServer`, on the
//! embedded broker always, and on RabbitMQ / NATS when `SWITCHBOARD_AMQP_URL` /
//! `SWITCHBOARD_NATS_URL` are set (`eval "$(bash scripts/brokers.sh start)"`); otherwise those
//! tests say why they skip, or fail under `CI=true`.

use interop::queue::{self, CASES};
use std::time::Duration;

use switchboard::queue::Broker;
use switchboard_test_support::broker::{amqp_url, nats_url};
use switchboard_test_support::ready::retry_until;

/// The real-broker tests share the service name `grpc.testing.TestService` on one broker; other
/// test binaries (and interop-server in CI) run at other times, so servers here are only ever
/// competing consumers running the same code.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_cases(url: &str) {
    let _turn = TURN.lock().await;
    let broker = Broker::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let serving = broker.clone();
    let server = tokio::spawn(async move { queue::serve(&serving).await });
    // Wait until the server answers through the broker.
    let client = interop::testing::TestServiceQueueClient::new(&broker).timeout(Duration::from_secs(2));
    retry_until(&format!("the queue server to answer through {url}"), Duration::from_secs(30), || {
        client.empty_call(interop::testing::Empty {})
    })
    .await;
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(reason) = queue::run(case, &broker).await {
            failures.push(format!("{case}: {reason}"));
        }
    }
    server.abort();
    broker.close().await;
    assert!(failures.is_empty(), "queue cases failed on {url}:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_cases_on_the_embedded_broker() {
    run_cases("memory://interop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_cases_on_rabbitmq() {
    let Some(url) = amqp_url() else { return };
    run_cases(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_cases_on_nats() {
    let Some(url) = nats_url() else { return };
    run_cases(&url).await;
}

#[tokio::test]
async fn unknown_queue_case_fails() {
    let broker = Broker::connect("memory://unknown-case").await.unwrap();
    assert!(queue::run("no_such_case", &broker).await.is_err());
}
