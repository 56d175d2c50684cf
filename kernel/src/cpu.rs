//! Host CPU services the vCPU code needs: the TSC and its frequency, XSAVE
//! enablement, and saving/restoring guest extended state and the MSRs that the
//! VMCS does not switch.

use core::sync::atomic::{AtomicU64, Ordering};
use x86::io::{inb, outb};

/// TSC frequency in kHz, settled once at boot (see `calibrate_tsc`).
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
/// Size of the XSAVE area for the components offered to guests (0: no XSAVE).
static XSAVE_SIZE: AtomicU64 = AtomicU64::new(0);
/// The XCR0 bits offered to guests (and switched for them).
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

/// The XCR0 bits offered to guests (x87 only without XSAVE).
pub fn xcr0_supported() -> u64 {
    XCR0_SUPPORTED.load(Ordering::Relaxed).max(1)
}

/// TSC frequencies believed, in kHz: 1 MHz (an emulator's TSC counts its
/// instructions: 50 MHz under Bochs at ips=50M) to 10 GHz.
const TSC_KHZ_SANE: core::ops::RangeInclusive<u64> = 1_000..=10_000_000;
/// The TSC frequency assumed when nothing measures it: low, so that slices
/// and timers end early rather than late.
const TSC_KHZ_DEFAULT: u64 = 1_000_000;

/// The TSC frequency in kHz that CPUID states, and the leaf that states it:
/// 0x15 (TSC/crystal ratio times the crystal clock; only where ECX enumerates
/// the crystal), else 0x16's base frequency (whole MHz, nominal); `None`
/// where neither does or the value is below 100 MHz or above 10 GHz.
fn cpuid_tsc_khz() -> Option<(u64, &'static str)> {
    let max = x86::cpuid::cpuid!(0).eax;
    let leaf15 = (max >= 0x15).then(|| x86::cpuid::cpuid!(0x15));
    let from_crystal = leaf15
        .filter(|r| r.eax != 0 && r.ebx != 0 && r.ecx != 0)
        .map(|r| {
            (
                r.ecx as u64 / 1000 * r.ebx as u64 / r.eax as u64,
                "CPUID.15H",
            )
        });
    let from_base = || {
        let mhz = if max >= 0x16 {
            x86::cpuid::cpuid!(0x16).eax & 0xFFFF
        } else {
            0
        };
        (mhz != 0).then_some((mhz as u64 * 1000, "CPUID.16H"))
    };
    from_crystal
        .or_else(from_base)
        .filter(|(khz, _)| (100_000..=10_000_000).contains(khz))
}

/// Counts TSC ticks over `ms` of PIT channel 2 (mode 0, gate on, output read
/// at port 0x61 bit 5); `None` if the output never goes high (a board that
/// gates or lacks channel 2) within 100 ms of a 10 GHz TSC.
fn pit_tsc_ticks(ms: u64) -> Option<u64> {
    const PIT_HZ: u64 = 1_193_182;
    const GIVE_UP_TICKS: u64 = 1_000_000_000;
    let count = (PIT_HZ * ms / 1000) as u16;
    // SAFETY: the PIT and port 0x61 are legacy devices the hypervisor owns;
    // channel 2's gate and output are only used here, and the gate is put
    // back as it was.
    unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) | 0x01);
        outb(0x43, 0xB0); // channel 2, lobyte/hibyte, mode 0
        outb(0x42, count as u8);
        outb(0x42, (count >> 8) as u8);
        let t0 = rdtsc();
        let mut ticks = None;
        loop {
            let t = rdtsc().wrapping_sub(t0);
            if inb(0x61) & 0x20 != 0 {
                ticks = Some(t);
                break;
            }
            if t > GIVE_UP_TICKS {
                break;
            }
        }
        outb(0x61, gate);
        ticks
    }
}

/// Settles the TSC frequency and says where it came from: the PIT
/// measurement where it works and is sane, replaced by CPUID.15H's exact
/// figure where the two agree within 1%; CPUID's where the PIT does not work;
/// else [`TSC_KHZ_DEFAULT`]. The PIT comes first because CPUID may describe
/// another clock than the one the TSC runs at: Bochs's corei7_icelake_u
/// states 1497.6 MHz (leaf 0x15: 38.4 MHz crystal x 78/2; leaf 0x16: 1500
/// MHz) while its TSC counts instructions at 50 MHz (ips=50M).
fn calibrate_tsc() -> (u64, &'static str) {
    const MS: u64 = 50;
    let cpuid = cpuid_tsc_khz();
    let pit = pit_tsc_ticks(MS).map(|t| t / MS);
    let pit_sane = pit.filter(|p| TSC_KHZ_SANE.contains(p));
    match (pit_sane, cpuid) {
        (Some(p), Some((c, "CPUID.15H"))) if p.abs_diff(c) <= c / 100 => {
            (c, "CPUID.15H (the PIT agrees)")
        }
        (Some(p), c) => {
            if let Some((c, leaf)) = c.filter(|&(c, _)| p.abs_diff(c) > c / 100) {
                log::info!("TSC: {leaf} states {c} kHz, the PIT measures {p} kHz: using the PIT");
            }
            (p, "the PIT")
        }
        (None, c) => {
            match pit {
                Some(p) => log::warn!("TSC: PIT channel 2 measures {p} kHz, not a TSC rate"),
                None => log::warn!("TSC: PIT channel 2 never counted down"),
            }
            c.unwrap_or_else(|| {
                log::warn!(
                    "TSC: CPUID states no frequency either: assuming {TSC_KHZ_DEFAULT} kHz \
                     (timers and slices will be off)"
                );
                (TSC_KHZ_DEFAULT, "a guess")
            })
        }
    }
}

/// Settles the TSC frequency ([`calibrate_tsc`]) and enables XSAVE
/// (CR4.OSXSAVE) in the host so that guest XCR0 and extended state can be
/// switched.
pub fn init() {
    let (khz, source) = calibrate_tsc();
    TSC_KHZ.store(khz, Ordering::Relaxed);
    log::info!("TSC: {khz} kHz from {source}");

    let cpuid = x86::cpuid::cpuid!(1);
    if cpuid.ecx & (1 << 26) != 0 {
        // SAFETY: CPUID says XSAVE exists; setting CR4.OSXSAVE only enables
        // XGETBV/XSETBV/XSAVE*, which the hypervisor uses for guest state.
        unsafe {
            let cr4 = x86::controlregs::cr4();
            x86::controlregs::cr4_write(cr4 | x86::controlregs::Cr4::CR4_ENABLE_OS_XSAVE);
        }
        let host = |leaf, sub| {
            let r = x86::cpuid::cpuid!(leaf, sub);
            [r.eax, r.ebx, r.ecx, r.edx]
        };
        let mask = hypercalls::cpuid::guest_xcr0_mask(&host);
        let size = hypercalls::cpuid::xsave_area_size(mask, &host);
        XCR0_SUPPORTED.store(mask, Ordering::Relaxed);
        XSAVE_SIZE.store(size as u64, Ordering::Relaxed);
        // SAFETY: `mask` holds only components CPUID.(0xD,0) lists, by the
        // rules of `xcr0_valid` (x87 set, groups whole).
        unsafe { core::arch::x86_64::_xsetbv(0, mask) };
        log::info!("XSAVE: guest XCR0 mask {mask:#x}, area {size} bytes");
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

/// Whether a guest's XSETBV may load `xcr0`: the SDM's rules over the
/// components offered to guests (`hypercalls::cpuid::xcr0_valid`).
pub fn xcr0_valid(xcr0: u64) -> bool {
    has_xsave() && hypercalls::cpuid::xcr0_valid(xcr0, xcr0_supported())
}

/// Frames of one vCPU's XSAVE area (FXSAVE's 512 bytes without XSAVE).
fn xsave_frames() -> usize {
    (XSAVE_SIZE.load(Ordering::Relaxed).max(512) as usize).div_ceil(crate::mem::PAGE_SIZE as usize)
}

/// Saved extended state (x87/SSE/AVX...) of one vCPU.
///
/// Saved and restored with XCR0 = every component offered to guests, whatever
/// the vCPU's own XCR0: a component the vCPU has not enabled (the XMM
/// registers of a guest that keeps XCR0 = 1, say) is still its own, never the
/// previous vCPU's.
pub struct ExtendedState {
    area: u64,
    frames: usize,
    /// The vCPU's XCR0.
    pub xcr0: u64,
}

impl ExtendedState {
    /// Allocates a zeroed save area (sized from CPUID at boot), initialised to
    /// the reset state.
    pub fn new() -> Option<Self> {
        let frames = xsave_frames();
        let area = crate::mem::alloc_frames(frames, crate::mem::PAGE_SIZE)?;
        // Default FCW 0x37F and MXCSR 0x1F80, as after RESET/INIT.
        // SAFETY: fresh, identity-mapped frames owned by this object.
        unsafe {
            core::ptr::write_volatile(area as *mut u16, 0x37F);
            core::ptr::write_volatile((area + 24) as *mut u32, 0x1F80);
        }
        Some(ExtendedState {
            area,
            frames,
            xcr0: 1,
        })
    }

    /// Saves the live extended state, every offered component (XCR0 is set to
    /// all of them first; the vCPU's own XCR0 is in `self.xcr0`).
    pub fn save(&mut self) {
        xsetbv(xcr0_supported());
        // SAFETY: `area` is page-aligned and as large as CPUID.(0xD,0) says
        // the offered components need (measured at boot); FXSAVE needs 512 bytes.
        unsafe {
            if has_xsave() {
                core::arch::asm!("xsave64 [{}]", in(reg) self.area, in("eax") u32::MAX, in("edx") u32::MAX);
            } else {
                core::arch::asm!("fxsave64 [{}]", in(reg) self.area);
            }
        }
    }

    /// Loads every offered component of this vCPU's saved state, then its XCR0.
    pub fn restore(&self) {
        xsetbv(xcr0_supported());
        // SAFETY: the area holds a state saved by `save` or the reset state
        // written by `new` (XSTATE_BV = 0 there: every component initialised).
        unsafe {
            if has_xsave() {
                core::arch::asm!("xrstor64 [{}]", in(reg) self.area, in("eax") u32::MAX, in("edx") u32::MAX);
            } else {
                core::arch::asm!("fxrstor64 [{}]", in(reg) self.area);
            }
        }
        xsetbv(self.xcr0);
    }
}

impl Drop for ExtendedState {
    fn drop(&mut self) {
        crate::mem::free_frames(self.area, self.frames);
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

/// The values of [`SWITCHED_MSRS`] (plus CR2 and the debug registers the VMCS
/// does not hold) for a vCPU that is not running.
#[derive(Clone, Copy, Debug)]
pub struct SwitchedState {
    msrs: [u64; SWITCHED_MSRS.len()],
    /// CR2, which VM exits do not save.
    pub cr2: u64,
    /// DR0-DR3 and DR6 (DR7 and IA32_DEBUGCTL are in the VMCS), which guests
    /// write without exits.
    dr: [u64; 5],
}

impl Default for SwitchedState {
    /// The reset state: MSRs 0, CR2 0, DR0-3 0, DR6 0xFFFF0FF0.
    fn default() -> Self {
        SwitchedState {
            msrs: [0; SWITCHED_MSRS.len()],
            cr2: 0,
            dr: [0, 0, 0, 0, 0xFFFF_0FF0],
        }
    }
}

impl SwitchedState {
    /// Saves the live values.
    pub fn save(&mut self) {
        for (v, &msr) in self.msrs.iter_mut().zip(SWITCHED_MSRS.iter()) {
            // SAFETY: architectural MSRs present on every x86-64 CPU.
            *v = unsafe { x86::msr::rdmsr(msr) };
        }
        // SAFETY: reading CR2 and the debug registers has no side effects.
        unsafe {
            self.cr2 = x86::controlregs::cr2() as u64;
            self.dr = [
                x86::debugregs::dr0() as u64,
                x86::debugregs::dr1() as u64,
                x86::debugregs::dr2() as u64,
                x86::debugregs::dr3() as u64,
                x86::debugregs::dr6().bits() as u64,
            ];
        }
    }

    /// Loads the saved values.
    pub fn restore(&self) {
        for (&v, &msr) in self.msrs.iter().zip(SWITCHED_MSRS.iter()) {
            // SAFETY: as in `save`; the values were read from the same MSRs or
            // are the reset value 0 (the guest's writes pass through the MSR
            // bitmap and are checked by the CPU then).
            unsafe { x86::msr::wrmsr(msr, v) };
        }
        // SAFETY: CR2 is not used by the hypervisor except in its fault report;
        // the hypervisor sets no breakpoints (its DR7 is 0 after every VM exit),
        // so DR0-3 and DR6 are only the guest's.
        unsafe {
            x86::controlregs::cr2_write(self.cr2);
            x86::debugregs::dr0_write(self.dr[0] as usize);
            x86::debugregs::dr1_write(self.dr[1] as usize);
            x86::debugregs::dr2_write(self.dr[2] as usize);
            x86::debugregs::dr3_write(self.dr[3] as usize);
            x86::debugregs::dr6_write(x86::debugregs::Dr6::from_bits_truncate(self.dr[4] as usize));
        }
    }
}
