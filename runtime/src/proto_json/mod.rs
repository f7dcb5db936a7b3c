//! proto3 JSON for generated protobuf messages: one descriptor-driven codec for every message
//! instead of a serde visitor per message.
//!
//! Data flow:
//!
//! ```text
//! codegen ─▶ <package>.descriptors.bin (the package's FileDescriptorSet: types only, no
//!            comments, options or services) beside <package>.rs, which registers it
//!            (`proto_json!` → an `inventory` entry) and lists its messages
//! first JSON use ─▶ one DescriptorPool: the well-known types + every registered set
//! Serialize:   message ─prost encode─▶ bytes ─write.rs (records + descriptor)─▶ proto3 JSON
//! Deserialize: proto3 JSON ─read.rs (descriptor)─▶ bytes ─prost decode─▶ message
//! ```
//!
//! prost-reflect implements the whole mapping (lowerCamelCase names with either spelling
//! accepted, 64-bit integers as strings, enums by name, bytes as base64, the well-known types'
//! special forms, `Any` with the embedded message's fields); generated code is one line per
//! message, which is what keeps large APIs (googleapis) small and quick to compile. The price
//! is a protobuf encode before writing JSON and a decode after reading it: JSON is written from
//! the protobuf records (`write.rs`) and read into them (`read.rs`), with prost-reflect's
//! `DynamicMessage` (the reference both follow) handling the well-known types.

use std::collections::HashSet;
use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, MessageDescriptor, SerializeOptions};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use serde::de::DeserializeSeed as _;
use serde::{de, ser, Serialize as _};

mod read;
mod write;

/// One package's descriptors (an encoded `FileDescriptorSet`), registered by generated code.
pub struct Descriptors(pub &'static [u8]);

inventory::collect!(Descriptors);

/// Registers a package's descriptors and implements `Serialize` and `Deserialize` (proto3 JSON)
/// for its messages. Generated code invokes it once per package:
///
/// ```ignore
/// ::switchboard::__private::proto_json! {
///     include_bytes!("example.library.v1.descriptors.bin");
///     Book = "example.library.v1.Book",
///     book::Chapter = "example.library.v1.Book.Chapter",
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __proto_json {
    ($descriptors:expr; $($ty:ty = $name:literal),* $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::__private::proto_json::Descriptors($descriptors)
        }
        $(
            const _: () = {
                static DESCRIPTOR: $crate::__private::proto_json::Descriptor = $crate::__private::proto_json::Descriptor::new($name);
                impl $crate::__private::serde::Serialize for $ty {
                    fn serialize<S: $crate::__private::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                        $crate::__private::proto_json::serialize(self, &DESCRIPTOR, s)
                    }
                }
                impl<'de> $crate::__private::serde::Deserialize<'de> for $ty {
                    fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                        $crate::__private::proto_json::deserialize(&DESCRIPTOR, d)
                    }
                }
            };
        )*
    };
}

/// The pool every message's descriptor is looked up in, and what went wrong building it.
struct Pool {
    pool: DescriptorPool,
    errors: Vec<String>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(build)
}

/// The well-known types plus every registered file (the first of each name: two crates
/// generated from the same file register it twice). If the whole lot does not build (two
/// different files of one name, say), files are added one at a time, dependencies first, so
/// that one bad file costs only the messages that need it.
fn build() -> Pool {
    let mut errors = Vec::new();
    let mut pool = DescriptorPool::global();
    if let Err(e) = pool.add_file_descriptor_protos(registered(&mut errors)) {
        errors.push(e.to_string());
        pool = DescriptorPool::global();
        let files = registered(&mut Vec::new());
        add_each(&mut pool, files, &mut errors);
    }
    Pool { pool, errors }
}

/// Every registered file, the first of each name; sets that do not decode go to `errors`.
fn registered(errors: &mut Vec<String>) -> Vec<FileDescriptorProto> {
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for set in inventory::iter::<Descriptors> {
        match FileDescriptorSet::decode(set.0) {
            Ok(set) => files.extend(set.file.into_iter().filter(|f| seen.insert(f.name().to_owned()))),
            Err(e) => errors.push(format!("a registered descriptor set does not decode: {e}")),
        }
    }
    files
}

fn add_each(pool: &mut DescriptorPool, mut files: Vec<FileDescriptorProto>, errors: &mut Vec<String>) {
    loop {
        let before = files.len();
        let mut left = Vec::new();
        for file in files {
            let ready = file.dependency.iter().all(|d| pool.get_file_by_name(d).is_some());
            if !ready {
                left.push(file);
            } else {
                let name = file.name().to_owned();
                if let Err(e) = pool.add_file_descriptor_proto(file) {
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
        files = left;
        if files.is_empty() || files.len() == before {
            break;
        }
    }
    for file in files {
        errors.push(format!("{}: a file it imports is not registered", file.name()));
    }
}

/// A message's descriptor, looked up in the pool on first use (one per generated message).
pub struct Descriptor {
    name: &'static str,
    found: OnceLock<Result<MessageDescriptor, String>>,
}

impl Descriptor {
    /// The descriptor of the message named `name` (full name, no leading dot).
    pub const fn new(name: &'static str) -> Self {
        Descriptor { name, found: OnceLock::new() }
    }

    fn get(&self) -> Result<MessageDescriptor, &str> {
        match self.found.get_or_init(|| lookup(self.name)) {
            Ok(descriptor) => Ok(descriptor.clone()),
            Err(e) => Err(e),
        }
    }
}

fn lookup(name: &str) -> Result<MessageDescriptor, String> {
    let pool = pool();
    pool.pool.get_message_by_name(name).ok_or_else(|| {
        let mut message = format!("no descriptor for message `{name}` is registered");
        if !pool.errors.is_empty() {
            message.push_str(&format!(" (building the descriptor pool: {})", pool.errors.join("; ")));
        }
        message
    })
}

const SERIALIZE: SerializeOptions = SerializeOptions::new();
const DESERIALIZE: DeserializeOptions = DeserializeOptions::new();

/// Writes `message` (the generated message `descriptor` describes) as proto3 JSON.
pub fn serialize<T: prost::Message, S: serde::Serializer>(message: &T, descriptor: &Descriptor, serializer: S) -> Result<S::Ok, S::Error> {
    let descriptor = descriptor.get().map_err(<S::Error as ser::Error>::custom)?;
    let bytes = message.encode_to_vec();
    write::Wire { descriptor: &descriptor, bytes: &bytes }.serialize(serializer)
}

/// Reads the generated message `descriptor` describes from proto3 JSON.
pub fn deserialize<'de, T: prost::Message + Default, D: serde::Deserializer<'de>>(descriptor: &Descriptor, deserializer: D) -> Result<T, D::Error> {
    let descriptor = descriptor.get().map_err(<D::Error as de::Error>::custom)?;
    let mut bytes = Vec::new();
    read::Message { descriptor: &descriptor, out: &mut bytes }.deserialize(deserializer)?;
    T::decode(bytes.as_slice()).map_err(<D::Error as de::Error>::custom)
}
