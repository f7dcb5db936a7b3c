//! `x-switchboard-key` on an operation: the property of the request body whose value is the
//! partition key of the operation's events (`x-switchboard-event: true`). It must name a scalar
//! property (string, integer, boolean, or an enum of those) of an object body; errors give the
//! extension's JSON pointer.

use serde_json::Value;

use super::{escape, follow_refs_at};
use crate::error::Error;
use crate::ir::model::{Model, ModelKind, Operation, Type};

/// The extension naming an operation's key property.
pub const KEY: &str = "x-switchboard-key";

/// Reads the extension of every operation (checked against the lowered `types`) into
/// [`Operation::key`]. `file` names the document in errors.
pub fn lower(doc: &Value, operations: &mut [Operation], types: &[Model], file: &str) -> Result<(), Error> {
    for op in operations.iter_mut() {
        let (item_pointer, method) = op.pointer.rsplit_once('/').unwrap_or((&op.pointer, ""));
        let item = doc.pointer(item_pointer).and_then(|item| follow_refs_at(doc, item, item_pointer));
        let Some((item, item_at)) = item else { continue };
        let Some(value) = item.get(method).and_then(|o| o.get(KEY)) else { continue };
        let at = format!("{item_at}/{method}/{KEY}");
        let error = |message: String| Error::SpecFile { file: file.to_owned(), message: format!("{at}: {message}") };
        let Value::String(name) = value else {
            return Err(error(format!("expected the name of a property of the request body, found {value}")));
        };
        if !op.event {
            return Err(error("only events have a partition key: add `x-switchboard-event: true` to the operation".into()));
        }
        let body = body_struct(op, types).map_err(error)?;
        let Some(field) = body.1.iter().find(|f| f.name == *name) else {
            let names: Vec<String> = body.1.iter().map(|f| format!("`{}`", f.name)).collect();
            return Err(error(format!(
                "{name:?} is not a property of the request body ({}/properties/{} does not exist; its properties: {})",
                body.0,
                escape(name),
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            )));
        };
        if !is_scalar(&field.ty, types) {
            return Err(error(format!(
                "property {name:?} of the request body is not a string, integer or boolean: a partition key is one of those"
            )));
        }
        op.key = Some(name.clone());
    }
    Ok(())
}

/// The JSON pointer and properties of the operation's request body, when it is an object.
fn body_struct<'t>(op: &Operation, types: &'t [Model]) -> Result<(&'t str, &'t [crate::ir::model::Field]), String> {
    let Some(body) = &op.body else { return Err("the operation has no request body to take the key from".into()) };
    let request = types.iter().find(|t| t.name == op.request);
    let Some(ModelKind::Request { fields }) = request.map(|r| &r.kind) else {
        return Err("the operation's request was not generated".into());
    };
    let field = fields.iter().find(|f| f.name == body.field);
    let named = match field.map(|f| &f.ty) {
        Some(Type::Named(name)) => types.iter().find(|t| t.name == *name),
        _ => None,
    };
    match named {
        Some(Model { kind: ModelKind::Struct { fields, .. }, pointer, .. }) => Ok((pointer, fields)),
        _ => Err("the request body is not an object with properties".into()),
    }
}

/// Whether values of `ty` have a key text: strings, integers, booleans and enums of them.
fn is_scalar(ty: &Type, types: &[Model]) -> bool {
    match ty {
        Type::Bool | Type::I32 | Type::I64 | Type::String | Type::Uuid | Type::Date | Type::DateTime => true,
        Type::Named(name) => types.iter().find(|t| t.name == *name).is_some_and(|t| match &t.kind {
            ModelKind::StringEnum { .. } | ModelKind::IntEnum { .. } => true,
            ModelKind::Alias(inner) => !matches!(inner, Type::Named(_)) && is_scalar(inner, types),
            _ => false,
        }),
        _ => false,
    }
}
