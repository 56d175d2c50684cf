//! `__HYPERVISOR_xen_version` sub-ops (`version.h`).

use crate::assert_size;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XENVER_version`: returns `(major << 16) | minor`; no argument.
pub const XENVER_VERSION: u32 = 0;
/// `XENVER_extraversion`: fills a [`XenExtraversion`] (16 bytes, e.g. `".0"`).
pub const XENVER_EXTRAVERSION: u32 = 1;
/// `XENVER_compile_info`: fills a [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u32 = 2;
/// `XENVER_capabilities`: fills a 1024-byte string (`"hvm-3.0-x86_64 ..."`).
pub const XENVER_CAPABILITIES: u32 = 3;
/// `XENVER_changeset`: fills a 64-byte string.
pub const XENVER_CHANGESET: u32 = 4;
/// `XENVER_platform_parameters`: fills a [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// `XENVER_get_features`: fills a [`XenFeatureInfo`] (`XENFEAT_*` bits, see
/// [`crate::features`]).
pub const XENVER_GET_FEATURES: u32 = 6;
/// `XENVER_pagesize`: returns the page size; no argument.
pub const XENVER_PAGESIZE: u32 = 7;
/// `XENVER_guest_handle`: fills a 16-byte domain handle (UUID).
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// `XENVER_commandline`: fills a 1024-byte string (Xen's own command line).
pub const XENVER_COMMANDLINE: u32 = 9;
/// `XENVER_build_id`: fills a `xen_varbuf` with the build id.
pub const XENVER_BUILD_ID: u32 = 10;
/// `XENVER_extraversion2`: like `extraversion` with a `xen_varbuf`.
pub const XENVER_EXTRAVERSION2: u32 = 11;
/// `XENVER_capabilities2`: like `capabilities` with a `xen_varbuf`.
pub const XENVER_CAPABILITIES2: u32 = 12;
/// `XENVER_changeset2`: like `changeset` with a `xen_varbuf`.
pub const XENVER_CHANGESET2: u32 = 13;
/// `XENVER_commandline2`: like `commandline` with a `xen_varbuf`.
pub const XENVER_COMMANDLINE2: u32 = 14;

/// `XEN_EXTRAVERSION_LEN`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `XEN_CAPABILITIES_INFO_LEN`.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `XEN_CHANGESET_INFO_LEN`.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// Length of `xen_commandline_t`.
pub const XEN_COMMANDLINE_LEN: usize = 1024;
/// Length of `xen_domain_handle_t` (a UUID).
pub const XEN_DOMAIN_HANDLE_LEN: usize = 16;

/// Encodes a version as `XENVER_version` returns it: `(major << 16) | minor`.
pub const fn encode_version(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// `xen_extraversion_t` (16 bytes): NUL-terminated version suffix such as `".0"`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenExtraversion(pub [u8; XEN_EXTRAVERSION_LEN]);
assert_size!(XenExtraversion, 16);

impl XenExtraversion {
    /// Builds the buffer from `s`, truncated to 15 bytes so that a NUL always follows.
    pub fn from_str_truncated(s: &str) -> Self {
        let mut buf = [0u8; XEN_EXTRAVERSION_LEN];
        let n = s.len().min(XEN_EXTRAVERSION_LEN - 1);
        buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        XenExtraversion(buf)
    }

    /// The bytes before the first NUL.
    pub fn as_bytes_until_nul(&self) -> &[u8] {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..n]
    }
}

/// `struct xen_compile_info` (144 bytes): NUL-terminated strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenCompileInfo {
    /// Compiler name and version.
    pub compiler: [u8; 64],
    /// Who built it.
    pub compile_by: [u8; 16],
    /// The builder's domain.
    pub compile_domain: [u8; 32],
    /// The build date.
    pub compile_date: [u8; 32],
}
assert_size!(XenCompileInfo, 144);

/// `struct xen_platform_parameters` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenPlatformParameters {
    /// Start of the hypervisor's virtual-address hole (PV).
    pub virt_start: u64,
}
assert_size!(XenPlatformParameters, 8);

/// `struct xen_feature_info` (8 bytes), the argument of `XENVER_get_features`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenFeatureInfo {
    /// In: which 32-bit submap to return (only 0 is defined).
    pub submap_idx: u32,
    /// Out: the 32 feature bits of that submap.
    pub submap: u32,
}
assert_size!(XenFeatureInfo, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraversion() {
        let e = XenExtraversion::from_str_truncated(".0-xenolith-very-long");
        assert_eq!(e.0[15], 0);
        assert_eq!(e.as_bytes_until_nul(), b".0-xenolith-ver");
        assert_eq!(
            XenExtraversion::from_str_truncated(".1").as_bytes_until_nul(),
            b".1"
        );
        assert_eq!(encode_version(4, 19), 0x0004_0013);
    }
}
