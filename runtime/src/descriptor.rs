//! Static descriptions of services, read by every transport.
//!
//! The `#[service]` macro emits one [`ServiceDescriptor`] per trait. Transports are generic over
//! it: the gRPC router, the REST router and the queue consumers read names, call shapes and
//! bindings from here instead of having per-method code generated for each of them.

/// How requests and responses flow in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallShape {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    BidiStreaming,
}

impl CallShape {
    /// Whether the caller sends a stream of messages.
    pub const fn client_streams(self) -> bool {
        matches!(self, CallShape::ClientStreaming | CallShape::BidiStreaming)
    }
    /// Whether the handler returns a stream of messages.
    pub const fn server_streams(self) -> bool {
        matches!(self, CallShape::ServerStreaming | CallShape::BidiStreaming)
    }
}

/// Side-effect level of a method, as protobuf's `idempotency_level` option declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Idempotency {
    /// Nothing declared.
    #[default]
    Unknown,
    /// Safe to call any number of times; no side effects (HTTP GET-like).
    NoSideEffects,
    /// Repeating the call has the same effect as calling once.
    Idempotent,
}

/// One HTTP binding of a method (`google.api.http` rule), carried for the REST transport.
///
/// Built with [`HttpRule::new`] (fields may be added, so the struct is `#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRule {
    /// HTTP method in upper case (`GET`, `POST`, … or a custom verb).
    pub method: &'static str,
    /// Path template, e.g. `/v1/{name=shelves/*/books/*}`.
    pub path: &'static str,
    /// Request field bound to the body: `""` none, `"*"` all remaining fields, or a field name.
    pub body: &'static str,
    /// Response field sent as the body, `""` for the whole response.
    pub response_body: &'static str,
}

/// One method of a service.
///
/// Built with [`MethodDescriptor::new`] and its `const` setters, in a `static`:
///
/// ```
/// use switchboard::{CallShape, HttpRule, Idempotency, MethodDescriptor};
/// static GET: MethodDescriptor = MethodDescriptor::new("GetBook", "get_book", "/lib.Library/GetBook", CallShape::Unary)
///     .idempotency(Idempotency::NoSideEffects)
///     .http(&[HttpRule::new("GET", "/v1/{name=books/*}", "", "")]);
/// assert_eq!(GET.http[0].method, "GET");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodDescriptor {
    /// Wire name, e.g. `SayHello`.
    pub name: &'static str,
    /// The Rust method name in the trait, e.g. `say_hello`.
    pub rust_name: &'static str,
    /// gRPC path: `/<package>.<Service>/<Method>`.
    pub grpc_path: &'static str,
    /// Call shape.
    pub shape: CallShape,
    /// Declared idempotency.
    pub idempotency: Idempotency,
    /// Whether the method is deprecated.
    pub deprecated: bool,
    /// HTTP bindings; empty means the transport's default binding.
    pub http: &'static [HttpRule],
    /// The OpenAPI operation this method serves (`#[rpc(operation = CONST)]`): its method and
    /// path replace the HTTP bindings, and the REST transport reads parameters, body and
    /// responses from it.
    pub operation: Option<&'static crate::api::Operation>,
    /// Whether the method can also be published as an event (`#[rpc(event)]`): fire-and-forget
    /// to a durable queue, handled at least once (queue transport).
    pub event: bool,
}

/// A service: its names and methods.
///
/// Built with [`ServiceDescriptor::new`] (the `#[service]` macro writes one per trait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceDescriptor {
    /// Protobuf package (may be empty).
    pub package: &'static str,
    /// Service name, e.g. `Greeter`.
    pub name: &'static str,
    /// Fully-qualified name, e.g. `helloworld.Greeter`.
    pub full_name: &'static str,
    /// Methods in declaration order.
    pub methods: &'static [MethodDescriptor],
    /// The service's OpenAPI document (JSON): the one the code generator derived from a `.proto`,
    /// or the original document of an OpenAPI service. The REST server serves it at
    /// `/openapi.json`, and for OpenAPI services validates requests against its schemas.
    pub openapi: Option<&'static str>,
    /// The schema bundle switchboard-codegen wrote for an OpenAPI service (JSON, see
    /// `switchboard::api::__schema_bundle`): each parameter and request body schema, transformed
    /// and ready to compile with the definitions it reaches (kept once each, shared), so the
    /// server does not parse the document for them. Without one
    /// (hand-written traits) the server cuts the schemas out of [`Self::openapi`] at start-up.
    pub schemas: Option<&'static str>,
    /// The spec's default call policy (`#[service(policy = CONST)]`): a gRPC service config as
    /// JSON text, which switchboard-codegen embeds from a `.proto` directory's
    /// `*_grpc_service_config.json` or an OpenAPI document's `x-switchboard-policy`. It is read
    /// by [`Policies::for_service`](crate::policy::Policies::for_service), under the run-time
    /// config.
    pub policy: Option<&'static str>,
}

impl HttpRule {
    /// A binding: HTTP method, path template, body field (`""`, `"*"` or a field) and
    /// response-body field (`""` for the whole response).
    pub const fn new(method: &'static str, path: &'static str, body: &'static str, response_body: &'static str) -> Self {
        HttpRule { method, path, body, response_body }
    }
}

impl MethodDescriptor {
    /// A method with no idempotency declared, not deprecated, no HTTP bindings (the default
    /// binding), no OpenAPI operation, not an event.
    pub const fn new(name: &'static str, rust_name: &'static str, grpc_path: &'static str, shape: CallShape) -> Self {
        MethodDescriptor {
            name,
            rust_name,
            grpc_path,
            shape,
            idempotency: Idempotency::Unknown,
            deprecated: false,
            http: &[],
            operation: None,
            event: false,
        }
    }
    /// Sets the declared idempotency.
    pub const fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }
    /// Marks the method deprecated (or not).
    pub const fn deprecated(mut self, deprecated: bool) -> Self {
        self.deprecated = deprecated;
        self
    }
    /// Sets the HTTP bindings.
    pub const fn http(mut self, http: &'static [HttpRule]) -> Self {
        self.http = http;
        self
    }
    /// Sets the OpenAPI operation the method serves.
    pub const fn operation(mut self, operation: Option<&'static crate::api::Operation>) -> Self {
        self.operation = operation;
        self
    }
    /// Marks the method as one that can also be published as an event.
    pub const fn event(mut self, event: bool) -> Self {
        self.event = event;
        self
    }
}

impl ServiceDescriptor {
    /// A service without an OpenAPI document.
    pub const fn new(
        package: &'static str,
        name: &'static str,
        full_name: &'static str,
        methods: &'static [MethodDescriptor],
    ) -> Self {
        ServiceDescriptor { package, name, full_name, methods, openapi: None, schemas: None, policy: None }
    }
    /// Sets the service's OpenAPI document (JSON).
    pub const fn openapi(mut self, openapi: Option<&'static str>) -> Self {
        self.openapi = openapi;
        self
    }
    /// Sets the service's schema bundle (JSON, written by switchboard-codegen).
    pub const fn schemas(mut self, schemas: Option<&'static str>) -> Self {
        self.schemas = schemas;
        self
    }
    /// Sets the spec's default call policy: a gRPC service config as JSON text (checked when
    /// [`Policies::for_service`](crate::policy::Policies::for_service) reads it).
    ///
    /// ```
    /// use switchboard::{CallShape, MethodDescriptor, ServiceDescriptor};
    /// static ECHO: ServiceDescriptor = ServiceDescriptor::new("demo", "Echo", "demo.Echo",
    ///     &[MethodDescriptor::new("Say", "say", "/demo.Echo/Say", CallShape::Unary)])
    ///     .policy(r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}], "timeout": "2s"}]}"#);
    /// assert!(ECHO.policy.is_some());
    /// ```
    pub const fn policy(mut self, json: &'static str) -> Self {
        self.policy = Some(json);
        self
    }

    /// Finds a method by its gRPC path.
    pub fn method_by_path(&self, path: &str) -> Option<&'static MethodDescriptor> {
        self.methods.iter().find(|m| m.grpc_path == path)
    }

    /// Whether any method serves an OpenAPI operation.
    pub fn has_operations(&self) -> bool {
        self.methods.iter().any(|m| m.operation.is_some())
    }
}
