//! A service declared only by hand with `#[switchboard::service]`, served by a real tonic server on
//! loopback and called through the generated client: every call shape, metadata, status codes,
//! deadlines, cancellation, message-size limits, compression and unknown methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard::grpc::transport::{Channel, Server};
use switchboard::metadata::{MetadataValue, BinaryMetadataValue};
use switchboard::{Code, CompressionEncoding, Request, RequestExt, Response, Status, Streaming};
use switchboard_test_support::ready::eventually;
use tokio::net::TcpListener;
use switchboard::grpc::transport::server::TcpIncoming;

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Note {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint32, tag = "2")]
    pub pad: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub blob: Vec<u8>,
}

fn note(text: &str) -> Note {
    Note { text: text.into(), pad: 0, blob: Vec::new() }
}

/// A notebook. Written by hand: no .proto anywhere.
#[switchboard::service(package = "test.notes.v1", name = "Notebook")]
pub trait Notebook {
    /// Echoes the note; `fail:<code>:<msg>` fails, `pad` asks for that many bytes back.
    async fn echo(&self, req: Request<Note>) -> Result<Response<Note>, Status>;
    /// Streams `pad` notes back.
    #[rpc(name = "Expand")]
    async fn expand(&self, req: Request<Note>) -> Result<Response<Streaming<Note>>, Status>;
    /// Joins the texts of every note sent.
    async fn join(&self, req: Request<Streaming<Note>>) -> Result<Response<Note>, Status>;
    /// Echoes each note as it arrives.
    #[rpc(idempotent)]
    async fn chat(&self, req: Request<Streaming<Note>>) -> Result<Response<Streaming<Note>>, Status>;
    /// Sleeps until cancelled, reporting what it saw of the deadline.
    async fn sleep(&self, req: Request<Note>) -> Result<Response<Note>, Status>;
    /// Streams a note every 50 ms, forever.
    async fn ticks(&self, req: Request<Note>) -> Result<Response<Streaming<Note>>, Status>;
}

#[derive(Default)]
struct Impl {
    saw_deadline: std::sync::Mutex<Option<Duration>>,
    cancelled: Arc<AtomicBool>,
    join_outcome: std::sync::Mutex<Option<Result<usize, Code>>>,
    /// Messages `join` has read so far.
    join_received: std::sync::atomic::AtomicUsize,
    seen_calls: std::sync::Mutex<Vec<switchboard::Cancellation>>,
}

impl Notebook for Impl {
    async fn echo(&self, req: Request<Note>) -> Result<Response<Note>, Status> {
        self.seen_calls.lock().unwrap().push(req.cancellation());
        let echo_header = req.metadata().get("x-echo").cloned();
        let echo_bin = req.metadata().get_bin("x-echo-bin").cloned();
        let mut n = req.into_inner();
        if let Some(rest) = n.text.strip_prefix("fail:") {
            let (code, msg) = rest.split_once(':').unwrap_or((rest, ""));
            return Err(Status::new(Code::from_i32(code.parse().unwrap_or(2)), msg));
        }
        n.blob = vec![7; n.pad as usize];
        let mut resp = Response::new(n);
        if let Some(v) = echo_header {
            resp.metadata_mut().insert("x-echo", v);
        }
        if let Some(v) = echo_bin {
            let mut trailers = switchboard::metadata::MetadataMap::new();
            trailers.insert_bin("x-echo-trailer-bin", v.clone());
            resp.metadata_mut().insert_bin("x-echo-bin", v);
            resp.extensions_mut().insert(switchboard::Trailers(trailers));
        }
        Ok(resp)
    }

    async fn expand(&self, req: Request<Note>) -> Result<Response<Streaming<Note>>, Status> {
        self.seen_calls.lock().unwrap().push(req.cancellation());
        let n = req.into_inner();
        let items: Vec<Note> = (0..n.pad).map(|i| note(&format!("{}-{i}", n.text))).collect();
        Ok(Response::new(Streaming::iter(items)))
    }

    async fn join(&self, req: Request<Streaming<Note>>) -> Result<Response<Note>, Status> {
        let mut stream = req.into_inner();
        let mut texts = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(n)) => {
                    texts.push(n.text);
                    self.join_received.fetch_add(1, Ordering::SeqCst);
                }
                Ok(None) => break,
                Err(status) => {
                    *self.join_outcome.lock().unwrap() = Some(Err(status.code()));
                    return Err(status);
                }
            }
        }
        *self.join_outcome.lock().unwrap() = Some(Ok(texts.len()));
        Ok(Response::new(note(&texts.join(","))))
    }

    async fn chat(&self, req: Request<Streaming<Note>>) -> Result<Response<Streaming<Note>>, Status> {
        let cancel = req.cancellation();
        let flag = self.cancelled.clone();
        let mut input = req.into_inner();
        let (tx, out) = Streaming::channel(4);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => { flag.store(true, Ordering::SeqCst); return; }
                    msg = input.message() => match msg {
                        Ok(Some(n)) => { if tx.send(Ok(n)).await.is_err() { return; } }
                        Ok(None) => return,
                        // The caller reset the call: the input fails, then the token fires.
                        _ => { cancel.cancelled().await; flag.store(true, Ordering::SeqCst); return; }
                    }
                }
            }
        });
        Ok(Response::new(out))
    }

    async fn sleep(&self, req: Request<Note>) -> Result<Response<Note>, Status> {
        *self.saw_deadline.lock().unwrap() = req.deadline().map(|d| d.remaining());
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Response::new(note("woke")))
    }

    async fn ticks(&self, _req: Request<Note>) -> Result<Response<Streaming<Note>>, Status> {
        let (tx, out) = Streaming::channel(1);
        tokio::spawn(async move {
            for i in 0.. {
                if tx.send(Ok(note(&format!("tick {i}")))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(Response::new(out))
    }
}

async fn serve(imp: Arc<Impl>) -> Channel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = NotebookServer::from_arc(imp)
        .max_decoding_message_size(64 * 1024)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    tokio::spawn(Server::builder().add_service(svc).serve_with_incoming(TcpIncoming::from(listener)));
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

#[tokio::test]
async fn every_call_shape_round_trips() {
    let ch = serve(Arc::default()).await;
    let mut client = NotebookClient::new(ch);

    let r = client.echo(note("hi")).await.unwrap();
    assert_eq!(r.into_inner().text, "hi");

    let mut s = client.expand(Note { text: "x".into(), pad: 3, blob: vec![] }).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Some(n) = s.message().await.unwrap() {
        got.push(n.text);
    }
    assert_eq!(got, ["x-0", "x-1", "x-2"]);

    let joined = client.join(tokio_stream_iter(vec![note("a"), note("b"), note("c")])).await.unwrap();
    assert_eq!(joined.into_inner().text, "a,b,c");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = client.chat(ReceiverStream(rx)).await.unwrap().into_inner();
    for word in ["ping", "pong"] {
        tx.send(note(word)).await.unwrap();
        assert_eq!(replies.message().await.unwrap().unwrap().text, word);
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
}

#[tokio::test]
async fn metadata_status_and_limits() {
    let ch = serve(Arc::default()).await;
    let mut client = NotebookClient::new(ch).send_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Gzip);

    let mut req = Request::new(note("meta"));
    req.metadata_mut().insert("x-echo", MetadataValue::from_static("ascii value"));
    req.metadata_mut().insert_bin("x-echo-bin", BinaryMetadataValue::from_bytes(&[0, 1, 2, 255]));
    let resp = client.echo(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-echo").unwrap(), "ascii value");
    assert_eq!(resp.metadata().get_bin("x-echo-bin").unwrap().to_bytes().unwrap().as_ref(), &[0, 1, 2, 255]);
    // Trailers set by the handler arrive as trailing metadata (merged into the response's map).
    assert_eq!(resp.metadata().get_bin("x-echo-trailer-bin").unwrap().to_bytes().unwrap().as_ref(), &[0, 1, 2, 255]);

    let msg = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
    let err = client.echo(note(&format!("fail:9:{msg}"))).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), msg);

    // 100 KiB request > the server's 64 KiB limit.
    let big = Note { text: "big".into(), pad: 0, blob: vec![1; 100 * 1024] };
    let err = client.echo(big).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // A big response compresses (all 7s) and comes back intact.
    let r = client.echo(Note { text: "pad".into(), pad: 1 << 20, blob: vec![] }).await.unwrap();
    assert_eq!(r.into_inner().blob.len(), 1 << 20);

    // A client that accepts at most 1 KiB rejects a bigger response.
    let mut small = NotebookClient::new(serve(Arc::default()).await).max_decoding_message_size(1024);
    let err = small.echo(Note { text: "pad".into(), pad: 4096, blob: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

#[tokio::test]
async fn deadlines_reach_the_handler_and_end_the_call() {
    let imp = Arc::new(Impl::default());
    let mut client = NotebookClient::new(serve(imp.clone()).await);
    let mut req = Request::new(note("zz"));
    req.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = client.sleep(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let seen = imp.saw_deadline.lock().unwrap().expect("handler saw a deadline");
    assert!(seen <= Duration::from_millis(300) && seen > Duration::from_millis(100), "{seen:?}");
}

#[tokio::test]
async fn deadlines_end_response_streams_too() {
    let mut client = NotebookClient::new(serve(Arc::default()).await);
    let mut req = Request::new(note("t"));
    req.set_timeout(Duration::from_millis(300));
    let mut ticks = client.ticks(req).await.unwrap().into_inner();
    let mut received = 0;
    let err = loop {
        match ticks.message().await {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("stream ended without a status"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!((2..=10).contains(&received), "{received} ticks in 300 ms");
}

#[tokio::test]
async fn an_abandoned_upload_is_cancelled_not_complete() {
    let imp = Arc::new(Impl::default());
    let mut client = NotebookClient::new(serve(imp.clone()).await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(note("first")).await.unwrap();
    let call = tokio::spawn(async move { client.join(ReceiverStream(rx)).await });
    // The upload is under way once the handler has read the first message.
    eventually("the handler to read the first message", Duration::from_secs(5), || imp.join_received.load(Ordering::SeqCst) == 1).await;
    call.abort(); // the client gives up mid-upload: the stream is reset
    eventually("the handler to finish", Duration::from_secs(5), || imp.join_outcome.lock().unwrap().is_some()).await;
    let outcome = imp.join_outcome.lock().unwrap().unwrap();
    assert_eq!(outcome, Err(Code::Cancelled), "the handler saw the upload as complete");
    drop(tx);
}

#[tokio::test]
async fn completed_calls_are_not_cancelled() {
    let imp = Arc::new(Impl::default());
    let mut client = NotebookClient::new(serve(imp.clone()).await);
    client.echo(note("done")).await.unwrap();
    // An error answer is a completed call too (sent trailers-only: its body is never polled).
    client.echo(note("fail:5:nope")).await.unwrap_err();
    let mut s = client.expand(Note { text: "x".into(), pad: 2, blob: vec![] }).await.unwrap().into_inner();
    while s.message().await.unwrap().is_some() {}
    // Kept sleep: an observation window, not readiness. A wrongly fired cancellation would show
    // in it (the server drops each finished call's token right after answering).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = imp.seen_calls.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|c| !c.is_cancelled()), "a call that completed normally was reported cancelled");
}

#[tokio::test]
async fn cancellation_is_observable_by_the_handler() {
    let imp = Arc::new(Impl::default());
    let mut client = NotebookClient::new(serve(imp.clone()).await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = client.chat(ReceiverStream(rx)).await.unwrap().into_inner();
    tx.send(note("one")).await.unwrap();
    assert_eq!(replies.message().await.unwrap().unwrap().text, "one");
    // The client walks away mid-stream: its half ends and the response is dropped (RST_STREAM).
    drop(tx);
    drop(replies);
    eventually("the handler to see the cancellation", Duration::from_secs(5), || imp.cancelled.load(Ordering::SeqCst)).await;
}

#[tokio::test]
async fn unknown_methods_and_services_are_unimplemented() {
    let ch = serve(Arc::default()).await;
    // Same message types, wrong method / wrong service: the generic client with a descriptor of
    // methods the server does not have.
    use switchboard::{CallShape, MethodDescriptor, ServiceDescriptor};
    static WRONG: ServiceDescriptor = ServiceDescriptor::new(
        "test.notes.v1",
        "Notebook",
        "test.notes.v1.Notebook",
        &[
            MethodDescriptor::new("Nope", "nope", "/test.notes.v1.Notebook/Nope", CallShape::Unary),
            MethodDescriptor::new("Echo", "echo", "/test.notes.v1.Nobody/Echo", CallShape::Unary),
        ],
    );
    let mut raw = switchboard::grpc::GrpcClient::new(ch);
    let err = raw.unary::<Note, Note>(&WRONG, 0, Request::new(note("?"))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let err = raw.unary::<Note, Note>(&WRONG, 1, Request::new(note("?"))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[test]
fn descriptor_describes_the_service() {
    let d = &NOTEBOOK_DESCRIPTOR;
    assert_eq!(d.full_name, "test.notes.v1.Notebook");
    let names: Vec<_> = d.methods.iter().map(|m| (m.name, m.shape)).collect();
    use switchboard::CallShape::*;
    assert_eq!(names, [("Echo", Unary), ("Expand", ServerStreaming), ("Join", ClientStreaming), ("Chat", BidiStreaming), ("Sleep", Unary), ("Ticks", ServerStreaming)]);
    assert_eq!(d.methods[3].idempotency, switchboard::Idempotency::Idempotent);
    assert_eq!(d.method_by_path("/test.notes.v1.Notebook/Join").unwrap().rust_name, "join");
}

fn tokio_stream_iter<T: Send + 'static>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Send + 'static {
    futures_util::stream::iter(items)
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);
impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn clients_take_tower_layers() {
    use tower::ServiceBuilder;
    let imp = Arc::new(Impl::default());
    let channel = serve(imp).await;
    // A layer that stamps every request, and a timeout layer: the client is generic over both.
    let layered = ServiceBuilder::new()
        .map_request(|mut req: http::Request<_>| {
            req.headers_mut().insert("x-echo", http::HeaderValue::from_static("from-layer"));
            req
        })
        .timeout(Duration::from_millis(200))
        .service(channel);
    let mut client = NotebookClient::new(layered);
    let resp = client.echo(note("layered")).await.unwrap();
    assert_eq!(resp.metadata().get("x-echo").unwrap(), "from-layer");
    let err = client.sleep(note("zz")).await.unwrap_err();
    assert!(err.message().contains("timed out") || err.code() == Code::DeadlineExceeded, "{err:?}");
}
