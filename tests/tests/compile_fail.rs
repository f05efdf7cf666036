//! Compile-fail checks of the guarantees the types give (auto traits, handle lifetimes).

#[test]
#[cfg_attr(miri, ignore = "trybuild runs rustc")]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
