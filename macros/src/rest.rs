//! REST's share of `#[service]`: the `<Trait>RestServer` alias over the dispatch table and the
//! typed `<Trait>RestClient`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemTrait;

use crate::model::{Method, Service, Shape};
use crate::credentials::credential_setters;
use crate::names::{client_ident, descriptor_ident, marker_ident};

pub(crate) fn expand(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let full = s.full_name(item);
    let marker = marker_ident(item);
    let server = format_ident!("{}RestServer", trait_ident);
    let client = format_ident!("{}RestClient", trait_ident);
    let desc = descriptor_ident(item);
    let client_methods = s.methods.iter().enumerate().map(|(i, m)| rest_client_method(&desc, i, m));
    let openapi = s.methods.iter().any(|m| m.operation.is_some());
    let server_doc = if openapi {
        format!(
            "Serves any [`{trait_ident}`] implementation over REST: each method at its OpenAPI \
             operation's method and path (under the document's base path), requests checked \
             against the document's schemas."
        )
    } else {
        format!(
            "Serves any [`{trait_ident}`] implementation over REST (JSON): `{full}`'s HTTP bindings, \
             or `POST /{full}/<Method>` for methods without one."
        )
    };
    let client_doc = if s.args.grpc {
        format!("Calls `{full}` over REST (HTTP/1.1 + JSON), with the same methods as the gRPC client.")
    } else {
        format!(
            "Calls `{full}` over REST (HTTP/1.1). Give it the server URL including any base path \
             (`http://host:8080/v1`), as OpenAPI's `servers[].url` does."
        )
    };
    let credentials = credential_setters("Authorization", "header, query, cookie");
    quote! {
        #[doc = #server_doc]
        #vis type #server<H> = ::switchboard::rest::RestServer<#marker<H>>;

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client {
            inner: ::switchboard::rest::RestClient,
        }

        #[allow(deprecated)]
        impl #client {
            /// A client for the server at `base_url`, e.g. `"http://127.0.0.1:8080"`.
            pub fn new(base_url: &str) -> ::core::result::Result<Self, ::switchboard::rest::InvalidBaseUrl> {
                ::core::result::Result::Ok(Self { inner: ::switchboard::rest::RestClient::new(base_url)? })
            }
            /// A client over a configured [`RestClient`](::switchboard::rest::RestClient).
            pub fn with_client(inner: ::switchboard::rest::RestClient) -> Self {
                Self { inner }
            }
            /// Fails calls that take longer than `timeout` with DEADLINE_EXCEEDED.
            pub fn timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.inner = self.inner.timeout(timeout);
                self
            }
            #credentials
            /// Runs every call through `layer` (inside the layers added before it):
            /// see [`switchboard::client::Layer`](::switchboard::client::Layer).
            pub fn layer(mut self, layer: impl ::switchboard::client::Layer) -> Self {
                self.inner = self.inner.layer(layer);
                self
            }
            #(#client_methods)*
        }
    }
}

fn glue_ident(shape: Shape) -> syn::Ident {
    format_ident!("{}", match shape {
        Shape::Unary => "unary",
        Shape::ServerStreaming => "server_streaming",
        Shape::ClientStreaming => "client_streaming",
        Shape::Bidi => "streaming",
    })
}

fn rest_client_method(desc: &syn::Ident, index: usize, m: &Method) -> TokenStream {
    let ident = client_ident(&m.ident);
    let input = &m.input;
    let output = &m.output;
    let doc = format!("Calls `{}` over REST.", m.wire_name);
    let deprecated = m.deprecated.then(|| quote!(#[deprecated]));
    let glue = glue_ident(m.shape);
    if m.operation.is_some() {
        // Not an `async fn`: returning the runtime's future directly saves a state machine per
        // method, which adds up on 1,000-operation APIs.
        return quote! {
            #[doc = #doc]
            #deprecated
            pub fn #ident(
                &mut self,
                request: impl ::switchboard::IntoRequest<#input>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::switchboard::Response<#output>, ::switchboard::Status>,
            > + '_ {
                ::switchboard::__private::api::call(&self.inner, &#desc, #index, ::switchboard::IntoRequest::into_request(request))
            }
        };
    }
    let (param, convert, ret) = match m.shape {
        Shape::Unary => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(::switchboard::IntoRequest::into_request(request)),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::ServerStreaming => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(::switchboard::IntoRequest::into_request(request)),
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
        ),
        Shape::ClientStreaming => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(::switchboard::__private::rest::streaming_request(::switchboard::IntoStreamingRequest::into_streaming_request(request))),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::Bidi => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(::switchboard::__private::rest::streaming_request(::switchboard::IntoStreamingRequest::into_streaming_request(request))),
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
        ),
    };
    quote! {
        #[doc = #doc]
        #deprecated
        pub async fn #ident(&mut self, #param) -> ::core::result::Result<#ret, ::switchboard::Status> {
            self.inner.#glue(&#desc, #index, #convert).await
        }
    }
}
