// Generates the library service from proto/ into OUT_DIR (see src/main.rs for the include).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["demo/library/v1/library.proto"], &["proto"])?;
    Ok(())
}
