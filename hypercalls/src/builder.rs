//! Domain building that needs no privilege: ELF image parsing (ELF32 i386 and
//! ELF64 x86-64, little-endian, as Xen's libelf accepts) and the guest-physical
//! layout of a 64-bit direct boot (GDT, identity page tables, `boot_params`,
//! command line). See `docs/protocol.md`, "Guest entry state". The Xen ELF
//! notes and the PVH `hvm_start_info` are in [`crate::pvh`].

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

/// `e_machine` of an i386 image (`EM_386`).
pub const EM_386: u16 = 3;
/// `e_machine` of an x86-64 image (`EM_X86_64`).
pub const EM_X86_64: u16 = 62;
/// Program header type of a loadable segment (`PT_LOAD`).
pub const PT_LOAD: u32 = 1;
/// Program header type of a note segment (`PT_NOTE`).
pub const PT_NOTE: u32 = 4;
/// Section header type of a note section (`SHT_NOTE`).
pub const SHT_NOTE: u32 = 7;

/// The ELF class of an image (`e_ident[EI_CLASS]`): the width of its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfClass {
    /// `ELFCLASS32`: 32-bit headers (an i386 image).
    Elf32,
    /// `ELFCLASS64`: 64-bit headers (an x86-64 image).
    Elf64,
}

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
    /// Virtual address (`p_vaddr`), for the log: loading uses [`Segment::gpa`].
    pub vaddr: u64,
    /// `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4).
    pub flags: u32,
    /// `p_align`.
    pub align: u64,
}

/// A parsed ELF32 i386 or ELF64 x86-64 executable.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// Entry point (`e_entry`; guest-physical: the image runs identity-mapped at first).
    /// A PVH image is entered at its `XEN_ELFNOTE_PHYS32_ENTRY` instead
    /// ([`crate::pvh::pvh_entry`]).
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<Segment>,
    /// The header width.
    pub class: ElfClass,
    /// `e_machine`: [`EM_386`] or [`EM_X86_64`].
    pub machine: u16,
}

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF32 i386 or ELF64 x86-64 little-endian executable (the name
    /// predates ELF32 support).
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
            Self::NotElf64 => {
                f.write_str("not an ELF32 i386 or ELF64 x86-64 little-endian executable")
            }
            Self::Truncated => f.write_str("truncated image"),
            Self::OutOfRange { gpa } => write!(f, "segment at {gpa:#x} outside guest RAM"),
            Self::Empty => f.write_str("no loadable segment"),
        }
    }
}

/// Reads an `n`-byte little-endian unsigned value at `off` (bounds-checked).
pub(crate) fn le(bytes: &[u8], off: u64, n: usize) -> Result<u64, ImageError> {
    let off = usize::try_from(off).map_err(|_| ImageError::Truncated)?;
    let end = off.checked_add(n).ok_or(ImageError::Truncated)?;
    let b = bytes.get(off..end).ok_or(ImageError::Truncated)?;
    Ok(b.iter().rev().fold(0, |acc, &x| (acc << 8) | x as u64))
}

/// Checks that `[off, off + count * entsize)` lies inside a file of `len` bytes.
fn table_fits(len: usize, off: u64, entsize: u64, count: u64) -> Result<(), ImageError> {
    let end = entsize
        .checked_mul(count)
        .and_then(|size| size.checked_add(off))
        .ok_or(ImageError::Truncated)?;
    if end > len as u64 {
        return Err(ImageError::Truncated);
    }
    Ok(())
}

/// The ELF file header fields the loader and the note parser use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElfHeader {
    /// The header width.
    pub class: ElfClass,
    /// `e_machine`.
    pub machine: u16,
    /// `e_entry`.
    pub entry: u64,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phentsize`.
    pub phentsize: u64,
    /// `e_phnum`.
    pub phnum: u64,
    /// `e_shoff`.
    pub shoff: u64,
    /// `e_shentsize`.
    pub shentsize: u64,
    /// `e_shnum`.
    pub shnum: u64,
}

/// One program header, widened to 64 bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgramHeader {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// One section header (the fields the note parser needs), widened to 64 bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SectionHeader {
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
}

impl ElfHeader {
    /// Parses and checks the file header: magic, class, little-endian data,
    /// machine `EM_386` or `EM_X86_64` (either class, as libelf does not tie
    /// them), and a program header table inside the file. The section header
    /// table is checked only when the note parser needs it
    /// ([`ElfHeader::section_header`]).
    pub(crate) fn parse(image: &[u8]) -> Result<Self, ImageError> {
        if image.len() < 52 || &image[..4] != b"\x7fELF" || image[5] != 1 {
            return Err(ImageError::NotElf64);
        }
        let class = match image[4] {
            1 => ElfClass::Elf32,
            2 if image.len() >= 64 => ElfClass::Elf64,
            _ => return Err(ImageError::NotElf64),
        };
        let machine = le(image, 18, 2)? as u16;
        if machine != EM_386 && machine != EM_X86_64 {
            return Err(ImageError::NotElf64);
        }
        let h = match class {
            ElfClass::Elf32 => Self {
                class,
                machine,
                entry: le(image, 24, 4)?,
                phoff: le(image, 28, 4)?,
                shoff: le(image, 32, 4)?,
                phentsize: le(image, 42, 2)?,
                phnum: le(image, 44, 2)?,
                shentsize: le(image, 46, 2)?,
                shnum: le(image, 48, 2)?,
            },
            ElfClass::Elf64 => Self {
                class,
                machine,
                entry: le(image, 24, 8)?,
                phoff: le(image, 32, 8)?,
                shoff: le(image, 40, 8)?,
                phentsize: le(image, 54, 2)?,
                phnum: le(image, 56, 2)?,
                shentsize: le(image, 58, 2)?,
                shnum: le(image, 60, 2)?,
            },
        };
        if h.phnum > 0 {
            let min = match class {
                ElfClass::Elf32 => 32,
                ElfClass::Elf64 => 56,
            };
            if h.phentsize < min {
                return Err(ImageError::NotElf64);
            }
            table_fits(image.len(), h.phoff, h.phentsize, h.phnum)?;
        }
        Ok(h)
    }

    /// Program header `i` (< `phnum`; the table was checked by [`ElfHeader::parse`]).
    pub(crate) fn program_header(&self, image: &[u8], i: u64) -> Result<ProgramHeader, ImageError> {
        let ph = i
            .checked_mul(self.phentsize)
            .and_then(|o| o.checked_add(self.phoff))
            .ok_or(ImageError::Truncated)?;
        let at = |off: u64, n: usize| le(image, offset_add(ph, off)?, n);
        Ok(match self.class {
            ElfClass::Elf32 => ProgramHeader {
                p_type: at(0, 4)? as u32,
                offset: at(4, 4)?,
                vaddr: at(8, 4)?,
                paddr: at(12, 4)?,
                filesz: at(16, 4)?,
                memsz: at(20, 4)?,
                flags: at(24, 4)? as u32,
                align: at(28, 4)?,
            },
            ElfClass::Elf64 => ProgramHeader {
                p_type: at(0, 4)? as u32,
                flags: at(4, 4)? as u32,
                offset: at(8, 8)?,
                vaddr: at(16, 8)?,
                paddr: at(24, 8)?,
                filesz: at(32, 8)?,
                memsz: at(40, 8)?,
                align: at(48, 8)?,
            },
        })
    }

    /// Section header `i` (< `shnum`), after checking that the whole section
    /// header table lies inside the file (as libelf's `elf_init` does).
    pub(crate) fn section_header(&self, image: &[u8], i: u64) -> Result<SectionHeader, ImageError> {
        let min = match self.class {
            ElfClass::Elf32 => 40,
            ElfClass::Elf64 => 64,
        };
        if self.shentsize < min {
            return Err(ImageError::NotElf64);
        }
        table_fits(image.len(), self.shoff, self.shentsize, self.shnum)?;
        let sh = i
            .checked_mul(self.shentsize)
            .and_then(|o| o.checked_add(self.shoff))
            .ok_or(ImageError::Truncated)?;
        let at = |off: u64, n: usize| le(image, offset_add(sh, off)?, n);
        Ok(match self.class {
            ElfClass::Elf32 => SectionHeader {
                sh_type: at(4, 4)? as u32,
                offset: at(16, 4)?,
                size: at(20, 4)?,
            },
            ElfClass::Elf64 => SectionHeader {
                sh_type: at(4, 4)? as u32,
                offset: at(24, 8)?,
                size: at(32, 8)?,
            },
        })
    }
}

/// `base + off`, or [`ImageError::Truncated`] on overflow.
fn offset_add(base: u64, off: u64) -> Result<u64, ImageError> {
    base.checked_add(off).ok_or(ImageError::Truncated)
}

/// Parses an ELF32 i386 or ELF64 x86-64 executable and checks its PT_LOAD
/// segments lie in the file and fit `[IMAGE_MIN_GPA, ram_bytes)`.
///
/// Every PT_LOAD is loaded whatever its `p_flags` (libelf skips a PT_LOAD
/// with none of R, W, X set; no real kernel has one).
pub fn parse_elf(image: &[u8], ram_bytes: u64) -> Result<ElfImage, ImageError> {
    let h = ElfHeader::parse(image)?;
    let mut segments = Vec::new();
    for i in 0..h.phnum {
        let ph = h.program_header(image, i)?;
        if ph.p_type != PT_LOAD {
            continue;
        }
        let offset = usize::try_from(ph.offset).map_err(|_| ImageError::Truncated)?;
        let file_size = usize::try_from(ph.filesz).map_err(|_| ImageError::Truncated)?;
        if offset
            .checked_add(file_size)
            .is_none_or(|end| end > image.len())
        {
            return Err(ImageError::Truncated);
        }
        let gpa = ph.paddr;
        let mem_size = ph.memsz;
        let end = gpa.checked_add(mem_size.max(ph.filesz));
        if gpa < IMAGE_MIN_GPA || end.is_none_or(|e| e > ram_bytes) {
            return Err(ImageError::OutOfRange { gpa });
        }
        segments.push(Segment {
            gpa,
            offset,
            file_size,
            mem_size,
            vaddr: ph.vaddr,
            flags: ph.flags,
            align: ph.align,
        });
    }
    if segments.is_empty() {
        return Err(ImageError::Empty);
    }
    Ok(ElfImage {
        entry: h.entry,
        segments,
        class: h.class,
        machine: h.machine,
    })
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
                mem_size: 0x2000,
                vaddr: 0,
                flags: 0,
                align: 0,
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

    fn elf32(gpa: u32, filesz: u32, memsz: u32, entry: u32) -> Vec<u8> {
        let mut img = alloc::vec![0u8; 52 + 32 + 64];
        img[..4].copy_from_slice(b"\x7fELF");
        img[4] = 1;
        img[5] = 1;
        img[18] = EM_386 as u8;
        img[24..28].copy_from_slice(&entry.to_le_bytes());
        img[28..32].copy_from_slice(&52u32.to_le_bytes());
        img[42] = 32;
        img[44] = 1;
        let ph = 52;
        img[ph] = 1;
        img[ph + 4..ph + 8].copy_from_slice(&84u32.to_le_bytes());
        img[ph + 8..ph + 12].copy_from_slice(&0xC000_0000u32.wrapping_add(gpa).to_le_bytes());
        img[ph + 12..ph + 16].copy_from_slice(&gpa.to_le_bytes());
        img[ph + 16..ph + 20].copy_from_slice(&filesz.to_le_bytes());
        img[ph + 20..ph + 24].copy_from_slice(&memsz.to_le_bytes());
        img[ph + 24] = 7;
        img[ph + 28..ph + 32].copy_from_slice(&0x1000u32.to_le_bytes());
        img
    }

    #[test]
    fn parses_elf32() {
        let img = elf32(0x20_0000, 64, 0x3000, 0x20_0010);
        let e = parse_elf(&img, 32 << 20).unwrap();
        assert_eq!(
            (e.class, e.machine, e.entry),
            (ElfClass::Elf32, EM_386, 0x20_0010)
        );
        assert_eq!(
            e.segments,
            [Segment {
                gpa: 0x20_0000,
                offset: 84,
                file_size: 64,
                mem_size: 0x3000,
                vaddr: 0xC020_0000,
                flags: 7,
                align: 0x1000,
            }]
        );
        assert_eq!(
            parse_elf(&elf32(0x20_0000, 65, 65, 0), 32 << 20),
            Err(ImageError::Truncated)
        );
        assert_eq!(
            parse_elf(&elf32(0x1F_F000, 64, 0x1000_0000, 0), 32 << 20),
            Err(ImageError::OutOfRange { gpa: 0x1F_F000 })
        );
        // An ELF32 header cut short, its program headers past the file.
        assert_eq!(parse_elf(&img[..51], 1 << 30), Err(ImageError::NotElf64));
        assert_eq!(parse_elf(&img[..83], 1 << 30), Err(ImageError::Truncated));
    }

    #[test]
    fn rejects_other_elf_kinds() {
        let base = elf(&[(0x10_0000, 16, 16)], 0x10_0000);
        for (off, v) in [(4, 3), (5, 2), (18, 40), (54, 32)] {
            let mut img = base.clone();
            img[off] = v;
            assert_eq!(parse_elf(&img, 1 << 30), Err(ImageError::NotElf64), "{off}");
        }
        // An ELF64 header shorter than 64 bytes.
        assert_eq!(parse_elf(&base[..60], 1 << 30), Err(ImageError::NotElf64));
        // A program header table offset that wraps.
        let mut img = base.clone();
        img[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse_elf(&img, 1 << 30), Err(ImageError::Truncated));
        // Segment file offset and size that wrap.
        let mut img = base;
        img[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse_elf(&img, 1 << 30), Err(ImageError::Truncated));
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
