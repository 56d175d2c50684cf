//! `bench net-bare`: the network reference for xenolith's netfront path. The
//! same Debian kernel and initramfs as the bare boot benchmark
//! ([`crate::boot_bench`]), booted by GRUB on bare Bochs with Bochs' emulated
//! e1000 NIC on its slirp network. The guest (`guest/test/e1000.sh`) sends
//! bytes to a sink and reads them from a source, both TCP servers of this
//! process on the host's 127.0.0.1, which slirp shows the guest as its gateway
//! 10.0.2.2. The guest times each direction with its own clock and TSC (under
//! Bochs with `clock: sync=none` the TSC counts emulated instructions and
//! emulated time follows it); the host counts bytes and wall time. One boot
//! repeats both transfers `runs` times (`xenolith.repeat=`).

use crate::boot_bench::{self, GRUB_MARK, INIT_MARK};
use crate::emulator::Emulator;
use crate::paths::Paths;
use crate::{guest_image, runner, setup};
use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes moved each way by default: 16 MiB, as the netfront benchmark moves
/// ([`crate::netfront_bench::NETFRONT_BYTES`]); about 15 s of wall time each way on Bochs beside
/// the boot's 100 s.
pub const DEFAULT_BYTES: u64 = crate::netfront_bench::NETFRONT_BYTES;
/// The guest's transfers move whole blocks of this many bytes (its dd's `bs=`).
pub const BLOCK: u64 = 65536;
/// The e1000 module the guest loads, under `lib/modules/<release>/`.
pub const E1000_MODULE: &str = "kernel/drivers/net/ethernet/intel/e1000/e1000.ko";
/// The slirp configuration file, in the run's directory (Bochs runs there).
pub const SLIRP_CONF: &str = "slirp.conf";
/// Emulated instructions per emulated second: the `ips=` of [`crate::emulator::render_bochsrc`].
/// Bochs' timers (PIT, APIC, the e1000's and slirp's) run on this clock; the guest's own clock
/// does not (it trusts the TSC frequency that CPUID reports).
pub const BOCHS_IPS: u64 = 50_000_000;
/// The mark of the guest's interface being up (just before the transfers).
pub const UP_MARK: &str = "GUEST E1000 up";
/// The key of the guest's result line (one per run).
pub const RESULT_MARK: &str = "GUEST E1000 tx_bytes=";
/// The mark of the guest being done (after the last run).
pub const DONE_MARK: &str = "GUEST init done";

/// Bochs' slirp configuration: the classic 10.0.2.0/24 network spelled out, with only
/// slirp's own services besides the host's loopback (no port forwarding).
pub fn slirp_conf() -> String {
    "# slirp config\n\
     # (the line above is mandatory) Written by xenolith-tools bench net-bare.\n\
     restricted = 0\n\
     net = 10.0.2.0\n\
     mask = 255.255.255.0\n\
     host = 10.0.2.2\n\
     dhcpstart = 10.0.2.15\n\
     dns = 10.0.2.3\n"
        .to_string()
}

/// The line added to the runner's Bochs configuration.
pub fn e1000_bochsrc() -> String {
    format!("e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=slirp, script={SLIRP_CONF}\n")
}

/// The guest's figures for one direction (from its `GUEST E1000` line) and the host's.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Direction {
    /// Bytes the guest moved (whole 64 KiB blocks that dd reported).
    pub guest_bytes: u64,
    /// The guest's throughput by its own clock, Mbit/s (10^6 bit/s).
    pub guest_mbit: Option<f64>,
    /// The guest's time for the transfer, by its clock (/proc/uptime, 10 ms steps), seconds.
    /// That clock runs at the TSC frequency CPUID claims, not at Bochs' emulated rate.
    pub guest_s: Option<f64>,
    /// TSC ticks (emulated instructions) the transfer took.
    pub tsc: u64,
    /// Percent of the guest's CPU time spent idle (in HLT, while the TSC runs on) meanwhile.
    pub guest_idle: Option<f64>,
    /// Bytes the host's end moved (for the source this includes what was still in buffers
    /// when the guest stopped reading).
    pub host_bytes: u64,
    /// Host wall seconds from the first byte to the last at the host's end.
    pub host_wall: Option<f64>,
}

impl Direction {
    /// TSC ticks (emulated instructions) per byte moved.
    pub fn tsc_per_byte(&self) -> Option<f64> {
        (self.guest_bytes > 0).then(|| self.tsc as f64 / self.guest_bytes as f64)
    }

    /// Throughput in Bochs' emulated time ([`BOCHS_IPS`] TSC ticks a second), Mbit/s.
    pub fn emulated_mbit(&self) -> Option<f64> {
        (self.tsc > 0)
            .then(|| self.guest_bytes as f64 * 8.0 * BOCHS_IPS as f64 / self.tsc as f64 / 1e6)
    }

    /// Throughput in host wall time, Mbit/s: the guest's bytes over the host's wall time.
    pub fn wall_mbit(&self) -> Option<f64> {
        let w = self.host_wall.filter(|w| *w > 0.0)?;
        Some(self.guest_bytes as f64 * 8.0 / w / 1e6)
    }
}

/// One run: both transfers.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NetRun {
    /// Guest to host.
    pub tx: Direction,
    /// Host to guest.
    pub rx: Direction,
}

/// What `bench net-bare` measured.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NetFigures {
    /// Bytes asked for each way.
    pub bytes: u64,
    /// Runs asked for.
    pub asked: u32,
    /// The runs the guest reported, in order.
    pub runs: Vec<NetRun>,
    /// The TSC frequency the guest believes in (its `cpu MHz`), which its clock follows.
    pub guest_cpu_mhz: Option<f64>,
    /// Wall seconds from GRUB's hand-over to `/init`.
    pub boot_wall: Option<f64>,
    /// Wall seconds from the interface being up to the guest being done (every transfer).
    pub net_wall: Option<f64>,
    /// Wall seconds of the whole Bochs run.
    pub wall: f64,
}

/// The value of `key=` in the whitespace-separated `line`.
pub fn field<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// The guest's `cpu_mhz=` on its interface line.
pub fn parse_cpu_mhz(log: &str) -> Option<f64> {
    field(log.lines().find(|l| l.contains(UP_MARK))?, "cpu_mhz")
}

/// The guest's figures from its result lines, one per run (a line that does not parse ends
/// the list).
pub fn parse_log(log: &str) -> Vec<NetRun> {
    log.lines()
        .filter(|l| l.contains(RESULT_MARK))
        .map_while(parse_line)
        .collect()
}

/// One result line's figures.
fn parse_line(line: &str) -> Option<NetRun> {
    let dir = |p: &str| -> Option<Direction> {
        Some(Direction {
            guest_bytes: field(line, &format!("{p}_bytes"))?,
            guest_mbit: field(line, &format!("{p}_mbit")),
            guest_s: field::<u64>(line, &format!("{p}_cs")).map(|cs| cs as f64 / 100.0),
            guest_idle: field(line, &format!("{p}_idle")),
            tsc: field(line, &format!("{p}_tsc"))?,
            ..Direction::default()
        })
    };
    Some(NetRun {
        tx: dir("tx")?,
        rx: dir("rx")?,
    })
}

/// What a host end counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Counted {
    fn add(&mut self, n: usize) {
        let now = Instant::now();
        self.bytes += n as u64;
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    fn wall(&self) -> Option<f64> {
        Some((self.last? - self.first?).as_secs_f64())
    }
}

/// How long a blocked read or write waits before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// A TCP server on 127.0.0.1 that takes one connection after the other and sinks or sources
/// bytes on each until the peer goes, until it is told to stop.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<Counted>>>,
}

impl Server {
    /// Starts a sink (`source == false`: counts what it reads until EOF) or a source (writes
    /// zeros until the peer is gone).
    fn start(source: bool) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> Result<Vec<Counted>> {
            let mut counts = Vec::new();
            while let Some(stream) = accept(&listener, &flag)? {
                counts.push(if source {
                    feed(stream, &flag)
                } else {
                    drain(stream, &flag)
                });
            }
            Ok(counts)
        });
        Ok(Server { port, stop, thread })
    }

    /// Stops the server and returns its counts, one per connection.
    fn finish(self) -> Result<Vec<Counted>> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => bail!("the server thread on port {} panicked", self.port),
        }
    }
}

/// The first connection, or none once `stop` is set.
fn accept(listener: &TcpListener, stop: &AtomicBool) -> Result<Option<TcpStream>> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(POLL))?;
                s.set_write_timeout(Some(POLL))?;
                return Ok(Some(s));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accepting a connection"),
        }
    }
}

/// Whether an I/O error only means "nothing yet" (a timeout or a signal).
fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// The sink: reads until EOF, a reset, or `stop`.
fn drain(mut s: TcpStream, stop: &AtomicBool) -> Counted {
    let mut c = Counted::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => c.add(n),
            Err(e) if transient(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(_) => break,
        }
    }
    c
}

/// The source: writes zeros until the peer is gone or `stop`.
fn feed(mut s: TcpStream, stop: &AtomicBool) -> Counted {
    let mut c = Counted::default();
    let buf = vec![0u8; 1 << 16];
    while !stop.load(Ordering::SeqCst) {
        match s.write(&buf) {
            Ok(0) => break,
            Ok(n) => c.add(n),
            Err(e) if transient(&e) => {}
            Err(_) => break,
        }
    }
    c
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("size {s:?}: want bytes, or a number with K, M or G"))?;
    match n.checked_mul(1 << shift) {
        Some(b) if b > 0 => Ok(b),
        _ => bail!("size {s:?}: want 1 byte to 2^64-1"),
    }
}

/// The run's wall-clock limit: 600 s for the boot (about 100 s, more when another emulator
/// shares the cores) plus a generous 1 s per 64 KiB block each way and run (measured: under
/// 0.1 s).
fn timeout(bytes: u64, runs: u32) -> Duration {
    Duration::from_secs(600 + 2 * (bytes >> 16) * u64::from(runs))
}

/// Boots the guest on bare Bochs with an e1000 on slirp, moves `bytes` each way between it and
/// this process `runs` times, and returns the figures. Fails when the guest printed no result.
pub fn net_bare(paths: &Paths, bytes: u64, runs: u32) -> Result<NetFigures> {
    setup::ensure(false, true)?;
    let img = guest_image::ensure(paths)?;
    // The guest moves whole 64 KiB blocks.
    let bytes = bytes.div_ceil(BLOCK).max(1) * BLOCK;
    let dir = paths.scenario_dir("bench-net-bare");
    let sink = Server::start(false)?;
    let source = Server::start(true)?;
    let args = format!(
        "xenolith.test=e1000 xenolith.sink={} xenolith.source={} xenolith.bytes={bytes} \
         xenolith.repeat={runs}",
        sink.port, source.port
    );
    boot_bench::make_bare_iso(&img, &dir, &args)?;
    std::fs::write(dir.join(SLIRP_CONF), slirp_conf())?;
    let marks = [GRUB_MARK, INIT_MARK, UP_MARK, DONE_MARK];
    let run = boot_bench::run_emulator(
        &dir,
        Emulator::Bochs,
        &marks,
        true,
        &e1000_bochsrc(),
        timeout(bytes, runs),
    );
    let sunk = sink.finish()?;
    let sourced = source.finish()?;
    let (outcome, times) = run?;
    let mut found = parse_log(&outcome.log);
    if found.is_empty() {
        let why: Vec<&str> = outcome
            .log
            .lines()
            .filter(|l| l.contains("GUEST E1000"))
            .collect();
        bail!(
            "the guest printed no E1000 result ({:?}; {}; log in {})",
            outcome.ending,
            why.join(" / "),
            paths.show(&dir)
        );
    }
    // The guest opens one connection to each server per run, in order.
    for (i, r) in found.iter_mut().enumerate() {
        let host = |c: &[Counted]| c.get(i).copied().unwrap_or_default();
        (r.tx.host_bytes, r.tx.host_wall) = (host(&sunk).bytes, host(&sunk).wall());
        (r.rx.host_bytes, r.rx.host_wall) = (host(&sourced).bytes, host(&sourced).wall());
    }
    Ok(NetFigures {
        bytes,
        asked: runs,
        runs: found,
        guest_cpu_mhz: parse_cpu_mhz(&outcome.log),
        boot_wall: boot_bench::between(&times[..2]),
        net_wall: boot_bench::between(&times[2..]),
        wall: outcome.wall.as_secs_f64(),
    })
}

fn show(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} {unit}"))
}

/// One direction's line.
pub fn describe(name: &str, d: &Direction) -> String {
    format!(
        "{name}: {} bytes; {} TSC ticks, {} per byte, guest idle {}; {} in emulated time; \
         {} by the guest's clock ({}); {} in host wall time ({} bytes at the host's end)",
        d.guest_bytes,
        d.tsc,
        d.tsc_per_byte().map_or("-".into(), |t| format!("{t:.1}")),
        d.guest_idle.map_or("-".into(), |p| format!("{p:.1}%")),
        show(d.emulated_mbit(), "Mbit/s"),
        show(d.guest_mbit, "Mbit/s"),
        show(d.guest_s, "s"),
        show(d.wall_mbit(), "Mbit/s"),
        d.host_bytes,
    )
}

/// Prints two lines a run, `describe("run <n> <names[k]>", &directions[k])`.
pub fn print_runs<D>(
    runs: impl Iterator<Item = [D; 2]>,
    names: [&str; 2],
    describe: impl Fn(&str, &D) -> String,
) {
    for (i, directions) in runs.enumerate() {
        for (name, d) in names.iter().zip(&directions) {
            println!("  {}", describe(&format!("run {} {name}", i + 1), d));
        }
    }
}

/// `bench net-bare`: runs [`net_bare`] and prints the figures.
pub fn run(paths: &Paths, bytes: u64, runs: u32) -> Result<NetFigures> {
    let started = Instant::now();
    let f = net_bare(paths, bytes, runs)?;
    println!(
        "bare bochs, e1000 + slirp to the host's loopback, Debian {} bzImage, 1 CPU, {} bytes \
         each way, {} of {} runs in one boot:",
        guest_image::KERNEL_RELEASE,
        f.bytes,
        f.runs.len(),
        f.asked
    );
    println!(
        "  (TSC ticks = emulated instructions, and the ticks Bochs skips while the guest \
         idles in HLT; emulated time = {} M ticks a second, Bochs' ips; the guest's clock \
         assumes {})",
        BOCHS_IPS / 1_000_000,
        show(f.guest_cpu_mhz, "MHz")
    );
    let runs = f.runs.iter().map(|r| [r.tx, r.rx]);
    print_runs(runs, ["guest -> host (tx)", "host -> guest (rx)"], describe);
    println!(
        "  wall: boot (GRUB hand-over -> /init) {}, every transfer {}, Bochs run {:.1} s, \
         bench {:.1} s",
        show(f.boot_wall, "s"),
        show(f.net_wall, "s"),
        f.wall,
        started.elapsed().as_secs_f64()
    );
    if runner::interrupted() {
        bail!("interrupted");
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_guest_line() {
        let log = "GUEST init mode=e1000\r\nGUEST E1000 up inet 10.0.2.15/24, 2 x 65536 bytes\r\n\
                   GUEST E1000 tx_bytes=131072 tx_mbit=1.250 tx_tsc=5000000 tx_cs=84 tx_idle=12.5 \
                   rx_bytes=65536 rx_mbit=0.500 rx_tsc=2000000 rx_cs=105 rx_idle=-\r\n";
        let runs = parse_log(log);
        assert_eq!(runs.len(), 1);
        let NetRun { tx, rx } = runs[0];
        assert_eq!(tx.guest_bytes, 131072);
        assert_eq!(tx.guest_mbit, Some(1.25));
        assert_eq!(tx.tsc, 5_000_000);
        assert_eq!(tx.guest_s, Some(0.84));
        assert_eq!(rx.guest_bytes, 65536);
        assert_eq!(rx.guest_mbit, Some(0.5));
        assert_eq!(rx.tsc, 2_000_000);
        assert_eq!(rx.guest_s, Some(1.05));
        assert_eq!((tx.guest_idle, rx.guest_idle), (Some(12.5), None));
        assert!((tx.tsc_per_byte().unwrap() - 5_000_000.0 / 131072.0).abs() < 1e-9);
        assert_eq!(tx.emulated_mbit(), Some(131072.0 * 8.0 * 10.0 / 1e6));
        assert!(parse_log("GUEST E1000 FAIL insmod e1000.ko\n").is_empty());
        let up = "GUEST E1000 up inet 10.0.2.15/24, 2 x 65536 bytes each way, cpu_mhz=1497.600\n";
        assert_eq!(parse_cpu_mhz(up), Some(1497.6));
        let inf = "GUEST E1000 tx_bytes=1 tx_mbit=x tx_tsc=2 tx_cs=0 rx_bytes=0 rx_tsc=0\n";
        let NetRun { tx, rx } = parse_log(inf)[0];
        assert_eq!((tx.tsc, rx.guest_bytes, rx.tsc_per_byte()), (2, 0, None));
        let two = format!("{inf}GUEST E1000 tx_bytes=3 tx_tsc=4 rx_bytes=5 rx_tsc=6\n{inf}");
        let runs = parse_log(&two);
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[1].tx.guest_bytes, runs[1].rx.tsc), (3, 6));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("32M").unwrap(), 32 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        for bad in ["", "M", "0", "-1", "1T", "99999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configuration() {
        let conf = slirp_conf();
        assert!(conf.starts_with("# slirp config\n"));
        assert!(conf.lines().any(|l| l == "host = 10.0.2.2"));
        assert!(guest_image::MODULES.contains(&E1000_MODULE));
        assert!(
            crate::emulator::render_bochsrc(crate::emulator::SerialPort::File)
                .contains(&format!(" ips={BOCHS_IPS},"))
        );
        assert_eq!(
            e1000_bochsrc(),
            "e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=slirp, script=slirp.conf\n"
        );
    }

    #[test]
    fn servers_sink_and_source() {
        let sink = Server::start(false).unwrap();
        let source = Server::start(true).unwrap();
        // One connection after the other, as the guest's runs make them.
        for n in [100_000, 5_000] {
            let mut s = TcpStream::connect(("127.0.0.1", sink.port)).unwrap();
            s.write_all(&vec![7u8; n]).unwrap();
            drop(s);
            let mut r = TcpStream::connect(("127.0.0.1", source.port)).unwrap();
            let mut buf = vec![0u8; 3 * n];
            r.read_exact(&mut buf).unwrap();
            assert!(buf.iter().all(|b| *b == 0));
        }
        let sunk = sink.finish().unwrap();
        let sunk: Vec<u64> = sunk.iter().map(|c| c.bytes).collect();
        assert_eq!(sunk, [100_000, 5_000]);
        let sourced = source.finish().unwrap();
        assert_eq!(sourced.len(), 2);
        assert!(sourced[0].bytes >= 300_000 && sourced[0].wall().is_some());
        // A server nobody connects to stops when told.
        assert!(Server::start(false).unwrap().finish().unwrap().is_empty());
    }
}
