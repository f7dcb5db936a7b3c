//! `cargo run -p library --example grpc-client [-- http://127.0.0.1:8080]`: calls a running
//! library-server over gRPC with the generated `LibraryClient` (no grpcurl needed).

use std::time::Duration;

use library::v1::{Book, CreateBookRequest, Genre, GetBookRequest, LibraryClient, ListBooksRequest, WatchShelfRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let mut client = LibraryClient::connect(url).await?;

    // Every fiction book, two per page.
    let mut request = ListBooksRequest {
        parent: "shelves/-".into(),
        page_size: 2,
        filter: "genre = FICTION".into(),
        ..Default::default()
    };
    loop {
        let page = client.list_books(request.clone()).await?.into_inner();
        for book in &page.books {
            println!("ListBooks   {} ({}, {} pages)", book.name, book.author, book.page_count);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }

    // Errors are `Status`es with the same code and message the REST side puts in JSON.
    let err = client.get_book(GetBookRequest { name: "shelves/fiction/books/moby-dick".into() }).await.unwrap_err();
    println!("GetBook     {:?}: {}", err.code(), err.message());

    // Watch every shelf, then cause an event.
    let mut events = client.watch_shelf(WatchShelfRequest { name: "shelves/-".into() }).await?.into_inner();
    let book = Book {
        title: "Solaris".into(),
        author: "Stanisław Lem".into(),
        genre: Genre::Fiction as i32,
        page_count: 204,
        ..Default::default()
    };
    let created = client
        .create_book(CreateBookRequest { parent: "shelves/fiction".into(), book: Some(book), book_id: String::new() })
        .await?
        .into_inner();
    println!("CreateBook  {}", created.name);
    let event = tokio::time::timeout(Duration::from_secs(5), events.message()).await??.expect("an event");
    println!("WatchShelf  {:?} {}", event.kind(), event.book.unwrap_or_default().name);
    Ok(())
}
