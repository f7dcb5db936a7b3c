use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    async fn new(&self, req: Request<String>) -> Result<Response<String>, Status>;
    async fn new_rpc(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
