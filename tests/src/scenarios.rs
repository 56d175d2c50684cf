//! The scenarios. Each is a function returning a [`Scenario`]; [`all`] lists them in the order
//! `xenolith-tools test` runs them.

use crate::scenario::{DomainSpec, Expectation, NumCheck, Scenario};

mod console;
pub use console::{console_input, interactive, shell};

/// The scenario `xenolith-tools run` (and `make run`) boots when given none.
pub const DEFAULT_SCENARIO: &str = "shell";

/// Every scenario, in the order `xenolith-tools test` runs them.
pub fn all() -> Vec<Scenario> {
    // The longest first: `make test` runs two at a time.
    vec![
        netfront(),
        hostile_mac_spoof(),
        hostile_gso(),
        xen_identity(),
        hostile_triple_fault(),
        hostile_bad_args(),
        linux_hvm(),
        linux_pvh(),
        netfront_pair(),
        linux_bzimage(),
        hostile_xenstore_txn(),
        hostile_watch_flood(),
        hostile_console(),
        hostile_xmm_probe(),
        hostile_physmap(),
        hostile_heap(),
        hostile_fifo(),
        console_input(),
        pvh_test_guest(),
    ]
}

/// The scenario called `name`, if there is one (the interactive ones included).
pub fn find(name: &str) -> Option<Scenario> {
    all()
        .into_iter()
        .chain(interactive())
        .find(|s| s.name == name)
}

/// The names of every scenario, in order.
pub fn names() -> Vec<String> {
    all().into_iter().map(|s| s.name).collect()
}

/// Domain `d`'s console line: `(d<d>) ` then `rest` (a regex).
fn guest(d: u32, rest: &str) -> Expectation {
    Expectation::line(format!(r"\(d{d}\) {rest}"))
}

/// The environment variable naming the Debian package of the Linux guests' kernel (`name` or
/// `name=version`); unset or empty means [`DEFAULT_GUEST_KERNEL`]. `xenolith-tools` builds the
/// guest image from it, and the scenarios expect the release it names.
pub const GUEST_KERNEL_ENV: &str = "XENOLITH_GUEST_KERNEL";

/// Debian's metapackage of the current stock kernel ABI: what the guests boot by default.
pub const DEFAULT_GUEST_KERNEL: &str = "linux-image-amd64";

/// The kernel package the guests boot: [`GUEST_KERNEL_ENV`], or [`DEFAULT_GUEST_KERNEL`].
pub fn guest_kernel() -> String {
    match std::env::var(GUEST_KERNEL_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => DEFAULT_GUEST_KERNEL.to_string(),
    }
}

/// A regex (unanchored) for the release (`uname -r`) that Debian's kernel package `spec`
/// (`name` or `name=version`) boots. An ABI package names its release
/// (`linux-image-6.1.0-57-amd64`: exactly `6.1.0-57-amd64`; `-unsigned` builds the same); a
/// metapackage names its flavour, and perhaps its upstream series (`linux-image-cloud-amd64`:
/// any `X.Y.Z-N-cloud-amd64` or `X.Y.Z+debN-cloud-amd64`; `linux-image-6.12-amd64`: a
/// `6.12.Z` one).
pub fn kernel_release_pattern(spec: &str) -> String {
    let name = spec.split_once('=').map_or(spec, |(n, _)| n).trim();
    let rest = name.strip_prefix("linux-image-").unwrap_or(name);
    let rest = rest.strip_suffix("-unsigned").unwrap_or(rest);
    // Debian's ABI suffixes: `-57` (bookworm's 6.1), `+deb12`, `+bpo` (6.12 and later).
    const ABI: &str = r"(-\d+|\+[0-9a-z]+)?";
    let abi = regex::Regex::new(&format!(r"^\d+\.\d+\.\d+{ABI}-[0-9a-z-]+$")).expect("regex");
    if abi.is_match(rest) {
        return regex::escape(rest);
    }
    let series = regex::Regex::new(r"^(\d+\.\d+)-([0-9a-z-]+)$").expect("regex");
    let (upstream, flavour) = match series.captures(rest) {
        Some(c) => (format!(r"{}\.\d+", regex::escape(&c[1])), c[2].to_string()),
        None => (r"\d+\.\d+\.\d+".to_string(), rest.to_string()),
    };
    format!("{upstream}{ABI}-{}", regex::escape(&flavour))
}

/// Domain `d`'s `uname -r` line: the release of the chosen kernel package ([`guest_kernel`]).
fn guest_uname(d: u32) -> Expectation {
    guest(
        d,
        &format!("GUEST uname={}$", kernel_release_pattern(&guest_kernel())),
    )
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
            guest_uname(1),
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
            guest(1, r"GUEST dmesg: Booting (paravirtualized )?kernel on Xen HVM$"),
            fifo_events(1),
            guest(1, r"GUEST init done"),
            domain_end(1, "linux-hvm", "shut down: poweroff"),
            // shared_info, console ring, xenstore ring and one grant frame.
            audit_with(1, 4),
        ])
}

/// Domain `d`'s dmesg line saying Linux uses the FIFO event-channel ABI.
fn fifo_events(d: u32) -> Expectation {
    guest(d, r"GUEST dmesg: xen:events: Using FIFO-based ABI$")
}

/// Bytes the `linux-pvh` scenario moves each way (4 MiB).
pub const PVH_NETFRONT_BYTES: u64 = 4 << 20;

/// Debian's stock kernel (its `vmlinux`) as a PVH domain with two vCPUs: entered through its
/// `XEN_ELFNOTE_PHYS32_ENTRY` with `hvm_start_info`, on the PVH platform (hardware-reduced
/// ACPI, no PCI, PIC, PIT or RTC). Its own `dmesg` says it booted on Xen PVH and uses FIFO
/// event channels; `/init` reports both CPUs and the Xen clocksource, then runs the netfront
/// transfer ([`PVH_NETFRONT_BYTES`] each way) through the grant table Linux mapped where it
/// chose.
pub fn linux_pvh() -> Scenario {
    Scenario::new("linux-pvh")
        .domain(DomainSpec::linux_pvh(
            "linux-pvh",
            256,
            2,
            &format!("xenolith.test=netfront xenolith.bytes={PVH_NETFRONT_BYTES}"),
        ))
        .timeout(std::time::Duration::from_secs(1200))
        .expect_all([
            guest_uname(1),
            guest(
                1,
                r"GUEST dmesg: Booting (paravirtualized )?kernel on Xen PVH$",
            ),
            guest(1, r"GUEST hypervisor=xen$"),
            guest(1, r"GUEST cpus=2$"),
            guest(1, r"GUEST clocksource=xen$"),
            fifo_events(1),
            guest(
                1,
                r"GUEST dmesg: xen:grant_table: Grant tables using version 1 layout",
            ),
            eth0_up(1, "10.0.0.2"),
            ping_ok(1, "10.0.0.1"),
            guest(
                1,
                r"NETFRONT tx_bytes=(\d+) tx_mbit=(\d+)\.\d+ rx_bytes=(\d+) rx_mbit=(\d+)\.\d+$",
            )
            .with(NumCheck::Eq(1, PVH_NETFRONT_BYTES))
            .with(NumCheck::Eq(3, PVH_NETFRONT_BYTES)),
            guest(1, r"GUEST init done"),
            domain_end(1, "linux-pvh", "shut down: poweroff"),
            audit_clean(1),
        ])
}

/// The test guest entered through its PVH note: as a PVH domain (d1) and as the firmware of an
/// HVM domain (d2, `firmware_override`), each making hypercalls from 32-bit protected mode
/// through the hypercall page it set up by MSR, checking `hvm_start_info`, writing to the debug
/// ports, switching itself to long mode and passing its identity checks; as a PVH domain (d3)
/// whose hypercalls with bad arguments each get Xen's errno on the PVH platform; and as a PVH
/// domain (d4) that finds its console ring and xenstore through its HVM params, as a unikernel
/// does, writes a line into the ring and reads and writes its own xenstore nodes.
pub fn pvh_test_guest() -> Scenario {
    let pvh_lines = |d: u32| {
        [
            guest(d, r"GUEST pvh entry32 magic=0x336ec578 ok$"),
            guest(d, r"GUEST pvh xen_version32 4\.\d+$"),
            guest(
                d,
                r"GUEST pvh start_info version=1 memmap_entries=[1-9]\d* modules=0 cmdline=test=identity$",
            ),
            guest(d, r"GUEST pvh debug port 0xe9$"),
            guest(d, r"GUEST pvh debug port 0x12$"),
        ]
    };
    Scenario::new("pvh-test-guest")
        .domain(DomainSpec::test_guest_pvh("pvh-guest", "identity"))
        .domain(DomainSpec::test_guest_firmware("hvm-firmware", "identity"))
        .domain(DomainSpec::test_guest_pvh("pvh-bad-args", "bad-args"))
        .domain(DomainSpec::test_guest_pvh("pvh-pv-io", "pv-io"))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect_all(pvh_lines(1))
        .expect_all(identity_lines(1, "pvh-guest"))
        .expect_all(pvh_lines(2))
        .expect_all(identity_lines(2, "hvm-firmware"))
        .expect(
            guest_line(3, r"GUEST badargs (\d+)/(\d+) ok")
                .with(NumCheck::Gt(1, 0))
                .with(NumCheck::GroupsEqual(1, 2)),
        )
        .expect(domain_end(3, "pvh-bad-args", "shut down: poweroff"))
        .expect(audit(3, false))
        .expect_all([
            guest_line(4, r"GUEST pv-io console ring ok$"),
            guest_line(4, r"GUEST pv-io xenstore domid=4 name=pvh-pv-io$"),
            guest_line(4, r"GUEST pv-io xenstore write-read ok$"),
            domain_end(4, "pvh-pv-io", "shut down: poweroff"),
            audit(4, false),
        ])
}

/// The same kernel booted from Debian's bzImage as shipped: its own decompressor unpacks the XZ
/// payload inside the domain before the kernel proper starts (one vCPU, to keep it short).
pub fn linux_bzimage() -> Scenario {
    Scenario::new("linux-bzimage")
        .domain(DomainSpec::linux("linux-bzimage", 256, 1, true, ""))
        .timeout(std::time::Duration::from_secs(900))
        .expect_all([
            guest_uname(1),
            guest(1, r"GUEST hypervisor=xen$"),
            guest(1, r"GUEST cpus=1$"),
            guest(1, r"GUEST clocksource=xen$"),
            fifo_events(1),
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

/// A test guest (d1) triple-faults: it is reported crashed and torn down while the victim test
/// guest beside it (d2) passes its identity checks.
pub fn hostile_triple_fault() -> Scenario {
    Scenario::new("hostile-triple-fault")
        .domain(DomainSpec::test_guest("crasher", "triple-fault", false))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(guest_line(1, r"GUEST about to triple-fault"))
        .expect(domain_end(1, "crasher", "crashed: triple fault"))
        .expect(audit(1, false))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(hostile_forbidden())
}

/// A test guest (d1) makes hypercalls with bad arguments (null, unmapped, non-canonical and
/// out-of-range buffers, bad ports, commands and domains): each gets Xen's errno and the guest
/// shuts down cleanly; the victim test guest beside it (d2) passes its identity checks.
pub fn hostile_bad_args() -> Scenario {
    Scenario::new("hostile-bad-args")
        .domain(DomainSpec::test_guest("bad-args", "bad-args", false))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(
            guest_line(1, r"GUEST badargs (\d+)/(\d+) ok")
                .with(NumCheck::Gt(1, 0))
                .with(NumCheck::GroupsEqual(1, 2)),
        )
        .expect(domain_end(1, "bad-args", "shut down: poweroff"))
        .expect(audit(1, false))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(hostile_forbidden())
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
            fifo_events(1),
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
            fifo_events(1),
            fifo_events(2),
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

/// Domain `d`'s audit line with no violations, whatever its special pages (a Linux guest maps
/// as many grant frames as its drivers need).
fn audit_clean(d: u32) -> Expectation {
    Expectation::line(format!(
        r"^xenolith: p2m audit d{d}: (\d+) special pages WB\+ipat, (\d+) leaves, (\d+) violations"
    ))
    .with(NumCheck::Eq(3, 0))
}

/// Bytes a Linux victim of the `hostile-*` scenarios moves each way (1 MiB).
pub const HOSTILE_BYTES: u64 = 1 << 20;

/// A Linux victim for the `hostile-*` network scenarios: `/init` mode `victim` at 10.0.0.2.
fn linux_victim(name: &str) -> DomainSpec {
    DomainSpec::linux(
        name,
        192,
        1,
        false,
        &format!("xenolith.test=victim xenolith.bytes={HOSTILE_BYTES}"),
    )
}

/// What the Linux victim in domain `d` must show: its vif up, the peer answering ping,
/// [`HOSTILE_BYTES`] each way, a clean power-off and a clean audit.
fn victim_lines(d: u32, name: &str) -> Vec<Expectation> {
    vec![
        fifo_events(d),
        eth0_up(d, "10.0.0.2"),
        ping_ok(d, "10.0.0.1"),
        guest(d, r"GUEST victim sent (\d+) received (\d+) bytes$")
            .with(NumCheck::Eq(1, HOSTILE_BYTES))
            .with(NumCheck::Eq(2, HOSTILE_BYTES)),
        guest(d, r"GUEST init done"),
        domain_end(d, name, "shut down: poweroff"),
        audit_clean(d),
    ]
}

/// A test guest (d1) opens every xenstore transaction it may and fills each with ~2 KiB nodes
/// under its home until the server refuses (an errno), aborts them and still reads back its
/// own write; a test guest beside it (d2) passes its identity checks.
pub fn hostile_xenstore_txn() -> Scenario {
    Scenario::new("hostile-xenstore-txn")
        .domain(DomainSpec::test_guest("xs-txn", "xs-txn", false))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(guest(
            1,
            r"GUEST xs-txn refused after \d+ writes: E[A-Z0-9]+ ",
        ))
        .expect(guest(1, r"GUEST xs-txn own store ok$"))
        .expect(domain_end(1, "xs-txn", "shut down: poweroff"))
        .expect(audit(1, false))
        .expect_all(identity_lines(2, "victim"))
}

/// A test guest (d1) sets watches on its home until refused, then pushes writes that fire
/// them all without ever reading its response ring; once it reads again, every write has its
/// reply and its own store works. The victim test guest (d2) passes its identity checks.
pub fn hostile_watch_flood() -> Scenario {
    Scenario::new("hostile-watch-flood")
        .domain(DomainSpec::test_guest("watch-flood", "watch-flood", false))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(guest(
            1,
            r"GUEST watch-flood watches=\d+, the next refused: E[A-Z0-9]+$",
        ))
        .expect(
            guest(
                1,
                r"GUEST watch-flood pushed=(\d+) replies=(\d+) errors=\d+ events=\d+$",
            )
            .with(NumCheck::Gt(1, 0))
            .with(NumCheck::GroupsEqual(1, 2)),
        )
        .expect(guest(1, r"GUEST watch-flood own store ok$"))
        .expect(domain_end(1, "watch-flood", "shut down: poweroff"))
        .expect(audit(1, false))
        .expect_all(identity_lines(2, "victim"))
}

/// Random-source frames the `mac-spoof` attacker sends in its first flood (it sends more).
pub const MAC_SPOOF_FLOOD: u64 = 4096;

/// A Linux victim (d1) pings the peer host and moves [`HOSTILE_BYTES`] each way while a test
/// guest with a vif that may send from 10.0.0.9 only (d2) sends frames with the victim's source
/// MAC, ARPs claiming its IP and thousands of random source MACs, and counts the frames for the
/// victim it receives: none.
/// Its audit counts shared_info and a grant frame besides the two rings.
pub fn hostile_mac_spoof() -> Scenario {
    Scenario::new("hostile-mac-spoof")
        .domain(linux_victim("victim"))
        .domain(DomainSpec::test_guest_with_vif(
            "mac-spoof",
            "mac-spoof victim=1 victim-ip=10.0.0.2 ip=10.0.0.9",
            "10.0.0.9",
        ))
        .timeout(std::time::Duration::from_secs(900))
        .expect_all(victim_lines(1, "victim"))
        .expect(guest(
            2,
            r"GUEST mac-spoof victim 00:16:3e:00:01:00 seen after \d+ ms$",
        ))
        .expect(
            guest(2, r"GUEST mac-spoof sent=(\d+) stolen=(\d+) ")
                .with(NumCheck::Gt(1, MAC_SPOOF_FLOOD))
                .with(NumCheck::Eq(2, 0)),
        )
        .expect(domain_end(2, "mac-spoof", "shut down: poweroff"))
        .expect(audit_with(2, 4))
}

/// A Linux victim (d1) pings the peer host and moves [`HOSTILE_BYTES`] each way while a test
/// guest with a vif (d2) sends it 64 KiB TCPv4 GSO packets with `gso.size = 1` (tens of
/// thousands of segments each): not one is answered `NETIF_RSP_OKAY`.
pub fn hostile_gso() -> Scenario {
    Scenario::new("hostile-gso")
        .domain(linux_victim("victim"))
        .domain(DomainSpec::test_guest_with_vif(
            "gso",
            "gso victim=1 victim-ip=10.0.0.2 ip=10.0.0.9",
            "10.0.0.9",
        ))
        .timeout(std::time::Duration::from_secs(900))
        .expect_all(victim_lines(1, "victim"))
        .expect(guest(
            2,
            r"GUEST gso victim 00:16:3e:00:01:00 seen after \d+ ms$",
        ))
        .expect(guest(2, r"GUEST gso sent=(\d+) packets of").with(NumCheck::Gt(1, 0)))
        .expect(
            guest(
                2,
                r"GUEST gso responses ok=(\d+) error=(\d+) dropped=(\d+) ",
            )
            .with(NumCheck::Eq(1, 0)),
        )
        .expect(domain_end(2, "gso", "shut down: poweroff"))
        .expect(audit_with(2, 4))
}

/// `e` anchored at the start of a line: where a guest's forged text cannot be.
fn at_start(mut e: Expectation) -> Expectation {
    if !e.pattern.starts_with('^') {
        e.pattern.insert(0, '^');
    }
    e
}

/// Domain `d`'s console line `(d<d>) <rest>`, at the start of a log line.
fn guest_line(d: u32, rest: &str) -> Expectation {
    at_start(guest(d, rest))
}

/// The identity lines of domain `d`, each at the start of a log line.
fn identity_lines_at_start(d: u32, name: &str) -> Vec<Expectation> {
    identity_lines(d, name).into_iter().map(at_start).collect()
}

/// Forbidden in every test-guest `hostile-*` scenario: an audit with violations (a forged one
/// included, should it start a line), and text the attacker (d1) tagged `[forged by d1]`
/// anywhere but after its own `(d1) ` prefix.
fn hostile_forbidden() -> Vec<Expectation> {
    vec![
        Expectation::forbid(r"^xenolith: p2m audit d\d+: .*, [1-9]\d* violations"),
        Expectation::forbid(r"^(?:[^(]|\([^d]|\(d[^1]|\(d1[^)]).*\[forged by d1\]"),
    ]
}

/// The tag in every 64-bit lane of the `xmm-victim` pattern, as the probe would print it.
pub const XMM_VICTIM_TAG: &str = "7e571c71";
/// The `xmm-victim`'s MXCSR, as the probe would print it.
pub const XMM_VICTIM_MXCSR: &str = "0xff80";
/// The invalid XSETBVs of `xmm-probe` (as it prints them), each of which must raise #GP: x87
/// clear, SSE without x87, AVX without SSE, AVX-512 state in part or without AVX, AMX tile
/// config or data alone, a supervisor bit, reserved bits, and XCR1.
pub const XSETBV_GP_CASES: &[&str] = &[
    "0x0",
    "0x2",
    "0x5",
    "0x27",
    "0x67",
    "0xe3",
    "0x20003",
    "0x40003",
    "0x103",
    "0x10000000003",
    "0x8000000000000003",
    "xcr1=0x3",
];
/// Memory of the `physmap-moves` attacker (MiB): room for 15360 holes in its RAM.
pub const PHYSMAP_MEMORY_MIB: u32 = 128;

/// A test guest (d1) floods `CONSOLEIO_write`: lengths of 1 GiB and 4 GiB - 1, buffers past
/// the end of its RAM, unmapped and MMIO, control characters, escapes and NULs, lines forging
/// the hypervisor's and the victim's (also through port 0xE9 and after a line of the longest
/// length) and 32 calls of 64 KiB; each call gets Xen's errno. A test guest beside it (d2)
/// still passes its identity checks, every one of its lines and the hypervisor's at the start
/// of a log line and no forged one there.
pub fn hostile_console() -> Scenario {
    let efault = |case: &str| guest_line(1, &format!(r"GUEST console-flood {case}: rc=-14$"));
    Scenario::new("hostile-console")
        .domain(DomainSpec::test_guest(
            "console-flood",
            "console-flood",
            false,
        ))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .timeout(std::time::Duration::from_secs(240))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(
            [
                "len-1g",
                "len-4g-1-near-ram-end",
                "len-past-ram-end",
                "unmapped-1g",
            ]
            .map(efault),
        )
        .expect(guest_line(1, r"GUEST console-flood forged: rc=0$"))
        .expect(guest_line(
            1,
            r"GUEST console-flood 32 calls of 65536 bytes: 0 failed, last rc=0$",
        ))
        .expect(guest_line(1, r"GUEST console-flood done$"))
        .expect(domain_end(1, "console-flood", "shut down: poweroff"))
        .expect(audit(1, false))
        .expect_all(hostile_forbidden())
}

/// A test guest (d2) loads a pattern into XMM0-15, the YMM upper halves and MXCSR and checks
/// it across hundreds of yields before its identity checks; the probe (d1) reads those
/// registers across as many yields with XCR0 = 1, then with XCR0 = 7, never seeing the
/// pattern, and every invalid XSETBV it tries raises #GP in it (XCR0 unchanged).
pub fn hostile_xmm_probe() -> Scenario {
    Scenario::new("hostile-xmm-probe")
        .domain(DomainSpec::test_guest("xmm-probe", "xmm-probe", false))
        .domain(DomainSpec::test_guest("victim", "xmm-victim", true))
        .timeout(std::time::Duration::from_secs(240))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(guest_line(
            1,
            r"GUEST xmm-probe cpu sse2=true xsave=true avx=(?:true|false) ",
        ))
        .expect(guest_line(
            1,
            r"GUEST xsetbv 0x3 without CR4\.OSXSAVE: #UD$",
        ))
        .expect(
            guest_line(1, r"GUEST xmm-probe xmm xcr0=0x1 rounds=(\d+) distinct=")
                .with(NumCheck::Gt(1, 0)),
        )
        .expect_all(
            XSETBV_GP_CASES
                .iter()
                .map(|c| guest_line(1, &format!(r"GUEST xsetbv {}: #GP$", regex::escape(c)))),
        )
        .expect(guest_line(
            1,
            r"GUEST xmm-probe xcr0=0x1 after invalid xsetbv$",
        ))
        .expect(guest_line(
            1,
            r"GUEST xmm-probe (?:ymm xcr0=0x7 rounds=\d+ distinct=|ymm skipped)",
        ))
        .expect(guest_line(1, r"GUEST xmm-probe done in \d+ ms$"))
        .expect(domain_end(1, "xmm-probe", "shut down: poweroff"))
        .expect(audit(1, false))
        .expect(guest_line(2, r"GUEST xmm-victim loaded "))
        .expect(
            guest_line(2, r"GUEST xmm-victim registers intact after (\d+) yields")
                .with(NumCheck::Gt(1, 0)),
        )
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect(Expectation::forbid(format!(r"^\(d1\) .*{XMM_VICTIM_TAG}")))
        .expect(Expectation::forbid(format!(
            r"^\(d1\) GUEST xmm-probe .*mxcsr=\S*{XMM_VICTIM_MXCSR}"
        )))
        .expect_all(hostile_forbidden())
}

/// A test guest with [`PHYSMAP_MEMORY_MIB`] (d1) moves shared_info and a grant frame over
/// thousands of frames spread across its RAM (each move leaves a hole in its p2m) until the
/// hypervisor refuses (`-ENOMEM`/`-ENOSPC`) or 20000 moves; shared_info still works where it
/// was last put, and its audit counts exactly those two pages besides the rings. The victim
/// test guest (d2) passes its identity checks.
pub fn hostile_physmap() -> Scenario {
    let mut attacker = DomainSpec::test_guest("physmap-moves", "physmap-moves", false);
    attacker.config = attacker
        .config
        .replace("memory = 32\n", &format!("memory = {PHYSMAP_MEMORY_MIB}\n"));
    Scenario::new("hostile-physmap")
        .domain(attacker)
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .timeout(std::time::Duration::from_secs(240))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(
            guest_line(1, r"GUEST physmap ram=0x[0-9a-f]+-0x[0-9a-f]+ slots=(\d+)$")
                .with(NumCheck::Gt(1, 1000)),
        )
        .expect(
            guest_line(1, r"GUEST physmap moves=(\d+) rc=(?:0|-12|-28)$").with(NumCheck::Gt(1, 0)),
        )
        .expect(guest_line(
            1,
            r"GUEST physmap shared_info gpfn=0x[0-9a-f]+ wc_sec=\d+ ok$",
        ))
        .expect(guest_line(1, r"GUEST physmap done$"))
        .expect(domain_end(1, "physmap-moves", "shut down: poweroff"))
        .expect(audit_with(1, 4))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(hostile_forbidden())
}

/// A test guest (d1) drives every allocation it can reach without xenstore until refused, each
/// with Xen's answer: event channels (`-ENOSPC`), grant-table growth by `setup_table`
/// (`GNTST_general_error`) and by `add_to_physmap` (`-EINVAL`), a second `vcpu_info`
/// (`-EINVAL`); timers, an HVM param and the console, a bounded number of times, are never
/// refused. The victim test guest (d2) passes its identity checks.
pub fn hostile_heap() -> Scenario {
    let line = |rest: &str| guest_line(1, &format!("GUEST heap {rest}$"));
    Scenario::new("hostile-heap")
        .domain(DomainSpec::test_guest("heap", "heap", false))
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .timeout(std::time::Duration::from_secs(240))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(line(r"evtchn-alloc-unbound: (\d+) then rc=-28").with(NumCheck::Gt(1, 0)))
        .expect(line(r"gnttab-setup-table: (\d+) then rc=0 status=-1").with(NumCheck::Gt(1, 0)))
        .expect(line(r"gnttab-add-to-physmap: (\d+) then rc=-22").with(NumCheck::Gt(1, 0)))
        .expect(line(r"vcpu-register-vcpu-info: 1 then rc=-22"))
        .expect(line(r"vcpu-singleshot-timer: 1000 then rc=0"))
        .expect(line(r"vcpu-periodic-timer: 1000 then rc=0"))
        .expect(line(r"set-timer-op: 1000 then rc=0"))
        .expect(line(r"timers stopped: rc=0,0,0"))
        .expect(line(r"hvm-set-param: 2000 then rc=-22"))
        .expect(line(r"console: 16 then rc=0"))
        .expect(line(r"done"))
        .expect(domain_end(1, "heap", "shut down: poweroff"))
        .expect(audit_clean(1))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(hostile_forbidden())
}

/// vCPUs of the `fifo-hostile` attacker: vCPU 1 is never started, but has its own FIFO
/// control block and queues.
pub const FIFO_HOSTILE_VCPUS: u32 = 2;

/// A test guest with [`FIFO_HOSTILE_VCPUS`] (d1) switches itself to FIFO event channels (control
/// blocks and event-array pages in its own RAM), then for many rounds rewrites its event words
/// and control blocks with garbage (LINK loops, LINKED everywhere, BUSY held, links to ports
/// never bound) while binding, sending to, unmasking, re-prioritising and moving ports between
/// its vCPUs, makes every FIFO call a guest can get wrong (each gets Xen 4.17's errno), moves
/// shared_info over an event-array page the hypervisor holds, and resets itself to 2-level and
/// back. Afterwards it is a well-behaved FIFO guest again: its events arrive through its own
/// queues, in priority order and on the right vCPU, in the old session and the new one. The
/// victim test guest (d2) passes its identity checks.
pub fn hostile_fifo() -> Scenario {
    let line = |rest: &str| guest_line(1, &format!("GUEST fifo-hostile {rest}$"));
    let mut attacker = DomainSpec::test_guest("fifo-hostile", "fifo-hostile", false);
    attacker.config = attacker
        .config
        .replace("vcpus = 1\n", &format!("vcpus = {FIFO_HOSTILE_VCPUS}\n"));
    Scenario::new("hostile-fifo")
        .domain(attacker)
        .domain(DomainSpec::test_guest("victim", "identity", true))
        .timeout(std::time::Duration::from_secs(240))
        .expect(Expectation::line(r"^xenolith: VMX caps:"))
        .expect(line(r"errno init_control vcpu 0: rc=0 want=0 ok"))
        .expect(line(r"expand_array: 128 of 128 pages added"))
        .expect(line(
            r"errno expand_array past the limit: rc=-28 want=-28 ok",
        ))
        .expect(line(
            r"vcpu 1: event dropped without its control block, queued on HEAD\[7\] with it",
        ))
        .expect(
            line(r"rounds=(\d+) sends=(\d+)")
                .with(NumCheck::Gt(1, 0))
                .with(NumCheck::Gt(2, 0)),
        )
        .expect(line(r"after garbage: event on port \d+ delivered"))
        .expect(line(
            r"after garbage: port \d+ \(priority 2\) came before port \d+ \(priority 7\)",
        ))
        .expect(line(
            r"after garbage: event on port \d+ delivered on vcpu 1's queue",
        ))
        .expect(line(r"errno reset: rc=0 want=0 ok"))
        .expect(line(r"after reset: event on port \d+ delivered"))
        .expect(line(
            r"after reset: port \d+, pending since the 2-level ABI, delivered on unmask",
        ))
        .expect(
            line(r"errnos (\d+)/(\d+) ok")
                .with(NumCheck::Gt(1, 0))
                .with(NumCheck::GroupsEqual(1, 2)),
        )
        .expect(line(r"done, shutting down"))
        .expect(domain_end(1, "fifo-hostile", "shut down: poweroff"))
        .expect(audit(1, true))
        .expect_all(identity_lines_at_start(2, "victim"))
        .expect_all(hostile_forbidden())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_patterns_follow_the_package() {
        let m = |spec: &str, release: &str| {
            regex::Regex::new(&format!("^{}$", kernel_release_pattern(spec)))
                .unwrap()
                .is_match(release)
        };
        // Metapackages: any ABI of their flavour (and series).
        assert!(m("linux-image-amd64", "6.1.0-57-amd64"));
        assert!(m("linux-image-amd64", "6.12.117+deb12-amd64"));
        assert!(m("linux-image-amd64=6.1.176-1", "6.1.0-50-amd64"));
        assert!(!m("linux-image-amd64", "6.1.0-57-cloud-amd64"));
        assert!(!m("linux-image-amd64", "6.1.0-57-rt-amd64"));
        assert!(m("linux-image-cloud-amd64", "6.1.0-57-cloud-amd64"));
        assert!(!m("linux-image-cloud-amd64", "6.1.0-57-amd64"));
        assert!(m("linux-image-6.12-amd64", "6.12.117+deb12-amd64"));
        assert!(!m("linux-image-6.12-amd64", "6.1.0-57-amd64"));
        // ABI packages: exactly their release.
        assert!(m("linux-image-6.1.0-56-amd64", "6.1.0-56-amd64"));
        assert!(!m("linux-image-6.1.0-56-amd64", "6.1.0-57-amd64"));
        assert!(m("linux-image-6.1.0-56-amd64=6.1.192-2", "6.1.0-56-amd64"));
        assert!(m(
            "linux-image-6.12.117+deb12-amd64",
            "6.12.117+deb12-amd64"
        ));
        assert!(!m(
            "linux-image-6.12.117+deb12-amd64",
            "6.12.117+deb12xamd64"
        ));
        assert!(m(
            "linux-image-6.1.0-57-cloud-amd64-unsigned",
            "6.1.0-57-cloud-amd64"
        ));
        // The default is the metapackage.
        assert_eq!(DEFAULT_GUEST_KERNEL, "linux-image-amd64");
    }
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

    const GOOD_TRIPLE_FAULT_D1: &str = "(d1) GUEST about to triple-fault\n\
        xenolith: domain 1 (crasher) crashed: triple fault\n\
        xenolith: p2m audit d1: 2 special pages WB+ipat, 16 leaves, 0 violations\n";

    const GOOD_BAD_ARGS_D1: &str = "(d1) GUEST badarg null-ptr: rc=-14 want=-14 ok\n\
        (d1) GUEST badargs 7/7 ok\n\
        xenolith: domain 1 (bad-args) shut down: poweroff\n\
        xenolith: p2m audit d1: 2 special pages WB+ipat, 16 leaves, 0 violations\n";

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
        for (scenario, attacker) in [
            (hostile_triple_fault(), GOOD_TRIPLE_FAULT_D1),
            (hostile_bad_args(), GOOD_BAD_ARGS_D1),
        ] {
            assert_eq!(check(&scenario, &hostile_log(attacker)), Verdict::Pass);
        }
    }

    #[test]
    fn each_missing_required_line_fails() {
        for (scenario, log) in [
            (xen_identity(), GOOD_IDENTITY.to_string()),
            (hostile_triple_fault(), hostile_log(GOOD_TRIPLE_FAULT_D1)),
            (hostile_bad_args(), hostile_log(GOOD_BAD_ARGS_D1)),
        ] {
            let log = log.as_str();
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
    fn bad_args_numeric_checks() {
        let good = hostile_log(GOOD_BAD_ARGS_D1);
        let log = good.replace("badargs 7/7", "badargs 6/7");
        assert!(
            fail_reason(check(&hostile_bad_args(), &log)).contains("group 1 is 6 but group 2 is 7")
        );
        let log = good.replace("badargs 7/7", "badargs 0/0");
        assert!(fail_reason(check(&hostile_bad_args(), &log)).contains("want > 0"));
        let log = good.replace(
            "xenolith: p2m audit d1: 2 special pages WB+ipat, 16 leaves, 0 violations",
            "xenolith: p2m audit d1: 2 special pages WB+ipat, 16 leaves, 3 violations",
        );
        assert!(fail_reason(check(&hostile_bad_args(), &log)).contains("p2m audit d1"));
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

    /// The victim's identity lines as domain 2 ("victim"), its end and its audit.
    const VICTIM_D2: &str =
        "(d2) GUEST xen-signature XenVMMXenVMM base=0x40000000 max=0x40000005\n\
        (d2) GUEST xen-version 4.17.0\n\
        (d2) GUEST shared_info gpfn=0xf0000 wc_sec=1796243287 ok\n\
        (d2) GUEST done, shutting down\n\
        xenolith: domain 2 (victim) shut down: poweroff\n\
        xenolith: p2m audit d2: 3 special pages WB+ipat, 530 leaves, 0 violations\n";

    fn hostile_log(attacker: &str) -> String {
        format!("xenolith: VMX caps: ept\n{attacker}{VICTIM_D2}xenolith: all domains finished\n")
    }

    const GOOD_CONSOLE_D1: &str = "(d1) GUEST console-flood start ram_end=0x2000000\n\
        (d1) ????????????????????????????????????????????????????????????????\n\
        (d1) xenolith: domain 2 (victim) shut down: poweroff [forged by d1]\n\
        (d1) (d2) GUEST done, shutting down [forged by d1]\n\
        (d1) xenolith: p2m audit d2: 3 special pages WB+ipat, 1 leaves, 0 violations [forged by d1]\n\
        (d1) xenolith: PANIC [forged by d1]\n\
        (d1) [40000 console lines suppressed]\n\
        (d1) GUEST console-flood len-1g: rc=-14\n\
        (d1) GUEST console-flood len-4g-1-near-ram-end: rc=-14\n\
        (d1) GUEST console-flood len-past-ram-end: rc=-14\n\
        (d1) GUEST console-flood unmapped-1g: rc=-14\n\
        (d1) GUEST console-flood forged: rc=0\n\
        (d1) GUEST console-flood 32 calls of 65536 bytes: 0 failed, last rc=0\n\
        (d1) xenolith: all domains finished [forged by d1]\n\
        (d1) GUEST console-flood done\n\
        xenolith: domain 1 (console-flood) shut down: poweroff\n\
        xenolith: p2m audit d1: 2 special pages WB+ipat, 20 leaves, 0 violations\n";

    #[test]
    fn hostile_console_log() {
        let good = hostile_log(GOOD_CONSOLE_D1);
        assert_eq!(check(&hostile_console(), &good), Verdict::Pass);
        // A forged line that starts a log line (no prefix, or another domain's) fails.
        for forged in [
            "xenolith: domain 2 (victim) shut down: poweroff [forged by d1]",
            "(d2) GUEST done, shutting down [forged by d1]",
            "p2m audit d2: 3 special pages WB+ipat, 1 leaves, 0 violations [forged by d1]",
            "(d12) GUEST x [forged by d1]",
        ] {
            let log = good.replace(
                "(d1) GUEST console-flood done\n",
                &format!("{forged}\n(d1) GUEST console-flood done\n"),
            );
            let reason = fail_reason(check(&hostile_console(), &log));
            assert!(reason.starts_with("forbidden line"), "{forged}: {reason}");
        }
        // The victim's lines count only at the start of a line.
        let log = without_line(&good, "(d2) GUEST done").replace(
            "(d1) GUEST console-flood done",
            "(d1) (d2) GUEST done, shutting down\n(d1) GUEST console-flood done",
        );
        let reason = fail_reason(check(&hostile_console(), &log));
        assert!(reason.contains("GUEST done"), "{reason}");
        // Xen's errno, not another.
        let log = good.replace("unmapped-1g: rc=-14", "unmapped-1g: rc=0");
        assert!(fail_reason(check(&hostile_console(), &log)).contains("unmapped-1g"));
        // A victim that never finished (the flood froze it).
        let log = without_line(&good, "domain 2 (victim) shut down");
        assert!(fail_reason(check(&hostile_console(), &log)).contains("victim"));
    }

    const GOOD_XMM_D1: &str = "(d1) GUEST xmm-probe cpu sse2=true xsave=true avx=true avx2=true avx512f=false xcr0-mask=0x7\n\
        (d1) GUEST xsetbv 0x3 without CR4.OSXSAVE: #UD\n\
        (d1) GUEST xmm-probe xmm xcr0=0x1 rounds=100 distinct=1 values=0x0 mxcsr=0x1f80\n\
        (d1) GUEST xsetbv 0x0: #GP\n\
        (d1) GUEST xsetbv 0x2: #GP\n\
        (d1) GUEST xsetbv 0x5: #GP\n\
        (d1) GUEST xsetbv 0x27: #GP\n\
        (d1) GUEST xsetbv 0x67: #GP\n\
        (d1) GUEST xsetbv 0xe3: #GP\n\
        (d1) GUEST xsetbv 0x20003: #GP\n\
        (d1) GUEST xsetbv 0x40003: #GP\n\
        (d1) GUEST xsetbv 0x103: #GP\n\
        (d1) GUEST xsetbv 0x10000000003: #GP\n\
        (d1) GUEST xsetbv 0x8000000000000003: #GP\n\
        (d1) GUEST xsetbv xcr1=0x3: #GP\n\
        (d1) GUEST xmm-probe xcr0=0x1 after invalid xsetbv\n\
        (d1) GUEST xsetbv 0x7: ok\n\
        (d1) GUEST xmm-probe xmm xcr0=0x7 rounds=100 distinct=1 values=0x0 mxcsr=0x1f80\n\
        (d1) GUEST xmm-probe ymm xcr0=0x7 rounds=100 distinct=1 upper=0x0\n\
        (d1) GUEST xmm-probe done in 2100 ms\n\
        xenolith: domain 1 (xmm-probe) shut down: poweroff\n\
        xenolith: p2m audit d1: 2 special pages WB+ipat, 20 leaves, 0 violations\n\
        (d2) GUEST xmm-victim loaded xmm0-15, ymm0-15 upper and mxcsr=0xff80\n\
        (d2) GUEST xmm-victim registers intact after 812 yields in 3001 ms (xmm0-15, ymm0-15 upper, mxcsr)\n";

    #[test]
    fn hostile_xmm_probe_log() {
        let good = hostile_log(GOOD_XMM_D1);
        assert_eq!(check(&hostile_xmm_probe(), &good), Verdict::Pass);
        // Without AVX the probe says what it skipped.
        let no_avx = good
            .replace("(d1) GUEST xsetbv 0x7: ok", "(d1) GUEST xsetbv 0x7: #GP")
            .replace(
                "(d1) GUEST xmm-probe ymm xcr0=0x7 rounds=100 distinct=1 upper=0x0",
                "(d1) GUEST xmm-probe ymm skipped (CPUID: no AVX)",
            );
        assert_eq!(check(&hostile_xmm_probe(), &no_avx), Verdict::Pass);
        // The victim's pattern or MXCSR in a probe line fails.
        for leak in [
            "values=0x0,0x7e571c7100000101,... mxcsr=0x1f80",
            "values=0x0 mxcsr=0x1f80,0xff80",
        ] {
            let log = good.replacen("values=0x0 mxcsr=0x1f80", leak, 1);
            let reason = fail_reason(check(&hostile_xmm_probe(), &log));
            assert!(reason.starts_with("forbidden line"), "{leak}: {reason}");
        }
        let log = good.replace("upper=0x0", "upper=0x7e571c7100010101");
        assert!(fail_reason(check(&hostile_xmm_probe(), &log)).starts_with("forbidden line"));
        // An invalid XSETBV that did not fault, or XCR0 changed by one.
        let log = good.replace("xsetbv 0x27: #GP", "xsetbv 0x27: ok FAIL");
        assert!(fail_reason(check(&hostile_xmm_probe(), &log)).starts_with("forbidden line"));
        let log = good.replace("xsetbv xcr1=0x3: #GP", "xsetbv xcr1=0x3: #UD");
        assert!(fail_reason(check(&hostile_xmm_probe(), &log)).contains("xcr1"));
        let log = good.replace("xcr0=0x1 after", "xcr0=0x27 after");
        assert!(fail_reason(check(&hostile_xmm_probe(), &log)).contains("after invalid"));
        // A victim that saw its registers change.
        let log = good.replace(
            "(d2) GUEST xmm-victim registers intact after 812 yields in 3001 ms (xmm0-15, ymm0-15 upper, mxcsr)",
            "(d2) GUEST xmm-victim FAIL xmm3=0a77ac4e000003010a77ac4e00000300 after 7 yields",
        );
        assert!(fail_reason(check(&hostile_xmm_probe(), &log)).starts_with("forbidden line"));
        assert_eq!(XSETBV_GP_CASES.len(), 12);
    }

    const GOOD_PHYSMAP_D1: &str = "(d1) GUEST physmap ram=0x800000-0x8000000 slots=15360\n\
        (d1) GUEST physmap moves=20000 rc=0\n\
        (d1) GUEST physmap shared_info gpfn=0x5a3e wc_sec=1796243287 ok\n\
        (d1) GUEST physmap done\n\
        xenolith: domain 1 (physmap-moves) shut down: poweroff\n\
        xenolith: p2m audit d1: 4 special pages WB+ipat, 32000 leaves, 0 violations\n";

    #[test]
    fn hostile_physmap_log() {
        let good = hostile_log(GOOD_PHYSMAP_D1);
        assert_eq!(check(&hostile_physmap(), &good), Verdict::Pass);
        for rc in ["-12", "-28"] {
            let log = good.replace("moves=20000 rc=0", &format!("moves=4096 rc={rc}"));
            assert_eq!(check(&hostile_physmap(), &log), Verdict::Pass, "{rc}");
        }
        let log = good.replace("moves=20000 rc=0", "moves=20 rc=-14");
        assert!(fail_reason(check(&hostile_physmap(), &log)).contains("moves="));
        let log = good.replace("4 special pages", "3 special pages");
        assert!(fail_reason(check(&hostile_physmap(), &log)).contains("p2m audit d1"));
        let log = good.replace("32000 leaves, 0 violations", "32000 leaves, 12 violations");
        assert!(fail_reason(check(&hostile_physmap(), &log)).starts_with("forbidden line"));
        // The attacker has the memory that makes room for the moves.
        let cfg = domcfg::parse(&hostile_physmap().domains[0].config).unwrap();
        assert_eq!(cfg.memory_mib, u64::from(PHYSMAP_MEMORY_MIB));
    }

    const GOOD_HEAP_D1: &str = "(d1) GUEST heap evtchn-alloc-unbound: 4093 then rc=-28\n\
        (d1) GUEST heap gnttab query_size rc=0 status=0 nr_frames=1 max_nr_frames=64\n\
        (d1) GUEST heap gnttab-setup-table: 64 then rc=0 status=-1\n\
        (d1) GUEST heap gnttab-add-to-physmap: 64 then rc=-22\n\
        (d1) GUEST heap vcpu-register-vcpu-info: 1 then rc=-22\n\
        (d1) GUEST heap vcpu-singleshot-timer: 1000 then rc=0\n\
        (d1) GUEST heap vcpu-periodic-timer: 1000 then rc=0\n\
        (d1) GUEST heap set-timer-op: 1000 then rc=0\n\
        (d1) GUEST heap timers stopped: rc=0,0,0\n\
        (d1) GUEST heap hvm-set-param: 2000 then rc=-22\n\
        (d1) GUEST heap console: 16 then rc=0\n\
        (d1) GUEST heap done\n\
        xenolith: domain 1 (heap) shut down: poweroff\n\
        xenolith: p2m audit d1: 66 special pages WB+ipat, 80 leaves, 0 violations\n";

    #[test]
    fn hostile_heap_log() {
        let good = hostile_log(GOOD_HEAP_D1);
        assert_eq!(check(&hostile_heap(), &good), Verdict::Pass);
        // Each refusal must carry Xen's errno.
        for (from, to) in [
            ("4093 then rc=-28", "4093 then rc=-12"),
            ("64 then rc=0 status=-1", "64 then rc=-22 status=0"),
            ("64 then rc=-22", "64 then rc=-7"),
            (
                "vcpu-register-vcpu-info: 1 then rc=-22",
                "vcpu-register-vcpu-info: 16 then rc=0",
            ),
            (
                "hvm-set-param: 2000 then rc=-22",
                "hvm-set-param: 17 then rc=-1",
            ),
            (
                "set-timer-op: 1000 then rc=0",
                "set-timer-op: 0 then rc=-38",
            ),
        ] {
            let log = good.replacen(from, to, 1);
            let reason = fail_reason(check(&hostile_heap(), &log));
            assert!(reason.starts_with("missing line"), "{to}: {reason}");
        }
        let log = good.replace("evtchn-alloc-unbound: 4093", "evtchn-alloc-unbound: 0");
        assert!(fail_reason(check(&hostile_heap(), &log)).contains("want > 0"));
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::check::{check, Verdict};

    const VICTIM_TG: &str =
        "(d2) GUEST xen-signature XenVMMXenVMM base=0x40000000 max=0x40000005\n\
        (d2) GUEST xen-version 4.17.0\n\
        (d2) GUEST shared_info gpfn=0xf0000 wc_sec=1796246403 ok\n\
        (d2) GUEST done, shutting down\n\
        xenolith: domain 2 (victim) shut down: poweroff\n\
        xenolith: p2m audit d2: 3 special pages WB+ipat, 530 leaves, 0 violations\n";

    fn good_txn() -> String {
        format!(
            "xenolith: VMX caps: ept\n\
             (d1) GUEST xs-txn transactions=10, the next refused: ENOSPC\n\
             {VICTIM_TG}\
             (d1) GUEST xs-txn tx=1 writes=955 refused: ENOSPC\n\
             (d1) GUEST xs-txn refused after 955 writes: ENOSPC (accepted 955 writes, 1865 KiB, in 10 transactions)\n\
             (d1) GUEST xs-txn ended 10/10 transactions\n\
             (d1) GUEST xs-txn own store ok\n\
             xenolith: domain 1 (xs-txn) shut down: poweroff\n\
             xenolith: p2m audit d1: 2 special pages WB+ipat, 18 leaves, 0 violations\n\
             xenolith: all domains finished\n"
        )
    }

    fn good_watch_flood() -> String {
        format!(
            "xenolith: VMX caps: ept\n\
             (d1) GUEST watch-flood watches=128, the next refused: ENOSPC\n\
             {VICTIM_TG}\
             (d1) GUEST watch-flood pushed 55 writes unread, request ring 9 bytes free, 1024 reply bytes waiting\n\
             (d1) GUEST watch-flood pushed=55 replies=55 errors=0 events=3138\n\
             (d1) GUEST watch-flood own store ok\n\
             xenolith: domain 1 (watch-flood) shut down: poweroff\n\
             xenolith: p2m audit d1: 2 special pages WB+ipat, 18 leaves, 0 violations\n\
             xenolith: all domains finished\n"
        )
    }

    const VICTIM_LINUX: &str = "(d1) GUEST dmesg: xen:events: Using FIFO-based ABI\n\
        (d1) GUEST eth0 mac=00:16:3e:00:01:00 ip=10.0.0.2\n\
        (d1) GUEST ping 10.0.0.1: 3 packets transmitted, 3 packets received, 0% packet loss\n\
        (d1) GUEST victim sent 1048576 received 1048576 bytes\n\
        (d1) GUEST init done\n\
        xenolith: domain 1 (victim) shut down: poweroff\n\
        xenolith: p2m audit d1: 6 special pages WB+ipat, 900 leaves, 0 violations\n";

    fn good_mac_spoof() -> String {
        format!(
            "(d2) GUEST mac-spoof vif mac=00:16:3e:00:02:00 ip=10.0.0.9 connected to /local/domain/0/backend/vif/2/0\n\
             (d2) GUEST mac-spoof peer 10.0.0.1 is at 02:58:4e:00:00:01\n\
             (d2) GUEST mac-spoof victim 00:16:3e:00:01:00 seen after 41000 ms\n\
             {VICTIM_LINUX}\
             (d2) GUEST mac-spoof sent=30000 stolen=0 victim-frames=12 rx-frames=20 tx-ok=30000 tx-error=0 tx-dropped=0\n\
             xenolith: domain 2 (mac-spoof) shut down: poweroff\n\
             xenolith: p2m audit d2: 4 special pages WB+ipat, 20 leaves, 0 violations\n\
             xenolith: all domains finished\n"
        )
    }

    /// The backend refuses `gso.size = 1` by disconnecting the vif: no response comes.
    fn good_gso() -> String {
        format!(
            "(d2) GUEST gso victim 00:16:3e:00:01:00 seen after 14857 ms\n\
             {VICTIM_LINUX}\
             (d2) GUEST gso sent=1 packets of 65534 bytes with gso.size=1\n\
             (d2) GUEST gso responses ok=0 error=0 dropped=0 other=0 unanswered-slots=18\n\
             (d2) GUEST gso backend state=5: vif disconnected\n\
             xenolith: domain 2 (gso) shut down: poweroff\n\
             xenolith: p2m audit d2: 4 special pages WB+ipat, 20 leaves, 0 violations\n\
             xenolith: all domains finished\n"
        )
    }

    fn all_good() -> Vec<(Scenario, String)> {
        vec![
            (hostile_xenstore_txn(), good_txn()),
            (hostile_watch_flood(), good_watch_flood()),
            (hostile_mac_spoof(), good_mac_spoof()),
            (hostile_gso(), good_gso()),
        ]
    }

    fn is_fail(v: Verdict) -> bool {
        !v.is_pass()
    }

    #[test]
    fn hostile_scenarios_are_listed() {
        for name in [
            "hostile-xenstore-txn",
            "hostile-watch-flood",
            "hostile-mac-spoof",
            "hostile-gso",
        ] {
            assert!(find(name).is_some(), "{name}");
        }
    }

    #[test]
    fn good_hostile_logs_pass() {
        for (s, log) in all_good() {
            assert_eq!(check(&s, &log), Verdict::Pass, "{}", s.name);
        }
    }

    #[test]
    fn each_missing_hostile_line_fails() {
        // Lines the scenarios print but do not require.
        let optional = [
            "transactions=10",
            "tx=1 writes",
            "ended 10/10",
            "writes unread",
            "vif mac=",
            "is at",
            "xen-version",
            "vif disconnected",
        ];
        for (s, log) in all_good() {
            for line in log.lines() {
                if optional.iter().any(|o| line.contains(o)) {
                    continue;
                }
                let cut: String = log
                    .split_inclusive('\n')
                    .filter(|l| l.trim_end() != line)
                    .collect();
                assert!(is_fail(check(&s, &cut)), "{}: without {line:?}", s.name);
            }
        }
    }

    #[test]
    fn attacks_that_succeed_fail() {
        let cases = [
            (
                hostile_xenstore_txn(),
                good_txn().replace(
                    "refused after 955 writes: ENOSPC (accepted",
                    "FAIL (never refused: 9550 writes, 18652 KiB) (accepted",
                ),
            ),
            (
                hostile_xenstore_txn(),
                good_txn().replace(
                    "own store ok",
                    "own store FAIL (read data/xs-txn-check: timeout waiting for a reply)",
                ),
            ),
            (
                hostile_watch_flood(),
                good_watch_flood().replace("replies=55", "replies=20"),
            ),
            (
                hostile_watch_flood(),
                good_watch_flood().replace(
                    "watches=128, the next refused: ENOSPC",
                    "FAIL (watches=4096, none refused)",
                ),
            ),
            (
                hostile_mac_spoof(),
                good_mac_spoof().replace("stolen=0", "stolen=7"),
            ),
            (
                hostile_mac_spoof(),
                good_mac_spoof().replace("seen after 41000 ms", "not seen in 600000 ms"),
            ),
            (
                hostile_gso(),
                good_gso().replace("ok=0 error=0", "ok=1 error=0"),
            ),
            (
                hostile_gso(),
                good_gso().replace(
                    "victim sent 1048576 received 1048576",
                    "victim sent 1048576 received 0",
                ),
            ),
            (
                hostile_gso(),
                good_gso().replace(
                    "d1: 6 special pages WB+ipat, 900 leaves, 0",
                    "d1: 6 special pages WB+ipat, 900 leaves, 2",
                ),
            ),
            (
                hostile_gso(),
                format!("{}xenolith: PANIC out of memory\n", good_gso()),
            ),
        ];
        for (s, log) in cases {
            assert!(is_fail(check(&s, &log)), "{} passed:\n{log}", s.name);
        }
    }

    #[test]
    fn the_network_attackers_have_a_vif() {
        for s in [hostile_mac_spoof(), hostile_gso()] {
            let cfg = domcfg::parse(&s.domains[1].config).expect("config parses");
            assert_eq!(cfg.vifs.len(), 1, "{}", s.name);
            assert!(cfg.cmdline.contains("victim=1"), "{}", s.name);
        }
        let d = DomainSpec::test_guest_with_vif("a", "gso victim=1", "10.0.0.9");
        assert!(d
            .config
            .ends_with("vif = [ \"bridge=xenbr0,ip=10.0.0.9\" ]\n"));
    }
}
