//! Scenarios of the serial console's input: what is typed goes to one domain's hvc0 at a
//! time, and Ctrl-A three times moves it on.

use super::*;

/// The interactive default of `make run`: Debian's kernel with a shell on hvc0 (its vif up at
/// 10.0.0.2, the peer host at 10.0.0.1); `poweroff` in it ends the domain and the run.
pub fn shell() -> Scenario {
    Scenario::new("shell")
        .domain(DomainSpec::linux(
            "xenolith-guest",
            256,
            2,
            false,
            "xenolith.test=shell xenolith.ip=10.0.0.2",
        ))
        .timeout(std::time::Duration::from_secs(24 * 3600))
}

/// The scenarios that wait for a person at the terminal: `run` boots them, `make test` does
/// not.
pub fn interactive() -> Vec<Scenario> {
    vec![shell()]
}

/// Two Linux domains with shells on hvc0; the runner types into the serial console: a
/// command to d1 (the input starts there), Ctrl-A three times, a command to d2, `poweroff`
/// to d2 (the input moves back to d1), a last command and `poweroff` to d1. Each answer is
/// computed by the guest's shell (`$((6*7))`), so only the domain that ran the command can
/// print it, and none appears in the other domain's lines.
pub fn console_input() -> Scenario {
    let extra = |ip: &str| format!("xenolith.test=shell xenolith.ip={ip}");
    Scenario::new("console-input")
        .domain(DomainSpec::linux(
            "shell-a",
            160,
            1,
            false,
            &extra("10.0.0.2"),
        ))
        .domain(DomainSpec::linux(
            "shell-b",
            160,
            1,
            false,
            &extra("10.0.0.3"),
        ))
        .timeout(std::time::Duration::from_secs(900))
        .type_after(
            "(d1) GUEST shell ready",
            "echo one-$((6*7)); cat /sys/hypervisor/type\r",
        )
        .type_after("(d2) GUEST shell ready", "\x01\x01\x01")
        .type_after(
            "xenolith: console input to d2",
            "echo two-$((7*8)); ping -c 1 10.0.0.2 | grep -c ttl=\r",
        )
        .type_after("(d2) two-56", "poweroff\r")
        .type_after(
            "xenolith: domain 2 (shell-b) shut down",
            "echo back-$((2+3)); poweroff\r",
        )
        .expect_all([
            Expectation::line(
                r"^xenolith: console input to d1 \(shell-a\); Ctrl-A three times switches$",
            ),
            fifo_events(1),
            fifo_events(2),
            guest_line(1, r"GUEST shell ready"),
            guest_line(1, r"one-42$"),
            guest_line(1, r"xen$"),
            guest_line(2, r"GUEST shell ready"),
            Expectation::line(
                r"^xenolith: console input to d2 \(shell-b\); Ctrl-A three times switches$",
            ),
            guest_line(2, r"two-56$"),
            guest_line(2, r"1$"),
            domain_end(2, "shell-b", "shut down: poweroff"),
            Expectation::line(r"^xenolith: console input to d1 \(shell-a\)"),
            guest_line(1, r"back-5$"),
            domain_end(1, "shell-a", "shut down: poweroff"),
            audit_clean(1),
            audit_clean(2),
            Expectation::forbid(r"^\(d2\) (?:one-42|back-5)"),
            Expectation::forbid(r"^\(d1\) two-56"),
        ])
}
