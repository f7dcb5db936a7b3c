//! An AIP-style lending library (`example.library.v1.Library`) kept in memory and served over
//! gRPC and REST on one port from one handler.
//!
//! build.rs generated the message types and the `Library` trait from
//! `proto/example/library/v1/library.proto`; [`InMemoryLibrary`] implements the trait with real
//! behaviour: opaque page tokens, a small filter language, field-mask updates, validation errors
//! that name the field, a custom `:move` verb, and a watch stream fed by every change.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use base64::Engine as _;
use switchboard::wkt::Timestamp;
use switchboard::{Request, Response, Status, Streaming};
use tokio::sync::{broadcast, RwLock};

/// The generated code: `api::example::library::v1` (plus the google.api annotations it imports).
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub use api::example::library::v1;
use v1::shelf_event::Kind;
use v1::*;

const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;
/// Fields `UpdateBook` may change.
const UPDATABLE: [&str; 4] = ["title", "author", "genre", "page_count"];
/// The wildcard parent: every shelf.
const ALL_SHELVES: &str = "shelves/-";

/// The library, in memory: shelves and books by resource name, and a channel that carries every
/// change to the watchers.
pub struct InMemoryLibrary {
    state: RwLock<State>,
    events: broadcast::Sender<ShelfEvent>,
}

#[derive(Default)]
struct State {
    shelves: BTreeMap<String, Shelf>,
    /// By full name, so the books of one shelf are one range and `shelves/-` lists shelf by shelf.
    books: BTreeMap<String, Book>,
}

impl Default for InMemoryLibrary {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryLibrary {
    /// An empty library.
    pub fn new() -> Self {
        InMemoryLibrary { state: RwLock::new(State::default()), events: broadcast::channel(256).0 }
    }

    /// A library with three shelves and seven books (fixed timestamps, so outputs are stable).
    pub fn seeded() -> Self {
        let mut state = State::default();
        for (id, theme, time) in [
            ("fiction", "Science fiction and fantasy", "2024-01-15T09:00:00Z"),
            ("poetry", "Poetry", "2024-01-15T09:05:00Z"),
            ("science", "Popular science", "2024-01-15T09:10:00Z"),
        ] {
            let name = format!("shelves/{id}");
            state.shelves.insert(name.clone(), Shelf { name, theme: theme.into(), create_time: Some(ts(time)) });
        }
        for (shelf, id, title, author, genre, pages, time) in [
            (
                "fiction",
                "the-dispossessed",
                "The Dispossessed",
                "Ursula K. Le Guin",
                Genre::Fiction,
                387,
                "2024-01-16T10:00:00Z",
            ),
            (
                "fiction",
                "the-left-hand-of-darkness",
                "The Left Hand of Darkness",
                "Ursula K. Le Guin",
                Genre::Fiction,
                304,
                "2024-01-16T10:01:00Z",
            ),
            ("fiction", "dune", "Dune", "Frank Herbert", Genre::Fiction, 412, "2024-01-16T10:02:00Z"),
            ("fiction", "kindred", "Kindred", "Octavia E. Butler", Genre::Fiction, 264, "2024-01-16T10:03:00Z"),
            ("poetry", "leaves-of-grass", "Leaves of Grass", "Walt Whitman", Genre::Poetry, 95, "2024-01-16T10:04:00Z"),
            (
                "science",
                "a-brief-history-of-time",
                "A Brief History of Time",
                "Stephen Hawking",
                Genre::NonFiction,
                212,
                "2024-01-16T10:05:00Z",
            ),
            (
                "science",
                "the-selfish-gene",
                "The Selfish Gene",
                "Richard Dawkins",
                Genre::NonFiction,
                360,
                "2024-01-16T10:06:00Z",
            ),
        ] {
            let name = format!("shelves/{shelf}/books/{id}");
            let book = Book {
                name: name.clone(),
                title: title.into(),
                author: author.into(),
                genre: genre as i32,
                page_count: pages,
                create_time: Some(ts(time)),
                update_time: Some(ts(time)),
            };
            state.books.insert(name, book);
        }
        InMemoryLibrary { state: RwLock::new(state), events: broadcast::channel(256).0 }
    }

    /// How many watch streams are open (each holds one subscription to the change channel).
    pub fn watchers(&self) -> usize {
        self.events.receiver_count()
    }

    fn publish(&self, kind: Kind, book: &Book, time: Timestamp) {
        let event = ShelfEvent { kind: kind as i32, book: Some(book.clone()), event_time: Some(time) };
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// Serves `library` over gRPC and REST on `listener` until the process ends (the caller may keep
/// a clone of the `Arc` to look at the library while it is served).
pub async fn serve(listener: tokio::net::TcpListener, library: Arc<InMemoryLibrary>) -> std::io::Result<()> {
    switchboard::Server::builder().add_service(LibraryServer::from_arc(library)).serve(listener).await
}

fn ts(rfc3339: &str) -> Timestamp {
    switchboard::chrono::DateTime::parse_from_rfc3339(rfc3339).expect("a valid timestamp").to_utc().into()
}

/// The current time, to the millisecond.
fn now() -> Timestamp {
    use switchboard::chrono::SubsecRound as _;
    switchboard::chrono::Utc::now().trunc_subsecs(3).into()
}

// ---------------------------------------------------------------------------------------------
// Resource names and validation
// ---------------------------------------------------------------------------------------------

/// An id segment: 1-63 of `a-z`, `0-9` and `-`, starting with a letter or digit.
fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && !id.starts_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks `shelves/{shelf}`; `field` names the request field in the error.
fn parse_shelf_name<'a>(field: &str, name: &'a str) -> Result<&'a str, Status> {
    match name.strip_prefix("shelves/") {
        Some(id) if valid_id(id) => Ok(id),
        _ if name.is_empty() => Err(Status::invalid_argument(format!("{field} is required"))),
        _ => Err(Status::invalid_argument(format!("{field} must look like shelves/{{shelf}}, got \"{name}\""))),
    }
}

/// Checks `shelves/{shelf}/books/{book}` and returns the shelf's name.
fn parse_book_name(field: &str, name: &str) -> Result<String, Status> {
    let bad =
        || Status::invalid_argument(format!("{field} must look like shelves/{{shelf}}/books/{{book}}, got \"{name}\""));
    if name.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    let rest = name.strip_prefix("shelves/").ok_or_else(bad)?;
    let (shelf, book) = rest.split_once("/books/").ok_or_else(bad)?;
    if !valid_id(shelf) || !valid_id(book) {
        return Err(bad());
    }
    Ok(format!("shelves/{shelf}"))
}

/// A parent that may be the `shelves/-` wildcard; checks that a named shelf exists.
fn check_parent(state: &State, field: &str, parent: &str) -> Result<(), Status> {
    if parent == ALL_SHELVES {
        return Ok(());
    }
    parse_shelf_name(field, parent)?;
    if !state.shelves.contains_key(parent) {
        return Err(not_found(parent));
    }
    Ok(())
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("{name} not found"))
}

fn check_book_fields(book: &Book) -> Result<(), Status> {
    if book.title.trim().is_empty() {
        return Err(Status::invalid_argument("book.title is required"));
    }
    if book.author.trim().is_empty() {
        return Err(Status::invalid_argument("book.author is required"));
    }
    if Genre::try_from(book.genre).is_err() {
        return Err(Status::invalid_argument(format!("book.genre: unknown value {}", book.genre)));
    }
    if book.page_count < 0 {
        return Err(Status::invalid_argument(format!("book.page_count must not be negative, got {}", book.page_count)));
    }
    Ok(())
}

/// `Dune Messiah` → `dune-messiah`.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_owned();
    out.truncate(50);
    if out.is_empty() {
        out.push_str("book");
    }
    out.trim_end_matches('-').to_owned()
}

// ---------------------------------------------------------------------------------------------
// Pagination: opaque tokens that remember where the previous page ended and which query it was
// ---------------------------------------------------------------------------------------------

fn page_size(requested: i32) -> Result<usize, Status> {
    match requested {
        n if n < 0 => Err(Status::invalid_argument(format!("page_size must not be negative, got {n}"))),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

fn query_hash(query: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    query.hash(&mut h);
    h.finish()
}

/// A token resuming after `last` for the same `query` (the request fields other than the page).
fn encode_token(query: &[&str], last: &str) -> String {
    let raw = format!("{:016x}{last}", query_hash(query));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The resource name the previous page ended with; `None` for the first page.
fn decode_token(query: &[&str], token: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("page_token is not valid");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    if raw.len() < 16 || !raw.is_char_boundary(16) {
        return Err(invalid());
    }
    let (hash, last) = raw.split_at(16);
    if u64::from_str_radix(hash, 16).map_err(|_| invalid())? != query_hash(query) {
        return Err(Status::invalid_argument(
            "page_token belongs to a different query (parent and filter must not change between pages)",
        ));
    }
    Ok(Some(last.to_owned()))
}

/// One page of `map`'s values whose keys start with `prefix` and that `keep`, after `after`.
fn page<T: Clone>(
    map: &BTreeMap<String, T>,
    prefix: &str,
    after: Option<&str>,
    size: usize,
    keep: impl Fn(&T) -> bool,
) -> (Vec<T>, Option<String>) {
    let start = match after {
        Some(last) => Bound::Excluded(last.to_owned()),
        None => Bound::Included(prefix.to_owned()),
    };
    let mut items = Vec::new();
    let mut last_key = None;
    for (key, value) in map.range((start, Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            break;
        }
        if !keep(value) {
            continue;
        }
        if items.len() == size {
            // There is at least one more: the next page starts after the last one returned.
            return (items, last_key);
        }
        items.push(value.clone());
        last_key = Some(key.clone());
    }
    (items, None)
}

// ---------------------------------------------------------------------------------------------
// Filters: `author = "Ursula K. Le Guin" AND genre = FICTION`
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Filter {
    author: Option<String>,
    title: Option<String>,
    genre: Option<i32>,
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, Status> {
        let mut filter = Filter::default();
        if text.trim().is_empty() {
            return Ok(filter);
        }
        let invalid = |why: String| Status::invalid_argument(format!("filter: {why}"));
        for term in text.split(" AND ") {
            let (field, value) = term
                .split_once('=')
                .ok_or_else(|| invalid(format!("expected `field = value`, got `{}`", term.trim())))?;
            let (field, value) = (field.trim(), value.trim());
            let value = match value.strip_prefix('"') {
                Some(quoted) => quoted
                    .strip_suffix('"')
                    .ok_or_else(|| invalid(format!("unterminated string in `{}`", term.trim())))?,
                None => value,
            };
            match field {
                "author" => filter.author = Some(value.to_owned()),
                "title" => filter.title = Some(value.to_owned()),
                "genre" => {
                    let genre = Genre::from_str_name(value).filter(|g| *g != Genre::Unspecified).ok_or_else(|| {
                        invalid(format!("unknown genre `{value}` (one of FICTION, NON_FICTION, POETRY)"))
                    })?;
                    filter.genre = Some(genre as i32);
                }
                other => return Err(invalid(format!("unknown field `{other}` (filter on author, title or genre)"))),
            }
        }
        Ok(filter)
    }

    fn matches(&self, book: &Book) -> bool {
        self.author.as_ref().is_none_or(|a| *a == book.author)
            && self.title.as_ref().is_none_or(|t| *t == book.title)
            && self.genre.is_none_or(|g| g == book.genre)
    }
}

/// The shelf part of a book name, with the trailing slash: `shelves/x/books/`.
fn books_prefix(parent: &str) -> String {
    if parent == ALL_SHELVES {
        "shelves/".to_owned()
    } else {
        format!("{parent}/books/")
    }
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

impl Library for InMemoryLibrary {
    async fn list_shelves(
        &self,
        request: Request<ListShelvesRequest>,
    ) -> Result<Response<ListShelvesResponse>, Status> {
        let req = request.into_inner();
        let size = page_size(req.page_size)?;
        let query = ["shelves"];
        let after = decode_token(&query, &req.page_token)?;
        let state = self.state.read().await;
        let (shelves, last) = page(&state.shelves, "shelves/", after.as_deref(), size, |_| true);
        let next_page_token = last.map(|l| encode_token(&query, &l)).unwrap_or_default();
        Ok(Response::new(ListShelvesResponse { shelves, next_page_token }))
    }

    async fn get_shelf(&self, request: Request<GetShelfRequest>) -> Result<Response<Shelf>, Status> {
        let name = request.into_inner().name;
        parse_shelf_name("name", &name)?;
        let state = self.state.read().await;
        state.shelves.get(&name).cloned().map(Response::new).ok_or_else(|| not_found(&name))
    }

    async fn create_shelf(&self, request: Request<CreateShelfRequest>) -> Result<Response<Shelf>, Status> {
        let req = request.into_inner();
        if req.shelf_id.is_empty() {
            return Err(Status::invalid_argument("shelf_id is required"));
        }
        if !valid_id(&req.shelf_id) {
            return Err(Status::invalid_argument(format!(
                "shelf_id must be 1-63 characters of a-z, 0-9 and -, got \"{}\"",
                req.shelf_id
            )));
        }
        let mut shelf = req.shelf.unwrap_or_default();
        shelf.name = format!("shelves/{}", req.shelf_id);
        shelf.create_time = Some(now());
        let mut state = self.state.write().await;
        if state.shelves.contains_key(&shelf.name) {
            return Err(Status::already_exists(format!("{} already exists", shelf.name)));
        }
        state.shelves.insert(shelf.name.clone(), shelf.clone());
        Ok(Response::new(shelf))
    }

    async fn delete_shelf(&self, request: Request<DeleteShelfRequest>) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        parse_shelf_name("name", &req.name)?;
        let mut state = self.state.write().await;
        if !state.shelves.contains_key(&req.name) {
            return Err(not_found(&req.name));
        }
        let prefix = books_prefix(&req.name);
        let books: Vec<String> = state
            .books
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        if !books.is_empty() && !req.force {
            return Err(Status::failed_precondition(format!(
                "{} holds {} book(s); delete them first or set force",
                req.name,
                books.len()
            )));
        }
        let time = now();
        for name in books {
            if let Some(book) = state.books.remove(&name) {
                self.publish(Kind::BookRemoved, &book, time);
            }
        }
        state.shelves.remove(&req.name);
        Ok(Response::new(()))
    }

    async fn list_books(&self, request: Request<ListBooksRequest>) -> Result<Response<ListBooksResponse>, Status> {
        let req = request.into_inner();
        let size = page_size(req.page_size)?;
        let filter = Filter::parse(&req.filter)?;
        let query = [req.parent.as_str(), req.filter.as_str()];
        let after = decode_token(&query, &req.page_token)?;
        let state = self.state.read().await;
        check_parent(&state, "parent", &req.parent)?;
        let prefix = books_prefix(&req.parent);
        let (books, last) = page(&state.books, &prefix, after.as_deref(), size, |b| filter.matches(b));
        let next_page_token = last.map(|l| encode_token(&query, &l)).unwrap_or_default();
        Ok(Response::new(ListBooksResponse { books, next_page_token }))
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let name = request.into_inner().name;
        parse_book_name("name", &name)?;
        let state = self.state.read().await;
        state.books.get(&name).cloned().map(Response::new).ok_or_else(|| not_found(&name))
    }

    async fn create_book(&self, request: Request<CreateBookRequest>) -> Result<Response<Book>, Status> {
        let req = request.into_inner();
        parse_shelf_name("parent", &req.parent)?;
        let mut book = req.book.ok_or_else(|| Status::invalid_argument("book is required"))?;
        check_book_fields(&book)?;
        if !req.book_id.is_empty() && !valid_id(&req.book_id) {
            return Err(Status::invalid_argument(format!(
                "book_id must be 1-63 characters of a-z, 0-9 and -, got \"{}\"",
                req.book_id
            )));
        }
        let mut state = self.state.write().await;
        if !state.shelves.contains_key(&req.parent) {
            return Err(not_found(&req.parent));
        }
        book.name = if req.book_id.is_empty() {
            // Derive the id from the title; `-2`, `-3`, … when taken.
            let base = slug(&book.title);
            let mut name = format!("{}/books/{base}", req.parent);
            let mut n = 2;
            while state.books.contains_key(&name) {
                name = format!("{}/books/{base}-{n}", req.parent);
                n += 1;
            }
            name
        } else {
            let name = format!("{}/books/{}", req.parent, req.book_id);
            if state.books.contains_key(&name) {
                return Err(Status::already_exists(format!("{name} already exists")));
            }
            name
        };
        let time = now();
        book.create_time = Some(time);
        book.update_time = Some(time);
        state.books.insert(book.name.clone(), book.clone());
        self.publish(Kind::BookAdded, &book, time);
        Ok(Response::new(book))
    }

    async fn update_book(&self, request: Request<UpdateBookRequest>) -> Result<Response<Book>, Status> {
        let req = request.into_inner();
        let patch = req.book.ok_or_else(|| Status::invalid_argument("book is required"))?;
        parse_book_name("book.name", &patch.name)?;
        // Without a mask, every field set in `book` is updated (AIP-134).
        let paths: Vec<String> = match req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            _ => {
                let set = [!patch.title.is_empty(), !patch.author.is_empty(), patch.genre != 0, patch.page_count != 0];
                UPDATABLE.iter().zip(set).filter(|(_, set)| *set).map(|(f, _)| (*f).to_owned()).collect()
            }
        };
        let paths: Vec<&str> = if paths.iter().any(|p| p == "*") {
            if paths.len() > 1 {
                return Err(Status::invalid_argument("update_mask: `*` must be the only path"));
            }
            UPDATABLE.to_vec()
        } else {
            paths.iter().map(String::as_str).collect()
        };
        for path in &paths {
            match *path {
                p if UPDATABLE.contains(&p) => {}
                "name" | "create_time" | "update_time" => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask: `{path}` is output only and cannot be updated"
                    )))
                }
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask: unknown field `{path}` (updatable: {})",
                        UPDATABLE.join(", ")
                    )))
                }
            }
        }
        let mut state = self.state.write().await;
        let current = state.books.get(&patch.name).ok_or_else(|| not_found(&patch.name))?;
        let mut book = current.clone();
        for path in &paths {
            match *path {
                "title" => book.title = patch.title.clone(),
                "author" => book.author = patch.author.clone(),
                "genre" => book.genre = patch.genre,
                "page_count" => book.page_count = patch.page_count,
                _ => unreachable!("checked above"),
            }
        }
        check_book_fields(&book)?;
        if book != *current {
            let time = now();
            book.update_time = Some(time);
            state.books.insert(book.name.clone(), book.clone());
            self.publish(Kind::BookUpdated, &book, time);
        }
        Ok(Response::new(book))
    }

    async fn delete_book(&self, request: Request<DeleteBookRequest>) -> Result<Response<()>, Status> {
        let name = request.into_inner().name;
        parse_book_name("name", &name)?;
        let mut state = self.state.write().await;
        let book = state.books.remove(&name).ok_or_else(|| not_found(&name))?;
        self.publish(Kind::BookRemoved, &book, now());
        Ok(Response::new(()))
    }

    async fn move_book(&self, request: Request<MoveBookRequest>) -> Result<Response<Book>, Status> {
        let req = request.into_inner();
        let from_shelf = parse_book_name("name", &req.name)?;
        parse_shelf_name("other_shelf_name", &req.other_shelf_name)?;
        let mut state = self.state.write().await;
        if !state.books.contains_key(&req.name) {
            return Err(not_found(&req.name));
        }
        if !state.shelves.contains_key(&req.other_shelf_name) {
            return Err(not_found(&req.other_shelf_name));
        }
        if from_shelf == req.other_shelf_name {
            return Err(Status::failed_precondition(format!("{} is already on {}", req.name, req.other_shelf_name)));
        }
        let id = req.name.rsplit('/').next().unwrap_or_default();
        let new_name = format!("{}/books/{id}", req.other_shelf_name);
        if state.books.contains_key(&new_name) {
            return Err(Status::already_exists(format!("{new_name} already exists")));
        }
        let old = state.books.remove(&req.name).expect("checked above");
        let mut book = old.clone();
        book.name = new_name;
        let time = now();
        book.update_time = Some(time);
        state.books.insert(book.name.clone(), book.clone());
        self.publish(Kind::BookRemoved, &old, time);
        self.publish(Kind::BookAdded, &book, time);
        Ok(Response::new(book))
    }

    async fn watch_shelf(
        &self,
        request: Request<WatchShelfRequest>,
    ) -> Result<Response<Streaming<ShelfEvent>>, Status> {
        let name = request.into_inner().name;
        // Subscribe under the lock, so no change between the check and the subscription is lost.
        let receiver = {
            let state = self.state.read().await;
            check_parent(&state, "name", &name)?;
            self.events.subscribe()
        };
        let prefix = books_prefix(&name);
        // Ends with an error if this watcher fell so far behind that events were dropped, and
        // unsubscribes when the stream is dropped (the caller went away).
        let events = switchboard::stream::unfold(Some(receiver), move |receiver| {
            let prefix = prefix.clone();
            async move {
                let mut receiver = receiver?;
                loop {
                    match receiver.recv().await {
                        Ok(event) if event.book.as_ref().is_some_and(|b| b.name.starts_with(&prefix)) => {
                            return Some((Ok(event), Some(receiver)));
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let status =
                                Status::aborted(format!("the watcher fell behind and missed {n} events; watch again"));
                            return Some((Err(status), None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(Response::new(Streaming::new(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_reject_unknown_fields() {
        let f = Filter::parse(r#"author = "Ursula K. Le Guin" AND genre=FICTION"#).unwrap();
        assert_eq!(f.author.as_deref(), Some("Ursula K. Le Guin"));
        assert_eq!(f.genre, Some(Genre::Fiction as i32));
        assert!(Filter::parse("colour = red").unwrap_err().message().contains("colour"));
        assert!(Filter::parse("genre = JAZZ").unwrap_err().message().contains("JAZZ"));
        assert!(Filter::parse("author").is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_are_tied_to_the_query() {
        let t = encode_token(&["shelves/a", ""], "shelves/a/books/x");
        assert_eq!(decode_token(&["shelves/a", ""], &t).unwrap().as_deref(), Some("shelves/a/books/x"));
        assert!(decode_token(&["shelves/b", ""], &t).is_err());
        assert!(decode_token(&["shelves/a", ""], "nonsense!").is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("The Left Hand of Darkness"), "the-left-hand-of-darkness");
        assert_eq!(slug("  Dune: Messiah! "), "dune-messiah");
        assert_eq!(slug("???"), "book");
    }
}
