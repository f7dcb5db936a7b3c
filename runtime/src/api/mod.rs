//! OpenAPI operations: the static operation table generated code points trait methods at, the
//! value types generated models use (`Base64`, `Binary`), and (feature `rest`) the server and
//! client glue that reads the table.
//!
//! ```text
//! request struct ──serde──▶ JSON object {param field: value, body field: body}
//!        ▲                                   │  params.rs places each entry by the Operation table
//!        │ server: decode + validate          ▼  (path / query / header / cookie, style, explode)
//!   HTTP request  ◀──────── client ───────  HTTP request
//! response enum  ──variant index──▶ ResponseSpec (status code, media type) ──▶ HTTP response
//! ```

mod operation;
mod types;

pub use operation::{
    Location, Operation, Param, ParamShape, RequestBody, ResponseSpec, Scalar, SchemeKind, SecurityScheme, Style,
};
pub use types::{Base64, Binary};
