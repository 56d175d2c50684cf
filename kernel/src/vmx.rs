//! VMX: capability discovery, VMXON, VMCS set-up and the VM entry/exit path.

use x86::bits64::vmx;
use x86::msr::{rdmsr, wrmsr};
use x86::vmx::vmcs::{guest, host, ro};

const IA32_FEATURE_CONTROL: u32 = 0x3A;
const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
const IA32_VMX_EXIT_CTLS: u32 = 0x483;
const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
const IA32_VMX_MISC: u32 = 0x485;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48B;
const IA32_VMX_EPT_VPID_CAP: u32 = 0x48C;
const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48D;
const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48E;
const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48F;
const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
/// IA32_EFER.
pub const IA32_EFER: u32 = 0xC000_0080;
/// IA32_PAT.
pub const IA32_PAT: u32 = 0x277;

/// Pin-based controls used.
pub const PIN_EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
/// NMI exiting.
pub const PIN_NMI_EXITING: u32 = 1 << 3;
/// Activate the VMX-preemption timer.
pub const PIN_PREEMPTION_TIMER: u32 = 1 << 6;
/// Interrupt-window exiting.
pub const PROC_INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;
/// Primary processor-based controls used.
pub const PROC_HLT_EXITING: u32 = 1 << 7;
/// PAUSE exiting.
pub const PROC_PAUSE_EXITING: u32 = 1 << 30;
/// MWAIT exiting.
pub const PROC_MWAIT_EXITING: u32 = 1 << 10;
/// MONITOR exiting.
pub const PROC_MONITOR_EXITING: u32 = 1 << 29;
/// Unconditional I/O exiting.
pub const PROC_UNCOND_IO_EXITING: u32 = 1 << 24;
/// Use TPR shadow.
pub const PROC_USE_TPR_SHADOW: u32 = 1 << 21;
/// Use I/O bitmaps.
pub const PROC_USE_IO_BITMAPS: u32 = 1 << 25;
/// Use MSR bitmaps.
pub const PROC_USE_MSR_BITMAPS: u32 = 1 << 28;
/// Activate secondary controls.
pub const PROC_SECONDARY_CONTROLS: u32 = 1 << 31;
/// Secondary controls.
pub const PROC2_ENABLE_EPT: u32 = 1 << 1;
/// Enable RDTSCP.
pub const PROC2_ENABLE_RDTSCP: u32 = 1 << 3;
/// Enable VPID.
pub const PROC2_ENABLE_VPID: u32 = 1 << 5;
/// Unrestricted guest.
pub const PROC2_UNRESTRICTED_GUEST: u32 = 1 << 7;
/// Enable INVPCID.
pub const PROC2_ENABLE_INVPCID: u32 = 1 << 12;
/// Secondary control: PAUSE-loop exiting (exit only on a long spin loop).
pub const PROC2_PAUSE_LOOP_EXITING: u32 = 1 << 10;
/// VMCS field PLE_Gap: most TSC ticks between two PAUSEs of one loop.
pub const PLE_GAP: u32 = 0x4020;
/// VMCS field PLE_Window: TSC ticks a loop may spin before it exits.
pub const PLE_WINDOW: u32 = 0x4022;
/// VM-exit controls: save DR7 and IA32_DEBUGCTL in the guest-state area.
pub const EXIT_SAVE_DEBUG_CONTROLS: u32 = 1 << 2;
/// Host address-space size (a 64-bit host).
pub const EXIT_HOST_ADDR_SPACE_SIZE: u32 = 1 << 9;
/// Acknowledge interrupt on exit.
pub const EXIT_ACK_INTERRUPT: u32 = 1 << 15;
/// Save/load IA32_PAT and IA32_EFER on exit.
pub const EXIT_SAVE_LOAD_PAT_EFER: u32 = (1 << 18) | (1 << 19) | (1 << 20) | (1 << 21);
/// VM-entry controls: load DR7 and IA32_DEBUGCTL from the guest-state area.
pub const ENTRY_LOAD_DEBUG_CONTROLS: u32 = 1 << 2;
/// IA-32e mode guest.
pub const ENTRY_IA32E_MODE_GUEST: u32 = 1 << 9;
/// Load IA32_PAT and IA32_EFER on entry.
pub const ENTRY_LOAD_PAT_EFER: u32 = (1 << 14) | (1 << 15);

/// The VMX capabilities of this processor, read once at boot.
#[derive(Clone, Copy, Debug)]
pub struct VmxCaps {
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// Allowed settings (low = must be 1, high = may be 1) of each control field.
    pub pin: u64,
    /// Primary processor-based.
    pub proc: u64,
    /// Secondary processor-based.
    pub proc2: u64,
    /// VM-exit.
    pub exit: u64,
    /// VM-entry.
    pub entry: u64,
    /// IA32_VMX_MISC.
    pub misc: u64,
    /// IA32_VMX_EPT_VPID_CAP.
    pub ept_vpid: u64,
    /// CR0/CR4 fixed bits.
    pub cr0_fixed: (u64, u64),
    /// CR4 fixed bits.
    pub cr4_fixed: (u64, u64),
}

impl VmxCaps {
    fn may(ctl: u64, bit: u32) -> bool {
        (ctl >> 32) as u32 & bit != 0
    }
    /// EPT supported.
    pub fn ept(&self) -> bool {
        Self::may(self.proc2, PROC2_ENABLE_EPT)
    }
    /// VPID supported.
    pub fn vpid(&self) -> bool {
        Self::may(self.proc2, PROC2_ENABLE_VPID)
    }
    /// Unrestricted guest supported.
    pub fn unrestricted_guest(&self) -> bool {
        Self::may(self.proc2, PROC2_UNRESTRICTED_GUEST)
    }
    /// EPT paging structures may be WB.
    pub fn ept_wb(&self) -> bool {
        self.ept_vpid & (1 << 14) != 0
    }
    /// EPT 2 MiB pages.
    pub fn ept_2m(&self) -> bool {
        self.ept_vpid & (1 << 16) != 0
    }
    /// EPT 1 GiB pages.
    pub fn ept_1g(&self) -> bool {
        self.ept_vpid & (1 << 17) != 0
    }
    /// INVEPT single-context.
    pub fn invept_single(&self) -> bool {
        self.ept_vpid & (1 << 25) != 0
    }
    /// INVEPT all-context.
    pub fn invept_all(&self) -> bool {
        self.ept_vpid & (1 << 26) != 0
    }
    /// VPIDs are used: the control exists and INVVPID can flush one VPID
    /// (single-context) and every VPID (all-context). Without them every
    /// vCPU runs with VPID 0, whose translations each VM entry and exit drop.
    pub fn vpid_usable(&self) -> bool {
        self.vpid() && self.ept_vpid & (1 << 32) != 0 && self.ept_vpid & (3 << 41) == 3 << 41
    }
    /// VMX-preemption timer.
    pub fn preemption_timer(&self) -> bool {
        Self::may(self.pin, PIN_PREEMPTION_TIMER)
    }
    /// The preemption timer counts down once every 2^rate TSC ticks.
    pub fn preemption_timer_rate(&self) -> u32 {
        (self.misc & 0x1F) as u32
    }
    /// VM entry may put the guest in the HLT activity state.
    pub fn activity_hlt(&self) -> bool {
        self.misc & (1 << 6) != 0
    }
    /// PAUSE-loop exiting supported.
    pub fn pause_loop_exiting(&self) -> bool {
        Self::may(self.proc2, PROC2_PAUSE_LOOP_EXITING)
    }
    /// Whether a processor-based control may be set.
    pub fn proc_may(&self, bit: u32) -> bool {
        Self::may(self.proc, bit)
    }
    /// Adjusts a wanted control value to the capability MSR: forces the
    /// must-be-1 bits and drops what is not allowed.
    pub fn adjust(ctl: u64, want: u32) -> u32 {
        (want | ctl as u32) & (ctl >> 32) as u32
    }
}

/// Why VMX could not be enabled.
#[derive(Debug)]
pub enum VmxError {
    /// CPUID.1:ECX.VMX is clear.
    NoVmx,
    /// IA32_FEATURE_CONTROL is locked with VMX disabled.
    DisabledByFirmware,
    /// The processor lacks EPT, VPID or unrestricted guest.
    MissingFeature(&'static str),
    /// VMXON failed.
    VmxonFailed,
}

fn rd(msr: u32) -> u64 {
    // SAFETY: only called for VMX capability MSRs after CPUID said VMX exists
    // (and for the true/secondary ones only when IA32_VMX_BASIC/PROCBASED say so).
    unsafe { rdmsr(msr) }
}

/// Reads the VMX capability MSRs.
pub fn read_caps() -> Result<VmxCaps, VmxError> {
    let cpuid = x86::cpuid::CpuId::new();
    if !cpuid.get_feature_info().is_some_and(|f| f.has_vmx()) {
        return Err(VmxError::NoVmx);
    }
    let basic = rd(IA32_VMX_BASIC);
    let has_true = basic & (1 << 55) != 0;
    let pick = |normal, true_msr| if has_true { rd(true_msr) } else { rd(normal) };
    let proc = pick(IA32_VMX_PROCBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS);
    let proc2 = if (proc >> 32) as u32 & PROC_SECONDARY_CONTROLS != 0 {
        rd(IA32_VMX_PROCBASED_CTLS2)
    } else {
        0
    };
    let ept_vpid = if proc2 >> 32 & ((PROC2_ENABLE_EPT | PROC2_ENABLE_VPID) as u64) != 0 {
        rd(IA32_VMX_EPT_VPID_CAP)
    } else {
        0
    };
    Ok(VmxCaps {
        basic,
        pin: pick(IA32_VMX_PINBASED_CTLS, IA32_VMX_TRUE_PINBASED_CTLS),
        proc,
        proc2,
        exit: pick(IA32_VMX_EXIT_CTLS, IA32_VMX_TRUE_EXIT_CTLS),
        entry: pick(IA32_VMX_ENTRY_CTLS, IA32_VMX_TRUE_ENTRY_CTLS),
        misc: rd(IA32_VMX_MISC),
        ept_vpid,
        cr0_fixed: (rd(IA32_VMX_CR0_FIXED0), rd(IA32_VMX_CR0_FIXED1)),
        cr4_fixed: (rd(IA32_VMX_CR4_FIXED0), rd(IA32_VMX_CR4_FIXED1)),
    })
}

impl core::fmt::Display for VmxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoVmx => f.write_str("CPUID reports no VMX"),
            Self::DisabledByFirmware => {
                f.write_str("VMX disabled (and locked) in IA32_FEATURE_CONTROL")
            }
            Self::MissingFeature(what) => write!(f, "the processor lacks {what}"),
            Self::VmxonFailed => f.write_str("VMXON failed"),
        }
    }
}

/// Checks IA32_FEATURE_CONTROL and the required features, then enters VMX root operation.
pub fn enable(caps: &VmxCaps) -> Result<(), VmxError> {
    if !caps.ept() {
        return Err(VmxError::MissingFeature("EPT"));
    }
    if !caps.unrestricted_guest() {
        return Err(VmxError::MissingFeature("unrestricted guest"));
    }
    if !caps.ept_wb() {
        return Err(VmxError::MissingFeature("EPT write-back paging structures"));
    }
    // Without it a guest that never exits (`jmp $`) would own the CPU.
    if !caps.preemption_timer() {
        return Err(VmxError::MissingFeature("the VMX-preemption timer"));
    }
    // SAFETY: IA32_FEATURE_CONTROL exists on every VMX-capable processor.
    let fc = unsafe { rdmsr(IA32_FEATURE_CONTROL) };
    if fc & 1 == 0 {
        // SAFETY: unlocked: we may enable VMX outside SMX and lock it.
        unsafe { wrmsr(IA32_FEATURE_CONTROL, fc | 0x5) };
    } else if fc & 0x4 == 0 {
        return Err(VmxError::DisabledByFirmware);
    }
    let region = crate::mem::alloc_frame().ok_or(VmxError::VmxonFailed)?;
    // SAFETY: the region is a fresh, identity-mapped, zeroed frame that we own
    // for the life of the hypervisor. CR0/CR4 are adjusted to the VMX fixed
    // bits (this also sets CR4.VMXE) before VMXON, as the SDM requires.
    unsafe {
        (region as *mut u32).write(caps.basic as u32 & 0x7FFF_FFFF);
        let cr0 = (x86::controlregs::cr0().bits() as u64 | caps.cr0_fixed.0) & caps.cr0_fixed.1;
        x86::controlregs::cr0_write(x86::controlregs::Cr0::from_bits_truncate(cr0 as usize));
        let cr4 = (x86::controlregs::cr4().bits() as u64 | caps.cr4_fixed.0 | (1 << 13))
            & caps.cr4_fixed.1;
        x86::controlregs::cr4_write(x86::controlregs::Cr4::from_bits_truncate(cr4 as usize));
        vmx::vmxon(region).map_err(|_| VmxError::VmxonFailed)?;
    }
    // Whatever ran before (firmware, a previous kernel) may have left
    // translations tagged with EPTPs or VPIDs this hypervisor will reuse.
    if caps.invept_all() {
        invept_raw(2, 0);
    }
    if caps.vpid_usable() {
        invvpid(Invvpid::AllContexts, 0);
    }
    Ok(())
}

/// The INVVPID kinds used.
#[derive(Clone, Copy, Debug)]
pub enum Invvpid {
    /// Every translation tagged with one VPID (type 1).
    SingleContext,
    /// Every VPID but 0 (type 2).
    AllContexts,
}

/// INVVPID: drops the linear and combined translations tagged with `vpid`
/// (or every VPID). Callers check [`VmxCaps::vpid_usable`].
pub fn invvpid(kind: Invvpid, vpid: u16) {
    let desc: [u64; 2] = [vpid as u64, 0];
    let kind: u64 = match kind {
        Invvpid::SingleContext => 1,
        Invvpid::AllContexts => 2,
    };
    // SAFETY: INVVPID with a valid descriptor in VMX root operation only drops
    // cached translations; the caller checked the kind is supported.
    unsafe {
        core::arch::asm!("invvpid {0}, [{1}]", in(reg) kind, in(reg) desc.as_ptr(), options(nostack));
    }
}

fn invept_raw(kind: u64, eptp: u64) {
    let desc: [u64; 2] = [eptp, 0];
    // SAFETY: INVEPT with a valid descriptor in VMX root operation only drops
    // cached translations; callers check the kind is supported.
    unsafe {
        core::arch::asm!("invept {0}, [{1}]", in(reg) kind, in(reg) desc.as_ptr(), options(nostack));
    }
}

/// Prints the capabilities line of the serial protocol.
pub fn log_caps(caps: &VmxCaps) {
    let yn = |b: bool| if b { "yes" } else { "no" };
    log::info!(
        "VMX caps: EPT {} VPID {} unrestricted-guest {} EPT-WB {} EPT-2M {} EPT-1G {} \
         preemption-timer {} (rate 2^{}) INVEPT-single {} VPID-per-vCPU {} VMCS-rev {:#x}",
        yn(caps.ept()),
        yn(caps.vpid()),
        yn(caps.unrestricted_guest()),
        yn(caps.ept_wb()),
        yn(caps.ept_2m()),
        yn(caps.ept_1g()),
        yn(caps.preemption_timer()),
        caps.preemption_timer_rate(),
        yn(caps.invept_single()),
        yn(caps.vpid_usable()),
        caps.basic as u32 & 0x7FFF_FFFF
    );
}

/// Writes a VMCS field of the current VMCS.
pub fn vmwrite(field: u32, value: u64) {
    // SAFETY: a VMCS is current whenever a vCPU is being set up or run; a
    // failure (bad field) is reported, never undefined behaviour.
    if unsafe { vmx::vmwrite(field, value) }.is_err() {
        log::error!(
            "vmwrite {field:#x} = {value:#x} failed (error {})",
            vm_instruction_error()
        );
    }
}

/// Reads a VMCS field of the current VMCS.
pub fn vmread(field: u32) -> u64 {
    // SAFETY: as for vmwrite; an invalid field reads as 0.
    unsafe { vmx::vmread(field) }.unwrap_or(0)
}

/// The VM-instruction error field.
pub fn vm_instruction_error() -> u64 {
    // SAFETY: reading the error field of the current VMCS.
    unsafe { vmx::vmread(ro::VM_INSTRUCTION_ERROR) }.unwrap_or(0)
}

/// Invalidates EPT-derived translations for one EPTP (or all, when single-context is missing).
pub fn invept(caps: &VmxCaps, eptp: u64) {
    invept_raw(if caps.invept_single() { 1 } else { 2 }, eptp);
}

/// Guest general-purpose registers, saved and restored around each VM entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    /// RAX.
    pub rax: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RBX.
    pub rbx: u64,
    /// RBP.
    pub rbp: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
}

core::arch::global_asm!(
    r#"
    .global xenolith_vm_enter
xenolith_vm_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi
    mov rax, 0x6C14
    vmwrite rax, rsp
    cmp rsi, 0
    mov rax, [rdi + 0]
    mov rcx, [rdi + 8]
    mov rdx, [rdi + 16]
    mov rbx, [rdi + 24]
    mov rbp, [rdi + 32]
    mov rsi, [rdi + 40]
    mov r8,  [rdi + 56]
    mov r9,  [rdi + 64]
    mov r10, [rdi + 72]
    mov r11, [rdi + 80]
    mov r12, [rdi + 88]
    mov r13, [rdi + 96]
    mov r14, [rdi + 104]
    mov r15, [rdi + 112]
    mov rdi, [rdi + 48]
    jne 2f
    vmlaunch
    jmp 3f
2:  vmresume
3:  mov eax, 1
    jc 4f
    mov eax, 2
4:  pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .global xenolith_vm_exit
xenolith_vm_exit:
    push rdi
    mov rdi, [rsp + 8]
    mov [rdi + 0], rax
    mov [rdi + 8], rcx
    mov [rdi + 16], rdx
    mov [rdi + 24], rbx
    mov [rdi + 32], rbp
    mov [rdi + 40], rsi
    mov [rdi + 56], r8
    mov [rdi + 64], r9
    mov [rdi + 72], r10
    mov [rdi + 80], r11
    mov [rdi + 88], r12
    mov [rdi + 96], r13
    mov [rdi + 104], r14
    mov [rdi + 112], r15
    pop rax
    mov [rdi + 48], rax
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    xor eax, eax
    ret
"#
);

extern "C" {
    fn xenolith_vm_enter(regs: *mut GuestRegs, launched: u64) -> u64;
    fn xenolith_vm_exit();
}

/// How a VM entry ended.
#[derive(Debug, PartialEq, Eq)]
pub enum EntryResult {
    /// The guest ran and exited; read the exit reason from the VMCS.
    Exit,
    /// VMLAUNCH/VMRESUME failed with VMfailInvalid (no current VMCS).
    FailInvalid,
    /// VMLAUNCH/VMRESUME failed with VMfailValid; see the VM-instruction error.
    FailValid,
}

/// Enters the guest of the current VMCS and returns at its next VM exit.
pub fn enter(regs: &mut GuestRegs, launched: bool) -> EntryResult {
    // SAFETY: the current VMCS was fully set up by `setup_vmcs`, its HOST_RIP
    // is `xenolith_vm_exit`, which restores the callee-saved registers that
    // `xenolith_vm_enter` pushed and returns to us; HOST_RSP is written by the
    // entry stub itself. The guest's GPRs live in `regs` across the call.
    match unsafe { xenolith_vm_enter(regs, launched as u64) } {
        0 => EntryResult::Exit,
        1 => EntryResult::FailInvalid,
        _ => EntryResult::FailValid,
    }
}

/// Writes the host-state area of the current VMCS.
pub fn setup_host_state() {
    // SAFETY: reading control registers and MSRs of the running host.
    let (cr0, cr3, cr4, efer, pat) = unsafe {
        (
            x86::controlregs::cr0().bits() as u64,
            x86::controlregs::cr3(),
            x86::controlregs::cr4().bits() as u64,
            rdmsr(IA32_EFER),
            rdmsr(IA32_PAT),
        )
    };
    vmwrite(host::CR0, cr0);
    vmwrite(host::CR3, cr3);
    vmwrite(host::CR4, cr4);
    vmwrite(host::CS_SELECTOR, crate::idt::HOST_CS as u64);
    for f in [host::SS_SELECTOR, host::DS_SELECTOR, host::ES_SELECTOR] {
        vmwrite(f, crate::idt::HOST_DS as u64);
    }
    vmwrite(host::FS_SELECTOR, 0);
    vmwrite(host::GS_SELECTOR, 0);
    vmwrite(host::TR_SELECTOR, crate::idt::HOST_TR as u64);
    vmwrite(host::FS_BASE, 0);
    vmwrite(host::GS_BASE, 0);
    vmwrite(host::TR_BASE, core::ptr::addr_of!(crate::idt::TSS) as u64);
    vmwrite(
        host::GDTR_BASE,
        core::ptr::addr_of!(crate::idt::HOST_GDT) as u64,
    );
    vmwrite(host::IDTR_BASE, crate::idt::idt_base());
    vmwrite(host::IA32_SYSENTER_CS, 0);
    vmwrite(host::IA32_SYSENTER_ESP, 0);
    vmwrite(host::IA32_SYSENTER_EIP, 0);
    vmwrite(host::IA32_EFER_FULL, efer);
    vmwrite(host::IA32_PAT_FULL, pat);
    vmwrite(host::RIP, xenolith_vm_exit as *const () as u64);
}

/// Makes a fresh VMCS current: allocates, stamps the revision, VMCLEAR, VMPTRLD.
pub fn new_vmcs(caps: &VmxCaps) -> Option<u64> {
    let vmcs = crate::mem::alloc_frame()?;
    // SAFETY: a fresh, zeroed, identity-mapped frame owned by this vCPU.
    unsafe {
        (vmcs as *mut u32).write(caps.basic as u32 & 0x7FFF_FFFF);
        vmx::vmclear(vmcs).ok()?;
        vmx::vmptrld(vmcs).ok()?;
    }
    Some(vmcs)
}

/// Makes `vmcs` the current VMCS.
pub fn load_vmcs(vmcs: u64) {
    // SAFETY: `vmcs` is a VMCS region created by `new_vmcs`.
    if unsafe { vmx::vmptrld(vmcs) }.is_err() {
        log::error!("VMPTRLD {vmcs:#x} failed");
    }
}

/// VMCLEARs a VMCS so its frame can be freed.
pub fn clear_vmcs(vmcs: u64) {
    // SAFETY: `vmcs` is a VMCS region created by `new_vmcs`.
    let _ = unsafe { vmx::vmclear(vmcs) };
}

/// Reads a guest field (shorthand used by the exit handlers).
pub fn guest_rip() -> u64 {
    vmread(guest::RIP)
}

/// Whether the guest runs 64-bit code: IA32_EFER.LMA and CS.L.
pub fn guest_in_64bit_mode() -> bool {
    vmread(guest::IA32_EFER_FULL) & (1 << 10) != 0
        && vmread(guest::CS_ACCESS_RIGHTS) & (1 << 13) != 0
}

/// Advances the guest RIP past the exiting instruction, which ends any
/// interrupt shadow of a preceding STI or MOV SS (SDM vol. 3, 25.4.2). The
/// instruction pointer wraps as on hardware: at 2^64 in 64-bit code, else at
/// the code segment's width (CS.D: 32 or 16 bits), so a guest instruction at
/// the top of the address space neither overflows nor leaves bits VM entry
/// refuses.
pub fn skip_instruction() {
    let len = vmread(ro::VMEXIT_INSTRUCTION_LEN);
    let width = if guest_in_64bit_mode() {
        u64::MAX
    } else if vmread(guest::CS_ACCESS_RIGHTS) & (1 << 14) != 0 {
        0xFFFF_FFFF
    } else {
        0xFFFF
    };
    vmwrite(guest::RIP, guest_rip().wrapping_add(len) & width);
    let shadow = vmread(guest::INTERRUPTIBILITY_STATE);
    if shadow & 3 != 0 {
        vmwrite(guest::INTERRUPTIBILITY_STATE, shadow & !3);
    }
}

/// Sets or clears bits of the primary processor-based controls.
pub fn set_proc_controls(bits: u32, on: bool) {
    let cur = vmread(x86::vmx::vmcs::control::PRIMARY_PROCBASED_EXEC_CONTROLS);
    let new = if on {
        cur | bits as u64
    } else {
        cur & !(bits as u64)
    };
    if new != cur {
        vmwrite(
            x86::vmx::vmcs::control::PRIMARY_PROCBASED_EXEC_CONTROLS,
            new,
        );
    }
}

/// Sets the pin-based preemption-timer control and value.
pub fn arm_preemption_timer(value: u32) {
    vmwrite(guest::VMX_PREEMPTION_TIMER_VALUE, value as u64);
}
