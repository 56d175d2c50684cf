//! `make bench` boot cost: Debian's kernel from VM launch to its `/init` on
//! xenolith, beside the same kernel and initramfs booted by GRUB on bare
//! Bochs. Wall time comes from when each marker line first appears in the
//! serial log; emulated instructions from the TSC (under Bochs with
//! `clock: sync=none` it counts instructions), read by the guest's own
//! `/init` with `/bin/rdtsc`, less the TSC at VM launch that the hypervisor
//! logs (the bare machine's TSC starts at power-on).

use crate::emulator::{self, files, Emulator};
use crate::paths::Paths;
use crate::runner::{self, RunOptions};
use crate::{build, guest_image, iso, setup};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The kernel options of every bare run (the traps in docs/bochs.md avoided by options); a
/// run adds its `xenolith.test=<mode>` and whatever that mode reads.
pub const BARE_OPTS: &str =
    "console=ttyS0,115200 quiet cryptomgr.notests rodata=off clearcpuid=fsrm noxsave";
/// The marker of `/init` (its first line).
pub const INIT_MARK: &str = "GUEST init mode=";

/// What one boot measured.
#[derive(Debug, Default)]
pub struct BootCost {
    /// Wall seconds from the start marker to `/init`.
    pub wall: Option<f64>,
    /// TSC ticks to `/init`: from VM launch (xenolith) or from power-on (bare).
    pub tsc: Option<u64>,
    /// The guest's uptime at `/init`, seconds.
    pub uptime: Option<f64>,
}

/// The number after `key` on the first line that has it.
fn value_after<T: std::str::FromStr>(log: &str, key: &str) -> Option<T> {
    log.lines().find_map(|l| {
        let s = l.split(key).nth(1)?;
        s.split(|c: char| c.is_whitespace() || c == ']')
            .next()?
            .parse()
            .ok()
    })
}

/// TSC ticks from launch to `/init` and the uptime in a console log: the
/// guest's own `GUEST tsc=` (its TSC at `/init`) less the hypervisor's
/// `launched at tsc=` (0 on bare hardware, where the TSC starts at power-on).
pub fn parse_log(log: &str) -> (Option<u64>, Option<f64>) {
    let at_init: Option<u64> = value_after(log, "GUEST tsc=");
    let launch: u64 = value_after(log, "launched at tsc=").unwrap_or(0);
    let tsc = at_init.and_then(|t| t.checked_sub(launch));
    (tsc, value_after(log, "GUEST uptime="))
}

/// Boots the machine in `dir` until Linux powers off, times `marks` (their first appearance
/// in the serial log) and returns the outcome and those times. `bare`: no hypervisor (Bochs
/// ignores unknown MSRs); `extra_bochsrc`: lines added to Bochs' configuration.
pub fn run_emulator(
    dir: &Path,
    emulator: Emulator,
    marks: &[&str],
    bare: bool,
    extra_bochsrc: &str,
    timeout: Duration,
) -> Result<(runner::Outcome, Vec<Option<Duration>>)> {
    let mut cmd = emulator::prepare(emulator, dir, emulator::SerialPort::File)?;
    if emulator == Emulator::Bochs && (bare || !extra_bochsrc.is_empty()) {
        let rc = dir.join(files::BOCHSRC);
        let mut text = std::fs::read_to_string(&rc)?;
        if bare {
            // Bare Linux reads MSRs Bochs does not implement before it has an IDT; real
            // firmware-less hardware would not fault there, so let Bochs ignore them.
            text = text.replace("ignore_bad_msrs=0", "ignore_bad_msrs=1");
        }
        text.push_str(extra_bochsrc);
        std::fs::write(&rc, text)?;
    }
    let out = File::create(dir.join(files::EMULATOR_OUT))?;
    cmd.stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out));
    let mut opts = RunOptions::new(timeout, false);
    opts.marks = marks.iter().map(|m| m.to_string()).collect();
    opts.stop_markers.push("reboot: Power down".into());
    let outcome = runner::run(cmd, &dir.join(files::SERIAL), &opts)?;
    let times = outcome.mark_times.clone();
    Ok((outcome, times))
}

/// Seconds from the first mark to the second.
pub fn between(times: &[Option<Duration>]) -> Option<f64> {
    Some((times.get(1).copied()?? - times.first().copied()??).as_secs_f64())
}

/// Makes `scenario`'s ISO and boots it on xenolith like [`run_emulator`]: the emulator's
/// outcome and the times of `marks`.
pub fn run_scenario(
    paths: &Paths,
    scenario: &::tests::Scenario,
    emulator: Emulator,
    marks: &[&str],
    timeout: Duration,
) -> Result<(runner::Outcome, Vec<Option<Duration>>)> {
    iso::make_iso(paths, scenario, emulator)?;
    let dir = paths.scenario_dir(&scenario.name);
    run_emulator(&dir, emulator, marks, false, "", timeout)
}

/// The emulator from the environment, set up, with the hypervisor built and the guest image
/// made: what a benchmark on xenolith needs first.
pub fn prepare(paths: &Paths) -> Result<Emulator> {
    let choice = emulator::choose_from_env()?;
    setup::ensure(choice.emulator == Emulator::Qemu, true)?;
    build::build_all(paths)?;
    guest_image::ensure(paths)?;
    Ok(choice.emulator)
}

/// The kernel on xenolith (scenario `linux-hvm` with TSC console stamps).
fn xenolith(paths: &Paths, emulator: Emulator) -> Result<BootCost> {
    let mut scenario = ::tests::scenarios::linux_hvm().hv_arg("console_timestamps=tsc");
    scenario.name = "bench-boot-xenolith".into();
    let marks = ["domain 1: launched", INIT_MARK];
    let (outcome, times) = run_scenario(paths, &scenario, emulator, &marks, BOOT_TIMEOUT)?;
    let (tsc, uptime) = parse_log(&outcome.log);
    Ok(BootCost {
        wall: between(&times),
        tsc,
        uptime,
    })
}

/// The mark of GRUB's hand-over to the kernel on a bare run.
pub const GRUB_MARK: &str = "Booting `linux'";
/// The boot benchmark's wall-clock limit.
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

/// Makes `dir`'s ISO: GRUB booting the guest's bzImage and initramfs with `BARE_OPTS` and
/// `args` on the serial console of a bare machine.
pub fn make_bare_iso(img: &guest_image::GuestImage, dir: &Path, args: &str) -> Result<()> {
    let boot = dir.join("iso/boot");
    let _ = std::fs::remove_dir_all(dir.join("iso"));
    std::fs::create_dir_all(boot.join("grub"))?;
    std::fs::copy(&img.bzimage, boot.join("vmlinuz"))?;
    std::fs::copy(&img.initramfs, boot.join("initramfs.cpio"))?;
    std::fs::write(
        boot.join("grub/grub.cfg"),
        format!(
            "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\n\
             terminal_input serial\nterminal_output serial\nmenuentry \"linux\" {{\n\
             \x20 linux /boot/vmlinuz {BARE_OPTS} {args}\n  initrd /boot/initramfs.cpio\n  boot\n}}\n"
        ),
    )?;
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(dir.join(files::ISO))
        .arg(dir.join("iso"))
        .output()
        .context("grub-mkrescue")?;
    if !out.status.success() {
        bail!("grub-mkrescue: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The same kernel and initramfs booted by GRUB on the bare emulator.
fn bare(paths: &Paths, emulator: Emulator) -> Result<BootCost> {
    let img = guest_image::ensure(paths)?;
    let dir = paths.scenario_dir("bench-boot-bare");
    make_bare_iso(&img, &dir, "xenolith.test=bare")?;
    // From GRUB's hand-over ("Booting") to /init.
    let marks = [GRUB_MARK, INIT_MARK];
    let (outcome, times) = run_emulator(&dir, emulator, &marks, true, "", BOOT_TIMEOUT)?;
    let (tsc, uptime) = parse_log(&outcome.log);
    Ok(BootCost {
        wall: between(&times),
        tsc,
        uptime,
    })
}

fn show(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} {unit}"))
}

/// Only the bare boot (its figures do not change with the hypervisor): `bench boot-cost-bare`.
pub fn run_bare(paths: &Paths) -> Result<()> {
    let choice = emulator::choose_from_env()?;
    setup::ensure(choice.emulator == Emulator::Qemu, true)?;
    let b = bare(paths, choice.emulator)?;
    let g = |t: Option<u64>| t.map_or("-".into(), |t| format!("{:.3} G", t as f64 / 1e9));
    println!(
        "bare {}: {} to /init (GRUB hand-over -> /init), TSC {} from power-on, guest uptime {}; \
         Debian {}, bzImage, 1 CPU",
        choice.emulator,
        show(b.wall, "s"),
        g(b.tsc),
        show(b.uptime, "s"),
        guest_image::KERNEL_RELEASE
    );
    if b.wall.is_none() {
        bail!("the bare boot never reached /init (log in build/bench-boot-bare/)");
    }
    Ok(())
}

/// Runs both boots and prints the table.
pub fn run(paths: &Paths) -> Result<()> {
    let emulator = prepare(paths)?;
    let x = xenolith(paths, emulator)?;
    let b = bare(paths, emulator)?;
    let g = |t: Option<u64>| t.map_or("-".into(), |t| format!("{:.3} G", t as f64 / 1e9));
    println!(
        "boot cost of Debian {} to /init on {} (TSC ticks = emulated instructions under Bochs with sync=none):",
        guest_image::KERNEL_RELEASE,
        emulator
    );
    println!(
        "  xenolith, vmlinux, 2 vCPUs:  VM launch -> /init: wall {}, TSC {}, guest uptime {}",
        show(x.wall, "s"),
        g(x.tsc),
        show(x.uptime, "s")
    );
    println!(
        "  bare Bochs, bzImage, 1 CPU:  GRUB hand-over -> /init: wall {}; power-on -> /init: TSC {}",
        show(b.wall, "s"),
        g(b.tsc)
    );
    if let (Some(xw), Some(bw)) = (x.wall, b.wall) {
        println!("  wall ratio xenolith/bare: {:.2}", xw / bw);
    }
    if let (Some(xt), Some(bt)) = (x.tsc, b.tsc) {
        println!(
            "  instruction ratio xenolith/bare: {:.2}",
            xt as f64 / bt as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tsc_and_uptime() {
        let log = "xenolith: domain 1: launched at tsc=1000\r\n\
                   (d1) [tsc+123] GUEST init mode=boot\r\n\
                   (d1) [tsc+125] GUEST tsc=5000\r\n(d1) [tsc+130] GUEST uptime=12.34\r\n";
        assert_eq!(parse_log(log), (Some(4000), Some(12.34)));
        let bare = "GUEST init mode=bare\nGUEST tsc=777\nGUEST uptime=70.5\n";
        assert_eq!(parse_log(bare), (Some(777), Some(70.5)));
        assert_eq!(parse_log("GUEST uptime=x\n"), (None, None));
    }
}
