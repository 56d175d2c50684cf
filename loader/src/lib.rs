//! The Linux x86 boot protocol as a guest loader sees it (Linux
//! `Documentation/arch/x86/boot.rst`, `arch/x86/include/uapi/asm/bootparam.h`):
//! parsing a bzImage's setup header, and building the `boot_params` zero page
//! with the command line, initrd, e820 map and ACPI RSDP address.
//!
//! Both forms of a Linux kernel are entered at a 64-bit entry point with RSI
//! pointing at the zero page: the uncompressed `vmlinux` ELF at its ELF entry
//! (`startup_64`), and a bzImage's protected-mode part at its load address +
//! 0x200 (the decompressor's `startup_64`), which then unpacks the kernel.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

/// Offsets in `struct boot_params` and its `setup_header` (at 0x1f1).
pub mod offsets {
    /// `acpi_rsdp_addr` (u64).
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    /// `ext_ramdisk_image` (u32): bits 63:32 of the initrd address.
    pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
    /// `ext_ramdisk_size` (u32).
    pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
    /// `ext_cmd_line_ptr` (u32).
    pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
    /// `e820_entries` (u8).
    pub const E820_ENTRIES: usize = 0x1e8;
    /// `sentinel` (u8): must stay 0 or the kernel discards fields it does not trust.
    pub const SENTINEL: usize = 0x1ef;
    /// Start of `struct setup_header`.
    pub const SETUP_HEADER: usize = 0x1f1;
    /// `setup_sects` (u8).
    pub const SETUP_SECTS: usize = 0x1f1;
    /// `boot_flag` (u16, 0xAA55).
    pub const BOOT_FLAG: usize = 0x1fe;
    /// `header` (u32, "HdrS").
    pub const HEADER: usize = 0x202;
    /// `version` (u16): boot protocol version.
    pub const VERSION: usize = 0x206;
    /// `type_of_loader` (u8).
    pub const TYPE_OF_LOADER: usize = 0x210;
    /// `loadflags` (u8).
    pub const LOADFLAGS: usize = 0x211;
    /// `code32_start` (u32).
    pub const CODE32_START: usize = 0x214;
    /// `ramdisk_image` (u32).
    pub const RAMDISK_IMAGE: usize = 0x218;
    /// `ramdisk_size` (u32).
    pub const RAMDISK_SIZE: usize = 0x21c;
    /// `heap_end_ptr` (u16).
    pub const HEAP_END_PTR: usize = 0x224;
    /// `cmd_line_ptr` (u32).
    pub const CMD_LINE_PTR: usize = 0x228;
    /// `initrd_addr_max` (u32).
    pub const INITRD_ADDR_MAX: usize = 0x22c;
    /// `kernel_alignment` (u32).
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    /// `relocatable_kernel` (u8).
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    /// `xloadflags` (u16).
    pub const XLOADFLAGS: usize = 0x236;
    /// `cmdline_size` (u32).
    pub const CMDLINE_SIZE: usize = 0x238;
    /// `hardware_subarch` (u32).
    pub const HARDWARE_SUBARCH: usize = 0x23c;
    /// `payload_offset` (u32).
    pub const PAYLOAD_OFFSET: usize = 0x248;
    /// `payload_length` (u32).
    pub const PAYLOAD_LENGTH: usize = 0x24c;
    /// `pref_address` (u64).
    pub const PREF_ADDRESS: usize = 0x258;
    /// `init_size` (u32).
    pub const INIT_SIZE: usize = 0x260;
    /// End of the setup header as of protocol 2.15 (`kernel_info_offset` + 4).
    pub const SETUP_HEADER_END: usize = 0x26c;
    /// `e820_table[128]`, 20-byte entries.
    pub const E820_TABLE: usize = 0x2d0;
}

/// Maximum number of e820 entries in the zero page.
pub const E820_MAX: usize = 128;
/// `loadflags.LOADED_HIGH`: the protected-mode kernel is loaded at 1 MiB or above.
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags.CAN_USE_HEAP`: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// `xloadflags.XLF_KERNEL_64`: the kernel has a 64-bit entry at load address + 0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `type_of_loader` for a boot loader without an assigned id.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Offset of the 64-bit entry point in a bzImage's protected-mode part.
pub const BZIMAGE_ENTRY_64_OFFSET: u64 = 0x200;

/// One e820 entry: `[addr, addr + size)` of `kind` (1 RAM, 2 reserved, 3 ACPI, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// The e820 type.
    pub kind: u32,
}

impl E820Entry {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr + self.size
    }
}

/// Why an image is not a usable bzImage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BzImageError {
    /// Too short, or no "HdrS" / 0xAA55 signature.
    NotBzImage,
    /// Boot protocol older than 2.12 (no 64-bit entry, no xloadflags).
    ProtocolTooOld(u16),
    /// The kernel has no 64-bit entry point (`XLF_KERNEL_64` clear).
    No64BitEntry,
}

impl core::fmt::Display for BzImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotBzImage => f.write_str("not a bzImage (no HdrS setup header)"),
            Self::ProtocolTooOld(v) => write!(
                f,
                "boot protocol {}.{:02} is older than 2.12",
                v >> 8,
                v & 0xff
            ),
            Self::No64BitEntry => f.write_str("kernel has no 64-bit entry point"),
        }
    }
}

/// What a loader needs from a bzImage's setup header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BzImage<'a> {
    /// The setup header bytes (boot_params offsets 0x1f1..0x26c), to copy into the zero page.
    pub setup_header: &'a [u8],
    /// The protected-mode kernel (everything after the real-mode setup sectors).
    pub kernel: &'a [u8],
    /// Boot protocol version (e.g. 0x020f).
    pub version: u16,
    /// Preferred load address of the protected-mode kernel.
    pub pref_address: u64,
    /// Required alignment of the load address.
    pub kernel_alignment: u32,
    /// Bytes of memory the kernel needs from its load address while it decompresses itself.
    pub init_size: u32,
    /// Highest address the initrd may end at.
    pub initrd_addr_max: u32,
    /// Maximum command-line length the kernel accepts.
    pub cmdline_size: u32,
}

fn rd(b: &[u8], off: usize, n: usize) -> u64 {
    b[off..off + n]
        .iter()
        .rev()
        .fold(0, |acc, &x| (acc << 8) | x as u64)
}

fn wr(b: &mut [u8], off: usize, n: usize, v: u64) {
    b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

/// Parses a bzImage's setup header.
pub fn parse_bzimage(image: &[u8]) -> Result<BzImage<'_>, BzImageError> {
    use offsets::*;
    if image.len() < SETUP_HEADER_END
        || rd(image, BOOT_FLAG, 2) != 0xAA55
        || &image[HEADER..HEADER + 4] != b"HdrS"
    {
        return Err(BzImageError::NotBzImage);
    }
    let version = rd(image, VERSION, 2) as u16;
    if version < 0x020c {
        return Err(BzImageError::ProtocolTooOld(version));
    }
    if rd(image, XLOADFLAGS, 2) as u16 & XLF_KERNEL_64 == 0 {
        return Err(BzImageError::No64BitEntry);
    }
    let setup_sects = match image[SETUP_SECTS] {
        0 => 4,
        n => n as usize,
    };
    let kernel_start = (setup_sects + 1) * 512;
    if kernel_start >= image.len() {
        return Err(BzImageError::NotBzImage);
    }
    let header_end = if version >= 0x020f {
        SETUP_HEADER_END
    } else {
        0x264
    };
    Ok(BzImage {
        setup_header: &image[SETUP_HEADER..header_end],
        kernel: &image[kernel_start..],
        version,
        pref_address: rd(image, PREF_ADDRESS, 8),
        kernel_alignment: rd(image, KERNEL_ALIGNMENT, 4) as u32,
        init_size: rd(image, INIT_SIZE, 4) as u32,
        initrd_addr_max: rd(image, INITRD_ADDR_MAX, 4) as u32,
        cmdline_size: rd(image, CMDLINE_SIZE, 4) as u32,
    })
}

/// What goes into a zero page.
#[derive(Clone, Debug, Default)]
pub struct BootParamsSpec<'a> {
    /// A bzImage's setup header to start from (None for a vmlinux ELF: a minimal header is made).
    pub setup_header: Option<&'a [u8]>,
    /// Where the bzImage's protected-mode kernel was loaded (`code32_start`).
    pub code32_start: u32,
    /// Guest-physical address of the NUL-terminated command line.
    pub cmdline_gpa: u64,
    /// The initrd's guest-physical address and size, if any.
    pub initrd: Option<(u64, u64)>,
    /// Guest-physical address of the ACPI RSDP (0: none).
    pub acpi_rsdp: u64,
    /// The memory map.
    pub e820: &'a [E820Entry],
}

/// Why a zero page cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootParamsError {
    /// More e820 entries than the zero page holds.
    TooManyE820Entries(usize),
    /// The setup header does not fit its place in the zero page.
    BadSetupHeader,
}

/// Builds the 4 KiB `boot_params` page.
pub fn boot_params(spec: &BootParamsSpec<'_>) -> Result<Vec<u8>, BootParamsError> {
    use offsets::*;
    let mut bp = alloc::vec![0u8; 4096];
    match spec.setup_header {
        Some(hdr) => {
            let end = SETUP_HEADER + hdr.len();
            if end > E820_TABLE {
                return Err(BootParamsError::BadSetupHeader);
            }
            bp[SETUP_HEADER..end].copy_from_slice(hdr);
            wr(&mut bp, CODE32_START, 4, spec.code32_start as u64);
        }
        None => {
            // A header that says what a vmlinux entered at startup_64 needs to know.
            wr(&mut bp, BOOT_FLAG, 2, 0xAA55);
            bp[HEADER..HEADER + 4].copy_from_slice(b"HdrS");
            wr(&mut bp, VERSION, 2, 0x020f);
            wr(&mut bp, KERNEL_ALIGNMENT, 4, 0x20_0000);
            wr(&mut bp, INITRD_ADDR_MAX, 4, 0x7fff_ffff);
            wr(&mut bp, CMDLINE_SIZE, 4, 2047);
        }
    }
    bp[TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    bp[LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
    wr(&mut bp, HEAP_END_PTR, 2, 0xfe00);
    wr(&mut bp, HARDWARE_SUBARCH, 4, 0); // X86_SUBARCH_PC
    wr(&mut bp, CMD_LINE_PTR, 4, spec.cmdline_gpa & 0xffff_ffff);
    wr(&mut bp, EXT_CMD_LINE_PTR, 4, spec.cmdline_gpa >> 32);
    if let Some((addr, size)) = spec.initrd {
        wr(&mut bp, RAMDISK_IMAGE, 4, addr & 0xffff_ffff);
        wr(&mut bp, RAMDISK_SIZE, 4, size & 0xffff_ffff);
        wr(&mut bp, EXT_RAMDISK_IMAGE, 4, addr >> 32);
        wr(&mut bp, EXT_RAMDISK_SIZE, 4, size >> 32);
    }
    wr(&mut bp, ACPI_RSDP_ADDR, 8, spec.acpi_rsdp);
    if spec.e820.len() > E820_MAX {
        return Err(BootParamsError::TooManyE820Entries(spec.e820.len()));
    }
    bp[E820_ENTRIES] = spec.e820.len() as u8;
    for (i, e) in spec.e820.iter().enumerate() {
        let off = E820_TABLE + i * 20;
        wr(&mut bp, off, 8, e.addr);
        wr(&mut bp, off + 8, 8, e.size);
        wr(&mut bp, off + 16, 4, e.kind as u64);
    }
    bp[SENTINEL] = 0;
    Ok(bp)
}

/// Picks where an initrd of `size` bytes goes: page-aligned, as high as possible below both
/// `ram_end` and the kernel's `initrd_addr_max` (inclusive limit), and above `floor`.
pub fn place_initrd(size: u64, ram_end: u64, initrd_addr_max: u64, floor: u64) -> Option<u64> {
    let top = ram_end.min(initrd_addr_max.saturating_add(1));
    let start = top.checked_sub(size)? & !0xfff;
    (start >= floor).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::offsets::*;
    use super::*;

    fn fake_bzimage(version: u16, xlf: u16) -> Vec<u8> {
        let mut img = alloc::vec![0u8; 5 * 512 + 4096];
        img[SETUP_SECTS] = 4;
        wr(&mut img, BOOT_FLAG, 2, 0xAA55);
        img[HEADER..HEADER + 4].copy_from_slice(b"HdrS");
        wr(&mut img, VERSION, 2, version as u64);
        wr(&mut img, XLOADFLAGS, 2, xlf as u64);
        wr(&mut img, PREF_ADDRESS, 8, 0x100_0000);
        wr(&mut img, KERNEL_ALIGNMENT, 4, 0x20_0000);
        wr(&mut img, INIT_SIZE, 4, 0x300_0000);
        wr(&mut img, INITRD_ADDR_MAX, 4, 0x7fff_ffff);
        img[5 * 512] = 0xAB;
        img
    }

    #[test]
    fn parses_a_bzimage_header() {
        let img = fake_bzimage(0x020f, XLF_KERNEL_64);
        let bz = parse_bzimage(&img).unwrap();
        assert_eq!(bz.version, 0x020f);
        assert_eq!(bz.pref_address, 0x100_0000);
        assert_eq!(bz.init_size, 0x300_0000);
        assert_eq!(bz.kernel[0], 0xAB);
        assert_eq!(bz.kernel.len(), 4096);
        assert_eq!(bz.setup_header.len(), SETUP_HEADER_END - SETUP_HEADER);
    }

    #[test]
    fn rejects_bad_images() {
        assert_eq!(parse_bzimage(b"\x7fELF"), Err(BzImageError::NotBzImage));
        let mut img = fake_bzimage(0x020f, XLF_KERNEL_64);
        img[HEADER] = b'X';
        assert_eq!(parse_bzimage(&img), Err(BzImageError::NotBzImage));
        assert_eq!(
            parse_bzimage(&fake_bzimage(0x020a, XLF_KERNEL_64)),
            Err(BzImageError::ProtocolTooOld(0x020a))
        );
        assert_eq!(
            parse_bzimage(&fake_bzimage(0x020f, 0)),
            Err(BzImageError::No64BitEntry)
        );
        let mut short = fake_bzimage(0x020f, XLF_KERNEL_64);
        short.truncate(5 * 512);
        assert_eq!(parse_bzimage(&short), Err(BzImageError::NotBzImage));
    }

    #[test]
    fn zero_page_fields() {
        let e820 = [
            E820Entry {
                addr: 0,
                size: 0x9f000,
                kind: 1,
            },
            E820Entry {
                addr: 0x10_0000,
                size: 0xff0_0000,
                kind: 1,
            },
        ];
        let bp = boot_params(&BootParamsSpec {
            cmdline_gpa: 0x9000,
            initrd: Some((0x0f00_0000, 0x12_3456)),
            acpi_rsdp: 0xe0000,
            e820: &e820,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rd(&bp, CMD_LINE_PTR, 4), 0x9000);
        assert_eq!(rd(&bp, RAMDISK_IMAGE, 4), 0x0f00_0000);
        assert_eq!(rd(&bp, RAMDISK_SIZE, 4), 0x12_3456);
        assert_eq!(rd(&bp, ACPI_RSDP_ADDR, 8), 0xe0000);
        assert_eq!(bp[E820_ENTRIES], 2);
        assert_eq!(rd(&bp, E820_TABLE + 20 + 8, 8), 0xff0_0000);
        assert_eq!(rd(&bp, E820_TABLE + 20 + 16, 4), 1);
        assert_eq!(bp[TYPE_OF_LOADER], 0xff);
        assert_eq!(&bp[HEADER..HEADER + 4], b"HdrS");
        assert_eq!(bp[SENTINEL], 0);
    }

    #[test]
    fn bzimage_header_is_copied() {
        let img = fake_bzimage(0x020f, XLF_KERNEL_64);
        let bz = parse_bzimage(&img).unwrap();
        let bp = boot_params(&BootParamsSpec {
            setup_header: Some(bz.setup_header),
            code32_start: 0x100_0000,
            cmdline_gpa: 0x9000,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rd(&bp, PREF_ADDRESS, 8), 0x100_0000);
        assert_eq!(rd(&bp, CODE32_START, 4), 0x100_0000);
        assert_eq!(rd(&bp, XLOADFLAGS, 2) as u16, XLF_KERNEL_64);
        assert_eq!(bp[LOADFLAGS] & LOADED_HIGH, LOADED_HIGH);
    }

    #[test]
    fn too_many_e820_entries() {
        let e = [E820Entry {
            addr: 0,
            size: 4096,
            kind: 1,
        }; 129];
        assert_eq!(
            boot_params(&BootParamsSpec {
                e820: &e,
                ..Default::default()
            }),
            Err(BootParamsError::TooManyE820Entries(129))
        );
    }

    #[test]
    fn initrd_placement() {
        assert_eq!(
            place_initrd(0x1800, 0x1000_0000, 0x7fff_ffff, 0x500_0000),
            Some(0x0fff_e000)
        );
        assert_eq!(
            place_initrd(0x1000, 0x1_0000_0000, 0x7fff_ffff, 0),
            Some(0x7fff_f000)
        );
        assert_eq!(place_initrd(0x1000_0000, 0x1000_0000, u64::MAX, 1), None);
        assert_eq!(place_initrd(0x2000_0000, 0x1000_0000, u64::MAX, 0), None);
    }
}
