//! A local APIC in x2APIC mode, reached through MSRs 0x800-0x8FF (Intel SDM vol. 3, chapter
//! "Advanced Programmable Interrupt Controller (APIC)", section "x2APIC"), plus
//! IA32_APIC_BASE and IA32_TSC_DEADLINE.
//!
//! The guest starts with x2APIC already enabled (Linux: "x2apic: enabled by BIOS, switching
//! to x2apic ops"), so there is no MMIO page to emulate. The model keeps IRR/ISR/TMR,
//! TPR/PPR, the ESR, the LVT and the timer (one-shot, periodic and TSC-deadline, in TSC ticks
//! the caller passes in), and turns ICR writes into [`Ipi`]s that the hypervisor routes to the
//! other vCPUs' models with [`Ipi::targets`].
//!
//! As on hardware (and KVM), a #GP (`Some(Err(()))`) answers: an x2APIC MSR while not in
//! x2APIC mode; a register that does not exist; a read of EOI or SELF IPI; a write to a
//! read-only register; bits 63:32 set in anything but the ICR; reserved ICR bits; a non-zero
//! write to EOI or the ESR; reserved IA32_APIC_BASE bits or an invalid mode transition.
//! Reserved bits of other registers are dropped. Fixed interrupts that arrive while the APIC
//! is disabled (globally or through the SVR) are dropped, as KVM does.

use alloc::vec::Vec;

/// IA32_APIC_BASE.
pub const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_TSC_DEADLINE.
pub const IA32_TSC_DEADLINE: u32 = 0x6E0;
/// First x2APIC MSR.
pub const X2APIC_FIRST: u32 = 0x800;
/// Last x2APIC MSR.
pub const X2APIC_LAST: u32 = 0x8FF;
/// IA32_APIC_BASE.BSP: this is the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE.EXTD: x2APIC mode.
pub const APIC_BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE.EN: the APIC is enabled.
pub const APIC_BASE_EN: u64 = 1 << 11;
/// The version register: version 0x14 (integrated APIC), max LVT entry 6 (CMCI included),
/// no EOI-broadcast suppression.
pub const APIC_VERSION: u32 = 0x0006_0014;
/// Destination of a broadcast IPI (physical or logical).
pub const BROADCAST: u32 = u32::MAX;

/// x2APIC register MSR indices.
pub mod reg {
    /// Local APIC ID (read-only in x2APIC mode).
    pub const ID: u32 = 0x802;
    /// Version.
    pub const VERSION: u32 = 0x803;
    /// Task priority.
    pub const TPR: u32 = 0x808;
    /// Processor priority (read-only).
    pub const PPR: u32 = 0x80A;
    /// End of interrupt (write-only, 0).
    pub const EOI: u32 = 0x80B;
    /// Logical destination (read-only in x2APIC mode).
    pub const LDR: u32 = 0x80D;
    /// Spurious-interrupt vector.
    pub const SVR: u32 = 0x80F;
    /// In-service register, bits 31:0 (ISR1..ISR7 follow).
    pub const ISR0: u32 = 0x810;
    /// Trigger-mode register, bits 31:0.
    pub const TMR0: u32 = 0x818;
    /// Interrupt-request register, bits 31:0.
    pub const IRR0: u32 = 0x820;
    /// Error status (write 0 to latch, then read).
    pub const ESR: u32 = 0x828;
    /// LVT CMCI.
    pub const LVT_CMCI: u32 = 0x82F;
    /// Interrupt command (64 bits: destination in 63:32).
    pub const ICR: u32 = 0x830;
    /// LVT timer.
    pub const LVT_TIMER: u32 = 0x832;
    /// LVT thermal sensor.
    pub const LVT_THERMAL: u32 = 0x833;
    /// LVT performance monitoring counters.
    pub const LVT_PERF: u32 = 0x834;
    /// LVT LINT0.
    pub const LVT_LINT0: u32 = 0x835;
    /// LVT LINT1.
    pub const LVT_LINT1: u32 = 0x836;
    /// LVT error.
    pub const LVT_ERROR: u32 = 0x837;
    /// Timer initial count.
    pub const TIMER_INITIAL_COUNT: u32 = 0x838;
    /// Timer current count (read-only).
    pub const TIMER_CURRENT_COUNT: u32 = 0x839;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u32 = 0x83E;
    /// SELF IPI (write-only).
    pub const SELF_IPI: u32 = 0x83F;
}

/// SVR: APIC software enable.
pub const SVR_APIC_ENABLED: u32 = 1 << 8;
/// LVT: masked.
pub const LVT_MASKED: u32 = 1 << 16;
/// ESR: send illegal vector.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR: receive illegal vector.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;

const LVT_CMCI: usize = 0;
const LVT_TIMER: usize = 1;
/// Writable bits of each LVT entry (CMCI, timer, thermal, perf, LINT0, LINT1, error).
const LVT_WMASK: [u32; 7] = [
    0x1_07FF, 0x7_00FF, 0x1_07FF, 0x1_07FF, 0x1_A7FF, 0x1_A7FF, 0x1_00FF,
];
/// ICR bits reserved in x2APIC mode (13, 17:16, 31:20), as KVM enforces them.
const ICR_RESERVED: u64 = (1 << 13) | (3 << 16) | (0xFFF << 20);
/// IA32_APIC_BASE bits that are reserved: 7:0, 9, and 63:52.
const APIC_BASE_RESERVED: u64 = 0x2FF | !((1 << 52) - 1);

/// IA32_APIC_BASE of vCPU `vcpu` at power-on here: base 0xFEE00000, enabled, x2APIC mode, and
/// BSP for vCPU 0.
pub const fn apic_base_reset_value(vcpu: u32) -> u64 {
    let bsp = if vcpu == 0 { APIC_BASE_BSP } else { 0 };
    crate::layout::LAPIC_GPA | APIC_BASE_EN | APIC_BASE_EXTD | bsp
}

/// The APIC's mode, from IA32_APIC_BASE.EN and EXTD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    /// EN = 0: globally disabled.
    Disabled,
    /// EN = 1, EXTD = 0: xAPIC (MMIO; not emulated, the MSRs #GP).
    XApic,
    /// EN = 1, EXTD = 1: x2APIC.
    X2Apic,
}

/// The LVT timer mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerMode {
    /// Counts the initial count down once (mode 00b, and the reserved 11b).
    OneShot,
    /// Reloads the initial count at zero (01b).
    Periodic,
    /// Fires when the TSC reaches IA32_TSC_DEADLINE (10b).
    TscDeadline,
}

/// How an IPI is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Fixed (or lowest-priority, see [`Ipi::lowest_priority`]) interrupt with this vector.
    Fixed(u8),
    /// NMI.
    Nmi,
    /// INIT (level assert; the de-assert is not an IPI on modern processors).
    Init,
    /// Start-up with this vector (the AP starts at vector << 12).
    Startup(u8),
    /// SMI or a reserved mode (the ICR's delivery-mode field): not delivered.
    Other(u8),
}

/// ICR destination mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestMode {
    /// `dest` is an x2APIC id.
    Physical,
    /// `dest` is a cluster (31:16) and a 16-bit mask of logical ids in it (15:0).
    Logical,
}

/// ICR destination shorthand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shorthand {
    /// Use the destination field.
    None,
    /// The sender itself.
    ToSelf,
    /// Every APIC, the sender included.
    AllIncludingSelf,
    /// Every APIC but the sender.
    AllExcludingSelf,
}

/// An IPI written to the ICR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipi {
    /// The delivery mode.
    pub delivery: Delivery,
    /// Destination field (x2APIC id, or cluster/mask in logical mode; [`BROADCAST`]).
    pub dest: u32,
    /// Physical or logical destination.
    pub dest_mode: DestMode,
    /// Destination shorthand.
    pub shorthand: Shorthand,
    /// Lowest-priority delivery: only one of the targets gets it ([`Ipi::targets`] picks one).
    pub lowest_priority: bool,
}

impl Ipi {
    /// Decodes an x2APIC ICR value; `None` for an INIT level de-assert, which does nothing.
    pub fn from_icr(icr: u64) -> Option<Self> {
        let vector = icr as u8;
        let mode = ((icr >> 8) & 7) as u8;
        let level_assert = icr & (1 << 14) != 0;
        let level_triggered = icr & (1 << 15) != 0;
        let delivery = match mode {
            0 | 1 => Delivery::Fixed(vector),
            4 => Delivery::Nmi,
            5 if level_triggered && !level_assert => return None,
            5 => Delivery::Init,
            6 => Delivery::Startup(vector),
            m => Delivery::Other(m),
        };
        Some(Ipi {
            delivery,
            dest: (icr >> 32) as u32,
            dest_mode: if icr & (1 << 11) != 0 {
                DestMode::Logical
            } else {
                DestMode::Physical
            },
            shorthand: match (icr >> 18) & 3 {
                0 => Shorthand::None,
                1 => Shorthand::ToSelf,
                2 => Shorthand::AllIncludingSelf,
                _ => Shorthand::AllExcludingSelf,
            },
            lowest_priority: mode == 1,
        })
    }

    /// The x2APIC ids (among `ids`, in their order) this IPI, sent by `from`, reaches.
    pub fn targets(&self, from: u32, ids: &[u32]) -> Vec<u32> {
        let hit = |id: u32| match self.shorthand {
            Shorthand::ToSelf => id == from,
            Shorthand::AllIncludingSelf => true,
            Shorthand::AllExcludingSelf => id != from,
            Shorthand::None if self.dest == BROADCAST => true,
            Shorthand::None => match self.dest_mode {
                DestMode::Physical => id == self.dest,
                DestMode::Logical => {
                    let ldr = logical_id(id);
                    ldr >> 16 == self.dest >> 16 && ldr & self.dest & 0xFFFF != 0
                }
            },
        };
        let all = ids.iter().copied().filter(|&id| hit(id));
        if self.lowest_priority {
            all.take(1).collect()
        } else {
            all.collect()
        }
    }
}

/// x2APIC logical id (the LDR) of x2APIC id `id`: cluster `id >> 4` in 31:16 and bit
/// `id & 0xF` of the cluster's mask in 15:0.
pub const fn logical_id(id: u32) -> u32 {
    (id >> 4) << 16 | 1 << (id & 0xF)
}

fn bit_set(bits: &mut [u32; 8], v: u8) {
    bits[v as usize / 32] |= 1 << (v % 32);
}

fn bit_clear(bits: &mut [u32; 8], v: u8) {
    bits[v as usize / 32] &= !(1 << (v % 32));
}

fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8)
        .rev()
        .find(|&i| bits[i] != 0)
        .map(|i| (i * 32 + 31 - bits[i].leading_zeros() as usize) as u8)
}

/// One local APIC.
#[derive(Clone, Debug)]
pub struct Lapic {
    id: u32,
    apic_base: u64,
    tpr: u32,
    svr: u32,
    irr: [u32; 8],
    isr: [u32; 8],
    tmr: [u32; 8],
    /// What the ESR reads: errors latched by the last ESR write.
    esr: u32,
    /// Errors since the last ESR write.
    esr_pending: u32,
    icr: u64,
    /// LVT: CMCI, timer, thermal, perf, LINT0, LINT1, error.
    lvt: [u32; 7],
    timer_initial: u32,
    timer_divide: u32,
    /// TSC from which the current one-shot or periodic count runs at the current rate.
    timer_start: u64,
    /// Counts already done at `timer_start` (the divider changed mid-count).
    timer_done: u64,
    timer_armed: bool,
    tsc_deadline: u64,
    tsc_per_bus_tick: u64,
}

impl Lapic {
    /// The APIC of the vCPU with x2APIC id `id` after reset, in x2APIC mode
    /// ([`apic_base_reset_value`]; vCPU 0 is the BSP).
    pub fn new(id: u32) -> Self {
        Lapic {
            id,
            apic_base: apic_base_reset_value(id),
            tpr: 0,
            svr: 0xFF,
            irr: [0; 8],
            isr: [0; 8],
            tmr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr: 0,
            lvt: [LVT_MASKED; 7],
            timer_initial: 0,
            timer_divide: 0,
            timer_start: 0,
            timer_done: 0,
            timer_armed: false,
            tsc_deadline: 0,
            tsc_per_bus_tick: 1,
        }
    }

    /// The x2APIC id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The mode IA32_APIC_BASE selects.
    pub fn mode(&self) -> ApicMode {
        match (
            self.apic_base & APIC_BASE_EN != 0,
            self.apic_base & APIC_BASE_EXTD != 0,
        ) {
            (false, _) => ApicMode::Disabled,
            (true, false) => ApicMode::XApic,
            (true, true) => ApicMode::X2Apic,
        }
    }

    /// Sets how many TSC ticks one APIC bus clock (timer count before the divider) lasts; 1
    /// after reset, 0 is taken as 1. Set it before the guest uses the one-shot or periodic timer.
    pub fn set_tsc_per_bus_tick(&mut self, ratio: u32) {
        self.tsc_per_bus_tick = ratio.max(1) as u64;
    }

    fn enabled(&self) -> bool {
        self.mode() != ApicMode::Disabled && self.svr & SVR_APIC_ENABLED != 0
    }

    fn ppr(&self) -> u32 {
        let isrv = highest(&self.isr).map_or(0, |v| v as u32);
        if self.tpr & 0xF0 >= isrv & 0xF0 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The divide configuration's divisor (1 to 128).
    fn divisor(&self) -> u64 {
        let d = self.timer_divide;
        match (d & 3) | ((d >> 1) & 4) {
            7 => 1,
            code => 2 << code,
        }
    }

    /// TSC ticks per timer count.
    fn tick_tsc(&self) -> u64 {
        self.divisor() * self.tsc_per_bus_tick
    }

    /// The LVT timer mode.
    pub fn timer_mode(&self) -> TimerMode {
        match (self.lvt[LVT_TIMER] >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    /// Makes fixed interrupt `vector` pending (IRR). Dropped while the APIC is disabled;
    /// vectors below 16 are illegal and only set the ESR's receive-illegal-vector bit.
    pub fn accept(&mut self, vector: u8) {
        if !self.enabled() {
            return;
        }
        if vector < 16 {
            self.esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
            return;
        }
        bit_set(&mut self.irr, vector);
    }

    /// The highest pending vector the vCPU may take now: the APIC is enabled and the vector's
    /// priority class is above the PPR's.
    pub fn highest_deliverable(&self) -> Option<u8> {
        if !self.enabled() {
            return None;
        }
        highest(&self.irr).filter(|&v| v as u32 & 0xF0 > self.ppr() & 0xF0)
    }

    /// The hypervisor injected `vector`: it moves from IRR to ISR.
    pub fn start_service(&mut self, vector: u8) {
        bit_clear(&mut self.irr, vector);
        bit_set(&mut self.isr, vector);
    }

    fn eoi(&mut self) {
        if let Some(v) = highest(&self.isr) {
            bit_clear(&mut self.isr, v);
        }
    }

    /// The timer's next expiry in TSC ticks, masked or not.
    fn timer_deadline(&self) -> Option<u64> {
        match self.timer_mode() {
            TimerMode::TscDeadline => (self.tsc_deadline != 0).then_some(self.tsc_deadline),
            _ if self.timer_armed => {
                let left = (self.timer_initial as u64).saturating_sub(self.timer_done);
                Some(
                    self.timer_start
                        .saturating_add(left.saturating_mul(self.tick_tsc())),
                )
            }
            _ => None,
        }
    }

    /// TSC at which the timer next raises its interrupt, if it is armed and unmasked.
    pub fn next_timer_deadline_tsc(&self) -> Option<u64> {
        if self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        self.timer_deadline()
    }

    /// Expires the timer if its deadline is at or before `now`: the LVT timer vector becomes
    /// pending unless masked; a one-shot or TSC-deadline timer disarms, a periodic one reloads
    /// (missed periods are coalesced into one interrupt).
    pub fn poll_timer(&mut self, now: u64) {
        let Some(deadline) = self.timer_deadline() else {
            return;
        };
        if deadline > now {
            return;
        }
        if self.lvt[LVT_TIMER] & LVT_MASKED == 0 {
            self.accept(self.lvt[LVT_TIMER] as u8);
        }
        match self.timer_mode() {
            TimerMode::Periodic => {
                let period = (self.timer_initial as u64)
                    .saturating_mul(self.tick_tsc())
                    .max(1);
                let missed = (now - deadline) / period;
                self.timer_start = deadline + missed * period;
                self.timer_done = 0;
            }
            TimerMode::TscDeadline => self.tsc_deadline = 0,
            TimerMode::OneShot => self.timer_armed = false,
        }
    }

    fn current_count(&self, now: u64) -> u32 {
        if !self.timer_armed || self.timer_mode() == TimerMode::TscDeadline {
            return 0;
        }
        let elapsed = self.timer_done + now.saturating_sub(self.timer_start) / self.tick_tsc();
        let init = self.timer_initial as u64;
        let left = match self.timer_mode() {
            TimerMode::Periodic => init - elapsed % init.max(1),
            _ => init.saturating_sub(elapsed),
        };
        left as u32
    }

    /// RDMSR at TSC `now`: `None` if `msr` is not the APIC's, `Some(Err(()))` for a #GP.
    pub fn read_msr(&self, msr: u32, now: u64) -> Option<Result<u64, ()>> {
        let v = match msr {
            IA32_APIC_BASE => Ok(self.apic_base),
            IA32_TSC_DEADLINE => Ok(match self.timer_mode() {
                TimerMode::TscDeadline => self.tsc_deadline,
                _ => 0,
            }),
            X2APIC_FIRST..=X2APIC_LAST if self.mode() != ApicMode::X2Apic => Err(()),
            X2APIC_FIRST..=X2APIC_LAST => self.read_reg(msr, now).ok_or(()),
            _ => return None,
        };
        Some(v)
    }

    fn read_reg(&self, msr: u32, now: u64) -> Option<u64> {
        let v = match msr {
            reg::ID => self.id,
            reg::VERSION => APIC_VERSION,
            reg::TPR => self.tpr,
            reg::PPR => self.ppr(),
            reg::LDR => logical_id(self.id),
            reg::SVR => self.svr,
            0x810..=0x817 => self.isr[(msr - reg::ISR0) as usize],
            0x818..=0x81F => self.tmr[(msr - reg::TMR0) as usize],
            0x820..=0x827 => self.irr[(msr - reg::IRR0) as usize],
            reg::ESR => self.esr,
            reg::LVT_CMCI => self.lvt[LVT_CMCI],
            reg::ICR => return Some(self.icr),
            reg::LVT_TIMER..=reg::LVT_ERROR => self.lvt[(msr - reg::LVT_TIMER) as usize + 1],
            reg::TIMER_INITIAL_COUNT => self.timer_initial,
            reg::TIMER_CURRENT_COUNT => self.current_count(now),
            reg::TIMER_DIVIDE => self.timer_divide,
            _ => return None,
        };
        Some(v as u64)
    }

    /// WRMSR at TSC `now`: `None` if `msr` is not the APIC's, `Some(Err(()))` for a #GP, else
    /// the IPI an ICR write sends, for the hypervisor to route.
    pub fn write_msr(&mut self, msr: u32, value: u64, now: u64) -> Option<Result<Option<Ipi>, ()>> {
        let r = match msr {
            IA32_APIC_BASE => self.write_apic_base(value).map(|()| None),
            IA32_TSC_DEADLINE => {
                if self.timer_mode() == TimerMode::TscDeadline {
                    self.tsc_deadline = value;
                }
                Ok(None)
            }
            X2APIC_FIRST..=X2APIC_LAST if self.mode() != ApicMode::X2Apic => Err(()),
            X2APIC_FIRST..=X2APIC_LAST => self.write_reg(msr, value, now),
            _ => return None,
        };
        Some(r)
    }

    fn write_apic_base(&mut self, value: u64) -> Result<(), ()> {
        if value & APIC_BASE_RESERVED != 0 {
            return Err(());
        }
        let new = match (value & APIC_BASE_EN != 0, value & APIC_BASE_EXTD != 0) {
            (false, false) => ApicMode::Disabled,
            (true, false) => ApicMode::XApic,
            (true, true) => ApicMode::X2Apic,
            (false, true) => return Err(()),
        };
        let old = self.mode();
        if (old, new) == (ApicMode::X2Apic, ApicMode::XApic)
            || (old, new) == (ApicMode::Disabled, ApicMode::X2Apic)
        {
            return Err(());
        }
        if new == ApicMode::Disabled && old != ApicMode::Disabled {
            let tsc_per_bus_tick = self.tsc_per_bus_tick;
            *self = Lapic::new(self.id);
            self.tsc_per_bus_tick = tsc_per_bus_tick;
        }
        self.apic_base = value;
        Ok(())
    }

    fn write_reg(&mut self, msr: u32, value: u64, now: u64) -> Result<Option<Ipi>, ()> {
        if msr == reg::ICR {
            return self.write_icr(value);
        }
        if value >> 32 != 0 {
            return Err(());
        }
        let v = value as u32;
        let lvt_force = if self.svr & SVR_APIC_ENABLED == 0 {
            LVT_MASKED
        } else {
            0
        };
        match msr {
            reg::TPR => self.tpr = v & 0xFF,
            reg::EOI if v == 0 => self.eoi(),
            reg::SVR => {
                self.svr = v & 0x3FF;
                if self.svr & SVR_APIC_ENABLED == 0 {
                    self.poll_timer(now);
                    for l in &mut self.lvt {
                        *l |= LVT_MASKED;
                    }
                }
            }
            reg::ESR if v == 0 => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            reg::LVT_CMCI => self.lvt[LVT_CMCI] = v & LVT_WMASK[LVT_CMCI] | lvt_force,
            reg::LVT_TIMER => {
                // Settle an expiry under the old settings first.
                self.poll_timer(now);
                let old = self.timer_mode();
                self.lvt[LVT_TIMER] = v & LVT_WMASK[LVT_TIMER] | lvt_force;
                let new = self.timer_mode();
                if (old == TimerMode::TscDeadline) != (new == TimerMode::TscDeadline) {
                    self.timer_armed = false;
                    self.tsc_deadline = 0;
                }
            }
            reg::LVT_THERMAL..=reg::LVT_ERROR => {
                let i = (msr - reg::LVT_TIMER) as usize + 1;
                self.lvt[i] = v & LVT_WMASK[i] | lvt_force;
            }
            reg::TIMER_INITIAL_COUNT => {
                if self.timer_mode() != TimerMode::TscDeadline {
                    self.timer_initial = v;
                    self.timer_start = now;
                    self.timer_done = 0;
                    self.timer_armed = v != 0;
                }
            }
            reg::TIMER_DIVIDE => {
                // Keep the count reached so far; the rest runs at the new rate.
                let left = self.current_count(now) as u64;
                self.timer_done = (self.timer_initial as u64).saturating_sub(left);
                self.timer_start = now;
                self.timer_divide = v & 0xB;
            }
            reg::SELF_IPI => {
                let vector = v as u8;
                if vector < 16 {
                    self.esr_pending |= ESR_SEND_ILLEGAL_VECTOR;
                } else {
                    self.accept(vector);
                }
            }
            _ => return Err(()),
        }
        Ok(None)
    }

    fn write_icr(&mut self, value: u64) -> Result<Option<Ipi>, ()> {
        if value & ICR_RESERVED != 0 {
            return Err(());
        }
        self.icr = value & !(1 << 12);
        let ipi = Ipi::from_icr(value);
        if let Some(Ipi {
            delivery: Delivery::Fixed(vector),
            ..
        }) = ipi
        {
            if vector < 16 {
                self.esr_pending |= ESR_SEND_ILLEGAL_VECTOR;
                return Ok(None);
            }
        }
        Ok(ipi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(id: u32) -> Lapic {
        let mut a = Lapic::new(id);
        a.write_msr(reg::SVR, 0x1FF, 0).unwrap().unwrap();
        a
    }

    fn rd(a: &Lapic, msr: u32) -> u64 {
        a.read_msr(msr, 0).unwrap().unwrap()
    }

    fn wr(a: &mut Lapic, msr: u32, v: u64) -> Option<Ipi> {
        a.write_msr(msr, v, 0).unwrap().unwrap()
    }

    fn read_gp(a: &Lapic, msr: u32) -> bool {
        a.read_msr(msr, 0) == Some(Err(()))
    }

    fn write_gp(a: &mut Lapic, msr: u32, v: u64) -> bool {
        a.write_msr(msr, v, 0) == Some(Err(()))
    }

    #[test]
    fn identity_registers() {
        let a = Lapic::new(0);
        let b = Lapic::new(17);
        assert_eq!(rd(&a, reg::ID), 0);
        assert_eq!(rd(&b, reg::ID), 17);
        assert_eq!(rd(&b, reg::LDR), (1 << 16) | 2);
        assert_eq!(rd(&a, reg::LDR), 1);
        assert_eq!(rd(&a, reg::VERSION), 0x0006_0014);
        assert_eq!(rd(&a, IA32_APIC_BASE), 0xFEE0_0D00);
        assert_eq!(rd(&b, IA32_APIC_BASE), 0xFEE0_0C00);
        assert_eq!(apic_base_reset_value(3), 0xFEE0_0C00);
        assert_eq!(rd(&a, reg::SVR), 0xFF);
        assert_eq!(rd(&a, reg::LVT_TIMER), LVT_MASKED as u64);
        assert_eq!(a.read_msr(0x10, 0), None);
        assert_eq!(a.mode(), ApicMode::X2Apic);
    }

    #[test]
    fn gp_cases() {
        let mut a = enabled(0);
        for msr in [
            0x800, 0x801, 0x809, 0x80C, 0x80E, 0x831, 0x83A, 0x840, 0x8FF,
        ] {
            assert!(read_gp(&a, msr), "read of absent {msr:#x}");
            assert!(write_gp(&mut a, msr, 0), "write of absent {msr:#x}");
        }
        for msr in [reg::EOI, reg::SELF_IPI] {
            assert!(read_gp(&a, msr), "write-only {msr:#x}");
        }
        for msr in [
            reg::ID,
            reg::VERSION,
            reg::PPR,
            reg::LDR,
            reg::ISR0,
            reg::TMR0 + 7,
            reg::IRR0 + 3,
            reg::TIMER_CURRENT_COUNT,
        ] {
            assert!(write_gp(&mut a, msr, 0), "read-only {msr:#x}");
        }
        assert!(write_gp(&mut a, reg::EOI, 1));
        assert!(write_gp(&mut a, reg::ESR, 1));
        assert!(write_gp(&mut a, reg::TPR, 1 << 32));
        assert!(write_gp(&mut a, reg::ICR, 1 << 13), "reserved ICR bit");
        assert!(write_gp(&mut a, reg::ICR, 1 << 20), "reserved ICR bit");
        // Reserved bits of other registers are dropped.
        wr(&mut a, reg::TPR, 0xFFFF_FFFF);
        assert_eq!(rd(&a, reg::TPR), 0xFF);
        wr(&mut a, reg::SVR, 0xFFFF_FFFF);
        assert_eq!(rd(&a, reg::SVR), 0x3FF);
        wr(&mut a, reg::TIMER_DIVIDE, 0xFFFF_FFFF);
        assert_eq!(rd(&a, reg::TIMER_DIVIDE), 0xB);
        wr(&mut a, reg::LVT_ERROR, 0xFFFF_FFFF);
        assert_eq!(rd(&a, reg::LVT_ERROR), 0x1_00FF);
        wr(&mut a, reg::LVT_LINT0, 0xFFFF_FFFF);
        assert_eq!(rd(&a, reg::LVT_LINT0), 0x1_A7FF);
    }

    #[test]
    fn apic_base_transitions() {
        let mut a = Lapic::new(1);
        let base = 0xFEE0_0000;
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | APIC_BASE_EN),
            "x2APIC to xAPIC"
        );
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | APIC_BASE_EXTD),
            "EXTD without EN"
        );
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | 0xC00 | 1),
            "reserved bit 0"
        );
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | 0xC00 | 1 << 9),
            "reserved bit 9"
        );
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | 0xC00 | 1 << 60),
            "beyond 52 bits"
        );
        wr(&mut a, reg::SVR, 0x1FF);
        wr(&mut a, reg::TPR, 0x20);
        // Linux's __x2apic_disable: disable, then xAPIC.
        wr(&mut a, IA32_APIC_BASE, base);
        assert_eq!(a.mode(), ApicMode::Disabled);
        assert!(read_gp(&a, reg::ID), "no x2APIC MSRs when disabled");
        assert!(
            write_gp(&mut a, IA32_APIC_BASE, base | 0xC00),
            "disabled to x2APIC"
        );
        wr(&mut a, IA32_APIC_BASE, base | APIC_BASE_EN);
        assert_eq!(a.mode(), ApicMode::XApic);
        assert!(
            write_gp(&mut a, reg::TPR, 0),
            "no x2APIC MSRs in xAPIC mode"
        );
        wr(&mut a, IA32_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD);
        assert_eq!(rd(&a, reg::TPR), 0, "state was reset by the disable");
        assert_eq!(rd(&a, reg::SVR), 0xFF);
        assert_eq!(rd(&a, reg::ID), 1);
    }

    #[test]
    fn priority_and_eoi() {
        let mut a = Lapic::new(0);
        a.accept(0x31);
        assert_eq!(rd(&a, reg::IRR0 + 1), 0, "dropped while software-disabled");
        wr(&mut a, reg::SVR, 0x1FF);
        a.accept(0x31);
        a.accept(0xF3);
        assert_eq!(rd(&a, reg::IRR0 + 7), 1 << 0x13);
        assert_eq!(a.highest_deliverable(), Some(0xF3));
        a.start_service(0xF3);
        assert_eq!(rd(&a, reg::ISR0 + 7), 1 << 0x13);
        assert_eq!(rd(&a, reg::IRR0 + 7), 0);
        assert_eq!(a.highest_deliverable(), None, "0x31 is below the PPR");
        assert_eq!(rd(&a, reg::PPR), 0xF0);
        wr(&mut a, reg::EOI, 0);
        assert_eq!(rd(&a, reg::ISR0 + 7), 0);
        assert_eq!(a.highest_deliverable(), Some(0x31));
        wr(&mut a, reg::TPR, 0x45);
        assert_eq!(rd(&a, reg::PPR), 0x45);
        assert_eq!(a.highest_deliverable(), None, "TPR masks class 3");
        wr(&mut a, reg::TPR, 0x2F);
        assert_eq!(a.highest_deliverable(), Some(0x31));
        // Nested: a higher class interrupts a lower one; EOI ends the highest first.
        a.start_service(0x31);
        a.accept(0x51);
        assert_eq!(a.highest_deliverable(), Some(0x51));
        a.start_service(0x51);
        a.accept(0x52);
        assert_eq!(
            a.highest_deliverable(),
            None,
            "same class as the one in service"
        );
        wr(&mut a, reg::EOI, 0);
        assert_eq!(rd(&a, reg::PPR), 0x30);
        assert_eq!(a.highest_deliverable(), Some(0x52));
        wr(&mut a, reg::EOI, 0);
        wr(&mut a, reg::EOI, 0);
        wr(&mut a, reg::EOI, 0);
        assert_eq!(rd(&a, reg::PPR), 0x2F);
    }

    #[test]
    fn software_disable_masks_the_lvt() {
        let mut a = enabled(0);
        wr(&mut a, reg::LVT_TIMER, 0x40);
        wr(&mut a, reg::LVT_LINT0, 0x700);
        wr(&mut a, reg::SVR, 0xFF);
        assert_eq!(rd(&a, reg::LVT_TIMER), 0x1_0040);
        assert_eq!(rd(&a, reg::LVT_LINT0), 0x1_0700);
        wr(&mut a, reg::LVT_TIMER, 0x40);
        assert_eq!(
            rd(&a, reg::LVT_TIMER),
            0x1_0040,
            "cannot unmask while disabled"
        );
        assert_eq!(a.highest_deliverable(), None);
    }

    #[test]
    fn error_status_register() {
        let mut a = enabled(0);
        a.accept(3);
        assert_eq!(rd(&a, reg::ESR), 0, "not latched yet");
        wr(&mut a, reg::ESR, 0);
        assert_eq!(rd(&a, reg::ESR), ESR_RECEIVE_ILLEGAL_VECTOR as u64);
        assert_eq!(
            wr(&mut a, reg::ICR, 0x0F),
            None,
            "illegal fixed vector is not sent"
        );
        wr(&mut a, reg::SELF_IPI, 2);
        wr(&mut a, reg::ESR, 0);
        assert_eq!(rd(&a, reg::ESR), ESR_SEND_ILLEGAL_VECTOR as u64);
        wr(&mut a, reg::ESR, 0);
        assert_eq!(rd(&a, reg::ESR), 0);
    }

    #[test]
    fn self_ipi() {
        let mut a = enabled(0);
        assert_eq!(wr(&mut a, reg::SELF_IPI, 0xFFFF_FF40), None);
        assert_eq!(a.highest_deliverable(), Some(0x40));
    }

    #[test]
    fn icr_decoding() {
        let mut a = enabled(0);
        // Linux's wakeup_secondary_cpu_via_init: INIT assert, INIT de-assert, two SIPIs.
        let init = wr(&mut a, reg::ICR, (1u64 << 32) | 0xC500).unwrap();
        assert_eq!(init.delivery, Delivery::Init);
        assert_eq!(init.dest, 1);
        assert_eq!(init.dest_mode, DestMode::Physical);
        assert_eq!(init.shorthand, Shorthand::None);
        assert_eq!(rd(&a, reg::ICR), (1u64 << 32) | 0xC500);
        assert_eq!(
            wr(&mut a, reg::ICR, (1u64 << 32) | 0x8500),
            None,
            "de-assert"
        );
        let sipi = wr(&mut a, reg::ICR, (1u64 << 32) | 0x0600 | 0x9A).unwrap();
        assert_eq!(sipi.delivery, Delivery::Startup(0x9A));
        let nmi = Ipi::from_icr((2 << 32) | 0x400).unwrap();
        assert_eq!(nmi.delivery, Delivery::Nmi);
        let smi = Ipi::from_icr(0x200).unwrap();
        assert_eq!(smi.delivery, Delivery::Other(2));
        let lp = Ipi::from_icr(0x100 | 0x33).unwrap();
        assert_eq!(lp.delivery, Delivery::Fixed(0x33));
        assert!(lp.lowest_priority);
        let logical = Ipi::from_icr((0x0001_0003u64 << 32) | 0x800 | 0xEC).unwrap();
        assert_eq!(logical.dest_mode, DestMode::Logical);
        assert_eq!(logical.dest, 0x0001_0003);
        for (bits, s) in [
            (1u64, Shorthand::ToSelf),
            (2, Shorthand::AllIncludingSelf),
            (3, Shorthand::AllExcludingSelf),
        ] {
            assert_eq!(Ipi::from_icr(bits << 18 | 0xFD).unwrap().shorthand, s);
        }
    }

    #[test]
    fn ipi_targets() {
        let ids: Vec<u32> = (0..20).collect();
        let t = |icr: u64, from: u32| Ipi::from_icr(icr).unwrap().targets(from, &ids);
        assert_eq!(t(5u64 << 32 | 0x40, 0), [5], "physical");
        assert_eq!(t(25u64 << 32 | 0x40, 0), [] as [u32; 0], "absent id");
        assert_eq!(t(1 << 18 | 0x40, 7), [7], "self");
        assert_eq!(t(2 << 18 | 0x40, 7), ids, "all including self");
        let others: Vec<u32> = ids.iter().copied().filter(|&i| i != 7).collect();
        assert_eq!(t(3 << 18 | 0x40, 7), others, "all excluding self");
        assert_eq!(
            t(u64::from(BROADCAST) << 32 | 0x40, 3),
            ids,
            "physical broadcast"
        );
        assert_eq!(
            t(u64::from(BROADCAST) << 32 | 0x840, 3),
            ids,
            "logical broadcast"
        );
        // Logical cluster mode: cluster 0 ids 0 and 2; cluster 1 ids 16 and 19.
        assert_eq!(t(0x0000_0005u64 << 32 | 0x840, 0), [0, 2]);
        assert_eq!(t(0x0001_0009u64 << 32 | 0x840, 0), [16, 19]);
        assert_eq!(t(0x0002_0001u64 << 32 | 0x840, 0), [] as [u32; 0]);
        // Lowest priority reaches one of the destinations.
        assert_eq!(t(0x0000_0006u64 << 32 | 0x940, 0), [1]);
        // The destination of logical ids matches what each LDR says.
        for id in ids.iter().copied() {
            let ldr = rd(&Lapic::new(id), reg::LDR) as u32;
            assert_eq!(t(u64::from(ldr) << 32 | 0x840, 0), [id]);
        }
    }

    #[test]
    fn one_shot_timer() {
        let mut a = enabled(0);
        wr(&mut a, reg::TIMER_DIVIDE, 0xB); // divide by 1
        wr(&mut a, reg::LVT_TIMER, 0x40);
        a.write_msr(reg::TIMER_INITIAL_COUNT, 1000, 100);
        assert_eq!(a.next_timer_deadline_tsc(), Some(1100));
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 600), Some(Ok(500)));
        a.poll_timer(1099);
        assert_eq!(a.highest_deliverable(), None);
        a.poll_timer(1100);
        assert_eq!(a.highest_deliverable(), Some(0x40));
        assert_eq!(a.next_timer_deadline_tsc(), None);
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 1200), Some(Ok(0)));
        assert_eq!(rd(&a, reg::TIMER_INITIAL_COUNT), 1000);
        // Writing 0 stops it.
        a.write_msr(reg::TIMER_INITIAL_COUNT, 1000, 2000);
        a.write_msr(reg::TIMER_INITIAL_COUNT, 0, 2001);
        assert_eq!(a.next_timer_deadline_tsc(), None);
    }

    #[test]
    fn divider_and_bus_ratio() {
        let mut a = enabled(0);
        a.set_tsc_per_bus_tick(3);
        wr(&mut a, reg::LVT_TIMER, 0x40);
        for (dcr, div) in [
            (0x0, 2),
            (0x1, 4),
            (0x2, 8),
            (0x3, 16),
            (0x8, 32),
            (0x9, 64),
            (0xA, 128),
            (0xB, 1),
        ] {
            wr(&mut a, reg::TIMER_DIVIDE, dcr);
            a.write_msr(reg::TIMER_INITIAL_COUNT, 10, 1000);
            assert_eq!(a.next_timer_deadline_tsc(), Some(1000 + 10 * 3 * div));
        }
        // Changing the divider mid-count keeps the count reached.
        wr(&mut a, reg::TIMER_DIVIDE, 0xB);
        a.write_msr(reg::TIMER_INITIAL_COUNT, 100, 0);
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 30), Some(Ok(90)));
        a.write_msr(reg::TIMER_DIVIDE, 0x0, 30).unwrap().unwrap();
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 30), Some(Ok(90)));
        assert_eq!(a.next_timer_deadline_tsc(), Some(30 + 90 * 6));
    }

    #[test]
    fn periodic_timer() {
        let mut a = enabled(0);
        wr(&mut a, reg::TIMER_DIVIDE, 0x0); // divide by 2
        wr(&mut a, reg::LVT_TIMER, (1 << 17) | 0x42);
        assert_eq!(a.timer_mode(), TimerMode::Periodic);
        wr(&mut a, reg::TIMER_INITIAL_COUNT, 10);
        assert_eq!(a.next_timer_deadline_tsc(), Some(20));
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 26), Some(Ok(7)));
        a.poll_timer(45);
        assert_eq!(a.highest_deliverable(), Some(0x42));
        assert_eq!(
            a.next_timer_deadline_tsc(),
            Some(60),
            "missed periods coalesced"
        );
        a.start_service(0x42);
        wr(&mut a, reg::EOI, 0);
        a.poll_timer(60);
        assert_eq!(a.highest_deliverable(), Some(0x42));
        assert_eq!(a.next_timer_deadline_tsc(), Some(80));
    }

    #[test]
    fn masked_timer_expires_silently() {
        let mut a = enabled(0);
        wr(&mut a, reg::TIMER_DIVIDE, 0xB);
        wr(&mut a, reg::LVT_TIMER, LVT_MASKED as u64 | 0x40);
        a.write_msr(reg::TIMER_INITIAL_COUNT, 100, 0);
        assert_eq!(a.next_timer_deadline_tsc(), None);
        // Unmasking after the expiry does not deliver the lost interrupt.
        a.write_msr(reg::LVT_TIMER, 0x40, 500).unwrap().unwrap();
        assert_eq!(a.next_timer_deadline_tsc(), None);
        a.poll_timer(1000);
        assert_eq!(a.highest_deliverable(), None);
        // Unmasking before it fires arms the interrupt.
        wr(&mut a, reg::LVT_TIMER, LVT_MASKED as u64 | 0x40);
        a.write_msr(reg::TIMER_INITIAL_COUNT, 100, 1000);
        a.write_msr(reg::LVT_TIMER, 0x40, 1050).unwrap().unwrap();
        assert_eq!(a.next_timer_deadline_tsc(), Some(1100));
    }

    #[test]
    fn tsc_deadline_timer() {
        let mut a = enabled(0);
        a.write_msr(IA32_TSC_DEADLINE, 5000, 0).unwrap().unwrap();
        assert_eq!(
            rd(&a, IA32_TSC_DEADLINE),
            0,
            "ignored outside TSC-deadline mode"
        );
        wr(&mut a, reg::LVT_TIMER, (2 << 17) | 0x41);
        assert_eq!(a.timer_mode(), TimerMode::TscDeadline);
        wr(&mut a, reg::TIMER_INITIAL_COUNT, 77);
        assert_eq!(rd(&a, reg::TIMER_INITIAL_COUNT), 0, "initial count ignored");
        wr(&mut a, IA32_TSC_DEADLINE, 5000);
        assert_eq!(rd(&a, IA32_TSC_DEADLINE), 5000);
        assert_eq!(a.next_timer_deadline_tsc(), Some(5000));
        assert_eq!(a.read_msr(reg::TIMER_CURRENT_COUNT, 100), Some(Ok(0)));
        a.poll_timer(4999);
        assert_eq!(a.highest_deliverable(), None);
        a.poll_timer(6000);
        assert_eq!(a.highest_deliverable(), Some(0x41));
        assert_eq!(a.next_timer_deadline_tsc(), None);
        assert_eq!(rd(&a, IA32_TSC_DEADLINE), 0, "cleared when it fires");
        // Writing 0 disarms; leaving the mode disarms.
        wr(&mut a, IA32_TSC_DEADLINE, 9000);
        wr(&mut a, IA32_TSC_DEADLINE, 0);
        assert_eq!(a.next_timer_deadline_tsc(), None);
        wr(&mut a, IA32_TSC_DEADLINE, 9000);
        wr(&mut a, reg::LVT_TIMER, 0x41);
        wr(&mut a, reg::LVT_TIMER, (2 << 17) | 0x41);
        assert_eq!(a.next_timer_deadline_tsc(), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_msr_accesses_never_panic(
            ops in proptest::collection::vec(
                (any::<bool>(), 0x7F0u32..0x900, any::<u64>(), any::<u32>()),
                1..300,
            )
        ) {
            let mut a = Lapic::new(5);
            let mut now = 0u64;
            for (write, msr, value, dt) in ops {
                now += dt as u64;
                let value = if msr == reg::ICR { value } else { value & 0xFFFF_FFFF };
                if write {
                    let _ = a.write_msr(msr, value, now);
                } else {
                    let _ = a.read_msr(msr, now);
                }
                a.poll_timer(now);
                if let Some(v) = a.highest_deliverable() {
                    prop_assert!(v >= 16);
                    a.start_service(v);
                }
                if let Some(d) = a.next_timer_deadline_tsc() {
                    // A periodic or one-shot deadline never lies before its start.
                    prop_assert!(a.timer_mode() == TimerMode::TscDeadline || d >= a.timer_start);
                }
                prop_assert_eq!(a.read_msr(reg::ID, now), Some(Ok(5)));
            }
        }
    }
}
