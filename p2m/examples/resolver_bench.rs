//! Cost of the EMT resolver per range size, and of the set_entry split path.
//!
//! Run with `cargo run --release -p p2m --example resolver_bench`.

use p2m::testmem::TestMem;
use p2m::{resolve, Mapping, P2m, P2mConfig, P2mType, ResolveQuery};
use std::hint::black_box;
use std::time::Instant;

const GIB: u64 = 1 << 18; // frames
const MIB2: u64 = 512;

/// Median over `rounds` of the time per call of `f`, timed in batches of `batch`.
fn median_ns(rounds: usize, batch: u32, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A 5 GiB honouring guest: RAM in 1 GiB pages (0..3 GiB, 4..5 GiB), 2 MiB pages at 3..3.75 GiB, a UC MMIO
/// hole at 0xF0000000 and a WC framebuffer per guest MTRRs, shared info and 32 grant frames in
/// the platform-PCI BAR, and 1000 special pages (vcpu_info and the like) at every other frame from 256 MiB.
fn realistic(mem: &mut TestMem) -> P2m {
    // Host: default UC, WB 0..64 GiB, UC hole 3..4 GiB (mfns).
    let host = |msr: u32| match msr {
        0xFE => 0x50A,
        0x2FF => 0xC00,
        0x250..=0x26F => 0x0606_0606_0606_0606,
        0x200 => 0x6,
        0x201 => 0xF_FFF0_0000_0800,
        0x202 => 0xC000_0000,
        0x203 => 0xF_FFFF_C000_0800,
        _ => 0,
    };
    let cfg = P2mConfig {
        honour_guest_mem_types: true,
        host_mtrr: p2m::MtrrState::from_msrs(host),
        ..P2mConfig::default()
    };
    let mut p2m = P2m::new(cfg, mem).unwrap();
    let ram = Mapping::ram(1);
    for g in 0..3 {
        p2m.set_entry(mem, g * GIB, (g + 8) * GIB, 18, Some(ram))
            .unwrap();
    }
    p2m.set_entry(mem, 4 * GIB, 12 * GIB, 18, Some(ram))
        .unwrap();
    for m in 0..384 {
        let g = 3 * GIB + m * MIB2;
        p2m.set_entry(mem, g, g + 8 * GIB, 9, Some(ram)).unwrap();
    }
    let writes = [
        (0x200, 0xF000_0000),        // UC 0xF0000000 ..
        (0x201, 0xF_FFFF_F000_0800), // .. 256 MiB
        (0x202, 0xE000_0000 | 1),    // WC 0xE0000000 ..
        (0x203, 0xF_FFFF_F800_0800), // .. 128 MiB
    ];
    for (msr, v) in writes {
        p2m.guest_mtrr_write(mem, msr, v).unwrap();
    }
    for i in 0..33 {
        p2m.set_entry(mem, 0xF0000 + i, 0x1000 + i, 0, Some(Mapping::special()))
            .unwrap();
    }
    for i in 0..1000u64 {
        let g = 0x10000 + i * 2;
        p2m.set_entry(mem, g, 0x20_0000 + i, 0, Some(Mapping::special()))
            .unwrap();
    }
    p2m
}

fn main() {
    let mut mem = TestMem::new();
    let mut p2m = realistic(&mut mem);
    let specials: u64 = p2m.special_ranges().map(|r| r.end - r.start).sum();
    println!(
        "p2m: {} extents, {} special frames, guest MTRRs: UC 256 MiB + WC 128 MiB variable ranges",
        p2m.extents().count(),
        specials
    );

    // Resolver: a RAM range in a GiB that holds no special page, so every row is evaluated
    // (rows 1..12: ro-MMIO, honour, special coverage, type, pinned, both MTRRs, combination).
    let env = p2m.resolve_env();
    let base = 0xE0000 + MIB2; // inside the WC range: guest WC, host WB -> WC
    let mut costs = Vec::new();
    for (order, label) in [(0u32, "4 KiB"), (9, "2 MiB"), (18, "1 GiB")] {
        let gfn = if order == 18 { GIB * 4 } else { base };
        assert!(p2m.resolution(gfn, order).is_some());
        let q = ResolveQuery {
            gfn,
            mfn: gfn + 8 * GIB,
            order,
            p2m_type: P2mType::RamRw,
            special: p2m::Coverage::None,
        };
        // The special-page check as the p2m does it: one range-set lookup.
        let ns = median_ns(301, 2000, || {
            let sp = p2m.specials().coverage(q.gfn..q.gfn + (1 << order));
            let r = resolve(black_box(&ResolveQuery { special: sp, ..q }), &env);
            black_box(r);
        });
        println!("resolver order={order} ({label}): {ns:.0} ns/call");
        costs.push(ns);
        let full = median_ns(301, 2000, || {
            black_box(p2m.resolution(black_box(gfn), order));
        });
        println!("  p2m.resolution() incl. extent lookup, order={order}: {full:.0} ns/call");
    }
    // A 1 GiB range that does hold special pages (answer: Split).
    let ns = median_ns(301, 2000, || {
        let q = ResolveQuery {
            gfn: 0,
            mfn: 8 * GIB,
            order: 18,
            p2m_type: P2mType::RamRw,
            special: p2m.specials().coverage(0..GIB),
        };
        black_box(resolve(black_box(&q), &env));
    });
    println!("resolver order=18 (1 GiB) with special pages inside -> Split: {ns:.0} ns/call");

    // What a per-frame special-page loop (Xen's 2020 patch) costs here for 1 GiB.
    let naive = median_ns(11, 1, || {
        let mut n = 0u64;
        for g in 4 * GIB..5 * GIB {
            n += u64::from(p2m.lookup(black_box(g)).is_some_and(|e| e.mapping.special));
        }
        black_box(n);
    });
    println!(
        "per-frame special check over 1 GiB (this p2m, for comparison): {:.0} us",
        naive / 1e3
    );

    // set_entry split path: a 4 KiB special page into a 1 GiB RAM leaf (-> PDPTE -> PD of
    // 511 x 2 MiB leaves + 1 PT of 512 x 4 KiB), then the GiB mapped back as one leaf.
    let g = 2 * GIB;
    let (mut split, mut merge) = (Vec::new(), Vec::new());
    for i in 0..301u64 {
        let t = Instant::now();
        p2m.set_entry(
            &mut mem,
            g + 77 * MIB2 + i % 512,
            0x30_0000,
            0,
            Some(Mapping::special()),
        )
        .unwrap();
        split.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        p2m.set_entry(&mut mem, g, g + 8 * GIB, 18, Some(Mapping::ram(1)))
            .unwrap();
        merge.push(t.elapsed().as_nanos() as f64);
    }
    split.sort_by(f64::total_cmp);
    merge.sort_by(f64::total_cmp);
    println!(
        "set_entry 4 KiB special page into a 1 GiB leaf (split: 511 x 2M + 512 x 4K): {:.1} us",
        split[150] / 1e3
    );
    println!(
        "set_entry 1 GiB RAM over it (merge back, frees 2 tables): {:.1} us",
        merge[150] / 1e3
    );
    let audit = p2m::audit(&mem, &p2m);
    println!(
        "audit: {} special pages WB+ipat, {} leaves, {} violations",
        audit.special_wb_ipat, audit.leaves, audit.violations
    );
    println!(
        "1 GiB / 4 KiB resolver cost ratio: {:.2} (flat: independent of the order); \
         Xen's per-frame loop: ~1.5 ms per 1 GiB, here {:.0} ns",
        costs[2] / costs[0],
        costs[2]
    );
    p2m.destroy(&mut mem);
}
