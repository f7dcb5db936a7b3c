use switchboard::{Request, Response, Status};

const A: &str = r#"{"methodConfig": [{"name": [{}], "timeout": "1s"}]}"#;

#[switchboard::service(policy = A, policy = A)]
trait Svc {
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
