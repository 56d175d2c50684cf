//! Exception handling for the hypervisor itself: an IDT whose handlers print
//! vector, RIP, error code and CR2 and end the run with a failure verdict
//! (NMIs excepted: they are counted and the run goes on), plus the TSS that
//! VMX needs as host TR.

use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86::dtables::{lidt, DescriptorTablePointer};

/// Register state pushed by the exception stubs (see the assembly below).
#[repr(C)]
pub struct ExceptionFrame {
    regs: [u64; 15],
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

macro_rules! stubs {
    ($($n:literal $kind:ident),* $(,)?) => {
        core::arch::global_asm!(
            $(concat!(".balign 16\nexc_stub_", $n, ":\n", stubs!(@push $kind), "push ", $n, "\njmp exc_common\n"),)*
            "
    exc_common:
        push rax
        push rcx
        push rdx
        push rbx
        push rbp
        push rsi
        push rdi
        push r8
        push r9
        push r10
        push r11
        push r12
        push r13
        push r14
        push r15
        mov rdi, rsp
        mov rbx, rsp
        and rsp, -16
        call {handler}
        // The handler returned: a fault it fixed up (see `cpu::rdmsr_safe`).
        mov rsp, rbx
        pop r15
        pop r14
        pop r13
        pop r12
        pop r11
        pop r10
        pop r9
        pop r8
        pop rdi
        pop rsi
        pop rbp
        pop rbx
        pop rdx
        pop rcx
        pop rax
        add rsp, 16
        iretq
    .section .rodata
    .balign 8
    .global EXC_STUBS
    EXC_STUBS:",
            $(concat!(".quad exc_stub_", $n),)*
            ".text",
            handler = sym exception_handler,
        );
    };
    (@push err) => { "" };
    (@push noerr) => { "push 0\n" };
}

stubs!(
    0 noerr, 1 noerr, 2 noerr, 3 noerr, 4 noerr, 5 noerr, 6 noerr, 7 noerr,
    8 err, 9 noerr, 10 err, 11 err, 12 err, 13 err, 14 err, 15 noerr,
    16 noerr, 17 err, 18 noerr, 19 noerr, 20 noerr, 21 err, 22 noerr, 23 noerr,
    24 noerr, 25 noerr, 26 noerr, 27 noerr, 28 noerr, 29 err, 30 err, 31 noerr,
);

extern "C" {
    static EXC_STUBS: [u64; 32];
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct IdtEntry([u64; 2]);

static mut IDT: [IdtEntry; 32] = [IdtEntry([0; 2]); 32];

/// The 64-bit TSS (only RSP0/IST matter, and we use neither yet).
#[repr(C, packed)]
pub struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

/// The hypervisor's TSS; its address is the VMCS host TR base.
pub static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
};

extern "C" {
    /// The GDT set up by the boot code: null, code64 (0x08), data (0x10), TSS (0x18, two slots).
    pub static mut HOST_GDT: [u64; 5];
}

/// Host selectors (see the boot GDT).
pub const HOST_CS: u16 = 0x08;
/// Host data selector.
pub const HOST_DS: u16 = 0x10;
/// Host TSS selector.
pub const HOST_TR: u16 = 0x18;

/// Installs the TSS descriptor and the exception IDT.
pub fn init() {
    // SAFETY: runs once on the boot CPU before anything else uses the GDT slots
    // 3/4, the IDT or the TSS; the addresses are of statics that live forever.
    unsafe {
        let tss = core::ptr::addr_of!(TSS) as u64;
        let limit = (size_of::<Tss>() - 1) as u64;
        let gdt = &mut *core::ptr::addr_of_mut!(HOST_GDT);
        gdt[3] = limit | ((tss & 0xFF_FFFF) << 16) | (0x89 << 40) | (((tss >> 24) & 0xFF) << 56);
        gdt[4] = tss >> 32;
        core::arch::asm!("ltr {0:x}", in(reg) HOST_TR, options(nostack));

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        let stubs = &*core::ptr::addr_of!(EXC_STUBS);
        for (entry, &addr) in idt.iter_mut().zip(stubs.iter()) {
            entry.0[0] = (addr & 0xFFFF)
                | ((HOST_CS as u64) << 16)
                | (0x8E << 40)
                | (((addr >> 16) & 0xFFFF) << 48);
            entry.0[1] = addr >> 32;
        }
        let ptr = DescriptorTablePointer::new(&*core::ptr::addr_of!(IDT));
        lidt(&ptr);
    }
}

/// Base and limit of the IDT (for the VMCS host state).
pub fn idt_base() -> u64 {
    core::ptr::addr_of!(IDT) as u64
}

/// Index of R11 in [`ExceptionFrame::regs`] (pushed RAX first, R15 last).
const FRAME_R11: usize = 4;

/// NMIs the hypervisor has taken (while it ran, or as NMI VM exits).
static NMIS: AtomicU64 = AtomicU64::new(0);
/// Whether the first NMI has been logged.
static NMI_LOGGED: AtomicBool = AtomicBool::new(false);

/// Hands an NMI that caused a VM exit ("NMI exiting" is set) to the host's
/// vector-2 handler, as Xen and KVM do: NMIs stay blocked after such an exit
/// until an IRET, which the handler ends with. Guests never see host NMIs
/// (Xen delivers them to no domU either); the first one is logged.
pub fn handle_nmi_exit() {
    // SAFETY: vector 2 of the hypervisor's IDT is the stub that counts the
    // NMI and returns with IRETQ; `int 2` pushes an interrupt frame on the
    // current (hypervisor) stack, which the kernel target uses without a
    // red zone.
    unsafe { core::arch::asm!("int 2") };
    log_nmis();
}

/// Logs the first NMI once, outside the NMI handler (which takes no lock).
pub fn log_nmis() {
    let n = NMIS.load(Ordering::Relaxed);
    if n != 0 && !NMI_LOGGED.swap(true, Ordering::Relaxed) {
        log::warn!("NMI received (handled by the hypervisor, not given to a guest); {n} so far");
    }
}

extern "C" fn exception_handler(frame: &mut ExceptionFrame) {
    // An NMI (from the hardware, or `handle_nmi_exit`): counted, and the
    // interrupted code resumes. No lock is taken here: the NMI may have
    // interrupted a holder of the serial lock.
    if frame.vector == 2 {
        NMIS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // A #GP of the one RDMSR that expects it: skip it (2 bytes) and say so in R11.
    let fixup = crate::cpu::RDMSR_SAFE_RIP.load(Ordering::Relaxed);
    if frame.vector == 13 && fixup != 0 && frame.rip == fixup {
        frame.rip += 2;
        frame.regs[FRAME_R11] = 1;
        return;
    }
    // SAFETY: reading CR2 has no side effects.
    let cr2 = unsafe { x86::controlregs::cr2() };
    crate::serial::write_fmt_forced(format_args!(
        "\nxenolith: EXCEPTION vector={} rip={:#x} error={:#x} cr2={:#x} rsp={:#x}\n",
        frame.vector, frame.rip, frame.error, cr2, frame.rsp
    ));
    crate::machine_exit(false)
}
