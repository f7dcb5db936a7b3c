// Generates `shop.orders.v1` (messages, the `Orders` trait, its servers and clients) from
// proto/shop/orders/v1/orders.proto into OUT_DIR; src/lib.rs includes it. `switchboard/options.proto`
// (the `(switchboard.key)` option) is built into switchboard-codegen.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_codegen::Config::new().compile(&["shop/orders/v1/orders.proto"], &["proto"])?;
    Ok(())
}
