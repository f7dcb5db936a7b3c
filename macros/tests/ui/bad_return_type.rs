use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    async fn get(&self, req: Request<String>) -> Response<String>;
}
fn main() {}
