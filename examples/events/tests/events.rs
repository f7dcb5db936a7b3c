//! The order-events example end to end: on the embedded broker (memory://, in this process, so
//! `cargo test --workspace` covers it without a broker), and on Kafka with the two binaries as
//! separate processes when SWITCHBOARD_KAFKA_URL is set (`eval "$(bash scripts/brokers.sh start
//! kafka)"`; skipped with the reason when unset, failed under CI=true).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use events::orders::{GetOrderRequest, Order, OrdersQueueClient};
use events::{OrderBook, Published, SERVICE};
use switchboard::queue::wire::Envelope;
use switchboard::queue::Broker;
use switchboard::Code;
use switchboard_test_support::broker::env_or_skip;
use switchboard_test_support::ready::{eventually, retry_until, wait_for_line};
use tokio::io::{AsyncBufReadExt, BufReader};

const MAX_ATTEMPTS: u32 = 3;

/// GetOrder through `broker` until the server has handled `id` (and `done` holds).
async fn handled(broker: &Broker, id: &str, done: impl Fn(&Order) -> bool) -> Order {
    let client = OrdersQueueClient::new(broker).timeout(Duration::from_secs(5));
    retry_until(&format!("GetOrder({id}) shows it handled"), Duration::from_secs(30), || async {
        let order = client
            .get_order(GetOrderRequest { order_id: id.to_owned() })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        if done(&order) { Ok(order) } else { Err(format!("not yet: {order:?}")) }
    })
    .await
}

/// Takes dead letters off `sb.dlq.shop.orders.v1.Orders.Placed` until one has `message_id`.
async fn dead_letter(broker: &Broker, message_id: &str) -> Envelope {
    retry_until(&format!("the dead letter {message_id}"), Duration::from_secs(30), || async {
        let dead = broker.dead_letters(SERVICE, "Placed", 100).await.map_err(|s| s.to_string())?;
        dead.into_iter().find(|env| env.header("message-id") == Some(message_id)).ok_or_else(|| "not there yet".to_owned())
    })
    .await
}

/// What both brokers must show: every published order handled once, with its key; the declined
/// one run `MAX_ATTEMPTS` times and then in the dead letters with the last error.
async fn check(broker: &Broker, published: &[Published], declined: &Published) {
    for p in published {
        let order = handled(broker, &p.order_id, |_| true).await;
        assert_eq!(order.amount, p.amount, "{order:?}");
        assert!(order.accepted, "{order:?}");
        assert_eq!(order.attempts, 1, "handled once: {order:?}");
        assert_eq!(order.key, p.order_id, "the handler's sb-key is the order id: {order:?}");
    }
    let client = OrdersQueueClient::new(broker).timeout(Duration::from_secs(5));
    let err = client.get_order(GetOrderRequest { order_id: "never-placed".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let order = handled(broker, &declined.order_id, |o| o.attempts >= MAX_ATTEMPTS).await;
    assert!(!order.accepted && order.attempts == MAX_ATTEMPTS, "{order:?}");
    let dead = dead_letter(broker, &declined.message_id).await;
    assert_eq!(dead.header("sb-status"), Some("9"), "FAILED_PRECONDITION: {:?}", dead.headers);
    assert_eq!(dead.header("sb-attempt"), Some("3"), "{:?}", dead.headers);
    assert_eq!(dead.header("sb-key"), Some(declined.order_id.as_str()), "{:?}", dead.headers);
    assert!(dead.header("sb-status-message").is_some_and(|m| m.contains("declined")), "{:?}", dead.headers);
}

#[tokio::test]
async fn events_on_the_embedded_broker() {
    let broker = Broker::connect("memory://events-example").await.unwrap();
    let book = Arc::new(OrderBook::new());
    let server = events::queue_server(book.clone(), MAX_ATTEMPTS);
    let serving = {
        let broker = broker.clone();
        tokio::spawn(async move { server.serve(&broker).await })
    };
    events::wait_until_served(&broker, Duration::from_secs(10)).await.unwrap();

    let published = events::publish(&broker, "mem", 5, 1250).await.unwrap();
    assert_eq!(published.len(), 5);
    assert_eq!(published[0].to_string(), "published order_id=mem-1 message_id=mem-1.placed amount=1250");
    let declined = events::publish(&broker, "mem-declined", 1, -500).await.unwrap().remove(0);
    check(&broker, &published, &declined).await;
    eventually("the book holds the 6 orders", Duration::from_secs(5), || book.len() == 6).await;

    serving.abort();
    broker.close().await;
}

/// `events-server` and `events-publish` as processes on Kafka, checked through a client here.
#[tokio::test]
async fn events_on_kafka_across_processes() {
    let Some(url) = env_or_skip("SWITCHBOARD_KAFKA_URL") else { return };
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_events-server"))
        .args(["--broker", &url, "--max-attempts", &MAX_ATTEMPTS.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("events-server starts");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    wait_for_line(&mut out, "queue: serving", Duration::from_secs(60)).await;
    // Keep reading its output (a line per event), so that it never blocks on a full pipe.
    tokio::spawn(async move {
        let mut lines = out.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("events-server: {line}");
        }
    });

    let prefix = events::run_prefix();
    let publish = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_events-publish"))
            .args(args)
            .output()
            .await
            .expect("events-publish runs");
        assert!(out.status.success(), "events-publish: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = publish(vec!["--broker".into(), url.clone(), "--count".into(), "4".into(), "--prefix".into(), prefix.clone()]).await;
    let published: Vec<Published> = (1..=4)
        .map(|i| Published { order_id: format!("{prefix}-{i}"), message_id: format!("{prefix}-{i}.placed"), amount: 1250 + i - 1 })
        .collect();
    let expected: String = published.iter().map(|p| format!("{p}\n")).collect();
    assert_eq!(printed, expected);
    let declined_prefix = format!("{prefix}-declined");
    publish(vec!["--broker".into(), url.clone(), "--count=1".into(), "--amount=-500".into(), "--prefix".into(), declined_prefix.clone()]).await;
    let declined = Published { order_id: format!("{declined_prefix}-1"), message_id: format!("{declined_prefix}-1.placed"), amount: -500 };

    let broker = Broker::connect(&url).await.unwrap();
    check(&broker, &published, &declined).await;
    broker.close().await;

    // SIGTERM: it finishes, leaves its groups and says so.
    let pid = server.id().expect("running");
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait()).await.expect("stops within 15 s").unwrap();
    assert!(status.success(), "events-server exited with {status}");
}
