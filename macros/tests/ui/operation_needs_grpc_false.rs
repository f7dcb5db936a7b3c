use switchboard::api::Operation;
use switchboard::{Request, Response, Status};

const OP: Operation = Operation { id: "get", method: "GET", path: "/x", params: &[], body: None, responses: &[], security: &[] };

#[switchboard::service]
trait Svc {
    #[rpc(operation = OP)]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

#[switchboard::service(grpc = false, rest = false)]
trait Nothing {
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
