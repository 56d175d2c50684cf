//! Host CPU services the vCPU code needs: the TSC and its frequency, XSAVE
//! enablement, and saving/restoring guest extended state and the MSRs that the
//! VMCS does not switch.

use core::sync::atomic::{AtomicU64, Ordering};
use x86::io::{inb, outb};

/// TSC frequency in kHz, measured once at boot against the PIT.
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
/// Size of the XSAVE area for every feature the CPU supports (0: no XSAVE).
static XSAVE_SIZE: AtomicU64 = AtomicU64::new(0);
/// The XCR0 bits the CPU supports.
static XCR0_SUPPORTED: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear in the host.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Address of the RDMSR in [`rdmsr_safe`] (0 until it first runs): the
/// exception handler turns a #GP there into a return.
pub static RDMSR_SAFE_RIP: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// RDMSR of `msr` on the host, or `None` if the CPU has no such MSR (#GP).
#[inline(never)]
pub fn rdmsr_safe(msr: u32) -> Option<u64> {
    let (lo, hi, faulted): (u32, u32, u64);
    // SAFETY: RDMSR has no side effects on the MSRs it is used for. The
    // address of the RDMSR is published in RDMSR_SAFE_RIP first; a #GP there
    // returns from the exception handler past the 2-byte RDMSR with R11 = 1,
    // every other register as it was.
    unsafe {
        core::arch::asm!(
            "lea r11, [rip + 2f]",
            "mov [{rip}], r11",
            "xor r11d, r11d",
            "2: rdmsr",
            rip = in(reg) RDMSR_SAFE_RIP.as_ptr(),
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
            out("r11") faulted,
            options(nostack),
        );
    }
    (faulted == 0).then_some(((hi as u64) << 32) | lo as u64)
}

/// The TSC frequency in kHz ([`init`] must have run).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// The XCR0 bits the CPU supports (x87 only without XSAVE).
pub fn xcr0_supported() -> u64 {
    XCR0_SUPPORTED.load(Ordering::Relaxed).max(1)
}

/// Measures the TSC frequency over 50 ms of PIT channel 2 and enables XSAVE
/// (CR4.OSXSAVE) in the host so that guest XCR0 and extended state can be
/// switched.
pub fn init() {
    const PIT_HZ: u64 = 1_193_182;
    const MS: u64 = 50;
    let count = (PIT_HZ * MS / 1000) as u16;
    // SAFETY: the PIT and port 0x61 are legacy devices the hypervisor owns;
    // channel 2's gate and output are only used here.
    let ticks = unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) | 0x01);
        outb(0x43, 0xB0); // channel 2, lobyte/hibyte, mode 0
        outb(0x42, count as u8);
        outb(0x42, (count >> 8) as u8);
        let t0 = rdtsc();
        let mut t1 = t0;
        for _ in 0..100_000_000u64 {
            if inb(0x61) & 0x20 != 0 {
                break;
            }
            t1 = rdtsc();
        }
        outb(0x61, gate);
        t1 - t0
    };
    TSC_KHZ.store((ticks / MS).max(1), Ordering::Relaxed);
    log::info!("TSC: {} kHz", tsc_khz());

    let cpuid = x86::cpuid::cpuid!(1);
    if cpuid.ecx & (1 << 26) != 0 {
        // SAFETY: CPUID says XSAVE exists; setting CR4.OSXSAVE only enables
        // XGETBV/XSETBV/XSAVE*, which the hypervisor uses for guest state.
        unsafe {
            let cr4 = x86::controlregs::cr4();
            x86::controlregs::cr4_write(cr4 | x86::controlregs::Cr4::CR4_ENABLE_OS_XSAVE);
        }
        let d = x86::cpuid::cpuid!(0xD, 0);
        XCR0_SUPPORTED.store(((d.edx as u64) << 32) | d.eax as u64, Ordering::Relaxed);
        XSAVE_SIZE.store(d.ecx as u64, Ordering::Relaxed);
        log::info!(
            "XSAVE: supported XCR0 {:#x}, area {} bytes",
            xcr0_supported(),
            d.ecx
        );
    }
}

/// Whether the host can switch guest extended state with XSAVE.
pub fn has_xsave() -> bool {
    XSAVE_SIZE.load(Ordering::Relaxed) != 0
}

/// Sets XCR0 (the value must be valid for this CPU).
pub fn xsetbv(xcr0: u64) {
    if has_xsave() {
        // SAFETY: CR4.OSXSAVE is set (see `init`); callers pass a validated value.
        unsafe { core::arch::x86_64::_xsetbv(0, xcr0) }
    }
}

/// Checks an XCR0 value the way XSETBV does (SDM vol. 1, 13.3): x87 set,
/// only supported bits, AVX needs SSE, the AVX-512 bits go together and need AVX.
pub fn xcr0_valid(xcr0: u64) -> bool {
    let supported = xcr0_supported();
    let avx512 = 0xE0;
    xcr0 & !supported == 0
        && xcr0 & 1 != 0
        && (xcr0 & 4 == 0 || xcr0 & 2 != 0)
        && (xcr0 & avx512 == 0 || (xcr0 & avx512 == avx512 && xcr0 & 4 != 0))
        && (xcr0 & 0x18 == 0 || xcr0 & 0x18 == 0x18)
}

/// Saved extended state (x87/SSE/AVX...) of one vCPU: a page for XSAVE.
pub struct ExtendedState {
    area: u64,
    /// The vCPU's XCR0.
    pub xcr0: u64,
}

impl ExtendedState {
    /// Allocates a zeroed save area, initialised to the reset state.
    pub fn new() -> Option<Self> {
        let area = crate::mem::alloc_frame()?;
        // Default FCW 0x37F and MXCSR 0x1F80, as after RESET/INIT.
        // SAFETY: a fresh, identity-mapped frame owned by this object.
        unsafe {
            core::ptr::write_volatile(area as *mut u16, 0x37F);
            core::ptr::write_volatile((area + 24) as *mut u32, 0x1F80);
        }
        Some(ExtendedState { area, xcr0: 1 })
    }

    /// Saves the live extended state (the vCPU's XCR0 must be loaded).
    pub fn save(&mut self) {
        // SAFETY: `area` is a 4 KiB, 64-byte-aligned frame, large enough for
        // the XSAVE area of every supported feature (checked at boot); FXSAVE
        // needs 512 bytes.
        unsafe {
            if has_xsave() {
                core::arch::asm!("xsave64 [{}]", in(reg) self.area, in("eax") u32::MAX, in("edx") u32::MAX);
            } else {
                core::arch::asm!("fxsave64 [{}]", in(reg) self.area);
            }
        }
    }

    /// Loads XCR0 and the saved extended state of this vCPU.
    pub fn restore(&self) {
        xsetbv(self.xcr0);
        // SAFETY: the area holds a state saved by `save` or the reset state
        // written by `new` (XSTATE_BV = 0 there: every component initialised).
        unsafe {
            if has_xsave() {
                core::arch::asm!("xrstor64 [{}]", in(reg) self.area, in("eax") u32::MAX, in("edx") u32::MAX);
            } else {
                core::arch::asm!("fxrstor64 [{}]", in(reg) self.area);
            }
        }
    }
}

impl Drop for ExtendedState {
    fn drop(&mut self) {
        crate::mem::free_frames(self.area, 1);
    }
}

/// MSRs a guest uses without exits that the VMCS does not switch, saved per vCPU.
pub const SWITCHED_MSRS: [u32; 6] = [
    0xC000_0081, // STAR
    0xC000_0082, // LSTAR
    0xC000_0083, // CSTAR
    0xC000_0084, // SFMASK
    0xC000_0102, // KERNEL_GS_BASE
    0xC000_0103, // TSC_AUX
];

/// The values of [`SWITCHED_MSRS`] (plus CR2) for a vCPU that is not running.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchedState {
    msrs: [u64; SWITCHED_MSRS.len()],
    /// CR2, which VM exits do not save.
    pub cr2: u64,
}

impl SwitchedState {
    /// Saves the live values.
    pub fn save(&mut self) {
        for (v, &msr) in self.msrs.iter_mut().zip(SWITCHED_MSRS.iter()) {
            // SAFETY: architectural MSRs present on every x86-64 CPU.
            *v = unsafe { x86::msr::rdmsr(msr) };
        }
        // SAFETY: reading CR2 has no side effects.
        self.cr2 = unsafe { x86::controlregs::cr2() as u64 };
    }

    /// Loads the saved values.
    pub fn restore(&self) {
        for (&v, &msr) in self.msrs.iter().zip(SWITCHED_MSRS.iter()) {
            // SAFETY: as in `save`; the values were read from the same MSRs or
            // are the reset value 0 (the guest's writes pass through the MSR
            // bitmap and are checked by the CPU then).
            unsafe { x86::msr::wrmsr(msr, v) };
        }
        // SAFETY: CR2 is not used by the hypervisor except in its fault report.
        unsafe { x86::controlregs::cr2_write(self.cr2) };
    }
}
