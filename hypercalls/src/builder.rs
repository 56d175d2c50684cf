//! Domain building that needs no privilege: ELF64 image parsing and the
//! guest-physical layout of a 64-bit direct boot (GDT, identity page tables,
//! `boot_params`, command line). See `docs/protocol.md`, "Guest entry state".

use alloc::vec::Vec;

/// Guest-physical address of the boot GDT.
pub const GDT_GPA: u64 = 0x1000;
/// Guest-physical address of the boot PML4 (PDPT and 4 PDs follow it).
pub const PML4_GPA: u64 = 0x2000;
/// Guest-physical address of `boot_params` (the Linux zero page).
pub const BOOT_PARAMS_GPA: u64 = 0x8000;
/// Guest-physical address of the command line.
pub const CMDLINE_GPA: u64 = 0x9000;
/// Longest command line accepted (Linux's COMMAND_LINE_SIZE is 2048).
pub const CMDLINE_MAX: usize = 2047;
/// Lowest guest-physical address an image may be loaded at.
pub const IMAGE_MIN_GPA: u64 = 0x10_0000;
/// Boot code selector (Linux's `__BOOT_CS`).
pub const BOOT_CS: u16 = 0x10;
/// Boot data selector (Linux's `__BOOT_DS`).
pub const BOOT_DS: u16 = 0x18;
/// Offset of `hdr.cmd_line_ptr` in `boot_params`.
const CMD_LINE_PTR: usize = 0x228;

/// One loadable segment of an ELF image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical load address (`p_paddr`).
    pub gpa: u64,
    /// Offset of the file bytes in the image.
    pub offset: usize,
    /// Bytes taken from the file.
    pub file_size: usize,
    /// Bytes in memory (the rest is zeroed).
    pub mem_size: u64,
}

/// A parsed ELF64 x86-64 executable.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// Entry point (guest-physical: the image runs identity-mapped at first).
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<Segment>,
}

/// Why an image cannot be loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF64 little-endian x86-64 executable.
    NotElf64,
    /// A header or segment lies outside the file.
    Truncated,
    /// A segment does not fit the domain's RAM (or overlaps the boot area).
    OutOfRange {
        /// Load address of the offending segment.
        gpa: u64,
    },
    /// No loadable segment.
    Empty,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotElf64 => f.write_str("not an ELF64 x86-64 executable"),
            Self::Truncated => f.write_str("truncated image"),
            Self::OutOfRange { gpa } => write!(f, "segment at {gpa:#x} outside guest RAM"),
            Self::Empty => f.write_str("no loadable segment"),
        }
    }
}

fn le(bytes: &[u8], off: usize, n: usize) -> Result<u64, ImageError> {
    let b = bytes.get(off..off + n).ok_or(ImageError::Truncated)?;
    Ok(b.iter().rev().fold(0, |acc, &x| (acc << 8) | x as u64))
}

/// Parses an ELF64 executable and checks its segments fit `[IMAGE_MIN_GPA, ram_bytes)`.
pub fn parse_elf(image: &[u8], ram_bytes: u64) -> Result<ElfImage, ImageError> {
    if image.len() < 64
        || &image[..4] != b"\x7fELF"
        || image[4] != 2
        || image[5] != 1
        || le(image, 18, 2)? != 62
    {
        return Err(ImageError::NotElf64);
    }
    let entry = le(image, 24, 8)?;
    let phoff = le(image, 32, 8)? as usize;
    let phentsize = le(image, 54, 2)? as usize;
    let phnum = le(image, 56, 2)? as usize;
    if phentsize < 56 {
        return Err(ImageError::NotElf64);
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i * phentsize)
            .ok_or(ImageError::Truncated)?;
        if le(image, ph, 4)? != 1 {
            continue; // not PT_LOAD
        }
        let offset = le(image, ph + 8, 8)? as usize;
        let gpa = le(image, ph + 24, 8)?;
        let file_size = le(image, ph + 32, 8)? as usize;
        let mem_size = le(image, ph + 40, 8)?;
        if offset
            .checked_add(file_size)
            .is_none_or(|end| end > image.len())
        {
            return Err(ImageError::Truncated);
        }
        let end = gpa.checked_add(mem_size.max(file_size as u64));
        if gpa < IMAGE_MIN_GPA || end.is_none_or(|e| e > ram_bytes) {
            return Err(ImageError::OutOfRange { gpa });
        }
        segments.push(Segment {
            gpa,
            offset,
            file_size,
            mem_size,
        });
    }
    if segments.is_empty() {
        return Err(ImageError::Empty);
    }
    Ok(ElfImage { entry, segments })
}

/// The boot GDT: null, null, 64-bit code at 0x10, data at 0x18.
pub fn boot_gdt() -> [u8; 32] {
    let mut gdt = [0u8; 32];
    gdt[16..24].copy_from_slice(&0x00AF_9B00_0000_FFFFu64.to_le_bytes());
    gdt[24..32].copy_from_slice(&0x00CF_9300_0000_FFFFu64.to_le_bytes());
    gdt
}

/// Page tables identity-mapping 0..4 GiB with 2 MiB pages, as 6 pages to be
/// placed at [`PML4_GPA`] (PML4, PDPT, 4 PDs).
pub fn identity_page_tables() -> Vec<u8> {
    let mut t = alloc::vec![0u8; 6 * 4096];
    let put = |t: &mut [u8], off: usize, v: u64| t[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut t, 0, (PML4_GPA + 0x1000) | 3);
    for i in 0..4u64 {
        put(
            &mut t,
            0x1000 + i as usize * 8,
            (PML4_GPA + 0x2000 + i * 0x1000) | 3,
        );
    }
    for i in 0..2048u64 {
        put(&mut t, 0x2000 + i as usize * 8, (i << 21) | 0x83);
    }
    t
}

/// A `boot_params` page pointing at the command line at [`CMDLINE_GPA`].
pub fn boot_params() -> Vec<u8> {
    let mut bp = alloc::vec![0u8; 4096];
    bp[CMD_LINE_PTR..CMD_LINE_PTR + 4].copy_from_slice(&(CMDLINE_GPA as u32).to_le_bytes());
    bp
}

/// The command line as stored in guest memory (truncated, NUL-terminated).
pub fn cmdline_bytes(cmdline: &str) -> Vec<u8> {
    let n = cmdline.len().min(CMDLINE_MAX);
    let mut v = Vec::with_capacity(n + 1);
    v.extend_from_slice(&cmdline.as_bytes()[..n]);
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(segments: &[(u64, u64, u64)], entry: u64) -> Vec<u8> {
        let mut img = alloc::vec![0u8; 64 + 56 * segments.len() + 256];
        img[..4].copy_from_slice(b"\x7fELF");
        img[4] = 2;
        img[5] = 1;
        img[18] = 62;
        img[24..32].copy_from_slice(&entry.to_le_bytes());
        img[32..40].copy_from_slice(&64u64.to_le_bytes());
        img[54] = 56;
        img[56] = segments.len() as u8;
        for (i, &(gpa, filesz, memsz)) in segments.iter().enumerate() {
            let ph = 64 + i * 56;
            img[ph] = 1;
            img[ph + 8..ph + 16]
                .copy_from_slice(&(64u64 + 56 * segments.len() as u64).to_le_bytes());
            img[ph + 24..ph + 32].copy_from_slice(&gpa.to_le_bytes());
            img[ph + 32..ph + 40].copy_from_slice(&filesz.to_le_bytes());
            img[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        }
        img
    }

    #[test]
    fn parses_segments_and_entry() {
        let img = elf(&[(0x10_0000, 16, 0x2000)], 0x10_0000);
        let e = parse_elf(&img, 32 << 20).unwrap();
        assert_eq!(e.entry, 0x10_0000);
        assert_eq!(
            e.segments,
            [Segment {
                gpa: 0x10_0000,
                offset: 120,
                file_size: 16,
                mem_size: 0x2000
            }]
        );
    }

    #[test]
    fn rejects_bad_images() {
        assert_eq!(
            parse_elf(b"not an elf at all", 1 << 30),
            Err(ImageError::NotElf64)
        );
        let img = elf(&[(0x10_0000, 1 << 20, 1 << 20)], 0);
        assert_eq!(parse_elf(&img, 1 << 30), Err(ImageError::Truncated));
        let img = elf(&[(0x1F0_0000, 16, 0x20_0000)], 0);
        assert_eq!(
            parse_elf(&img, 32 << 20),
            Err(ImageError::OutOfRange { gpa: 0x1F0_0000 })
        );
        let img = elf(&[(0x1000, 16, 16)], 0);
        assert_eq!(
            parse_elf(&img, 32 << 20),
            Err(ImageError::OutOfRange { gpa: 0x1000 })
        );
        let img = elf(&[(u64::MAX - 8, 16, 16)], 0);
        assert!(matches!(
            parse_elf(&img, u64::MAX),
            Err(ImageError::OutOfRange { .. })
        ));
        assert_eq!(parse_elf(&elf(&[], 0), 1 << 30), Err(ImageError::Empty));
    }

    #[test]
    fn identity_tables_map_4g() {
        let t = identity_page_tables();
        let rd = |off: usize| u64::from_le_bytes(t[off..off + 8].try_into().unwrap());
        assert_eq!(rd(0), 0x3003);
        assert_eq!(rd(0x1000 + 3 * 8), 0x7003);
        assert_eq!(rd(0x2000 + 2047 * 8), (2047u64 << 21) | 0x83);
    }

    #[test]
    fn boot_params_points_at_cmdline() {
        let bp = boot_params();
        assert_eq!(
            u32::from_le_bytes(bp[0x228..0x22C].try_into().unwrap()),
            CMDLINE_GPA as u32
        );
        assert_eq!(cmdline_bytes("test=identity"), b"test=identity\0");
        assert_eq!(cmdline_bytes(&"x".repeat(5000)).len(), CMDLINE_MAX + 1);
    }
}
