use switchboard::{Request, Response, Status};

#[switchboard::service]
struct Svc;
fn main() {}
