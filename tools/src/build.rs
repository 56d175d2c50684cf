//! Builds the freestanding binaries: the hypervisor (`kernel`) and the test guest.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::paths::{Paths, BARE_TARGET, KERNEL_OVERRIDE_ENV, TEST_GUEST_OVERRIDE_ENV};

/// The freestanding crates, and the environment variable that replaces each with a prebuilt ELF.
pub const BARE_CRATES: &[(&str, &str)] = &[
    ("kernel", KERNEL_OVERRIDE_ENV),
    ("test-guest", TEST_GUEST_OVERRIDE_ENV),
];

/// The cargo to run: `$CARGO` (set when started by cargo) or `cargo`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The arguments that build one freestanding crate.
pub fn build_args(krate: &str) -> Vec<String> {
    ["build", "--release", "-p", krate, "--target", BARE_TARGET]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Builds `kernel` and `test-guest` for [`BARE_TARGET`] in release mode, into the workspace's
/// default target directory whatever `CARGO_TARGET_DIR` says. A crate whose override variable
/// is set is not built. Fails naming every crate that did not build.
pub fn build_all(paths: &Paths) -> Result<()> {
    let mut failed = Vec::new();
    for (krate, var) in BARE_CRATES {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            println!("build: {krate}: using {} (from {var})", v.to_string_lossy());
            continue;
        }
        let args = build_args(krate);
        println!("build: cargo {}", args.join(" "));
        let status = cargo()
            .args(&args)
            .current_dir(&paths.root)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .context("starting cargo")?;
        if !status.success() {
            failed.push(*krate);
        }
    }
    if !failed.is_empty() {
        bail!("{} did not build", failed.join(" and "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_command() {
        assert_eq!(
            build_args("kernel").join(" "),
            "build --release -p kernel --target x86_64-unknown-none"
        );
    }
}
