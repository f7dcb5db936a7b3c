//! The entry point of `#[service]`: parse and check the model, then put together the rewritten
//! trait, the descriptor and dispatch table (`table`), and each transport's alias and client.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemTrait, TraitItem};

use crate::model::{is_rpc_attr, Errors, Service, ServiceArgs};

/// Entry point of `#[service]`.
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = ServiceArgs::parse(args, &mut errors);
    let mut item: ItemTrait = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => {
            let mut err = syn::Error::new(e.span(), "#[switchboard::service] goes on a trait");
            err.combine(e);
            return err.to_compile_error();
        }
    };
    let service = Service::parse(args, &item, &mut errors);
    strip_rpc_attrs(&mut item);
    if let Err(e) = errors.into_result() {
        // The trait as written (async fns are valid trait items), so impls still check.
        let errors = e.to_compile_error();
        return quote!(#item #errors);
    }
    let descriptor = crate::table::descriptor(&item, &service);
    let table = crate::table::table(&item, &service);
    let grpc = if service.args.grpc { crate::grpc::expand(&item, &service) } else { TokenStream::new() };
    let rest = if service.args.rest { crate::rest::expand(&item, &service) } else { TokenStream::new() };
    let queue = crate::queue::expand(&item, &service);
    let vis = item.vis.clone();
    let marker = crate::names::marker_ident(&item);
    let item = rewrite_trait(item);
    quote! {
        #item
        #descriptor
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker<__SbHandler>(::core::marker::PhantomData<fn() -> __SbHandler>);
        #table
        ::switchboard::__if_grpc! { #grpc }
        ::switchboard::__if_rest! { #rest }
        ::switchboard::__if_queue! { #queue }
    }
}

fn strip_rpc_attrs(item: &mut ItemTrait) {
    for ti in &mut item.items {
        if let TraitItem::Fn(f) = ti {
            f.attrs.retain(|a| !is_rpc_attr(a));
        }
    }
}

/// `async fn m(&self, r: R) -> O;` becomes `fn m(&self, r: R) -> impl Future<Output = O> + Send;`
/// so that every handler future can be driven from a multi-threaded server. Implementations still
/// write `async fn`.
fn rewrite_trait(mut item: ItemTrait) -> ItemTrait {
    item.supertraits.push(syn::parse_quote!(::core::marker::Send));
    item.supertraits.push(syn::parse_quote!(::core::marker::Sync));
    item.supertraits.push(syn::parse_quote!('static));
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }
    for ti in &mut item.items {
        let TraitItem::Fn(f) = ti else { continue };
        let output = match &f.sig.output {
            syn::ReturnType::Type(_, ty) => quote!(#ty),
            syn::ReturnType::Default => quote!(()),
        };
        let span = f.sig.ident.span();
        f.sig.asyncness = None;
        f.sig.output = syn::parse_quote_spanned! {span=>
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
        if let Some(body) = f.default.take() {
            f.default = Some(syn::parse_quote_spanned! {span=> { async move #body } });
        }
    }
    item
}

