//! Internet checksums of Ethernet frames: completing a partial TCP/UDP
//! checksum (`XEN_NETTXF_csum_blank`) for a receiver that checks it (the
//! peer, a frontend that cannot take partial checksums), verifying one, the
//! partial pseudo-header form a GSO frame carries to a frontend
//! (`XEN_NETRXF_csum_blank`), and software TCP segmentation of GSO frames
//! ([`TcpSegments`]: one segment at a time, into a buffer the caller brings).
//!
//! Frames are untrusted guest data: every parser here bounds-checks and
//! answers `None`/`false` for anything it does not understand.

use crate::{Gso, GsoKind};
use alloc::vec;
use alloc::vec::Vec;

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Where a frame's TCP or UDP segment lies and its pseudo-header sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L4 {
    /// Offset of the IP header.
    pub l3_off: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Offset of the TCP/UDP header.
    pub l4_off: usize,
    /// Length of the TCP/UDP segment (header and payload), from the IP header.
    pub l4_len: usize,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub proto: u8,
    /// Offset of the checksum field.
    pub csum_off: usize,
    /// Unfolded one's-complement sum of the pseudo header.
    pub pseudo: u64,
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// Unfolded one's-complement sum of `data` as big-endian 16-bit words (an odd
/// last byte is padded with zero). Summing 32-bit words is equivalent, since
/// 2^16 = 1 modulo 0xFFFF.
pub(crate) fn sum(data: &[u8]) -> u64 {
    let mut s: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        s += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    s + u32::from_be_bytes(tail) as u64
}

/// Folds a sum to 16 bits with end-around carry.
pub(crate) fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// Offset and EtherType of the L3 header, after up to two VLAN tags.
fn l3(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    let mut ty = be16(frame, off)?;
    for _ in 0..2 {
        if ty != ETH_P_8021Q && ty != ETH_P_8021AD {
            break;
        }
        off += 4;
        ty = be16(frame, off)?;
    }
    Some((off + 2, ty))
}

/// Parses Ethernet (optionally VLAN-tagged), IPv4 or IPv6 (with hop-by-hop,
/// routing, destination-options and AH extension headers) and a TCP or UDP
/// header. `None` for other protocols, IP fragments and truncated frames.
pub(crate) fn parse(frame: &[u8]) -> Option<L4> {
    let (l3_off, ty) = l3(frame)?;
    let (v6, l4_off, l4_len, proto, pseudo) = match ty {
        ETH_P_IP => {
            let h = frame.get(l3_off..l3_off + 20)?;
            if h[0] >> 4 != 4 {
                return None;
            }
            let ihl = (h[0] & 0xF) as usize * 4;
            let tot = be16(h, 2)? as usize;
            if ihl < 20 || tot < ihl || l3_off + tot > frame.len() {
                return None;
            }
            // More-fragments or a fragment offset: the segment is not all here.
            if be16(h, 6)? & 0x3FFF != 0 {
                return None;
            }
            let proto = h[9];
            let len = tot - ihl;
            let pseudo = sum(&h[12..20]) + proto as u64 + len as u64;
            (false, l3_off + ihl, len, proto, pseudo)
        }
        ETH_P_IPV6 => {
            let h = frame.get(l3_off..l3_off + 40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let end = l3_off + 40 + be16(h, 4)? as usize;
            if end > frame.len() {
                return None;
            }
            let mut next = h[6];
            let mut off = l3_off + 40;
            for _ in 0..8 {
                let hl = match next {
                    0 | 43 | 60 => (*frame.get(off + 1)? as usize + 1) * 8,
                    51 => (*frame.get(off + 1)? as usize + 2) * 4,
                    _ => break,
                };
                next = *frame.get(off)?;
                off += hl;
            }
            if off > end {
                return None;
            }
            let len = end - off;
            let pseudo = sum(&h[8..40]) + next as u64 + len as u64;
            (true, off, len, next, pseudo)
        }
        _ => return None,
    };
    let csum_off = match proto {
        IPPROTO_TCP if l4_len >= 20 => l4_off + 16,
        IPPROTO_UDP if l4_len >= 8 => l4_off + 6,
        _ => return None,
    };
    Some(L4 {
        l3_off,
        v6,
        l4_off,
        l4_len,
        proto,
        csum_off,
        pseudo,
    })
}

/// Fills in the TCP/UDP checksum of `frame` (whatever the field held).
/// Returns `false`, leaving the frame alone, if it is not TCP or UDP over IP.
pub fn complete(frame: &mut [u8]) -> bool {
    let Some(l4) = parse(frame) else {
        return false;
    };
    frame[l4.csum_off..l4.csum_off + 2].fill(0);
    let s = l4.pseudo + sum(&frame[l4.l4_off..l4.l4_off + l4.l4_len]);
    let mut c = !fold(s);
    if l4.proto == IPPROTO_UDP && c == 0 {
        c = 0xFFFF;
    }
    frame[l4.csum_off..l4.csum_off + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Whether `frame` is TCP or UDP over IP with a correct checksum (a UDP/IPv4
/// datagram without a checksum counts as correct).
pub fn verify(frame: &[u8]) -> bool {
    let Some(l4) = parse(frame) else {
        return false;
    };
    let field = be16(frame, l4.csum_off).unwrap_or(0);
    if l4.proto == IPPROTO_UDP && !l4.v6 && field == 0 {
        return true;
    }
    fold(l4.pseudo + sum(&frame[l4.l4_off..l4.l4_off + l4.l4_len])) == 0xFFFF
}

/// Puts the folded pseudo-header sum in the TCP/UDP checksum field, as Linux
/// leaves it for `CHECKSUM_PARTIAL` (what netfront sends with
/// `csum_blank`, and what a GSO frame must carry). Returns `false`, leaving
/// the frame alone, if it is not TCP or UDP over IP.
pub fn set_partial(frame: &mut [u8]) -> bool {
    let Some(l4) = parse(frame) else {
        return false;
    };
    let c = fold(l4.pseudo);
    frame[l4.csum_off..l4.csum_off + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Most segments one GSO frame may be cut into. Linux never sends a TCP
/// segment size below 36 bytes (`tcp_min_snd_mss` is 48, less options), so a
/// 64 KiB frame needs at most 1821; a frame asking for more (a segment size
/// of 1, say) is refused: the sender's TX request is answered with an error,
/// a frame met elsewhere is dropped.
pub const MAX_GSO_SEGS: usize = 2048;

/// How a TCP frame is cut into segments of at most `mss` payload bytes: IP
/// lengths, IPv4 ids and header checksums, TCP sequence numbers, flags (FIN
/// and PSH on the last segment only, CWR on the first only) and TCP
/// checksums are set per segment; Ethernet padding after the IP datagram is
/// left out. Made by [`TcpSegments::plan`]; [`TcpSegments::write`] makes one
/// segment at a time, so segmenting needs no more than one segment's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegments {
    l3_off: usize,
    v6: bool,
    l4_off: usize,
    /// Ethernet, IP and TCP headers.
    hdr_len: usize,
    payload_len: usize,
    mss: usize,
    n: usize,
    seq0: u32,
    ip_id: u16,
    /// The pseudo-header sum without the TCP length.
    pseudo_base: u64,
}

impl TcpSegments {
    /// The plan for `frame`: `None` if it is not TCP over IP, `mss` is 0 or
    /// it would make more than [`MAX_GSO_SEGS`] segments.
    pub fn plan(frame: &[u8], mss: u16) -> Option<TcpSegments> {
        let l4 = parse(frame)?;
        if l4.proto != IPPROTO_TCP || mss == 0 {
            return None;
        }
        let thl = (*frame.get(l4.l4_off + 12)? >> 4) as usize * 4;
        if thl < 20 || thl > l4.l4_len {
            return None;
        }
        let payload_len = l4.l4_len - thl;
        let n = payload_len.div_ceil(mss as usize).max(1);
        if n > MAX_GSO_SEGS {
            return None;
        }
        Some(TcpSegments {
            l3_off: l4.l3_off,
            v6: l4.v6,
            l4_off: l4.l4_off,
            hdr_len: l4.l4_off + thl,
            payload_len,
            mss: mss as usize,
            n,
            seq0: u32::from_be_bytes(frame[l4.l4_off + 4..l4.l4_off + 8].try_into().ok()?),
            ip_id: be16(frame, l4.l3_off + 4)?,
            pseudo_base: l4.pseudo - l4.l4_len as u64,
        })
    }

    /// [`TcpSegments::plan`] for a GSO frame: also `None` if the frame is not
    /// TCP of `gso`'s IP version.
    pub fn for_gso(frame: &[u8], gso: Gso) -> Option<TcpSegments> {
        let p = TcpSegments::plan(frame, gso.mss)?;
        (p.v6 == (gso.kind == GsoKind::TcpV6)).then_some(p)
    }

    /// How many segments.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Length of segment `i` (headers and payload).
    pub fn seg_len(&self, i: usize) -> usize {
        let start = (i * self.mss).min(self.payload_len);
        self.hdr_len + self.mss.min(self.payload_len - start)
    }

    /// Length of the longest segment (the first).
    pub fn max_len(&self) -> usize {
        self.seg_len(0)
    }

    /// Writes segment `i` of `frame` (the frame planned) into `out`, which
    /// must be [`TcpSegments::seg_len`]`(i)` bytes long.
    pub fn write(&self, frame: &[u8], i: usize, out: &mut [u8]) {
        let start = (i * self.mss).min(self.payload_len);
        let chunk = self.mss.min(self.payload_len - start);
        let (h, len) = (self.hdr_len, self.hdr_len + chunk);
        let out = &mut out[..len];
        out[..h].copy_from_slice(&frame[..h]);
        out[h..].copy_from_slice(&frame[h + start..h + start + chunk]);
        let ip = self.l3_off;
        if self.v6 {
            let plen = (len - ip - 40) as u16;
            out[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let ihl = (out[ip] & 0xF) as usize * 4;
            let tot = (len - ip) as u16;
            out[ip + 2..ip + 4].copy_from_slice(&tot.to_be_bytes());
            let id = self.ip_id.wrapping_add(i as u16);
            out[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
            out[ip + 10..ip + 12].fill(0);
            let c = !fold(sum(&out[ip..ip + ihl]));
            out[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        }
        let t = self.l4_off;
        let seq = self.seq0.wrapping_add(start as u32);
        out[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        if i + 1 < self.n {
            out[t + 13] &= !0x09; // FIN, PSH
        }
        if i > 0 {
            out[t + 13] &= !0x80; // CWR
        }
        out[t + 16..t + 18].fill(0);
        let c = !fold(self.pseudo_base + (len - t) as u64 + sum(&out[t..]));
        out[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
    }
}

/// Splits a TCP frame into frames carrying at most `mss` payload bytes each
/// (see [`TcpSegments`]), as heap vectors. `None` if the frame is not TCP
/// over IP, `mss` is 0 or there would be more than [`MAX_GSO_SEGS`].
pub fn segment_tcp(frame: &[u8], mss: u16) -> Option<Vec<Vec<u8>>> {
    let plan = TcpSegments::plan(frame, mss)?;
    Some(
        (0..plan.count())
            .map(|i| {
                let mut seg = vec![0u8; plan.seg_len(i)];
                plan.write(frame, i, &mut seg);
                seg
            })
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame with `payload` (checksum field 0).
    pub fn tcp4(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let c = !fold(sum(ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18 | 0x01 | 0x80; // PSH ACK FIN CWR
        f.extend_from_slice(payload);
        f
    }

    /// An Ethernet + IPv6 (with a hop-by-hop header) + UDP frame.
    pub fn udp6(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 8 + 8];
        f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
        let plen = (8 + 8 + payload.len()) as u16;
        let ip = &mut f[14..54];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&plen.to_be_bytes());
        ip[6] = 0; // hop-by-hop
        ip[7] = 64;
        ip[8..24].copy_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip[24..40].copy_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f[54] = IPPROTO_UDP;
        f[55] = 0;
        f[56] = 1; // PadN option filling the 8-byte header
        f[57] = 4;
        let udp = &mut f[62..70];
        udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
        udp[2..4].copy_from_slice(&5353u16.to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// The textbook way: 16-bit words, one at a time.
    fn reference(frame: &[u8]) -> u16 {
        let l4 = parse(frame).unwrap();
        let mut s: u32 = 0;
        let (src, n) = if l4.v6 {
            (&frame[l4.l3_off + 8..l4.l3_off + 40], 32)
        } else {
            (&frame[l4.l3_off + 12..l4.l3_off + 20], 8)
        };
        for i in (0..n).step_by(2) {
            s += u16::from_be_bytes([src[i], src[i + 1]]) as u32;
        }
        s += l4.proto as u32 + l4.l4_len as u32;
        let seg = &frame[l4.l4_off..l4.l4_off + l4.l4_len];
        for (i, pair) in seg.chunks(2).enumerate() {
            if l4.l4_off + i * 2 == l4.csum_off {
                continue;
            }
            s += u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]) as u32;
        }
        while s >> 16 != 0 {
            s = (s & 0xFFFF) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn complete_and_verify() {
        for payload in [&b""[..], b"x", b"hello world", &[0xFF; 1001]] {
            for mut f in [tcp4(payload), udp6(payload)] {
                assert!(complete(&mut f));
                let l4 = parse(&f).unwrap();
                assert_eq!(be16(&f, l4.csum_off).unwrap(), reference(&f));
                assert!(verify(&f));
                if !payload.is_empty() {
                    let last = f.len() - 1;
                    f[last] ^= 1;
                    assert!(!verify(&f));
                }
            }
        }
    }

    #[test]
    fn padding_vlan_and_oddities() {
        // Ethernet padding after the IP datagram is not summed.
        let mut f = tcp4(b"abc");
        f.extend_from_slice(&[0xAA; 6]);
        assert!(complete(&mut f));
        assert!(verify(&f));
        // A VLAN tag moves the IP header.
        let mut v = tcp4(b"abc");
        v.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        assert!(complete(&mut v));
        assert_eq!(parse(&v).unwrap().l3_off, 18);
        assert!(verify(&v));
        // Fragments, ARP, truncation, bad lengths: nothing to do.
        let mut frag = tcp4(b"abc");
        frag[20] = 0x20; // MF
        assert!(!complete(&mut frag));
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete(&mut arp) && !verify(&arp));
        let t = tcp4(b"abcdef");
        for n in 0..t.len() - 6 {
            assert!(parse(&t[..n]).is_none(), "truncated to {n}");
        }
        let mut long = tcp4(b"abc");
        long[16..18].copy_from_slice(&2000u16.to_be_bytes());
        assert!(parse(&long).is_none());
        // UDP/IPv4 without a checksum is fine.
        let mut u = tcp4(b"abc");
        u[23] = IPPROTO_UDP;
        u[40..42].fill(0);
        assert!(verify(&u));
        assert!(complete(&mut u));
        assert!(verify(&u));
        assert_ne!(be16(&u, 40), Some(0));
    }

    #[test]
    fn partial_is_the_pseudo_header() {
        let mut f = tcp4(b"some data");
        assert!(set_partial(&mut f));
        let l4 = parse(&f).unwrap();
        // Summing the segment with the partial value and no pseudo header gives
        // the full checksum, as a NIC or skb_checksum_help would.
        let full = !fold(sum(&f[l4.l4_off..l4.l4_off + l4.l4_len]));
        complete(&mut f);
        assert_eq!(be16(&f, l4.csum_off).unwrap(), full);
    }

    #[test]
    fn segmentation() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let f = tcp4(&payload);
        let segs = segment_tcp(&f, 1448).unwrap();
        assert_eq!(segs.len(), 3);
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(verify(s), "segment {i}");
            assert_eq!(fold(sum(&s[14..34])), 0xFFFF, "IPv4 header checksum");
            assert_eq!(be16(s, 16).unwrap() as usize, s.len() - 14);
            assert_eq!(be16(s, 18).unwrap(), 0x1234 + i as u16);
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + 1448 * i as u32);
            let flags = s[47];
            assert_eq!(flags & 0x09 != 0, i == 2, "FIN/PSH only last");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR only first");
            joined.extend_from_slice(&s[54..]);
        }
        assert_eq!(joined, payload);
        let six = udp6(b"x");
        assert!(segment_tcp(&six, 100).is_none());
        assert!(segment_tcp(&f, 0).is_none());
        assert_eq!(segment_tcp(&tcp4(b""), 1448).unwrap().len(), 1);
        // At most MAX_GSO_SEGS segments.
        let many = tcp4(&[7; MAX_GSO_SEGS]);
        assert_eq!(segment_tcp(&many, 1).unwrap().len(), MAX_GSO_SEGS);
        let more = tcp4(&[7; MAX_GSO_SEGS + 1]);
        assert!(segment_tcp(&more, 1).is_none());
        // One segment at a time into the caller's buffer, same bytes.
        let plan = TcpSegments::plan(&f, 1448).unwrap();
        assert_eq!(
            (plan.count(), plan.max_len(), plan.seg_len(2)),
            (3, 1502, 54 + 104)
        );
        let mut buf = [0u8; 1502];
        plan.write(&f, 1, &mut buf);
        assert_eq!(buf[..], segs[1][..]);
        let v4 = Gso {
            kind: GsoKind::TcpV4,
            mss: 1448,
        };
        let v6 = Gso {
            kind: GsoKind::TcpV6,
            ..v4
        };
        assert!(TcpSegments::for_gso(&f, v4).is_some());
        assert!(TcpSegments::for_gso(&f, v6).is_none());
    }
}
