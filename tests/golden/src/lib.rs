//! The golden outputs of tests/fixtures, compiled as a user's crate would compile them: with
//! `switchboard` as the only dependency. `codegen/tests/golden.rs` checks they are what the
//! generator produces today; this crate checks they are valid Rust that works.

#[path = "../../fixtures/interop/expected/mod.rs"]
pub mod interop;

#[path = "../../fixtures/gateway/expected/mod.rs"]
pub mod gateway;

#[path = "../../fixtures/edge/expected/mod.rs"]
pub mod edge;

#[path = "../../fixtures/library/expected/mod.rs"]
pub mod library;

#[path = "../../fixtures/openapi/expected/mod.rs"]
pub mod openapi;

#[path = "../../fixtures/notes/expected/mod.rs"]
pub mod notes;

#[path = "../../fixtures/degrade/expected/mod.rs"]
pub mod degrade;

#[path = "../../fixtures/policy/expected/mod.rs"]
pub mod policy;

#[path = "../../fixtures/keys/expected/mod.rs"]
pub mod keys;
