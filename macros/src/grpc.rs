//! gRPC's share of `#[service]`: the `<Trait>Server` alias over the dispatch table and the typed
//! `<Trait>Client`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemTrait;

use crate::model::{Method, Service, Shape};
use crate::names::{client_ident, descriptor_ident, marker_ident};

pub(crate) fn expand(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let full = s.full_name(item);
    let marker = marker_ident(item);
    let server = format_ident!("{}Server", trait_ident);
    let client = format_ident!("{}Client", trait_ident);
    let p = quote!(::switchboard::__private);

    let desc = descriptor_ident(item);
    let client_methods = s.methods.iter().enumerate().map(|(i, m)| client_method(&full, &desc, i, m));
    let server_doc = format!("Serves any [`{trait_ident}`] implementation over gRPC as `{full}`.");
    let client_doc = format!("Calls `{full}` over gRPC. `C` is any HTTP/2 tower service, e.g. a `Channel` wrapped in layers.");

    quote! {
        #[doc = #server_doc]
        #vis type #server<H> = ::switchboard::grpc::GrpcServer<#marker<H>>;

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client<__SbTransport = ::switchboard::grpc::transport::Channel> {
            inner: ::switchboard::grpc::GrpcClient<__SbTransport>,
        }

        impl #client<::switchboard::grpc::transport::Channel> {
            /// Connects to `dst`, e.g. `"http://127.0.0.1:50051"`.
            pub async fn connect<D>(dst: D) -> ::core::result::Result<Self, ::switchboard::grpc::transport::Error>
            where
                D: ::core::convert::TryInto<::switchboard::grpc::transport::Endpoint>,
                D::Error: ::core::convert::Into<::std::boxed::Box<dyn ::std::error::Error + ::core::marker::Send + ::core::marker::Sync>>,
            {
                ::core::result::Result::Ok(Self { inner: ::switchboard::grpc::GrpcClient::connect(dst).await? })
            }
        }

        ::switchboard::__if_tls! {
            impl #client<::switchboard::grpc::transport::Channel> {
                /// Connects over TLS to `url`, e.g. `"https://localhost:8443"`, trusting what
                /// `tls` trusts (see [`switchboard::tls`](::switchboard::tls)).
                pub async fn connect_tls(
                    url: &str,
                    tls: &::switchboard::tls::ClientTls,
                ) -> ::core::result::Result<Self, ::switchboard::tls::TlsError> {
                    ::core::result::Result::Ok(Self { inner: ::switchboard::grpc::GrpcClient::connect_tls(url, tls).await? })
                }
            }
        }

        #[allow(deprecated)]
        impl<__SbTransport: #p::grpc::GrpcTransport> #client<__SbTransport> {
            /// Sends calls through `inner` (a `Channel` or any layered tower service).
            pub fn new(inner: __SbTransport) -> Self {
                Self { inner: ::switchboard::grpc::GrpcClient::new(inner) }
            }
            /// Sends calls through `inner`, addressed to `origin`.
            pub fn with_origin(inner: __SbTransport, origin: #p::http::Uri) -> Self {
                Self { inner: ::switchboard::grpc::GrpcClient::with_origin(inner, origin) }
            }
            /// Compresses requests with `encoding`.
            pub fn send_compressed(mut self, encoding: ::switchboard::CompressionEncoding) -> Self {
                self.inner = self.inner.send_compressed(encoding);
                self
            }
            /// Accepts responses compressed with `encoding`.
            pub fn accept_compressed(mut self, encoding: ::switchboard::CompressionEncoding) -> Self {
                self.inner = self.inner.accept_compressed(encoding);
                self
            }
            /// Largest response message accepted (default 4 MiB).
            pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
                self.inner = self.inner.max_decoding_message_size(limit);
                self
            }
            /// Largest request message sent (default unlimited).
            pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
                self.inner = self.inner.max_encoding_message_size(limit);
                self
            }
            /// Fails calls that take longer than `timeout` with DEADLINE_EXCEEDED (a request's
            /// own `set_timeout` wins when shorter) and sends the deadline with every call.
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
            #(#client_methods)*
        }
    }
}

fn client_method(full: &str, desc: &syn::Ident, index: usize, m: &Method) -> TokenStream {
    let path = format!("/{full}/{}", m.wire_name);
    let ident = client_ident(&m.ident);
    let input = &m.input;
    let output = &m.output;
    let doc = format!("Calls `{}` (`{path}`).", m.wire_name);
    let deprecated = m.deprecated.then(|| quote!(#[deprecated]));
    let (param, call, ret) = match m.shape {
        Shape::Unary => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(self.inner.unary(&#desc, #index, ::switchboard::IntoRequest::into_request(request))),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::ServerStreaming => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(self.inner.server_streaming(&#desc, #index, ::switchboard::IntoRequest::into_request(request))),
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
        ),
        Shape::ClientStreaming => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(self.inner.client_streaming(&#desc, #index, ::switchboard::IntoStreamingRequest::into_streaming_request(request))),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::Bidi => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(self.inner.streaming(&#desc, #index, ::switchboard::IntoStreamingRequest::into_streaming_request(request))),
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
        ),
    };
    quote! {
        #[doc = #doc]
        #deprecated
        pub async fn #ident(&mut self, #param) -> ::core::result::Result<#ret, ::switchboard::Status> {
            #call.await
        }
    }
}

