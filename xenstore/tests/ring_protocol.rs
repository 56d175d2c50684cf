//! The shared ring: partial messages, index wrap-around, flow control, errors, reconnection,
//! and robustness against arbitrary ring contents.

mod common;
use common::*;
use proptest::prelude::*;
use xenstore::{
    Access, Perm, Xenstore, CONNECTION_OFFSET, ERROR_OFFSET, REQ_CONS_OFFSET, REQ_PROD_OFFSET,
    RSP_CONS_OFFSET, RSP_PROD_OFFSET, SERVER_FEATURES, SERVER_FEATURES_OFFSET,
};

#[test]
fn features_advertised_and_unknown_domain_ignored() {
    let mut xs = Xenstore::default();
    let mut page = Box::new([0u8; 4096]);
    let out = xs.process_ring(9, &mut *page);
    assert!(!out.notify);
    assert!(page.iter().all(|&b| b == 0), "untouched");
    xs.introduce_domain(9).unwrap();
    xs.process_ring(9, &mut *page);
    assert_eq!(rd(&page, SERVER_FEATURES_OFFSET), SERVER_FEATURES);
    assert_eq!(SERVER_FEATURES, 3);
}

#[test]
fn request_fed_one_byte_at_a_time() {
    let (mut xs, mut g) = setup();
    xs.write("/local/domain/5/k", b"value").unwrap();
    let msg = encode(XS_READ, 42, 0, &z("k"));
    for (i, &b) in msg.iter().enumerate() {
        g.send_raw(&[b]);
        let out = xs.process_ring(5, &mut *g.page);
        assert!(out.notify, "consuming a byte signals the guest");
        assert_eq!(rd(&g.page, REQ_CONS_OFFSET), (i + 1) as u32);
        g.pull();
        if i + 1 < msg.len() {
            assert!(
                g.inbox.is_empty(),
                "no reply before the request is complete"
            );
        }
    }
    let m = g.inbox.pop_front().unwrap();
    assert_eq!(
        (m.ty, m.req_id, m.payload.as_slice()),
        (XS_READ, 42, &b"value"[..])
    );
    // Nothing to do: no signal.
    assert!(!xs.process_ring(5, &mut *g.page).notify);
}

#[test]
fn several_requests_in_one_pass_answered_in_order() {
    let (mut xs, mut g) = setup();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(g.send(XS_WRITE, 0, format!("k{i}\0v{i}").as_bytes()));
    }
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify);
    g.pump(&mut xs);
    let got: Vec<u32> = g.inbox.iter().map(|m| m.req_id).collect();
    assert_eq!(got, ids);
    assert!(g
        .inbox
        .iter()
        .all(|m| m.ty == XS_WRITE && m.payload == b"OK\0"));
}

#[test]
fn indices_wrap_around() {
    let (mut xs, mut g) = setup();
    // Start every index just below 2^32 and not on a 1024 boundary.
    let start = u32::MAX - 700;
    for off in [
        REQ_CONS_OFFSET,
        REQ_PROD_OFFSET,
        RSP_CONS_OFFSET,
        RSP_PROD_OFFSET,
    ] {
        wr(&mut g.page, off, start);
    }
    for i in 0..200 {
        let v = format!("{i}-{}", "x".repeat(i % 97));
        g.write(&mut xs, &format!("w/{i}"), &v).unwrap();
        assert_eq!(g.read(&mut xs, &format!("w/{i}")).unwrap(), v.as_bytes());
    }
    assert!(
        rd(&g.page, REQ_CONS_OFFSET) < start,
        "the request index wrapped"
    );
    assert!(
        rd(&g.page, RSP_PROD_OFFSET) < start,
        "the response index wrapped"
    );
}

#[test]
fn maximum_payload_crosses_the_ring_several_times() {
    let mut xs = Xenstore::new(xenstore::Config {
        max_node_size: 8192,
        ..xenstore::Config::default()
    });
    let mut g = Guest::new(&mut xs, 5);
    xs.mkdir("/local/domain/5").unwrap();
    xs.set_perms("/local/domain/5", &[Perm::new(Access::None, 5)])
        .unwrap();
    // A 4112-byte request through a 1024-byte ring, and a 4108-byte reply back.
    let value: Vec<u8> = (0..XENSTORE_PAYLOAD_MAX - 4)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let mut p = z("big");
    p.extend_from_slice(&value);
    assert_eq!(p.len(), XENSTORE_PAYLOAD_MAX);
    assert_eq!(g.req(&mut xs, XS_WRITE, 0, &p).unwrap(), b"OK\0");
    assert_eq!(g.read(&mut xs, "big").unwrap(), value);
    // Under the default node-size quota the same request is refused, after being read whole.
    let (mut xs, mut g) = setup();
    assert_eq!(g.req(&mut xs, XS_WRITE, 0, &p).unwrap_err(), "ENOSPC");
    assert_eq!(g.read(&mut xs, "/local/domain/5").unwrap(), b"");
}

#[test]
fn zero_length_payload() {
    let (mut xs, mut g) = setup();
    let r = g.req(&mut xs, XS_TRANSACTION_START, 0, b"").unwrap();
    assert!(r.ends_with(b"\0"));
    assert_eq!(g.req(&mut xs, XS_READ, 0, b"").unwrap_err(), "EINVAL");
}

#[test]
fn outstanding_replies_throttle_reading() {
    let (mut xs, mut g) = setup();
    // Many small requests, and a guest that does not read replies.
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(g.send(XS_GET_DOMAIN_PATH, 0, &z("5")));
    }
    for _ in 0..5 {
        xs.process_ring(5, &mut *g.page);
        g.push();
    }
    // 32-byte replies: the response ring holds 32 of them, 20 more wait, the rest stay unread.
    let consumed = rd(&g.page, REQ_CONS_OFFSET) as usize;
    let per_req = encode(XS_GET_DOMAIN_PATH, 0, 0, &z("5")).len();
    assert_eq!(consumed / per_req, 32 + 20);
    g.pump(&mut xs);
    let got: Vec<u32> = g.inbox.iter().map(|m| m.req_id).collect();
    assert_eq!(got, ids);
}

#[test]
fn oversized_length_kills_the_connection() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "w", "t").unwrap();
    g.events();
    let mut hdr = encode(XS_READ, 1, 0, b"");
    hdr[12..16].copy_from_slice(&4097u32.to_le_bytes());
    g.send_raw(&hdr);
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify);
    assert_eq!(rd(&g.page, ERROR_OFFSET), XENSTORE_ERROR_PROTO);
    assert_eq!(xs.connection_error(5), Some(XENSTORE_ERROR_PROTO));
    // Further requests are ignored, and its watches are gone.
    g.send(XS_READ, 0, &z("w"));
    assert!(!xs.process_ring(5, &mut *g.page).notify);
    xs.write("/local/domain/5/w", b"1").unwrap();
    assert!(!xs.has_output(5));
    assert!(xs.pending_domains().is_empty());
}

#[test]
fn oversized_length_is_refused_before_its_payload_is_read() {
    let (mut xs, mut g) = setup();
    let mut msg = encode(XS_WRITE, 1, 0, &[b'a'; 100]);
    msg[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    g.send_raw(&msg);
    xs.process_ring(5, &mut *g.page);
    assert_eq!(xs.connection_error(5), Some(XENSTORE_ERROR_PROTO));
    // Only the header was consumed; nothing of the payload was buffered.
    assert_eq!(rd(&g.page, REQ_CONS_OFFSET), 16);
    assert!(xs.domain_bytes(5) < 1024, "{}", xs.domain_bytes(5));
}

#[test]
fn header_rewritten_after_it_was_read_changes_nothing() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "k", "value").unwrap();
    let msg = encode(XS_READ, 77, 0, b"k\0");
    let base = rd(&g.page, REQ_PROD_OFFSET);
    g.send_raw(&msg[..16]);
    xs.process_ring(5, &mut *g.page);
    // The guest scribbles over the header it already handed over, then sends the payload.
    for i in 0..16u32 {
        g.page[((base + i) & 1023) as usize] = 0xff;
    }
    g.send_raw(&msg[16..]);
    g.pump(&mut xs);
    let m = g.inbox.pop_front().unwrap();
    assert_eq!(
        (m.ty, m.req_id, &m.payload[..]),
        (XS_READ, 77, &b"value"[..])
    );
}

#[test]
fn indices_far_apart_kill_the_connection() {
    for (cons, prod) in [(0, 0x8000_0000u32), (5, 4), (u32::MAX - 10, 2000)] {
        let (mut xs, mut g) = setup();
        wr(&mut g.page, REQ_CONS_OFFSET, cons);
        wr(&mut g.page, REQ_PROD_OFFSET, prod);
        assert!(xs.process_ring(5, &mut *g.page).notify);
        assert_eq!(xs.connection_error(5), Some(XENSTORE_ERROR_RINGIDX));
    }
}

#[test]
fn malformed_arguments_are_einval() {
    let (mut xs, mut g) = setup();
    let cases: [(u32, &[u8]); 9] = [
        (XS_READ, b"\xff\xfe\0"),
        (XS_READ, b"caf\xc3\xa9\0"),
        (XS_READ, b"no-nul"),
        (XS_WRITE, b"no-nul-either"),
        (XS_MKDIR, b"a\0b\0"),
        (XS_WATCH, b"\xff\0t\0"),
        (XS_SET_PERMS, b"a\0\xffx\0"),
        (XS_DIRECTORY_PART, b"a\0"),
        (XS_TRANSACTION_END, b"T"),
    ];
    for (ty, payload) in cases {
        assert_eq!(
            g.req(&mut xs, ty, 0, payload).unwrap_err(),
            "EINVAL",
            "{ty} {payload:?}"
        );
    }
    // A token is bytes: any non-NUL byte is fine and comes back as sent.
    g.req(&mut xs, XS_WATCH, 0, b"w\0\xff\xfe\0").unwrap();
    let m = g.inbox.pop_front().unwrap();
    assert_eq!(m.payload, b"w\0\xff\xfe\0");
}

#[test]
fn inconsistent_indices_kill_the_connection() {
    let (mut xs, mut g) = setup();
    wr(&mut g.page, REQ_PROD_OFFSET, 2000);
    assert!(xs.process_ring(5, &mut *g.page).notify);
    assert_eq!(rd(&g.page, ERROR_OFFSET), XENSTORE_ERROR_RINGIDX);

    let (mut xs, mut g) = setup();
    g.send(XS_GET_DOMAIN_PATH, 0, &z("5"));
    wr(&mut g.page, RSP_CONS_OFFSET, 5000);
    assert!(xs.process_ring(5, &mut *g.page).notify);
    assert_eq!(xs.connection_error(5), Some(XENSTORE_ERROR_RINGIDX));
}

#[test]
fn reconnection_resets_the_connection() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "w", "0").unwrap();
    g.watch(&mut xs, "w", "t").unwrap();
    let t = g.start(&mut xs).unwrap();
    // Half a request is in flight when the guest asks to reconnect.
    g.send_raw(&encode(XS_READ, 9, 0, &z("w"))[..10]);
    xs.process_ring(5, &mut *g.page);
    wr(&mut g.page, CONNECTION_OFFSET, XENSTORE_RECONNECT);
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify);
    assert_eq!(rd(&g.page, CONNECTION_OFFSET), XENSTORE_CONNECTED);
    for off in [
        REQ_CONS_OFFSET,
        REQ_PROD_OFFSET,
        RSP_CONS_OFFSET,
        RSP_PROD_OFFSET,
    ] {
        assert_eq!(rd(&g.page, off), 0);
    }
    // A fresh start: no partial request, watch or transaction survived.
    let mut g = Guest::attach(5);
    g.inbox.clear();
    assert_eq!(g.read_tx(&mut xs, t, "w").unwrap_err(), "ENOENT");
    g.write(&mut xs, "w", "1").unwrap();
    assert!(g.events().is_empty());
    assert_eq!(g.read(&mut xs, "w").unwrap(), b"1");
}

#[test]
fn reconnection_recovers_from_an_error() {
    let (mut xs, mut g) = setup();
    wr(&mut g.page, REQ_PROD_OFFSET, 4000);
    xs.process_ring(5, &mut *g.page);
    assert!(xs.connection_error(5).is_some());
    wr(&mut g.page, CONNECTION_OFFSET, XENSTORE_RECONNECT);
    assert!(xs.process_ring(5, &mut *g.page).notify);
    assert_eq!(xs.connection_error(5), None);
    assert_eq!(rd(&g.page, ERROR_OFFSET), 0);
    let mut g = Guest::attach(5);
    assert_eq!(
        g.req(&mut xs, XS_GET_DOMAIN_PATH, 0, &z("5")).unwrap(),
        b"/local/domain/5\0"
    );
}

#[test]
fn reintroduction_resets_the_connection() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "w", "t").unwrap();
    xs.introduce_domain(5).unwrap();
    let mut g = Guest::attach(5);
    g.write(&mut xs, "w", "1").unwrap();
    assert!(g.events().is_empty());
}

fn hostile_page(bytes: &[u8], idx: [u32; 4], conn: u32) -> Box<[u8; 4096]> {
    let mut page = Box::new([0u8; 4096]);
    page[..bytes.len().min(4096)].copy_from_slice(&bytes[..bytes.len().min(4096)]);
    wr(&mut page, REQ_CONS_OFFSET, idx[0]);
    wr(&mut page, REQ_PROD_OFFSET, idx[1]);
    wr(&mut page, RSP_CONS_OFFSET, idx[2]);
    wr(&mut page, RSP_PROD_OFFSET, idx[3]);
    wr(&mut page, CONNECTION_OFFSET, conn);
    page
}

/// Payload bytes biased towards what the parser cares about: NULs, slashes, path letters.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|b| match b % 8 {
                0 => 0,
                1 => b'/',
                2 => b'a',
                3 => b'@',
                4 => b'T',
                5 => b'1',
                _ => b,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes in the request ring, with consistent indices: never a panic, and the
    /// server keeps its promises (indices consistent, no reply longer than the maximum).
    #[test]
    fn random_request_bytes_never_panic(
        stream in proptest::collection::vec(any::<u8>(), 0..3000),
        chunks in proptest::collection::vec(1usize..1100, 1..20),
        start in any::<u32>(),
    ) {
        let (mut xs, _) = setup();
        let mut g = Guest::attach(5);
        for off in [REQ_CONS_OFFSET, REQ_PROD_OFFSET, RSP_CONS_OFFSET, RSP_PROD_OFFSET] {
            wr(&mut g.page, off, start);
        }
        let mut rest = &stream[..];
        for c in chunks.iter().cycle().take(64) {
            if rest.is_empty() {
                break;
            }
            let n = (*c).min(rest.len());
            g.send_raw(&rest[..n]);
            rest = &rest[n..];
            xs.process_ring(5, &mut *g.page);
            // Read responses raw: framing must stay valid whatever the requests were.
            g.pull();
            if xs.connection_error(5).is_some() {
                break;
            }
        }
        for m in &g.inbox {
            prop_assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
        }
        prop_assert!(
            rd(&g.page, REQ_PROD_OFFSET).wrapping_sub(rd(&g.page, REQ_CONS_OFFSET)) <= 1024
        );
    }

    /// Arbitrary page contents, indices and connection state.
    #[test]
    fn random_page_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 2048),
        idx in any::<[u32; 4]>(),
        near in any::<bool>(),
        conn in 0u32..3,
    ) {
        let mut xs = Xenstore::default();
        xs.introduce_domain(5).unwrap();
        // Half the cases keep the indices plausible so that parsing gets exercised.
        let idx = if near {
            [idx[0], idx[0].wrapping_add(idx[1] % 1025), idx[2], idx[2].wrapping_add(idx[3] % 1025)]
        } else {
            idx
        };
        let mut page = hostile_page(&bytes, idx, conn);
        for _ in 0..4 {
            xs.process_ring(5, &mut *page);
        }
    }

    /// Well-formed headers with random types, ids and payloads.
    #[test]
    fn random_requests_never_panic(
        reqs in proptest::collection::vec(
            (0u32..30, any::<u32>(), 0u32..4, payload()),
            1..40),
    ) {
        let (mut xs, mut g) = setup();
        for (ty, req_id, tx, payload) in reqs {
            g.send_raw(&encode(ty, req_id, tx, &payload));
            g.pump(&mut xs);
            prop_assert!(xs.connection_error(5).is_none());
        }
        for m in &g.inbox {
            if m.ty == XS_ERROR {
                let name = std::str::from_utf8(m.payload.strip_suffix(b"\0").unwrap()).unwrap();
                prop_assert!(XSD_ERRORS.contains(&name), "{name}");
            }
        }
    }
}

#[test]
fn a_pass_handles_a_bounded_number_of_requests() {
    let mut xs = Xenstore::new(xenstore::Config {
        max_requests_per_pass: 4,
        ..xenstore::Config::default()
    });
    let mut g = Guest::new(&mut xs, 5);
    for _ in 0..10 {
        g.send(XS_GET_DOMAIN_PATH, 0, &z("5"));
    }
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify && out.more);
    g.pull();
    assert_eq!(g.inbox.len(), 4);
    // Calling again continues; the last pass finds nothing more to do.
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.more);
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify && !out.more);
    g.pull();
    assert_eq!(g.inbox.len(), 10);
}
