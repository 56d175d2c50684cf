//! Domain configuration in Xen's `xl.cfg(5)` syntax.
//!
//! The hypervisor reads one configuration per multiboot2 module named `*.cfg` and builds one
//! domain from it. [`parse`] turns the text into a [`DomainConfig`] or a [`ConfigError`]
//! naming the line and key at fault; it never panics, whatever the input.
//!
//! ```
//! let cfg = domcfg::parse(r#"
//!     name = "d1"
//!     type = "hvm"
//!     memory = 512
//!     vcpus = 2
//!     kernel = "vmlinux"
//!     root = "/dev/xvda1"
//!     extra = "console=hvc0"
//!     vif = [ "mac=00:16:3e:00:00:01,bridge=xenbr0" ]
//! "#).unwrap();
//! assert_eq!(cfg.memory_mib, 512);
//! assert_eq!(cfg.cmdline, "root=/dev/xvda1 console=hvc0");
//! assert_eq!(cfg.vifs[0].mac, Some([0x00, 0x16, 0x3e, 0, 0, 1]));
//!
//! let err = domcfg::parse("name = \"x\"\nkernel = \"k\"\nmemory = \"lots\"\n").unwrap_err();
//! assert_eq!(err.to_string(), "line 3, key 'memory': expected an integer, found \"lots\"");
//! ```
//!
//! # Syntax
//! `key = value` statements, one per line or separated by `;`; `#` comments; values are
//! `"double"` or `'single'` quoted strings, integers (decimal, `0x` hex; as in `xl`, which
//! reads them with `strtol(.., 0)`, a leading `0` means octal) or lists `[ "a", "b" ]` that may
//! span lines and end in a comma. `key += value` appends to a string or list. When a key is set
//! twice, the last setting wins. Integer keys also accept quoted integers (`memory = "512"`),
//! like `xl`.
//!
//! # Keys
//! | key | meaning | default |
//! |---|---|---|
//! | `name` | domain name | required |
//! | `type` | `"hvm"` or `"pvh"` (`"pv"` is refused) | required (xl's default, PV, is unsupported) |
//! | `builder` | deprecated: `"hvm"` means `type = "hvm"` | |
//! | `memory` | RAM in MiB | `maxmem`, else 32 (libxl's default) |
//! | `maxmem` | maximum RAM in MiB, at least `memory` | `memory` |
//! | `vcpus` | vCPUs online at boot, 1 to [`MAX_VCPUS`] | 1 |
//! | `maxvcpus` | maximum vCPUs, at least `vcpus` | `vcpus` |
//! | `kernel` | the boot module holding the kernel (direct boot) | required unless `firmware` is given |
//! | `firmware_override`, `firmware` | the boot module holding an ELF image with Xen's PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`), entered through `hvm_start_info` on the platform of `type` (`firmware_override` wins when both are set; the names `bios`, `uefi`, `seabios`, `rombios`, `ovmf`, `pvgrub32`, `pvgrub64` are Xen's built-in firmware, which xenolith does not have); not together with `kernel` | none |
//! | `ramdisk` | the boot module holding the initrd | none |
//! | `cmdline` | the kernel command line | built from `root`/`extra` |
//! | `root`, `extra` | command line `root=<root> <extra>` when `cmdline` is absent | |
//! | `vif` | list of network interfaces ([`VifSpec`]) | none |
//! | `iommu` | `1` to honour guest memory types (xenolith-specific), `0` | 0 |
//! | `event_channels` | the highest event-channel port the guest may use, 1 to [`MAX_EVENT_CHANNELS`] (a guest on the 2-level ABI is held to 4095 on top; one on the FIFO ABI, as Linux is, gets it in full) | 1023 (libxl's default) |
//! | `on_poweroff`, `on_reboot`, `on_crash`, `on_watchdog` | [`Action`] | destroy, restart, destroy, destroy |
//!
//! Other keys are accepted and ignored, as `xl` ignores keys it does not know; they are listed
//! in [`DomainConfig::unknown_keys`] so that the hypervisor can warn.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
mod syntax;
mod vif;

pub use error::{ConfigError, ErrorKind};
pub use vif::{parse_ipv4, parse_ipv4_net, parse_mac, Ipv4Net, VifSpec, VifType};

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use syntax::{parse_settings, Setting, Value};

/// libxl's default `event_channels`.
pub const DEFAULT_EVENT_CHANNELS: u32 = 1023;
/// The largest accepted `event_channels`: the FIFO ABI's last port.
pub const MAX_EVENT_CHANNELS: u32 = 131_071;

/// The largest accepted `vcpus` / `maxvcpus`.
pub const MAX_VCPUS: u32 = 128;
/// The largest accepted `memory` / `maxmem`, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// `memory` when neither `memory` nor `maxmem` is given (libxl's default).
pub const DEFAULT_MEMORY_MIB: u64 = 32;

/// The kind of guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestType {
    /// `type = "hvm"`: a fully virtualised guest with emulated platform devices (PVHVM Linux).
    Hvm,
    /// `type = "pvh"`: a PVH guest entered through `hvm_start_info`.
    Pvh,
}

/// What to do when the guest shuts down for a given reason (`on_poweroff` and friends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `destroy`: tear the domain down.
    Destroy,
    /// `restart`: destroy it and build it again.
    Restart,
    /// `rename-restart`: rename the old domain and start a new one.
    RenameRestart,
    /// `preserve`: keep the domain's state for inspection.
    Preserve,
    /// `coredump-destroy`: dump core, then destroy.
    CoredumpDestroy,
    /// `coredump-restart`: dump core, then restart.
    CoredumpRestart,
    /// `soft-reset`: reset the domain's state, keeping its memory.
    SoftReset,
}

impl Action {
    /// All actions with their xl names.
    pub const ALL: &'static [(Action, &'static str)] = &[
        (Action::Destroy, "destroy"),
        (Action::Restart, "restart"),
        (Action::RenameRestart, "rename-restart"),
        (Action::Preserve, "preserve"),
        (Action::CoredumpDestroy, "coredump-destroy"),
        (Action::CoredumpRestart, "coredump-restart"),
        (Action::SoftReset, "soft-reset"),
    ];

    /// The xl name (`"destroy"`).
    pub fn name(self) -> &'static str {
        Action::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("destroy", |(_, n)| n)
    }

    /// The action named `s`, if any.
    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.iter().find(|(_, n)| *n == s).map(|(a, _)| *a)
    }
}

/// A parsed domain configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name`.
    pub name: String,
    /// `type` (or the deprecated `builder`).
    pub guest_type: GuestType,
    /// `memory`, in MiB: the RAM the guest starts with.
    pub memory_mib: u64,
    /// `maxmem`, in MiB, when given.
    pub maxmem_mib: Option<u64>,
    /// `vcpus`.
    pub vcpus: u32,
    /// `maxvcpus`, when given.
    pub maxvcpus: Option<u32>,
    /// `kernel`: the name of the boot module holding the kernel; with [`DomainConfig::firmware`]
    /// set instead, the firmware's module name.
    pub kernel: String,
    /// Whether [`DomainConfig::kernel`] names a firmware (`firmware_override` / `firmware`),
    /// entered through Xen's PVH entry on the platform of [`DomainConfig::guest_type`].
    pub firmware: bool,
    /// `ramdisk`: the name of the boot module holding the initrd.
    pub ramdisk: Option<String>,
    /// The kernel command line: `cmdline`, else `root=<root> <extra>` as `xl` builds it.
    pub cmdline: String,
    /// `vif`: the network interfaces.
    pub vifs: Vec<VifSpec>,
    /// `iommu`: honour the guest's memory types (xenolith-specific).
    pub iommu: bool,
    /// `event_channels`: the highest event-channel port the guest may use.
    pub event_channels: u32,
    /// `on_crash`.
    pub on_crash: Action,
    /// `on_poweroff`.
    pub on_poweroff: Action,
    /// `on_reboot`.
    pub on_reboot: Action,
    /// `on_watchdog`.
    pub on_watchdog: Action,
    /// Keys that were set but are not interpreted, in order of appearance.
    pub unknown_keys: Vec<String>,
}

impl DomainConfig {
    /// The memory the guest may balloon up to, in MiB (`maxmem`, else `memory`).
    pub fn max_memory_mib(&self) -> u64 {
        self.maxmem_mib.unwrap_or(self.memory_mib)
    }

    /// Whether the domain has the PVH platform (`type = "pvh"`).
    pub fn is_pvh(&self) -> bool {
        self.guest_type == GuestType::Pvh
    }

    /// Whether the boot image is entered through Xen's PVH entry note: a PVH domain's
    /// kernel, or a firmware on either platform.
    pub fn pvh_entry(&self) -> bool {
        self.firmware || self.is_pvh()
    }
}

/// The keys [`parse`] interprets.
pub const KNOWN_KEYS: &[&str] = &[
    "name",
    "type",
    "builder",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "kernel",
    "firmware",
    "firmware_override",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "vif",
    "iommu",
    "event_channels",
    "on_crash",
    "on_poweroff",
    "on_reboot",
    "on_watchdog",
];

/// The 1-based line of the statement that last set `key` in `text`, if any (and if the text
/// parses): where a tool's error about that key's value points.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let settings = parse_settings(text).ok()?;
    settings.iter().rev().find(|s| s.key == key).map(|s| s.line)
}

/// Parses a configuration.
///
/// When the text has several problems, the one on the earliest line is reported; missing
/// required keys (`name`, `type`, `kernel` or `firmware`, in that order) are reported only when every
/// present value is valid.
pub fn parse(text: &str) -> Result<DomainConfig, ConfigError> {
    let settings = parse_settings(text)?;
    let cfg = Settings(&settings);

    let name = domain_name(&cfg);
    let guest_type = guest_type(&cfg);
    let memory = memory(&cfg);
    let vcpus = vcpus(&cfg);
    let kernel = kernel(&cfg);
    let ramdisk = cfg.string("ramdisk");
    let cmdline = command_line(&cfg);
    let vifs = vifs(&cfg);
    let iommu = iommu(&cfg);
    let event_channels = cfg.integer("event_channels", 1, MAX_EVENT_CHANNELS.into());
    let on_crash = cfg.action("on_crash", Action::Destroy);
    let on_poweroff = cfg.action("on_poweroff", Action::Destroy);
    let on_reboot = cfg.action("on_reboot", Action::Restart);
    let on_watchdog = cfg.action("on_watchdog", Action::Destroy);

    let errors = [
        name.as_ref().err(),
        guest_type.as_ref().err(),
        memory.as_ref().err(),
        vcpus.as_ref().err(),
        kernel.as_ref().err(),
        ramdisk.as_ref().err(),
        cmdline.as_ref().err(),
        vifs.as_ref().err(),
        iommu.as_ref().err(),
        event_channels.as_ref().err(),
        on_crash.as_ref().err(),
        on_poweroff.as_ref().err(),
        on_reboot.as_ref().err(),
        on_watchdog.as_ref().err(),
    ];
    // Earliest line first; line 0 (a missing key) after every located error.
    let first = errors
        .iter()
        .flatten()
        .min_by_key(|e| if e.line == 0 { usize::MAX } else { e.line });
    if let Some(e) = first {
        return Err((*e).clone());
    }

    let (memory_mib, maxmem_mib) = memory?;
    let (vcpus, maxvcpus) = vcpus?;
    let unknown_keys = settings
        .iter()
        .filter(|s| !KNOWN_KEYS.contains(&s.key.as_str()))
        .map(|s| s.key.clone())
        .collect();
    Ok(DomainConfig {
        name: name?,
        guest_type: guest_type?,
        memory_mib,
        maxmem_mib,
        vcpus,
        maxvcpus,
        kernel: kernel.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
        firmware: kernel?.1,
        ramdisk: ramdisk?,
        cmdline: cmdline?,
        vifs: vifs?,
        iommu: iommu?,
        event_channels: event_channels?.map_or(DEFAULT_EVENT_CHANNELS, |v| v as u32),
        on_crash: on_crash?,
        on_poweroff: on_poweroff?,
        on_reboot: on_reboot?,
        on_watchdog: on_watchdog?,
        unknown_keys,
    })
}

fn domain_name(cfg: &Settings<'_>) -> Result<String, ConfigError> {
    let name = cfg.string("name")?.ok_or(missing("name"))?;
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(cfg.error(
            "name",
            ErrorKind::InvalidChoice {
                found: format!("{name:?}"),
                expected: "a non-empty name without control characters",
            },
        ));
    }
    Ok(name)
}

/// Xen's built-in firmware names (`firmware = "..."`), which name no boot module here.
const BUILTIN_FIRMWARE: [&str; 7] = [
    "bios", "uefi", "seabios", "rombios", "ovmf", "pvgrub32", "pvgrub64",
];

/// The boot image: (`kernel`, false), or (the firmware's module, true).
fn kernel(cfg: &Settings<'_>) -> Result<(String, bool), ConfigError> {
    let module = |key: &'static str| -> Result<Option<String>, ConfigError> {
        match cfg.string(key)? {
            Some(m) if m.is_empty() => Err(cfg.error(
                key,
                ErrorKind::InvalidChoice {
                    found: "\"\"".to_string(),
                    expected: "the name of a boot module",
                },
            )),
            Some(m) if key != "kernel" && BUILTIN_FIRMWARE.contains(&m.as_str()) => {
                Err(cfg.error(
                    key,
                    ErrorKind::Unsupported {
                        what: format!("Xen's built-in firmware {m:?} (name a boot module holding an ELF image with a PVH entry note)"),
                    },
                ))
            }
            other => Ok(other),
        }
    };
    let kernel = module("kernel")?;
    let firmware = match module("firmware_override")? {
        Some(f) => Some(("firmware_override", f)),
        None => module("firmware")?.map(|f| ("firmware", f)),
    };
    match (kernel, firmware) {
        (Some(_), Some((key, _))) => Err(cfg.error(
            key,
            ErrorKind::Conflict {
                detail: format!("{key} and kernel both name a boot image; give one"),
            },
        )),
        (Some(k), None) => Ok((k, false)),
        (None, Some((_, f))) => Ok((f, true)),
        (None, None) => Err(missing("kernel")),
    }
}

/// `(memory, maxmem)` in MiB.
fn memory(cfg: &Settings<'_>) -> Result<(u64, Option<u64>), ConfigError> {
    let memory = cfg.integer("memory", 1, MAX_MEMORY_MIB)?;
    let maxmem = cfg.integer("maxmem", 1, MAX_MEMORY_MIB)?;
    if let (Some(mem), Some(max)) = (memory, maxmem) {
        if max < mem {
            return Err(cfg.error(
                "maxmem",
                ErrorKind::Conflict {
                    detail: format!("maxmem ({max}) must not be less than memory ({mem})"),
                },
            ));
        }
    }
    Ok((memory.or(maxmem).unwrap_or(DEFAULT_MEMORY_MIB), maxmem))
}

/// `(vcpus, maxvcpus)`.
fn vcpus(cfg: &Settings<'_>) -> Result<(u32, Option<u32>), ConfigError> {
    let max = u64::from(MAX_VCPUS);
    // Both values are at most MAX_VCPUS, so they fit in u32.
    let vcpus = cfg.integer("vcpus", 1, max)?.unwrap_or(1) as u32;
    let maxvcpus = cfg.integer("maxvcpus", 1, max)?.map(|v| v as u32);
    if let Some(m) = maxvcpus {
        if m < vcpus {
            return Err(cfg.error(
                "maxvcpus",
                ErrorKind::Conflict {
                    detail: format!("maxvcpus ({m}) must not be less than vcpus ({vcpus})"),
                },
            ));
        }
    }
    Ok((vcpus, maxvcpus))
}

fn vifs(cfg: &Settings<'_>) -> Result<Vec<VifSpec>, ConfigError> {
    let Some(items) = cfg.list("vif")? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, raw)| vif::parse_vif(i, raw).map_err(|k| cfg.error("vif", k)))
        .collect()
}

fn iommu(cfg: &Settings<'_>) -> Result<bool, ConfigError> {
    let Some(s) = cfg.get("iommu") else {
        return Ok(false);
    };
    match &s.value {
        Value::Atom(a) if a.text == "0" => Ok(false),
        Value::Atom(a) if a.text == "1" => Ok(true),
        v => Err(cfg.error(
            "iommu",
            ErrorKind::InvalidChoice {
                found: v.describe(),
                expected: "0 or 1",
            },
        )),
    }
}

fn missing(key: &'static str) -> ConfigError {
    ConfigError {
        line: 0,
        key: Some(key.to_string()),
        kind: ErrorKind::MissingKey(key),
    }
}

fn guest_type(cfg: &Settings<'_>) -> Result<GuestType, ConfigError> {
    let ty = match cfg.string("type")? {
        None => None,
        Some(t) => Some(match t.as_str() {
            "hvm" => GuestType::Hvm,
            "pvh" => GuestType::Pvh,
            "pv" => {
                return Err(cfg.error(
                    "type",
                    ErrorKind::Unsupported {
                        what: "PV guests (type = \"pv\")".to_string(),
                    },
                ))
            }
            _ => {
                return Err(cfg.error(
                    "type",
                    ErrorKind::InvalidChoice {
                        found: format!("{t:?}"),
                        expected: "\"hvm\" or \"pvh\"",
                    },
                ))
            }
        }),
    };
    if let Some(b) = cfg.string("builder")? {
        match b.as_str() {
            "hvm" => {}
            "generic" => {
                return Err(cfg.error(
                    "builder",
                    ErrorKind::Unsupported {
                        what: "PV guests (builder = \"generic\")".to_string(),
                    },
                ))
            }
            _ => {
                return Err(cfg.error(
                    "builder",
                    ErrorKind::InvalidChoice {
                        found: format!("{b:?}"),
                        expected: "\"hvm\"",
                    },
                ))
            }
        }
        return match ty {
            None | Some(GuestType::Hvm) => Ok(GuestType::Hvm),
            Some(_) => Err(cfg.error(
                "builder",
                ErrorKind::Conflict {
                    detail: "builder = \"hvm\" contradicts type = \"pvh\"".to_string(),
                },
            )),
        };
    }
    ty.ok_or(missing("type"))
}

fn command_line(cfg: &Settings<'_>) -> Result<String, ConfigError> {
    let cmdline = cfg.string("cmdline")?;
    let root = cfg.string("root")?;
    let extra = cfg.string("extra")?;
    Ok(match (cmdline, root, extra) {
        (Some(c), _, _) => c,
        (None, Some(r), Some(e)) => format!("root={r} {e}"),
        (None, Some(r), None) => format!("root={r}"),
        (None, None, Some(e)) => e,
        (None, None, None) => String::new(),
    })
}

/// Typed access to the settings.
struct Settings<'a>(&'a [Setting]);

impl Settings<'_> {
    fn get(&self, key: &str) -> Option<&Setting> {
        self.0.iter().find(|s| s.key == key)
    }

    /// An error at the line of `key`'s setting.
    fn error(&self, key: &str, kind: ErrorKind) -> ConfigError {
        ConfigError {
            line: self.get(key).map_or(0, |s| s.line),
            key: Some(key.to_string()),
            kind,
        }
    }

    /// A single string (a bare number is taken as its text, as `xl` does).
    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::Atom(a) => Ok(Some(a.text.clone())),
                v => Err(self.error(
                    key,
                    ErrorKind::ExpectedString {
                        found: v.describe(),
                    },
                )),
            },
        }
    }

    /// A list of strings.
    fn list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::List(items) => Ok(Some(items.iter().map(|a| a.text.clone()).collect())),
                v => Err(self.error(
                    key,
                    ErrorKind::ExpectedList {
                        found: v.describe(),
                    },
                )),
            },
        }
    }

    /// An integer within `min..=max`.
    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(s) = self.get(key) else {
            return Ok(None);
        };
        if s.appended {
            return Err(self.error(key, ErrorKind::InvalidAppend));
        }
        let Value::Atom(a) = &s.value else {
            return Err(self.error(
                key,
                ErrorKind::ExpectedInteger {
                    found: s.value.describe(),
                },
            ));
        };
        let out_of_range = || {
            self.error(
                key,
                ErrorKind::OutOfRange {
                    value: a.text.clone(),
                    min,
                    max,
                },
            )
        };
        match parse_integer(&a.text) {
            Some(Ok(v)) if v >= 0 && (v as u64) >= min && (v as u64) <= max => Ok(Some(v as u64)),
            Some(_) => Err(out_of_range()),
            None => Err(self.error(
                key,
                ErrorKind::ExpectedInteger {
                    found: a.describe(),
                },
            )),
        }
    }

    /// An [`Action`], or `default` when absent.
    fn action(&self, key: &str, default: Action) -> Result<Action, ConfigError> {
        match self.string(key)? {
            None => Ok(default),
            Some(s) => Action::from_name(&s).ok_or_else(|| {
                self.error(
                    key,
                    ErrorKind::InvalidChoice {
                        found: format!("{s:?}"),
                        expected: "destroy, restart, rename-restart, preserve, \
                                   coredump-destroy, coredump-restart or soft-reset",
                    },
                )
            }),
        }
    }
}

/// Parses an integer as `strtol(s, .., 0)` would accept it, in full: optional sign, then
/// `0x`/`0X` hex, `0` octal or decimal digits. `None`: not an integer; `Some(Err(()))`: an
/// integer too large for `i64`.
fn parse_integer(s: &str) -> Option<Result<i64, ()>> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, h)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.chars() {
        let d = i64::from(c.to_digit(radix).unwrap_or(0));
        v = match v
            .checked_mul(i64::from(radix))
            .and_then(|v| v.checked_add(d))
        {
            Some(v) => v,
            None => return Some(Err(())),
        };
    }
    Some(Ok(if neg { -v } else { v }))
}
