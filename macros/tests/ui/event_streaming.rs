use switchboard::{Request, Response, Status, Streaming};

#[switchboard::service(package = "ui.v1")]
pub trait Feed {
    #[rpc(event)]
    async fn watch(&self, req: Request<String>) -> Result<Response<Streaming<String>>, Status>;
}

fn main() {}
