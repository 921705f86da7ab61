//! aiosmtpd as the mail server the scheduler sends invitations to, and
//! python3-icalendar reading what arrived (PEERS.md's SMTP section); the
//! server is killed by PID when dropped.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Debian's Python, which has aiosmtpd and icalendar whatever `python3` is first on PATH.
pub const PYTHON: &str = "/usr/bin/python3";

/// aiosmtpd storing every mail in a Maildir; killed by PID on drop.
pub struct Smtp {
    child: Child,
}

impl Smtp {
    /// Starts aiosmtpd on 127.0.0.1:`port`, storing into `maildir`.
    pub fn start(port: u16, maildir: &Path) -> Smtp {
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd (python3-aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { child }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every stored mail as python3-icalendar reads it.
pub fn invitations(maildir: &Path) -> Vec<Value> {
    if !maildir.join("new").exists() {
        return Vec::new();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/read_invitations.py");
    let out = Command::new(PYTHON).arg(script).arg(maildir).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// Waits (at most 60 s: retries back off to 30 s) until `n` mails are stored.
pub fn wait_for_mails(maildir: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = invitations(maildir);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
