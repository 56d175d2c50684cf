//! Permissions between domains, ownership of created nodes, inheritance and the owner rules.

mod common;
use common::*;
use xenstore::toolstack::{populate_domain, DomainSpec, VifSpec, DEFAULT_VIF_BACKEND_FEATURES};
use xenstore::{Access, Perm, Xenstore};

fn spec(domid: u16, vifs: &[VifSpec]) -> DomainSpec<'_> {
    DomainSpec {
        domid,
        name: "guest",
        uuid: None,
        vcpus: 1,
        memory_kib: None,
        store_port: 1,
        store_gfn: 0xfeff9,
        console_port: 2,
        console_gfn: 0xfeff8,
        vifs,
        vif_backend_features: DEFAULT_VIF_BACKEND_FEATURES,
    }
}

fn two_guests() -> (Xenstore, Guest, Guest) {
    let mut xs = Xenstore::default();
    let vifs = [VifSpec::new([0, 0x16, 0x3e, 0, 0, 1])];
    populate_domain(&mut xs, &spec(5, &vifs)).unwrap();
    populate_domain(&mut xs, &spec(6, &vifs)).unwrap();
    let g5 = Guest::new(&mut xs, 5);
    let g6 = Guest::new(&mut xs, 6);
    (xs, g5, g6)
}

#[test]
fn domu_cannot_read_another_domus_tree() {
    let (mut xs, mut g5, _g6) = two_guests();
    assert_eq!(
        g5.read(&mut xs, "/local/domain/6/name").unwrap_err(),
        "EACCES"
    );
    assert_eq!(g5.dir(&mut xs, "/local/domain/6").unwrap_err(), "EACCES");
    assert_eq!(
        g5.read(&mut xs, "/local/domain/6/device/vif/0/state")
            .unwrap_err(),
        "EACCES"
    );
    // A missing node below an unreadable one is EACCES too, not ENOENT.
    assert_eq!(
        g5.read(&mut xs, "/local/domain/6/nothing").unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.write(&mut xs, "/local/domain/6/x", "1").unwrap_err(),
        "EACCES"
    );
    assert_eq!(g5.dir(&mut xs, "/").unwrap_err(), "EACCES");
    assert_eq!(
        g5.read(&mut xs, "/local/domain/0/name").unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.read(&mut xs, "/local/domain/0/backend/vif/6/0/state")
            .unwrap_err(),
        "EACCES"
    );
    // Its own tree and its own backend are readable.
    assert_eq!(g5.read(&mut xs, "name").unwrap(), b"guest");
    assert_eq!(
        g5.read(&mut xs, "/local/domain/0/backend/vif/5/0/state")
            .unwrap(),
        b"2"
    );
    assert_eq!(
        g5.dir(&mut xs, "/local/domain/0/backend/vif/5/0")
            .map(|d| d.len() > 5),
        Ok(true)
    );
}

#[test]
fn domu_cannot_write_dom0_nodes() {
    let (mut xs, mut g5, _g6) = two_guests();
    let be = "/local/domain/0/backend/vif/5/0";
    assert_eq!(
        g5.write(&mut xs, &format!("{be}/state"), "4").unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.write(&mut xs, &format!("{be}/new"), "4").unwrap_err(),
        "EACCES"
    );
    assert_eq!(g5.rm(&mut xs, be).unwrap_err(), "EACCES");
    assert_eq!(g5.mkdir(&mut xs, &format!("{be}/d")).unwrap_err(), "EACCES");
    assert_eq!(g5.set_perms(&mut xs, be, &["n5"]).unwrap_err(), "EACCES");
    // The domain directory itself is dom0's: no new top-level keys.
    assert_eq!(g5.write(&mut xs, "newkey", "1").unwrap_err(), "EACCES");
    assert_eq!(
        g5.write(&mut xs, "control/platform-feature-xs_reset_watches", "0")
            .unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.write(&mut xs, "memory/target", "1").unwrap_err(),
        "EACCES"
    );
    assert_eq!(xs.read(&format!("{be}/state")).unwrap(), b"2");
}

#[test]
fn domu_writes_its_frontend_and_owns_what_it_creates() {
    let (mut xs, mut g5, _g6) = two_guests();
    g5.write(&mut xs, "device/vif/0/tx-ring-ref", "9").unwrap();
    g5.write(&mut xs, "device/vif/0/state", "4").unwrap();
    g5.write(&mut xs, "control/shutdown", "").unwrap();
    g5.write(&mut xs, "control/feature-poweroff", "1").unwrap();
    g5.write(&mut xs, "data/x/y", "1").unwrap();
    // New nodes inherit the parent's permissions with the creator as owner.
    assert_eq!(
        xs.get_perms("/local/domain/5/device/vif/0/tx-ring-ref")
            .unwrap(),
        [Perm::new(Access::None, 5), Perm::new(Access::Read, 0)]
    );
    assert_eq!(g5.get_perms(&mut xs, "data/x/y").unwrap(), ["n5"]);
    // dom0 reads them (it reads everything).
    assert_eq!(
        xs.read("/local/domain/5/device/vif/0/tx-ring-ref").unwrap(),
        b"9"
    );
}

#[test]
fn owner_rules_for_set_perms() {
    let (mut xs, mut g5, mut g6) = two_guests();
    g5.write(&mut xs, "data/mine", "1").unwrap();
    // Granting access is fine; giving the node away is not.
    g5.set_perms(&mut xs, "data/mine", &["n5", "b6"]).unwrap();
    assert_eq!(
        g5.set_perms(&mut xs, "data/mine", &["n6"]).unwrap_err(),
        "EPERM"
    );
    // Domain 6 may now read and write it, but not change its permissions.
    assert_eq!(g6.read(&mut xs, "/local/domain/5/data/mine").unwrap(), b"1");
    g6.write(&mut xs, "/local/domain/5/data/mine", "2").unwrap();
    assert_eq!(
        g6.set_perms(&mut xs, "/local/domain/5/data/mine", &["n6"])
            .unwrap_err(),
        "EACCES"
    );
    // A node 6 creates under 5's node is 6's (and, as in xenstored, closed to 5).
    g6.write(&mut xs, "/local/domain/5/data/mine/sub", "3")
        .unwrap();
    assert_eq!(
        xs.get_perms("/local/domain/5/data/mine/sub").unwrap(),
        [Perm::new(Access::None, 6), Perm::new(Access::Both, 6)]
    );
    assert_eq!(g5.read(&mut xs, "data/mine/sub").unwrap_err(), "EACCES");
    // The first entry is the default for everybody not listed.
    g5.set_perms(&mut xs, "data/mine", &["r5"]).unwrap();
    assert_eq!(g6.read(&mut xs, "/local/domain/5/data/mine").unwrap(), b"2");
    assert_eq!(
        g6.write(&mut xs, "/local/domain/5/data/mine", "x")
            .unwrap_err(),
        "EACCES"
    );
    // Write-only access.
    g5.set_perms(&mut xs, "data/mine", &["n5", "w6"]).unwrap();
    assert_eq!(
        g6.read(&mut xs, "/local/domain/5/data/mine").unwrap_err(),
        "EACCES"
    );
    g6.write(&mut xs, "/local/domain/5/data/mine", "y").unwrap();
    // dom0 may change the owner.
    xs.set_perms("/local/domain/5/data/mine", &[Perm::new(Access::None, 6)])
        .unwrap();
    assert_eq!(g6.read(&mut xs, "/local/domain/5/data/mine").unwrap(), b"y");
    assert_eq!(g5.read(&mut xs, "data/mine").unwrap_err(), "EACCES");
}

#[test]
fn missing_node_error_depends_on_parent_rights() {
    let (mut xs, mut g5, _g6) = two_guests();
    // Readable parent: ENOENT. Unwritable parent on write: EACCES.
    assert_eq!(g5.read(&mut xs, "device/vif/7").unwrap_err(), "ENOENT");
    assert_eq!(
        g5.write(&mut xs, "device/vif/7/x", "1").unwrap_err(),
        "EACCES"
    );
    // RM of a missing node under a writable parent is fine; under a read-only one, EACCES.
    g5.rm(&mut xs, "data/none").unwrap();
    assert_eq!(g5.rm(&mut xs, "device/none").unwrap_err(), "EACCES");
}

#[test]
fn privileged_operations_are_refused() {
    let (mut xs, mut g5, _g6) = two_guests();
    assert_eq!(
        g5.req(&mut xs, XS_INTRODUCE, 0, b"7\x00123\x00")
            .unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.req(&mut xs, XS_RELEASE, 0, &z("6")).unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.req(&mut xs, XS_SET_TARGET, 0, b"5\x006\0").unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        g5.req(&mut xs, XS_CONTROL, 0, &z("check")).unwrap_err(),
        "EACCES"
    );
    assert!(xs.is_domain_introduced(6));
}

#[test]
fn set_target_grants_the_targets_rights() {
    let (mut xs, _g5, mut g6) = two_guests();
    assert_eq!(
        g6.read(&mut xs, "/local/domain/5/name").unwrap_err(),
        "EACCES"
    );
    xs.set_target(6, 5).unwrap();
    assert_eq!(g6.read(&mut xs, "/local/domain/5/name").unwrap(), b"guest");
    g6.write(&mut xs, "/local/domain/5/device/vif/0/state", "3")
        .unwrap();
    assert_eq!(xs.set_target(6, 9), Err(xenstore::XsError::Noent));
}

#[test]
fn release_removes_owned_nodes_and_grants() {
    let (mut xs, mut g5, mut g6) = two_guests();
    g6.write(&mut xs, "data/share", "1").unwrap();
    g6.set_perms(&mut xs, "data/share", &["n6", "r5"]).unwrap();
    xs.watch("/local/domain/5/device", "fe").unwrap();
    xs.take_backend_events();
    xs.release_domain(5).unwrap();
    // Nodes owned by 5 are gone (its frontend dir); dom0-owned ones stay.
    assert!(!xs.exists("/local/domain/5/device/vif/0"));
    assert!(!xs.exists("/local/domain/5/data"));
    assert!(xs.exists("/local/domain/5/name"));
    assert!(xs.exists("/local/domain/0/backend/vif/5/0"));
    let ev: Vec<String> = xs
        .take_backend_events()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(
        ev.contains(&"/local/domain/5/device/vif/0".to_string()),
        "{ev:?}"
    );
    // Grants naming 5 are gone, so a new domain 5 would not inherit them.
    assert_eq!(
        xs.get_perms("/local/domain/6/data/share").unwrap(),
        [Perm::new(Access::None, 6)]
    );
    assert_eq!(
        xs.get_perms("/local/domain/0/backend/vif/5/0").unwrap(),
        [Perm::new(Access::None, 0)]
    );
    // Its ring is no longer served.
    g5.send(XS_READ, 0, &z("name"));
    assert!(!xs.process_ring(5, &mut *g5.page).notify);
}
