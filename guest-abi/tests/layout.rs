//! Checks every line of `data/xen-abi-offsets.txt` (sizes and offsets obtained by compiling
//! Xen's public headers for x86-64) against this crate's types.
//!
//! Each line of the file must map to an entry of [`TABLE`] and agree with it, and every entry
//! of [`TABLE`] must be used by some line, so the file is checked in full.

use core::mem::{offset_of, size_of};
use guest_abi::console::*;
use guest_abi::event_channel::*;
use guest_abi::grant_table::*;
use guest_abi::hvm::*;
use guest_abi::memory::*;
use guest_abi::netif::*;
use guest_abi::sched::*;
use guest_abi::start_info::*;
use guest_abi::vcpu::*;
use guest_abi::version::*;
use guest_abi::xen::*;
use guest_abi::xenstore::*;

const OFFSETS: &str = include_str!("data/xen-abi-offsets.txt");

/// One fact from our side: C name (as the file spells it), field ("" for the whole type or
/// macro value), offset, size (or value).
#[derive(Debug, Clone, Copy)]
struct Entry {
    c: &'static str,
    field: &'static str,
    off: usize,
    size: usize,
}

/// The size of a field's type, from a projection closure (never called).
const fn field_size<T, F>(_proj: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// `sizeof(<c>)` = `size_of::<T>()`.
macro_rules! sz {
    ($c:literal, $t:ty) => {
        Entry {
            c: $c,
            field: "",
            off: 0,
            size: size_of::<$t>(),
        }
    };
}

/// `<c>.<field> off= size=` from a Rust field (optionally with a different C name).
macro_rules! fld {
    ($c:literal, $t:ty, $f:ident) => {
        fld!($c, $t, $f as stringify!($f))
    };
    ($c:literal, $t:ty, $f:ident as $cf:expr) => {
        Entry {
            c: $c,
            field: $cf,
            off: offset_of!($t, $f),
            size: field_size(|s: &$t| &s.$f),
        }
    };
}

const TABLE: &[Entry] = &[
    sz!("struct shared_info", SharedInfo),
    fld!("struct shared_info", SharedInfo, vcpu_info),
    fld!("struct shared_info", SharedInfo, evtchn_pending),
    fld!("struct shared_info", SharedInfo, evtchn_mask),
    fld!("struct shared_info", SharedInfo, wc_version),
    fld!("struct shared_info", SharedInfo, wc_sec),
    fld!("struct shared_info", SharedInfo, wc_nsec),
    fld!("struct shared_info", SharedInfo, wc_sec_hi),
    fld!("struct shared_info", SharedInfo, arch),
    sz!("struct vcpu_info", VcpuInfo),
    fld!("struct vcpu_info", VcpuInfo, evtchn_upcall_pending),
    fld!("struct vcpu_info", VcpuInfo, evtchn_upcall_mask),
    fld!("struct vcpu_info", VcpuInfo, evtchn_pending_sel),
    fld!("struct vcpu_info", VcpuInfo, arch),
    fld!("struct vcpu_info", VcpuInfo, time),
    sz!("struct vcpu_time_info", VcpuTimeInfo),
    fld!("struct vcpu_time_info", VcpuTimeInfo, version),
    fld!("struct vcpu_time_info", VcpuTimeInfo, tsc_timestamp),
    fld!("struct vcpu_time_info", VcpuTimeInfo, system_time),
    fld!("struct vcpu_time_info", VcpuTimeInfo, tsc_to_system_mul),
    fld!("struct vcpu_time_info", VcpuTimeInfo, tsc_shift),
    fld!("struct vcpu_time_info", VcpuTimeInfo, flags),
    sz!("struct vcpu_runstate_info", VcpuRunstateInfo),
    sz!("struct xen_add_to_physmap", XenAddToPhysmap),
    fld!("struct xen_add_to_physmap", XenAddToPhysmap, domid),
    fld!("struct xen_add_to_physmap", XenAddToPhysmap, size),
    fld!("struct xen_add_to_physmap", XenAddToPhysmap, space),
    fld!("struct xen_add_to_physmap", XenAddToPhysmap, idx),
    fld!("struct xen_add_to_physmap", XenAddToPhysmap, gpfn),
    sz!("struct xen_memory_map", XenMemoryMap),
    fld!("struct xen_memory_map", XenMemoryMap, nr_entries),
    fld!("struct xen_memory_map", XenMemoryMap, buffer),
    sz!("struct xen_memory_reservation", XenMemoryReservation),
    sz!("struct vcpu_register_vcpu_info", VcpuRegisterVcpuInfo),
    fld!("struct vcpu_register_vcpu_info", VcpuRegisterVcpuInfo, mfn),
    fld!(
        "struct vcpu_register_vcpu_info",
        VcpuRegisterVcpuInfo,
        offset
    ),
    sz!("struct vcpu_set_singleshot_timer", VcpuSetSingleshotTimer),
    fld!(
        "struct vcpu_set_singleshot_timer",
        VcpuSetSingleshotTimer,
        timeout_abs_ns
    ),
    fld!(
        "struct vcpu_set_singleshot_timer",
        VcpuSetSingleshotTimer,
        flags
    ),
    sz!(
        "struct vcpu_register_runstate_memory_area",
        VcpuRegisterRunstateMemoryArea
    ),
    sz!(
        "struct vcpu_register_time_memory_area",
        VcpuRegisterTimeMemoryArea
    ),
    sz!("struct evtchn_alloc_unbound", EvtchnAllocUnbound),
    fld!("struct evtchn_alloc_unbound", EvtchnAllocUnbound, dom),
    fld!(
        "struct evtchn_alloc_unbound",
        EvtchnAllocUnbound,
        remote_dom
    ),
    fld!("struct evtchn_alloc_unbound", EvtchnAllocUnbound, port),
    sz!("struct evtchn_bind_interdomain", EvtchnBindInterdomain),
    fld!(
        "struct evtchn_bind_interdomain",
        EvtchnBindInterdomain,
        remote_dom
    ),
    fld!(
        "struct evtchn_bind_interdomain",
        EvtchnBindInterdomain,
        remote_port
    ),
    fld!(
        "struct evtchn_bind_interdomain",
        EvtchnBindInterdomain,
        local_port
    ),
    sz!("struct evtchn_bind_virq", EvtchnBindVirq),
    sz!("struct evtchn_bind_ipi", EvtchnBindIpi),
    sz!("struct evtchn_close", EvtchnClose),
    sz!("struct evtchn_send", EvtchnSend),
    sz!("struct evtchn_unmask", EvtchnUnmask),
    sz!("struct evtchn_bind_vcpu", EvtchnBindVcpu),
    sz!("struct evtchn_status", EvtchnStatus),
    fld!("struct evtchn_status", EvtchnStatus, dom),
    fld!("struct evtchn_status", EvtchnStatus, port),
    fld!("struct evtchn_status", EvtchnStatus, status),
    fld!("struct evtchn_status", EvtchnStatus, vcpu),
    fld!("struct evtchn_status", EvtchnStatus, u),
    sz!("struct evtchn_init_control", EvtchnInitControl),
    sz!("struct gnttab_set_version", GnttabSetVersion),
    sz!("struct gnttab_get_version", GnttabGetVersion),
    sz!("struct gnttab_query_size", GnttabQuerySize),
    fld!("struct gnttab_query_size", GnttabQuerySize, dom),
    fld!("struct gnttab_query_size", GnttabQuerySize, nr_frames),
    fld!("struct gnttab_query_size", GnttabQuerySize, max_nr_frames),
    fld!("struct gnttab_query_size", GnttabQuerySize, status),
    sz!("struct gnttab_setup_table", GnttabSetupTable),
    sz!("grant_entry_v1_t", GrantEntryV1),
    fld!("grant_entry_v1_t", GrantEntryV1, flags),
    fld!("grant_entry_v1_t", GrantEntryV1, domid),
    fld!("grant_entry_v1_t", GrantEntryV1, frame),
    sz!("struct sched_shutdown", SchedShutdown),
    sz!("struct sched_poll", SchedPoll),
    sz!("struct sched_pin_override", SchedPinOverride),
    sz!("struct xen_feature_info", XenFeatureInfo),
    sz!("xen_extraversion_t", XenExtraversion),
    sz!("struct xen_hvm_param", XenHvmParam),
    fld!("struct xen_hvm_param", XenHvmParam, domid),
    fld!("struct xen_hvm_param", XenHvmParam, index),
    fld!("struct xen_hvm_param", XenHvmParam, value),
    sz!(
        "struct xen_hvm_evtchn_upcall_vector",
        XenHvmEvtchnUpcallVector
    ),
    fld!(
        "struct xen_hvm_evtchn_upcall_vector",
        XenHvmEvtchnUpcallVector,
        vcpu
    ),
    fld!(
        "struct xen_hvm_evtchn_upcall_vector",
        XenHvmEvtchnUpcallVector,
        vector
    ),
    sz!("struct xen_hvm_pagetable_dying", XenHvmPagetableDying),
    sz!("struct xenstore_domain_interface", XenstoreDomainInterface),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        req
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        rsp
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        req_cons
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        req_prod
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        rsp_cons
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        rsp_prod
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        server_features
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        connection
    ),
    fld!(
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        error
    ),
    sz!("struct xsd_sockmsg", XsdSockmsg),
    sz!("struct xencons_interface", XenconsInterface),
    fld!("struct xencons_interface", XenconsInterface, r#in as "in"),
    fld!("struct xencons_interface", XenconsInterface, out),
    fld!("struct xencons_interface", XenconsInterface, in_cons),
    fld!("struct xencons_interface", XenconsInterface, in_prod),
    fld!("struct xencons_interface", XenconsInterface, out_cons),
    fld!("struct xencons_interface", XenconsInterface, out_prod),
    sz!("struct netif_tx_request", NetifTxRequest),
    sz!("struct netif_tx_response", NetifTxResponse),
    sz!("struct netif_rx_request", NetifRxRequest),
    sz!("struct netif_rx_response", NetifRxResponse),
    sz!("struct netif_extra_info", NetifExtraInfo),
    sz!("union netif_tx_sring_entry", NetifTxSringEntry),
    sz!("union netif_rx_sring_entry", NetifRxSringEntry),
    Entry {
        c: "NET_TX_RING_SIZE(4096)",
        field: "",
        off: 0,
        size: NET_TX_RING_SIZE,
    },
    Entry {
        c: "NET_RX_RING_SIZE(4096)",
        field: "",
        off: 0,
        size: NET_RX_RING_SIZE,
    },
    fld!("struct netif_tx_sring", NetifTxSring, req_prod),
    fld!("struct netif_tx_sring", NetifTxSring, req_event),
    fld!("struct netif_tx_sring", NetifTxSring, rsp_prod),
    fld!("struct netif_tx_sring", NetifTxSring, rsp_event),
    // The C header declares `ring[1]` (a flexible array); the file reports one element.
    Entry {
        c: "struct netif_tx_sring",
        field: "ring",
        off: offset_of!(NetifTxSring, ring),
        size: size_of::<NetifTxSringEntry>(),
    },
    sz!("struct hvm_start_info", HvmStartInfo),
    sz!("struct hvm_modlist_entry", HvmModlistEntry),
    sz!("struct hvm_memmap_table_entry", HvmMemmapTableEntry),
];

/// A fact read from the file.
#[derive(Debug, PartialEq)]
struct Fact {
    line: usize,
    c: String,
    field: String,
    off: usize,
    size: usize,
}

fn num(s: &str) -> Option<usize> {
    s.trim().parse().ok()
}

/// Parses one line into facts; `None` if the line has an unknown shape.
fn parse_line(line_no: usize, line: &str) -> Option<Vec<Fact>> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("sizeof(") {
        // sizeof(<c name>)=<n>
        let (name, val) = rest.split_once(")=")?;
        return Some(vec![Fact {
            line: line_no,
            c: name.to_string(),
            field: String::new(),
            off: 0,
            size: num(val)?,
        }]);
    }
    if line.contains(" off=") {
        // <c name>.<field> off=<o> size=<s>
        let (lhs, rhs) = line.split_once(" off=")?;
        let (c, field) = lhs.trim().rsplit_once('.')?;
        let (off, size) = rhs.split_once(" size=")?;
        return Some(vec![Fact {
            line: line_no,
            c: c.to_string(),
            field: field.to_string(),
            off: num(off)?,
            size: num(size)?,
        }]);
    }
    // One or more `MACRO(arg)=value` words.
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        let (name, val) = word.split_once(")=")?;
        out.push(Fact {
            line: line_no,
            c: format!("{name})"),
            field: String::new(),
            off: 0,
            size: num(val)?,
        });
    }
    (!out.is_empty()).then_some(out)
}

fn parse_file(text: &str) -> Result<Vec<Fact>, String> {
    let mut facts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(i + 1, line) {
            Some(f) => facts.extend(f),
            None => return Err(format!("line {}: cannot parse {line:?}", i + 1)),
        }
    }
    Ok(facts)
}

/// Compares the facts with the table; returns every problem found.
fn check(facts: &[Fact], table: &[Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; table.len()];
    for f in facts {
        let hit = table.iter().position(|e| e.c == f.c && e.field == f.field);
        let Some(i) = hit else {
            problems.push(format!(
                "line {}: {} .{} is not in the mapping table",
                f.line, f.c, f.field
            ));
            continue;
        };
        used[i] = true;
        let e = &table[i];
        if e.off != f.off || e.size != f.size {
            problems.push(format!(
                "line {}: {} .{}: Xen says off={} size={}, Rust has off={} size={}",
                f.line, f.c, f.field, f.off, f.size, e.off, e.size
            ));
        }
    }
    for (e, used) in table.iter().zip(used) {
        if !used {
            problems.push(format!(
                "table entry {} .{} matches no line of the file",
                e.c, e.field
            ));
        }
    }
    problems
}

#[test]
fn every_line_of_the_offsets_file_matches() {
    let facts = parse_file(OFFSETS).expect("offsets file parses");
    let lines = OFFSETS.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(facts.len() >= lines, "every non-empty line yields a fact");
    let problems = check(&facts, TABLE);
    assert!(
        problems.is_empty(),
        "layout mismatches:\n{}",
        problems.join("\n")
    );
}

#[test]
fn checker_catches_mismatch_and_missing() {
    let text = "sizeof(struct shared_info)=3137\nstruct vcpu_info.nope off=0 size=1\n";
    let facts = parse_file(text).unwrap();
    let problems = check(&facts, TABLE);
    assert!(problems
        .iter()
        .any(|p| p.contains("shared_info") && p.contains("3137")));
    assert!(problems
        .iter()
        .any(|p| p.contains("nope") && p.contains("not in the mapping table")));
    assert!(parse_file("garbage line\n").is_err());
}

#[test]
fn table_has_no_duplicates() {
    for (i, a) in TABLE.iter().enumerate() {
        for b in &TABLE[i + 1..] {
            assert!(
                !(a.c == b.c && a.field == b.field),
                "duplicate {} .{}",
                a.c,
                a.field
            );
        }
    }
}
