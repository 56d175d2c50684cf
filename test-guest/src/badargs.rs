//! `test=bad-args`: hypercalls with bad numbers, sub-ops and pointers must fail cleanly with
//! the right Xen errno, then the domain powers off.

use crate::hypercall::hypercall;
use crate::xen::{self, AddToPhysmap, EFAULT, EINVAL, ENOSYS};

/// A canonical higher-half address: the builder's page tables map only 0-4 GiB.
const UNMAPPED: u64 = 0xFFFF_8000_DEAD_0000;
/// A non-canonical address (bit 47 set, bits 63:48 clear).
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
/// A hypercall number that no hypervisor implements.
const UNKNOWN_HYPERCALL: u64 = 99;
/// A hypercall number whose low 32 bits are `xen_version`: the full RAX must be checked.
const HUGE_HYPERCALL: u64 = 0xFFFF_FFFF_0000_0011;
/// An unused `XENMAPSPACE_*` value.
const BAD_MAPSPACE: u32 = 99;
/// GFN used by the `add_to_physmap` cases (where identity mode maps shared_info).
const GPFN: u64 = 0xF0000;

/// One bad-argument hypercall and the result it must give.
struct Case {
    /// Name printed in the result line.
    name: &'static str,
    /// Hypercall number (RAX).
    nr: u64,
    /// Arguments (RDI, RSI, RDX, R10, R8).
    args: [u64; 5],
    /// The expected return value (a negative errno).
    want: i64,
}

/// Runs every case, prints one line each and a summary, then powers the domain off.
pub fn run() -> ! {
    let mut bad_space = AddToPhysmap {
        domid: xen::DOMID_SELF,
        size: 0,
        space: BAD_MAPSPACE,
        idx: 0,
        gpfn: GPFN,
    };
    let mut bad_idx = AddToPhysmap {
        space: xen::XENMAPSPACE_SHARED_INFO,
        idx: 1,
        ..bad_space
    };
    let bad_space_ptr = &mut bad_space as *mut AddToPhysmap as u64;
    let bad_idx_ptr = &mut bad_idx as *mut AddToPhysmap as u64;

    let cases = [
        Case {
            name: "unknown-hypercall-99",
            nr: UNKNOWN_HYPERCALL,
            args: [0; 5],
            want: -ENOSYS,
        },
        Case {
            name: "xen_version-extraversion-unmapped",
            nr: xen::HYPERVISOR_XEN_VERSION,
            args: [xen::XENVER_EXTRAVERSION, UNMAPPED, 0, 0, 0],
            want: -EFAULT,
        },
        Case {
            name: "xen_version-extraversion-noncanonical",
            nr: xen::HYPERVISOR_XEN_VERSION,
            args: [xen::XENVER_EXTRAVERSION, NON_CANONICAL, 0, 0, 0],
            want: -EFAULT,
        },
        Case {
            name: "xen_version-unknown-cmd",
            nr: xen::HYPERVISOR_XEN_VERSION,
            args: [0x7777, 0, 0, 0, 0],
            want: -ENOSYS,
        },
        Case {
            name: "console_io-write-unmapped",
            nr: xen::HYPERVISOR_CONSOLE_IO,
            args: [xen::CONSOLEIO_WRITE, 16, UNMAPPED, 0, 0],
            want: -EFAULT,
        },
        Case {
            name: "console_io-unknown-cmd",
            nr: xen::HYPERVISOR_CONSOLE_IO,
            args: [7, 0, 0, 0, 0],
            want: -ENOSYS,
        },
        Case {
            name: "memory_op-add_to_physmap-bad-space",
            nr: xen::HYPERVISOR_MEMORY_OP,
            args: [xen::XENMEM_ADD_TO_PHYSMAP, bad_space_ptr, 0, 0, 0],
            want: -EINVAL,
        },
        Case {
            name: "memory_op-add_to_physmap-shared_info-idx1",
            nr: xen::HYPERVISOR_MEMORY_OP,
            args: [xen::XENMEM_ADD_TO_PHYSMAP, bad_idx_ptr, 0, 0, 0],
            want: -EINVAL,
        },
        Case {
            name: "memory_op-add_to_physmap-unmapped",
            nr: xen::HYPERVISOR_MEMORY_OP,
            args: [xen::XENMEM_ADD_TO_PHYSMAP, UNMAPPED, 0, 0, 0],
            want: -EFAULT,
        },
        Case {
            name: "memory_op-unknown-cmd",
            nr: xen::HYPERVISOR_MEMORY_OP,
            args: [0x777, 0, 0, 0, 0],
            want: -ENOSYS,
        },
        Case {
            name: "sched_op-shutdown-unmapped",
            nr: xen::HYPERVISOR_SCHED_OP,
            args: [xen::SCHEDOP_SHUTDOWN, UNMAPPED, 0, 0, 0],
            want: -EFAULT,
        },
        Case {
            name: "sched_op-unknown-cmd",
            nr: xen::HYPERVISOR_SCHED_OP,
            args: [99, 0, 0, 0, 0],
            want: -ENOSYS,
        },
        Case {
            name: "huge-hypercall-number",
            nr: HUGE_HYPERCALL,
            args: [xen::XENVER_VERSION, 0, 0, 0, 0],
            want: -ENOSYS,
        },
    ];

    let mut matched = 0;
    for case in &cases {
        // SAFETY: every pointer argument in `cases` is either UNMAPPED / NON_CANONICAL (the
        // hypervisor cannot reach any guest memory through it) or points to `bad_space` /
        // `bad_idx`, live locals with no outstanding references that the (failing) operation
        // may only read or write as a `struct xen_add_to_physmap`.
        let rc = unsafe { hypercall(case.nr, case.args) };
        let ok = rc == case.want;
        matched += usize::from(ok);
        say!(
            "badarg {}: rc={rc} want={} {}",
            case.name,
            case.want,
            if ok { "ok" } else { "FAIL" }
        );
    }
    let total = cases.len();
    say!(
        "badargs {matched}/{total} {}",
        if matched == total { "ok" } else { "FAIL" }
    );
    say!("done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
