//! Run: cargo run -p demo
//!
//! The whole spine in one program: build.rs generated `demo.library.v1` (message types and a
//! `Library` trait) from proto/; here we implement the trait once, serve that one handler over
//! gRPC and REST on one loopback port and over the embedded message broker (`memory://`), and
//! call it through the generated gRPC client, the generated REST client, plain HTTP + JSON and
//! the generated queue client (request-reply, a stream, and an event).
//!
//! `--broker <url>` puts the queue side on a real broker instead: `kafka://127.0.0.1:9092`
//! (built with `--features kafka`), `amqp://…` (`--features amqp`) or `nats://…`
//! (`--features nats`). The code is the same; only the URL changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::{Code, Request, Response, Status, Streaming};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::demo::library::v1::{
    Book, GetBookRequest, Library, LibraryClient, LibraryQueueClient, LibraryQueueServer, LibraryRestClient, LibraryServer,
    Receipt, SearchRequest,
};
use switchboard::queue::Broker;

#[derive(Default)]
struct Shelf {
    books: Mutex<BTreeMap<u64, Book>>,
}

impl Library for Shelf {
    async fn add_book(&self, req: Request<Book>) -> Result<Response<Book>, Status> {
        let mut books = self.books.lock().unwrap();
        let mut book = req.into_inner();
        book.id = books.len() as u64 + 1;
        book.added = Some(switchboard::chrono::Utc::now().into());
        books.insert(book.id, book.clone());
        Ok(Response::new(book))
    }

    async fn get_book(&self, req: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let id = req.into_inner().id;
        let books = self.books.lock().unwrap();
        books.get(&id).cloned().map(Response::new).ok_or_else(|| Status::not_found(format!("no book {id}")))
    }

    async fn search_books(&self, req: Request<SearchRequest>) -> Result<Response<Streaming<Book>>, Status> {
        let query = req.into_inner().query.to_lowercase();
        let books = self.books.lock().unwrap();
        let hits: Vec<Book> = books.values().filter(|b| b.title.to_lowercase().contains(&query)).cloned().collect();
        Ok(Response::new(Streaming::iter(hits)))
    }

    async fn borrow(&self, req: Request<Streaming<GetBookRequest>>) -> Result<Response<Receipt>, Status> {
        let mut wanted = req.into_inner();
        let mut titles = Vec::new();
        while let Some(r) = wanted.message().await? {
            let mut books = self.books.lock().unwrap();
            let book = books.get_mut(&r.id).ok_or_else(|| Status::not_found(format!("no book {}", r.id)))?;
            book.on_loan = true;
            titles.push(book.title.clone());
        }
        Ok(Response::new(Receipt { titles }))
    }

    async fn return_book(&self, req: Request<GetBookRequest>) -> Result<Response<()>, Status> {
        let id = req.into_inner().id;
        let mut books = self.books.lock().unwrap();
        let book = books.get_mut(&id).ok_or_else(|| Status::not_found(format!("no book {id}")))?;
        book.on_loan = false;
        Ok(Response::new(()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // One handler, shared by every transport.
    let shelf = Arc::new(Shelf::default());
    tokio::spawn(switchboard::Server::builder().add_service(LibraryServer::from_arc(shelf.clone())).serve(listener));
    println!("serving demo.library.v1.Library over gRPC and REST on {addr}");
    // The embedded broker: in-process queues with acks, redelivery and dead-lettering. The same
    // code serves RabbitMQ, NATS or Kafka given an amqp://, nats:// or kafka:// URL (features
    // `amqp`, `nats`, `kafka`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = match args.iter().position(|a| a == "--broker") {
        Some(i) => args.get(i + 1).ok_or("--broker needs a URL, e.g. kafka://127.0.0.1:9092")?.clone(),
        None => "memory://".to_owned(),
    };
    let broker = Broker::connect(&url).await?;
    let queue_server = LibraryQueueServer::from_arc(shelf.clone());
    let b = broker.clone();
    tokio::spawn(async move { queue_server.serve(&b).await });
    let what = if url == "memory://" { "the embedded broker" } else { "the broker" };
    println!("serving demo.library.v1.Library over {what} ({}): requests on sb.rpc.demo.library.v1.Library", broker.url());

    let mut client = LibraryClient::connect(format!("http://{addr}")).await?;
    for (title, author) in [("The Dispossessed", "Ursula K. Le Guin"), ("The Left Hand of Darkness", "Ursula K. Le Guin"), ("Dune", "Frank Herbert")] {
        let book = client.add_book(Book { title: title.into(), author: author.into(), ..Default::default() }).await?.into_inner();
        println!("AddBook      -> #{} {:?} by {}", book.id, book.title, book.author);
    }
    let book = client.get_book(GetBookRequest { id: 3 }).await?.into_inner();
    println!("GetBook(3)   -> {:?}", book.title);
    let missing = client.get_book(GetBookRequest { id: 99 }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    println!("GetBook(99)  -> {:?}: {}", missing.code(), missing.message());

    let mut hits = client.search_books(SearchRequest { query: "the".into() }).await?.into_inner();
    while let Some(book) = hits.message().await? {
        println!("SearchBooks  -> {:?}", book.title);
    }
    let receipt = client
        .borrow(switchboard::stream::iter([1, 3].map(|id| GetBookRequest { id })))
        .await?
        .into_inner();
    println!("Borrow(1, 3) -> {:?}", receipt.titles);

    // The same handler over REST: the generated REST client has the same methods...
    let mut rest = LibraryRestClient::new(&format!("http://{addr}"))?;
    let book = rest.get_book(GetBookRequest { id: 1 }).await?.into_inner();
    println!("REST GetBook(1)  -> {:?} (added {})", book.title, book.added.map(|t| switchboard::chrono::DateTime::<switchboard::chrono::Utc>::try_from(t).map(|d| d.to_rfc3339()).unwrap_or_default()).unwrap_or_default());
    let missing = rest.get_book(GetBookRequest { id: 99 }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    println!("REST GetBook(99) -> {:?}: {}", missing.code(), missing.message());
    // ...and any HTTP client can call it: without a google.api.http option the binding is
    // `POST /<package>.<Service>/<Method>` with the request as proto3 JSON.
    let body = r#"{"id": "2"}"#;
    let request = format!(
        "POST /demo.library.v1.Library/GetBook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response).await?;
    let (head, json) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    println!("HTTP POST /demo.library.v1.Library/GetBook {body} -> {} {json}", head.lines().next().unwrap_or(""));
    assert!(head.starts_with("HTTP/1.1 200") && json.contains("\"title\":\"The Left Hand of Darkness\""));
    println!("(the OpenAPI document of the service: GET http://{addr}/openapi.json)");

    // The same handler through the broker: the queue client has the same methods too.
    let queue = LibraryQueueClient::new(&broker).timeout(Duration::from_secs(5));
    // A real broker's server may still be subscribing (a Kafka group join takes seconds, more
    // while the group waits out a member that died without leaving): until it is, a call is
    // UNAVAILABLE (nobody serves the service) or waits past its deadline.
    let started = std::time::Instant::now();
    let book = loop {
        match queue.get_book(GetBookRequest { id: 3 }).await {
            Err(e) if matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded) && started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            answer => break answer?.into_inner(),
        }
    };
    println!("queue GetBook(3)   -> {:?} (on loan: {})", book.title, book.on_loan);
    let missing = queue.get_book(GetBookRequest { id: 99 }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    println!("queue GetBook(99)  -> {:?}: {}", missing.code(), missing.message());
    let mut hits = queue.search_books(SearchRequest { query: "darkness".into() }).await?.into_inner();
    while let Some(book) = hits.message().await? {
        println!("queue SearchBooks  -> {:?}", book.title);
    }
    // ReturnBook returns Empty, so it is also an event: publish returns once the broker holds
    // it; the server handles it at least once, with retries and a dead-letter queue.
    queue.publish_return_book(GetBookRequest { id: 3 }).await?;
    println!("queue publish ReturnBook(3) -> confirmed by the broker");
    let mut on_loan = true;
    for _ in 0..1500 {
        on_loan = client.get_book(GetBookRequest { id: 3 }).await?.into_inner().on_loan;
        if !on_loan {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!on_loan, "the ReturnBook event was handled");
    println!("gRPC GetBook(3)    -> on loan: {on_loan} (the event was handled)");
    println!("ok: one handler answered the generated gRPC client, the REST client, plain HTTP and the queue client");
    // Leave the broker cleanly: a Kafka consumer leaves its group now instead of being waited
    // for until its session times out.
    broker.close().await;
    Ok(())
}

