//! The data types that describe a scenario.

use std::path::PathBuf;
use std::time::Duration;

/// The wall-clock limit of a scenario unless it sets its own (the runner's environment variable
/// `XENOLITH_TIMEOUT` overrides both).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One boot of the hypervisor with a set of domains, and what its serial log must show.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's name: used on the command line, in `build/<name>/` and in the verdict line.
    pub name: String,
    /// The domains, in order: the first becomes d1, the next d2, and so on.
    pub domains: Vec<DomainSpec>,
    /// Extra words for the hypervisor command line, after the runner's own `loglvl=info exit=...`.
    pub hv_cmdline: Vec<String>,
    /// The wall-clock limit for the whole boot.
    pub timeout: Duration,
    /// What the log must contain (and must not contain). [`crate::check`] adds the lines every
    /// scenario requires or forbids, see [`crate::check::standard_expectations`].
    pub expect: Vec<Expectation>,
    /// What is typed into the serial console, and when (empty: nothing; the runner then
    /// gives the emulator a file-backed port).
    pub input: Vec<TypedInput>,
}

/// Text typed into the serial console once a line has appeared in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedInput {
    /// The text to wait for, anywhere in the log (the steps are typed in order), e.g. a
    /// prompt.
    pub after: String,
    /// What is typed then.
    pub send: String,
}

impl Scenario {
    /// A scenario with no domains, no expectations and the default timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Scenario {
            name: name.into(),
            domains: Vec::new(),
            hv_cmdline: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            expect: Vec::new(),
            input: Vec::new(),
        }
    }

    /// Types `send` into the serial console once `after` is in the log and the steps
    /// before it were typed.
    pub fn type_after(mut self, after: impl Into<String>, send: impl Into<String>) -> Self {
        self.input.push(TypedInput {
            after: after.into(),
            send: send.into(),
        });
        self
    }

    /// Adds a domain (it becomes the next d<N>).
    pub fn domain(mut self, domain: DomainSpec) -> Self {
        self.domains.push(domain);
        self
    }

    /// Adds an expectation.
    pub fn expect(mut self, expectation: Expectation) -> Self {
        self.expect.push(expectation);
        self
    }

    /// Adds several expectations.
    pub fn expect_all(mut self, expectations: impl IntoIterator<Item = Expectation>) -> Self {
        self.expect.extend(expectations);
        self
    }

    /// Adds an extra hypervisor command-line word.
    pub fn hv_arg(mut self, word: impl Into<String>) -> Self {
        self.hv_cmdline.push(word.into());
        self
    }

    /// Sets the wall-clock limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The module name of domain `index`'s (0-based) configuration: `d1.cfg`, `d2.cfg`, ...
    pub fn config_module_name(index: usize) -> String {
        format!("d{}.cfg", index + 1)
    }
}

/// One domain: its configuration file and the module files that configuration names.
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// The configuration, in xl.cfg syntax (crate `domcfg`).
    pub config: String,
    /// The modules the configuration names (`kernel = "..."`, `ramdisk = "..."`). Modules with
    /// the same name in several domains are put on the ISO once.
    pub modules: Vec<Module>,
}

impl DomainSpec {
    /// A domain running the test guest (crate `test-guest`) in mode `mode` (`test=<mode>`), with
    /// 32 MiB and one vCPU; `iommu` adds `iommu = 1`.
    pub fn test_guest(name: &str, mode: &str, iommu: bool) -> Self {
        let mut config = format!(
            "name = \"{name}\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
             kernel = \"{TEST_GUEST_MODULE}\"\nextra = \"test={mode}\"\n"
        );
        if iommu {
            config.push_str("iommu = 1\n");
        }
        DomainSpec {
            config,
            modules: vec![Module {
                name: TEST_GUEST_MODULE.to_string(),
                source: ModuleSource::TestGuest,
            }],
        }
    }

    /// [`DomainSpec::test_guest`] as a PVH domain (`type = "pvh"`): the same ELF entered
    /// through its `XEN_ELFNOTE_PHYS32_ENTRY` in 32-bit protected mode with `hvm_start_info`.
    pub fn test_guest_pvh(name: &str, mode: &str) -> Self {
        let mut d = Self::test_guest(name, mode, false);
        d.config = d.config.replace("type = \"hvm\"", "type = \"pvh\"");
        d
    }

    /// [`DomainSpec::test_guest`] on the HVM platform entered as firmware: `firmware_override`
    /// names the test guest's ELF, which Xen enters through its PVH note.
    pub fn test_guest_firmware(name: &str, mode: &str) -> Self {
        let mut d = Self::test_guest(name, mode, false);
        d.config = d.config.replace("kernel = ", "firmware_override = ");
        d
    }

    /// [`DomainSpec::test_guest`] (without `iommu`) with one vif on the switch (MAC
    /// 00:16:3e:00:<domid>:00) that may send from IPv4 address `ip` only (`vif = [
    /// "bridge=xenbr0,ip=<ip>" ]`, the backend's antispoofing rule). `mode` may carry further
    /// command-line words after the mode (`"mac-spoof victim=1"`).
    pub fn test_guest_with_vif(name: &str, mode: &str, ip: &str) -> Self {
        let mut d = Self::test_guest(name, mode, false);
        d.config
            .push_str(&format!("vif = [ \"bridge=xenbr0,ip={ip}\" ]\n"));
        d
    }
}

impl DomainSpec {
    /// A Linux domain booting Debian's kernel (`vmlinux` ELF or the bzImage) with the project's
    /// initramfs and one vif on the switch (the toolstack gives it MAC 00:16:3e:00:<domid>:00);
    /// `extra` is appended to the kernel command line.
    pub fn linux(name: &str, memory_mib: u32, vcpus: u32, bzimage: bool, extra: &str) -> Self {
        let image = if bzimage {
            ("vmlinuz", GuestFile::BzImage)
        } else {
            ("vmlinux", GuestFile::Vmlinux)
        };
        Self::linux_as("hvm", image, name, memory_mib, vcpus, extra)
    }

    /// [`DomainSpec::linux`] as a PVH domain (`type = "pvh"`): Debian's `vmlinux` entered
    /// through its `XEN_ELFNOTE_PHYS32_ENTRY` with `hvm_start_info`.
    pub fn linux_pvh(name: &str, memory_mib: u32, vcpus: u32, extra: &str) -> Self {
        let image = ("vmlinux", GuestFile::Vmlinux);
        Self::linux_as("pvh", image, name, memory_mib, vcpus, extra)
    }

    fn linux_as(
        guest_type: &str,
        (kernel, file): (&str, GuestFile),
        name: &str,
        memory_mib: u32,
        vcpus: u32,
        extra: &str,
    ) -> Self {
        let config = format!(
            "name = \"{name}\"\ntype = \"{guest_type}\"\nmemory = {memory_mib}\nvcpus = {vcpus}\n\
             iommu = 1\nkernel = \"{kernel}\"\nramdisk = \"initramfs.cpio\"\n\
             extra = \"console=hvc0 quiet cryptomgr.notests rodata=off {extra}\"\n\
             vif = [ \"bridge=xenbr0\" ]\n"
        );
        DomainSpec {
            config,
            modules: vec![
                Module {
                    name: kernel.to_string(),
                    source: ModuleSource::Guest(file),
                },
                Module {
                    name: "initramfs.cpio".to_string(),
                    source: ModuleSource::Guest(GuestFile::Initramfs),
                },
            ],
        }
    }
}

/// The module name under which the test guest's ELF goes on the ISO.
pub const TEST_GUEST_MODULE: &str = "test-guest.elf";

/// A file passed to the hypervisor as a multiboot2 module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The module's name: its file name under `/boot/` and the first word of its command line.
    pub name: String,
    /// Where the runner gets the file from.
    pub source: ModuleSource,
}

/// Where a module's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// The test guest ELF that the runner builds (crate `test-guest`).
    TestGuest,
    /// A file, relative to the repository root unless absolute.
    File(PathBuf),
    /// A file of the Linux guest image that `tools` builds (Debian's kernel, initramfs).
    Guest(GuestFile),
}

/// The files of the Linux guest image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestFile {
    /// The uncompressed kernel ELF extracted from Debian's bzImage.
    Vmlinux,
    /// Debian's bzImage as shipped.
    BzImage,
    /// The initramfs: busybox, the netfront module and `guest/init`.
    Initramfs,
}

/// A check on a numbered capture group of a matching line, read as an unsigned number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumCheck {
    /// The group's value is greater than the number.
    Gt(usize, u64),
    /// The group's value equals the number.
    Eq(usize, u64),
    /// The two groups have equal values.
    GroupsEqual(usize, usize),
}

/// A line that must (or must not) appear in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// A regular expression (crate `regex` syntax) searched for in each line (unanchored).
    pub pattern: String,
    /// Numeric checks on the capture groups: a required line is found only where a line
    /// matches the pattern and passes all of them.
    pub checks: Vec<NumCheck>,
    /// A forbidden line: the log fails if any line matches.
    pub forbidden: bool,
}

impl Expectation {
    /// A required line.
    pub fn line(pattern: impl Into<String>) -> Self {
        Expectation {
            pattern: pattern.into(),
            checks: Vec::new(),
            forbidden: false,
        }
    }

    /// A forbidden line.
    pub fn forbid(pattern: impl Into<String>) -> Self {
        Expectation {
            pattern: pattern.into(),
            checks: Vec::new(),
            forbidden: true,
        }
    }

    /// Adds a numeric check on the capture groups.
    pub fn with(mut self, check: NumCheck) -> Self {
        self.checks.push(check);
        self
    }
}
