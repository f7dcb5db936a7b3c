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

/// The name of a method on the client.
pub(crate) fn client_ident(method: &syn::Ident) -> syn::Ident {
    let name = method.to_string();
    match switchboard_names::client_method(&name) {
        std::borrow::Cow::Owned(renamed) => format_ident!("{}", renamed, span = method.span()),
        std::borrow::Cow::Borrowed(_) => method.clone(),
    }
}

