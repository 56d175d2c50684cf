//! The kernel command line, read from the Linux `boot_params` page the domain builder made (the
//! 64-bit direct boot) or from `hvm_start_info.cmdline_paddr` (the PVH entry, `pvh.rs`).

use crate::arch;

/// Offset of `hdr.cmd_line_ptr` (u32) in `struct boot_params`.
const BOOT_PARAMS_CMD_LINE_PTR: u64 = 0x228;
/// Longest command line kept (longer ones are truncated).
const CMDLINE_CAP: usize = 512;

/// A private copy of the NUL-terminated command line.
pub struct CmdLine {
    /// The bytes, without the NUL.
    buf: [u8; CMDLINE_CAP],
    /// How many bytes of `buf` are used.
    len: usize,
}

impl CmdLine {
    /// Copies the command line that `boot_params` (a GPA) points at; empty if either is 0.
    pub fn from_boot_params(boot_params: u64) -> Self {
        if boot_params == 0 {
            return Self::from_phys(0);
        }
        // SAFETY: boot_params is the page the domain builder filled (identity-mapped guest
        // RAM that no Rust object occupies); the read is bounds-checked below 4 GiB.
        let ptr = u64::from(unsafe { arch::read_phys_u32(boot_params + BOOT_PARAMS_CMD_LINE_PTR) });
        Self::from_phys(ptr)
    }

    /// Copies the NUL-terminated command line at guest-physical address `ptr`; empty if it is 0.
    pub fn from_phys(ptr: u64) -> Self {
        let mut line = Self {
            buf: [0; CMDLINE_CAP],
            len: 0,
        };
        if ptr == 0 {
            return line;
        }
        while line.len < CMDLINE_CAP {
            // SAFETY: the builder-written command line in identity-mapped guest RAM that no
            // Rust object occupies; `read_phys_u8` checks the 4 GiB bound.
            let b = unsafe { arch::read_phys_u8(ptr + line.len as u64) };
            if b == 0 {
                break;
            }
            line.buf[line.len] = b;
            line.len += 1;
        }
        line
    }

    /// The command line's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The rest of the first whitespace-separated word that starts with `prefix`.
    pub fn word_value(&self, prefix: &[u8]) -> Option<&[u8]> {
        self.as_bytes()
            .split(|b| b.is_ascii_whitespace())
            .find_map(|word| word.strip_prefix(prefix))
    }
}
