//! Selects the context-switch backend (stub; the arch work fills it in).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
