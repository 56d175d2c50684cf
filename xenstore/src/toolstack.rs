//! The tree a toolstack writes for an HVM domU (what xl/libxl write: `libxl_create.c`
//! `libxl__domain_make`, `libxl_dom.c` `libxl__build_post`, `libxl_device.c`
//! `libxl__device_generic_add`, `libxl_nic.c`, `libxl_console.c`), with dom0 as the backend
//! domain.
//!
//! Permissions follow libxl: the domain directory and its `cpu`, `memory`, `device`, `control`
//! directories are owned by dom0 and readable by the domain (`n0 rD`); the nodes the guest
//! writes (`control/shutdown`, `control/feature-*`, `control/sysrq`, `data`, `drivers`,
//! `feature`, `attr`, `error`, `device/suspend/event-channel`) are owned by it (`nD`); a device
//! frontend directory is owned by the domain and readable by the backend (`nD r0`); a backend
//! directory is owned by dom0 and readable by the domain (`n0 rD`).
//!
//! Not written: `memory/*` unless a size is given (then `static-max` and `target` are equal, so
//! the balloon driver does not shrink the guest at boot), `memory/videoram`, `hvmloader`,
//! `platform`, `/libxl`, hotplug keys (`script`, `bridge`, `hotplug-status`), and every
//! optional netback feature unless listed in [`DomainSpec::vif_backend_features`].

use crate::error::XsError;
use crate::path::domain_path;
use crate::perms::{Access, Perm};
use crate::Xenstore;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// One virtual network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VifSpec {
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// MTU written as `mtu` on both ends (netfront 6.1 does not read it).
    pub mtu: u16,
}

impl VifSpec {
    /// A vif with `mac` and MTU 1500.
    pub const fn new(mac: [u8; 6]) -> VifSpec {
        VifSpec { mac, mtu: 1500 }
    }
}

/// Backend features a minimal netback offers: `feature-rx-copy` (netfront refuses to connect
/// without it), `feature-rx-flip=0` and `feature-sg` (else netfront drops multi-slot packets).
/// GSO, checksum-offload, split event channels and multi-queue keys are left out.
pub const DEFAULT_VIF_BACKEND_FEATURES: &[(&str, &str)] = &[
    ("feature-rx-copy", "1"),
    ("feature-rx-flip", "0"),
    ("feature-sg", "1"),
];

/// `LIBXL_XENCONSOLE_LIMIT`: the console's buffer limit.
pub const CONSOLE_LIMIT: &str = "1048576";

/// What [`populate_domain`] writes for one domain.
#[derive(Clone, Debug)]
pub struct DomainSpec<'a> {
    /// The domain.
    pub domid: u16,
    /// `name` (also `/vm/<uuid>/name`).
    pub name: &'a str,
    /// The domain's UUID for `/vm/<uuid>`; `None` derives one from the domid
    /// (`00000000-0000-0000-0000-00000000xxxx`).
    pub uuid: Option<[u8; 16]>,
    /// Number of vCPUs: `cpu/<n>/availability = online` for each.
    pub vcpus: u32,
    /// Memory in KiB for `memory/static-max` and `memory/target` (equal); `None` omits both.
    pub memory_kib: Option<u64>,
    /// The xenstore event channel (`store/port`).
    pub store_port: u32,
    /// The xenstore ring's gfn (`store/ring-ref`).
    pub store_gfn: u64,
    /// The console event channel (`console/port`).
    pub console_port: u32,
    /// The console ring's gfn (`console/ring-ref`).
    pub console_gfn: u64,
    /// The vifs, devid = index.
    pub vifs: &'a [VifSpec],
    /// Key/value pairs written in every vif backend directory (see
    /// [`DEFAULT_VIF_BACKEND_FEATURES`]).
    pub vif_backend_features: &'a [(&'a str, &'a str)],
}

/// `aa:bb:cc:dd:ee:ff` (lower-case hex), as netfront parses it.
pub fn format_mac(mac: [u8; 6]) -> String {
    let m = mac;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The canonical `8-4-4-4-12` hex form of a UUID.
pub fn format_uuid(u: [u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `/local/domain/<domid>/device/vif/<devid>`.
pub fn vif_frontend_path(domid: u16, devid: u32) -> String {
    format!("/local/domain/{domid}/device/vif/{devid}")
}

/// `/local/domain/0/backend/vif/<domid>/<devid>`.
pub fn vif_backend_path(domid: u16, devid: u32) -> String {
    format!("/local/domain/0/backend/vif/{domid}/{devid}")
}

/// `/local/domain/0/backend/console/<domid>/0`.
pub fn console_backend_path(domid: u16) -> String {
    format!("/local/domain/0/backend/console/{domid}/0")
}

fn rm_if_exists(xs: &mut Xenstore, path: &str) -> Result<(), XsError> {
    if xs.exists(path) {
        xs.rm(path)?;
    }
    Ok(())
}

fn mknod(xs: &mut Xenstore, path: &str, perms: &[Perm]) -> Result<(), XsError> {
    xs.mkdir(path)?;
    xs.set_perms(path, perms)
}

fn write_str(xs: &mut Xenstore, path: &str, value: &str) -> Result<(), XsError> {
    xs.write(path, value.as_bytes())
}

fn write_with(xs: &mut Xenstore, path: &str, value: &str, perms: &[Perm]) -> Result<(), XsError> {
    xs.write(path, value.as_bytes())?;
    xs.set_perms(path, perms)
}

/// Writes the toolstack's tree for `spec.domid` (replacing any old one): the domain directory,
/// `/vm/<uuid>`, the console, and each vif's frontend and dom0 backend directories (backend in
/// `XenbusStateInitWait` = 2, frontend in `Initialising` = 1). Run it as dom0 before the guest
/// starts; it fails only on invalid input (`EINVAL`, e.g. a bad name).
pub fn populate_domain(xs: &mut Xenstore, spec: &DomainSpec<'_>) -> Result<(), XsError> {
    let d = spec.domid;
    let dom = domain_path(u32::from(d));
    // libxl's roperm, rwperm and device permissions.
    let ro = [Perm::new(Access::None, 0), Perm::new(Access::Read, d)];
    let rw = [Perm::new(Access::None, d)];
    let front = [Perm::new(Access::None, d), Perm::new(Access::Read, 0)];
    let back = ro;

    let uuid = spec.uuid.unwrap_or_else(|| {
        let mut u = [0u8; 16];
        u[14..].copy_from_slice(&d.to_be_bytes());
        u
    });
    let vm = format!("/vm/{}", format_uuid(uuid));

    rm_if_exists(xs, &dom)?;
    mknod(xs, &dom, &ro)?;
    rm_if_exists(xs, &vm)?;
    mknod(xs, &vm, &ro)?;
    write_str(xs, &format!("{vm}/uuid"), &format_uuid(uuid))?;
    write_str(xs, &format!("{vm}/name"), spec.name)?;
    write_str(xs, &format!("{dom}/vm"), &vm)?;
    write_str(xs, &format!("{dom}/name"), spec.name)?;
    write_str(xs, &format!("{dom}/domid"), &format!("{d}"))?;

    for dir in ["cpu", "memory", "device", "control"] {
        mknod(xs, &format!("{dom}/{dir}"), &ro)?;
    }
    for node in [
        "control/shutdown",
        "control/feature-poweroff",
        "control/feature-reboot",
        "control/feature-suspend",
        "control/sysrq",
        "device/suspend/event-channel",
        "data",
        "drivers",
        "feature",
        "attr",
        "error",
    ] {
        mknod(xs, &format!("{dom}/{node}"), &rw)?;
    }
    write_str(
        xs,
        &format!("{dom}/control/platform-feature-multiprocessor-suspend"),
        "1",
    )?;
    write_str(
        xs,
        &format!("{dom}/control/platform-feature-xs_reset_watches"),
        "1",
    )?;

    if let Some(kib) = spec.memory_kib {
        write_str(xs, &format!("{dom}/memory/static-max"), &format!("{kib}"))?;
        write_str(xs, &format!("{dom}/memory/target"), &format!("{kib}"))?;
    }
    write_str(
        xs,
        &format!("{dom}/store/port"),
        &format!("{}", spec.store_port),
    )?;
    write_str(
        xs,
        &format!("{dom}/store/ring-ref"),
        &format!("{}", spec.store_gfn),
    )?;
    for cpu in 0..spec.vcpus {
        write_str(xs, &format!("{dom}/cpu/{cpu}/availability"), "online")?;
    }

    // The primary console: frontend keys the guest may not change are dom0's.
    let con = format!("{dom}/console");
    let con_be = console_backend_path(d);
    rm_if_exists(xs, &con)?;
    mknod(xs, &con, &front)?;
    write_str(xs, &format!("{con}/backend"), &con_be)?;
    write_str(xs, &format!("{con}/backend-id"), "0")?;
    write_with(xs, &format!("{con}/limit"), CONSOLE_LIMIT, &ro)?;
    write_with(xs, &format!("{con}/type"), "xenconsoled", &ro)?;
    write_with(
        xs,
        &format!("{con}/port"),
        &format!("{}", spec.console_port),
        &ro,
    )?;
    write_with(
        xs,
        &format!("{con}/ring-ref"),
        &format!("{}", spec.console_gfn),
        &ro,
    )?;
    rm_if_exists(xs, &con_be)?;
    mknod(xs, &con_be, &back)?;
    for (k, v) in [
        ("frontend", con.as_str()),
        ("frontend-id", &format!("{d}")),
        ("online", "1"),
        ("state", "1"),
        ("protocol", "vt100"),
    ] {
        write_str(xs, &format!("{con_be}/{k}"), v)?;
    }

    for (devid, vif) in (0u32..).zip(spec.vifs) {
        let fe = vif_frontend_path(d, devid);
        let be = vif_backend_path(d, devid);
        let mac = format_mac(vif.mac);
        let handle = format!("{devid}");
        let mtu = format!("{}", vif.mtu);
        rm_if_exists(xs, &fe)?;
        mknod(xs, &fe, &front)?;
        for (k, v) in [
            ("backend", be.as_str()),
            ("backend-id", "0"),
            ("state", "1"),
            ("handle", &handle),
            ("mac", &mac),
            ("mtu", &mtu),
        ] {
            write_str(xs, &format!("{fe}/{k}"), v)?;
        }
        rm_if_exists(xs, &be)?;
        mknod(xs, &be, &back)?;
        let domid = format!("{d}");
        let mut keys: Vec<(&str, &str)> = Vec::from([
            ("frontend", fe.as_str()),
            ("frontend-id", domid.as_str()),
            ("online", "1"),
            ("state", "2"),
            ("handle", handle.as_str()),
            ("mac", mac.as_str()),
            ("mtu", mtu.as_str()),
        ]);
        keys.extend_from_slice(spec.vif_backend_features);
        for (k, v) in keys {
            write_str(xs, &format!("{be}/{k}"), v)?;
        }
    }
    Ok(())
}

/// Removes what [`populate_domain`] wrote for `domid`: `/vm/<uuid>`, `/local/domain/<domid>`
/// and every `/local/domain/0/backend/<kind>/<domid>`. Missing parts are fine.
pub fn depopulate_domain(xs: &mut Xenstore, domid: u16) -> Result<(), XsError> {
    let dom = domain_path(u32::from(domid));
    if let Ok(vm) = xs.read(&format!("{dom}/vm")) {
        if let Ok(vm) = core::str::from_utf8(&vm) {
            if vm.starts_with("/vm/") {
                rm_if_exists(xs, vm)?;
            }
        }
    }
    if xs.exists(&dom) {
        rm_if_exists(xs, &dom)?;
    }
    if let Ok(kinds) = xs.directory("/local/domain/0/backend") {
        for kind in kinds {
            rm_if_exists(xs, &format!("/local/domain/0/backend/{kind}/{domid}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            format_mac([0x00, 0x16, 0x3e, 0x07, 0xdf, 0x91]),
            "00:16:3e:07:df:91"
        );
        let mut u = [0u8; 16];
        u[15] = 0xab;
        assert_eq!(format_uuid(u), "00000000-0000-0000-0000-0000000000ab");
        assert_eq!(vif_backend_path(3, 1), "/local/domain/0/backend/vif/3/1");
    }
}
