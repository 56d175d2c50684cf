//! The XenbusState handshake: features, connect, close, reconnect, and
//! frontends whose keys break the protocol.

mod common;

use common::*;
use guest_abi::grant_table::{GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING};
use hypercalls::evtchn::PortState;
use hypercalls::gnttab::GrantError;
use netback::{ErrorKind, RingKind, VifConfig, XenbusState};

#[test]
fn features_connect_close_and_reconnect() {
    let mut w = World::new(2, 1, VifConfig::new(2));
    let be = xenstore::toolstack::vif_backend_path(DOMID, 0);
    for (k, v) in [
        ("feature-rx-copy", "1"),
        ("feature-sg", "1"),
        ("feature-gso-tcpv4", "1"),
        ("feature-gso-tcpv6", "1"),
        ("feature-split-event-channels", "1"),
        ("feature-rx-notify", "1"),
        ("multi-queue-max-queues", "2"),
        ("state", "2"),
    ] {
        assert_eq!(
            w.xs.read(&format!("{be}/{k}")).unwrap(),
            v.as_bytes(),
            "{k}"
        );
    }
    // The watch's initial event saw the frontend Initialising: nothing to do.
    assert_eq!(w.vifs[0].state(), XenbusState::InitWait);
    assert!(!w.vifs[0].needs_service());

    w.connect(0, &FrontOpts::default());
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert_eq!(w.be_state(0), "4");
    assert!(w.vifs[0].is_connected());
    let f = w.vifs[0].frontend_features();
    assert!(f.sg && f.gso_tcpv4 && f.gso_tcpv6 && f.rx_notify);
    assert!(f.ip_csum && f.ipv6_csum, "partial checksums both ways");
    assert_eq!((f.queues, f.split_event_channels), (1, false));
    let q = w.fronts[0][0].clone();
    assert_eq!(w.vifs[0].ring_refs(), vec![(q.tx_ref, q.rx_ref)]);
    assert!(w.vifs[0].owns_port(q.tx_port));
    // The rings are held for the connection's lifetime.
    for r in [q.tx_ref, q.rx_ref] {
        assert_eq!(
            w.grant_flags(r),
            GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING
        );
    }
    // A spurious Connected again changes nothing.
    w.set_fe_state(0, 4);
    assert_eq!(w.be_state(0), "4");

    // The frontend closes: Closing, rings given back; then Closed.
    w.set_fe_state(0, 5);
    assert_eq!(w.be_state(0), "5");
    assert!(!w.vifs[0].owns_port(q.tx_port));
    assert!(w.grants_in_use(&[]).is_empty());
    w.set_fe_state(0, 6);
    assert_eq!(w.be_state(0), "6");
    // A new frontend instance starts over: InitWait, then a fresh connection.
    w.set_fe_state(0, 1);
    assert_eq!(w.be_state(0), "2");
    w.connect(0, &FrontOpts::default());
    assert_eq!(w.be_state(0), "4");
    let q2 = w.fronts[0][0].clone();
    assert_ne!(q2.tx_ref, q.tx_ref);
    assert_eq!(w.grant_flags(q.tx_ref), GTF_PERMIT_ACCESS);
    // Traffic flows on the new connection.
    w.queue_tx(0, 0, &tcp4(1, b"hello"), 0, None, 4096, 0);
    assert!(w.push_tx(0, 0));
    assert_eq!(w.frames[0].len(), 1);

    // A frontend that restarts without closing (kexec) goes straight back to InitWait.
    w.set_fe_state(0, 1);
    assert_eq!(w.be_state(0), "2");
    assert!(w.grants_in_use(&[]).is_empty());
    w.connect(0, &FrontOpts::default());
    // The frontend directory vanishes (the domain is going): Closed.
    let fe = w.fe(0);
    w.xs.rm(&fe).unwrap();
    w.events();
    assert_eq!(w.be_state(0), "6");
    assert!(w.grants_in_use(&[]).is_empty());
    assert!(w.errors.is_empty(), "{:?}", w.errors);
}

#[test]
fn flat_keys_without_a_queue_count() {
    let mut w = World::new(1, 1, VifConfig::new(1));
    let o = FrontOpts {
        write_num_queues: false,
        split: true,
        ..Default::default()
    };
    w.connect(0, &o);
    assert_eq!(w.be_state(0), "4");
    let f = w.vifs[0].frontend_features();
    assert_eq!((f.queues, f.split_event_channels), (1, true));
}

#[test]
fn detach_releases_everything() {
    let mut w = World::new(1, 1, VifConfig::new(1));
    w.connect(0, &FrontOpts::default());
    let World {
        dom,
        host,
        xs,
        vifs,
        ..
    } = &mut w;
    vifs[0].detach(dom, host, xs);
    assert_eq!(w.be_state(0), "6");
    assert!(w.grants_in_use(&[]).is_empty());
    // No more events for it.
    w.set_fe_state(0, 1);
    assert!(w.xs.take_backend_events().is_empty());
    assert_eq!(w.be_state(0), "6");
    // After the toolstack removed the tree, detach does not recreate it.
    let mut w = World::new(1, 1, VifConfig::new(1));
    xenstore::toolstack::depopulate_domain(&mut w.xs, DOMID).unwrap();
    let World {
        dom,
        host,
        xs,
        vifs,
        ..
    } = &mut w;
    vifs[0].detach(dom, host, xs);
    assert!(!w.xs.exists("/local/domain/0/backend/vif/1"));
}

/// Connects vif 0 after `tamper`; returns the world and the error it caused.
fn broken_connect(o: FrontOpts, tamper: impl FnOnce(&mut World)) -> (World, ErrorKind) {
    let mut w = World::new(2, 1, VifConfig::new(2));
    w.connect_with(0, &o, tamper);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = w.errors[0].clone();
    assert_eq!((e.domid, e.devid), (DOMID, 0));
    assert!(e.to_string().starts_with("netback: d1 vif0: "), "{e}");
    assert_eq!(w.vifs[0].state(), XenbusState::Closing);
    assert_eq!(w.be_state(0), "5");
    assert!(w.grants_in_use(&[]).is_empty(), "grants left held");
    assert_eq!(w.vifs[0].stats().errors, 1);
    (w, e.kind)
}

#[test]
fn malformed_keys_disconnect() {
    let fe = xenstore::toolstack::vif_frontend_path(DOMID, 0);
    let set = |k: &'static str, v: &'static str| {
        let p = format!("{fe}/{k}");
        move |w: &mut World| w.xs.write(&p, v.as_bytes()).unwrap()
    };
    let rm = |k: &'static str| {
        let p = format!("{fe}/{k}");
        move |w: &mut World| w.xs.rm(&p).unwrap()
    };
    let d = FrontOpts::default;

    let (_, k) = broken_connect(d(), set("request-rx-copy", "0"));
    assert_eq!(k, ErrorKind::NoRxCopy);
    let (_, k) = broken_connect(d(), rm("request-rx-copy"));
    assert_eq!(k, ErrorKind::NoRxCopy);
    let (_, k) = broken_connect(d(), rm("tx-ring-ref"));
    assert_eq!(k, ErrorKind::MissingKey(format!("{fe}/tx-ring-ref")));
    let (_, k) = broken_connect(d(), rm("event-channel"));
    assert_eq!(k, ErrorKind::MissingKey(format!("{fe}/event-channel")));
    let (_, k) = broken_connect(d(), set("event-channel", "12abc"));
    assert_eq!(
        k,
        ErrorKind::BadKey {
            path: format!("{fe}/event-channel"),
            value: "12abc".into()
        }
    );
    let (_, k) = broken_connect(d(), set("rx-ring-ref", "-1"));
    assert!(matches!(k, ErrorKind::BadKey { .. }), "{k:?}");
    for n in ["0", "3", "4294967295"] {
        let (_, k) = broken_connect(d(), set("multi-queue-num-queues", n));
        assert_eq!(
            k,
            ErrorKind::QueueCount {
                requested: n.parse().unwrap(),
                max: 2
            }
        );
    }
    // Ports: not allocated, or the guest's own IPI.
    let (_, k) = broken_connect(d(), set("event-channel", "999"));
    assert_eq!(k, ErrorKind::BadPort(999));
    let (_, k) = broken_connect(d(), |w: &mut World| {
        let p = w.dom.evtchn.alloc(PortState::Ipi, 0).unwrap();
        let path = format!("{}/event-channel", w.fe(0));
        w.xs.write(&path, p.to_string().as_bytes()).unwrap();
    });
    assert!(matches!(k, ErrorKind::BadPort(_)), "{k:?}");
    // Ring grants: one page for both rings, beyond the table, read-only,
    // to another domain, never granted.
    let (_, k) = broken_connect(d(), |w: &mut World| {
        let r = w.fronts[0][0].tx_ref.to_string();
        let path = format!("{}/rx-ring-ref", w.fe(0));
        w.xs.write(&path, r.as_bytes()).unwrap();
    });
    assert!(matches!(k, ErrorKind::RingRefReused(_)), "{k:?}");
    let (_, k) = broken_connect(d(), set("tx-ring-ref", "5000"));
    assert_eq!(
        k,
        ErrorKind::RingGrant {
            ring: RingKind::Tx,
            queue: 0,
            gref: 5000,
            err: GrantError::BadRef
        }
    );
    for (flags, domid) in [
        (GTF_PERMIT_ACCESS | GTF_READONLY, 0),
        (GTF_PERMIT_ACCESS, 3),
        (0, 0),
    ] {
        let (_, k) = broken_connect(d(), |w: &mut World| {
            let q = w.fronts[0][0].clone();
            w.grant(q.rx_ref, flags, domid, q.rx_gfn as u32);
        });
        assert!(
            matches!(
                k,
                ErrorKind::RingGrant {
                    ring: RingKind::Rx,
                    err: GrantError::PermissionDenied,
                    ..
                }
            ),
            "{k:?}"
        );
    }
    // A ring page whose indices are already inconsistent.
    let (_, k) = broken_connect(d(), |w: &mut World| {
        let g = w.fronts[0][0].tx_gfn * 4096;
        w.write_gpa(g, &1000u32.to_le_bytes());
    });
    assert!(
        matches!(
            k,
            ErrorKind::RingOverflow {
                ring: RingKind::Tx,
                req_prod: 1000,
                ..
            }
        ),
        "{k:?}"
    );
    // Multi-queue keys missing for the second queue.
    let o = FrontOpts {
        queues: 2,
        ..Default::default()
    };
    let (_, k) = broken_connect(o, rm("queue-1/rx-ring-ref"));
    assert_eq!(
        k,
        ErrorKind::MissingKey(format!("{fe}/queue-1/rx-ring-ref"))
    );
}

#[test]
fn garbage_state_closes_and_a_clean_restart_recovers() {
    let mut w = World::new(1, 1, VifConfig::new(1));
    w.connect(0, &FrontOpts::default());
    let p = format!("{}/state", w.fe(0));
    w.xs.write(&p, b"banana").unwrap();
    w.events();
    assert_eq!(
        w.errors.pop().unwrap().kind,
        ErrorKind::BadFrontendState("banana".into())
    );
    assert_eq!(w.be_state(0), "5");
    w.set_fe_state(0, 6);
    assert_eq!(w.be_state(0), "6");
    w.set_fe_state(0, 1);
    w.connect(0, &FrontOpts::default());
    assert_eq!(w.be_state(0), "4");
    assert!(w.errors.is_empty());
}
