//! The pure part of a Xen PVH boot: the Xen ELF notes of a kernel image
//! (what Xen's libelf, `libelf-dominfo.c`, records for an HVM/PVH guest) and
//! the `hvm_start_info` block a PVH kernel finds in EBX at its
//! `XEN_ELFNOTE_PHYS32_ENTRY` (laid out as libxenguest's `bootlate_hvm` does:
//! the structure, the command line, the module list, the modules' command
//! lines, the memory map).
//!
//! Kernel use: [`pvh_entry`]`(image)` gives the 32-bit entry point (or says why
//! the image is not a PVH image); [`build_start_info`] gives the bytes to copy
//! at the boot-info area and the GPA to put in EBX.

use crate::builder::{ElfHeader, ImageError, CMDLINE_MAX, PT_LOAD, PT_NOTE, SHT_NOTE};
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::elfnote as en;
use guest_abi::features as xf;
use guest_abi::start_info::{
    HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE,
};
use zerocopy::IntoBytes;

/// Most notes libelf reads from one image (`ELF_MAX_TOTAL_NOTE_COUNT`).
pub const MAX_TOTAL_NOTES: usize = 65536;

/// Size of an ELF note header (`Elf32_Nhdr` and `Elf64_Nhdr` alike: three `u32`).
const NOTE_HEADER: u64 = 12;

/// Where a group of notes was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteRegion {
    /// The PT_NOTE program header of this index.
    Segment(u16),
    /// The SHT_NOTE section header of this index.
    Section(u16),
}

impl core::fmt::Display for NoteRegion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Segment(i) => write!(f, "PT_NOTE segment {i}"),
            Self::Section(i) => write!(f, "SHT_NOTE section {i}"),
        }
    }
}

/// What is wrong with one Xen note's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteProblem {
    /// A numeric payload of this many bytes (libelf reads 1, 2, 4 or 8).
    NumericSize(u32),
    /// A payload of 32-bit words whose size (bytes) is not a multiple of 4.
    NotWords(u32),
    /// An entry point that does not fit in 32 bits.
    Above4G(u64),
    /// A string payload that is not UTF-8.
    NotUtf8,
    /// `XEN_ELFNOTE_FEATURES` requires (`!name`) a feature libelf does not know.
    UnknownRequiredFeature(String),
}

impl core::fmt::Display for NoteProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NumericSize(n) => write!(f, "payload of {n} bytes (not 1, 2, 4 or 8)"),
            Self::NotWords(n) => write!(f, "payload of {n} bytes (not 32-bit words)"),
            Self::Above4G(v) => write!(f, "{v:#x} is above 4 GiB"),
            Self::NotUtf8 => f.write_str("string is not UTF-8"),
            Self::UnknownRequiredFeature(name) => write!(f, "requires unknown feature '{name}'"),
        }
    }
}

/// Why the Xen notes (or the PVH entry) of an image cannot be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteError {
    /// The ELF headers themselves are bad.
    Elf(ImageError),
    /// A note segment or section lies (partly) outside the file.
    RegionOutsideFile {
        /// Which one.
        region: NoteRegion,
    },
    /// A note's header, name or payload runs past the end of its segment or
    /// section (a huge `namesz` or `descsz` included).
    Truncated {
        /// Where the notes were read from.
        region: NoteRegion,
        /// File offset of the note header.
        offset: u64,
    },
    /// More than [`MAX_TOTAL_NOTES`] notes in all.
    TooManyNotes,
    /// A Xen note with an unusable payload.
    BadNote {
        /// The note's name (`XEN_ELFNOTE_PHYS32_ENTRY`, ...).
        note: &'static str,
        /// What is wrong with it.
        problem: NoteProblem,
    },
    /// The image has no note named "Xen" in its PT_NOTE segments or SHT_NOTE sections.
    NoXenNotes,
    /// The image has Xen notes but no `XEN_ELFNOTE_PHYS32_ENTRY` (not a PVH kernel).
    NoPhys32Entry,
    /// The PVH entry point lies outside the PT_LOAD segments' physical range.
    EntryOutsideImage {
        /// The entry point.
        entry: u32,
        /// Lowest `p_paddr` of the PT_LOAD segments.
        start: u64,
        /// Highest `p_paddr + p_memsz` of the PT_LOAD segments.
        end: u64,
    },
}

impl From<ImageError> for NoteError {
    fn from(e: ImageError) -> Self {
        Self::Elf(e)
    }
}

impl core::fmt::Display for NoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "{e}"),
            Self::RegionOutsideFile { region } => write!(f, "{region} lies outside the file"),
            Self::Truncated { region, offset } => write!(
                f,
                "ELF note at file offset {offset:#x} runs past the end of {region}"
            ),
            Self::TooManyNotes => write!(f, "more than {MAX_TOTAL_NOTES} ELF notes"),
            Self::BadNote { note, problem } => write!(f, "bad {note} note: {problem}"),
            Self::NoXenNotes => f.write_str("no Xen ELF notes"),
            Self::NoPhys32Entry => f.write_str("no XEN_ELFNOTE_PHYS32_ENTRY note"),
            Self::EntryOutsideImage { entry, start, end } => write!(
                f,
                "XEN_ELFNOTE_PHYS32_ENTRY {entry:#x} is outside the loaded image \
                 [{start:#x}, {end:#x})"
            ),
        }
    }
}

impl core::error::Error for NoteError {}

/// `XEN_ELFNOTE_PHYS32_RELOC`: the kernel can relocate its PVH entry path.
///
/// The payload is up to three `u32`, in this order; a missing one keeps Xen's
/// x86 default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysReloc {
    /// Required start alignment (`None`: the largest PT_LOAD `p_align` if at
    /// least 4 KiB, else 2 MiB).
    pub align: Option<u32>,
    /// Lowest address for the start of the image (default 0).
    pub min: u32,
    /// Highest address for the last byte of the image (default `0xffff_ffff`).
    pub max: u32,
}

/// What the Xen ELF notes of an image say (libelf's `elf_dom_parms`, the
/// fields that matter to an HVM/PVH guest). A note given twice keeps its last
/// value, as in libelf; unknown note types are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XenNotes<'a> {
    /// Notes named "Xen" found (0: none).
    pub count: usize,
    /// Whether they came from SHT_NOTE sections (libelf reads sections only
    /// when the PT_NOTE segments hold no Xen note).
    pub from_sections: bool,
    /// `XEN_ELFNOTE_PHYS32_ENTRY`: the PVH entry point (32-bit, paging off).
    pub phys32_entry: Option<u32>,
    /// `XEN_ELFNOTE_PHYS32_RELOC`.
    pub phys32_reloc: Option<PhysReloc>,
    /// `XEN_ELFNOTE_GUEST_OS` ("linux").
    pub guest_os: Option<&'a str>,
    /// `XEN_ELFNOTE_GUEST_VERSION` ("2.6").
    pub guest_version: Option<&'a str>,
    /// `XEN_ELFNOTE_XEN_VERSION` ("xen-3.0").
    pub xen_version: Option<&'a str>,
    /// `XEN_ELFNOTE_LOADER` ("generic").
    pub loader: Option<&'a str>,
    /// `XEN_ELFNOTE_FEATURES`, the raw string (`|`-separated, `!` = required).
    pub features: Option<&'a str>,
    /// `XEN_ELFNOTE_PAE_MODE` ("yes").
    pub pae_mode: Option<&'a str>,
    /// `XEN_ELFNOTE_SUPPORTED_FEATURES`, the raw submap-0 bitmap.
    pub supported_features_note: Option<u32>,
    /// Feature submap 0 the kernel supports: `SUPPORTED_FEATURES` ORed with
    /// every feature `FEATURES` names (libelf's `f_supported[0]`).
    pub supported_features: u32,
    /// Feature submap 0 the kernel requires: the `!` features of `FEATURES`
    /// (libelf's `f_required[0]`).
    pub required_features: u32,
    /// `XEN_ELFNOTE_ENTRY`: the PV entry point (virtual).
    pub pv_entry: Option<u64>,
    /// `XEN_ELFNOTE_HYPERCALL_PAGE` (virtual).
    pub hypercall_page: Option<u64>,
    /// `XEN_ELFNOTE_VIRT_BASE`.
    pub virt_base: Option<u64>,
    /// `XEN_ELFNOTE_PADDR_OFFSET`.
    pub paddr_offset: Option<u64>,
}

/// The name of a Xen note type, for messages (`XEN_ELFNOTE_...`).
pub fn note_name(ty: u32) -> &'static str {
    match ty {
        en::XEN_ELFNOTE_INFO => "XEN_ELFNOTE_INFO",
        en::XEN_ELFNOTE_ENTRY => "XEN_ELFNOTE_ENTRY",
        en::XEN_ELFNOTE_HYPERCALL_PAGE => "XEN_ELFNOTE_HYPERCALL_PAGE",
        en::XEN_ELFNOTE_VIRT_BASE => "XEN_ELFNOTE_VIRT_BASE",
        en::XEN_ELFNOTE_PADDR_OFFSET => "XEN_ELFNOTE_PADDR_OFFSET",
        en::XEN_ELFNOTE_XEN_VERSION => "XEN_ELFNOTE_XEN_VERSION",
        en::XEN_ELFNOTE_GUEST_OS => "XEN_ELFNOTE_GUEST_OS",
        en::XEN_ELFNOTE_GUEST_VERSION => "XEN_ELFNOTE_GUEST_VERSION",
        en::XEN_ELFNOTE_LOADER => "XEN_ELFNOTE_LOADER",
        en::XEN_ELFNOTE_PAE_MODE => "XEN_ELFNOTE_PAE_MODE",
        en::XEN_ELFNOTE_FEATURES => "XEN_ELFNOTE_FEATURES",
        en::XEN_ELFNOTE_BSD_SYMTAB => "XEN_ELFNOTE_BSD_SYMTAB",
        en::XEN_ELFNOTE_HV_START_LOW => "XEN_ELFNOTE_HV_START_LOW",
        en::XEN_ELFNOTE_L1_MFN_VALID => "XEN_ELFNOTE_L1_MFN_VALID",
        en::XEN_ELFNOTE_SUSPEND_CANCEL => "XEN_ELFNOTE_SUSPEND_CANCEL",
        en::XEN_ELFNOTE_INIT_P2M => "XEN_ELFNOTE_INIT_P2M",
        en::XEN_ELFNOTE_MOD_START_PFN => "XEN_ELFNOTE_MOD_START_PFN",
        en::XEN_ELFNOTE_SUPPORTED_FEATURES => "XEN_ELFNOTE_SUPPORTED_FEATURES",
        en::XEN_ELFNOTE_PHYS32_ENTRY => "XEN_ELFNOTE_PHYS32_ENTRY",
        en::XEN_ELFNOTE_PHYS32_RELOC => "XEN_ELFNOTE_PHYS32_RELOC",
        _ => "unknown Xen",
    }
}

/// The feature names `XEN_ELFNOTE_FEATURES` may use (libelf's `elf_xen_feature_names`).
const FEATURE_NAMES: [(&str, u32); 7] = [
    ("writable_page_tables", xf::XENFEAT_WRITABLE_PAGE_TABLES),
    (
        "writable_descriptor_tables",
        xf::XENFEAT_WRITABLE_DESCRIPTOR_TABLES,
    ),
    (
        "auto_translated_physmap",
        xf::XENFEAT_AUTO_TRANSLATED_PHYSMAP,
    ),
    ("supervisor_mode_kernel", xf::XENFEAT_SUPERVISOR_MODE_KERNEL),
    ("pae_pgdir_above_4gb", xf::XENFEAT_PAE_PGDIR_ABOVE_4GB),
    ("hvm_callback_vector", xf::XENFEAT_HVM_CALLBACK_VECTOR),
    ("dom0", xf::XENFEAT_DOM0),
];

/// Parses a `XEN_ELFNOTE_FEATURES` string into (supported, required) submap-0
/// bitmaps, as libelf's `elf_xen_parse_features`: `a|!b` supports `a` and
/// supports and requires `b`. An unknown supported name is ignored; an
/// unknown required one is an error (its name is returned).
pub fn parse_features(features: &str) -> Result<(u32, u32), String> {
    let (mut supported, mut required) = (0u32, 0u32);
    for name in features.split('|') {
        let (req, name) = match name.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, name),
        };
        match FEATURE_NAMES.iter().find(|(n, _)| *n == name) {
            Some(&(_, bit)) => {
                supported |= xf::bit(bit);
                if req {
                    required |= xf::bit(bit);
                }
            }
            None if req => return Err(String::from(name)),
            None => {}
        }
    }
    Ok((supported, required))
}

/// libelf's `elf_note_numeric`: a 1, 2, 4 or 8-byte little-endian payload.
fn numeric(desc: &[u8]) -> Option<u64> {
    match desc.len() {
        1 | 2 | 4 | 8 => Some(desc.iter().rev().fold(0, |acc, &b| (acc << 8) | b as u64)),
        _ => None,
    }
}

/// Word `i` of a payload of `u32`s (libelf's `elf_note_numeric_array(.., 4, i)`).
fn word(desc: &[u8], i: usize) -> Option<u32> {
    let b = desc.get(i * 4..i * 4 + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A string payload: up to its first NUL (or all of it), as UTF-8.
fn string(ty: u32, desc: &[u8]) -> Result<&str, NoteError> {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    core::str::from_utf8(&desc[..end]).map_err(|_| NoteError::BadNote {
        note: note_name(ty),
        problem: NoteProblem::NotUtf8,
    })
}

/// Records one Xen note (libelf's `elf_xen_parse_note`).
fn record<'a>(notes: &mut XenNotes<'a>, ty: u32, desc: &'a [u8]) -> Result<(), NoteError> {
    let bad = |problem| NoteError::BadNote {
        note: note_name(ty),
        problem,
    };
    // libelf reads a numeric payload of another size as 0.
    let num = || numeric(desc).unwrap_or(0);
    match ty {
        en::XEN_ELFNOTE_PHYS32_ENTRY => {
            let v = numeric(desc).ok_or(bad(NoteProblem::NumericSize(desc.len() as u32)))?;
            let v = u32::try_from(v).map_err(|_| bad(NoteProblem::Above4G(v)))?;
            notes.phys32_entry = Some(v);
        }
        en::XEN_ELFNOTE_PHYS32_RELOC => {
            if !desc.len().is_multiple_of(4) {
                return Err(bad(NoteProblem::NotWords(desc.len() as u32)));
            }
            notes.phys32_reloc = Some(PhysReloc {
                align: word(desc, 0),
                min: word(desc, 1).unwrap_or(0),
                max: word(desc, 2).unwrap_or(u32::MAX),
            });
        }
        en::XEN_ELFNOTE_GUEST_OS => notes.guest_os = Some(string(ty, desc)?),
        en::XEN_ELFNOTE_GUEST_VERSION => notes.guest_version = Some(string(ty, desc)?),
        en::XEN_ELFNOTE_XEN_VERSION => notes.xen_version = Some(string(ty, desc)?),
        en::XEN_ELFNOTE_LOADER => notes.loader = Some(string(ty, desc)?),
        en::XEN_ELFNOTE_PAE_MODE => notes.pae_mode = Some(string(ty, desc)?),
        en::XEN_ELFNOTE_FEATURES => {
            let s = string(ty, desc)?;
            let (sup, req) =
                parse_features(s).map_err(|n| bad(NoteProblem::UnknownRequiredFeature(n)))?;
            notes.features = Some(s);
            notes.supported_features |= sup;
            notes.required_features |= req;
        }
        en::XEN_ELFNOTE_SUPPORTED_FEATURES => {
            // XENFEAT_NR_SUBMAPS is 1: only word 0, and only from a payload of words.
            let v = if desc.len().is_multiple_of(4) {
                word(desc, 0).unwrap_or(0)
            } else {
                0
            };
            notes.supported_features_note = Some(v);
            notes.supported_features |= v;
        }
        en::XEN_ELFNOTE_ENTRY => notes.pv_entry = Some(num()),
        en::XEN_ELFNOTE_HYPERCALL_PAGE => notes.hypercall_page = Some(num()),
        en::XEN_ELFNOTE_VIRT_BASE => notes.virt_base = Some(num()),
        en::XEN_ELFNOTE_PADDR_OFFSET => notes.paddr_offset = Some(num()),
        // INFO, BSD_SYMTAB, HV_START_LOW, L1_MFN_VALID, SUSPEND_CANCEL,
        // INIT_P2M, MOD_START_PFN: PV-only; unknown types: skipped, as libelf does.
        _ => {}
    }
    Ok(())
}

/// `(x + 3) & !3` without overflow (`x` is a `u32` widened).
fn align4(x: u64) -> u64 {
    (x + 3) & !3
}

/// Walks the notes in `[start, start + size)` of the file (libelf's
/// `elf_xen_parse_notes`), recording those named "Xen"; returns how many.
fn walk_notes<'a>(
    image: &'a [u8],
    region: NoteRegion,
    start: u64,
    size: u64,
    total: &mut usize,
    notes: &mut XenNotes<'a>,
) -> Result<usize, NoteError> {
    let end = start
        .checked_add(size)
        .filter(|&e| e <= image.len() as u64)
        .ok_or(NoteError::RegionOutsideFile { region })?;
    let mut found = 0;
    let mut pos = start;
    while pos < end {
        if *total >= MAX_TOTAL_NOTES {
            return Err(NoteError::TooManyNotes);
        }
        *total += 1;
        let truncated = NoteError::Truncated {
            region,
            offset: pos,
        };
        if end - pos < NOTE_HEADER {
            return Err(truncated);
        }
        // In the file (end <= len), so these fit usize.
        let p = pos as usize;
        let word_at =
            |o: usize| u32::from_le_bytes([image[o], image[o + 1], image[o + 2], image[o + 3]]);
        let namesz = word_at(p) as u64;
        let descsz = word_at(p + 4) as u64;
        let ty = word_at(p + 8);
        let name_off = pos + NOTE_HEADER;
        let desc_off = name_off + align4(namesz);
        if name_off + namesz > end || desc_off + descsz > end {
            return Err(truncated);
        }
        let name = &image[name_off as usize..(name_off + namesz) as usize];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == en::XEN_ELFNOTE_NAME {
            let desc = &image[desc_off as usize..(desc_off + descsz) as usize];
            record(notes, ty, desc)?;
            found += 1;
        }
        pos = desc_off + align4(descsz);
    }
    Ok(found)
}

/// The bytes of one ELF note as a PT_NOTE segment holds it: `namesz`, `descsz`, `type`, then
/// `name` with its NUL (none when `name` is empty) and `desc`, each padded to 4 bytes. The
/// inverse of what [`xen_notes`] reads, for building test images.
pub fn encode_note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
    let namesz = if name.is_empty() { 0 } else { name.len() + 1 };
    let mut v = Vec::new();
    v.extend_from_slice(&(namesz as u32).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(name);
    if namesz > 0 {
        v.push(0);
    }
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// Reads the Xen ELF notes of an ELF32 i386 or ELF64 x86-64 image, as libelf's
/// `elf_xen_parse` does for an HVM guest: the notes of every PT_NOTE segment
/// (those with `p_offset` 0 skipped, as libelf does for old binutils), and
/// only if they hold no note named "Xen", those of every SHT_NOTE section.
///
/// Every note must lie inside its segment or section and every segment or
/// section inside the file; a bad one is an error, never a panic. An image
/// without Xen notes is not an error here (`count` is 0).
pub fn xen_notes(image: &[u8]) -> Result<XenNotes<'_>, NoteError> {
    let h = ElfHeader::parse(image)?;
    let mut notes = XenNotes::default();
    let mut total = 0;
    for i in 0..h.phnum {
        let ph = h.program_header(image, i)?;
        if ph.p_type != PT_NOTE || ph.offset == 0 {
            continue;
        }
        let region = NoteRegion::Segment(i as u16);
        notes.count += walk_notes(image, region, ph.offset, ph.filesz, &mut total, &mut notes)?;
    }
    if notes.count == 0 {
        // Section 0 is the null section.
        for i in 1..h.shnum {
            let sh = h.section_header(image, i)?;
            if sh.sh_type != SHT_NOTE {
                continue;
            }
            let region = NoteRegion::Section(i as u16);
            notes.count += walk_notes(image, region, sh.offset, sh.size, &mut total, &mut notes)?;
        }
        notes.from_sections = notes.count > 0;
    }
    Ok(notes)
}

/// The PVH entry point of an image: its `XEN_ELFNOTE_PHYS32_ENTRY`, checked
/// (as libelf's `elf_xen_addr_calc_check`) to lie inside the physical range of
/// its PT_LOAD segments. The error says why there is none: bad headers or
/// notes ([`NoteError::BadNote`] names the note), [`NoteError::NoXenNotes`],
/// [`NoteError::NoPhys32Entry`], [`NoteError::EntryOutsideImage`].
pub fn pvh_entry(image: &[u8]) -> Result<u32, NoteError> {
    let notes = xen_notes(image)?;
    if notes.count == 0 {
        return Err(NoteError::NoXenNotes);
    }
    let entry = notes.phys32_entry.ok_or(NoteError::NoPhys32Entry)?;
    let h = ElfHeader::parse(image)?;
    let (mut start, mut end) = (u64::MAX, 0u64);
    for i in 0..h.phnum {
        let ph = h.program_header(image, i)?;
        if ph.p_type == PT_LOAD {
            start = start.min(ph.paddr);
            end = end.max(ph.paddr.saturating_add(ph.memsz));
        }
    }
    if start == u64::MAX {
        return Err(NoteError::Elf(ImageError::Empty));
    }
    if u64::from(entry) < start || u64::from(entry) >= end {
        return Err(NoteError::EntryOutsideImage { entry, start, end });
    }
    Ok(entry)
}

/// One region of the guest's memory map (an e820 entry: `kind` is the e820
/// type, which the `XEN_HVM_MEMMAP_TYPE_*` values equal). The fields are those
/// of `loader::E820Entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// The e820 / `XEN_HVM_MEMMAP_TYPE_*` type.
    pub kind: u32,
}

/// One boot module already placed in guest memory (the first is the initrd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootModule<'a> {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// Size in bytes.
    pub size: u64,
    /// Its command line, if any (at most [`CMDLINE_MAX`] bytes, no NUL).
    pub cmdline: Option<&'a str>,
}

/// What goes into the PVH boot-info area.
#[derive(Clone, Copy, Debug)]
pub struct StartInfoSpec<'a> {
    /// Guest-physical address of the area (8-byte aligned); the
    /// `hvm_start_info` is its first 56 bytes.
    pub base: u64,
    /// Bytes available at `base`.
    pub max_size: usize,
    /// The kernel command line (at most [`CMDLINE_MAX`] bytes, no NUL).
    pub cmdline: &'a str,
    /// Boot modules, the initrd first.
    pub modules: &'a [BootModule<'a>],
    /// Guest-physical address of the ACPI RSDP (0: none).
    pub rsdp_paddr: u64,
    /// The memory map (`memmap_paddr` is 0 when it is empty).
    pub memmap: &'a [MemRegion],
}

/// The boot-info area, ready to copy at [`StartInfoSpec::base`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfoImage {
    /// The bytes to write at `base` (their length is what the area uses).
    pub bytes: Vec<u8>,
    /// GPA of the `hvm_start_info` (EBX at the PVH entry): `base`.
    pub start_info_gpa: u64,
    /// GPA of the NUL-terminated command line.
    pub cmdline_gpa: u64,
    /// GPA of the module list (0 without modules).
    pub modlist_gpa: u64,
    /// GPA of the memory map (0 when it is empty).
    pub memmap_gpa: u64,
}

/// Why the boot-info area cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// `base` is not 8-byte aligned.
    Misaligned {
        /// The base given.
        base: u64,
    },
    /// A command line is longer than [`CMDLINE_MAX`] bytes.
    CmdlineTooLong {
        /// `None`: the kernel's; `Some(i)`: module `i`'s.
        module: Option<usize>,
        /// Its length.
        len: usize,
    },
    /// A command line contains a NUL byte.
    CmdlineHasNul {
        /// `None`: the kernel's; `Some(i)`: module `i`'s.
        module: Option<usize>,
    },
    /// The area needs more than `max_size` bytes.
    TooBig {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        max: usize,
    },
    /// The area (or a module) would wrap around the address space.
    AddressOverflow,
    /// A module overlaps the boot-info area.
    ModuleOverlap {
        /// The module's index.
        index: usize,
    },
}

impl core::fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let which = |f: &mut core::fmt::Formatter<'_>, m: &Option<usize>| match m {
            None => f.write_str("the command line"),
            Some(i) => write!(f, "the command line of module {i}"),
        };
        match self {
            Self::Misaligned { base } => {
                write!(f, "PVH boot-info area at {base:#x} is not 8-byte aligned")
            }
            Self::CmdlineTooLong { module, len } => {
                which(f, module)?;
                write!(f, " is {len} bytes (at most {CMDLINE_MAX})")
            }
            Self::CmdlineHasNul { module } => {
                which(f, module)?;
                f.write_str(" contains a NUL byte")
            }
            Self::TooBig { needed, max } => write!(
                f,
                "PVH boot-info area needs {needed} bytes, {max} available"
            ),
            Self::AddressOverflow => f.write_str("PVH boot-info area or module wraps around"),
            Self::ModuleOverlap { index } => {
                write!(f, "module {index} overlaps the PVH boot-info area")
            }
        }
    }
}

impl core::error::Error for StartInfoError {}

/// Checks a command line; returns the bytes it takes with its NUL, rounded up to 8.
fn cmdline_room(s: &str, module: Option<usize>) -> Result<usize, StartInfoError> {
    if s.len() > CMDLINE_MAX {
        return Err(StartInfoError::CmdlineTooLong {
            module,
            len: s.len(),
        });
    }
    if s.as_bytes().contains(&0) {
        return Err(StartInfoError::CmdlineHasNul { module });
    }
    Ok((s.len() + 1).next_multiple_of(8))
}

/// Lays out the PVH boot-info area (Xen's `docs/misc/pvh.pandoc`,
/// `arch-x86/hvm/start_info.h`), in the order libxenguest's `bootlate_hvm`
/// uses, each part 8-byte aligned and none overlapping:
///
/// | offset | what |
/// | --- | --- |
/// | 0 | `struct hvm_start_info` (56 bytes): magic, version 1, flags 0 |
/// | 56 | the command line, NUL-terminated |
/// | next | `struct hvm_modlist_entry[nr_modules]` |
/// | next | each module's NUL-terminated command line |
/// | next | `struct hvm_memmap_table_entry[memmap_entries]` |
///
/// An error if `base` is misaligned, a command line is too long or holds a
/// NUL, a module overlaps the area, or the whole does not fit `max_size`.
pub fn build_start_info(spec: &StartInfoSpec<'_>) -> Result<StartInfoImage, StartInfoError> {
    if !spec.base.is_multiple_of(8) {
        return Err(StartInfoError::Misaligned { base: spec.base });
    }
    let info_size = core::mem::size_of::<HvmStartInfo>();
    let cmdline_off = info_size;
    let modlist_off = cmdline_off + cmdline_room(spec.cmdline, None)?;
    let mut mod_cmdline_off = Vec::with_capacity(spec.modules.len());
    let mut off = modlist_off + spec.modules.len() * core::mem::size_of::<HvmModlistEntry>();
    for (i, m) in spec.modules.iter().enumerate() {
        match m.cmdline {
            Some(c) => {
                mod_cmdline_off.push(Some(off));
                off += cmdline_room(c, Some(i))?;
            }
            None => mod_cmdline_off.push(None),
        }
    }
    let memmap_off = off;
    let total = memmap_off + spec.memmap.len() * core::mem::size_of::<HvmMemmapTableEntry>();
    if total > spec.max_size {
        return Err(StartInfoError::TooBig {
            needed: total,
            max: spec.max_size,
        });
    }
    let area_end = spec
        .base
        .checked_add(total as u64)
        .ok_or(StartInfoError::AddressOverflow)?;
    for (index, m) in spec.modules.iter().enumerate() {
        let end = m
            .gpa
            .checked_add(m.size)
            .ok_or(StartInfoError::AddressOverflow)?;
        if m.gpa < area_end && spec.base < end {
            return Err(StartInfoError::ModuleOverlap { index });
        }
    }
    let too_many = StartInfoError::TooBig {
        needed: total,
        max: spec.max_size,
    };
    let nr_modules = u32::try_from(spec.modules.len()).map_err(|_| too_many)?;
    let memmap_entries = u32::try_from(spec.memmap.len()).map_err(|_| too_many)?;
    let gpa = |off: usize| spec.base + off as u64;

    let mut bytes = alloc::vec![0u8; total];
    bytes[cmdline_off..cmdline_off + spec.cmdline.len()].copy_from_slice(spec.cmdline.as_bytes());
    for (i, m) in spec.modules.iter().enumerate() {
        let entry = HvmModlistEntry {
            paddr: m.gpa,
            size: m.size,
            cmdline_paddr: mod_cmdline_off[i].map_or(0, gpa),
            reserved: 0,
        };
        let at = modlist_off + i * core::mem::size_of::<HvmModlistEntry>();
        bytes[at..at + core::mem::size_of::<HvmModlistEntry>()].copy_from_slice(entry.as_bytes());
        if let (Some(c), Some(o)) = (m.cmdline, mod_cmdline_off[i]) {
            bytes[o..o + c.len()].copy_from_slice(c.as_bytes());
        }
    }
    for (i, r) in spec.memmap.iter().enumerate() {
        let entry = HvmMemmapTableEntry {
            addr: r.addr,
            size: r.size,
            r#type: r.kind,
            reserved: 0,
        };
        let at = memmap_off + i * core::mem::size_of::<HvmMemmapTableEntry>();
        bytes[at..at + core::mem::size_of::<HvmMemmapTableEntry>()]
            .copy_from_slice(entry.as_bytes());
    }
    let modlist_gpa = if spec.modules.is_empty() {
        0
    } else {
        gpa(modlist_off)
    };
    let memmap_gpa = if spec.memmap.is_empty() {
        0
    } else {
        gpa(memmap_off)
    };
    let info = HvmStartInfo {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        flags: 0,
        nr_modules,
        modlist_paddr: modlist_gpa,
        cmdline_paddr: gpa(cmdline_off),
        rsdp_paddr: spec.rsdp_paddr,
        memmap_paddr: memmap_gpa,
        memmap_entries,
        reserved: 0,
    };
    bytes[..info_size].copy_from_slice(info.as_bytes());
    Ok(StartInfoImage {
        bytes,
        start_info_gpa: spec.base,
        cmdline_gpa: gpa(cmdline_off),
        modlist_gpa,
        memmap_gpa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{parse_elf, ElfClass, EM_386, EM_X86_64};
    use alloc::format;
    use alloc::vec;
    use guest_abi::start_info::XEN_HVM_MEMMAP_TYPE_RAM;
    use zerocopy::FromBytes;

    const LOAD: u64 = 0x10_0000;

    use super::encode_note as note;

    fn xen(ty: u32, desc: &[u8]) -> Vec<u8> {
        note(b"Xen", ty, desc)
    }

    fn entry_note(entry: u64, size: usize) -> Vec<u8> {
        xen(en::XEN_ELFNOTE_PHYS32_ENTRY, &entry.to_le_bytes()[..size])
    }

    /// A test image: one PT_LOAD of 64 KiB at [`LOAD`] (16 file bytes), a
    /// PT_NOTE per blob of `seg_notes`, an SHT_NOTE section per blob of
    /// `sec_notes` (after a null section).
    struct Img {
        class: ElfClass,
        seg_notes: Vec<Vec<u8>>,
        sec_notes: Vec<Vec<u8>>,
    }

    /// Positions of the headers in a built image, for tests that corrupt them.
    struct Layout {
        /// Offset of each PT_NOTE program header.
        note_ph: Vec<usize>,
        /// Offset of each note blob.
        note_data: Vec<usize>,
    }

    fn put(v: &mut [u8], off: usize, n: usize, val: u64) {
        v[off..off + n].copy_from_slice(&val.to_le_bytes()[..n]);
    }

    fn build(img: &Img) -> (Vec<u8>, Layout) {
        let e64 = img.class == ElfClass::Elf64;
        let (eh, phs, shs) = if e64 { (64, 56, 64) } else { (52, 32, 40) };
        let nph = 1 + img.seg_notes.len();
        let mut out = vec![0u8; (eh + phs * nph).next_multiple_of(16)];
        let load_off = out.len();
        out.extend_from_slice(&[0xAA; 16]);
        let mut offs = Vec::new();
        for blob in img.seg_notes.iter().chain(&img.sec_notes) {
            out.resize(out.len().next_multiple_of(4), 0);
            offs.push(out.len());
            out.extend_from_slice(blob);
        }
        let nsh = if img.sec_notes.is_empty() {
            0
        } else {
            1 + img.sec_notes.len()
        };
        out.resize(out.len().next_multiple_of(8), 0);
        let shoff = out.len();
        out.resize(shoff + shs * nsh, 0);

        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = if e64 { 2 } else { 1 };
        out[5] = 1;
        out[6] = 1;
        let w = if e64 { 8 } else { 4 };
        put(&mut out, 16, 2, 2);
        put(&mut out, 18, 2, if e64 { 62 } else { 3 });
        put(&mut out, 24, w, LOAD);
        put(&mut out, 24 + w, w, eh as u64);
        put(
            &mut out,
            24 + 2 * w,
            w,
            if nsh > 0 { shoff as u64 } else { 0 },
        );
        let f = 24 + 3 * w + 4; // e_ehsize
        put(&mut out, f, 2, eh as u64);
        put(&mut out, f + 2, 2, phs as u64);
        put(&mut out, f + 4, 2, nph as u64);
        put(&mut out, f + 6, 2, shs as u64);
        put(&mut out, f + 8, 2, nsh as u64);

        let phdr = |out: &mut Vec<u8>, i: usize, ty: u32, off: usize, size: usize, memsz: u64| {
            let ph = eh + i * phs;
            put(out, ph, 4, ty as u64);
            if e64 {
                put(out, ph + 4, 4, 5);
                put(out, ph + 8, 8, off as u64);
                put(out, ph + 16, 8, LOAD);
                put(out, ph + 24, 8, LOAD);
                put(out, ph + 32, 8, size as u64);
                put(out, ph + 40, 8, memsz);
                put(out, ph + 48, 8, 0x1000);
            } else {
                put(out, ph + 4, 4, off as u64);
                put(out, ph + 8, 4, LOAD);
                put(out, ph + 12, 4, LOAD);
                put(out, ph + 16, 4, size as u64);
                put(out, ph + 20, 4, memsz);
                put(out, ph + 24, 4, 5);
                put(out, ph + 28, 4, 0x1000);
            }
        };
        phdr(&mut out, 0, PT_LOAD, load_off, 16, 0x1_0000);
        let mut note_ph = Vec::new();
        for (i, blob) in img.seg_notes.iter().enumerate() {
            phdr(
                &mut out,
                1 + i,
                PT_NOTE,
                offs[i],
                blob.len(),
                blob.len() as u64,
            );
            note_ph.push(eh + (1 + i) * phs);
        }
        for (i, blob) in img.sec_notes.iter().enumerate() {
            let sh = shoff + (1 + i) * shs;
            let off = offs[img.seg_notes.len() + i] as u64;
            put(&mut out, sh + 4, 4, SHT_NOTE as u64);
            if e64 {
                put(&mut out, sh + 24, 8, off);
                put(&mut out, sh + 32, 8, blob.len() as u64);
            } else {
                put(&mut out, sh + 16, 4, off);
                put(&mut out, sh + 20, 4, blob.len() as u64);
            }
        }
        (
            out,
            Layout {
                note_ph,
                note_data: offs,
            },
        )
    }

    fn seg(class: ElfClass, notes: &[Vec<u8>]) -> Vec<u8> {
        build(&Img {
            class,
            seg_notes: vec![notes.concat()],
            sec_notes: vec![],
        })
        .0
    }

    #[test]
    fn elf32_entry_from_pt_note_4_bytes() {
        let img = seg(ElfClass::Elf32, &[entry_note(LOAD + 0x40, 4)]);
        let e = parse_elf(&img, 32 << 20).unwrap();
        assert_eq!(
            (e.class, e.machine, e.entry),
            (ElfClass::Elf32, EM_386, LOAD)
        );
        assert_eq!(e.segments.len(), 1);
        assert_eq!(e.segments[0].gpa, LOAD);
        assert_eq!(e.segments[0].mem_size, 0x1_0000);
        assert_eq!(e.segments[0].file_size, 16);
        assert_eq!(&img[e.segments[0].offset..][..16], &[0xAA; 16]);
        assert_eq!(pvh_entry(&img), Ok(0x10_0040));
        let n = xen_notes(&img).unwrap();
        assert_eq!((n.count, n.from_sections), (1, false));
    }

    #[test]
    fn elf64_notes_as_linux_carries_them() {
        let img = seg(
            ElfClass::Elf64,
            &[
                xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0"),
                xen(en::XEN_ELFNOTE_GUEST_VERSION, b"2.6\0"),
                xen(en::XEN_ELFNOTE_XEN_VERSION, b"xen-3.0\0"),
                xen(
                    en::XEN_ELFNOTE_VIRT_BASE,
                    &0xffff_ffff_8000_0000u64.to_le_bytes(),
                ),
                xen(
                    en::XEN_ELFNOTE_FEATURES,
                    b"!writable_page_tables|pae_pgdir_above_4gb|no_such_feature",
                ),
                xen(en::XEN_ELFNOTE_SUPPORTED_FEATURES, &0x8801u32.to_le_bytes()),
                xen(en::XEN_ELFNOTE_PAE_MODE, b"yes\0"),
                xen(en::XEN_ELFNOTE_LOADER, b"generic\0"),
                xen(
                    en::XEN_ELFNOTE_L1_MFN_VALID,
                    &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                ),
                xen(en::XEN_ELFNOTE_PADDR_OFFSET, &0u64.to_le_bytes()),
                note(b"GNU", 3, &[0x2c; 20]),
                note(b"Linux", 0x100, &[0; 4]),
                entry_note(0x10_0850, 8),
                xen(
                    en::XEN_ELFNOTE_PHYS32_RELOC,
                    [0x20_0000u32, 0x100_0000, u32::MAX].as_bytes(),
                ),
                xen(0x77, b"unknown type, skipped"),
            ],
        );
        let e = parse_elf(&img, 32 << 20).unwrap();
        assert_eq!((e.class, e.machine), (ElfClass::Elf64, EM_X86_64));
        let n = xen_notes(&img).unwrap();
        assert_eq!(n.count, 13);
        assert!(!n.from_sections);
        assert_eq!(n.phys32_entry, Some(0x10_0850));
        assert_eq!(n.guest_os, Some("linux"));
        assert_eq!(n.guest_version, Some("2.6"));
        assert_eq!(n.xen_version, Some("xen-3.0"));
        assert_eq!(n.loader, Some("generic"));
        assert_eq!(n.pae_mode, Some("yes"));
        assert_eq!(
            n.features,
            Some("!writable_page_tables|pae_pgdir_above_4gb|no_such_feature")
        );
        assert_eq!(n.supported_features_note, Some(0x8801));
        assert_eq!(n.supported_features, 0x8801 | 1 | 1 << 4);
        assert_eq!(n.required_features, 1);
        assert_eq!(n.virt_base, Some(0xffff_ffff_8000_0000));
        assert_eq!(n.paddr_offset, Some(0));
        assert_eq!(
            n.phys32_reloc,
            Some(PhysReloc {
                align: Some(0x20_0000),
                min: 0x100_0000,
                max: u32::MAX
            })
        );
        assert_eq!(pvh_entry(&img), Ok(0x10_0850));
    }

    #[test]
    fn numeric_payloads_of_1_2_4_8_bytes() {
        for (size, v) in [(1, 0x42), (2, 0x1234), (4, 0x10_8000), (8, 0x10_8000)] {
            for class in [ElfClass::Elf32, ElfClass::Elf64] {
                let img = seg(class, &[entry_note(v, size)]);
                let n = xen_notes(&img).unwrap();
                assert_eq!(n.phys32_entry, Some(v as u32), "{size} bytes");
            }
        }
        let img = seg(ElfClass::Elf64, &[entry_note(LOAD, 3)]);
        assert_eq!(
            pvh_entry(&img),
            Err(NoteError::BadNote {
                note: "XEN_ELFNOTE_PHYS32_ENTRY",
                problem: NoteProblem::NumericSize(3)
            })
        );
        // Another numeric note of an odd size is 0, as libelf reads it.
        let img = seg(
            ElfClass::Elf64,
            &[
                xen(en::XEN_ELFNOTE_VIRT_BASE, &[1, 2, 3]),
                entry_note(LOAD, 4),
            ],
        );
        assert_eq!(xen_notes(&img).unwrap().virt_base, Some(0));
        // A relocation note of fewer words keeps the defaults.
        let img = seg(
            ElfClass::Elf64,
            &[xen(en::XEN_ELFNOTE_PHYS32_RELOC, &0x1000u32.to_le_bytes())],
        );
        assert_eq!(
            xen_notes(&img).unwrap().phys32_reloc,
            Some(PhysReloc {
                align: Some(0x1000),
                min: 0,
                max: u32::MAX
            })
        );
        let img = seg(
            ElfClass::Elf64,
            &[xen(en::XEN_ELFNOTE_PHYS32_RELOC, &[0; 6])],
        );
        assert!(matches!(
            xen_notes(&img),
            Err(NoteError::BadNote {
                problem: NoteProblem::NotWords(6),
                ..
            })
        ));
    }

    #[test]
    fn later_note_wins_and_other_names_are_skipped() {
        let img = seg(
            ElfClass::Elf64,
            &[
                entry_note(LOAD + 1, 4),
                note(
                    b"GNU",
                    en::XEN_ELFNOTE_PHYS32_ENTRY,
                    &(LOAD + 2).to_le_bytes(),
                ),
                note(
                    b"Xenx",
                    en::XEN_ELFNOTE_PHYS32_ENTRY,
                    &(LOAD + 3).to_le_bytes(),
                ),
                note(b"", en::XEN_ELFNOTE_PHYS32_ENTRY, &(LOAD + 4).to_le_bytes()),
                entry_note(LOAD + 5, 8),
                note(
                    b"GNU",
                    en::XEN_ELFNOTE_PHYS32_ENTRY,
                    &(LOAD + 6).to_le_bytes(),
                ),
            ],
        );
        let n = xen_notes(&img).unwrap();
        assert_eq!((n.count, n.phys32_entry), (2, Some(0x10_0005)));
    }

    #[test]
    fn notes_in_a_section_only() {
        for class in [ElfClass::Elf32, ElfClass::Elf64] {
            let (img, _) = build(&Img {
                class,
                seg_notes: vec![],
                sec_notes: vec![note(b"GNU", 3, &[1; 20]), entry_note(LOAD + 0x10, 4)],
            });
            let n = xen_notes(&img).unwrap();
            assert_eq!((n.count, n.from_sections), (1, true));
            assert_eq!(pvh_entry(&img), Ok(0x10_0010));
        }
        // Sections are read when the segments hold no Xen note ...
        let (img, _) = build(&Img {
            class: ElfClass::Elf64,
            seg_notes: vec![note(b"GNU", 3, &[1; 20])],
            sec_notes: vec![entry_note(LOAD + 0x20, 8)],
        });
        assert_eq!(pvh_entry(&img), Ok(0x10_0020));
        // ... and only then.
        let (img, _) = build(&Img {
            class: ElfClass::Elf64,
            seg_notes: vec![xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0")],
            sec_notes: vec![entry_note(LOAD + 0x20, 8)],
        });
        assert_eq!(pvh_entry(&img), Err(NoteError::NoPhys32Entry));
    }

    #[test]
    fn missing_notes_say_why() {
        let (img, _) = build(&Img {
            class: ElfClass::Elf64,
            seg_notes: vec![],
            sec_notes: vec![],
        });
        assert_eq!(xen_notes(&img).unwrap(), XenNotes::default());
        assert_eq!(pvh_entry(&img), Err(NoteError::NoXenNotes));
        let img = seg(ElfClass::Elf64, &[note(b"GNU", 3, &[1; 20])]);
        assert_eq!(pvh_entry(&img), Err(NoteError::NoXenNotes));
        let img = seg(
            ElfClass::Elf32,
            &[xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0")],
        );
        let e = pvh_entry(&img).unwrap_err();
        assert_eq!(e, NoteError::NoPhys32Entry);
        assert_eq!(
            format!("kernel 'test-guest.elf': {e}"),
            "kernel 'test-guest.elf': no XEN_ELFNOTE_PHYS32_ENTRY note"
        );
        assert_eq!(format!("{}", NoteError::NoXenNotes), "no Xen ELF notes");
        // A PT_NOTE with p_offset 0 is skipped, as libelf does.
        let (mut img, l) = build(&Img {
            class: ElfClass::Elf64,
            seg_notes: vec![entry_note(LOAD, 4)],
            sec_notes: vec![],
        });
        put(&mut img, l.note_ph[0] + 8, 8, 0);
        assert_eq!(pvh_entry(&img), Err(NoteError::NoXenNotes));
        assert_eq!(
            pvh_entry(b"\x7fELF not really"),
            Err(NoteError::Elf(ImageError::NotElf64))
        );
    }

    #[test]
    fn entry_must_fit_32_bits_and_the_image() {
        let img = seg(ElfClass::Elf64, &[entry_note(0x1_0000_0000, 8)]);
        let e = pvh_entry(&img).unwrap_err();
        assert_eq!(
            e,
            NoteError::BadNote {
                note: "XEN_ELFNOTE_PHYS32_ENTRY",
                problem: NoteProblem::Above4G(0x1_0000_0000)
            }
        );
        assert_eq!(
            format!("{e}"),
            "bad XEN_ELFNOTE_PHYS32_ENTRY note: 0x100000000 is above 4 GiB"
        );
        let img = seg(ElfClass::Elf64, &[entry_note(0xFFFF_FFFF, 8)]);
        assert_eq!(
            pvh_entry(&img),
            Err(NoteError::EntryOutsideImage {
                entry: 0xFFFF_FFFF,
                start: LOAD,
                end: LOAD + 0x1_0000
            })
        );
        let img = seg(ElfClass::Elf32, &[entry_note(LOAD + 0x1_0000, 4)]);
        assert!(matches!(
            pvh_entry(&img),
            Err(NoteError::EntryOutsideImage { .. })
        ));
        let img = seg(ElfClass::Elf32, &[entry_note(LOAD - 1, 4)]);
        assert!(matches!(
            pvh_entry(&img),
            Err(NoteError::EntryOutsideImage { .. })
        ));
    }

    #[test]
    fn bad_strings_and_features() {
        let img = seg(
            ElfClass::Elf64,
            &[xen(en::XEN_ELFNOTE_GUEST_OS, b"\xff\xfe\0")],
        );
        assert_eq!(
            xen_notes(&img),
            Err(NoteError::BadNote {
                note: "XEN_ELFNOTE_GUEST_OS",
                problem: NoteProblem::NotUtf8
            })
        );
        // No NUL: the whole payload.
        let img = seg(ElfClass::Elf64, &[xen(en::XEN_ELFNOTE_LOADER, b"generic")]);
        assert_eq!(xen_notes(&img).unwrap().loader, Some("generic"));
        let img = seg(
            ElfClass::Elf64,
            &[xen(en::XEN_ELFNOTE_FEATURES, b"a|!frob\0")],
        );
        let e = xen_notes(&img).unwrap_err();
        assert_eq!(
            format!("{e}"),
            "bad XEN_ELFNOTE_FEATURES note: requires unknown feature 'frob'"
        );
        assert_eq!(
            parse_features("!dom0|hvm_callback_vector||auto_translated_physmap"),
            Ok((1 << 11 | 1 << 8 | 1 << 2, 1 << 11))
        );
    }

    #[test]
    fn hostile_note_headers_are_errors() {
        let good = || {
            build(&Img {
                class: ElfClass::Elf64,
                seg_notes: vec![entry_note(LOAD, 4)],
                sec_notes: vec![],
            })
        };
        let region = NoteRegion::Segment(1);
        // namesz or descsz huge.
        for field in [0, 4] {
            for v in [0xFFFF_FFFFu64, 0xFFFF_FFFC, 0x1000] {
                let (mut img, l) = good();
                put(&mut img, l.note_data[0] + field, 4, v);
                assert_eq!(
                    xen_notes(&img),
                    Err(NoteError::Truncated {
                        region,
                        offset: l.note_data[0] as u64
                    }),
                    "field {field} = {v:#x}"
                );
            }
        }
        // Leftover bytes too short for a header.
        let (mut img, l) = good();
        put(&mut img, l.note_ph[0] + 32, 8, 20 + 8);
        img.extend_from_slice(&[0; 8]);
        assert!(matches!(xen_notes(&img), Err(NoteError::Truncated { .. })));
        // The segment runs past the file, or wraps.
        let (mut img, l) = good();
        let len = img.len() as u64;
        put(&mut img, l.note_ph[0] + 32, 8, len);
        assert_eq!(
            xen_notes(&img),
            Err(NoteError::RegionOutsideFile { region })
        );
        let (mut img, l) = good();
        put(&mut img, l.note_ph[0] + 8, 8, u64::MAX - 4);
        assert_eq!(
            xen_notes(&img),
            Err(NoteError::RegionOutsideFile { region })
        );
        assert_eq!(
            format!("{}", NoteError::RegionOutsideFile { region }),
            "PT_NOTE segment 1 lies outside the file"
        );
        // A section table outside the file, read as the fallback.
        let (mut img, _) = build(&Img {
            class: ElfClass::Elf32,
            seg_notes: vec![],
            sec_notes: vec![entry_note(LOAD, 4)],
        });
        put(&mut img, 32, 4, 0xFFFF_FFF0);
        assert_eq!(xen_notes(&img), Err(NoteError::Elf(ImageError::Truncated)));
        // A program header count past the file.
        let (mut img, _) = good();
        put(&mut img, 56, 2, 0xFFFF);
        assert_eq!(xen_notes(&img), Err(NoteError::Elf(ImageError::Truncated)));
        assert_eq!(parse_elf(&img, 1 << 30), Err(ImageError::Truncated));
    }

    #[test]
    fn too_many_notes() {
        let empty = note(b"", 0, b"");
        let img = seg(ElfClass::Elf64, &vec![empty; MAX_TOTAL_NOTES + 1]);
        assert_eq!(xen_notes(&img), Err(NoteError::TooManyNotes));
        let empty = note(b"", 0, b"");
        let mut notes = vec![empty; MAX_TOTAL_NOTES - 1];
        notes.push(entry_note(LOAD, 4));
        assert_eq!(pvh_entry(&seg(ElfClass::Elf64, &notes)), Ok(LOAD as u32));
    }

    /// Every one-byte corruption and every truncation of a valid image is an
    /// answer, never a panic.
    #[test]
    fn corrupted_images_never_panic() {
        for class in [ElfClass::Elf32, ElfClass::Elf64] {
            let (img, _) = build(&Img {
                class,
                seg_notes: vec![[entry_note(LOAD, 4), note(b"GNU", 3, &[1; 8])].concat()],
                sec_notes: vec![xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0")],
            });
            for len in 0..img.len() {
                let _ = pvh_entry(&img[..len]);
                let _ = parse_elf(&img[..len], 1 << 30);
            }
            for i in 0..img.len() {
                for v in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                    let mut m = img.clone();
                    m[i] = v;
                    let _ = pvh_entry(&m);
                    let _ = xen_notes(&m);
                    let _ = parse_elf(&m, u64::MAX);
                }
            }
        }
    }

    fn spec<'a>(modules: &'a [BootModule<'a>], memmap: &'a [MemRegion]) -> StartInfoSpec<'a> {
        StartInfoSpec {
            base: 0x6000,
            max_size: 4096,
            cmdline: "console=hvc0 root=/dev/ram0",
            modules,
            rsdp_paddr: 0xE_0000,
            memmap,
        }
    }

    fn at(img: &StartInfoImage, gpa: u64, len: usize) -> &[u8] {
        let off = (gpa - img.start_info_gpa) as usize;
        &img.bytes[off..off + len]
    }

    #[test]
    fn start_info_decodes_back() {
        let modules = [
            BootModule {
                gpa: 0x200_0000,
                size: 0x12_3456,
                cmdline: None,
            },
            BootModule {
                gpa: 0x300_0000,
                size: 0x100,
                cmdline: Some("second module"),
            },
        ];
        let memmap = [
            MemRegion {
                addr: 0,
                size: 0x9_F000,
                kind: XEN_HVM_MEMMAP_TYPE_RAM,
            },
            MemRegion {
                addr: 0xF_0000,
                size: 0x1_0000,
                kind: 2,
            },
            MemRegion {
                addr: 0x10_0000,
                size: 0x7F0_0000,
                kind: 1,
            },
        ];
        let s = spec(&modules, &memmap);
        let img = build_start_info(&s).unwrap();
        assert_eq!(img.start_info_gpa, 0x6000);
        let (info, _) = HvmStartInfo::read_from_prefix(&img.bytes).unwrap();
        assert_eq!(info.magic, XEN_HVM_START_MAGIC_VALUE);
        assert_eq!((info.version, info.flags, info.reserved), (1, 0, 0));
        assert_eq!(info.rsdp_paddr, 0xE_0000);
        assert_eq!(info.cmdline_paddr, img.cmdline_gpa);
        assert_eq!(info.modlist_paddr, img.modlist_gpa);
        assert_eq!(info.memmap_paddr, img.memmap_gpa);
        assert_eq!(info.nr_modules, 2);
        assert_eq!(info.memmap_entries, 3);
        let cmd = s.cmdline.len();
        assert_eq!(
            at(&img, info.cmdline_paddr, cmd + 1),
            b"console=hvc0 root=/dev/ram0\0"
        );

        let mods =
            <[HvmModlistEntry]>::ref_from_bytes_with_elems(at(&img, info.modlist_paddr, 2 * 32), 2)
                .unwrap();
        assert_eq!((mods[0].paddr, mods[0].size), (0x200_0000, 0x12_3456));
        assert_eq!((mods[0].cmdline_paddr, mods[0].reserved), (0, 0));
        assert_eq!((mods[1].paddr, mods[1].size), (0x300_0000, 0x100));
        assert_eq!(at(&img, mods[1].cmdline_paddr, 14), b"second module\0");

        let map = <[HvmMemmapTableEntry]>::ref_from_bytes_with_elems(
            at(&img, info.memmap_paddr, 3 * 24),
            3,
        )
        .unwrap();
        for (e, r) in map.iter().zip(&memmap) {
            assert_eq!(
                (e.addr, e.size, e.r#type, e.reserved),
                (r.addr, r.size, r.kind, 0)
            );
        }

        // 8-byte aligned, in order, no overlap, all inside the bytes.
        let parts = [
            (img.start_info_gpa, 56),
            (info.cmdline_paddr, cmd as u64 + 1),
            (info.modlist_paddr, 64),
            (mods[1].cmdline_paddr, 14),
            (info.memmap_paddr, 72),
        ];
        for w in parts.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{parts:x?}");
        }
        for (gpa, _) in parts {
            assert!(gpa.is_multiple_of(8));
        }
        let (last, len) = parts[4];
        assert_eq!(last + len, 0x6000 + img.bytes.len() as u64);
    }

    #[test]
    fn start_info_without_modules_or_memmap() {
        let img = build_start_info(&spec(&[], &[])).unwrap();
        let info = HvmStartInfo::read_from_bytes(&img.bytes[..56]).unwrap();
        assert_eq!((info.nr_modules, info.modlist_paddr), (0, 0));
        assert_eq!((info.memmap_entries, info.memmap_paddr), (0, 0));
        assert_eq!(info.cmdline_paddr, 0x6000 + 56);
        assert_eq!(img.bytes.len(), 56 + 32);
        // An empty command line is an empty string.
        let img = build_start_info(&StartInfoSpec {
            cmdline: "",
            ..spec(&[], &[])
        })
        .unwrap();
        assert_eq!(img.bytes.len(), 64);
        assert_eq!(img.bytes[56], 0);
        // The longest command line.
        let long = "x".repeat(CMDLINE_MAX);
        let img = build_start_info(&StartInfoSpec {
            cmdline: &long,
            ..spec(&[], &[])
        })
        .unwrap();
        assert_eq!(at(&img, img.cmdline_gpa, CMDLINE_MAX + 1)[CMDLINE_MAX], 0);
        assert_eq!(img.bytes.len(), 56 + 2048);
    }

    #[test]
    fn start_info_errors() {
        let m = |gpa, size| BootModule {
            gpa,
            size,
            cmdline: None,
        };
        let err = |s: StartInfoSpec<'_>| build_start_info(&s).unwrap_err();
        assert_eq!(
            err(StartInfoSpec {
                base: 0x6004,
                ..spec(&[], &[])
            }),
            StartInfoError::Misaligned { base: 0x6004 }
        );
        assert_eq!(
            err(StartInfoSpec {
                max_size: 80,
                ..spec(&[], &[])
            }),
            StartInfoError::TooBig {
                needed: 88,
                max: 80
            }
        );
        let long = "x".repeat(CMDLINE_MAX + 1);
        assert_eq!(
            err(StartInfoSpec {
                cmdline: &long,
                ..spec(&[], &[])
            }),
            StartInfoError::CmdlineTooLong {
                module: None,
                len: 2048
            }
        );
        let mods = [
            m(0x10_0000, 1),
            BootModule {
                gpa: 0x20_0000,
                size: 1,
                cmdline: Some("a\0b"),
            },
        ];
        let e = err(spec(&mods, &[]));
        assert_eq!(e, StartInfoError::CmdlineHasNul { module: Some(1) });
        assert_eq!(
            format!("{e}"),
            "the command line of module 1 contains a NUL byte"
        );
        for (gpa, size) in [(0x5000, 0x1001), (0x6050, 8), (0x6000, 1)] {
            let mods = [m(0x10_0000, 16), m(gpa, size)];
            assert_eq!(
                err(spec(&mods, &[])),
                StartInfoError::ModuleOverlap { index: 1 }
            );
        }
        let ok = [m(0x5000, 0x1000), m(0x6098, 8)];
        assert!(build_start_info(&spec(&ok, &[])).is_ok());
        let mods = [m(u64::MAX - 1, 2)];
        assert_eq!(err(spec(&mods, &[])), StartInfoError::AddressOverflow);
        assert_eq!(
            err(StartInfoSpec {
                base: u64::MAX - 7,
                ..spec(&[], &[])
            }),
            StartInfoError::AddressOverflow
        );
        let memmap = vec![
            MemRegion {
                addr: 0,
                size: 1,
                kind: 1
            };
            200
        ];
        assert!(matches!(
            err(spec(&[], &memmap)),
            StartInfoError::TooBig { .. }
        ));
    }

    /// Debian's Linux `vmlinux` (`XENOLITH_VMLINUX`, else `build/guest/vmlinux`):
    /// `cargo test -p hypercalls -- --ignored --nocapture debian_vmlinux`.
    #[test]
    #[ignore = "needs a Linux vmlinux"]
    fn debian_vmlinux() {
        let path = std::env::var("XENOLITH_VMLINUX").unwrap_or_else(|_| {
            std::string::String::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../build/guest/vmlinux"
            ))
        });
        let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let elf = parse_elf(&image, 1 << 40).unwrap();
        std::println!(
            "{path}: {:?} machine {} e_entry {:#x}",
            elf.class,
            elf.machine,
            elf.entry
        );
        for s in &elf.segments {
            std::println!(
                "  PT_LOAD paddr {:#010x} vaddr {:#x} filesz {:#x} memsz {:#x} flags {} align {:#x}",
                s.gpa, s.vaddr, s.file_size, s.mem_size, s.flags, s.align
            );
        }
        let notes = xen_notes(&image).unwrap();
        std::println!("  {notes:#x?}");
        let entry = pvh_entry(&image).unwrap();
        std::println!("  PVH entry {entry:#x}");
        assert_eq!(notes.guest_os, Some("linux"));
    }
}
