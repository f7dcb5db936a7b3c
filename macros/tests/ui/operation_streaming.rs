use switchboard::api::Operation;
use switchboard::{Request, Response, Status, Streaming};

const OP: Operation = Operation { id: "watch", method: "GET", path: "/watch", params: &[], body: None, responses: &[], security: &[] };

#[switchboard::service(grpc = false)]
trait Svc {
    #[rpc(operation = OP)]
    async fn watch(&self, req: Request<String>) -> Result<Response<Streaming<String>>, Status>;
}
fn main() {}
