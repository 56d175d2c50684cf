//! The serial-log checker.

use std::fmt;

use regex::{Captures, Regex};

use crate::scenario::{Expectation, NumCheck, Scenario};

/// The last line of a normal run (docs/protocol.md).
pub const FINAL_LINE: &str = "xenolith: all domains finished";

/// Line beginnings after which a run has nothing more to say: the final line, or the hypervisor
/// itself failing. The runner stops the emulator shortly after it sees one at the start of a
/// line ([`starts_a_line`]): only the hypervisor writes there, guests' lines start `(d<N>) `.
pub const STOP_MARKERS: &[&str] = &[FINAL_LINE, "xenolith: PANIC", "xenolith: EXCEPTION"];

/// Patterns no scenario's log may contain.
pub const STANDARD_FORBIDDEN: &[&str] = &[
    r"^xenolith: PANIC",
    r"^xenolith: EXCEPTION",
    r"GUEST .*FAIL",
];

/// Whether `marker` occurs in `data` at the start of a line (at 0 or after a `\n`), looking
/// only at occurrences that begin at or after `from`.
pub fn starts_a_line(data: &[u8], from: usize, marker: &str) -> bool {
    let m = marker.as_bytes();
    if m.is_empty() || data.len() < m.len() {
        return false;
    }
    (from..=data.len() - m.len())
        .any(|p| (p == 0 || data[p - 1] == b'\n') && data[p..].starts_with(m))
}

/// The outcome of checking a log against a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every required line is there and no forbidden line is.
    Pass,
    /// The reason names the first forbidden line found or the first required line missing.
    Fail(String),
}

impl Verdict {
    /// Whether this is [`Verdict::Pass`].
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => write!(f, "PASS"),
            Verdict::Fail(reason) => write!(f, "FAIL ({reason})"),
        }
    }
}

/// The expectations every scenario has besides its own: the forbidden hypervisor-failure and
/// guest-failure lines, and the final line, required last.
pub fn standard_expectations() -> Vec<Expectation> {
    let mut v: Vec<Expectation> = STANDARD_FORBIDDEN
        .iter()
        .map(|p| Expectation::forbid(*p))
        .collect();
    v.push(Expectation::line(format!(
        "^{}$",
        regex::escape(FINAL_LINE)
    )));
    v
}

/// Checks a serial log against a scenario's expectations plus [`standard_expectations`].
///
/// Lines end in `\n`, a trailing `\r` is ignored; patterns are searched for anywhere in a line
/// unless anchored (`^`): every pattern for a hypervisor line is, so a guest cannot forge one.
/// Forbidden lines are looked for first (the earliest in the log is reported), then the required
/// lines in the scenario's order, the final line last.
pub fn check(scenario: &Scenario, log: &str) -> Verdict {
    let standard = standard_expectations();
    let (std_forbidden, std_required): (Vec<_>, Vec<_>) =
        standard.iter().partition(|e| e.forbidden);
    let forbidden: Vec<&Expectation> = std_forbidden
        .into_iter()
        .chain(scenario.expect.iter().filter(|e| e.forbidden))
        .collect();
    let required: Vec<&Expectation> = scenario
        .expect
        .iter()
        .filter(|e| !e.forbidden)
        .chain(std_required)
        .collect();

    let compile = |e: &Expectation| {
        Regex::new(&e.pattern).map_err(|err| format!("bad pattern /{}/: {err}", e.pattern))
    };
    let mut forbidden_re = Vec::new();
    for e in &forbidden {
        match compile(e) {
            Ok(re) => forbidden_re.push((re, *e)),
            Err(reason) => return Verdict::Fail(reason),
        }
    }

    let lines: Vec<&str> = log
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    for (n, line) in lines.iter().enumerate() {
        for (re, e) in &forbidden_re {
            if let Some(caps) = re.captures(line) {
                if eval_checks(&e.checks, &caps).is_ok() {
                    return Verdict::Fail(format!("forbidden line {}: \"{}\"", n + 1, line.trim()));
                }
            }
        }
    }

    for e in required {
        let re = match compile(e) {
            Ok(re) => re,
            Err(reason) => return Verdict::Fail(reason),
        };
        let mut first_bad: Option<String> = None;
        let mut found = false;
        for (n, line) in lines.iter().enumerate() {
            if let Some(caps) = re.captures(line) {
                match eval_checks(&e.checks, &caps) {
                    Ok(()) => {
                        found = true;
                        break;
                    }
                    Err(why) => {
                        first_bad.get_or_insert_with(|| {
                            format!("line {}: \"{}\": {why}", n + 1, line.trim())
                        });
                    }
                }
            }
        }
        if !found {
            return Verdict::Fail(
                first_bad.unwrap_or_else(|| format!("missing line /{}/", e.pattern)),
            );
        }
    }
    Verdict::Pass
}

/// Applies numeric checks to a match; the error says which check failed.
fn eval_checks(checks: &[NumCheck], caps: &Captures<'_>) -> Result<(), String> {
    let num = |group: usize| -> Result<u64, String> {
        let text = caps
            .get(group)
            .ok_or_else(|| format!("group {group} did not match"))?
            .as_str();
        text.parse::<u64>()
            .map_err(|_| format!("group {group} is \"{text}\", not a number"))
    };
    for check in checks {
        match *check {
            NumCheck::Gt(g, want) => {
                let v = num(g)?;
                if v <= want {
                    return Err(format!("group {g} is {v}, want > {want}"));
                }
            }
            NumCheck::Eq(g, want) => {
                let v = num(g)?;
                if v != want {
                    return Err(format!("group {g} is {v}, want == {want}"));
                }
            }
            NumCheck::GroupsEqual(a, b) => {
                let (va, vb) = (num(a)?, num(b)?);
                if va != vb {
                    return Err(format!("group {a} is {va} but group {b} is {vb}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_count_only_at_the_start_of_a_line() {
        let log = b"boot\r\n(d2) xenolith: all domains finished\r\nxenolith: PANIC x\r\n";
        assert!(!starts_a_line(log, 0, FINAL_LINE));
        assert!(starts_a_line(log, 0, "xenolith: PANIC"));
        assert!(starts_a_line(b"xenolith: PANIC", 0, "xenolith: PANIC"));
        // Only occurrences from `from` on count.
        assert!(!starts_a_line(log, 45, "xenolith: PANIC"));
        assert!(!starts_a_line(b"", 0, FINAL_LINE));
    }

    #[test]
    fn a_guest_cannot_forge_the_final_line() {
        let scenario = Scenario::new("forged");
        let forged = "(d1) GUEST hello\n(d1) xenolith: all domains finished\n";
        assert!(!check(&scenario, forged).is_pass());
        let forged_mid = "(d1) x xenolith: all domains finished\n";
        assert!(!check(&scenario, forged_mid).is_pass());
        assert!(check(
            &scenario,
            "(d1) GUEST hello\nxenolith: all domains finished\r\n"
        )
        .is_pass());
        // A guest's `xenolith: PANIC` is its own text, not a hypervisor failure.
        let noisy = "(d1) xenolith: PANIC\nxenolith: all domains finished\n";
        assert!(check(&scenario, noisy).is_pass());
    }
}
