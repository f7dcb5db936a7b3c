use switchboard::api::Operation;
use switchboard::{Request, Response, Status};

const OP: Operation = Operation { id: "get", method: "GET", path: "/x", params: &[], body: None, responses: &[], security: &[] };

#[switchboard::service(grpc = false)]
trait Svc {
    #[rpc(operation = OP, http(get = "/v1/x"))]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
