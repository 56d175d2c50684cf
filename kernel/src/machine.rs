//! The machine: every domain at once on the one physical CPU. A round-robin
//! scheduler over all vCPUs of all domains, the backends they kick (console,
//! xenstore, netback) and the network between them.

use crate::cpu;
use crate::domain::{DomainRun, Next, Outcome};
use crate::host::KernelHost;
use crate::ledger::{self, Bucket, Part};
use crate::net::Net;
use crate::vcpu::RunState;
use crate::vmx::VmxCaps;
use alloc::vec::Vec;
use hypercalls::console::{InputAction, InputSwitch};
use hypercalls::domain::ShutdownReason;

/// All running domains and what they share.
pub struct Machine<'a> {
    doms: Vec<DomainRun<'a>>,
    /// (domid, vCPU) whose state is on the physical CPU.
    current: Option<(u16, usize)>,
    net: Net,
    caps: &'a VmxCaps,
    /// When the network counters go to the debug log next (TSC).
    next_net_log: u64,
    /// Slices, rate limit and idle bound (see crate `sched`).
    sched: sched::Params,
    /// The serial console's input switch (Ctrl-A three times).
    input_switch: InputSwitch,
    /// The domain that gets what is typed on the serial console.
    input_focus: Option<u16>,
}

/// How often (TSC ticks) the network counters go to the debug log while
/// there is traffic.
const NET_LOG_PERIOD: u64 = 500_000_000;

/// How long the machine may idle while serial output waits (µs): about the time a
/// 115200-baud UART takes for its 16-byte FIFO.
const SERIAL_PUMP_US: u64 = 1_000;
/// How long the machine may idle before it looks for serial input again (µs).
const SERIAL_INPUT_POLL_US: u64 = 10_000;

/// Hands the UART what it can take of the queued output (charged to the console).
fn pump_serial() {
    if crate::serial::pending() {
        ledger::part(Part::Console, crate::serial::pump);
    }
}

impl<'a> Machine<'a> {
    /// An empty machine.
    pub fn new(caps: &'a VmxCaps, sched: sched::Params) -> Machine<'a> {
        Machine {
            doms: Vec::new(),
            current: None,
            net: Net::new(cpu::rdtsc()),
            caps,
            next_net_log: 0,
            sched,
            input_switch: InputSwitch::default(),
            input_focus: None,
        }
    }

    /// Adds a built domain and plugs its vifs into the switch.
    pub fn add(&mut self, run: DomainRun<'a>, cfg: &domcfg::DomainConfig) {
        for (devid, spec) in (0u32..).zip(&cfg.vifs) {
            self.net.add_vif(&run.dom, devid, cfg.vcpus, spec);
        }
        self.doms.push(run);
    }

    /// Runs every domain until all have ended.
    pub fn run(mut self, host: &mut KernelHost) {
        if self.doms.is_empty() {
            return;
        }
        let launch = cpu::rdtsc();
        crate::host::LAUNCH_TSC.store(launch, core::sync::atomic::Ordering::Relaxed);
        for r in &self.doms {
            log::info!("domain {}: launched at tsc={launch}", r.dom.domid);
        }
        ledger::start();
        crate::serial::start_buffering();
        self.input_focus = Some(self.doms[0].dom.domid);
        self.announce_input();
        // Watches the vifs set fire at once.
        self.net.backend_events(&mut self.doms, host);
        let mut cursor = 0usize;
        while !self.doms.is_empty() {
            ledger::set(Bucket::Hv(Part::Sched));
            pump_serial();
            crate::idt::log_nmis();
            self.serve_serial_input(host);
            if let Some(r) = self
                .doms
                .iter_mut()
                .find(|r| Some(r.dom.domid) == self.input_focus)
            {
                crate::host::console_fragment(&mut r.dom, host);
            }
            let (doms, net) = (&self.doms, &self.net);
            ledger::print_marks(|line| net.write_counters(doms, line));
            let now = cpu::rdtsc();
            for r in self.doms.iter_mut() {
                r.fire_timers(host, now);
                r.wake_halted(host);
            }
            // Xen's `hvm_vcpu_down`: a vCPU that halts with interrupts disabled is down;
            // when none is left online (APs never started are down too), the domain has
            // powered off. Linux, with no power-off method (a PVH domU has no ACPI S5),
            // ends `poweroff` this way.
            if let Some(d) = self.doms.iter().position(|r| r.is_dead()) {
                log::info!(
                    "domain {}: all vCPUs offline -- powering off",
                    self.doms[d].dom.domid
                );
                self.end(d, Outcome::Shutdown(ShutdownReason::Poweroff), host);
                continue;
            }
            if now >= self.next_net_log {
                self.next_net_log = now + NET_LOG_PERIOD;
                self.log_stats(now);
            }
            // Vifs that hold off TX kicks are polled here, between slices,
            // so that a guest's burst is taken in one pass.
            for d in 0..self.doms.len() {
                if self.net.needs_service(self.doms[d].dom.domid) {
                    self.serve_backends(d, host, true);
                }
            }
            if self.net_due(now) {
                self.net.pump(&mut self.doms, host, now);
            }
            let slots = self.slots();
            let policy: Vec<sched::Slot> = slots
                .iter()
                .map(|&(d, i)| sched::Slot {
                    runnable: self.state((d, i)) == RunState::Runnable,
                    boosted: self.doms[d].vcpus[i].boosted,
                })
                .collect();
            let Some(k) = sched::pick(&policy, cursor) else {
                self.idle(now, host);
                continue;
            };
            let (d, i) = slots[k];
            self.doms[d].vcpus[i].boosted = false;
            let others = policy.iter().enumerate().any(|(j, s)| j != k && s.runnable);
            let khz = cpu::tsc_khz();
            let waiting = self.earliest_timer(Some((d, i))).map(|(t, _, _)| t);
            let mut slice_end = sched::slice_end(&self.sched, khz, now, others, waiting);
            self.switch_to(d, i);
            loop {
                let next = self.doms[d].run_once(i, slice_end, host);
                pump_serial();
                if self.serve_backends(d, host, false)
                    && ledger::part(Part::Sched, || self.wake_others(d, i))
                {
                    // An event woke a vCPU: it runs once the rate limit allows.
                    slice_end = sched::preempt_at(&self.sched, khz, now, cpu::rdtsc(), slice_end);
                }
                match next {
                    Next::Continue if cpu::rdtsc() < slice_end => {}
                    Next::Continue | Next::Yield => break,
                    Next::End(outcome) => {
                        self.end(d, outcome, host);
                        break;
                    }
                }
                if self.doms[d].vcpus[i].state != RunState::Runnable {
                    break;
                }
            }
            cursor = k + 1;
        }
    }

    /// Every (domain index, vCPU index), in order.
    fn slots(&self) -> Vec<(usize, usize)> {
        self.doms
            .iter()
            .enumerate()
            .flat_map(|(d, r)| (0..r.vcpus.len()).map(move |i| (d, i)))
            .collect()
    }

    fn state(&self, (d, i): (usize, usize)) -> RunState {
        self.doms[d].vcpus[i].state
    }

    /// Puts vCPU `i` of domain `d` on the physical CPU.
    fn switch_to(&mut self, d: usize, i: usize) {
        let key = (self.doms[d].dom.domid, i);
        if self.current == Some(key) {
            return;
        }
        if let Some((pd, pi)) = self.current {
            if let Some(prev) = self.doms.iter_mut().find(|r| r.dom.domid == pd) {
                prev.vcpus[pi].save();
            }
        }
        let run = &mut self.doms[d];
        run.vcpus[i].load();
        self.current = Some(key);
        if let Some(vector) = run.devices.take_sipi(i) {
            run.vcpus[i].start_at_sipi(self.caps, vector);
        }
    }

    /// Wakes (and boosts) the halted vCPUs that backend work just gave an
    /// event, other than the running vCPU `i` of domain `d`; whether it woke one.
    fn wake_others(&mut self, d: usize, i: usize) -> bool {
        let mut woke = false;
        for (e, run) in self.doms.iter_mut().enumerate() {
            woke |= run.wake_halted(&KernelHost);
            if e == d {
                run.vcpus[i].boosted = false;
            }
        }
        woke
    }

    /// The earliest timer (TSC, domain index, vCPU index) of a halted vCPU,
    /// `except` one; a halted vCPU without a timer counts as due
    /// [`sched::Params::idle_max_us`] from now.
    fn earliest_timer(&self, except: Option<(usize, usize)>) -> Option<(u64, usize, usize)> {
        let idle_max = sched::us_to_ticks(self.sched.idle_max_us, cpu::tsc_khz());
        let now = cpu::rdtsc();
        let mut earliest: Option<(u64, usize, usize)> = None;
        for (d, run) in self.doms.iter().enumerate() {
            for i in 0..run.vcpus.len() {
                if run.vcpus[i].state != RunState::Halted || except == Some((d, i)) {
                    continue;
                }
                let t = run.deadline(i).unwrap_or(now + idle_max);
                if earliest.is_none_or(|(e, _, _)| t < e) {
                    earliest = Some((t, d, i));
                }
            }
        }
        earliest
    }

    /// No vCPU can run: wait for the earliest timer of any domain or of the peer.
    fn idle(&mut self, now: u64, host: &mut KernelHost) {
        let Some((mut deadline, d, i)) = self.earliest_timer(None) else {
            return;
        };
        if let Some(t) = self.net.deadline() {
            deadline = deadline.min(t);
        }
        // Back in time to give the UART its next FIFO's worth, and to see what was typed.
        let poll_us = if crate::serial::pending() {
            SERIAL_PUMP_US
        } else {
            SERIAL_INPUT_POLL_US
        };
        deadline = deadline.min(now + sched::us_to_ticks(poll_us, cpu::tsc_khz()));
        if deadline <= now {
            return;
        }
        if self.caps.activity_hlt() {
            self.switch_to(d, i);
            if let Err(outcome) = self.doms[d].halt_until(i, deadline - now) {
                self.end(d, outcome, host);
            }
        } else {
            ledger::part(Part::Idle, || {
                while cpu::rdtsc() < deadline {
                    core::hint::spin_loop();
                }
            });
        }
    }

    /// Whether the network has something to do now: frames queued on the
    /// switch, or the peer's timer.
    fn net_due(&self, now: u64) -> bool {
        self.net.busy() || self.net.deadline().is_some_and(|t| t <= now)
    }

    /// Runs the backends domain `d` kicked: its console ring, the xenstore
    /// ring, its vifs (with `poll`, also those waiting to be polled); then
    /// moves frames through the switch. Whether there was anything to do.
    fn serve_backends(&mut self, d: usize, host: &mut KernelHost, poll: bool) -> bool {
        let kicks = self.doms[d].dom.take_backend_kicks();
        if kicks.is_empty() && !poll {
            return false;
        }
        let domid = self.doms[d].dom.domid;
        let mut store = false;
        let mut vif_ports = Vec::new();
        for port in kicks {
            let dom = &mut self.doms[d].dom;
            if Some(port) == dom.console_port {
                ledger::part(Part::Console, || {
                    hypercalls::hvm::drain_console_ring(dom, host)
                });
            } else if Some(port) == dom.store_port {
                store = true;
                ledger::part(Part::Xenstore, || self.serve_store(d, host));
            } else if self.net.owns_port(domid, port) {
                self.net.count_kick(domid, port);
                vif_ports.push(port);
            } else {
                log::debug!("d{domid}: kick on port {port} has no backend");
            }
        }
        if store {
            ledger::part(Part::Xenstore, || {
                self.net.backend_events(&mut self.doms, host)
            });
        }
        let now = cpu::rdtsc();
        self.net
            .service(&mut self.doms, d, host, &vif_ports, poll, now);
        self.net.pump(&mut self.doms, host, now);
        let (doms, net) = (&self.doms, &self.net);
        ledger::print_marks(|line| net.write_counters(doms, line));
        true
    }

    /// The network counters and where each domain's time went, at debug level.
    fn log_stats(&self, now: u64) {
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        self.net.log_stats();
        for r in &self.doms {
            let (busy, halted) = ledger::guest_ticks(r.dom.domid);
            log::debug!(
                "d{}: tsc in guest {busy} busy, {halted} halted, since launch {}",
                r.dom.domid,
                now - crate::host::LAUNCH_TSC.load(core::sync::atomic::Ordering::Relaxed)
            );
        }
    }

    /// Serves domain `d`'s store ring, then those of other domains that have
    /// watch events waiting.
    fn serve_store(&mut self, d: usize, host: &mut KernelHost) {
        let mut todo = alloc::vec![self.doms[d].dom.domid];
        while let Some(domid) = todo.pop() {
            let Some(run) = self.doms.iter_mut().find(|r| r.dom.domid == domid) else {
                continue;
            };
            let (notify, others) = crate::store::serve(domid, run.dom.store_mfn * 4096);
            if notify {
                if let Some(port) = run.dom.store_port {
                    hypercalls::evtchn::set_pending(&mut run.dom, host, port);
                }
            }
            for o in others {
                if !todo.contains(&o) {
                    todo.push(o);
                }
            }
        }
    }

    /// Tears down domain `d` after it ended with `outcome`.
    /// Hands what was typed on the serial console to the domain with the input
    /// (its console ring), or switches the input on Ctrl-A three times.
    fn serve_serial_input(&mut self, host: &mut KernelHost) {
        let mut typed = [0u8; 16];
        let n = crate::serial::read_input(&mut typed);
        if n == 0 {
            return;
        }
        let mut actions = Vec::new();
        for &b in &typed[..n] {
            self.input_switch.feed(b, |a| actions.push(a));
        }
        for a in actions {
            match a {
                InputAction::Deliver(b) => {
                    if let Some(r) = self
                        .doms
                        .iter_mut()
                        .find(|r| Some(r.dom.domid) == self.input_focus)
                    {
                        ledger::part(Part::Console, || r.dom.console_input(host, &[b]));
                    }
                }
                InputAction::Switch => {
                    let at = self
                        .doms
                        .iter()
                        .position(|r| Some(r.dom.domid) == self.input_focus)
                        .map_or(0, |k| k + 1);
                    self.input_focus = self
                        .doms
                        .get(at % self.doms.len().max(1))
                        .map(|r| r.dom.domid);
                    self.announce_input();
                }
            }
        }
    }

    /// Says which domain has the serial console's input.
    fn announce_input(&self) {
        if let Some(r) = self
            .doms
            .iter()
            .find(|r| Some(r.dom.domid) == self.input_focus)
        {
            log::info!(
                "console input to d{} ({}); Ctrl-A three times switches",
                r.dom.domid,
                r.dom.name
            );
        }
    }

    fn end(&mut self, d: usize, outcome: Outcome, host: &mut KernelHost) {
        if let Some((pd, pi)) = self.current {
            if pd != self.doms[d].dom.domid {
                if let Some(prev) = self.doms.iter_mut().find(|r| r.dom.domid == pd) {
                    prev.vcpus[pi].save();
                }
            }
        }
        let mut run = self.doms.remove(d);
        self.net.remove_domain(&mut run.dom, host);
        let domid = run.dom.domid;
        run.teardown(outcome, host);
        if self.input_focus == Some(domid) {
            // The input moves on to the next domain, if any.
            self.input_focus = self
                .doms
                .get(d % self.doms.len().max(1))
                .map(|r| r.dom.domid);
            self.announce_input();
        }
        // Its VMCS may have been current, and teardown resets XCR0: the next
        // vCPU loads all of its state.
        self.current = None;
        if !self.doms.is_empty() {
            // Other domains may be watching (their store rings get the events).
            let first = 0;
            self.serve_store(first, host);
        }
    }
}
