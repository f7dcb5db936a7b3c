//! From the checked model to tokens: trait, descriptor, gRPC dispatch table, typed client.

use heck::ToShoutySnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{ItemTrait, TraitItem};

use crate::model::{is_rpc_attr, Errors, Method, Service, ServiceArgs, Shape};

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
    let descriptor = descriptor(&item, &service);
    let grpc = if service.args.grpc { grpc(&item, &service) } else { TokenStream::new() };
    let rest = if service.args.rest { rest(&item, &service) } else { TokenStream::new() };
    let queue = crate::queue::expand(&item, &service);
    let vis = item.vis.clone();
    let marker = marker_ident(&item);
    let item = rewrite_trait(item);
    quote! {
        #item
        #descriptor
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker<__SbHandler>(::core::marker::PhantomData<fn() -> __SbHandler>);
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

pub(crate) fn full_name(s: &Service, item: &ItemTrait) -> String {
    let name = s.args.name.clone().unwrap_or_else(|| item.ident.to_string());
    if s.args.package.is_empty() { name } else { format!("{}.{}", s.args.package, name) }
}

/// The hidden type that implements every transport's dispatch trait for `<Trait>`.
pub(crate) fn marker_ident(item: &ItemTrait) -> syn::Ident {
    format_ident!("__{}Dispatch", item.ident)
}

pub(crate) fn descriptor_ident(item: &ItemTrait) -> syn::Ident {
    format_ident!("{}_DESCRIPTOR", item.ident.to_string().to_shouty_snake_case())
}

fn descriptor(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let ident = descriptor_ident(item);
    let package = &s.args.package;
    let name = s.args.name.clone().unwrap_or_else(|| item.ident.to_string());
    let full = full_name(s, item);
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
            quote!(::switchboard::HttpRule { method: #method, path: #path, body: #body, response_body: #rb })
        });
        quote! {
            ::switchboard::MethodDescriptor {
                name: #wire, rust_name: #rust, grpc_path: #path,
                shape: ::switchboard::CallShape::#shape,
                idempotency: ::switchboard::Idempotency::#idem,
                deprecated: #deprecated,
                http: &[#(#http),*],
                operation: #operation,
                event: #event,
            }
        }
    });
    let openapi = match &s.args.openapi {
        Some(expr) => quote!(::core::option::Option::Some(#expr)),
        None => quote!(::core::option::Option::None),
    };
    let doc = format!("Static description of the `{full}` service, read by every transport.");
    quote! {
        #[doc = #doc]
        #vis static #ident: ::switchboard::ServiceDescriptor = ::switchboard::ServiceDescriptor {
            package: #package, name: #name, full_name: #full,
            methods: &[#(#methods),*],
            openapi: #openapi,
        };
    }
}

fn grpc(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let full = full_name(s, item);
    let marker = marker_ident(item);
    let server = format_ident!("{}Server", trait_ident);
    let client = format_ident!("{}Client", trait_ident);
    let desc = descriptor_ident(item);
    let p = quote!(::switchboard::__private);

    let arms = s.methods.iter().map(|m| dispatch_arm(&full, trait_ident, m));
    let client_methods = s.methods.iter().map(|m| client_method(&full, m));
    let server_doc = format!("Serves any [`{trait_ident}`] implementation over gRPC as `{full}`.");
    let client_doc = format!("Calls `{full}` over gRPC. `C` is any HTTP/2 tower service, e.g. a `Channel` wrapped in layers.");

    quote! {
        #[allow(deprecated)]
        impl<__SbHandler: #trait_ident> #p::grpc::Dispatch for #marker<__SbHandler> {
            type Handler = __SbHandler;
            const NAME: &'static str = #full;
            fn descriptor() -> &'static ::switchboard::ServiceDescriptor { &#desc }
            fn dispatch(
                handler: &#p::Arc<__SbHandler>,
                config: &::switchboard::grpc::ServerConfig,
                request: #p::http::Request<#p::tonic::body::Body>,
            ) -> #p::BoxFuture<'static, #p::http::Response<#p::tonic::body::Body>> {
                match request.uri().path() {
                    #(#arms)*
                    _ => #p::grpc::unimplemented(request),
                }
            }
        }

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

        #[allow(deprecated)]
        impl<__SbTransport: #p::grpc::Transport> #client<__SbTransport> {
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
            #(#client_methods)*
        }
    }
}

fn dispatch_arm(full: &str, trait_ident: &syn::Ident, m: &Method) -> TokenStream {
    let path = format!("/{full}/{}", m.wire_name);
    let ident = &m.ident;
    let req_ty = &m.request_ty;
    let glue = format_ident!("{}", match m.shape {
        Shape::Unary => "unary",
        Shape::ServerStreaming => "server_streaming",
        Shape::ClientStreaming => "client_streaming",
        Shape::Bidi => "streaming",
    });
    quote_spanned! {m.ident.span()=>
        #path => {
            let handler = ::core::clone::Clone::clone(handler);
            ::switchboard::__private::grpc::#glue(config, request, move |r: #req_ty| async move {
                <__SbHandler as #trait_ident>::#ident(&*handler, r).await
            })
        }
    }
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

fn client_method(full: &str, m: &Method) -> TokenStream {
    let path = format!("/{full}/{}", m.wire_name);
    let ident = client_ident(&m.ident);
    let input = &m.input;
    let output = &m.output;
    let doc = format!("Calls `{}` (`{path}`).", m.wire_name);
    let deprecated = m.deprecated.then(|| quote!(#[deprecated]));
    let (param, call, ret) = match m.shape {
        Shape::Unary => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(self.inner.unary(::switchboard::IntoRequest::into_request(request), #path)),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::ServerStreaming => (
            quote!(request: impl ::switchboard::IntoRequest<#input>),
            quote!(self.inner.server_streaming(::switchboard::IntoRequest::into_request(request), #path)),
            quote!(::switchboard::Response<::switchboard::Streaming<#output>>),
        ),
        Shape::ClientStreaming => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(self.inner.client_streaming(::switchboard::IntoStreamingRequest::into_streaming_request(request), #path)),
            quote!(::switchboard::Response<#output>),
        ),
        Shape::Bidi => (
            quote!(request: impl ::switchboard::IntoStreamingRequest<Message = #input>),
            quote!(self.inner.streaming(::switchboard::IntoStreamingRequest::into_streaming_request(request), #path)),
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

fn rest(item: &ItemTrait, s: &Service) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let full = full_name(s, item);
    let marker = marker_ident(item);
    let server = format_ident!("{}RestServer", trait_ident);
    let client = format_ident!("{}RestClient", trait_ident);
    let desc = descriptor_ident(item);
    let p = quote!(::switchboard::__private);
    let arms = s.methods.iter().enumerate().map(|(i, m)| {
        let ident = &m.ident;
        let req_ty = &m.request_ty;
        let glue = match m.operation {
            Some(_) => quote!(api::unary),
            None => {
                let g = glue_ident(m.shape);
                quote!(rest::#g)
            }
        };
        quote_spanned! {m.ident.span()=>
            #i => {
                let handler = ::core::clone::Clone::clone(handler);
                #p::#glue(call, move |r: #req_ty| async move {
                    <__SbHandler as #trait_ident>::#ident(&*handler, r).await
                })
            }
        }
    });
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
    quote! {
        #[allow(deprecated)]
        impl<__SbHandler: #trait_ident> #p::rest::Dispatch for #marker<__SbHandler> {
            type Handler = __SbHandler;
            fn descriptor() -> &'static ::switchboard::ServiceDescriptor { &#desc }
            fn dispatch(
                handler: &#p::Arc<__SbHandler>,
                call: #p::rest::Call,
            ) -> #p::BoxFuture<'static, #p::rest::HttpResponse> {
                match call.method_index() {
                    #(#arms)*
                    _ => #p::rest::unimplemented(call),
                }
            }
        }

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
            /// Sends `Authorization: Bearer <token>` to operations whose security asks for it.
            pub fn with_bearer(mut self, token: impl ::core::convert::Into<::std::string::String>) -> Self {
                self.inner = self.inner.with_bearer(token);
                self
            }
            /// Sends HTTP Basic credentials to operations whose security asks for them.
            pub fn with_basic(
                mut self,
                user: impl ::core::convert::Into<::std::string::String>,
                password: impl ::core::convert::Into<::std::string::String>,
            ) -> Self {
                self.inner = self.inner.with_basic(user, password);
                self
            }
            /// Sends `key` wherever an operation's API key scheme wants it (header, query, cookie).
            pub fn with_api_key(mut self, key: impl ::core::convert::Into<::std::string::String>) -> Self {
                self.inner = self.inner.with_api_key(key);
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
                ::switchboard::__private::api::call(&self.inner, &#desc.methods[#index], ::switchboard::IntoRequest::into_request(request))
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
            self.inner.#glue(&#desc.methods[#index], #convert).await
        }
    }
}
