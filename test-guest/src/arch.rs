//! Tiny wrappers around the privileged x86 instructions the guest needs.
//!
//! Every `unsafe` block of the guest except the hypercall itself lives here.

use core::arch::asm;

/// Register values returned by `cpuid`.
#[derive(Clone, Copy, Debug)]
pub struct CpuidResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// Executes `cpuid` for `leaf`/`subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: `cpuid` only writes the four registers named here. RBX is reserved by LLVM, so
    // it is saved in a scratch register and swapped back; nothing touches memory or the stack.
    unsafe {
        asm!(
            "mov {tmp:r}, rbx",
            "cpuid",
            "xchg {tmp:r}, rbx",
            tmp = out(reg) ebx,
            inlateout("eax") leaf => eax,
            inlateout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nostack, nomem, preserves_flags),
        );
    }
    CpuidResult { eax, ebx, ecx, edx }
}

/// Reads model-specific register `msr`.
///
/// An MSR the (virtual) CPU does not implement raises #GP, which with no IDT ends the domain
/// with a triple fault; that is a test failure, not memory unsafety.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdmsr` reads an MSR into EDX:EAX and has no memory side effects.
    unsafe {
        asm!(
            "rdmsr",
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
            options(nostack, nomem, preserves_flags),
        );
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// First variable-range MTRR MSR (`IA32_MTRR_PHYSBASE0`).
const MTRR_VAR_FIRST: u32 = 0x200;
/// Last variable-range MTRR MSR the architecture defines (`IA32_MTRR_PHYSMASK9`).
const MTRR_VAR_LAST: u32 = 0x213;

/// Writes `value` to a variable-range MTRR (`IA32_MTRR_PHYSBASEn`/`IA32_MTRR_PHYSMASKn`).
///
/// Panics if `msr` is not a variable-range MTRR: only memory *types* may be changed this way.
pub fn wrmsr_mtrr(msr: u32, value: u64) {
    assert!(
        (MTRR_VAR_FIRST..=MTRR_VAR_LAST).contains(&msr),
        "wrmsr_mtrr: {msr:#x} is not a variable-range MTRR"
    );
    // SAFETY: the MSR is a variable-range MTRR (checked above). Changing it only changes the
    // caching type of a physical range, never a mapping or the contents of memory, so no Rust
    // object is affected. A reserved-bit violation raises #GP (a triple fault: a test failure).
    unsafe {
        asm!(
            "wrmsr",
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            options(nostack, nomem, preserves_flags),
        );
    }
}

/// End of the identity map the domain builder provides (4 GiB).
const IDENTITY_MAP_END: u64 = 1 << 32;

/// Reads a `u32` at guest-physical address `gpa` through the identity map with a volatile load.
///
/// # Safety
/// `gpa` must be 4-byte aligned and below 4 GiB (checked), and the caller must ensure that no
/// Rust reference to that memory is live as `&mut` (it is meant for memory the domain builder
/// or the hypervisor owns: `boot_params`, the command line, `shared_info`).
pub unsafe fn read_phys_u32(gpa: u64) -> u32 {
    assert!(
        gpa & 3 == 0 && gpa + 4 <= IDENTITY_MAP_END,
        "read_phys_u32({gpa:#x})"
    );
    // SAFETY: the address is identity-mapped (below 4 GiB) and aligned; the caller guarantees
    // there is no conflicting mutable reference.
    unsafe { core::ptr::read_volatile(gpa as *const u32) }
}

/// Reads a byte at guest-physical address `gpa` through the identity map with a volatile load.
///
/// # Safety
/// As for [`read_phys_u32`]: `gpa` below 4 GiB (checked) and no live `&mut` to that byte.
pub unsafe fn read_phys_u8(gpa: u64) -> u8 {
    assert!(gpa < IDENTITY_MAP_END, "read_phys_u8({gpa:#x})");
    // SAFETY: the address is identity-mapped; the caller guarantees there is no conflicting
    // mutable reference.
    unsafe { core::ptr::read_volatile(gpa as *const u8) }
}

/// Writes `bytes` one at a time to I/O port `port` (`out dx, al`).
pub fn out_bytes(port: u16, bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: an `out` to a port touches no guest memory; callers name debug ports
        // (0xE9, 0x12), which only print.
        unsafe {
            asm!("out dx, al", in("dx") port, in("al") b, options(nomem, nostack, preserves_flags))
        };
    }
}

/// Halts forever with interrupts disabled.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this vCPU; it touches no memory.
        unsafe { asm!("cli", "hlt", options(nostack, nomem)) };
    }
}

/// The operand of `lidt`: a 16-bit limit and a 64-bit base.
#[repr(C, packed)]
struct DescriptorTablePointer {
    /// Size of the table minus one.
    limit: u16,
    /// Linear address of the table.
    base: u64,
}

/// Loads an empty IDT and executes `int3`.
///
/// With a zero-limit IDT the #BP cannot be delivered (#GP), nor can the #GP (#DF), nor the #DF:
/// the vCPU triple-faults, which ends the domain.
pub fn triple_fault() -> ! {
    let idtr = DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: this deliberately ends the domain: after `lidt` of a zero-limit IDT, `int3`
    // escalates to a triple fault and nothing after it runs. `lidt` only reads `idtr`.
    unsafe {
        asm!(
            "lidt [{idtr}]",
            "int3",
            idtr = in(reg) &idtr,
            options(nostack, readonly),
        );
    }
    halt_forever()
}
