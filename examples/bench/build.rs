// Generates `bench.Echo` for bench-server (the baseline and load generator are hand-written), and
// into OUT_DIR/events `benchev.Sink` (an event method and a unary one) for bench-kafka.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["bench.proto"], &["proto"])?;
    let events = std::path::Path::new(&std::env::var("OUT_DIR")?).join("events");
    std::fs::create_dir_all(&events)?;
    switchboard_codegen::Config::new().out_dir(events).compile(&["bench_events.proto"], &["proto"])?;
    Ok(())
}
