use switchboard::{Request, Response, Status};

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Order {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[switchboard::service(package = "ui.v1", rest = false)]
pub trait Orders {
    #[rpc(event, key = "customer")]
    async fn placed(&self, req: Request<Order>) -> Result<Response<()>, Status>;
}

fn main() {}
