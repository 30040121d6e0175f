//! Selects the context-switch backend.
//!
//! * `goro_asm_available`: goro's own assembly (`asm/x86_64.S`, System V, ELF) can be built
//!   for this target, so `arch::x86_64` compiles (the switch bench compares it with
//!   corosensei even when it is not the selected backend).
//! * `goro_asm`: that assembly is the backend `arch::Context` uses — when it is available
//!   and the cargo feature `corosensei` (which forces the portable backend) is off.
//!
//! Everywhere else `arch::Context` is the corosensei backend.
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=asm");
    println!("cargo:rustc-check-cfg=cfg(goro_asm)");
    println!("cargo:rustc-check-cfg=cfg(goro_asm_available)");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let width = env::var("CARGO_CFG_TARGET_POINTER_WIDTH").unwrap_or_default();
    // x86_64 with 64-bit pointers (not x32) on ELF systems that use the System V ABI.
    let available =
        arch == "x86_64" && width == "64" && matches!(os.as_str(), "linux" | "android" | "freebsd");
    let forced_portable = env::var_os("CARGO_FEATURE_COROSENSEI").is_some();

    if available {
        println!("cargo:rustc-cfg=goro_asm_available");
        if !forced_portable {
            println!("cargo:rustc-cfg=goro_asm");
        }
    }
}
