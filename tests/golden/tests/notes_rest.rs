//! The grpc-gateway-style notes fixture (tests/fixtures/notes) served over REST from its
//! generated code and called as curl would and with the generated REST client: `body` and
//! `response_body` naming nested fields, path variables into nested and oneof fields, additional
//! bindings, and the protoc-gen-openapiv2 options in the served OpenAPI document.

use golden::notes::notes::v1::*;
use serde_json::{json, Value};
use switchboard::{Request, Response, Status};
use switchboard_test_support::http::Http;

struct Notes;

impl NoteService for Notes {
    async fn create_note(&self, request: Request<CreateNoteRequest>) -> Result<Response<Note>, Status> {
        let req = request.into_inner();
        let payload = req.payload.ok_or_else(|| Status::invalid_argument("payload is required"))?;
        let mut note = payload.note.ok_or_else(|| Status::invalid_argument("payload.note is required"))?;
        note.id = format!("n-{}", req.request_id);
        note.notebook = req.parent.map(|p| p.name).unwrap_or_default();
        if !payload.comment.is_empty() {
            note.text = format!("{} / {}", note.text, payload.comment);
        }
        Ok(Response::new(note))
    }

    async fn rename_note(&self, request: Request<RenameNoteRequest>) -> Result<Response<Note>, Status> {
        let req = request.into_inner();
        let change = req.change.unwrap_or_default();
        let labels = if change.reason.is_empty() { vec![] } else { vec![change.reason] };
        Ok(Response::new(Note { id: req.id, text: change.title, labels, ..Default::default() }))
    }

    async fn get_note_text(&self, request: Request<GetNoteRequest>) -> Result<Response<NoteView>, Status> {
        let req = request.into_inner();
        if req.id == "missing" {
            return Err(Status::not_found("note missing does not exist"));
        }
        let text = format!("text of {}{}", req.id, if req.render { " (rendered)" } else { "" });
        let content = note_view::Content { length: text.len() as i32, text };
        Ok(Response::new(NoteView { content: Some(content), etag: "e1".into() }))
    }

    async fn find_note(&self, request: Request<FindNoteRequest>) -> Result<Response<Note>, Status> {
        let req = request.into_inner();
        let id = match req.key {
            Some(find_note_request::Key::NoteId(id)) => id,
            Some(find_note_request::Key::Slug(slug)) => format!("slug:{slug}"),
            None => return Err(Status::invalid_argument("give note_id or slug")),
        };
        let labels = if req.include_deleted { vec!["deleted included".to_owned()] } else { vec![] };
        Ok(Response::new(Note { id, labels, ..Default::default() }))
    }

    async fn update_note(&self, request: Request<UpdateNoteRequest>) -> Result<Response<Note>, Status> {
        let req = request.into_inner();
        let mut note = req.note.unwrap_or_default();
        if req.allow_missing {
            note.labels.push("allow_missing".into());
        }
        Ok(Response::new(note))
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchboard::Server::builder().add_service(NoteServiceServer::new(Notes)).serve(listener));
    format!("http://{addr}")
}

/// Status and JSON body of one request.
async fn call(base: &str, method: &str, target: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = Http::new(base).request(method, target);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let answer = request.send().await;
    let text = answer.text();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {target}: not JSON ({e}): {text}"));
    (answer.status, value)
}

#[tokio::test]
async fn body_is_a_nested_field_and_the_path_sets_another() {
    let base = serve().await;
    let (status, note) = call(
        &base,
        "POST",
        "/v1/notebooks/nb1/notes?request_id=r1&payload.comment=urgent",
        Some(r#"{"text": "Buy milk", "labels": ["home"]}"#),
    )
    .await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(note, json!({"id": "n-r1", "notebook": "notebooks/nb1", "text": "Buy milk / urgent", "labels": ["home"]}));

    // A query parameter may not set part of the body.
    let (status, error) =
        call(&base, "POST", "/v1/notebooks/nb1/notes?payload.note.text=x", Some(r#"{"text": "y"}"#)).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["message"].as_str().unwrap().contains("payload.note"), "{error}");
}

#[tokio::test]
async fn body_is_a_nested_scalar_field() {
    let base = serve().await;
    let (status, note) = call(&base, "POST", "/v1/notes/7:rename?change.reason=typo", Some(r#""New title""#)).await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(note, json!({"id": "7", "text": "New title", "labels": ["typo"]}));
}

#[tokio::test]
async fn response_body_is_a_nested_field() {
    let base = serve().await;
    let (status, text) = call(&base, "GET", "/v1/notes/7/text?render=true", None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, json!("text of 7 (rendered)"));
    // Errors are still the status object, not a field of it.
    let (status, error) = call(&base, "GET", "/v1/notes/missing/text", None).await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["message"], "note missing does not exist");
}

#[tokio::test]
async fn path_variables_set_oneof_members_through_additional_bindings() {
    let base = serve().await;
    let (status, note) = call(&base, "GET", "/v1/notes/by-id/abc", None).await;
    assert_eq!((status, note), (200, json!({"id": "abc"})));
    let (status, note) = call(&base, "GET", "/v1/notes/by-slug/my-note?include_deleted=true", None).await;
    assert_eq!((status, note), (200, json!({"id": "slug:my-note", "labels": ["deleted included"]})));
    let (status, note) = call(&base, "POST", "/v1/notes:find", Some(r#"{"slug": "s1"}"#)).await;
    assert_eq!((status, note), (200, json!({"id": "slug:s1"})));
    // Setting the other member of the oneof too is the client's mistake.
    let (status, error) = call(&base, "GET", "/v1/notes/by-id/abc?slug=x", None).await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn path_variable_sets_a_field_two_levels_into_the_body() {
    let base = serve().await;
    let (status, note) = call(
        &base,
        "PATCH",
        "/v1/notebooks/nb/notes/n1?allow_missing=true",
        Some(r#"{"text": "t", "meta": {"revision": "3"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(
        note,
        json!({"text": "t", "labels": ["allow_missing"], "meta": {"name": "notebooks/nb/notes/n1", "revision": "3"}})
    );
}

#[tokio::test]
async fn rest_client_sends_nested_bodies_and_reads_nested_responses() {
    let base = serve().await;
    let mut client = NoteServiceRestClient::new(&base).unwrap();
    let note = client
        .create_note(CreateNoteRequest {
            parent: Some(Notebook { name: "notebooks/nb2".into() }),
            payload: Some(create_note_request::Payload {
                note: Some(Note { text: "Call Bob".into(), ..Default::default() }),
                comment: "today".into(),
            }),
            request_id: "r2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((note.id.as_str(), note.notebook.as_str(), note.text.as_str()), ("n-r2", "notebooks/nb2", "Call Bob / today"));

    let renamed = client
        .rename_note(RenameNoteRequest {
            id: "9".into(),
            change: Some(rename_note_request::Change { title: "Renamed".into(), reason: "why not".into() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((renamed.id.as_str(), renamed.text.as_str(), renamed.labels.clone()), ("9", "Renamed", vec!["why not".to_owned()]));

    // response_body `content.text`: the client puts the string back where it belongs.
    let view = client.get_note_text(GetNoteRequest { id: "5".into(), render: false }).await.unwrap().into_inner();
    assert_eq!(view.content.map(|c| c.text), Some("text of 5".to_owned()));
    let err = client.get_note_text(GetNoteRequest { id: "missing".into(), render: false }).await.unwrap_err();
    assert_eq!(err.code(), switchboard::Code::NotFound);

    let updated = client
        .update_note(UpdateNoteRequest {
            note: Some(Note {
                text: "u".into(),
                meta: Some(Meta { name: "notebooks/a/notes/b".into(), revision: 4 }),
                ..Default::default()
            }),
            allow_missing: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.meta, Some(Meta { name: "notebooks/a/notes/b".into(), revision: 4 }));

    let found = client
        .find_note(FindNoteRequest { key: Some(find_note_request::Key::NoteId("x1".into())), include_deleted: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((found.id.as_str(), found.labels.clone()), ("x1", vec!["deleted included".to_owned()]));
    // The other member of the oneof: the client takes the binding whose path it can fill.
    let found = client
        .find_note(FindNoteRequest { key: Some(find_note_request::Key::Slug("my-note".into())), include_deleted: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, "slug:my-note");
}

#[tokio::test]
async fn served_openapi_document_carries_the_openapiv2_options() {
    let base = serve().await;
    let (status, doc) = call(&base, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["info"]["title"], "Notes API");
    assert_eq!(doc["info"]["version"], "1.2.0");
    assert_eq!(doc["tags"][0], json!({"name": "Notebook", "description": "Notes and the notebooks they are filed in."}));
    assert_eq!(doc["paths"]["/v1/notes/{id}/text"]["get"]["tags"], json!(["Notebook"]));
    let create = &doc["paths"]["/v1/notebooks/{notebook}/notes"]["post"];
    assert_eq!(create["operationId"], "createNote");
    assert_eq!(create["summary"], "Create a note");
    assert_eq!(create["tags"], json!(["notes"]));
    assert_eq!(create["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/notes.v1.Note");
    let query: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(query, ["payload.comment", "request_id"]);
    let text = &doc["paths"]["/v1/notes/{id}/text"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(text, &json!({"type": "string"}));
    assert_eq!(doc["paths"]["/v1/notes/by-slug/{slug}"]["get"]["deprecated"], true);
    let note = &doc["components"]["schemas"]["notes.v1.Note"];
    assert_eq!(note["title"], "Note");
    assert_eq!(note["examples"], json!([{"id": "n1", "text": "Buy milk"}]));
    assert_eq!(note["properties"]["id"]["description"], "Assigned by the server.");
}
