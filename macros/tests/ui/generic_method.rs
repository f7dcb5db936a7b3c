use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    async fn get<T>(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
