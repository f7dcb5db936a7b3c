//! Broker failover: a broker URL may list several nodes, comma-separated. RabbitMQ: the first
//! node that answers is used, at the first connection and at every reconnection. NATS: a
//! two-node cluster started by the test (nats-server on 127.0.0.1), one node killed under load —
//! clients and servers move to the other, and no call fails.
#![cfg(all(feature = "amqp", feature = "nats"))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};

#[switchboard::service(package = "test.failover.v1")]
pub trait Hello {
    /// Greets. Free of side effects: retried by policy.
    #[rpc(no_side_effects)]
    async fn hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

struct Impl;

impl Hello for Impl {
    async fn hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(format!("hello, {}", req.into_inner())))
    }
}

/// Retries on UNAVAILABLE, and waits for a server (`waitForReady`) while the broker fails over.
fn policy() -> PolicyLayer {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.failover.v1.Hello"}], "timeout": "10s", "waitForReady": true,
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "0.5s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .expect("a valid policy");
    PolicyLayer::new(Policies::new().runtime(config))
}

/// RabbitMQ: the first node of the list refuses connections; the second is used.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_uses_the_first_node_that_answers() {
    let Some(url) = switchboard_test_support::broker::env_or_skip("SWITCHBOARD_AMQP_URL") else { return };
    let dead = "amqp://guest:guest@127.0.0.1:1/%2f";
    let broker = Broker::connect(&format!("{dead},{url}")).await.unwrap_or_else(|e| panic!("the second node: {e}"));
    let serving = tokio::spawn({
        let broker = broker.clone();
        async move { HelloQueueServer::new(Impl).serve(&broker).await }
    });
    let client = HelloQueueClient::new(&broker).layer(policy());
    let answer = client.hello(Request::new("amqp".into())).await.expect("a call through the second node");
    assert_eq!(answer.into_inner(), "hello, amqp");
    serving.abort();

    // No node answers: the error names every node tried (without passwords).
    let err = Broker::connect(&format!("{dead},amqp://guest:secret@127.0.0.1:2/%2f")).await.expect_err("no node answers");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1") && text.contains("127.0.0.1:2") && !text.contains("secret"), "{text}");
}

/// One nats-server of a two-node cluster on 127.0.0.1.
#[cfg(feature = "nats")]
struct Node {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "nats")]
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "nats")]
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// NATS: a two-node cluster; a server and 8 callers connect with both URLs; the node they use
/// is killed (both nodes are, in turn, so whichever they picked goes): every call succeeds.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_node_killed_under_load() {
    let binary = std::env::var("SB_NATS_SERVER").ok().or_else(|| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(str::to_owned)
    });
    let Some(binary) = binary else {
        switchboard_test_support::ci::skip_or_fail("nats-server not found (Debian: apt-get install nats-server)");
        return;
    };
    let (ports, routes) = ([free_port(), free_port()], [free_port(), free_port()]);
    let start = |i: usize| Node {
        child: std::process::Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &ports[i].to_string(), "--cluster_name", "sb-failover"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
            .args(["--routes", &format!("nats://127.0.0.1:{}", routes[1 - i])])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server"),
        port: ports[i],
    };
    let mut nodes = [Some(start(0)), Some(start(1))];
    let urls = format!("nats://127.0.0.1:{},nats://127.0.0.1:{}", ports[0], ports[1]);
    for port in ports {
        switchboard_test_support::ready::connect_until(&format!("127.0.0.1:{port}"), Duration::from_secs(10)).await;
    }
    let server_broker = switchboard_test_support::ready::retry_until("connect", Duration::from_secs(10), || Broker::connect(&urls)).await;
    tokio::spawn(async move { HelloQueueServer::new(Impl).serve(&server_broker).await });
    let broker = Broker::connect(&urls).await.expect("connect");
    let client = HelloQueueClient::new(&broker).layer(policy());
    // Ready once a call goes through (the server has subscribed, the cluster has the interest).
    switchboard_test_support::ready::retry_until("the first call", Duration::from_secs(10), || client.hello(Request::new("ready".into()))).await;

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let (client, stop, calls) = (client.clone(), stop.clone(), calls.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = client.hello(Request::new(format!("caller {i}"))).await {
                        failed.push(e);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                failed
            })
        })
        .collect();
    // Kill node 0, bring it back, then kill node 1: whichever node each connection was on goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = nodes[0].take().map(|n| n.port);
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[0] = Some(start(0));
    switchboard_test_support::ready::connect_until(&format!("127.0.0.1:{}", ports[0]), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[1] = None;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    for c in callers {
        failed.extend(c.await.unwrap());
    }
    let calls = calls.load(Ordering::Relaxed);
    eprintln!("{calls} calls while nodes {killed:?} then {} were killed: {} failed", ports[1], failed.len());
    assert!(failed.is_empty(), "{} of {calls} calls failed, e.g. {:?}", failed.len(), failed.first());
    assert!(calls > 100, "only {calls} calls");
}
