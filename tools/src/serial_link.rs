//! The emulator's serial port as a TCP socket, for runs that type into the guest: the
//! emulator listens on a local port (Bochs `mode=socket-server`, QEMU `-serial
//! tcp:...,server=on,wait=on`), the runner connects, appends everything the machine sends to
//! the serial log (which the runner follows as for a file-backed port) and writes what is to
//! be typed.
//!
//! Typed input comes from a scenario's script ([`::tests::TypedInput`]: text sent once a line
//! appears in the log) or, for `run`, from the terminal, in raw mode, where Ctrl-] ends the
//! run as it ends `xl console`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The byte that ends an interactive run (Ctrl-]), as in `xl console`.
pub const ESCAPE: u8 = 0x1d;

/// A local TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free local port")?;
    Ok(l.local_addr()?.port())
}

/// The connection to the emulator's serial port.
pub struct SerialLink {
    stream: TcpStream,
}

impl SerialLink {
    /// Connects to the emulator listening on `port` (trying again until `timeout`, or until
    /// `alive` says the emulator is gone) and starts copying what it sends to `log`.
    pub fn connect(
        port: u16,
        log: &Path,
        timeout: Duration,
        mut alive: impl FnMut() -> bool,
    ) -> Result<SerialLink> {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= timeout || !alive() => {
                    return Err(e).with_context(|| {
                        format!("connecting to the emulator's serial port 127.0.0.1:{port}")
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_nodelay(true).ok();
        let mut reader = stream.try_clone().context("cloning the serial socket")?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || file.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = file.flush();
            }
        });
        Ok(SerialLink { stream })
    }

    /// Types `bytes` into the guest's serial line.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .context("writing to the emulator's serial port")
    }
}

/// A script of typed input: each step's text is sent once its line is in the log and every
/// step before it was sent.
#[derive(Debug, Clone, Default)]
pub struct Script {
    steps: Vec<::tests::TypedInput>,
    next: usize,
}

impl Script {
    /// The script of `steps`.
    pub fn new(steps: Vec<::tests::TypedInput>) -> Self {
        Script { steps, next: 0 }
    }

    /// What is to be typed now that the log is `log`: the texts of the next steps whose lines
    /// are there (in order).
    pub fn due(&mut self, log: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(step) = self.steps.get(self.next) {
            if find(log, step.after.as_bytes()).is_none() {
                break;
            }
            out.extend_from_slice(step.send.as_bytes());
            self.next += 1;
        }
        out
    }

    /// Steps not sent yet.
    pub fn remaining(&self) -> usize {
        self.steps.len() - self.next
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The terminal in raw mode while this lives (restored when dropped); nothing when standard
/// input is not a terminal.
pub struct RawTerminal {
    saved: Option<libc::termios>,
}

impl RawTerminal {
    /// Puts standard input in raw mode if it is a terminal.
    pub fn enter() -> RawTerminal {
        // SAFETY: isatty, tcgetattr, cfmakeraw and tcsetattr only read and write the
        // termios struct we pass, which lives on this stack frame, for file descriptor 0.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawTerminal { saved: None };
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawTerminal { saved: None };
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            // Keep output processing: the log's line ends stay as they are.
            t.c_oflag = saved.c_oflag;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return RawTerminal { saved: None };
            }
            RawTerminal { saved: Some(saved) }
        }
    }

    /// Whether the terminal is in raw mode.
    pub fn is_raw(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `enter` on descriptor 0.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}

/// Standard input, read by a thread: what was typed arrives on the receiver.
pub fn stdin_bytes() -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(after: &str, send: &str) -> ::tests::TypedInput {
        ::tests::TypedInput {
            after: after.into(),
            send: send.into(),
        }
    }

    #[test]
    fn script_steps_follow_the_log_in_order() {
        let mut s = Script::new(vec![step("one", "a\n"), step("two", "b\n"), step("3", "c")]);
        assert_eq!(s.due(b"boot\n"), b"");
        // A later step's line does not send it before the earlier ones.
        assert_eq!(s.due(b"boot\ntwo\n"), b"");
        assert_eq!(s.due(b"boot\ntwo\none\n"), b"a\nb\n");
        assert_eq!(s.remaining(), 1);
        assert_eq!(s.due(b"boot\ntwo\none\n3"), b"c");
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.due(b"boot\ntwo\none\n3"), b"");
    }

    #[test]
    fn link_copies_to_the_log_and_sends() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("xenolith-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("serial.log");
        let _ = std::fs::remove_file(&log);
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"hello\r\n").unwrap();
            let mut got = [0u8; 3];
            c.read_exact(&mut got).unwrap();
            got
        });
        let mut link = SerialLink::connect(port, &log, Duration::from_secs(5), || true).unwrap();
        link.send(b"ls\r").unwrap();
        assert_eq!(&server.join().unwrap(), b"ls\r");
        let start = Instant::now();
        while std::fs::read(&log).unwrap_or_default() != b"hello\r\n" {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "log never written"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
