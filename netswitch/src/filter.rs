//! Antispoofing: what a port (a vif) may send, as Xen's vif hotplug scripts
//! allow a vif.
//!
//! A [`SourceFilter`] on a port ([`Switch::set_source_filter`]) admits only
//! frames whose Ethernet source is the vif's own MAC (the `mac` of its
//! backend directory), and ARP whose sender hardware address is that MAC.
//! With an `ip=` list it also admits, as `vif-common.sh`'s `handle_iptable`
//! rules do (`iptables -A FORWARD -m physdev --physdev-in vif -s <addr> -j
//! ACCEPT` per address, plus `-p udp --sport 68 --dport 67` for DHCP):
//!
//! * IPv4 only from a source address in the list, or UDP from port 68 to
//!   port 67 (a DHCP client, whatever its source, 0.0.0.0 included);
//! * ARP (Ethernet/IPv4 only) only with a sender protocol address in the
//!   list, or 0.0.0.0 (an RFC 5227 probe, as `arping -D` and DHCP clients
//!   send).
//!
//! Other EtherTypes (IPv6 among them) pass on the MAC check alone, as in
//! Xen, whose rules are IPv4 `iptables` ones. 802.1Q and 802.1ad tags are
//! looked through (two at most; a deeper stack is refused), so a tagged
//! frame cannot carry what an untagged one may not.
//!
//! [`Switch::set_source_filter`]: crate::Switch::set_source_filter

use crate::switch::{MacAddr, ETH_HEADER_LEN};
use alloc::vec::Vec;
use core::fmt;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
/// `bootpc` and `bootps` (RFC 2131).
const DHCP_CLIENT_PORT: u16 = 68;
const DHCP_SERVER_PORT: u16 = 67;
/// VLAN tags looked through before a frame is refused.
const MAX_VLAN_TAGS: usize = 2;

/// An IPv4 network, `addr/prefix_len` (one entry of a vif's `ip=` list; a
/// bare address is a /32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address (bits past the prefix are ignored).
    pub addr: [u8; 4],
    /// Leading bits that count, 0 to 32 (more is taken as 32).
    pub prefix_len: u8,
}

impl Ipv4Net {
    /// The single address `addr` (/32).
    pub const fn host(addr: [u8; 4]) -> Ipv4Net {
        Ipv4Net {
            addr,
            prefix_len: 32,
        }
    }

    /// Whether `addr` lies in the network.
    pub fn contains(&self, addr: [u8; 4]) -> bool {
        let bits = self.prefix_len.min(32) as u32;
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        u32::from_be_bytes(self.addr) & mask == u32::from_be_bytes(addr) & mask
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr;
        write!(f, "{a}.{b}.{c}.{d}/{}", self.prefix_len)
    }
}

/// What one port may send (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFilter {
    /// The only Ethernet source (and ARP sender) MAC the port may use.
    pub mac: MacAddr,
    /// `ip=`: the IPv4 networks its IPv4 and ARP may come from; `None`:
    /// any address (Xen's "no IP addresses have been specified, so allow
    /// anything").
    pub ipv4: Option<Vec<Ipv4Net>>,
}

/// Why a [`SourceFilter`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spoof {
    /// The Ethernet source is not the port's MAC.
    Mac,
    /// An ARP sender hardware address that is not the port's MAC.
    ArpMac,
    /// An IPv4 source (or ARP sender protocol address) outside `ip=`.
    Ip,
    /// A frame the filter cannot read: a truncated IPv4 or ARP header, ARP
    /// that is not Ethernet/IPv4, or more VLAN tags than it looks through.
    Malformed,
}

impl SourceFilter {
    /// A filter that admits `mac` with any IPv4 address.
    pub const fn mac_only(mac: MacAddr) -> SourceFilter {
        SourceFilter { mac, ipv4: None }
    }

    /// Whether `frame` (an Ethernet frame of at least [`ETH_HEADER_LEN`]
    /// bytes) may be sent from the port.
    pub fn check(&self, frame: &[u8]) -> Result<(), Spoof> {
        if frame.get(6..12) != Some(&self.mac[..]) {
            return Err(Spoof::Mac);
        }
        let (ethertype, l3) = ethertype(frame).ok_or(Spoof::Malformed)?;
        let l3 = &frame[l3..];
        match ethertype {
            ETHERTYPE_ARP => self.check_arp(l3),
            ETHERTYPE_IPV4 => match &self.ipv4 {
                Some(nets) => check_ipv4(nets, l3),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn check_arp(&self, arp: &[u8]) -> Result<(), Spoof> {
        // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, then the opcode,
        // the sender's MAC and IPv4 address.
        let Some(head) = arp.get(..18) else {
            return Err(Spoof::Malformed);
        };
        if head[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return Err(Spoof::Malformed);
        }
        if head[8..14] != self.mac {
            return Err(Spoof::ArpMac);
        }
        let sender = [head[14], head[15], head[16], head[17]];
        match &self.ipv4 {
            Some(nets) if sender != [0; 4] && !nets.iter().any(|n| n.contains(sender)) => {
                Err(Spoof::Ip)
            }
            _ => Ok(()),
        }
    }
}

/// The EtherType of `frame` past at most [`MAX_VLAN_TAGS`] tags, and where
/// its payload starts; `None` for a deeper or truncated tag stack.
fn ethertype(frame: &[u8]) -> Option<(u16, usize)> {
    let mut off = ETH_HEADER_LEN - 2;
    for _ in 0..=MAX_VLAN_TAGS {
        let ty = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        if ty != ETHERTYPE_VLAN && ty != ETHERTYPE_QINQ {
            return Some((ty, off + 2));
        }
        off += 4;
    }
    None
}

/// The `ip=` rules on an IPv4 packet `ip` (from its header on).
fn check_ipv4(nets: &[Ipv4Net], ip: &[u8]) -> Result<(), Spoof> {
    let Some(head) = ip.get(..20) else {
        return Err(Spoof::Malformed);
    };
    let src = [head[12], head[13], head[14], head[15]];
    if nets.iter().any(|n| n.contains(src)) {
        return Ok(());
    }
    // `-p udp --sport 68 --dport 67`: ports are only in a first fragment.
    let ihl = (head[0] & 0x0f) as usize * 4;
    let first_fragment = u16::from_be_bytes([head[6], head[7]]) & 0x1fff == 0;
    if head[0] >> 4 == 4 && ihl >= 20 && head[9] == IPPROTO_UDP && first_fragment {
        if let Some(udp) = ip.get(ihl..ihl + 4) {
            let sport = u16::from_be_bytes([udp[0], udp[1]]);
            let dport = u16::from_be_bytes([udp[2], udp[3]]);
            if sport == DHCP_CLIENT_PORT && dport == DHCP_SERVER_PORT {
                return Ok(());
            }
        }
    }
    Err(Spoof::Ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MAC: MacAddr = [0x00, 0x16, 0x3e, 0, 1, 0];
    const OTHER: MacAddr = [0x00, 0x16, 0x3e, 0, 2, 0];

    fn eth(src: MacAddr, ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&src);
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4(src: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&[10, 0, 0, 1]);
        h.extend_from_slice(l4);
        h
    }

    fn udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&[0, 8, 0, 0]);
        u
    }

    fn arp(sha: MacAddr, spa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
        a.extend_from_slice(&sha);
        a.extend_from_slice(&spa);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&[10, 0, 0, 1]);
        a
    }

    fn restricted() -> SourceFilter {
        SourceFilter {
            mac: MAC,
            ipv4: Some(vec![
                Ipv4Net::host([10, 0, 0, 2]),
                Ipv4Net {
                    addr: [192, 168, 7, 99],
                    prefix_len: 24,
                },
            ]),
        }
    }

    #[test]
    fn networks() {
        let n = Ipv4Net {
            addr: [10, 1, 2, 3],
            prefix_len: 8,
        };
        assert!(n.contains([10, 255, 0, 1]));
        assert!(!n.contains([11, 0, 0, 0]));
        let any = Ipv4Net {
            addr: [1, 2, 3, 4],
            prefix_len: 0,
        };
        assert!(any.contains([200, 0, 0, 1]));
        let over = Ipv4Net {
            addr: [1, 2, 3, 4],
            prefix_len: 99,
        };
        assert!(over.contains([1, 2, 3, 4]) && !over.contains([1, 2, 3, 5]));
        assert_eq!(Ipv4Net::host([10, 0, 0, 2]).to_string(), "10.0.0.2/32");
    }

    #[test]
    fn only_the_own_mac_passes() {
        let f = SourceFilter::mac_only(MAC);
        let tcp = ipv4([6, 6, 6, 6], 6, &[0; 20]);
        assert_eq!(f.check(&eth(MAC, ETHERTYPE_IPV4, &tcp)), Ok(()));
        assert_eq!(f.check(&eth(OTHER, ETHERTYPE_IPV4, &tcp)), Err(Spoof::Mac));
        assert_eq!(f.check(&eth(MAC, 0x86dd, &[0; 40])), Ok(()));
        // Without ip= any sender address, but only its own MAC, in ARP.
        let a = eth(MAC, ETHERTYPE_ARP, &arp(MAC, [1, 2, 3, 4]));
        assert_eq!(f.check(&a), Ok(()));
        let a = eth(MAC, ETHERTYPE_ARP, &arp(OTHER, [1, 2, 3, 4]));
        assert_eq!(f.check(&a), Err(Spoof::ArpMac));
        let short = eth(MAC, ETHERTYPE_ARP, &arp(MAC, [1, 2, 3, 4])[..17]);
        assert_eq!(f.check(&short), Err(Spoof::Malformed));
        // A truncated IPv4 header is nothing the filter needs without ip=.
        assert_eq!(f.check(&eth(MAC, ETHERTYPE_IPV4, &[0x45])), Ok(()));
    }

    #[test]
    fn ip_rules() {
        let f = restricted();
        let ok = |src, proto, l4: &[u8]| f.check(&eth(MAC, ETHERTYPE_IPV4, &ipv4(src, proto, l4)));
        assert_eq!(ok([10, 0, 0, 2], 6, &[0; 20]), Ok(()));
        assert_eq!(ok([192, 168, 7, 1], 6, &[0; 20]), Ok(()));
        assert_eq!(ok([10, 0, 0, 3], 6, &[0; 20]), Err(Spoof::Ip));
        assert_eq!(ok([192, 168, 8, 1], 1, &[0; 8]), Err(Spoof::Ip));
        // DHCP client traffic from any source (0.0.0.0 for DISCOVER).
        assert_eq!(ok([0, 0, 0, 0], IPPROTO_UDP, &udp(68, 67)), Ok(()));
        assert_eq!(ok([10, 9, 9, 9], IPPROTO_UDP, &udp(68, 67)), Ok(()));
        assert_eq!(ok([0, 0, 0, 0], IPPROTO_UDP, &udp(67, 68)), Err(Spoof::Ip));
        assert_eq!(ok([0, 0, 0, 0], 6, &udp(68, 67)), Err(Spoof::Ip));
        assert_eq!(ok([0, 0, 0, 0], IPPROTO_UDP, &[0, 68]), Err(Spoof::Ip));
        // A later fragment has no ports to match.
        let mut frag = ipv4([0, 0, 0, 0], IPPROTO_UDP, &udp(68, 67));
        frag[6..8].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(f.check(&eth(MAC, ETHERTYPE_IPV4, &frag)), Err(Spoof::Ip));
        let trunc = &ipv4([10, 0, 0, 2], 6, &[])[..19];
        assert_eq!(
            f.check(&eth(MAC, ETHERTYPE_IPV4, trunc)),
            Err(Spoof::Malformed)
        );
        // ARP: the sender must be one of ip=, or a probe's 0.0.0.0.
        let a = |sha, spa| f.check(&eth(MAC, ETHERTYPE_ARP, &arp(sha, spa)));
        assert_eq!(a(MAC, [10, 0, 0, 2]), Ok(()));
        assert_eq!(a(MAC, [0, 0, 0, 0]), Ok(()));
        assert_eq!(a(MAC, [10, 0, 0, 1]), Err(Spoof::Ip));
        assert_eq!(a(OTHER, [10, 0, 0, 2]), Err(Spoof::ArpMac));
        let mut rarp_like = arp(MAC, [10, 0, 0, 2]);
        rarp_like[1] = 6; // htype IEEE 802
        assert_eq!(
            f.check(&eth(MAC, ETHERTYPE_ARP, &rarp_like)),
            Err(Spoof::Malformed)
        );
        // IPv6 is not Xen's iptables' business.
        assert_eq!(f.check(&eth(MAC, 0x86dd, &[0x60; 40])), Ok(()));
    }

    #[test]
    fn vlan_tags_are_looked_through() {
        let f = restricted();
        let tagged = |tags: &[u16], inner: &[u8]| {
            let mut p = Vec::new();
            for (i, _) in tags.iter().enumerate() {
                p.extend_from_slice(&[0, 5]);
                let next = tags.get(i + 1).copied().unwrap_or(ETHERTYPE_IPV4);
                p.extend_from_slice(&next.to_be_bytes());
            }
            p.extend_from_slice(inner);
            eth(MAC, tags[0], &p)
        };
        let good = ipv4([10, 0, 0, 2], 6, &[0; 20]);
        let bad = ipv4([10, 0, 0, 3], 6, &[0; 20]);
        assert_eq!(f.check(&tagged(&[ETHERTYPE_VLAN], &good)), Ok(()));
        assert_eq!(f.check(&tagged(&[ETHERTYPE_VLAN], &bad)), Err(Spoof::Ip));
        let qinq = [ETHERTYPE_QINQ, ETHERTYPE_VLAN];
        assert_eq!(f.check(&tagged(&qinq, &bad)), Err(Spoof::Ip));
        let deep = [ETHERTYPE_VLAN; 3];
        assert_eq!(f.check(&tagged(&deep, &good)), Err(Spoof::Malformed));
        // A tag cut short.
        assert_eq!(
            f.check(&eth(MAC, ETHERTYPE_VLAN, &[0, 5])),
            Err(Spoof::Malformed)
        );
    }
}
