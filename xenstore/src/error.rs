//! Errors, as xenstore reports them on the wire: the errno *name* (`"ENOENT"`), never a number.

use core::fmt;

/// A xenstore error: one of the names of Xen's `xsd_errors[]` table (`io/xs_wire.h`).
///
/// On the wire an error is an `XS_ERROR` reply whose payload is [`XsError::name`] followed by a
/// NUL. The in-process API returns the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XsError {
    /// `EINVAL`: malformed request, bad path, unknown argument.
    Inval,
    /// `EACCES`: permission denied, or a privileged operation from a domU.
    Acces,
    /// `EEXIST`: the watch (path, token) is already registered.
    Exist,
    /// `EISDIR`.
    Isdir,
    /// `ENOENT`: no such node, transaction or watch.
    Noent,
    /// `ENOMEM`: the domain's memory quota was hit, or a transaction was already failed (a
    /// limit hit inside it).
    Nomem,
    /// `ENOSPC`: a quota was hit (nodes, node size, watches, transactions, nodes per
    /// transaction, permissions per node).
    Nospc,
    /// `EIO`.
    Io,
    /// `ENOTEMPTY`.
    Notempty,
    /// `ENOSYS`: unknown message type.
    Nosys,
    /// `EROFS`.
    Rofs,
    /// `EBUSY`: `TRANSACTION_START` sent inside a transaction.
    Busy,
    /// `EAGAIN`: transaction conflict; the client retries.
    Again,
    /// `EISCONN`.
    Isconn,
    /// `E2BIG`: reply larger than `XENSTORE_PAYLOAD_MAX`.
    TooBig,
    /// `EPERM`: a domU tried to give one of its nodes to another owner.
    Perm,
}

impl XsError {
    /// The errno name sent on the wire (`"ENOENT"`), without the trailing NUL.
    pub const fn name(self) -> &'static str {
        match self {
            XsError::Inval => "EINVAL",
            XsError::Acces => "EACCES",
            XsError::Exist => "EEXIST",
            XsError::Isdir => "EISDIR",
            XsError::Noent => "ENOENT",
            XsError::Nomem => "ENOMEM",
            XsError::Nospc => "ENOSPC",
            XsError::Io => "EIO",
            XsError::Notempty => "ENOTEMPTY",
            XsError::Nosys => "ENOSYS",
            XsError::Rofs => "EROFS",
            XsError::Busy => "EBUSY",
            XsError::Again => "EAGAIN",
            XsError::Isconn => "EISCONN",
            XsError::TooBig => "E2BIG",
            XsError::Perm => "EPERM",
        }
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_in_xsd_errors() {
        let all = [
            XsError::Inval,
            XsError::Acces,
            XsError::Exist,
            XsError::Isdir,
            XsError::Noent,
            XsError::Nomem,
            XsError::Nospc,
            XsError::Io,
            XsError::Notempty,
            XsError::Nosys,
            XsError::Rofs,
            XsError::Busy,
            XsError::Again,
            XsError::Isconn,
            XsError::TooBig,
            XsError::Perm,
        ];
        assert_eq!(all.len(), guest_abi::xenstore::XSD_ERRORS.len());
        for (e, name) in all.iter().zip(guest_abi::xenstore::XSD_ERRORS) {
            assert_eq!(e.name(), *name);
        }
    }
}
