//! Build script for `test-guest`: links the freestanding binary with `linker.ld`.
//!
//! The linker script is only used for the freestanding target (`target_os = "none"`); a host
//! build of the workspace compiles a stub `main` and links normally.

use std::env;
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // A fixed-address executable: no PIE, no dynamic section, no build-id note.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=--build-id=none");
    }
}
