//! Benchmarks: each is a command whose output is printed under a heading.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::build::cargo;
use crate::paths::Paths;

/// One benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Bench {
    /// Its name on the command line (`xenolith-tools bench <name>`).
    pub name: &'static str,
    /// The heading printed above its output.
    pub title: &'static str,
    /// The command, run in the repository root; a leading `cargo` is the running cargo.
    pub argv: &'static [&'static str],
}

/// Every benchmark, in the order `bench` runs them. Add boot-cost and netfront ones here.
pub const BENCHES: &[Bench] = &[Bench {
    name: "p2m-resolver",
    title: "p2m resolver",
    argv: &[
        "cargo",
        "run",
        "--release",
        "-p",
        "p2m",
        "--example",
        "resolver_bench",
    ],
}];

/// The boot-cost benchmark (run in-process: see [`crate::boot_bench`]).
pub const BOOT_COST: &str = "boot-cost";
/// Only the bare-emulator half of [`BOOT_COST`] (not part of a plain `bench`).
pub const BOOT_COST_BARE: &str = "boot-cost-bare";
/// The network reference on bare Bochs (e1000 + slirp; see [`crate::net_bench`]; not part of
/// a plain `bench`).
pub const NET_BARE: &str = "net-bare";

/// The benchmarks to run: all, or the one called `only`.
pub fn select(only: Option<&str>) -> Result<Vec<Bench>> {
    match only {
        None => Ok(BENCHES.to_vec()),
        Some(BOOT_COST | BOOT_COST_BARE | NET_BARE) => Ok(Vec::new()),
        Some(name) => match BENCHES.iter().find(|b| b.name == name) {
            Some(b) => Ok(vec![*b]),
            None => {
                let mut names: Vec<&str> = vec![BOOT_COST, BOOT_COST_BARE, NET_BARE];
                names.extend(BENCHES.iter().map(|b| b.name));
                bail!("no benchmark {name:?}; there are: {}", names.join(", "))
            }
        },
    }
}

/// Runs the selected benchmarks, each under a heading; fails if any failed.
pub fn run(paths: &Paths, only: Option<&str>) -> Result<()> {
    let mut failed = Vec::new();
    if only == Some(BOOT_COST_BARE) {
        println!("== bench {BOOT_COST_BARE}: Linux boot to /init on bare Bochs ==");
        crate::boot_bench::run_bare(paths)?;
        println!("== bench {BOOT_COST_BARE}: done ==");
        return Ok(());
    }
    if only == Some(NET_BARE) {
        return run_net_bare(paths, crate::net_bench::DEFAULT_BYTES);
    }
    if only.is_none() || only == Some(BOOT_COST) {
        println!("== bench {BOOT_COST}: Linux boot to /init, xenolith beside bare Bochs ==");
        match crate::boot_bench::run(paths) {
            Ok(()) => println!("== bench {BOOT_COST}: done =="),
            Err(e) => {
                println!("== bench {BOOT_COST}: FAILED ({e:#}) ==");
                failed.push(BOOT_COST);
            }
        }
        if only == Some(BOOT_COST) {
            return if failed.is_empty() {
                Ok(())
            } else {
                bail!("benchmark failed: {BOOT_COST}")
            };
        }
    }
    for b in select(only)? {
        println!("== bench {}: {} ({}) ==", b.name, b.title, b.argv.join(" "));
        let mut cmd = if b.argv[0] == "cargo" {
            cargo()
        } else {
            Command::new(b.argv[0])
        };
        let status = cmd
            .args(&b.argv[1..])
            .current_dir(&paths.root)
            .status()
            .with_context(|| format!("starting {}", b.argv[0]))?;
        if status.success() {
            println!("== bench {}: done ==", b.name);
        } else {
            println!("== bench {}: FAILED ({status}) ==", b.name);
            failed.push(b.name);
        }
    }
    if !failed.is_empty() {
        bail!("benchmarks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `bench net-bare [<bytes>]`: the bare-Bochs network reference, `bytes` each way.
pub fn run_net_bare(paths: &Paths, bytes: u64) -> Result<()> {
    println!("== bench {NET_BARE}: TCP over Bochs' e1000 and slirp, bare Linux ==");
    crate::net_bench::run(paths, bytes)?;
    println!("== bench {NET_BARE}: done ==");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert_eq!(select(None).unwrap().len(), BENCHES.len());
        assert_eq!(
            select(Some("p2m-resolver")).unwrap()[0].title,
            "p2m resolver"
        );
        assert!(select(Some("nope")).is_err());
        assert!(select(Some(BOOT_COST_BARE)).unwrap().is_empty());
        assert!(select(Some(NET_BARE)).unwrap().is_empty());
    }
}
