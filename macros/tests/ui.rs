//! Every `#[switchboard::service]` error, pointing at the offending token (trybuild).
//! After an intended message change: `TRYBUILD=overwrite cargo test -p switchboard-macros --test ui`.

#[test]
fn macro_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
