//! Runs an emulator under a wall-clock watchdog while following its serial log.
//!
//! The emulator runs in its own process group, so that the watchdog (and Ctrl-C, through
//! [`install_signal_handlers`]) can kill it with everything it started.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::serial_link::{stdin_bytes, RawTerminal, Script, SerialLink, ESCAPE};

/// How long the emulator may take to listen on its serial socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP set a flag instead of killing this process, so that a
/// running emulator is stopped (see [`interrupted`]) rather than left behind.
pub fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `on_signal` has the signature a signal handler needs and only stores to an
        // atomic, which is async-signal-safe; replacing these handlers affects nothing else in
        // this single-purpose process (children get default dispositions back at exec).
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Whether SIGINT, SIGTERM or SIGHUP arrived since [`install_signal_handlers`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How to run and when to stop.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Hard wall-clock limit; the emulator is killed when it passes.
    pub timeout: Duration,
    /// How long to let the emulator go on (to exit by itself) after a stop marker.
    pub grace: Duration,
    /// Log substrings after which the run is over (see `tests::check::STOP_MARKERS`).
    pub stop_markers: Vec<String>,
    /// Copy the serial log to standard output as it grows.
    pub stream: bool,
    /// How often to look at the log and the process.
    pub poll: Duration,
    /// Log substrings whose first appearance is timed (see [`Outcome::mark_times`]).
    pub marks: Vec<String>,
    /// Typing into the guest, through the emulator's serial socket (`None`: its serial port
    /// is a file and nothing is typed).
    pub input: Option<InputPlan>,
}

/// What is typed into the guest's serial console, and through which socket.
#[derive(Debug, Clone)]
pub struct InputPlan {
    /// The local port the emulator's serial port listens on.
    pub port: u16,
    /// Text typed once lines appear in the log.
    pub script: Vec<::tests::TypedInput>,
    /// Also forward standard input (in raw mode on a terminal; Ctrl-] ends the run).
    pub terminal: bool,
}

impl RunOptions {
    /// The defaults: the given timeout, 2 s of grace, the protocol's stop markers, 50 ms polls.
    pub fn new(timeout: Duration, stream: bool) -> Self {
        RunOptions {
            timeout,
            grace: Duration::from_secs(2),
            stop_markers: ::tests::check::STOP_MARKERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stream,
            poll: Duration::from_millis(50),
            marks: Vec::new(),
            input: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The emulator exited by itself.
    Exited(ExitStatus),
    /// A stop marker appeared and the emulator was killed after the grace period (or exited
    /// within it: then this holds its status).
    Stopped {
        /// The marker seen.
        marker: String,
        /// The emulator's exit status when it exited by itself within the grace period.
        status: Option<ExitStatus>,
    },
    /// The wall-clock limit passed and the emulator was killed.
    TimedOut,
    /// SIGINT/SIGTERM/SIGHUP arrived and the emulator was killed.
    Interrupted,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// Wall time from start to end.
    pub wall: Duration,
    /// The serial log (lossily decoded as UTF-8).
    pub log: String,
    /// For each of [`RunOptions::marks`], when it first appeared in the log (to within a poll).
    pub mark_times: Vec<Option<Duration>>,
}

/// The child's process group, killed when dropped unless the child was reaped.
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        let Ok(pgid) = libc::pid_t::try_from(self.child.id()) else {
            let _ = self.child.kill();
            return;
        };
        // SAFETY: kill(2) has no memory-safety preconditions. The group id is our child's pid,
        // which leads its own group (process_group(0)) and is not reaped yet, so the id cannot
        // have been reused: only the emulator and what it started are signalled.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }

    fn kill_and_wait(&mut self) -> Result<ExitStatus> {
        self.kill();
        let status = self.child.wait().context("waiting for the emulator")?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// Follows a growing file.
struct Tail {
    file: Option<File>,
    data: Vec<u8>,
}

impl Tail {
    /// Reads what was appended; returns the new bytes' start in `data`.
    fn poll(&mut self, path: &Path) -> usize {
        let start = self.data.len();
        if self.file.is_none() {
            self.file = File::open(path).ok();
        }
        if let Some(f) = &mut self.file {
            let _ = f.read_to_end(&mut self.data);
        }
        start
    }
}

/// Starts `cmd` in its own process group and watches it and the `serial` log until it exits, a
/// stop marker has been in the log for `grace`, the timeout passes, or a signal arrives. The
/// caller sets up `cmd`'s standard streams. An old `serial` file is removed first.
pub fn run(mut cmd: Command, serial: &Path, opts: &RunOptions) -> Result<Outcome> {
    match std::fs::remove_file(serial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", serial.display())),
    }
    cmd.process_group(0);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let mut group = Group {
        child,
        reaped: false,
    };
    let mut tail = Tail {
        file: None,
        data: Vec::new(),
    };
    let mut stop: Option<(String, Instant)> = None;
    let mut stdout = std::io::stdout();
    let mut mark_times: Vec<Option<Duration>> = vec![None; opts.marks.len()];
    let mut link = None;
    let mut script = Script::default();
    let mut keys = None;
    let mut _raw = None;
    if let Some(plan) = &opts.input {
        let child = &mut group.child;
        match SerialLink::connect(plan.port, serial, CONNECT_TIMEOUT, || {
            matches!(child.try_wait(), Ok(None))
        }) {
            Ok(l) => link = Some(l),
            // An emulator that exited before it listened (Bochs without a free VNC port) ends
            // the run below like any early exit, so that the caller may start it again.
            Err(_) if !matches!(group.child.try_wait(), Ok(None)) => {}
            Err(e) => return Err(e),
        }
        script = Script::new(plan.script.clone());
        if plan.terminal {
            _raw = Some(RawTerminal::enter());
            keys = Some(stdin_bytes());
        }
    }

    let ending = loop {
        let exited = group.child.try_wait().context("polling the emulator")?;
        if exited.is_some() {
            group.reaped = true;
        }
        let new_from = tail.poll(serial);
        if tail.data.len() > new_from {
            if opts.stream {
                let _ = stdout.write_all(&tail.data[new_from..]);
                let _ = stdout.flush();
            }
            let longest_mark = opts.marks.iter().map(|m| m.len()).max().unwrap_or(0);
            let text = String::from_utf8_lossy(&tail.data[new_from.saturating_sub(longest_mark)..]);
            for (t, m) in mark_times.iter_mut().zip(&opts.marks) {
                if t.is_none() && text.contains(m.as_str()) {
                    *t = Some(start.elapsed());
                }
            }
            if stop.is_none() {
                // Look again from a little before the new bytes: a marker may straddle reads.
                let longest = opts.stop_markers.iter().map(|m| m.len()).max().unwrap_or(0);
                let from = new_from.saturating_sub(longest);
                let seen = |m: &&String| ::tests::check::starts_a_line(&tail.data, from, m);
                if let Some(m) = opts.stop_markers.iter().find(seen) {
                    stop = Some((m.clone(), Instant::now() + opts.grace));
                }
            }
        }
        let mut escaped = false;
        if let Some(link) = &mut link {
            let due = script.due(&tail.data);
            if !due.is_empty() {
                let _ = link.send(&due);
            }
            while let Some(typed) = keys.as_ref().and_then(|k| k.try_recv().ok()) {
                let end = typed.iter().position(|&b| b == ESCAPE);
                let _ = link.send(&typed[..end.unwrap_or(typed.len())]);
                escaped |= end.is_some();
            }
        }
        if let Some(status) = exited {
            break match stop {
                Some((marker, _)) => Ending::Stopped {
                    marker,
                    status: Some(status),
                },
                None => Ending::Exited(status),
            };
        }
        if interrupted() || escaped {
            group.kill_and_wait()?;
            break Ending::Interrupted;
        }
        if let Some((marker, deadline)) = &stop {
            if Instant::now() >= *deadline {
                group.kill_and_wait()?;
                break Ending::Stopped {
                    marker: marker.clone(),
                    status: None,
                };
            }
        }
        if start.elapsed() >= opts.timeout {
            group.kill_and_wait()?;
            break Ending::TimedOut;
        }
        std::thread::sleep(opts.poll);
    };
    let wall = start.elapsed();
    // Whatever the emulator wrote last.
    let new_from = tail.poll(serial);
    if opts.stream && tail.data.len() > new_from {
        let _ = stdout.write_all(&tail.data[new_from..]);
        let _ = stdout.flush();
    }
    Ok(Outcome {
        ending,
        wall,
        log: String::from_utf8_lossy(&tail.data).into_owned(),
        mark_times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Stdio;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("xenolith-runner-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn sh(dir: &Path, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    fn opts(timeout_ms: u64) -> RunOptions {
        let mut o = RunOptions::new(Duration::from_millis(timeout_ms), false);
        o.grace = Duration::from_millis(300);
        o.poll = Duration::from_millis(20);
        o
    }

    fn alive(pid: &str) -> bool {
        Path::new(&format!("/proc/{}", pid.trim())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    }

    #[test]
    fn typed_input_reaches_the_emulator_and_an_early_exit_is_an_ending() {
        // A fake emulator that listens on the port and copies what it gets into its log.
        let dir = scratch("input");
        let port = crate::serial_link::free_port().unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let echo = std::thread::spawn(move || {
            use std::io::BufRead;
            let (c, _) = listener.accept().unwrap();
            let mut w = c.try_clone().unwrap();
            w.write_all(b"login: ").unwrap();
            let mut line = String::new();
            std::io::BufReader::new(c).read_line(&mut line).unwrap();
            w.write_all(format!("got {line}xenolith: all domains finished\r\n").as_bytes())
                .unwrap();
        });
        let mut o = opts(10_000);
        o.input = Some(InputPlan {
            port,
            script: vec![::tests::TypedInput {
                after: "login: ".into(),
                send: "root\n".into(),
            }],
            terminal: false,
        });
        let out = run(sh(&dir, "sleep 5"), &dir.join("serial.log"), &o).unwrap();
        echo.join().unwrap();
        assert!(out.log.contains("login: got root\n"), "{:?}", out.log);
        assert!(
            matches!(out.ending, Ending::Stopped { .. }),
            "{:?}",
            out.ending
        );
        // Nothing listens and the emulator is gone: an exit, not an error.
        let mut o = opts(10_000);
        o.input = Some(InputPlan {
            port: crate::serial_link::free_port().unwrap(),
            script: Vec::new(),
            terminal: false,
        });
        let out = run(sh(&dir, "exit 4"), &dir.join("serial.log"), &o).unwrap();
        assert!(
            matches!(out.ending, Ending::Exited(s) if s.code() == Some(4)),
            "{:?}",
            out.ending
        );
    }

    #[test]
    fn exits_by_itself() {
        let dir = scratch("exit");
        let cmd = sh(&dir, "printf 'hello\\r\\nworld\\r\\n' > serial.log; exit 3");
        let o = run(cmd, &dir.join("serial.log"), &opts(10_000)).unwrap();
        match o.ending {
            Ending::Exited(s) => assert_eq!(s.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(o.log, "hello\r\nworld\r\n");
    }

    #[test]
    fn stops_after_final_line() {
        let dir = scratch("final");
        let cmd = sh(
            &dir,
            "echo 'a' > serial.log; sleep 0.2; \
             echo 'xenolith: all domains finished' >> serial.log; sleep 30",
        );
        let o = run(cmd, &dir.join("serial.log"), &opts(20_000)).unwrap();
        assert!(
            matches!(&o.ending, Ending::Stopped { marker, status: None }
                if marker == "xenolith: all domains finished"),
            "{:?}",
            o.ending
        );
        assert!(o.wall < Duration::from_secs(5), "{:?}", o.wall);
        assert!(o.log.ends_with("finished\n"));
    }

    #[test]
    fn stops_after_panic() {
        let dir = scratch("panic");
        let cmd = sh(&dir, "echo 'xenolith: PANIC oops' > serial.log; sleep 30");
        let o = run(cmd, &dir.join("serial.log"), &opts(20_000)).unwrap();
        assert!(matches!(o.ending, Ending::Stopped { .. }), "{:?}", o.ending);
    }

    #[test]
    fn watchdog_kills_the_whole_group() {
        let dir = scratch("timeout");
        // The grandchild `sleep` writes its pid; it must die with the group.
        let cmd = sh(
            &dir,
            "sleep 60 & echo $! > pid; echo started > serial.log; wait",
        );
        let o = run(cmd, &dir.join("serial.log"), &opts(700)).unwrap();
        assert_eq!(o.ending, Ending::TimedOut);
        assert!(o.wall >= Duration::from_millis(700) && o.wall < Duration::from_secs(5));
        assert_eq!(o.log, "started\n");
        let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(&pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(&pid), "grandchild {pid} survived");
    }

    #[test]
    fn missing_program_is_an_error() {
        let dir = scratch("missing");
        let cmd = Command::new("/nonexistent/emulator");
        assert!(run(cmd, &dir.join("serial.log"), &opts(1000)).is_err());
    }
}
