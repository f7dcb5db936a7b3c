//! Run: `cargo run -p petstore --bin petstore-client -- --url http://127.0.0.1:8080/v1 [--api-key KEY]`
//!
//! Calls every operation of a running `petstore-server` with the generated `PetstoreRestClient`
//! and prints each answer as `operation -> Variant {json}`. The URL includes the base path `/v1`;
//! the key defaults to `$PETSTORE_API_KEY`, else `secret`.

// `page_size: 2.into()`: the generated field is an `Option<i32>`, or an `i32` where the generator
// fills in the document's default; `into` builds either.
#![allow(clippy::useless_conversion)]

use std::process::ExitCode;

use petstore::petstore::*;
use switchboard::serde_json;

const USAGE: &str = "usage: petstore-client [--url URL] [--api-key KEY]   (defaults: http://127.0.0.1:8080/v1, $PETSTORE_API_KEY or `secret`)";

fn parse_args() -> Result<(String, String), String> {
    let mut url = "http://127.0.0.1:8080/v1".to_owned();
    let mut key = std::env::var("PETSTORE_API_KEY").ok().filter(|k| !k.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = value()?,
            "--api-key" => key = Some(value()?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((url, key.unwrap_or_else(|| petstore::DEFAULT_API_KEY.to_owned())))
}

/// Prints `what -> Variant {json}` and hands the answer back.
fn show<T: switchboard::serde::Serialize>(what: &str, answer: Result<switchboard::Response<T>, switchboard::Status>) -> Result<T, switchboard::Status> {
    let answer = answer.map(switchboard::Response::into_inner);
    match &answer {
        Ok(value) => {
            // The serde form of a response enum is `{"Variant": body}` (or `"Variant"`).
            let text = match serde_json::to_value(value) {
                Ok(serde_json::Value::Object(map)) if map.len() == 1 => {
                    let (variant, body) = map.into_iter().next().expect("one entry");
                    format!("{variant} {body}")
                }
                Ok(serde_json::Value::String(variant)) => variant,
                Ok(other) => other.to_string(),
                Err(e) => format!("(unprintable: {e})"),
            };
            println!("{what}\n    -> {text}");
        }
        Err(status) => println!("{what}\n    -> error {:?}: {}", status.code(), status.message()),
    }
    answer
}

async fn run(url: &str, key: &str) -> Result<(), switchboard::Status> {
    let bad_url = |e: switchboard::rest::InvalidBaseUrl| switchboard::Status::invalid_argument(format!("--url: {e}"));
    let mut client = PetstoreRestClient::new(url).map_err(bad_url)?.with_api_key(key);
    let mut anonymous = PetstoreRestClient::new(url).map_err(bad_url)?;

    // listPets, one page of two at a time, following the tokens.
    let mut page_token = None;
    loop {
        let req = ListPetsRequest { status: None, tag: None, page_size: 2.into(), page_token: page_token.take() };
        let label = format!("listPets page_size=2 page_token={:?}", req.page_token);
        match show(&label, client.list_pets(req).await)? {
            ListPetsResponse::Ok(PetPage { next_page_token: Some(next), .. }) => page_token = Some(next),
            _ => break,
        }
    }

    let luna = NewPet {
        name: "Luna".into(),
        status: Status::Available,
        category: Some(Category { id: 1, name: "cats".into() }),
        tags: Some(vec!["cat".into(), "black".into()]),
        birthday: Some("2021-04-01".parse().expect("a date")),
        weight_kg: Some(3.8),
    };
    let created = show("createPet Luna", client.create_pet(CreatePetRequest { body: luna.clone() }).await)?;
    let CreatePetResponse::Created(Pet { id: Some(luna_id), .. }) = created else {
        return Err(switchboard::Status::internal("createPet did not create a pet"));
    };
    show("createPet without the API key", anonymous.create_pet(CreatePetRequest { body: luna }).await)?;
    show(&format!("getPet {luna_id}"), client.get_pet(GetPetRequest { pet_id: luna_id }).await)?;
    let patch = PetPatch { name: Some("Luna II".into()), status: None, tags: Some(vec!["cat".into()]) };
    show(&format!("updatePet {luna_id}"), client.update_pet(UpdatePetRequest { pet_id: luna_id, body: patch }).await)?;
    let filtered = ListPetsRequest { status: Some(vec![Status::Available]), tag: Some("cat".into()), page_size: 20.into(), page_token: None };
    show("listPets status=available tag=cat", client.list_pets(filtered).await)?;

    let person = Applicant::Person(Person { kind: PersonKind::Person, name: "Ada".into(), email: "ada@example.com".into() });
    show(
        &format!("requestAdoption {luna_id} by a person"),
        client.request_adoption(RequestAdoptionRequest { pet_id: luna_id, body: person }).await,
    )?;
    let shelter = Applicant::Shelter(Shelter { kind: ShelterKind::Shelter, shelter_name: "Happy Paws".into(), capacity: 40 });
    show(
        &format!("requestAdoption {luna_id} by a shelter (Luna is pending now)"),
        client.request_adoption(RequestAdoptionRequest { pet_id: luna_id, body: shelter }).await,
    )?;

    show(&format!("deletePet {luna_id}"), client.delete_pet(DeletePetRequest { pet_id: luna_id }).await)?;
    show(&format!("getPet {luna_id} (deleted)"), client.get_pet(GetPetRequest { pet_id: luna_id }).await)?;
    show("getPet 0 (below the minimum)", client.get_pet(GetPetRequest { pet_id: 0 }).await)?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let (url, key) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("petstore-client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&url, &key).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("petstore-client: {:?}: {}", status.code(), status.message());
            ExitCode::FAILURE
        }
    }
}
