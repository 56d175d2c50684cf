//! The host test suites (`cargo test` of the host crates) and the counting of their results.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use regex::Regex;

use crate::build::cargo;
use crate::paths::Paths;

/// The crates whose tests run on the host, in one place.
pub const HOST_CRATES: &[&str] = &[
    "guest-abi",
    "p2m",
    "domcfg",
    "hypercalls",
    "platform",
    "xenstore",
    "loader",
    "netback",
    "netswitch",
    "ticks",
    "sched",
    "tests",
    "tools",
];

/// Passed and failed test counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (a crate that did not compile counts as one).
    pub failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Sums the `test result: ... N passed; M failed` lines of cargo test's output.
pub fn parse(output: &str) -> Counts {
    let re = Regex::new(r"test result: \S+\. (\d+) passed; (\d+) failed").expect("valid regex");
    let mut c = Counts::default();
    for caps in re.captures_iter(output) {
        c.passed += caps[1].parse::<u64>().unwrap_or(0);
        c.failed += caps[2].parse::<u64>().unwrap_or(0);
    }
    c
}

/// Whether cargo's output says a crate did not compile.
pub fn compile_failed(output: &str) -> bool {
    output.lines().any(|l| {
        l.starts_with("error: could not compile")
            || l.starts_with("error: failed to load manifest")
            || l.starts_with("error: package ID specification")
            || l.starts_with("error: failed to select a version")
            || l.starts_with("error: no matching package")
    })
}

/// The counts of one cargo test run: the parsed counts, plus one failure when cargo failed but
/// no test is counted as failed (a compile failure, a crash of the harness, ...).
pub fn count(output: &str, success: bool) -> Counts {
    let mut c = parse(output);
    if !success && c.failed == 0 {
        c.failed = 1;
    }
    c
}

/// The arguments of `cargo test` for some crates.
pub fn test_args(crates: &[&str]) -> Vec<String> {
    let mut a = vec!["test".to_string(), "--no-fail-fast".to_string()];
    for c in crates {
        a.push("-p".to_string());
        a.push(c.to_string());
    }
    a
}

/// Runs a command, copying its standard output and error through as they come, and returns
/// both (interleaved by line) with its status.
pub fn run_echoing(mut cmd: Command) -> Result<(String, ExitStatus)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let text = Arc::new(Mutex::new(String::new()));
    fn pump<R: Read + Send + 'static>(
        from: R,
        text: Arc<Mutex<String>>,
        to_stderr: bool,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for line in BufReader::new(from).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                if to_stderr {
                    let _ = writeln!(std::io::stderr(), "{line}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
                if let Ok(mut t) = text.lock() {
                    t.push_str(&line);
                    t.push('\n');
                }
            }
        })
    }
    let out = pump(
        child.stdout.take().context("no stdout")?,
        text.clone(),
        false,
    );
    let err = pump(
        child.stderr.take().context("no stderr")?,
        text.clone(),
        true,
    );
    let status = child.wait().context("waiting for cargo")?;
    let _ = out.join();
    let _ = err.join();
    let text = text.lock().map(|t| t.clone()).unwrap_or_default();
    Ok((text, status))
}

/// Runs the host tests of [`HOST_CRATES`] and counts them. All crates are tested in one cargo
/// run; when something did not compile, each crate is run alone so that the healthy crates'
/// tests still count and each broken crate counts as one failure.
pub fn run(paths: &Paths) -> Result<Counts> {
    let run_for = |crates: &[&str]| -> Result<(String, ExitStatus)> {
        let mut cmd = cargo();
        cmd.args(test_args(crates)).current_dir(&paths.root);
        run_echoing(cmd)
    };
    let (out, status) = run_for(HOST_CRATES)?;
    if status.success() || !compile_failed(&out) {
        return Ok(count(&out, status.success()));
    }
    println!("host tests: something did not compile; testing each crate alone");
    let mut total = Counts::default();
    for krate in HOST_CRATES {
        let (out, status) = run_for(&[krate])?;
        let c = count(&out, status.success());
        if !status.success() && compile_failed(&out) {
            println!("host tests: {krate} did not compile (counted as 1 failed)");
        }
        total += c;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
   Compiling p2m v0.1.0
     Running unittests src/lib.rs (target/debug/deps/p2m-1234)
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running unittests src/lib.rs (target/debug/deps/tests-1234)
test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s

   Doc-tests p2m
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn sums_result_lines() {
        assert_eq!(
            parse(SAMPLE),
            Counts {
                passed: 13,
                failed: 2
            }
        );
        assert_eq!(parse(""), Counts::default());
    }

    #[test]
    fn compile_failure_counts_as_one() {
        let out = "   Compiling p2m v0.1.0\nerror[E0425]: cannot find value `x`\n\
                   error: could not compile `p2m` (lib test) due to 1 previous error\n";
        assert!(compile_failed(out));
        assert_eq!(
            count(out, false),
            Counts {
                passed: 0,
                failed: 1
            }
        );
        // Failing tests already count; no extra failure for the non-zero exit.
        assert_eq!(
            count(SAMPLE, false),
            Counts {
                passed: 13,
                failed: 2
            }
        );
        assert!(!compile_failed(SAMPLE));
    }

    #[test]
    fn zero_tests_is_fine() {
        let out = "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(count(out, true), Counts::default());
    }

    #[test]
    fn args() {
        assert_eq!(
            test_args(&["p2m", "tools"]).join(" "),
            "test --no-fail-fast -p p2m -p tools"
        );
    }

    #[test]
    fn echoing_captures_both_streams() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 2"]);
        let (text, status) = run_echoing(cmd).unwrap();
        assert_eq!(status.code(), Some(2));
        assert!(text.contains("out\n") && text.contains("err\n"));
    }
}
