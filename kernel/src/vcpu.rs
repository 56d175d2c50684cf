//! A virtual CPU: its VMCS, registers and the state the VMCS does not hold,
//! the VMCS set-up for the boot processor (64-bit direct boot) and for
//! application processors (real mode at the SIPI vector), and the switch of
//! extended state and MSRs between vCPUs that share the physical CPU.

use crate::cpu::{ExtendedState, SwitchedState};
use crate::mem;
use crate::vmx::{self, GuestRegs, VmxCaps};
use hypercalls::builder;
use x86::vmx::vmcs::{control, guest};

/// Where a vCPU is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Ready to run.
    Runnable,
    /// Executed HLT with interrupts enabled: waits for an interrupt.
    Halted,
    /// An application processor before its startup IPI (or after INIT).
    WaitForSipi,
    /// Halted with interrupts disabled: only INIT could revive it.
    Down,
}

/// One virtual CPU.
pub struct Vcpu {
    /// The vCPU's index (= APIC id = Xen vcpu id).
    pub id: u32,
    /// Host-physical address of its VMCS.
    pub vmcs: u64,
    /// General-purpose registers while it is not in VMX non-root operation.
    pub regs: GuestRegs,
    /// Whether VMLAUNCH has run on the current VMCS contents.
    pub launched: bool,
    /// Scheduling state.
    pub state: RunState,
    /// x87/SSE/AVX state and XCR0 while another vCPU runs.
    pub ext: ExtendedState,
    /// MSRs and CR2 while another vCPU runs.
    pub switched: SwitchedState,
    /// The x2APIC.
    pub lapic: platform::lapic::Lapic,
    /// VM exits taken.
    pub exits: u64,
    /// Its own VPID (0: VPIDs are not used), flushed and freed with it.
    pub vpid: u16,
    /// An event woke it from halt and it has not run since (see crate `sched`).
    pub boosted: bool,
}

/// CR0.NE.
pub const CR0_NE: u64 = 1 << 5;

/// The controls every vCPU of a domain uses.
pub struct VmcsConfig {
    /// The EPT pointer.
    pub eptp: u64,
    /// MSR bitmap page.
    pub msr_bitmap: u64,
    /// Exit on PAUSE (several vCPUs share one physical CPU).
    pub pause_exiting: bool,
}

/// How the boot processor starts.
#[derive(Clone, Copy, Debug)]
pub enum BootEntry {
    /// 64-bit code at `rip` with the builder's identity map and RSI = `boot_params`
    /// (docs/protocol.md, Linux's 64-bit boot protocol).
    Long64 {
        /// Guest-physical entry point.
        rip: u64,
        /// Guest-physical address of `boot_params`.
        boot_params: u64,
    },
    /// Xen's PVH entry (`docs/misc/pvh.pandoc`): 32-bit flat protected mode, paging
    /// off, at `eip` with EBX = `start_info`.
    Pvh32 {
        /// The image's `XEN_ELFNOTE_PHYS32_ENTRY`.
        eip: u32,
        /// Guest-physical address of `struct hvm_start_info`.
        start_info: u32,
    },
}

impl Vcpu {
    /// Creates vCPU `id` with a fresh VMCS (left current): the boot processor
    /// starts as `entry` says; the others wait for a startup IPI.
    pub fn new(id: u32, caps: &VmxCaps, cfg: &VmcsConfig, entry: BootEntry) -> Option<Vcpu> {
        let ext = ExtendedState::new()?;
        let vpid = if caps.vpid_usable() { alloc_vpid()? } else { 0 };
        let Some(vmcs) = vmx::new_vmcs(caps) else {
            free_vpid(vpid);
            return None;
        };
        setup_controls(caps, cfg, vpid);
        let mut regs = GuestRegs::default();
        let state = if id == 0 {
            match entry {
                BootEntry::Long64 { rip, boot_params } => {
                    setup_bsp_state(caps, rip);
                    regs.rsi = boot_params;
                }
                BootEntry::Pvh32 { eip, start_info } => {
                    setup_pvh_state(caps, eip);
                    regs.rbx = start_info as u64;
                }
            }
            RunState::Runnable
        } else {
            setup_real_mode_state(caps, 0);
            RunState::WaitForSipi
        };
        Some(Vcpu {
            id,
            vmcs,
            regs,
            launched: false,
            state,
            ext,
            switched: SwitchedState::default(),
            lapic: platform::lapic::Lapic::new(id),
            exits: 0,
            vpid,
            boosted: false,
        })
    }

    /// Starts this (current-VMCS) vCPU in real mode at `vector << 12`, as a startup IPI does.
    pub fn start_at_sipi(&mut self, caps: &VmxCaps, vector: u8) {
        setup_real_mode_state(caps, vector);
        self.regs = GuestRegs::default();
        self.state = RunState::Runnable;
    }

    /// Frees the VMCS and the VPID, whose translations are flushed first (the
    /// extended-state area frees itself).
    pub fn destroy(self) {
        vmx::clear_vmcs(self.vmcs);
        mem::free_frames(self.vmcs, 1);
        free_vpid(self.vpid);
    }

    /// Saves what the VMCS does not hold (extended state, switched MSRs) as
    /// this vCPU leaves the physical CPU.
    pub fn save(&mut self) {
        self.ext.save();
        self.switched.save();
    }

    /// Makes this vCPU the one on the physical CPU: loads its VMCS, extended
    /// state and switched MSRs (whoever ran before has been saved).
    pub fn load(&mut self) {
        vmx::load_vmcs(self.vmcs);
        self.ext.restore();
        self.switched.restore();
    }
}

/// I/O ports guests reach without a VM exit, as in Xen's HVM I/O bitmap: 0x80
/// (POST codes; Linux's `io_delay`) and 0xED (the other delay port). Nothing
/// emulated sits there and writes to them have no effect a guest could use.
const PASSTHROUGH_PORTS: [u16; 2] = [0x80, 0xED];

/// I/O bitmaps A and B (host-physical; one pair for every vCPU, never written
/// after it is made): every port exits but [`PASSTHROUGH_PORTS`].
static IO_BITMAPS: spin::Once<Option<(u64, u64)>> = spin::Once::new();

fn io_bitmaps() -> Option<(u64, u64)> {
    *IO_BITMAPS.call_once(|| {
        let a = crate::mem::alloc_frame()?;
        let Some(b) = crate::mem::alloc_frame() else {
            crate::mem::free_frames(a, 1);
            return None;
        };
        let mut bitmap = [0xFFu8; 4096];
        for p in PASSTHROUGH_PORTS {
            bitmap[p as usize / 8] &= !(1 << (p % 8));
        }
        // SAFETY: `a` and `b` are fresh frames owned by the hypervisor,
        // identity-mapped; bitmap B (ports 0x8000-0xFFFF) has no passthrough port.
        unsafe {
            core::ptr::copy_nonoverlapping(bitmap.as_ptr(), a as *mut u8, 4096);
            core::ptr::write_bytes(b as *mut u8, 0xFF, 4096);
        }
        Some((a, b))
    })
}

/// VPIDs in use, one bit each (VPID 0 is the host's and never handed out).
static VPIDS: spin::Mutex<[u64; 1024]> = spin::Mutex::new({
    let mut used = [0; 1024];
    used[0] = 1;
    used
});

/// A VPID no other vCPU holds: each vCPU has its own, so translations of one
/// never serve another (all vCPUs of all domains share the physical CPU).
fn alloc_vpid() -> Option<u16> {
    let mut used = VPIDS.lock();
    let (w, word) = used.iter_mut().enumerate().find(|(_, w)| **w != u64::MAX)?;
    let bit = word.trailing_ones();
    *word |= 1 << bit;
    Some((w * 64) as u16 + bit as u16)
}

/// Flushes the translations tagged with `vpid` and frees it (0: nothing to do).
fn free_vpid(vpid: u16) {
    if vpid != 0 {
        vmx::invvpid(vmx::Invvpid::SingleContext, vpid);
        VPIDS.lock()[vpid as usize / 64] &= !(1 << (vpid % 64));
    }
}

fn setup_controls(caps: &VmxCaps, cfg: &VmcsConfig, vpid: u16) {
    use vmx::*;
    let pin = VmxCaps::adjust(
        caps.pin,
        PIN_EXTERNAL_INTERRUPT_EXITING | PIN_NMI_EXITING | PIN_PREEMPTION_TIMER,
    );
    // MONITOR/MWAIT exit (and get #UD, as on Xen): a guest must not sleep the
    // physical CPU, nor watch hypervisor memory.
    let mut want_proc = PROC_HLT_EXITING
        | PROC_MWAIT_EXITING
        | PROC_MONITOR_EXITING
        | PROC_USE_MSR_BITMAPS
        | PROC_SECONDARY_CONTROLS;
    // I/O bitmaps where the processor has them (else every port exits).
    let io = io_bitmaps().filter(|_| (caps.proc >> 32) as u32 & PROC_USE_IO_BITMAPS != 0);
    match io {
        Some((a, b)) => {
            want_proc |= PROC_USE_IO_BITMAPS;
            vmwrite(control::IO_BITMAP_A_ADDR_FULL, a);
            vmwrite(control::IO_BITMAP_B_ADDR_FULL, b);
        }
        None => want_proc |= PROC_UNCOND_IO_EXITING,
    }
    let mut want_proc2 = PROC2_ENABLE_EPT
        | if vpid != 0 { PROC2_ENABLE_VPID } else { 0 }
        | PROC2_UNRESTRICTED_GUEST
        | PROC2_ENABLE_RDTSCP
        | PROC2_ENABLE_INVPCID;
    // A vCPU spinning on a lock held by a descheduled one, or waiting for a
    // halted one to answer an IPI, gives the CPU up: after a long PAUSE loop
    // where the processor can tell (Xen's ple_gap 128, ple_window 4096),
    // else (KVM offers no PLE to its guests) at every PAUSE, an exit that
    // yields only when another vCPU can run (`DomainRun::pause`).
    let ple = cfg.pause_exiting && caps.pause_loop_exiting();
    if ple {
        want_proc2 |= PROC2_PAUSE_LOOP_EXITING;
    } else if cfg.pause_exiting {
        want_proc |= PROC_PAUSE_EXITING;
    }
    let proc = VmxCaps::adjust(caps.proc, want_proc);
    let proc2 = VmxCaps::adjust(caps.proc2, want_proc2);
    if ple {
        vmwrite(PLE_GAP, 128);
        vmwrite(PLE_WINDOW, 4096);
    }
    vmwrite(control::PINBASED_EXEC_CONTROLS, pin as u64);
    vmwrite(control::PRIMARY_PROCBASED_EXEC_CONTROLS, proc as u64);
    vmwrite(control::SECONDARY_PROCBASED_EXEC_CONTROLS, proc2 as u64);
    vmwrite(
        control::VMEXIT_CONTROLS,
        VmxCaps::adjust(
            caps.exit,
            EXIT_SAVE_DEBUG_CONTROLS
                | EXIT_HOST_ADDR_SPACE_SIZE
                | EXIT_ACK_INTERRUPT
                | EXIT_SAVE_LOAD_PAT_EFER,
        ) as u64,
    );
    vmwrite(control::EXCEPTION_BITMAP, 0);
    // Every other control field is written too, none left to the zeroed
    // region: no #PF filtering (mask and match 0, with bit 14 of the
    // exception bitmap clear), no CR3-target values, no MSR-load/store
    // lists, no TSC offset (RDTSC is not offset), no event error code or
    // instruction length until one is injected.
    vmwrite(control::PAGE_FAULT_ERR_CODE_MASK, 0);
    vmwrite(control::PAGE_FAULT_ERR_CODE_MATCH, 0);
    vmwrite(control::CR3_TARGET_COUNT, 0);
    vmwrite(control::VMEXIT_MSR_STORE_COUNT, 0);
    vmwrite(control::VMEXIT_MSR_LOAD_COUNT, 0);
    vmwrite(control::VMENTRY_MSR_LOAD_COUNT, 0);
    vmwrite(control::VMENTRY_EXCEPTION_ERR_CODE, 0);
    vmwrite(control::VMENTRY_INSTRUCTION_LEN, 0);
    vmwrite(control::TSC_OFFSET_FULL, 0);
    // The TPR threshold exists only where "use TPR shadow" may be set (which
    // is not used).
    if caps.proc_may(PROC_USE_TPR_SHADOW) {
        vmwrite(control::TPR_THRESHOLD, 0);
    }
    vmwrite(control::MSR_BITMAPS_ADDR_FULL, cfg.msr_bitmap);
    vmwrite(control::EPTP_FULL, cfg.eptp);
    if proc2 & PROC2_ENABLE_VPID != 0 {
        vmwrite(control::VPID, vpid as u64);
    }
    // CR0.NE is fixed to 1 in VMX operation but real-mode code (an AP's
    // trampoline) clears it: the guest owns every bit except NE, whose
    // changes exit and are emulated (see `domain::mov_to_cr0`).
    vmwrite(control::CR0_GUEST_HOST_MASK, CR0_NE);
    vmwrite(control::CR4_GUEST_HOST_MASK, 1 << 13); // CR4.VMXE stays the host's
    setup_host_state();
}

/// Sets the VM-entry controls for a guest in (or out of) IA-32e mode.
pub fn set_entry_controls(caps: &VmxCaps, ia32e: bool) {
    use vmx::*;
    let want = ENTRY_LOAD_DEBUG_CONTROLS
        | ENTRY_LOAD_PAT_EFER
        | if ia32e { ENTRY_IA32E_MODE_GUEST } else { 0 };
    vmwrite(
        control::VMENTRY_CONTROLS,
        VmxCaps::adjust(caps.entry, want) as u64,
    );
}

/// Keeps the "IA-32e mode guest" entry control equal to the guest's EFER.LMA,
/// which the guest changes itself when it turns paging on or off in long mode.
pub fn sync_ia32e_mode(caps: &VmxCaps) {
    let lma = vmx::vmread(guest::IA32_EFER_FULL) & (1 << 10) != 0;
    let ctl = vmx::vmread(control::VMENTRY_CONTROLS);
    if (ctl & vmx::ENTRY_IA32E_MODE_GUEST as u64 != 0) != lma {
        set_entry_controls(caps, lma);
    }
}

#[allow(clippy::too_many_arguments)]
fn seg(sel_f: u32, base_f: u32, lim_f: u32, ar_f: u32, sel: u16, base: u64, limit: u32, ar: u32) {
    vmx::vmwrite(sel_f, sel as u64);
    vmx::vmwrite(base_f, base);
    vmx::vmwrite(lim_f, limit as u64);
    vmx::vmwrite(ar_f, ar as u64);
}

/// The data segment registers: (selector, base, limit, access rights) fields.
const DATA_SEGS: [(u32, u32, u32, u32); 5] = [
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
];

fn common_guest_state() {
    use vmx::vmwrite;
    vmwrite(guest::IA32_PAT_FULL, 0x0007_0406_0007_0406);
    vmwrite(guest::DR7, 0x400);
    vmwrite(guest::RFLAGS, 0x2);
    seg(
        guest::LDTR_SELECTOR,
        guest::LDTR_BASE,
        guest::LDTR_LIMIT,
        guest::LDTR_ACCESS_RIGHTS,
        0,
        0,
        0,
        0x1_0000,
    );
    vmwrite(guest::IA32_SYSENTER_CS, 0);
    vmwrite(guest::IA32_SYSENTER_ESP, 0);
    vmwrite(guest::IA32_SYSENTER_EIP, 0);
    vmwrite(guest::IA32_DEBUGCTL_FULL, 0);
    vmwrite(guest::INTERRUPTIBILITY_STATE, 0);
    vmwrite(guest::ACTIVITY_STATE, 0);
    vmwrite(guest::PENDING_DBG_EXCEPTIONS, 0);
    vmwrite(guest::LINK_PTR_FULL, u64::MAX);
    vmwrite(guest::SMBASE, 0);
    // Loaded by VM entry when the guest uses PAE paging (EPT on), saved by VM
    // exit; no vCPU starts in PAE paging.
    for f in [
        guest::PDPTE0_FULL,
        guest::PDPTE1_FULL,
        guest::PDPTE2_FULL,
        guest::PDPTE3_FULL,
    ] {
        vmwrite(f, 0);
    }
    vmwrite(control::VMENTRY_INTERRUPTION_INFO_FIELD, 0);
}

/// 64-bit direct boot (docs/protocol.md): paging on through the builder's identity map.
fn setup_bsp_state(caps: &VmxCaps, entry: u64) {
    use vmx::vmwrite;
    set_entry_controls(caps, true);
    vmwrite(control::CR4_READ_SHADOW, 0x20);
    vmwrite(control::CR0_READ_SHADOW, 0x8000_0031);
    vmwrite(
        guest::CR0,
        (0x8000_0031 | caps.cr0_fixed.0) & caps.cr0_fixed.1,
    );
    vmwrite(guest::CR3, builder::PML4_GPA);
    vmwrite(guest::CR4, (0x20 | caps.cr4_fixed.0) & caps.cr4_fixed.1);
    vmwrite(guest::IA32_EFER_FULL, 0x500);
    vmwrite(guest::RIP, entry);
    vmwrite(guest::RSP, 0x8_0000);
    common_guest_state();
    seg(
        guest::CS_SELECTOR,
        guest::CS_BASE,
        guest::CS_LIMIT,
        guest::CS_ACCESS_RIGHTS,
        builder::BOOT_CS,
        0,
        0xFFFF_FFFF,
        0xA09B,
    );
    for (s, b, l, a) in DATA_SEGS {
        seg(s, b, l, a, builder::BOOT_DS, 0, 0xFFFF_FFFF, 0xC093);
    }
    seg(
        guest::TR_SELECTOR,
        guest::TR_BASE,
        guest::TR_LIMIT,
        guest::TR_ACCESS_RIGHTS,
        0,
        0,
        0x67,
        0x8B,
    );
    vmwrite(guest::GDTR_BASE, builder::GDT_GPA);
    vmwrite(guest::GDTR_LIMIT, 31);
    vmwrite(guest::IDTR_BASE, 0);
    vmwrite(guest::IDTR_LIMIT, 0);
}

/// Xen's PVH entry state (`docs/misc/pvh.pandoc`, and what Xen's toolstack loads through
/// `vcpu_hvm_x86_32`): CR0 = PE | ET, paging off, CR4 = 0 and EFER = 0 as the guest sees
/// them; CS a 32-bit execute/read segment and DS, ES, SS, FS, GS read/write segments, all
/// with base 0 and a 4 GiB limit and selector 0 (as Xen loads them); TR a busy 32-bit TSS
/// of limit 0x67; GDTR and IDTR empty; EFLAGS = 2 (IF and TF clear).
fn setup_pvh_state(caps: &VmxCaps, eip: u32) {
    const PE_ET: u64 = 0x11;
    const PG: u64 = 1 << 31;
    load_paging_off_state(
        caps,
        &PagingOffState {
            cr0_shadow: PE_ET,
            cr0: PE_ET | (caps.cr0_fixed.0 & !PG),
            rip: eip as u64,
            cs: (0, 0, 0xFFFF_FFFF, 0xC09B),
            data: (0xFFFF_FFFF, 0xC093),
            tr_limit: 0x67,
            table_limit: 0,
        },
    );
}

/// The state after INIT and a startup IPI with `vector` (SDM vol. 3, 9.1.1 and
/// 11.4.4.1): real mode, CS = vector << 8, IP = 0 (unrestricted guest runs it).
fn setup_real_mode_state(caps: &VmxCaps, vector: u8) {
    const PE: u64 = 1;
    const PG: u64 = 1 << 31;
    let cs = (vector as u16) << 8;
    // CD and NW as after INIT are shown to the guest; the real CR0 keeps the
    // bits VMX requires except PE and PG, which unrestricted guest frees.
    load_paging_off_state(
        caps,
        &PagingOffState {
            cr0_shadow: 0x6000_0010,
            cr0: 0x10 | (caps.cr0_fixed.0 & !(PE | PG)),
            rip: 0,
            cs: (cs, (cs as u64) << 4, 0xFFFF, 0x9B),
            data: (0xFFFF, 0x93),
            tr_limit: 0xFFFF,
            table_limit: 0xFFFF,
        },
    );
}

/// A start with paging off (real mode or flat protected mode): CR3, CR4 (bar
/// what VMX fixes), EFER, RSP and every selector but CS's zero.
struct PagingOffState {
    /// CR0 as the guest reads it.
    cr0_shadow: u64,
    /// CR0's bits before VMX's fixed bits are applied.
    cr0: u64,
    /// The entry point.
    rip: u64,
    /// CS: selector, base, limit, access rights.
    cs: (u16, u64, u32, u32),
    /// DS, ES, SS, FS and GS (base 0): limit and access rights.
    data: (u32, u32),
    /// TR's limit (a busy TSS at base 0).
    tr_limit: u32,
    /// GDTR's and IDTR's limit (base 0).
    table_limit: u64,
}

fn load_paging_off_state(caps: &VmxCaps, st: &PagingOffState) {
    use vmx::vmwrite;
    set_entry_controls(caps, false);
    vmwrite(control::CR0_READ_SHADOW, st.cr0_shadow);
    vmwrite(control::CR4_READ_SHADOW, 0);
    vmwrite(guest::CR0, st.cr0 & caps.cr0_fixed.1);
    vmwrite(guest::CR3, 0);
    vmwrite(guest::CR4, caps.cr4_fixed.0 & caps.cr4_fixed.1);
    vmwrite(guest::IA32_EFER_FULL, 0);
    vmwrite(guest::RIP, st.rip);
    vmwrite(guest::RSP, 0);
    common_guest_state();
    let (sel, base, limit, ar) = st.cs;
    seg(
        guest::CS_SELECTOR,
        guest::CS_BASE,
        guest::CS_LIMIT,
        guest::CS_ACCESS_RIGHTS,
        sel,
        base,
        limit,
        ar,
    );
    for (s, b, l, a) in DATA_SEGS {
        seg(s, b, l, a, 0, 0, st.data.0, st.data.1);
    }
    seg(
        guest::TR_SELECTOR,
        guest::TR_BASE,
        guest::TR_LIMIT,
        guest::TR_ACCESS_RIGHTS,
        0,
        0,
        st.tr_limit,
        0x8B,
    );
    vmwrite(guest::GDTR_BASE, 0);
    vmwrite(guest::GDTR_LIMIT, st.table_limit);
    vmwrite(guest::IDTR_BASE, 0);
    vmwrite(guest::IDTR_LIMIT, st.table_limit);
}
