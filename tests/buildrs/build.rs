// The documented build.rs usage: generate into OUT_DIR, rerun when any .proto read changes.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["proto/buildrs/v1/echo.proto"], &["proto"])?;
    Ok(())
}
