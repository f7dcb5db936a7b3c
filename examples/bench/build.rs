// Generates `bench.Echo` for bench-server (the baseline and load generator are hand-written).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["bench.proto"], &["proto"])?;
    Ok(())
}
