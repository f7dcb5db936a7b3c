//! Lowering: spec models → [`crate::ir`]. Each spec format has its own module; they all produce
//! the same IR, and nothing after this stage knows which format a service came from.

pub mod proto;
pub mod openapi;
pub mod policy;
