// Generates grpc.testing from this example's own copy of the interop protos.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["test.proto"], &["proto/grpc/testing"])?;
    Ok(())
}
