use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    async fn get(&self, req: Request<String>, extra: u32) -> Result<Response<String>, Status>;
}
fn main() {}
