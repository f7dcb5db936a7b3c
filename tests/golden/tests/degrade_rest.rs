//! The degrade fixture (tests/fixtures/degrade): bindings the router would refuse were skipped
//! when generating (with the warnings in tests/fixtures/degrade/warnings). The generated service
//! registers with the REST router, every binding that was kept reaches its method, and a method
//! left without bindings is served at its default route.

use golden::degrade::clash::v1::*;
use switchboard::rest::{RestRouter, RouteError};
use switchboard::{Request, Response, Status};
use switchboard_test_support::http::Http;

#[derive(Clone)]
struct Books;

/// Each method answers `<method>:<name>:<book>` so a test sees which one a request reached.
fn answer(method: &str, request: Request<Book>) -> Result<Response<Book>, Status> {
    let book = request.into_inner();
    Ok(Response::new(Book { name: format!("{method}:{}:{}", book.name, book.book), book: String::new() }))
}

impl Library for Books {
    async fn get_book(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("GetBook", request)
    }
    async fn read_book(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("ReadBook", request)
    }
    async fn move_book(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("MoveBook", request)
    }
    async fn delete_book(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("DeleteBook", request)
    }
    async fn touch(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Touch", request)
    }
    async fn shelve(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Shelve", request)
    }
    async fn ping(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Ping", request)
    }
    async fn early(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Early", request)
    }
    async fn late(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Late", request)
    }
}

impl Mirror for Books {
    async fn get_book(&self, request: Request<Book>) -> Result<Response<Book>, Status> {
        answer("Mirror.GetBook", request)
    }
}

#[tokio::test]
async fn kept_bindings_and_default_routes_reach_their_methods() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = RestRouter::new().try_add(LibraryRestServer::new(Books)).unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(router.serve(listener));
    let http = Http::new(&base);
    let cases = [
        ("GET", "/v1/shelves/1/books/2", "", "GetBook:shelves/1/books/2:"),
        ("GET", "/v1/books/b", "", "GetBook:b:"),
        ("POST", "/v1/shelves/1/books/2:move", "{}", "MoveBook:shelves/1/books/2:"),
        ("DELETE", "/v1/shelves/1/books/2", "", "DeleteBook:shelves/1/books/2:"),
        // Methods whose every binding was skipped: their default route.
        ("POST", "/clash.v1.Library/ReadBook", r#"{"book":"b"}"#, "ReadBook::b"),
        ("POST", "/clash.v1.Library/Touch", r#"{"name":"t"}"#, "Touch:t:"),
        ("POST", "/clash.v1.Library/Shelve", r#"{"name":"s"}"#, "Shelve:s:"),
        ("POST", "/clash.v1.Library/Early", r#"{"name":"e"}"#, "Early:e:"),
        // Default routes another method's skipped binding wanted stay their own method's.
        ("POST", "/clash.v1.Library/Ping", r#"{"name":"p"}"#, "Ping:p:"),
        ("POST", "/clash.v1.Library/Late", r#"{"name":"l"}"#, "Late:l:"),
    ];
    for (method, path, body, want) in cases {
        let answer = http.request(method, path).header("content-type", "application/json").body(body.to_owned()).send().await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
        assert_eq!(answer.json()["name"], want, "{method} {path}");
    }
    // A skipped binding is not served (Shelve's, whose path variable is not a field).
    let answer = http.request("POST", "/v1/shelves/1/books").body("{}".to_owned()).send().await;
    assert_eq!(answer.status, 404, "Shelve's skipped binding: {}", answer.text());
}

#[test]
fn services_sharing_a_route_register_apart_not_together() {
    RestRouter::new().try_add(LibraryRestServer::new(Books)).unwrap_or_else(|e| panic!("{e}"));
    RestRouter::new().try_add(MirrorRestServer::new(Books)).unwrap_or_else(|e| panic!("{e}"));
    // Both on one router: the runtime names the clash (services are generated as written).
    let err = RestRouter::new().try_add(LibraryRestServer::new(Books)).unwrap().try_add(MirrorRestServer::new(Books)).map(drop).unwrap_err();
    assert!(matches!(err, RouteError::Clash { .. }), "{err}");
}
