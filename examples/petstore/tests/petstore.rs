//! Run: `cargo test -p petstore`
//!
//! The pet store served for real on 127.0.0.1:0, called with the generated `PetstoreRestClient`
//! and with plain HTTP/1.1 (for requests the typed client cannot make: bad parameters, bodies
//! that break the schema, missing or wrong keys). Also runs the two binaries against each other.

// `page_size: 10.into()`: the generated field is an `Option<i32>`, or an `i32` where the generator
// fills in the document's default; `into` builds either.
#![allow(clippy::useless_conversion)]

use std::net::SocketAddr;

use petstore::petstore::*;
use petstore::InMemoryPetstore;
use switchboard::serde_json::{self, json, Value};
use switchboard_test_support::http::{Answer, Http};

const KEY: &str = "test-key";

async fn serve(store: InMemoryPetstore) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(petstore::serve(listener, store, KEY));
    addr
}

fn client(addr: SocketAddr) -> PetstoreRestClient {
    PetstoreRestClient::new(&format!("http://{addr}/v1")).unwrap().with_api_key(KEY)
}

fn new_pet(name: &str, status: Status, tags: &[&str]) -> NewPet {
    NewPet {
        name: name.into(),
        status,
        category: None,
        tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
        birthday: None,
        weight_kg: None,
    }
}

async fn create(client: &mut PetstoreRestClient, pet: NewPet) -> Pet {
    match client.create_pet(CreatePetRequest { body: pet }).await.unwrap().into_inner() {
        CreatePetResponse::Created(pet) => pet,
        other => panic!("not created: {other:?}"),
    }
}

/// The serde (JSON) form, for comparing generated types (they derive no `PartialEq`).
fn j<T: switchboard::serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn person(name: &str) -> Applicant {
    Applicant::Person(Person { kind: PersonKind::Person, name: name.into(), email: format!("{}@example.com", name.to_lowercase()) })
}

fn shelter(name: &str, capacity: i32) -> Applicant {
    Applicant::Shelter(Shelter { kind: ShelterKind::Shelter, shelter_name: name.into(), capacity })
}

/// The `message` of an `Error` body, after checking the body has the `Error` schema's shape.
fn error_message(answer: &Answer) -> String {
    let error = answer.json();
    assert!(error["code"].is_i64() && error["message"].is_string(), "not an Error: {error}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    error["message"].as_str().unwrap().to_owned()
}

/// One HTTP/1.1 exchange as curl would make it, with an API key and a JSON body if given.
async fn http(addr: SocketAddr, method: &str, target: &str, key: Option<&str>, body: Option<&str>) -> Answer {
    let mut request = Http::new(addr).request(method, target);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    request.send().await
}

#[tokio::test]
async fn the_generated_client_calls_every_operation() {
    let addr = serve(InMemoryPetstore::new()).await;
    let mut client = client(addr);

    let luna = NewPet {
        name: "Luna".into(),
        status: Status::Available,
        category: Some(Category { id: 7, name: "cats".into() }),
        tags: Some(vec!["cat".into(), "black".into()]),
        birthday: Some("2021-04-01".parse().unwrap()),
        weight_kg: Some(3.8),
    };
    let created = create(&mut client, luna.clone()).await;
    let id = created.id.expect("an id");
    assert!(created.created_at.is_some());
    assert_eq!(
        (created.name.as_str(), j(&created.category), &created.tags, created.birthday, created.weight_kg),
        ("Luna", j(&luna.category), &luna.tags, luna.birthday, Some(3.8))
    );

    let got = client.get_pet(GetPetRequest { pet_id: id }).await.unwrap().into_inner();
    assert_eq!(j(&got), j(&GetPetResponse::Ok(created.clone())));

    let listed = client.list_pets(ListPetsRequest { status: None, tag: None, page_size: 20.into(), page_token: None }).await.unwrap();
    assert_eq!(j(&listed.into_inner()), j(&ListPetsResponse::Ok(PetPage { pets: vec![created.clone()], next_page_token: None })));

    let patch = PetPatch { name: Some("Luna II".into()), status: None, tags: Some(vec!["cat".into()]) };
    let updated = client.update_pet(UpdatePetRequest { pet_id: id, body: patch }).await.unwrap().into_inner();
    let UpdatePetResponse::Ok(updated) = updated else { panic!("not updated: {updated:?}") };
    assert_eq!((updated.name.as_str(), updated.tags.as_deref()), ("Luna II", Some(&["cat".to_owned()][..])));
    assert_eq!((updated.status, j(&updated.category), updated.created_at), (Status::Available, j(&luna.category), created.created_at));

    let adoption = client.request_adoption(RequestAdoptionRequest { pet_id: id, body: person("Ada") }).await.unwrap();
    let RequestAdoptionResponse::Created(adoption) = adoption.into_inner() else { panic!("no adoption") };
    assert_eq!((adoption.pet_id, j(&adoption.applicant)), (id, j(&person("Ada"))));
    assert_eq!(adoption.id.get_version_num(), 4);
    let pending = client.get_pet(GetPetRequest { pet_id: id }).await.unwrap().into_inner();
    assert!(matches!(pending, GetPetResponse::Ok(Pet { status: Status::Pending, .. })), "{pending:?}");

    let deleted = client.delete_pet(DeletePetRequest { pet_id: id }).await.unwrap().into_inner();
    assert!(matches!(deleted, DeletePetResponse::NoContent), "{deleted:?}");
    let gone = client.get_pet(GetPetRequest { pet_id: id }).await.unwrap().into_inner();
    assert!(matches!(gone, GetPetResponse::NotFound(_)), "{gone:?}");
}

#[tokio::test]
async fn invalid_parameters_are_400_naming_the_parameter() {
    let addr = serve(InMemoryPetstore::seeded()).await;
    for (target, expected) in [
        ("/v1/pets?page_size=0", "query parameter `page_size`: must be at least 1"),
        ("/v1/pets?page_size=101", "query parameter `page_size`: must be at most 100"),
        ("/v1/pets?page_size=ten", "query parameter `page_size`: expected an integer"),
        ("/v1/pets?page_size=", "query parameter `page_size`: expected an integer"),
        ("/v1/pets?status=available,flying", "query parameter `status` at /1: must be one of"),
        ("/v1/pets?status=", "query parameter `status`: must have at least 1 item"),
        ("/v1/pets?tag=Not%20A%20Tag", "query parameter `tag`: "),
        ("/v1/pets?page_token=not-a-token", "query parameter `page_token`: "),
        ("/v1/pets/0", "path parameter `petId`: must be at least 1"),
        ("/v1/pets/rex", "path parameter `petId`: expected an integer"),
    ] {
        let answer = http(addr, "GET", target, None, None).await;
        assert_eq!(answer.status, 400, "{target}");
        let message = error_message(&answer);
        assert!(message.starts_with(expected), "{target}: {message}");
        assert_eq!(answer.json()["code"], 3, "INVALID_ARGUMENT");
    }

    // The typed client gets the documented 400 as its variant.
    let mut client = client(addr);
    let req = ListPetsRequest { status: None, tag: None, page_size: 500.into(), page_token: None };
    let answer = client.list_pets(req).await.unwrap().into_inner();
    assert!(matches!(&answer, ListPetsResponse::BadRequest(e) if e.code == 3 && e.message.contains("page_size")), "{answer:?}");
}

#[tokio::test]
async fn bodies_that_break_the_schema_are_400_naming_the_json_pointer() {
    let addr = serve(InMemoryPetstore::seeded()).await;
    let cases = [
        ("/v1/pets", r#"{"name": "", "status": "available"}"#, "request body at /name: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "sleeping"}"#, "request body at /status: must be one of"),
        ("/v1/pets", r#"{"name": "Rex"}"#, "request body: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "available", "tags": ["ok", "Not OK"]}"#, "request body at /tags/1: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "available", "weight_kg": 600}"#, "request body at /weight_kg: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "available", "birthday": "2021-02-30"}"#, "request body at /birthday: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "available", "category": {"id": 1, "name": ""}}"#, "request body at /category/name: "),
        ("/v1/pets", r#"{"name": "Rex", "status": "available", "category": {"name": "dogs"}}"#, "request body at /category: "),
        ("/v1/pets", r#"["Rex"]"#, "request body: "),
        ("/v1/pets", r#"{"name": "Rex""#, "malformed JSON body"),
        ("/v1/pets/1", r#"{"name": 7}"#, "request body at /name: "),
        ("/v1/pets/1/adoptions", r#"{"kind": "robot", "name": "R2"}"#, "request body"),
        ("/v1/pets/1/adoptions", r#"{"kind": "shelter", "shelter_name": "Paws", "capacity": 0}"#, "request body at /capacity: "),
        ("/v1/pets/1/adoptions", r#"{"kind": "shelter", "shelter_name": "Paws", "capacity": 2.5}"#, "request body at /capacity: "),
        ("/v1/pets/1/adoptions", r#"{"kind": "person", "name": "Ada", "email": "not an address"}"#, "request body at /email: "),
        ("/v1/pets/1/adoptions", r#"{"kind": "person", "name": "Ada"}"#, "request body"),
    ];
    for (path, body, expected) in cases {
        let method = if path == "/v1/pets/1" { "PATCH" } else { "POST" };
        let answer = http(addr, method, path, Some(KEY), Some(body)).await;
        assert_eq!(answer.status, 400, "{method} {path} {body}: {}", answer.text());
        let message = error_message(&answer);
        assert!(message.starts_with(expected), "{body}: {message}");
    }
    let empty = http(addr, "POST", "/v1/pets", Some(KEY), Some("")).await;
    assert_eq!((empty.status, error_message(&empty).contains("required")), (400, true));

    // JSON Schema counts 40.0 as an integer; so does the server.
    let shelter = r#"{"kind": "shelter", "shelter_name": "Paws", "capacity": 40.0}"#;
    let answer = http(addr, "POST", "/v1/pets/1/adoptions", Some(KEY), Some(shelter)).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.json()["applicant"]["capacity"], 40);
}

#[tokio::test]
async fn writes_need_the_right_api_key() {
    let addr = serve(InMemoryPetstore::seeded()).await;
    let body = r#"{"name": "Fido", "status": "available"}"#;
    for key in [None, Some("wrong")] {
        for (method, path, body) in [
            ("POST", "/v1/pets", Some(body)),
            ("PATCH", "/v1/pets/1", Some(r#"{"name": "Rex II"}"#)),
            ("DELETE", "/v1/pets/1", None),
            ("POST", "/v1/pets/1/adoptions", Some(r#"{"kind": "shelter", "shelter_name": "Paws", "capacity": 3}"#)),
        ] {
            let answer = http(addr, method, path, key, body).await;
            assert_eq!(answer.status, 401, "{method} {path} with key {key:?}");
            assert_eq!(answer.json()["code"], 16, "UNAUTHENTICATED");
            let message = error_message(&answer);
            assert!(message.contains("X-API-Key"), "{message}");
        }
    }
    // Reads are open; the pet was left alone.
    let rex = http(addr, "GET", "/v1/pets/1", None, None).await;
    assert_eq!((rex.status, rex.json()["name"].as_str()), (200, Some("Rex")));
    assert_eq!(http(addr, "GET", "/v1/pets", None, None).await.status, 200);
    // Credentials are checked before the body is read.
    assert_eq!(http(addr, "POST", "/v1/pets", None, Some("{")).await.status, 401);

    let base = format!("http://{addr}/v1");
    for mut client in [PetstoreRestClient::new(&base).unwrap(), PetstoreRestClient::new(&base).unwrap().with_api_key("wrong")] {
        let answer = client.create_pet(CreatePetRequest { body: new_pet("Fido", Status::Available, &[]) }).await;
        let answer = answer.unwrap().into_inner();
        assert!(matches!(&answer, CreatePetResponse::Unauthorized(e) if e.code == 16), "{answer:?}");
        let answer = client.delete_pet(DeletePetRequest { pet_id: 1 }).await.unwrap().into_inner();
        assert!(matches!(answer, DeletePetResponse::Unauthorized(_)), "{answer:?}");
    }
    let created = http(addr, "POST", "/v1/pets", Some(KEY), Some(body)).await;
    assert_eq!(created.status, 201);
}

#[tokio::test]
async fn missing_pets_are_404_in_the_error_schema() {
    let addr = serve(InMemoryPetstore::seeded()).await;
    let mut client = client(addr);
    let not_found = |e: &Error| e.code == 5 && e.message == "no pet with id 999";
    let answer = client.get_pet(GetPetRequest { pet_id: 999 }).await.unwrap().into_inner();
    assert!(matches!(&answer, GetPetResponse::NotFound(e) if not_found(e)), "{answer:?}");
    let patch = PetPatch { name: Some("X".into()), status: None, tags: None };
    let answer = client.update_pet(UpdatePetRequest { pet_id: 999, body: patch }).await.unwrap().into_inner();
    assert!(matches!(&answer, UpdatePetResponse::NotFound(e) if not_found(e)), "{answer:?}");
    let answer = client.delete_pet(DeletePetRequest { pet_id: 999 }).await.unwrap().into_inner();
    assert!(matches!(&answer, DeletePetResponse::NotFound(e) if not_found(e)), "{answer:?}");
    let answer = client.request_adoption(RequestAdoptionRequest { pet_id: 999, body: person("Ada") }).await.unwrap();
    assert!(matches!(answer.get_ref(), RequestAdoptionResponse::NotFound(e) if not_found(e)), "{answer:?}");

    let raw = http(addr, "GET", "/v1/pets/999", None, None).await;
    assert_eq!(raw.status, 404);
    assert_eq!(raw.json(), json!({"code": 5, "message": "no pet with id 999"}));
    assert_eq!(http(addr, "GET", "/v1/cats", None, None).await.status, 404);
}

#[tokio::test]
async fn adopting_a_pet_that_is_not_available_is_409() {
    let store = InMemoryPetstore::new();
    let adopted = store.insert(new_pet("Nemo", Status::Adopted, &[])).id.unwrap();
    let available = store.insert(new_pet("Rex", Status::Available, &[])).id.unwrap();
    let addr = serve(store).await;
    let mut client = client(addr);

    let answer = client.request_adoption(RequestAdoptionRequest { pet_id: adopted, body: person("Ada") }).await.unwrap();
    let RequestAdoptionResponse::Conflict(e) = answer.into_inner() else { panic!("not a conflict") };
    assert_eq!((e.code, e.message.as_str()), (9, "pet 1 is adopted, not available"));

    let first = client.request_adoption(RequestAdoptionRequest { pet_id: available, body: person("Ada") }).await.unwrap();
    assert!(matches!(first.into_inner(), RequestAdoptionResponse::Created(_)));
    let second = client.request_adoption(RequestAdoptionRequest { pet_id: available, body: shelter("Paws", 3) }).await.unwrap();
    let RequestAdoptionResponse::Conflict(e) = second.into_inner() else { panic!("not a conflict") };
    assert_eq!(e.message, "pet 2 is pending, not available");

    let raw = http(addr, "POST", "/v1/pets/2/adoptions", Some(KEY), Some(r#"{"kind": "shelter", "shelter_name": "Paws", "capacity": 3}"#)).await;
    assert_eq!(raw.status, 409);
    assert_eq!(error_message(&raw), "pet 2 is pending, not available");

    // Made available again, it can be asked for again.
    let patch = PetPatch { name: None, status: Some(Status::Available), tags: None };
    client.update_pet(UpdatePetRequest { pet_id: available, body: patch }).await.unwrap();
    let third = client.request_adoption(RequestAdoptionRequest { pet_id: available, body: shelter("Paws", 3) }).await.unwrap();
    assert!(matches!(third.into_inner(), RequestAdoptionResponse::Created(_)));
}

#[tokio::test]
async fn pages_walk_every_matching_pet_once() {
    let store = InMemoryPetstore::new();
    for i in 1..=45 {
        let status = if i % 3 == 0 { Status::Pending } else { Status::Available };
        let tags: &[&str] = if i % 5 == 0 { &["five"] } else { &["other"] };
        store.insert(new_pet(&format!("pet-{i}"), status, tags));
    }
    let addr = serve(store).await;
    let mut client = client(addr);

    // `page_size.into()`: the field is an `Option<i32>`, or an `i32` where the generator fills in
    // the document's default.
    async fn walk(client: &mut PetstoreRestClient, status: Option<Vec<Status>>, tag: Option<&str>, page_size: i32) -> Vec<Vec<i64>> {
        let mut pages = Vec::new();
        let mut token = None;
        loop {
            let req = ListPetsRequest { status: status.clone(), tag: tag.map(Into::into), page_size: page_size.into(), page_token: token.take() };
            let ListPetsResponse::Ok(page) = client.list_pets(req).await.unwrap().into_inner() else { panic!("not a page") };
            pages.push(page.pets.iter().map(|p| p.id.unwrap()).collect());
            match page.next_page_token {
                Some(next) => {
                    assert!(next.len() == 16 && next.bytes().all(|b| b.is_ascii_hexdigit()), "{next}");
                    token = Some(next);
                }
                None => return pages,
            }
        }
    }

    let pages = walk(&mut client, None, None, 20).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [20, 20, 5]);
    assert_eq!(pages.concat(), (1..=45).collect::<Vec<i64>>());
    // Without `page_size`, a page is 20 pets.
    let page = http(addr, "GET", "/v1/pets", None, None).await.json();
    assert_eq!((page["pets"].as_array().unwrap().len(), page["pets"][19]["id"].as_i64()), (20, Some(20)));
    assert!(page["next_page_token"].is_string());

    let pages = walk(&mut client, Some(vec![Status::Pending]), None, 4).await;
    assert_eq!(pages.concat(), (1..=45).filter(|i| i % 3 == 0).collect::<Vec<i64>>());
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4, 3]);

    let pages = walk(&mut client, Some(vec![Status::Pending, Status::Available]), Some("five"), 2).await;
    assert_eq!(pages.concat(), [5, 10, 15, 20, 25, 30, 35, 40, 45]);
    assert_eq!(pages.len(), 5, "the last page is full-or-short and has no token");

    let raw = http(addr, "GET", "/v1/pets?status=pending&tag=five", None, None).await.json();
    let ids: Vec<i64> = raw["pets"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!((ids, raw.get("next_page_token")), (vec![15, 30, 45], None));

    // Removing pets between pages neither skips nor repeats the others.
    let first = client.list_pets(ListPetsRequest { status: None, tag: None, page_size: 10.into(), page_token: None }).await.unwrap();
    let ListPetsResponse::Ok(first) = first.into_inner() else { panic!() };
    for id in [5, 11, 12] {
        client.delete_pet(DeletePetRequest { pet_id: id }).await.unwrap();
    }
    let req = ListPetsRequest { status: None, tag: None, page_size: 10.into(), page_token: first.next_page_token };
    let ListPetsResponse::Ok(second) = client.list_pets(req).await.unwrap().into_inner() else { panic!() };
    assert_eq!(second.pets.iter().map(|p| p.id.unwrap()).collect::<Vec<_>>(), [13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);

    // A token past the end is an empty last page.
    let answer = http(addr, "GET", "/v1/pets?page_token=ffffffffffffffff", None, None).await;
    assert_eq!((answer.status, answer.json()), (200, json!({"pets": []})));
}

#[tokio::test]
async fn adoption_bodies_are_one_of_a_person_or_a_shelter() {
    let store = InMemoryPetstore::new();
    let rex = store.insert(new_pet("Rex", Status::Available, &[])).id.unwrap();
    let tom = store.insert(new_pet("Tom", Status::Available, &[])).id.unwrap();
    let max = store.insert(new_pet("Max", Status::Available, &[])).id.unwrap();
    let addr = serve(store).await;
    let mut client = client(addr);

    let by_person = client.request_adoption(RequestAdoptionRequest { pet_id: rex, body: person("Ada") }).await.unwrap();
    let RequestAdoptionResponse::Created(a) = by_person.into_inner() else { panic!() };
    assert_eq!(j(&a.applicant), json!({"kind": "person", "name": "Ada", "email": "ada@example.com"}));
    assert!(matches!(a.applicant, Applicant::Person(Person { ref name, .. }) if name == "Ada"));

    // The shelter variant over plain HTTP: the JSON in, the same JSON back, and the handler got
    // a `Shelter` (what it stored and answered reads back as that variant, with its fields).
    let body = json!({"kind": "shelter", "shelter_name": "Happy Paws", "capacity": 40});
    let answer = http(addr, "POST", &format!("/v1/pets/{tom}/adoptions"), Some(KEY), Some(&body.to_string())).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let adoption = answer.json();
    assert_eq!((&adoption["applicant"], &adoption["pet_id"]), (&body, &json!(tom)));
    assert_eq!(adoption["id"].as_str().unwrap().len(), 36, "a UUID");
    let typed: Adoption = serde_json::from_value(adoption).unwrap();
    assert!(
        matches!(&typed.applicant, Applicant::Shelter(Shelter { shelter_name, capacity: 40, .. }) if shelter_name == "Happy Paws"),
        "{:?}",
        j(&typed.applicant)
    );

    // The discriminator picks the schema, and the error says what the picked schema misses: a
    // shelter's fields under `kind: person` are a person without a `name` (not a shelter).
    let adopt = format!("/v1/pets/{max}/adoptions");
    let mixed = json!({"kind": "person", "shelter_name": "Happy Paws", "capacity": 40});
    let answer = http(addr, "POST", &adopt, Some(KEY), Some(&mixed.to_string())).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["code"], 3, "INVALID_ARGUMENT");
    let message = error_message(&answer);
    assert!(message.starts_with("request body") && message.contains("`name`"), "names Person's missing property: {message}");
    // A `kind` outside the mapping is refused at the discriminator's pointer, naming the value
    // and the known ones.
    let robot = json!({"kind": "robot", "name": "R2", "email": "r2@example.com"});
    let answer = http(addr, "POST", &adopt, Some(KEY), Some(&robot.to_string())).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let message = error_message(&answer);
    assert!(message.starts_with("request body at /kind"), "{message}");
    assert!(message.contains("robot") && message.contains("person") && message.contains("shelter"), "{message}");
    // No `kind` at all: the discriminator property is named.
    let untagged = json!({"name": "Ada", "email": "ada@example.com"});
    let answer = http(addr, "POST", &adopt, Some(KEY), Some(&untagged.to_string())).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(error_message(&answer).contains("`kind`"), "{}", answer.text());
    // None of them reached the handler: Max is still available (an adoption makes it pending).
    let still = client.get_pet(GetPetRequest { pet_id: max }).await.unwrap().into_inner();
    assert!(matches!(&still, GetPetResponse::Ok(p) if p.status == Status::Available), "{still:?}");
    // A person body with the person tag is accepted, as a Person.
    let fixed = json!({"kind": "person", "name": "Grace", "email": "grace@example.com"});
    let answer = http(addr, "POST", &adopt, Some(KEY), Some(&fixed.to_string())).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let typed: Adoption = serde_json::from_value(answer.json()).unwrap();
    assert!(matches!(&typed.applicant, Applicant::Person(Person { name, .. }) if name == "Grace"), "{:?}", j(&typed.applicant));
}

#[tokio::test]
async fn the_document_is_served_and_unknown_methods_are_405() {
    let addr = serve(InMemoryPetstore::new()).await;
    let doc = http(addr, "GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["servers"][0]["url"], "/v1");
    assert!(doc["paths"]["/pets/{petId}/adoptions"]["post"].is_object(), "{doc}");
    let put = http(addr, "PUT", "/v1/pets/1", Some(KEY), Some("{}")).await;
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, DELETE, PATCH"));
}

/// `petstore-server` and `petstore-client` against each other.
#[test]
fn the_binaries_talk_to_each_other() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut server = Command::new(env!("CARGO_BIN_EXE_petstore-server"))
        .args(["--port", "0", "--api-key", "k-123"])
        .env_remove("PETSTORE_API_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://") && w.ends_with("/v1")).expect("the URL").to_owned();

    let run = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_petstore-client")).args(["--url", &url, "--api-key", key]).output().unwrap()
    };
    let ok = run("k-123");
    let wrong = run("secret");
    server.kill().unwrap();
    server.wait().unwrap();

    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", String::from_utf8_lossy(&ok.stderr));
    for op in ["listPets", "createPet", "getPet", "updatePet", "requestAdoption", "deletePet"] {
        assert!(out.contains(op), "{op} missing from:\n{out}");
    }
    assert!(out.contains("-> Created {"), "{out}");
    assert!(out.contains("-> Conflict {"), "{out}");
    assert!(out.contains("-> NoContent"), "{out}");
    // With the wrong key the first write is refused and the client stops there.
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("-> Unauthorized {"));
}
