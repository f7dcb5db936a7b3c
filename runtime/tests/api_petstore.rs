//! An OpenAPI service (the petstore in `api/petstore.rs`, in the shape the generator emits)
//! served over real HTTP on loopback: parameters in every location and several styles, JSON,
//! form, multipart, octet-stream and text bodies, validation errors naming the parameter or the
//! JSON pointer, security (401 + `WWW-Authenticate`, the authorize hook), typed responses
//! including `default` and `4XX` with their status, 404/405/415, `/openapi.json`, and the
//! generated REST client calling every operation.

#[path = "api/petstore.rs"]
mod petstore;

use std::collections::BTreeMap;
use std::sync::Mutex;

use petstore::*;
use switchboard::api::{Binary, Credentials, Operation};
use switchboard::{Code, Request, Response, Status};
use switchboard_test_support::http::{Answer, Http};

#[derive(Default)]
struct Store {
    pets: Mutex<BTreeMap<i64, Pet>>,
}

fn pet(id: i64, name: &str, tag: Option<&str>) -> Pet {
    Pet { id, name: name.into(), tag: tag.map(Into::into) }
}

impl Store {
    fn seeded() -> Self {
        let store = Store::default();
        let mut pets = store.pets.lock().unwrap();
        pets.insert(1, pet(1, "Rex", Some("dog")));
        pets.insert(2, pet(2, "Tom", Some("cat")));
        pets.insert(3, pet(3, "Nemo", None));
        drop(pets);
        store
    }
}

fn scheme_of(creds: Option<&Credentials>) -> String {
    creds.map(|c| c.iter().map(|(s, _)| s).collect::<Vec<_>>().join(",")).unwrap_or_else(|| "none".into())
}

impl Petstore for Store {
    async fn list_pets(&self, req: Request<ListPetsRequest>) -> Result<Response<ListPetsResponse>, Status> {
        let trace = req.get_ref().x_trace.clone();
        let q = req.into_inner();
        if q.session.as_deref() == Some("expired") {
            let error = Error { code: 440, message: "session expired".into() };
            return Ok(Response::new(ListPetsResponse::Default(503, error)));
        }
        let mut pets: Vec<Pet> = self.pets.lock().unwrap().values().cloned().collect();
        if let Some(tags) = &q.tags {
            pets.retain(|p| p.tag.as_ref().is_some_and(|t| tags.contains(t)));
        }
        if let Some(ids) = &q.ids {
            pets.retain(|p| ids.contains(&p.id));
        }
        if let Some(limit) = q.limit {
            pets.truncate(limit as usize);
        }
        let mut resp = Response::new(ListPetsResponse::Ok(pets));
        if let Some(trace) = trace {
            resp.metadata_mut().insert("x-trace", trace.parse().unwrap());
        }
        Ok(resp)
    }

    async fn create_pet(&self, req: Request<CreatePetRequest>) -> Result<Response<CreatePetResponse>, Status> {
        let user = req.extensions().get::<Credentials>().and_then(|c| c.basic()).map(|(u, _)| u.to_owned());
        let new = req.into_inner().body;
        if new.name == "dup" {
            let error = Error { code: 409, message: "a pet with this name exists".into() };
            return Ok(Response::new(CreatePetResponse::Default(409, error)));
        }
        let mut pets = self.pets.lock().unwrap();
        let id = pets.keys().last().copied().unwrap_or(0) + 1;
        let tag = new.tag.or_else(|| new.tags.map(|t| t.join("+")));
        let created = Pet { id, name: new.name, tag };
        pets.insert(id, created.clone());
        let mut resp = Response::new(CreatePetResponse::Created(created));
        resp.metadata_mut().insert("x-created-by", user.unwrap_or_default().parse().unwrap());
        Ok(resp)
    }

    async fn get_my_pet(&self, req: Request<GetMyPetRequest>) -> Result<Response<GetMyPetResponse>, Status> {
        if req.metadata().get("x-none").is_some() {
            return Err(Status::not_found("you have no pet"));
        }
        Ok(Response::new(GetMyPetResponse::Ok(pet(0, "Mine", None))))
    }

    async fn get_pet(&self, req: Request<GetPetRequest>) -> Result<Response<GetPetResponse>, Status> {
        let scheme = scheme_of(req.extensions().get::<Credentials>());
        let id = req.get_ref().pet_id;
        if id == 500 {
            return Err(Status::internal("the store is on fire"));
        }
        let answer = match self.pets.lock().unwrap().get(&id) {
            Some(p) => GetPetResponse::Ok(p.clone()),
            None => GetPetResponse::NotFound(Error { code: 404, message: format!("no pet {id}") }),
        };
        let mut resp = Response::new(answer);
        resp.metadata_mut().insert("x-auth-scheme", scheme.parse().unwrap());
        Ok(resp)
    }

    async fn delete_pet(&self, req: Request<DeletePetRequest>) -> Result<Response<DeletePetResponse>, Status> {
        let id = req.into_inner().pet_id;
        if id == 1 {
            return Ok(Response::new(DeletePetResponse::ClientError(409)));
        }
        match self.pets.lock().unwrap().remove(&id) {
            Some(_) => Ok(Response::new(DeletePetResponse::NoContent)),
            None => Ok(Response::new(DeletePetResponse::ClientError(404))),
        }
    }

    async fn upload_photo(&self, req: Request<UploadPhotoRequest>) -> Result<Response<UploadPhotoResponse>, Status> {
        let body = req.into_inner().body;
        Ok(Response::new(UploadPhotoResponse::Ok(Photo {
            size: body.file.0.len() as i64,
            caption: body.caption,
            rating: body.rating,
            labels: body.labels,
        })))
    }

    async fn put_pet_data(&self, req: Request<PutPetDataRequest>) -> Result<Response<PutPetDataResponse>, Status> {
        let mut bytes = req.into_inner().body.0.to_vec();
        bytes.reverse();
        Ok(Response::new(PutPetDataResponse::Ok(Binary::from(bytes))))
    }

    async fn get_pet_name(&self, req: Request<GetPetNameRequest>) -> Result<Response<GetPetNameResponse>, Status> {
        let id = req.into_inner().pet_id;
        match self.pets.lock().unwrap().get(&id) {
            Some(p) => Ok(Response::new(GetPetNameResponse::Ok(p.name.clone()))),
            None => Err(Status::not_found(format!("no pet {id}"))),
        }
    }

    async fn set_pet_name(&self, req: Request<SetPetNameRequest>) -> Result<Response<SetPetNameResponse>, Status> {
        let r = req.into_inner();
        match self.pets.lock().unwrap().get_mut(&r.pet_id) {
            Some(p) => {
                p.name = r.body;
                Ok(Response::new(SetPetNameResponse::NoContent))
            }
            None => Err(Status::not_found(format!("no pet {}", r.pet_id))),
        }
    }

    async fn compare(&self, req: Request<CompareRequest>) -> Result<Response<CompareResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(CompareResponse::Ok(Comparison { base: Some(r.base), head: Some(r.head) })))
    }

    async fn styles(&self, req: Request<StylesRequest>) -> Result<Response<StylesResponse>, Status> {
        let scheme = scheme_of(req.extensions().get::<Credentials>());
        let r = req.into_inner();
        let value = switchboard::serde_json::json!({"label": r.label, "matrix": r.matrix, "filter": r.filter, "auth": scheme});
        Ok(Response::new(StylesResponse::Ok(value)))
    }

    async fn teapot(&self, req: Request<TeapotRequest>) -> Result<Response<TeapotResponse>, Status> {
        let code = req.into_inner().code;
        Ok(Response::new(match code {
            200 => TeapotResponse::Ok("coffee".into()),
            400..=499 => TeapotResponse::ClientError(code as u16),
            _ => TeapotResponse::Default(code as u16, Error { code, message: "teapot trouble".into() }),
        }))
    }
}

/// The server's authorization: who may do what.
fn authorize(op: &Operation, creds: &Credentials) -> Result<(), Status> {
    match op.id {
        "createPet" => match creds.basic() {
            Some(("admin", "secret")) => Ok(()),
            Some(("admin", _)) => Err(Status::unauthenticated("wrong password")),
            _ => Err(Status::permission_denied("only admin creates pets")),
        },
        _ => {
            let good = creds.api_key().is_none_or(|k| k == "key-1") && creds.bearer().is_none_or(|t| t == "token-1");
            if good { Ok(()) } else { Err(Status::unauthenticated("unknown credentials")) }
        }
    }
}

async fn serve() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = PetstoreRestServer::new(Store::seeded()).authorize(authorize);
    tokio::spawn(server.serve(listener));
    addr
}

/// The `message` of a JSON error body.
trait ErrorMessage {
    fn message(&self) -> String;
}

impl ErrorMessage for Answer {
    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// A plain HTTP/1.1 exchange, as curl would make it (switchboard-test-support's client).
async fn http(addr: std::net::SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    Http::new(addr).request(method, target).headers(headers).body(body.to_vec()).send().await
}

async fn get(addr: std::net::SocketAddr, target: &str, headers: &[(&str, &str)]) -> Answer {
    http(addr, "GET", target, headers, b"").await
}

const ADMIN: (&str, &str) = ("authorization", "Basic YWRtaW46c2VjcmV0"); // admin:secret
const KEY: (&str, &str) = ("x-api-key", "key-1");

#[tokio::test]
async fn parameters_in_path_query_header_and_cookie() {
    let addr = serve().await;
    let all = get(addr, "/v1/pets", &[]).await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.header("content-type"), Some("application/json"));
    assert_eq!(all.json().as_array().unwrap().len(), 3);

    let some = get(addr, "/v1/pets?tags=dog&tags=cat&limit=1", &[("X-Trace", "abc-1")]).await;
    assert_eq!(some.json(), switchboard::serde_json::json!([{"id": 1, "name": "Rex", "tag": "dog"}]));
    assert_eq!(some.header("x-trace"), Some("abc-1"), "response metadata becomes headers");

    let piped = get(addr, "/v1/pets?ids=2%7C3", &[]).await;
    assert_eq!(piped.json().as_array().unwrap().len(), 2, "{}", piped.text());

    let expired = get(addr, "/v1/pets", &[("cookie", "theme=dark; session=expired")]).await;
    assert_eq!(expired.status, 503, "a `default` response carries its own status");
    assert_eq!(expired.json(), switchboard::serde_json::json!({"code": 440, "message": "session expired"}));

    let pet = get(addr, "/v1/pets/2", &[KEY]).await;
    assert_eq!(pet.json(), switchboard::serde_json::json!({"id": 2, "name": "Tom", "tag": "cat"}));
    let mine = get(addr, "/v1/pets/mine", &[]).await;
    assert_eq!(mine.json()["name"], "Mine", "a literal path beats `/pets/{{petId}}`");

    let cmp = get(addr, "/v1/compare/v1.0...feature%2Fx", &[]).await;
    assert_eq!(cmp.json(), switchboard::serde_json::json!({"base": "v1.0", "head": "feature/x"}));

    let styles = get(addr, "/v1/styles/.red.green/;matrix=1,2?filter%5Bkind%5D=dog&filter%5Bsize%5D=s", &[]).await;
    assert_eq!(styles.status, 200, "{}", styles.text());
    assert_eq!(
        styles.json(),
        switchboard::serde_json::json!({"label": ["red", "green"], "matrix": [1, 2], "filter": {"kind": "dog", "size": "s"}, "auth": ""})
    );
}

#[tokio::test]
async fn invalid_parameters_are_400_naming_them() {
    let addr = serve().await;
    let limit = get(addr, "/v1/pets?limit=500", &[]).await;
    assert_eq!(limit.status, 400);
    assert_eq!(limit.json()["code"], 3, "Google-style error body");
    assert!(limit.message().starts_with("query parameter `limit`"), "{}", limit.message());
    assert!(limit.message().contains("100"), "{}", limit.message());

    let not_int = get(addr, "/v1/pets?limit=ten", &[]).await;
    assert_eq!(not_int.status, 400);
    assert!(not_int.message().contains("query parameter `limit`"), "{}", not_int.message());

    let trace = get(addr, "/v1/pets", &[("X-Trace", "NOT VALID")]).await;
    assert_eq!(trace.status, 400);
    assert!(trace.message().starts_with("header `X-Trace`"), "{}", trace.message());

    let id = get(addr, "/v1/pets/0", &[KEY]).await;
    assert_eq!(id.status, 400);
    assert!(id.message().starts_with("path parameter `petId`"), "{}", id.message());
    let id = get(addr, "/v1/pets/abc", &[KEY]).await;
    assert!(id.message().starts_with("path parameter `petId`"), "{}", id.message());

    let missing = get(addr, "/v1/teapot", &[]).await;
    assert_eq!(missing.status, 400);
    assert!(missing.message().contains("query parameter `code`"), "{}", missing.message());
}

#[tokio::test]
async fn bodies_by_media_type() {
    let addr = serve().await;
    let json_ct = ("content-type", "application/json");

    let created = http(addr, "POST", "/v1/pets", &[ADMIN, json_ct], br#"{"name": "Fido", "tag": "dog"}"#).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["name"], "Fido");
    assert_eq!(created.header("x-created-by"), Some("admin"), "credentials reach the handler");

    let form = ("content-type", "application/x-www-form-urlencoded");
    let created = http(addr, "POST", "/v1/pets", &[ADMIN, form], b"name=Tweety&tags=bird&tags=yellow&age=2").await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["tag"], "bird+yellow");
    let bad_age = http(addr, "POST", "/v1/pets", &[ADMIN, form], b"name=Tweety&age=-1").await;
    assert_eq!(bad_age.status, 400);
    assert!(bad_age.message().starts_with("request body at /age"), "{}", bad_age.message());

    let bad = http(addr, "POST", "/v1/pets", &[ADMIN, json_ct], br#"{"name": "x", "tags": ["a", 1]}"#).await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().starts_with("request body at /tags/1: "), "{}", bad.message());
    let bad = http(addr, "POST", "/v1/pets", &[ADMIN, json_ct], br#"{"tag": "x"}"#).await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().starts_with("request body"), "{}", bad.message());
    assert!(bad.message().contains("name"), "{}", bad.message());
    let malformed = http(addr, "POST", "/v1/pets", &[ADMIN, json_ct], b"{").await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.message().contains("malformed JSON"), "{}", malformed.message());

    let empty = http(addr, "POST", "/v1/pets", &[ADMIN, json_ct], b"").await;
    assert_eq!(empty.status, 400);
    assert!(empty.message().contains("required"), "{}", empty.message());
    let wrong = http(addr, "POST", "/v1/pets", &[ADMIN, ("content-type", "text/plain")], b"Fido").await;
    assert_eq!(wrong.status, 415);
    assert!(wrong.message().contains("application/json"), "{}", wrong.message());

    let boundary = "XyZ";
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rex.png\"\r\nContent-Type: image/png\r\n\r\n",
    );
    multipart.extend_from_slice(&[0x89, b'P', b'N', b'G', 0, 0xff]);
    multipart.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nRex at the beach\r\n");
    multipart.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"rating\"\r\n\r\n4\r\n");
    multipart.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\nsun\r\n--XyZ--\r\n");
    let ct = format!("multipart/form-data; boundary={boundary}");
    let photo = http(addr, "POST", "/v1/pets/1/photo", &[("content-type", &ct)], &multipart).await;
    assert_eq!(photo.status, 200, "{}", photo.text());
    assert_eq!(
        photo.json(),
        switchboard::serde_json::json!({"size": 6, "caption": "Rex at the beach", "rating": 4, "labels": ["sun"]})
    );
    let too_good = String::from_utf8_lossy(&multipart).replace("\r\n4\r\n", "\r\n9\r\n");
    let photo = http(addr, "POST", "/v1/pets/1/photo", &[("content-type", &ct)], too_good.as_bytes()).await;
    assert_eq!(photo.status, 400);
    assert!(photo.message().starts_with("request body at /rating: "), "{}", photo.message());

    let octets = ("content-type", "application/octet-stream");
    let data = http(addr, "PUT", "/v1/pets/1/data", &[octets], &[1, 2, 3, 0xff]).await;
    assert_eq!(data.status, 200, "{}", data.text());
    assert_eq!(data.header("content-type"), Some("application/octet-stream"));
    assert_eq!(data.body, vec![0xff, 3, 2, 1]);

    let text = ("content-type", "text/plain; charset=utf-8");
    let renamed = http(addr, "PUT", "/v1/pets/3/name", &[text], "Némo".as_bytes()).await;
    assert_eq!(renamed.status, 204, "{}", renamed.text());
    assert!(renamed.body.is_empty());
    let name = get(addr, "/v1/pets/3/name", &[]).await;
    assert_eq!((name.status, name.header("content-type"), name.text().as_str()), (200, Some("text/plain"), "Némo"));
    let empty_name = http(addr, "PUT", "/v1/pets/3/name", &[text], b"").await;
    assert_eq!(empty_name.status, 400);
}

#[tokio::test]
async fn security_401_and_the_authorize_hook() {
    let addr = serve().await;
    let anonymous = get(addr, "/v1/pets/1", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.headers_named("www-authenticate"), ["Bearer"]);
    assert_eq!(anonymous.json()["code"], 16);
    assert!(anonymous.message().contains("X-API-Key"), "{}", anonymous.message());

    let by_key = get(addr, "/v1/pets/1", &[KEY]).await;
    assert_eq!((by_key.status, by_key.header("x-auth-scheme")), (200, Some("api_key")));
    let by_token = get(addr, "/v1/pets/1", &[("authorization", "Bearer token-1")]).await;
    assert_eq!((by_token.status, by_token.header("x-auth-scheme")), (200, Some("bearerAuth")));
    let bad_token = get(addr, "/v1/pets/1", &[("authorization", "Bearer nope")]).await;
    assert_eq!(bad_token.status, 401, "the hook refuses");
    assert_eq!(bad_token.message(), "unknown credentials");

    let no_basic = http(addr, "POST", "/v1/pets", &[("content-type", "application/json")], br#"{"name": "x"}"#).await;
    assert_eq!(no_basic.status, 401);
    assert!(no_basic.headers_named("www-authenticate")[0].starts_with("Basic realm=\"Petstore\""));
    let bob = ("authorization", "Basic Ym9iOnB3"); // bob:pw
    let forbidden = http(addr, "POST", "/v1/pets", &[bob, ("content-type", "application/json")], br#"{"name": "x"}"#).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.message(), "only admin creates pets");
    let forbidden_before_body = http(addr, "POST", "/v1/pets", &[bob, ("content-type", "application/json")], b"{").await;
    assert_eq!(forbidden_before_body.status, 403, "credentials are checked before the body is read");

    let optional = get(addr, "/v1/styles/.a/;matrix=1", &[]).await;
    assert_eq!(optional.json()["auth"], "", "an empty alternative lets anonymous calls in");
    let keyed = get(addr, "/v1/styles/.a/;matrix=1?api_key=key-1", &[]).await;
    assert_eq!(keyed.json()["auth"], "", "the empty alternative comes first and is satisfied");
}

#[tokio::test]
async fn typed_responses_unknown_paths_and_the_document() {
    let addr = serve().await;
    let teapot = get(addr, "/v1/teapot?code=418", &[]).await;
    assert_eq!(teapot.status, 418);
    assert!(teapot.body.is_empty() && teapot.header("content-type").is_none());
    let teapot = get(addr, "/v1/teapot?code=502", &[]).await;
    assert_eq!((teapot.status, teapot.json()["message"].as_str()), (502, Some("teapot trouble")));
    let coffee = get(addr, "/v1/teapot?code=200", &[]).await;
    assert_eq!(coffee.json(), "coffee");

    let missing = get(addr, "/v1/pets/77", &[KEY]).await;
    assert_eq!((missing.status, missing.json()["message"].as_str()), (404, Some("no pet 77")));
    let fire = get(addr, "/v1/pets/500", &[KEY]).await;
    assert_eq!((fire.status, fire.message().as_str()), (500, "the store is on fire"));
    let deleted = http(addr, "DELETE", "/v1/pets/2", &[("authorization", "Bearer token-1")], b"").await;
    assert_eq!(deleted.status, 204);
    let refused = http(addr, "DELETE", "/v1/pets/1", &[("authorization", "Bearer token-1")], b"").await;
    assert_eq!(refused.status, 409);

    assert_eq!(get(addr, "/v1/cats", &[]).await.status, 404);
    assert_eq!(get(addr, "/pets", &[]).await.status, 404, "operations live under the server's base path /v1");
    let patch = http(addr, "PATCH", "/v1/pets", &[], b"").await;
    assert_eq!(patch.status, 405);
    assert_eq!(patch.header("allow"), Some("GET, POST"));
    let head = http(addr, "HEAD", "/v1/pets", &[], b"").await;
    assert_eq!(head.status, 200);

    let doc = get(addr, "/openapi.json", &[]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.text(), PETSTORE_OPENAPI, "the document is served as written");
}

#[tokio::test]
async fn the_generated_client_calls_every_operation() {
    let addr = serve().await;
    let base = format!("http://{addr}/v1");
    let mut client = PetstoreRestClient::new(&base).unwrap().with_bearer("token-1").with_basic("admin", "secret");

    let mut req = Request::new(ListPetsRequest { tags: Some(vec!["dog".into(), "cat".into()]), x_trace: Some("t-1".into()), ..Default::default() });
    req.metadata_mut().insert("x-extra", "1".parse().unwrap());
    let resp = client.list_pets(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-trace").unwrap(), "t-1");
    assert_eq!(resp.into_inner(), ListPetsResponse::Ok(vec![pet(1, "Rex", Some("dog")), pet(2, "Tom", Some("cat"))]));
    let resp = client.list_pets(ListPetsRequest { ids: Some(vec![1, 3]), limit: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!(resp.into_inner(), ListPetsResponse::Ok(vec![pet(1, "Rex", Some("dog")), pet(3, "Nemo", None)]));
    let expired = client.list_pets(ListPetsRequest { session: Some("expired".into()), ..Default::default() }).await.unwrap();
    assert_eq!(expired.into_inner(), ListPetsResponse::Default(503, Error { code: 440, message: "session expired".into() }));

    let new = NewPet { name: "Fido".into(), tag: None, tags: Some(vec!["good".into(), "dog".into()]), age: Some(3) };
    let created = client.create_pet(CreatePetRequest { body: new }).await.unwrap();
    assert_eq!(created.metadata().get("x-created-by").unwrap(), "admin");
    let CreatePetResponse::Created(fido) = created.into_inner() else { panic!("not created") };
    assert_eq!((fido.name.as_str(), fido.tag.as_deref()), ("Fido", Some("good+dog")));
    let dup = NewPet { name: "dup".into(), tag: None, tags: None, age: None };
    let conflict = client.create_pet(CreatePetRequest { body: dup }).await.unwrap().into_inner();
    assert_eq!(conflict, CreatePetResponse::Default(409, Error { code: 409, message: "a pet with this name exists".into() }));

    let got = client.get_pet(GetPetRequest { pet_id: fido.id }).await.unwrap();
    assert_eq!(got.metadata().get("x-auth-scheme").unwrap(), "bearerAuth");
    assert_eq!(got.into_inner(), GetPetResponse::Ok(fido.clone()));
    let nope = client.get_pet(GetPetRequest { pet_id: 99 }).await.unwrap().into_inner();
    assert_eq!(nope, GetPetResponse::NotFound(Error { code: 404, message: "no pet 99".into() }));
    let fire = client.get_pet(GetPetRequest { pet_id: 500 }).await.unwrap().into_inner();
    assert!(matches!(fire, GetPetResponse::Default(500, ref e) if e.message == "the store is on fire"), "{fire:?}");
    let invalid = client.get_pet(GetPetRequest { pet_id: 0 }).await.unwrap().into_inner();
    assert!(matches!(invalid, GetPetResponse::Default(400, ref e) if e.message.contains("petId")), "{invalid:?}");

    let mut by_key = PetstoreRestClient::new(&base).unwrap().with_api_key("key-1");
    let got = by_key.get_pet(GetPetRequest { pet_id: 1 }).await.unwrap();
    assert_eq!(got.metadata().get("x-auth-scheme").unwrap(), "api_key");
    let styles = by_key.styles(StylesRequest { label: vec!["a".into()], matrix: vec![7], filter: None }).await.unwrap();
    let StylesResponse::Ok(v) = styles.into_inner();
    assert_eq!(v["matrix"], switchboard::serde_json::json!([7]));

    let mut anonymous = PetstoreRestClient::new(&base).unwrap();
    let denied = anonymous.delete_pet(DeletePetRequest { pet_id: 3 }).await.unwrap().into_inner();
    assert_eq!(denied, DeletePetResponse::ClientError(401), "a documented 4XX takes the server's 401");
    let denied = anonymous.get_pet(GetPetRequest { pet_id: 1 }).await.unwrap().into_inner();
    assert!(matches!(denied, GetPetResponse::Default(401, _)), "{denied:?}");
    let err = anonymous
        .create_pet(CreatePetRequest { body: NewPet { name: "x".into(), tag: None, tags: None, age: None } })
        .await
        .unwrap();
    assert!(matches!(err.into_inner(), CreatePetResponse::Default(401, _)));

    assert_eq!(client.delete_pet(DeletePetRequest { pet_id: 3 }).await.unwrap().into_inner(), DeletePetResponse::NoContent);
    assert_eq!(client.delete_pet(DeletePetRequest { pet_id: 3 }).await.unwrap().into_inner(), DeletePetResponse::ClientError(404));

    let body = UploadPhotoBody {
        file: Binary::from(vec![0u8, 1, 2, 3, 4]),
        caption: Some("hello \"world\"".into()),
        rating: Some(5),
        labels: Some(vec!["a".into(), "b".into()]),
    };
    let photo = client.upload_photo(UploadPhotoRequest { pet_id: 1, body }).await.unwrap().into_inner();
    assert_eq!(
        photo,
        UploadPhotoResponse::Ok(Photo { size: 5, caption: Some("hello \"world\"".into()), rating: Some(5), labels: Some(vec!["a".into(), "b".into()]) })
    );
    let bad = UploadPhotoBody { file: Binary::from(vec![1]), caption: None, rating: Some(6), labels: None };
    let err = client.upload_photo(UploadPhotoRequest { pet_id: 1, body: bad }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "an undocumented 400 is an error Status");
    assert!(err.message().starts_with("request body at /rating"), "{}", err.message());

    let data = client.put_pet_data(PutPetDataRequest { pet_id: 1, body: Binary::from(vec![1u8, 2, 3]) }).await.unwrap();
    assert_eq!(data.into_inner(), PutPetDataResponse::Ok(Binary::from(vec![3u8, 2, 1])));

    let renamed = client.set_pet_name(SetPetNameRequest { pet_id: 1, body: "Rex II".into() }).await.unwrap();
    assert_eq!(renamed.into_inner(), SetPetNameResponse::NoContent);
    let name = client.get_pet_name(GetPetNameRequest { pet_id: 1 }).await.unwrap().into_inner();
    assert_eq!(name, GetPetNameResponse::Ok("Rex II".into()));
    let err = client.get_pet_name(GetPetNameRequest { pet_id: 42 }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "no pet 42"));

    let cmp = client.compare(CompareRequest { base: "release/1.0".into(), head: "main".into() }).await.unwrap().into_inner();
    assert_eq!(cmp, CompareResponse::Ok(Comparison { base: Some("release/1.0".into()), head: Some("main".into()) }));

    let filter = BTreeMap::from([("kind".to_owned(), "dog".to_owned())]);
    let styles = client.styles(StylesRequest { label: vec!["x".into(), "y".into()], matrix: vec![1, 2], filter: Some(filter) }).await.unwrap();
    let StylesResponse::Ok(v) = styles.into_inner();
    assert_eq!(v, switchboard::serde_json::json!({"label": ["x", "y"], "matrix": [1, 2], "filter": {"kind": "dog"}, "auth": ""}));

    assert_eq!(client.teapot(TeapotRequest { code: 200 }).await.unwrap().into_inner(), TeapotResponse::Ok("coffee".into()));
    assert_eq!(client.teapot(TeapotRequest { code: 418 }).await.unwrap().into_inner(), TeapotResponse::ClientError(418));
    let err = client.teapot(TeapotRequest { code: 503 }).await.unwrap().into_inner();
    assert_eq!(err, TeapotResponse::Default(503, Error { code: 503, message: "teapot trouble".into() }));

    let mine = client.get_my_pet(GetMyPetRequest {}).await.unwrap().into_inner();
    assert_eq!(mine, GetMyPetResponse::Ok(pet(0, "Mine", None)));
    let mut req = Request::new(GetMyPetRequest {});
    req.metadata_mut().insert("x-none", "1".parse().unwrap());
    let err = client.get_my_pet(req).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "you have no pet"), "an undocumented status is an error");
}

#[tokio::test]
async fn served_through_axum_serve() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = PetstoreRestServer::new(Store::seeded()).into_make_service();
    tokio::spawn(async move { axum::serve(listener, service).await });
    assert_eq!(get(addr, "/v1/pets/2", &[KEY]).await.json()["name"], "Tom");
}

#[tokio::test]
async fn one_port_server_and_router_level_hook() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = switchboard::Server::builder()
        .add_rest_service(PetstoreRestServer::new(Store::seeded()))
        .authorize(|_, creds| if creds.api_key() == Some("key-1") { Ok(()) } else { Err(Status::permission_denied("no")) });
    tokio::spawn(server.serve(listener));
    assert_eq!(get(addr, "/v1/pets/1", &[KEY]).await.status, 200);
    assert_eq!(get(addr, "/v1/pets/1", &[("x-api-key", "other")]).await.status, 403);
    assert_eq!(get(addr, "/v1/pets", &[]).await.status, 200, "no security, no hook");
}

/// A code-first (google.api.http) service beside the OpenAPI one.
#[switchboard::service(package = "test.echo.v1")]
pub trait Echo {
    #[rpc(http(post = "/v1/echo", body = "*"))]
    async fn say(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn say(&self, req: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(format!("echo: {}", req.into_inner())))
    }
}

#[tokio::test]
async fn openapi_and_proto_services_share_a_router() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = switchboard::rest::RestRouter::new()
        .add(PetstoreRestServer::new(Store::seeded()).authorize(authorize))
        .add(EchoRestServer::new(EchoImpl));
    // Merged into an application's own axum router.
    let app = router.into_router().route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(get(addr, "/health", &[]).await.text(), "ok");
    assert_eq!(get(addr, "/v1/pets/mine", &[]).await.json()["name"], "Mine");

    let echo = http(addr, "POST", "/v1/echo", &[("content-type", "application/json")], br#""hi""#).await;
    assert_eq!((echo.status, echo.json()), (200, switchboard::serde_json::json!("echo: hi")));
    assert_eq!(get(addr, "/v1/pets/1", &[KEY]).await.json()["name"], "Rex");
    assert_eq!(get(addr, "/v1/pets/1", &[]).await.status, 401, "the service keeps its own hook and security");
    let wrong = http(addr, "GET", "/v1/echo", &[], b"").await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));

    let doc = get(addr, "/openapi.json", &[]).await.json();
    assert!(doc["paths"]["/pets/{petId}"]["get"].is_object(), "{doc}");
    assert!(doc["paths"]["/v1/echo"]["post"].is_object(), "{doc}");
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["name"], "X-API-Key", "every component kind is merged");
    assert_eq!(doc["paths"]["/pets/{petId}"]["servers"][0]["url"], "http://petstore.example.com/v1", "{doc}");
    assert_eq!(doc["paths"]["/v1/echo"].get("servers"), None, "petstore's base path is not lent to Echo");
    assert_eq!(doc.get("servers"), None);

    let mut client = EchoRestClient::new(&format!("http://{addr}")).unwrap();
    assert_eq!(client.say("there".to_owned()).await.unwrap().into_inner(), "echo: there");
}

#[tokio::test]
async fn unreachable_server_and_client_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut client = PetstoreRestClient::new(&format!("http://{addr}/v1")).unwrap();
    let err = client.get_my_pet(GetMyPetRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let mut client = PetstoreRestClient::new(&format!("http://{silent_addr}/v1")).unwrap().timeout(std::time::Duration::from_millis(100));
    let err = client.get_my_pet(GetMyPetRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
}

/// A document whose `/teapot` parameter schema cannot be compiled (a `pattern` that is not a
/// regular expression) beside an operation that is fine.
const BROKEN_OPENAPI: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "broken", "version": "1"},
  "paths": {
    "/teapot": {"get": {"operationId": "teapot",
      "parameters": [{"name": "code", "in": "query", "required": true, "schema": {"type": "string", "pattern": "(unclosed"}}],
      "responses": {"200": {"description": "ok"}}}},
    "/pets/mine": {"get": {"operationId": "getMyPet", "responses": {"200": {"description": "ok"}}}}
  }
}"#;

#[::switchboard::service(name = "Broken", openapi = BROKEN_OPENAPI, grpc = false)]
trait Broken {
    #[rpc(operation = operations::TEAPOT)]
    async fn teapot(&self, req: Request<TeapotRequest>) -> Result<Response<TeapotResponse>, Status>;
    #[rpc(operation = operations::GET_MY_PET)]
    async fn get_my_pet(&self, req: Request<GetMyPetRequest>) -> Result<Response<GetMyPetResponse>, Status>;
}

struct Brewer;

impl Broken for Brewer {
    async fn teapot(&self, _: Request<TeapotRequest>) -> Result<Response<TeapotResponse>, Status> {
        panic!("an operation whose schemas did not compile must not reach its handler")
    }
    async fn get_my_pet(&self, _: Request<GetMyPetRequest>) -> Result<Response<GetMyPetResponse>, Status> {
        Ok(Response::new(GetMyPetResponse::Ok(pet(0, "Mine", None))))
    }
}

#[tokio::test]
async fn an_operation_whose_schemas_do_not_compile_answers_501_and_the_rest_is_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(BrokenRestServer::new(Brewer).serve(listener));

    let answer = http(addr, "GET", "/teapot?code=1", &[], b"").await;
    assert_eq!(answer.status, 501, "{}", answer.text());
    assert_eq!(answer.json()["code"], 12, "UNIMPLEMENTED: {}", answer.text());
    let message = answer.message();
    assert!(message.contains("`teapot` is not served"), "{message}");
    assert!(message.contains("query parameter `code`") && message.contains("(unclosed"), "{message}");

    let fine = http(addr, "GET", "/pets/mine", &[], b"").await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(fine.json()["name"], "Mine");
}
