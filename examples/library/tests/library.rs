//! The library server in-process on 127.0.0.1:0, called three ways: plain HTTP/1.1 + JSON (the
//! way curl does), the generated REST client, and the generated gRPC client — all on one port,
//! all reaching the same in-memory handler.

use std::sync::Arc;
use std::time::Duration;

use library::v1::shelf_event::Kind;
use library::v1::*;
use library::InMemoryLibrary;
use serde_json::{json, Value};
use switchboard::wkt::FieldMask;
use switchboard::Code;
use switchboard_test_support::http::{Http, StreamingAnswer};
use switchboard_test_support::ready::eventually;

async fn serve() -> (String, Arc<InMemoryLibrary>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let library = Arc::new(InMemoryLibrary::seeded());
    tokio::spawn(library::serve(listener, library.clone()));
    (format!("http://{addr}"), library)
}

/// One REST call; returns the status and the JSON body.
async fn call(base: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let answer = Http::new(base).request(method, path).header("content-type", "application/json").body(body.to_owned()).send().await;
    assert_eq!(answer.header("content-type"), Some("application/json"), "{}", answer.text());
    (answer.status, answer.json())
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    call(base, "GET", path, "").await
}

fn names(page: &Value, field: &str) -> Vec<String> {
    page[field]
        .as_array()
        .map(|a| a.iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Waits until the library has `n` open watch streams.
async fn until_watchers(library: &InMemoryLibrary, n: usize) {
    eventually(&format!("{n} watchers"), Duration::from_secs(5), || library.watchers() == n).await;
}

#[tokio::test]
async fn list_paginates_with_opaque_tokens() {
    let (base, _) = serve().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (status, page) = get(&base, &format!("/v1/shelves/-/books?page_size=3&page_token={token}")).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(names(&page, "books"));
        pages += 1;
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3, "7 books, 3 per page");
    assert_eq!(seen.len(), 7);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in name order, no repeats: {seen:?}");
    assert_eq!(seen[0], "shelves/fiction/books/dune");

    // One shelf, default page size: everything on one page and no token.
    let (_, page) = get(&base, "/v1/shelves/science/books").await;
    assert_eq!(
        names(&page, "books"),
        ["shelves/science/books/a-brief-history-of-time", "shelves/science/books/the-selfish-gene"]
    );
    assert!(page.get("nextPageToken").is_none(), "empty strings are left out of proto3 JSON: {page}");

    // A token only works for the query it came from.
    let (_, first) = get(&base, "/v1/shelves/fiction/books?page_size=1").await;
    let token = first["nextPageToken"].as_str().unwrap();
    let (status, err) = get(&base, &format!("/v1/shelves/science/books?page_size=1&page_token={token}")).await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(3)), "{err}");
    assert!(err["message"].as_str().unwrap().contains("page_token"), "{err}");
    let (status, err) = get(&base, "/v1/shelves/fiction/books?page_token=garbage!").await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = get(&base, "/v1/shelves?page_size=-1").await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("page_size"), "{err}");

    let (_, shelves) = get(&base, "/v1/shelves?pageSize=2").await;
    assert_eq!(names(&shelves, "shelves"), ["shelves/fiction", "shelves/poetry"]);
    let (_, rest) =
        get(&base, &format!("/v1/shelves?pageSize=2&pageToken={}", shelves["nextPageToken"].as_str().unwrap())).await;
    assert_eq!(names(&rest, "shelves"), ["shelves/science"]);
}

#[tokio::test]
async fn filters_by_author_and_genre() {
    let (base, _) = serve().await;
    let (status, page) = get(&base, "/v1/shelves/-/books?filter=author%20%3D%20%22Ursula%20K.%20Le%20Guin%22").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        names(&page, "books"),
        ["shelves/fiction/books/the-dispossessed", "shelves/fiction/books/the-left-hand-of-darkness"]
    );
    let (_, page) = get(&base, "/v1/shelves/-/books?filter=genre=NON_FICTION").await;
    assert_eq!(names(&page, "books").len(), 2);
    assert!(page["books"].as_array().unwrap().iter().all(|b| b["genre"] == "NON_FICTION"), "enums by name: {page}");
    let (_, page) = get(&base, "/v1/shelves/fiction/books?filter=genre=NON_FICTION").await;
    assert_eq!(page, json!({}), "no match is an empty response");

    // Filter and pagination together: a token is tied to its filter.
    let filter = "filter=author%3D%22Ursula%20K.%20Le%20Guin%22%20AND%20genre%3DFICTION";
    let (_, first) = get(&base, &format!("/v1/shelves/-/books?page_size=1&{filter}")).await;
    assert_eq!(names(&first, "books"), ["shelves/fiction/books/the-dispossessed"]);
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = get(&base, &format!("/v1/shelves/-/books?page_size=1&{filter}&page_token={token}")).await;
    assert_eq!(names(&second, "books"), ["shelves/fiction/books/the-left-hand-of-darkness"]);
    assert!(second.get("nextPageToken").is_none(), "{second}");
    let (status, _) = get(&base, &format!("/v1/shelves/-/books?page_size=1&page_token={token}")).await;
    assert_eq!(status, 400, "same token, filter dropped");

    let (status, err) = get(&base, "/v1/shelves/-/books?filter=colour=red").await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("`colour`"), "{err}");
    let (status, err) = get(&base, "/v1/shelves/-/books?filter=genre=JAZZ").await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("JAZZ"), "{err}");
}

#[tokio::test]
async fn create_validates_and_names_the_field() {
    let (base, _) = serve().await;
    let body =
        r#"{"title": "The Lathe of Heaven", "author": "Ursula K. Le Guin", "genre": "FICTION", "pageCount": 184}"#;
    let (status, book) = call(&base, "POST", "/v1/shelves/fiction/books", body).await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(book["name"], "shelves/fiction/books/the-lathe-of-heaven", "id derived from the title");
    assert_eq!(book["pageCount"], 184);
    assert!(
        book["createTime"].as_str().unwrap().ends_with('Z'), "timestamps are Z-normalized: {book}"
    );
    let (status, again) = get(&base, "/v1/shelves/fiction/books/the-lathe-of-heaven").await;
    assert_eq!((status, &again), (200, &book));
    // The same title again gets a suffix; an explicit id that is taken is a conflict.
    let (_, second) = call(&base, "POST", "/v1/shelves/fiction/books", body).await;
    assert_eq!(second["name"], "shelves/fiction/books/the-lathe-of-heaven-2");
    let (status, err) = call(&base, "POST", "/v1/shelves/fiction/books?book_id=dune", body).await;
    assert_eq!((status, err["code"].as_i64()), (409, Some(6)), "{err}");
    // snake_case proto names are accepted in the body too.
    let (status, b) = call(
        &base,
        "POST",
        "/v1/shelves/poetry/books?bookId=ariel",
        r#"{"title": "Ariel", "author": "Sylvia Plath", "page_count": 96}"#,
    )
    .await;
    assert_eq!((status, b["name"].as_str()), (200, Some("shelves/poetry/books/ariel")));

    let (status, err) = call(&base, "POST", "/v1/shelves/fiction/books", r#"{"author": "Nobody"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(err, json!({"code": 3, "message": "book.title is required", "details": []}));
    let (status, err) =
        call(&base, "POST", "/v1/shelves/fiction/books", r#"{"title": "T", "author": "A", "pageCount": -5}"#).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().starts_with("book.page_count"), "{err}");
    let (status, err) =
        call(&base, "POST", "/v1/shelves/fiction/books?book_id=Not_Valid", r#"{"title": "T", "author": "A"}"#).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().starts_with("book_id"), "{err}");
    // A type error in the JSON body is caught by the transport, which names the field as well.
    let (status, err) =
        call(&base, "POST", "/v1/shelves/fiction/books", r#"{"title": "T", "author": "A", "pageCount": "many"}"#).await;
    assert_eq!(status, 400);
    assert!(
        err["message"].as_str().unwrap().contains("pageCount")
            || err["message"].as_str().unwrap().contains("page_count"),
        "{err}"
    );
    let (status, err) = call(&base, "POST", "/v1/shelves/attic/books", r#"{"title": "T", "author": "A"}"#).await;
    assert_eq!((status, err["message"].as_str()), (404, Some("shelves/attic not found")));

    let (status, shelf) = call(&base, "POST", "/v1/shelves?shelf_id=drama", r#"{"theme": "Plays"}"#).await;
    assert_eq!((status, shelf["name"].as_str(), shelf["theme"].as_str()), (200, Some("shelves/drama"), Some("Plays")));
    let (status, err) = call(&base, "POST", "/v1/shelves", r#"{"theme": "Plays"}"#).await;
    assert_eq!((status, err["message"].as_str()), (400, Some("shelf_id is required")));
}

#[tokio::test]
async fn not_found_is_a_404_json_status() {
    let (base, _) = serve().await;
    let (status, err) = get(&base, "/v1/shelves/fiction/books/moby-dick").await;
    assert_eq!(status, 404);
    assert_eq!(err, json!({"code": 5, "message": "shelves/fiction/books/moby-dick not found", "details": []}));
    let (status, err) = get(&base, "/v1/shelves/attic").await;
    assert_eq!((status, err["code"].as_i64()), (404, Some(5)));
    let (status, err) = call(&base, "DELETE", "/v1/shelves/fiction/books/moby-dick", "").await;
    assert_eq!((status, err["code"].as_i64()), (404, Some(5)));
}

#[tokio::test]
async fn update_honours_the_field_mask() {
    let (base, _) = serve().await;
    let (_, before) = get(&base, "/v1/shelves/fiction/books/dune").await;
    // The body sets title and pageCount, but only pageCount is in the mask.
    let (status, after) = call(
        &base,
        "PATCH",
        "/v1/shelves/fiction/books/dune?update_mask=page_count",
        r#"{"title": "Not Dune", "pageCount": 896}"#,
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["title"], "Dune", "not in the mask: unchanged");
    assert_eq!(after["pageCount"], 896);
    assert_eq!(after["createTime"], before["createTime"]);
    assert_ne!(after["updateTime"], before["updateTime"]);
    // The JSON form of the mask (lowerCamelCase, comma-separated) works too.
    let (_, after) = call(
        &base,
        "PATCH",
        "/v1/shelves/fiction/books/dune?updateMask=title,genre",
        r#"{"title": "Dune (1965)", "genre": "NON_FICTION", "author": "X"}"#,
    )
    .await;
    assert_eq!(
        (after["title"].as_str(), after["genre"].as_str(), after["author"].as_str()),
        (Some("Dune (1965)"), Some("NON_FICTION"), Some("Frank Herbert"))
    );
    // Without a mask, the fields set in the body are updated.
    let (_, after) = call(&base, "PATCH", "/v1/shelves/fiction/books/dune", r#"{"genre": "FICTION"}"#).await;
    assert_eq!(
        (after["title"].as_str(), after["genre"].as_str(), after["pageCount"].as_i64()),
        (Some("Dune (1965)"), Some("FICTION"), Some(896))
    );
    let (_, stored) = get(&base, "/v1/shelves/fiction/books/dune").await;
    assert_eq!(stored, after);

    let (status, err) =
        call(&base, "PATCH", "/v1/shelves/fiction/books/dune?update_mask=title,isbn", r#"{"title": "X"}"#).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("`isbn`"), "{err}");
    let (status, err) = call(&base, "PATCH", "/v1/shelves/fiction/books/dune?update_mask=create_time", "{}").await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("output only"), "{err}");
    // Clearing a required field through the mask is refused.
    let (status, err) = call(&base, "PATCH", "/v1/shelves/fiction/books/dune?update_mask=title", "{}").await;
    assert_eq!((status, err["message"].as_str()), (400, Some("book.title is required")));
    let (_, stored_again) = get(&base, "/v1/shelves/fiction/books/dune").await;
    assert_eq!(stored_again, stored, "a refused update changes nothing");
    let (status, _) =
        call(&base, "PATCH", "/v1/shelves/fiction/books/moby-dick?update_mask=title", r#"{"title": "X"}"#).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn move_is_a_custom_verb() {
    let (base, _) = serve().await;
    let (status, moved) =
        call(&base, "POST", "/v1/shelves/fiction/books/kindred:move", r#"{"otherShelfName": "shelves/science"}"#).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["name"], "shelves/science/books/kindred");
    assert_eq!(moved["title"], "Kindred");
    assert_eq!(get(&base, "/v1/shelves/fiction/books/kindred").await.0, 404);
    assert_eq!(get(&base, "/v1/shelves/science/books/kindred").await.1, moved);
    let (status, err) =
        call(&base, "POST", "/v1/shelves/science/books/kindred:move", r#"{"otherShelfName": "attic"}"#).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().starts_with("other_shelf_name"), "{err}");
    let (status, _) =
        call(&base, "POST", "/v1/shelves/science/books/kindred:move", r#"{"otherShelfName": "shelves/attic"}"#).await;
    assert_eq!(status, 404);

    // Deleting a shelf that holds books needs `force`.
    let (status, err) = call(&base, "DELETE", "/v1/shelves/poetry", "").await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(9)), "FAILED_PRECONDITION: {err}");
    let (status, empty) = call(&base, "DELETE", "/v1/shelves/poetry?force=true", "").await;
    assert_eq!((status, empty), (200, json!({})));
    assert_eq!(get(&base, "/v1/shelves/poetry/books/leaves-of-grass").await.0, 404);
}

#[tokio::test]
async fn a_verb_path_allows_only_its_own_methods() {
    let (base, _) = serve().await;
    // (method, path) → (status, Allow): the verb is part of the route, so `…:move` and `…:watch`
    // never borrow the methods of the plain book and shelf paths.
    let cases = [
        ("OPTIONS", "/v1/shelves/fiction/books/kindred:move", 405, Some("POST")),
        ("GET", "/v1/shelves/fiction/books/kindred:move", 405, Some("POST")),
        ("OPTIONS", "/v1/shelves/fiction:watch", 405, Some("GET")),
        ("DELETE", "/v1/shelves/fiction:watch", 405, Some("GET")),
        ("OPTIONS", "/v1/shelves/fiction/books/kindred", 405, Some("GET, PATCH, DELETE")),
        ("OPTIONS", "/v1/shelves/fiction", 405, Some("GET, DELETE")),
        ("HEAD", "/v1/shelves/fiction", 200, None),
        ("HEAD", "/v1/shelves/fiction/books/kindred:move", 405, Some("POST")),
        ("GET", "/v1/nowhere", 404, None),
    ];
    let http = Http::new(&base);
    for (method, path, status, allow) in cases {
        let answer = http.request(method, path).send().await;
        assert_eq!(answer.status, status, "{method} {path}");
        assert_eq!(answer.header("allow"), allow, "{method} {path}");
        assert_eq!(answer.text().is_empty(), method == "HEAD", "{method} {path}: a body is sent unless HEAD");
    }
}

/// The next record of a streaming body, which must not end yet.
async fn next_line(body: &mut StreamingAnswer, sep: &[u8]) -> String {
    body.next_record(sep, Duration::from_secs(5)).await.expect("the stream is still open")
}

#[tokio::test]
async fn watch_streams_ndjson_and_sse_and_unsubscribes_when_the_client_leaves() {
    let (base, library) = serve().await;
    let http = Http::new(&base);
    let mut body = http.get("/v1/shelves/fiction:watch").send_streaming().await;
    assert_eq!(body.status, 200);
    assert_eq!(body.header("content-type"), Some("application/x-ndjson"));
    let mut sse_body = http.get("/v1/shelves/-:watch").header("accept", "text/event-stream").send_streaming().await;
    assert_eq!(sse_body.header("content-type"), Some("text/event-stream"));
    until_watchers(&library, 2).await;

    // A concurrent writer: a create on another shelf (only the `shelves/-` watcher sees it), then
    // one on the watched shelf.
    let writer = tokio::spawn({
        let base = base.clone();
        async move {
            call(&base, "POST", "/v1/shelves/science/books", r#"{"title": "Cosmos", "author": "Carl Sagan"}"#).await;
            call(&base, "POST", "/v1/shelves/fiction/books", r#"{"title": "Solaris", "author": "Stanisław Lem"}"#).await
        }
    });
    let (status, _) = writer.await.unwrap();
    assert_eq!(status, 200);

    let line: Value = serde_json::from_str(&next_line(&mut body, b"\n").await).unwrap();
    assert_eq!(line["result"]["kind"], "BOOK_ADDED");
    assert_eq!(line["result"]["book"]["name"], "shelves/fiction/books/solaris");
    assert_eq!(line["result"]["book"]["author"], "Stanisław Lem");
    assert!(line["result"]["eventTime"].is_string());

    let first = next_line(&mut sse_body, b"\n\n").await;
    let event: Value = serde_json::from_str(first.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["book"]["name"].as_str()),
        (Some("BOOK_ADDED"), Some("shelves/science/books/cosmos"))
    );
    let second = next_line(&mut sse_body, b"\n\n").await;
    assert!(second.contains("shelves/fiction/books/solaris"), "{second}");

    // A PATCH and a move show up as BOOK_UPDATED and BOOK_REMOVED on the watched shelf.
    call(&base, "PATCH", "/v1/shelves/fiction/books/solaris?update_mask=page_count", r#"{"pageCount": 204}"#).await;
    call(&base, "POST", "/v1/shelves/fiction/books/solaris:move", r#"{"otherShelfName": "shelves/science"}"#).await;
    let kinds: Vec<String> = [next_line(&mut body, b"\n").await, next_line(&mut body, b"\n").await]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["result"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["BOOK_UPDATED", "BOOK_REMOVED"]);

    // Hanging up ends the watch on the server.
    drop((body, sse_body));
    until_watchers(&library, 0).await;

    let (status, err) = get(&base, "/v1/shelves/attic:watch").await;
    assert_eq!((status, err["code"].as_i64()), (404, Some(5)));
}

#[tokio::test]
async fn grpc_client_same_handler_same_port() {
    let (base, library) = serve().await;
    let mut grpc = LibraryClient::connect(base.clone()).await.unwrap();

    let page = grpc
        .list_books(ListBooksRequest {
            parent: "shelves/-".into(),
            page_size: 4,
            filter: "genre = FICTION".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.books.len(), 4);
    assert!(page.books.iter().all(|b| b.genre == Genre::Fiction as i32));
    assert!(page.next_page_token.is_empty(), "exactly four fiction books");

    let err = grpc.get_book(GetBookRequest { name: "shelves/fiction/books/moby-dick".into() }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "shelves/fiction/books/moby-dick not found"));
    let err = grpc.get_book(GetBookRequest { name: "books/dune".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("name must look like"), "{err:?}");
    let err = grpc
        .create_book(CreateBookRequest {
            parent: "shelves/fiction".into(),
            book: Some(Book { title: "T".into(), ..Default::default() }),
            book_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "book.author is required"));
    let err = grpc
        .create_book(CreateBookRequest {
            parent: "shelves/fiction".into(),
            book: Some(Book { title: "T".into(), author: "A".into(), genre: 42, ..Default::default() }),
            book_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "book.genre: unknown value 42"));

    // Watch over gRPC; a concurrent create over REST shows up in it.
    let mut events = grpc.watch_shelf(WatchShelfRequest { name: "shelves/poetry".into() }).await.unwrap().into_inner();
    until_watchers(&library, 1).await;
    let (status, created) = call(
        &base,
        "POST",
        "/v1/shelves/poetry/books?book_id=howl",
        r#"{"title": "Howl", "author": "Allen Ginsberg", "genre": "POETRY"}"#,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let event = tokio::time::timeout(Duration::from_secs(5), events.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.kind(), Kind::BookAdded);
    let book = event.book.unwrap();
    assert_eq!((book.name.as_str(), book.genre()), ("shelves/poetry/books/howl", Genre::Poetry));
    assert_eq!(serde_json::to_value(book.create_time.unwrap()).unwrap(), created["createTime"]);

    let updated = grpc
        .update_book(UpdateBookRequest {
            book: Some(Book {
                name: "shelves/poetry/books/howl".into(),
                title: "Howl and Other Poems".into(),
                page_count: 57,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["title".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.page_count), ("Howl and Other Poems", 0));
    let event = events.message().await.unwrap().unwrap();
    assert_eq!((event.kind(), event.book.unwrap().title.as_str()), (Kind::BookUpdated, "Howl and Other Poems"));

    drop(events);
    until_watchers(&library, 0).await;
}

#[tokio::test]
async fn rest_client_speaks_the_bindings() {
    let (base, library) = serve().await;
    let mut rest = LibraryRestClient::new(&base).unwrap();

    // Pagination and filter through the query string.
    let mut token = String::new();
    let mut all = Vec::new();
    loop {
        let page = rest
            .list_books(ListBooksRequest {
                parent: "shelves/-".into(),
                page_size: 2,
                page_token: token.clone(),
                filter: r#"author = "Ursula K. Le Guin""#.into(),
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.books.into_iter().map(|b| b.title));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all, ["The Dispossessed", "The Left Hand of Darkness"]);

    // The FieldMask travels as `?updateMask=…`, the book as the body.
    let updated = rest
        .update_book(UpdateBookRequest {
            book: Some(Book {
                name: "shelves/science/books/the-selfish-gene".into(),
                title: "ignored".into(),
                page_count: 544,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["page_count".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.page_count), ("The Selfish Gene", 544));
    let err = rest
        .update_book(UpdateBookRequest {
            book: Some(Book { name: "shelves/science/books/the-selfish-gene".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["publisher".into()] }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`publisher`"), "{err:?}");

    let moved = rest
        .move_book(MoveBookRequest {
            name: "shelves/science/books/the-selfish-gene".into(),
            other_shelf_name: "shelves/fiction".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.name, "shelves/fiction/books/the-selfish-gene");
    let err =
        rest.get_book(GetBookRequest { name: "shelves/science/books/the-selfish-gene".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Watch over REST (NDJSON underneath), fed by a create over gRPC.
    let mut events = rest.watch_shelf(WatchShelfRequest { name: "shelves/science".into() }).await.unwrap().into_inner();
    until_watchers(&library, 1).await;
    let mut grpc = LibraryClient::connect(base.clone()).await.unwrap();
    grpc.create_book(CreateBookRequest {
        parent: "shelves/science".into(),
        book: Some(Book {
            title: "Cosmos".into(),
            author: "Carl Sagan".into(),
            genre: Genre::NonFiction as i32,
            ..Default::default()
        }),
        book_id: String::new(),
    })
    .await
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((event.kind(), event.book.unwrap().name.as_str()), (Kind::BookAdded, "shelves/science/books/cosmos"));
    grpc.delete_book(DeleteBookRequest { name: "shelves/science/books/cosmos".into() }).await.unwrap();
    let event = events.message().await.unwrap().unwrap();
    assert_eq!(event.kind(), Kind::BookRemoved);
    drop(events);
    until_watchers(&library, 0).await;
}
