//! The scenarios. Each is a function returning a [`Scenario`]; [`all`] lists them in the order
//! `xenolith-tools test` runs them.

use crate::scenario::{DomainSpec, Expectation, NumCheck, Scenario};

/// The scenario `xenolith-tools run` (and `make run`) boots when given none.
pub const DEFAULT_SCENARIO: &str = "linux-hvm";

/// Every scenario, in the order `xenolith-tools test` runs them.
pub fn all() -> Vec<Scenario> {
    // The longest first: `make test` runs two at a time.
    vec![
        netfront(),
        xen_identity(),
        containment(),
        linux_hvm(),
        netfront_pair(),
        linux_bzimage(),
    ]
}

/// The scenario called `name`, if there is one.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The names of every scenario, in order.
pub fn names() -> Vec<String> {
    all().into_iter().map(|s| s.name).collect()
}

/// Domain `d`'s console line: `(d<d>) ` then `rest` (a regex).
fn guest(d: u32, rest: &str) -> Expectation {
    Expectation::line(format!(r"\(d{d}\) {rest}"))
}

/// Domain `d`'s p2m audit line at teardown, with no violations. Every domain has two special
/// pages from the toolstack (console and xenstore rings); `special` adds the shared_info page the
/// identity test maps.
fn audit(d: u32, special: bool) -> Expectation {
    audit_with(d, if special { 3 } else { 2 })
}

/// Domain `d`'s audit line with exactly `special` special pages and no violations.
fn audit_with(d: u32, special: u64) -> Expectation {
    Expectation::line(format!(
        r"^xenolith: p2m audit d{d}: (\d+) special pages WB\+ipat, (\d+) leaves, (\d+) violations"
    ))
    .with(NumCheck::Eq(3, 0))
    .with(NumCheck::Eq(1, special))
}

/// Domain `d`'s eth0 up at `ip` with the MAC the toolstack gives its first vif
/// (00:16:3e:00:<domid>:00).
fn eth0_up(d: u32, ip: &str) -> Expectation {
    guest(
        d,
        &format!(
            r"GUEST eth0 mac=00:16:3e:00:{d:02x}:00 ip={}$",
            regex::escape(ip)
        ),
    )
}

/// Domain `d`'s busybox ping of `ip`: three sent, three answered.
fn ping_ok(d: u32, ip: &str) -> Expectation {
    guest(
        d,
        &format!(
            r"GUEST ping {}: 3 packets transmitted, 3 packets received, 0% packet loss",
            regex::escape(ip)
        ),
    )
}

/// `xenolith: domain <d> (<name>) <what>` (`what` is a regex).
fn domain_end(d: u32, name: &str, what: &str) -> Expectation {
    Expectation::line(format!(
        r"^xenolith: domain {d} \({}\) {what}",
        regex::escape(name)
    ))
}

/// The lines of the test guest's `test=identity` mode in domain `d`, up to its shutdown.
fn identity_lines(d: u32, name: &str) -> Vec<Expectation> {
    vec![
        guest(d, r"GUEST xen-signature XenVMMXenVMM"),
        guest(d, r"GUEST xen-version 4\.\d+"),
        guest(d, r"GUEST shared_info gpfn=0xf0000 wc_sec=\d+ ok"),
        guest(d, r"GUEST done, shutting down"),
        domain_end(d, name, "shut down: poweroff"),
        audit(d, true),
    ]
}

/// Debian's stock kernel as a PV-on-HVM guest with two vCPUs and `iommu = 1`: its own `/init`
/// reports the Xen hypervisor, both CPUs, the Xen clocksource, the callback vector and the grant
/// table, then powers off through ACPI. The audit shows shared_info, the console and xenstore
/// rings and the grant frame Linux mapped in the platform device's BAR1 (which the guest's MTRRs
/// make UC, as its own `/proc/mtrr` line shows) all WB+ipat.
pub fn linux_hvm() -> Scenario {
    Scenario::new("linux-hvm")
        .domain(DomainSpec::linux("linux-hvm", 256, 2, false, ""))
        .timeout(std::time::Duration::from_secs(600))
        .expect_all([
            guest(1, r"GUEST uname=6\.1\.\d+-\d+-amd64"),
            guest(1, r"GUEST hypervisor=xen$"),
            guest(1, r"GUEST cpus=2$"),
            guest(1, r"GUEST clocksource=xen$"),
            guest(
                1,
                r"GUEST mtrr: reg\d+: base=0x0*f0000000 \(\s*3840MB\), size=\s*256MB, count=1: uncachable",
            ),
            guest(
                1,
                r"GUEST dmesg: xen:events: Xen HVM callback vector for event delivery is enabled",
            ),
            guest(1, r"GUEST dmesg: xen:grant_table: Grant tables using version 1 layout"),
            guest(1, r"GUEST init done"),
            domain_end(1, "linux-hvm", "shut down: poweroff"),
            // shared_info, console ring, xenstore ring and one grant frame.
            audit_with(1, 4),
        ])
}

/// The same kernel booted from Debian's bzImage as shipped: its own decompressor unpacks the XZ
/// payload inside the domain before the kernel proper starts (one vCPU, to keep it short).
pub fn linux_bzimage() -> Scenario {
    Scenario::new("linux-bzimage")
        .domain(DomainSpec::linux("linux-bzimage", 256, 1, true, ""))
        .timeout(std::time::Duration::from_secs(900))
        .expect_all([
            guest(1, r"GUEST uname=6\.1\.\d+-\d+-amd64"),
            guest(1, r"GUEST hypervisor=xen$"),
            guest(1, r"GUEST cpus=1$"),
            guest(1, r"GUEST clocksource=xen$"),
            guest(1, r"GUEST init done"),
            domain_end(1, "linux-bzimage", "shut down: poweroff"),
            audit_with(1, 4),
        ])
}

/// One test-guest domain in identity mode: CPUID leaves, version hypercall, shared_info mapped
/// in a UC MTRR range, clean shutdown, clean p2m audit.
pub fn xen_identity() -> Scenario {
    Scenario::new("xen-identity")
        .domain(DomainSpec::test_guest("xen-identity", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect_all(identity_lines(1, "xen-identity"))
}

/// Three domains in one boot: one triple-faults, one makes bad hypercalls, the third must still
/// run its identity test to the end.
pub fn containment() -> Scenario {
    Scenario::new("containment")
        .domain(DomainSpec::test_guest("crasher", "triple-fault", false))
        .domain(DomainSpec::test_guest("bad-args", "bad-args", false))
        .domain(DomainSpec::test_guest("survivor", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(guest(1, r"GUEST about to triple-fault"))
        .expect(domain_end(1, "crasher", "crashed: triple fault"))
        .expect(audit(1, false))
        .expect(
            guest(2, r"GUEST badargs (\d+)/(\d+) ok")
                .with(NumCheck::Gt(1, 0))
                .with(NumCheck::GroupsEqual(1, 2)),
        )
        .expect(domain_end(2, "bad-args", "shut down: poweroff"))
        .expect(audit(2, false))
        .expect(guest(3, r"GUEST shared_info gpfn=0xf0000 wc_sec=\d+ ok"))
        .expect(domain_end(3, "survivor", "shut down: poweroff"))
        .expect(audit(3, true))
}

/// Bytes the `netfront` scenario moves each way (64 MiB).
pub const NETFRONT_BYTES: u64 = 64 << 20;
/// The lowest Mbit/s (integer part, as the guest measured it on its own clock) the `netfront`
/// scenario accepts per direction. Measured on Bochs (2026-11-25, 4 MiB runs): 6.9 Mbit/s
/// guest to peer and 10.9 Mbit/s peer to guest; the floor is a seventh and a tenth of those, so
/// it catches a regression of an order of magnitude and not the noise.
pub const NETFRONT_FLOOR_MBIT: u64 = 1;

/// Debian's kernel with its own netfront against the hypervisor's peer host through the switch:
/// the guest pings the peer, sends [`NETFRONT_BYTES`] to its discard port and reads as many from
/// its source port with busybox `dd | nc`, and prints what it measured. The peer's own counts
/// must match. Debian's xenstore tools in the guest list its vif, read and write its home, see
/// a watch fire (once when set, once on a write), are refused another domain's home and
/// remove a node.
pub fn netfront() -> Scenario {
    Scenario::new("netfront")
        .domain(DomainSpec::linux(
            "netfront",
            256,
            2,
            false,
            &format!("xenolith.test=netfront xenolith.bytes={NETFRONT_BYTES}"),
        ))
        .timeout(std::time::Duration::from_secs(1800))
        .expect_all([
            eth0_up(1, "10.0.0.2"),
            guest(1, r"GUEST vif backend=/local/domain/0/backend/vif/1/0 state=4$"),
            guest(1, r#"GUEST xenstore-ls: +backend = "/local/domain/0/backend/vif/1/0"$"#),
            guest(1, r"GUEST xenstore-read domid=1$"),
            guest(1, r"GUEST xenstore-read data/xenolith-test=hello$"),
            guest(1, r"GUEST xenstore-watch events=2 last=data/xenolith-watch$"),
            // The tool prints no errno; the server's EACCES is checked by xenstore's host tests.
            guest(1, r"GUEST xenstore-write other-domain: xenstore-write: could not write path /local/domain/0/xenolith-test$"),
            guest(1, r"GUEST xenstore-exists after rm: no$"),
            ping_ok(1, "10.0.0.1"),
            guest(
                1,
                r"NETFRONT tx_bytes=(\d+) tx_mbit=(\d+)\.\d+ rx_bytes=(\d+) rx_mbit=(\d+)\.\d+$",
            )
            .with(NumCheck::Eq(1, NETFRONT_BYTES))
            .with(NumCheck::Eq(3, NETFRONT_BYTES))
            .with(NumCheck::Gt(2, NETFRONT_FLOOR_MBIT - 1))
            .with(NumCheck::Gt(4, NETFRONT_FLOOR_MBIT - 1)),
            Expectation::line(r"^xenolith: netpeer: discard received (\d+) bytes from 10\.0\.0\.2:")
                .with(NumCheck::Eq(1, NETFRONT_BYTES)),
            Expectation::line(r"^xenolith: netpeer: source sent (\d+) bytes to 10\.0\.0\.2:")
                .with(NumCheck::Gt(1, NETFRONT_BYTES - 1)),
            guest(1, r"GUEST init done"),
            domain_end(1, "netfront", "shut down: poweroff"),
        ])
}

/// Bytes one domain sends the other in `netfront-pair` (16 MiB).
pub const PAIR_BYTES: u64 = 16 << 20;

/// Two Linux domains on the switch at once: d2 pings d1 and sends it [`PAIR_BYTES`] over TCP
/// (busybox `nc`), d1 counts what arrived and pings d2 back.
pub fn netfront_pair() -> Scenario {
    let extra = |mode: &str, ip: &str| {
        format!("xenolith.test={mode} xenolith.ip={ip} xenolith.bytes={PAIR_BYTES}")
    };
    Scenario::new("netfront-pair")
        .domain(DomainSpec::linux(
            "pair-a",
            192,
            1,
            false,
            &extra("pair-server", "10.0.0.2"),
        ))
        .domain(DomainSpec::linux(
            "pair-b",
            192,
            1,
            false,
            &extra("pair-client", "10.0.0.3"),
        ))
        .timeout(std::time::Duration::from_secs(900))
        .expect_all([
            eth0_up(1, "10.0.0.2"),
            eth0_up(2, "10.0.0.3"),
            ping_ok(2, "10.0.0.2"),
            guest(2, r"GUEST pair sent (\d+) bytes").with(NumCheck::Eq(1, PAIR_BYTES)),
            guest(1, r"GUEST pair received (\d+) bytes").with(NumCheck::Eq(1, PAIR_BYTES)),
            ping_ok(1, "10.0.0.3"),
            domain_end(1, "pair-a", "shut down: poweroff"),
            domain_end(2, "pair-b", "shut down: poweroff"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, Verdict};
    use crate::scenario::{ModuleSource, TEST_GUEST_MODULE};

    const GOOD_IDENTITY: &str = "\x1b[0m\x1b[2J\r\n\
        xenolith: VMX caps: ept vpid unrestricted-guest\r\n\
        (d1) GUEST xen-signature XenVMMXenVMM base=0x40000000 max=0x40000005\r\n\
        (d1) GUEST xen-version 4.17-xenolith\r\n\
        (d1) GUEST features=0x1\r\n\
        (d1) GUEST mtrr uc-range 0xf0000000-0xffffffff def=0xc06 var0=0xf0000000/0xff0000800\r\n\
        (d1) GUEST shared_info gpfn=0xf0000 wc_sec=1763000000 ok\r\n\
        (d1) GUEST done, shutting down\r\n\
        xenolith: domain 1 (xen-identity) shut down: poweroff\r\n\
        xenolith: p2m audit d1: 3 special pages WB+ipat, 16 leaves, 0 violations\r\n\
        xenolith: all domains finished\r\n";

    const GOOD_CONTAINMENT: &str = "xenolith: VMX caps: ept\n\
        (d1) GUEST about to triple-fault\n\
        xenolith: domain 1 (crasher) crashed: triple fault\n\
        xenolith: p2m audit d1: 2 special pages WB+ipat, 16 leaves, 0 violations\n\
        (d2) GUEST badarg null-ptr: rc=-14 want=-14 ok\n\
        (d2) GUEST badargs 7/7 ok\n\
        xenolith: domain 2 (bad-args) shut down: poweroff\n\
        xenolith: p2m audit d2: 2 special pages WB+ipat, 16 leaves, 0 violations\n\
        (d3) GUEST shared_info gpfn=0xf0000 wc_sec=5 ok\n\
        xenolith: domain 3 (survivor) shut down: poweroff\n\
        xenolith: p2m audit d3: 3 special pages WB+ipat, 16 leaves, 0 violations\n\
        xenolith: all domains finished\n";

    fn fail_reason(v: Verdict) -> String {
        match v {
            Verdict::Fail(r) => r,
            Verdict::Pass => panic!("expected a failure"),
        }
    }

    fn without_line(log: &str, needle: &str) -> String {
        log.split_inclusive('\n')
            .filter(|l| !l.contains(needle))
            .collect()
    }

    #[test]
    fn good_logs_pass() {
        assert_eq!(check(&xen_identity(), GOOD_IDENTITY), Verdict::Pass);
        assert_eq!(check(&containment(), GOOD_CONTAINMENT), Verdict::Pass);
    }

    #[test]
    fn each_missing_required_line_fails() {
        for (scenario, log) in [
            (xen_identity(), GOOD_IDENTITY),
            (containment(), GOOD_CONTAINMENT),
        ] {
            let required: Vec<&str> = log
                .lines()
                .filter(|l| {
                    !l.contains("features=")
                        && !l.contains("mtrr")
                        && !l.contains("badarg ")
                        && !l.starts_with('\x1b')
                })
                .collect();
            assert!(required.len() >= 8);
            for line in required {
                let key = line.trim_end_matches('\r');
                let reason = fail_reason(check(&scenario, &without_line(log, key)));
                assert!(
                    reason.starts_with("missing line"),
                    "{}: removing {key:?} gave {reason}",
                    scenario.name
                );
            }
        }
    }

    #[test]
    fn missing_final_line_is_named() {
        let log = without_line(GOOD_IDENTITY, "all domains finished");
        let reason = fail_reason(check(&xen_identity(), &log));
        assert!(reason.contains("all domains finished"), "{reason}");
    }

    #[test]
    fn first_missing_line_is_reported() {
        let log = without_line(GOOD_IDENTITY, "xen-version");
        let log = without_line(&log, "done, shutting down");
        let reason = fail_reason(check(&xen_identity(), &log));
        assert!(reason.contains("xen-version"), "{reason}");
    }

    #[test]
    fn forbidden_lines_fail() {
        for bad in [
            "xenolith: PANIC out of frames",
            "xenolith: EXCEPTION vector=14 rip=0xffff800000001234 error=0x2 cr2=0x0",
            "(d1) GUEST shared_info gpfn=0xf0000 wc_sec=0 FAIL (wallclock zero)",
            "(d2) GUEST badarg null-ptr: rc=0 want=-14 FAIL",
        ] {
            let log = format!("{GOOD_IDENTITY}{bad}\r\n");
            let reason = fail_reason(check(&xen_identity(), &log));
            assert!(reason.starts_with("forbidden line 12:"), "{reason}");
            assert!(reason.contains(bad), "{reason}");
        }
    }

    #[test]
    fn audit_violation_fails() {
        let log = GOOD_IDENTITY.replace("0 violations", "1 violations");
        let reason = fail_reason(check(&xen_identity(), &log));
        assert!(reason.contains("p2m audit d1"), "{reason}");
        assert!(reason.contains("group 3 is 1, want == 0"), "{reason}");
    }

    #[test]
    fn audit_without_special_pages_fails() {
        let log = GOOD_IDENTITY.replace("3 special pages", "2 special pages");
        let reason = fail_reason(check(&xen_identity(), &log));
        assert!(reason.contains("group 1 is 2, want == 3"), "{reason}");
    }

    #[test]
    fn containment_numeric_checks() {
        let log = GOOD_CONTAINMENT.replace("badargs 7/7", "badargs 6/7");
        assert!(fail_reason(check(&containment(), &log)).contains("group 1 is 6 but group 2 is 7"));
        let log = GOOD_CONTAINMENT.replace("badargs 7/7", "badargs 0/0");
        assert!(fail_reason(check(&containment(), &log)).contains("want > 0"));
        let log = GOOD_CONTAINMENT.replace(
            "xenolith: p2m audit d2: 2 special pages WB+ipat, 16 leaves, 0 violations",
            "xenolith: p2m audit d2: 2 special pages WB+ipat, 16 leaves, 3 violations",
        );
        assert!(fail_reason(check(&containment(), &log)).contains("p2m audit d2"));
    }

    #[test]
    fn wrong_domain_number_does_not_count() {
        let log = GOOD_IDENTITY.replace("(d1) GUEST done", "(d2) GUEST done");
        assert!(fail_reason(check(&xen_identity(), &log)).contains("GUEST done"));
    }

    #[test]
    fn empty_log_fails() {
        let reason = fail_reason(check(&xen_identity(), ""));
        assert!(reason.contains("VMX caps"), "{reason}");
    }

    #[test]
    fn scenarios_are_well_formed() {
        let all = all();
        assert!(find(DEFAULT_SCENARIO).is_some());
        let mut names = names();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate scenario names");
        for s in &all {
            assert!(!s.domains.is_empty());
            for e in &s.expect {
                regex::Regex::new(&e.pattern).expect("pattern compiles");
            }
            for d in &s.domains {
                assert!(d.config.contains("name = \""));
                // Every module the config names is provided, and parses as a config.
                let cfg = domcfg::parse(&d.config).expect("config parses");
                assert!(d.modules.iter().any(|m| m.name == cfg.kernel));
                if let Some(rd) = &cfg.ramdisk {
                    assert!(d.modules.iter().any(|m| &m.name == rd));
                }
            }
        }
    }

    #[test]
    fn linux_domain_uses_the_guest_image() {
        let d = DomainSpec::linux("l", 256, 2, false, "x=1");
        let cfg = domcfg::parse(&d.config).unwrap();
        assert_eq!((cfg.memory_mib, cfg.vcpus, cfg.iommu), (256, 2, true));
        assert!(cfg.cmdline.contains("console=hvc0") && cfg.cmdline.ends_with("x=1"));
        assert_eq!(
            d.modules[0].source,
            ModuleSource::Guest(crate::scenario::GuestFile::Vmlinux)
        );
        let bz = DomainSpec::linux("l", 256, 1, true, "");
        assert_eq!(bz.modules[0].name, "vmlinuz");
    }

    #[test]
    fn test_guest_config_text() {
        let d = DomainSpec::test_guest("xen-identity", "identity", true);
        assert_eq!(
            d.config,
            "name = \"xen-identity\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
             kernel = \"test-guest.elf\"\nextra = \"test=identity\"\niommu = 1\n"
        );
        assert_eq!(d.modules[0].name, TEST_GUEST_MODULE);
        let d = DomainSpec::test_guest("crasher", "triple-fault", false);
        assert!(!d.config.contains("iommu"));
    }
}
