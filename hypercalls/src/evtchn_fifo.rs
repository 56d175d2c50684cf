//! The FIFO event-channel ABI (Xen 4.17's `event_fifo.c`, `event_channel.h`):
//! per-vCPU control blocks, the event array, and delivery by linking events onto
//! the target vCPU's per-priority queues.
//!
//! A domain starts on the 2-level ABI. Its first `EVTCHNOP_init_control` switches
//! it to FIFO ([`Domain::evtchn_fifo`] becomes `Some`): ports already bound keep
//! their pending state (a 2-level pending bit is remembered and raised again once
//! the event-array page holding the port's word is added), every port gets the
//! default priority, and the limit on ports becomes `event_channels` up to
//! [`ev::EVTCHN_FIFO_NR_CHANNELS`] - 1. `EVTCHNOP_reset` goes back to 2-level.
//!
//! Ports may be bound before the page holding their event word exists (Linux binds
//! first and then calls `EVTCHNOP_expand_array`); an event for such a port is
//! remembered and raised when the page is added, as in Xen.
//!
//! # Guest memory
//!
//! The control blocks and event-array pages are guest RAM, resolved to host
//! frames once, when the guest registers them (as Xen's `map_guest_page` keeps
//! them mapped); a frame that is not the domain's ordinary writable RAM is
//! `-EINVAL`. Every access to them is a 4-byte, 4-byte-aligned read or write of
//! one host page through [`Host`].
//!
//! Each atomic operation Xen performs on a guest word is a compare-and-exchange
//! here (one helper, `cmpxchg`): the hypervisor runs all of a domain's vCPUs on one physical
//! CPU and none of them runs while a hypercall handler or backend call is in
//! progress, so a read followed by a write through [`Host`] is atomic with respect
//! to the guest. The code keeps Xen's retry structure anyway, with every retry loop
//! bounded.
//!
//! The guest owns the words and may write anything into them at any time. The
//! hypervisor never follows a LINK field: it keeps each queue's tail itself (Xen's
//! `q->tail`) and only ever writes the LINK of that tail or a queue's HEAD, so
//! garbage words or LINK loops cost it nothing.

use crate::domain::Domain;
use crate::evtchn::{usable, Port, EVTCHN_PENDING, NR_PORTS};
use crate::{Errno, Host};
use alloc::vec::Vec;
use guest_abi::event_channel as ev;
use p2m::P2mType;

/// Bytes of a page.
const PAGE: u64 = 4096;
/// Event words in one event-array page (`EVTCHN_FIFO_EVENT_WORDS_PER_PAGE`).
pub const EVENT_WORDS_PER_PAGE: u32 = (PAGE / 4) as u32;
/// The most event-array pages a domain may add (`EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES`).
pub const MAX_EVENT_ARRAY_PAGES: u32 = ev::EVTCHN_FIFO_NR_CHANNELS / EVENT_WORDS_PER_PAGE;
/// `sizeof(evtchn_fifo_control_block_t)`.
pub const CONTROL_BLOCK_SIZE: u32 = core::mem::size_of::<ev::EvtchnFifoControlBlock>() as u32;
/// Offset of `head[0]` in the control block.
const HEAD_OFFSET: u64 = core::mem::offset_of!(ev::EvtchnFifoControlBlock, head) as u64;
/// Offset of `ready` in the control block.
const READY_OFFSET: u64 = core::mem::offset_of!(ev::EvtchnFifoControlBlock, ready) as u64;
/// Queues per vCPU.
const QUEUES: usize = ev::EVTCHN_FIFO_MAX_QUEUES;
/// Attempts of the compare-and-exchange loops that emulate Xen's plain atomics.
const ATOMIC_TRIES: usize = 4;

/// The most heap a domain's [`FifoState`] may hold with `nr_vcpus` vCPUs and ports
/// `0..nr_ports` (for the domain's heap budget): its vCPUs' queues, the event-array
/// page list and a record per port.
pub const fn heap_bytes(nr_vcpus: u32, nr_ports: u32) -> u64 {
    nr_vcpus as u64 * core::mem::size_of::<FifoVcpu>() as u64
        + MAX_EVENT_ARRAY_PAGES as u64 * 8
        + nr_ports as u64 * core::mem::size_of::<FifoPort>() as u64
}

/// One vCPU's FIFO state (Xen's `struct evtchn_fifo_vcpu`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FifoVcpu {
    /// Host-physical address of its control block, once `init_control` registered it.
    control_block: Option<u64>,
    /// The last port linked onto each priority's queue (0: none), Xen's `q->tail`.
    tail: [u32; QUEUES],
}

/// What the FIFO ABI keeps per port besides [`Port`] (Xen's `evtchn->priority`,
/// `fifo_lastq` and `pending`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FifoPort {
    /// The queue the next linking uses.
    priority: u8,
    /// The priority of the queue the port was last linked onto.
    last_priority: u8,
    /// The vCPU whose queue the port was last linked onto.
    last_vcpu: u16,
    /// Raised while the page holding the port's word was missing: raised again
    /// when it is added.
    pending: bool,
}

impl Default for FifoPort {
    fn default() -> Self {
        FifoPort {
            priority: ev::EVTCHN_FIFO_PRIORITY_DEFAULT as u8,
            last_priority: 0,
            last_vcpu: 0,
            pending: false,
        }
    }
}

/// A domain's FIFO event-channel state (Xen's `struct evtchn_fifo_domain` with its
/// vCPUs' control blocks and queues); present once the guest switched to FIFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FifoState {
    /// Per vCPU, indexed by vCPU id.
    vcpus: Vec<FifoVcpu>,
    /// Host-physical address of each event-array page, in the order added.
    array: Vec<u64>,
    /// Per port (index = port); grows with the ports used, never beyond the domain's
    /// highest valid port.
    ports: Vec<FifoPort>,
}

impl FifoState {
    /// The state right after the first `init_control`: no control blocks, no
    /// event-array pages, every port at the default priority.
    fn new(nr_vcpus: usize) -> Self {
        FifoState {
            vcpus: alloc::vec![FifoVcpu::default(); nr_vcpus],
            array: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Event-array pages the guest added so far.
    pub fn event_array_pages(&self) -> u32 {
        self.array.len() as u32
    }

    /// Ports that have an event word (Xen's `num_evtchns`).
    pub fn nr_event_words(&self) -> u32 {
        self.event_array_pages() * EVENT_WORDS_PER_PAGE
    }

    /// Host-physical address of `port`'s event word, if its page was added.
    pub fn word_hpa(&self, port: u32) -> Option<u64> {
        let page = self.array.get((port / EVENT_WORDS_PER_PAGE) as usize)?;
        Some(page + (port % EVENT_WORDS_PER_PAGE) as u64 * 4)
    }

    /// Host-physical address of vCPU `vcpu`'s control block, if it registered one.
    pub fn control_block_hpa(&self, vcpu: u32) -> Option<u64> {
        self.vcpus.get(vcpu as usize)?.control_block
    }

    /// The priority `port`'s next linking uses.
    pub fn priority(&self, port: u32) -> u32 {
        self.port(port).priority as u32
    }

    /// The port last linked onto vCPU `vcpu`'s queue of `priority` while that queue
    /// was known to be non-empty (0: none), as Xen tracks it.
    pub fn tail(&self, vcpu: u32, priority: u32) -> u32 {
        self.vcpus
            .get(vcpu as usize)
            .and_then(|v| v.tail.get(priority as usize))
            .copied()
            .unwrap_or(0)
    }

    fn port(&self, port: u32) -> FifoPort {
        self.ports.get(port as usize).copied().unwrap_or_default()
    }

    /// `port`'s record, created on first use. Callers pass only ports of the
    /// domain's table, so this never grows beyond its highest valid port.
    fn port_mut(&mut self, port: u32) -> &mut FifoPort {
        let i = port as usize;
        if self.ports.len() <= i {
            self.ports.resize(i + 1, FifoPort::default());
        }
        &mut self.ports[i]
    }
}

/// Reads a little-endian `u32` of host-physical memory.
fn read_u32(host: &impl Host, hpa: u64) -> u32 {
    let mut b = [0u8; 4];
    host.read_phys(hpa, &mut b);
    u32::from_le_bytes(b)
}

/// Writes a little-endian `u32` of host-physical memory.
fn write_u32(host: &mut impl Host, hpa: u64, v: u32) {
    host.write_phys(hpa, &v.to_le_bytes());
}

/// Compare-and-exchange of the guest word at `hpa`: writes `new` if the word holds
/// `old`; returns the value it held. The one atomic primitive of this module: it is
/// atomic with respect to the guest because no vCPU of the domain runs while the
/// hypervisor handles a hypercall or a backend event (all of a domain's vCPUs run
/// on one physical CPU), so nothing can write the word between the read and the
/// write.
fn cmpxchg(host: &mut impl Host, hpa: u64, old: u32, new: u32) -> u32 {
    let seen = read_u32(host, hpa);
    if seen == old {
        write_u32(host, hpa, new);
    }
    seen
}

/// Atomically replaces the word at `hpa` by `f(word)` (a cmpxchg loop, bounded);
/// returns the old value.
fn fetch_update(host: &mut impl Host, hpa: u64, f: impl Fn(u32) -> u32) -> u32 {
    let mut old = read_u32(host, hpa);
    for _ in 0..ATOMIC_TRIES {
        let seen = cmpxchg(host, hpa, old, f(old));
        if seen == old {
            break;
        }
        old = seen;
    }
    old
}

/// Xen's `guest_test_and_set_bit` on a 32-bit word.
fn test_and_set_bit(host: &mut impl Host, hpa: u64, bit: u32) -> bool {
    fetch_update(host, hpa, |w| w | 1 << bit) & 1 << bit != 0
}

/// Xen's `guest_set_bit`.
fn set_bit(host: &mut impl Host, hpa: u64, bit: u32) {
    fetch_update(host, hpa, |w| w | 1 << bit);
}

/// Xen's `guest_clear_bit`.
fn clear_bit(host: &mut impl Host, hpa: u64, bit: u32) {
    fetch_update(host, hpa, |w| w & !(1 << bit));
}

/// Xen's `guest_test_bit`.
fn test_bit(host: &impl Host, hpa: u64, bit: u32) -> bool {
    read_u32(host, hpa) & 1 << bit != 0
}

/// Xen's `map_guest_page`: the host frame of guest frame `gfn`, which must be the
/// domain's own ordinary writable RAM (not MMIO, not a grant, not a hypervisor page).
fn map_guest_page(dom: &Domain, gfn: u64) -> Result<u64, Errno> {
    dom.p2m
        .lookup(gfn)
        .filter(|e| e.mapping.p2m_type == P2mType::RamRw && !e.mapping.special)
        .map(|e| e.mfn * PAGE)
        .ok_or(Errno::EINVAL)
}

/// `EVTCHNOP_init_control` (Xen's `evtchn_fifo_init_control`): registers vCPU
/// `a.vcpu`'s control block at `a.control_gfn` + `a.offset` and, the first time,
/// switches the domain to FIFO. Sets `a.link_bits`.
///
/// `-ENOENT` for a vCPU the domain does not have; `-EINVAL` for an offset that is not
/// 8-byte aligned or leaves no room for the control block in its page, a vCPU that
/// already has one, or a frame that is not the domain's RAM.
pub(crate) fn init_control(
    dom: &mut Domain,
    host: &impl Host,
    a: &mut ev::EvtchnInitControl,
) -> Result<(), Errno> {
    a.link_bits = ev::EVTCHN_FIFO_LINK_BITS as u8;
    let vcpu = a.vcpu as usize;
    if vcpu >= dom.vcpus.len() {
        return Err(Errno::ENOENT);
    }
    // Must not cross the page, must be 8-byte aligned.
    if a.offset > PAGE as u32 - CONTROL_BLOCK_SIZE || !a.offset.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    if dom
        .evtchn_fifo
        .as_ref()
        .and_then(|f| f.vcpus.get(vcpu))
        .is_some_and(|v| v.control_block.is_some())
    {
        return Err(Errno::EINVAL);
    }
    let hpa = map_guest_page(dom, a.control_gfn)? + a.offset as u64;
    if dom.evtchn_fifo.is_none() {
        // The first control block: an empty event array, then what Xen's
        // setup_ports does for the ports already bound.
        let mut fifo = FifoState::new(dom.vcpus.len());
        let si = dom.shared_info_mfn * PAGE;
        for (port, _) in dom.evtchn.bound() {
            if port < NR_PORTS && crate::test_bit(host, si + EVTCHN_PENDING, port) {
                fifo.port_mut(port).pending = true;
            }
        }
        dom.evtchn_fifo = Some(fifo);
        dom.evtchn.set_fifo(true);
    }
    if let Some(v) = dom.evtchn_fifo.as_mut().and_then(|f| f.vcpus.get_mut(vcpu)) {
        v.control_block = Some(hpa);
    }
    Ok(())
}

/// `EVTCHNOP_expand_array` (Xen's `evtchn_fifo_expand_array`): adds guest frame
/// `gfn` as the next event-array page, then raises the events of its ports that
/// were signalled while it was missing.
///
/// `-EOPNOTSUPP` before `init_control`; `-ENOSPC` once all
/// [`MAX_EVENT_ARRAY_PAGES`] are there; `-EINVAL` for a frame that is not the
/// domain's RAM.
pub(crate) fn expand_array(dom: &mut Domain, host: &mut impl Host, gfn: u64) -> Result<(), Errno> {
    let Some(fifo) = dom.evtchn_fifo.as_ref() else {
        return Err(Errno::EOPNOTSUPP);
    };
    if fifo.array.len() >= MAX_EVENT_ARRAY_PAGES as usize {
        return Err(Errno::ENOSPC);
    }
    let first = fifo.nr_event_words();
    let hpa = map_guest_page(dom, gfn)?;
    let Some(fifo) = dom.evtchn_fifo.as_mut() else {
        return Err(Errno::EOPNOTSUPP);
    };
    fifo.array.push(hpa);
    let end = fifo.nr_event_words().min(fifo.ports.len() as u32);
    for port in first..end {
        let Some(fifo) = dom.evtchn_fifo.as_mut() else {
            break;
        };
        if !core::mem::take(&mut fifo.port_mut(port).pending) {
            continue;
        }
        match dom.evtchn.get(port) {
            Some(p) if usable(p) => set_pending(dom, host, port, p.vcpu),
            _ => {}
        }
    }
    Ok(())
}

/// `EVTCHNOP_set_priority` on an allocated port (Xen's `evtchn_fifo_set_priority`):
/// `-EINVAL` above [`ev::EVTCHN_FIFO_PRIORITY_MIN`]. The new priority applies the
/// next time the event is linked.
pub(crate) fn set_priority(dom: &mut Domain, port: u32, priority: u32) -> Result<(), Errno> {
    if priority > ev::EVTCHN_FIFO_PRIORITY_MIN {
        return Err(Errno::EINVAL);
    }
    if let Some(f) = dom.evtchn_fifo.as_mut() {
        f.port_mut(port).priority = priority as u8;
    }
    Ok(())
}

/// A port was just allocated (Xen's `evtchn_fifo_init`): it starts at the default
/// priority, with nothing remembered from an earlier use of the number.
pub(crate) fn port_init(dom: &mut Domain, port: u32) {
    if let Some(f) = dom.evtchn_fifo.as_mut() {
        let p = f.port_mut(port);
        p.priority = ev::EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
        p.pending = false;
    }
}

/// Xen's `evtchn_fifo_set_pending`: marks `port` pending and, unless it is masked
/// or already linked, links it at the tail of vCPU `vcpu`'s queue for its priority,
/// sets that priority's READY bit and, if it was clear, raises the upcall.
///
/// Without the port's event word the event is remembered for
/// [`expand_array`]; without a control block for `vcpu` it is dropped (the guest
/// must not unmask an event before it registered the control block).
pub(crate) fn set_pending(dom: &mut Domain, host: &mut impl Host, port: u32, vcpu: u32) {
    let Some(fifo) = dom.evtchn_fifo.as_mut() else {
        return;
    };
    let Some(word) = fifo.word_hpa(port) else {
        fifo.port_mut(port).pending = true;
        return;
    };
    let v = vcpu as usize;
    let Some(cb) = fifo.vcpus.get(v).and_then(|x| x.control_block) else {
        return;
    };
    test_and_set_bit(host, word, ev::EVTCHN_FIFO_PENDING);
    let fp = fifo.port(port);
    let prio = fp.priority as usize % QUEUES;
    let mut linked = true;
    if !test_bit(host, word, ev::EVTCHN_FIFO_MASKED)
        && !test_and_set_bit(host, word, ev::EVTCHN_FIFO_LINKED)
    {
        // If the event was the tail of the queue it was last on, that queue is now
        // empty: forget its tail so that linking onto it cannot corrupt this one.
        let (old_v, old_p) = (fp.last_vcpu as usize, fp.last_priority as usize % QUEUES);
        if let Some(old) = fifo.vcpus.get_mut(old_v) {
            if old.tail[old_p] == port {
                old.tail[old_p] = 0;
            }
        }
        if (old_v, old_p) != (v, prio) {
            let p = fifo.port_mut(port);
            p.last_vcpu = v as u16;
            p.last_priority = prio as u8;
        }
        // Link the old tail to the port if the tail is still linked; otherwise
        // the queue is empty and the port becomes its head.
        linked = false;
        let tail = fifo.vcpus[v].tail[prio];
        if tail != 0 {
            if let Some(tail_word) = fifo.word_hpa(tail) {
                linked = set_link(host, tail_word, port);
            }
        }
        if !linked {
            write_u32(host, cb + HEAD_OFFSET + prio as u64 * 4, port);
        }
        fifo.vcpus[v].tail[prio] = port;
    }
    if !linked && !test_and_set_bit(host, cb + READY_OFFSET, prio as u32) {
        dom.mark_events_pending(host, vcpu);
    }
}

/// Xen's `try_set_link`: `Ok(false)` if `*w` is not LINKED, `Ok(true)` once the LINK
/// field (and BUSY, cleared) is set, `Err(())` if the word changed under us (`*w`
/// then holds what was found).
fn try_set_link(host: &mut impl Host, word: u64, w: &mut u32, link: u32) -> Result<bool, ()> {
    if *w & 1 << ev::EVTCHN_FIFO_LINKED == 0 {
        return Ok(false);
    }
    let old = *w;
    let new = (old & !(1 << ev::EVTCHN_FIFO_BUSY | ev::EVTCHN_FIFO_LINK_MASK)) | link;
    *w = cmpxchg(host, word, old, new);
    if *w == old {
        Ok(true)
    } else {
        Err(())
    }
}

/// Xen's `evtchn_fifo_set_link`: sets the LINK field of the tail's word iff it is
/// still LINKED; returns whether it was (otherwise the queue is empty). While it
/// retries it holds BUSY, which keeps the guest from unmasking the tail, so the
/// guest can make at most a few changes in between; after that it gives up and
/// counts the tail as linked, as Xen does. BUSY is always clear on return.
fn set_link(host: &mut impl Host, word: u64, link: u32) -> bool {
    let mut w = read_u32(host, word);
    if let Ok(linked) = try_set_link(host, word, &mut w, link) {
        return linked;
    }
    set_bit(host, word, ev::EVTCHN_FIFO_BUSY);
    w = read_u32(host, word);
    for _ in 0..ATOMIC_TRIES {
        if let Ok(linked) = try_set_link(host, word, &mut w, link) {
            if !linked {
                clear_bit(host, word, ev::EVTCHN_FIFO_BUSY);
            }
            return linked;
        }
    }
    clear_bit(host, word, ev::EVTCHN_FIFO_BUSY);
    true
}

/// Xen's `evtchn_fifo_clear_pending` (a port is closed): clears PENDING in its word,
/// or forgets the event remembered for a missing page. The guest unlinks it.
pub(crate) fn clear_pending(dom: &mut Domain, host: &mut impl Host, port: u32) {
    let Some(fifo) = dom.evtchn_fifo.as_mut() else {
        return;
    };
    match fifo.word_hpa(port) {
        Some(word) => clear_bit(host, word, ev::EVTCHN_FIFO_PENDING),
        None => {
            if let Some(p) = fifo.ports.get_mut(port as usize) {
                p.pending = false;
            }
        }
    }
}

/// `EVTCHNOP_unmask` under FIFO (Xen's `evtchn_fifo_unmask`): clears MASKED and,
/// if the event is pending, links it as [`set_pending`] does.
pub(crate) fn unmask(dom: &mut Domain, host: &mut impl Host, port: u32, p: Port) {
    let Some(word) = dom.evtchn_fifo.as_ref().and_then(|f| f.word_hpa(port)) else {
        return;
    };
    clear_bit(host, word, ev::EVTCHN_FIFO_MASKED);
    if test_bit(host, word, ev::EVTCHN_FIFO_PENDING) {
        set_pending(dom, host, port, p.vcpu);
    }
}

/// Whether PENDING is set in `port`'s word (false without one).
pub(crate) fn is_pending(fifo: &FifoState, host: &impl Host, port: u32) -> bool {
    fifo.word_hpa(port)
        .is_some_and(|w| test_bit(host, w, ev::EVTCHN_FIFO_PENDING))
}

/// Whether MASKED is set in `port`'s word (true without one).
pub(crate) fn is_masked(fifo: &FifoState, host: &impl Host, port: u32) -> bool {
    fifo.word_hpa(port)
        .is_none_or(|w| test_bit(host, w, ev::EVTCHN_FIFO_MASKED))
}

/// Xen's `evtchn_fifo_is_busy`: a closed port whose word is still LINKED is not
/// reallocated until the guest has unlinked it.
pub(crate) fn is_busy(fifo: &FifoState, host: &impl Host, port: u32) -> bool {
    fifo.word_hpa(port)
        .is_some_and(|w| test_bit(host, w, ev::EVTCHN_FIFO_LINKED))
}

/// Tears the FIFO ABI down (Xen's `evtchn_fifo_destroy` + `evtchn_2l_init`): the
/// domain is back on the 2-level ABI.
pub(crate) fn destroy(dom: &mut Domain) {
    dom.evtchn_fifo = None;
    dom.evtchn.set_fifo(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testhost::FakeHost;
    use p2m::EptTableMemory;

    /// A host on which the guest seems to change the word at `racy` between two of
    /// the hypervisor's reads: of the first `races` reads of it, every other one
    /// sees `flip` toggled, so a compare-and-exchange after such a read fails (the
    /// worst another vCPU could do if the vCPUs ran in parallel).
    struct RacyHost {
        inner: FakeHost,
        racy: u64,
        flip: u32,
        races: usize,
        reads: core::cell::Cell<usize>,
    }

    impl EptTableMemory for RacyHost {
        fn alloc_table(&mut self) -> Option<u64> {
            self.inner.alloc_table()
        }
        fn free_table(&mut self, table: u64) {
            self.inner.free_table(table)
        }
        fn read_entry(&self, table: u64, index: usize) -> u64 {
            self.inner.read_entry(table, index)
        }
        fn write_entry(&mut self, table: u64, index: usize, value: u64) {
            self.inner.write_entry(table, index, value)
        }
    }

    impl Host for RacyHost {
        fn read_phys(&self, hpa: u64, buf: &mut [u8]) {
            self.inner.read_phys(hpa, buf);
            let n = self.reads.get();
            if hpa == self.racy && n < self.races {
                self.reads.set(n + 1);
                if n.is_multiple_of(2) {
                    let v = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) ^ self.flip;
                    buf.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        fn write_phys(&mut self, hpa: u64, data: &[u8]) {
            self.inner.write_phys(hpa, data)
        }
        fn alloc_page(&mut self) -> Option<u64> {
            self.inner.alloc_page()
        }
        fn free_page(&mut self, hpa: u64) {
            self.inner.free_page(hpa)
        }
        fn console_line(&mut self, domid: u16, line: &str) {
            self.inner.console_line(domid, line)
        }
        fn wallclock(&self) -> (u64, u32) {
            self.inner.wallclock()
        }
        fn tsc(&self) -> u64 {
            self.inner.tsc()
        }
        fn tsc_khz(&self) -> u64 {
            self.inner.tsc_khz()
        }
    }

    fn racy(w: u64, races: usize) -> RacyHost {
        RacyHost {
            inner: FakeHost::default(),
            racy: w,
            flip: 1 << ev::EVTCHN_FIFO_MASKED,
            races,
            reads: core::cell::Cell::new(0),
        }
    }

    #[test]
    fn constants_match_xen() {
        assert_eq!(EVENT_WORDS_PER_PAGE, 1024);
        assert_eq!(MAX_EVENT_ARRAY_PAGES, 128);
        assert_eq!(CONTROL_BLOCK_SIZE, 72);
        assert_eq!((READY_OFFSET, HEAD_OFFSET), (0, 8));
        // Every FIFO port's record: 6 bytes, so at most 768 KiB per domain.
        assert_eq!(core::mem::size_of::<FifoPort>(), 6);
        assert!(heap_bytes(32, ev::EVTCHN_FIFO_NR_CHANNELS) <= 800 << 10);
    }

    #[test]
    fn cmpxchg_writes_only_on_match() {
        let mut host = FakeHost::default();
        let hpa = 0x5000_0008;
        write_u32(&mut host, hpa, 7);
        assert_eq!(cmpxchg(&mut host, hpa, 6, 9), 7);
        assert_eq!(read_u32(&host, hpa), 7);
        assert_eq!(cmpxchg(&mut host, hpa, 7, 9), 7);
        assert_eq!(read_u32(&host, hpa), 9);
        assert!(!test_and_set_bit(&mut host, hpa, 31));
        assert!(test_and_set_bit(&mut host, hpa, 31));
        clear_bit(&mut host, hpa, 31);
        assert_eq!(read_u32(&host, hpa), 9);
    }

    #[test]
    fn set_link_links_a_linked_tail_and_clears_busy() {
        let mut host = FakeHost::default();
        let w = 0x5000_0010;
        let linked = 1 << ev::EVTCHN_FIFO_LINKED;
        let busy = 1 << ev::EVTCHN_FIFO_BUSY;
        write_u32(&mut host, w, linked | busy | 0x1_FFFF);
        assert!(set_link(&mut host, w, 42));
        assert_eq!(read_u32(&host, w), linked | 42);
        // An unlinked tail: no link, nothing written.
        write_u32(&mut host, w, 1 << ev::EVTCHN_FIFO_PENDING);
        assert!(!set_link(&mut host, w, 43));
        assert_eq!(read_u32(&host, w), 1 << ev::EVTCHN_FIFO_PENDING);
    }

    #[test]
    fn a_race_on_the_tail_takes_busy_then_links_and_clears_it() {
        let linked = 1 << ev::EVTCHN_FIFO_LINKED;
        let w = 0x5000_0020;
        let mut host = racy(w, 0);
        write_u32(&mut host.inner, w, linked | 9);
        // The first cmpxchg fails; Xen's retry path sets BUSY, links, clears it.
        host.races = 2;
        host.inner.logging = true;
        assert!(set_link(&mut host, w, 5));
        assert_eq!(read_u32(&host.inner, w), linked | 5);
        let busy_written = host.inner.log.iter().any(|(hpa, d)| {
            *hpa == w
                && u32::from_le_bytes([d[0], d[1], d[2], d[3]]) & 1 << ev::EVTCHN_FIFO_BUSY != 0
        });
        assert!(busy_written, "BUSY held while retrying");
    }

    #[test]
    fn a_guest_racing_forever_cannot_keep_busy_set_or_stall_xen() {
        let linked = 1 << ev::EVTCHN_FIFO_LINKED;
        let w = 0x5000_0020;
        let mut host = racy(w, usize::MAX);
        write_u32(&mut host.inner, w, linked);
        assert!(set_link(&mut host, w, 5), "gives up counting it linked");
        assert_eq!(read_u32(&host.inner, w) & 1 << ev::EVTCHN_FIFO_BUSY, 0);
        assert!(host.reads.get() < 64, "bounded: {} reads", host.reads.get());
    }
}
