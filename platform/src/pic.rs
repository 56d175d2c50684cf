//! A pair of 8259A interrupt controllers that never raise an interrupt.
//!
//! It exists so that Linux finds a legacy PIC (its probe writes the interrupt
//! mask register and reads it back) and can map the ACPI SCI's GSI 9 to an
//! IRQ; without one ACPI cannot install its SCI handler and stays off, and
//! with it ACPI power-off. Interrupts reach the guest through the Xen event
//! channel callback and the local APIC instead.

/// Master command/status port.
pub const MASTER_CMD: u16 = 0x20;
/// Master data (IMR) port.
pub const MASTER_DATA: u16 = 0x21;
/// Slave command/status port.
pub const SLAVE_CMD: u16 = 0xA0;
/// Slave data (IMR) port.
pub const SLAVE_DATA: u16 = 0xA1;
/// Edge/level control registers (ELCR) of the PIIX.
pub const ELCR: (u16, u16) = (0x4D0, 0x4D1);

/// One 8259A: its mask register and where it is in the ICW sequence.
#[derive(Clone, Copy, Debug, Default)]
struct Chip {
    imr: u8,
    /// ICW2..ICW4 still expected after ICW1.
    icw_left: u8,
    /// OCW3 asked for the ISR on the next status read (else the IRR).
    read_isr: bool,
}

impl Chip {
    fn write_cmd(&mut self, v: u8) {
        if v & 0x10 != 0 {
            // ICW1: ICW2 and ICW3 follow, ICW4 if bit 0.
            self.icw_left = if v & 1 != 0 { 3 } else { 2 };
            self.imr = 0;
        } else if v & 0x18 == 0x08 {
            // OCW3: register select.
            if v & 2 != 0 {
                self.read_isr = v & 1 != 0;
            }
        }
        // OCW2 (EOI and rotation): nothing is ever in service.
    }

    fn write_data(&mut self, v: u8) {
        if self.icw_left > 0 {
            self.icw_left -= 1;
        } else {
            self.imr = v;
        }
    }
}

/// The master/slave pair and the ELCR.
#[derive(Clone, Debug, Default)]
pub struct Pic {
    chips: [Chip; 2],
    elcr: [u8; 2],
}

impl Pic {
    /// The controllers after reset: everything unmasked, nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `port` belongs to the PICs or the ELCR.
    pub fn handles_port(&self, port: u16) -> bool {
        matches!(port, MASTER_CMD | MASTER_DATA | SLAVE_CMD | SLAVE_DATA)
            || port == ELCR.0
            || port == ELCR.1
    }

    /// A one-byte read (status reads return an empty IRR/ISR).
    pub fn io_read(&self, port: u16) -> u8 {
        match port {
            MASTER_DATA => self.chips[0].imr,
            SLAVE_DATA => self.chips[1].imr,
            p if p == ELCR.0 => self.elcr[0],
            p if p == ELCR.1 => self.elcr[1],
            _ => 0,
        }
    }

    /// A one-byte write.
    pub fn io_write(&mut self, port: u16, value: u8) {
        match port {
            MASTER_CMD => self.chips[0].write_cmd(value),
            SLAVE_CMD => self.chips[1].write_cmd(value),
            MASTER_DATA => self.chips[0].write_data(value),
            SLAVE_DATA => self.chips[1].write_data(value),
            // IRQs 0-2 and 8, 13 are always edge (PIIX).
            p if p == ELCR.0 => self.elcr[0] = value & 0xF8,
            p if p == ELCR.1 => self.elcr[1] = value & 0xDE,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_probe_reads_the_mask_back() {
        let mut pic = Pic::new();
        pic.io_write(SLAVE_DATA, 0xFF);
        pic.io_write(MASTER_DATA, 0xFB);
        assert_eq!(pic.io_read(MASTER_DATA), 0xFB);
        assert_eq!(pic.io_read(SLAVE_DATA), 0xFF);
    }

    #[test]
    fn init_sequence_then_mask() {
        let mut pic = Pic::new();
        pic.io_write(MASTER_CMD, 0x11); // ICW1 with ICW4
        pic.io_write(MASTER_DATA, 0x30); // ICW2: vector base
        pic.io_write(MASTER_DATA, 0x04); // ICW3
        pic.io_write(MASTER_DATA, 0x01); // ICW4
        assert_eq!(pic.io_read(MASTER_DATA), 0);
        pic.io_write(MASTER_DATA, 0xFE);
        assert_eq!(pic.io_read(MASTER_DATA), 0xFE);
        pic.io_write(MASTER_CMD, 0x0B); // OCW3: read ISR
        assert_eq!(pic.io_read(MASTER_CMD), 0);
        pic.io_write(ELCR.1, 0xFF);
        assert_eq!(pic.io_read(ELCR.1), 0xDE);
        assert!(pic.handles_port(0x4D0) && !pic.handles_port(0x22));
    }
}
