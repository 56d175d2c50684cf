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
    /// `ip=`: address(es) for the backend's anti-spoofing rules.
    pub ip: Option<String>,
    /// `script=`: the backend's hotplug script.
    pub script: Option<String>,
    /// `mtu=`: the interface MTU.
    pub mtu: Option<u32>,
    /// Other `key=value` pairs, in order (xl knows many more; they are kept, not interpreted).
    pub other: Vec<(String, String)>,
    /// The entry as written.
    pub raw: String,
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
            "ip" => v.ip = Some(val.to_string()),
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
