//! `test-guest`: a small freestanding x86-64 guest that exercises xenolith's Xen HVM interface.
//!
//! The domain builder loads this ELF at 1 MiB and enters `_start` in 64-bit mode with the low
//! 4 GiB identity-mapped and RSI pointing at a Linux `boot_params` page (see `docs/protocol.md`,
//! "Guest entry state"). The guest reads `test=<mode>` from the command line, runs that test and
//! reports through `console_io(CONSOLEIO_write)`, one `GUEST ...` line per call.
//!
//! Modes: `identity`, `triple-fault`, `bad-args`, and the hostile `xs-txn`, `watch-flood`,
//! `mac-spoof`, `gso`, `console-flood`, `xmm-victim`, `xmm-probe`, `physmap-moves`, `heap`
//! (see `docs/protocol.md`, "Test guest lines").
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
    // The entry point. State on entry (docs/protocol.md): long mode, identity map of 0-4 GiB,
    // interrupts off, RSI = boot_params GPA, every other GPR 0, no usable stack.
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
    "    lea rsp, [rip + __guest_stack_top]",
    "    xor ebp, ebp",
    "    mov rdi, rsi",
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
    "__guest_stack_top:",
    ".text",
    stack_size = const STACK_SIZE,
);

/// The guest's main function, called by `_start` with RSI's value (the `boot_params` GPA).
///
/// Runs the test selected by `test=<mode>` on the command line, which ends by shutting the
/// domain down (or by a triple fault); it never returns.
#[cfg(target_os = "none")]
#[no_mangle]
pub extern "C" fn main(boot_params: u64) -> ! {
    let cmdline = cmdline::CmdLine::from_boot_params(boot_params);
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
        Some(b"console-flood") => flood::run(boot_params),
        Some(b"xmm-victim") => xmm::victim(),
        Some(b"xmm-probe") => xmm::probe(),
        Some(b"physmap-moves") => physmap::run(boot_params),
        Some(b"heap") => heap::run(),
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
