//! `xenolith-tools`: the host command line of xenolith (build, ISO, run, test, bench, setup).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::tests::{Scenario, Verdict};
use anyhow::{bail, Context, Result};
use tools::emulator::{self, Choice, Emulator};
use tools::hosttests::{self, Counts};
use tools::paths::Paths;
use tools::scenario_run::{self, ScenarioResult};
use tools::{bench, build, guest_image, iso, net_bench, runner, setup, user_domains};

/// Environment variable: how many scenarios run at once (1 or 2).
const JOBS_ENV: &str = "XENOLITH_JOBS";
/// The most scenarios run at once (2 cores; each Bochs also takes a VNC port).
const MAX_JOBS: usize = 2;

const USAGE: &str = "\
usage: xenolith-tools <command> [args]

commands:
  setup                 check for (as root: install) bochs, grub, xorriso, mtools, the rust target
  build                 build the hypervisor (kernel) and the test guest for x86_64-unknown-none
  iso [<scenario>]      build, then make build/<scenario>/xenolith.iso
  iso -o <file.iso> <a.cfg> [<b.cfg> ...]
                        an ISO booting those domains (xl.cfg files; kernel and ramdisk are
                        paths relative to the file) on any machine: QEMU/KVM or a USB stick
  run [<scenario>]      build and boot a scenario with its serial console on the terminal
                        (default scenario: {default})
  run <a.cfg> [<b.cfg> ...]
                        build and boot those domains (d1, d2, ... in order)
  test [--scenario <name>]... [--no-host] [--no-fuzz] [--no-scenarios] [--jobs <1|2>]
                        host tests, a short run of each fuzz target (not with --no-host),
                        then every scenario; last line `xenolith: N passed, M failed`
  fuzz [--seconds <s>] [--runs <n>] [<target>...]
                        build the fuzz targets (fuzz/, libFuzzer) and run each for <s> seconds
                        (default 60) or <n> executions: `fuzz <target>: N execs, C crashes`;
                        corpus and crash inputs in build/fuzz/<target>/; fails on a crash
  bench [<name>]        run the benchmarks (all but boot-cost-bare, or the one named:
                        boot-cost, boot-cost-bare, p2m-resolver, iperf3, netfront, net-bare),
                        then a summary table of the network figures; iperf3 boots twice (1 vCPU
                        per domain and 1 stream; 2 vCPUs and -P 4), breaks each run's TSC ticks
                        down and draws the median runs into build/bench/iperf-breakdown.svg
  bench netfront|net-bare [<bytes>]
                        netfront to the peer host, or the bare guest on Bochs' e1000 + slirp:
                        TCP throughput with <bytes> (suffix K, M, G) each way; default {net_bytes}
  guest-image           download Debian's kernel and busybox (once), make build/guest/{vmlinuz,
                        vmlinux,initramfs.cpio} and print them
  profile <serial.log>  the guest functions a boot's profile_us= samples fell in
  list                  list the scenarios

environment:
  XENOLITH_EMULATOR=bochs|qemu|auto   emulator (auto: QEMU only on Intel+KVM with nested VMX)
  XENOLITH_TIMEOUT=<seconds>          wall-clock limit per scenario (default 300)
  XENOLITH_BENCH_RUNS=<n>             runs per benchmark figure, the median shown (default 3)
  XENOLITH_IPERF_STREAMS=1|4          iperf3: only the 1-stream or the -P 4 boot (default both)
  XENOLITH_PROFILE_US=<n>             iperf3: sample guest RIPs every n µs (then `profile`)
  XENOLITH_HV_ARGS=<words>            iperf3: extra hypervisor options (sched_ratelimit_us=...)
  XENOLITH_BENCH_TAG=<tag>            iperf3: boot directories build/bench-iperf3*-<tag>
  XENOLITH_JOBS=<1|2>                 scenarios run at once (default 2)
  XENOLITH_KERNEL=<elf>               use this hypervisor ELF instead of building kernel
  XENOLITH_TEST_GUEST=<elf>           use this test guest ELF instead of building test-guest
";

fn main() -> ExitCode {
    runner::install_signal_handlers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xenolith-tools: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    USAGE.replace("{default}", tests::DEFAULT_SCENARIO).replace(
        "{net_bytes}",
        &format!("{} MiB", net_bench::DEFAULT_BYTES >> 20),
    )
}

fn dispatch(args: &[String]) -> Result<ExitCode> {
    let Some(cmd) = args.first() else {
        eprint!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    let rest = &args[1..];
    if matches!(cmd.as_str(), "help" | "-h" | "--help") {
        print!("{}", usage());
        return Ok(ExitCode::SUCCESS);
    }
    let paths = Paths::discover()?;
    match cmd.as_str() {
        "setup" => {
            no_more(rest)?;
            let choice = choose_emulator()?;
            setup::ensure(choice.emulator == Emulator::Qemu, false)?;
            Ok(ExitCode::SUCCESS)
        }
        "build" => {
            no_more(rest)?;
            setup::ensure(false, true)?;
            build::build_all(&paths)?;
            Ok(ExitCode::SUCCESS)
        }
        "iso" => {
            if let [flag, out, configs @ ..] = rest {
                if flag == "-o" {
                    return cmd_iso_out(&paths, Path::new(out), configs);
                }
            }
            let scenario = scenario_arg(rest)?;
            let choice = prepare(&paths)?;
            guest_image::ensure_for(&paths, std::slice::from_ref(&scenario))?;
            let iso = iso::make_iso(&paths, &scenario, choice.emulator)?;
            println!("iso: {}", paths.show(&iso));
            Ok(ExitCode::SUCCESS)
        }
        "run" => {
            let scenario = run_arg(rest)?;
            let choice = prepare(&paths)?;
            guest_image::ensure_for(&paths, std::slice::from_ref(&scenario))?;
            let dir = paths.scenario_dir(&scenario.name);
            println!(
                "run: scenario {} on {}; serial log {} (Ctrl-C stops it)",
                scenario.name,
                choice.emulator,
                paths.show(&dir.join(emulator::files::SERIAL))
            );
            let result = scenario_run::run(&paths, &scenario, &choice, true);
            println!();
            println!("{}", result.report());
            Ok(exit_code(result.verdict.is_pass()))
        }
        "test" => cmd_test(&paths, rest),
        "fuzz" => {
            let opts = tools::fuzz::parse_args(rest)?;
            Ok(exit_code(tools::fuzz::run(&paths, &opts)?))
        }
        "bench" => {
            match rest {
                [name, size] if name == bench::NET_BARE || name == bench::NETFRONT => {
                    bench::run(&paths, Some(name), Some(net_bench::parse_size(size)?))?
                }
                [] | [_] => bench::run(&paths, rest.first().map(String::as_str), None)?,
                _ => bail!(
                    "bench takes at most one benchmark name (and netfront or net-bare a size)"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        "profile" => {
            let [log] = rest else {
                bail!("profile takes the serial log of a boot with profile_us=");
            };
            print!("{}", tools::guest_profile::report(Path::new(log))?);
            Ok(ExitCode::SUCCESS)
        }
        "guest-image" => {
            no_more(rest)?;
            let img = guest_image::ensure(&paths)?;
            print!("{}", guest_image::describe(&paths, &img)?);
            Ok(ExitCode::SUCCESS)
        }
        "list" => {
            no_more(rest)?;
            for s in tests::all() {
                println!("{} ({} domains)", s.name, s.domains.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprint!("unknown command {other:?}\n{}", usage());
            Ok(ExitCode::from(2))
        }
    }
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn no_more(rest: &[String]) -> Result<()> {
    if let Some(extra) = rest.first() {
        bail!("unexpected argument {extra:?}");
    }
    Ok(())
}

fn find_scenario(name: &str) -> Result<Scenario> {
    tests::find(name).with_context(|| {
        format!(
            "no scenario {name:?}; there are: {}",
            tests::scenarios::names().join(", ")
        )
    })
}

fn scenario_arg(rest: &[String]) -> Result<Scenario> {
    match rest {
        [] => find_scenario(tests::DEFAULT_SCENARIO),
        [name] => find_scenario(name),
        _ => bail!("expected at most one scenario name"),
    }
}

/// `run`'s arguments: configuration files (each a domain), else at most one scenario name.
fn run_arg(rest: &[String]) -> Result<Scenario> {
    if !rest.is_empty() && rest.iter().all(|a| user_domains::is_config_arg(a)) {
        let configs: Vec<PathBuf> = rest.iter().map(PathBuf::from).collect();
        return user_domains::scenario_from_configs(&configs);
    }
    scenario_arg(rest)
}

/// `iso -o <file.iso> <a.cfg> ...`: an ISO of those domains for any machine.
fn cmd_iso_out(paths: &Paths, out: &Path, configs: &[String]) -> Result<ExitCode> {
    let configs: Vec<PathBuf> = configs.iter().map(PathBuf::from).collect();
    let scenario = user_domains::scenario_from_configs(&configs)?;
    setup::ensure(false, true)?;
    build::build_all(paths)?;
    let iso = iso::make_iso_with(paths, &scenario, &iso::portable_cmdline(&scenario))?;
    std::fs::copy(&iso, out).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "iso: {} ({} domains; boot it with qemu-system-x86_64 -enable-kvm -cpu host,+vmx \
         -m 2048 -display none -serial stdio -cdrom {}, or write it to a USB stick)",
        out.display(),
        scenario.domains.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn choose_emulator() -> Result<Choice> {
    let choice = emulator::choose_from_env()?;
    println!("emulator: {} ({})", choice.emulator, choice.reason);
    Ok(choice)
}

/// Emulator choice, setup and build: what `iso` and `run` need first.
fn prepare(paths: &Paths) -> Result<Choice> {
    let choice = choose_emulator()?;
    setup::ensure(choice.emulator == Emulator::Qemu, true)?;
    build::build_all(paths)?;
    Ok(choice)
}

struct TestOptions {
    scenarios: Vec<Scenario>,
    host: bool,
    fuzz: bool,
    jobs: usize,
}

fn parse_test_args(rest: &[String]) -> Result<TestOptions> {
    let mut named = Vec::new();
    let mut host = true;
    let mut fuzz = true;
    let mut run_scenarios = true;
    let mut jobs: Option<String> = std::env::var(JOBS_ENV).ok().filter(|s| !s.is_empty());
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scenario" => named.push(find_scenario(
                it.next().context("--scenario needs a name")?,
            )?),
            "--no-host" => host = false,
            "--no-fuzz" => fuzz = false,
            "--no-scenarios" => run_scenarios = false,
            "--jobs" => jobs = Some(it.next().context("--jobs needs a number")?.clone()),
            other => bail!("test: unexpected argument {other:?}"),
        }
    }
    let jobs = match jobs {
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_JOBS),
        Some(j) => match j.parse::<usize>() {
            Ok(n) if (1..=MAX_JOBS).contains(&n) => n,
            _ => bail!("jobs {j:?}: want 1 to {MAX_JOBS}"),
        },
    };
    let scenarios = if !run_scenarios {
        Vec::new()
    } else if named.is_empty() {
        tests::all()
    } else {
        named
    };
    Ok(TestOptions {
        scenarios,
        host,
        fuzz,
        jobs,
    })
}

fn cmd_test(paths: &Paths, rest: &[String]) -> Result<ExitCode> {
    let opts = parse_test_args(rest)?;
    let started = Instant::now();
    let mut total = Counts::default();

    if opts.host {
        let host_started = Instant::now();
        let c = hosttests::run(paths).unwrap_or_else(|e| {
            println!("host tests: could not run: {e:#}");
            Counts {
                passed: 0,
                failed: 1,
            }
        });
        println!(
            "host tests: wall {:.1} s",
            host_started.elapsed().as_secs_f64()
        );
        println!("host tests: {} passed, {} failed", c.passed, c.failed);
        total += c;
    }

    if opts.host && opts.fuzz {
        let c = tools::fuzz::smoke(paths);
        println!("fuzz smoke: {} passed, {} failed", c.passed, c.failed);
        total += c;
    }

    if !opts.scenarios.is_empty() {
        let results = run_scenarios(paths, &opts.scenarios, opts.jobs);
        for r in &results {
            if r.verdict.is_pass() {
                total.passed += 1;
            } else {
                total.failed += 1;
            }
        }
    }

    println!("test: wall {:.1} s", started.elapsed().as_secs_f64());
    println!("xenolith: {} passed, {} failed", total.passed, total.failed);
    Ok(exit_code(total.failed == 0))
}

/// Emulator choice, setup, build, then the scenarios `jobs` at a time; every scenario gets a
/// result (a failed step before the runs fails them all with its reason).
fn run_scenarios(paths: &Paths, scenarios: &[Scenario], jobs: usize) -> Vec<ScenarioResult> {
    let fail_all = |reason: &str| -> Vec<ScenarioResult> {
        scenarios
            .iter()
            .map(|s| {
                let r = ScenarioResult::failed_early(&s.name, reason.to_string());
                println!("{}", r.verdict_line());
                r
            })
            .collect()
    };
    let first_line = |e: &anyhow::Error| format!("{e:#}").lines().next().unwrap_or("").to_string();

    let choice = match choose_emulator() {
        Ok(c) => c,
        Err(e) => return fail_all(&format!("emulator: {}", first_line(&e))),
    };
    if let Err(e) = setup::ensure(choice.emulator == Emulator::Qemu, true) {
        println!("{e:#}");
        return fail_all(&format!("setup: {}", first_line(&e)));
    }
    if let Err(e) = build::build_all(paths) {
        println!("build: {e:#}");
        return fail_all(&format!("build failed: {}", first_line(&e)));
    }
    if let Err(e) = guest_image::ensure_for(paths, scenarios) {
        println!("guest image: {e:#}");
        return fail_all(&format!("guest image: {}", first_line(&e)));
    }
    if runner::interrupted() {
        return fail_all("interrupted");
    }

    let jobs = jobs.clamp(1, MAX_JOBS).min(scenarios.len());
    println!(
        "scenarios: {} on {}, {} at a time",
        scenarios.len(),
        choice.emulator,
        jobs
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<ScenarioResult>>> = Mutex::new(vec![None; scenarios.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(s) = scenarios.get(i) else { break };
                let r = if runner::interrupted() {
                    ScenarioResult::failed_early(&s.name, "interrupted".to_string())
                } else {
                    println!("scenario {}: starting", s.name);
                    scenario_run::run(paths, s, &choice, false)
                };
                println!("{}", r.report());
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    results
        .into_iter()
        .zip(scenarios)
        .map(|(r, s)| {
            r.unwrap_or_else(|| ScenarioResult {
                name: s.name.clone(),
                verdict: Verdict::Fail("runner thread died".to_string()),
                wall: Duration::ZERO,
                detail: String::new(),
                excerpt: Vec::new(),
            })
        })
        .collect()
}
