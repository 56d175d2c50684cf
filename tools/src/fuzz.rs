//! The coverage-guided fuzzers (`fuzz/`, libFuzzer through the `libfuzzer-sys` crate): build
//! them on the stable toolchain with SanitizerCoverage, run each target for a time or a number
//! of executions, and report `fuzz <target>: <N> execs, <C> crashes`.
//!
//! Stable rustc has no `-Zsanitizer`, but LLVM's `sancov-module` pass and its options are
//! reachable through `-Cpasses` and `-Cllvm-args`: [`RUSTFLAGS`] gives libFuzzer the inline
//! 8-bit counters and the PC table it needs. The flags apply only to the `--target` build (not
//! to build scripts and proc macros), so the host triple is named. The fuzz profile
//! (`fuzz/Cargo.toml`) keeps debug assertions and overflow checks on.
//!
//! Per target, `build/fuzz/<target>/corpus/` is the corpus (kept between runs),
//! `build/fuzz/<target>/` holds the artifacts (`crash-*`, `timeout-*`, `oom-*`) and
//! `fuzz.log`, libFuzzer's output. libFuzzer stops at a crash; the run then starts it again
//! for the rest of its budget, so every crash of the budget is counted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::build::cargo;
use crate::hosttests::{run_echoing, Counts};
use crate::paths::Paths;
use crate::setup;

/// The fuzz targets, in the order they run: (name, libFuzzer's `-max_len`).
pub const TARGETS: &[(&str, usize)] = &[
    ("xenstore_wire", 1024),
    ("netback_rings", 512),
    ("hypercall_dispatch", 512),
    ("domcfg_parse", 4096),
    ("elf_notes", 4096),
];

/// The rustc flags of the fuzz build: SanitizerCoverage as libFuzzer wants it, on stable, and
/// `--cfg fuzzing` (what `cargo fuzz` sets). Comparison tracing
/// (`-sanitizer-coverage-trace-compares`) is left out: it halved the executions per second of
/// the stateful targets, whose inputs choose from vocabularies anyway, and libFuzzer still
/// sees `memcmp` (string and slice comparisons) through its interceptors.
pub const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "--cfg",
    "fuzzing",
];

/// Seconds one input may take before libFuzzer calls it a hang (a `timeout-*` crash).
pub const INPUT_TIMEOUT_S: u64 = 25;
/// The smoke run of `xenolith-tools test`: seconds per target.
pub const SMOKE_SECONDS: u64 = 15;
/// Starts of libFuzzer per target and run at most (it stops at each crash).
const MAX_RESTARTS: u32 = 20;

/// How long each target runs. With both set, whichever ends first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock seconds per target.
    pub seconds: Option<u64>,
    /// Executions per target.
    pub runs: Option<u64>,
}

/// What one target's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Inputs executed.
    pub execs: u64,
    /// Crashes (including hangs and out-of-memory), each with an artifact.
    pub crashes: u64,
    /// The artifacts written: inputs that crash.
    pub artifacts: Vec<PathBuf>,
    /// Wall time.
    pub wall: Duration,
}

impl Outcome {
    /// `fuzz <target>: <N> execs, <C> crashes`.
    pub fn line(&self, target: &str) -> String {
        format!(
            "fuzz {target}: {} execs, {} crashes",
            self.execs, self.crashes
        )
    }
}

/// The parsed arguments of `xenolith-tools fuzz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The budget of each target (default: 60 s).
    pub budget: Budget,
    /// The targets to run (all of [`TARGETS`] when empty).
    pub targets: Vec<String>,
}

/// Parses `[--seconds S] [--runs N] [target...]`.
pub fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> Result<u64> {
            let v = it.next().with_context(|| format!("{a} needs {what}"))?;
            match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("{a} {v:?}: want {what} > 0"),
            }
        };
        match a.as_str() {
            "--seconds" => o.budget.seconds = Some(number("a number of seconds")?),
            "--runs" => o.budget.runs = Some(number("a number of runs")?),
            t if TARGETS.iter().any(|(n, _)| *n == t) => o.targets.push(t.to_string()),
            other => bail!(
                "fuzz: unknown target or option {other:?}; targets: {}",
                target_names().join(", ")
            ),
        }
    }
    if o.budget == Budget::default() {
        o.budget.seconds = Some(60);
    }
    Ok(o)
}

/// The names of [`TARGETS`].
pub fn target_names() -> Vec<&'static str> {
    TARGETS.iter().map(|(n, _)| *n).collect()
}

/// `build/fuzz/`.
pub fn fuzz_dir(paths: &Paths) -> PathBuf {
    paths.build_dir().join("fuzz")
}

/// The host's target triple (`rustc -vV`).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|s| s.trim().to_string())
        .context("rustc -vV names no host")
}

/// libFuzzer (built by `libfuzzer-sys`) needs a C++ compiler: installs `g++` as root when
/// there is none, or says how.
pub fn ensure_cxx() -> Result<()> {
    if ["c++", "g++", "clang++"]
        .iter()
        .any(|c| setup::is_present(c))
    {
        return Ok(());
    }
    let cmds: Vec<Vec<String>> = [
        vec!["apt-get", "update"],
        vec![
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "g++",
        ],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect();
    if !setup::is_root() {
        bail!(
            "fuzz: no C++ compiler (libFuzzer needs one); run:\n  {}",
            setup::shown_for_user(&cmds)
        );
    }
    for c in &cmds {
        println!("fuzz: running {}", c.join(" "));
        let status = Command::new(&c[0])
            .args(&c[1..])
            .status()
            .with_context(|| format!("starting {}", c[0]))?;
        if !status.success() {
            bail!("fuzz: `{}` failed with {status}", c.join(" "));
        }
    }
    Ok(())
}

/// Builds every target; returns the directory holding the binaries.
pub fn build(paths: &Paths) -> Result<PathBuf> {
    ensure_cxx()?;
    let triple = host_triple()?;
    let target_dir = fuzz_dir(paths).join("target");
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--bins", "--target", &triple])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(paths.root.join("fuzz"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("RUSTFLAGS", RUSTFLAGS.join(" "));
    println!("fuzz: building the targets (cargo build --release in fuzz/, SanitizerCoverage)");
    let (out, status) = run_echoing(cmd)?;
    if !status.success() {
        let first = out
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("cargo failed");
        bail!("fuzz: the targets did not build: {first}");
    }
    Ok(target_dir.join(triple).join("release"))
}

/// Reads libFuzzer's output: (executions, artifacts written).
pub fn parse_output(text: &str) -> (u64, Vec<PathBuf>) {
    let mut execs = None;
    let mut last_status = 0;
    let mut artifacts = Vec::new();
    for l in text.lines() {
        if let Some(n) = l.strip_prefix("stat::number_of_executed_units:") {
            execs = n.trim().parse().ok();
        } else if let Some(rest) = l.strip_prefix('#') {
            // `#123456\tpulse  cov: ...`: the last status line, if no final stats come.
            if let Some(n) = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
            {
                last_status = n;
            }
        } else if let Some((_, path)) = l.split_once("Test unit written to ") {
            let path = PathBuf::from(path.trim());
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| {
                ["crash-", "timeout-", "oom-", "leak-"]
                    .iter()
                    .any(|p| n.starts_with(p))
            }) {
                artifacts.push(path);
            }
        }
    }
    (execs.unwrap_or(last_status), artifacts)
}

/// The libFuzzer arguments of one start with `budget` left; `dict`: the target's dictionary
/// (`fuzz/dicts/<target>.dict`), if it has one.
pub fn libfuzzer_args(
    dir: &Path,
    max_len: usize,
    budget: &Budget,
    dict: Option<&Path>,
) -> Vec<String> {
    let mut a = vec![
        format!("-artifact_prefix={}/", dir.display()),
        format!("-max_len={max_len}"),
        format!("-timeout={INPUT_TIMEOUT_S}"),
        "-print_final_stats=1".to_string(),
        "-print_pcs=0".to_string(),
    ];
    if let Some(d) = dict {
        a.push(format!("-dict={}", d.display()));
    }
    if let Some(s) = budget.seconds {
        a.push(format!("-max_total_time={s}"));
    }
    if let Some(n) = budget.runs {
        a.push(format!("-runs={n}"));
    }
    a.push(dir.join("corpus").display().to_string());
    a
}

/// Runs one target for `budget`, starting libFuzzer again after each crash until the budget is
/// spent. Its output goes to `build/fuzz/<target>/fuzz.log`.
pub fn run_target(paths: &Paths, bin_dir: &Path, target: &str, budget: &Budget) -> Result<Outcome> {
    let max_len = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, l)| *l)
        .with_context(|| format!("no fuzz target {target}"))?;
    let dir = fuzz_dir(paths).join(target);
    std::fs::create_dir_all(dir.join("corpus"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("fuzz.log");
    let dict = paths.root.join("fuzz/dicts").join(format!("{target}.dict"));
    let dict = dict.is_file().then_some(dict);
    let mut log = String::new();
    let started = Instant::now();
    let mut total = Outcome::default();
    for _ in 0..MAX_RESTARTS {
        let left = Budget {
            seconds: budget
                .seconds
                .map(|s| s.saturating_sub(started.elapsed().as_secs())),
            runs: budget.runs.map(|n| n.saturating_sub(total.execs)),
        };
        if left.seconds == Some(0) || left.runs == Some(0) {
            break;
        }
        let out_path = dir.join("libfuzzer.out");
        let out =
            File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
        let status = Command::new(bin_dir.join(target))
            .args(libfuzzer_args(&dir, max_len, &left, dict.as_deref()))
            .current_dir(&paths.root)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .status()
            .with_context(|| format!("starting fuzz target {target}"))?;
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        log.push_str(&text);
        let (execs, artifacts) = parse_output(&text);
        total.execs += execs;
        total.crashes += artifacts.len() as u64;
        let crashed = !artifacts.is_empty();
        total.artifacts.extend(artifacts);
        if status.success() || crate::runner::interrupted() {
            break;
        }
        if !crashed {
            // Died without an artifact (killed, bad arguments): count it, do not spin.
            total.crashes += 1;
            log.push_str(&format!(
                "\nfuzz: {target} exited with {status} and no artifact\n"
            ));
            break;
        }
    }
    total.wall = started.elapsed();
    std::fs::write(&log_path, log).with_context(|| format!("writing {}", log_path.display()))?;
    Ok(total)
}

/// Prints the result lines of one target: the `fuzz <target>: ...` line, then the wall time
/// and rate, and each artifact with the panic message that came with it.
fn report(paths: &Paths, target: &str, o: &Outcome) {
    println!("{}", o.line(target));
    let secs = o.wall.as_secs_f64();
    println!(
        "  wall {secs:.1} s, {:.0} exec/s, log {}",
        o.execs as f64 / secs.max(0.001),
        paths.show(&fuzz_dir(paths).join(target).join("fuzz.log"))
    );
    for a in &o.artifacts {
        println!("  crash input: {}", paths.show(a));
    }
}

/// `xenolith-tools fuzz`: builds the targets and runs each; `Ok(false)` when any crashed.
pub fn run(paths: &Paths, opts: &Options) -> Result<bool> {
    let bins = build(paths)?;
    let targets: Vec<String> = if opts.targets.is_empty() {
        target_names().iter().map(|s| s.to_string()).collect()
    } else {
        opts.targets.clone()
    };
    let mut clean = true;
    for t in &targets {
        let o = run_target(paths, &bins, t, &opts.budget)?;
        report(paths, t, &o);
        clean &= o.crashes == 0;
    }
    Ok(clean)
}

/// The fuzz workspace's own tests (`cargo test` in `fuzz/`, sharing its target directory):
/// each target's fixed samples and the checks that random programs reach what the target is
/// for, which the timed runs do not assert. A build failure counts as one failed test.
pub fn sample_tests(paths: &Paths) -> Counts {
    let mut cmd = cargo();
    cmd.args(["test", "--no-fail-fast", "--target-dir"])
        .arg(fuzz_dir(paths).join("target"))
        .current_dir(paths.root.join("fuzz"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    match run_echoing(cmd) {
        Ok((out, status)) => crate::hosttests::count(&out, status.success()),
        Err(e) => {
            println!("fuzz sample tests: could not run: {e:#}");
            Counts {
                passed: 0,
                failed: 1,
            }
        }
    }
}

/// The smoke run of `xenolith-tools test`: every target for [`SMOKE_SECONDS`], one test each
/// (passed: it ran and nothing crashed), after the workspace's [`sample_tests`], counted one
/// by one. A build failure fails every target.
pub fn smoke(paths: &Paths) -> Counts {
    let mut c = Counts::default();
    let bins = match build(paths) {
        Ok(b) => b,
        Err(e) => {
            println!("fuzz smoke: {e:#}");
            c.failed = TARGETS.len() as u64;
            return c;
        }
    };
    c += sample_tests(paths);
    let budget = Budget {
        seconds: Some(SMOKE_SECONDS),
        runs: None,
    };
    for t in target_names() {
        match run_target(paths, &bins, t, &budget) {
            Ok(o) => {
                report(paths, t, &o);
                if o.crashes == 0 && o.execs > 0 {
                    c.passed += 1;
                } else {
                    c.failed += 1;
                }
            }
            Err(e) => {
                println!("fuzz {t}: could not run: {e:#}");
                c.failed += 1;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASHED: &str = "\
#13836\tREDUCE cov: 12 ft: 12 corp: 5/18b lim: 135 exec/s: 0 rss: 27Mb L: 5/5 MS: 1 InsertByte-
==8456== ERROR: libFuzzer: deadly signal
artifact_prefix='build/fuzz/t/'; Test unit written to build/fuzz/t/crash-99bce37f
Base64: RlVaIUY=
stat::number_of_executed_units: 29999
stat::average_exec_per_sec:     0
";

    #[test]
    fn parses_final_stats_and_artifacts() {
        let (execs, arts) = parse_output(CRASHED);
        assert_eq!(execs, 29999);
        assert_eq!(arts, vec![PathBuf::from("build/fuzz/t/crash-99bce37f")]);
        // Without final stats, the last status line; slow units are no crash.
        let text = "#4096\tpulse  cov: 1\n#861129\tDONE   cov: 575\n\
                    Test unit written to x/slow-unit-12\n";
        assert_eq!(parse_output(text), (861129, Vec::new()));
    }

    #[test]
    fn arguments() {
        let o = parse_args(&["--runs".into(), "10000000".into(), "domcfg_parse".into()]).unwrap();
        assert_eq!(
            o.budget,
            Budget {
                seconds: None,
                runs: Some(10_000_000)
            }
        );
        assert_eq!(o.targets, vec!["domcfg_parse"]);
        assert_eq!(parse_args(&[]).unwrap().budget.seconds, Some(60));
        assert!(parse_args(&["nope".into()]).is_err());
        assert!(parse_args(&["--seconds".into(), "0".into()]).is_err());
        let a = libfuzzer_args(
            Path::new("build/fuzz/t"),
            64,
            &Budget {
                seconds: Some(5),
                runs: Some(9),
            },
            Some(Path::new("fuzz/dicts/t.dict")),
        );
        assert_eq!(
            a.join(" "),
            "-artifact_prefix=build/fuzz/t/ -max_len=64 -timeout=25 -print_final_stats=1 \
             -print_pcs=0 -dict=fuzz/dicts/t.dict -max_total_time=5 -runs=9 build/fuzz/t/corpus"
        );
        assert_eq!(
            Outcome {
                execs: 12,
                crashes: 0,
                ..Outcome::default()
            }
            .line("x"),
            "fuzz x: 12 execs, 0 crashes"
        );
    }
}
