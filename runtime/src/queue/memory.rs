//! The embedded broker (`memory://`): queues inside this process with the semantics of the real
//! brokers: competing consumers, prefetch, manual acks, redelivery of unsettled messages,
//! retry with delay, dead-lettering. Zero setup; the demo and broker-less test runs use it.
//! Cancel frames go to every server of the service (one channel each, like a fanout).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::backend::{deliveries, Acker, Backend, Cancels, ConsumerSpec, Deliveries, Delivery, Replies};
use super::wire::{self, Envelope};

/// Brokers by name (`memory://<name>`), for the life of the process.
fn registry() -> &'static Mutex<HashMap<String, Arc<MemBroker>>> {
    static BROKERS: OnceLock<Mutex<HashMap<String, Arc<MemBroker>>>> = OnceLock::new();
    BROKERS.get_or_init(Default::default)
}

#[derive(Default)]
struct MemBroker {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    reply_addresses: Mutex<HashMap<String, Arc<Replies>>>,
    /// Servers listening for cancel frames, by service.
    cancels: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Envelope>>>>,
}

impl MemBroker {
    fn queue(&self, name: &str) -> Arc<Queue> {
        self.queues.lock().unwrap().entry(name.to_owned()).or_default().clone()
    }
    fn existing(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.lock().unwrap().get(name).cloned()
    }
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    messages: VecDeque<Message>,
    consumers: usize,
}

struct Message {
    env: Envelope,
    redelivered: bool,
}

impl Queue {
    fn push(&self, message: Message, front: bool) {
        let mut state = self.state.lock().unwrap();
        if front {
            state.messages.push_front(message);
        } else {
            state.messages.push_back(message);
        }
        drop(state);
        self.ready.notify_one();
    }

    async fn pop(&self) -> Message {
        loop {
            let notified = self.ready.notified();
            let (message, more) = {
                let mut state = self.state.lock().unwrap();
                let m = state.messages.pop_front();
                (m, !state.messages.is_empty())
            };
            if let Some(m) = message {
                // Other consumers may be waiting for the rest.
                if more {
                    self.ready.notify_one();
                }
                return m;
            }
            notified.await;
        }
    }
}

/// One connection to an embedded broker.
pub(crate) struct MemoryBackend {
    broker: Arc<MemBroker>,
    reply_address: String,
    /// Request queues by service name, so a call does not build the queue name.
    request_queues: Mutex<HashMap<String, Arc<Queue>>>,
}

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn connect(url: &str, replies: Arc<Replies>) -> MemoryBackend {
    let name = url.split_once("://").map(|(_, n)| n.trim_end_matches('/')).unwrap_or("");
    let broker = registry().lock().unwrap().entry(name.to_owned()).or_default().clone();
    let reply_address = format!("memory.reply.{}", CONNECTIONS.fetch_add(1, Ordering::Relaxed));
    broker.reply_addresses.lock().unwrap().insert(reply_address.clone(), replies);
    MemoryBackend { broker, reply_address, request_queues: Mutex::default() }
}

impl Backend for MemoryBackend {
    fn request<'a>(&'a self, service: &'a str, _method: &'a str, mut env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        let cached = self.request_queues.lock().unwrap().get(service).cloned();
        let queue = cached.or_else(|| {
            let q = self.broker.existing(&wire::request_queue(service))?;
            self.request_queues.lock().unwrap().insert(service.to_owned(), q.clone());
            Some(q)
        });
        let result = match queue {
            Some(q) if q.state.lock().unwrap().consumers > 0 => {
                env.reply_to = Some(self.reply_address.clone());
                q.push(Message { env, redelivered: false }, false);
                Ok(())
            }
            _ => Err(crate::client::not_delivered(Status::unavailable(format!("no server consumes `{service}` on the embedded broker")))),
        };
        Box::pin(std::future::ready(result))
    }

    fn publish<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        self.broker.queue(&wire::event_address(service, method)).push(Message { env, redelivered: false }, false);
        Box::pin(std::future::ready(Ok(())))
    }

    fn reply<'a>(&'a self, reply_to: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        let replies = self.broker.reply_addresses.lock().unwrap().get(reply_to).cloned();
        // A caller that is gone is not an error of the server's (as with a vanished reply queue).
        if let Some(replies) = replies {
            replies.deliver(env);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn serve_requests(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        let (tx, rx) = mpsc::channel(usize::from(spec.prefetch.max(1)));
        let queue = self.broker.queue(&wire::request_queue(spec.service));
        consume(queue, None, spec.prefetch, tx);
        Box::pin(std::future::ready(Ok(deliveries(rx))))
    }

    fn serve_events(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        let (tx, rx) = mpsc::channel(usize::from(spec.prefetch.max(1)));
        for method in &spec.methods {
            let queue = self.broker.queue(&wire::event_address(spec.service, method));
            let dlq = self.broker.queue(&wire::dead_letter_address(spec.service, method));
            consume(queue, Some(dlq), spec.prefetch, tx.clone());
        }
        Box::pin(std::future::ready(Ok(deliveries(rx))))
    }

    fn cancel<'a>(&'a self, service: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        let mut cancels = self.broker.cancels.lock().unwrap();
        if let Some(servers) = cancels.get_mut(service) {
            // Servers that stopped are forgotten here.
            servers.retain(|server| server.send(env.clone()).is_ok());
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn serve_cancels(&self, service: &'static str) -> BoxFuture<'_, Result<Cancels, Status>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.broker.cancels.lock().unwrap().entry(service.to_owned()).or_default().push(tx);
        let frames = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|env| (env, rx)) });
        Box::pin(std::future::ready(Ok(Box::pin(frames) as Cancels)))
    }

    fn take_dead_letters<'a>(&'a self, service: &'a str, method: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Envelope>, Status>> {
        let mut out = Vec::new();
        if let Some(q) = self.broker.existing(&wire::dead_letter_address(service, method)) {
            let mut state = q.state.lock().unwrap();
            while out.len() < max {
                match state.messages.pop_front() {
                    Some(m) => out.push(m.env),
                    None => break,
                }
            }
        }
        Box::pin(std::future::ready(Ok(out)))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.broker.reply_addresses.lock().unwrap().remove(&self.reply_address);
        Box::pin(std::future::ready(()))
    }
}

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        self.broker.reply_addresses.lock().unwrap().remove(&self.reply_address);
    }
}

/// A consumer: hands out messages while fewer than `prefetch` are unsettled, until `tx` closes.
fn consume(queue: Arc<Queue>, dlq: Option<Arc<Queue>>, prefetch: u16, tx: mpsc::Sender<Delivery>) {
    queue.state.lock().unwrap().consumers += 1;
    let permits = Arc::new(Semaphore::new(usize::from(prefetch.max(1))));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("never closed"),
                _ = tx.closed() => break,
            };
            let message = tokio::select! {
                m = queue.pop() => m,
                _ = tx.closed() => break,
            };
            let attempt = message.env.attempt();
            let redelivered = message.redelivered;
            let env = message.env.clone();
            let acker = MemAcker { queue: queue.clone(), dlq: dlq.clone(), message: Some(message), _permit: permit };
            if let Err(mpsc::error::SendError(d)) = tx.send(Delivery { env, attempt, redelivered, acker: Box::new(acker) }).await {
                drop(d); // requeues
                break;
            }
        }
        queue.state.lock().unwrap().consumers -= 1;
    });
}

struct MemAcker {
    queue: Arc<Queue>,
    dlq: Option<Arc<Queue>>,
    message: Option<Message>,
    _permit: OwnedSemaphorePermit,
}

impl Acker for MemAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        self.message = None;
        Box::pin(std::future::ready(Ok(())))
    }

    fn retry(mut self: Box<Self>, delay: Duration, next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        if let Some(mut message) = self.message.take() {
            message.env.set(wire::ATTEMPT, wire::number(next_attempt.into()));
            message.redelivered = true;
            let queue = self.queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.push(message, false);
            });
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn dead_letter(mut self: Box<Self>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        if let (Some(mut message), Some(dlq)) = (self.message.take(), self.dlq.clone()) {
            for (k, v) in extra {
                message.env.set(&k, v);
            }
            dlq.push(message, false);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Drop for MemAcker {
    fn drop(&mut self) {
        if let Some(mut message) = self.message.take() {
            message.redelivered = true;
            self.queue.push(message, true);
        }
    }
}
