use switchboard::{Request, Response, Status};

#[switchboard::service(package = "a..b")]
trait Svc {
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
