//! `elf_notes`: the kernel-image parsers ([`hypercalls::builder::parse_elf`],
//! [`hypercalls::pvh::xen_notes`], [`hypercalls::pvh::pvh_entry`]) on any image, and
//! [`hypercalls::pvh::build_start_info`] on any boot-info specification.
//!
//! The image comes from a user's configuration (`kernel =`, `firmware =`), so it is as hostile
//! as a guest. The input is either raw (first byte a multiple of 4: the second byte picks the
//! RAM size, the rest is the image) or a program that builds an ELF32 or ELF64 image (PT_LOAD
//! segments anywhere, PT_NOTE segments and SHT_NOTE sections of Xen and other notes with
//! payloads of every size, up to more notes than libelf reads) and then corrupts it: header,
//! program header, section header and note header fields set to edge values, bytes
//! overwritten, the file cut short. The rest of the input (in raw mode, the image's own
//! bytes) specifies a PVH boot-info area: base, room, command lines (long, with a NUL, not
//! UTF-8 once lossily read), modules (overlapping the area, wrapping around) and a memory map.
//!
//! Checked besides "no panic": an accepted image has every PT_LOAD's file range inside the
//! input and every segment inside `[IMAGE_MIN_GPA, ram_bytes)`, and the segments, entry, class
//! and machine are those of its headers (read here independently); the Xen notes' strings are
//! slices of the image and their feature bitmaps are consistent; `pvh_entry` gives the
//! `XEN_ELFNOTE_PHYS32_ENTRY` that `xen_notes` read and it lies inside the PT_LOADs' physical
//! range (lowest `p_paddr` to highest `p_paddr + p_memsz`, libelf's bound, which an entry in a
//! hole between two PT_LOADs passes; with one PT_LOAD, inside it), and fails as `xen_notes`
//! does when that fails; an accepted boot-info area fits its room and decodes (zerocopy) to an
//! `hvm_start_info` whose command line, module list (and the modules' command lines) and memory
//! map lie inside the area, 8-byte aligned and disjoint, and hold what was asked for. Every
//! error renders.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guest_abi::elfnote as en;
use guest_abi::start_info::{
    HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE,
};
use hypercalls::builder::{
    parse_elf, ElfClass, CMDLINE_MAX, EM_386, EM_X86_64, IMAGE_MIN_GPA, PT_LOAD, PT_NOTE, SHT_NOTE,
};
use hypercalls::pvh::{
    build_start_info, parse_features, pvh_entry, xen_notes, BootModule, MemRegion, StartInfoError,
    StartInfoSpec, MAX_TOTAL_NOTES,
};
use zerocopy::FromBytes;

use crate::Input;

/// RAM sizes a domain might have (and edges of the check).
const RAMS: &[u64] = &[
    32 << 20,
    8 << 20,
    1 << 30,
    4 << 30,
    IMAGE_MIN_GPA,
    IMAGE_MIN_GPA + 0x1000,
    0,
    u64::MAX,
];

/// Physical load addresses: where kernels go, the edges of what is allowed, wrapping.
const PADDRS: &[u64] = &[
    IMAGE_MIN_GPA,
    0x100_0000,
    0x20_0000,
    IMAGE_MIN_GPA - 0x1000,
    0,
    0x1_0000_0000,
    0xFFFF_F000,
    u64::MAX - 0xFFF,
];

/// Segment memory sizes.
const MEMSZS: &[u64] = &[0x1_0000, 0x40_0000, 0x1000, 0, 1, 0x1_0000_0000, u64::MAX];

/// Names of notes: Xen's (also with extra NULs in `namesz`), others, near misses.
const NAMES: &[&[u8]] = &[
    b"Xen", b"Xen", b"Xen", b"Xen\0\0", b"GNU", b"Linux", b"", b"Xe", b"XenX", b"xen",
];

/// Strings for the string notes.
const STRINGS: &[&[u8]] = &[
    b"linux\0",
    b"2.6\0",
    b"xen-3.0\0",
    b"generic\0",
    b"yes\0",
    b"bimodal",
    b"!writable_page_tables|pae_pgdir_above_4gb|no_such_feature",
    b"hvm_callback_vector|!dom0",
    b"!no_such_feature",
    b"|!|",
    b"",
    b"\0",
    b"\xff\xfe",
    b"lin\xc3",
];

/// Edge values a corruption writes into a header field (besides ones relative to the file).
const EDGES: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0xFFFF_FFFC,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 11,
];

use hypercalls::pvh::encode_note as note;

/// One program header of an image to build.
#[derive(Clone, Debug)]
enum Part {
    /// A PT_LOAD of `file` bytes (0x90) in the file, `memsz` in memory, at `paddr`.
    Load {
        /// `p_paddr` (and `p_vaddr`).
        paddr: u64,
        /// `p_memsz`.
        memsz: u64,
        /// `p_filesz`.
        file: usize,
    },
    /// A PT_NOTE holding these notes.
    Note(Vec<u8>),
    /// Another type (`PT_DYNAMIC`, `PT_GNU_STACK`...), no bytes.
    Other(u32),
}

/// A built image and where its fields are, for corruptions.
struct Built {
    /// The file.
    bytes: Vec<u8>,
    /// `(offset, width)` of every header field that says where or how big something is.
    fields: Vec<(usize, usize)>,
}

fn put(v: &mut [u8], off: usize, n: usize, val: u64) {
    v[off..off + n].copy_from_slice(&val.to_le_bytes()[..n]);
}

/// Builds an image: the ELF header, the program header table (one entry per part), the parts'
/// bytes, then a section header table (a null section and one SHT_NOTE per blob of
/// `sections`) if there are sections.
fn build_elf(e64: bool, machine: u16, entry: u64, parts: &[Part], sections: &[Vec<u8>]) -> Built {
    let (eh, phs, shs) = if e64 { (64, 56, 64) } else { (52, 32, 40) };
    let w = if e64 { 8 } else { 4 };
    let mut out = vec![0u8; eh + phs * parts.len()];
    let mut fields = Vec::new();
    // The parts' bytes.
    let mut at = Vec::new();
    for p in parts {
        out.resize(out.len().next_multiple_of(8), 0);
        at.push(out.len());
        match p {
            Part::Load { file, .. } => out.resize(out.len() + file, 0x90),
            Part::Note(blob) => out.extend_from_slice(blob),
            Part::Other(_) => {}
        }
    }
    let mut sec_at = Vec::new();
    for blob in sections {
        out.resize(out.len().next_multiple_of(4), 0);
        sec_at.push(out.len());
        out.extend_from_slice(blob);
    }
    let nsh = if sections.is_empty() {
        0
    } else {
        1 + sections.len()
    };
    out.resize(out.len().next_multiple_of(8), 0);
    let shoff = out.len();
    out.resize(shoff + shs * nsh, 0);

    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = if e64 { 2 } else { 1 };
    out[5] = 1;
    out[6] = 1;
    put(&mut out, 16, 2, 2); // ET_EXEC
    put(&mut out, 18, 2, machine.into());
    put(&mut out, 20, 4, 1);
    put(&mut out, 24, w, entry);
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
    put(&mut out, f + 4, 2, parts.len() as u64);
    put(&mut out, f + 6, 2, shs as u64);
    put(&mut out, f + 8, 2, nsh as u64);
    fields.extend([(24, w), (24 + w, w), (24 + 2 * w, w)]);
    fields.extend([(f + 2, 2), (f + 4, 2), (f + 6, 2), (f + 8, 2)]);

    for (i, p) in parts.iter().enumerate() {
        let ph = eh + i * phs;
        let (ty, off, paddr, filesz, memsz, align) = match p {
            Part::Load { paddr, memsz, file } => {
                (PT_LOAD, at[i], *paddr, *file as u64, *memsz, 0x20_0000)
            }
            Part::Note(blob) => (PT_NOTE, at[i], 0, blob.len() as u64, blob.len() as u64, 4),
            Part::Other(ty) => (*ty, 0, 0, 0, 0, 8),
        };
        // (p_type, p_offset, p_paddr, p_filesz, p_memsz) offsets in the entry.
        let (o_off, o_paddr, o_filesz, o_memsz) = if e64 {
            (8, 24, 32, 40)
        } else {
            (4, 12, 16, 20)
        };
        put(&mut out, ph, 4, ty.into());
        put(&mut out, ph + o_off, w, off as u64);
        put(&mut out, ph + o_paddr - w, w, paddr); // p_vaddr
        put(&mut out, ph + o_paddr, w, paddr);
        put(&mut out, ph + o_filesz, w, filesz);
        put(&mut out, ph + o_memsz, w, memsz);
        if e64 {
            put(&mut out, ph + 4, 4, 7);
            put(&mut out, ph + 48, 8, align);
        } else {
            put(&mut out, ph + 24, 4, 7);
            put(&mut out, ph + 28, 4, align);
        }
        fields.extend([
            (ph, 4),
            (ph + o_off, w),
            (ph + o_paddr, w),
            (ph + o_filesz, w),
            (ph + o_memsz, w),
        ]);
        if let Part::Note(blob) = p {
            note_fields(blob, at[i], &mut fields);
        }
    }
    for (i, blob) in sections.iter().enumerate() {
        let sh = shoff + (1 + i) * shs;
        let (o_off, o_size) = if e64 { (24, 32) } else { (16, 20) };
        put(&mut out, sh + 4, 4, SHT_NOTE.into());
        put(&mut out, sh + o_off, w, sec_at[i] as u64);
        put(&mut out, sh + o_size, w, blob.len() as u64);
        fields.extend([(sh + 4, 4), (sh + o_off, w), (sh + o_size, w)]);
        note_fields(blob, sec_at[i], &mut fields);
    }
    Built { bytes: out, fields }
}

/// The `namesz`, `descsz` and `type` fields of the first notes of a blob at `base`.
fn note_fields(blob: &[u8], base: usize, fields: &mut Vec<(usize, usize)>) {
    let word = |o: usize| {
        blob.get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut pos = 0;
    for _ in 0..8 {
        if pos + 12 > blob.len() {
            break;
        }
        fields.extend([(base + pos, 4), (base + pos + 4, 4), (base + pos + 8, 4)]);
        let (namesz, descsz) = (word(pos), word(pos + 4));
        pos += 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
    }
}

/// A PT_LOAD from choices.
fn load(u: &mut Input<'_>) -> Part {
    let memsz = if u.ratio(7, 8) {
        u.pick(MEMSZS)
    } else {
        u.any()
    };
    let paddr = match u.range(0u8, 7) {
        0..=2 => u.pick(&[IMAGE_MIN_GPA, 0x100_0000]),
        3 | 4 => u.pick(PADDRS),
        5 => IMAGE_MIN_GPA + (u64::from(u.any::<u16>()) << 12),
        6 => (32u64 << 20).wrapping_sub(memsz),
        _ => u.any(),
    };
    let file = match u.range(0u8, 3) {
        0 => 16,
        1 => 0,
        2 => usize::try_from(memsz.min(256)).unwrap_or(256),
        _ => u.range(0usize, 300),
    };
    Part::Load { paddr, memsz, file }
}

/// A value for `XEN_ELFNOTE_PHYS32_ENTRY`: inside a PT_LOAD, at its end, between two, below
/// all of them, anything.
fn entry_value(u: &mut Input<'_>, loads: &[(u64, u64)]) -> u64 {
    let any_load = |u: &mut Input<'_>| loads.get(u.range(0, loads.len().max(1) - 1)).copied();
    match u.range(0u8, 7) {
        0..=2 => match any_load(u) {
            Some((paddr, memsz)) => paddr.wrapping_add(u.range(0, memsz.saturating_sub(1))),
            None => IMAGE_MIN_GPA,
        },
        3 => any_load(u).map_or(0, |(paddr, memsz)| paddr.wrapping_add(memsz)),
        4 => {
            // Between the end of one and the start of another.
            let lo = loads.iter().map(|l| l.0.saturating_add(l.1)).min();
            let hi = loads.iter().map(|l| l.0).max();
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo < hi => lo + (hi - lo) / 2,
                _ => u.any::<u32>().into(),
            }
        }
        5 => any_load(u).map_or(0, |(paddr, _)| paddr.wrapping_sub(1)),
        6 => u.any::<u32>().into(),
        _ => u.any(),
    }
}

/// A blob of notes from choices.
fn notes(u: &mut Input<'_>, loads: &[(u64, u64)]) -> Vec<u8> {
    let mut blob = Vec::new();
    if u.ratio(1, 64) {
        // Empty notes (12 zero bytes each) up to and past libelf's limit, then a Xen one.
        let n = u.pick(&[MAX_TOTAL_NOTES - 2, MAX_TOTAL_NOTES - 1, MAX_TOTAL_NOTES]);
        blob.resize(n * 12, 0);
    }
    for _ in 0..u.range(0u8, 8) {
        let name = u.pick(NAMES);
        let ty = if u.ratio(7, 8) {
            u.range(0, en::XEN_ELFNOTE_PHYS32_RELOC + 1)
        } else {
            u.any()
        };
        let mut desc = Vec::new();
        match ty {
            _ if u.ratio(1, 8) => desc.extend_from_slice(u.bytes(24)),
            en::XEN_ELFNOTE_PHYS32_ENTRY
            | en::XEN_ELFNOTE_ENTRY
            | en::XEN_ELFNOTE_HYPERCALL_PAGE
            | en::XEN_ELFNOTE_VIRT_BASE
            | en::XEN_ELFNOTE_PADDR_OFFSET => {
                let size = u.pick(&[4usize, 8, 4, 8, 1, 2, 3, 0, 16]);
                let v = entry_value(u, loads);
                let bytes = v.to_le_bytes();
                desc.extend_from_slice(&bytes[..size.min(8)]);
                desc.resize(size, 0);
            }
            en::XEN_ELFNOTE_PHYS32_RELOC | en::XEN_ELFNOTE_SUPPORTED_FEATURES => {
                for _ in 0..u.range(0u8, 4) {
                    let word: u32 = if u.ratio(1, 2) {
                        u.pick(&[0x20_0000, 0x100_0000, 0x1000, 0, u32::MAX, 0x8801])
                    } else {
                        u.any()
                    };
                    desc.extend_from_slice(&word.to_le_bytes());
                }
                if u.ratio(1, 8) {
                    desc.push(u.any());
                }
            }
            _ => desc.extend_from_slice(u.pick(STRINGS)),
        }
        let mut n = note(name, ty, &desc);
        if u.ratio(1, 64) {
            // Unpadded: the next note starts where libelf does not look.
            n.truncate(n.len() - (4 - desc.len() % 4) % 4);
        }
        blob.extend_from_slice(&n);
    }
    if u.ratio(1, 2) {
        // What makes it a PVH kernel.
        let size = u.pick(&[4usize, 8]);
        let v = entry_value(u, loads).to_le_bytes();
        blob.extend_from_slice(&note(b"Xen", en::XEN_ELFNOTE_PHYS32_ENTRY, &v[..size]));
    }
    blob
}

/// An image from choices, then corrupted.
fn structured(u: &mut Input<'_>) -> Vec<u8> {
    let e64 = u.ratio(1, 2);
    let machine = match u.range(0u8, 15) {
        0 => u.any(),
        1 => {
            if e64 {
                EM_386
            } else {
                EM_X86_64
            }
        }
        _ if e64 => EM_X86_64,
        _ => EM_386,
    };
    let mut parts = Vec::new();
    for _ in 0..u.range(0u8, 3) {
        parts.push(load(u));
    }
    let loads: Vec<(u64, u64)> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Load { paddr, memsz, .. } => Some((*paddr, *memsz)),
            _ => None,
        })
        .collect();
    let entry = if u.ratio(3, 4) {
        loads.first().map_or(IMAGE_MIN_GPA, |l| l.0)
    } else {
        u.any()
    };
    for _ in 0..u.range(0u8, 3) {
        let blob = notes(u, &loads);
        let at = u.range(0, parts.len());
        parts.insert(at, Part::Note(blob));
    }
    if u.ratio(1, 8) {
        let ty = u.pick(&[2u32, 3, 6, 0x6474_e551, 0x6474_e552, 0]);
        let at = u.range(0, parts.len());
        parts.insert(at, Part::Other(ty));
    }
    let mut sections = Vec::new();
    if u.ratio(1, 4) {
        for _ in 0..u.range(1u8, 2) {
            sections.push(notes(u, &loads));
        }
    }
    let Built { mut bytes, fields } = build_elf(e64, machine, entry, &parts, &sections);
    let corruptions = if u.ratio(1, 2) { 0 } else { u.range(1u8, 4) };
    for _ in 0..corruptions {
        if u.ratio(3, 4) && !fields.is_empty() {
            let (off, width) = fields[u.range(0, fields.len() - 1)];
            let len = bytes.len() as u64;
            let old = bytes[off..off + width]
                .iter()
                .rev()
                .fold(0u64, |a, &b| a << 8 | u64::from(b));
            let v = match u.range(0u8, 5) {
                0 | 1 => u.pick(EDGES),
                2 => u.pick(&[len, len - 1, len + 1, len - 12, len / 2]),
                3 => old.wrapping_add(u.range(0u64, 8)).wrapping_sub(4),
                4 => old ^ 1 << u.range(0u32, 8 * width as u32 - 1),
                _ => u.any(),
            };
            put(&mut bytes, off, width, v);
        } else {
            let data = u.bytes(16);
            let off = u.range(0, bytes.len().saturating_sub(1));
            let n = data.len().min(bytes.len() - off);
            bytes[off..off + n].copy_from_slice(&data[..n]);
        }
    }
    if u.ratio(1, 16) {
        let n = u.range(0, bytes.len());
        bytes.truncate(n);
    }
    bytes
}

/// One program header as read here (the oracle).
#[derive(Clone, Copy, Debug)]
struct Ph {
    p_type: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Little-endian field of `n` bytes at `off`, if inside.
fn field(b: &[u8], off: u64, n: usize) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    let s = b.get(off..off.checked_add(n)?)?;
    Some(s.iter().rev().fold(0, |a, &x| a << 8 | u64::from(x)))
}

/// The entry point and program headers of an image, read independently of `hypercalls` (from
/// the ELF specification): `None` if they are not all inside it.
fn program_headers(b: &[u8]) -> Option<(u64, Vec<Ph>)> {
    let e64 = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let w = if e64 { 8 } else { 4 };
    let entry = field(b, 24, w)?;
    let phoff = field(b, 24 + w as u64, w)?;
    let f = 24 + 3 * w as u64 + 4;
    let phentsize = field(b, f + 2, 2)?;
    let phnum = field(b, f + 4, 2)?;
    let mut v = Vec::new();
    for i in 0..phnum {
        let ph = phoff.checked_add(i * phentsize)?;
        let at = |o: u64, n: usize| field(b, ph.checked_add(o)?, n);
        v.push(if e64 {
            Ph {
                p_type: at(0, 4)? as u32,
                offset: at(8, 8)?,
                paddr: at(24, 8)?,
                filesz: at(32, 8)?,
                memsz: at(40, 8)?,
            }
        } else {
            Ph {
                p_type: at(0, 4)? as u32,
                offset: at(4, 4)?,
                paddr: at(12, 4)?,
                filesz: at(16, 4)?,
                memsz: at(20, 4)?,
            }
        });
    }
    Some((entry, v))
}

/// Whether `s` is a slice of `image`.
fn inside_image(image: &[u8], s: &str) -> bool {
    let r = image.as_ptr_range();
    let p = s.as_bytes().as_ptr_range();
    r.start <= p.start && p.end <= r.end
}

/// The image checks.
fn check_image(image: &[u8], ram_bytes: u64) {
    let headers = program_headers(image);
    let elf = parse_elf(image, ram_bytes);
    match &elf {
        Ok(e) => {
            assert!(!e.segments.is_empty());
            for s in &e.segments {
                let end = s.offset.checked_add(s.file_size);
                assert!(end.is_some_and(|e| e <= image.len()), "{s:x?}");
                let mem_end = s.gpa.checked_add(s.mem_size.max(s.file_size as u64));
                assert!(s.gpa >= IMAGE_MIN_GPA, "{s:x?}");
                assert!(
                    mem_end.is_some_and(|e| e <= ram_bytes),
                    "{s:x?} {ram_bytes:#x}"
                );
            }
            let (entry, phs) = headers
                .as_ref()
                .expect("accepted, headers outside the file");
            let loads: Vec<&Ph> = phs.iter().filter(|p| p.p_type == PT_LOAD).collect();
            assert_eq!(loads.len(), e.segments.len());
            for (p, s) in loads.iter().zip(&e.segments) {
                assert_eq!(
                    (p.paddr, p.offset, p.filesz, p.memsz),
                    (s.gpa, s.offset as u64, s.file_size as u64, s.mem_size)
                );
            }
            assert_eq!(e.entry, *entry);
            let class = if image[4] == 2 {
                ElfClass::Elf64
            } else {
                ElfClass::Elf32
            };
            assert_eq!(e.class, class);
            assert_eq!(u64::from(e.machine), field(image, 18, 2).unwrap_or(0));
            assert!(e.machine == EM_386 || e.machine == EM_X86_64);
        }
        Err(e) => assert!(!format!("{e}").is_empty()),
    }
    let notes = xen_notes(image);
    match &notes {
        Ok(n) => {
            assert!(n.count <= MAX_TOTAL_NOTES);
            assert!(!n.from_sections || n.count > 0);
            if n.count == 0 {
                assert_eq!(n, &hypercalls::pvh::XenNotes::default());
            }
            for s in [
                n.guest_os,
                n.guest_version,
                n.xen_version,
                n.loader,
                n.features,
                n.pae_mode,
            ]
            .into_iter()
            .flatten()
            {
                assert!(inside_image(image, s), "{s:?} is not from the image");
                assert!(!s.contains('\0'));
            }
            if let Some(f) = n.features {
                let (sup, req) = parse_features(f).expect("accepted FEATURES that do not parse");
                assert_eq!(n.supported_features & sup, sup);
                // FEATURES given twice: the last string, the bits of all (as libelf).
                assert_eq!(n.required_features & req, req);
            }
            assert_eq!(n.required_features & !n.supported_features, 0, "{n:?}");
            headers
                .as_ref()
                .expect("notes read, headers outside the file");
        }
        Err(e) => assert!(!format!("{e}").is_empty()),
    }
    match pvh_entry(image) {
        Ok(entry) => {
            let n = notes
                .as_ref()
                .expect("an entry from notes that do not parse");
            assert!(n.count > 0);
            assert_eq!(n.phys32_entry, Some(entry));
            let (_, phs) = headers
                .as_ref()
                .expect("an entry, headers outside the file");
            // Inside the PT_LOADs' physical range: from the lowest `p_paddr` to the highest
            // `p_paddr + p_memsz`, as libelf's `elf_xen_addr_calc_check` bounds it (and
            // `pvh_entry` documents). An entry in a hole between two PT_LOADs is accepted:
            // inside that range but inside no PT_LOAD.
            let e = u64::from(entry);
            let loads = || phs.iter().filter(|p| p.p_type == PT_LOAD);
            let start = loads().map(|p| p.paddr).min();
            let end = loads().map(|p| p.paddr.saturating_add(p.memsz)).max();
            assert!(
                start.is_some_and(|s| s <= e) && end.is_some_and(|end| e < end),
                "PVH entry {e:#x} outside the PT_LOADs: {phs:x?}"
            );
            // With one PT_LOAD, that range is the segment.
            if loads().count() == 1 {
                assert!(loads().any(|p| p.paddr <= e && e - p.paddr < p.memsz));
            }
            // An image the loader accepts is entered in the RAM it loads.
            if elf.is_ok() {
                assert!(
                    (IMAGE_MIN_GPA..ram_bytes).contains(&e),
                    "{e:#x} {ram_bytes:#x}"
                );
            }
        }
        Err(e) => {
            assert!(!format!("{e}").is_empty());
            if let Err(n) = &notes {
                assert_eq!(&e, n);
            }
        }
    }
}

/// A command line from choices.
fn cmdline(u: &mut Input<'_>) -> String {
    match u.range(0u8, 7) {
        0 => String::new(),
        1 | 2 => String::from(u.pick(&["console=hvc0", "root=/dev/xvda1 ro quiet", "initrd"])),
        3 => {
            let n = u.pick(&[CMDLINE_MAX, CMDLINE_MAX - 1, CMDLINE_MAX + 1, 4096, 7, 8]);
            "x".repeat(n)
        }
        4 => String::from("with\0nul"),
        _ => String::from_utf8_lossy(u.bytes(40)).into_owned(),
    }
}

/// The boot-info checks on one specification.
fn check_start_info(spec: &StartInfoSpec<'_>) {
    let img = match build_start_info(spec) {
        Ok(img) => img,
        Err(e) => {
            assert!(!format!("{e}").is_empty());
            assert_eq!(
                matches!(e, StartInfoError::Misaligned { .. }),
                !spec.base.is_multiple_of(8),
                "{e:?}"
            );
            return;
        }
    };
    let len = img.bytes.len();
    assert!(len <= spec.max_size, "{len} > {}", spec.max_size);
    assert_eq!(img.start_info_gpa, spec.base);
    let base = spec.base;
    let end = base.checked_add(len as u64).expect("the area wraps");
    // The offset of `[gpa, gpa + size)` in the area; panics unless it lies inside.
    let offset = |gpa: u64, size: u64, what: &str| -> usize {
        assert!(
            gpa >= base && gpa.checked_add(size).is_some_and(|e| e <= end),
            "{what} at {gpa:#x}+{size:#x} outside [{base:#x}, {end:#x})"
        );
        assert!(gpa.is_multiple_of(8), "{what} at {gpa:#x}");
        (gpa - base) as usize
    };
    // The NUL-terminated string at `gpa`.
    let string = |gpa: u64, what: &str| -> &[u8] {
        let o = offset(gpa, 1, what);
        let s = &img.bytes[o..];
        let n = s.iter().position(|&b| b == 0).expect("no NUL in the area");
        &s[..n]
    };
    let (info, _) = HvmStartInfo::read_from_prefix(&img.bytes).expect("no hvm_start_info");
    assert_eq!(info.magic, XEN_HVM_START_MAGIC_VALUE);
    assert_eq!((info.version, info.flags, info.reserved), (1, 0, 0));
    assert_eq!(info.rsdp_paddr, spec.rsdp_paddr);
    let mut parts = vec![(base, core::mem::size_of::<HvmStartInfo>() as u64)];

    assert_eq!(info.cmdline_paddr, img.cmdline_gpa);
    assert_eq!(
        string(info.cmdline_paddr, "cmdline"),
        spec.cmdline.as_bytes()
    );
    parts.push((info.cmdline_paddr, spec.cmdline.len() as u64 + 1));

    assert_eq!(info.nr_modules as usize, spec.modules.len());
    assert_eq!(info.modlist_paddr, img.modlist_gpa);
    if spec.modules.is_empty() {
        assert_eq!(info.modlist_paddr, 0);
    } else {
        let size = spec.modules.len() * core::mem::size_of::<HvmModlistEntry>();
        let o = offset(info.modlist_paddr, size as u64, "modlist");
        parts.push((info.modlist_paddr, size as u64));
        for (i, m) in spec.modules.iter().enumerate() {
            let at = o + i * core::mem::size_of::<HvmModlistEntry>();
            let e = HvmModlistEntry::read_from_prefix(&img.bytes[at..])
                .unwrap()
                .0;
            assert_eq!((e.paddr, e.size, e.reserved), (m.gpa, m.size, 0));
            match m.cmdline {
                None => assert_eq!(e.cmdline_paddr, 0),
                Some(c) => {
                    assert_eq!(string(e.cmdline_paddr, "module cmdline"), c.as_bytes());
                    parts.push((e.cmdline_paddr, c.len() as u64 + 1));
                }
            }
            // A module is not in the area.
            assert!(m.gpa >= end || m.gpa.saturating_add(m.size) <= base || m.size == 0);
        }
    }

    assert_eq!(info.memmap_entries as usize, spec.memmap.len());
    assert_eq!(info.memmap_paddr, img.memmap_gpa);
    if spec.memmap.is_empty() {
        assert_eq!(info.memmap_paddr, 0);
    } else {
        let size = spec.memmap.len() * core::mem::size_of::<HvmMemmapTableEntry>();
        let o = offset(info.memmap_paddr, size as u64, "memmap");
        parts.push((info.memmap_paddr, size as u64));
        for (i, r) in spec.memmap.iter().enumerate() {
            let at = o + i * core::mem::size_of::<HvmMemmapTableEntry>();
            let e = HvmMemmapTableEntry::read_from_prefix(&img.bytes[at..])
                .unwrap()
                .0;
            assert_eq!(
                (e.addr, e.size, e.r#type, e.reserved),
                (r.addr, r.size, r.kind, 0)
            );
        }
    }
    // Disjoint.
    parts.sort_unstable();
    for w in parts.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlap: {parts:x?}");
    }
}

/// A boot-info specification from choices, checked.
fn start_info(u: &mut Input<'_>) {
    let base = match u.range(0u8, 4) {
        0 | 1 => hypercalls::builder::BOOT_PARAMS_GPA,
        2 => u.pick(&[0, 4, 0x6000, u64::MAX - 7, u64::MAX - 0xFFF, 1 << 32]),
        _ => u.any::<u64>() & !7,
    };
    let max_size = match u.range(0u8, 3) {
        0 | 1 => 0x4000,
        2 => u.pick(&[0, 55, 56, 64, 88, 4096, usize::MAX]),
        _ => u.range(0, 0x3000),
    };
    let kernel_cmdline = cmdline(u);
    let nr_mods = if u.ratio(1, 32) {
        u.range(100usize, 700)
    } else {
        u.range(0usize, 3)
    };
    let mut mod_lines = Vec::new();
    let mut mods = Vec::new();
    for _ in 0..nr_mods {
        let gpa = match u.range(0u8, 4) {
            0 | 1 => 0x200_0000 + (u64::from(u.any::<u8>()) << 20),
            2 => base.wrapping_add(u.range(0u64, 0x100)),
            3 => u.pick(&[0, base.wrapping_sub(0x1000), u64::MAX - 0xF, u64::MAX]),
            _ => u.any(),
        };
        let size = if u.ratio(3, 4) {
            u.pick(&[0x12_3456, 0x1000, 0, 1, 0x1000_0000])
        } else {
            u.any()
        };
        mods.push((gpa, size));
        mod_lines.push(if u.ratio(1, 3) {
            Some(cmdline(u))
        } else {
            None
        });
    }
    let modules: Vec<BootModule<'_>> = mods
        .iter()
        .zip(&mod_lines)
        .map(|(&(gpa, size), c)| BootModule {
            gpa,
            size,
            cmdline: c.as_deref(),
        })
        .collect();
    let nr_map = if u.ratio(1, 32) {
        u.range(500usize, 1200)
    } else {
        u.range(0usize, 8)
    };
    let memmap: Vec<MemRegion> = (0..nr_map)
        .map(|i| MemRegion {
            addr: if u.ratio(3, 4) {
                (i as u64) << 20
            } else {
                u.any()
            },
            size: if u.ratio(3, 4) { 1 << 20 } else { u.any() },
            kind: u.range(1, 7),
        })
        .collect();
    let rsdp_paddr = if u.ratio(3, 4) { 0xF_FFE0 } else { u.any() };
    check_start_info(&StartInfoSpec {
        base,
        max_size,
        cmdline: &kernel_cmdline,
        modules: &modules,
        rsdp_paddr,
        memmap: &memmap,
    });
}

/// Runs one input.
pub fn run(data: &[u8]) {
    match data {
        [mode, ram, image @ ..] if mode % 4 == 0 => {
            check_image(image, RAMS[*ram as usize % RAMS.len()]);
            start_info(&mut Input::new(image));
        }
        _ => {
            let mut u = Input::new(data.get(1..).unwrap_or_default());
            let ram_bytes = if u.ratio(7, 8) { u.pick(RAMS) } else { u.any() };
            let image = structured(&mut u);
            check_image(&image, ram_bytes);
            start_info(&mut u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::pvh::XenNotes;

    fn xen(ty: u32, desc: &[u8]) -> Vec<u8> {
        note(b"Xen", ty, desc)
    }

    /// Structurally valid PVH images, ELF32 and ELF64: (image, its PVH entry).
    fn seeds() -> Vec<(Vec<u8>, u32)> {
        let mut v = Vec::new();
        for e64 in [false, true] {
            let machine = if e64 { EM_X86_64 } else { EM_386 };
            // As Linux carries them: one PT_LOAD, the notes in a PT_NOTE.
            let linux = [
                xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0"),
                xen(en::XEN_ELFNOTE_GUEST_VERSION, b"2.6\0"),
                xen(en::XEN_ELFNOTE_XEN_VERSION, b"xen-3.0\0"),
                xen(
                    en::XEN_ELFNOTE_FEATURES,
                    b"!writable_page_tables|pae_pgdir_above_4gb",
                ),
                xen(en::XEN_ELFNOTE_SUPPORTED_FEATURES, &0x8801u32.to_le_bytes()),
                xen(en::XEN_ELFNOTE_PAE_MODE, b"yes\0"),
                xen(en::XEN_ELFNOTE_LOADER, b"generic\0"),
                note(b"GNU", 3, &[0x2c; 20]),
                xen(en::XEN_ELFNOTE_PHYS32_ENTRY, &0x100_0040u32.to_le_bytes()),
                xen(
                    en::XEN_ELFNOTE_PHYS32_RELOC,
                    &[0x20_0000u32.to_le_bytes(), 0x100_0000u32.to_le_bytes()].concat(),
                ),
            ]
            .concat();
            let parts = [
                Part::Load {
                    paddr: 0x100_0000,
                    memsz: 0x40_0000,
                    file: 64,
                },
                Part::Note(linux),
                Part::Other(0x6474_e551),
            ];
            v.push((
                build_elf(e64, machine, 0x100_0000, &parts, &[]).bytes,
                0x100_0040,
            ));
            // Two PT_LOADs, an 8-byte entry in the second, a PT_NOTE first.
            let parts = [
                Part::Note(xen(
                    en::XEN_ELFNOTE_PHYS32_ENTRY,
                    &0x20_0010u64.to_le_bytes(),
                )),
                Part::Load {
                    paddr: IMAGE_MIN_GPA,
                    memsz: 0x1000,
                    file: 16,
                },
                Part::Load {
                    paddr: 0x20_0000,
                    memsz: 0x2000,
                    file: 32,
                },
            ];
            v.push((
                build_elf(e64, machine, IMAGE_MIN_GPA, &parts, &[]).bytes,
                0x20_0010,
            ));
            // The Xen notes only in an SHT_NOTE section (the PT_NOTE has none).
            let parts = [
                Part::Load {
                    paddr: IMAGE_MIN_GPA,
                    memsz: 0x1_0000,
                    file: 16,
                },
                Part::Note(note(b"GNU", 1, &[0; 16])),
            ];
            let sec = [xen(en::XEN_ELFNOTE_GUEST_OS, b"linux\0"), {
                xen(en::XEN_ELFNOTE_PHYS32_ENTRY, &[0x80, 0x00, 0x10, 0x00])
            }]
            .concat();
            v.push((
                build_elf(e64, machine, IMAGE_MIN_GPA, &parts, &[sec]).bytes,
                0x10_0080,
            ));
        }
        v
    }

    /// The raw-mode input of an image (32 MiB of RAM).
    fn raw(image: &[u8]) -> Vec<u8> {
        [&[0u8, 0][..], image].concat()
    }

    #[test]
    fn samples() {
        crate::run_samples(super::run);
    }

    #[test]
    fn seeds_parse_and_survive_corruption() {
        for (image, entry) in seeds() {
            let e = parse_elf(&image, 32 << 20).unwrap();
            assert!(!e.segments.is_empty());
            let n: XenNotes<'_> = xen_notes(&image).unwrap();
            assert!(n.count > 0);
            assert_eq!(pvh_entry(&image), Ok(entry));
            run(&raw(&image));
            // Every byte changed, one at a time, and every length.
            for i in 0..image.len() {
                let mut m = image.clone();
                m[i] ^= 0xFF;
                run(&raw(&m));
                m[i] = 0x7F;
                run(&raw(&m));
                run(&raw(&image[..i]));
            }
        }
    }

    #[test]
    fn structured_inputs_reach_pvh_entries() {
        // Pseudo-random programs (xorshift): some give images with a PVH entry.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut entries = 0;
        for _ in 0..2000 {
            let data = crate::xorshift_bytes(&mut x, 256);
            let data = [&[1u8][..], &data].concat();
            run(&data);
            let mut u = Input::new(&data[1..]);
            let _ram: u64 = if u.ratio(7, 8) { u.pick(RAMS) } else { u.any() };
            entries += usize::from(pvh_entry(&structured(&mut u)).is_ok());
        }
        assert!(entries > 0, "no PVH entry in 2000 structured inputs");
    }

    #[test]
    fn start_info_as_the_kernel_builds_it() {
        let memmap = [
            MemRegion {
                addr: 0,
                size: 0x9_F000,
                kind: 1,
            },
            MemRegion {
                addr: 0x10_0000,
                size: 0x1F0_0000,
                kind: 1,
            },
        ];
        let modules = [
            BootModule {
                gpa: 0x200_0000,
                size: 0x12_3456,
                cmdline: None,
            },
            BootModule {
                gpa: 0x300_0000,
                size: 0x100,
                cmdline: Some("second"),
            },
        ];
        check_start_info(&StartInfoSpec {
            base: hypercalls::builder::BOOT_PARAMS_GPA,
            max_size: 0x4000,
            cmdline: "console=hvc0",
            modules: &modules,
            rsdp_paddr: 0xF_FFE0,
            memmap: &memmap,
        });
    }
}
