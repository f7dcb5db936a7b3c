//! # switchboard-codegen — specs in, one Rust service trait per service out
//!
//! The one engine behind the build.rs API ([`Config`]), the `switchboard` CLI and (through the
//! `#[switchboard::service]` macro it targets) hand-written services. Data flows one way through
//! modules named for their stage; no stage imports a later one:
//!
//! ```text
//! spec/    .proto files ──protox──▶ descriptor pool (checked; errors as file:line:col); the
//!          well-known types and switchboard/options.proto (`(switchboard.key)`) built in
//! lower/   descriptors ──▶ ir::Api (plain data: packages, services, methods, bindings)
//! ident    spec names ──▶ Rust names and paths (the only naming rules)
//! render/  ir ──askama templates/──▶ `#[switchboard::service]` traits; prost-build ──▶ messages
//!          ir ──render/openapi──▶ OpenAPI 3.1 documents (serde_json values)
//! emit     pieces ──syn + prettyplease──▶ files with @generated headers, written if changed
//! ```
//!
//! Generated code depends only on the `switchboard` crate.
#![deny(missing_docs)]

mod config;
mod emit;
mod error;
pub mod ident;
pub mod ir;
pub mod lower;
mod render;
pub mod spec;

pub use config::Config;
pub use render::openapi;
pub use emit::{write, GeneratedFile};
pub use error::{Error, Location};
