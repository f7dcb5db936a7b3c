//! Run: `cargo test -p petstore --test queue` (RabbitMQ and NATS too with the brokers' URLs set:
//! `eval "$(bash scripts/brokers.sh start)"`).
//!
//! The pet store's OpenAPI operations called through a message broker: the same operation
//! contract as over REST, enforced by the runtime's queue transport. A caller without the API
//! key is UNAUTHENTICATED, a body that breaks the schema is INVALID_ARGUMENT naming the JSON
//! pointer in the request, and a valid call gets the typed response the handler chose (201 with
//! the pet, 404 with the document's `Error`). Run over the embedded broker, RabbitMQ and NATS.

use std::sync::Arc;
use std::time::Duration;

use petstore::petstore::*;
use petstore::InMemoryPetstore;
use switchboard::queue::Broker;
use switchboard::{Code, Request};
use switchboard_test_support::broker::{env_or_skip, AMQP_URL, NATS_URL};
use switchboard_test_support::ready::retry_until;

const KEY: &str = "queue-key";

fn pet(name: &str) -> NewPet {
    NewPet { name: name.into(), status: Status::Available, category: None, tags: None, birthday: None, weight_kg: None }
}

/// `request` with the API key as the `x-api-key` metadata header (or `key` instead).
fn keyed<T>(message: T, key: &str) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert("x-api-key", key.parse().unwrap());
    req
}

async fn the_operation_contract_holds(url: &str) {
    let broker = Broker::connect(url).await.unwrap();
    let server = petstore::queue_server(Arc::new(InMemoryPetstore::new()), KEY);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let b = broker.clone();
    let serving = tokio::spawn(async move { server.serve_with_shutdown(&b, async { let _ = stopped.await; }).await });
    let client = PetstoreQueueClient::new(&broker).timeout(Duration::from_secs(10));

    // Ready once a call is answered (until the server consumes, the broker refuses it at once).
    let probe = || client.get_pet(GetPetRequest { pet_id: 1 });
    let first = retry_until("the pet store to answer over the queue", Duration::from_secs(20), probe).await;
    // An empty store: the typed 404 in the document's `Error` schema.
    match first.into_inner() {
        GetPetResponse::NotFound(e) => assert_eq!(e.code, Code::NotFound as i32, "{e:?}"),
        other => panic!("expected the 404 variant, got {other:?}"),
    }

    // No credentials: UNAUTHENTICATED, naming what the operation takes; the handler never ran.
    let err = client.create_pet(CreatePetRequest { body: pet("Rex") }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("X-API-Key"), "{}", err.message());
    // A wrong key: the server's authorize hook refuses it.
    let err = client.create_pet(keyed(CreatePetRequest { body: pet("Rex") }, "wrong")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("not valid"), "{}", err.message());

    // Bodies that break the schema: INVALID_ARGUMENT naming the JSON pointer in the request.
    let err = client.create_pet(keyed(CreatePetRequest { body: pet("") }, KEY)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("request body at /body/name:"), "{}", err.message());
    let heavy = NewPet { weight_kg: Some(900.0), ..pet("Rex") };
    let err = client.create_pet(keyed(CreatePetRequest { body: heavy }, KEY)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("request body at /body/weight_kg:"), "{}", err.message());
    // A parameter out of range: named too.
    let list = ListPetsRequest { status: None, tag: None, page_size: 1000, page_token: None };
    let err = client.list_pets(list).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("`page_size` at /page_size"), "{}", err.message());

    // Valid: the typed response the handler chose. (This client puts its key where the
    // operation's scheme wants it, as a REST client would.)
    let with_key = PetstoreQueueClient::new(&broker).timeout(Duration::from_secs(10)).with_api_key(KEY);
    let created = match with_key.create_pet(CreatePetRequest { body: pet("Luna") }).await.unwrap().into_inner() {
        CreatePetResponse::Created(p) => p,
        other => panic!("expected 201 Created, got {other:?}"),
    };
    assert_eq!(created.name, "Luna");
    let id = created.id.expect("the server gives new pets an id");
    match client.get_pet(GetPetRequest { pet_id: id }).await.unwrap().into_inner() {
        GetPetResponse::Ok(p) => assert_eq!((p.id, p.name.as_str()), (Some(id), "Luna")),
        other => panic!("expected 200, got {other:?}"),
    }
    let list = ListPetsRequest { status: None, tag: None, page_size: 10, page_token: None };
    match client.list_pets(list).await.unwrap().into_inner() {
        ListPetsResponse::Ok(page) => {
            let ids: Vec<_> = page.pets.iter().map(|p| p.id).collect();
            assert_eq!(ids, [Some(id)]);
        }
        other => panic!("expected 200, got {other:?}"),
    }

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_embedded_broker() {
    the_operation_contract_holds("memory://petstore-queue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq() {
    let Some(url) = env_or_skip(AMQP_URL) else { return };
    the_operation_contract_holds(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats() {
    let Some(url) = env_or_skip(NATS_URL) else { return };
    the_operation_contract_holds(&url).await;
}
