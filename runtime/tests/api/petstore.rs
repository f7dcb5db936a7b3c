//! A petstore API in exactly the shape `switchboard generate` emits for an OpenAPI document:
//! models, one request struct and one response enum per operation, the operation table, and the
//! trait. Written by hand here so the runtime is tested on its own.

#![allow(dead_code)]

use std::collections::BTreeMap;

use switchboard::api::{
    Binary, Location, Operation, Param, ParamShape, RequestBody, ResponseSpec, Scalar, SchemeKind, SecurityScheme, Style,
};

macro_rules! model {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        #[derive(Debug, Clone, PartialEq, ::switchboard::__private::serde::Serialize, ::switchboard::__private::serde::Deserialize)]
        #[serde(crate = "::switchboard::__private::serde")]
        $(#[$m])*
        pub struct $name { $($body)* }
    };
    ($(#[$m:meta])* pub enum $name:ident { $($body:tt)* }) => {
        #[derive(Debug, Clone, PartialEq, ::switchboard::__private::serde::Serialize, ::switchboard::__private::serde::Deserialize)]
        #[serde(crate = "::switchboard::__private::serde")]
        $(#[$m])*
        pub enum $name { $($body)* }
    };
}

model!(pub struct Pet {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
});

pub type PetList = Vec<Pet>;

model!(pub struct NewPet {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<i64>,
});

model!(pub struct Photo {
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
});

model!(pub struct Comparison {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
});

model!(pub struct Error {
    pub code: i64,
    pub message: String,
});

model!(pub struct UploadPhotoBody {
    pub file: Binary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
});

// Requests.

model!(#[derive(Default)] pub struct ListPetsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
    #[serde(rename = "X-Trace", default, skip_serializing_if = "Option::is_none")]
    pub x_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
});
model!(pub struct CreatePetRequest { pub body: NewPet });
model!(#[derive(Default)] pub struct GetMyPetRequest {});
model!(pub struct GetPetRequest { #[serde(rename = "petId")] pub pet_id: i64 });
model!(pub struct DeletePetRequest { #[serde(rename = "petId")] pub pet_id: i64 });
model!(pub struct UploadPhotoRequest { #[serde(rename = "petId")] pub pet_id: i64, pub body: UploadPhotoBody });
model!(pub struct PutPetDataRequest { #[serde(rename = "petId")] pub pet_id: i64, pub body: Binary });
model!(pub struct GetPetNameRequest { #[serde(rename = "petId")] pub pet_id: i64 });
model!(pub struct SetPetNameRequest { #[serde(rename = "petId")] pub pet_id: i64, pub body: String });
model!(pub struct CompareRequest { pub base: String, pub head: String });
model!(pub struct StylesRequest {
    pub label: Vec<String>,
    pub matrix: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<BTreeMap<String, String>>,
});
model!(pub struct TeapotRequest { pub code: i64 });

// Responses.

model!(pub enum ListPetsResponse { Ok(PetList), Default(u16, Error) });
model!(pub enum CreatePetResponse { Created(Pet), Default(u16, Error) });
model!(pub enum GetMyPetResponse { Ok(Pet) });
model!(pub enum GetPetResponse { Ok(Pet), NotFound(Error), Default(u16, Error) });
model!(pub enum DeletePetResponse { NoContent, ClientError(u16) });
model!(pub enum UploadPhotoResponse { Ok(Photo) });
model!(pub enum PutPetDataResponse { Ok(Binary) });
model!(pub enum GetPetNameResponse { Ok(String) });
model!(pub enum SetPetNameResponse { NoContent });
model!(pub enum CompareResponse { Ok(Comparison) });
model!(pub enum StylesResponse { Ok(::switchboard::serde_json::Value) });
model!(pub enum TeapotResponse { Ok(String), ClientError(u16), Default(u16, Error) });

pub mod operations {
    use super::*;

    pub const SCHEME_API_KEY: SecurityScheme =
        SecurityScheme { name: "api_key", kind: SchemeKind::ApiKey { location: Location::Header, name: "X-API-Key" } };
    pub const SCHEME_KEY_QUERY: SecurityScheme =
        SecurityScheme { name: "keyQuery", kind: SchemeKind::ApiKey { location: Location::Query, name: "api_key" } };
    pub const SCHEME_BEARER_AUTH: SecurityScheme = SecurityScheme { name: "bearerAuth", kind: SchemeKind::Bearer };
    pub const SCHEME_BASIC_AUTH: SecurityScheme = SecurityScheme { name: "basicAuth", kind: SchemeKind::Basic };

    const PET_ID: Param = Param {
        name: "petId",
        field: "petId",
        location: Location::Path,
        style: Style::Simple,
        explode: false,
        required: true,
        shape: ParamShape::Scalar(Scalar::Integer),
    };
    const JSON: Option<&str> = Some("application/json");
    const fn ok(status: &'static str, content: Option<&'static str>) -> ResponseSpec {
        ResponseSpec { status, content }
    }

    pub const LIST_PETS: Operation = Operation {
        id: "listPets",
        method: "GET",
        path: "/pets",
        params: &[
            Param { name: "limit", field: "limit", location: Location::Query, style: Style::Form, explode: true, required: false, shape: ParamShape::Scalar(Scalar::Integer) },
            Param { name: "tags", field: "tags", location: Location::Query, style: Style::Form, explode: true, required: false, shape: ParamShape::Array(Scalar::String) },
            Param { name: "ids", field: "ids", location: Location::Query, style: Style::PipeDelimited, explode: false, required: false, shape: ParamShape::Array(Scalar::Integer) },
            Param { name: "X-Trace", field: "X-Trace", location: Location::Header, style: Style::Simple, explode: false, required: false, shape: ParamShape::Scalar(Scalar::String) },
            Param { name: "session", field: "session", location: Location::Cookie, style: Style::Form, explode: true, required: false, shape: ParamShape::Scalar(Scalar::String) },
        ],
        body: None,
        responses: &[ok("200", JSON), ok("default", JSON)],
        security: &[],
    };
    pub const CREATE_PET: Operation = Operation {
        id: "createPet",
        method: "POST",
        path: "/pets",
        params: &[],
        body: Some(RequestBody { field: "body", required: true, content: &["application/json", "application/x-www-form-urlencoded"] }),
        responses: &[ok("201", JSON), ok("default", JSON)],
        security: &[&[SCHEME_BASIC_AUTH]],
    };
    pub const GET_MY_PET: Operation = Operation {
        id: "getMyPet",
        method: "GET",
        path: "/pets/mine",
        params: &[],
        body: None,
        responses: &[ok("200", JSON)],
        security: &[],
    };
    pub const GET_PET: Operation = Operation {
        id: "getPet",
        method: "GET",
        path: "/pets/{petId}",
        params: &[PET_ID],
        body: None,
        responses: &[ok("200", JSON), ok("404", JSON), ok("default", JSON)],
        security: &[&[SCHEME_API_KEY], &[SCHEME_BEARER_AUTH]],
    };
    pub const DELETE_PET: Operation = Operation {
        id: "deletePet",
        method: "DELETE",
        path: "/pets/{petId}",
        params: &[PET_ID],
        body: None,
        responses: &[ok("204", None), ok("4XX", None)],
        security: &[&[SCHEME_BEARER_AUTH]],
    };
    pub const UPLOAD_PHOTO: Operation = Operation {
        id: "uploadPhoto",
        method: "POST",
        path: "/pets/{petId}/photo",
        params: &[PET_ID],
        body: Some(RequestBody { field: "body", required: true, content: &["multipart/form-data"] }),
        responses: &[ok("200", JSON)],
        security: &[],
    };
    pub const PUT_PET_DATA: Operation = Operation {
        id: "putPetData",
        method: "PUT",
        path: "/pets/{petId}/data",
        params: &[PET_ID],
        body: Some(RequestBody { field: "body", required: true, content: &["application/octet-stream"] }),
        responses: &[ok("200", Some("application/octet-stream"))],
        security: &[],
    };
    pub const GET_PET_NAME: Operation = Operation {
        id: "getPetName",
        method: "GET",
        path: "/pets/{petId}/name",
        params: &[PET_ID],
        body: None,
        responses: &[ok("200", Some("text/plain"))],
        security: &[],
    };
    pub const SET_PET_NAME: Operation = Operation {
        id: "setPetName",
        method: "PUT",
        path: "/pets/{petId}/name",
        params: &[PET_ID],
        body: Some(RequestBody { field: "body", required: true, content: &["text/plain"] }),
        responses: &[ok("204", None)],
        security: &[],
    };
    pub const COMPARE: Operation = Operation {
        id: "compare",
        method: "GET",
        path: "/compare/{base}...{head}",
        params: &[
            Param { name: "base", field: "base", location: Location::Path, style: Style::Simple, explode: false, required: true, shape: ParamShape::Scalar(Scalar::String) },
            Param { name: "head", field: "head", location: Location::Path, style: Style::Simple, explode: false, required: true, shape: ParamShape::Scalar(Scalar::String) },
        ],
        body: None,
        responses: &[ok("200", JSON)],
        security: &[],
    };
    pub const STYLES: Operation = Operation {
        id: "styles",
        method: "GET",
        path: "/styles/{label}/{matrix}",
        params: &[
            Param { name: "label", field: "label", location: Location::Path, style: Style::Label, explode: true, required: true, shape: ParamShape::Array(Scalar::String) },
            Param { name: "matrix", field: "matrix", location: Location::Path, style: Style::Matrix, explode: false, required: true, shape: ParamShape::Array(Scalar::Integer) },
            Param { name: "filter", field: "filter", location: Location::Query, style: Style::DeepObject, explode: true, required: false, shape: ParamShape::Object },
        ],
        body: None,
        responses: &[ok("200", JSON)],
        security: &[&[], &[SCHEME_KEY_QUERY]],
    };
    pub const TEAPOT: Operation = Operation {
        id: "teapot",
        method: "GET",
        path: "/teapot",
        params: &[Param { name: "code", field: "code", location: Location::Query, style: Style::Form, explode: true, required: true, shape: ParamShape::Scalar(Scalar::Integer) }],
        body: None,
        responses: &[ok("200", JSON), ok("4XX", None), ok("default", JSON)],
        security: &[],
    };
}

pub const PETSTORE_OPENAPI: &str = include_str!("petstore.openapi.json");

#[::switchboard::service(name = "Petstore", openapi = PETSTORE_OPENAPI, grpc = false)]
pub trait Petstore {
    /// List pets.
    #[rpc(operation = operations::LIST_PETS)]
    async fn list_pets(&self, req: ::switchboard::Request<ListPetsRequest>) -> Result<::switchboard::Response<ListPetsResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::CREATE_PET)]
    async fn create_pet(&self, req: ::switchboard::Request<CreatePetRequest>) -> Result<::switchboard::Response<CreatePetResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::GET_MY_PET)]
    async fn get_my_pet(&self, req: ::switchboard::Request<GetMyPetRequest>) -> Result<::switchboard::Response<GetMyPetResponse>, ::switchboard::Status>;
    /// Get a pet.
    #[rpc(operation = operations::GET_PET)]
    async fn get_pet(&self, req: ::switchboard::Request<GetPetRequest>) -> Result<::switchboard::Response<GetPetResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::DELETE_PET)]
    async fn delete_pet(&self, req: ::switchboard::Request<DeletePetRequest>) -> Result<::switchboard::Response<DeletePetResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::UPLOAD_PHOTO)]
    async fn upload_photo(&self, req: ::switchboard::Request<UploadPhotoRequest>) -> Result<::switchboard::Response<UploadPhotoResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::PUT_PET_DATA)]
    async fn put_pet_data(&self, req: ::switchboard::Request<PutPetDataRequest>) -> Result<::switchboard::Response<PutPetDataResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::GET_PET_NAME)]
    async fn get_pet_name(&self, req: ::switchboard::Request<GetPetNameRequest>) -> Result<::switchboard::Response<GetPetNameResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::SET_PET_NAME)]
    async fn set_pet_name(&self, req: ::switchboard::Request<SetPetNameRequest>) -> Result<::switchboard::Response<SetPetNameResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::COMPARE)]
    async fn compare(&self, req: ::switchboard::Request<CompareRequest>) -> Result<::switchboard::Response<CompareResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::STYLES)]
    async fn styles(&self, req: ::switchboard::Request<StylesRequest>) -> Result<::switchboard::Response<StylesResponse>, ::switchboard::Status>;
    #[rpc(operation = operations::TEAPOT)]
    async fn teapot(&self, req: ::switchboard::Request<TeapotRequest>) -> Result<::switchboard::Response<TeapotResponse>, ::switchboard::Status>;
}
