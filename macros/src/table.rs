//! The descriptor and the ONE dispatch table every transport reads: `ServiceTable` (handler type,
//! name, descriptor) and `Dispatch<T>` for every transport `T` that can carry the service's
//! message types, with one match arm per method calling that method's own function.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ItemTrait;

use crate::model::{Method, Service, Shape};
use crate::names::{descriptor_ident, marker_ident};

pub(crate) fn descriptor(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let ident = descriptor_ident(item);
    let package = &s.args.package;
    let name = s.args.name.clone().unwrap_or_else(|| item.ident.to_string());
    let full = s.full_name(item);
    let methods = s.methods.iter().map(|m| {
        let wire = &m.wire_name;
        let rust = m.ident.to_string();
        let path = format!("/{full}/{wire}");
        let shape = format_ident!("{}", match m.shape {
            Shape::Unary => "Unary",
            Shape::ServerStreaming => "ServerStreaming",
            Shape::ClientStreaming => "ClientStreaming",
            Shape::Bidi => "BidiStreaming",
        });
        let idem = format_ident!("{}", m.idempotency);
        let deprecated = m.deprecated;
        let event = m.event.is_some();
        let operation = match &m.operation {
            Some(expr) => quote!(::core::option::Option::Some(&#expr)),
            None => quote!(::core::option::Option::None),
        };
        let http = m.http.iter().map(|h| {
            let (method, path, body, rb) = (&h.method, &h.path, &h.body, &h.response_body);
            quote!(::switchboard::HttpRule::new(#method, #path, #body, #rb))
        });
        quote! {
            ::switchboard::MethodDescriptor::new(#wire, #rust, #path, ::switchboard::CallShape::#shape)
                .idempotency(::switchboard::Idempotency::#idem)
                .deprecated(#deprecated)
                .http(&[#(#http),*])
                .operation(#operation)
                .event(#event)
        }
    });
    let openapi = match &s.args.openapi {
        Some(expr) => quote!(::core::option::Option::Some(#expr)),
        None => quote!(::core::option::Option::None),
    };
    let schemas = match &s.args.schemas {
        Some(expr) => quote!(::core::option::Option::Some(#expr)),
        None => quote!(::core::option::Option::None),
    };
    // `.policy(..)` only when given: descriptors of services without one stay as they were.
    let policy = s.args.policy.as_ref().map(|expr| quote!(.policy(#expr)));
    let doc = format!("Static description of the `{full}` service, read by every transport.");
    quote! {
        #[doc = #doc]
        #vis static #ident: ::switchboard::ServiceDescriptor =
            ::switchboard::ServiceDescriptor::new(#package, #name, #full, &[#(#methods),*]).openapi(#openapi).schemas(#schemas)#policy;
    }
}

/// `impl ServiceTable` and `impl<T: Transport> Dispatch<T>` for the hidden marker type.
pub(crate) fn table(item: &ItemTrait, s: &Service) -> TokenStream {
    let trait_ident = &item.ident;
    let full = s.full_name(item);
    let marker = marker_ident(item);
    let desc = descriptor_ident(item);
    let p = quote!(::switchboard::__private);
    let arms = s.methods.iter().enumerate().map(|(i, m)| {
        let call = call_ident(i);
        quote_spanned!(m.ident.span()=> #i => Self::#call::<__SbTransport>(handler, call),)
    });
    let calls = s.methods.iter().enumerate().map(|(i, m)| call_fn(i, trait_ident, m));
    // Every message type once: the transport must carry each of them.
    let mut seen = std::collections::HashSet::new();
    let carried: Vec<&syn::Type> = s
        .methods
        .iter()
        .flat_map(|m| [&m.input, &m.output])
        .filter(|ty| seen.insert(quote!(#ty).to_string()))
        .collect();
    let bounds = carried.iter().map(|ty| quote!(__SbTransport: #p::Carry<#ty>,));
    quote! {
        #[allow(deprecated)]
        impl<__SbHandler: #trait_ident> #p::ServiceTable for #marker<__SbHandler> {
            type Handler = __SbHandler;
            const NAME: &'static str = #full;
            fn descriptor() -> &'static ::switchboard::ServiceDescriptor { &#desc }
        }

        // One function per method, each bounded by only its own message types: the compiler
        // checks each handler call on its own (in `dispatch`, with every message type's bound in
        // scope, checking thousands of them grew with the square of the method count).
        #[allow(deprecated)]
        impl<__SbHandler: #trait_ident> #marker<__SbHandler> {
            #(#calls)*
        }

        #[allow(deprecated)]
        impl<__SbHandler: #trait_ident, __SbTransport: #p::Transport> #p::Dispatch<__SbTransport> for #marker<__SbHandler>
        where
            #(#bounds)*
        {
            fn dispatch(
                handler: &#p::Arc<__SbHandler>,
                method: usize,
                call: <__SbTransport as #p::Transport>::Call,
            ) -> #p::BoxFuture<'static, <__SbTransport as #p::Transport>::Reply> {
                match method {
                    #(#arms)*
                    _ => <__SbTransport as #p::Transport>::unimplemented(call),
                }
            }
        }
    }
}

fn call_ident(index: usize) -> syn::Ident {
    format_ident!("__sb_call_{}", index)
}

/// One method: hand the transport a closure that calls the handler.
fn call_fn(index: usize, trait_ident: &syn::Ident, m: &Method) -> TokenStream {
    let ident = &m.ident;
    let call = call_ident(index);
    let (req_ty, input, output) = (&m.request_ty, &m.input, &m.output);
    let p = quote!(::switchboard::__private);
    let shape = format_ident!("{}", match m.shape {
        Shape::Unary => "unary",
        Shape::ServerStreaming => "server_streaming",
        Shape::ClientStreaming => "client_streaming",
        Shape::Bidi => "streaming",
    });
    quote_spanned! {m.ident.span()=>
        #[doc(hidden)]
        fn #call<__SbTransport>(
            handler: &#p::Arc<__SbHandler>,
            call: <__SbTransport as #p::Transport>::Call,
        ) -> #p::BoxFuture<'static, <__SbTransport as #p::Transport>::Reply>
        where
            __SbTransport: #p::Transport + #p::Carry<#input> + #p::Carry<#output>,
        {
            let handler = ::core::clone::Clone::clone(handler);
            <__SbTransport as #p::Transport>::#shape(call, move |r: #req_ty| async move {
                <__SbHandler as #trait_ident>::#ident(&*handler, r).await
            })
        }
    }
}
