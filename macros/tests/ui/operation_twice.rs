use switchboard::api::Operation;
use switchboard::{Request, Response, Status};

const A: Operation = Operation { id: "a", method: "GET", path: "/a", params: &[], body: None, responses: &[], security: &[] };

#[switchboard::service(grpc = false)]
trait Svc {
    #[rpc(operation = A, operation = A)]
    async fn get(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
