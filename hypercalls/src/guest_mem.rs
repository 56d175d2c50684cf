//! Guest memory, reached only through the p2m: guest-physical reads and
//! writes, and guest-virtual copies through the guest's own page tables
//! (no paging, 32-bit, PAE, 4- and 5-level, with 2 MiB/4 MiB/1 GiB pages).
//!
//! Every failure is `EFAULT` for the guest.

use crate::{Errno, Host};
use p2m::{P2m, P2mType};

const PAGE: u64 = 4096;
const CR0_PG: u64 = 1 << 31;
const CR0_WP: u64 = 1 << 16;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// The registers that decide how a guest-virtual address translates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingState {
    /// Guest CR0.
    pub cr0: u64,
    /// Guest CR3.
    pub cr3: u64,
    /// Guest CR4.
    pub cr4: u64,
    /// Guest IA32_EFER.
    pub efer: u64,
}

/// Host-physical address of a guest frame, if the p2m maps it to memory the
/// hypervisor may touch on the guest's behalf (RAM and special pages, not MMIO).
fn gfn_to_hpa(p2m: &P2m, gpa: u64) -> Result<u64, Errno> {
    match p2m.lookup(gpa / PAGE) {
        Some(e) if e.mapping.p2m_type == P2mType::RamRw => Ok(e.mfn * PAGE + gpa % PAGE),
        _ => Err(Errno::EFAULT),
    }
}

/// Reads guest-physical memory.
pub fn read_gpa(p2m: &P2m, host: &impl Host, mut gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let n = ((PAGE - gpa % PAGE) as usize).min(buf.len() - done);
        host.read_phys(gfn_to_hpa(p2m, gpa)?, &mut buf[done..done + n]);
        done += n;
        gpa = gpa.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    Ok(())
}

/// Writes guest-physical memory.
pub fn write_gpa(p2m: &P2m, host: &mut impl Host, mut gpa: u64, data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let n = ((PAGE - gpa % PAGE) as usize).min(data.len() - done);
        host.write_phys(gfn_to_hpa(p2m, gpa)?, &data[done..done + n]);
        done += n;
        gpa = gpa.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    Ok(())
}

fn read_u64(p2m: &P2m, host: &impl Host, gpa: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    read_gpa(p2m, host, gpa, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(p2m: &P2m, host: &impl Host, gpa: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 4];
    read_gpa(p2m, host, gpa, &mut b)?;
    Ok(u32::from_le_bytes(b) as u64)
}

/// Translates a guest-virtual address to guest-physical as a supervisor
/// access (`write` checks writability when CR0.WP is set).
pub fn translate_gva(
    p2m: &P2m,
    host: &impl Host,
    paging: &PagingState,
    gva: u64,
    write: bool,
) -> Result<u64, Errno> {
    if paging.cr0 & CR0_PG == 0 {
        return Ok(gva & 0xFFFF_FFFF);
    }
    let check_rw = write && paging.cr0 & CR0_WP != 0;
    let ok = |e: u64| e & PTE_P != 0 && (!check_rw || e & PTE_RW != 0);
    if paging.efer & EFER_LMA != 0 {
        let la57 = paging.cr4 & CR4_LA57 != 0;
        let (levels, va_bits) = if la57 { (5, 57) } else { (4, 48) };
        // Canonical: bits 63..va_bits-1 all equal.
        let top = (gva as i64) >> (va_bits - 1);
        if top != 0 && top != -1 {
            return Err(Errno::EFAULT);
        }
        let mut table = paging.cr3 & ADDR_MASK;
        for level in (1..=levels).rev() {
            let shift = 12 + 9 * (level - 1);
            let entry = read_u64(p2m, host, table + ((gva >> shift) & 511) * 8)?;
            if !ok(entry) {
                return Err(Errno::EFAULT);
            }
            if level == 1 || (level <= 3 && entry & PTE_PS != 0) {
                let size_mask = (1u64 << shift) - 1;
                return Ok((entry & ADDR_MASK & !size_mask) | (gva & size_mask));
            }
            table = entry & ADDR_MASK;
        }
        unreachable!("level 1 always returns")
    } else if paging.cr4 & CR4_PAE != 0 {
        let gva = gva & 0xFFFF_FFFF;
        let pdpte = read_u64(p2m, host, (paging.cr3 & 0xFFFF_FFE0) + (gva >> 30) * 8)?;
        if pdpte & PTE_P == 0 {
            return Err(Errno::EFAULT);
        }
        let pde = read_u64(p2m, host, (pdpte & ADDR_MASK) + ((gva >> 21) & 511) * 8)?;
        if !ok(pde) {
            return Err(Errno::EFAULT);
        }
        if pde & PTE_PS != 0 {
            return Ok((pde & ADDR_MASK & !0x1F_FFFF) | (gva & 0x1F_FFFF));
        }
        let pte = read_u64(p2m, host, (pde & ADDR_MASK) + ((gva >> 12) & 511) * 8)?;
        if !ok(pte) {
            return Err(Errno::EFAULT);
        }
        Ok((pte & ADDR_MASK) | (gva & 0xFFF))
    } else {
        let gva = gva & 0xFFFF_FFFF;
        let pde = read_u32(p2m, host, (paging.cr3 & 0xFFFF_F000) + (gva >> 22) * 4)?;
        if !ok(pde) {
            return Err(Errno::EFAULT);
        }
        if pde & PTE_PS != 0 && paging.cr4 & CR4_PSE != 0 {
            // 4 MiB page: bits 20:13 hold physical address bits 39:32.
            let base = (pde & 0xFFC0_0000) | ((pde >> 13) & 0xFF) << 32;
            return Ok(base | (gva & 0x3F_FFFF));
        }
        let pte = read_u32(p2m, host, (pde & 0xFFFF_F000) + ((gva >> 12) & 1023) * 4)?;
        if !ok(pte) {
            return Err(Errno::EFAULT);
        }
        Ok((pte & 0xFFFF_F000) | (gva & 0xFFF))
    }
}

/// Copies from guest-virtual memory (a hypercall argument).
pub fn copy_from_guest(
    p2m: &P2m,
    host: &impl Host,
    paging: &PagingState,
    mut gva: u64,
    buf: &mut [u8],
) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let n = ((PAGE - gva % PAGE) as usize).min(buf.len() - done);
        let gpa = translate_gva(p2m, host, paging, gva, false)?;
        read_gpa(p2m, host, gpa, &mut buf[done..done + n])?;
        done += n;
        gva = gva.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    Ok(())
}

/// Copies to guest-virtual memory (a hypercall result).
pub fn copy_to_guest(
    p2m: &P2m,
    host: &mut impl Host,
    paging: &PagingState,
    mut gva: u64,
    data: &[u8],
) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let n = ((PAGE - gva % PAGE) as usize).min(data.len() - done);
        let gpa = translate_gva(p2m, host, paging, gva, true)?;
        write_gpa(p2m, host, gpa, &data[done..done + n])?;
        done += n;
        gva = gva.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    Ok(())
}
