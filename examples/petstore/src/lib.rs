//! A pet store generated from `petstore.yaml` (OpenAPI 3.1) and kept in memory.
//! Serve it with `cargo run -p petstore --bin petstore-server -- --port 8080`.
//!
//! build.rs generated the models, the request structs, the response enums, the operation table
//! and the `Petstore` trait into OUT_DIR; [`InMemoryPetstore`] implements the trait:
//!
//! - CRUD on pets, with typed `404` / `400` answers in the document's `Error` schema;
//! - `listPets` filtered by `status` (any of several) and `tag`, paginated by an opaque
//!   `page_token` (`page_size` defaults to 20);
//! - `requestAdoption`, whose body is one of a person or a shelter (a discriminated `oneOf`), and
//!   `409` when the pet is not available;
//! - writes need the API key in `X-API-Key` ([`server`] and [`queue_server`] check it in the
//!   authorize hook: a missing key or a wrong one is `401`, UNAUTHENTICATED over queues).
//!
//! Everything the document says about a request (types, bounds, patterns, formats, required
//! properties, the discriminator) is checked by the runtime before a handler runs, so the
//! handlers below only deal with the store.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;
use std::sync::Mutex;

use switchboard::api::{Credentials, Operation};
use switchboard::chrono::{SubsecRound, Utc};
use switchboard::{Code, Request, Response, Status};

/// The generated code: `api::petstore`.
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub use api::petstore;
use petstore::*;

/// The API key `petstore-server` accepts unless told otherwise (`--api-key`, `PETSTORE_API_KEY`).
pub const DEFAULT_API_KEY: &str = "secret";

/// `page_size` when the request has none (the document's `default: 20`).
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// An `Error` body (the document's schema): a gRPC-style code and a message, like the errors the
/// runtime answers itself (validation `400`, `401`).
pub fn error(code: Code, message: impl Into<String>) -> Error {
    Error { code: code as i32, message: message.into(), details: None }
}

/// The state behind the API.
#[derive(Default)]
struct State {
    /// The last id handed out.
    last_id: i64,
    pets: BTreeMap<i64, Pet>,
    adoptions: Vec<Adoption>,
}

/// The pet store, in memory. Every handler takes the lock once and never holds it across an
/// await.
#[derive(Default)]
pub struct InMemoryPetstore {
    state: Mutex<State>,
}

impl InMemoryPetstore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with a few pets in it, for trying the API by hand.
    pub fn seeded() -> Self {
        let store = Self::new();
        let seed = [
            ("Rex", petstore::Status::Available, &["dog", "good-boy"][..]),
            ("Tom", petstore::Status::Available, &["cat"][..]),
            ("Nemo", petstore::Status::Adopted, &["fish"][..]),
        ];
        for (name, status, tags) in seed {
            let tags = Some(tags.iter().map(|t| (*t).to_owned()).collect());
            store.insert(NewPet { name: name.into(), status, category: None, tags, birthday: None, weight_kg: None });
        }
        store
    }

    /// Adds a pet and returns it with its id and creation time.
    pub fn insert(&self, new: NewPet) -> Pet {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.last_id += 1;
        let id = state.last_id;
        let pet = Pet {
            name: new.name,
            status: new.status,
            category: new.category,
            tags: new.tags,
            birthday: new.birthday,
            weight_kg: new.weight_kg,
            id: Some(id),
            created_at: Some(Utc::now().trunc_subsecs(3)),
        };
        state.pets.insert(id, pet.clone());
        pet
    }

    /// The adoption requests made so far, oldest first.
    pub fn adoptions(&self) -> Vec<Adoption> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).adoptions.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(id: i64) -> Error {
    error(Code::NotFound, format!("no pet with id {id}"))
}

/// Page tokens: the id of the last pet of the page, scrambled so that clients treat it as
/// opaque, as 16 lower-case hex digits (the document's pattern for `page_token`). Pages are
/// keyed by id, so a token stays valid when pets are added or removed and does not depend on the
/// filters; a made-up token that matches the pattern is a made-up position, not an error.
mod page_token {
    const SCRAMBLE: u64 = 0x9e37_79b9_7f4a_7c15;

    pub(crate) fn encode(last_id: i64) -> String {
        format!("{:016x}", (last_id as u64) ^ SCRAMBLE)
    }

    /// The id to continue after; `None` when the text is not a token.
    pub(crate) fn decode(token: &str) -> Option<i64> {
        if token.len() != 16 || !token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let raw = u64::from_str_radix(token, 16).ok()? ^ SCRAMBLE;
        // Positions past the last possible id are valid and empty.
        Some(i64::try_from(raw).unwrap_or(i64::MAX))
    }
}

/// A version 4 UUID from the standard library's per-process random hasher keys.
fn random_uuid(counter: u64) -> switchboard::uuid::Uuid {
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(counter);
        h.write_u64(salt);
        h.finish()
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random(1).to_le_bytes());
    bytes[8..].copy_from_slice(&random(2).to_le_bytes());
    switchboard::uuid::Builder::from_random_bytes(bytes).into_uuid()
}

impl Petstore for InMemoryPetstore {
    async fn list_pets(&self, req: Request<ListPetsRequest>) -> Result<Response<ListPetsResponse>, Status> {
        let q = req.into_inner();
        // The runtime has checked the bounds (1..=100). `page_size` is an `Option<i32>`, or an
        // `i32` where the generator fills in the document's default; `into` reads either.
        #[allow(clippy::useless_conversion)]
        let page_size: Option<i32> = q.page_size.into();
        let page_size = page_size.map_or(DEFAULT_PAGE_SIZE, |n| n.max(1) as usize);
        let after = match q.page_token.as_deref() {
            None | Some("") => None,
            Some(token) => match page_token::decode(token) {
                Some(id) => Some(id),
                None => {
                    let e = error(Code::InvalidArgument, format!("page_token `{token}` is not a token this server gave out"));
                    return Ok(Response::new(ListPetsResponse::BadRequest(e)));
                }
            },
        };
        let wanted = |p: &Pet| {
            q.status.as_ref().is_none_or(|s| s.is_empty() || s.contains(&p.status))
                && q.tag.as_ref().is_none_or(|t| p.tags.as_ref().is_some_and(|tags| tags.contains(t)))
        };
        let state = self.state();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut matching = state.pets.range((start, Bound::Unbounded)).map(|(_, p)| p).filter(|p| wanted(p));
        let pets: Vec<Pet> = matching.by_ref().take(page_size).cloned().collect();
        let more = matching.next().is_some();
        let next_page_token = match pets.last() {
            Some(last) if more => last.id.map(page_token::encode),
            _ => None,
        };
        Ok(Response::new(ListPetsResponse::Ok(PetPage { pets, next_page_token })))
    }

    async fn create_pet(&self, req: Request<CreatePetRequest>) -> Result<Response<CreatePetResponse>, Status> {
        let pet = self.insert(req.into_inner().body);
        Ok(Response::new(CreatePetResponse::Created(pet)))
    }

    async fn get_pet(&self, req: Request<GetPetRequest>) -> Result<Response<GetPetResponse>, Status> {
        let id = req.into_inner().pet_id;
        let answer = match self.state().pets.get(&id) {
            Some(pet) => GetPetResponse::Ok(pet.clone()),
            None => GetPetResponse::NotFound(not_found(id)),
        };
        Ok(Response::new(answer))
    }

    async fn delete_pet(&self, req: Request<DeletePetRequest>) -> Result<Response<DeletePetResponse>, Status> {
        let id = req.into_inner().pet_id;
        let answer = match self.state().pets.remove(&id) {
            Some(_) => DeletePetResponse::NoContent,
            None => DeletePetResponse::NotFound(not_found(id)),
        };
        Ok(Response::new(answer))
    }

    async fn update_pet(&self, req: Request<UpdatePetRequest>) -> Result<Response<UpdatePetResponse>, Status> {
        let UpdatePetRequest { pet_id, body: patch } = req.into_inner();
        let mut state = self.state();
        let Some(pet) = state.pets.get_mut(&pet_id) else {
            return Ok(Response::new(UpdatePetResponse::NotFound(not_found(pet_id))));
        };
        if let Some(name) = patch.name {
            pet.name = name;
        }
        if let Some(status) = patch.status {
            pet.status = status;
        }
        if let Some(tags) = patch.tags {
            pet.tags = Some(tags);
        }
        Ok(Response::new(UpdatePetResponse::Ok(pet.clone())))
    }

    async fn request_adoption(
        &self,
        req: Request<RequestAdoptionRequest>,
    ) -> Result<Response<RequestAdoptionResponse>, Status> {
        let RequestAdoptionRequest { pet_id, body: applicant } = req.into_inner();
        let mut state = self.state();
        let counter = state.adoptions.len() as u64;
        let Some(pet) = state.pets.get_mut(&pet_id) else {
            return Ok(Response::new(RequestAdoptionResponse::NotFound(not_found(pet_id))));
        };
        if pet.status != petstore::Status::Available {
            let status = match &pet.status {
                petstore::Status::Pending => "pending",
                petstore::Status::Adopted => "adopted",
                _ => "not available",
            };
            let e = error(Code::FailedPrecondition, format!("pet {pet_id} is {status}, not available"));
            return Ok(Response::new(RequestAdoptionResponse::Conflict(e)));
        }
        pet.status = petstore::Status::Pending;
        let adoption = Adoption { id: random_uuid(counter), pet_id, applicant };
        state.adoptions.push(adoption.clone());
        Ok(Response::new(RequestAdoptionResponse::Created(adoption)))
    }
}

/// The authorize hook: operations whose security asks for the API key get this far only with
/// some key in `X-API-Key` (the runtime answers `401` without one); here the key must be `key`.
pub fn check_api_key(key: String) -> impl Fn(&Operation, &Credentials) -> Result<(), Status> + Send + Sync + 'static {
    move |_op, creds| match creds.api_key() {
        Some(given) if constant_time_eq(given.as_bytes(), key.as_bytes()) => Ok(()),
        _ => Err(Status::unauthenticated("the API key in `X-API-Key` is not valid")),
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The REST server for `store`, writes guarded by `api_key`. `/openapi.json` serves the document.
pub fn server(store: InMemoryPetstore, api_key: impl Into<String>) -> PetstoreRestServer<InMemoryPetstore> {
    PetstoreRestServer::new(store).authorize(check_api_key(api_key.into()))
}

/// Serves `store` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: InMemoryPetstore,
    api_key: impl Into<String>,
) -> std::io::Result<()> {
    server(store, api_key).serve(listener).await
}

/// The queue server for `store` (shared with the REST server, say), writes guarded by
/// `api_key` exactly as over REST: the operation contract (credentials, parameter and body
/// schemas) is checked by the runtime on every transport. Callers send the key as the
/// `x-api-key` metadata header (docs/queue-protocol.md, "OpenAPI operations").
pub fn queue_server(store: std::sync::Arc<InMemoryPetstore>, api_key: impl Into<String>) -> PetstoreQueueServer<InMemoryPetstore> {
    PetstoreQueueServer::from_arc(store).authorize(check_api_key(api_key.into()))
}
