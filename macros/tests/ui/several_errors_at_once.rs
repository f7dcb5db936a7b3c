use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    fn a(&self, req: Request<String>) -> Result<Response<String>, Status>;
    async fn b(&self, req: String) -> Result<Response<String>, Status>;
}
fn main() {}
