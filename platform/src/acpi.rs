//! ACPI tables for an HVM domain and the PM1 registers behind them.
//!
//! Layout at [`crate::layout::ACPI_TABLES_GPA`]: RSDP (revision 2), XSDT,
//! FADT (revision 5, no SMI command port so ACPI is already enabled, PM1a
//! event/control blocks on I/O ports, no PM timer), FACS, a DSDT whose only
//! object is `Name (_S5, Package () { 5, 5, 0, 0 })` so that Linux registers
//! ACPI power-off, and a MADT with one enabled local APIC per vCPU (ACPI
//! processor UID = APIC id = Xen vcpu id), no I/O APIC, and PCAT_COMPAT set
//! for the 8259 pair of [`crate::pic`], through which Linux maps the SCI. Linux needs the MADT to start Xen's per-vCPU timers
//! (pitfall P1 of the Linux checklist).

use alloc::vec::Vec;

/// I/O port of the PM1a event block (status at +0, enable at +2).
pub const PM1A_EVT_PORT: u16 = 0xB000;
/// Length of the PM1a event block.
pub const PM1A_EVT_LEN: u8 = 4;
/// I/O port of the PM1a control block.
pub const PM1A_CNT_PORT: u16 = 0xB004;
/// Length of the PM1a control block.
pub const PM1A_CNT_LEN: u8 = 2;
/// The SCI interrupt (not delivered: there is no interrupt controller for it).
pub const SCI_IRQ: u16 = 9;
/// PM1_CNT.SCI_EN: the platform is in ACPI mode.
pub const PM1_CNT_SCI_EN: u16 = 1 << 0;
/// PM1_CNT.SLP_EN.
pub const PM1_CNT_SLP_EN: u16 = 1 << 13;
/// The SLP_TYP value of S5 in the DSDT's `_S5` package.
pub const SLP_TYP_S5: u16 = 5;

/// The tables as bytes, to be copied to their base address.
pub struct AcpiTables {
    /// Everything from the base address on.
    pub bytes: Vec<u8>,
    /// Guest-physical address of the RSDP (for `boot_params.acpi_rsdp_addr`).
    pub rsdp_gpa: u64,
}

const RSDP_OFF: usize = 0;
const XSDT_OFF: usize = 0x40;
const FACS_OFF: usize = 0x80;
const FADT_OFF: usize = 0x100;
const DSDT_OFF: usize = 0x240;
const MADT_OFF: usize = 0x300;
/// Size of a standard ACPI table header.
const HEADER_LEN: usize = 36;
const FADT_LEN: usize = 268;

/// The DSDT's AML: `Name (_S5, Package () { 5, 5, 0, 0 })` for power-off, and
/// `Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_UID, 0)
/// Name (_BBN, 0) } }`: the PCI root bridge through which Linux, once ACPI is
/// on, enumerates bus 0 (it then finds the Xen platform device).
pub const DSDT_AML: [u8; 50] = [
    0x08, b'_', b'S', b'5', b'_', // NameOp "_S5_"
    0x12, 0x08, 0x04, // PackageOp, PkgLength 8, NumElements 4
    0x0A, 0x05, 0x0A, 0x05, // BytePrefix 5, BytePrefix 5
    0x00, 0x00, // Zero, Zero
    0x10, 0x23, b'\\', b'_', b'S', b'B', b'_', // ScopeOp, PkgLength 35, "\_SB_"
    0x5B, 0x82, 0x1B, b'P', b'C', b'I', b'0', // DeviceOp, PkgLength 27, "PCI0"
    0x08, b'_', b'H', b'I', b'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03, // _HID PNP0A03
    0x08, b'_', b'U', b'I', b'D', 0x00, // _UID 0
    0x08, b'_', b'B', b'B', b'N', 0x00, // _BBN 0
];

fn put(b: &mut [u8], off: usize, v: u64, n: usize) {
    b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

/// Writes a table header and fixes the checksum over `len` bytes.
fn header(b: &mut [u8], off: usize, sig: &[u8; 4], len: usize, rev: u8) {
    b[off..off + 4].copy_from_slice(sig);
    put(b, off + 4, len as u64, 4);
    b[off + 8] = rev;
    b[off + 10..off + 16].copy_from_slice(b"XENLTH");
    b[off + 16..off + 24].copy_from_slice(b"XENOLITH");
    put(b, off + 24, 1, 4);
    b[off + 28..off + 32].copy_from_slice(b"XNLT");
    put(b, off + 32, 1, 4);
}

fn seal(b: &mut [u8], off: usize, len: usize) {
    b[off + 9] = 0;
    b[off + 9] = checksum(&b[off..off + len]);
}

/// A Generic Address Structure for a system-I/O register.
fn gas_io(b: &mut [u8], off: usize, port: u16, bits: u8) {
    b[off] = 1; // system I/O
    b[off + 1] = bits;
    b[off + 2] = 0;
    b[off + 3] = if bits >= 32 { 3 } else { 2 }; // dword / word access
    put(b, off + 4, port as u64, 8);
}

/// Builds the tables for `nr_vcpus` vCPUs at guest-physical `base`.
pub fn build_tables(base: u64, nr_vcpus: u32) -> AcpiTables {
    let madt_len = HEADER_LEN + 8 + 8 * nr_vcpus as usize;
    let mut b = alloc::vec![0u8; MADT_OFF + madt_len];
    let gpa = |off: usize| base + off as u64;

    // MADT.
    header(&mut b, MADT_OFF, b"APIC", madt_len, 4);
    put(&mut b, MADT_OFF + 36, 0xFEE0_0000, 4);
    put(&mut b, MADT_OFF + 40, 1, 4); // PCAT_COMPAT: a (silent) 8259 pair is present
    for id in 0..nr_vcpus as usize {
        let e = MADT_OFF + 44 + 8 * id;
        b[e] = 0; // processor local APIC
        b[e + 1] = 8;
        b[e + 2] = id as u8; // ACPI processor UID = Xen vcpu id
        b[e + 3] = id as u8; // APIC id
        put(&mut b, e + 4, 1, 4); // enabled
    }
    seal(&mut b, MADT_OFF, madt_len);

    // DSDT.
    let dsdt_len = HEADER_LEN + DSDT_AML.len();
    header(&mut b, DSDT_OFF, b"DSDT", dsdt_len, 2);
    b[DSDT_OFF + HEADER_LEN..DSDT_OFF + dsdt_len].copy_from_slice(&DSDT_AML);
    seal(&mut b, DSDT_OFF, dsdt_len);

    // FACS (no checksum).
    b[FACS_OFF..FACS_OFF + 4].copy_from_slice(b"FACS");
    put(&mut b, FACS_OFF + 4, 64, 4);
    b[FACS_OFF + 32] = 2; // version

    // FADT.
    let f = FADT_OFF;
    header(&mut b, f, b"FACP", FADT_LEN, 5);
    put(&mut b, f + 36, gpa(FACS_OFF), 4);
    put(&mut b, f + 40, gpa(DSDT_OFF), 4);
    put(&mut b, f + 46, SCI_IRQ as u64, 2);
    // SMI_CMD (48) = 0: no transition needed, the platform is in ACPI mode.
    put(&mut b, f + 56, PM1A_EVT_PORT as u64, 4);
    put(&mut b, f + 64, PM1A_CNT_PORT as u64, 4);
    b[f + 88] = PM1A_EVT_LEN;
    b[f + 89] = PM1A_CNT_LEN;
    // IAPC_BOOT_ARCH (109) = 0: neither NO_VGA nor NO_CMOS_RTC (pitfall P8).
    put(&mut b, f + 112, 1, 4); // flags: WBINVD
    put(&mut b, f + 132, gpa(FACS_OFF), 8);
    put(&mut b, f + 140, gpa(DSDT_OFF), 8);
    gas_io(&mut b, f + 148, PM1A_EVT_PORT, PM1A_EVT_LEN * 8);
    gas_io(&mut b, f + 172, PM1A_CNT_PORT, PM1A_CNT_LEN * 8);
    seal(&mut b, f, FADT_LEN);

    // XSDT.
    let entries = [gpa(FADT_OFF), gpa(MADT_OFF)];
    let xsdt_len = HEADER_LEN + 8 * entries.len();
    header(&mut b, XSDT_OFF, b"XSDT", xsdt_len, 1);
    for (i, &e) in entries.iter().enumerate() {
        put(&mut b, XSDT_OFF + HEADER_LEN + 8 * i, e, 8);
    }
    seal(&mut b, XSDT_OFF, xsdt_len);

    // RSDP, revision 2 (no RSDT: ACPI 2.0+ readers use the XSDT).
    b[RSDP_OFF..RSDP_OFF + 8].copy_from_slice(b"RSD PTR ");
    b[RSDP_OFF + 9..RSDP_OFF + 15].copy_from_slice(b"XENLTH");
    b[RSDP_OFF + 15] = 2;
    put(&mut b, RSDP_OFF + 20, 36, 4);
    put(&mut b, RSDP_OFF + 24, gpa(XSDT_OFF), 8);
    b[RSDP_OFF + 8] = checksum(&b[RSDP_OFF..RSDP_OFF + 20]);
    b[RSDP_OFF + 32] = checksum(&b[RSDP_OFF..RSDP_OFF + 36]);

    AcpiTables {
        bytes: b,
        rsdp_gpa: gpa(RSDP_OFF),
    }
}

/// What a guest's write to PM1a_CNT asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepRequest {
    /// S5: soft off.
    S5,
    /// Another sleep state (not supported: the domain keeps running).
    Other(u16),
}

/// The PM1a event and control registers.
#[derive(Clone, Debug, Default)]
pub struct PmRegisters {
    enable: u16,
    control: u16,
}

impl PmRegisters {
    /// Registers after reset: in ACPI mode (SCI_EN set), nothing enabled.
    pub fn new() -> Self {
        PmRegisters {
            enable: 0,
            control: PM1_CNT_SCI_EN,
        }
    }

    /// Whether `port` belongs to the PM1a blocks.
    pub fn handles_port(&self, port: u16) -> bool {
        (PM1A_EVT_PORT..PM1A_EVT_PORT + PM1A_EVT_LEN as u16).contains(&port)
            || (PM1A_CNT_PORT..PM1A_CNT_PORT + PM1A_CNT_LEN as u16).contains(&port)
    }

    fn regs(&self) -> [u8; 6] {
        let mut r = [0u8; 6];
        // PM1_STS reads 0: no event is ever raised.
        r[2..4].copy_from_slice(&self.enable.to_le_bytes());
        r[4..6].copy_from_slice(&self.control.to_le_bytes());
        r
    }

    /// Reads `size` bytes at `port`.
    pub fn io_read(&self, port: u16, size: u8) -> u32 {
        let r = self.regs();
        let off = (port - PM1A_EVT_PORT) as usize;
        (0..size as usize).fold(0u32, |v, i| {
            v | (*r.get(off + i).unwrap_or(&0xFF) as u32) << (8 * i)
        })
    }

    /// Writes `size` bytes at `port`; returns a sleep request on SLP_EN.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) -> Option<SleepRequest> {
        let mut r = self.regs();
        let off = (port - PM1A_EVT_PORT) as usize;
        for i in 0..size as usize {
            if let Some(byte) = r.get_mut(off + i) {
                *byte = (value >> (8 * i)) as u8;
            }
        }
        // Status bits are write-1-to-clear and always 0 here.
        self.enable = u16::from_le_bytes([r[2], r[3]]);
        let control = u16::from_le_bytes([r[4], r[5]]);
        self.control = (control & !PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN;
        if control & PM1_CNT_SLP_EN != 0 && off + size as usize > 4 {
            let typ = (control >> 10) & 7;
            return Some(if typ == SLP_TYP_S5 {
                SleepRequest::S5
            } else {
                SleepRequest::Other(typ)
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(b: &[u8], off: usize, n: usize) -> u64 {
        b[off..off + n]
            .iter()
            .rev()
            .fold(0, |a, &x| (a << 8) | x as u64)
    }

    fn table_at<'a>(t: &'a AcpiTables, base: u64, gpa: u64, sig: &[u8; 4]) -> &'a [u8] {
        let off = (gpa - base) as usize;
        assert_eq!(&t.bytes[off..off + 4], sig);
        let len = rd(&t.bytes, off + 4, 4) as usize;
        let table = &t.bytes[off..off + len];
        assert_eq!(checksum(table), 0, "checksum of {sig:?}");
        table
    }

    #[test]
    fn tables_chain_from_rsdp_with_valid_checksums() {
        let base = 0xE0000;
        let t = build_tables(base, 2);
        assert_eq!(t.rsdp_gpa, base);
        let rsdp = &t.bytes[..36];
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(checksum(&rsdp[..20]), 0);
        assert_eq!(checksum(rsdp), 0);
        assert_eq!(rsdp[15], 2);
        let xsdt = table_at(&t, base, rd(rsdp, 24, 8), b"XSDT");
        assert_eq!(xsdt.len(), 36 + 16);
        let fadt = table_at(&t, base, rd(xsdt, 36, 8), b"FACP");
        let madt = table_at(&t, base, rd(xsdt, 44, 8), b"APIC");
        let dsdt = table_at(&t, base, rd(fadt, 140, 8), b"DSDT");
        assert_eq!(&dsdt[36..], &DSDT_AML[..]);
        assert_eq!(rd(fadt, 40, 4), rd(fadt, 140, 8));
        let facs = (rd(fadt, 132, 8) - base) as usize;
        assert_eq!(facs % 64, 0);
        assert_eq!(&t.bytes[facs..facs + 4], b"FACS");
        assert_eq!(rd(fadt, 48, 4), 0, "no SMI_CMD: already in ACPI mode");
        assert_eq!(rd(fadt, 64, 4), PM1A_CNT_PORT as u64);
        assert_eq!(rd(fadt, 109, 2), 0, "pitfall P8");
        assert_eq!(madt.len(), 44 + 16);
        for id in 0..2 {
            let e = &madt[44 + 8 * id..52 + 8 * id];
            assert_eq!(e, [0, 8, id as u8, id as u8, 1, 0, 0, 0]);
        }
    }

    #[test]
    fn aml_package_lengths() {
        assert_eq!(DSDT_AML[5], 0x12);
        // PkgLength counts itself, NumElements and the elements.
        assert_eq!(DSDT_AML[6] as usize, 14 - 6);
        assert_eq!(DSDT_AML[7], 4);
        // The scope runs to the end of the table; the device too.
        assert_eq!(DSDT_AML[14], 0x10);
        assert_eq!(DSDT_AML[15] as usize, DSDT_AML.len() - 15);
        assert_eq!(&DSDT_AML[21..23], &[0x5B, 0x82]);
        assert_eq!(DSDT_AML[23] as usize, DSDT_AML.len() - 23);
        // EisaId("PNP0A03").
        assert_eq!(
            u32::from_le_bytes([DSDT_AML[34], DSDT_AML[35], DSDT_AML[36], DSDT_AML[37]]),
            0x030A_D041
        );
    }

    #[test]
    fn pm1_control_poweroff() {
        let mut pm = PmRegisters::new();
        assert!(pm.handles_port(PM1A_CNT_PORT));
        assert!(!pm.handles_port(PM1A_CNT_PORT + 2));
        assert_eq!(
            pm.io_read(PM1A_CNT_PORT, 2) as u16 & PM1_CNT_SCI_EN,
            PM1_CNT_SCI_EN
        );
        pm.io_write(PM1A_EVT_PORT + 2, 2, 0x0100);
        assert_eq!(pm.io_read(PM1A_EVT_PORT + 2, 2), 0x0100);
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 2), 0);
        let s3 = (3 << 10) | PM1_CNT_SLP_EN as u32;
        assert_eq!(
            pm.io_write(PM1A_CNT_PORT, 2, s3),
            Some(SleepRequest::Other(3))
        );
        assert_eq!(pm.io_write(PM1A_CNT_PORT, 2, 5 << 10), None);
        let s5 = (5 << 10) | PM1_CNT_SLP_EN as u32;
        assert_eq!(pm.io_write(PM1A_CNT_PORT, 2, s5), Some(SleepRequest::S5));
    }
}
