//! The checked model of one `#[service]` trait.

use heck::ToUpperCamelCase;
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, ItemTrait, LitStr, Pat, PathArguments, ReturnType, Signature,
    TraitItem, TraitItemFn, Type,
};

/// Collects errors instead of stopping at the first.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, msg));
    }
    pub fn add(&mut self, e: syn::Error) {
        self.0.push(e);
    }
    pub fn into_result(self) -> Result<(), syn::Error> {
        let mut it = self.0.into_iter();
        match it.next() {
            None => Ok(()),
            Some(mut first) => {
                it.for_each(|e| first.combine(e));
                Err(first)
            }
        }
    }
}

/// `#[service(...)]` arguments.
pub struct ServiceArgs {
    pub package: String,
    pub name: Option<String>,
    /// `openapi = PATH`: a `&'static str` constant holding the service's OpenAPI document.
    pub openapi: Option<syn::Expr>,
    /// `schemas = CONST`: a `&'static str` constant holding the service's schema bundle (written
    /// by switchboard-codegen beside the document).
    pub schemas: Option<syn::Expr>,
    /// `policy = CONST`: a `&'static str` constant holding the spec's default call policy (a gRPC
    /// service config as JSON, written by switchboard-codegen beside the trait).
    pub policy: Option<syn::Expr>,
    /// `rest = false` turns the REST server and client off (message types without serde impls).
    pub rest: bool,
    /// `grpc = false` turns the gRPC server and client off (OpenAPI services, whose types are not
    /// protobuf messages).
    pub grpc: bool,
    /// Span of `grpc = false`/`rest = false`, for errors that involve them.
    pub grpc_span: Option<Span>,
}

impl ServiceArgs {
    pub fn parse(args: proc_macro2::TokenStream, errors: &mut Errors) -> Self {
        let mut out = ServiceArgs { package: String::new(), name: None, openapi: None, schemas: None, policy: None, rest: true, grpc: true, grpc_span: None };
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("package") {
                let lit: LitStr = meta.value()?.parse()?;
                let v = lit.value();
                if !v.is_empty() && !v.split('.').all(is_wire_ident) {
                    return Err(syn::Error::new(lit.span(), "package must be dot-separated identifiers, e.g. \"acme.library.v1\""));
                }
                out.package = v;
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if !is_wire_ident(&lit.value()) {
                    return Err(syn::Error::new(lit.span(), "service name must be an identifier"));
                }
                out.name = Some(lit.value());
            } else if meta.path.is_ident("openapi") {
                out.openapi = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("schemas") {
                out.schemas = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("policy") {
                let expr: syn::Expr = meta.value()?.parse()?;
                if out.policy.is_some() {
                    return Err(syn::Error::new_spanned(&expr, "a service has one default policy; `policy` is given twice"));
                }
                out.policy = Some(expr);
            } else if meta.path.is_ident("rest") {
                let lit: syn::LitBool = meta.value()?.parse()?;
                out.rest = lit.value;
            } else if meta.path.is_ident("grpc") {
                let lit: syn::LitBool = meta.value()?.parse()?;
                out.grpc = lit.value;
                out.grpc_span = Some(lit.span());
            } else {
                return Err(meta.error(
                    "unknown service argument; expected `package = \"...\"`, `name = \"...\"`, `openapi = CONST`, `schemas = CONST`, `policy = CONST`, `rest = false` or `grpc = false`",
                ));
            }
            Ok(())
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, args) {
            errors.add(e);
        }
        out
    }
}

fn is_wire_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One HTTP binding from `#[rpc(http(...))]`.
pub struct Http {
    pub method: String,
    pub path: String,
    pub body: String,
    pub response_body: String,
    /// The `http(...)` argument, for errors.
    pub span: proc_macro2::Span,
}

/// Who streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

/// One checked method.
pub struct Method {
    pub ident: syn::Ident,
    pub wire_name: String,
    pub shape: Shape,
    /// The declared request argument type, e.g. `Request<Streaming<In>>`.
    pub request_ty: Type,
    /// The message type inside, e.g. `In`.
    pub input: Type,
    pub output: Type,
    pub idempotency: &'static str,
    pub deprecated: bool,
    pub http: Vec<Http>,
    /// `operation = EXPR`: the method serves this `switchboard::api::Operation`.
    pub operation: Option<syn::Expr>,
    /// `event`: besides request-reply, the method can be published fire-and-forget to a durable
    /// queue (queue transport); the span, for errors.
    pub event: Option<Span>,
    /// `key = "field"` (or `"body.field"`): the request field (a path of Rust field names) whose
    /// value is an event's partition key on queues; the idents carry the literal's span.
    pub key: Option<(Vec<syn::Ident>, Span)>,
}

/// Reads the single type argument of `ty` if its last path segment is `name`.
pub fn generic_of<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let first = types.next()?;
    Some(first)
}

fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(t) if args.args.len() == 2 => Some(t),
        _ => None,
    }
}

pub const SIGNATURE_HELP: &str = "expected `async fn name(&self, request: Request<In>) -> Result<Response<Out>, Status>` (either side may be `Streaming<_>`)";

impl Method {
    pub fn parse(f: &TraitItemFn, errors: &mut Errors) -> Option<Method> {
        let sig: &Signature = &f.sig;
        let before = errors.0.len();
        if sig.asyncness.is_none() {
            errors.push(sig.fn_token.span(), format!("service methods must be `async fn`; {SIGNATURE_HELP}"));
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.push(sig.generics.span(), "service methods cannot be generic: every transport needs concrete message types");
        }
        if let Some(v) = &sig.variadic {
            errors.push(v.span(), "service methods cannot be variadic");
        }
        let mut inputs = sig.inputs.iter().peekable();
        match inputs.peek() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {
                inputs.next();
            }
            Some(FnArg::Receiver(r)) => {
                errors.push(r.span(), "the first parameter of a service method must be `&self`");
                inputs.next();
            }
            // No receiver at all: report it and read the parameter as the request.
            Some(other) => errors.push(other.span(), "the first parameter of a service method must be `&self`"),
            None => errors.push(sig.paren_token.span.join(), "service methods take `&self` and one request parameter"),
        }
        let request_ty = match inputs.next() {
            Some(FnArg::Typed(pt)) => {
                if !matches!(&*pt.pat, Pat::Ident(_) | Pat::Wild(_)) {
                    errors.push(pt.pat.span(), "the request parameter must be a plain name");
                }
                Some((*pt.ty).clone())
            }
            Some(other) => {
                errors.push(other.span(), "expected the request parameter");
                None
            }
            None => {
                errors.push(sig.paren_token.span.join(), format!("missing the request parameter; {SIGNATURE_HELP}"));
                None
            }
        };
        for extra in inputs {
            errors.push(extra.span(), "service methods take exactly one request parameter");
        }

        let (mut client_streams, mut input) = (false, None);
        if let Some(ty) = &request_ty {
            match generic_of(ty, "Request") {
                Some(inner) => match generic_of(inner, "Streaming") {
                    Some(msg) => (client_streams, input) = (true, Some(msg.clone())),
                    None => input = Some(inner.clone()),
                },
                None => errors.push(ty.span(), format!("the request parameter must be `Request<In>` or `Request<Streaming<In>>`; {SIGNATURE_HELP}")),
            }
        }

        let (mut server_streams, mut output) = (false, None);
        match &sig.output {
            ReturnType::Default => errors.push(sig.paren_token.span.close(), format!("missing return type; {SIGNATURE_HELP}")),
            ReturnType::Type(_, ty) => match result_ok(ty).and_then(|ok| generic_of(ok, "Response")) {
                Some(inner) => match generic_of(inner, "Streaming") {
                    Some(msg) => (server_streams, output) = (true, Some(msg.clone())),
                    None => output = Some(inner.clone()),
                },
                None => errors.push(ty.span(), format!("the return type must be `Result<Response<Out>, Status>`; {SIGNATURE_HELP}")),
            },
        }

        for attr in f.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")) {
            errors.push(attr.span(), "`#[cfg]` on a service method is not supported: every transport serves the same methods; put the cfg on the whole trait");
        }
        let deprecated = f.attrs.iter().any(|a| a.path().is_ident("deprecated"));
        let mut method = Method {
            ident: sig.ident.clone(),
            wire_name: sig.ident.to_string().trim_start_matches("r#").to_upper_camel_case(),
            shape: match (client_streams, server_streams) {
                (false, false) => Shape::Unary,
                (false, true) => Shape::ServerStreaming,
                (true, false) => Shape::ClientStreaming,
                (true, true) => Shape::Bidi,
            },
            request_ty: request_ty.unwrap_or_else(|| syn::parse_quote!(())),
            input: input.unwrap_or_else(|| syn::parse_quote!(())),
            output: output.unwrap_or_else(|| syn::parse_quote!(())),
            idempotency: "Unknown",
            deprecated,
            http: Vec::new(),
            operation: None,
            event: None,
            key: None,
        };
        for attr in f.attrs.iter().filter(|a| is_rpc_attr(a)) {
            method.parse_rpc_attr(attr, errors);
        }
        if let (Some(span), true) = (method.event, method.shape != Shape::Unary) {
            errors.push(span, "`event` is for unary methods: an event is one message, handled without a reply");
        }
        if let (Some((_, span)), None) = (&method.key, method.event) {
            errors.push(*span, "`key` names the partition key field of an event: mark the method `event` too (`#[rpc(event, key = \"...\")]`)");
        }
        if let Some(op) = &method.operation {
            if method.shape != Shape::Unary {
                errors.push(op.span(), "`operation = ...` is for unary methods (`Request<In>` -> `Response<Out>`): an OpenAPI operation takes one request and gives one response");
            }
            if !method.http.is_empty() {
                errors.push(op.span(), "`operation = ...` and `http(...)` cannot be combined: the operation's method and path are its HTTP binding");
            }
        }
        (errors.0.len() == before).then_some(method)
    }

    fn parse_rpc_attr(&mut self, attr: &Attribute, errors: &mut Errors) {
        if let syn::Meta::Path(_) = attr.meta {
            return; // bare `#[rpc]`
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if !is_wire_ident(&lit.value()) {
                    return Err(syn::Error::new(lit.span(), "method name must be an identifier"));
                }
                self.wire_name = lit.value();
            } else if meta.path.is_ident("idempotent") {
                self.idempotency = "Idempotent";
            } else if meta.path.is_ident("no_side_effects") {
                self.idempotency = "NoSideEffects";
            } else if meta.path.is_ident("http") {
                self.http.push(parse_http(&meta)?);
            } else if meta.path.is_ident("event") {
                self.event = Some(meta.path.span());
            } else if meta.path.is_ident("key") {
                let lit: LitStr = meta.value()?.parse()?;
                if self.key.is_some() {
                    return Err(syn::Error::new(lit.span(), "an event has one partition key; `key` is given twice"));
                }
                self.key = Some((parse_key(&lit)?, lit.span()));
            } else if meta.path.is_ident("operation") {
                let expr: syn::Expr = meta.value()?.parse()?;
                if self.operation.is_some() {
                    return Err(syn::Error::new(expr.span(), "a method serves one operation; `operation` is given twice"));
                }
                self.operation = Some(expr);
            } else {
                return Err(meta.error("unknown rpc argument; expected `name = \"...\"`, `idempotent`, `no_side_effects`, `event`, `key = \"field\"`, `http(...)` or `operation = CONST`"));
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.add(e);
        }
    }
}

/// `key = "order_id"` / `"body.order_id"`: Rust field names separated by dots (keywords raw,
/// `r#type`), each given the literal's span so that a missing field is reported there.
fn parse_key(lit: &LitStr) -> syn::Result<Vec<syn::Ident>> {
    let value = lit.value();
    value
        .split('.')
        .map(|segment| {
            let mut ident: syn::Ident = syn::parse_str(segment).map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    format!("`key` is a field of the request message (`\"order_id\"`, or a path such as `\"body.order_id\"`); {segment:?} is not a field name (keywords are written raw: `r#type`)"),
                )
            })?;
            ident.set_span(lit.span());
            Ok(ident)
        })
        .collect()
}

fn parse_http(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Http> {
    let span = meta.path.span();
    let mut http = Http { method: String::new(), path: String::new(), body: String::new(), response_body: String::new(), span };
    let mut custom = false;
    meta.parse_nested_meta(|m| {
        let key = m.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        let lit: LitStr = m.value()?.parse()?;
        let value = lit.value();
        match key.as_str() {
            "get" | "put" | "post" | "delete" | "patch" => {
                if !http.method.is_empty() {
                    return Err(syn::Error::new(lit.span(), "an http binding has exactly one verb"));
                }
                http.method = key.to_uppercase();
                http.path = value;
            }
            "custom" => {
                if !http.method.is_empty() {
                    return Err(syn::Error::new(lit.span(), "an http binding has exactly one verb"));
                }
                custom = true;
                http.method = value;
            }
            "path" if custom => http.path = value,
            "body" => http.body = value,
            "response_body" => http.response_body = value,
            _ => return Err(m.error("unknown http argument; expected one of get, put, post, delete, patch, custom + path, body, response_body")),
        }
        if matches!(key.as_str(), "get" | "put" | "post" | "delete" | "patch" | "path") {
            if !http.path.starts_with('/') {
                return Err(syn::Error::new(lit.span(), "an http path template starts with `/`"));
            }
            // The runtime's parser: a template that cannot be served is rejected here.
            if let Err(e) = switchboard_path::Template::parse_http(&http.path) {
                return Err(syn::Error::new(lit.span(), e));
            }
        }
        Ok(())
    })?;
    if http.method.is_empty() || http.path.is_empty() {
        return Err(syn::Error::new(span, "an http binding needs a verb and a path, e.g. `http(get = \"/v1/{name=books/*}\")`"));
    }
    Ok(http)
}

pub fn is_rpc_attr(a: &Attribute) -> bool {
    a.path().is_ident("rpc")
}

/// The whole checked service.
pub struct Service {
    pub args: ServiceArgs,
    pub methods: Vec<Method>,
}

impl Service {
    pub fn parse(args: ServiceArgs, item: &ItemTrait, errors: &mut Errors) -> Service {
        if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
            errors.push(item.generics.span(), "service traits cannot be generic");
        }
        if let Some(unsafety) = &item.unsafety {
            errors.push(unsafety.span(), "service traits cannot be `unsafe`");
        }
        let mut methods = Vec::new();
        for ti in &item.items {
            match ti {
                TraitItem::Fn(f) => {
                    if let Some(m) = Method::parse(f, errors) {
                        methods.push(m);
                    }
                }
                other => errors.push(other.span(), "service traits contain only `async fn` methods"),
            }
        }
        for (i, m) in methods.iter().enumerate() {
            let client = crate::names::client_ident(&m.ident);
            if let Some(prev) = methods[..i].iter().find(|p| crate::names::client_ident(&p.ident) == client) {
                errors.push(m.ident.span(), format!("the client method for `{}` would be `{client}`, which `{}` already uses; rename one", m.ident, prev.ident));
            }
            if let Some(prev) = methods[..i].iter().find(|p| p.wire_name == m.wire_name) {
                errors.push(m.ident.span(), format!("two methods share the wire name `{}` (the other is `{}`); rename one with `#[rpc(name = \"...\")]`", m.wire_name, prev.ident));
            }
        }
        // Two bindings that would match the same requests with the same HTTP method (the
        // router's clash rule: same method, same segments, same verb).
        let bindings: Vec<(&Method, &Http, switchboard_path::Template<'_>)> = methods
            .iter()
            .flat_map(|m| m.http.iter().map(move |h| (m, h)))
            .filter_map(|(m, h)| Some((m, h, switchboard_path::Template::parse_http(&h.path).ok()?)))
            .collect();
        for (i, (m, h, t)) in bindings.iter().enumerate() {
            let same = |(_, o, u): &&(&Method, &Http, switchboard_path::Template<'_>)| {
                o.method == h.method && u.segments == t.segments && u.verb == t.verb
            };
            if let Some((prev, other, _)) = bindings[..i].iter().find(same) {
                errors.push(h.span, format!(
                    "`{} {}` of `{}` matches the same requests as `{} {}` of `{}`",
                    h.method, h.path, m.ident, other.method, other.path, prev.ident
                ));
            }
        }
        for m in &methods {
            let Some(op) = &m.operation else { continue };
            if args.grpc {
                errors.push(op.span(), "`operation = ...` methods are served over REST only; add `grpc = false` to `#[switchboard::service(...)]`");
            }
            if !args.rest {
                errors.push(op.span(), "`operation = ...` methods are served over REST, which `rest = false` turns off");
            }
        }
        if !args.grpc && !args.rest {
            errors.push(args.grpc_span.unwrap_or_else(Span::call_site), "`grpc = false` with `rest = false` leaves no transport");
        }
        Service { args, methods }
    }
}

impl Service {
    /// `package.Name` (the trait's name unless `name = "..."` says otherwise).
    pub fn full_name(&self, item: &syn::ItemTrait) -> String {
        let name = self.args.name.clone().unwrap_or_else(|| item.ident.to_string());
        if self.args.package.is_empty() { name } else { format!("{}.{}", self.args.package, name) }
    }
}
