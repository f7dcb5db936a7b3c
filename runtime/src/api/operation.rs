//! Static descriptions of OpenAPI operations: the table the REST server and client read to place
//! each field of a request struct in the path, query, headers, cookies or body, and to map the
//! variants of a response enum to status codes.
//!
//! Generated code emits one `const` [`Operation`] per operation and points the trait method at it
//! with `#[rpc(operation = PATH_TO_CONST)]`; a hand-written trait can do the same.
//!
//! The request type of an operation is a struct whose serde form is a JSON object: one entry per
//! parameter, keyed by [`Param::field`], and the body under [`RequestBody::field`]. The response
//! type is an enum whose variants, in declaration order, are the entries of
//! [`Operation::responses`]: a unit variant when the response has no content, a newtype variant
//! holding the body, and for `default` / `4XX`-style entries a tuple variant whose first element
//! is the status code (`Default(u16, Error)`, or `Default(u16)` without content).

/// One OpenAPI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// `operationId` (or one derived from method and path when the document has none).
    pub id: &'static str,
    /// HTTP method in upper case, e.g. `GET`.
    pub method: &'static str,
    /// Path template as the document writes it, e.g. `/pets/{petId}` or
    /// `/repos/{owner}/{repo}/compare/{base}...{head}`; relative to the server's base path.
    pub path: &'static str,
    /// Parameters (path-item and operation level merged), in document order.
    pub params: &'static [Param],
    /// The request body, if the operation takes one.
    pub body: Option<RequestBody>,
    /// Responses, in the order of the response enum's variants.
    pub responses: &'static [ResponseSpec],
    /// Security requirements: alternatives (any one suffices), each a list of schemes that must
    /// all be satisfied. Empty: no authentication.
    pub security: &'static [&'static [SecurityScheme]],
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// A path segment (or part of one).
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
    /// A cookie.
    Cookie,
}

/// How a parameter's value is serialized (OpenAPI `style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    /// `simple`: `a,b,c` (path and header default).
    Simple,
    /// `label`: `.a.b.c`.
    Label,
    /// `matrix`: `;x=a,b`.
    Matrix,
    /// `form`: `x=a&x=b` exploded, `x=a,b` not (query and cookie default).
    Form,
    /// `spaceDelimited`: `x=a%20b`.
    SpaceDelimited,
    /// `pipeDelimited`: `x=a|b`.
    PipeDelimited,
    /// `deepObject`: `x[k]=v`.
    DeepObject,
}

/// The JSON type of a scalar value carried as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// A string (also used when the schema says nothing).
    String,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// `true` / `false`.
    Boolean,
}

/// The shape of a parameter's value, enough to turn text into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamShape {
    /// One value.
    Scalar(Scalar),
    /// An array of values.
    Array(Scalar),
    /// An object; its properties are read as strings unless the server's schema says otherwise.
    Object,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Name on the wire (path variable, query key, header name, cookie name).
    pub name: &'static str,
    /// Key of the field in the request struct's serde form (unique within the operation; usually
    /// equal to `name`).
    pub field: &'static str,
    /// Where it travels.
    pub location: Location,
    /// Serialization style.
    pub style: Style,
    /// `explode`.
    pub explode: bool,
    /// Whether the request must carry it (path parameters always must).
    pub required: bool,
    /// Value shape.
    pub shape: ParamShape,
}

/// An operation's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBody {
    /// Key of the body in the request struct's serde form.
    pub field: &'static str,
    /// Whether the request must carry one.
    pub required: bool,
    /// Accepted media types, the client's choice first (e.g. `application/json`,
    /// `application/x-www-form-urlencoded`, `multipart/form-data`, `application/octet-stream`,
    /// `text/plain`).
    pub content: &'static [&'static str],
}

/// One documented response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseSpec {
    /// `"200"`, `"4XX"` or `"default"`.
    pub status: &'static str,
    /// Media type of the body; `None` when the response has no content.
    pub content: Option<&'static str>,
}

impl ResponseSpec {
    /// Whether the variant carries the status code (`default` and `NXX` ranges).
    pub fn carries_status(&self) -> bool {
        self.status.parse::<u16>().is_err()
    }
}

/// How a security scheme carries its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    /// `Authorization: Bearer <token>` (`http` / `bearer`, and `oauth2` / `openIdConnect`).
    Bearer,
    /// `Authorization: Basic <base64(user:password)>`.
    Basic,
    /// An API key in a header, query parameter or cookie named `name`.
    ApiKey {
        /// Where.
        location: Location,
        /// Header, query key or cookie name.
        name: &'static str,
    },
}

/// One security scheme (`components.securitySchemes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityScheme {
    /// The scheme's name in the document.
    pub name: &'static str,
    /// How the credential travels.
    pub kind: SchemeKind,
}

/// Compact constructors for generated operation tables (`const` contexts).
impl Operation {
    /// An operation with no parameters, body, documented responses or security.
    pub const fn new(id: &'static str, method: &'static str, path: &'static str) -> Self {
        Operation { id, method, path, params: &[], body: None, responses: &[], security: &[] }
    }
    /// With these parameters.
    pub const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }
    /// With this body.
    pub const fn body(mut self, body: RequestBody) -> Self {
        self.body = Some(body);
        self
    }
    /// With these responses (in the order of the response enum's variants).
    pub const fn responses(mut self, responses: &'static [ResponseSpec]) -> Self {
        self.responses = responses;
        self
    }
    /// With these security alternatives.
    pub const fn security(mut self, security: &'static [&'static [SecurityScheme]]) -> Self {
        self.security = security;
        self
    }
}

impl ParamShape {
    /// A string.
    pub const STRING: Self = ParamShape::Scalar(Scalar::String);
    /// An integer.
    pub const INTEGER: Self = ParamShape::Scalar(Scalar::Integer);
    /// A number.
    pub const NUMBER: Self = ParamShape::Scalar(Scalar::Number);
    /// A boolean.
    pub const BOOLEAN: Self = ParamShape::Scalar(Scalar::Boolean);
}

impl Param {
    const fn at(name: &'static str, location: Location, style: Style, explode: bool, required: bool, shape: ParamShape) -> Self {
        Param { name, field: name, location, style, explode, required, shape }
    }
    /// A path parameter (`simple`, required).
    pub const fn path(name: &'static str, shape: ParamShape) -> Self {
        Self::at(name, Location::Path, Style::Simple, false, true, shape)
    }
    /// A query parameter (`form`, exploded, optional).
    pub const fn query(name: &'static str, shape: ParamShape) -> Self {
        Self::at(name, Location::Query, Style::Form, true, false, shape)
    }
    /// A header parameter (`simple`, optional).
    pub const fn header(name: &'static str, shape: ParamShape) -> Self {
        Self::at(name, Location::Header, Style::Simple, false, false, shape)
    }
    /// A cookie parameter (`form`, exploded, optional).
    pub const fn cookie(name: &'static str, shape: ParamShape) -> Self {
        Self::at(name, Location::Cookie, Style::Form, true, false, shape)
    }
    /// Required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// With this style and explode.
    pub const fn style(mut self, style: Style, explode: bool) -> Self {
        self.style = style;
        self.explode = explode;
        self
    }
    /// Stored under this key of the request struct (when two parameters share a name).
    pub const fn field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }
}

impl RequestBody {
    /// A body under `field` of the request struct, in these media types.
    pub const fn new(field: &'static str, required: bool, content: &'static [&'static str]) -> Self {
        RequestBody { field, required, content }
    }
}

impl ResponseSpec {
    /// A response with an `application/json` body.
    pub const fn json(status: &'static str) -> Self {
        ResponseSpec { status, content: Some("application/json") }
    }
    /// A response without content.
    pub const fn empty(status: &'static str) -> Self {
        ResponseSpec { status, content: None }
    }
    /// A response with a body of another media type.
    pub const fn media(status: &'static str, content: &'static str) -> Self {
        ResponseSpec { status, content: Some(content) }
    }
}

impl SecurityScheme {
    /// `Authorization: Bearer`.
    pub const fn bearer(name: &'static str) -> Self {
        SecurityScheme { name, kind: SchemeKind::Bearer }
    }
    /// `Authorization: Basic`.
    pub const fn basic(name: &'static str) -> Self {
        SecurityScheme { name, kind: SchemeKind::Basic }
    }
    /// An API key.
    pub const fn api_key(name: &'static str, location: Location, param: &'static str) -> Self {
        SecurityScheme { name, kind: SchemeKind::ApiKey { location, name: param } }
    }
}
