//! xenolith: a Rust hypervisor for Intel VT-x that runs unmodified Linux
//! guests as Xen domains, with no dom0.
//!
//! This crate is the thin privileged glue: boot, paging, memory, serial,
//! interrupts, VMX and the exit handlers. Everything that needs no privileged
//! instruction lives in the `p2m`, `hypercalls`, `guest-abi` and `domcfg` crates.
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod boot;
mod cpu;
mod devices;
mod domain;
mod guest_loader;
mod host;
mod idt;
mod ledger;
mod machine;
mod mem;
mod net;
mod serial;
mod store;
mod vcpu;
mod vmx;

use alloc::string::String;
use alloc::vec::Vec;

/// A multiboot2 module: a guest image or a domain configuration.
pub struct Module {
    /// First word of the module's command line.
    pub name: String,
    /// Host-physical start.
    pub start: u64,
    /// Host-physical end (exclusive).
    pub end: u64,
}

impl Module {
    /// The module's bytes.
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: GRUB loaded the module into RAM that `kmain` reserved for the
        // whole run; it is identity-mapped and never written.
        unsafe {
            core::slice::from_raw_parts(self.start as *const u8, (self.end - self.start) as usize)
        }
    }
}

/// How the run ends (from the `exit=` command line word).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExitMode {
    Bochs,
    Qemu,
    None,
}

static EXIT_MODE: spin::Once<ExitMode> = spin::Once::new();

/// Leaves the machine: Bochs' shutdown port, QEMU's isa-debug-exit, then halt.
pub fn machine_exit(success: bool) -> ! {
    serial::flush();
    let mode = EXIT_MODE.get().copied().unwrap_or(ExitMode::None);
    // SAFETY: writes to emulator control ports; on other machines these ports
    // are unused. Then the CPU halts for good with interrupts off.
    unsafe {
        match mode {
            ExitMode::Qemu => x86::io::outb(0xF4, if success { 0 } else { 1 }),
            ExitMode::Bochs => {
                for b in b"Shutdown" {
                    x86::io::outb(0x8900, *b);
                }
            }
            ExitMode::None => {}
        }
        loop {
            core::arch::asm!("cli; hlt", options(nomem, nostack));
        }
    }
}

/// Reports a fatal hypervisor error and ends the run.
pub fn panic_msg(msg: &str) -> ! {
    serial::write_fmt_forced(format_args!("xenolith: PANIC {msg}\n"));
    machine_exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    serial::write_fmt_forced(format_args!("xenolith: PANIC {info}\n"));
    machine_exit(false)
}

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The host's MTRRs (the host side of the EMT resolver's MTRR combination).
fn read_host_mtrrs() -> p2m::MtrrState {
    let has_mtrr = x86::cpuid::CpuId::new()
        .get_feature_info()
        .is_some_and(|f| f.has_mtrr());
    let state = if has_mtrr {
        // SAFETY: CPUID says MTRRs exist; `from_msrs` reads IA32_MTRRCAP first
        // and only the fixed/variable MSRs it reports.
        p2m::MtrrState::from_msrs(|msr| unsafe { x86::msr::rdmsr(msr) })
    } else {
        p2m::MtrrState::new_default_wb()
    };
    log::info!(
        "host MTRRs: {} default type {:?}, {} variable ranges",
        if state.enabled() {
            "enabled,"
        } else {
            "disabled (all UC),"
        },
        state.default_type(),
        state.vcnt()
    );
    state
}

/// Rust entry point, called by the boot code in long mode.
#[no_mangle]
pub extern "C" fn kmain(magic: u32, info: u32) -> ! {
    serial::init();
    idt::init();
    serial::init_log(log::LevelFilter::Info);
    if magic != 0x36D7_6289 {
        panic_msg("not started by a multiboot2 loader");
    }
    // SAFETY: GRUB passed a valid multiboot2 information structure at `info`,
    // identity-mapped, which we only read.
    let mbi = unsafe {
        multiboot2::BootInformation::load(info as usize as *const multiboot2::BootInformationHeader)
    }
    .unwrap_or_else(|_| panic_msg("bad multiboot2 information"));

    let cmdline = mbi
        .command_line_tag()
        .and_then(|t| t.cmdline().ok())
        .unwrap_or("");
    let mut level = log::LevelFilter::Info;
    let mut exit_mode = ExitMode::None;
    let mut sched_params = sched::Params::DEFAULT;
    for word in cmdline.split_whitespace() {
        match word.split_once('=') {
            Some(("loglvl", v)) => {
                level = match v {
                    "error" => log::LevelFilter::Error,
                    "warn" | "warning" => log::LevelFilter::Warn,
                    "debug" => log::LevelFilter::Debug,
                    "trace" | "all" => log::LevelFilter::Trace,
                    _ => log::LevelFilter::Info,
                }
            }
            Some(("exit", "bochs")) => exit_mode = ExitMode::Bochs,
            Some(("console_timestamps", "tsc")) => {
                host::CONSOLE_TSC_STAMPS.store(true, core::sync::atomic::Ordering::Relaxed)
            }
            Some(("exit", "qemu")) => exit_mode = ExitMode::Qemu,
            // Lifts the per-domain console rate limit (a guest dumping its
            // symbol table for the profiler).
            Some(("console_limit", "0" | "off")) => {
                host::CONSOLE_UNLIMITED.store(true, core::sync::atomic::Ordering::Relaxed)
            }
            Some(("profile_us", v)) => match v.parse::<u64>() {
                Ok(us) => ledger::PROFILE_US.store(us, core::sync::atomic::Ordering::Relaxed),
                Err(_) => {
                    kprintln!("xenolith: command line: profile_us={v}: not a number, ignored")
                }
            },
            Some((k, v)) => {
                if let Err(e) = sched_params.apply(k, v) {
                    kprintln!("xenolith: command line: {k}={v}: {e}, ignored");
                }
            }
            None => {}
        }
    }
    EXIT_MODE.call_once(|| exit_mode);
    log::set_max_level(level);
    log::info!(
        "xenolith {} starting (command line: '{cmdline}')",
        env!("CARGO_PKG_VERSION")
    );

    // Physical memory: free RAM from the map, minus the kernel, the boot
    // information and the modules.
    let mmap = mbi
        .memory_map_tag()
        .unwrap_or_else(|| panic_msg("no memory map"));
    for area in mmap.memory_areas() {
        if area.typ() == multiboot2::MemoryAreaType::Available {
            mem::add_free_region(area.start_address().max(0x10_0000), area.end_address());
        }
    }
    // SAFETY: linker-provided symbols; only their addresses are used.
    let (kstart, kend) = unsafe {
        (
            &__kernel_start as *const u8 as u64,
            &__kernel_end as *const u8 as u64,
        )
    };
    mem::reserve_region(kstart, kend);
    mem::reserve_region(mbi.start_address() as u64, mbi.end_address() as u64);
    let mut modules = Vec::new();
    let mut raw_modules = [(0u64, 0u64); 64];
    let mut n = 0;
    for m in mbi.module_tags() {
        mem::reserve_region(m.start_address() as u64, m.end_address() as u64);
        if n < raw_modules.len() {
            raw_modules[n] = (m.start_address() as u64, m.end_address() as u64);
            n += 1;
        }
    }
    mem::init_heap();
    for (m, &(start, end)) in mbi.module_tags().zip(raw_modules.iter()) {
        let name = m
            .cmdline()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        modules.push(Module {
            name: String::from(name),
            start,
            end,
        });
    }
    let (free, total) = mem::stats();
    log::info!(
        "memory: {} MiB free of {} MiB usable; {} modules",
        free * 4 / 1024,
        total * 4 / 1024,
        modules.len()
    );

    let caps = vmx::read_caps().unwrap_or_else(|e| {
        log::error!("VMX unavailable: {e}");
        panic_msg("this machine cannot run xenolith (no usable VMX)")
    });
    vmx::log_caps(&caps);
    if let Err(e) = vmx::enable(&caps) {
        log::error!("cannot enable VMX: {e}");
        panic_msg("VMX enable failed");
    }
    log::info!("VMX root operation entered");
    cpu::init();

    let host_mtrr = read_host_mtrrs();
    let mut host = host::KernelHost;
    let mut machine = machine::Machine::new(&caps, sched_params);
    let mut domid: u16 = 0;
    for cfg in modules.iter().filter(|m| m.name.ends_with(".cfg")) {
        domid += 1;
        if let Some((run, dcfg)) =
            domain::build_domain(domid, cfg, &modules, &caps, &host_mtrr, &mut host)
        {
            machine.add(run, &dcfg);
        }
    }
    if domid == 0 {
        log::warn!("no domain configuration among the boot modules");
    }
    machine.run(&mut host);
    let (free, _) = mem::stats();
    log::info!(
        "after all domains: {} MiB free, heap {} KiB in use",
        free * 4 / 1024,
        mem::heap_used() >> 10
    );
    kprintln!("xenolith: all domains finished");
    machine_exit(true)
}
