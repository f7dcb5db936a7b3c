//! Schema-described types and operations (OpenAPI input): plain data, names as the spec spells
//! them (inline schemas get names composed from where they appear, see `lower::openapi`).
//!
//! A protobuf package carries messages (rendered by prost-build); an OpenAPI document lowers to a
//! [`Models`] set: named types plus, per operation, a request struct and a response enum that the
//! service trait's methods take and return.

/// The types and operation tables of one OpenAPI document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Models {
    /// Named types in a deterministic order (components first, in document order, then inline
    /// schemas in the order they were met).
    pub types: Vec<Model>,
    /// Operations in document order (paths, then methods in the order get, put, post, delete,
    /// options, head, patch, trace).
    pub operations: Vec<Operation>,
    /// Security schemes (`components.securitySchemes`) the operations use, by name.
    pub security_schemes: Vec<SecurityScheme>,
    /// The bundled document (external references pulled in), as compact JSON: what the server
    /// serves at `/openapi.json` and validates against.
    pub document: String,
    /// Whether a schema bundle of `document` is written beside the code
    /// (`<module>.schemas.json`, made by `switchboard::api::__schema_bundle`: every parameter
    /// and request body schema transformed and checked, each definition they reach once, so the
    /// server compiles them without parsing the document). Set after lowering when codegen has
    /// the server's validator (feature `check-schemas`), which makes the bundle while the code
    /// is rendered; without one the server cuts the schemas out of the document at start-up.
    pub bundle: bool,
    /// The document's title (`info.title`), for docs.
    pub title: String,
}

/// One named type.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Name (`Pet`, `simple-user`, or a composed one such as `getPet.response.200`).
    pub name: String,
    /// JSON pointer of the schema in the document.
    pub pointer: String,
    /// Documentation lines (`title` / `description`).
    pub docs: Vec<String>,
    /// Whether the schema is marked deprecated.
    pub deprecated: bool,
    /// What it is.
    pub kind: ModelKind,
}

/// The shape of a named type.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// An object with known properties.
    Struct {
        /// Properties in document order.
        fields: Vec<Field>,
        /// Type of additional properties, when the schema declares a schema for them.
        additional: Option<Type>,
    },
    /// A string enum; unknown values are kept (a catch-all variant).
    StringEnum {
        /// Values in document order.
        values: Vec<String>,
    },
    /// An integer enum (a transparent integer with named constants).
    IntEnum {
        /// Values in document order.
        values: Vec<i64>,
    },
    /// `oneOf` / `anyOf`: one of several types.
    OneOf {
        /// Alternatives: a name for the variant and its type.
        variants: Vec<(String, Type)>,
        /// The discriminating property and tag → variant index, when the schema declares one.
        discriminator: Option<Discriminator>,
        /// Per variant: whether it contains this type directly (needs a `Box`).
        boxed: Vec<bool>,
    },
    /// Another name for a type (a named schema that is an array, a map, a scalar…).
    Alias(Type),
    /// An operation's request: one field per parameter, and the body.
    Request {
        /// Parameters then the body (the body's wire name is the body key of the operation).
        fields: Vec<Field>,
    },
    /// An operation's responses: one variant per documented status.
    Response {
        /// Variants in document order.
        variants: Vec<ResponseVariant>,
    },
}

/// A discriminator of a `oneOf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discriminator {
    /// The property carrying the tag.
    pub property: String,
    /// Tag value → index of the variant.
    pub mapping: Vec<(String, usize)>,
}

/// One property (or parameter, or body) of a struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Wire name.
    pub name: String,
    /// Type (without the optionality below).
    pub ty: Type,
    /// Whether the property must be present.
    pub required: bool,
    /// Whether `null` is allowed.
    pub nullable: bool,
    /// The schema's `default`, as JSON.
    pub default: Option<serde_json::Value>,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// Whether it only appears in responses.
    pub read_only: bool,
    /// Whether it only appears in requests.
    pub write_only: bool,
    /// Whether it is deprecated.
    pub deprecated: bool,
    /// Whether the type refers back to the struct that holds it (needs a `Box`).
    pub boxed: bool,
}

/// A response variant.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseVariant {
    /// `200`, `4XX`, `default`.
    pub status: String,
    /// Body type, `None` without content.
    pub body: Option<Type>,
    /// Media type of the body.
    pub content: Option<String>,
    /// Documentation lines (the response's description).
    pub docs: Vec<String>,
}

/// A value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `boolean`.
    Bool,
    /// `integer` / `int32`.
    I32,
    /// `integer` / `int64` (and no format).
    I64,
    /// `number` / `float`.
    F32,
    /// `number` / `double` (and no format).
    F64,
    /// `string`.
    String,
    /// `string` / `date-time`.
    DateTime,
    /// `string` / `date`.
    Date,
    /// `string` / `uuid`.
    Uuid,
    /// `string` / `byte` (base64 in JSON).
    Base64,
    /// `string` / `binary` (raw bytes).
    Binary,
    /// Any JSON value (the fallback).
    Json,
    /// `array`.
    Array(Box<Type>),
    /// An object used as a map (`additionalProperties` only).
    Map(Box<Type>),
    /// A named type ([`Model::name`]).
    Named(String),
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `operationId`, or one composed from method and path.
    pub id: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Path template.
    pub path: String,
    /// JSON pointer of the operation object.
    pub pointer: String,
    /// Summary and description lines.
    pub docs: Vec<String>,
    /// Whether it is deprecated.
    pub deprecated: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Parameters.
    pub params: Vec<Param>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Name of the request model.
    pub request: String,
    /// Name of the response model.
    pub response: String,
    /// Security alternatives: each a list of scheme names that must all hold. Empty: none.
    pub security: Vec<Vec<String>>,
    /// `x-switchboard-event: true`: the operation can also be published as an event on queues.
    pub event: bool,
    /// `x-switchboard-key`: the property of the request body whose value is the partition key of
    /// the operation's events (checked: the body is an object with that scalar property).
    pub key: Option<String>,
}

/// One parameter's wire description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Wire name.
    pub name: String,
    /// Key of the field in the request (unique in the operation).
    pub field: String,
    /// `path`, `query`, `header`, `cookie`.
    pub location: String,
    /// `simple`, `form`, `label`, `matrix`, `spaceDelimited`, `pipeDelimited`, `deepObject`.
    pub style: String,
    /// `explode`.
    pub explode: bool,
    /// Whether it must be present.
    pub required: bool,
    /// `string`, `integer`, `number`, `boolean` for scalars; `array:<scalar>`; `object`.
    pub shape: String,
}

/// A request body's wire description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Key of the body in the request.
    pub field: String,
    /// Whether it must be present.
    pub required: bool,
    /// Media types, preferred first.
    pub content: Vec<String>,
}

/// One security scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityScheme {
    /// Name in the document.
    pub name: String,
    /// `bearer`, `basic`, or `apiKey`.
    pub kind: String,
    /// For `apiKey`: `header`, `query` or `cookie`.
    pub location: String,
    /// For `apiKey`: the header, query key or cookie name.
    pub param: String,
}
