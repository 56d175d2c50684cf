//! Host physical memory: a bitmap frame allocator over the multiboot2 memory
//! map (below 4 GiB, which the boot page tables identity-map) and the heap.

use linked_list_allocator::LockedHeap;
use spin::Mutex;

/// Size of a 4 KiB frame.
pub const PAGE_SIZE: u64 = 4096;
const MAX_FRAMES: usize = 1 << 20; // 4 GiB
const HEAP_SIZE: u64 = 48 << 20;
/// Heap the hypervisor keeps for itself (the switch, the peer host, logs);
/// the rest is reserved to domains by their budgets.
const HEAP_HYPERVISOR: u64 = 8 << 20;

/// Heap reservations of the live domains (see `hypercalls::budget`).
static HEAP_LEDGER: Mutex<hypercalls::budget::HeapLedger> = Mutex::new(
    hypercalls::budget::HeapLedger::new(HEAP_SIZE - HEAP_HYPERVISOR),
);

/// Reserves `bytes` of heap for domain `domid`, or says why it does not fit.
pub fn reserve_heap(domid: u16, bytes: u64) -> Result<(), hypercalls::budget::OverBudget> {
    HEAP_LEDGER.lock().reserve(domid, bytes)
}

/// Gives back domain `domid`'s heap reservation.
pub fn release_heap(domid: u16) {
    HEAP_LEDGER.lock().release(domid)
}

/// Bytes of heap in use now.
pub fn heap_used() -> usize {
    HEAP.lock().used()
}

/// The heap: `linked_list_allocator`. The network path allocates nothing per
/// packet (its buffers come from per-vif pools made when a vif is created),
/// so a first-fit free list is enough.
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// One bit per 4 KiB frame below 4 GiB: 1 = free.
struct FrameBitmap {
    free: [u64; MAX_FRAMES / 64],
    free_count: usize,
    total: usize,
}

static FRAMES: Mutex<FrameBitmap> = Mutex::new(FrameBitmap {
    free: [0; MAX_FRAMES / 64],
    free_count: 0,
    total: 0,
});

impl FrameBitmap {
    fn is_free(&self, f: usize) -> bool {
        self.free[f / 64] & (1 << (f % 64)) != 0
    }
    fn set(&mut self, f: usize, free: bool) {
        if free {
            self.free[f / 64] |= 1 << (f % 64);
        } else {
            self.free[f / 64] &= !(1 << (f % 64));
        }
    }
    /// First run of `count` free frames aligned to `align` frames.
    fn alloc_run(&mut self, count: usize, align: usize) -> Option<usize> {
        let mut f = 0;
        while f + count <= MAX_FRAMES {
            if self.free[f / 64] == 0 && f % 64 == 0 {
                // 64 used frames: the next candidate is the first aligned one past them
                // (a run must start on `align`, e.g. 512 frames for a 2 MiB superpage).
                f = (f + 64).div_ceil(align) * align;
                continue;
            }
            match (f..f + count).find(|&g| !self.is_free(g)) {
                None => {
                    for g in f..f + count {
                        self.set(g, false);
                    }
                    self.free_count -= count;
                    return Some(f);
                }
                Some(used) => f = (used + 1).div_ceil(align) * align,
            }
        }
        None
    }
}

/// Marks `[start, end)` (host-physical, clipped to 4 GiB and to whole frames) free.
pub fn add_free_region(start: u64, end: u64) {
    let mut fb = FRAMES.lock();
    let first = start.div_ceil(PAGE_SIZE) as usize;
    let last = ((end / PAGE_SIZE) as usize).min(MAX_FRAMES);
    for f in first..last.max(first) {
        if !fb.is_free(f) {
            fb.set(f, true);
            fb.free_count += 1;
            fb.total += 1;
        }
    }
}

/// Marks `[start, end)` as in use (kernel image, modules, boot information).
pub fn reserve_region(start: u64, end: u64) {
    let mut fb = FRAMES.lock();
    let first = (start / PAGE_SIZE) as usize;
    let last = (end.div_ceil(PAGE_SIZE) as usize).min(MAX_FRAMES);
    for f in first..last.max(first) {
        if fb.is_free(f) {
            fb.set(f, false);
            fb.free_count -= 1;
        }
    }
}

/// Allocates `count` zeroed, contiguous frames aligned to `align` bytes.
pub fn alloc_frames(count: usize, align: u64) -> Option<u64> {
    let align_frames = (align / PAGE_SIZE).max(1) as usize;
    let f = FRAMES.lock().alloc_run(count, align_frames)?;
    let hpa = f as u64 * PAGE_SIZE;
    // SAFETY: the frames were free, are identity-mapped and now belong to the caller.
    unsafe { core::ptr::write_bytes(hpa as *mut u8, 0, count * PAGE_SIZE as usize) };
    Some(hpa)
}

/// Allocates one zeroed frame.
pub fn alloc_frame() -> Option<u64> {
    alloc_frames(1, PAGE_SIZE)
}

/// Returns `count` frames starting at `hpa` to the allocator.
pub fn free_frames(hpa: u64, count: usize) {
    let mut fb = FRAMES.lock();
    let first = (hpa / PAGE_SIZE) as usize;
    for f in first..first + count {
        if !fb.is_free(f) {
            fb.set(f, true);
            fb.free_count += 1;
        }
    }
}

/// (free, total) frame counts.
pub fn stats() -> (usize, usize) {
    let fb = FRAMES.lock();
    (fb.free_count, fb.total)
}

/// Carves the heap out of free frames.
pub fn init_heap() {
    let base = alloc_frames((HEAP_SIZE / PAGE_SIZE) as usize, 2 << 20)
        .unwrap_or_else(|| crate::panic_msg("no memory for the heap"));
    // SAFETY: the region was just allocated for the heap, is identity-mapped,
    // and is never used for anything else.
    unsafe { HEAP.lock().init(base as *mut u8, HEAP_SIZE as usize) };
}
