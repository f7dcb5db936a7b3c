//! OpenAPI models → Rust: structs, enums and unions with serde attributes, the per-operation
//! request structs and response enums, the `operations` table, and the service trait.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;

use super::{doc_lines, method_ident};
use crate::error::Error;
use crate::ident;
use crate::ir::model::{Field, Model, ModelKind, Models, Operation, Type};
use crate::ir::Package;

#[derive(Template)]
#[template(path = "models.rs.txt", escape = "none")]
struct ModelsView<'a> {
    /// Whether this piece carries the `operations` module.
    with_operations: bool,
    items: Vec<Item>,
    schemes: Vec<SchemeView>,
    operations: &'a [OperationView],
    /// The shared lists (the piece that holds them: `__operation_lists`).
    lists: &'a [ListView],
    /// Whether the operations here read shared lists.
    uses_lists: bool,
    /// The parts of the operation table `operations` re-exports (`__operations_<k>`).
    reexports: Vec<usize>,
    /// This piece is part `k` of the operation table (`operations` holds the rest).
    chunk: Option<usize>,
    /// The security schemes' constants, which a part of the table imports from `operations`.
    scheme_idents: Vec<String>,
}

enum Item {
    Struct(StructView),
    StringEnum(StringEnumView),
    IntEnum(IntEnumView),
    OneOf(OneOfView),
    Alias(AliasView),
    Response(ResponseView),
}

struct StructView {
    docs: Vec<String>,
    ident: String,
    fields: Vec<FieldView>,
}

struct FieldView {
    docs: Vec<String>,
    attrs: Vec<String>,
    /// The schema default as a Rust string literal of JSON text (`#[model(default = ...)]`).
    model_default: Option<String>,
    ident: String,
    ty: String,
}

struct StringEnumView {
    docs: Vec<String>,
    ident: String,
    /// (variant ident, value as a Rust string literal)
    variants: Vec<(String, String)>,
    other: String,
}

struct IntEnumView {
    docs: Vec<String>,
    ident: String,
    consts: Vec<(String, i64)>,
}

struct OneOfView {
    docs: Vec<String>,
    ident: String,
    variants: Vec<(String, String)>,
    /// The discriminating property as a Rust string literal.
    tag: Option<String>,
    /// (tag value literal, variant ident)
    tag_map: Vec<(String, String)>,
}

struct AliasView {
    docs: Vec<String>,
    ident: String,
    ty: String,
}

struct ResponseView {
    docs: Vec<String>,
    ident: String,
    variants: Vec<VariantView>,
}

struct VariantView {
    docs: Vec<String>,
    ident: String,
    /// `(Pet)`, `(u16, Error)`, `(u16)` or empty.
    payload: String,
}

struct SchemeView {
    ident: String,
    expr: String,
}

struct OperationView {
    ident: String,
    method: String,
    path_doc: String,
    /// `Operation::new(..)`.
    expr: String,
    /// The parameter list: `&[Param::..]`, or the shared list's constant.
    params: Option<String>,
    /// `.body(..)`, or empty.
    body: String,
    /// The response list: `&[ResponseSpec::..]`, or the shared list's constant.
    responses: Option<String>,
    /// `.security(..)`, or empty.
    security: String,
}

/// A parameter or response list several operations share: `pub const <ident>: &[<ty>] = <expr>;`.
struct ListView {
    ident: String,
    ty: &'static str,
    expr: String,
}

/// Makes every parameter and response list that more than one of `operations` has a shared
/// constant (`__P0`, `__R0`, … in order of first use: names no operation or scheme constant can
/// have), which the operations then name; returns the constants.
fn share_lists(operations: &mut [OperationView]) -> Vec<ListView> {
    let mut uses: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for op in operations.iter() {
        for list in [&op.params, &op.responses].into_iter().flatten() {
            *uses.entry(list.clone()).or_default() += 1;
        }
    }
    let mut named: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut lists = Vec::new();
    let (mut p, mut r) = (0, 0);
    for op in operations.iter_mut() {
        for (list, prefix, ty) in [(&mut op.params, "__P", "Param"), (&mut op.responses, "__R", "ResponseSpec")] {
            let Some(text) = list.as_mut() else { continue };
            if uses[text.as_str()] < 2 {
                continue;
            }
            let ident = named.entry(text.clone()).or_insert_with(|| {
                let n = if prefix == "__P" { &mut p } else { &mut r };
                let ident = format!("{prefix}{n}");
                *n += 1;
                lists.push(ListView { ident: ident.clone(), ty, expr: text.clone() });
                ident
            });
            *text = ident.clone();
        }
    }
    lists
}

#[derive(Template)]
#[template(path = "api_service.rs.txt", escape = "none")]
struct ServiceView {
    openapi_const: String,
    document_file: String,
    /// The schema bundle's constant and file, when there is one.
    schemas: Option<(String, String)>,
    /// The default policy's constant and file, when the document gives one.
    policy: Option<(String, String)>,
    docs: Vec<String>,
    package: String,
    name: String,
    trait_ident: String,
    /// The private module holding the trait (re-exported by the document's module).
    module: String,
    methods: Vec<MethodView>,
}

struct MethodView {
    docs: Vec<String>,
    deprecated: bool,
    operation: String,
    /// `, event` when the operation is marked `x-switchboard-event: true`.
    event: &'static str,
    /// `, key = "body.order_id"` when the operation names its partition key
    /// (`x-switchboard-key`): the property's path in the request struct.
    key: String,
    /// `, idempotent` or `, no_side_effects` as the method is declared (its HTTP method, or
    /// `x-switchboard-idempotent`): what retries and hedging go by.
    idempotency: &'static str,
    ident: String,
    request: String,
    response: String,
}

/// Rust names of every model, unique by construction in lowering.
fn idents(models: &Models) -> BTreeMap<&str, String> {
    models.types.iter().map(|m| (m.name.as_str(), ident::type_name(&m.name))).collect()
}

/// The name of the file holding the bundled document, beside the package's `.rs` file.
pub fn document_file(package: &str) -> String {
    format!("{package}.openapi.json")
}

/// The name of the file holding the schema bundle, beside the package's `.rs` file.
pub fn schemas_file(package: &str) -> String {
    format!("{package}.schemas.json")
}

/// The name of the file holding the service's default policy (`x-switchboard-policy`, as a gRPC
/// service config), beside the package's `.rs` file.
pub fn policy_file(package: &str) -> String {
    format!("{package}.policy.json")
}

/// Types per piece of a module (about 0.8 MB of code for Microsoft Graph's).
const TYPES_PER_PIECE: usize = 1000;

/// Operations per part of the operation table, when it has more than this: large tables are
/// split into modules that `operations` re-exports, so that they are parsed in parallel.
const OPERATIONS_PER_PART: usize = 1000;

/// The module of an OpenAPI package (its types, operation table and service trait) in
/// consecutive pieces of whole items, each rendered on its own ([`Pieces::render`]), so that
/// `emit` renders, parses and formats them in parallel; the concatenation is the module. How
/// many pieces there are depends on the document only.
pub struct Pieces<'a> {
    package: &'a Package,
    models: &'a Models,
    names: BTreeMap<&'a str, String>,
    type_pieces: usize,
    /// Every operation of the table, in order.
    operations: Vec<OperationView>,
    /// The lists operations share (one piece, `__operation_lists`, when there are any).
    lists: Vec<ListView>,
    /// Parts of the operation table (0: it is one module).
    parts: usize,
}

impl<'a> Pieces<'a> {
    /// Prepares the pieces of `package`'s module.
    pub fn new(package: &'a Package, models: &'a Models) -> Self {
        let parts = if models.operations.len() > OPERATIONS_PER_PART { models.operations.len().div_ceil(OPERATIONS_PER_PART) } else { 0 };
        let responses: BTreeMap<&str, &Model> = models.types.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut operations: Vec<OperationView> = models.operations.iter().map(|op| operation_view(op, &responses)).collect();
        let lists = share_lists(&mut operations);
        Pieces { package, models, names: idents(models), type_pieces: models.types.len().div_ceil(TYPES_PER_PIECE), operations, lists, parts }
    }

    /// How many pieces: the module's imports, the types', the shared lists (if any), the parts
    /// of the operation table, `operations`, the trait.
    pub fn len(&self) -> usize {
        1 + self.type_pieces + usize::from(!self.lists.is_empty()) + self.parts + 2
    }

    /// Piece `i` (of [`Pieces::len`]), unformatted.
    pub fn render(&self, i: usize) -> Result<String, Error> {
        let models = self.models;
        let render_err =
            |e: askama::Error| Error::Render { template: "models.rs.txt", subject: self.package.name.clone(), message: e.to_string() };
        let uses_lists = !self.lists.is_empty();
        let view = |items, operations, chunk| ModelsView {
            with_operations: false,
            items,
            schemes: Vec::new(),
            operations,
            lists: &[],
            uses_lists,
            reexports: Vec::new(),
            chunk,
            scheme_idents: Vec::new(),
        };
        // The derives the types name without a path (a glob, so that a type of the same name
        // does not clash with them).
        let Some(i) = i.checked_sub(1) else {
            return Ok("#[allow(unused_imports)]\nuse ::switchboard::__private::models::*;\n".to_owned());
        };
        if i < self.type_pieces {
            let ty = |t: &Type| rust_type(t, &self.names);
            let end = models.types.len().min((i + 1) * TYPES_PER_PIECE);
            let items = models.types[i * TYPES_PER_PIECE..end].iter().map(|m| item(m, &self.names, &ty)).collect();
            return view(items, &[], None).render().map_err(render_err);
        }
        let mut i = i - self.type_pieces;
        if uses_lists {
            if i == 0 {
                let mut lists = view(Vec::new(), &[], None);
                lists.lists = &self.lists;
                return lists.render().map_err(render_err);
            }
            i -= 1;
        }
        let schemes = || models.security_schemes.iter().map(|s| SchemeView { ident: scheme_ident(&s.name), expr: scheme_expr(s) });
        if i < self.parts {
            let end = self.operations.len().min((i + 1) * OPERATIONS_PER_PART);
            let mut part = view(Vec::new(), &self.operations[i * OPERATIONS_PER_PART..end], Some(i));
            part.scheme_idents = schemes().map(|s| s.ident).collect();
            return part.render().map_err(render_err);
        }
        if i == self.parts {
            let mut table = view(Vec::new(), &[], None);
            table.with_operations = true;
            table.schemes = schemes().collect();
            if self.parts == 0 {
                table.operations = &self.operations;
            } else {
                table.reexports = (0..self.parts).collect();
                table.uses_lists = false;
            }
            return table.render().map_err(render_err);
        }
        self.service_trait()
    }

    /// The Rust names of `service`'s trait and of its methods (by method index; `None` for a
    /// method without an operation, which is not generated).
    fn service_idents(&self, service: &crate::ir::Service) -> (String, Vec<Option<String>>) {
        let trait_ident = {
            let base = ident::type_name(&service.name);
            let mut t = base.clone();
            let taken: Vec<String> = self.names.values().cloned().collect();
            while switchboard_names::trait_clashes(&t, &taken) {
                t.push_str("Service");
            }
            t
        };
        let mut used = std::collections::HashSet::new();
        let methods = service.methods.iter().map(|m| m.bindings.operation.map(|_| method_ident(&m.name, &mut used))).collect();
        (trait_ident, methods)
    }

    /// The default policy of the package's service, if its document gives one: the file beside
    /// the package's `.rs` file and its JSON (a gRPC service config naming the service and its
    /// methods by their wire names, as `#[switchboard::service]` makes them).
    pub fn policy(&self) -> Result<Option<(String, String)>, Error> {
        let Some(service) = self.package.services.iter().find(|s| s.policy.is_some()) else { return Ok(None) };
        let Some(policy) = &service.policy else { return Ok(None) };
        let (trait_ident, methods) = self.service_idents(service);
        // The macro's wire name of a method without `name = ...`: its Rust name in UpperCamelCase.
        let wire = |i: usize| {
            let ident = methods.get(i).cloned().flatten().unwrap_or_default();
            heck::ToUpperCamelCase::to_upper_camel_case(ident.trim_start_matches("r#"))
        };
        let json = super::policy_json(policy, &format!("{}.{trait_ident}", service.package), &wire).map_err(|e| Error::Render {
            template: "api_service.rs.txt",
            subject: service.name.clone(),
            message: format!("default policy: {e}"),
        })?;
        Ok(Some((policy_file(&self.package.name), json)))
    }

    /// The service trait (the last piece).
    fn service_trait(&self) -> Result<String, Error> {
        let (package, models, names) = (self.package, self.models, &self.names);
        // Parsed once, as a piece of the file, in `emit` (a failure there names this template too).
        let mut text = String::new();
        for service in &package.services {
            let (trait_ident, idents) = self.service_idents(service);
            let methods = service
                .methods
                .iter()
                .zip(idents)
                .filter_map(|(m, ident)| {
                    let op = &models.operations[m.bindings.operation?];
                    Some(MethodView {
                        docs: doc_lines(&m.docs),
                        deprecated: m.deprecated,
                        operation: operation_ident(op),
                        event: if m.bindings.event { ", event" } else { "" },
                        key: m.bindings.key.as_ref().and_then(|k| key_path(models, op, k)).map(|p| format!(", key = {p:?}")).unwrap_or_default(),
                        idempotency: match m.idempotency {
                            crate::ir::Idempotency::Unknown => "",
                            crate::ir::Idempotency::Idempotent => ", idempotent",
                            crate::ir::Idempotency::NoSideEffects => ", no_side_effects",
                        },
                        ident: ident?,
                        request: names[op.request.as_str()].clone(),
                        response: names[op.response.as_str()].clone(),
                    })
                })
                .collect();
            let view = ServiceView {
                openapi_const: format!("{}_OPENAPI", ident::shouty(&trait_ident)),
                document_file: format!("{:?}", document_file(&package.name)),
                schemas: models
                    .bundle
                    .then(|| (format!("{}_SCHEMAS", ident::shouty(&trait_ident)), format!("{:?}", schemas_file(&package.name)))),
                policy: service.policy.as_ref().map(|_| (format!("{}_POLICY", ident::shouty(&trait_ident)), format!("{:?}", policy_file(&package.name)))),
                docs: doc_lines(&service.docs),
                package: format!("{:?}", service.package),
                name: format!("{:?}", trait_ident),
                module: format!("__service_{}", ident::snake(&trait_ident).trim_start_matches("r#")),
                trait_ident,
                methods,
            };
            let service_text =
                view.render().map_err(|e| Error::Render { template: "api_service.rs.txt", subject: service.name.clone(), message: e.to_string() })?;
            text.push('\n');
            text.push_str(&service_text);
        }
        Ok(text)
    }
}

fn item(m: &Model, names: &BTreeMap<&str, String>, ty: &dyn Fn(&Type) -> String) -> Item {
    let ident = names[m.name.as_str()].clone();
    let mut docs = doc_lines(&m.docs);
    if m.deprecated {
        if !docs.is_empty() {
            docs.push(String::new());
        }
        docs.push("**Deprecated.**".into());
    }
    match &m.kind {
        ModelKind::Struct { fields, additional } => {
            let mut views = field_views(fields, ty);
            if let Some(a) = additional {
                let mut field_ident = "additional_properties".to_owned();
                while views.iter().any(|f| f.ident == field_ident) {
                    field_ident.push('_');
                }
                views.push(FieldView {
                    docs: vec!["Properties not listed above.".into()],
                    attrs: vec!["flatten".into()],
                    model_default: None,
                    ident: field_ident,
                    ty: format!("::std::collections::BTreeMap<String, {}>", ty(a)),
                });
            }
            Item::Struct(StructView { docs, ident, fields: views })
        }
        ModelKind::Request { fields } => Item::Struct(StructView { docs, ident, fields: field_views(fields, ty) }),
        ModelKind::StringEnum { values } => {
            let mut used = BTreeSet::new();
            let variants: Vec<(String, String)> = values.iter().map(|v| (unique(ident::type_name(v), &mut used), format!("{v:?}"))).collect();
            let other = unique("Other".into(), &mut used);
            Item::StringEnum(StringEnumView { docs, ident, variants, other })
        }
        ModelKind::IntEnum { values } => {
            let mut used = BTreeSet::new();
            let consts = values.iter().map(|v| (unique(ident::constant(&format!("V{v}").replace('-', "MINUS_")), &mut used), *v)).collect();
            Item::IntEnum(IntEnumView { docs, ident, consts })
        }
        ModelKind::OneOf { variants, discriminator, boxed } => {
            let mut used = BTreeSet::new();
            let vs: Vec<(String, String)> = variants
                .iter()
                .enumerate()
                .map(|(i, (name, t))| {
                    let t = if boxed.get(i).copied().unwrap_or(false) { format!("::std::boxed::Box<{}>", ty(t)) } else { ty(t) };
                    (unique(ident::type_name(name), &mut used), t)
                })
                .collect();
            let (tag, tag_map) = match discriminator {
                Some(d) => (
                    Some(format!("{:?}", d.property)),
                    d.mapping.iter().map(|(value, i)| (format!("{value:?}"), vs[*i].0.clone())).collect(),
                ),
                None => (None, Vec::new()),
            };
            Item::OneOf(OneOfView { docs, ident, variants: vs, tag, tag_map })
        }
        ModelKind::Alias(t) => Item::Alias(AliasView { docs, ident, ty: ty(t) }),
        ModelKind::Response { variants } => {
            let mut used = BTreeSet::new();
            let vs = variants
                .iter()
                .map(|v| {
                    let carries = v.status.parse::<u16>().is_err();
                    let payload = match (&v.body, carries) {
                        (Some(b), false) => format!("({})", ty(b)),
                        (Some(b), true) => format!("(u16, {})", ty(b)),
                        (None, false) => String::new(),
                        (None, true) => "(u16)".into(),
                    };
                    let mut vdocs = doc_lines(&v.docs);
                    let label = if v.status == "default" { "Any other status".to_owned() } else { format!("Status {}", v.status) };
                    let first = if vdocs.is_empty() { format!("{label}.") } else { format!("{label}: {}", vdocs.remove(0)) };
                    vdocs.insert(0, first);
                    VariantView { docs: vdocs, ident: unique(ident::status_variant(&v.status), &mut used), payload }
                })
                .collect();
            Item::Response(ResponseView { docs, ident, variants: vs })
        }
    }
}

fn unique(base: String, used: &mut BTreeSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}

/// The Rust field of each of `fields`, in order (unique in their struct).
fn field_idents(fields: &[Field]) -> Vec<String> {
    let mut used = BTreeSet::new();
    fields.iter().map(|f| unique(ident::field(&f.name), &mut used)).collect()
}

/// The Rust path, from the operation's request struct, of the body property `key`
/// (`body.order_id`), as `#[rpc(key = "...")]` takes it.
fn key_path(models: &Models, op: &Operation, key: &str) -> Option<String> {
    let body = op.body.as_ref()?;
    let request = models.types.iter().find(|t| t.name == op.request)?;
    let ModelKind::Request { fields } = &request.kind else { return None };
    let at = fields.iter().position(|f| f.name == body.field)?;
    let Type::Named(name) = &fields[at].ty else { return None };
    let ModelKind::Struct { fields: properties, .. } = &models.types.iter().find(|t| t.name == *name)?.kind else { return None };
    let property = properties.iter().position(|f| f.name == key)?;
    Some(format!("{}.{}", field_idents(fields)[at], field_idents(properties)[property]))
}

fn field_views(fields: &[Field], ty: &dyn Fn(&Type) -> String) -> Vec<FieldView> {
    fields
        .iter()
        .zip(field_idents(fields))
        .map(|(f, ident)| {
            let mut attrs = Vec::new();
            if ident.trim_start_matches("r#") != f.name {
                attrs.push(format!("rename = {:?}", f.name));
            }
            let mut inner = ty(&f.ty);
            if f.boxed {
                inner = format!("::std::boxed::Box<{inner}>");
            }
            // A scalar default of an optional property: a plain field, filled in when absent.
            if let Some(d) = f.default.as_ref().filter(|d| !f.required && !f.nullable && !f.read_only && !f.write_only && default_fits(d, &f.ty)) {
                let mut docs = doc_lines(&f.docs);
                if !docs.is_empty() {
                    docs.push(String::new());
                }
                docs.push(format!("Default: `{d}`."));
                let mut model_attrs = attrs.clone();
                model_attrs.retain(|a| a.starts_with("rename"));
                return FieldView { docs, attrs: model_attrs, model_default: Some(format!("{:?}", d.to_string())), ident, ty: inner };
            }
            // readOnly / writeOnly properties are absent in one direction: never required.
            let optional = !f.required || f.nullable || f.read_only || f.write_only;
            let rust_ty = if optional {
                if !f.required || f.read_only || f.write_only {
                    attrs.push("default, skip_serializing_if = \"Option::is_none\"".into());
                } else {
                    attrs.push("default".into());
                }
                format!("Option<{inner}>")
            } else {
                inner
            };
            let mut docs = doc_lines(&f.docs);
            if let Some(d) = &f.default {
                if !docs.is_empty() {
                    docs.push(String::new());
                }
                docs.push(format!("Default: `{d}`."));
            }
            if f.deprecated {
                docs.push("**Deprecated.**".into());
            }
            FieldView { docs, attrs, model_default: None, ident, ty: rust_ty }
        })
        .collect()
}

/// Whether a schema default can stand in for an absent value of `ty` (scalars and string enums).
fn default_fits(d: &serde_json::Value, ty: &Type) -> bool {
    use serde_json::Value as J;
    match (d, ty) {
        (J::Bool(_), Type::Bool) => true,
        (J::Number(n), Type::I64) => n.is_i64(),
        (J::Number(n), Type::I32) => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
        (J::Number(_), Type::F64 | Type::F32) => true,
        (J::String(_), Type::String) => true,
        // String enums read any string (unknown values are kept).
        (J::String(_), Type::Named(_)) => false,
        _ => false,
    }
}

fn rust_type(t: &Type, names: &BTreeMap<&str, String>) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::I32 => "i32".into(),
        Type::I64 => "i64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::String => "String".into(),
        Type::DateTime => "::switchboard::chrono::DateTime<::switchboard::chrono::Utc>".into(),
        Type::Date => "::switchboard::chrono::NaiveDate".into(),
        Type::Uuid => "::switchboard::uuid::Uuid".into(),
        Type::Base64 => "::switchboard::api::Base64".into(),
        Type::Binary => "::switchboard::api::Binary".into(),
        Type::Json => "::switchboard::serde_json::Value".into(),
        Type::Array(inner) => format!("Vec<{}>", rust_type(inner, names)),
        Type::Map(inner) => format!("::std::collections::BTreeMap<String, {}>", rust_type(inner, names)),
        Type::Named(n) => names.get(n.as_str()).cloned().unwrap_or_else(|| "::switchboard::serde_json::Value".into()),
    }
}

fn scheme_ident(name: &str) -> String {
    format!("SCHEME_{}", ident::constant(name))
}

fn scheme_expr(s: &crate::ir::model::SecurityScheme) -> String {
    match s.kind.as_str() {
        "bearer" => format!("SecurityScheme::bearer({:?})", s.name),
        "basic" => format!("SecurityScheme::basic({:?})", s.name),
        _ => format!("SecurityScheme::api_key({:?}, {}, {:?})", s.name, location(&s.location), s.param),
    }
}

fn location(l: &str) -> &'static str {
    match l {
        "path" => "Location::Path",
        "header" => "Location::Header",
        "cookie" => "Location::Cookie",
        _ => "Location::Query",
    }
}

fn operation_ident(op: &Operation) -> String {
    ident::constant(&op.id)
}

/// One operation as a chain of the runtime's `const fn` constructors (compact: GitHub's 1,200
/// operations stay a few hundred kilobytes).
fn operation_view(op: &Operation, models: &BTreeMap<&str, &Model>) -> OperationView {
    let params: Vec<String> = op
        .params
        .iter()
        .map(|p| {
            let scalar = |s: &str| match s {
                "integer" => "INTEGER",
                "number" => "NUMBER",
                "boolean" => "BOOLEAN",
                _ => "STRING",
            };
            let shape = match p.shape.split_once(':') {
                Some((_, s)) => format!("ParamShape::Array(Scalar::{})", match s {
                    "integer" => "Integer",
                    "number" => "Number",
                    "boolean" => "Boolean",
                    _ => "String",
                }),
                None if p.shape == "object" => "ParamShape::Object".into(),
                None => format!("ParamShape::{}", scalar(&p.shape)),
            };
            let (ctor, default_style, default_explode, default_required) = match p.location.as_str() {
                "path" => ("path", "simple", false, true),
                "header" => ("header", "simple", false, false),
                "cookie" => ("cookie", "form", true, false),
                _ => ("query", "form", true, false),
            };
            let mut expr = format!("Param::{ctor}({:?}, {shape})", p.name);
            if p.required && !default_required {
                expr.push_str(".required()");
            }
            if p.style != default_style || p.explode != default_explode {
                let style = match p.style.as_str() {
                    "label" => "Label",
                    "matrix" => "Matrix",
                    "form" => "Form",
                    "spaceDelimited" => "SpaceDelimited",
                    "pipeDelimited" => "PipeDelimited",
                    "deepObject" => "DeepObject",
                    _ => "Simple",
                };
                expr.push_str(&format!(".style(Style::{style}, {})", p.explode));
            }
            if p.field != p.name {
                expr.push_str(&format!(".field({:?})", p.field));
            }
            expr
        })
        .collect();
    let expr = format!("Operation::new({:?}, {:?}, {:?})", op.id, op.method, op.path);
    let params = (!params.is_empty()).then(|| format!("&[{}]", params.join(", ")));
    let mut rest = String::new();
    if let Some(b) = &op.body {
        rest.push_str(&format!(
            ".body(RequestBody::new({:?}, {}, &[{}]))",
            b.field,
            b.required,
            b.content.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
        ));
    }
    // The response model, or the earlier operation's it is an alias of.
    let mut response = models.get(op.response.as_str());
    if let Some(ModelKind::Alias(Type::Named(first))) = response.map(|m| &m.kind) {
        response = models.get(first.as_str());
    }
    let responses: Vec<String> = response
        .and_then(|m| match &m.kind {
            ModelKind::Response { variants } => Some(variants),
            _ => None,
        })
        .map(|vs| {
            vs.iter()
                .map(|v| match v.content.as_deref() {
                    Some("application/json") => format!("ResponseSpec::json({:?})", v.status),
                    Some(c) => format!("ResponseSpec::media({:?}, {c:?})", v.status),
                    None => format!("ResponseSpec::empty({:?})", v.status),
                })
                .collect()
        })
        .unwrap_or_default();
    let responses = (!responses.is_empty()).then(|| format!("&[{}]", responses.join(", ")));
    let mut security = String::new();
    if !op.security.is_empty() {
        let alts: Vec<String> = op.security.iter().map(|alt| format!("&[{}]", alt.iter().map(|s| scheme_ident(s)).collect::<Vec<_>>().join(", "))).collect();
        security = format!(".security(&[{}])", alts.join(", "));
    }
    // `.params(..)`, then the body, `.responses(..)` and `.security(..)`: lists several
    // operations share become constants ([`share_lists`]).
    OperationView { ident: operation_ident(op), method: op.method.clone(), path_doc: op.path.replace('`', "'"), expr, params, body: rest, responses, security }
}
