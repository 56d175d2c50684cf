//! A local APIC in x2APIC mode, reached through MSRs 0x800-0x8FF (Intel SDM
//! vol. 3, chapter 11), plus IA32_APIC_BASE and IA32_TSC_DEADLINE.
//!
//! The guest starts with x2APIC already enabled (as "enabled by BIOS"), so
//! there is no MMIO page to emulate. The model keeps IRR/ISR/TMR, TPR/PPR, the
//! LVT, the timer (one-shot, periodic and TSC-deadline, counted in TSC ticks
//! divided by the divide configuration), and turns ICR writes into [`Ipi`]s
//! that the kernel routes to the other vCPUs' models.

use alloc::vec::Vec;

/// IA32_APIC_BASE.
pub const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_TSC_DEADLINE.
pub const IA32_TSC_DEADLINE: u32 = 0x6E0;
/// First x2APIC MSR.
pub const X2APIC_FIRST: u32 = 0x800;
/// Last x2APIC MSR.
pub const X2APIC_LAST: u32 = 0x8FF;
const APIC_BASE_BSP: u64 = 1 << 8;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_EN: u64 = 1 << 11;
const APIC_DEFAULT_BASE: u64 = 0xFEE0_0000;
const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;

/// How an IPI is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Fixed (or lowest-priority) interrupt with this vector.
    Fixed(u8),
    /// NMI.
    Nmi,
    /// INIT.
    Init,
    /// Start-up with this vector (the AP starts at vector << 12).
    Startup(u8),
    /// SMI or a reserved mode: not delivered.
    Other(u8),
}

/// An IPI written to the ICR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipi {
    /// The delivery mode.
    pub delivery: Delivery,
    /// Destination field (x2APIC id, or cluster/bitmap in logical mode).
    pub dest: u32,
    /// Logical destination mode.
    pub logical: bool,
    /// Destination shorthand: 0 none, 1 self, 2 all including self, 3 all excluding self.
    pub shorthand: u8,
}

impl Ipi {
    /// Decodes an ICR value.
    pub fn from_icr(icr: u64) -> Self {
        let vector = icr as u8;
        let delivery = match (icr >> 8) & 7 {
            0 | 1 => Delivery::Fixed(vector),
            4 => Delivery::Nmi,
            5 => Delivery::Init,
            6 => Delivery::Startup(vector),
            m => Delivery::Other(m as u8),
        };
        Ipi {
            delivery,
            dest: (icr >> 32) as u32,
            logical: icr & (1 << 11) != 0,
            shorthand: ((icr >> 18) & 3) as u8,
        }
    }

    /// The x2APIC ids (among `ids`) this IPI, sent by `from`, reaches.
    pub fn targets(&self, from: u32, ids: &[u32]) -> Vec<u32> {
        ids.iter()
            .copied()
            .filter(|&id| match self.shorthand {
                1 => id == from,
                2 => true,
                3 => id != from,
                _ if self.dest == u32::MAX => true,
                _ if self.logical => {
                    let (cluster, bit) = logical_id(id);
                    self.dest >> 16 == cluster && self.dest & 0xFFFF & bit != 0
                }
                _ => id == self.dest,
            })
            .collect()
    }
}

/// x2APIC logical id of `id`: (cluster, bit in the cluster's 16-bit mask).
fn logical_id(id: u32) -> (u32, u32) {
    (id >> 4, 1 << (id & 0xF))
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
    esr: u32,
    icr: u64,
    /// LVT: CMCI, timer, thermal, perf, LINT0, LINT1, error.
    lvt: [u32; 7],
    timer_initial: u32,
    timer_divide: u32,
    timer_start: u64,
    timer_armed: bool,
    tsc_deadline: u64,
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

impl Lapic {
    /// The APIC of vCPU `id` after reset, in x2APIC mode (vCPU 0 is the BSP).
    pub fn new(id: u32) -> Self {
        let bsp = if id == 0 { APIC_BASE_BSP } else { 0 };
        Lapic {
            id,
            apic_base: APIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_EXTD | bsp,
            tpr: 0,
            svr: 0xFF,
            irr: [0; 8],
            isr: [0; 8],
            tmr: [0; 8],
            esr: 0,
            icr: 0,
            lvt: [LVT_MASKED; 7],
            timer_initial: 0,
            timer_divide: 0,
            timer_start: 0,
            timer_armed: false,
            tsc_deadline: 0,
        }
    }

    fn ppr(&self) -> u32 {
        let isrv = highest(&self.isr).map_or(0, |v| v as u32 & 0xF0);
        if self.tpr & 0xF0 >= isrv {
            self.tpr & 0xFF
        } else {
            isrv
        }
    }

    fn divisor(&self) -> u64 {
        let d = self.timer_divide & 0xB;
        let code = (d & 3) | ((d >> 1) & 4);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    fn timer_mode(&self) -> u32 {
        (self.lvt[1] >> 17) & 3
    }

    /// Makes `vector` pending (IRR). Vectors below 16 are illegal and set an error.
    pub fn accept(&mut self, vector: u8) {
        if vector < 16 {
            self.esr |= 1 << 6; // received illegal vector
            return;
        }
        bit_set(&mut self.irr, vector);
    }

    /// The highest pending vector the vCPU may take now (APIC enabled, above the PPR).
    pub fn highest_deliverable(&self) -> Option<u8> {
        if self.svr & SVR_ENABLE == 0 {
            return None;
        }
        highest(&self.irr).filter(|&v| v as u32 & 0xF0 > self.ppr() & 0xF0)
    }

    /// The kernel injected `vector`: it moves from IRR to ISR.
    pub fn start_service(&mut self, vector: u8) {
        bit_clear(&mut self.irr, vector);
        bit_set(&mut self.isr, vector);
    }

    fn eoi(&mut self) {
        if let Some(v) = highest(&self.isr) {
            bit_clear(&mut self.isr, v);
        }
    }

    /// TSC at which the timer next fires, if it is armed and unmasked.
    pub fn next_timer_deadline_tsc(&self) -> Option<u64> {
        if self.lvt[1] & LVT_MASKED != 0 {
            return None;
        }
        match self.timer_mode() {
            2 => (self.tsc_deadline != 0).then_some(self.tsc_deadline),
            0 | 1 if self.timer_armed => Some(
                self.timer_start
                    .saturating_add(self.timer_initial as u64 * self.divisor()),
            ),
            _ => None,
        }
    }

    /// Fires the timer if its deadline has passed at `now`.
    pub fn poll_timer(&mut self, now: u64) {
        let Some(deadline) = self.next_timer_deadline_tsc() else {
            return;
        };
        if deadline > now {
            return;
        }
        self.accept(self.lvt[1] as u8);
        match self.timer_mode() {
            1 => {
                let period = (self.timer_initial as u64 * self.divisor()).max(1);
                let missed = (now - deadline) / period;
                self.timer_start = deadline + missed * period;
            }
            2 => self.tsc_deadline = 0,
            _ => self.timer_armed = false,
        }
    }

    /// RDMSR: `None` if `msr` is not the APIC's, `Err` for a #GP.
    pub fn read_msr(&self, msr: u32, now: u64) -> Option<Result<u64, ()>> {
        let v = match msr {
            IA32_APIC_BASE => self.apic_base,
            IA32_TSC_DEADLINE => {
                if self.timer_mode() == 2 {
                    self.tsc_deadline
                } else {
                    0
                }
            }
            X2APIC_FIRST..=X2APIC_LAST => match self.read_reg(msr - X2APIC_FIRST, now) {
                Some(v) => v,
                None => return Some(Err(())),
            },
            _ => return None,
        };
        Some(Ok(v))
    }

    fn read_reg(&self, reg: u32, now: u64) -> Option<u64> {
        Some(match reg {
            0x02 => self.id as u64,
            0x03 => 0x0006_0014, // version 0x14, 7 LVT entries
            0x08 => self.tpr as u64,
            0x0A => self.ppr() as u64,
            0x0D => {
                let (cluster, bit) = logical_id(self.id);
                ((cluster << 16) | bit) as u64
            }
            0x0F => self.svr as u64,
            0x10..=0x17 => self.isr[(reg - 0x10) as usize] as u64,
            0x18..=0x1F => self.tmr[(reg - 0x18) as usize] as u64,
            0x20..=0x27 => self.irr[(reg - 0x20) as usize] as u64,
            0x28 => self.esr as u64,
            0x2F => self.lvt[0] as u64,
            0x30 => self.icr,
            0x32..=0x37 => self.lvt[(reg - 0x31) as usize] as u64,
            0x38 => self.timer_initial as u64,
            0x39 => {
                if !self.timer_armed || self.timer_mode() == 2 {
                    0
                } else {
                    let elapsed = now.saturating_sub(self.timer_start) / self.divisor();
                    let init = self.timer_initial as u64;
                    if self.timer_mode() == 1 {
                        init - elapsed % init.max(1)
                    } else {
                        init.saturating_sub(elapsed)
                    }
                }
            }
            0x3E => self.timer_divide as u64,
            _ => return None,
        })
    }

    /// WRMSR: `None` if `msr` is not the APIC's, `Err` for a #GP, else an IPI to route.
    pub fn write_msr(&mut self, msr: u32, value: u64, now: u64) -> Option<Result<Option<Ipi>, ()>> {
        let r = match msr {
            IA32_APIC_BASE => {
                // Only the enable bits may change; the base stays put.
                let keep = APIC_DEFAULT_BASE | APIC_BASE_BSP;
                if value & !(APIC_BASE_EN | APIC_BASE_EXTD | keep) != 0
                    || value & keep != self.apic_base & keep
                {
                    Err(())
                } else {
                    self.apic_base = value;
                    Ok(None)
                }
            }
            IA32_TSC_DEADLINE => {
                if self.timer_mode() == 2 {
                    self.tsc_deadline = value;
                }
                Ok(None)
            }
            X2APIC_FIRST..=X2APIC_LAST => self.write_reg(msr - X2APIC_FIRST, value, now),
            _ => return None,
        };
        Some(r)
    }

    fn write_reg(&mut self, reg: u32, value: u64, now: u64) -> Result<Option<Ipi>, ()> {
        let v32 = value as u32;
        if reg != 0x30 && value >> 32 != 0 {
            return Err(());
        }
        match reg {
            0x08 => self.tpr = v32 & 0xFF,
            0x0B => {
                if v32 != 0 {
                    return Err(());
                }
                self.eoi();
            }
            0x0F => self.svr = v32 & 0x11FF,
            0x28 => self.esr = 0,
            0x2F => self.lvt[0] = v32 & 0x1_07FF,
            0x30 => {
                self.icr = value & !(1 << 12);
                return Ok(Some(Ipi::from_icr(value)));
            }
            0x32 => {
                let old_mode = self.timer_mode();
                self.lvt[1] = v32 & 0x7_00FF;
                if self.timer_mode() != old_mode {
                    self.timer_armed = false;
                    self.tsc_deadline = 0;
                }
            }
            0x33..=0x37 => self.lvt[(reg - 0x31) as usize] = v32 & 0x1_A7FF,
            0x38 => {
                self.timer_initial = v32;
                self.timer_start = now;
                self.timer_armed = v32 != 0 && self.timer_mode() != 2;
            }
            0x3E => self.timer_divide = v32 & 0xB,
            0x3F => self.accept(v32 as u8), // SELF IPI
            _ => return Err(()),
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_registers() {
        let a = Lapic::new(0);
        let b = Lapic::new(17);
        assert_eq!(a.read_msr(0x802, 0), Some(Ok(0)));
        assert_eq!(b.read_msr(0x802, 0), Some(Ok(17)));
        assert_eq!(b.read_msr(0x80D, 0), Some(Ok((1 << 16) | 2)));
        assert_eq!(
            a.read_msr(IA32_APIC_BASE, 0),
            Some(Ok(0xFEE0_0000 | (1 << 11) | (1 << 10) | (1 << 8)))
        );
        assert_eq!(
            b.read_msr(IA32_APIC_BASE, 0).unwrap().unwrap() & (1 << 8),
            0
        );
        assert_eq!(a.read_msr(0x801, 0), Some(Err(())));
        assert_eq!(a.read_msr(0x10, 0), None);
    }

    #[test]
    fn priority_and_eoi() {
        let mut a = Lapic::new(0);
        assert_eq!(a.highest_deliverable(), None, "software-disabled");
        a.write_msr(0x80F, 0x1FF, 0).unwrap().unwrap();
        a.accept(0x31);
        a.accept(0xF3);
        assert_eq!(a.highest_deliverable(), Some(0xF3));
        a.start_service(0xF3);
        assert_eq!(a.highest_deliverable(), None, "0x31 is below the PPR");
        assert_eq!(a.read_msr(0x80A, 0), Some(Ok(0xF0)));
        a.write_msr(0x80B, 0, 0).unwrap().unwrap();
        assert_eq!(a.highest_deliverable(), Some(0x31));
        a.write_msr(0x808, 0x40, 0).unwrap().unwrap();
        assert_eq!(a.highest_deliverable(), None, "TPR masks class 3");
        assert_eq!(a.write_msr(0x80B, 1, 0), Some(Err(())));
        assert_eq!(a.write_msr(0x802, 5, 0), Some(Err(())), "ID is read-only");
    }

    #[test]
    fn icr_decoding_and_targets() {
        let mut a = Lapic::new(0);
        let ids = [0, 1, 2];
        let ipi = a
            .write_msr(0x830, (1u64 << 32) | (5 << 8), 0)
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ipi.delivery, Delivery::Init);
        assert_eq!(ipi.targets(0, &ids), [1]);
        let sipi = Ipi::from_icr((2u64 << 32) | (6 << 8) | 0x9A);
        assert_eq!(sipi.delivery, Delivery::Startup(0x9A));
        assert_eq!(sipi.targets(0, &ids), [2]);
        let all_but_self = Ipi::from_icr((3 << 18) | 0xFD);
        assert_eq!(all_but_self.targets(1, &ids), [0, 2]);
        let logical = Ipi::from_icr((0b101u64 << 32) | (1 << 11) | 0x40);
        assert_eq!(logical.targets(0, &ids), [0, 2]);
        assert_eq!(Ipi::from_icr((u32::MAX as u64) << 32).targets(0, &ids), ids);
    }

    #[test]
    fn timers() {
        let mut a = Lapic::new(0);
        a.write_msr(0x80F, 0x1FF, 0);
        // One-shot, divide by 1, 1000 ticks.
        a.write_msr(0x83E, 0xB, 0);
        a.write_msr(0x832, 0x40, 0);
        a.write_msr(0x838, 1000, 100);
        assert_eq!(a.next_timer_deadline_tsc(), Some(1100));
        assert_eq!(a.read_msr(0x839, 600), Some(Ok(500)));
        a.poll_timer(1099);
        assert_eq!(a.highest_deliverable(), None);
        a.poll_timer(1100);
        assert_eq!(a.highest_deliverable(), Some(0x40));
        assert_eq!(a.next_timer_deadline_tsc(), None);
        // TSC-deadline mode.
        a.write_msr(0x832, (2 << 17) | 0x41, 0);
        a.write_msr(IA32_TSC_DEADLINE, 5000, 0);
        assert_eq!(a.next_timer_deadline_tsc(), Some(5000));
        a.poll_timer(6000);
        assert_eq!(a.next_timer_deadline_tsc(), None);
        // Periodic, divide by 2.
        a.write_msr(0x83E, 0x0, 0);
        a.write_msr(0x832, (1 << 17) | 0x42, 0);
        a.write_msr(0x838, 10, 0);
        assert_eq!(a.next_timer_deadline_tsc(), Some(20));
        a.poll_timer(45);
        assert_eq!(a.next_timer_deadline_tsc(), Some(60));
        // Masked: never fires.
        a.write_msr(0x832, LVT_MASKED as u64 | (1 << 17) | 0x42, 0);
        assert_eq!(a.next_timer_deadline_tsc(), None);
    }
}
