//! Partition keys of events: the field of a request message marked `[(switchboard.key) = true]`
//! (the option `switchboard/options.proto` declares, built into the spec reader). An event
//! method whose request message has one records it in [`Bindings::key`](crate::ir::Bindings).
//!
//! A key field is a top-level, singular string, integer, bool or enum field, outside any oneof
//! (proto3 `optional` is fine), and a message has at most one. One marked on a message that is
//! only reached inside an event's request (a field of a field) would never be read: an error.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::source::SourceInfo;
use super::WELL_KNOWN_PACKAGE;
use crate::error::{Error, Location};
use crate::ir::Api;
use crate::spec::proto::ProtoSpec;

/// The option's full name.
pub const OPTION: &str = "switchboard.key";
/// Its extension number on `google.protobuf.FieldOptions` (in protobuf's range for an
/// organisation's own options, 50000–99999).
pub const EXTENSION_NUMBER: u32 = 58274;

/// `FieldDescriptorProto.options`, for the source path of a field's option.
const FIELD_OPTIONS: i32 = 8;

/// Records the key field of every event method whose request message marks one; errors name the
/// option (or the field) as `file:line:col`.
pub fn attach(api: &mut Api, spec: &ProtoSpec) -> Result<(), Error> {
    let pool = &spec.pool;
    let Some(ext) = pool.get_extension_by_name(OPTION) else { return Ok(()) };
    let error = |field: &FieldDescriptor, message: String| {
        let file = field.parent_file();
        let info = SourceInfo::of(&file);
        let mut option = field.path().to_vec();
        option.extend([FIELD_OPTIONS, EXTENSION_NUMBER as i32]);
        let mut location: Location = info.find(file.name(), &option).unwrap_or_else(|| info.location(file.name(), field.path()));
        location.file = spec.disk_path(Path::new(file.name()));
        Error::Spec { location, message }
    };
    // Every message's key field, checked.
    let mut keys: HashMap<String, FieldDescriptor> = HashMap::new();
    for message in pool.all_messages().filter(|m| m.package_name() != WELL_KNOWN_PACKAGE) {
        for field in message.fields() {
            let options = field.options();
            if !options.has_extension(&ext) || options.get_extension(&ext).as_bool() != Some(true) {
                continue;
            }
            let what = format!("`(switchboard.key)` on `{}`", field.full_name());
            let problem = if field.is_map() {
                Some("a map")
            } else if field.is_list() {
                Some("a repeated field")
            } else if matches!(field.kind(), Kind::Message(_)) {
                Some("a message field (mark a field inside the message that is published instead)")
            } else if matches!(field.kind(), Kind::Bytes | Kind::Float | Kind::Double) {
                Some("a bytes or floating-point field")
            } else if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
                Some("a member of a oneof")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(error(
                    &field,
                    format!("{what}: the partition key is a singular string, integer, bool or enum field; this is {problem}"),
                ));
            }
            if let Some(first) = keys.get(message.full_name()) {
                return Err(error(
                    &field,
                    format!("{what}: a message has one partition key field, and `{}` is marked already", first.name()),
                ));
            }
            keys.insert(message.full_name().to_owned(), field);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    // The request messages of events, and where each event is.
    let mut requests: Vec<(String, String)> = Vec::new();
    for service in api.packages.iter().flat_map(|p| &p.services) {
        for method in service.methods.iter().filter(|m| m.bindings.event) {
            let full = if service.package.is_empty() { service.name.clone() } else { format!("{}.{}", service.package, service.name) };
            requests.push((method.input.full_name(), format!("{full}.{}", method.name)));
        }
    }
    let is_request: HashSet<&str> = requests.iter().map(|(r, _)| r.as_str()).collect();
    for (request, method) in &requests {
        let Some(message) = pool.get_message_by_name(request) else { continue };
        if let Some((nested, field)) = nested_key(&message, &keys, &is_request) {
            return Err(error(
                field,
                format!(
                    "`(switchboard.key)` on `{}`: `{nested}` is inside `{request}`, the request of event `{method}`, whose partition key must be a top-level field of `{request}`: mark one of its fields instead",
                    field.full_name()
                ),
            ));
        }
    }
    for method in api.packages.iter_mut().flat_map(|p| &mut p.services).flat_map(|s| &mut s.methods) {
        if method.bindings.event {
            method.bindings.key = keys.get(&method.input.full_name()).map(|f| f.name().to_owned());
        }
    }
    Ok(())
}

/// A message reached through `message`'s message fields (at any depth) that marks a key field
/// and is not itself an event's request, with that field.
fn nested_key<'k>(
    message: &MessageDescriptor,
    keys: &'k HashMap<String, FieldDescriptor>,
    is_request: &HashSet<&str>,
) -> Option<(String, &'k FieldDescriptor)> {
    let mut seen: HashSet<String> = HashSet::from([message.full_name().to_owned()]);
    let mut queue = vec![message.clone()];
    while let Some(m) = queue.pop() {
        for field in m.fields() {
            let Kind::Message(inner) = field.kind() else { continue };
            if !seen.insert(inner.full_name().to_owned()) {
                continue;
            }
            if let Some(key) = keys.get(inner.full_name()) {
                if !is_request.contains(inner.full_name()) {
                    return Some((inner.full_name().to_owned(), key));
                }
            }
            queue.push(inner);
        }
    }
    None
}
