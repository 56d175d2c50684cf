//! A minimal IDT that catches #UD and #GP, for probing instructions that should fault, and the
//! control-register, XCR0 and SSE/AVX register access the hostile modes need.
//!
//! A probe arms a resume address before its instruction; the handler records the vector and
//! returns there. A fault with no probe armed is reported and crashes the domain. Other vectors
//! have no gate: they escalate to a triple fault, which ends the domain.
//!
//! The guest is built for a soft-float target: compiled Rust code never touches the XMM/YMM
//! registers or MXCSR, so the assembly here may load and store them without the compiler's
//! knowledge (no register operands of those classes are available on this target anyway).

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::xen;

/// `#UD`.
pub const VECTOR_UD: u8 = 6;
/// `#GP`.
pub const VECTOR_GP: u8 = 13;

/// `TRAP_VECTOR` when nothing was caught.
const NO_TRAP: u64 = u64::MAX;
/// The code segment selector the domain builder's GDT gives 64-bit code.
const CODE_SELECTOR: u64 = 0x10;
/// Vectors covered by the IDT (the architectural exceptions).
const IDT_VECTORS: usize = 32;

/// Where a caught fault resumes; 0 while no probe is armed.
static TRAP_RESUME: AtomicU64 = AtomicU64::new(0);
/// The vector of the last caught fault, or [`NO_TRAP`].
static TRAP_VECTOR: AtomicU64 = AtomicU64::new(NO_TRAP);

/// The IDT: 16-byte gates as pairs of `u64`.
struct Idt(UnsafeCell<[u64; 2 * IDT_VECTORS]>);

// SAFETY: the guest runs on one vCPU with interrupts off; the table is written only by
// `install` and otherwise read by the CPU.
unsafe impl Sync for Idt {}

/// The guest's IDT.
static IDT: Idt = Idt(UnsafeCell::new([0; 2 * IDT_VECTORS]));

global_asm!(
    ".text",
    // #UD: no error code. Frame: [rsp] = RIP.
    ".global __test_guest_trap_ud",
    "__test_guest_trap_ud:",
    "    push rax",
    "    mov qword ptr [rip + {vector}], 6",
    "    mov rax, qword ptr [rip + {resume}]",
    "    test rax, rax",
    "    jz 2f",
    "    mov qword ptr [rsp + 8], rax",
    "    pop rax",
    "    iretq",
    "2:  mov rsi, qword ptr [rsp + 8]",
    "    mov edi, 6",
    "    and rsp, -16",
    "    call {unexpected}",
    "    ud2",
    // #GP: error code. Frame: [rsp] = error code, [rsp + 8] = RIP.
    ".global __test_guest_trap_gp",
    "__test_guest_trap_gp:",
    "    push rax",
    "    mov qword ptr [rip + {vector}], 13",
    "    mov rax, qword ptr [rip + {resume}]",
    "    test rax, rax",
    "    jz 3f",
    "    mov qword ptr [rsp + 16], rax",
    "    pop rax",
    "    add rsp, 8",
    "    iretq",
    "3:  mov rsi, qword ptr [rsp + 16]",
    "    mov edi, 13",
    "    and rsp, -16",
    "    call {unexpected}",
    "    ud2",
    vector = sym TRAP_VECTOR,
    resume = sym TRAP_RESUME,
    unexpected = sym unexpected_trap,
);

extern "C" {
    /// The #UD entry point above (not callable: only its address is used).
    fn __test_guest_trap_ud();
    /// The #GP entry point above (not callable: only its address is used).
    fn __test_guest_trap_gp();
}

/// Reports a fault that no probe expected and crashes the domain.
extern "C" fn unexpected_trap(vector: u64, rip: u64) -> ! {
    say!("FAIL unexpected exception vector {vector} at rip={rip:#x}");
    xen::shutdown(xen::SHUTDOWN_CRASH)
}

/// The operand of `lidt`.
#[repr(C, packed)]
struct IdtPointer {
    /// Size of the table minus one.
    limit: u16,
    /// Linear address of the table.
    base: u64,
}

/// A 64-bit interrupt gate (DPL 0, present) to `handler`, as two `u64`s.
fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF)
        | (CODE_SELECTOR << 16)
        | (0x8E << 40)
        | (((handler >> 16) & 0xFFFF) << 48);
    [low, handler >> 32]
}

/// Fills the IDT with gates for #UD and #GP and loads it.
pub fn install() {
    let idt = IDT.0.get();
    for (vector, handler) in [
        (
            VECTOR_UD,
            __test_guest_trap_ud as unsafe extern "C" fn() as usize as u64,
        ),
        (
            VECTOR_GP,
            __test_guest_trap_gp as unsafe extern "C" fn() as usize as u64,
        ),
    ] {
        let [low, high] = gate(handler);
        let i = 2 * usize::from(vector);
        // SAFETY: `idt` points to the static table; indices are below 2 * IDT_VECTORS and no
        // reference to the table exists (single vCPU, interrupts off).
        unsafe {
            (*idt)[i] = low;
            (*idt)[i + 1] = high;
        }
    }
    let ptr = IdtPointer {
        limit: (16 * IDT_VECTORS - 1) as u16,
        base: idt as u64,
    };
    // SAFETY: the table holds valid gates for #UD and #GP to handlers that resume at an armed
    // probe's address (or crash the domain); vectors without a gate end the domain, as with no
    // IDT at all. `lidt` only reads `ptr`.
    unsafe { asm!("lidt [{p}]", p = in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

/// Takes the vector a probe caught, if any, and disarms the probe.
fn take_trap() -> Option<u8> {
    TRAP_RESUME.store(0, Ordering::SeqCst);
    match TRAP_VECTOR.swap(NO_TRAP, Ordering::SeqCst) {
        NO_TRAP => None,
        v => Some(v as u8),
    }
}

/// Executes `xsetbv` (XCR `xcr` = `value`) and returns the vector it faulted with, if any.
/// Needs [`install`] first.
pub fn xsetbv(xcr: u32, value: u64) -> Option<u8> {
    TRAP_VECTOR.store(NO_TRAP, Ordering::SeqCst);
    // SAFETY: `xsetbv` changes only which extended state components are enabled; compiled code
    // uses none of them (soft-float target). A fault resumes at label 2 through the IDT handler,
    // which leaves every register but the recorded vector as it was.
    unsafe {
        asm!(
            "lea {t}, [rip + 2f]",
            "mov qword ptr [rip + {resume}], {t}",
            "xsetbv",
            "2:",
            t = out(reg) _,
            resume = sym TRAP_RESUME,
            in("ecx") xcr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
        );
    }
    take_trap()
}

/// Reads XCR0 with `xgetbv` (needs CR4.OSXSAVE).
pub fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `xgetbv` reads XCR0 into EDX:EAX; the caller has set CR4.OSXSAVE.
    unsafe {
        asm!(
            "xgetbv",
            in("ecx") 0u32,
            out("eax") lo,
            out("edx") hi,
            options(nomem, nostack, preserves_flags),
        );
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CR4.OSFXSR: SSE instructions and FXSAVE of XMM state.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4.OSXMMEXCPT: unmasked SIMD exceptions raise #XM.
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// CR4.OSXSAVE: XSAVE and XGETBV/XSETBV.
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// CR0.MP.
const CR0_MP: u64 = 1 << 1;
/// CR0.EM.
const CR0_EM: u64 = 1 << 2;
/// CR0.TS.
const CR0_TS: u64 = 1 << 3;

/// Enables SSE for this guest: CR0.EM and CR0.TS clear, CR0.MP set, and `cr4_bits` (some of
/// [`CR4_OSFXSR`], [`CR4_OSXMMEXCPT`], [`CR4_OSXSAVE`]) set in CR4.
pub fn enable_sse(cr4_bits: u64) {
    // SAFETY: these CR0/CR4 bits only enable the FPU/SSE/XSAVE instructions, which compiled code
    // does not use; paging and protection bits are left as they are.
    unsafe {
        asm!(
            "mov {t}, cr0",
            "and {t}, {clear}",
            "or {t}, {mp}",
            "mov cr0, {t}",
            "mov {t}, cr4",
            "or {t}, {bits}",
            "mov cr4, {t}",
            t = out(reg) _,
            clear = in(reg) !(CR0_EM | CR0_TS),
            mp = in(reg) CR0_MP,
            bits = in(reg) cr4_bits,
            options(nomem, nostack),
        );
    }
}

/// The sixteen XMM registers, as stored by [`store_xmm`].
pub type XmmRegs = [u128; 16];

/// Stores XMM0-15 to `out` (legacy SSE `movdqu`; needs CR4.OSFXSR).
pub fn store_xmm(out: &mut XmmRegs) {
    // SAFETY: the stores write exactly the 256 bytes of `out`; registers are only read.
    unsafe {
        asm!(
            "movdqu [{p}], xmm0",
            "movdqu [{p} + 16], xmm1",
            "movdqu [{p} + 32], xmm2",
            "movdqu [{p} + 48], xmm3",
            "movdqu [{p} + 64], xmm4",
            "movdqu [{p} + 80], xmm5",
            "movdqu [{p} + 96], xmm6",
            "movdqu [{p} + 112], xmm7",
            "movdqu [{p} + 128], xmm8",
            "movdqu [{p} + 144], xmm9",
            "movdqu [{p} + 160], xmm10",
            "movdqu [{p} + 176], xmm11",
            "movdqu [{p} + 192], xmm12",
            "movdqu [{p} + 208], xmm13",
            "movdqu [{p} + 224], xmm14",
            "movdqu [{p} + 240], xmm15",
            p = in(reg) out.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
}

/// Loads XMM0-15 from `regs` (legacy SSE `movdqu`: the YMM upper halves are kept).
pub fn load_xmm(regs: &XmmRegs) {
    // SAFETY: the loads read exactly the 256 bytes of `regs`; the XMM registers are not used by
    // compiled code (see the module comment).
    unsafe {
        asm!(
            "movdqu xmm0, [{p}]",
            "movdqu xmm1, [{p} + 16]",
            "movdqu xmm2, [{p} + 32]",
            "movdqu xmm3, [{p} + 48]",
            "movdqu xmm4, [{p} + 64]",
            "movdqu xmm5, [{p} + 80]",
            "movdqu xmm6, [{p} + 96]",
            "movdqu xmm7, [{p} + 112]",
            "movdqu xmm8, [{p} + 128]",
            "movdqu xmm9, [{p} + 144]",
            "movdqu xmm10, [{p} + 160]",
            "movdqu xmm11, [{p} + 176]",
            "movdqu xmm12, [{p} + 192]",
            "movdqu xmm13, [{p} + 208]",
            "movdqu xmm14, [{p} + 224]",
            "movdqu xmm15, [{p} + 240]",
            p = in(reg) regs.as_ptr(),
            options(nostack, preserves_flags, readonly),
        );
    }
}

/// Stores the upper halves (bits 255:128) of YMM0-15 to `out` (`vextractf128`; needs AVX
/// enabled in XCR0).
pub fn store_ymm_high(out: &mut XmmRegs) {
    // SAFETY: as for `store_xmm`: 256 bytes written to `out`, registers only read.
    unsafe {
        asm!(
            "vextractf128 [{p}], ymm0, 1",
            "vextractf128 [{p} + 16], ymm1, 1",
            "vextractf128 [{p} + 32], ymm2, 1",
            "vextractf128 [{p} + 48], ymm3, 1",
            "vextractf128 [{p} + 64], ymm4, 1",
            "vextractf128 [{p} + 80], ymm5, 1",
            "vextractf128 [{p} + 96], ymm6, 1",
            "vextractf128 [{p} + 112], ymm7, 1",
            "vextractf128 [{p} + 128], ymm8, 1",
            "vextractf128 [{p} + 144], ymm9, 1",
            "vextractf128 [{p} + 160], ymm10, 1",
            "vextractf128 [{p} + 176], ymm11, 1",
            "vextractf128 [{p} + 192], ymm12, 1",
            "vextractf128 [{p} + 208], ymm13, 1",
            "vextractf128 [{p} + 224], ymm14, 1",
            "vextractf128 [{p} + 240], ymm15, 1",
            p = in(reg) out.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
}

/// Sets the upper halves of YMM0-15 from `high`, keeping the XMM halves (`vinsertf128`; needs
/// AVX enabled in XCR0).
pub fn load_ymm_high(high: &XmmRegs) {
    // SAFETY: reads the 256 bytes of `high`; the YMM registers are not used by compiled code.
    unsafe {
        asm!(
            "vinsertf128 ymm0, ymm0, [{p}], 1",
            "vinsertf128 ymm1, ymm1, [{p} + 16], 1",
            "vinsertf128 ymm2, ymm2, [{p} + 32], 1",
            "vinsertf128 ymm3, ymm3, [{p} + 48], 1",
            "vinsertf128 ymm4, ymm4, [{p} + 64], 1",
            "vinsertf128 ymm5, ymm5, [{p} + 80], 1",
            "vinsertf128 ymm6, ymm6, [{p} + 96], 1",
            "vinsertf128 ymm7, ymm7, [{p} + 112], 1",
            "vinsertf128 ymm8, ymm8, [{p} + 128], 1",
            "vinsertf128 ymm9, ymm9, [{p} + 144], 1",
            "vinsertf128 ymm10, ymm10, [{p} + 160], 1",
            "vinsertf128 ymm11, ymm11, [{p} + 176], 1",
            "vinsertf128 ymm12, ymm12, [{p} + 192], 1",
            "vinsertf128 ymm13, ymm13, [{p} + 208], 1",
            "vinsertf128 ymm14, ymm14, [{p} + 224], 1",
            "vinsertf128 ymm15, ymm15, [{p} + 240], 1",
            p = in(reg) high.as_ptr(),
            options(nostack, preserves_flags, readonly),
        );
    }
}

/// Reads MXCSR (`stmxcsr`; needs CR4.OSFXSR).
pub fn stmxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: `stmxcsr` writes the 4 bytes of `v`.
    unsafe {
        asm!("stmxcsr [{p}]", p = in(reg) &mut v, options(nostack, preserves_flags));
    }
    v
}

/// Sets MXCSR (`ldmxcsr`; reserved bits must be clear or it raises #GP).
pub fn ldmxcsr(v: u32) {
    // SAFETY: `ldmxcsr` reads the 4 bytes of `v`; MXCSR only affects SSE arithmetic, which
    // compiled code does not use.
    unsafe {
        asm!("ldmxcsr [{p}]", p = in(reg) &v, options(nostack, preserves_flags, readonly));
    }
}

/// A spin-loop hint (`pause`), which xenolith handles as a yield to the next vCPU.
pub fn pause() {
    core::hint::spin_loop();
}
