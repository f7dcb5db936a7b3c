use switchboard::{Request, Response, Status};

#[switchboard::service]
trait Svc {
    #[cfg(any())]
    async fn purge(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
fn main() {}
