use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    #[rpc(http(get = "v1/things"))]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
