//! Benchmarks: each runs under a heading; a table of the network figures (each the median of
//! several runs, see [`crate::netfront_bench`]) and how every part went ends the output.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::build::cargo;
use crate::netfront_bench::{self, Summary};
use crate::paths::Paths;
use crate::runner;

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

/// The benchmarks that are commands of their own, in the order `bench` runs them.
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
/// iperf3 between two Linux domains, one boot per [`netfront_bench::IperfSetup`] (see
/// [`crate::netfront_bench`]), then their tick breakdowns drawn into
/// [`netfront_bench::IPERF_SVG`].
pub const IPERF3: &str = "iperf3";
/// The netfront scenario's transfers to the peer host (see [`crate::netfront_bench`]).
pub const NETFRONT: &str = "netfront";
/// The network reference on bare Bochs (e1000 + slirp; see [`crate::net_bench`]).
pub const NET_BARE: &str = "net-bare";
/// The benchmarks run in-process, in the order a plain `bench` runs them (boot-cost before
/// [`BENCHES`], the network ones after), and whether a plain `bench` runs each.
const IN_PROCESS: &[(&str, bool)] = &[
    (BOOT_COST, true),
    (BOOT_COST_BARE, false),
    (IPERF3, true),
    (NETFRONT, true),
    (NET_BARE, true),
];

/// The command benchmarks to run: all, or the one called `only` (none for an in-process one).
pub fn select(only: Option<&str>) -> Result<Vec<Bench>> {
    match only {
        None => Ok(BENCHES.to_vec()),
        Some(name) if IN_PROCESS.iter().any(|(n, _)| *n == name) => Ok(Vec::new()),
        Some(name) => match BENCHES.iter().find(|b| b.name == name) {
            Some(b) => Ok(vec![*b]),
            None => {
                let mut names: Vec<&str> = IN_PROCESS.iter().map(|(n, _)| *n).collect();
                names.extend(BENCHES.iter().map(|b| b.name));
                bail!("no benchmark {name:?}; there are: {}", names.join(", "))
            }
        },
    }
}

/// Whether in-process benchmark `name` runs when `only` is asked for.
fn wanted(only: Option<&str>, name: &str) -> bool {
    match only {
        Some(o) => o == name,
        None => IN_PROCESS.iter().any(|(n, plain)| *n == name && *plain),
    }
}

/// Runs one part under its heading; records how it went in `summary`, returns its result.
fn part<T>(
    summary: &mut Summary,
    name: &str,
    title: &str,
    f: impl FnOnce() -> Result<T>,
) -> Option<T> {
    if runner::interrupted() {
        summary.part(name, Some("interrupted".into()));
        return None;
    }
    println!("== bench {name}: {title} ==");
    match f() {
        Ok(v) => {
            println!("== bench {name}: done ==");
            summary.part(name, None);
            Some(v)
        }
        Err(e) => {
            println!("== bench {name}: FAILED ({e:#}) ==");
            summary.part(name, Some(format!("{e:#}")));
            None
        }
    }
}

/// Runs the selected benchmarks, each under a heading, then prints the summary table; fails if
/// any failed or a figure is missing. `bytes`: what `netfront` and `net-bare` move each way
/// per run (default: [`netfront_bench::NETFRONT_BYTES`]); iperf3's boots: see
/// [`netfront_bench::iperf_setups`].
pub fn run(paths: &Paths, only: Option<&str>, bytes: Option<u64>) -> Result<()> {
    let started = Instant::now();
    let benches = select(only)?;
    let runs = netfront_bench::runs()?;
    let setups = netfront_bench::iperf_setups()?;
    let bytes = bytes.unwrap_or(netfront_bench::NETFRONT_BYTES);
    let mut summary = Summary::new(runs);
    if wanted(only, BOOT_COST_BARE) {
        let title = "Linux boot to /init on bare Bochs";
        part(&mut summary, BOOT_COST_BARE, title, || {
            crate::boot_bench::run_bare(paths)
        });
    }
    if wanted(only, BOOT_COST) {
        let title = "Linux boot to /init, xenolith beside bare Bochs";
        part(&mut summary, BOOT_COST, title, || {
            crate::boot_bench::run(paths)
        });
    }
    for b in benches {
        let title = format!("{} ({})", b.title, b.argv.join(" "));
        part(&mut summary, b.name, &title, || {
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
            if !status.success() {
                bail!("{status}");
            }
            Ok(())
        });
    }
    if wanted(only, IPERF3) {
        for setup in setups {
            let title = format!(
                "iperf3{} between two Linux domains through the switch, {}",
                setup.flag(),
                setup.describe()
            );
            let r = part(&mut summary, &setup.part(), &title, || {
                netfront_bench::run_iperf(paths, runs, setup)
            });
            summary.iperf.push((setup, r.unwrap_or_default()));
        }
        let title = "the iperf3 windows' ticks as stacked bars";
        let svg = paths.build_dir().join(netfront_bench::IPERF_SVG);
        let bars = summary.iperf_bars();
        part(&mut summary, "iperf3 picture", title, || {
            netfront_bench::write_iperf_picture(&svg, &bars)?;
            println!("iperf3 tick breakdowns drawn: {}", paths.show(&svg));
            Ok(())
        });
    }
    if wanted(only, NETFRONT) {
        let title = "the netfront guest to and from the peer host (busybox dd | nc)";
        let r = part(&mut summary, NETFRONT, title, || {
            netfront_bench::run_netfront(paths, runs, bytes)
        });
        summary.netfront = Some(r.unwrap_or_default());
    }
    if wanted(only, NET_BARE) {
        let title = "TCP over Bochs' e1000 and slirp, bare Linux";
        let r = part(&mut summary, NET_BARE, title, || {
            crate::net_bench::run(paths, bytes, runs)
        });
        summary.bare = Some(r.map(|f| f.runs).unwrap_or_default());
    }
    netfront_bench::print_summary(&summary, started);
    if !summary.ok() {
        bail!("the benchmark failed or some figures are missing (see the summary)");
    }
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
        for name in [BOOT_COST, BOOT_COST_BARE, IPERF3, NETFRONT, NET_BARE] {
            assert!(select(Some(name)).unwrap().is_empty(), "{name}");
            assert!(wanted(Some(name), name));
            assert!(!wanted(Some("p2m-resolver"), name));
        }
        // A plain bench runs everything but the bare boot alone.
        assert!(!wanted(None, BOOT_COST_BARE));
        for name in [BOOT_COST, IPERF3, NETFRONT, NET_BARE] {
            assert!(wanted(None, name), "{name}");
        }
    }
}
