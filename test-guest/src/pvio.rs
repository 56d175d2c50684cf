//! `test=pv-io`: the PV devices a small kernel drives with no platform at all, found through
//! its HVM params as on a Xen PVH domU: the console ring (`HVM_PARAM_CONSOLE_PFN`, kicked
//! through `HVM_PARAM_CONSOLE_EVTCHN`) and xenstore (`HVM_PARAM_STORE_PFN` /
//! `HVM_PARAM_STORE_EVTCHN`). Lines:
//! - `GUEST pv-io console ring ok` (written into the ring, not through `console_io`);
//! - `GUEST pv-io xenstore domid=<n> name=<name>` (its own nodes, read through the ring);
//! - `GUEST pv-io xenstore write-read ok` (a node of its home written and read back);
//!
//! Then it powers off with `SCHEDOP_shutdown`.

use guest_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};

use crate::hvm::{self, Deadline};
use crate::xs::Xs;
use crate::{evtchn, shmem, xen};

/// Offsets in `struct xencons_interface` (`io/console.h`): `in[1024]`, `out[2048]`, then the
/// four indices.
const OUT: u64 = 1024;
/// Size of the output ring.
const OUT_SIZE: u32 = 2048;
/// `out_cons`.
const OUT_CONS: u64 = 3080;
/// `out_prod`.
const OUT_PROD: u64 = 3084;

/// Runs the mode and powers off.
pub fn run() -> ! {
    console_ring(b"GUEST pv-io console ring ok\n");
    match xenstore() {
        Ok(()) => say!("pv-io xenstore write-read ok"),
        Err(why) => say!("pv-io xenstore FAIL ({why})"),
    }
    say!("done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}

/// Writes `line` into the console ring and kicks the console port; waits (bounded) until the
/// backend has taken it. Failures are reported through `console_io`.
fn console_ring(line: &[u8]) {
    let (pfn, port) = match (
        hvm::get_param(HVM_PARAM_CONSOLE_PFN),
        hvm::get_param(HVM_PARAM_CONSOLE_EVTCHN),
    ) {
        (Ok(pfn), Ok(port)) if pfn != 0 && pfn < 1 << 20 && port != 0 => (pfn, port as u32),
        (pfn, port) => {
            say!("pv-io console ring FAIL (HVM params: pfn {pfn:?}, port {port:?})");
            return;
        }
    };
    let ring = pfn << 12;
    let prod = shmem::rd32(ring + OUT_PROD);
    if prod.wrapping_sub(shmem::rd32(ring + OUT_CONS)) as usize + line.len() > OUT_SIZE as usize {
        say!("pv-io console ring FAIL (no room)");
        return;
    }
    for (i, &b) in line.iter().enumerate() {
        let at = prod.wrapping_add(i as u32) % OUT_SIZE;
        shmem::wr8(ring + OUT + at as u64, b);
    }
    // The bytes before the index the backend reads.
    shmem::barrier();
    let end = prod.wrapping_add(line.len() as u32);
    shmem::wr32(ring + OUT_PROD, end);
    evtchn::send(port);
    let taken = hvm::yield_until(Deadline::after_ms(5_000), || {
        shmem::rd32(ring + OUT_CONS) == end
    });
    if !taken {
        say!("pv-io console ring FAIL (the backend did not consume it)");
    }
}

/// Reads its `domid` and `name`, writes and reads back `data/pv-io`.
fn xenstore() -> Result<(), &'static str> {
    let mut xs = Xs::open().map_err(|_| "open")?;
    let domid = xs.read_u32(b"domid").map_err(|_| "read domid")?;
    let mut name = [0u8; 64];
    let n = {
        let v = xs.read(0, b"name").map_err(|_| "read name")?;
        let n = v.len().min(name.len());
        name[..n].copy_from_slice(&v[..n]);
        n
    };
    say!(
        "pv-io xenstore domid={domid} name={}",
        crate::console::Bytes(&name[..n])
    );
    xs.write(0, b"data/pv-io", b"hello")
        .map_err(|_| "write data/pv-io")?;
    match xs.read(0, b"data/pv-io") {
        Ok(v) if v == b"hello" => Ok(()),
        Ok(_) => Err("data/pv-io read back wrong"),
        Err(_) => Err("read data/pv-io"),
    }
}
