//! The OpenAPI benchmark's one operation, `GET /v1/pets/{petId}` from
//! `examples/petstore/petstore.yaml`, served two ways:
//!
//! - [`generated`]: the switchboard-generated `Petstore` trait and `PetstoreRestServer` (from the
//!   `petstore` crate's build.rs), served with `.serve(listener)`. The runtime reads `petId` from
//!   the path as an integer, checks it against the document's schema (`int64`, `minimum: 1`;
//!   anything else is a `400`), and turns the handler's `GetPetResponse::Ok(pet)` into
//!   `200 application/json`.
//! - [`baseline`]: the same exchange written by hand with axum 0.8, the way a competent axum user
//!   would: `Path<i64>` (a non-integer is axum's own `400`), `if id < 1` answers a `400` JSON
//!   error, serde structs in the same shape as the document's `Pet`, and `axum::Json` out.
//!
//! Both handlers build the same pet for the id they are asked for ([`NAME`], [`TAGS`], ...; the
//! id from the path), so both answer the same bytes, e.g.
//!
//! ```json
//! {"name":"Rex","status":"available","category":{"id":2,"name":"dogs"},"tags":["dog","good-boy"],"weight_kg":12.5,"id":7,"created_at":"2023-11-14T22:13:20Z"}
//! ```
//!
//! `tests/openapi_same.rs` serves both and compares their answers.

use switchboard::chrono::{DateTime, Utc};

/// The pet's name.
pub const NAME: &str = "Rex";
/// Its category (id, name).
pub const CATEGORY: (i64, &str) = (2, "dogs");
/// Its tags.
pub const TAGS: [&str; 2] = ["dog", "good-boy"];
/// Its weight.
pub const WEIGHT_KG: f64 = 12.5;
/// Its creation time, seconds since the epoch (2023-11-14T22:13:20Z).
pub const CREATED_AT: i64 = 1_700_000_000;

fn created_at() -> DateTime<Utc> {
    DateTime::from_timestamp(CREATED_AT, 0).expect("a valid timestamp")
}

/// The switchboard-generated server.
pub mod generated {
    use petstore::petstore::{
        Category, CreatePetRequest, CreatePetResponse, DeletePetRequest, DeletePetResponse,
        GetPetRequest, GetPetResponse, ListPetsRequest, ListPetsResponse, Pet, Petstore,
        PetstoreRestServer, RequestAdoptionRequest, RequestAdoptionResponse, Status as PetStatus,
        UpdatePetRequest, UpdatePetResponse,
    };
    use switchboard::{Request, Response, Status};

    /// Answers `getPet` with the benchmark's pet; the other operations are not part of the
    /// benchmark.
    pub struct BenchPets;

    fn unimplemented<T>() -> Result<Response<T>, Status> {
        Err(Status::unimplemented(
            "only getPet is served by the benchmark",
        ))
    }

    impl Petstore for BenchPets {
        async fn get_pet(
            &self,
            req: Request<GetPetRequest>,
        ) -> Result<Response<GetPetResponse>, Status> {
            // The runtime has checked `petId` against the document (an int64, at least 1).
            let id = req.into_inner().pet_id;
            let pet = Pet {
                name: super::NAME.to_owned(),
                status: PetStatus::Available,
                category: Some(Category {
                    id: super::CATEGORY.0,
                    name: super::CATEGORY.1.to_owned(),
                }),
                tags: Some(super::TAGS.iter().map(|t| (*t).to_owned()).collect()),
                birthday: None,
                weight_kg: Some(super::WEIGHT_KG),
                id: Some(id),
                created_at: Some(super::created_at()),
            };
            Ok(Response::new(GetPetResponse::Ok(pet)))
        }

        async fn list_pets(
            &self,
            _: Request<ListPetsRequest>,
        ) -> Result<Response<ListPetsResponse>, Status> {
            unimplemented()
        }
        async fn create_pet(
            &self,
            _: Request<CreatePetRequest>,
        ) -> Result<Response<CreatePetResponse>, Status> {
            unimplemented()
        }
        async fn delete_pet(
            &self,
            _: Request<DeletePetRequest>,
        ) -> Result<Response<DeletePetResponse>, Status> {
            unimplemented()
        }
        async fn update_pet(
            &self,
            _: Request<UpdatePetRequest>,
        ) -> Result<Response<UpdatePetResponse>, Status> {
            unimplemented()
        }
        async fn request_adoption(
            &self,
            _: Request<RequestAdoptionRequest>,
        ) -> Result<Response<RequestAdoptionResponse>, Status> {
            unimplemented()
        }
    }

    /// The generated REST server for [`BenchPets`] (operations under the document's `/v1`).
    pub fn server() -> PetstoreRestServer<BenchPets> {
        PetstoreRestServer::new(BenchPets)
    }

    /// Serves until the process ends, the fastest way the runtime offers (`.serve(listener)`: no
    /// axum `Router` in front).
    pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
        server().serve(listener).await
    }
}

/// The hand-written axum baseline.
pub mod baseline {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde::Serialize;
    use switchboard::chrono::{DateTime, Utc};

    /// The route, under the document's base path `/v1`.
    pub const ROUTE: &str = "/v1/pets/{pet_id}";

    /// The document's `Status`.
    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Status {
        Available,
        Pending,
        Adopted,
    }

    /// The document's `Category`.
    #[derive(Serialize)]
    pub struct Category {
        pub id: i64,
        pub name: String,
    }

    /// The document's `Pet` (`NewPet` + `id` + `created_at`), in the same property order.
    #[derive(Serialize)]
    pub struct Pet {
        pub name: String,
        pub status: Status,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub category: Option<Category>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tags: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub weight_kg: Option<f64>,
        pub id: i64,
        pub created_at: DateTime<Utc>,
    }

    /// The document's `Error`.
    #[derive(Serialize)]
    pub struct Error {
        pub code: i32,
        pub message: String,
    }

    /// `GET /v1/pets/{pet_id}`: a non-integer id is axum's `400` (the `Path` rejection); an id
    /// below 1 is a `400` with an `Error` body, as the document's `minimum: 1` asks.
    pub async fn get_pet(Path(pet_id): Path<i64>) -> Response {
        if pet_id < 1 {
            let error = Error {
                code: 3,
                message: format!("path parameter `petId`: must be at least 1, got {pet_id}"),
            };
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
        let pet = Pet {
            name: super::NAME.to_owned(),
            status: Status::Available,
            category: Some(Category {
                id: super::CATEGORY.0,
                name: super::CATEGORY.1.to_owned(),
            }),
            tags: Some(super::TAGS.iter().map(|t| (*t).to_owned()).collect()),
            weight_kg: Some(super::WEIGHT_KG),
            id: pet_id,
            created_at: super::created_at(),
        };
        Json(pet).into_response()
    }

    /// The router.
    pub fn router() -> Router {
        Router::new().route(ROUTE, get(get_pet))
    }

    /// Serves until the process ends (`axum::serve` with default settings).
    pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, router()).await
    }
}
