use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    #[rpc(http(get = "/v1/{name=books/*}"))]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
    #[rpc(http(get = "/v1/books/{id}"))]
    async fn show(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
