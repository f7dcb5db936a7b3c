use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    #[rpc(retries = 3)]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
