//! Names the expansion gives things: the service's full name, the hidden dispatch type, the
//! descriptor static, client method names. A leaf: every other module reads names from here.

use heck::ToShoutySnakeCase;
use quote::format_ident;
use syn::ItemTrait;

/// The hidden type that implements the service's one dispatch table for `<Trait>`.
pub(crate) fn marker_ident(item: &ItemTrait) -> syn::Ident {
    format_ident!("__{}Dispatch", item.ident)
}

pub(crate) fn descriptor_ident(item: &ItemTrait) -> syn::Ident {
    format_ident!("{}_DESCRIPTOR", item.ident.to_string().to_shouty_snake_case())
}

/// Client methods the macro defines itself; an RPC with one of these names gets an `_rpc` suffix
/// on the client (the trait keeps its name).
pub(crate) const CLIENT_RESERVED: &[&str] = &[
    "new", "connect", "with_origin", "send_compressed", "accept_compressed",
    "max_decoding_message_size", "max_encoding_message_size",
    "timeout", "with_client", "with_bearer", "with_basic", "with_api_key", "broker",
    // Trait methods method-call syntax would pick before an inherent method of the same name.
    "clone", "fmt", "eq", "ne",
];

/// The name of a method on the client.
pub(crate) fn client_ident(method: &syn::Ident) -> syn::Ident {
    let name = method.to_string();
    if CLIENT_RESERVED.contains(&name.as_str()) {
        format_ident!("{}_rpc", name, span = method.span())
    } else {
        method.clone()
    }
}

