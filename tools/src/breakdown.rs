//! The hypervisor's tick ledger over a measuring window, from its `ticks` lines.
//!
//! A guest that prints the console line `XENOLITH TICKS <label>` makes the hypervisor print one
//! serial line (other text, such as a timestamp, may stand before it)
//!
//! `ticks <label>: tsc=<T> <key>=<value> <key>=<value> ...`
//!
//! with the TSC and the nonzero cumulative counts since boot (a key not on the line is 0):
//! * `d<N>.busy`, `d<N>.halted`: TSC ticks domain N's vCPUs ran guest code, or sat in the VMX
//!   HLT state (nobody had work);
//! * `d<N>.exit.<reason>`, `d<N>.hcall.<name>`: hypervisor ticks handling domain N's VM exits
//!   of that reason, and its hypercalls of that name;
//! * `hv.<part>`: the rest of the hypervisor (`netback_tx`, `netback_rx`, `switch`, `peer`,
//!   `xenstore`, `console`, `sched`, `idle`, `other`, or any other part);
//! * `n.<...>`: counts, not ticks (`n.d1.exits`, `n.d1.notifications`, `n.d1.kicks`,
//!   `n.d1.tx_packets`, ...).
//!
//! Every tick is in exactly one tick key (every key but the `n.` ones), so over a window (two
//! snapshots' difference, [`Ticks::since`]) the tick keys add up to the TSC's delta;
//! [`Ticks::discrepancy`] says by how much they miss. [`Ticks::render`] prints a window for a
//! person, [`Ticks::groups`] splits it into the groups of a bar, and [`write_svg`] draws the
//! bars.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::netfront_bench::{num, per_byte, per_mib, show};

/// What stands before the label on the hypervisor's lines.
pub const TICKS_MARK: &str = "ticks ";
/// What a guest prints to have a snapshot taken (its own line, which is not one).
pub const GUEST_MARK: &str = "XENOLITH TICKS ";
/// The most the tick keys may miss the window by, % of it, before the breakdown is flagged.
pub const MAX_DISCREPANCY_PCT: f64 = 1.0;
/// Rows under this share of the window (%) are folded into one `other` row of their section
/// when printed (they are still counted).
pub const FOLD_BELOW_PCT: f64 = 0.5;

/// Printed or drawn rows: (name, ticks).
pub type Rows = Vec<(String, u64)>;

/// A snapshot of the ledger (cumulative), or a window (the differences of two snapshots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ticks {
    /// The TSC; of a window, its length.
    pub tsc: u64,
    /// Every other key's value; a key not here is 0.
    pub values: BTreeMap<String, u64>,
}

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key<'a> {
    Busy(u32),
    Halted(u32),
    Exit(u32, &'a str),
    Hcall(u32, &'a str),
    Hv(&'a str),
    /// A count (`n.`), of one domain or of none.
    Count(Option<u32>, &'a str),
    /// Ticks of a key not named above.
    Unknown,
}

/// `d<N>.<rest>` as (N, rest).
fn domain(key: &str) -> Option<(u32, &str)> {
    let (n, rest) = key.strip_prefix('d')?.split_once('.')?;
    Some((n.parse().ok()?, rest))
}

fn classify(key: &str) -> Key<'_> {
    if let Some(count) = key.strip_prefix("n.") {
        return match domain(count) {
            Some((d, what)) => Key::Count(Some(d), what),
            None => Key::Count(None, count),
        };
    }
    if let Some(part) = key.strip_prefix("hv.") {
        return Key::Hv(part);
    }
    let Some((d, what)) = domain(key) else {
        return Key::Unknown;
    };
    match what {
        "busy" => Key::Busy(d),
        "halted" => Key::Halted(d),
        _ => match (what.strip_prefix("exit."), what.strip_prefix("hcall.")) {
            (Some(reason), _) => Key::Exit(d, reason),
            (_, Some(name)) => Key::Hcall(d, name),
            _ => Key::Unknown,
        },
    }
}

/// Whether `line` is a guest's console line (`(d<N>) ...`), which never is the hypervisor's.
fn guest_line(line: &str) -> bool {
    line.strip_prefix("(d")
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The label and snapshot of a hypervisor `ticks <label>: tsc=...` line.
pub fn parse_line(line: &str) -> Option<(String, Ticks)> {
    let line = line.trim();
    if guest_line(line) {
        return None;
    }
    line.match_indices(TICKS_MARK).find_map(|(at, _)| {
        let (label, rest) = line[at + TICKS_MARK.len()..].split_once(':')?;
        if label.is_empty() || label.contains(char::is_whitespace) {
            return None;
        }
        let mut values: BTreeMap<String, u64> = rest
            .split_whitespace()
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        let tsc = values.remove("tsc")?;
        Some((label.to_string(), Ticks { tsc, values }))
    })
}

/// Every snapshot in `log` by label; of a label seen twice (a retried run), the last.
pub fn parse_log(log: &str) -> BTreeMap<String, Ticks> {
    log.lines().filter_map(parse_line).collect()
}

/// Whether tick share `ticks` of `window` is under [`FOLD_BELOW_PCT`].
fn small(ticks: u64, window: u64) -> bool {
    (ticks as f64) * 100.0 < FOLD_BELOW_PCT * window as f64
}

/// `rows` with those under [`FOLD_BELOW_PCT`] of `window` folded into one `other` row, when
/// there are two or more.
fn fold_small(rows: Rows, window: u64) -> Rows {
    let (mut big, tiny): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| !small(r.1, window));
    if tiny.len() < 2 {
        big.extend(tiny);
    } else {
        let name = format!("other ({} keys, each < {FOLD_BELOW_PCT} %)", tiny.len());
        big.push((name, tiny.iter().map(|r| r.1).sum()));
    }
    big
}

/// The groups of the picture, in stacking order: each domain's busy and halted ticks, VM
/// exits, hypercalls, these `hv.` parts, then everything else as `other`.
const HV_GROUPS: [(&str, &str); 6] = [
    ("netback_tx", "netback tx"),
    ("netback_rx", "netback rx"),
    ("switch", "switch"),
    ("peer", "peer"),
    ("sched", "sched"),
    ("idle", "idle"),
];

/// A tick key's group in the picture, with its stacking position; none for a count.
fn group(key: &str) -> Option<((u32, u32), String)> {
    let other = || ((4, 0), "other".to_string());
    Some(match classify(key) {
        Key::Busy(d) => ((0, 2 * d), format!("d{d} busy")),
        Key::Halted(d) => ((0, 2 * d + 1), format!("d{d} halted")),
        Key::Exit(..) => ((1, 0), "VM exits".into()),
        Key::Hcall(..) => ((2, 0), "hypercalls".into()),
        Key::Hv(part) => match HV_GROUPS.iter().position(|(k, _)| *k == part) {
            Some(i) => ((3, i as u32), HV_GROUPS[i].1.into()),
            None => other(),
        },
        Key::Unknown => other(),
        Key::Count(..) => return None,
    })
}

impl Ticks {
    /// The value of `key` (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.values.get(key).copied().unwrap_or(0)
    }

    /// The window from snapshot `earlier` to this one (keys that stayed put left out); none if
    /// anything went backwards.
    pub fn since(&self, earlier: &Ticks) -> Option<Ticks> {
        let keys: BTreeSet<&String> = self.values.keys().chain(earlier.values.keys()).collect();
        let mut values = BTreeMap::new();
        for k in keys {
            let d = self.get(k).checked_sub(earlier.get(k))?;
            if d > 0 {
                values.insert(k.clone(), d);
            }
        }
        Some(Ticks {
            tsc: self.tsc.checked_sub(earlier.tsc)?,
            values,
        })
    }

    /// The sum of the tick keys (every key but the `n.` counts).
    pub fn sum(&self) -> u64 {
        self.values
            .iter()
            .filter(|(k, _)| !matches!(classify(k), Key::Count(..)))
            .map(|(_, v)| v)
            .sum()
    }

    /// How far [`Ticks::sum`] misses the TSC (of a window: its length), % of it.
    pub fn discrepancy(&self) -> Option<f64> {
        (self.tsc > 0).then(|| (self.sum() as f64 - self.tsc as f64) * 100.0 / self.tsc as f64)
    }

    /// Whether the tick keys add up to the TSC within [`MAX_DISCREPANCY_PCT`].
    pub fn adds_up(&self) -> bool {
        self.discrepancy()
            .is_some_and(|d| d.abs() <= MAX_DISCREPANCY_PCT)
    }

    /// `breakdown adds up: sum=<S> window=<W> (<diff>%)`, flagged when it does not.
    pub fn adds_up_line(&self) -> String {
        let line = format!(
            "breakdown adds up: sum={} window={} ({}%)",
            self.sum(),
            self.tsc,
            show(self.discrepancy(), 3)
        );
        if self.adds_up() {
            line
        } else {
            format!("{line} FLAGGED: off by more than {MAX_DISCREPANCY_PCT}%")
        }
    }

    /// The counts (`n.` keys) per MiB of `bytes`, by domain (`d<N>`, or `all` for a count of
    /// no domain): (domain, [(what, per MiB)]).
    pub fn per_mib(&self, bytes: u64) -> Vec<(String, Vec<(String, f64)>)> {
        let mut by: BTreeMap<Option<u32>, Vec<(String, f64)>> = BTreeMap::new();
        for (k, &v) in &self.values {
            if let (Key::Count(d, what), Some(rate)) = (classify(k), per_mib(v, bytes)) {
                by.entry(d).or_default().push((what.to_string(), rate));
            }
        }
        let name = |d: Option<u32>| d.map_or("all".into(), |d| format!("d{d}"));
        by.into_iter().map(|(d, r)| (name(d), r)).collect()
    }

    /// The tick keys summed into the picture's groups, by stacking position.
    fn keyed_groups(&self) -> BTreeMap<(u32, u32), (String, u64)> {
        let mut groups: BTreeMap<(u32, u32), (String, u64)> = BTreeMap::new();
        for (k, &v) in &self.values {
            if let Some((at, name)) = group(k) {
                groups.entry(at).or_insert((name, 0)).1 += v;
            }
        }
        groups
    }

    /// The tick keys summed into the picture's groups (each domain's busy and halted ticks,
    /// VM exits, hypercalls, netback tx and rx, switch, peer, sched, idle, other), bottom
    /// first; groups with no ticks left out.
    pub fn groups(&self) -> Rows {
        self.keyed_groups().into_values().collect()
    }

    /// The printed sections: (title, rows), each domain's guest, VM-exit and hypercall keys,
    /// the `hv.` keys, unknown tick keys, then the VM exits of all domains by reason (the same
    /// ticks again, summed over the domains).
    fn sections(&self) -> Vec<(String, Rows)> {
        let mut sections: BTreeMap<(u32, u32, u32), (String, Rows)> = BTreeMap::new();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (k, &v) in &self.values {
            let (at, title) = match classify(k) {
                Key::Busy(d) | Key::Halted(d) => ((0, d, 0), format!("d{d} guest")),
                Key::Exit(d, reason) => {
                    *reasons.entry(format!("exit.{reason}")).or_default() += v;
                    ((0, d, 1), format!("d{d} VM exits (hypervisor)"))
                }
                Key::Hcall(d, _) => ((0, d, 2), format!("d{d} hypercalls (hypervisor)")),
                Key::Hv(_) => ((1, 0, 0), "hypervisor backends and the rest".into()),
                Key::Unknown => ((2, 0, 0), "other tick keys".into()),
                Key::Count(..) => continue,
            };
            let section = sections.entry(at).or_insert_with(|| (title, Vec::new()));
            section.1.push((k.clone(), v));
        }
        let mut out: Vec<_> = sections.into_values().collect();
        if !reasons.is_empty() {
            let title = "VM exits by reason, all domains (again)";
            out.push((title.into(), reasons.into_iter().collect()));
        }
        out
    }

    /// One printed row: name, ticks, % of the window, ticks per byte of `bytes`.
    fn row(&self, name: &str, ticks: u64, bytes: u64) -> String {
        let pct = ticks as f64 * 100.0 / self.tsc.max(1) as f64;
        let per = show(per_byte(ticks, bytes), 2);
        format!("{name:<44} {ticks:>13} {pct:>7.2} % {per:>9}\n")
    }

    /// The window for a person, each line after `indent`: the ticks of each section and key
    /// (keys under [`FOLD_BELOW_PCT`] folded), the add-up check and the counts per MiB of
    /// `bytes` (what iperf3 received).
    pub fn render(&self, bytes: u64, indent: &str) -> String {
        let mut out = format!(
            "window {} TSC ticks, {bytes} bytes received ({} ticks/byte)\n",
            self.tsc,
            show(per_byte(self.tsc, bytes), 2)
        );
        out.push_str(&format!(
            "{:<44} {:>13} {:>9} {:>9}\n",
            "where the ticks went", "ticks", "window", "per byte"
        ));
        for (title, mut rows) in self.sections() {
            out.push_str(&self.row(&title, rows.iter().map(|r| r.1).sum(), bytes));
            rows.sort_by_key(|r| std::cmp::Reverse(r.1));
            for (name, ticks) in fold_small(rows, self.tsc) {
                out.push_str(&self.row(&format!("  {name}"), ticks, bytes));
            }
        }
        out.push_str(&self.adds_up_line());
        out.push('\n');
        for (d, rates) in self.per_mib(bytes) {
            let rates: Vec<String> = rates
                .iter()
                .map(|(w, r)| format!("{w} {}", num(*r)))
                .collect();
            out.push_str(&format!("per MiB received, {d}: {}\n", rates.join(", ")));
        }
        out.lines().map(|l| format!("{indent}{l}\n")).collect()
    }
}

/// Fill colours of the picture's groups, in legend order (repeating past the end).
const COLOURS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(255, 187, 120),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(152, 223, 138),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(199, 199, 199),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

/// Draws `bars` (label, window) as stacked bars of the windows' [`Ticks::groups`], in % of each
/// window, under `title`, into the SVG file `path` (its directory made if need be).
pub fn write_svg(path: &Path, title: &str, bars: &[(String, Ticks)]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let stacks: Vec<_> = bars.iter().map(|(_, t)| t.keyed_groups()).collect();
    let legend: BTreeMap<(u32, u32), String> = stacks
        .iter()
        .flat_map(|s| s.iter().map(|(at, (name, _))| (*at, name.clone())))
        .collect();
    let colour = |at: &(u32, u32)| COLOURS[legend.keys().position(|k| k == at).unwrap_or(0) % 14];
    let pct = |ticks: u64, window: u64| ticks as f64 * 100.0 / window.max(1) as f64;
    let top = bars
        .iter()
        .map(|(_, t)| pct(t.sum(), t.tsc))
        .fold(100.0, f64::max);
    // One segment per bar: an integer range's segments take in its end, and the right edge of
    // the last one is `Last`.
    let edge = |i: usize| match i < bars.len() {
        true => SegmentValue::Exact(i),
        false => SegmentValue::Last,
    };
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1100, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, key) = root.split_horizontally(860);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0..bars.len().max(1) - 1).into_segmented(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_max_light_lines(1)
            .y_desc("% of the window's TSC ticks")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |b| b.0.clone()),
                _ => String::new(),
            })
            .draw()?;
        for (i, ((_, window), stack)) in bars.iter().zip(&stacks).enumerate() {
            let mut y = 0.0;
            let mut boxes = Vec::new();
            for (at, (name, ticks)) in stack {
                let h = pct(*ticks, window.tsc);
                let mut r =
                    Rectangle::new([(edge(i), y), (edge(i + 1), y + h)], colour(at).filled());
                r.set_margin(0, 0, 18, 18);
                boxes.push((r, (y + h / 2.0, h, name)));
                y += h;
            }
            let labels: Vec<_> = boxes.iter().map(|(_, l)| *l).collect();
            chart.draw_series(boxes.into_iter().map(|(r, _)| r))?;
            let font = ("sans-serif", 12).into_font().into_text_style(&plot).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            chart.draw_series(labels.into_iter().filter(|l| l.1 >= 4.0).map(
                |(mid, h, name)| {
                    let text = format!("{name} {h:.0}%");
                    Text::new(text, (SegmentValue::CenterOf(i), mid), font.clone())
                },
            ))?;
        }
        key.draw(&Text::new(
            "groups (bottom first)",
            (8, 30),
            ("sans-serif", 14),
        ))?;
        for (j, (at, name)) in legend.iter().enumerate() {
            let y = 56 + 24 * j as i32;
            key.draw(&Rectangle::new([(8, y), (24, y + 14)], colour(at).filled()))?;
            key.draw(&Text::new(name.clone(), (32, y), ("sans-serif", 14)))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot from `tsc` and `key=value` words.
    fn ticks(tsc: u64, kv: &str) -> Ticks {
        parse_line(&format!("ticks x: tsc={tsc} {kv}")).unwrap().1
    }

    const LOG: &str = "\
        (d2) XENOLITH TICKS c2s-1-1-begin\r\n\
        [12.5] ticks c2s-1-1-begin: tsc=1000 d1.busy=100 d1.exit.io=50 hv.netback_tx=10 n.d1.exits=7\r\n\
        (d2) GUEST says ticks fake: tsc=5\r\n\
        ticks bad label: tsc=1\r\n\
        ticks nots: d1.busy=3\r\n\
        ticks c2s-1-1-end: tsc=3000 d1.busy=900 d1.halted=200 d1.exit.io=250 d2.exit.hlt=40 \
        d2.hcall.sched_op=60 hv.netback_tx=510 hv.xenstore=50 n.d1.exits=107 n.d1.kicks=16 \
        n.switch_frames=64\r\n";

    #[test]
    fn parses_ticks_lines() {
        let snaps = parse_log(LOG);
        // The guest's echo, its fake line, a label with a space and a line without tsc=: none.
        assert_eq!(
            snaps.keys().collect::<Vec<_>>(),
            ["c2s-1-1-begin", "c2s-1-1-end"]
        );
        let begin = &snaps["c2s-1-1-begin"];
        assert_eq!(begin.tsc, 1000);
        assert_eq!(begin.get("d1.exit.io"), 50);
        assert_eq!(begin.get("n.d1.exits"), 7);
        assert_eq!(begin.get("d1.halted"), 0);
        assert_eq!(begin.values.len(), 4);
        // A retried run's second snapshot wins.
        let again = format!("{LOG}ticks c2s-1-1-begin: tsc=2000\n");
        assert_eq!(parse_log(&again)["c2s-1-1-begin"].tsc, 2000);
    }

    #[test]
    fn windows_and_the_add_up_check() {
        let snaps = parse_log(LOG);
        let w = snaps["c2s-1-1-end"].since(&snaps["c2s-1-1-begin"]).unwrap();
        assert_eq!(w.tsc, 2000);
        assert_eq!(w.get("d1.busy"), 800);
        // Missing at the beginning: all of it; present then, unchanged: left out.
        assert_eq!(w.get("d1.halted"), 200);
        assert_eq!(w.get("n.d1.exits"), 100);
        assert!(!w.values.contains_key("hv.nothing"));
        // 800+200+200+40+60+500+50 ticks; the counts are not ticks.
        assert_eq!(w.sum(), 1850);
        assert_eq!(w.discrepancy(), Some(-7.5));
        assert!(!w.adds_up());
        assert_eq!(
            w.adds_up_line(),
            "breakdown adds up: sum=1850 window=2000 (-7.500%) FLAGGED: off by more than 1%"
        );
        let exact = ticks(1000, "d1.busy=995 hv.idle=5 n.d1.kicks=3");
        assert!(exact.adds_up());
        assert_eq!(
            exact.adds_up_line(),
            "breakdown adds up: sum=1000 window=1000 (0.000%)"
        );
        assert!(ticks(1000, "d1.busy=991").adds_up());
        assert!(!ticks(1000, "d1.busy=1011").adds_up());
        assert!(!Ticks::default().adds_up());
        // Going backwards: no window.
        assert_eq!(snaps["c2s-1-1-begin"].since(&snaps["c2s-1-1-end"]), None);
        assert_eq!(ticks(10, "d1.busy=1").since(&ticks(5, "d1.busy=2")), None);
    }

    #[test]
    fn per_mib_counts() {
        let w = ticks(
            100,
            "n.d1.exits=300 n.d1.kicks=30 n.d2.tx_packets=1500 n.switch_frames=6 d1.busy=100",
        );
        let rates = w.per_mib(3 << 20);
        assert_eq!(
            rates,
            [
                ("all".to_string(), vec![("switch_frames".to_string(), 2.0)]),
                (
                    "d1".to_string(),
                    vec![("exits".to_string(), 100.0), ("kicks".to_string(), 10.0)]
                ),
                ("d2".to_string(), vec![("tx_packets".to_string(), 500.0)]),
            ]
        );
        assert!(w.per_mib(0).is_empty());
    }

    #[test]
    fn groups_for_the_picture() {
        let w = ticks(
            10_000,
            "d2.busy=1000 d1.busy=2000 d1.halted=500 d1.exit.io=300 d2.exit.hlt=200 \
             d1.hcall.sched_op=100 hv.netback_rx=400 hv.netback_tx=600 hv.idle=50 hv.xenstore=7 \
             hv.console=3 d1.weird=1 n.d1.exits=99",
        );
        let g = w.groups();
        let names: Vec<&str> = g.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "d1 busy",
                "d1 halted",
                "d2 busy",
                "VM exits",
                "hypercalls",
                "netback tx",
                "netback rx",
                "idle",
                "other"
            ]
        );
        assert_eq!(g[3].1, 500);
        assert_eq!(g[8].1, 11);
        assert_eq!(g.iter().map(|(_, v)| v).sum::<u64>(), w.sum());
    }

    #[test]
    fn renders_a_window() {
        let w = ticks(
            100_000,
            "d1.busy=59800 d1.halted=20000 d1.exit.io=9000 d1.exit.msr_write=100 \
             d1.exit.cpuid=200 d2.exit.io=1000 hv.netback_tx=9000 hv.switch=300 hv.sched=600 \
             n.d1.exits=2048",
        );
        let text = w.render(1 << 20, "  ");
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("{start:?} in\n{text}"))
                .to_string()
        };
        assert!(text.starts_with("  window 100000 TSC ticks, 1048576 bytes received (0.10"));
        assert!(
            line("    d1.busy ").contains(" 59800   59.80 %      0.06"),
            "{text}"
        );
        assert!(line("  d1 VM exits").contains(" 9300    9.30 %"));
        // The two small exits are one row, still counted; hv.switch alone stays itself.
        assert!(line("    other (2 keys, each < 0.5 %)").contains(" 300    0.30 %"));
        assert!(line("    hv.switch").contains(" 300 "));
        assert!(line("    exit.io").contains(" 10000   10.00 %"));
        assert_eq!(
            line("  breakdown adds up"),
            "  breakdown adds up: sum=100000 window=100000 (0.000%)"
        );
        assert_eq!(
            line("  per MiB received, d1"),
            "  per MiB received, d1: exits 2048"
        );
        assert!(!text.contains("n.d1"), "{text}");
    }

    #[test]
    fn writes_the_svg() {
        let dir = std::env::temp_dir().join(format!("xenolith-svg-{}", std::process::id()));
        let path = dir.join("sub/iperf-breakdown.svg");
        let a = ticks(1000, "d1.busy=500 d1.halted=200 d2.exit.io=300");
        let b = ticks(2000, "d2.busy=1500 hv.netback_tx=500");
        let bars = [("bar one".into(), a), ("bar two".into(), b)];
        write_svg(&path, "test bars", &bars).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let texts = [
            "test bars",
            "bar one",
            "bar two",
            "d1 busy",
            "netback tx",
            "VM exits 30%",
        ];
        for text in texts {
            assert!(svg.contains(text), "{text}");
        }
        assert!(svg.contains("<rect"));
    }
}
