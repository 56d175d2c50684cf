//! Which emulator runs the hypervisor, and how each is configured and started.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// Environment variable choosing the emulator: `bochs`, `qemu` or `auto` (the default).
pub const EMULATOR_ENV: &str = "XENOLITH_EMULATOR";

/// File names inside a scenario directory (`build/<scenario>/`); the emulator runs there.
pub mod files {
    /// The boot ISO.
    pub const ISO: &str = "xenolith.iso";
    /// The COM1 log (the serial console).
    pub const SERIAL: &str = "serial.log";
    /// Bochs' own log.
    pub const BOCHS_LOG: &str = "bochs.log";
    /// The Bochs configuration.
    pub const BOCHSRC: &str = "bochsrc";
    /// The Bochs debugger commands (`continue`, `quit`).
    pub const BOCHS_CMDS: &str = "bochs.cmds";
    /// The emulator's standard output and error (Bochs' port 0xE9 output lands here).
    pub const EMULATOR_OUT: &str = "emulator.out";
}

/// An emulator that can run VMX guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// Bochs 2.7 with its VMX emulation (works everywhere, slow).
    Bochs,
    /// QEMU with KVM and nested VMX (Intel hosts only).
    Qemu,
}

impl fmt::Display for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Emulator::Bochs => "bochs",
            Emulator::Qemu => "qemu",
        })
    }
}

/// What the host offers, as read by [`HostFacts::probe`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Whether `/dev/kvm` exists.
    pub dev_kvm: bool,
    /// The text of `/proc/cpuinfo` (only its `vendor_id` matters).
    pub cpuinfo: String,
    /// The content of `/sys/module/kvm_intel/parameters/nested`, if readable.
    pub kvm_intel_nested: Option<String>,
}

impl HostFacts {
    /// Reads the facts from this machine.
    pub fn probe() -> Self {
        HostFacts {
            dev_kvm: Path::new("/dev/kvm").exists(),
            cpuinfo: std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
            kvm_intel_nested: std::fs::read_to_string("/sys/module/kvm_intel/parameters/nested")
                .ok(),
        }
    }
}

/// The emulator picked, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The emulator.
    pub emulator: Emulator,
    /// A short explanation.
    pub reason: String,
}

/// Picks the emulator from the setting (`XENOLITH_EMULATOR`'s value, if set) and the host facts:
/// `auto` takes QEMU only with `/dev/kvm`, a GenuineIntel CPU and nested VMX enabled.
pub fn choose(setting: Option<&str>, host: &HostFacts) -> Result<Choice> {
    let setting = setting.map(str::trim).unwrap_or("");
    match setting {
        "bochs" => {
            return Ok(Choice {
                emulator: Emulator::Bochs,
                reason: format!("{EMULATOR_ENV}=bochs"),
            })
        }
        "qemu" => {
            return Ok(Choice {
                emulator: Emulator::Qemu,
                reason: format!("{EMULATOR_ENV}=qemu"),
            })
        }
        "" | "auto" => {}
        other => bail!("{EMULATOR_ENV}={other:?}: want bochs, qemu or auto"),
    }
    let bochs = |why: &str| Choice {
        emulator: Emulator::Bochs,
        reason: format!("auto: {why}"),
    };
    if !host.dev_kvm {
        return Ok(bochs("no /dev/kvm"));
    }
    let vendor = host
        .cpuinfo
        .lines()
        .find(|l| l.starts_with("vendor_id"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown");
    if vendor != "GenuineIntel" {
        return Ok(bochs(&format!(
            "host CPU is {vendor}, nested VMX needs GenuineIntel"
        )));
    }
    match host.kvm_intel_nested.as_deref().map(str::trim) {
        Some("Y") | Some("y") | Some("1") => Ok(Choice {
            emulator: Emulator::Qemu,
            reason: "auto: /dev/kvm on an Intel host with nested VMX".to_string(),
        }),
        Some(v) => Ok(bochs(&format!("kvm_intel nested={v}"))),
        None => Ok(bochs("kvm_intel is not loaded")),
    }
}

/// Reads `XENOLITH_EMULATOR` and the host, and picks.
pub fn choose_from_env() -> Result<Choice> {
    let setting = std::env::var(EMULATOR_ENV).ok();
    choose(setting.as_deref(), &HostFacts::probe())
}

/// The hypervisor command-line words for an emulator: `loglvl=info exit=<emulator>`.
pub fn hv_cmdline(emulator: Emulator, extra: &[String]) -> String {
    let mut words = vec!["loglvl=info".to_string(), format!("exit={emulator}")];
    words.extend(extra.iter().cloned());
    words.join(" ")
}

/// Where the emulator's serial port goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialPort {
    /// Written to [`files::SERIAL`]; nothing is typed.
    File,
    /// A TCP server on this local port, which the runner connects to
    /// ([`crate::serial_link`]).
    Socket(u16),
}

impl SerialPort {
    /// Bochs' `com1:` setting.
    fn bochs(self) -> String {
        match self {
            SerialPort::File => format!("mode=file, dev={}", files::SERIAL),
            SerialPort::Socket(port) => format!("mode=socket-server, dev=localhost:{port}"),
        }
    }

    /// QEMU's `-serial` argument.
    fn qemu(self) -> String {
        match self {
            SerialPort::File => format!("file:{}", files::SERIAL),
            SerialPort::Socket(port) => format!("tcp:127.0.0.1:{port},server=on,wait=on"),
        }
    }
}

/// The Bochs configuration for a scenario; every path in it is relative to the scenario
/// directory, where Bochs runs.
pub fn render_bochsrc(serial: SerialPort) -> String {
    format!(
        "# Generated by xenolith-tools; Bochs runs in this directory.
plugin_ctrl: unmapped=1, biosdev=1, speaker=0, extfpuirq=1, parallel=0, serial=1, iodebug=0
config_interface: textconfig
# The Debian build has no 'nogui'; rfb binds a free port in 5900-5949 and never waits (timeout=0).
display_library: rfb, options=\"timeout=0\"
megs: 1024
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=corei7_icelake_u, count=1, ips=50000000, reset_on_triple_fault=0, ignore_bad_msrs=0
clock: sync=none, time0=local
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
floppy_bootsig_check: disabled=0
com1: enabled=1, {serial}
port_e9_hack: enabled=1
magic_break: enabled=1
log: {log}
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
keyboard: type=mf, serial_delay=250
mouse: enabled=0
",
        iso = files::ISO,
        serial = serial.bochs(),
        log = files::BOCHS_LOG,
    )
}

/// The Bochs debugger commands: run, then quit when the machine stops.
pub const BOCHS_CMDS: &str = "continue\nquit\n";

/// Writes the emulator's files into `dir` and returns the command that starts it there (its
/// standard input is `/dev/null`; the caller sets standard output and error).
pub fn prepare(emulator: Emulator, dir: &Path, serial: SerialPort) -> Result<Command> {
    use anyhow::Context;
    let mut cmd = match emulator {
        Emulator::Bochs => {
            std::fs::write(dir.join(files::BOCHSRC), render_bochsrc(serial))
                .with_context(|| format!("writing {}", dir.join(files::BOCHSRC).display()))?;
            std::fs::write(dir.join(files::BOCHS_CMDS), BOCHS_CMDS)
                .with_context(|| format!("writing {}", dir.join(files::BOCHS_CMDS).display()))?;
            let mut c = Command::new("bochs-bin");
            c.args(["-q", "-f", files::BOCHSRC, "-rc", files::BOCHS_CMDS]);
            c
        }
        Emulator::Qemu => {
            let mut c = Command::new("qemu-system-x86_64");
            c.args(qemu_args(serial));
            c
        }
    };
    cmd.current_dir(dir).stdin(Stdio::null());
    Ok(cmd)
}

/// QEMU's arguments (relative paths: QEMU runs in the scenario directory).
pub fn qemu_args(serial: SerialPort) -> Vec<String> {
    [
        "-enable-kvm",
        "-cpu",
        "host,+vmx",
        "-m",
        "1G",
        "-nographic",
        "-monitor",
        "none",
        "-no-reboot",
        "-serial",
        &serial.qemu(),
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-cdrom",
        files::ISO,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(kvm: bool, vendor: &str, nested: Option<&str>) -> HostFacts {
        HostFacts {
            dev_kvm: kvm,
            cpuinfo: format!("processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 6\n"),
            kvm_intel_nested: nested.map(|s| format!("{s}\n")),
        }
    }

    #[test]
    fn auto_picks_qemu_only_with_nested_intel_kvm() {
        for setting in [None, Some("auto"), Some("")] {
            let c = choose(setting, &host(true, "GenuineIntel", Some("Y"))).unwrap();
            assert_eq!(c.emulator, Emulator::Qemu);
        }
        let c = choose(None, &host(true, "GenuineIntel", Some("1"))).unwrap();
        assert_eq!(c.emulator, Emulator::Qemu);
        for (h, why) in [
            (host(false, "GenuineIntel", Some("Y")), "no /dev/kvm"),
            (host(true, "AuthenticAMD", Some("Y")), "AuthenticAMD"),
            (host(true, "GenuineIntel", Some("N")), "nested=N"),
            (host(true, "GenuineIntel", Some("0")), "nested=0"),
            (host(true, "GenuineIntel", None), "not loaded"),
        ] {
            let c = choose(None, &h).unwrap();
            assert_eq!(c.emulator, Emulator::Bochs, "{h:?}");
            assert!(c.reason.contains(why), "{}", c.reason);
        }
    }

    #[test]
    fn explicit_setting_wins() {
        let amd = host(false, "AuthenticAMD", None);
        assert_eq!(choose(Some("qemu"), &amd).unwrap().emulator, Emulator::Qemu);
        let intel = host(true, "GenuineIntel", Some("Y"));
        assert_eq!(
            choose(Some("bochs"), &intel).unwrap().emulator,
            Emulator::Bochs
        );
        assert!(choose(Some("vmware"), &intel).is_err());
    }

    #[test]
    fn bochsrc_has_the_required_settings() {
        let rc = render_bochsrc(SerialPort::File);
        for want in [
            "cpu: model=corei7_icelake_u, count=1, ips=50000000, reset_on_triple_fault=0, ignore_bad_msrs=0",
            "clock: sync=none, time0=local",
            "megs: 1024",
            "com1: enabled=1, mode=file, dev=serial.log",
            "log: bochs.log",
            "port_e9_hack: enabled=1",
            "magic_break: enabled=1",
            "panic: action=fatal",
            "display_library: rfb, options=\"timeout=0\"",
            "pci: enabled=1, chipset=i440fx",
            "ata0-master: type=cdrom, path=xenolith.iso, status=inserted",
            "boot: cdrom",
        ] {
            assert!(rc.lines().any(|l| l == want), "missing {want:?}");
        }
        assert_eq!(BOCHS_CMDS, "continue\nquit\n");
        let rc = render_bochsrc(SerialPort::Socket(4321));
        assert!(rc
            .lines()
            .any(|l| l == "com1: enabled=1, mode=socket-server, dev=localhost:4321"));
        let a = qemu_args(SerialPort::Socket(4321)).join(" ");
        assert!(
            a.contains("-serial tcp:127.0.0.1:4321,server=on,wait=on"),
            "{a}"
        );
    }

    #[test]
    fn cmdline_words() {
        assert_eq!(hv_cmdline(Emulator::Bochs, &[]), "loglvl=info exit=bochs");
        assert_eq!(
            hv_cmdline(Emulator::Qemu, &["x=1".to_string()]),
            "loglvl=info exit=qemu x=1"
        );
    }

    #[test]
    fn qemu_command_line() {
        let a = qemu_args(SerialPort::File).join(" ");
        assert!(a.starts_with("-enable-kvm -cpu host,+vmx -m 1G -nographic"));
        assert!(a.contains("-serial file:serial.log"));
        assert!(a.contains("-device isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(a.ends_with("-cdrom xenolith.iso"));
    }
}
