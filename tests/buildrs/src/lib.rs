//! Generated in build.rs; included the documented way.

/// `buildrs.v1` and everything it imports.
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
