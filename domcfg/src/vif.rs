//! `vif = [ "mac=00:16:3e:00:00:01,bridge=xenbr0", ... ]` entries (xl-network-configuration(5)).

use crate::error::ErrorKind;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// `type=` of a vif entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VifType {
    /// `type=vif`: a PV interface only.
    Vif,
    /// `type=ioemu`: a PV interface plus an emulated NIC (HVM).
    Ioemu,
}

/// One network interface from the `vif` list.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VifSpec {
    /// `mac=`: the guest's MAC address (unicast); `None` lets the hypervisor choose one.
    pub mac: Option<[u8; 6]>,
    /// `bridge=`: the backend bridge to attach to.
    pub bridge: Option<String>,
    /// `model=`: the emulated NIC model (e.g. `e1000`, `rtl8139`).
    pub model: Option<String>,
    /// `type=`: `vif` or `ioemu`.
    pub vif_type: Option<VifType>,
    /// `backend=`: the backend domain's name.
    pub backend: Option<String>,
    /// `vifname=`: the backend interface's name.
    pub vifname: Option<String>,
    /// `ip=`: the IPv4 addresses or networks (`a.b.c.d` or `a.b.c.d/len`,
    /// space-separated) the guest may send from, for the backend's
    /// antispoofing rules (as Xen's `vif-common.sh` applies them); `None`
    /// (absent or empty, as in Xen) allows any address.
    pub ip: Option<Vec<Ipv4Net>>,
    /// `script=`: the backend's hotplug script.
    pub script: Option<String>,
    /// `mtu=`: the interface MTU.
    pub mtu: Option<u32>,
    /// Other `key=value` pairs, in order (xl knows many more; they are kept, not interpreted).
    pub other: Vec<(String, String)>,
    /// The entry as written.
    pub raw: String,
}

/// An IPv4 network of an `ip=` list: `addr/prefix_len` (32 for a bare
/// address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address as written (host bits are kept; matching ignores them).
    pub addr: [u8; 4],
    /// Leading bits that count, 0 to 32.
    pub prefix_len: u8,
}

/// Parses an IPv4 address in dotted-quad form: four decimal octets of 0 to
/// 255, without leading zeros (which `inet_aton` would read as octal).
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut addr = [0u8; 4];
    let mut parts = s.split('.');
    for byte in addr.iter_mut() {
        let p = parts.next()?;
        let ok = (1..=3).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'));
        if !ok {
            return None;
        }
        *byte = p.parse().ok()?;
    }
    parts.next().is_none().then_some(addr)
}

/// Parses one `ip=` entry: `a.b.c.d` or `a.b.c.d/len` (`len` 0 to 32).
pub fn parse_ipv4_net(s: &str) -> Option<Ipv4Net> {
    let (addr, prefix_len) = match s.split_once('/') {
        None => (s, 32),
        Some((a, len)) => {
            let ok = (1..=2).contains(&len.len()) && len.bytes().all(|b| b.is_ascii_digit());
            match len.parse::<u8>() {
                Ok(n) if ok && n <= 32 => (a, n),
                _ => return None,
            }
        }
    };
    Some(Ipv4Net {
        addr: parse_ipv4(addr)?,
        prefix_len,
    })
}

/// Parses a MAC address written as six two-digit hex octets separated by `:`; multicast
/// addresses (bit 0 of the first octet set) are refused because a NIC cannot use them.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() || mac[0] & 1 != 0 {
        return None;
    }
    Some(mac)
}

/// Parses one entry (`index` is its position in the list, for messages).
pub fn parse_vif(index: usize, raw: &str) -> Result<VifSpec, ErrorKind> {
    let mut v = VifSpec {
        raw: raw.to_string(),
        ..VifSpec::default()
    };
    let bad = |detail: String| ErrorKind::BadVif { index, detail };
    for token in raw.split(',') {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        let Some((k, val)) = token.split_once('=') else {
            return Err(bad(format!("expected key=value, found {token:?}")));
        };
        let (k, val) = (k.trim(), val.trim());
        match k {
            "mac" => {
                v.mac = Some(parse_mac(val).ok_or_else(|| ErrorKind::BadMac {
                    found: val.to_string(),
                })?)
            }
            "bridge" => v.bridge = Some(val.to_string()),
            "model" => v.model = Some(val.to_string()),
            "type" => {
                v.vif_type = Some(match val {
                    "vif" => VifType::Vif,
                    "ioemu" => VifType::Ioemu,
                    _ => return Err(bad(format!("type must be vif or ioemu, found {val:?}"))),
                })
            }
            "backend" => v.backend = Some(val.to_string()),
            "vifname" => v.vifname = Some(val.to_string()),
            "ip" => {
                let nets = val
                    .split_ascii_whitespace()
                    .map(|a| {
                        parse_ipv4_net(a).ok_or_else(|| {
                            bad(format!(
                                "ip must be IPv4 addresses or networks (a.b.c.d or a.b.c.d/len), found {a:?}"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                v.ip = (!nets.is_empty()).then_some(nets);
            }
            "script" => v.script = Some(val.to_string()),
            "mtu" => match val.parse::<u32>() {
                Ok(m) if (68..=65535).contains(&m) => v.mtu = Some(m),
                _ => {
                    return Err(bad(format!(
                        "mtu must be an integer from 68 to 65535, found {val:?}"
                    )))
                }
            },
            "" => return Err(bad(format!("expected key=value, found {token:?}"))),
            _ => v.other.push((k.to_string(), val.to_string())),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:16:3e:00:00:01"),
            Some([0, 0x16, 0x3e, 0, 0, 1])
        );
        assert_eq!(
            parse_mac("AA:bb:CC:dd:EE:fe"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xfe])
        );
        for bad in [
            "",
            "00:16:3e:00:00",
            "00:16:3e:00:00:01:02",
            "00:16:3e:00:00:1",
            "00-16-3e-00-00-01",
            "00:16:3e:00:00:0g",
            "01:16:3e:00:00:01",
            "00:16:3e:00:00:+1",
            "00:16:3e:00:00:01:",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn ip_lists() {
        let net = |a, len| Ipv4Net {
            addr: a,
            prefix_len: len,
        };
        let v = parse_vif(0, "mac=00:16:3e:00:00:01,ip=10.0.0.2  192.168.0.0/16").unwrap();
        assert_eq!(
            v.ip,
            Some(alloc::vec![
                net([10, 0, 0, 2], 32),
                net([192, 168, 0, 0], 16)
            ])
        );
        assert_eq!(
            parse_vif(0, "ip=0.0.0.0/0").unwrap().ip,
            Some(alloc::vec![net([0; 4], 0)])
        );
        // Empty: no restriction, as in Xen.
        assert_eq!(parse_vif(0, "ip=").unwrap().ip, None);
        assert_eq!(parse_vif(0, "ip= ").unwrap().ip, None);
        for bad in [
            "ip=10.0.0",
            "ip=10.0.0.256",
            "ip=10.0.0.1/33",
            "ip=10.0.0.1/",
            "ip=10.0.0.1/+8",
            "ip=010.0.0.1",
            "ip=10.0.0.1.1",
            "ip=fe80::1",
            "ip=10.0.0.1 bogus",
            "ip=1.2.3.4/008",
        ] {
            assert!(
                matches!(parse_vif(1, bad), Err(ErrorKind::BadVif { index: 1, .. })),
                "{bad}"
            );
        }
        assert_eq!(parse_ipv4("255.0.0.9"), Some([255, 0, 0, 9]));
        assert_eq!(parse_ipv4(""), None);
    }

    #[test]
    fn entries() {
        let v = parse_vif(
            0,
            "mac=00:16:3e:00:00:01, bridge=xenbr0,type=vif,mtu=1500,rate=10Mb/s",
        )
        .unwrap();
        assert_eq!(v.mac, Some([0, 0x16, 0x3e, 0, 0, 1]));
        assert_eq!(v.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(v.vif_type, Some(VifType::Vif));
        assert_eq!(v.mtu, Some(1500));
        assert_eq!(
            v.other,
            alloc::vec![("rate".to_string(), "10Mb/s".to_string())]
        );
        assert_eq!(parse_vif(0, "").unwrap().raw, "");
        assert!(matches!(
            parse_vif(2, "bridge").unwrap_err(),
            ErrorKind::BadVif { index: 2, .. }
        ));
        assert!(matches!(
            parse_vif(0, "=x").unwrap_err(),
            ErrorKind::BadVif { .. }
        ));
        assert!(matches!(
            parse_vif(0, "type=tap").unwrap_err(),
            ErrorKind::BadVif { .. }
        ));
        assert!(matches!(
            parse_vif(0, "mtu=0").unwrap_err(),
            ErrorKind::BadVif { .. }
        ));
        assert_eq!(
            parse_vif(0, "mac=zz").unwrap_err(),
            ErrorKind::BadMac { found: "zz".into() }
        );
    }
}
