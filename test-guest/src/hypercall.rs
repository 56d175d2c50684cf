//! The raw Xen hypercall instruction (x86-64 HVM ABI, `docs/protocol.md` "Hypercalls").

use core::arch::asm;

/// Issues hypercall `nr` with `args` in RDI, RSI, RDX, R10, R8 and returns RAX.
///
/// The result is 0 or more on success and a negative Xen errno on failure. The ABI preserves
/// every register but RAX; the argument registers are still declared clobbered (Xen's debug
/// builds poison them) and memory is treated as read and written.
///
/// # Safety
/// Every pointer argument must either be invalid for the hypervisor to access (unmapped or
/// non-canonical: it then fails with `-EFAULT`) or point to memory the called operation may
/// read and write for its documented size, with no live Rust reference that such an access
/// would violate.
pub unsafe fn hypercall(nr: u64, args: [u64; 5]) -> i64 {
    let ret: u64;
    // SAFETY: `vmcall` exits to the hypervisor, which accesses only the memory the caller
    // vouched for. Argument registers are marked clobbered; no stack is used.
    unsafe {
        asm!(
            "vmcall",
            inlateout("rax") nr => ret,
            inlateout("rdi") args[0] => _,
            inlateout("rsi") args[1] => _,
            inlateout("rdx") args[2] => _,
            inlateout("r10") args[3] => _,
            inlateout("r8") args[4] => _,
            options(nostack),
        );
    }
    ret as i64
}
