//! Coverage-guided fuzz harnesses of xenolith's guest-facing code, one module per target.
//!
//! Each module's `run(data)` turns libFuzzer's bytes into what a hostile guest can do to that
//! part (read as a little program by [`Input`]) and checks, besides the absence of panics, the
//! properties the crate promises. The binaries in `fuzz_targets/` only call `run`; `cargo test`
//! here runs each harness on a few fixed inputs. `xenolith-tools fuzz` builds and runs them.
//!
//! | target | what the guest controls |
//! |---|---|
//! | [`xenstore_wire`] | the bytes and indices of its xenstore ring page, reconnects, requests of every type |
//! | [`netback_rings`] | its netfront: TX and RX ring slots and indices, grant entries, xenstore keys and states |
//! | [`hypercall_dispatch`] | hypercall numbers and arguments, its memory (page tables included), CR3 and paging mode, FIFO control blocks and event arrays |
//! | [`domcfg_parse`] | (the toolstack's) `xl.cfg` text |
//! | [`elf_notes`] | (the user's) kernel image: its ELF headers and Xen notes; the PVH boot-info specification |

extern crate alloc;

pub mod domcfg_parse;
pub mod elf_notes;
pub mod hypercall_dispatch;
pub mod netback_rings;
pub mod xenstore_wire;

use arbitrary::Unstructured;

/// libFuzzer's input read as a sequence of choices. Every read is infallible: once the bytes
/// run out, reads give the smallest choice (zero, the first element, an empty slice), so any
/// input is a complete program.
pub struct Input<'a>(Unstructured<'a>);

impl<'a> Input<'a> {
    /// Reads choices from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input(Unstructured::new(data))
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An integer in `lo..=hi`.
    pub fn range<T>(&mut self, lo: T, hi: T) -> T
    where
        T: arbitrary::unstructured::Int + Copy,
    {
        self.0.int_in_range(lo..=hi).unwrap_or(lo)
    }

    /// Any value of a plain integer type (or anything else `Arbitrary`).
    pub fn any<T: arbitrary::Arbitrary<'a> + Default>(&mut self) -> T {
        T::arbitrary(&mut self.0).unwrap_or_default()
    }

    /// True with probability `num / den` (false once the bytes have run out).
    pub fn ratio(&mut self, num: u8, den: u8) -> bool {
        !self.0.is_empty() && self.0.ratio(num, den).unwrap_or(false)
    }

    /// One of `choices` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        *self.0.choose(choices).unwrap_or(&choices[0])
    }

    /// Up to `max` raw bytes (fewer when the input runs out).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.range(0, max);
        let n = n.min(self.0.len());
        self.0.bytes(n).unwrap_or(&[])
    }
}

/// `n` pseudo-random bytes from the xorshift64 state `x` (advanced): inputs for the sample
/// tests that check how far random programs reach.
#[cfg(test)]
pub(crate) fn xorshift_bytes(x: &mut u64, n: usize) -> alloc::vec::Vec<u8> {
    (0..n)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x as u8
        })
        .collect()
}

/// Runs a harness on a few fixed inputs (empty, zeros, every byte value, a repeated byte): what
/// `cargo test` here checks of the binary-input targets.
#[cfg(test)]
pub(crate) fn run_samples(run: fn(&[u8])) {
    run(b"");
    run(&[0; 64]);
    run(&(0..=255).collect::<alloc::vec::Vec<u8>>());
    run(&[0x42; 300]);
}
