//! `test=physmap-moves`: moves `shared_info` and grant frame 0 with `XENMEM_add_to_physmap`
//! over thousands of guest frames spread across its RAM, each move punching a hole in the p2m
//! (the RAM page there is dropped, the page moved away from leaves a hole), until the
//! hypervisor refuses or [`MAX_MOVES`] is reached. Then `shared_info` must still work where it
//! was last mapped.
//!
//! Lines: `GUEST physmap ram=<hex>-<hex> slots=<n>`, `GUEST physmap moves=<n> rc=<rc>`,
//! `GUEST physmap shared_info gpfn=<hex> wc_sec=<n> ok` (or `FAIL`), `GUEST physmap done`.

use guest_abi::memory::{XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO};

use crate::hostile;
use crate::identity;
use crate::xen;

/// The lowest frame moved onto (8 MiB: above the guest image, its stack and the boot pages).
const FIRST_GPFN: u64 = 0x800;
/// The most moves made.
const MAX_MOVES: u64 = 20_000;
/// Step through the slots: a prime, so it visits every slot unless their count is a multiple of it.
const STRIDE: u64 = 7919;

/// Runs the moves and powers the domain off; `ram_end` is the end of the highest RAM range in
/// the builder's memory map.
pub fn run(ram_end: u64) -> ! {
    let end_gpfn = ram_end >> 12;
    let first = FIRST_GPFN.max((hostile::image_end() >> 12) + 1);
    // Every other frame, so that each hole is its own p2m extent between two RAM pages.
    let slots = end_gpfn.saturating_sub(first) / 2;
    say!(
        "physmap ram={:#x}-{:#x} slots={slots}",
        first << 12,
        end_gpfn << 12
    );
    if slots < 2 || slots.is_multiple_of(STRIDE) {
        say!("physmap FAIL (no room to move in)");
        xen::shutdown(xen::SHUTDOWN_CRASH);
    }
    let mut moves = 0u64;
    let mut rc = 0;
    let mut shared_info_gpfn = None;
    for k in 0..MAX_MOVES {
        // Alternate the two pages; consecutive moves never land on the same frame.
        let gpfn = first + 2 * ((k * STRIDE) % slots);
        let space = if k % 2 == 0 {
            XENMAPSPACE_SHARED_INFO
        } else {
            XENMAPSPACE_GRANT_TABLE
        };
        rc = hostile::add_to_physmap(space, 0, gpfn);
        if rc != 0 {
            break;
        }
        moves += 1;
        if space == XENMAPSPACE_SHARED_INFO {
            shared_info_gpfn = Some(gpfn);
        }
    }
    say!("physmap moves={moves} rc={rc}");
    match shared_info_gpfn {
        Some(gpfn) => {
            say!("physmap reading shared_info at gpfn={gpfn:#x}");
            let (wc_version, wc_sec) = identity::read_wallclock(gpfn << 12);
            let ok = wc_version % 2 == 0 && wc_sec > identity::MIN_PLAUSIBLE_WC_SEC;
            say!(
                "physmap shared_info gpfn={gpfn:#x} wc_sec={wc_sec} {}",
                if ok { "ok" } else { "FAIL" }
            );
        }
        None => say!("physmap shared_info FAIL (never mapped)"),
    }
    say!("physmap done");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
