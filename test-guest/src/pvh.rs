//! The Xen PVH entry: the `XEN_ELFNOTE_PHYS32_ENTRY` note, the 32-bit entry `pvh_start32`, and
//! reading `struct hvm_start_info` once the guest is in long mode.
//!
//! A PVH domain builder (Xen's `type = "pvh"`, `docs/misc/pvh.pandoc`) loads the same ELF at its
//! `p_paddr`s and enters `pvh_start32` in 32-bit protected mode, paging off, flat 4 GiB CS, DS,
//! ES, SS, interrupts off, no stack, GDT and IDT undefined, EBX = the guest-physical address of
//! `struct hvm_start_info`. The code below runs at its link address (below 4 GiB), so absolute
//! addresses are physical ones. It:
//! 1. clears `.bss` (which holds the stack, the page tables and the hypercall page), keeps EBX
//!    and sets the boot stack;
//! 2. loads its own GDT (the direct boot's layout: 0x10 = 64-bit code, 0x18 = data) and reloads
//!    DS, ES, FS, GS, SS with 0x18;
//! 3. finds Xen's CPUID leaves like [`crate::identity`] does (`XenVMMXenVMM` at 0x40000000 +
//!    0x100 * k with at least two leaves after it), writes the hypercall page's address to the
//!    MSR that leaf base+2 EBX names, and checks that the stubs it calls were filled in;
//! 4. checks `hvm_start_info.magic` and prints `GUEST pvh entry32 magic=0x336ec578 ok` with
//!    `console_io(CONSOLEIO_write)` through the hypercall page (32-bit convention: EAX = number,
//!    EBX, ECX, EDX, ESI, EDI = arguments, result in EAX; the buffer pointer is physical);
//! 5. calls `xen_version(XENVER_version)` the same way and keeps EAX;
//! 6. identity-maps 0-4 GiB with 2 MiB pages (one PML4 entry, four PDPT entries, four page
//!    directories, all in `.bss`), sets CR4.PAE, EFER.LME, CR3, then CR0 = PE|PG|ET|NE (the
//!    direct boot's CR0), and far-jumps to `pvh_start64` through selector 0x10;
//! 7. in 64-bit mode passes (boot_params = 0, status, start_info, `xen_version` result) to
//!    `main` through the shared tail of `_start` (`__guest_main64`), without clearing `.bss`
//!    again. The status is never [`NOT_PVH`], which is what `_start` passes.
//!
//! A failure of step 3 or of the magic check does not stop the switch to long mode: the status
//! tells the 64-bit side, which reports it with a `FAIL` line (the 64-bit hypercalls use
//! `vmcall` directly and never need the page) and crashes the domain.

use core::arch::global_asm;
use core::mem::offset_of;

use guest_abi::cpuid::{
    XEN_CPUID_FIRST_LEAF, XEN_CPUID_SIGNATURE_EBX, XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX,
};
use guest_abi::elfnote::XEN_ELFNOTE_PHYS32_ENTRY;
use guest_abi::hypercall::{CONSOLE_IO, XEN_VERSION};
use guest_abi::start_info::{
    HvmMemmapTableEntry, HvmStartInfo, XEN_HVM_MEMMAP_TYPE_RAM, XEN_HVM_START_MAGIC_VALUE,
};
use guest_abi::{console::CONSOLEIO_WRITE, version::XENVER_VERSION};

use crate::arch;
use crate::cmdline::CmdLine;
use crate::xen;

/// The status `_start` passes: not entered through PVH.
pub const NOT_PVH: u32 = 0;
/// The 32-bit entry went through every step.
const ENTRY32_OK: u32 = 1;
/// No `XenVMMXenVMM` CPUID leaf with two leaves after it: no hypercall was made.
const ENTRY32_NO_XEN: u32 = 2;
/// The hypercall page was still empty after the MSR write: no hypercall was made.
const ENTRY32_NO_PAGE: u32 = 3;
/// `hvm_start_info.magic` was wrong: nothing was printed, `xen_version` was still called.
const ENTRY32_BAD_MAGIC: u32 = 4;

/// Last CPUID leaf scanned for the signature (as in [`crate::identity`]).
const CPUID_SCAN_LAST: u32 = 0x4000_FF00;
/// Most memory-map entries read.
const MEMMAP_MAX: u64 = 128;

global_asm!(
    // The note a PVH domain builder looks for (found through the PT_NOTE program header the
    // linker script makes): name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, a 32-bit physical
    // address. 4-byte aligned fields, as ELF notes are.
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    "    .long 4",
    "    .long 4",
    "    .long {note_type}",
    "    .asciz \"Xen\"",
    "    .balign 4",
    "    .long pvh_start32",
    "    .balign 4",
    ".popsection",
    //
    ".pushsection .text.pvh, \"ax\", @progbits",
    ".code32",
    ".global pvh_start32",
    ".type pvh_start32, @function",
    "pvh_start32:",
    "    cli",
    "    cld",
    // Step 1. EBP keeps the hvm_start_info address across `rep stosb` (EDI, ECX, EAX).
    "    mov ebp, ebx",
    "    mov edi, offset __bss_start",
    "    mov ecx, offset __bss_end",
    "    sub ecx, edi",
    "    xor eax, eax",
    "    rep stosb",
    "    mov dword ptr [__pvh_start_info], ebp",
    "    mov dword ptr [__pvh_entry32_status], {ok}",
    "    mov esp, offset __guest_stack_top",
    // Step 2. CS stays the builder's until the far jump.
    "    lgdt [__pvh_gdt_ptr]",
    "    mov eax, 0x18",
    "    mov ds, eax",
    "    mov es, eax",
    "    mov fs, eax",
    "    mov gs, eax",
    "    mov ss, eax",
    // Step 3: scan for the signature; ESI = the leaf.
    "    mov esi, {cpuid_first}",
    ".Lpvh_scan:",
    "    mov eax, esi",
    "    xor ecx, ecx",
    "    cpuid",
    "    cmp ebx, {sig_ebx}",
    "    jne .Lpvh_next",
    "    cmp ecx, {sig_ecx}",
    "    jne .Lpvh_next",
    "    cmp edx, {sig_edx}",
    "    jne .Lpvh_next",
    "    sub eax, esi",
    "    cmp eax, 2",
    "    jae .Lpvh_found",
    ".Lpvh_next:",
    "    add esi, 0x100",
    "    cmp esi, {cpuid_last}",
    "    jbe .Lpvh_scan",
    "    mov dword ptr [__pvh_entry32_status], {no_xen}",
    "    jmp .Lpvh_paging",
    ".Lpvh_found:",
    "    lea eax, [esi + 2]",
    "    xor ecx, ecx",
    "    cpuid",
    // WRMSR(EBX's MSR, EDX:EAX = the page's GPA, page index 0 in bits 0-11).
    "    mov ecx, ebx",
    "    mov eax, offset __pvh_hypercall_page",
    "    xor edx, edx",
    "    wrmsr",
    "    cmp byte ptr [__pvh_hypercall_page + 32 * {console_io}], 0",
    "    je .Lpvh_no_page",
    "    cmp byte ptr [__pvh_hypercall_page + 32 * {xen_version}], 0",
    "    jne .Lpvh_magic",
    ".Lpvh_no_page:",
    "    mov dword ptr [__pvh_entry32_status], {no_page}",
    "    jmp .Lpvh_paging",
    // Step 4. A hypercall may clobber its argument registers (Xen's debug builds do), so
    // nothing but ESP is kept in a register across one.
    ".Lpvh_magic:",
    "    mov eax, dword ptr [__pvh_start_info]",
    "    cmp dword ptr [eax], {magic}",
    "    je .Lpvh_say_ok",
    "    mov dword ptr [__pvh_entry32_status], {bad_magic}",
    "    jmp .Lpvh_version",
    ".Lpvh_say_ok:",
    "    mov ebx, {consoleio_write}",
    "    mov ecx, offset PVH_OK_LINE_LEN",
    "    mov edx, offset .Lpvh_ok_line",
    "    call __pvh_hypercall_page + 32 * {console_io}",
    // Step 5.
    ".Lpvh_version:",
    "    mov ebx, {xenver_version}",
    "    xor ecx, ecx",
    "    call __pvh_hypercall_page + 32 * {xen_version}",
    "    mov dword ptr [__pvh_xen_version32], eax",
    // Step 6. The upper halves of the entries are 0 (cleared .bss).
    ".Lpvh_paging:",
    "    mov dword ptr [__pvh_pml4], offset __pvh_pdpt + 0x3", // P | RW
    "    mov edi, offset __pvh_pdpt",
    "    mov eax, offset __pvh_pd + 0x3", // P | RW
    "    mov ecx, 4",
    ".Lpvh_pdpte:",
    "    mov dword ptr [edi], eax",
    "    add eax, 0x1000",
    "    add edi, 8",
    "    dec ecx",
    "    jnz .Lpvh_pdpte",
    "    mov edi, offset __pvh_pd",
    "    mov eax, 0x83", // 2 MiB page at 0: P | RW | PS, PAT entry 0 (WB)
    "    mov ecx, 2048",
    ".Lpvh_pde:",
    "    mov dword ptr [edi], eax",
    "    add eax, 0x200000",
    "    add edi, 8",
    "    dec ecx",
    "    jnz .Lpvh_pde",
    "    mov eax, cr4",
    "    or eax, 0x20", // CR4.PAE
    "    mov cr4, eax",
    "    mov ecx, 0xC0000080", // IA32_EFER
    "    rdmsr",
    "    or eax, 0x100", // EFER.LME
    "    wrmsr",
    "    mov eax, offset __pvh_pml4",
    "    mov cr3, eax",
    "    mov eax, 0x80000031", // CR0 = PG | NE | ET | PE: IA-32e mode (compatibility)
    "    mov cr0, eax",
    "    ljmp 0x10, offset pvh_start64", // EA, offset32, selector16: to 64-bit mode
    ".size pvh_start32, . - pvh_start32",
    //
    ".code64",
    "pvh_start64:",
    // Step 7: the 32-bit loads zero-extend.
    "    xor edi, edi",
    "    mov esi, dword ptr [rip + __pvh_entry32_status]",
    "    mov edx, dword ptr [rip + __pvh_start_info]",
    "    mov ecx, dword ptr [rip + __pvh_xen_version32]",
    "    jmp __guest_main64",
    ".popsection",
    //
    ".pushsection .rodata.pvh, \"a\", @progbits",
    ".balign 16",
    // Accessed bits preset, so the CPU never writes the table.
    ".Lpvh_gdt:",
    "    .quad 0",
    "    .quad 0",
    "    .quad 0x00af9b000000ffff", // 0x10: code, 64-bit (L), DPL 0, present
    "    .quad 0x00cf93000000ffff", // 0x18: data, 4 GiB, read/write, DPL 0, present
    ".Lpvh_gdt_end:",
    "__pvh_gdt_ptr:",
    "    .word .Lpvh_gdt_end - .Lpvh_gdt - 1",
    "    .long .Lpvh_gdt",
    ".Lpvh_ok_line:",
    "    .ascii \"GUEST pvh entry32 magic=0x336ec578 ok\\n\"",
    ".Lpvh_ok_line_end:",
    ".set PVH_OK_LINE_LEN, .Lpvh_ok_line_end - .Lpvh_ok_line",
    ".popsection",
    //
    ".pushsection .bss.pvh, \"aw\", @nobits",
    ".balign 4096",
    "__pvh_pml4: .skip 4096",
    "__pvh_pdpt: .skip 4096",
    "__pvh_pd: .skip 4 * 4096",
    "__pvh_hypercall_page: .skip 4096",
    "__pvh_start_info: .skip 4",
    "__pvh_xen_version32: .skip 4",
    "__pvh_entry32_status: .skip 4",
    ".popsection",
    note_type = const XEN_ELFNOTE_PHYS32_ENTRY,
    cpuid_first = const XEN_CPUID_FIRST_LEAF,
    cpuid_last = const CPUID_SCAN_LAST,
    sig_ebx = const XEN_CPUID_SIGNATURE_EBX,
    sig_ecx = const XEN_CPUID_SIGNATURE_ECX,
    sig_edx = const XEN_CPUID_SIGNATURE_EDX,
    ok = const ENTRY32_OK,
    no_xen = const ENTRY32_NO_XEN,
    no_page = const ENTRY32_NO_PAGE,
    bad_magic = const ENTRY32_BAD_MAGIC,
    magic = const XEN_HVM_START_MAGIC_VALUE,
    console_io = const CONSOLE_IO,
    xen_version = const XEN_VERSION,
    consoleio_write = const CONSOLEIO_WRITE,
    xenver_version = const XENVER_VERSION,
);

/// Reads the `u32` at `gpa`.
fn rd32(gpa: u64) -> u32 {
    // SAFETY: `hvm_start_info` and its memory map, which the domain builder wrote into guest
    // RAM that no Rust object occupies (it places them outside the image); `read_phys_u32`
    // checks alignment and the 4 GiB bound.
    unsafe { arch::read_phys_u32(gpa) }
}

/// Reads the `u64` at `gpa` as two `u32`s (low first).
fn rd64(gpa: u64) -> u64 {
    u64::from(rd32(gpa)) | (u64::from(rd32(gpa + 4)) << 32)
}

/// The `u32` field at `offset` of the `hvm_start_info` at `start_info`.
fn field32(start_info: u64, offset: usize) -> u32 {
    rd32(start_info + offset as u64)
}

/// The `u64` field at `offset` of the `hvm_start_info` at `start_info`.
fn field64(start_info: u64, offset: usize) -> u64 {
    rd64(start_info + offset as u64)
}

/// The memory map's `(address, entries)`; none before version 1.
fn memmap(start_info: u64) -> (u64, u64) {
    if field32(start_info, offset_of!(HvmStartInfo, version)) < 1 {
        return (0, 0);
    }
    (
        field64(start_info, offset_of!(HvmStartInfo, memmap_paddr)),
        u64::from(field32(
            start_info,
            offset_of!(HvmStartInfo, memmap_entries),
        )),
    )
}

/// Reports what the 32-bit entry did and what `hvm_start_info` holds; crashes the domain if
/// the entry failed. `status` and `version32` are what `pvh_start32` left.
pub fn report(status: u32, start_info: u64, version32: u32) {
    let magic = field32(start_info, offset_of!(HvmStartInfo, magic));
    match status {
        ENTRY32_OK => {}
        ENTRY32_NO_XEN => {
            say!("pvh entry32 FAIL (no XenVMMXenVMM CPUID leaf)");
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
        ENTRY32_NO_PAGE => {
            say!("pvh entry32 FAIL (the hypercall page was not filled in)");
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
        ENTRY32_BAD_MAGIC => {
            say!(
                "pvh entry32 magic={magic:#x} FAIL (want {XEN_HVM_START_MAGIC_VALUE:#x}, \
                 start_info={start_info:#x})"
            );
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
        other => {
            say!("pvh entry32 FAIL (status {other})");
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
    }
    // EAX of `xen_version` in 32-bit mode: a negative errno or `(major << 16) | minor`.
    let ver = version32 as i32;
    if ver < 0 {
        say!("pvh xen_version32 FAIL (rc={ver})");
    } else {
        say!("pvh xen_version32 {}.{}", ver >> 16, ver & 0xFFFF);
    }
    let (_, memmap_entries) = memmap(start_info);
    say!(
        "pvh start_info version={} memmap_entries={memmap_entries} modules={} cmdline={}",
        field32(start_info, offset_of!(HvmStartInfo, version)),
        field32(start_info, offset_of!(HvmStartInfo, nr_modules)),
        crate::console::Bytes(cmdline(start_info).as_bytes())
    );
    // The debug ports a Xen HVM or PVH domain has whatever its platform: Xen's debug
    // console (0xE9) and the log byte of the Xen platform ports (0x12).
    arch::out_bytes(0xE9, b"GUEST pvh debug port 0xe9\n");
    arch::out_bytes(0x12, b"GUEST pvh debug port 0x12\n");
}

/// The command line at `hvm_start_info.cmdline_paddr`.
pub fn cmdline(start_info: u64) -> CmdLine {
    CmdLine::from_phys(field64(start_info, offset_of!(HvmStartInfo, cmdline_paddr)))
}

/// The end of the highest RAM range in the `hvm_start_info` memory map (0 if there is none).
pub fn ram_end(start_info: u64) -> u64 {
    let (table, n) = memmap(start_info);
    if table == 0 {
        return 0;
    }
    let size = core::mem::size_of::<HvmMemmapTableEntry>() as u64;
    (0..n.min(MEMMAP_MAX))
        .map(|i| table + size * i)
        .filter(|&e| {
            rd32(e + offset_of!(HvmMemmapTableEntry, r#type) as u64) == XEN_HVM_MEMMAP_TYPE_RAM
        })
        .map(|e| {
            rd64(e + offset_of!(HvmMemmapTableEntry, addr) as u64)
                + rd64(e + offset_of!(HvmMemmapTableEntry, size) as u64)
        })
        .max()
        .unwrap_or(0)
}
