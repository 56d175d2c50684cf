//! Xen error numbers (`xen/include/public/errno.h`).
//!
//! A failing hypercall returns the *negated* error number in RAX. Xen's values equal Linux's
//! for the names they share, but the set is Xen's own and fixed by its ABI.

use core::fmt;

/// A Xen error number (positive, as listed in `errno.h`).
///
/// A newtype rather than an enum because `errno.h` has aliases (`EWOULDBLOCK` = `EAGAIN`,
/// `EDEADLOCK` = `EDEADLK`) and because a guest may hand back any value.
///
/// ```
/// use guest_abi::Errno;
/// assert_eq!(Errno::ENOSYS.to_return(), (-38i64) as u64);
/// assert_eq!(Errno::EFAULT.name(), "EFAULT");
/// assert_eq!(Errno::from_return(Errno::EINVAL.to_return()), Some(Errno::EINVAL));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `EPERM` (1): Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// `ENOENT` (2): No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// `ESRCH` (3): No such process.
    pub const ESRCH: Errno = Errno(3);
    /// `EINTR` (4): Interrupted system call.
    pub const EINTR: Errno = Errno(4);
    /// `EIO` (5): I/O error.
    pub const EIO: Errno = Errno(5);
    /// `ENXIO` (6): No such device or address.
    pub const ENXIO: Errno = Errno(6);
    /// `E2BIG` (7): Arg list too long.
    pub const E2BIG: Errno = Errno(7);
    /// `ENOEXEC` (8): Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// `EBADF` (9): Bad file number.
    pub const EBADF: Errno = Errno(9);
    /// `ECHILD` (10): No child processes.
    pub const ECHILD: Errno = Errno(10);
    /// `EAGAIN` (11): Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// `ENOMEM` (12): Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// `EACCES` (13): Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// `EFAULT` (14): Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// `EBUSY` (16): Device or resource busy.
    pub const EBUSY: Errno = Errno(16);
    /// `EEXIST` (17): File exists.
    pub const EEXIST: Errno = Errno(17);
    /// `EXDEV` (18): Cross-device link.
    pub const EXDEV: Errno = Errno(18);
    /// `ENODEV` (19): No such device.
    pub const ENODEV: Errno = Errno(19);
    /// `ENOTDIR` (20): Not a directory.
    pub const ENOTDIR: Errno = Errno(20);
    /// `EISDIR` (21): Is a directory.
    pub const EISDIR: Errno = Errno(21);
    /// `EINVAL` (22): Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// `ENFILE` (23): File table overflow.
    pub const ENFILE: Errno = Errno(23);
    /// `EMFILE` (24): Too many open files.
    pub const EMFILE: Errno = Errno(24);
    /// `ENOSPC` (28): No space left on device.
    pub const ENOSPC: Errno = Errno(28);
    /// `EROFS` (30): Read-only file system.
    pub const EROFS: Errno = Errno(30);
    /// `EMLINK` (31): Too many links.
    pub const EMLINK: Errno = Errno(31);
    /// `EDOM` (33): Math argument out of domain of func.
    pub const EDOM: Errno = Errno(33);
    /// `ERANGE` (34): Math result not representable.
    pub const ERANGE: Errno = Errno(34);
    /// `EDEADLK` (35): Resource deadlock would occur.
    pub const EDEADLK: Errno = Errno(35);
    /// `ENAMETOOLONG` (36): File name too long.
    pub const ENAMETOOLONG: Errno = Errno(36);
    /// `ENOLCK` (37): No record locks available.
    pub const ENOLCK: Errno = Errno(37);
    /// `ENOSYS` (38): Function not implemented.
    pub const ENOSYS: Errno = Errno(38);
    /// `ENOTEMPTY` (39): Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(39);
    /// `ENODATA` (61): No data available.
    pub const ENODATA: Errno = Errno(61);
    /// `ETIME` (62): Timer expired.
    pub const ETIME: Errno = Errno(62);
    /// `EBADMSG` (74): Not a data message.
    pub const EBADMSG: Errno = Errno(74);
    /// `EOVERFLOW` (75): Value too large for defined data type.
    pub const EOVERFLOW: Errno = Errno(75);
    /// `EILSEQ` (84): Illegal byte sequence.
    pub const EILSEQ: Errno = Errno(84);
    /// `ERESTART` (85): Interrupted system call should be restarted.
    pub const ERESTART: Errno = Errno(85);
    /// `ENOTSOCK` (88): Socket operation on non-socket.
    pub const ENOTSOCK: Errno = Errno(88);
    /// `EMSGSIZE` (90): Message too large.
    pub const EMSGSIZE: Errno = Errno(90);
    /// `EOPNOTSUPP` (95): Operation not supported on transport endpoint.
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// `EADDRINUSE` (98): Address already in use.
    pub const EADDRINUSE: Errno = Errno(98);
    /// `EADDRNOTAVAIL` (99): Cannot assign requested address.
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    /// `ENOBUFS` (105): No buffer space available.
    pub const ENOBUFS: Errno = Errno(105);
    /// `EISCONN` (106): Transport endpoint is already connected.
    pub const EISCONN: Errno = Errno(106);
    /// `ENOTCONN` (107): Transport endpoint is not connected.
    pub const ENOTCONN: Errno = Errno(107);
    /// `ETIMEDOUT` (110): Connection timed out.
    pub const ETIMEDOUT: Errno = Errno(110);
    /// `ECONNREFUSED` (111): Connection refused.
    pub const ECONNREFUSED: Errno = Errno(111);
    /// `EWOULDBLOCK` (11): operation would block. Alias of [`Errno::EAGAIN`].
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// `EDEADLOCK` (35): resource deadlock would occur. Alias of [`Errno::EDEADLK`].
    pub const EDEADLOCK: Errno = Errno::EDEADLK;

    /// Every error number defined by Xen, without the aliases, in increasing order.
    pub const ALL: &'static [Errno] = &[
        Errno::EPERM,
        Errno::ENOENT,
        Errno::ESRCH,
        Errno::EINTR,
        Errno::EIO,
        Errno::ENXIO,
        Errno::E2BIG,
        Errno::ENOEXEC,
        Errno::EBADF,
        Errno::ECHILD,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::EFAULT,
        Errno::EBUSY,
        Errno::EEXIST,
        Errno::EXDEV,
        Errno::ENODEV,
        Errno::ENOTDIR,
        Errno::EISDIR,
        Errno::EINVAL,
        Errno::ENFILE,
        Errno::EMFILE,
        Errno::ENOSPC,
        Errno::EROFS,
        Errno::EMLINK,
        Errno::EDOM,
        Errno::ERANGE,
        Errno::EDEADLK,
        Errno::ENAMETOOLONG,
        Errno::ENOLCK,
        Errno::ENOSYS,
        Errno::ENOTEMPTY,
        Errno::ENODATA,
        Errno::ETIME,
        Errno::EBADMSG,
        Errno::EOVERFLOW,
        Errno::EILSEQ,
        Errno::ERESTART,
        Errno::ENOTSOCK,
        Errno::EMSGSIZE,
        Errno::EOPNOTSUPP,
        Errno::EADDRINUSE,
        Errno::EADDRNOTAVAIL,
        Errno::ENOBUFS,
        Errno::EISCONN,
        Errno::ENOTCONN,
        Errno::ETIMEDOUT,
        Errno::ECONNREFUSED,
    ];

    /// The positive error number.
    pub const fn value(self) -> i32 {
        self.0
    }

    /// The hypercall return value (RAX) for this error: the negated number, sign-extended to
    /// 64 bits (`-ENOSYS` is `0xffff_ffff_ffff_ffda`).
    pub const fn to_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// The error encoded in a hypercall return value, if `rax` is a negative errno of Xen's
    /// range (`-4095..=-1` as a signed value). Success values (0 and positive) give `None`.
    pub const fn from_return(rax: u64) -> Option<Errno> {
        let v = rax as i64;
        if v < 0 && v >= -4095 {
            Some(Errno((-v) as i32))
        } else {
            None
        }
    }

    /// Whether Xen's `errno.h` defines this number.
    pub fn is_known(self) -> bool {
        Errno::ALL.contains(&self)
    }

    /// The symbolic name (`"EFAULT"`), or `"E?"` for a number Xen does not define. Aliases give
    /// the primary name (`EWOULDBLOCK` reports `"EAGAIN"`).
    pub const fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            5 => "EIO",
            6 => "ENXIO",
            7 => "E2BIG",
            8 => "ENOEXEC",
            9 => "EBADF",
            10 => "ECHILD",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            18 => "EXDEV",
            19 => "ENODEV",
            20 => "ENOTDIR",
            21 => "EISDIR",
            22 => "EINVAL",
            23 => "ENFILE",
            24 => "EMFILE",
            28 => "ENOSPC",
            30 => "EROFS",
            31 => "EMLINK",
            33 => "EDOM",
            34 => "ERANGE",
            35 => "EDEADLK",
            36 => "ENAMETOOLONG",
            37 => "ENOLCK",
            38 => "ENOSYS",
            39 => "ENOTEMPTY",
            61 => "ENODATA",
            62 => "ETIME",
            74 => "EBADMSG",
            75 => "EOVERFLOW",
            84 => "EILSEQ",
            85 => "ERESTART",
            88 => "ENOTSOCK",
            90 => "EMSGSIZE",
            95 => "EOPNOTSUPP",
            98 => "EADDRINUSE",
            99 => "EADDRNOTAVAIL",
            105 => "ENOBUFS",
            106 => "EISCONN",
            107 => "ENOTCONN",
            110 => "ETIMEDOUT",
            111 => "ECONNREFUSED",
            _ => "E?",
        }
    }

    /// A short description from `errno.h` ("Bad address"), or `"unknown error"`.
    pub const fn description(self) -> &'static str {
        match self.0 {
            1 => "Operation not permitted",
            2 => "No such file or directory",
            3 => "No such process",
            4 => "Interrupted system call",
            5 => "I/O error",
            6 => "No such device or address",
            7 => "Arg list too long",
            8 => "Exec format error",
            9 => "Bad file number",
            10 => "No child processes",
            11 => "Try again",
            12 => "Out of memory",
            13 => "Permission denied",
            14 => "Bad address",
            16 => "Device or resource busy",
            17 => "File exists",
            18 => "Cross-device link",
            19 => "No such device",
            20 => "Not a directory",
            21 => "Is a directory",
            22 => "Invalid argument",
            23 => "File table overflow",
            24 => "Too many open files",
            28 => "No space left on device",
            30 => "Read-only file system",
            31 => "Too many links",
            33 => "Math argument out of domain of func",
            34 => "Math result not representable",
            35 => "Resource deadlock would occur",
            36 => "File name too long",
            37 => "No record locks available",
            38 => "Function not implemented",
            39 => "Directory not empty",
            61 => "No data available",
            62 => "Timer expired",
            74 => "Not a data message",
            75 => "Value too large for defined data type",
            84 => "Illegal byte sequence",
            85 => "Interrupted system call should be restarted",
            88 => "Socket operation on non-socket",
            90 => "Message too large",
            95 => "Operation not supported on transport endpoint",
            98 => "Address already in use",
            99 => "Cannot assign requested address",
            105 => "No buffer space available",
            106 => "Transport endpoint is already connected",
            107 => "Transport endpoint is not connected",
            110 => "Connection timed out",
            111 => "Connection refused",
            _ => "unknown error",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "Errno({})", self.0)
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "errno {}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values() {
        assert_eq!(Errno::EPERM.to_return(), u64::MAX);
        assert_eq!(Errno::ENOSYS.to_return(), 0xffff_ffff_ffff_ffda);
        assert_eq!(Errno::EFAULT.to_return() as i64, -14);
        for &e in Errno::ALL {
            assert_eq!(Errno::from_return(e.to_return()), Some(e));
        }
        assert_eq!(Errno::from_return(0), None);
        assert_eq!(Errno::from_return(5), None);
        assert_eq!(Errno::from_return((-4096i64) as u64), None);
    }

    #[test]
    fn names() {
        assert_eq!(Errno::EFAULT.name(), "EFAULT");
        assert_eq!(Errno::ENOSYS.name(), "ENOSYS");
        assert_eq!(Errno::EWOULDBLOCK.name(), "EAGAIN");
        assert_eq!(Errno::EDEADLOCK, Errno::EDEADLK);
        assert_eq!(Errno(1000).name(), "E?");
        assert_eq!(format!("{}", Errno::EINVAL), "EINVAL");
        assert_eq!(format!("{:?}", Errno(15)), "Errno(15)");
        assert_eq!(Errno::EFAULT.description(), "Bad address");
    }

    #[test]
    fn table_sorted_unique_named() {
        assert_eq!(Errno::ALL.len(), 49);
        for w in Errno::ALL.windows(2) {
            assert!(w[0] < w[1]);
        }
        for &e in Errno::ALL {
            assert!(e.is_known());
            assert_ne!(e.name(), "E?");
            assert_ne!(e.description(), "unknown error");
        }
    }
}
