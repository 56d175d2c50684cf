//! Property tests: random p2m contents, special pages and MTRR layouts; after every change the
//! EPT must satisfy the invariants of the spec emt-resolver.md.

mod common;

use common::*;
use p2m::testmem::TestMem;
use p2m::{audit, translate, Mapping, MemType, MtrrState, P2m, P2mConfig, Resolution};
use proptest::prelude::*;
use std::collections::BTreeSet;

const GIB: u64 = 1 << 18;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ram,
    Special,
    Mmio,
    Grant,
}

#[derive(Clone, Debug)]
enum Op {
    /// set_entry(gfn, mfn, order, mapping or None).
    Set {
        gfn: u64,
        mfn: u64,
        order: u32,
        kind: Option<Kind>,
    },
    /// Guest MTRR writes, applied (and checked) one by one.
    Mtrr(Vec<(u32, u64)>),
}

fn mem_type() -> impl Strategy<Value = MemType> {
    prop_oneof![
        Just(MemType::Uc),
        Just(MemType::Wc),
        Just(MemType::Wt),
        Just(MemType::Wp),
        Just(MemType::Wb)
    ]
}

/// A gfn in the first 4 GiB (or just above) with a bias towards superpage boundaries.
fn gfn() -> impl Strategy<Value = u64> {
    let idx = || prop_oneof![Just(0u64), Just(1), Just(255), Just(511), 0..512u64];
    (0..5u64, idx(), idx()).prop_map(|(g, m, k)| g * GIB + m * 512 + k)
}

fn set_op() -> impl Strategy<Value = Op> {
    let order = prop_oneof![3 => Just(0u32), 2 => Just(9), 1 => Just(18)];
    let kind = prop_oneof![
        4 => Just(Some(Kind::Ram)),
        3 => Just(Some(Kind::Special)),
        1 => Just(Some(Kind::Mmio)),
        1 => Just(Some(Kind::Grant)),
        2 => Just(None),
    ];
    // mfn: identity + 8 GiB (consecutive across calls, so runs merge), or elsewhere.
    let mfn_mode = prop_oneof![3 => Just(None), 1 => (0..(1u64 << 24)).prop_map(Some)];
    (gfn(), order, kind, mfn_mode).prop_map(|(g, order, kind, m)| {
        let mask = !((1u64 << order) - 1);
        let gfn = g & mask;
        let mfn = m.map_or(gfn + 32 * GIB, |m| m & mask);
        Op::Set {
            gfn,
            mfn,
            order,
            kind,
        }
    })
}

/// Variable range `n`: `1 << k` frames at an aligned base below 5 GiB, or disabled.
fn var_writes() -> impl Strategy<Value = Vec<(u32, u64)>> {
    (
        0..8u32,
        0..=19u32,
        0..(5 * GIB),
        mem_type(),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(n, k, base, ty, valid)| {
            let base = base & !((1u64 << k) - 1);
            let (b, m) = var_msrs(base, 1 << k, ty);
            vec![
                (0x200 + 2 * n, b),
                (0x201 + 2 * n, if valid { m } else { 0 }),
            ]
        })
}

fn mtrr_op() -> impl Strategy<Value = Op> {
    const FIXED: [u32; 11] = [
        0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F,
    ];
    let def = (prop::bool::weighted(0.9), any::<bool>(), mem_type()).prop_map(|(e, fe, t)| {
        vec![(
            0x2FF,
            (u64::from(e) << 11) | (u64::from(fe) << 10) | t as u64,
        )]
    });
    let fixed = (0..11usize, prop::collection::vec(mem_type(), 8)).prop_map(|(i, ts)| {
        let v = ts
            .iter()
            .enumerate()
            .fold(0u64, |v, (b, &t)| v | (t as u64) << (8 * b));
        vec![(FIXED[i], v)]
    });
    prop_oneof![1 => def, 1 => fixed, 4 => var_writes()].prop_map(Op::Mtrr)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => set_op(), 1 => mtrr_op()]
}

fn host_mtrr() -> impl Strategy<Value = MtrrState> {
    prop::collection::vec((0..=20u32, 0..(64 * GIB), mem_type()), 0..3).prop_map(|ranges| {
        let mut s = MtrrState::new_default_wb();
        for (n, (k, base, ty)) in ranges.into_iter().enumerate() {
            let (b, m) = var_msrs(base & !((1u64 << k) - 1), 1 << k, ty);
            s.write_msr(0x200 + 2 * n as u32, b).unwrap();
            s.write_msr(0x201 + 2 * n as u32, m).unwrap();
        }
        s
    })
}

fn config() -> impl Strategy<Value = P2mConfig> {
    (
        any::<bool>(),
        host_mtrr(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(honour, host_mtrr, ept_2m, ept_1g)| P2mConfig {
            honour_guest_mem_types: honour,
            host_mtrr,
            ept_2m,
            ept_1g,
            ..P2mConfig::default()
        })
}

fn mapping(k: Kind) -> Mapping {
    match k {
        Kind::Ram => Mapping::ram(1),
        Kind::Special => Mapping::special(),
        Kind::Mmio => Mapping::mmio(1),
        Kind::Grant => Mapping::grant(2),
    }
}

/// What the p2m must say for `g`: the last set_entry covering it.
fn expected(history: &[(u64, u64, u32, Option<Kind>)], g: u64) -> Option<(u64, Mapping)> {
    for &(gfn, mfn, order, kind) in history.iter().rev() {
        if g >= gfn && g < gfn + (1 << order) {
            return kind.map(|k| (mfn + (g - gfn), mapping(k)));
        }
    }
    None
}

/// Frames where a resolver answer may change: range boundaries of specials, extents and
/// guest MTRRs, and the first MiB.
fn interesting(p2m: &P2m) -> BTreeSet<u64> {
    let mut s: BTreeSet<u64> = (0..0x101).collect();
    let mut edge = |x: u64| {
        s.insert(x);
        s.insert(x.saturating_sub(1));
    };
    for r in p2m.special_ranges() {
        edge(r.start);
        edge(r.end);
    }
    for (r, _, _) in p2m.extents() {
        edge(r.start);
        edge(r.end);
        edge(r.start + (r.end - r.start) / 2);
    }
    let m = p2m.guest_mtrr();
    for n in 0..8 {
        let (b, mask) = m.variable_range(n).unwrap();
        if mask & 0x800 != 0 {
            let base = (b & 0x000F_FFFF_FFFF_F000) >> 12;
            let size = ((!mask & 0x000F_FFFF_FFFF_F000) >> 12) + 1;
            edge(base);
            edge(base + size.min(1 << 30));
        }
    }
    s
}

fn check(mem: &TestMem, p2m: &P2m, history: &[(u64, u64, u32, Option<Kind>)]) {
    // Audit of the real tables.
    let r = audit(mem, p2m);
    let specials: u64 = p2m.special_ranges().map(|r| r.end - r.start).sum();
    assert_eq!(r.violations, 0, "audit {r:?}");
    assert_eq!(r.special_wb_ipat, specials, "audit {r:?}");
    let sh = shape(mem, p2m);
    assert_eq!(sh.empty_tables, 0);
    assert_eq!(sh.tables, mem.live());
    assert_eq!(sh.leaves.len() as u64, r.leaves);

    let points = interesting(p2m);
    // Every leaf: valid type, specials WB+ipat, every frame the resolver's answer.
    for (li, l) in sh.leaves.iter().enumerate() {
        let mt = l.mem_type().expect("reserved memory type in a leaf");
        let leaf = Resolution::Type {
            mem_type: mt,
            ipat: l.ipat(),
        };
        let n = 1u64 << l.order;
        let mut frames: Vec<u64> = vec![l.gfn];
        if l.order == 0 {
            // The frame itself is all there is.
        } else if l.order == 9 && sh.leaves.len() < 64 {
            frames.extend(l.gfn..l.gfn + n);
        } else {
            let mut x = l.gfn ^ (li as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for _ in 0..8 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                frames.push(l.gfn + (x >> 20) % n);
            }
            frames.push(l.gfn + n - 1);
            frames.extend(points.range(l.gfn..l.gfn + n));
        }
        for g in frames {
            assert_eq!(p2m.resolution(g, 0), Some(leaf), "leaf {l:?} frame {g:#x}");
            let e = p2m.lookup(g).unwrap();
            if e.mapping.special {
                assert_eq!((mt, l.ipat()), (MemType::Wb, true), "special {g:#x}");
            }
        }
    }
    // The EPT translates every sampled gfn as the p2m (and the reference model) says.
    let mut samples = points;
    for (r, _, _) in p2m.extents() {
        if r.end - r.start <= 512 {
            samples.extend(r.clone());
        }
    }
    for &(gfn, _, order, _) in history {
        samples.extend([gfn, gfn + (1 << order) - 1, gfn + (1 << order)]);
    }
    for g in samples {
        let want = expected(history, g);
        let got = p2m.lookup(g).map(|e| (e.mfn, e.mapping));
        assert_eq!(got, want, "p2m lookup of {g:#x}");
        let t = translate(mem, p2m.eptp(), (g << 12) | 0x123);
        match (want, t) {
            (None, None) => {}
            (Some((mfn, m)), Some((hpa, mt, ipat, _))) => {
                assert_eq!(hpa, (mfn << 12) | 0x123, "translate {g:#x}");
                if m.special {
                    assert_eq!((mt, ipat), (MemType::Wb, true), "special {g:#x}");
                }
            }
            _ => panic!("gfn {g:#x}: p2m {want:?}, EPT {t:?}"),
        }
    }
}

fn run(cfg: P2mConfig, init: Vec<Vec<(u32, u64)>>, ops: Vec<Op>) {
    let mut mem = TestMem::new();
    let mut p2m = P2m::new(cfg, &mut mem).unwrap();
    let mut history = Vec::new();
    // Without 2 MiB leaves a GiB is 262144 leaves: too slow to check after every step.
    let max_order = if p2m.config().ept_2m { 18 } else { 9 };
    for w in init.into_iter().flatten() {
        p2m.guest_mtrr_write(&mut mem, w.0, w.1).unwrap();
    }
    for op in ops {
        match op {
            Op::Set {
                gfn,
                mfn,
                order,
                kind,
            } => {
                let order = order.min(max_order);
                p2m.set_entry(&mut mem, gfn, mfn, order, kind.map(mapping))
                    .unwrap();
                history.push((gfn, mfn, order, kind));
                check(&mem, &p2m, &history);
            }
            Op::Mtrr(writes) => {
                for (msr, v) in writes {
                    p2m.guest_mtrr_write(&mut mem, msr, v).unwrap();
                    assert_eq!(p2m.guest_mtrr_read(msr), Some(v));
                    check(&mem, &p2m, &history);
                }
            }
        }
    }
    p2m.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

/// 96 cases per property, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn ept_invariants_hold(
        cfg in config(),
        init in prop::collection::vec(var_writes(), 0..4),
        ops in prop::collection::vec(op(), 1..14),
    ) {
        run(cfg, init, ops);
    }

    #[test]
    fn ept_invariants_hold_honouring(
        host_mtrr in host_mtrr(),
        init in prop::collection::vec(var_writes(), 0..4),
        ops in prop::collection::vec(op(), 1..14),
    ) {
        let cfg = P2mConfig { honour_guest_mem_types: true, host_mtrr, ..P2mConfig::default() };
        run(cfg, init, ops);
    }

    /// Out of table memory at a random point: the call fails, the p2m and EPT stay consistent.
    #[test]
    fn out_of_memory_keeps_invariants(
        ops in prop::collection::vec(set_op(), 1..10),
        limit in 2usize..12,
    ) {
        let mut mem = TestMem::new();
        let mut p2m = P2m::new(honouring(), &mut mem).unwrap();
        let mut history = Vec::new();
        mem.limit = Some(limit);
        for op in ops {
            let Op::Set { gfn, mfn, order, kind } = op else { unreachable!() };
            match p2m.set_entry(&mut mem, gfn, mfn, order, kind.map(mapping)) {
                Ok(()) => history.push((gfn, mfn, order, kind)),
                Err(e) => prop_assert_eq!(e, p2m::P2mError::OutOfTableMemory),
            }
            check(&mem, &p2m, &history);
        }
    }

    /// The resolver's answer for a range is the answer of each of its frames when it is not
    /// Split (a superpage leaf never hides a frame that resolves differently).
    #[test]
    fn resolver_is_hereditary(
        honour in any::<bool>(),
        host in host_mtrr(),
        guest in prop::collection::vec(var_writes(), 0..5),
        gfn in 0..(4 * GIB),
        mfn in 0..(64 * GIB),
        order in prop_oneof![Just(9u32), Just(18)],
        special_at in prop::option::of(0..512u64),
    ) {
        let mut g = MtrrState::new_default_wb();
        for (msr, v) in guest.into_iter().flatten() {
            g.write_msr(msr, v).unwrap();
        }
        let mask = !((1u64 << order) - 1);
        let (gfn, mfn) = (gfn & mask, mfn & mask);
        let mut specials = p2m::RangeSet::new();
        if let Some(i) = special_at {
            specials.insert(gfn + i..gfn + i + 1);
        }
        let (ro, pinned) = (p2m::RangeSet::new(), p2m::PinnedCacheAttrs::new());
        let env = p2m::ResolveEnv {
            honour_guest_mem_types: honour,
            guest_mtrr: &g,
            host_mtrr: &host,
            ro_mmio: &ro,
            pinned: &pinned,
        };
        let q = |gfn: u64, mfn: u64, order: u32| p2m::ResolveQuery {
            gfn,
            mfn,
            order,
            p2m_type: p2m::P2mType::RamRw,
            special: specials.coverage(gfn..gfn + (1 << order)),
        };
        let whole = p2m::resolve(&q(gfn, mfn, order), &env);
        if whole != Resolution::Split {
            for i in (0..1u64 << order).step_by(97).chain([(1 << order) - 1]) {
                prop_assert_eq!(p2m::resolve(&q(gfn + i, mfn + i, 0), &env), whole);
            }
        }
    }
}
