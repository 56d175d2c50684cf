//! `xenolith-tools profile <serial.log>`: the guest code profiles a boot with
//! `profile_us=<N>` printed (`profile <label> d<N>: samples=S dropped=D <rip>=<count> ...`
//! at each `XENOLITH TICKS` mark), by function of the guest kernel. Debian's `System.map` is a
//! stub, so the symbols come from the guest itself: with `xenolith.kallsyms=1` the iperf3
//! client prints its `/proc/kallsyms` text symbols (gzip, base64) between `GUEST KALLSYMS
//! begin` and `end`; `nokaslr` keeps the addresses the same in both domains. Set
//! `XENOLITH_PROFILE_US=<N>` for the iperf3 bench, which adds all three. Addresses below the
//! kernel half are `[user]`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use std::io::Read;

/// Environment variable: sample guest RIPs every this many µs in the iperf3 boots
/// (hypervisor `profile_us=`, guest `nokaslr`).
pub const PROFILE_ENV: &str = "XENOLITH_PROFILE_US";

/// One printed profile: its label, domain, samples and (address, count) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The mark's label (e.g. `c2s-1-1-end`).
    pub label: String,
    /// The domain.
    pub domid: u32,
    /// Samples taken.
    pub samples: u64,
    /// Addresses with their counts, most first.
    pub rips: Vec<(u64, u64)>,
}

/// The hypervisor's profile lines in `log`, in order.
pub fn parse(log: &str) -> Vec<Profile> {
    log.lines()
        .filter(|l| !l.starts_with("(d"))
        .filter_map(|l| {
            let rest = &l[l.find("profile ")? + 8..];
            let (head, body) = rest.split_once(": ")?;
            let (label, dom) = head.rsplit_once(" d")?;
            let mut p = Profile {
                label: label.to_string(),
                domid: dom.parse().ok()?,
                samples: 0,
                rips: Vec::new(),
            };
            for kv in body.split_whitespace() {
                let (k, v) = kv.split_once('=')?;
                match k {
                    "samples" => p.samples = v.parse().ok()?,
                    "dropped" => {}
                    _ => p
                        .rips
                        .push((u64::from_str_radix(k, 16).ok()?, v.parse().ok()?)),
                }
            }
            Some(p)
        })
        .collect()
}

/// The guest's text symbols from its `GUEST KALLSYMS` block in `log` (lines `<addr> <name>
/// [<[module]>]`), sorted by address.
pub fn kallsyms(log: &str) -> Result<Vec<(u64, String)>> {
    let mut b64 = String::new();
    let mut inside = false;
    for line in log.lines() {
        if line.ends_with("GUEST KALLSYMS begin") {
            inside = true;
        } else if line.ends_with("GUEST KALLSYMS end") {
            inside = false;
        } else if inside {
            // "(d2) <base64>": the console prefix goes.
            b64 += line.rsplit(' ').next().unwrap_or("");
        }
    }
    if b64.is_empty() {
        bail!("no GUEST KALLSYMS block (boot with XENOLITH_PROFILE_US set)");
    }
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .context("decoding the kallsyms block")?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .context("gunzipping the kallsyms block")?;
    let mut syms: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let name = w.next()?;
            let name = match w.next() {
                Some(module) => format!("{name} {module}"),
                None => name.to_string(),
            };
            Some((addr, name))
        })
        .collect();
    syms.sort();
    Ok(syms)
}

/// The function `rip` lies in.
pub fn resolve(map: &[(u64, String)], rip: u64) -> String {
    if rip < 0xffff_8000_0000_0000 {
        return "[user]".into();
    }
    let i = map.partition_point(|(a, _)| *a <= rip);
    match i.checked_sub(1).map(|j| &map[j]) {
        Some((_, name)) => name.clone(),
        None => "[unknown]".into(),
    }
}

/// Samples by function, most first.
pub fn by_function(map: &[(u64, String)], p: &Profile) -> Vec<(String, u64)> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for &(rip, n) in &p.rips {
        *sums.entry(resolve(map, rip)).or_default() += n;
    }
    let mut v: Vec<(String, u64)> = sums.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Prints the functions of every profile ending a window in `log` (labels ending in `-end`).
pub fn report(log: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let map = kallsyms(&text)?;
    let mut out = String::new();
    for p in parse(&text).iter().filter(|p| p.label.ends_with("-end")) {
        out += &format!("{} d{}: {} samples\n", p.label, p.domid, p.samples);
        for (name, n) in by_function(&map, p).iter().take(30) {
            let pct = 100.0 * *n as f64 / p.samples.max(1) as f64;
            out += &format!("  {pct:5.1}%  {n:6}  {name}\n");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let log = "(d1) profile fake d1: samples=9 ffffffff81000010=9\n\
                   profile c2s-1-1-end d2: samples=10 dropped=0 ffffffff81000010=5 ffffffff81000120=3 4000=1 ffffffffc0001000=1\n";
        let ps = parse(log);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].label, "c2s-1-1-end");
        assert_eq!(ps[0].domid, 2);
        assert_eq!(ps[0].samples, 10);
        let syms = "ffffffff81000000 _text\nffffffff81000100 copy_user\nffffffffc0001000 xennet_poll [xen_netfront]\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, syms.as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let (a, b) = b64.split_at(b64.len() / 2);
        let log =
            format!("(d2) GUEST KALLSYMS begin\n(d2) {a}\n(d2) {b}\n(d2) GUEST KALLSYMS end\n");
        let map = kallsyms(&log).unwrap();
        assert_eq!(map.len(), 3);
        assert!(kallsyms("nothing").is_err());
        let f = by_function(&map, &ps[0]);
        assert_eq!(
            f,
            vec![
                ("_text".to_string(), 5),
                ("copy_user".to_string(), 3),
                ("[user]".to_string(), 1),
                ("xennet_poll [xen_netfront]".to_string(), 1)
            ]
        );
    }
}
