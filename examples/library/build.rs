// Generates `example.library.v1` from proto/ into OUT_DIR (src/lib.rs includes it). The
// google.api.http annotations come from the gateway fixture's copy of google/api, so they are not
// duplicated here; in your own crate, add googleapis' `google/api` directory to the includes.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new()
        .compile(&["example/library/v1/library.proto"], &["proto", "../../tests/fixtures/gateway/proto"])?;
    Ok(())
}
