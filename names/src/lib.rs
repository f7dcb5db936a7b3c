//! The names `#[switchboard::service]` gives things of its own, in one table that the macro
//! (`switchboard-macros`) and the code generator (`switchboard-codegen`) both read, so that
//! generated traits never collide with what the macro adds:
//!
//! ```text
//! trait Library ──macro──▶ LibraryServer, LibraryClient, LibraryRestServer, LibraryRestClient,
//!                          LibraryQueueServer, LibraryQueueClient, LIBRARY_DESCRIPTOR, __LibraryDispatch
//!                          client methods: one per RPC + new, connect, timeout, …
//! ```
//!
//! No dependencies: it is plain data and two small functions.
#![deny(missing_docs)]

/// Suffixes of the items the macro adds beside a trait `T` (`TServer`, `TRestClient`, …). A
/// trait whose name plus one of these would collide with another item gets a `Service` suffix.
pub const ITEM_SUFFIXES: &[&str] = &["Server", "Client", "RestServer", "RestClient", "QueueServer", "QueueClient"];

/// Methods the generated clients define themselves (constructors and settings), plus trait
/// methods that method-call syntax would pick before an inherent method of the same name. An
/// RPC with one of these names gets an `_rpc` suffix on the clients; the trait keeps its name.
pub const CLIENT_METHODS: &[&str] = &[
    // gRPC client
    "new", "connect", "with_origin", "send_compressed", "accept_compressed",
    "max_decoding_message_size", "max_encoding_message_size",
    // REST and queue clients
    "timeout", "with_client", "with_bearer", "with_basic", "with_api_key", "broker",
    // every client
    "layer",
    // traits the clients implement (Clone, Debug, PartialEq)
    "clone", "fmt", "eq", "ne",
];

/// The name of the client method for an RPC whose trait method is `method` (`connect` →
/// `connect_rpc`, anything else unchanged).
pub fn client_method(method: &str) -> std::borrow::Cow<'_, str> {
    if CLIENT_METHODS.contains(&method) { format!("{method}_rpc").into() } else { method.into() }
}

/// Whether a trait named `name` would collide with one of `taken` (type names already in the
/// module), counting the items the macro adds beside it.
pub fn trait_clashes(name: &str, taken: &[String]) -> bool {
    taken.iter().any(|t| t == name) || ITEM_SUFFIXES.iter().any(|s| taken.iter().any(|t| *t == format!("{name}{s}")))
}

/// The items the macro adds beside a trait named `name`, for marking them taken.
pub fn added_items(name: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(name.to_owned()).chain(ITEM_SUFFIXES.iter().map(move |s| format!("{name}{s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_methods_and_clashes() {
        assert_eq!(client_method("connect"), "connect_rpc");
        assert_eq!(client_method("broker"), "broker_rpc");
        assert_eq!(client_method("get_book"), "get_book");
        let taken = vec!["StoreRestClient".to_owned()];
        assert!(trait_clashes("Store", &taken));
        assert!(!trait_clashes("StoreService", &taken));
        assert_eq!(added_items("A").count(), 1 + ITEM_SUFFIXES.len());
    }
}
