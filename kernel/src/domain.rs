//! Domain lifecycle: build a domain from its configuration, run its vCPU
//! until it shuts down or crashes, then audit its EPT and tear it down.

use crate::host::KernelHost;
use crate::vmx::{self, EntryResult, GuestRegs, VmxCaps};
use crate::{kprintln, mem, Module};
use alloc::format;
use alloc::string::String;
use hypercalls::builder;
use hypercalls::domain::ShutdownReason;
use hypercalls::guest_mem::{write_gpa, PagingState};
use hypercalls::{Domain, Host, VcpuContext};
use p2m::{Mapping, P2m, P2mConfig, P2mType};
use x86::vmx::vmcs::{control, guest, ro};

const MIB: u64 = 1 << 20;
const SUPERPAGE: u64 = 2 * MIB;

/// How a domain's run ended.
enum Outcome {
    Shutdown(ShutdownReason),
    Crashed(String),
}

/// Everything the hypervisor allocated for one domain.
struct Resources {
    ram_hpa: u64,
    vmcs: u64,
    msr_bitmap: u64,
}

/// Builds, runs and tears down the domain described by `cfg_module`.
pub fn run_domain(
    domid: u16,
    cfg_module: &Module,
    modules: &[Module],
    caps: &VmxCaps,
    host_mtrr: &p2m::MtrrState,
) {
    let text = core::str::from_utf8(cfg_module.bytes()).unwrap_or("");
    let cfg = match domcfg::parse(text) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::error!(
                "domain {domid}: config {}: {e}; domain not created",
                cfg_module.name
            );
            return;
        }
    };
    for key in &cfg.unknown_keys {
        log::warn!(
            "domain {domid}: config {}: ignoring unknown key '{key}'",
            cfg_module.name
        );
    }
    let Some(image) = modules.iter().find(|m| m.name == cfg.kernel) else {
        log::error!(
            "domain {domid} ({}): kernel '{}' is not among the boot modules",
            cfg.name,
            cfg.kernel
        );
        return;
    };
    let mut host = KernelHost;
    let (mut dom, res, entry) = match build(domid, &cfg, image, caps, host_mtrr, &mut host) {
        Ok(v) => v,
        Err(e) => {
            log::error!("domain {domid} ({}): build failed: {e}", cfg.name);
            return;
        }
    };
    log::info!(
        "domain {domid} ({}): {} MiB, {} vCPU, iommu={}, kernel {} entry {entry:#x}, cmdline '{}'",
        cfg.name,
        cfg.memory_mib,
        cfg.vcpus,
        cfg.iommu as u8,
        cfg.kernel,
        cfg.cmdline
    );
    if cfg.vcpus > 1 {
        log::warn!("domain {domid}: only vCPU 0 runs in this version");
    }
    let outcome = run_vcpu(&mut dom, &res, caps, &mut host);
    let domid = dom.domid;
    dom.console.flush(|line| host.console_line(domid, line));
    match &outcome {
        Outcome::Shutdown(r) => kprintln!(
            "xenolith: domain {domid} ({}) shut down: {}",
            dom.name,
            r.name()
        ),
        Outcome::Crashed(why) => {
            kprintln!("xenolith: domain {domid} ({}) crashed: {why}", dom.name)
        }
    }
    let report = p2m::audit(&host, &dom.p2m);
    kprintln!(
        "p2m audit d{domid}: {} special pages WB+ipat, {} leaves, {} violations",
        report.special_wb_ipat,
        report.leaves,
        report.violations
    );
    vmx::clear_vmcs(res.vmcs);
    mem::free_frames(res.vmcs, 1);
    mem::free_frames(res.msr_bitmap, 1);
    let dom_ram_pages = dom.ram_pages;
    dom.destroy(&mut host);
    mem::free_frames(res.ram_hpa, dom_ram_pages as usize);
}

fn build(
    domid: u16,
    cfg: &domcfg::DomainConfig,
    image: &Module,
    caps: &VmxCaps,
    host_mtrr: &p2m::MtrrState,
    host: &mut KernelHost,
) -> Result<(Domain, Resources, u64), String> {
    let ram_bytes = cfg.memory_mib * MIB;
    let elf = builder::parse_elf(image.bytes(), ram_bytes)
        .map_err(|e| format!("kernel '{}': {e}", cfg.kernel))?;
    let ram_pages = ram_bytes / 4096;
    let ram_hpa = mem::alloc_frames(ram_pages as usize, SUPERPAGE)
        .ok_or_else(|| format!("not enough host memory for {} MiB", cfg.memory_mib))?;
    let p2m_cfg = P2mConfig {
        honour_guest_mem_types: cfg.iommu,
        host_mtrr: host_mtrr.clone(),
        ept_2m: caps.ept_2m(),
        ept_1g: caps.ept_1g(),
    };
    let p2m = P2m::new(p2m_cfg, host).map_err(|e| {
        mem::free_frames(ram_hpa, ram_pages as usize);
        format!("p2m: {e}")
    })?;
    let mut dom = match Domain::new(domid, cfg.name.clone(), p2m, ram_pages, host) {
        Ok(dom) => dom,
        Err(e) => {
            mem::free_frames(ram_hpa, ram_pages as usize);
            return Err(format!("domain state: {e:?}"));
        }
    };
    match populate(&mut dom, &elf, image, &cfg.cmdline, ram_hpa, caps, host) {
        Ok(res) => Ok((dom, res, elf.entry)),
        Err(e) => {
            dom.destroy(host);
            mem::free_frames(ram_hpa, ram_pages as usize);
            Err(e)
        }
    }
}

/// Maps guest RAM, loads the image and boot structures, and creates the vCPU.
fn populate(
    dom: &mut Domain,
    elf: &builder::ElfImage,
    image: &Module,
    cmdline: &str,
    ram_hpa: u64,
    caps: &VmxCaps,
    host: &mut KernelHost,
) -> Result<Resources, String> {
    let ram_pages = dom.ram_pages;
    let ram = Mapping {
        p2m_type: P2mType::RamRw,
        owner: dom.domid,
        special: false,
    };
    let mut gfn = 0;
    while gfn < ram_pages {
        let order = if ram_pages - gfn >= 512 { 9 } else { 0 };
        dom.p2m
            .set_entry(host, gfn, ram_hpa / 4096 + gfn, order, Some(ram))
            .map_err(|e| format!("p2m: {e}"))?;
        gfn += 1 << order;
    }
    let bytes = image.bytes();
    for seg in &elf.segments {
        write_gpa(
            &dom.p2m,
            host,
            seg.gpa,
            &bytes[seg.offset..seg.offset + seg.file_size],
        )
        .map_err(|e| format!("loading segment at {:#x}: {e:?}", seg.gpa))?;
    }
    let boot_data: [(u64, &[u8]); 4] = [
        (builder::GDT_GPA, &builder::boot_gdt()),
        (builder::PML4_GPA, &builder::identity_page_tables()),
        (builder::BOOT_PARAMS_GPA, &builder::boot_params()),
        (builder::CMDLINE_GPA, &builder::cmdline_bytes(cmdline)),
    ];
    for (gpa, data) in boot_data {
        write_gpa(&dom.p2m, host, gpa, data)
            .map_err(|e| format!("writing boot data at {gpa:#x}: {e:?}"))?;
    }
    let vmcs = vmx::new_vmcs(caps).ok_or("cannot create a VMCS")?;
    let Some(msr_bitmap) = mem::alloc_frame() else {
        vmx::clear_vmcs(vmcs);
        mem::free_frames(vmcs, 1);
        return Err("no memory for the MSR bitmap".into());
    };
    setup_msr_bitmap(msr_bitmap);
    setup_vmcs(caps, dom.domid, dom.p2m.eptp(), msr_bitmap, elf.entry);
    dom.ept_dirty = false;
    Ok(Resources {
        ram_hpa,
        vmcs,
        msr_bitmap,
    })
}

/// MSRs the guest reads and writes without an exit (their state lives in the
/// VMCS or is not used by the hypervisor).
const PASSTHROUGH_MSRS: [u32; 10] = [
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

fn setup_vmcs(caps: &VmxCaps, domid: u16, eptp: u64, msr_bitmap: u64, entry: u64) {
    use vmx::*;
    let pin = VmxCaps::adjust(
        caps.pin,
        PIN_EXTERNAL_INTERRUPT_EXITING | PIN_NMI_EXITING | PIN_PREEMPTION_TIMER,
    );
    let proc = VmxCaps::adjust(
        caps.proc,
        PROC_HLT_EXITING | PROC_UNCOND_IO_EXITING | PROC_USE_MSR_BITMAPS | PROC_SECONDARY_CONTROLS,
    );
    let proc2 = VmxCaps::adjust(
        caps.proc2,
        PROC2_ENABLE_EPT
            | PROC2_ENABLE_VPID
            | PROC2_UNRESTRICTED_GUEST
            | PROC2_ENABLE_RDTSCP
            | PROC2_ENABLE_INVPCID
            | PROC2_ENABLE_XSAVES,
    );
    vmwrite(control::PINBASED_EXEC_CONTROLS, pin as u64);
    vmwrite(control::PRIMARY_PROCBASED_EXEC_CONTROLS, proc as u64);
    vmwrite(control::SECONDARY_PROCBASED_EXEC_CONTROLS, proc2 as u64);
    vmwrite(
        control::VMEXIT_CONTROLS,
        VmxCaps::adjust(
            caps.exit,
            EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTERRUPT | EXIT_SAVE_LOAD_PAT_EFER,
        ) as u64,
    );
    vmwrite(
        control::VMENTRY_CONTROLS,
        VmxCaps::adjust(caps.entry, ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_PAT_EFER) as u64,
    );
    vmwrite(control::EXCEPTION_BITMAP, 0);
    vmwrite(control::MSR_BITMAPS_ADDR_FULL, msr_bitmap);
    vmwrite(control::EPTP_FULL, eptp);
    if proc2 & PROC2_ENABLE_VPID != 0 {
        vmwrite(control::VPID, domid as u64);
    }
    vmwrite(control::CR0_GUEST_HOST_MASK, 0);
    vmwrite(control::CR4_GUEST_HOST_MASK, 1 << 13); // CR4.VMXE stays the host's
    vmwrite(control::CR4_READ_SHADOW, 0x20);
    vmwrite(control::CR0_READ_SHADOW, 0x8000_0031);
    setup_host_state();

    // Guest: 64-bit, paging on through the builder's identity map (docs/protocol.md).
    vmwrite(
        guest::CR0,
        (0x8000_0031 | caps.cr0_fixed.0) & caps.cr0_fixed.1,
    );
    vmwrite(guest::CR3, builder::PML4_GPA);
    vmwrite(guest::CR4, (0x20 | caps.cr4_fixed.0) & caps.cr4_fixed.1);
    vmwrite(guest::IA32_EFER_FULL, 0x500);
    vmwrite(guest::IA32_PAT_FULL, 0x0007_0406_0007_0406);
    vmwrite(guest::DR7, 0x400);
    vmwrite(guest::RFLAGS, 0x2);
    vmwrite(guest::RIP, entry);
    vmwrite(guest::RSP, 0x8_0000);
    let seg = |sel_f: u32, base_f: u32, lim_f: u32, ar_f: u32, sel: u16, ar: u32, limit: u32| {
        vmwrite(sel_f, sel as u64);
        vmwrite(base_f, 0);
        vmwrite(lim_f, limit as u64);
        vmwrite(ar_f, ar as u64);
    };
    seg(
        guest::CS_SELECTOR,
        guest::CS_BASE,
        guest::CS_LIMIT,
        guest::CS_ACCESS_RIGHTS,
        builder::BOOT_CS,
        0xA09B,
        0xFFFF_FFFF,
    );
    for (s, b, l, a) in [
        (
            guest::DS_SELECTOR,
            guest::DS_BASE,
            guest::DS_LIMIT,
            guest::DS_ACCESS_RIGHTS,
        ),
        (
            guest::ES_SELECTOR,
            guest::ES_BASE,
            guest::ES_LIMIT,
            guest::ES_ACCESS_RIGHTS,
        ),
        (
            guest::SS_SELECTOR,
            guest::SS_BASE,
            guest::SS_LIMIT,
            guest::SS_ACCESS_RIGHTS,
        ),
        (
            guest::FS_SELECTOR,
            guest::FS_BASE,
            guest::FS_LIMIT,
            guest::FS_ACCESS_RIGHTS,
        ),
        (
            guest::GS_SELECTOR,
            guest::GS_BASE,
            guest::GS_LIMIT,
            guest::GS_ACCESS_RIGHTS,
        ),
    ] {
        seg(s, b, l, a, builder::BOOT_DS, 0xC093, 0xFFFF_FFFF);
    }
    seg(
        guest::LDTR_SELECTOR,
        guest::LDTR_BASE,
        guest::LDTR_LIMIT,
        guest::LDTR_ACCESS_RIGHTS,
        0,
        0x1_0000,
        0,
    );
    seg(
        guest::TR_SELECTOR,
        guest::TR_BASE,
        guest::TR_LIMIT,
        guest::TR_ACCESS_RIGHTS,
        0,
        0x8B,
        0x67,
    );
    vmwrite(guest::GDTR_BASE, builder::GDT_GPA);
    vmwrite(guest::GDTR_LIMIT, 31);
    vmwrite(guest::IDTR_BASE, 0);
    vmwrite(guest::IDTR_LIMIT, 0);
    vmwrite(guest::IA32_SYSENTER_CS, 0);
    vmwrite(guest::IA32_SYSENTER_ESP, 0);
    vmwrite(guest::IA32_SYSENTER_EIP, 0);
    vmwrite(guest::IA32_DEBUGCTL_FULL, 0);
    vmwrite(guest::INTERRUPTIBILITY_STATE, 0);
    vmwrite(guest::ACTIVITY_STATE, 0);
    vmwrite(guest::PENDING_DBG_EXCEPTIONS, 0);
    vmwrite(guest::LINK_PTR_FULL, u64::MAX);
}

/// Exit reasons (Intel SDM vol. 3, appendix C).
mod reason {
    pub const EXCEPTION_NMI: u64 = 0;
    pub const EXTERNAL_INTERRUPT: u64 = 1;
    pub const TRIPLE_FAULT: u64 = 2;
    pub const CPUID: u64 = 10;
    pub const HLT: u64 = 12;
    pub const VMCALL: u64 = 18;
    pub const IO_INSTRUCTION: u64 = 30;
    pub const RDMSR: u64 = 31;
    pub const WRMSR: u64 = 32;
    pub const INVALID_GUEST_STATE: u64 = 33;
    pub const MSR_LOADING: u64 = 34;
    pub const EPT_VIOLATION: u64 = 48;
    pub const EPT_MISCONFIG: u64 = 49;
    pub const PREEMPTION_TIMER: u64 = 52;
}

/// Preemption-timer slice (in timer ticks): the hypervisor regains control at
/// least this often even from a guest that never exits.
const TIME_SLICE: u32 = 50_000_000;

fn run_vcpu(dom: &mut Domain, res: &Resources, caps: &VmxCaps, host: &mut KernelHost) -> Outcome {
    let mut regs = GuestRegs {
        rsi: builder::BOOT_PARAMS_GPA,
        ..GuestRegs::default()
    };
    let mut launched = false;
    vmx::load_vmcs(res.vmcs);
    let mut exits: u64 = 0;
    loop {
        vmx::arm_preemption_timer(TIME_SLICE >> caps.preemption_timer_rate().min(31));
        match vmx::enter(&mut regs, launched) {
            EntryResult::Exit => {}
            EntryResult::FailInvalid => {
                return Outcome::Crashed("VM entry failed: no current VMCS".into())
            }
            EntryResult::FailValid => {
                return Outcome::Crashed(format!(
                    "VM entry failed: VM-instruction error {} ({}); {}",
                    vmx::vm_instruction_error(),
                    vm_instruction_error_name(vmx::vm_instruction_error()),
                    guest_state_summary()
                ))
            }
        }
        launched = true;
        exits += 1;
        let exit_reason = vmx::vmread(ro::EXIT_REASON);
        if exit_reason & (1 << 31) != 0 {
            let basic = exit_reason & 0xFFFF;
            let what = match basic {
                reason::INVALID_GUEST_STATE => "invalid guest state",
                reason::MSR_LOADING => "MSR loading",
                _ => "machine check or other",
            };
            return Outcome::Crashed(format!(
                "VM entry failed: exit reason {basic} ({what}), qualification {:#x}; {}",
                vmx::vmread(ro::EXIT_QUALIFICATION),
                guest_state_summary()
            ));
        }
        if let Some(outcome) = handle_exit(dom, &mut regs, exit_reason & 0xFFFF, host) {
            log::debug!("domain {}: {exits} VM exits", dom.domid);
            return outcome;
        }
        if dom.ept_dirty {
            vmx::invept(caps, dom.p2m.eptp());
            dom.ept_dirty = false;
        }
    }
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

fn paging_state() -> PagingState {
    PagingState {
        cr0: vmx::vmread(guest::CR0),
        cr3: vmx::vmread(guest::CR3),
        cr4: vmx::vmread(control::CR4_READ_SHADOW) | (vmx::vmread(guest::CR4) & !(1 << 13)),
        efer: vmx::vmread(guest::IA32_EFER_FULL),
    }
}

/// Injects #GP(0) into the guest at its next entry.
fn inject_gp() {
    vmx::vmwrite(
        control::VMENTRY_INTERRUPTION_INFO_FIELD,
        13 | (3 << 8) | (1 << 11) | (1 << 31),
    );
    vmx::vmwrite(control::VMENTRY_EXCEPTION_ERR_CODE, 0);
}

/// Handles one VM exit; `Some` ends the domain's run.
fn handle_exit(
    dom: &mut Domain,
    regs: &mut GuestRegs,
    basic: u64,
    host: &mut KernelHost,
) -> Option<Outcome> {
    let qual = vmx::vmread(ro::EXIT_QUALIFICATION);
    match basic {
        reason::EXTERNAL_INTERRUPT | reason::PREEMPTION_TIMER => {}
        reason::EXCEPTION_NMI => {
            let info = vmx::vmread(ro::VMEXIT_INTERRUPTION_INFO);
            if (info >> 8) & 7 != 2 {
                return Some(Outcome::Crashed(format!(
                    "unexpected exception exit, info {info:#x}"
                )));
            }
        }
        reason::TRIPLE_FAULT => {
            return Some(Outcome::Crashed(format!(
                "triple fault at rip={:#x}",
                vmx::guest_rip()
            )));
        }
        reason::CPUID => {
            let r =
                hypercalls::cpuid::guest_cpuid(regs.rax as u32, regs.rcx as u32, 0, |leaf, sub| {
                    let r = x86::cpuid::cpuid!(leaf, sub);
                    [r.eax, r.ebx, r.ecx, r.edx]
                });
            regs.rax = r[0] as u64;
            regs.rbx = r[1] as u64;
            regs.rcx = r[2] as u64;
            regs.rdx = r[3] as u64;
            vmx::skip_instruction();
        }
        reason::HLT => {
            if vmx::vmread(guest::RFLAGS) & (1 << 9) == 0 {
                return Some(Outcome::Crashed(format!(
                    "halted with interrupts disabled at rip={:#x}",
                    vmx::guest_rip()
                )));
            }
            vmx::skip_instruction();
        }
        reason::VMCALL => {
            let cs_ar = vmx::vmread(guest::CS_ACCESS_RIGHTS);
            let vcpu = VcpuContext {
                vcpu_id: 0,
                cpl: ((cs_ar >> 5) & 3) as u8,
                paging: paging_state(),
            };
            let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
            regs.rax = hypercalls::dispatch(dom, host, &vcpu, regs.rax, args);
            vmx::skip_instruction();
            if let Some(r) = dom.shutdown {
                return Some(Outcome::Shutdown(r));
            }
        }
        reason::IO_INSTRUCTION => {
            let port = (qual >> 16) as u16;
            let size = (qual & 7) + 1;
            let is_in = qual & (1 << 3) != 0;
            if qual & (1 << 4) != 0 {
                return Some(Outcome::Crashed(format!(
                    "unsupported string I/O on port {port:#x}"
                )));
            }
            if is_in {
                let mask = if size == 4 {
                    0xFFFF_FFFF
                } else {
                    (1u64 << (size * 8)) - 1
                };
                regs.rax = (regs.rax & !mask) | mask;
            } else if port == 0xE9 {
                let domid = dom.domid;
                dom.console
                    .push(&[regs.rax as u8], |line| kprintln!("(d{domid}) {line}"));
            }
            vmx::skip_instruction();
        }
        reason::RDMSR => {
            let msr = regs.rcx as u32;
            match read_msr(dom, msr) {
                Some(v) => {
                    regs.rax = v & 0xFFFF_FFFF;
                    regs.rdx = v >> 32;
                    vmx::skip_instruction();
                }
                None => {
                    log::debug!("d{}: rdmsr {msr:#x}: #GP", dom.domid);
                    inject_gp();
                }
            }
        }
        reason::WRMSR => {
            let msr = regs.rcx as u32;
            let value = (regs.rdx << 32) | (regs.rax & 0xFFFF_FFFF);
            if write_msr(dom, msr, value, host) {
                vmx::skip_instruction();
            } else {
                log::debug!("d{}: wrmsr {msr:#x} = {value:#x}: #GP", dom.domid);
                inject_gp();
            }
        }
        reason::EPT_VIOLATION => {
            return Some(Outcome::Crashed(format!(
                "EPT violation at gpa {:#x} (qualification {qual:#x}) rip={:#x}",
                vmx::vmread(ro::GUEST_PHYSICAL_ADDR_FULL),
                vmx::guest_rip()
            )));
        }
        reason::EPT_MISCONFIG => {
            return Some(Outcome::Crashed(format!(
                "EPT misconfiguration at gpa {:#x}",
                vmx::vmread(ro::GUEST_PHYSICAL_ADDR_FULL)
            )));
        }
        other => {
            return Some(Outcome::Crashed(format!(
                "unhandled VM exit reason {other} (qualification {qual:#x}) at rip={:#x}",
                vmx::guest_rip()
            )));
        }
    }
    None
}

const IA32_APIC_BASE: u32 = 0x1B;
const IA32_MISC_ENABLE: u32 = 0x1A0;

fn read_msr(dom: &Domain, msr: u32) -> Option<u64> {
    if let Some(v) = dom.p2m.guest_mtrr_read(msr) {
        return Some(v);
    }
    match msr {
        vmx::IA32_EFER => Some(vmx::vmread(guest::IA32_EFER_FULL)),
        vmx::IA32_PAT => Some(vmx::vmread(guest::IA32_PAT_FULL)),
        IA32_APIC_BASE => Some(0xFEE0_0000 | (1 << 11) | (1 << 8)),
        IA32_MISC_ENABLE => Some(1), // fast strings enabled
        _ => None,
    }
}

fn write_msr(dom: &mut Domain, msr: u32, value: u64, host: &mut KernelHost) -> bool {
    if dom.p2m.guest_mtrr_read(msr).is_some() {
        let ok = dom.p2m.guest_mtrr_write(host, msr, value).is_ok();
        dom.ept_dirty |= ok;
        return ok;
    }
    match msr {
        vmx::IA32_EFER => {
            const ALLOWED: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
            if value & !ALLOWED != 0 {
                return false;
            }
            let lma = vmx::vmread(guest::IA32_EFER_FULL) & (1 << 10);
            vmx::vmwrite(guest::IA32_EFER_FULL, (value & !(1 << 10)) | lma);
            true
        }
        vmx::IA32_PAT => {
            let valid = (0..8).all(|i| matches!((value >> (i * 8)) & 0xFF, 0 | 1 | 4 | 5 | 6 | 7));
            if valid {
                vmx::vmwrite(guest::IA32_PAT_FULL, value);
            }
            valid
        }
        IA32_APIC_BASE | IA32_MISC_ENABLE => true,
        _ => false,
    }
}
