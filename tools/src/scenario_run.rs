//! One scenario end to end: ISO, emulator under the watchdog, verdict from the log.

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use ::tests::{check, Scenario, Verdict};
use anyhow::{bail, Context, Result};

use crate::emulator::{self, files, Choice};
use crate::iso;
use crate::paths::Paths;
use crate::runner::{self, Ending, Outcome, RunOptions};

/// Environment variable overriding every scenario's wall-clock limit, in seconds.
pub const TIMEOUT_ENV: &str = "XENOLITH_TIMEOUT";

/// The result of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// Pass, or fail with the reason.
    pub verdict: Verdict,
    /// Wall time of the emulator run (zero when it did not start).
    pub wall: Duration,
    /// One line on how the run went, for the terminal.
    pub detail: String,
    /// On failure (when the console was not streamed): the last lines of the serial log and
    /// Bochs' complaints about VM entries, shown under the verdict.
    pub excerpt: Vec<String>,
}

impl ScenarioResult {
    /// `scenario <name>: PASS` or `scenario <name>: FAIL (<reason>)`.
    pub fn verdict_line(&self) -> String {
        format!("scenario {}: {}", self.name, self.verdict)
    }

    /// The verdict line followed by the detail line and the excerpt, if any.
    pub fn report(&self) -> String {
        let mut s = format!("{}\n  {}", self.verdict_line(), self.detail);
        for line in &self.excerpt {
            s.push_str("\n  | ");
            s.push_str(line);
        }
        s
    }

    /// A failure before the emulator ran.
    pub fn failed_early(name: &str, reason: String) -> Self {
        ScenarioResult {
            name: name.to_string(),
            verdict: Verdict::Fail(reason),
            wall: Duration::ZERO,
            detail: "not run".to_string(),
            excerpt: Vec::new(),
        }
    }
}

/// The wall-clock limit: `$XENOLITH_TIMEOUT` seconds (`env`) if set, else `default`.
pub fn timeout(env: Option<&str>, default: Duration) -> Result<Duration> {
    match env.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
            _ => bail!("{TIMEOUT_ENV}={s:?}: want a number of seconds > 0"),
        },
    }
}

/// The verdict of a run: the log check, failed further by how the run ended.
pub fn decide(scenario: &Scenario, outcome: &Outcome, emulator: emulator::Emulator) -> Verdict {
    let verdict = check(scenario, &outcome.log);
    let reason = match verdict {
        Verdict::Pass => {
            return if outcome.ending == Ending::Interrupted {
                Verdict::Fail("interrupted".to_string())
            } else {
                Verdict::Pass
            }
        }
        Verdict::Fail(reason) => reason,
    };
    Verdict::Fail(match &outcome.ending {
        Ending::TimedOut => format!(
            "timeout after {:.0} s; {reason}",
            outcome.wall.as_secs_f64()
        ),
        Ending::Interrupted => format!("interrupted; {reason}"),
        Ending::Exited(status) => format!(
            "{reason}; {emulator} exited ({status}) after {:.1} s",
            outcome.wall.as_secs_f64()
        ),
        Ending::Stopped { .. } => reason,
    })
}

fn describe(ending: &Ending, emulator: emulator::Emulator) -> String {
    match ending {
        Ending::Exited(s) => format!("{emulator} exited ({s})"),
        Ending::Stopped {
            marker,
            status: Some(s),
        } => format!("{emulator} exited ({s}) after \"{marker}\""),
        Ending::Stopped {
            marker,
            status: None,
        } => format!("{emulator} killed after \"{marker}\""),
        Ending::TimedOut => format!("{emulator} killed by the watchdog"),
        Ending::Interrupted => format!("{emulator} killed on a signal"),
    }
}

/// The emulator's serial port for a run: a socket when something is typed (the scenario's
/// script, or the terminal of an interactive run), else a file.
fn input_plan(
    scenario: &Scenario,
    interactive: bool,
) -> Result<(emulator::SerialPort, Option<runner::InputPlan>)> {
    if !interactive && scenario.input.is_empty() {
        return Ok((emulator::SerialPort::File, None));
    }
    let port = crate::serial_link::free_port()?;
    let plan = runner::InputPlan {
        port,
        script: scenario.input.clone(),
        terminal: interactive,
    };
    Ok((emulator::SerialPort::Socket(port), Some(plan)))
}

/// Builds the scenario's ISO and runs it; `stream` copies the serial console to the terminal
/// and what is typed there to the guest (interactive). The hypervisor and test guest must
/// already be built.
pub fn run(paths: &Paths, scenario: &Scenario, choice: &Choice, stream: bool) -> ScenarioResult {
    match try_run(paths, scenario, choice, stream) {
        Ok(r) => r,
        Err(e) => ScenarioResult::failed_early(&scenario.name, format!("{e:#}")),
    }
}

fn try_run(
    paths: &Paths,
    scenario: &Scenario,
    choice: &Choice,
    stream: bool,
) -> Result<ScenarioResult> {
    let interactive = stream;
    let limit = timeout(std::env::var(TIMEOUT_ENV).ok().as_deref(), scenario.timeout)?;
    iso::make_iso(paths, scenario, choice.emulator).context("iso")?;
    let dir = paths.scenario_dir(&scenario.name);
    let out_path = dir.join(files::EMULATOR_OUT);
    let serial = dir.join(files::SERIAL);
    let mut attempt = 0;
    let outcome = loop {
        let (port, input) = input_plan(scenario, interactive)?;
        let mut cmd = emulator::prepare(choice.emulator, &dir, port)?;
        let out =
            File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
        cmd.stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out));
        let mut options = RunOptions::new(limit, stream);
        options.input = input;
        let outcome = runner::run(cmd, &serial, &options)
            .with_context(|| format!("running {}", choice.emulator))?;
        // Bochs' headless display needs a free VNC port; with many emulators running on one
        // machine it can find none and exit before the machine starts. That is not a result.
        let emulator_out = std::fs::read_to_string(&out_path).unwrap_or_default();
        attempt += 1;
        if attempt < 3 && emulator_out.contains(RFB_NO_PORT) && outcome.log.is_empty() {
            println!(
                "scenario {}: Bochs found no free VNC port, starting it again",
                scenario.name
            );
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        break outcome;
    };
    let verdict = decide(scenario, &outcome, choice.emulator);
    let detail = format!(
        "wall {:.1} s, {}, log {}",
        outcome.wall.as_secs_f64(),
        describe(&outcome.ending, choice.emulator),
        paths.show(&serial)
    );
    let excerpt = if verdict.is_pass() || stream {
        Vec::new()
    } else {
        let bochs_log = std::fs::read_to_string(dir.join(files::BOCHS_LOG)).unwrap_or_default();
        excerpt(&outcome.log, &bochs_log)
    };
    Ok(ScenarioResult {
        name: scenario.name.clone(),
        verdict,
        wall: outcome.wall,
        detail,
        excerpt,
    })
}

/// What Bochs says when its headless (VNC) display finds no port to listen on.
const RFB_NO_PORT: &str = "RFB could not bind any port";

/// How many serial lines a failure shows.
const EXCERPT_SERIAL_LINES: usize = 20;
/// How many emulator-log lines a failure shows.
const EXCERPT_EMULATOR_LINES: usize = 5;

/// The last [`EXCERPT_SERIAL_LINES`] non-empty serial lines (escape sequences removed), then up
/// to [`EXCERPT_EMULATOR_LINES`] lines of the emulator's log that report failed VM entries or
/// panics.
pub fn excerpt(serial: &str, emulator_log: &str) -> Vec<String> {
    let clean = |l: &str| -> String {
        let mut out = String::new();
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // Skip an escape sequence: ESC [ params final-byte.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            } else if !c.is_control() {
                out.push(c);
            }
        }
        out.trim_end().to_string()
    };
    let lines: Vec<String> = serial
        .lines()
        .map(clean)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut v: Vec<String> = lines[lines.len().saturating_sub(EXCERPT_SERIAL_LINES)..].to_vec();
    v.extend(
        emulator_log
            .lines()
            .filter(|l| l.contains("VMENTER FAIL") || l.contains("VMFAIL") || l.contains("PANIC"))
            .take(EXCERPT_EMULATOR_LINES)
            .map(|l| format!("[emulator] {}", clean(l))),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::Emulator;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn timeout_override() {
        let d = Duration::from_secs(300);
        assert_eq!(timeout(None, d).unwrap(), d);
        assert_eq!(timeout(Some(""), d).unwrap(), d);
        assert_eq!(timeout(Some("20"), d).unwrap(), Duration::from_secs(20));
        assert_eq!(timeout(Some("0.5"), d).unwrap(), Duration::from_millis(500));
        assert!(timeout(Some("0"), d).is_err());
        assert!(timeout(Some("soon"), d).is_err());
    }

    fn outcome(ending: Ending, log: &str) -> Outcome {
        Outcome {
            ending,
            wall: Duration::from_secs(300),
            log: log.to_string(),
            mark_times: Vec::new(),
        }
    }

    #[test]
    fn timeout_fails_unless_everything_matched() {
        let s = Scenario::new("t").expect(::tests::Expectation::line("hello"));
        let good = "hello\nxenolith: all domains finished\n";
        assert_eq!(
            decide(&s, &outcome(Ending::TimedOut, good), Emulator::Bochs),
            Verdict::Pass
        );
        match decide(&s, &outcome(Ending::TimedOut, "hello\n"), Emulator::Bochs) {
            Verdict::Fail(r) => {
                assert!(r.starts_with("timeout after 300 s;"), "{r}");
                assert!(r.contains("all domains finished"), "{r}");
            }
            Verdict::Pass => panic!(),
        }
    }

    #[test]
    fn early_exit_names_the_status() {
        let s = Scenario::new("t");
        let ended = Ending::Exited(ExitStatus::from_raw(1 << 8));
        match decide(&s, &outcome(ended, ""), Emulator::Bochs) {
            Verdict::Fail(r) => assert!(r.contains("bochs exited (exit status: 1)"), "{r}"),
            Verdict::Pass => panic!(),
        }
        let ok = "xenolith: all domains finished\n";
        assert_eq!(
            decide(&s, &outcome(Ending::Interrupted, ok), Emulator::Bochs),
            Verdict::Fail("interrupted".to_string())
        );
    }

    #[test]
    fn excerpt_takes_the_tail_and_emulator_complaints() {
        let serial: String = (0..30).map(|i| format!("\x1b[0mline {i}\r\n")).collect();
        let bochs = "00i[CPU0] ok\n00e[VMX] VMENTER FAIL: VMCS guest TR invalid\n";
        let e = excerpt(&serial, bochs);
        assert_eq!(e.len(), 21);
        assert_eq!(e[0], "line 10");
        assert_eq!(e[19], "line 29");
        assert_eq!(
            e[20],
            "[emulator] 00e[VMX] VMENTER FAIL: VMCS guest TR invalid"
        );
    }

    #[test]
    fn report_format() {
        let r = ScenarioResult::failed_early("xen-identity", "iso: boom".to_string());
        assert_eq!(r.verdict_line(), "scenario xen-identity: FAIL (iso: boom)");
        let r = ScenarioResult {
            verdict: Verdict::Pass,
            ..r
        };
        assert_eq!(r.verdict_line(), "scenario xen-identity: PASS");
    }
}
