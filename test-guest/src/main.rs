//! `test-guest`: a small freestanding x86-64 guest that exercises xenolith's Xen HVM interface.
//!
//! The domain builder loads this ELF at 1 MiB (each PT_LOAD at its `p_paddr`). The same ELF
//! carries two entries (see `docs/protocol.md`, "Guest entry state"):
//! - `_start` (`e_entry`), the 64-bit direct boot: long mode, the low 4 GiB identity-mapped,
//!   RSI pointing at a Linux `boot_params` page whose `cmd_line_ptr` gives the command line.
//! - `pvh_start32`, named by the `XEN_ELFNOTE_PHYS32_ENTRY` note (section `.note.Xen`, its own
//!   PT_NOTE), the Xen PVH entry (`type = "pvh"`, Xen's `docs/misc/pvh.pandoc`): 32-bit protected
//!   mode, paging off, EBX = the GPA of `struct hvm_start_info`. Its 32-bit code (module `pvh`)
//!   makes its own GDT, sets up the hypercall page and prints `GUEST pvh entry32 ...` through it,
//!   calls `xen_version`, builds identity page tables for 0-4 GiB and switches to long mode,
//!   then joins `_start`'s tail; `main` prints `GUEST pvh xen_version32 ...` and `GUEST pvh
//!   start_info ...` and takes the command line from `hvm_start_info.cmdline_paddr` (and the RAM
//!   size from its memory map).
//!
//! The guest reads `test=<mode>` from the command line, runs that test and reports through
//! `console_io(CONSOLEIO_write)`, one `GUEST ...` line per call; the tests behave the same after
//! either entry.
//!
//! Modes: `identity`, `pv-io`, `triple-fault`, `bad-args`, and the hostile `xs-txn`, `watch-flood`,
//! `mac-spoof`, `gso`, `console-flood`, `xmm-victim`, `xmm-probe`, `physmap-moves`, `heap`,
//! `fifo-hostile` (see `docs/protocol.md`, "Test guest lines").
//!
//! On a host target (a plain `cargo build --workspace`) only a stub `main` is compiled; the
//! real guest is built with `cargo build --release -p test-guest --target x86_64-unknown-none`.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

// `console` first: it defines the `say!` macro the other modules use.
#[cfg(target_os = "none")]
#[macro_use]
mod console;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod badargs;
#[cfg(target_os = "none")]
mod cmdline;
#[cfg(target_os = "none")]
mod evtchn;
#[cfg(target_os = "none")]
mod flood;
#[cfg(target_os = "none")]
mod gnttab;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod hostile_fifo;
#[cfg(target_os = "none")]
mod hostile_net;
#[cfg(target_os = "none")]
mod hostile_xs;
#[cfg(target_os = "none")]
mod hvm;
#[cfg(target_os = "none")]
mod hypercall;
#[cfg(target_os = "none")]
mod identity;
#[cfg(target_os = "none")]
mod netif;
#[cfg(target_os = "none")]
mod physmap;
#[cfg(target_os = "none")]
mod pvh;
#[cfg(target_os = "none")]
mod pvio;
#[cfg(target_os = "none")]
mod shmem;
#[cfg(target_os = "none")]
mod trap;
#[cfg(target_os = "none")]
mod xen;
#[cfg(target_os = "none")]
mod xmm;
#[cfg(target_os = "none")]
mod xs;

/// Size of the boot stack that `_start` sets up in `.bss`.
#[cfg(target_os = "none")]
const STACK_SIZE: usize = 64 * 1024;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    // The 64-bit entry (ELF `e_entry`). State on entry (docs/protocol.md): long mode, identity
    // map of 0-4 GiB, interrupts off, RSI = boot_params GPA, every other GPR 0, no usable stack.
    ".section .text._start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    cli",
    "    cld",
    // Clear .bss (which also holds the stack); `rep stosb` leaves RSI alone.
    "    lea rdi, [rip + __bss_start]",
    "    lea rcx, [rip + __bss_end]",
    "    sub rcx, rdi",
    "    xor eax, eax",
    "    rep stosb",
    // main(boot_params, NOT_PVH, 0, 0).
    "    mov rdi, rsi",
    "    xor esi, esi",
    "    xor edx, edx",
    "    xor ecx, ecx",
    // The tail shared with the PVH entry (`pvh.rs`), which arrives here in 64-bit mode with
    // .bss already cleared and main's four arguments loaded.
    ".global __guest_main64",
    "__guest_main64:",
    "    lea rsp, [rip + __guest_stack_top]",
    "    xor ebp, ebp",
    "    call main",
    "2:  cli",
    "    hlt",
    "    jmp 2b",
    ".size _start, . - _start",
    // The boot stack, 16-byte aligned so that `call main` follows the SysV ABI.
    ".section .bss.stack, \"aw\", @nobits",
    ".balign 16",
    "__guest_stack_bottom:",
    "    .skip {stack_size}",
    ".global __guest_stack_top",
    "__guest_stack_top:",
    ".text",
    stack_size = const STACK_SIZE,
);

/// How the guest was entered, and where the domain builder's boot information is.
#[cfg(target_os = "none")]
#[derive(Clone, Copy, Debug)]
pub enum Boot {
    /// `_start`: the guest-physical address of a Linux `boot_params` page.
    Direct {
        /// The `boot_params` GPA (RSI at entry).
        boot_params: u64,
    },
    /// `pvh_start32`: the guest-physical address of a `struct hvm_start_info`.
    Pvh {
        /// The `hvm_start_info` GPA (EBX at entry).
        start_info: u64,
    },
}

#[cfg(target_os = "none")]
impl Boot {
    /// A copy of the command line.
    pub fn cmdline(self) -> cmdline::CmdLine {
        match self {
            Self::Direct { boot_params } => cmdline::CmdLine::from_boot_params(boot_params),
            Self::Pvh { start_info } => pvh::cmdline(start_info),
        }
    }

    /// The end of the highest RAM range in the builder's memory map (0 if there is none).
    pub fn ram_end(self) -> u64 {
        match self {
            Self::Direct { boot_params } => hostile::ram_end(boot_params),
            Self::Pvh { start_info } => pvh::ram_end(start_info),
        }
    }
}

/// The guest's main function, called by `_start` (`boot_params` = RSI at entry, the rest 0)
/// or, through the same tail, by the PVH entry (`boot_params` 0, `pvh_status` what the 32-bit
/// code did, never [`pvh::NOT_PVH`], `pvh_start_info` = EBX at entry, `pvh_version32` = the
/// result of its 32-bit `xen_version(XENVER_version)`).
///
/// Runs the test selected by `test=<mode>` on the command line, which ends by shutting the
/// domain down (or by a triple fault); it never returns.
#[cfg(target_os = "none")]
#[no_mangle]
pub extern "C" fn main(
    boot_params: u64,
    pvh_status: u32,
    pvh_start_info: u64,
    pvh_version32: u32,
) -> ! {
    let boot = if pvh_status == pvh::NOT_PVH {
        Boot::Direct { boot_params }
    } else {
        pvh::report(pvh_status, pvh_start_info, pvh_version32);
        Boot::Pvh {
            start_info: pvh_start_info,
        }
    };
    let cmdline = boot.cmdline();
    match cmdline.word_value(b"test=") {
        Some(b"identity") => identity::run(),
        Some(b"triple-fault") => {
            say!("about to triple-fault");
            arch::triple_fault()
        }
        Some(b"bad-args") => badargs::run(),
        Some(b"xs-txn") => hostile_xs::txn(),
        Some(b"watch-flood") => hostile_xs::watch_flood(),
        Some(b"mac-spoof") => hostile_net::mac_spoof(&cmdline),
        Some(b"gso") => hostile_net::gso(&cmdline),
        Some(b"console-flood") => flood::run(boot.ram_end()),
        Some(b"xmm-victim") => xmm::victim(),
        Some(b"xmm-probe") => xmm::probe(),
        Some(b"physmap-moves") => physmap::run(boot.ram_end()),
        Some(b"heap") => heap::run(),
        Some(b"fifo-hostile") => hostile_fifo::run(boot.ram_end()),
        Some(b"pv-io") => pvio::run(),
        other => {
            let mode = other.unwrap_or(b"");
            say!("unknown test mode '{}'", console::Bytes(mode));
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
    }
}

/// Reports a panic on the console and crashes the domain.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("PANIC {}", info);
    xen::shutdown(xen::SHUTDOWN_CRASH)
}

/// Host stand-in: the real guest only exists for `x86_64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("test-guest is a freestanding guest: build it with --target x86_64-unknown-none");
    std::process::exit(1);
}
