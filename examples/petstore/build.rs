// Generates the `petstore` module (models, request structs, response enums, the operation table
// and the `Petstore` trait) from petstore.yaml into OUT_DIR; src/lib.rs includes it.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["petstore.yaml"], &[] as &[&str])?;
    Ok(())
}
