//! Domain lifecycle: build a domain from its configuration, run its vCPUs'
//! VM entries and exits (the scheduler in [`crate::machine`] picks which),
//! then audit its EPT and tear it down.

use crate::cpu;
use crate::devices::{Devices, IoResult};
use crate::host::KernelHost;
use crate::ledger::{self, Bucket};
use crate::vcpu::{RunState, Vcpu, VmcsConfig};
use crate::vmx::{self, EntryResult, VmxCaps};
use crate::{kprintln, mem, Module};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hypercalls::domain::ShutdownReason;
use hypercalls::guest_mem::{write_gpa, PagingState};
use hypercalls::{Domain, Host, VcpuContext};
use p2m::{Mapping, P2m, P2mConfig, P2mType};
use x86::vmx::vmcs::{control, guest, ro};

const MIB: u64 = 1 << 20;
const SUPERPAGE: u64 = 2 * MIB;
/// Guest RAM ends below the PCI hole.
const RAM_MAX: u64 = 0xF000_0000;

/// How a domain's run ended.
pub enum Outcome {
    /// The guest asked (SCHEDOP_shutdown or ACPI S5).
    Shutdown(ShutdownReason),
    /// The hypervisor stopped it.
    Crashed(String),
}

/// A domain while it runs: the hypercall-visible state, its vCPUs and devices.
pub struct DomainRun<'a> {
    /// Hypercall-visible state.
    pub dom: Domain,
    /// The vCPUs.
    pub vcpus: Vec<Vcpu>,
    /// Emulated platform devices.
    pub devices: Devices,
    caps: &'a VmxCaps,
    /// VM exits by basic exit reason (for the debug log and benchmarks).
    exit_counts: [u64; 80],
    ram_hpa: u64,
    msr_bitmap: u64,
}

/// Builds the domain described by `cfg_module`; errors are logged and give `None`.
pub fn build_domain<'a>(
    domid: u16,
    cfg_module: &Module,
    modules: &[Module],
    caps: &'a VmxCaps,
    host_mtrr: &p2m::MtrrState,
    host: &mut KernelHost,
) -> Option<(DomainRun<'a>, domcfg::DomainConfig)> {
    let text = core::str::from_utf8(cfg_module.bytes()).unwrap_or("");
    let cfg = match domcfg::parse(text) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::error!(
                "domain {domid}: config {}: {e}; domain not created",
                cfg_module.name
            );
            return None;
        }
    };
    for key in &cfg.unknown_keys {
        log::warn!(
            "domain {domid}: config {}: ignoring unknown key '{key}'",
            cfg_module.name
        );
    }
    let find = |name: &str, what: &str| {
        modules
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("{what} '{name}' is not among the boot modules"))
    };
    let images = find(&cfg.kernel, image_key(&cfg)).and_then(|k| {
        let rd = match &cfg.ramdisk {
            Some(r) => Some(find(r, "ramdisk")?),
            None => None,
        };
        Ok((k, rd))
    });
    let (image, ramdisk) = match images {
        Ok(v) => v,
        Err(e) => {
            log::error!("domain {domid} ({}): {e}", cfg.name);
            return None;
        }
    };
    match build(domid, &cfg, image, ramdisk, caps, host_mtrr, host) {
        Ok(run) => Some((run, cfg)),
        Err(e) => {
            log::error!("domain {domid} ({}): build failed: {e}", cfg.name);
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build<'a>(
    domid: u16,
    cfg: &domcfg::DomainConfig,
    image: &Module,
    ramdisk: Option<&Module>,
    caps: &'a VmxCaps,
    host_mtrr: &p2m::MtrrState,
    host: &mut KernelHost,
) -> Result<DomainRun<'a>, String> {
    let ram_bytes = cfg.memory_mib * MIB;
    if ram_bytes > RAM_MAX {
        return Err(format!(
            "memory = {} MiB is more than the {} MiB below the PCI hole",
            cfg.memory_mib,
            RAM_MAX / MIB
        ));
    }
    let budget = heap_budget(cfg);
    mem::reserve_heap(domid, budget.total()).map_err(|e| format!("{e}: {budget}"))?;
    log::info!("domain {domid} ({}): heap budget {budget}", cfg.name);
    let built = build_reserved(domid, cfg, image, ramdisk, caps, host_mtrr, host);
    if built.is_err() {
        mem::release_heap(domid);
    }
    built
}

/// What the domain may make the hypervisor hold on its heap (see `hypercalls::budget`).
fn heap_budget(cfg: &domcfg::DomainConfig) -> hypercalls::budget::HeapBudget {
    let vif = netback::VifConfig::new(cfg.vcpus).memory_bound() as u64
        + netswitch::PortConfig::large().queue_bytes as u64;
    hypercalls::budget::HeapBudget::for_domain(
        cfg.vcpus,
        cfg.event_channels,
        p2m::DEFAULT_MAX_EXTENTS,
        crate::store::DOMAIN_HEAP_BYTES as u64,
        cfg.vifs.len() as u64 * vif,
    )
}

#[allow(clippy::too_many_arguments)]
fn build_reserved<'a>(
    domid: u16,
    cfg: &domcfg::DomainConfig,
    image: &Module,
    ramdisk: Option<&Module>,
    caps: &'a VmxCaps,
    host_mtrr: &p2m::MtrrState,
    host: &mut KernelHost,
) -> Result<DomainRun<'a>, String> {
    let ram_bytes = cfg.memory_mib * MIB;
    let kernel = crate::guest_loader::parse_image(image.bytes(), ram_bytes)
        .map_err(|e| format!("{} '{}': {e}", image_key(cfg), cfg.kernel))?;
    let ram_pages = ram_bytes / 4096;
    let ram_hpa = mem::alloc_frames(ram_pages as usize, SUPERPAGE)
        .ok_or_else(|| format!("not enough host memory for {} MiB", cfg.memory_mib))?;
    let p2m_cfg = P2mConfig {
        honour_guest_mem_types: cfg.iommu,
        host_mtrr: host_mtrr.clone(),
        ept_2m: caps.ept_2m(),
        ept_1g: caps.ept_1g(),
        max_extents: p2m::DEFAULT_MAX_EXTENTS,
        max_tables: P2mConfig::max_tables_for(ram_pages),
    };
    let p2m = P2m::new(p2m_cfg, host).map_err(|e| {
        mem::free_frames(ram_hpa, ram_pages as usize);
        format!("p2m: {e}")
    })?;
    let mut dom = match Domain::new(domid, cfg.name.clone(), p2m, ram_pages, cfg.vcpus, host) {
        Ok(dom) => dom,
        Err(e) => {
            mem::free_frames(ram_hpa, ram_pages as usize);
            return Err(format!("domain state: {e:?}"));
        }
    };
    dom.evtchn.set_max_port(cfg.event_channels);
    if let Err(e) = toolstack_tree(&dom, cfg) {
        log::warn!("domain {domid}: xenstore tree: {e:?}");
    }
    let Some(msr_bitmap) = mem::alloc_frame() else {
        dom.destroy(host);
        mem::free_frames(ram_hpa, ram_pages as usize);
        return Err("no memory for the MSR bitmap".into());
    };
    setup_msr_bitmap(msr_bitmap);
    let mut run = DomainRun {
        dom,
        vcpus: Vec::new(),
        devices: Devices::new(cfg.vcpus, cfg.is_pvh()),
        caps,
        exit_counts: [0; 80],
        ram_hpa,
        msr_bitmap,
    };
    let boot = crate::guest_loader::BootSpec {
        cmdline: &cfg.cmdline,
        ramdisk: ramdisk.map(|m| m.bytes()),
        nr_vcpus: cfg.vcpus,
        pvh_entry: cfg.pvh_entry(),
        pvh_platform: cfg.is_pvh(),
    };
    let populated = map_ram(&mut run.dom, ram_hpa, host).and_then(|()| {
        crate::guest_loader::load(&mut run.dom, &kernel, image.bytes(), &boot, host)
    });
    let entry = match populated {
        Ok(entry) => entry,
        Err(e) => {
            run.teardown_silently(host);
            return Err(format!("{} '{}': {e}", image_key(cfg), cfg.kernel));
        }
    };
    let vcfg = VmcsConfig {
        eptp: run.dom.p2m.eptp(),
        msr_bitmap,
        pause_exiting: cfg.vcpus > 1 && caps.proc_may(vmx::PROC_PAUSE_EXITING),
    };
    for id in 0..cfg.vcpus {
        match Vcpu::new(id, caps, &vcfg, entry) {
            Some(v) => run.vcpus.push(v),
            None => {
                run.teardown_silently(host);
                return Err(format!("cannot create vCPU {id}"));
            }
        }
    }
    if crate::host::CONSOLE_UNLIMITED.load(core::sync::atomic::Ordering::Relaxed) {
        run.dom.console.limit = hypercalls::console::RateLimit::new(0, 0);
    }
    // Vcpu::new leaves each new VMCS current; the scheduler loads the one it runs.
    run.dom.ept_dirty = false;
    log::info!(
        "domain {domid} ({}): {} {} MiB, {} vCPU, iommu={}, {} {} ({}) entry {}, cmdline '{}'",
        cfg.name,
        match cfg.guest_type {
            domcfg::GuestType::Hvm => "HVM",
            domcfg::GuestType::Pvh => "PVH",
        },
        cfg.memory_mib,
        cfg.vcpus,
        cfg.iommu as u8,
        image_key(cfg),
        cfg.kernel,
        kernel.kind(),
        match entry {
            crate::vcpu::BootEntry::Long64 { rip, .. } => format!("{rip:#x} (64-bit)"),
            crate::vcpu::BootEntry::Pvh32 { eip, .. } => format!("{eip:#x} (PVH, 32-bit)"),
        },
        cfg.cmdline
    );
    Ok(run)
}

/// The config key that named the boot image, for messages.
fn image_key(cfg: &domcfg::DomainConfig) -> &'static str {
    if cfg.firmware {
        "firmware"
    } else {
        "kernel"
    }
}

/// Writes what a Xen toolstack writes into xenstore for a new domU and
/// readies its store ring.
fn toolstack_tree(dom: &Domain, cfg: &domcfg::DomainConfig) -> Result<(), xenstore::XsError> {
    use xenstore::toolstack::{self, VifSpec};
    let vifs: Vec<VifSpec> = cfg
        .vifs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            VifSpec::new(
                v.mac
                    .unwrap_or([0x00, 0x16, 0x3e, 0, dom.domid as u8, i as u8]),
            )
        })
        .collect();
    let spec = toolstack::DomainSpec {
        domid: dom.domid,
        name: &cfg.name,
        uuid: None,
        vcpus: cfg.vcpus,
        memory_kib: None,
        store_port: dom.store_port.unwrap_or(0),
        store_gfn: hypercalls::hvm::STORE_GFN,
        console_port: dom.console_port.unwrap_or(0),
        console_gfn: hypercalls::hvm::CONSOLE_GFN,
        vifs: &vifs,
        vif_backend_features: toolstack::DEFAULT_VIF_BACKEND_FEATURES,
    };
    xenstore::init_ring(&mut crate::store::PhysRing(dom.store_mfn * 4096));
    crate::store::with(|xs| {
        crate::store::introduce(xs, dom.domid)?;
        toolstack::populate_domain(xs, &spec)
    })
}

/// Maps guest RAM `[0, ram_pages)` to the contiguous host block at `ram_hpa`.
fn map_ram(dom: &mut Domain, ram_hpa: u64, host: &mut KernelHost) -> Result<(), String> {
    let ram = Mapping {
        p2m_type: P2mType::RamRw,
        owner: dom.domid,
        special: false,
    };
    let ram_pages = dom.ram_pages;
    let mut gfn = 0;
    while gfn < ram_pages {
        let order = if ram_pages - gfn >= 512 && gfn % 512 == 0 {
            9
        } else {
            0
        };
        dom.p2m
            .set_entry(host, gfn, ram_hpa / 4096 + gfn, order, Some(ram))
            .map_err(|e| format!("p2m: {e}"))?;
        gfn += 1 << order;
    }
    Ok(())
}

/// MSRs the guest reads and writes without an exit. Their state is in the
/// VMCS or switched per vCPU by [`cpu::SwitchedState`].
const PASSTHROUGH_MSRS: [u32; 11] = [
    0x174,       // IA32_SYSENTER_CS
    0x175,       // IA32_SYSENTER_ESP
    0x176,       // IA32_SYSENTER_EIP
    0xC000_0081, // STAR
    0xC000_0082, // LSTAR
    0xC000_0083, // CSTAR
    0xC000_0084, // SFMASK
    0xC000_0100, // FS_BASE
    0xC000_0101, // GS_BASE
    0xC000_0102, // KERNEL_GS_BASE
    0xC000_0103, // TSC_AUX (RDTSCP and RDPID read it)
];

fn setup_msr_bitmap(page: u64) {
    let mut bitmap = [0xFFu8; 4096];
    for msr in PASSTHROUGH_MSRS {
        let (base, index) = if msr >= 0xC000_0000 {
            (1024, msr - 0xC000_0000)
        } else {
            (0, msr)
        };
        for half in [0, 2048] {
            bitmap[half + base + (index / 8) as usize] &= !(1 << (index % 8));
        }
    }
    // SAFETY: `page` is a fresh frame owned by this domain, identity-mapped.
    unsafe { core::ptr::copy_nonoverlapping(bitmap.as_ptr(), page as *mut u8, 4096) };
}

/// Exit reasons (Intel SDM vol. 3, appendix C).
mod reason {
    pub const EXCEPTION_NMI: u64 = 0;
    pub const EXTERNAL_INTERRUPT: u64 = 1;
    pub const TRIPLE_FAULT: u64 = 2;
    pub const INIT_SIGNAL: u64 = 3;
    pub const SIPI: u64 = 4;
    pub const INTERRUPT_WINDOW: u64 = 7;
    pub const CR_ACCESS: u64 = 28;
    pub const CPUID: u64 = 10;
    pub const HLT: u64 = 12;
    pub const INVLPG: u64 = 14;
    pub const RDTSC: u64 = 16;
    pub const VMCALL: u64 = 18;
    pub const IO_INSTRUCTION: u64 = 30;
    pub const RDMSR: u64 = 31;
    pub const WRMSR: u64 = 32;
    pub const INVALID_GUEST_STATE: u64 = 33;
    pub const MSR_LOADING: u64 = 34;
    pub const PAUSE: u64 = 40;
    pub const EPT_VIOLATION: u64 = 48;
    pub const EPT_MISCONFIG: u64 = 49;
    pub const PREEMPTION_TIMER: u64 = 52;
    pub const XSETBV: u64 = 55;
    pub const GETSEC: u64 = 11;
    pub const INVD: u64 = 13;
    pub const MWAIT: u64 = 36;
    pub const MONITOR: u64 = 39;
    /// VMCLEAR, VMLAUNCH, VMPTRLD, VMPTRST, VMREAD, VMRESUME, VMWRITE, VMXOFF, VMXON.
    pub const VMX_INSTRUCTIONS: core::ops::RangeInclusive<u64> = 19..=27;
    pub const INVEPT: u64 = 50;
    pub const INVVPID: u64 = 53;
    pub const VMFUNC: u64 = 59;
}

/// What the exit handler asks the scheduler to do next.
pub enum Next {
    /// Keep running this vCPU.
    Continue,
    /// Let the other vCPUs run (slice over, PAUSE, HLT).
    Yield,
    /// The domain is over.
    End(Outcome),
}

impl DomainRun<'_> {
    /// Deadline (TSC) of the earliest timer of vCPU `i`.
    pub fn deadline(&self, i: usize) -> Option<u64> {
        // Single-shot and periodic timers, and a SCHEDOP_poll timeout.
        let xen = self
            .dom
            .next_deadline(i as u32)
            .map(|ns| self.dom.time.tsc(ns));
        let lapic = self.vcpus[i].lapic.next_timer_deadline_tsc();
        match (xen, lapic) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn fire_timers(&mut self, host: &mut KernelHost, now: u64) {
        let now_ns = self.dom.time.ns(now);
        hypercalls::hvm::poll_timers(&mut self.dom, host, now_ns);
        for v in &mut self.vcpus {
            v.lapic.poll_timer(now);
        }
    }

    /// Whether vCPU `i` has an interrupt to take.
    fn has_interrupt(&self, host: &KernelHost, i: usize) -> bool {
        self.vcpus[i].lapic.highest_deliverable().is_some()
            || (self.dom.callback_vector().is_some() && self.dom.upcall_pending(host, i as u32))
    }

    /// Makes halted vCPUs runnable, and boosted: after HLT on an interrupt; after
    /// SCHEDOP_block or SCHEDOP_poll when the hypercall layer says so (an
    /// upcall, a polled port pending, or the poll's timeout). Returns whether
    /// it woke one.
    pub fn wake_halted(&mut self, host: &KernelHost) -> bool {
        let mut woke = false;
        let now_ns = self.dom.time.ns(cpu::rdtsc());
        for i in 0..self.vcpus.len() {
            if self.vcpus[i].state != RunState::Halted {
                continue;
            }
            let x = &self.dom.vcpus[i];
            let wake = if x.blocked || x.polling {
                self.dom.should_wake(host, i as u32, now_ns)
                    || self.vcpus[i].lapic.highest_deliverable().is_some()
            } else {
                self.has_interrupt(host, i)
            };
            if wake {
                self.vcpus[i].state = RunState::Runnable;
                self.vcpus[i].boosted = true;
                self.dom.wake(i as u32);
                woke = true;
            }
        }
        for i in 0..self.vcpus.len() {
            if self.vcpus[i].state == RunState::WaitForSipi && self.devices.sipi_pending(i) {
                self.vcpus[i].state = RunState::Runnable;
            }
        }
        woke
    }

    /// VM exits taken by all vCPUs so far.
    pub fn exits(&self) -> u64 {
        self.vcpus.iter().map(|v| v.exits).sum()
    }

    /// Whether no vCPU can ever run again (all down, or waiting for a SIPI
    /// nobody will send).
    pub fn is_dead(&self) -> bool {
        self.vcpus
            .iter()
            .all(|v| matches!(v.state, RunState::Down | RunState::WaitForSipi))
    }

    /// Lets the halted, current vCPU `i` sit in the HLT activity state for
    /// `ticks` (an emulator fast-forwards a halted CPU); Err if the entry failed.
    pub fn halt_until(&mut self, i: usize, ticks: u64) -> Result<(), Outcome> {
        vmx::vmwrite(guest::ACTIVITY_STATE, 1);
        self.arm_timer(ticks);
        let result = self.enter(i, true);
        vmx::vmwrite(guest::ACTIVITY_STATE, 0);
        result?;
        let basic = vmx::vmread(ro::EXIT_REASON) & 0xFFFF;
        let nmi = basic == reason::EXCEPTION_NMI
            && (vmx::vmread(ro::VMEXIT_INTERRUPTION_INFO) >> 8) & 7 == 2;
        if nmi {
            crate::idt::handle_nmi_exit();
        } else if basic != reason::PREEMPTION_TIMER && basic != reason::EXTERNAL_INTERRUPT {
            log::warn!("d{} vCPU {i}: exit {basic} while halted", self.dom.domid);
        }
        Ok(())
    }

    fn arm_timer(&self, ticks: u64) {
        let rate = self.caps.preemption_timer_rate().min(31);
        vmx::arm_preemption_timer((ticks >> rate).clamp(1, u32::MAX as u64) as u32);
    }

    /// VMLAUNCH/VMRESUME of the current vCPU `i`; Err if the entry failed.
    fn enter(&mut self, i: usize, halted: bool) -> Result<(), Outcome> {
        let domid = self.dom.domid;
        let v = &mut self.vcpus[i];
        let launched = v.launched;
        ledger::set(if halted {
            Bucket::Halted(domid)
        } else {
            Bucket::Busy(domid)
        });
        let entry = vmx::enter(&mut v.regs, launched);
        let v = &mut self.vcpus[i];
        match entry {
            EntryResult::Exit => {}
            EntryResult::FailInvalid => {
                return Err(Outcome::Crashed("VM entry failed: no current VMCS".into()))
            }
            EntryResult::FailValid => {
                return Err(Outcome::Crashed(format!(
                    "vCPU {i}: VM entry failed: VM-instruction error {} ({}); {}",
                    vmx::vm_instruction_error(),
                    vm_instruction_error_name(vmx::vm_instruction_error()),
                    guest_state_summary()
                )))
            }
        }
        v.launched = true;
        v.exits += 1;
        let exit_reason = vmx::vmread(ro::EXIT_REASON);
        ledger::set(Bucket::Exit(domid, exit_reason as u16));
        if exit_reason & (1 << 31) != 0 {
            let basic = exit_reason & 0xFFFF;
            let what = match basic {
                reason::INVALID_GUEST_STATE => "invalid guest state",
                reason::MSR_LOADING => "MSR loading",
                _ => "machine check or other",
            };
            return Err(Outcome::Crashed(format!(
                "vCPU {i}: VM entry failed: exit reason {basic} ({what}), qualification {:#x}; {}",
                vmx::vmread(ro::EXIT_QUALIFICATION),
                guest_state_summary()
            )));
        }
        // An event whose delivery the exit interrupted is delivered again.
        let idt = vmx::vmread(ro::IDT_VECTORING_INFO);
        if idt & (1 << 31) != 0 {
            vmx::vmwrite(control::VMENTRY_INTERRUPTION_INFO_FIELD, idt & !(1 << 12));
            if idt & (1 << 11) != 0 {
                vmx::vmwrite(
                    control::VMENTRY_EXCEPTION_ERR_CODE,
                    vmx::vmread(ro::IDT_VECTORING_ERR_CODE),
                );
            }
            vmx::vmwrite(
                control::VMENTRY_INSTRUCTION_LEN,
                vmx::vmread(ro::VMEXIT_INSTRUCTION_LEN),
            );
        }
        Ok(())
    }

    /// Injects the highest pending interrupt of vCPU `i` if it can take one
    /// now, else asks for an exit as soon as it can.
    fn inject_interrupts(&mut self, host: &KernelHost, i: usize) {
        if vmx::vmread(control::VMENTRY_INTERRUPTION_INFO_FIELD) & (1 << 31) != 0 {
            return; // an event is already being injected
        }
        let upcall = self
            .dom
            .callback_vector()
            .filter(|_| self.dom.upcall_pending(host, i as u32));
        let lapic = self.vcpus[i].lapic.highest_deliverable();
        let Some(vector) = upcall.or(lapic) else {
            vmx::set_proc_controls(vmx::PROC_INTERRUPT_WINDOW_EXITING, false);
            return;
        };
        let open = vmx::vmread(guest::RFLAGS) & (1 << 9) != 0
            && vmx::vmread(guest::INTERRUPTIBILITY_STATE) & 3 == 0;
        if open {
            vmx::vmwrite(
                control::VMENTRY_INTERRUPTION_INFO_FIELD,
                vector as u64 | (1 << 31),
            );
            if upcall.is_none() {
                self.vcpus[i].lapic.start_service(vector);
            }
            vmx::set_proc_controls(vmx::PROC_INTERRUPT_WINDOW_EXITING, false);
        } else {
            vmx::set_proc_controls(vmx::PROC_INTERRUPT_WINDOW_EXITING, true);
        }
    }

    /// One VM entry and exit of the current vCPU `i`.
    pub fn run_once(&mut self, i: usize, slice_end: u64, host: &mut KernelHost) -> Next {
        crate::vcpu::sync_ia32e_mode(self.caps);
        self.inject_interrupts(host, i);
        let now = cpu::rdtsc();
        let until = self.deadline(i).map_or(slice_end, |d| d.min(slice_end));
        let profile = ledger::profile_period();
        let sample_at = profile.map_or(until, |period| until.min(now + period));
        self.arm_timer(sample_at.saturating_sub(now));
        if let Err(outcome) = self.enter(i, false) {
            return Next::End(outcome);
        }
        let basic = vmx::vmread(ro::EXIT_REASON) & 0xFFFF;
        if profile.is_some() && basic == reason::PREEMPTION_TIMER {
            ledger::sample(self.dom.domid, vmx::guest_rip());
            if cpu::rdtsc() < until {
                // A sampling tick, not the slice's end or a timer: keep running.
                return Next::Continue;
            }
        }
        if let Some(c) = self.exit_counts.get_mut(basic as usize) {
            *c += 1;
        }
        let next = self.handle_exit(i, basic, host);
        if self.dom.ept_dirty {
            vmx::invept(self.caps, self.dom.p2m.eptp());
            self.dom.ept_dirty = false;
        }
        next
    }

    /// Reports how the domain ended, audits its EPT and frees it.
    pub fn teardown(mut self, outcome: Outcome, host: &mut KernelHost) {
        let domid = self.dom.domid;
        self.dom
            .console
            .flush(|line| host.console_line(domid, line));
        let exits: u64 = self.vcpus.iter().map(|v| v.exits).sum();
        let (busy, halted) = ledger::guest_ticks(domid);
        log::debug!("domain {domid}: {exits} VM exits; tsc in guest {busy} busy, {halted} halted");
        for (r, &n) in self.exit_counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            log::debug!("domain {domid}: exit reason {r}: {n}");
        }
        match &outcome {
            Outcome::Shutdown(r) => kprintln!(
                "xenolith: domain {domid} ({}) shut down: {}",
                self.dom.name,
                r.name()
            ),
            Outcome::Crashed(why) => {
                kprintln!(
                    "xenolith: domain {domid} ({}) crashed: {why}",
                    self.dom.name
                )
            }
        }
        let report = p2m::audit(host, &self.dom.p2m);
        kprintln!(
            "xenolith: p2m audit d{domid}: {} special pages WB+ipat, {} leaves, {} violations",
            report.special_wb_ipat,
            report.leaves,
            report.violations
        );
        crate::store::with(|xs| crate::store::release(xs, domid));
        self.teardown_silently(host);
    }

    /// Frees everything the domain holds.
    fn teardown_silently(self, host: &mut KernelHost) {
        mem::release_heap(self.dom.domid);
        for v in self.vcpus {
            v.destroy();
        }
        // The last guest's XCR0 must not outlive it.
        cpu::xsetbv(1);
        mem::free_frames(self.msr_bitmap, 1);
        let ram_pages = self.dom.ram_pages;
        self.dom.destroy(host);
        mem::free_frames(self.ram_hpa, ram_pages as usize);
    }

    /// Handles one VM exit of vCPU `i`.
    fn handle_exit(&mut self, i: usize, basic: u64, host: &mut KernelHost) -> Next {
        let qual = vmx::vmread(ro::EXIT_QUALIFICATION);
        match basic {
            reason::EXTERNAL_INTERRUPT => {}
            reason::PREEMPTION_TIMER => return Next::Yield,
            reason::INTERRUPT_WINDOW => {
                vmx::set_proc_controls(vmx::PROC_INTERRUPT_WINDOW_EXITING, false)
            }
            reason::PAUSE => return self.pause(i, host),
            reason::EXCEPTION_NMI => {
                let info = vmx::vmread(ro::VMEXIT_INTERRUPTION_INFO);
                if (info >> 8) & 7 != 2 {
                    return Next::End(Outcome::Crashed(format!(
                        "vCPU {i}: unexpected exception exit, info {info:#x}"
                    )));
                }
                crate::idt::handle_nmi_exit();
            }
            reason::TRIPLE_FAULT => {
                return Next::End(Outcome::Crashed(format!(
                    "triple fault at rip={:#x} (vCPU {i})",
                    vmx::guest_rip()
                )));
            }
            reason::INIT_SIGNAL | reason::SIPI => {}
            reason::CPUID => {
                let ctx = hypercalls::cpuid::CpuidContext {
                    vcpu_id: i as u32,
                    nr_vcpus: self.vcpus.len() as u32,
                    guest_cr4: guest_cr4(),
                    fast_strings: guest_misc_enable() & MISC_ENABLE_FAST_STRINGS != 0,
                };
                let regs = &mut self.vcpus[i].regs;
                let r = hypercalls::cpuid::guest_cpuid(
                    regs.rax as u32,
                    regs.rcx as u32,
                    &ctx,
                    |leaf, sub| {
                        let r = x86::cpuid::cpuid!(leaf, sub);
                        [r.eax, r.ebx, r.ecx, r.edx]
                    },
                );
                regs.rax = r[0] as u64;
                regs.rbx = r[1] as u64;
                regs.rcx = r[2] as u64;
                regs.rdx = r[3] as u64;
                vmx::skip_instruction();
            }
            reason::HLT => {
                vmx::skip_instruction();
                if vmx::vmread(guest::RFLAGS) & (1 << 9) == 0 {
                    log::info!(
                        "d{} vCPU {i} halted with interrupts disabled at rip={:#x}",
                        self.dom.domid,
                        vmx::guest_rip()
                    );
                    self.vcpus[i].state = RunState::Down;
                } else {
                    self.vcpus[i].state = RunState::Halted;
                }
                return Next::Yield;
            }
            reason::INVLPG | reason::RDTSC => vmx::skip_instruction(),
            // Guest caches hold nothing the hypervisor needs dropped.
            reason::INVD => vmx::skip_instruction(),
            // Not offered (CPUID hides MONITOR, VMX and SMX): #UD, as Xen does.
            reason::MWAIT
            | reason::MONITOR
            | reason::GETSEC
            | reason::INVEPT
            | reason::INVVPID
            | reason::VMFUNC => inject_ud(),
            r if reason::VMX_INSTRUCTIONS.contains(&r) => inject_ud(),
            reason::CR_ACCESS => {
                if let Err(why) = self.cr_access(i, qual) {
                    return Next::End(Outcome::Crashed(format!(
                        "vCPU {i}: {why} at rip={:#x}",
                        vmx::guest_rip()
                    )));
                }
            }
            reason::VMCALL => return self.hypercall(i, host),
            reason::XSETBV => {
                let regs = &self.vcpus[i].regs;
                let value = (regs.rdx << 32) | (regs.rax & 0xFFFF_FFFF);
                if regs.rcx as u32 != 0 || cpl() != 0 || !cpu::xcr0_valid(value) {
                    inject_gp();
                } else {
                    self.vcpus[i].ext.xcr0 = value;
                    cpu::xsetbv(value);
                    vmx::skip_instruction();
                }
            }
            reason::IO_INSTRUCTION => return self.io(i, qual, host),
            reason::RDMSR => {
                let msr = self.vcpus[i].regs.rcx as u32;
                match self.read_msr(i, msr) {
                    Some(v) => {
                        let regs = &mut self.vcpus[i].regs;
                        regs.rax = v & 0xFFFF_FFFF;
                        regs.rdx = v >> 32;
                        vmx::skip_instruction();
                    }
                    None => {
                        log::debug!("d{} vCPU {i}: rdmsr {msr:#x}: #GP", self.dom.domid);
                        inject_gp();
                    }
                }
            }
            reason::WRMSR => {
                let regs = &self.vcpus[i].regs;
                let msr = regs.rcx as u32;
                let value = (regs.rdx << 32) | (regs.rax & 0xFFFF_FFFF);
                if self.write_msr(i, msr, value, host) {
                    vmx::skip_instruction();
                } else {
                    log::debug!(
                        "d{} vCPU {i}: wrmsr {msr:#x} = {value:#x}: #GP",
                        self.dom.domid
                    );
                    inject_gp();
                }
            }
            reason::EPT_VIOLATION => {
                return Next::End(Outcome::Crashed(format!(
                    "EPT violation at gpa {:#x} (qualification {qual:#x}) rip={:#x} (vCPU {i})",
                    vmx::vmread(ro::GUEST_PHYSICAL_ADDR_FULL),
                    vmx::guest_rip()
                )));
            }
            reason::EPT_MISCONFIG => {
                return Next::End(Outcome::Crashed(format!(
                    "EPT misconfiguration at gpa {:#x}",
                    vmx::vmread(ro::GUEST_PHYSICAL_ADDR_FULL)
                )));
            }
            other => {
                return Next::End(Outcome::Crashed(format!(
                    "unhandled VM exit reason {other} (qualification {qual:#x}) at rip={:#x} (vCPU {i})",
                    vmx::guest_rip()
                )));
            }
        }
        Next::Continue
    }

    /// A PAUSE exit of vCPU `i`. With PAUSE-loop exiting it is a long spin:
    /// the vCPU yields. Without it (KVM offers L1 no PLE) every PAUSE exits,
    /// so the exit is made cheap: it skips the PAUSE, wakes the vCPUs that an
    /// event now waits for (the answer to an IPI the spinner sent, a startup
    /// IPI) and yields only if another vCPU of the domain can run, the one the
    /// spinner may wait for. Otherwise it costs no scheduler pass: the spin is
    /// bounded by the slice, cut at the earliest timer of a halted vCPU.
    fn pause(&mut self, i: usize, host: &KernelHost) -> Next {
        vmx::skip_instruction();
        if self.caps.pause_loop_exiting() {
            return Next::Yield;
        }
        self.wake_halted(host);
        let others = self
            .vcpus
            .iter()
            .enumerate()
            .any(|(j, v)| j != i && v.state == RunState::Runnable);
        if others {
            Next::Yield
        } else {
            Next::Continue
        }
    }

    fn hypercall(&mut self, i: usize, host: &mut KernelHost) -> Next {
        let long = vmx::guest_in_64bit_mode();
        let vcpu = VcpuContext {
            vcpu_id: i as u32,
            cpl: cpl(),
            paging: paging_state(),
            compat: !long,
            interrupts_blocked: vmx::vmread(guest::RFLAGS) & (1 << 9) == 0,
        };
        // A 64-bit caller passes RDI, RSI, RDX, R10, R8; any other (32-bit
        // protected mode, as a PVH kernel before it enters long mode) EBX, ECX,
        // EDX, ESI, EDI, and gets the result in EAX (Xen's `hvm_hypercall`).
        let regs = &mut self.vcpus[i].regs;
        let nr = if long {
            regs.rax
        } else {
            regs.rax & 0xFFFF_FFFF
        };
        ledger::set(Bucket::Hcall(self.dom.domid, nr));
        let args = if long {
            [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8]
        } else {
            [regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi].map(|r| r & 0xFFFF_FFFF)
        };
        let rax = hypercalls::dispatch(&mut self.dom, host, &vcpu, nr, args);
        let regs = &mut self.vcpus[i].regs;
        if let Some(next) = self.dom.vcpus[i].continuation.take() {
            if self.dom.shutdown.is_none() {
                // Part done: the VMCALL runs again with the rest (RAX still
                // holds its number), after the other vCPUs have had the CPU.
                if long {
                    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8] = next;
                } else {
                    [regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi] = next;
                }
                return Next::Yield;
            }
        }
        regs.rax = if long { rax } else { rax & 0xFFFF_FFFF };
        vmx::skip_instruction();
        if let Some(r) = self.dom.shutdown {
            return Next::End(Outcome::Shutdown(r));
        }
        if self.dom.vcpus[i].blocked || self.dom.vcpus[i].polling {
            self.vcpus[i].state = RunState::Halted;
            return Next::Yield;
        }
        if core::mem::take(&mut self.dom.vcpus[i].yielded) {
            return Next::Yield;
        }
        Next::Continue
    }

    fn io(&mut self, i: usize, qual: u64, host: &mut KernelHost) -> Next {
        let port = (qual >> 16) as u16;
        let size = ((qual & 7) + 1) as u8;
        let is_in = qual & (1 << 3) != 0;
        if qual & (1 << 4) != 0 {
            return Next::End(Outcome::Crashed(format!(
                "unsupported string I/O on port {port:#x} at rip={:#x} (vCPU {i})",
                vmx::guest_rip()
            )));
        }
        let regs = &mut self.vcpus[i].regs;
        let mask = if size == 4 {
            0xFFFF_FFFF
        } else {
            (1u64 << (size * 8)) - 1
        };
        vmx::skip_instruction();
        if is_in {
            let v = self.devices.io_in(port, size) as u64;
            regs.rax = (regs.rax & !mask) | (v & mask);
            return Next::Continue;
        }
        let value = (regs.rax & mask) as u32;
        if port == 0xE9 {
            self.dom.console_write(host, &[value as u8]);
            return Next::Continue;
        }
        let result = self.devices.io_out(port, size, value);
        // The platform device's log port (0x12) prints on the domain's console, as
        // in Xen, through the same sanitising and rate limit as its other output.
        for line in self.devices.take_log_lines() {
            self.dom.console_write(host, line.as_bytes());
            self.dom.console_write(host, b"\n");
        }
        match result {
            IoResult::Done => Next::Continue,
            IoResult::Poweroff => Next::End(Outcome::Shutdown(ShutdownReason::Poweroff)),
            IoResult::Reboot => Next::End(Outcome::Shutdown(ShutdownReason::Reboot)),
        }
    }

    fn read_msr(&mut self, i: usize, msr: u32) -> Option<u64> {
        if let Some(v) = self.dom.p2m.guest_mtrr_read(msr) {
            return Some(v);
        }
        if let Some(r) = self.vcpus[i].lapic.read_msr(msr, cpu::rdtsc()) {
            return r.ok();
        }
        match msr {
            vmx::IA32_EFER => Some(vmx::vmread(guest::IA32_EFER_FULL)),
            vmx::IA32_PAT => Some(vmx::vmread(guest::IA32_PAT_FULL)),
            IA32_TSC => Some(cpu::rdtsc()),
            IA32_FEATURE_CONTROL => Some(1), // locked, VMX off
            IA32_BIOS_SIGN_ID => Some(0),
            IA32_MISC_ENABLE => Some(guest_misc_enable()),
            IA32_DEBUGCTL => Some(vmx::vmread(guest::IA32_DEBUGCTL_FULL)),
            _ => None,
        }
    }

    fn write_msr(&mut self, i: usize, msr: u32, value: u64, host: &mut KernelHost) -> bool {
        if self.dom.p2m.guest_mtrr_read(msr).is_some() {
            let ok = self.dom.p2m.guest_mtrr_write(host, msr, value).is_ok();
            self.dom.ept_dirty |= ok;
            return ok;
        }
        let now = cpu::rdtsc();
        if let Some(r) = self.vcpus[i].lapic.write_msr(msr, value, now) {
            return match r {
                Ok(Some(ipi)) => {
                    self.deliver_ipi(i, ipi);
                    true
                }
                Ok(None) => true,
                Err(()) => false,
            };
        }
        match msr {
            vmx::IA32_EFER => {
                const ALLOWED: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
                if value & !ALLOWED != 0 {
                    return false;
                }
                let old = vmx::vmread(guest::IA32_EFER_FULL);
                // EFER.LME may not change while paging is on (#GP on hardware
                // and in Xen's `hvm_set_efer`); VM entry would refuse LME != LMA.
                if (value ^ old) & (1 << 8) != 0 && vmx::vmread(guest::CR0) & (1 << 31) != 0 {
                    return false;
                }
                let lma = old & (1 << 10);
                vmx::vmwrite(guest::IA32_EFER_FULL, (value & !(1 << 10)) | lma);
                true
            }
            vmx::IA32_PAT => {
                let valid =
                    (0..8).all(|i| matches!((value >> (i * 8)) & 0xFF, 0 | 1 | 4 | 5 | 6 | 7));
                if valid {
                    vmx::vmwrite(guest::IA32_PAT_FULL, value);
                }
                valid
            }
            hypercalls::cpuid::HYPERCALL_MSR => {
                let gpa = value & !0xFFF;
                let page = hypercalls::hvm::hypercall_page();
                write_gpa(&self.dom.p2m, host, gpa, &page).is_ok()
            }
            IA32_DEBUGCTL => {
                vmx::vmwrite(guest::IA32_DEBUGCTL_FULL, value & 0x3);
                true
            }
            IA32_BIOS_SIGN_ID | IA32_MISC_ENABLE => true,
            _ => false,
        }
    }

    /// A control-register access that exited: MOV to CR0 changing NE, LMSW,
    /// or MOV to CR4 setting VMXE (SDM vol. 3, table 28-3).
    fn cr_access(&mut self, i: usize, qual: u64) -> Result<(), String> {
        let cr = qual & 0xF;
        let access = (qual >> 4) & 3;
        let reg = ((qual >> 8) & 0xF) as usize;
        match (cr, access) {
            (0, 0) => {
                // Outside 64-bit code the source is a 32-bit register.
                let value = match gpr(&self.vcpus[i].regs, reg) {
                    v if vmx::guest_in_64bit_mode() => v,
                    v => v & 0xFFFF_FFFF,
                };
                if cr0_write_faults(value) {
                    inject_gp();
                    return Ok(());
                }
                mov_to_cr0(self.caps, value);
            }
            (0, 3) => {
                // LMSW: loads PE, MP, EM, TS; cannot clear PE (nor touch PG, so
                // it never faults).
                let shadow = vmx::vmread(control::CR0_READ_SHADOW);
                let src = (qual >> 16) & 0xF;
                let value = (shadow & !0xE) | (src & 0xF) | (shadow & 1);
                mov_to_cr0(self.caps, value);
            }
            (4, 0) => {
                inject_gp(); // CR4.VMXE: no nested VMX
                return Ok(());
            }
            _ => {
                return Err(format!(
                    "unexpected CR access exit, qualification {qual:#x}"
                ))
            }
        }
        vmx::skip_instruction();
        Ok(())
    }

    /// Routes an IPI that vCPU `from` sent through its ICR.
    fn deliver_ipi(&mut self, from: usize, ipi: platform::lapic::Ipi) {
        let ids: Vec<u32> = self.vcpus.iter().map(|v| v.id).collect();
        for target in ipi.targets(from as u32, &ids) {
            let t = target as usize;
            match ipi.delivery {
                platform::lapic::Delivery::Fixed(vector) => {
                    self.vcpus[t].lapic.accept(vector);
                }
                platform::lapic::Delivery::Init => {
                    if t != 0 {
                        self.vcpus[t].state = RunState::WaitForSipi;
                        self.vcpus[t].lapic = platform::lapic::Lapic::new(t as u32);
                    }
                }
                platform::lapic::Delivery::Startup(vector) => {
                    if self.vcpus[t].state == RunState::WaitForSipi {
                        self.devices.post_sipi(t, vector);
                    }
                }
                other => log::warn!(
                    "d{} vCPU {from}: IPI {other:?} to vCPU {t} not delivered",
                    self.dom.domid
                ),
            }
        }
    }
}

const IA32_TSC: u32 = 0x10;
const IA32_FEATURE_CONTROL: u32 = 0x3A;
const IA32_BIOS_SIGN_ID: u32 = 0x8B;
const IA32_MISC_ENABLE: u32 = 0x1A0;
const IA32_DEBUGCTL: u32 = 0x1D9;
/// IA32_MISC_ENABLE bit 0: fast-string operations enabled.
const MISC_ENABLE_FAST_STRINGS: u64 = 1;
/// IA32_MISC_ENABLE bits 11 and 12: branch trace storage and PEBS unavailable.
const MISC_ENABLE_BTS_PEBS_UNAVAILABLE: u64 = (1 << 11) | (1 << 12);

/// IA32_MISC_ENABLE as a guest reads it, as Xen's HVM guests do: the host's
/// fast-strings bit (a host that turned fast strings off has its reasons;
/// the CPUID policy then hides ERMS and FSRM to match), with BTS and PEBS
/// unavailable. Nothing else of the host's value is shown.
fn guest_misc_enable() -> u64 {
    static HOST: spin::Once<u64> = spin::Once::new();
    // A CPU without the MSR (an emulator's model may lack it) has no fast
    // strings to promise.
    let host = *HOST.call_once(|| cpu::rdmsr_safe(IA32_MISC_ENABLE).unwrap_or(0));
    (host & MISC_ENABLE_FAST_STRINGS) | MISC_ENABLE_BTS_PEBS_UNAVAILABLE
}

fn vm_instruction_error_name(e: u64) -> &'static str {
    match e {
        7 => "invalid control fields",
        8 => "invalid host-state fields",
        9 => "invalid VMCS pointer",
        _ => "see SDM vol. 3, VM-instruction error numbers",
    }
}

fn guest_state_summary() -> String {
    format!(
        "guest rip={:#x} cr0={:#x} cr4={:#x} efer={:#x} cs.ar={:#x} entry-ctls={:#x}",
        vmx::vmread(guest::RIP),
        vmx::vmread(guest::CR0),
        vmx::vmread(guest::CR4),
        vmx::vmread(guest::IA32_EFER_FULL),
        vmx::vmread(guest::CS_ACCESS_RIGHTS),
        vmx::vmread(control::VMENTRY_CONTROLS)
    )
}

/// A guest general-purpose register by its encoding in exit qualifications.
fn gpr(regs: &crate::vmx::GuestRegs, n: usize) -> u64 {
    match n {
        0 => regs.rax,
        1 => regs.rcx,
        2 => regs.rdx,
        3 => regs.rbx,
        4 => vmx::vmread(guest::RSP),
        5 => regs.rbp,
        6 => regs.rsi,
        7 => regs.rdi,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        _ => regs.r15,
    }
}

/// Whether MOV to CR0 of `value` faults with #GP, as on hardware (SDM vol. 3,
/// MOV to CR0) and Xen's `hvm_set_cr0`: bits 63:32 set, PG without PE, NW
/// without CD, paging turned on with EFER.LME but not CR4.PAE, or off in
/// 64-bit code or with CR4.PCIDE. VM entry would refuse several of these.
fn cr0_write_faults(value: u64) -> bool {
    const PE: u64 = 1;
    const NW: u64 = 1 << 29;
    const CD: u64 = 1 << 30;
    const PG: u64 = 1 << 31;
    const EFER_LME: u64 = 1 << 8;
    const CR4_PAE: u64 = 1 << 5;
    const CR4_PCIDE: u64 = 1 << 17;
    let old = vmx::vmread(guest::CR0);
    let cr4 = guest_cr4();
    let paging_on = value & PG != 0 && old & PG == 0;
    let paging_off = value & PG == 0 && old & PG != 0;
    value >> 32 != 0
        || value & (PE | PG) == PG
        || value & (NW | CD) == NW
        || (paging_on && vmx::vmread(guest::IA32_EFER_FULL) & EFER_LME != 0 && cr4 & CR4_PAE == 0)
        || (paging_off && (vmx::guest_in_64bit_mode() || cr4 & CR4_PCIDE != 0))
}

/// Emulates MOV to CR0: the guest sees `value`; the real CR0 keeps the bits
/// VMX needs (NE; PE and PG are free under unrestricted guest). Turning
/// paging on or off with EFER.LME set enters or leaves IA-32e mode, which the
/// processor would have done itself had the write not exited.
fn mov_to_cr0(caps: &VmxCaps, value: u64) {
    const PE: u64 = 1;
    const PG: u64 = 1 << 31;
    const EFER_LME: u64 = 1 << 8;
    const EFER_LMA: u64 = 1 << 10;
    let old = vmx::vmread(guest::CR0);
    vmx::vmwrite(control::CR0_READ_SHADOW, value);
    let fixed0 = caps.cr0_fixed.0 & !(PE | PG);
    vmx::vmwrite(guest::CR0, (value | fixed0) & caps.cr0_fixed.1);
    let efer = vmx::vmread(guest::IA32_EFER_FULL);
    if efer & EFER_LME != 0 && (old & PG == 0) != (value & PG == 0) {
        let efer = if value & PG != 0 {
            efer | EFER_LMA
        } else {
            efer & !EFER_LMA
        };
        vmx::vmwrite(guest::IA32_EFER_FULL, efer);
        crate::vcpu::sync_ia32e_mode(caps);
    }
}

/// The guest's CR4 as it sees it (VMXE is the host's and hidden).
fn guest_cr4() -> u64 {
    vmx::vmread(control::CR4_READ_SHADOW) & (1 << 13) | (vmx::vmread(guest::CR4) & !(1 << 13))
}

/// The guest's CPL: SS.DPL (SDM vol. 3, 5.5: CS.DPL differs from the CPL
/// in a conforming code segment, and in real mode under unrestricted guest).
fn cpl() -> u8 {
    ((vmx::vmread(guest::SS_ACCESS_RIGHTS) >> 5) & 3) as u8
}

fn paging_state() -> PagingState {
    PagingState {
        cr0: vmx::vmread(guest::CR0),
        cr3: vmx::vmread(guest::CR3),
        cr4: guest_cr4(),
        efer: vmx::vmread(guest::IA32_EFER_FULL),
    }
}

/// Injects #GP(0) into the guest at its next entry.
/// Injects #UD (a hardware exception without an error code).
fn inject_ud() {
    vmx::vmwrite(
        control::VMENTRY_INTERRUPTION_INFO_FIELD,
        6 | (3 << 8) | (1 << 31),
    );
}

/// Injects #GP(0); in real mode (CR0.PE clear) without an error code, which
/// VM entry refuses there.
fn inject_gp() {
    let protected = vmx::vmread(guest::CR0) & 1 != 0;
    let error_code = if protected { 1 << 11 } else { 0 };
    vmx::vmwrite(
        control::VMENTRY_INTERRUPTION_INFO_FIELD,
        13 | (3 << 8) | error_code | (1 << 31),
    );
    if protected {
        vmx::vmwrite(control::VMENTRY_EXCEPTION_ERR_CODE, 0);
    }
}
