use switchboard::{Request, Response, Status};

#[switchboard::service(package = "ui.v1")]
pub trait Orders {
    #[rpc(key = "customer")]
    async fn place(&self, req: Request<String>) -> Result<Response<String>, Status>;
    #[rpc(event, key = "order-id")]
    async fn placed(&self, req: Request<String>) -> Result<Response<()>, Status>;
}

fn main() {}
