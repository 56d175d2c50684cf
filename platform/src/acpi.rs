//! ACPI tables for an HVM or a PVH domain, and the PM1 registers behind the HVM set.
//!
//! Both sets, at a base the caller chooses ([`crate::layout::ACPI_TABLES_GPA`]), share one
//! layout: an RSDP (revision 2) pointing to both an RSDT and an XSDT (each listing the FADT
//! and the MADT); a FACS; a FADT (revision 5, ACPI 5.0) with no SMI command port (the platform
//! is already in ACPI mode), no PM timer, no GPE blocks and the PIIX reset register 0xCF9; a
//! DSDT; and a MADT (the "APIC" table) with one enabled local APIC per vCPU (ACPI processor
//! UID = APIC id = Xen vcpu id; Linux takes the UID as the Xen vcpu id of an AP; x2APIC entries
//! above APIC id 254) and no I/O APIC. Linux needs the MADT to start Xen's per-vCPU timers
//! (pitfall P1 of the Linux checklist).
//!
//! [`build_tables`], the HVM set: the FADT has PM1a event and control blocks on I/O ports,
//! SCI_INT 9, RESET_REG_SUP and IAPC_BOOT_ARCH 0 (never both NO_VGA and NO_CMOS_RTC: Linux
//! would take the guest for PVH); the DSDT has `Name (_S5, Package () { 5, 5, 0, 0 })`, so
//! that Linux registers ACPI power-off through [`PmRegisters`], and the PCI root bridge
//! `\_SB.PCI0`; the MADT sets PCAT_COMPAT for the 8259 pair of [`crate::pic`], through which
//! Linux maps the SCI (without a legacy PIC ACPI cannot install its SCI handler and turns
//! itself off, and with it power-off).
//!
//! [`build_pvh_tables`], the PVH set (`type = "pvh"`, RSDP in `hvm_start_info.rsdp_paddr`): a
//! hardware-reduced FADT (HW_REDUCED_ACPI; no PM1 blocks, no SCI, no sleep registers) with
//! IAPC_BOOT_ARCH NO_VGA | NO_CMOS_RTC and the other flags of libxl's PVH FADT
//! (`tools/libacpi/static_tables.c`, `build.c`); a DSDT, like libxl's `dsdt_pvh`, with only a
//! `Processor` object per vCPU in `\_SB` (no devices, no `_S5`); a MADT without PCAT_COMPAT.
//! As on Xen, a PVH domain has no ACPI power-off: with no `_S5` Linux registers no power-off
//! handler, so `poweroff` halts every vCPU with interrupts disabled, which Xen takes for a
//! power-off (`hvm_hlt` in `xen/arch/x86/hvm/hvm.c`: "All CPUs offline -- powering off").
//! Where the PVH set departs from libxl's: libxl's FADT is not hardware-reduced (it points at
//! PM1a, GPE0 and SCI 9, which nothing backs for a PVH domU), its MADT sets PCAT_COMPAT and
//! uses APIC id 2 × vcpu, its RSDT lists a separate ACPI 1.0 FADT, and its processor objects
//! carry `_MAT`/`_STA`/`_EJ0` methods that read the MADT through an info page at 0xFC000000.

use alloc::vec::Vec;

/// I/O port of the PM1a event block (status at +0, enable at +2).
pub const PM1A_EVT_PORT: u16 = 0xB000;
/// Length of the PM1a event block.
pub const PM1A_EVT_LEN: u8 = 4;
/// I/O port of the PM1a control block.
pub const PM1A_CNT_PORT: u16 = 0xB004;
/// Length of the PM1a control block.
pub const PM1A_CNT_LEN: u8 = 2;
/// The SCI interrupt (never raised: no event source is emulated).
pub const SCI_IRQ: u16 = 9;
/// PM1_STS.WAK_STS: set when the platform leaves a sleep state.
pub const PM1_STS_WAK: u16 = 1 << 15;
/// PM1_CNT.SCI_EN: the platform is in ACPI mode (always set).
pub const PM1_CNT_SCI_EN: u16 = 1 << 0;
/// PM1_CNT.SLP_EN (write-only).
pub const PM1_CNT_SLP_EN: u16 = 1 << 13;
/// PM1_CNT bits that hold what was written: SCI_EN, BM_RLD and SLP_TYP.
const PM1_CNT_KEEP: u16 = PM1_CNT_SCI_EN | (1 << 1) | (7 << 10);
/// The SLP_TYP value of S5 in the DSDT's `_S5` package.
pub const SLP_TYP_S5: u16 = 5;
/// The FADT's reset register (the PIIX reset control register, see [`crate::pci`]).
pub const RESET_REG_PORT: u16 = crate::pci::RESET_CONTROL;
/// The value the FADT tells the guest to write to the reset register.
pub const RESET_VALUE: u8 = 0x06;

/// FADT flags: WBINVD works.
pub const FADT_WBINVD: u32 = 1 << 0;
/// FADT flags: C1 (HLT) is supported on all processors.
pub const FADT_PROC_C1: u32 = 1 << 2;
/// FADT flags: there is no fixed-feature power button.
pub const FADT_PWR_BUTTON: u32 = 1 << 4;
/// FADT flags: there is no fixed-feature sleep button.
pub const FADT_SLP_BUTTON: u32 = 1 << 5;
/// FADT flags: the RTC wake status is not in the fixed register space.
pub const FADT_FIX_RTC: u32 = 1 << 6;
/// FADT flags: the PM timer is 32 bits wide.
pub const FADT_TMR_VAL_EXT: u32 = 1 << 8;
/// FADT flags: the reset register is supported.
pub const FADT_RESET_REG_SUP: u32 = 1 << 10;
/// FADT flags: OSPM should use a platform clock rather than the CPU's.
pub const FADT_USE_PLATFORM_CLOCK: u32 = 1 << 15;
/// FADT flags: HW_REDUCED_ACPI, no fixed ACPI hardware (ACPI 5.0).
pub const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// The FADT's flags. PWR_BUTTON (bit 4) is clear: a fixed-feature power button exists, so
/// Linux enables PWRBTN_EN; HW_REDUCED_ACPI (bit 20) is clear.
pub const FADT_FLAGS: u32 = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
/// The PVH FADT's flags: libxl's for a PVH domU (WBINVD, PROC_C1, FIX_RTC, TMR_VAL_EXT,
/// USE_PLATFORM_CLOCK, and PWR_BUTTON | SLP_BUTTON for want of `ACPI_HAS_BUTTONS`), plus
/// HW_REDUCED_ACPI. RESET_REG_SUP is clear, as in libxl's FADT, though the reset register is
/// filled in.
pub const PVH_FADT_FLAGS: u32 = FADT_WBINVD
    | FADT_PROC_C1
    | FADT_PWR_BUTTON
    | FADT_SLP_BUTTON
    | FADT_FIX_RTC
    | FADT_TMR_VAL_EXT
    | FADT_USE_PLATFORM_CLOCK
    | FADT_HW_REDUCED_ACPI;
/// FADT IAPC_BOOT_ARCH: it is not safe to probe for VGA.
pub const IAPC_NO_VGA: u16 = 1 << 2;
/// FADT IAPC_BOOT_ARCH: there is no CMOS RTC (needs FADT revision 5).
pub const IAPC_NO_CMOS_RTC: u16 = 1 << 5;
/// The PVH FADT's IAPC_BOOT_ARCH, as libxl sets it for a PVH domU (no `ACPI_HAS_VGA`, no
/// `ACPI_HAS_CMOS_RTC`, no `ACPI_HAS_8042`). Linux's `xen_hvm_guest_late_init` takes these two
/// bits together for a PVH guest.
pub const PVH_IAPC_BOOT_ARCH: u16 = IAPC_NO_VGA | IAPC_NO_CMOS_RTC;
/// MADT flags: PCAT_COMPAT, a dual 8259 is present.
pub const MADT_PCAT_COMPAT: u32 = 1;

/// The tables as bytes, to be copied to their base address.
pub struct AcpiTables {
    /// Everything from the base address on.
    pub bytes: Vec<u8>,
    /// Guest-physical address of the RSDP (for `boot_params.acpi_rsdp_addr`).
    pub rsdp_gpa: u64,
}

/// Size of a standard ACPI table header.
const HEADER_LEN: usize = 36;
/// Size of the RSDP (revision 2).
const RSDP_LEN: usize = 36;
/// Size of the FACS.
const FACS_LEN: usize = 64;
/// Size of an ACPI 5.0 FADT.
const FADT_LEN: usize = 268;
/// Size of the MADT before its entries.
const MADT_FIXED_LEN: usize = 44;
/// Largest APIC id a type-0 (Processor Local APIC) MADT entry can hold; above it, type 9.
const MAX_XAPIC_ID: u32 = 254;

/// The DSDT's AML: `Name (_S5, Package () { 5, 5, 0, 0 })` for power-off, and
/// `Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_UID, 0)
/// Name (_BBN, 0) } }`: the PCI root bridge through which Linux, once ACPI is on,
/// enumerates bus 0 (it then finds the Xen platform device).
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

/// The byte that makes `b` sum to zero when it replaces a zero byte.
fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

/// Writes a table header (checksum 0 for now).
fn header(b: &mut [u8], off: usize, sig: &[u8; 4], len: usize, rev: u8) {
    b[off..off + 4].copy_from_slice(sig);
    put(b, off + 4, len as u64, 4);
    b[off + 8] = rev;
    b[off + 10..off + 16].copy_from_slice(b"XENLTH");
    b[off + 16..off + 24].copy_from_slice(b"XENOLITH");
    put(b, off + 24, 1, 4); // OEM revision
    b[off + 28..off + 32].copy_from_slice(b"XNLT"); // creator
    put(b, off + 32, 1, 4); // creator revision
}

/// Sets the checksum of the table of `len` bytes at `off`.
fn seal(b: &mut [u8], off: usize, len: usize) {
    b[off + 9] = 0;
    b[off + 9] = checksum(&b[off..off + len]);
}

/// A Generic Address Structure for a system-I/O register of `bits` bits, accessed
/// `access` (1 byte, 2 word, 3 dword) at a time.
fn gas_io(b: &mut [u8], off: usize, port: u16, bits: u8, access: u8) {
    b[off] = 1; // system I/O
    b[off + 1] = bits;
    b[off + 2] = 0;
    b[off + 3] = access;
    put(b, off + 4, port as u64, 8);
}

/// The most `Processor` objects the PVH DSDT holds: one per vCPU with an xAPIC id (0..=254),
/// as `Processor` takes a one-byte ProcessorID (libxl's PVH DSDT has at most 128).
pub const PVH_DSDT_MAX_PROCESSORS: u32 = MAX_XAPIC_ID + 1;

/// Appends an AML PkgLength for a package of `body` bytes after it (the PkgLength counts
/// itself): one byte below 64 in all, else a lead byte with the low nibble and 1-3 more.
fn aml_pkg_length(out: &mut Vec<u8>, body: usize) {
    let n = if body + 1 < 1 << 6 {
        1
    } else if body + 2 < 1 << 12 {
        2
    } else if body + 3 < 1 << 20 {
        3
    } else {
        4
    };
    let len = body + n;
    if n == 1 {
        out.push(len as u8);
        return;
    }
    out.push(((n - 1) << 6) as u8 | (len & 0xF) as u8);
    for i in 0..n - 1 {
        out.push((len >> (4 + 8 * i)) as u8);
    }
}

/// The PVH DSDT's AML for `nr_vcpus` vCPUs: `Scope (\_SB) { Processor (PRxx, id, 0, 0) {
/// Name (_HID, "ACPI0007") Name (_UID, id) } ... }` for each vCPU id up to 254, named
/// `PR%02X` as libxl's are, with no P_BLK (a hardware-reduced platform has none).
fn pvh_dsdt_aml(nr_vcpus: u32) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut procs = Vec::new();
    for id in 0..nr_vcpus.min(PVH_DSDT_MAX_PROCESSORS) as u8 {
        let name = [
            b'P',
            b'R',
            HEX[(id >> 4) as usize],
            HEX[(id & 0xF) as usize],
        ];
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&name);
        body.push(id); // ProcessorID = the MADT's ACPI processor UID
        body.extend_from_slice(&[0; 5]); // PblkAddr 0, PblkLen 0
        body.extend_from_slice(b"\x08_HID\x0DACPI0007\x00"); // NameOp, String
        body.extend_from_slice(&[0x08, b'_', b'U', b'I', b'D', 0x0A, id]); // BytePrefix
        procs.extend_from_slice(&[0x5B, 0x83]); // ProcessorOp
        aml_pkg_length(&mut procs, body.len());
        procs.extend(body);
    }
    let mut aml = alloc::vec![0x10]; // ScopeOp
    aml_pkg_length(&mut aml, 5 + procs.len());
    aml.extend_from_slice(b"\\_SB_");
    aml.extend(procs);
    aml
}

/// Which platform a set of tables describes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hvm,
    Pvh,
}

/// Where each table goes, as offsets from the base.
struct Layout {
    rsdp: usize,
    facs: usize,
    rsdt: usize,
    xsdt: usize,
    fadt: usize,
    dsdt: usize,
    madt: usize,
    madt_len: usize,
    end: usize,
}

/// The MADT length for `nr_vcpus` vCPUs (8-byte local APIC entries, 16-byte local x2APIC
/// entries above APIC id 254).
fn madt_len(nr_vcpus: u32) -> usize {
    let small = nr_vcpus.min(MAX_XAPIC_ID + 1) as usize;
    let large = nr_vcpus as usize - small;
    MADT_FIXED_LEN + 8 * small + 16 * large
}

impl Layout {
    fn new(nr_vcpus: u32, dsdt_aml_len: usize) -> Self {
        let align = |x: usize, a: usize| x.next_multiple_of(a);
        let rsdp = 0;
        let facs = align(rsdp + RSDP_LEN, 64);
        let rsdt = align(facs + FACS_LEN, 16);
        let xsdt = align(rsdt + HEADER_LEN + 4 * 2, 16);
        let fadt = align(xsdt + HEADER_LEN + 8 * 2, 16);
        let dsdt = align(fadt + FADT_LEN, 16);
        let madt = align(dsdt + HEADER_LEN + dsdt_aml_len, 16);
        let madt_len = madt_len(nr_vcpus);
        Layout {
            rsdp,
            facs,
            rsdt,
            xsdt,
            fadt,
            dsdt,
            madt,
            madt_len,
            end: madt + madt_len,
        }
    }
}

/// The most vCPUs whose tables (either set) fit in [`crate::layout::ACPI_TABLES_MAX`] bytes.
pub const MAX_VCPUS: u32 = 3000;

/// Builds the HVM tables for `nr_vcpus` vCPUs (APIC ids `0..nr_vcpus`) at guest-physical
/// `base`.
///
/// # Panics
/// If `nr_vcpus` exceeds [`MAX_VCPUS`].
pub fn build_tables(base: u64, nr_vcpus: u32) -> AcpiTables {
    build(Kind::Hvm, base, nr_vcpus)
}

/// Builds the PVH tables for `nr_vcpus` vCPUs (APIC ids `0..nr_vcpus`) at guest-physical
/// `base`: hardware-reduced, no PIC, no power-off (see the module documentation). The RSDP is
/// at `base` (`rsdp_gpa`), for `hvm_start_info.rsdp_paddr`.
///
/// # Panics
/// If `nr_vcpus` exceeds [`MAX_VCPUS`].
pub fn build_pvh_tables(base: u64, nr_vcpus: u32) -> AcpiTables {
    build(Kind::Pvh, base, nr_vcpus)
}

fn build(kind: Kind, base: u64, nr_vcpus: u32) -> AcpiTables {
    assert!(
        nr_vcpus <= MAX_VCPUS,
        "{nr_vcpus} vCPUs do not fit the ACPI area"
    );
    let pvh_aml;
    let aml: &[u8] = match kind {
        Kind::Hvm => &DSDT_AML,
        Kind::Pvh => {
            pvh_aml = pvh_dsdt_aml(nr_vcpus);
            &pvh_aml
        }
    };
    let l = Layout::new(nr_vcpus, aml.len());
    debug_assert!(l.end <= crate::layout::ACPI_TABLES_MAX);
    let mut b = alloc::vec![0u8; l.end];
    let gpa = |off: usize| base + off as u64;

    // MADT.
    let m = l.madt;
    header(&mut b, m, b"APIC", l.madt_len, 4);
    put(&mut b, m + 36, crate::layout::LAPIC_GPA, 4);
    if kind == Kind::Hvm {
        put(&mut b, m + 40, MADT_PCAT_COMPAT as u64, 4);
    }
    let mut e = m + MADT_FIXED_LEN;
    for id in 0..nr_vcpus {
        if id <= MAX_XAPIC_ID {
            b[e] = 0; // Processor Local APIC
            b[e + 1] = 8;
            b[e + 2] = id as u8; // ACPI processor UID = Xen vcpu id
            b[e + 3] = id as u8; // APIC id
            put(&mut b, e + 4, 1, 4); // enabled
            e += 8;
        } else {
            b[e] = 9; // Processor Local x2APIC
            b[e + 1] = 16;
            put(&mut b, e + 4, id as u64, 4); // x2APIC id
            put(&mut b, e + 8, 1, 4); // enabled
            put(&mut b, e + 12, id as u64, 4); // ACPI processor UID
            e += 16;
        }
    }
    seal(&mut b, m, l.madt_len);

    // DSDT: revision 2 or more for 64-bit integers; libxl's PVH DSDT has revision 5.
    let dsdt_len = HEADER_LEN + aml.len();
    let dsdt_rev = if kind == Kind::Hvm { 2 } else { 5 };
    header(&mut b, l.dsdt, b"DSDT", dsdt_len, dsdt_rev);
    b[l.dsdt + HEADER_LEN..l.dsdt + dsdt_len].copy_from_slice(aml);
    seal(&mut b, l.dsdt, dsdt_len);

    // FACS (no checksum).
    b[l.facs..l.facs + 4].copy_from_slice(b"FACS");
    put(&mut b, l.facs + 4, FACS_LEN as u64, 4);
    b[l.facs + 32] = 2; // version

    // FADT.
    let f = l.fadt;
    header(&mut b, f, b"FACP", FADT_LEN, 5);
    put(&mut b, f + 36, gpa(l.facs), 4); // FIRMWARE_CTRL (X_FIRMWARE_CTRL stays 0)
    put(&mut b, f + 40, gpa(l.dsdt), 4);
    // SMI_CMD (48) = 0: no transition needed, the platform is in ACPI mode.
    // PM_TMR_BLK (76) and its length stay 0: no PM timer (optional since ACPI 5.0A).
    if kind == Kind::Hvm {
        put(&mut b, f + 46, SCI_IRQ as u64, 2);
        put(&mut b, f + 56, PM1A_EVT_PORT as u64, 4);
        put(&mut b, f + 64, PM1A_CNT_PORT as u64, 4);
        b[f + 88] = PM1A_EVT_LEN;
        b[f + 89] = PM1A_CNT_LEN;
        gas_io(&mut b, f + 148, PM1A_EVT_PORT, PM1A_EVT_LEN * 8, 2);
        gas_io(&mut b, f + 172, PM1A_CNT_PORT, PM1A_CNT_LEN * 8, 2);
    }
    // PVH: SCI_INT 0 and no PM1 blocks; SLEEP_CONTROL_REG (244) and SLEEP_STATUS_REG (256)
    // stay 0, as in libxl's FADT.
    put(&mut b, f + 96, 101, 2); // P_LVL2_LAT > 100: no C2
    put(&mut b, f + 98, 1001, 2); // P_LVL3_LAT > 1000: no C3
    let (flags, boot_arch) = match kind {
        // IAPC_BOOT_ARCH 0: neither NO_VGA nor NO_CMOS_RTC (pitfall P8); no 8042.
        Kind::Hvm => (FADT_FLAGS, 0),
        Kind::Pvh => (PVH_FADT_FLAGS, PVH_IAPC_BOOT_ARCH),
    };
    put(&mut b, f + 109, boot_arch as u64, 2);
    put(&mut b, f + 112, flags as u64, 4);
    gas_io(&mut b, f + 116, RESET_REG_PORT, 8, 1);
    b[f + 128] = RESET_VALUE;
    put(&mut b, f + 140, gpa(l.dsdt), 8); // X_DSDT
    seal(&mut b, f, FADT_LEN);

    // RSDT and XSDT.
    let entries = [gpa(l.fadt), gpa(l.madt)];
    let rsdt_len = HEADER_LEN + 4 * entries.len();
    header(&mut b, l.rsdt, b"RSDT", rsdt_len, 1);
    let xsdt_len = HEADER_LEN + 8 * entries.len();
    header(&mut b, l.xsdt, b"XSDT", xsdt_len, 1);
    for (i, &e) in entries.iter().enumerate() {
        put(&mut b, l.rsdt + HEADER_LEN + 4 * i, e, 4);
        put(&mut b, l.xsdt + HEADER_LEN + 8 * i, e, 8);
    }
    seal(&mut b, l.rsdt, rsdt_len);
    seal(&mut b, l.xsdt, xsdt_len);

    // RSDP, revision 2.
    let r = l.rsdp;
    b[r..r + 8].copy_from_slice(b"RSD PTR ");
    b[r + 9..r + 15].copy_from_slice(b"XENLTH");
    b[r + 15] = 2;
    put(&mut b, r + 16, gpa(l.rsdt), 4);
    put(&mut b, r + 20, RSDP_LEN as u64, 4);
    put(&mut b, r + 24, gpa(l.xsdt), 8);
    b[r + 8] = checksum(&b[r..r + 20]);
    b[r + 32] = checksum(&b[r..r + RSDP_LEN]);

    AcpiTables {
        bytes: b,
        rsdp_gpa: gpa(r),
    }
}

/// What a guest's write to PM1a_CNT asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepRequest {
    /// S5: soft off.
    S5,
    /// Another SLP_TYP (not supported: the domain "wakes" at once, WAK_STS set).
    Other(u16),
}

/// Decodes a PM1a_CNT value: a sleep request when SLP_EN is set.
pub fn sleep_request(pm1_cnt: u16) -> Option<SleepRequest> {
    if pm1_cnt & PM1_CNT_SLP_EN == 0 {
        return None;
    }
    Some(match (pm1_cnt >> 10) & 7 {
        SLP_TYP_S5 => SleepRequest::S5,
        typ => SleepRequest::Other(typ),
    })
}

/// The PM1a event (status, enable) and control registers.
#[derive(Clone, Debug, Default)]
pub struct PmRegisters {
    status: u16,
    enable: u16,
    control: u16,
}

impl PmRegisters {
    /// Registers after reset: in ACPI mode (SCI_EN set), nothing enabled or pending.
    pub fn new() -> Self {
        PmRegisters {
            status: 0,
            enable: 0,
            control: PM1_CNT_SCI_EN,
        }
    }

    /// Whether `port` belongs to the PM1a blocks.
    pub fn handles_port(&self, port: u16) -> bool {
        (PM1A_EVT_PORT..PM1A_EVT_PORT + PM1A_EVT_LEN as u16).contains(&port)
            || (PM1A_CNT_PORT..PM1A_CNT_PORT + PM1A_CNT_LEN as u16).contains(&port)
    }

    /// The six register bytes from [`PM1A_EVT_PORT`].
    fn regs(&self) -> [u8; 6] {
        let mut r = [0u8; 6];
        r[0..2].copy_from_slice(&self.status.to_le_bytes());
        r[2..4].copy_from_slice(&self.enable.to_le_bytes());
        r[4..6].copy_from_slice(&self.control.to_le_bytes());
        r
    }

    /// Reads `size` bytes at `port`; bytes outside the blocks read all-ones.
    pub fn io_read(&self, port: u16, size: u8) -> u32 {
        let r = self.regs();
        (0..size as u16).fold(0u32, |v, i| {
            let off = port.wrapping_add(i).wrapping_sub(PM1A_EVT_PORT) as usize;
            v | (*r.get(off).unwrap_or(&0xFF) as u32) << (8 * i)
        })
    }

    /// Writes `size` bytes at `port`: status bits are write-1-to-clear, enable bits hold what
    /// was written, and a PM1a_CNT write with SLP_EN returns the sleep request.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) -> Option<SleepRequest> {
        let mut r = self.regs();
        let mut touched = [false; 6];
        for i in 0..size as u16 {
            let off = port.wrapping_add(i).wrapping_sub(PM1A_EVT_PORT) as usize;
            if let Some(byte) = r.get_mut(off) {
                *byte = (value >> (8 * i)) as u8;
                touched[off] = true;
            }
        }
        // Only the status bytes written clear anything.
        let written = |i: usize| if touched[i] { r[i] } else { 0 };
        self.status &= !u16::from_le_bytes([written(0), written(1)]);
        self.enable = u16::from_le_bytes([r[2], r[3]]);
        if touched[4] || touched[5] {
            return self.pm1a_cnt_write(u16::from_le_bytes([r[4], r[5]]));
        }
        None
    }

    /// A write of `value` to PM1a_CNT: keeps SLP_TYP and BM_RLD (SCI_EN stays set), and
    /// returns the sleep request SLP_EN makes.
    pub fn pm1a_cnt_write(&mut self, value: u16) -> Option<SleepRequest> {
        self.control = (value & PM1_CNT_KEEP) | PM1_CNT_SCI_EN;
        let request = sleep_request(value);
        if let Some(SleepRequest::Other(_)) = request {
            self.status |= PM1_STS_WAK;
        }
        request
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

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    /// The table at `gpa`, after checking its signature, length and checksum.
    fn table_at<'a>(t: &'a AcpiTables, base: u64, gpa: u64, sig: &[u8; 4]) -> &'a [u8] {
        let off = (gpa - base) as usize;
        assert_eq!(&t.bytes[off..off + 4], sig);
        let len = rd(&t.bytes, off + 4, 4) as usize;
        assert!(len >= HEADER_LEN && off + len <= t.bytes.len());
        let table = &t.bytes[off..off + len];
        assert_eq!(sum(table), 0, "checksum of {sig:?}");
        assert_eq!(&table[10..16], b"XENLTH");
        table
    }

    struct Parsed<'a> {
        fadt: &'a [u8],
        madt: &'a [u8],
        dsdt: &'a [u8],
        facs: &'a [u8],
    }

    fn parse(t: &AcpiTables, base: u64) -> Parsed<'_> {
        let rsdp = &t.bytes[(t.rsdp_gpa - base) as usize..][..RSDP_LEN];
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(sum(&rsdp[..20]), 0, "ACPI 1.0 checksum");
        assert_eq!(sum(rsdp), 0, "extended checksum");
        assert_eq!(rsdp[15], 2, "revision");
        assert_eq!(rd(rsdp, 20, 4), 36);
        let xsdt = table_at(t, base, rd(rsdp, 24, 8), b"XSDT");
        let rsdt = table_at(t, base, rd(rsdp, 16, 4), b"RSDT");
        assert_eq!(xsdt.len(), 36 + 16);
        assert_eq!(rsdt.len(), 36 + 8);
        for i in 0..2 {
            assert_eq!(rd(xsdt, 36 + 8 * i, 8), rd(rsdt, 36 + 4 * i, 4));
        }
        let fadt = table_at(t, base, rd(xsdt, 36, 8), b"FACP");
        let madt = table_at(t, base, rd(xsdt, 44, 8), b"APIC");
        let dsdt = table_at(t, base, rd(fadt, 140, 8), b"DSDT");
        assert_eq!(rd(fadt, 40, 4), rd(fadt, 140, 8), "DSDT and X_DSDT agree");
        let facs_gpa = rd(fadt, 36, 4);
        assert_eq!(rd(fadt, 132, 8), 0, "only one FACS address");
        assert_eq!(facs_gpa % 64, 0, "FACS alignment");
        let facs = &t.bytes[(facs_gpa - base) as usize..][..64];
        Parsed {
            fadt,
            madt,
            dsdt,
            facs,
        }
    }

    #[test]
    fn tables_chain_from_rsdp_with_valid_checksums() {
        let base = crate::layout::ACPI_TABLES_GPA;
        let t = build_tables(base, 2);
        assert_eq!(t.rsdp_gpa, base);
        assert_eq!(t.rsdp_gpa % 16, 0, "scannable RSDP alignment");
        let p = parse(&t, base);
        assert_eq!(&p.facs[..4], b"FACS");
        assert_eq!(rd(p.facs, 4, 4), 64);
        assert_eq!(p.facs[32], 2);
        assert_eq!(&p.dsdt[36..], &DSDT_AML[..]);
        assert_eq!(p.dsdt[8], 2, "DSDT revision 2: 64-bit integers");
    }

    #[test]
    fn fadt_fields() {
        let base = 0x1234_0000;
        let t = build_tables(base, 1);
        let f = parse(&t, base).fadt;
        assert_eq!(f.len(), 268);
        assert_eq!(f[8], 5, "revision");
        assert_eq!(rd(f, 46, 2), 9, "SCI_INT");
        assert_eq!(rd(f, 48, 4), 0, "no SMI_CMD: already in ACPI mode");
        assert_eq!(rd(f, 56, 4), 0xB000);
        assert_eq!(rd(f, 64, 4), 0xB004);
        assert_eq!(rd(f, 76, 4), 0, "no PM timer");
        assert_eq!(f[91], 0, "PM_TMR_LEN");
        assert_eq!(rd(f, 80, 4), 0, "no GPE0");
        assert_eq!((f[88], f[89]), (4, 2));
        assert_eq!(rd(f, 109, 2), 0, "IAPC_BOOT_ARCH: pitfall P8");
        let flags = rd(f, 112, 4) as u32;
        assert_eq!(flags & (1 << 20), 0, "not HW-reduced");
        assert_ne!(flags & FADT_RESET_REG_SUP, 0);
        assert_eq!(&f[116..120], &[1, 8, 0, 1]);
        assert_eq!(rd(f, 120, 8), 0xCF9);
        assert_eq!(f[128], 0x06);
        // X_PM1a_EVT_BLK and X_PM1a_CNT_BLK: system I/O, same ports and widths.
        assert_eq!(&f[148..151], &[1, 32, 0]);
        assert_eq!(rd(f, 152, 8), 0xB000);
        assert_eq!(&f[172..175], &[1, 16, 0]);
        assert_eq!(rd(f, 176, 8), 0xB004);
        assert_eq!(&f[208..220], &[0; 12], "no X_PM_TMR_BLK");
    }

    #[test]
    fn madt_entries() {
        let base = 0xE0000;
        let t = build_tables(base, 4);
        let m = parse(&t, base).madt;
        assert_eq!(m.len(), 44 + 4 * 8);
        assert_eq!(rd(m, 36, 4), 0xFEE0_0000);
        assert_eq!(rd(m, 40, 4), MADT_PCAT_COMPAT as u64);
        for id in 0..4 {
            let e = &m[44 + 8 * id..52 + 8 * id];
            assert_eq!(e, [0, 8, id as u8, id as u8, 1, 0, 0, 0]);
        }
        assert!(!m[44..].chunks(8).any(|e| e[0] == 1), "no I/O APIC");
    }

    #[test]
    fn madt_switches_to_x2apic_entries_above_254() {
        let base = 0xE0000;
        let n = 300;
        let t = build_tables(base, n);
        assert!(t.bytes.len() <= crate::layout::ACPI_TABLES_MAX);
        let m = parse(&t, base).madt;
        assert_eq!(m.len(), 44 + 255 * 8 + 45 * 16);
        let e = &m[44 + 254 * 8..][..8];
        assert_eq!(e, [0, 8, 254, 254, 1, 0, 0, 0]);
        let x = &m[44 + 255 * 8..][..16];
        assert_eq!((x[0], x[1]), (9, 16));
        assert_eq!(rd(x, 4, 4), 255);
        assert_eq!(rd(x, 8, 4), 1);
        assert_eq!(rd(x, 12, 4), 255);
        let last = &m[m.len() - 16..];
        assert_eq!(rd(last, 4, 4), 299);
        let big = build_tables(base, MAX_VCPUS);
        assert!(big.bytes.len() <= crate::layout::ACPI_TABLES_MAX);
    }

    #[test]
    fn aml_of_s5_and_the_root_bridge() {
        assert_eq!(&DSDT_AML[..5], &[0x08, b'_', b'S', b'5', b'_']);
        assert_eq!(DSDT_AML[5], 0x12, "PackageOp");
        // One-byte PkgLength (< 64): it counts itself, NumElements and the elements.
        assert_eq!(DSDT_AML[6] as usize, 14 - 6);
        assert_eq!(DSDT_AML[7], 4, "NumElements");
        assert_eq!(&DSDT_AML[8..14], &[0x0A, 5, 0x0A, 5, 0, 0]);
        // The scope and the device run to the end of the table.
        assert_eq!(DSDT_AML[14], 0x10);
        assert_eq!(DSDT_AML[15] as usize, DSDT_AML.len() - 15);
        assert_eq!(&DSDT_AML[21..23], &[0x5B, 0x82]);
        assert_eq!(DSDT_AML[23] as usize, DSDT_AML.len() - 23);
        assert!(
            DSDT_AML[15] < 0x40 && DSDT_AML[23] < 0x40,
            "one-byte PkgLengths"
        );
        // EisaId("PNP0A03").
        assert_eq!(
            u32::from_le_bytes([DSDT_AML[34], DSDT_AML[35], DSDT_AML[36], DSDT_AML[37]]),
            0x030A_D041
        );
    }

    /// FNV-1a of `b`.
    fn fnv(b: &[u8]) -> u64 {
        b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
            (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
        })
    }

    #[test]
    fn hvm_tables_are_byte_for_byte_those_before_pvh() {
        // Digests of `build_tables` taken before the PVH set shared its builder.
        for (base, n, len, digest) in [
            (0xE0000, 1, 660, 0x5dbc_8374_58ab_4a6c),
            (0xE0000, 2, 668, 0x514f_60c5_8a86_904a),
            (0x1234_0000, 300, 3412, 0x03e1_2cd7_a83e_f2ca),
            (0xE0000, MAX_VCPUS, 46612, 0x5e41_99eb_6db0_a7e2),
        ] {
            let t = build_tables(base, n);
            assert_eq!((t.bytes.len(), fnv(&t.bytes)), (len, digest), "{n} vCPUs");
            assert_eq!(t.rsdp_gpa, base);
        }
    }

    /// The guest-physical addresses the PVH tables point to, each checked to lie in the ACPI
    /// area.
    fn pvh_addresses_in_area(t: &AcpiTables, base: u64) {
        let max = crate::layout::ACPI_TABLES_MAX as u64;
        assert!(t.bytes.len() as u64 <= max);
        let b = &t.bytes;
        let rsdp = (t.rsdp_gpa - base) as usize;
        let xsdt = rd(b, rsdp + 24, 8);
        let fadt = rd(b, (xsdt - base) as usize + 36, 8);
        let pointers = [
            t.rsdp_gpa,
            rd(b, rsdp + 16, 4),
            xsdt,
            fadt,
            rd(b, (xsdt - base) as usize + 44, 8),
            rd(b, (fadt - base) as usize + 36, 4),
            rd(b, (fadt - base) as usize + 140, 8),
        ];
        for (i, gpa) in pointers.into_iter().enumerate() {
            assert!(
                base <= gpa && gpa < base + max,
                "{gpa:#x} outside the ACPI area"
            );
            let off = (gpa - base) as usize;
            // The RSDP's length is at 20, every other table's (the FACS's too) at 4.
            let len = if i == 0 {
                rd(b, off + 20, 4)
            } else {
                rd(b, off + 4, 4)
            };
            assert!(gpa + len <= base + b.len() as u64);
        }
    }

    #[test]
    fn pvh_tables_chain_from_rsdp_with_valid_checksums() {
        let base = crate::layout::ACPI_TABLES_GPA;
        for n in [1, 2, 255, 300, MAX_VCPUS] {
            let t = build_pvh_tables(base, n);
            assert_eq!(t.rsdp_gpa, base);
            assert_eq!(t.rsdp_gpa % 16, 0);
            let p = parse(&t, base);
            assert_eq!(&p.facs[..4], b"FACS");
            assert_eq!(rd(p.facs, 4, 4), 64);
            pvh_addresses_in_area(&t, base);
        }
    }

    #[test]
    fn pvh_fadt_is_hardware_reduced() {
        let base = 0xFC00_0000;
        let t = build_pvh_tables(base, 2);
        let f = parse(&t, base).fadt;
        assert_eq!(f.len(), 268, "ACPI 5.0 FADT, with the sleep registers");
        assert_eq!(f[8], 5, "revision");
        assert_eq!(f[131], 0, "minor revision");
        let flags = rd(f, 112, 4) as u32;
        assert_eq!(flags, PVH_FADT_FLAGS);
        assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
        assert_eq!(flags & 0x30, 0x30, "no fixed power or sleep button");
        assert_eq!(flags & FADT_RESET_REG_SUP, 0, "as libxl's");
        assert_eq!(rd(f, 109, 2), 0x24, "IAPC_BOOT_ARCH: NO_VGA | NO_CMOS_RTC");
        assert_eq!(rd(f, 46, 2), 0, "no SCI");
        assert_eq!(rd(f, 48, 4), 0, "no SMI_CMD");
        assert_eq!(&f[52..54], &[0, 0], "ACPI_ENABLE, ACPI_DISABLE");
        // PM1a/b event and control, PM2, PM timer, GPE0/1 blocks and their lengths.
        assert!(
            f[56..96].iter().all(|&x| x == 0),
            "no fixed hardware blocks"
        );
        assert_eq!(&f[116..120], &[1, 8, 0, 1], "reset register, system I/O");
        assert_eq!(rd(f, 120, 8), 0xCF9);
        assert_eq!(f[128], 0x06);
        assert_eq!(rd(f, 140, 8), rd(f, 40, 4), "X_DSDT");
        // X_PM1a_EVT .. X_GPE1 and SLEEP_CONTROL_REG / SLEEP_STATUS_REG: all absent.
        assert!(f[148..268].iter().all(|&x| x == 0));
    }

    /// The MADT's entries as (type, bytes).
    fn madt_entry_list(m: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut off = 44;
        while off < m.len() {
            let len = m[off + 1] as usize;
            assert!(len >= 2 && off + len <= m.len());
            out.push(&m[off..off + len]);
            off += len;
        }
        out
    }

    #[test]
    fn pvh_madt_entries() {
        let base = crate::layout::ACPI_TABLES_GPA;
        for n in [1u32, 2, 255, 300] {
            let t = build_pvh_tables(base, n);
            let m = parse(&t, base).madt;
            assert_eq!(rd(m, 36, 4), 0xFEE0_0000, "local APIC address");
            assert_eq!(rd(m, 40, 4), 0, "no PCAT_COMPAT: no 8259");
            let entries = madt_entry_list(m);
            assert_eq!(entries.len(), n as usize);
            for (id, e) in entries.iter().enumerate() {
                if id <= 254 {
                    assert_eq!(*e, [0, 8, id as u8, id as u8, 1, 0, 0, 0]);
                } else {
                    assert_eq!((e[0], e[1]), (9, 16));
                    assert_eq!(rd(e, 4, 4), id as u64, "x2APIC id");
                    assert_eq!(rd(e, 8, 4), 1, "enabled");
                    assert_eq!(rd(e, 12, 4), id as u64, "UID");
                }
            }
            assert!(
                entries.iter().all(|e| e[0] == 0 || e[0] == 9),
                "no I/O APIC"
            );
            // The same entries as the HVM MADT's.
            let hvm = build_tables(base, n);
            assert_eq!(&m[44..], &parse(&hvm, base).madt[44..]);
        }
    }

    /// Decodes an AML PkgLength: (value, bytes it takes).
    fn pkg_len(b: &[u8]) -> (usize, usize) {
        let n = (b[0] >> 6) as usize;
        if n == 0 {
            return ((b[0] & 0x3F) as usize, 1);
        }
        let v = (1..=n).fold((b[0] & 0xF) as usize, |v, i| {
            v | (b[i] as usize) << (4 + 8 * (i - 1))
        });
        (v, n + 1)
    }

    #[test]
    fn aml_pkg_lengths() {
        for body in [
            0,
            1,
            61,
            62,
            63,
            100,
            4093,
            4094,
            4095,
            8930,
            1 << 20,
            (1 << 20) - 3,
        ] {
            let mut out = Vec::new();
            aml_pkg_length(&mut out, body);
            let (v, used) = pkg_len(&out);
            assert_eq!(used, out.len());
            assert_eq!(v, body + used, "body {body}");
            assert!(used == 1 || v >= 1 << 6, "shortest encoding");
            assert!(used <= 2 || v >= 1 << 12, "shortest encoding");
        }
    }

    #[test]
    fn pvh_dsdt_holds_one_processor_per_vcpu() {
        let base = crate::layout::ACPI_TABLES_GPA;
        for n in [1u32, 2, 255, 300] {
            let t = build_pvh_tables(base, n);
            let d = parse(&t, base).dsdt;
            assert_eq!(d[8], 5, "revision 5, as libxl's dsdt_pvh");
            let aml = &d[36..];
            assert_eq!(aml, &pvh_dsdt_aml(n)[..]);
            // Scope (\_SB) runs to the end of the table.
            assert_eq!(aml[0], 0x10, "ScopeOp");
            let (len, used) = pkg_len(&aml[1..]);
            assert_eq!(1 + len, aml.len());
            let mut off = 1 + used;
            assert_eq!(&aml[off..off + 5], b"\\_SB_");
            off += 5;
            let mut ids = Vec::new();
            while off < aml.len() {
                assert_eq!(&aml[off..off + 2], &[0x5B, 0x83], "ProcessorOp");
                let (len, used) = pkg_len(&aml[off + 2..]);
                let end = off + 2 + len;
                let p = &aml[off + 2 + used..end];
                let id = p[4];
                assert_eq!(&p[..4], alloc::format!("PR{id:02X}").as_bytes());
                assert_eq!(&p[5..10], &[0; 5], "no P_BLK");
                assert_eq!(&p[10..25], b"\x08_HID\x0DACPI0007\x00");
                assert_eq!(&p[25..], &[0x08, b'_', b'U', b'I', b'D', 0x0A, id]);
                ids.push(id as u32);
                off = end;
            }
            assert_eq!(off, aml.len());
            assert_eq!(ids, (0..n.min(255)).collect::<Vec<_>>());
            assert!(!aml.windows(4).any(|w| w == b"_S5_"), "no ACPI power-off");
            assert!(!aml.windows(4).any(|w| w == b"PCI0"), "no devices");
        }
    }

    #[test]
    fn sleep_request_decoding() {
        assert_eq!(sleep_request(5 << 10), None, "SLP_EN clear");
        assert_eq!(sleep_request(5 << 10 | 1 << 13), Some(SleepRequest::S5));
        assert_eq!(
            sleep_request(5 << 10 | 1 << 13 | 1),
            Some(SleepRequest::S5),
            "with SCI_EN"
        );
        assert_eq!(
            sleep_request(3 << 10 | 1 << 13),
            Some(SleepRequest::Other(3))
        );
        assert_eq!(sleep_request(1 << 13), Some(SleepRequest::Other(0)));
    }

    #[test]
    fn pm1_control_poweroff() {
        // ACPICA's acpi_hw_legacy_sleep: clear WAK_STS and all status, write SLP_TYP, then
        // SLP_TYP | SLP_EN.
        let mut pm = PmRegisters::new();
        assert!(pm.handles_port(PM1A_CNT_PORT) && pm.handles_port(PM1A_CNT_PORT + 1));
        assert!(!pm.handles_port(PM1A_CNT_PORT + 2) && !pm.handles_port(PM1A_EVT_PORT - 1));
        assert_eq!(pm.io_read(PM1A_CNT_PORT, 2), PM1_CNT_SCI_EN as u32);
        assert_eq!(pm.io_write(PM1A_EVT_PORT, 2, 0xFFFF), None);
        let cnt = pm.io_read(PM1A_CNT_PORT, 2);
        assert_eq!(pm.io_write(PM1A_CNT_PORT, 2, cnt | 5 << 10), None);
        assert_eq!(pm.io_read(PM1A_CNT_PORT, 2), 5 << 10 | 1);
        let s5 = 5 << 10 | PM1_CNT_SLP_EN as u32 | 1;
        assert_eq!(pm.io_write(PM1A_CNT_PORT, 2, s5), Some(SleepRequest::S5));
        assert_eq!(
            pm.io_read(PM1A_CNT_PORT, 2) & PM1_CNT_SLP_EN as u32,
            0,
            "write-only"
        );
        // SCI_EN cannot be cleared.
        pm.io_write(PM1A_CNT_PORT, 2, 0);
        assert_eq!(pm.io_read(PM1A_CNT_PORT, 2), 1);
        // A byte write of the high half alone also sleeps.
        assert_eq!(
            pm.io_write(PM1A_CNT_PORT + 1, 1, (5 << 2 | 1 << 5) as u32),
            Some(SleepRequest::S5)
        );
    }

    #[test]
    fn pm1_event_block() {
        let mut pm = PmRegisters::new();
        // ACPICA enables the power button and global lock events and reads them back.
        pm.io_write(PM1A_EVT_PORT + 2, 2, 0x0120);
        assert_eq!(pm.io_read(PM1A_EVT_PORT + 2, 2), 0x0120);
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 4), 0x0120_0000);
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 2), 0, "no event pending");
        // A dword write of the whole block: status write-1-to-clear, enable as written.
        pm.io_write(PM1A_EVT_PORT, 4, 0x0000_FFFF);
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 4), 0);
        // An unsupported sleep state returns at once with WAK_STS set, which then clears.
        let s3 = 3 << 10 | PM1_CNT_SLP_EN as u32;
        assert_eq!(
            pm.io_write(PM1A_CNT_PORT, 2, s3),
            Some(SleepRequest::Other(3))
        );
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 2), PM1_STS_WAK as u32);
        pm.io_write(PM1A_EVT_PORT, 1, 0xFF);
        assert_eq!(
            pm.io_read(PM1A_EVT_PORT, 2),
            PM1_STS_WAK as u32,
            "other byte"
        );
        pm.io_write(PM1A_EVT_PORT + 1, 1, 0x80);
        assert_eq!(pm.io_read(PM1A_EVT_PORT, 2), 0);
        // Reads past the blocks are all-ones (SLP_TYP 3 is still in PM1a_CNT).
        assert_eq!(pm.io_read(PM1A_CNT_PORT + 1, 2), 0xFF0C);
        assert_eq!(pm.io_read(0x1234, 1), 0xFF);
    }
}
