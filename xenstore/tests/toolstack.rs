//! The toolstack's tree for a domU, and a Linux-like xenbus/netfront session against it.

mod common;
use common::*;
use xenstore::toolstack::{
    depopulate_domain, populate_domain, vif_backend_path, vif_frontend_path, DomainSpec, VifSpec,
    DEFAULT_VIF_BACKEND_FEATURES,
};
use xenstore::{Access, Perm, Xenstore};

const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x07, 0xdf, 0x91];

fn spec<'a>(vifs: &'a [VifSpec], features: &'a [(&'a str, &'a str)]) -> DomainSpec<'a> {
    DomainSpec {
        domid: 3,
        name: "debian",
        uuid: Some([
            0xf6, 0xdc, 0xa2, 0x0a, 0x54, 0xbb, 0x43, 0xaf, 0x9a, 0x62, 0x67, 0xc5, 0x5c, 0xb7,
            0x57, 0x08,
        ]),
        vcpus: 2,
        memory_kib: Some(524288),
        store_port: 1,
        store_gfn: 0xfeff9,
        console_port: 2,
        console_gfn: 0xfeff8,
        vifs,
        vif_backend_features: features,
    }
}

fn rd(xs: &mut Xenstore, p: &str) -> String {
    String::from_utf8(xs.read(p).unwrap_or_else(|e| panic!("{p}: {e}"))).unwrap()
}

fn perms(xs: &mut Xenstore, p: &str) -> Vec<Perm> {
    xs.get_perms(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn the_tree_and_its_permissions() {
    let mut xs = Xenstore::default();
    let vifs = [VifSpec::new(MAC), VifSpec::new([2, 0, 0, 0, 0, 1])];
    populate_domain(&mut xs, &spec(&vifs, DEFAULT_VIF_BACKEND_FEATURES)).unwrap();
    let d = "/local/domain/3";
    let ro = vec![Perm::new(Access::None, 0), Perm::new(Access::Read, 3)];
    let rw = vec![Perm::new(Access::None, 3)];
    let front = vec![Perm::new(Access::None, 3), Perm::new(Access::Read, 0)];

    assert_eq!(perms(&mut xs, d), ro);
    assert_eq!(rd(&mut xs, &format!("{d}/domid")), "3");
    assert_eq!(rd(&mut xs, &format!("{d}/name")), "debian");
    let vm = "/vm/f6dca20a-54bb-43af-9a62-67c55cb75708";
    assert_eq!(rd(&mut xs, &format!("{d}/vm")), vm);
    assert_eq!(rd(&mut xs, &format!("{vm}/name")), "debian");
    assert_eq!(perms(&mut xs, vm), ro);
    for dir in ["cpu", "memory", "device", "control"] {
        assert_eq!(perms(&mut xs, &format!("{d}/{dir}")), ro, "{dir}");
    }
    for node in [
        "control/shutdown",
        "control/feature-poweroff",
        "control/sysrq",
        "data",
        "drivers",
        "feature",
        "attr",
        "error",
        "device/suspend/event-channel",
    ] {
        assert_eq!(perms(&mut xs, &format!("{d}/{node}")), rw, "{node}");
        assert_eq!(rd(&mut xs, &format!("{d}/{node}")), "", "{node}");
    }
    let reset = format!("{d}/control/platform-feature-xs_reset_watches");
    assert_eq!(rd(&mut xs, &reset), "1");
    assert_eq!(perms(&mut xs, &reset), ro);
    assert_eq!(
        rd(&mut xs, &format!("{d}/memory/static-max")),
        rd(&mut xs, &format!("{d}/memory/target"))
    );
    assert_eq!(rd(&mut xs, &format!("{d}/cpu/1/availability")), "online");
    assert_eq!(rd(&mut xs, &format!("{d}/store/port")), "1");
    assert_eq!(
        rd(&mut xs, &format!("{d}/console/ring-ref")),
        format!("{}", 0xfeff8)
    );
    assert_eq!(rd(&mut xs, &format!("{d}/console/port")), "2");
    assert_eq!(perms(&mut xs, &format!("{d}/console")), front);
    assert_eq!(perms(&mut xs, &format!("{d}/console/port")), ro);

    let fe = vif_frontend_path(3, 0);
    let be = vif_backend_path(3, 0);
    assert_eq!(fe, "/local/domain/3/device/vif/0");
    assert_eq!(perms(&mut xs, &fe), front);
    assert_eq!(perms(&mut xs, &format!("{fe}/state")), front);
    for (k, v) in [
        ("backend", be.as_str()),
        ("backend-id", "0"),
        ("state", "1"),
        ("handle", "0"),
        ("mac", "00:16:3e:07:df:91"),
    ] {
        assert_eq!(rd(&mut xs, &format!("{fe}/{k}")), v, "{k}");
    }
    assert_eq!(perms(&mut xs, &be), ro);
    for (k, v) in [
        ("frontend", fe.as_str()),
        ("frontend-id", "3"),
        ("online", "1"),
        ("state", "2"),
        ("handle", "0"),
        ("mac", "00:16:3e:07:df:91"),
        ("feature-rx-copy", "1"),
        ("feature-rx-flip", "0"),
        ("feature-sg", "1"),
    ] {
        assert_eq!(rd(&mut xs, &format!("{be}/{k}")), v, "{k}");
    }
    // Optional netback features are not offered.
    let keys = xs.directory(&be).unwrap();
    assert!(!keys
        .iter()
        .any(|k| k.starts_with("feature-gso") || k.starts_with("multi-queue")));
    assert_eq!(
        rd(&mut xs, &format!("{}/mac", vif_frontend_path(3, 1))),
        "02:00:00:00:00:01"
    );

    // Without a memory size, no memory keys.
    let mut xs2 = Xenstore::default();
    let mut s = spec(&vifs, DEFAULT_VIF_BACKEND_FEATURES);
    s.memory_kib = None;
    populate_domain(&mut xs2, &s).unwrap();
    assert_eq!(
        xs2.directory("/local/domain/3/memory").unwrap(),
        Vec::<String>::new()
    );
    // Populating again replaces the tree.
    populate_domain(&mut xs2, &s).unwrap();
}

#[test]
fn backend_features_are_a_parameter() {
    let mut xs = Xenstore::default();
    let vifs = [VifSpec::new(MAC)];
    let features = [("feature-rx-copy", "1"), ("feature-gso-tcpv4", "1")];
    populate_domain(&mut xs, &spec(&vifs, &features)).unwrap();
    let be = vif_backend_path(3, 0);
    assert_eq!(rd(&mut xs, &format!("{be}/feature-gso-tcpv4")), "1");
    assert!(!xs.exists(&format!("{be}/feature-sg")));
}

#[test]
fn depopulate_removes_everything() {
    let mut xs = Xenstore::default();
    let vifs = [VifSpec::new(MAC)];
    let before = xs.node_count();
    populate_domain(&mut xs, &spec(&vifs, DEFAULT_VIF_BACKEND_FEATURES)).unwrap();
    depopulate_domain(&mut xs, 3).unwrap();
    assert!(!xs.exists("/local/domain/3"));
    assert!(!xs.exists("/vm/f6dca20a-54bb-43af-9a62-67c55cb75708"));
    assert!(!xs.exists("/local/domain/0/backend/vif/3"));
    assert!(!xs.exists("/local/domain/0/backend/console/3"));
    // Only the empty parents created along the way remain.
    assert!(
        xs.node_count() - before <= 6,
        "{}",
        xs.node_count() - before
    );
    depopulate_domain(&mut xs, 3).unwrap();
}

/// What Linux 6.1's xenbus and netfront do at boot (§12-13 of linux-xen-guest.md), with dom0's
/// backend answering through watches.
#[test]
fn linux_boot_and_netfront_handshake() {
    let mut xs = Xenstore::default();
    let vifs = [VifSpec::new(MAC)];
    populate_domain(&mut xs, &spec(&vifs, DEFAULT_VIF_BACKEND_FEATURES)).unwrap();
    // The backend watches the frontend's state.
    let fe = vif_frontend_path(3, 0);
    let be = vif_backend_path(3, 0);
    xs.watch(&format!("{fe}/state"), "vif-3-0").unwrap();
    xs.take_backend_events();
    let mut g = Guest::new(&mut xs, 3);

    // xs_reset_watches if advertised.
    assert_eq!(
        g.read(&mut xs, "control/platform-feature-xs_reset_watches")
            .unwrap(),
        b"1"
    );
    g.req(&mut xs, XS_RESET_WATCHES, 0, b"").unwrap();
    // xenbus_probe_frontend: watch "device", enumerate.
    g.watch(&mut xs, "device", "FFFF8880DEAD0001").unwrap();
    assert_eq!(g.events(), [("device".into(), "FFFF8880DEAD0001".into())]);
    let mut types = g.dir(&mut xs, "device").unwrap();
    types.sort();
    assert_eq!(types, ["suspend", "vif"]);
    assert_eq!(g.dir(&mut xs, "device/vif").unwrap(), ["0"]);
    assert_eq!(g.read(&mut xs, "device/vif/0/state").unwrap(), b"1");
    // The dom0-side watch on a domU's "backend" (absent) is accepted.
    g.watch(&mut xs, "backend", "FFFF8880DEAD0002").unwrap();
    g.watch(&mut xs, "control/shutdown", "FFFF8880DEAD0003")
        .unwrap();
    g.watch(&mut xs, "memory/target", "FFFF8880DEAD0004")
        .unwrap();
    g.events();
    // Linux announces its shutdown features.
    for f in ["poweroff", "reboot", "suspend"] {
        g.write(&mut xs, &format!("control/feature-{f}"), "1")
            .unwrap();
    }
    // netfront probe: read otherend details, check the backend exists, watch its state.
    let backend = String::from_utf8(g.read(&mut xs, "device/vif/0/backend").unwrap()).unwrap();
    assert_eq!(backend, be);
    assert_eq!(g.read(&mut xs, "device/vif/0/backend-id").unwrap(), b"0");
    assert!(g.dir(&mut xs, &backend).is_ok());
    assert_eq!(
        g.read(&mut xs, "device/vif/0/mac").unwrap(),
        b"00:16:3e:07:df:91"
    );
    g.watch(&mut xs, &format!("{backend}/state"), "FFFF8880DEAD0005")
        .unwrap();
    // The initial event tells netfront the backend is in InitWait.
    assert_eq!(
        g.events(),
        [(format!("{backend}/state"), "FFFF8880DEAD0005".into())]
    );
    assert_eq!(g.read(&mut xs, &format!("{backend}/state")).unwrap(), b"2");
    assert_eq!(
        g.read(&mut xs, &format!("{backend}/feature-rx-copy"))
            .unwrap(),
        b"1"
    );
    assert_eq!(
        g.read(&mut xs, &format!("{backend}/multi-queue-max-queues"))
            .unwrap_err(),
        "ENOENT"
    );
    // xennet_connect: publish the rings in a transaction.
    loop {
        let t = g.start(&mut xs).unwrap();
        for (k, v) in [
            ("tx-ring-ref", "8"),
            ("rx-ring-ref", "9"),
            ("event-channel", "5"),
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("feature-sg", "1"),
            ("feature-gso-tcpv4", "1"),
            ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"),
        ] {
            g.write_tx(&mut xs, t, &format!("device/vif/0/{k}"), v)
                .unwrap();
        }
        if g.end(&mut xs, t, true).is_ok() {
            break;
        }
    }
    // xenbus_switch_state(Connected).
    let t = g.start(&mut xs).unwrap();
    assert_eq!(g.read_tx(&mut xs, t, "device/vif/0/state").unwrap(), b"1");
    g.write_tx(&mut xs, t, "device/vif/0/state", "4").unwrap();
    g.end(&mut xs, t, true).unwrap();
    // The backend sees the frontend connect, reads the keys and connects too.
    let evs = xs.take_backend_events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].path, format!("{fe}/state"));
    assert_eq!(xs.read(&format!("{fe}/state")).unwrap(), b"4");
    assert_eq!(xs.read(&format!("{fe}/tx-ring-ref")).unwrap(), b"8");
    assert_eq!(xs.read(&format!("{fe}/request-rx-copy")).unwrap(), b"1");
    xs.write(&format!("{be}/state"), b"4").unwrap();
    assert_eq!(xs.pending_domains(), [3]);
    g.pump(&mut xs);
    // (The "device" watch saw every frontend write; netfront's backend-state watch fires.)
    let evs = g.events();
    assert_eq!(evs.iter().filter(|e| e.1 == "FFFF8880DEAD0001").count(), 10);
    assert_eq!(
        evs.last().unwrap(),
        &(format!("{backend}/state"), "FFFF8880DEAD0005".into())
    );
    assert_eq!(g.read(&mut xs, &format!("{backend}/state")).unwrap(), b"4");
    // The toolstack asks for a shutdown; the guest sees it and clears it.
    xs.write("/local/domain/3/control/shutdown", b"poweroff")
        .unwrap();
    g.pump(&mut xs);
    assert_eq!(
        g.events(),
        [("control/shutdown".into(), "FFFF8880DEAD0003".into())]
    );
    assert_eq!(g.read(&mut xs, "control/shutdown").unwrap(), b"poweroff");
    g.write(&mut xs, "control/shutdown", "").unwrap();
}
