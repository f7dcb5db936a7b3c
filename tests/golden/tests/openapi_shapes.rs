//! The generated code of tests/fixtures/openapi/openapi/shapes.yaml (an OpenAPI 3.0 document
//! with every schema and operation shape) behaving as its document says: JSON round trips of the
//! models, and a real server and client on loopback for every parameter place and body type.

use golden::openapi::shapes::*;
use switchboard::api::{Binary, Credentials};
use switchboard::serde_json::{self, json};
use std::time::Duration;

use switchboard::{Request, Response, Status};
use switchboard_test_support::http::Http;
use switchboard_test_support::ready::retry_until;

#[test]
fn models_follow_the_json_names_and_shapes() {
    let k: Keywords = serde_json::from_value(json!({"type": "t", "self": "s", "+1": 1, "-1": 2, "foo-bar": "dash", "foo_bar": "under", "@id": "x"})).unwrap();
    assert_eq!((k.r#type.as_deref(), k.self_.as_deref(), k.plus_1, k.minus_1), (Some("t"), Some("s"), Some(1), Some(2)));
    assert_eq!((k.foo_bar.as_deref(), k.foo_bar2.as_deref(), k.at_id.as_deref()), (Some("dash"), Some("under"), Some("x")));
    assert_eq!(serde_json::to_value(&k).unwrap()["+1"], 1);

    // Required + nullable: must be there, may be null; written as null.
    // An absent property with a schema default gets the default (`defaulted: true`).
    let n: Nullable = serde_json::from_value(json!({"always": "a", "maybe": null})).unwrap();
    assert_eq!(n.maybe, None);
    assert!(n.defaulted);
    assert_eq!(serde_json::to_value(&n).unwrap(), json!({"always": "a", "maybe": null, "defaulted": true}));
    let n: Nullable = serde_json::from_value(json!({"always": "a", "maybe": "m", "defaulted": false})).unwrap();
    assert!(!n.defaulted);
    let err = serde_json::from_value::<Nullable>(json!({"maybe": "m"})).unwrap_err().to_string();
    assert!(err.contains("missing property `always`"), "{err}");
    let err = serde_json::from_value::<Nullable>(json!({"always": 5, "maybe": null})).unwrap_err().to_string();
    assert!(err.contains("`always`"), "{err}");

    // Recursion.
    let tree: Node = serde_json::from_value(json!({"name": "root", "children": [{"name": "a", "parent": {"name": "root"}}]})).unwrap();
    assert_eq!(tree.children.as_ref().unwrap()[0].parent.as_ref().unwrap().name, "root");

    // Formats.
    let f: Formats = serde_json::from_value(json!({"when": "2024-05-06T07:08:09+02:00", "day": "2024-05-06", "id": "6f1c2f8e-6f40-4a7a-9d4e-6b7b2a0f0d11", "raw": "aGk=", "anything": [1, {"x": null}]})).unwrap();
    assert_eq!(f.when.unwrap().to_rfc3339(), "2024-05-06T05:08:09+00:00");
    assert_eq!(f.raw.unwrap().0, b"hi");
    assert_eq!(f.anything.unwrap(), json!([1, {"x": null}]));
    assert!(serde_json::from_value::<Formats>(json!({"day": "yesterday"})).is_err());

    // Enums: known values by name, unknown ones kept.
    let phases: Vec<Phase> = serde_json::from_value(json!(["in-progress", "2xx", "paused"])).unwrap();
    assert_eq!(phases, [Phase::InProgress, Phase::V2xx, Phase::Other("paused".into())]);
    assert_eq!(serde_json::to_value(&phases).unwrap(), json!(["in-progress", "2xx", "paused"]));
    assert_eq!(serde_json::from_value::<Priority>(json!(2)).unwrap(), Priority::V2);

    // Maps and additional properties.
    let labels: Labels = serde_json::from_value(json!({"a": 1, "b": 2})).unwrap();
    assert_eq!(labels["b"], 2);
    let e: Extensible = serde_json::from_value(json!({"kind": "k", "x": "1", "y": "2"})).unwrap();
    assert_eq!(e.additional_properties.len(), 2);
    assert_eq!(serde_json::to_value(&e).unwrap(), json!({"kind": "k", "x": "1", "y": "2"}));

    // allOf merged into one struct.
    let d: Derived = serde_json::from_value(json!({"id": "i", "extra": 3})).unwrap();
    assert_eq!((d.id.as_str(), d.extra), ("i", 3));

    // oneOf without a discriminator: the first alternative that reads the value.
    let s: Vec<Scalarish> = serde_json::from_value(json!(["x", 4, {"id": "b"}])).unwrap();
    assert!(matches!(&s[..], [Scalarish::String(_), Scalarish::Integer(4), Scalarish::Base(_)]));
    assert!(serde_json::from_value::<Scalarish>(json!(true)).is_err());

    // oneOf with a discriminator: the tag picks the variant, which keeps the tag.
    let shape: Shape = serde_json::from_value(json!({"shape": "Square", "side": 2.0})).unwrap();
    assert!(matches!(&shape, Shape::Square(s) if s.side == 2.0 && s.shape == "Square"));
    assert_eq!(serde_json::to_value(&shape).unwrap(), json!({"shape": "Square", "side": 2.0}));
    let err = serde_json::from_value::<Shape>(json!({"shape": "Hexagon"})).unwrap_err().to_string();
    assert!(err.contains("Hexagon"), "{err}");

    // A schema from another file (common.yaml) became a component.
    let p: Price = serde_json::from_value(json!({"net": {"amount": "1.50", "currency": "EUR"}})).unwrap();
    assert_eq!(p.net.currency, Currency::Eur);

    // Response enums: externally tagged JSON, statuses carried where the document has ranges.
    let r: GetThingResponse = serde_json::from_value(json!({"Default": [418, {"message": "teapot"}]})).unwrap();
    assert!(matches!(r, GetThingResponse::Default(418, Problem { ref message }) if message == "teapot"));
    assert_eq!(serde_json::to_value(GetThingResponse::Status2xx(202)).unwrap(), json!({"Status2xx": 202}));
}

/// The handler. `handled` receives what `put_thing_form` was called with (thing id, name,
/// size), so a test can see from its own task that a call or an event reached the handler, and
/// with what.
#[derive(Default)]
struct Impl {
    handled: Option<tokio::sync::mpsc::UnboundedSender<(String, String, Option<i64>)>>,
}

impl Shapes for Impl {
    async fn get_thing(&self, req: Request<GetThingRequest>) -> Result<Response<GetThingResponse>, Status> {
        let who = match req.extensions().get::<Credentials>() {
            Some(c) if c.bearer().is_some() => format!("bearer {}", c.bearer().unwrap_or_default()),
            Some(c) if c.basic().is_some() => format!("basic {}", c.basic().map(|(u, _)| u).unwrap_or_default()),
            _ => "nobody".into(),
        };
        let r = req.into_inner();
        match r.thing_id.as_str() {
            "teapot" => return Ok(Response::new(GetThingResponse::Default(418, Problem { message: who }))),
            "accepted" => return Ok(Response::new(GetThingResponse::Status2xx(202))),
            _ => {}
        }
        let echo = json!({
            "id": r.thing_id, "trace": r.x_trace_id.map(|u| u.to_string()), "sid": r.sid, "ids": r.ids,
            "filter": r.filter.map(|f| json!({"phase": f.phase, "min": f.min})), "who": who,
        });
        let body = GetThingResponse200 {
            keywords: None,
            nullable: None,
            tree: None,
            formats: Some(Formats { anything: Some(echo), i32: None, i64: None, f32: None, f64: None, when: None, day: None, id: None, raw: None, link: None, mail: None }),
            priority: Some(Priority::V3),
            phase: Some(Phase::Done),
            labels: None,
            extensible: None,
            derived: None,
            scalarish: None,
            shape: Some(Shape::Circle(Circle { shape: "Circle".into(), radius: 1.5 })),
            price: None,
            inline: None,
        };
        Ok(Response::new(GetThingResponse::Ok(body)))
    }

    async fn put_thing_form(&self, req: Request<PutThingFormRequest>) -> Result<Response<PutThingFormResponse>, Status> {
        let r = req.into_inner();
        if let Some(handled) = &self.handled {
            let _ = handled.send((r.thing_id.clone(), r.body.name.clone(), r.body.size));
        }
        if r.body.name == "bad" {
            return Err(Status::invalid_argument("bad name"));
        }
        if r.body.size != Some(7) {
            return Err(Status::invalid_argument(format!("size {:?}, expected Some(7)", r.body.size)));
        }
        Ok(Response::new(PutThingFormResponse::NoContent))
    }

    async fn upload(&self, req: Request<UploadRequest>) -> Result<Response<UploadResponse>, Status> {
        let sid = req.extensions().get::<Credentials>().and_then(|c| c.api_key().map(str::to_owned)).unwrap_or_default();
        let body = req.into_inner().body.ok_or_else(|| Status::invalid_argument("no body"))?;
        Ok(Response::new(UploadResponse::Created(format!(
            "{} bytes, note {:?}, count {:?}, session {sid}",
            body.file.0.len(),
            body.note,
            body.count
        ))))
    }

    async fn put_blob(&self, req: Request<PutBlobRequest>) -> Result<Response<PutBlobResponse>, Status> {
        let r = req.into_inner();
        if r.name == "empty" {
            return Ok(Response::new(PutBlobResponse::Status4xx(409)));
        }
        let mut bytes = r.body.0.to_vec();
        bytes.reverse();
        Ok(Response::new(PutBlobResponse::Ok(Binary::from(bytes))))
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ShapesRestServer::new(Impl::default()).serve(listener));
    format!("http://{addr}")
}

#[tokio::test]
async fn every_parameter_place_and_body_type_over_http() {
    let base = serve().await;
    let mut client = ShapesRestClient::new(&base).unwrap().with_bearer("tok");
    let trace = switchboard::uuid::Uuid::parse_str("6f1c2f8e-6f40-4a7a-9d4e-6b7b2a0f0d11").unwrap();
    let answer = client
        .get_thing(GetThingRequest {
            thing_id: "a b/c".into(),
            x_trace_id: Some(trace),
            sid: Some("cookie-1".into()),
            ids: Some(vec![1, 2, 3]),
            filter: Some(GetThingFilter { phase: Some("done".into()), min: Some(2) }),
        })
        .await
        .unwrap()
        .into_inner();
    let GetThingResponse::Ok(body) = answer else { panic!("{answer:?}") };
    assert_eq!(
        body.formats.unwrap().anything.unwrap(),
        json!({"id": "a b/c", "trace": trace.to_string(), "sid": "cookie-1", "ids": [1, 2, 3], "filter": {"phase": "done", "min": 2}, "who": "bearer tok"})
    );
    assert!(matches!(body.shape, Some(Shape::Circle(_))));
    assert_eq!(body.priority, Some(Priority::V3));

    // default and 2XX variants carry their status.
    let mut basic = ShapesRestClient::new(&base).unwrap().with_basic("ann", "pw");
    let teapot = basic.get_thing(GetThingRequest { thing_id: "teapot".into(), x_trace_id: None, sid: None, ids: None, filter: None }).await.unwrap();
    assert!(matches!(teapot.into_inner(), GetThingResponse::Default(418, Problem { message }) if message == "basic ann"));
    let accepted = basic.get_thing(GetThingRequest { thing_id: "accepted".into(), x_trace_id: None, sid: None, ids: None, filter: None }).await.unwrap();
    assert!(matches!(accepted.into_inner(), GetThingResponse::Status2xx(202)));

    // Form body.
    let stored = client.put_thing_form(PutThingFormRequest { thing_id: "t".into(), body: PutThingFormBody { name: "n".into(), size: Some(7) } }).await.unwrap();
    assert!(matches!(stored.into_inner(), PutThingFormResponse::NoContent));
    let refused = client.put_thing_form(PutThingFormRequest { thing_id: "t".into(), body: PutThingFormBody { name: "bad".into(), size: Some(7) } }).await.unwrap_err();
    assert_eq!(refused.code(), switchboard::Code::InvalidArgument);

    // Multipart with a file part, behind a cookie API key.
    let mut session = ShapesRestClient::new(&base).unwrap().with_api_key("s-1");
    let upload = UploadRequest { body: Some(Upload { file: Binary::from(vec![0u8, 1, 2, 255]), note: Some("hi".into()), count: Some(2) }) };
    let text = session.upload(upload).await.unwrap().into_inner();
    assert!(matches!(&text, UploadResponse::Created(t) if t == "4 bytes, note Some(\"hi\"), count Some(2), session s-1"), "{text:?}");

    // Octet-stream both ways, and a 4XX range.
    let blob = client.put_blob(PutBlobRequest { name: "b".into(), body: Binary::from(vec![1u8, 2, 3]) }).await.unwrap().into_inner();
    assert!(matches!(blob, PutBlobResponse::Ok(ref b) if b.0.as_ref() == [3, 2, 1]), "{blob:?}");
    let conflict = client.put_blob(PutBlobRequest { name: "empty".into(), body: Binary::from(vec![0u8]) }).await.unwrap().into_inner();
    assert!(matches!(conflict, PutBlobResponse::Status4xx(409)), "{conflict:?}");
}

#[tokio::test]
async fn the_server_checks_credentials_and_parameters() {
    let base = serve().await;
    let http = Http::new(&base);
    // Secured by bearer or basic: nothing given → 401 before the handler runs.
    let answer = http.get("/things/x").send().await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    let mut client = ShapesRestClient::new(&base).unwrap();
    // The document's `default` response covers 401, so the client hands it back typed.
    let answer = client.get_thing(GetThingRequest { thing_id: "x".into(), x_trace_id: None, sid: None, ids: None, filter: None }).await.unwrap();
    assert!(matches!(answer.into_inner(), GetThingResponse::Default(401, Problem { ref message }) if message.contains("credentials")));
    // A pipe-delimited integer array with a non-integer names the parameter.
    let answer = http.get("/things/x?ids=1|x").header("authorization", "Bearer t").send().await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("`ids`"), "{}", answer.text());
    // A malformed UUID header fails the schema's format.
    let answer = http.get("/things/x").headers(&[("authorization", "Bearer t"), ("x-trace-id", "nope")]).send().await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("X-Trace-Id"), "{}", answer.text());
}

/// The same generated OpenAPI service over the embedded broker: JSON bodies, the response enum
/// round-trips, handler errors come back as statuses, and the `x-switchboard-event` operation is
/// published fire-and-forget.
#[tokio::test]
async fn the_openapi_service_over_the_embedded_broker() {
    use switchboard::queue::Broker;
    let broker = Broker::connect("memory://openapi-shapes").await.unwrap();
    let (handled, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = ShapesQueueServer::new(Impl { handled: Some(handled) });
    let b = broker.clone();
    tokio::spawn(async move { server.serve(&b).await.unwrap() });
    let client = ShapesQueueClient::new(&broker).timeout(Duration::from_secs(5));
    // Ready once a call goes through (until then nobody consumes: UNAVAILABLE at once).
    let probe = || client.put_blob(PutBlobRequest { name: "probe".into(), body: Binary::from(vec![0u8]) });
    retry_until("the queue server to answer", Duration::from_secs(10), probe).await;
    let body = PutThingFormBody { name: "ok".into(), size: Some(7) };
    let resp = client.put_thing_form(PutThingFormRequest { thing_id: "t1".into(), body }).await.unwrap();
    assert!(matches!(resp.into_inner(), PutThingFormResponse::NoContent));
    let blob = client.put_blob(PutBlobRequest { name: "b".into(), body: Binary::from(vec![1u8, 2, 3]) }).await;
    match blob.unwrap().into_inner() {
        PutBlobResponse::Ok(bytes) => assert_eq!(bytes.0.to_vec(), vec![3u8, 2, 1]),
        other => panic!("unexpected {other:?}"),
    }
    let bad = PutThingFormBody { name: "bad".into(), size: None };
    let err = client.put_thing_form(PutThingFormRequest { thing_id: "t1".into(), body: bad }).await.unwrap_err();
    assert_eq!(err.code(), switchboard::Code::InvalidArgument);
    assert_eq!(err.message(), "bad name");
    // The three calls reached the handler with their bodies.
    for expected in [("t1", "ok", Some(7)), ("t1", "bad", None)] {
        let got = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await.expect("the handler ran").unwrap();
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2), expected);
    }
    // An event: returns once the broker holds it; then the handler runs, with nobody waiting
    // for a reply. The test sees it through the handler's channel: the same body, handled once.
    let body = PutThingFormBody { name: "ok".into(), size: Some(7) };
    client.publish_put_thing_form(PutThingFormRequest { thing_id: "t2".into(), body }).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the event was not handled within 10 s")
        .expect("the server ended");
    assert_eq!(got, ("t2".to_owned(), "ok".to_owned(), Some(7)), "the event reached the handler with another body");
    // Handled successfully: it is not retried (a failed attempt would run the handler again)
    // and nothing is dead-lettered.
    let method = SHAPES_DESCRIPTOR.methods.iter().find(|m| m.rust_name == "put_thing_form").unwrap();
    let dead = broker.dead_letters(SHAPES_DESCRIPTOR.full_name, method.name, 10).await.unwrap();
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    assert!(seen.try_recv().is_err(), "the handler ran again");
}
