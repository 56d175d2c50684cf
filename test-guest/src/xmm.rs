//! `test=xmm-victim` and `test=xmm-probe`: the extended register state of one domain must never
//! show in another, and a guest's invalid XSETBV must get #GP.
//!
//! The victim enables SSE (and AVX when CPUID offers it), loads a pattern tagged
//! [`VICTIM_TAG`] into XMM0-15, the YMM upper halves and MXCSR ([`VICTIM_MXCSR`]), yields many
//! times checking its registers each time, then runs the identity test.
//!
//! The probe keeps XCR0 = 1 and, across many yields, reads XMM0-15 and MXCSR without writing
//! them; then it tries XSETBV with invalid values (each must raise #GP), sets XCR0 = 7 and reads
//! the YMM upper halves the same way; last it loads its own pattern and yields, so that a
//! hypervisor that does not switch the state at all shows in the victim's checks.

use crate::arch::{self, CpuidResult};
use crate::hostile;
use crate::identity;
use crate::trap::{self, XmmRegs, VECTOR_GP, VECTOR_UD};
use crate::xen;

/// The tag in every 64-bit lane of the victim's pattern (printed as hex, it is what the
/// scenario forbids in the probe's lines).
pub const VICTIM_TAG: u64 = 0x7E57_1C71;
/// The tag of the probe's own pattern.
const PROBE_TAG: u64 = 0x0A77_AC4E;
/// The victim's MXCSR: flush-to-zero, round toward zero, every exception masked.
pub const VICTIM_MXCSR: u32 = 0xFF80;
/// The probe's MXCSR in its last phase: round down, every exception masked.
const PROBE_MXCSR: u32 = 0x3F80;
/// How often the victim yields and checks its registers, at least.
const VICTIM_ROUNDS: u32 = 600;
/// How long the victim keeps yielding and checking, at least (system time: 3 s, longer than
/// the probe's reads take in Bochs).
const VICTIM_MIN_NS: u64 = 3_000_000_000;
/// How often the probe yields and reads in each of its phases.
const PROBE_ROUNDS: u32 = 100;
/// How often the probe yields with its own pattern loaded.
const PROBE_CLOBBER_ROUNDS: u32 = 50;
/// Distinct values shown in a probe line.
const SHOWN: usize = 4;

/// XCR0 bits: x87, SSE, AVX.
const XCR0_X87_SSE_AVX: u64 = 0x7;

/// What CPUID says about SIMD and XSAVE.
#[derive(Clone, Copy)]
struct Caps {
    /// SSE2 (leaf 1 EDX bit 26).
    sse2: bool,
    /// XSAVE (leaf 1 ECX bit 26).
    xsave: bool,
    /// AVX (leaf 1 ECX bit 28).
    avx: bool,
    /// AVX2 (leaf 7 EBX bit 5).
    avx2: bool,
    /// AVX-512F (leaf 7 EBX bit 16).
    avx512f: bool,
    /// The XCR0 bits offered (leaf 0xD subleaf 0 EDX:EAX), 0 without XSAVE.
    xcr0_mask: u64,
}

impl Caps {
    /// Reads the CPUID leaves.
    fn detect() -> Self {
        let l1 = arch::cpuid(1, 0);
        let max = arch::cpuid(0, 0).eax;
        let l7 = if max >= 7 {
            arch::cpuid(7, 0)
        } else {
            CpuidResult {
                eax: 0,
                ebx: 0,
                ecx: 0,
                edx: 0,
            }
        };
        let xsave = l1.ecx & (1 << 26) != 0;
        let xcr0_mask = if xsave && max >= 0xD {
            let d = arch::cpuid(0xD, 0);
            (u64::from(d.edx) << 32) | u64::from(d.eax)
        } else {
            0
        };
        Caps {
            sse2: l1.edx & (1 << 26) != 0,
            xsave,
            avx: l1.ecx & (1 << 28) != 0,
            avx2: l7.ebx & (1 << 5) != 0,
            avx512f: l7.ebx & (1 << 16) != 0,
            xcr0_mask,
        }
    }
}

/// A pattern for XMM0-15 (`half` 0) or the YMM upper halves (`half` 1): every 64-bit lane is
/// `tag:half:register:lane`.
fn pattern(tag: u64, half: u64) -> XmmRegs {
    let mut regs = [0u128; 16];
    for (i, r) in regs.iter_mut().enumerate() {
        let lane = |l: u64| (tag << 32) | (half << 16) | ((i as u64) << 8) | l;
        *r = (u128::from(lane(1)) << 64) | u128::from(lane(0));
    }
    regs
}

/// The vector name a probe caught, or `ok` if it did not fault.
fn fault_name(v: Option<u8>) -> &'static str {
    match v {
        None => "ok",
        Some(VECTOR_GP) => "#GP",
        Some(VECTOR_UD) => "#UD",
        Some(_) => "other",
    }
}

/// The first register of `got` that differs from `want`: (index, value).
fn first_diff(got: &XmmRegs, want: &XmmRegs) -> Option<(usize, u128)> {
    got.iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .map(|i| (i, got[i]))
}

/// Runs the victim: registers loaded and checked across [`VICTIM_ROUNDS`] yields, then the
/// identity test (which powers the domain off).
pub fn victim() -> ! {
    let caps = Caps::detect();
    trap::install();
    let mut cr4 = trap::CR4_OSFXSR | trap::CR4_OSXMMEXCPT;
    if caps.xsave {
        cr4 |= trap::CR4_OSXSAVE;
    }
    trap::enable_sse(cr4);
    let avx = caps.xsave && caps.avx && trap::xsetbv(0, XCR0_X87_SSE_AVX).is_none();
    let xmm = pattern(VICTIM_TAG, 0);
    let ymm = pattern(VICTIM_TAG, 1);
    trap::load_xmm(&xmm);
    if avx {
        trap::load_ymm_high(&ymm);
    }
    trap::ldmxcsr(VICTIM_MXCSR);
    let what = if avx {
        "xmm0-15, ymm0-15 upper"
    } else {
        "xmm0-15"
    };
    say!("xmm-victim loaded {what} and mxcsr={VICTIM_MXCSR:#x}");
    let mut got = [0u128; 16];
    let start_ns = hostile::now_ns();
    let mut n = 0;
    while n < VICTIM_ROUNDS || hostile::now_ns().saturating_sub(start_ns) < VICTIM_MIN_NS {
        n += 1;
        hostile::yield_cpu();
        trap::store_xmm(&mut got);
        if let Some((i, v)) = first_diff(&got, &xmm) {
            say!("xmm-victim FAIL xmm{i}={v:032x} after {n} yields");
            xen::shutdown(xen::SHUTDOWN_CRASH);
        }
        if avx {
            trap::store_ymm_high(&mut got);
            if let Some((i, v)) = first_diff(&got, &ymm) {
                say!("xmm-victim FAIL ymm{i} upper={v:032x} after {n} yields");
                xen::shutdown(xen::SHUTDOWN_CRASH);
            }
        }
        let mxcsr = trap::stmxcsr();
        if mxcsr != VICTIM_MXCSR {
            say!("xmm-victim FAIL mxcsr={mxcsr:#x} after {n} yields");
            xen::shutdown(xen::SHUTDOWN_CRASH);
        }
    }
    let ms = hostile::now_ns().saturating_sub(start_ns) / 1_000_000;
    say!("xmm-victim registers intact after {n} yields in {ms} ms ({what}, mxcsr)");
    identity::run()
}

/// Distinct values seen, in first-seen order (up to `N` kept; more are only counted as "more").
struct Distinct<T, const N: usize> {
    /// The values kept.
    vals: [T; N],
    /// How many of `vals` are used.
    len: usize,
    /// Whether a value did not fit.
    more: bool,
}

impl<T: Copy + PartialEq + Default, const N: usize> Distinct<T, N> {
    /// None seen yet.
    fn new() -> Self {
        Distinct {
            vals: [T::default(); N],
            len: 0,
            more: false,
        }
    }

    /// Records `v`.
    fn add(&mut self, v: T) {
        if self.vals[..self.len].contains(&v) {
            return;
        }
        if self.len < N {
            self.vals[self.len] = v;
            self.len += 1;
        } else {
            self.more = true;
        }
    }

    /// The count as printed: `<n>` or `><n>`.
    fn count(&self) -> impl core::fmt::Display {
        struct C(usize, bool);
        impl core::fmt::Display for C {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}{}", if self.1 { ">" } else { "" }, self.0)
            }
        }
        C(self.len, self.more)
    }
}

/// Prints the values of `d` separated by commas (at most [`SHOWN`]), then `...` if there are more.
struct List<'a, T, const N: usize>(&'a Distinct<T, N>);

impl<T: core::fmt::LowerHex, const N: usize> core::fmt::Display for List<'_, T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = self.0;
        for (i, v) in d.vals[..d.len.min(SHOWN)].iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{v:#x}")?;
        }
        if d.len > SHOWN || d.more {
            f.write_str(",...")?;
        }
        Ok(())
    }
}

/// One XSETBV that must raise #GP: its XCR index, the value, and why the value is invalid.
struct GpCase {
    /// ECX.
    xcr: u32,
    /// EDX:EAX.
    value: u64,
}

/// The invalid XSETBVs: x87 clear, SSE without x87... AVX without SSE, AVX-512 state in part or
/// without AVX, one AMX component alone, supervisor and reserved bits, and XCR1.
const GP_CASES: &[GpCase] = &[
    GpCase { xcr: 0, value: 0x0 },
    GpCase { xcr: 0, value: 0x2 },
    GpCase { xcr: 0, value: 0x5 },
    GpCase {
        xcr: 0,
        value: 0x27,
    },
    GpCase {
        xcr: 0,
        value: 0x67,
    },
    GpCase {
        xcr: 0,
        value: 0xe3,
    },
    GpCase {
        xcr: 0,
        value: 0x2_0003,
    },
    GpCase {
        xcr: 0,
        value: 0x4_0003,
    },
    GpCase {
        xcr: 0,
        value: 0x103,
    },
    GpCase {
        xcr: 0,
        value: 0x100_0000_0003,
    },
    GpCase {
        xcr: 0,
        value: 0x8000_0000_0000_0003,
    },
    GpCase { xcr: 1, value: 0x3 },
];

/// What one probe phase saw.
struct Seen {
    /// XCR0 during the phase.
    xcr0: u64,
    /// Whether the YMM upper halves were read.
    ymm: bool,
    /// Distinct XMM values.
    regs: Distinct<u128, 40>,
    /// Distinct YMM upper halves.
    high: Distinct<u128, 40>,
    /// Distinct MXCSR values.
    mxcsr: Distinct<u32, 8>,
}

impl Seen {
    /// Prints the phase's lines.
    fn report(&self) {
        say!(
            "xmm-probe xmm xcr0={:#x} rounds={PROBE_ROUNDS} distinct={} values={} mxcsr={}",
            self.xcr0,
            self.regs.count(),
            List(&self.regs),
            List(&self.mxcsr)
        );
        if self.ymm {
            say!(
                "xmm-probe ymm xcr0={:#x} rounds={PROBE_ROUNDS} distinct={} upper={}",
                self.xcr0,
                self.high.count(),
                List(&self.high)
            );
        }
    }
}

/// Yields [`PROBE_ROUNDS`] times, reading XMM0-15 (and the YMM upper halves if `ymm`) and
/// MXCSR after each yield, without printing (a console line takes long enough for the victim
/// to get ahead).
fn probe_phase(xcr0: u64, ymm: bool) -> Seen {
    let mut seen = Seen {
        xcr0,
        ymm,
        regs: Distinct::new(),
        high: Distinct::new(),
        mxcsr: Distinct::new(),
    };
    let mut buf = [0u128; 16];
    for _ in 0..PROBE_ROUNDS {
        hostile::yield_cpu();
        trap::store_xmm(&mut buf);
        buf.iter().for_each(|&v| seen.regs.add(v));
        if ymm {
            trap::store_ymm_high(&mut buf);
            buf.iter().for_each(|&v| seen.high.add(v));
        }
        seen.mxcsr.add(trap::stmxcsr());
    }
    seen
}

/// Runs the probe and powers the domain off.
pub fn probe() -> ! {
    let start_ns = hostile::now_ns();
    let caps = Caps::detect();
    trap::install();
    let no_osxsave = trap::xsetbv(0, 0x3);

    // Phase 1: XCR0 = 1; the XMM registers and MXCSR are still this vCPU's (FXSAVE state).
    trap::enable_sse(trap::CR4_OSFXSR | trap::CR4_OSXMMEXCPT);
    let phase1 = probe_phase(1, false);

    // The invalid XSETBVs, then phase 2 with XCR0 = 7: the YMM upper halves become readable.
    let mut gp = [None; GP_CASES.len()];
    let mut xcr0_after = 0;
    let mut avx_rc = None;
    let mut phase2 = None;
    if caps.xsave {
        trap::enable_sse(trap::CR4_OSXSAVE);
        for (case, v) in GP_CASES.iter().zip(gp.iter_mut()) {
            *v = trap::xsetbv(case.xcr, case.value);
            if v.is_none() {
                // Accepted: back to x87 only for what follows.
                let _ = trap::xsetbv(0, 1);
            }
        }
        xcr0_after = trap::xgetbv0();
        avx_rc = trap::xsetbv(0, XCR0_X87_SSE_AVX);
        if avx_rc.is_none() {
            phase2 = Some(probe_phase(trap::xgetbv0(), true));
        }
    }

    // Last: this vCPU's own values, for the victim not to see.
    let avx = caps.xsave && trap::xgetbv0() & XCR0_X87_SSE_AVX == XCR0_X87_SSE_AVX;
    trap::load_xmm(&pattern(PROBE_TAG, 0));
    if avx {
        trap::load_ymm_high(&pattern(PROBE_TAG, 1));
    }
    trap::ldmxcsr(PROBE_MXCSR);
    for _ in 0..PROBE_CLOBBER_ROUNDS {
        hostile::yield_cpu();
    }
    let elapsed_ms = hostile::now_ns().saturating_sub(start_ns) / 1_000_000;

    say!(
        "xmm-probe cpu sse2={} xsave={} avx={} avx2={} avx512f={} xcr0-mask={:#x}",
        caps.sse2,
        caps.xsave,
        caps.avx,
        caps.avx2,
        caps.avx512f,
        caps.xcr0_mask
    );
    say!("xsetbv 0x3 without CR4.OSXSAVE: {}", fault_name(no_osxsave));
    phase1.report();
    if !caps.xsave {
        say!("xmm-probe xsetbv skipped (CPUID: no XSAVE)");
    } else {
        for (case, &v) in GP_CASES.iter().zip(gp.iter()) {
            let verdict = if v == Some(VECTOR_GP) { "" } else { " FAIL" };
            if case.xcr == 0 {
                say!("xsetbv {:#x}: {}{verdict}", case.value, fault_name(v));
            } else {
                say!(
                    "xsetbv xcr{}={:#x}: {}{verdict}",
                    case.xcr,
                    case.value,
                    fault_name(v)
                );
            }
        }
        say!("xmm-probe xcr0={xcr0_after:#x} after invalid xsetbv");
        let want = if caps.avx { None } else { Some(VECTOR_GP) };
        let verdict = if avx_rc == want { "" } else { " FAIL" };
        say!(
            "xsetbv {XCR0_X87_SSE_AVX:#x}: {}{verdict}",
            fault_name(avx_rc)
        );
        match &phase2 {
            Some(seen) => seen.report(),
            None => say!("xmm-probe ymm skipped (CPUID: no AVX)"),
        }
    }
    say!("xmm-probe done in {elapsed_ms} ms");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
