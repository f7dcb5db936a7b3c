//! The queue transport's share of `#[service]`: the `<Trait>QueueServer` alias over the dispatch
//! table and the typed `<Trait>QueueClient`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemTrait;

use crate::credentials::credential_setters;
use crate::names::{client_ident, descriptor_ident, marker_ident};
use crate::model::{Method, Service, Shape};

pub fn expand(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let full = s.full_name(item);
    let marker = marker_ident(item);
    let server = format_ident!("{}QueueServer", trait_ident);
    let client = format_ident!("{}QueueClient", trait_ident);
    let desc = descriptor_ident(item);
    let p = quote!(::switchboard::__private);
    // Services with protobuf messages travel as protobuf; the others (OpenAPI, JSON-only
    // code-first traits) as JSON.
    let codec = if s.args.grpc { quote!(#p::queue::Proto) } else { quote!(#p::queue::Json) };
    let methods = s.methods.iter().enumerate().map(|(i, m)| client_method(&desc, &codec, i, m));
    let server_doc = format!(
        "Serves any [`{trait_ident}`] implementation through a message broker as `{full}` \
         (request-reply, server streaming, and events for `#[rpc(event)]` methods)."
    );
    let client_doc = format!(
        "Calls `{full}` through a message broker, with the same methods as the other clients \
         (plus `publish_<method>` for event methods)."
    );
    let credentials = credential_setters("authorization", "as metadata");
    quote! {
        #[doc = #server_doc]
        #vis type #server<H> = ::switchboard::queue::QueueServer<#marker<H>, #codec>;

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client {
            inner: ::switchboard::queue::QueueClient,
        }

        #[allow(deprecated)]
        impl #client {
            /// A client calling through `broker`.
            pub fn new(broker: &::switchboard::queue::Broker) -> Self {
                Self { inner: ::switchboard::queue::QueueClient::new(broker) }
            }
            /// A client over a configured [`QueueClient`](::switchboard::queue::QueueClient).
            pub fn with_client(inner: ::switchboard::queue::QueueClient) -> Self {
                Self { inner }
            }
            #credentials
            /// Deadline for calls whose request sets none (default 30 s).
            pub fn timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.inner = self.inner.timeout(timeout);
                self
            }
            /// Runs every call through `layer` (inside the layers added before it):
            /// see [`switchboard::client::Layer`](::switchboard::client::Layer).
            pub fn layer(mut self, layer: impl ::switchboard::client::Layer) -> Self {
                self.inner = self.inner.layer(layer);
                self
            }
            #(#methods)*
        }
    }
}

fn client_method(desc: &syn::Ident, codec: &TokenStream, index: usize, m: &Method) -> TokenStream {
    let ident = client_ident(&m.ident);
    let input = &m.input;
    let output = &m.output;
    let doc = format!("Calls `{}` through the broker.", m.wire_name);
    let deprecated = m.deprecated.then(|| quote!(#[deprecated]));
    let inner = quote!(self.inner);
    // With a key field: the request, keyed by the field's value unless the caller set a key.
    let request = match &m.key {
        None => quote!(::switchboard::IntoRequest::into_request(request)),
        Some((path, _)) => {
            let p = quote!(::switchboard::__private::queue);
            quote!({
                let mut request = ::switchboard::IntoRequest::into_request(request);
                #p::default_key(&mut request, |message: &#input| {
                    #[allow(unused_imports)]
                    use #p::{KeyStepOption as _, KeyStepPlain as _};
                    let value = message;
                    #( let value = (&value.#path).key_step()?; )*
                    #p::key_text(value)
                });
                request
            })
        }
    };
    let (ret, body) = match m.shape {
        // An OpenAPI operation: the reply is a documented response (docs/queue-protocol.md).
        Shape::Unary if m.operation.is_some() => (
            quote!(::switchboard::Response<#output>),
            quote!(#inner.operation::<_, _>(&#desc, #index, #request)),
        ),
        Shape::Unary => (
            quote!(::switchboard::Response<#output>),
            quote!(#inner.unary::<#codec, _, _>(&#desc, #index, #request)),
        ),
        Shape::ServerStreaming => (
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
            quote!(#inner.server_streaming::<#codec, _, _>(&#desc, #index, ::switchboard::IntoRequest::into_request(request))),
        ),
        Shape::ClientStreaming | Shape::Bidi => {
            let glue = if m.shape == Shape::Bidi { quote!(streaming) } else { quote!(client_streaming) };
            let ret = if m.shape == Shape::Bidi {
                quote!(::switchboard::Response<::switchboard::Streaming<#output>>)
            } else {
                quote!(::switchboard::Response<#output>)
            };
            let doc = format!(
                "`{}` streams requests, which queues do not carry: always fails with UNIMPLEMENTED \
                 (call it over gRPC or REST).",
                m.wire_name
            );
            return quote! {
                #[doc = #doc]
                #deprecated
                pub fn #ident(
                    &self,
                    request: impl ::switchboard::IntoStreamingRequest<Message = #input>,
                ) -> impl ::core::future::Future<Output = ::core::result::Result<#ret, ::switchboard::Status>> + '_ {
                    #inner.#glue(&#desc, #index, ::switchboard::IntoStreamingRequest::into_streaming_request(request))
                }
            };
        }
    };
    let publish = m.event.map(|span| {
        let name = format_ident!("publish_{}", m.ident.to_string().trim_start_matches("r#"), span = span);
        let mut doc = format!(
            "Publishes `{}` as an event: returns once the broker holds it (publisher confirm / \
             PubAck); a server handles it at least once.",
            m.wire_name
        );
        if let Some((path, _)) = &m.key {
            let path: Vec<String> = path.iter().map(|i| i.to_string()).collect();
            doc.push_str(&format!(
                " Its partition key (`sb-key`) is the request's `{}`, unless the request carries a \
                 [`PartitionKey`](::switchboard::queue::PartitionKey).",
                path.join(".")
            ));
        }
        quote! {
            #[doc = #doc]
            #deprecated
            pub fn #name(
                &self,
                request: impl ::switchboard::IntoRequest<#input>,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<(), ::switchboard::Status>> + '_ {
                #inner.publish::<#codec, _>(&#desc, #index, #request)
            }
        }
    });
    quote! {
        #[doc = #doc]
        #deprecated
        pub fn #ident(
            &self,
            request: impl ::switchboard::IntoRequest<#input>,
        ) -> impl ::core::future::Future<Output = ::core::result::Result<#ret, ::switchboard::Status>> + '_ {
            #body
        }
        #publish
    }
}
