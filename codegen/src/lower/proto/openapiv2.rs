//! grpc-gateway's `grpc.gateway.protoc_gen_openapiv2.options` annotations (users import
//! `protoc-gen-openapiv2/options/annotations.proto`): the parts that describe the API, read as
//! extensions by package, extension number and field numbers, so any wire-compatible declaration
//! of the options works.

use prost_reflect::{DescriptorPool, DynamicMessage, ExtensionDescriptor, Value};

use crate::ir::{ApiDocs, OpenApiV2};

/// The options' package.
const PACKAGE: &str = "grpc.gateway.protoc_gen_openapiv2.options";
/// The number grpc-gateway's extensions have on every options message.
const NUMBER: u32 = 1042;

// Field numbers, as in grpc-gateway's `openapiv2.proto`.
/// `Swagger.info`.
const SWAGGER_INFO: u32 = 2;
/// `Info.title`, `Info.description`, `Info.version`.
const INFO_TITLE: u32 = 1;
const INFO_DESCRIPTION: u32 = 2;
const INFO_VERSION: u32 = 6;
/// `Operation.tags`, `.summary`, `.description`, `.operation_id`, `.deprecated`.
const OPERATION_TAGS: u32 = 1;
const OPERATION_SUMMARY: u32 = 2;
const OPERATION_DESCRIPTION: u32 = 3;
const OPERATION_ID: u32 = 5;
const OPERATION_DEPRECATED: u32 = 11;
/// `Tag.name`, `Tag.description`.
const TAG_NAME: u32 = 1;
const TAG_DESCRIPTION: u32 = 2;
/// `Schema.json_schema`, `Schema.example`.
const SCHEMA_JSON_SCHEMA: u32 = 1;
const SCHEMA_EXAMPLE: u32 = 6;
/// `JSONSchema.title`, `.description`, `.example`.
const JSON_SCHEMA_TITLE: u32 = 5;
const JSON_SCHEMA_DESCRIPTION: u32 = 6;
const JSON_SCHEMA_EXAMPLE: u32 = 9;

/// The extension `name` of the options package on `extendee`, if the pool declares it with
/// grpc-gateway's number.
fn extension(pool: &DescriptorPool, name: &str, extendee: &str) -> Option<ExtensionDescriptor> {
    pool.get_extension_by_name(&format!("{PACKAGE}.{name}"))
        .filter(|e| e.number() == NUMBER && e.containing_message().full_name() == extendee)
}

/// The annotation's message on `options`, if set.
fn annotation(options: &DynamicMessage, ext: Option<&ExtensionDescriptor>) -> Option<DynamicMessage> {
    let ext = ext.filter(|e| options.has_extension(e))?;
    match options.get_extension(ext).as_ref() {
        Value::Message(m) => Some(m.clone()),
        _ => None,
    }
}

fn string(m: &DynamicMessage, number: u32) -> String {
    match m.get_field_by_number(number).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn strings(m: &DynamicMessage, number: u32) -> Vec<String> {
    match m.get_field_by_number(number).as_deref() {
        Some(Value::List(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn message(m: &DynamicMessage, number: u32) -> Option<DynamicMessage> {
    match m.get_field_by_number(number).as_deref() {
        Some(Value::Message(inner)) => Some(inner.clone()),
        _ => None,
    }
}

/// Title, description and example of a `JSONSchema`.
fn json_schema(m: &DynamicMessage) -> ApiDocs {
    ApiDocs {
        title: string(m, JSON_SCHEMA_TITLE),
        description: string(m, JSON_SCHEMA_DESCRIPTION),
        example: string(m, JSON_SCHEMA_EXAMPLE),
        ..ApiDocs::default()
    }
}

/// Every annotation of the pool's files, services' methods, messages and fields.
pub(super) fn read(pool: &DescriptorPool) -> OpenApiV2 {
    let swagger = extension(pool, "openapiv2_swagger", "google.protobuf.FileOptions");
    let operation = extension(pool, "openapiv2_operation", "google.protobuf.MethodOptions");
    let tag = extension(pool, "openapiv2_tag", "google.protobuf.ServiceOptions");
    let schema = extension(pool, "openapiv2_schema", "google.protobuf.MessageOptions");
    let field = extension(pool, "openapiv2_field", "google.protobuf.FieldOptions");
    let mut out = OpenApiV2::default();
    if swagger.is_none() && operation.is_none() && tag.is_none() && schema.is_none() && field.is_none() {
        return out;
    }
    for file in pool.files() {
        if let Some(info) = annotation(&file.options(), swagger.as_ref()).and_then(|s| message(&s, SWAGGER_INFO)) {
            let docs = ApiDocs {
                title: string(&info, INFO_TITLE),
                description: string(&info, INFO_DESCRIPTION),
                version: string(&info, INFO_VERSION),
                ..ApiDocs::default()
            };
            out.files.insert(file.name().to_owned(), docs);
        }
    }
    for service in pool.services() {
        if let Some(t) = annotation(&service.options(), tag.as_ref()) {
            let docs =
                ApiDocs { title: string(&t, TAG_NAME), description: string(&t, TAG_DESCRIPTION), ..ApiDocs::default() };
            out.services.insert(service.full_name().to_owned(), docs);
        }
        for method in service.methods() {
            if let Some(op) = annotation(&method.options(), operation.as_ref()) {
                let docs = ApiDocs {
                    tags: strings(&op, OPERATION_TAGS),
                    summary: string(&op, OPERATION_SUMMARY),
                    description: string(&op, OPERATION_DESCRIPTION),
                    operation_id: string(&op, OPERATION_ID),
                    deprecated: matches!(op.get_field_by_number(OPERATION_DEPRECATED).as_deref(), Some(Value::Bool(true))),
                    ..ApiDocs::default()
                };
                out.methods.insert(method.full_name().to_owned(), docs);
            }
        }
    }
    for m in pool.all_messages() {
        if let Some(s) = annotation(&m.options(), schema.as_ref()) {
            let mut docs = message(&s, SCHEMA_JSON_SCHEMA).map(|j| json_schema(&j)).unwrap_or_default();
            let example = string(&s, SCHEMA_EXAMPLE);
            if !example.is_empty() {
                docs.example = example;
            }
            out.messages.insert(m.full_name().to_owned(), docs);
        }
        for f in m.fields() {
            if let Some(j) = annotation(&f.options(), field.as_ref()) {
                out.fields.insert(format!("{}.{}", m.full_name(), f.name()), json_schema(&j));
            }
        }
    }
    out
}
