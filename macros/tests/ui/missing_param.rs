use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    async fn get(&self) -> Result<Response<String>, Status>;
}
fn main() {}
