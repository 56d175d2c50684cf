//! Multiboot2 header and the 32-bit entry that switches to long mode.
//!
//! GRUB enters `_start` in 32-bit protected mode with paging off, EAX = the
//! multiboot2 magic and EBX = the boot information. We identity-map the first
//! 4 GiB with 2 MiB pages, except the first 2 MiB, which gets 4 KiB pages: the
//! fixed-range MTRRs give that range several memory types, and a large page
//! across regions of different types is undefined (SDM vol. 3, "Large Page
//! Size Considerations"). Then we enable PAE + machine checks (CR4.MCE, so a
//! #MC reaches the IDT instead of shutting the CPU down) + long mode +
//! paging, load a 64-bit GDT and call [`crate::kmain`].

core::arch::global_asm!(
    r#"
    .set MB2_MAGIC, 0xE85250D6
    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long MB2_MAGIC
    .long 0
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (MB2_MAGIC + (mb2_header_end - mb2_header))
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .bss
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
boot_pt:    .skip 4096
    .global boot_stack_top
boot_stack: .skip 65536
boot_stack_top:

    .section .data
    .balign 16
    .global HOST_GDT
HOST_GDT:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0
    .quad 0
host_gdt_end:
    .balign 16
host_gdt_ptr:
    .short host_gdt_end - HOST_GDT - 1
    .quad HOST_GDT
boot_magic: .long 0
boot_info:  .long 0

    .section .text.boot, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov esp, offset boot_stack_top
    mov dword ptr [boot_magic], eax
    mov dword ptr [boot_info], ebx
    mov eax, offset boot_pdpt
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov eax, offset boot_pd
    or eax, 3
    mov edi, offset boot_pdpt
    mov ecx, 4
2:  mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    loop 2b
    mov edi, offset boot_pd
    xor eax, eax
    mov ecx, 2048
3:  mov edx, eax
    or edx, 0x83
    mov dword ptr [edi], edx
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop 3b
    mov eax, offset boot_pt
    or eax, 3
    mov dword ptr [boot_pd], eax
    mov edi, offset boot_pt
    mov eax, 3
    mov ecx, 512
5:  mov dword ptr [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x1000
    add edi, 8
    loop 5b
    mov eax, cr4
    or eax, 0x60
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    and eax, 0x9FFFFFFF
    or eax, 0x80000021
    mov cr0, eax
    lgdt [host_gdt_ptr]
    push 0x08
    mov eax, offset long_entry
    push eax
    retf

    .code64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset boot_stack_top
    mov edi, dword ptr [boot_magic]
    mov esi, dword ptr [boot_info]
    call {kmain}
4:  cli
    hlt
    jmp 4b
"#,
    kmain = sym crate::kmain,
);
