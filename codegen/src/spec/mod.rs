//! Spec readers: files on disk → a parsed, checked spec model (here: protobuf descriptors).

pub mod proto;
pub mod openapi;
