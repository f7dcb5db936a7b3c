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
struct ModelsView {
    /// Whether this piece carries the `operations` module (the last piece does).
    with_operations: bool,
    items: Vec<Item>,
    schemes: Vec<SchemeView>,
    operations: Vec<OperationView>,
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
    expr: String,
}

#[derive(Template)]
#[template(path = "api_service.rs.txt", escape = "none")]
struct ServiceView {
    openapi_const: String,
    document_file: String,
    /// The schema bundle's constant and file, when there is one.
    schemas: Option<(String, String)>,
    docs: Vec<String>,
    package: String,
    name: String,
    trait_ident: String,
    methods: Vec<MethodView>,
}

struct MethodView {
    docs: Vec<String>,
    deprecated: bool,
    operation: String,
    /// `, event` when the operation is marked `x-switchboard-event: true`.
    event: &'static str,
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

/// Renders the types, operation table and service trait of an OpenAPI package, in consecutive
/// pieces of whole items (so that `emit` can parse and format them in parallel; the
/// concatenation is the module): the types in `pieces` pieces, then the operation table, then
/// the service trait.
pub fn render(package: &Package, models: &Models, pieces: usize) -> Result<Vec<String>, Error> {
    let names = idents(models);
    let ty = |t: &Type| rust_type(t, &names);
    let mut items = Vec::new();
    for m in &models.types {
        items.push(item(m, &names, &ty));
    }
    let schemes: Vec<SchemeView> = models
        .security_schemes
        .iter()
        .map(|s| SchemeView { ident: scheme_ident(&s.name), expr: scheme_expr(s) })
        .collect();
    let responses: BTreeMap<&str, &Model> = models.types.iter().map(|m| (m.name.as_str(), m)).collect();
    let operations = models.operations.iter().map(|op| operation_view(op, &responses)).collect();
    let render_err = |e: askama::Error| Error::Render { template: "models.rs.txt", subject: package.name.clone(), message: e.to_string() };
    let per_piece = items.len().div_ceil(pieces.max(1)).max(1);
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(per_piece.min(rest.len()));
        let view = ModelsView { with_operations: false, items: rest, schemes: Vec::new(), operations: Vec::new() };
        out.push(view.render().map_err(render_err)?);
        rest = tail;
    }
    let view = ModelsView { with_operations: true, items: Vec::new(), schemes, operations };
    out.push(view.render().map_err(render_err)?);
    // Parsed once, as a piece of the file, in `emit` (a failure there names this template too).
    let mut text = String::new();
    for service in &package.services {
        let trait_ident = {
            let base = ident::type_name(&service.name);
            let mut t = base.clone();
            let taken: Vec<String> = names.values().cloned().collect();
            while switchboard_names::trait_clashes(&t, &taken) {
                t.push_str("Service");
            }
            t
        };
        let mut used = std::collections::HashSet::new();
        let methods = service
            .methods
            .iter()
            .filter_map(|m| {
                let op = &models.operations[m.bindings.operation?];
                Some(MethodView {
                    docs: doc_lines(&m.docs),
                    deprecated: m.deprecated,
                    operation: operation_ident(op),
                    event: if m.bindings.event { ", event" } else { "" },
                    ident: method_ident(&m.name, &mut used),
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
            docs: doc_lines(&service.docs),
            package: format!("{:?}", service.package),
            name: format!("{:?}", trait_ident),
            trait_ident,
            methods,
        };
        let service_text =
            view.render().map_err(|e| Error::Render { template: "api_service.rs.txt", subject: service.name.clone(), message: e.to_string() })?;
        text.push('\n');
        text.push_str(&service_text);
    }
    out.push(text);
    Ok(out)
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
                    ty: format!("::std::collections::BTreeMap<::std::string::String, {}>", ty(a)),
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

fn field_views(fields: &[Field], ty: &dyn Fn(&Type) -> String) -> Vec<FieldView> {
    let mut used = BTreeSet::new();
    fields
        .iter()
        .map(|f| {
            let ident = unique(ident::field(&f.name), &mut used);
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
                    attrs.push("default, skip_serializing_if = \"::std::option::Option::is_none\"".into());
                } else {
                    attrs.push("default".into());
                }
                format!("::std::option::Option<{inner}>")
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
        Type::String => "::std::string::String".into(),
        Type::DateTime => "::switchboard::chrono::DateTime<::switchboard::chrono::Utc>".into(),
        Type::Date => "::switchboard::chrono::NaiveDate".into(),
        Type::Uuid => "::switchboard::uuid::Uuid".into(),
        Type::Base64 => "::switchboard::api::Base64".into(),
        Type::Binary => "::switchboard::api::Binary".into(),
        Type::Json => "::switchboard::serde_json::Value".into(),
        Type::Array(inner) => format!("::std::vec::Vec<{}>", rust_type(inner, names)),
        Type::Map(inner) => format!("::std::collections::BTreeMap<::std::string::String, {}>", rust_type(inner, names)),
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
    let mut expr = format!("Operation::new({:?}, {:?}, {:?})", op.id, op.method, op.path);
    if !params.is_empty() {
        expr.push_str(&format!(".params(&[{}])", params.join(", ")));
    }
    if let Some(b) = &op.body {
        expr.push_str(&format!(
            ".body(RequestBody::new({:?}, {}, &[{}]))",
            b.field,
            b.required,
            b.content.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
        ));
    }
    let responses: Vec<String> = models
        .get(op.response.as_str())
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
    if !responses.is_empty() {
        expr.push_str(&format!(".responses(&[{}])", responses.join(", ")));
    }
    if !op.security.is_empty() {
        let alts: Vec<String> = op.security.iter().map(|alt| format!("&[{}]", alt.iter().map(|s| scheme_ident(s)).collect::<Vec<_>>().join(", "))).collect();
        expr.push_str(&format!(".security(&[{}])", alts.join(", ")));
    }
    OperationView { ident: operation_ident(op), method: op.method.clone(), path_doc: op.path.replace('`', "'"), expr }
}
