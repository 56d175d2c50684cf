//! `bench iperf3` and `bench netfront`, and the summary table of the network benchmarks.
//!
//! * **iperf3** between two Linux domains through the switch: domain 1 (10.0.0.2, mode
//!   `iperf-server`) runs `iperf3 -s`; domain 2 (10.0.0.3, mode `iperf-client`) runs
//!   `iperf3 -c 10.0.0.2 -t 10` (client -> server, `c2s`) and the same with `-R` (server ->
//!   client, `s2c`), `runs` times each in one boot, and prints a `GUEST IPERF` line per run:
//!   the receiver's bitrate, bytes and seconds as iperf3 reports them (its JSON
//!   `sum_received`, the sum of all streams) and the TSC ticks around the iperf3 process.
//!   Two boots ([`IPERF_SETUPS`]): 1 vCPU per domain with one stream, and 2 vCPUs per domain
//!   (so 2 netfront queues) with `iperf3 -P 4` (`xenolith.streams=4`);
//!   `$XENOLITH_IPERF_STREAMS` ([`IPERF_STREAMS_ENV`]) set to `1` or `4` runs only that one.
//!   Around each run the guest prints `XENOLITH TICKS <dir>-<streams>-<run>-begin|end`, and the
//!   hypervisor its tick ledger ([`crate::breakdown`]): each run's window is broken down into
//!   guest, VM-exit, hypercall and backend ticks that must add up to the window.
//! * **netfront**: the `netfront` scenario's transfers (busybox `dd | nc` to the peer host's
//!   discard port, `nc | dd` from its source port), [`NETFRONT_BYTES`] each way, `runs` times in
//!   one boot: the guest's own Mbit/s and TSC ticks, and from the hypervisor's
//!   `xenolith: netpeer: counters at <service> open|close` lines the VM exits, the event-channel
//!   notifications (backend -> guest) and the kicks (guest -> backend) of each connection.
//! * [`Summary`]: those figures and the bare-Bochs e1000 reference ([`crate::net_bench`]), each
//!   the median of its runs, beside Xen's figures.
//!
//! Under Bochs with `clock: sync=none` the TSC counts emulated instructions (and the ticks
//! skipped while every CPU halts), [`BOCHS_IPS`] per emulated second; the guest's Xen clock runs
//! on that TSC at that rate, so its seconds (and iperf3's) are emulated seconds.

use std::time::{Duration, Instant};

use ::tests::{DomainSpec, Scenario};
use anyhow::{bail, Result};

use crate::boot_bench;
use crate::breakdown::{self, Ticks};
use crate::emulator::Emulator;
use crate::net_bench::{field, print_runs, NetRun, BOCHS_IPS};
use crate::paths::Paths;
use crate::runner;

/// Environment variable: runs per figure (each figure is their median).
pub const RUNS_ENV: &str = "XENOLITH_BENCH_RUNS";
/// Runs per figure by default.
pub const DEFAULT_RUNS: u32 = 3;
/// The most runs per figure.
pub const MAX_RUNS: u32 = 50;
/// Bytes the netfront benchmark moves each way per run (16 MiB).
pub const NETFRONT_BYTES: u64 = 16 << 20;
/// Seconds of each iperf3 run (`-t`), by the guest's clock.
pub const IPERF_SECONDS: u32 = 10;
/// Memory of each iperf3 domain, MiB.
const IPERF_MEMORY_MIB: u32 = 256;
/// Environment variable: run only the iperf3 boot with this many streams (`1` or `4`; unset
/// or empty: both, see [`IPERF_SETUPS`]).
pub const IPERF_STREAMS_ENV: &str = "XENOLITH_IPERF_STREAMS";
/// The picture of the iperf3 breakdowns, under the build directory.
pub const IPERF_SVG: &str = "bench/iperf-breakdown.svg";
/// The hypervisor's line when domain 1 starts.
const LAUNCH_MARK: &str = "domain 1: launched";
/// The key of the iperf3 client's result lines.
pub const IPERF_MARK: &str = "GUEST IPERF dir=";
/// The iperf3 client's failure lines.
const IPERF_FAIL: &str = "GUEST IPERF FAIL";
/// The iperf3 client's last line.
const IPERF_DONE: &str = "GUEST IPERF client done";
/// The key of the netfront guest's result lines (one per run).
pub const NETFRONT_MARK: &str = "NETFRONT tx_bytes=";
/// The key of the netfront guest's TSC lines (one per run, after its result line).
pub const NETFRONT_TSC_MARK: &str = "GUEST netfront tx_cs=";
/// The hypervisor's counter lines at each peer connection's open and close.
pub const COUNTERS_MARK: &str = "xenolith: netpeer: counters at ";

/// A figure measured on real Xen, to compare with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference {
    /// The figure.
    pub value: f64,
    /// What was measured.
    pub what: &'static str,
}

impl Reference {
    const fn new(value: f64, what: &'static str) -> Self {
        Reference { value, what }
    }
}

// Xen's figures, measured on the same kind of machine in Bochs 2.7: Xen 4.17, a Linux dom0 and
// a PVH domU; iperf3 3.12 for 10 s, and busybox `nc | dd` of 32 MiB.
/// iperf3 from the domU to dom0, Mbit/s.
pub const XEN_IPERF_C2S: Reference = Reference::new(77.0, "Xen domU->dom0");
/// iperf3 from dom0 to the domU, Mbit/s.
pub const XEN_IPERF_S2C: Reference = Reference::new(120.0, "Xen dom0->domU");
/// busybox `nc | dd` of 32 MiB from the domU to dom0, Mbit/s.
pub const XEN_NC_TX: Reference = Reference::new(11.2, "Xen domU->dom0 nc|dd");
/// busybox `nc | dd` of 32 MiB from dom0 to the domU, Mbit/s.
pub const XEN_NC_RX: Reference = Reference::new(16.4, "Xen dom0->domU nc|dd");

/// Runs per figure from `$XENOLITH_BENCH_RUNS` (`env`), or [`DEFAULT_RUNS`].
pub fn runs_from(env: Option<&str>) -> Result<u32> {
    match env.map(str::trim) {
        None | Some("") => Ok(DEFAULT_RUNS),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_RUNS).contains(&n) => Ok(n),
            _ => bail!("{RUNS_ENV}={s:?}: want 1 to {MAX_RUNS} runs"),
        },
    }
}

/// Runs per figure, from the environment.
pub fn runs() -> Result<u32> {
    runs_from(std::env::var(RUNS_ENV).ok().as_deref())
}

/// The median of the finite `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[m]),
        _ => Some((v[m - 1] + v[m]) / 2.0),
    }
}

/// `count` per MiB of `bytes`.
pub(crate) fn per_mib(count: u64, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| count as f64 * (1u64 << 20) as f64 / bytes as f64)
}

/// TSC ticks per byte.
pub(crate) fn per_byte(tsc: u64, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| tsc as f64 / bytes as f64)
}

/// Which way an iperf3 run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IperfDir {
    /// Client (domain 2) to server (domain 1): `iperf3 -c`.
    C2s,
    /// Server to client: `iperf3 -c ... -R`.
    S2c,
}

impl IperfDir {
    /// The name on the guest's line.
    pub fn name(self) -> &'static str {
        match self {
            IperfDir::C2s => "c2s",
            IperfDir::S2c => "s2c",
        }
    }
}

/// One iperf3 boot's set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IperfSetup {
    /// vCPUs of each domain (as many netfront queues).
    pub vcpus: u32,
    /// Parallel streams (`iperf3 -P`, the guest's `xenolith.streams=`).
    pub streams: u32,
}

/// The iperf3 boots of a plain `bench`, in order: 1 vCPU per domain and one stream, then 2
/// vCPUs per domain and 4 streams.
pub const IPERF_SETUPS: [IperfSetup; 2] = [
    IperfSetup {
        vcpus: 1,
        streams: 1,
    },
    IperfSetup {
        vcpus: 2,
        streams: 4,
    },
];

impl IperfSetup {
    /// What follows `iperf3 <dir>` in its figures' names: nothing for one stream, ` -P <n>`.
    pub fn flag(self) -> String {
        match self.streams {
            1 => String::new(),
            n => format!(" -P {n}"),
        }
    }

    /// Its part of the benchmark: `iperf3`, `iperf3 -P 4`.
    pub fn part(self) -> String {
        format!("{}{}", crate::bench::IPERF3, self.flag())
    }

    /// How many vCPUs and streams, for headings.
    pub fn describe(self) -> String {
        let s = |n: u32| if n == 1 { "" } else { "s" };
        format!(
            "{} vCPU{} per domain, {} stream{}",
            self.vcpus,
            s(self.vcpus),
            self.streams,
            s(self.streams)
        )
    }
}

/// The iperf3 boots to run, from `$XENOLITH_IPERF_STREAMS` (`env`): all of [`IPERF_SETUPS`],
/// or the one with that many streams.
pub fn iperf_setups_from(env: Option<&str>) -> Result<Vec<IperfSetup>> {
    match env.map(str::trim) {
        None | Some("") => Ok(IPERF_SETUPS.to_vec()),
        Some(s) => match IPERF_SETUPS.iter().find(|x| s.parse() == Ok(x.streams)) {
            Some(x) => Ok(vec![*x]),
            None => bail!("{IPERF_STREAMS_ENV}={s:?}: want 1 or 4 (streams), or nothing for both"),
        },
    }
}

/// The iperf3 boots to run, from the environment.
pub fn iperf_setups() -> Result<Vec<IperfSetup>> {
    iperf_setups_from(std::env::var(IPERF_STREAMS_ENV).ok().as_deref())
}

/// The label of the guest's `XENOLITH TICKS` marker at `edge` (`begin`, `end`) of a run.
pub fn ticks_label(dir: IperfDir, streams: u32, run: u32, edge: &str) -> String {
    format!("{}-{streams}-{run}-{edge}", dir.name())
}

/// One iperf3 run, from its `GUEST IPERF` line.
#[derive(Debug, Clone, PartialEq)]
pub struct IperfRun {
    /// Its direction.
    pub dir: IperfDir,
    /// Its number, from 1.
    pub run: u32,
    /// Its parallel streams (`streams=`, 1 when the line has none).
    pub streams: u32,
    /// The receiver's bitrate as iperf3 reports it, Mbit/s.
    pub mbit: f64,
    /// The bytes the receiver got.
    pub bytes: u64,
    /// The receiver's seconds.
    pub secs: Option<f64>,
    /// TSC ticks around the iperf3 client process.
    pub tsc: u64,
    /// Attempts it took.
    pub tries: Option<u32>,
    /// The hypervisor's tick ledger over the run (its markers' snapshots' difference).
    pub window: Option<Ticks>,
}

impl IperfRun {
    /// TSC ticks per byte received.
    pub fn tsc_per_byte(&self) -> Option<f64> {
        per_byte(self.tsc, self.bytes)
    }

    /// Its tick breakdown ([`Ticks::render`]), or why there is none; each line after `indent`.
    pub fn describe_window(&self, indent: &str) -> String {
        match &self.window {
            Some(w) => w.render(self.bytes, indent),
            None => format!(
                "{indent}no tick breakdown: no `ticks {}:` and `ticks {}:` lines in order\n",
                ticks_label(self.dir, self.streams, self.run, "begin"),
                ticks_label(self.dir, self.streams, self.run, "end"),
            ),
        }
    }
}

/// The iperf3 client's result lines, in order, each with the window between its markers'
/// `ticks` lines.
pub fn parse_iperf(log: &str) -> Vec<IperfRun> {
    let snapshots = breakdown::parse_log(log);
    log.lines()
        .filter_map(|l| {
            let line = &l[l.find(IPERF_MARK)?..];
            let dir = match field::<String>(line, "dir")?.as_str() {
                "c2s" => IperfDir::C2s,
                "s2c" => IperfDir::S2c,
                _ => return None,
            };
            let run = field(line, "run")?;
            let streams = field(line, "streams").unwrap_or(1);
            let at = |edge| snapshots.get(&ticks_label(dir, streams, run, edge));
            Some(IperfRun {
                dir,
                run,
                streams,
                mbit: field(line, "mbit")?,
                bytes: field(line, "bytes")?,
                secs: field(line, "secs"),
                tsc: field(line, "tsc")?,
                tries: field(line, "tries"),
                window: at("end").zip(at("begin")).and_then(|(e, b)| e.since(b)),
            })
        })
        .collect()
}

/// The iperf3 boot of `setup`: server and client domains, the client running `runs` times each
/// way.
pub fn iperf_scenario(runs: u32, setup: IperfSetup) -> Scenario {
    let profile_us = std::env::var(crate::guest_profile::PROFILE_ENV).ok();
    let profiling = profile_us.as_deref().is_some_and(|v| !v.is_empty());
    let guest_args = std::env::var(GUEST_ARGS_ENV).unwrap_or_default();
    let domain = |name: &str, mode: &str, ip: &str, extra: &str| {
        let nokaslr = if profiling { " nokaslr" } else { "" };
        DomainSpec::linux(
            name,
            IPERF_MEMORY_MIB,
            setup.vcpus,
            false,
            format!("xenolith.test={mode} xenolith.ip={ip}{extra}{nokaslr} {guest_args}")
                .trim_end(),
        )
    };
    let (name, streams) = match setup.streams {
        1 => ("bench-iperf3".to_string(), String::new()),
        n => (
            format!("bench-iperf3-p{n}"),
            format!(" xenolith.streams={n}"),
        ),
    };
    let mut scenario = Scenario::new(name)
        .domain(domain("iperf-server", "iperf-server", "10.0.0.2", ""))
        .domain(domain(
            "iperf-client",
            "iperf-client",
            "10.0.0.3",
            &format!(
                " xenolith.repeat={runs} xenolith.seconds={IPERF_SECONDS}{streams}{}",
                if profiling {
                    " xenolith.kallsyms=1"
                } else {
                    ""
                }
            ),
        ))
        // Boot (2-5 min wall, more with more vCPUs) and a generous 2 min per iperf3 run.
        .timeout(Duration::from_secs(
            900 + 300 * u64::from(setup.vcpus - 1) + 240 * u64::from(runs),
        ));
    // Experiments: extra hypervisor options, and a tag that gives the boot a directory of its
    // own (so that two can run at once).
    if let Ok(args) = std::env::var(HV_ARGS_ENV) {
        for word in args.split_whitespace() {
            scenario = scenario.hv_arg(word);
        }
    }
    if let (true, Some(us)) = (profiling, &profile_us) {
        scenario = scenario
            .hv_arg(format!("profile_us={us}"))
            .hv_arg("console_limit=0");
    }
    if let Ok(tag) = std::env::var(BENCH_TAG_ENV) {
        if !tag.is_empty() {
            scenario.name = format!("{}-{tag}", scenario.name);
        }
    }
    scenario
}

/// Environment variable: extra hypervisor command-line words for the iperf3 boots (e.g.
/// `sched_ratelimit_us=0`).
pub const HV_ARGS_ENV: &str = "XENOLITH_HV_ARGS";
/// Environment variable: words appended to the iperf3 guests' kernel command lines (an
/// experiment, e.g. `xen_fifo_events=0` for Linux's 2-level event channels).
pub const GUEST_ARGS_ENV: &str = "XENOLITH_GUEST_ARGS";
/// Environment variable: a suffix for the iperf3 boots' names and directories.
pub const BENCH_TAG_ENV: &str = "XENOLITH_BENCH_TAG";

/// Wall seconds of the parts of a boot.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Walls {
    /// From domain 1's launch to the guest being ready to measure.
    pub boot: Option<f64>,
    /// From then to the guest being done measuring.
    pub net: Option<f64>,
    /// The emulator's whole run.
    pub total: f64,
}

impl Walls {
    fn describe(&self) -> String {
        let s = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} s"));
        format!(
            "wall: launch -> ready {}, measuring {}, emulator run {:.1} s",
            s(self.boot),
            s(self.net),
            self.total
        )
    }
}

/// Boots `scenario` on xenolith, timing `ready` and `done` (log substrings) from domain 1's
/// launch.
fn boot(
    paths: &Paths,
    scenario: &Scenario,
    emulator: Emulator,
    ready: &str,
    done: &str,
) -> Result<(runner::Outcome, Walls)> {
    let marks = [LAUNCH_MARK, ready, done];
    let (outcome, times) =
        boot_bench::run_scenario(paths, scenario, emulator, &marks, scenario.timeout)?;
    let walls = Walls {
        boot: boot_bench::between(&times[..2]),
        net: boot_bench::between(&times[1..]),
        total: outcome.wall.as_secs_f64(),
    };
    Ok((outcome, walls))
}

/// Fails with `what`, how the run ended, the guest's own complaints and where the log is.
fn no_result(paths: &Paths, name: &str, outcome: &runner::Outcome, what: &str) -> Result<()> {
    let why: Vec<&str> = outcome
        .log
        .lines()
        .filter(|l| l.contains("FAIL") || l.contains("PANIC") || l.contains("EXCEPTION"))
        .take(5)
        .collect();
    bail!(
        "{what} ({:?}; {}; log in {})",
        outcome.ending,
        why.join(" / "),
        paths.show(&paths.scenario_dir(name))
    )
}

/// `bench iperf3`, one boot: boots the pair as `setup` says, prints each run with its tick
/// breakdown, returns the runs.
pub fn run_iperf(paths: &Paths, runs: u32, setup: IperfSetup) -> Result<Vec<IperfRun>> {
    let emulator = boot_bench::prepare(paths)?;
    let scenario = iperf_scenario(runs, setup);
    let (outcome, walls) = boot(paths, &scenario, emulator, "(d2) GUEST ping", IPERF_DONE)?;
    let found = parse_iperf(&outcome.log);
    let count = |dir| found.iter().filter(|r| r.dir == dir).count();
    println!(
        "iperf3{} {IPERF_SECONDS} s between two Linux domains ({}) through the switch on \
         {emulator}, {} c2s and {} s2c of {runs} runs each in one boot; receiver figures as \
         iperf3 reports them (all streams), then the hypervisor's ticks over each run:",
        setup.flag(),
        setup.describe(),
        count(IperfDir::C2s),
        count(IperfDir::S2c),
    );
    for r in &found {
        println!(
            "  run {} {}: {:.2} Mbit/s, {} bytes in {} s, {} TSC ticks ({} per byte), tries {}",
            r.run,
            match r.dir {
                IperfDir::C2s => "c2s (d2 -> d1)",
                IperfDir::S2c => "s2c (d1 -> d2, -R)",
            },
            r.mbit,
            r.bytes,
            r.secs.map_or("-".into(), |s| format!("{s:.2}")),
            r.tsc,
            show(r.tsc_per_byte(), 1),
            r.tries.map_or("-".into(), |t| t.to_string()),
        );
        print!("{}", r.describe_window("    "));
    }
    for l in outcome.log.lines().filter(|l| l.contains(IPERF_FAIL)) {
        println!("  {}", l.trim_end());
    }
    println!("  {}", walls.describe());
    if found.is_empty() {
        no_result(paths, &scenario.name, &outcome, "no iperf3 result")?;
    }
    Ok(found)
}

/// The hypervisor's counters at a peer connection's open or close.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The TSC.
    pub tsc: u64,
    /// VM exits of every domain so far.
    pub vm_exits: u64,
    /// Event-channel notifications netback sent guests so far.
    pub notifications: u64,
    /// Kicks guests sent netback so far.
    pub kicks: u64,
}

impl Counters {
    /// The counts from `earlier` to `self`; none if one went backwards.
    pub fn since(self, earlier: Counters) -> Option<Counters> {
        Some(Counters {
            tsc: self.tsc.checked_sub(earlier.tsc)?,
            vm_exits: self.vm_exits.checked_sub(earlier.vm_exits)?,
            notifications: self.notifications.checked_sub(earlier.notifications)?,
            kicks: self.kicks.checked_sub(earlier.kicks)?,
        })
    }
}

/// The counter lines, in order: (`<service> open|close`, counters).
pub fn parse_counters(log: &str) -> Vec<(String, Counters)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(COUNTERS_MARK)?;
            let (what, values) = rest.split_once(':')?;
            Some((
                what.trim().to_string(),
                Counters {
                    tsc: field(values, "tsc")?,
                    vm_exits: field(values, "vm_exits")?,
                    notifications: field(values, "notifications")?,
                    kicks: field(values, "kicks")?,
                },
            ))
        })
        .collect()
}

/// What each connection to the peer's `service` (`discard`, `source`) cost: its n-th close less
/// its n-th open.
pub fn connection_costs(counters: &[(String, Counters)], service: &str) -> Vec<Option<Counters>> {
    let at = |edge: &str| -> Vec<Counters> {
        let what = format!("{service} {edge}");
        counters
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, c)| *c)
            .collect()
    };
    at("open")
        .iter()
        .zip(at("close"))
        .map(|(open, close)| close.since(*open))
        .collect()
}

/// One direction of a netfront run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Transfer {
    /// Bytes the guest moved.
    pub bytes: u64,
    /// The guest's Mbit/s by its own clock.
    pub mbit: Option<f64>,
    /// TSC ticks around the guest's `dd | nc` pipeline.
    pub tsc: Option<u64>,
    /// The hypervisor's counts from the connection's open to its close.
    pub cost: Option<Counters>,
}

impl Transfer {
    /// TSC ticks per byte.
    pub fn tsc_per_byte(&self) -> Option<f64> {
        per_byte(self.tsc?, self.bytes)
    }

    /// One of the connection's counts (`pick`) per MiB moved.
    pub fn per_mib(&self, pick: fn(&Counters) -> u64) -> Option<f64> {
        per_mib(pick(&self.cost?), self.bytes)
    }
}

/// One netfront run: guest to peer (discard) and peer to guest (source).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NetfrontRun {
    /// Guest to peer.
    pub tx: Transfer,
    /// Peer to guest.
    pub rx: Transfer,
}

/// The netfront runs in a log: the n-th `NETFRONT` line with the n-th `GUEST netfront` line and
/// the n-th discard and source connections' counts.
pub fn parse_netfront(log: &str) -> Vec<NetfrontRun> {
    let tsc_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(NETFRONT_TSC_MARK))
        .collect();
    let counters = parse_counters(log);
    let tx_cost = connection_costs(&counters, "discard");
    let rx_cost = connection_costs(&counters, "source");
    log.lines()
        .filter(|l| l.contains(NETFRONT_MARK))
        .enumerate()
        .map(|(i, line)| {
            let tsc_line = tsc_lines.get(i).copied().unwrap_or("");
            let transfer = |p: &str, cost: &[Option<Counters>]| Transfer {
                bytes: field(line, &format!("{p}_bytes")).unwrap_or(0),
                mbit: field(line, &format!("{p}_mbit")),
                tsc: field(tsc_line, &format!("{p}_tsc")),
                cost: cost.get(i).copied().flatten(),
            };
            NetfrontRun {
                tx: transfer("tx", &tx_cost),
                rx: transfer("rx", &rx_cost),
            }
        })
        .collect()
}

/// The `netfront` scenario's domain moving `bytes` each way `runs` times.
pub fn netfront_scenario(runs: u32, bytes: u64) -> Result<Scenario> {
    let mut s = ::tests::scenarios::netfront();
    let from = format!("xenolith.bytes={}", ::tests::scenarios::NETFRONT_BYTES);
    let to = format!("xenolith.bytes={bytes} xenolith.repeat={runs}");
    for d in &mut s.domains {
        if !d.config.contains(&from) {
            bail!("the netfront scenario's domain no longer says {from:?}");
        }
        d.config = d.config.replace(&from, &to);
    }
    s.name = "bench-netfront".into();
    // Boot (1-3 min wall) and a generous 1 s per 64 KiB block each way and run.
    s.timeout = Duration::from_secs(600 + 2 * (bytes >> 16) * u64::from(runs));
    Ok(s)
}

/// One direction's line of a netfront run.
fn describe_transfer(name: &str, t: &Transfer) -> String {
    let count = |pick: fn(&Counters) -> u64| {
        t.cost.map_or("-".into(), |c| {
            format!("{} ({}/MiB)", pick(&c), show(t.per_mib(pick), 1))
        })
    };
    format!(
        "{name}: {} bytes, {} Mbit/s (guest clock), {} TSC ticks ({} per byte); VM exits {}, \
         notifications {}, kicks {}",
        t.bytes,
        show(t.mbit, 3),
        t.tsc.map_or("-".into(), |t| t.to_string()),
        show(t.tsc_per_byte(), 1),
        count(|c| c.vm_exits),
        count(|c| c.notifications),
        count(|c| c.kicks),
    )
}

/// `bench netfront`: boots the netfront domain, prints each run, returns the runs.
pub fn run_netfront(paths: &Paths, runs: u32, bytes: u64) -> Result<Vec<NetfrontRun>> {
    let emulator = boot_bench::prepare(paths)?;
    let scenario = netfront_scenario(runs, bytes)?;
    let (outcome, walls) = boot(
        paths,
        &scenario,
        emulator,
        "(d1) GUEST ping 10.0.0.1",
        "(d1) GUEST init done",
    )?;
    let found = parse_netfront(&outcome.log);
    println!(
        "netfront to the peer host through the switch on {emulator} (busybox dd | nc, {bytes} \
         bytes each way), {} of {runs} runs in one boot; counts from the connection's open to \
         its close at the peer (notifications: backend -> guest; kicks: guest -> backend):",
        found.len()
    );
    let names = ["tx (guest -> peer)", "rx (peer -> guest)"];
    print_runs(found.iter().map(|r| [r.tx, r.rx]), names, describe_transfer);
    println!("  {}", walls.describe());
    if found.is_empty() {
        no_result(paths, &scenario.name, &outcome, "no NETFRONT result")?;
    }
    Ok(found)
}

/// `v` with `decimals` decimals, or `-`.
pub(crate) fn show(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// A figure with 3 significant digits or so (none lost left of the point).
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

/// One line of the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it is, with its unit.
    pub name: String,
    /// One value per run that gave one, in run order (for a ratio of medians: that ratio).
    pub values: Vec<f64>,
    /// How many values make it complete.
    pub expected: usize,
    /// Xen's figure to compare with.
    pub reference: Option<Reference>,
    /// A ratio of other rows' medians, not a figure with runs of its own.
    pub derived: bool,
}

impl Row {
    /// A figure with `expected` runs.
    fn runs(name: String, values: impl IntoIterator<Item = Option<f64>>, expected: u32) -> Row {
        Row {
            name,
            values: values.into_iter().flatten().collect(),
            expected: expected as usize,
            reference: None,
            derived: false,
        }
    }

    fn against(mut self, reference: Reference) -> Row {
        self.reference = Some(reference);
        self
    }

    /// `numerator / denominator` of two rows' medians.
    fn ratio(name: String, numerator: &Row, denominator: &Row) -> Row {
        let r = match (numerator.median(), denominator.median()) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        };
        Row {
            name,
            values: r.into_iter().collect(),
            expected: 1,
            reference: None,
            derived: true,
        }
    }

    /// The median of its values.
    pub fn median(&self) -> Option<f64> {
        median(&self.values)
    }

    /// Whether every run gave a value.
    pub fn complete(&self) -> bool {
        self.expected > 0 && self.values.len() == self.expected
    }

    /// The runs column.
    fn runs_text(&self) -> String {
        if self.derived {
            return "(ratio of medians)".into();
        }
        let mut s: Vec<String> = self.values.iter().map(|v| num(*v)).collect();
        if !self.complete() {
            s.push(format!("({} of {} runs)", self.values.len(), self.expected));
        }
        s.join(" ")
    }

    /// The median (rounded like the runs; ratios with 2 decimals), or `-`.
    fn median_text(&self) -> String {
        match self.median() {
            Some(m) if self.derived => format!("{m:.2}"),
            Some(m) => num(m),
            None => "-".into(),
        }
    }
}

/// How a part of the benchmark went.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Its name (`xenolith-tools bench <name>`).
    pub name: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// What the benchmark measured, for the table at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Runs per figure.
    pub runs: u32,
    /// Every part run, in order.
    pub parts: Vec<Part>,
    /// The iperf3 boots that ran, each with its runs (none when it failed).
    pub iperf: Vec<(IperfSetup, Vec<IperfRun>)>,
    /// The netfront runs, if that part ran.
    pub netfront: Option<Vec<NetfrontRun>>,
    /// The bare e1000 runs, if that part ran.
    pub bare: Option<Vec<NetRun>>,
}

/// The rows of one netfront direction.
fn netfront_rows(dir: &str, t: &[Transfer], runs: u32, reference: Reference) -> Vec<Row> {
    let name = |what: &str| format!("netfront {dir}: {what}");
    let count = |what: &str, pick: fn(&Counters) -> u64| {
        Row::runs(name(what), t.iter().map(|t| t.per_mib(pick)), runs)
    };
    vec![
        Row::runs(name("Mbit/s (guest clock)"), t.iter().map(|t| t.mbit), runs).against(reference),
        Row::runs(
            name("TSC ticks/byte"),
            t.iter().map(Transfer::tsc_per_byte),
            runs,
        ),
        count("VM exits/MiB", |c| c.vm_exits),
        count("notifications/MiB (backend->guest)", |c| c.notifications),
        count("kicks/MiB (guest->backend)", |c| c.kicks),
    ]
}

/// The rows of one e1000 direction.
fn bare_rows(dir: &str, d: &[crate::net_bench::Direction], runs: u32) -> Vec<Row> {
    vec![
        Row::runs(
            format!("e1000 {dir}: Mbit/s (emulated time, TSC)"),
            d.iter().map(|d| d.emulated_mbit()),
            runs,
        ),
        Row::runs(
            format!("e1000 {dir}: TSC ticks/byte"),
            d.iter().map(|d| d.tsc_per_byte()),
            runs,
        ),
    ]
}

/// The runs of `runs` that went `dir`.
fn of_dir(runs: &[IperfRun], dir: IperfDir) -> Vec<&IperfRun> {
    runs.iter().filter(|r| r.dir == dir).collect()
}

/// The run whose Mbit/s is nearest the median of `runs` (the first of two as near).
fn median_run<'a>(runs: &[&'a IperfRun]) -> Option<&'a IperfRun> {
    let m = median(&runs.iter().map(|r| r.mbit).collect::<Vec<_>>())?;
    runs.iter()
        .copied()
        .min_by(|a, b| (a.mbit - m).abs().total_cmp(&(b.mbit - m).abs()))
}

impl Summary {
    /// The median run of each iperf3 boot and direction, in order.
    pub fn iperf_medians(&self) -> Vec<(IperfSetup, &IperfRun)> {
        let mut out = Vec::new();
        for (setup, runs) in &self.iperf {
            for dir in [IperfDir::C2s, IperfDir::S2c] {
                out.extend(median_run(&of_dir(runs, dir)).map(|r| (*setup, r)));
            }
        }
        out
    }

    /// The bars of the iperf3 picture: each median run's window, labelled with its direction,
    /// streams and Mbit/s (`c2s -P 4: 30.0 Mbit/s`).
    pub fn iperf_bars(&self) -> Vec<(String, Ticks)> {
        self.iperf_medians()
            .into_iter()
            .filter_map(|(setup, r)| {
                let streams = match setup.streams {
                    1 => " 1 stream".to_string(),
                    _ => setup.flag(),
                };
                let label = format!("{}{streams}: {} Mbit/s", r.dir.name(), num(r.mbit));
                Some((label, r.window.clone()?))
            })
            .collect()
    }

    /// An empty summary for `runs` runs per figure.
    pub fn new(runs: u32) -> Self {
        Summary {
            runs,
            ..Summary::default()
        }
    }

    /// Records how part `name` went.
    pub fn part(&mut self, name: &str, failure: Option<String>) {
        self.parts.push(Part {
            name: name.to_string(),
            failure,
        });
    }

    /// The table's rows, part by part.
    pub fn rows(&self) -> Vec<Row> {
        let n = self.runs;
        let mut rows = Vec::new();
        for (setup, runs) in &self.iperf {
            for (dir, what, reference) in [
                (IperfDir::C2s, "d2->d1 client->server", XEN_IPERF_C2S),
                (IperfDir::S2c, "d1->d2 server->client -R", XEN_IPERF_S2C),
            ] {
                let of = of_dir(runs, dir);
                let short = format!("iperf3 {}{}", dir.name(), setup.flag());
                let vcpus = match setup.vcpus {
                    1 => String::new(),
                    v => format!("{v} vCPUs, "),
                };
                rows.push(
                    Row::runs(
                        format!("{short} ({vcpus}{what}): Mbit/s"),
                        of.iter().map(|r| Some(r.mbit)),
                        n,
                    )
                    .against(reference),
                );
                rows.push(Row::runs(
                    format!("{short}: TSC ticks/byte"),
                    of.iter().map(|r| r.tsc_per_byte()),
                    n,
                ));
                rows.push(Row::runs(
                    format!("{short}: tick breakdown sum-window, % of window"),
                    of.iter().map(|r| r.window.as_ref()?.discrepancy()),
                    n,
                ));
            }
        }
        let mut ticks = Vec::new();
        if let Some(runs) = &self.netfront {
            let tx: Vec<Transfer> = runs.iter().map(|r| r.tx).collect();
            let rx: Vec<Transfer> = runs.iter().map(|r| r.rx).collect();
            for (dir, t, reference) in [
                ("tx guest->peer", tx, XEN_NC_TX),
                ("rx peer->guest", rx, XEN_NC_RX),
            ] {
                let r = netfront_rows(dir, &t, n, reference);
                ticks.push(r[1].clone());
                rows.extend(r);
            }
        }
        if let Some(runs) = &self.bare {
            let tx: Vec<_> = runs.iter().map(|r| r.tx).collect();
            let rx: Vec<_> = runs.iter().map(|r| r.rx).collect();
            let tx = bare_rows("tx guest->host", &tx, n);
            let rx = bare_rows("rx host->guest", &rx, n);
            if let [nf_tx, nf_rx] = &ticks[..] {
                // Throughput ratio = the inverse ratio of the ticks each byte cost.
                let what = "throughput netfront/e1000 (by TSC ticks/byte)";
                let ratio_tx = Row::ratio(format!("tx: {what}"), &tx[1], nf_tx);
                let ratio_rx = Row::ratio(format!("rx: {what}"), &rx[1], nf_rx);
                rows.extend(tx.into_iter().chain([ratio_tx]));
                rows.extend(rx.into_iter().chain([ratio_rx]));
            } else {
                rows.extend(tx.into_iter().chain(rx));
            }
        }
        rows
    }

    /// Whether every part ran and every figure is complete.
    pub fn ok(&self) -> bool {
        self.parts.iter().all(|p| p.failure.is_none()) && self.rows().iter().all(Row::complete)
    }

    /// The table, under a heading with `date` and `machine`.
    pub fn render(&self, date: &str, machine: &str) -> String {
        let rows = self.rows();
        let mut out = format!(
            "== bench summary ==\ndate: {date}\nmachine: {machine}\n\
             each figure: the median of {} runs (the runs beside it, in order); TSC ticks = \
             emulated instructions under Bochs (sync=none), {} M per emulated second; ours/ref: \
             our median over Xen's figure\n",
            self.runs,
            BOCHS_IPS / 1_000_000
        );
        let cells: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                let (reference, ratio) = match (r.reference, r.median()) {
                    (Some(x), m) => (
                        format!("{} ({})", x.value, x.what),
                        m.map_or("-".into(), |m| format!("{:.2}", m / x.value)),
                    ),
                    (None, _) => (String::new(), String::new()),
                };
                [
                    r.name.clone(),
                    r.median_text(),
                    r.runs_text(),
                    reference,
                    ratio,
                ]
            })
            .collect();
        let head = ["figure", "median", "runs", "reference", "ours/ref"].map(String::from);
        let mut width = head.clone().map(|h| h.len());
        for c in &cells {
            for (w, s) in width.iter_mut().zip(c) {
                *w = (*w).max(s.len());
            }
        }
        for c in std::iter::once(&head).chain(&cells) {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {}",
                c[0],
                c[1],
                c[2],
                c[3],
                c[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|p| match &p.failure {
                None => format!("{} ok", p.name),
                Some(why) => format!("{} FAILED ({})", p.name, why.lines().next().unwrap_or("")),
            })
            .collect();
        out.push_str(&format!("parts: {}\n", parts.join("; ")));
        let missing: Vec<&str> = rows
            .iter()
            .filter(|r| !r.complete())
            .map(|r| r.name.as_str())
            .collect();
        if !missing.is_empty() {
            out.push_str(&format!(
                "missing figures ({}): {}\n",
                missing.len(),
                missing.join("; ")
            ));
        }
        for (setup, r) in self.iperf_medians() {
            out.push_str(&format!(
                "iperf3 {}{} tick breakdown, median run {} ({} Mbit/s):\n{}",
                r.dir.name(),
                setup.flag(),
                r.run,
                num(r.mbit),
                r.describe_window("  ")
            ));
        }
        out
    }
}

/// Draws `bars` ([`Summary::iperf_bars`]) into the SVG file `path` ([`breakdown::write_svg`]).
pub fn write_iperf_picture(path: &std::path::Path, bars: &[(String, Ticks)]) -> Result<()> {
    if bars.is_empty() {
        bail!("no iperf3 run with a tick breakdown to draw");
    }
    let title = format!(
        "iperf3 {IPERF_SECONDS} s between two domains: where each window's TSC ticks went \
         (median runs)"
    );
    breakdown::write_svg(path, &title, bars)
}

/// The host: CPU model and count from `/proc/cpuinfo`, and the emulator.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let bochs = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "bochs"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into());
    format!("{model}, {cpus} CPUs; Bochs {bochs}")
}

/// Now, in UTC (from `date`).
pub fn now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// Prints the summary with the time the benchmark took since `started`.
pub fn print_summary(summary: &Summary, started: Instant) {
    print!("{}", summary.render(&now(), &machine()));
    println!(
        "bench: {} in {:.1} min wall",
        if summary.ok() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64() / 60.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_medians() {
        assert_eq!(runs_from(None).unwrap(), DEFAULT_RUNS);
        assert_eq!(runs_from(Some(" 5 ")).unwrap(), 5);
        for bad in ["0", "x", "-1", "51"] {
            assert!(runs_from(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 7.0]), Some(7.0));
    }

    // The c2s run took two tries: the second pair of snapshots is its window.
    const IPERF_LOG: &str = "(d2) GUEST ping 10.0.0.2: 3 packets transmitted\r\n\
        (d2) XENOLITH TICKS c2s-1-1-begin\r\n\
        ticks c2s-1-1-begin: tsc=1000 d1.busy=1000\r\n\
        (d2) XENOLITH TICKS c2s-1-1-end\r\n\
        ticks c2s-1-1-end: tsc=2000 d1.busy=2000\r\n\
        (d2) XENOLITH TICKS c2s-1-1-begin\r\n\
        ticks c2s-1-1-begin: tsc=5000 d1.busy=4000 d1.exit.io=1000 n.d1.exits=10\r\n\
        (d2) XENOLITH TICKS c2s-1-1-end\r\n\
        ticks c2s-1-1-end: tsc=515005000 d1.busy=300004000 d1.halted=100000000 \
        d1.exit.io=50001000 hv.netback_rx=65000000 n.d1.exits=14730\r\n\
        (d2) GUEST IPERF dir=c2s run=1 mbit=12.345 bytes=15432704 secs=10.004 tsc=515000000 tries=2\r\n\
        (d1) GUEST eth0 up\r\n\
        (d2) GUEST IPERF dir=s2c run=1 mbit=20.000 bytes=25000000 secs=10.000 tsc=500000000 tries=1\r\n\
        (d2) GUEST IPERF FAIL dir=c2s run=2: rc=1 unable to connect\r\n\
        (d2) GUEST IPERF dir=bad run=2 mbit=1 bytes=1 tsc=1\r\n";

    #[test]
    fn parses_iperf_lines() {
        let runs = parse_iperf(IPERF_LOG);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0],
            IperfRun {
                dir: IperfDir::C2s,
                run: 1,
                streams: 1,
                mbit: 12.345,
                bytes: 15432704,
                secs: Some(10.004),
                tsc: 515_000_000,
                tries: Some(2),
                window: runs[0].window.clone(),
            }
        );
        let w = runs[0].window.as_ref().unwrap();
        assert_eq!(w.tsc, 515_000_000);
        assert_eq!(w.get("d1.busy"), 300_000_000);
        assert_eq!(w.get("n.d1.exits"), 14720);
        assert!(w.adds_up());
        assert!(runs[0]
            .describe_window("  ")
            .contains("  breakdown adds up: sum=515000000 window=515000000 (0.000%)\n"));
        assert_eq!(runs[1].dir, IperfDir::S2c);
        assert_eq!(runs[1].tsc_per_byte(), Some(20.0));
        assert_eq!(runs[1].window, None);
        assert_eq!(
            runs[1].describe_window("  "),
            "  no tick breakdown: no `ticks s2c-1-1-begin:` and `ticks s2c-1-1-end:` lines in \
             order\n"
        );
        let p4 = parse_iperf(IPERF_P4_LOG);
        assert_eq!((p4[0].streams, p4[0].mbit), (4, 30.0));
        assert_eq!(p4[0].window.as_ref().unwrap().tsc, 500);
    }

    const IPERF_P4_LOG: &str = "\
        ticks c2s-4-1-begin: tsc=1000 d1.busy=500\r\n\
        ticks c2s-1-1-end: tsc=1400 d1.busy=800\r\n\
        ticks c2s-4-1-end: tsc=1500 d1.busy=900 d2.busy=100\r\n\
        (d2) GUEST IPERF dir=c2s run=1 streams=4 mbit=30.0 bytes=1000 secs=10 tsc=500 tries=1\r\n\
        (d2) GUEST IPERF dir=s2c run=1 streams=4 mbit=40.0 bytes=1000 secs=10 tsc=500 tries=1\r\n";

    #[test]
    fn iperf_setups_and_domains() {
        assert_eq!(iperf_setups_from(None).unwrap(), IPERF_SETUPS);
        assert_eq!(iperf_setups_from(Some(" ")).unwrap(), IPERF_SETUPS);
        assert_eq!(iperf_setups_from(Some("1")).unwrap(), [IPERF_SETUPS[0]]);
        assert_eq!(iperf_setups_from(Some("4")).unwrap(), [IPERF_SETUPS[1]]);
        for bad in ["2", "x", "0"] {
            assert!(iperf_setups_from(Some(bad)).is_err(), "{bad}");
        }
        let [one, four] = IPERF_SETUPS;
        assert_eq!(
            (one.flag(), one.part()),
            (String::new(), "iperf3".to_string())
        );
        assert_eq!(
            (four.flag(), four.part()),
            (" -P 4".into(), "iperf3 -P 4".into())
        );
        assert_eq!(four.describe(), "2 vCPUs per domain, 4 streams");
        assert_eq!(one.describe(), "1 vCPU per domain, 1 stream");

        let s = iperf_scenario(4, one);
        assert_eq!(s.name, "bench-iperf3");
        assert_eq!(s.domains.len(), 2);
        assert!(s.domains[0]
            .config
            .contains("xenolith.test=iperf-server xenolith.ip=10.0.0.2\""));
        assert!(s.domains[1].config.contains(
            "xenolith.test=iperf-client xenolith.ip=10.0.0.3 xenolith.repeat=4 xenolith.seconds=10\""
        ));
        let s = iperf_scenario(3, four);
        assert_eq!(s.name, "bench-iperf3-p4");
        assert!(s.domains.iter().all(|d| d.config.contains("\nvcpus = 2\n")));
        assert!(s.domains[1]
            .config
            .contains("xenolith.repeat=3 xenolith.seconds=10 xenolith.streams=4\""));
        assert!(!s.domains[0].config.contains("streams"));
        let root = Paths::discover().unwrap().root;
        for mode in ["iperf-server", "iperf-client"] {
            assert!(
                root.join(format!("guest/test/{mode}.sh")).is_file(),
                "{mode}"
            );
        }
    }

    const NETFRONT_LOG: &str = "\
        xenolith: netpeer: counters at discard open: tsc=1000 vm_exits=100 notifications=10 kicks=1\r\n\
        xenolith: netpeer: discard received 2097152 bytes from 10.0.0.2:40000 in 812 ms\r\n\
        xenolith: netpeer: counters at discard close: tsc=5000 vm_exits=300 notifications=30 kicks=21\r\n\
        xenolith: netpeer: counters at source open: tsc=6000 vm_exits=310 notifications=31 kicks=22\r\n\
        (d1) NETFRONT tx_bytes=2097152 tx_mbit=9.500 rx_bytes=2097152 rx_mbit=12.250\r\n\
        (d1) GUEST netfront tx_cs=100 tx_tsc=4194304 rx_cs=80 rx_tsc=8388608\r\n\
        xenolith: netpeer: source sent 2200000 bytes to 10.0.0.2:40001 in 700 ms\r\n\
        xenolith: netpeer: counters at source close: tsc=9000 vm_exits=710 notifications=131 kicks=26\r\n\
        xenolith: netpeer: counters at discard open: tsc=9500 vm_exits=720 notifications=131 kicks=26\r\n\
        (d1) NETFRONT tx_bytes=2097152 tx_mbit=9.000 rx_bytes=0 rx_mbit=0.000\r\n";

    #[test]
    fn parses_netfront_runs_and_counters() {
        let c = parse_counters(NETFRONT_LOG);
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].0, "discard open");
        assert_eq!(
            c[4].1,
            Counters {
                tsc: 9500,
                vm_exits: 720,
                notifications: 131,
                kicks: 26
            }
        );
        let runs = parse_netfront(NETFRONT_LOG);
        assert_eq!(runs.len(), 2);
        let tx = runs[0].tx;
        assert_eq!(
            (tx.bytes, tx.mbit, tx.tsc),
            (2097152, Some(9.5), Some(4194304))
        );
        assert_eq!(tx.tsc_per_byte(), Some(2.0));
        assert_eq!(tx.per_mib(|c| c.vm_exits), Some(100.0));
        assert_eq!(tx.per_mib(|c| c.notifications), Some(10.0));
        assert_eq!(tx.per_mib(|c| c.kicks), Some(10.0));
        let rx = runs[0].rx;
        assert_eq!(rx.per_mib(|c| c.vm_exits), Some(200.0));
        assert_eq!(rx.per_mib(|c| c.notifications), Some(50.0));
        // The second run has no TSC line and its connections never closed.
        assert_eq!((runs[1].tx.tsc, runs[1].tx.cost), (None, None));
        assert_eq!(runs[1].rx.per_mib(|c| c.kicks), None);
        // A counter that went backwards gives nothing.
        let back = Counters::default().since(Counters {
            kicks: 1,
            ..Counters::default()
        });
        assert_eq!(back, None);
    }

    #[test]
    fn netfront_domain() {
        let s = netfront_scenario(3, NETFRONT_BYTES).unwrap();
        assert_eq!(s.name, "bench-netfront");
        assert_eq!(s.domains.len(), 1);
        assert!(s.domains[0]
            .config
            .contains("xenolith.test=netfront xenolith.bytes=16777216 xenolith.repeat=3"));
    }

    fn bare_run(tx_tsc: u64, rx_tsc: u64) -> NetRun {
        let d = |tsc| crate::net_bench::Direction {
            guest_bytes: 1 << 20,
            tsc,
            ..Default::default()
        };
        NetRun {
            tx: d(tx_tsc),
            rx: d(rx_tsc),
        }
    }

    #[test]
    fn median_runs() {
        let run = |run, mbit| IperfRun {
            run,
            mbit,
            ..parse_iperf(IPERF_LOG)[0].clone()
        };
        let runs = [run(1, 10.0), run(2, 30.0), run(3, 20.0), run(4, 50.0)];
        let all: Vec<&IperfRun> = runs.iter().collect();
        assert_eq!(median_run(&all[..3]).unwrap().run, 3);
        // Median 25: runs 2 and 3 are as near; the first.
        assert_eq!(median_run(&all).unwrap().run, 2);
        assert_eq!(median_run(&[]), None);
    }

    #[test]
    fn summary_table() {
        let mut s = Summary::new(2);
        s.part("boot-cost", None);
        s.part("iperf3", None);
        s.part("netfront", None);
        s.part("net-bare", None);
        let mut iperf = parse_iperf(IPERF_LOG);
        iperf.push(IperfRun {
            run: 2,
            mbit: 14.0,
            ..iperf[0].clone()
        });
        s.iperf = vec![
            (IPERF_SETUPS[0], iperf),
            (IPERF_SETUPS[1], parse_iperf(IPERF_P4_LOG)),
        ];
        let nf = parse_netfront(NETFRONT_LOG)[0];
        s.netfront = Some(vec![nf, nf]);
        s.bare = Some(vec![bare_run(8 << 20, 4 << 20), bare_run(8 << 20, 4 << 20)]);
        let rows = s.rows();
        let row = |name: &str| rows.iter().find(|r| r.name.starts_with(name)).unwrap();
        let c2s = row("iperf3 c2s (");
        assert_eq!(c2s.values, [12.345, 14.0]);
        assert!(c2s.complete());
        let s2c = row("iperf3 s2c (");
        assert!(!s2c.complete());
        assert_eq!(s2c.runs_text(), "20.0 (1 of 2 runs)");
        assert_eq!(row("iperf3 c2s: TSC ticks/byte").values.len(), 2);
        assert_eq!(
            row("iperf3 c2s: tick breakdown sum-window, % of window").values,
            [0.0, 0.0]
        );
        let p4 = row("iperf3 c2s -P 4 (2 vCPUs, d2->d1 client->server): Mbit/s");
        assert_eq!(
            (p4.values.as_slice(), p4.reference),
            ([30.0].as_slice(), Some(XEN_IPERF_C2S))
        );
        assert_eq!(row("iperf3 s2c -P 4: TSC ticks/byte").values, [0.5]);
        assert!(row("iperf3 s2c -P 4: tick breakdown").values.is_empty());
        let bars: Vec<String> = s.iperf_bars().into_iter().map(|b| b.0).collect();
        assert_eq!(bars, ["c2s 1 stream: 12.3 Mbit/s", "c2s -P 4: 30.0 Mbit/s"]);
        let nowhere = std::path::Path::new("/nonexistent/never.svg");
        assert!(write_iperf_picture(nowhere, &[]).is_err());
        // e1000 tx: 8 ticks/byte against netfront's 2: netfront moves 4 times as fast.
        assert_eq!(row("tx: throughput").median(), Some(4.0));
        assert_eq!(row("rx: throughput").median(), Some(1.0));
        assert_eq!(row("e1000 tx guest->host: Mbit/s").median(), Some(50.0));
        assert!(!s.ok());
        let text = s.render("2026-11-25 10:00:00 UTC", "AMD EPYC, 2 CPUs");
        assert!(text.starts_with("== bench summary ==\ndate: 2026-11-25 10:00:00 UTC\n"));
        let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap();
        let c2s_line = line("iperf3 c2s (");
        assert!(c2s_line.contains("13.2"), "{c2s_line}");
        assert!(c2s_line.contains("12.3 14.0"), "{c2s_line}");
        assert!(c2s_line.contains(" 77 (Xen domU->dom0)"), "{c2s_line}");
        assert!(c2s_line.ends_with("0.17"), "{c2s_line}");
        assert!(text.contains("missing figures (9): iperf3 s2c ("), "{text}");
        let p4_line = line("iperf3 s2c -P 4 (");
        assert!(p4_line.contains(" 120 (Xen dom0->domU) "), "{p4_line}");
        assert!(p4_line.ends_with(" 0.33"), "{p4_line}");
        assert!(text.contains(
            "iperf3 c2s tick breakdown, median run 1 (12.3 Mbit/s):\n  window 515000000 TSC ticks"
        ));
        assert!(text.contains(
            "iperf3 s2c tick breakdown, median run 1 (20.0 Mbit/s):\n  no tick breakdown"
        ));
        assert!(text.contains("iperf3 c2s -P 4 tick breakdown, median run 1 (30.0 Mbit/s):\n"));
        assert!(text.contains("parts: boot-cost ok; iperf3 ok; netfront ok; net-bare ok"));

        // A failed part: its figures are "-" and the summary fails.
        let mut f = Summary::new(3);
        f.part("netfront", Some("no NETFRONT result\nmore".into()));
        f.netfront = Some(Vec::new());
        let text = f.render("d", "m");
        let mbit = text
            .lines()
            .find(|l| l.starts_with("netfront tx guest->peer: Mbit/s"))
            .unwrap();
        assert!(mbit.contains(" -  (0 of 3 runs)"), "{mbit}");
        assert!(text.contains("parts: netfront FAILED (no NETFRONT result)\n"));
        assert!(!f.ok());
    }
}
