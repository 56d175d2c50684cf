//! Node permissions (`xenstore.txt` "GET_PERMS/SET_PERMS"; xenstored's `perm_for_conn`).
//!
//! A node carries a non-empty list of [`Perm`]. The first entry names the **owner** and the
//! access of **every domain not listed**; later entries grant access to specific domains. The
//! owner, and dom0 (privileged), may do anything, including changing the permissions.

use crate::error::XsError;
use alloc::vec::Vec;

/// The access one permission entry grants (`n`, `r`, `w`, `b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `n`: no access.
    None,
    /// `r`: read only.
    Read,
    /// `w`: write only.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// The wire letter (`b'n'`, `b'r'`, `b'w'`, `b'b'`).
    pub const fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    /// The access for a wire letter, if it is one.
    pub const fn from_letter(letter: u8) -> Option<Access> {
        match letter {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }

    /// The rights bits this access grants.
    const fn rights(self) -> u8 {
        match self {
            Access::None => 0,
            Access::Read => RIGHT_READ,
            Access::Write => RIGHT_WRITE,
            Access::Both => RIGHT_READ | RIGHT_WRITE,
        }
    }
}

/// One permission entry: `access` for `domid` (or, first in a list, owner and default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    /// The domain this entry names.
    pub domid: u16,
    /// What it grants.
    pub access: Access,
}

impl Perm {
    /// An entry granting `access` to `domid`.
    pub const fn new(access: Access, domid: u16) -> Perm {
        Perm { domid, access }
    }

    /// Parses the wire form `<letter><decimal domid>` (`"r5"`); `EINVAL` if malformed.
    pub fn parse(s: &[u8]) -> Result<Perm, XsError> {
        let (&letter, digits) = s.split_first().ok_or(XsError::Inval)?;
        let access = Access::from_letter(letter).ok_or(XsError::Inval)?;
        let domid = parse_u16(digits).ok_or(XsError::Inval)?;
        Ok(Perm { domid, access })
    }

    /// Appends the wire form (`"r5"`, no NUL) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(self.access.letter());
        push_decimal(out, u64::from(self.domid));
    }
}

/// Strict decimal `u16` (digits only, at least one).
fn parse_u16(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(d - b'0');
    }
    u16::try_from(v).ok()
}

/// Appends `v` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Right to read a node.
pub(crate) const RIGHT_READ: u8 = 1;
/// Right to write a node (and to create children under it).
pub(crate) const RIGHT_WRITE: u8 = 2;
/// Right to change a node's permissions.
pub(crate) const RIGHT_OWNER: u8 = 4;
/// Every right.
pub(crate) const RIGHTS_ALL: u8 = RIGHT_READ | RIGHT_WRITE | RIGHT_OWNER;

/// Who is asking: a connection's identity as the permission check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Who {
    /// The caller's domid.
    pub domid: u16,
    /// dom0 (the hypervisor's own toolstack and backends): every right everywhere.
    pub privileged: bool,
    /// `SET_TARGET`: the caller acts with the rights of this domain too.
    pub target: Option<u16>,
}

impl Who {
    /// dom0, the in-process caller.
    pub const DOM0: Who = Who {
        domid: 0,
        privileged: true,
        target: None,
    };

    /// An unprivileged domain.
    pub const fn domu(domid: u16, target: Option<u16>) -> Who {
        Who {
            domid,
            privileged: false,
            target,
        }
    }

    fn is(&self, domid: u16) -> bool {
        self.domid == domid || self.target == Some(domid)
    }

    /// The rights `perms` give this caller (xenstored's `perm_for_conn`).
    pub fn rights(&self, perms: &[Perm]) -> u8 {
        let Some(first) = perms.first() else {
            return if self.privileged { RIGHTS_ALL } else { 0 };
        };
        if self.privileged || self.is(first.domid) {
            return RIGHTS_ALL;
        }
        perms[1..]
            .iter()
            .find(|p| self.is(p.domid))
            .unwrap_or(first)
            .access
            .rights()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn parse_and_format() {
        assert_eq!(Perm::parse(b"r5"), Ok(Perm::new(Access::Read, 5)));
        assert_eq!(Perm::parse(b"b65535"), Ok(Perm::new(Access::Both, 65535)));
        assert_eq!(Perm::parse(b"n0"), Ok(Perm::new(Access::None, 0)));
        for bad in [&b""[..], b"r", b"x1", b"r65536", b"r-1", b"r1a", b"r123456"] {
            assert_eq!(Perm::parse(bad), Err(XsError::Inval), "{bad:?}");
        }
        let mut out = Vec::new();
        Perm::new(Access::Write, 42).write_to(&mut out);
        assert_eq!(out, b"w42");
    }

    #[test]
    fn rights() {
        let perms = vec![Perm::new(Access::None, 0), Perm::new(Access::Read, 5)];
        assert_eq!(Who::DOM0.rights(&perms), RIGHTS_ALL);
        assert_eq!(Who::domu(5, None).rights(&perms), RIGHT_READ);
        assert_eq!(Who::domu(6, None).rights(&perms), 0);
        assert_eq!(Who::domu(6, Some(5)).rights(&perms), RIGHT_READ);
        let owned = vec![Perm::new(Access::Read, 7)];
        assert_eq!(Who::domu(7, None).rights(&owned), RIGHTS_ALL);
        assert_eq!(Who::domu(8, None).rights(&owned), RIGHT_READ);
    }
}
