//! Guest loading: puts a kernel image (ELF, such as the test guest or Linux's
//! `vmlinux`, or a Linux bzImage), its initrd and the boot structures into a
//! new domain's RAM, and presets its MTRRs.
//!
//! Two entries: Linux's 64-bit boot protocol (GDT, identity page tables,
//! boot_params with e820, command line; the HVM default), and Xen's PVH entry
//! (an ELF's `XEN_ELFNOTE_PHYS32_ENTRY`, entered in 32-bit protected mode with
//! EBX pointing at `hvm_start_info`: its module list with the initrd, command
//! line, memory map and RSDP; for `type = "pvh"` and for firmware). The ACPI
//! tables, e820 map and MTRRs are those of the platform: HVM (as hvmloader
//! leaves them) or PVH (hardware-reduced ACPI, MTRRs default WB, as Xen sets
//! up a PVH domU).

use crate::host::KernelHost;
use crate::vcpu::BootEntry;
use alloc::format;
use alloc::string::String;

use hypercalls::builder;
use hypercalls::guest_mem::write_gpa;
use hypercalls::Domain;

/// A parsed kernel image.
pub enum KernelImage<'a> {
    /// An ELF64 image entered at its entry point.
    Elf(builder::ElfImage),
    /// A Linux bzImage entered at its 64-bit entry point.
    BzImage(loader::BzImage<'a>),
}

impl KernelImage<'_> {
    /// What kind of image this is, for the log.
    pub fn kind(&self) -> &'static str {
        match self {
            KernelImage::Elf(_) => "ELF",
            KernelImage::BzImage(_) => "bzImage",
        }
    }
}

/// Recognises the image format.
pub fn parse_image(bytes: &[u8], ram_bytes: u64) -> Result<KernelImage<'_>, String> {
    if bytes.starts_with(b"\x7fELF") {
        return builder::parse_elf(bytes, ram_bytes)
            .map(KernelImage::Elf)
            .map_err(|e| format!("{e}"));
    }
    loader::parse_bzimage(bytes)
        .map(KernelImage::BzImage)
        .map_err(|e| format!("neither ELF nor bzImage: {e}"))
}

/// What the boot structures say besides the image.
pub struct BootSpec<'a> {
    /// The kernel command line.
    pub cmdline: &'a str,
    /// The initrd, if any.
    pub ramdisk: Option<&'a [u8]>,
    /// vCPUs (one MADT entry each).
    pub nr_vcpus: u32,
    /// Enter through Xen's PVH entry note (`type = "pvh"`, or a firmware).
    pub pvh_entry: bool,
    /// The PVH platform (`type = "pvh"`) rather than the HVM one.
    pub pvh_platform: bool,
}

/// Where `hvm_start_info`, its module list, memory map and the command line go.
const START_INFO_GPA: u64 = builder::BOOT_PARAMS_GPA;
/// The most bytes they may take (up to the low reserved area).
const START_INFO_MAX: usize = 0x4000;

/// Loads `image` and the boot structures; returns how the boot processor starts.
pub fn load(
    dom: &mut Domain,
    image: &KernelImage<'_>,
    bytes: &[u8],
    spec: &BootSpec<'_>,
    host: &mut KernelHost,
) -> Result<BootEntry, String> {
    let pvh_eip = match (spec.pvh_entry, image) {
        (false, KernelImage::Elf(elf)) if elf.class == builder::ElfClass::Elf32 => {
            return Err(
                "a 32-bit ELF has no 64-bit entry: boot it through its PVH note \
                 (type = \"pvh\" or firmware_override)"
                    .into(),
            )
        }
        (false, _) => None,
        (true, KernelImage::Elf(_)) => {
            Some(hypercalls::pvh::pvh_entry(bytes).map_err(|e| format!("{e}"))?)
        }
        (true, KernelImage::BzImage(_)) => {
            return Err(
                "a bzImage has no PVH entry here: boot its vmlinux (the ELF inside it)".into(),
            )
        }
    };
    let ram_bytes = dom.ram_pages * 4096;
    let put = |dom: &Domain, host: &mut KernelHost, gpa: u64, data: &[u8], what: &str| {
        write_gpa(&dom.p2m, host, gpa, data)
            .map_err(|e| format!("writing {what} at {gpa:#x}: {e:?}"))
    };
    let (entry, kernel_end, setup_header, code32_start) = match image {
        KernelImage::Elf(elf) => {
            for seg in &elf.segments {
                put(
                    dom,
                    host,
                    seg.gpa,
                    &bytes[seg.offset..seg.offset + seg.file_size],
                    "a kernel segment",
                )?;
            }
            let end = elf
                .segments
                .iter()
                .map(|s| s.gpa + s.mem_size.max(s.file_size as u64))
                .max()
                .unwrap_or(0);
            (elf.entry, end, None, 0)
        }
        KernelImage::BzImage(bz) => {
            let align = (bz.kernel_alignment as u64).max(0x20_0000);
            // The header's fields are the image's word: saturate, so that an
            // absurd pref_address fails the RAM check below instead of overflowing.
            let load = bz
                .pref_address
                .max(0x100_0000)
                .checked_next_multiple_of(align)
                .unwrap_or(u64::MAX);
            let end = load.saturating_add((bz.init_size as u64).max(bz.kernel.len() as u64));
            if end > ram_bytes {
                return Err(format!(
                    "bzImage needs RAM up to {end:#x}; the domain has {ram_bytes:#x}"
                ));
            }
            put(dom, host, load, bz.kernel, "the bzImage")?;
            (
                load + loader::BZIMAGE_ENTRY_64_OFFSET,
                end,
                Some(bz.setup_header),
                load as u32,
            )
        }
    };
    let initrd_max = match image {
        KernelImage::BzImage(bz) => bz.initrd_addr_max as u64,
        KernelImage::Elf(_) => 0x7FFF_FFFF,
    };
    let initrd = match spec.ramdisk {
        Some(rd) => {
            let gpa = loader::place_initrd(rd.len() as u64, ram_bytes, initrd_max, kernel_end)
                .ok_or_else(|| {
                    format!(
                        "no room for a {} KiB initrd above the kernel (ends at {kernel_end:#x})",
                        rd.len() / 1024
                    )
                })?;
            put(dom, host, gpa, rd, "the initrd")?;
            Some((gpa, rd.len() as u64))
        }
        None => None,
    };
    let e820 = if spec.pvh_platform {
        platform::e820::pvh_e820_map(ram_bytes)
    } else {
        platform::e820::e820_map(ram_bytes)
    }
    .map_err(|e| format!("memory map: {e:?}"))?;
    let acpi_base = platform::layout::ACPI_TABLES_GPA;
    let acpi = if spec.pvh_platform {
        platform::acpi::build_pvh_tables(acpi_base, spec.nr_vcpus)
    } else {
        platform::acpi::build_tables(acpi_base, spec.nr_vcpus)
    };
    put(dom, host, acpi_base, &acpi.bytes, "the ACPI tables")?;
    let entry = match pvh_eip {
        Some(eip) => {
            let modules: alloc::vec::Vec<hypercalls::pvh::BootModule> = initrd
                .iter()
                .map(|&(gpa, size)| hypercalls::pvh::BootModule {
                    gpa,
                    size,
                    cmdline: None,
                })
                .collect();
            let memmap: alloc::vec::Vec<hypercalls::pvh::MemRegion> = e820
                .iter()
                .map(|e| hypercalls::pvh::MemRegion {
                    addr: e.addr,
                    size: e.size,
                    kind: e.kind,
                })
                .collect();
            let area = hypercalls::pvh::build_start_info(&hypercalls::pvh::StartInfoSpec {
                base: START_INFO_GPA,
                max_size: START_INFO_MAX,
                cmdline: spec.cmdline,
                modules: &modules,
                rsdp_paddr: acpi.rsdp_gpa,
                memmap: &memmap,
            })
            .map_err(|e| format!("hvm_start_info: {e}"))?;
            put(dom, host, START_INFO_GPA, &area.bytes, "hvm_start_info")?;
            BootEntry::Pvh32 {
                eip,
                start_info: area.start_info_gpa as u32,
            }
        }
        None => {
            let boot_params = loader::boot_params(&loader::BootParamsSpec {
                setup_header,
                code32_start,
                cmdline_gpa: builder::CMDLINE_GPA,
                initrd,
                acpi_rsdp: acpi.rsdp_gpa,
                e820: &e820,
            })
            .map_err(|e| format!("boot_params: {e:?}"))?;
            let boot_data: [(u64, &[u8], &str); 4] = [
                (builder::GDT_GPA, &builder::boot_gdt(), "the GDT"),
                (
                    builder::PML4_GPA,
                    &builder::identity_page_tables(),
                    "page tables",
                ),
                (builder::BOOT_PARAMS_GPA, &boot_params, "boot_params"),
                (
                    builder::CMDLINE_GPA,
                    &builder::cmdline_bytes(spec.cmdline),
                    "the command line",
                ),
            ];
            for (gpa, data, what) in boot_data {
                put(dom, host, gpa, data, what)?;
            }
            BootEntry::Long64 {
                rip: entry,
                boot_params: builder::BOOT_PARAMS_GPA,
            }
        }
    };
    // HVM: the MTRRs hvmloader would have programmed (RAM WB, the default type; the VGA
    // window and the PCI hole UC). PVH: Xen's defaults for a domain without firmware.
    let mtrrs: &[(u32, u64)] = if spec.pvh_platform {
        &platform::mtrr::pvh_mtrr_layout()
    } else {
        &platform::mtrr_layout(guest_phys_bits())
    };
    for &(msr, value) in mtrrs {
        dom.p2m
            .guest_mtrr_write(host, msr, value)
            .map_err(|e| format!("guest MTRR {msr:#x}: {e:?}"))?;
    }
    Ok(entry)
}

/// The guest's physical-address width (CPUID 0x80000008, as the guest sees it).
fn guest_phys_bits() -> u32 {
    let r = x86::cpuid::cpuid!(0x8000_0008);
    match r.eax & 0xFF {
        0 => 36,
        n => n,
    }
}
