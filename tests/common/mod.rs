//! The real `confero` binary on loopback, for integration tests. Each test
//! gets its own data directory and port; the process is killed by PID when
//! the handle drops.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "test-password";

/// A running Confero.
pub struct Confero {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub log: PathBuf,
}

/// An answer, as the client saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// The ports tests choose for what they start (Confero's API and SIP, the
/// peers' listeners): below the kernel's ephemeral range (32768 on), so no
/// socket bound to port 0 and no outgoing connection — Confero's media
/// sockets, the peers', every HTTP client's — can take one between the
/// test's choice and its use; and under the peers' fixed RTP blocks (22_000 on).
const CHOSEN_PORTS: std::ops::Range<u16> = 12_000..22_000;

/// A port of [`CHOSEN_PORTS`], picked at random, for which `free` holds.
pub fn chosen_port(free: impl Fn(u16) -> bool) -> u16 {
    let span = CHOSEN_PORTS.end - CHOSEN_PORTS.start;
    for _ in 0..1000 {
        let p = CHOSEN_PORTS.start + rand::random::<u16>() % span;
        if free(p) {
            return p;
        }
    }
    panic!("no free port in {CHOSEN_PORTS:?}");
}

/// A TCP port nothing listens on.
pub fn free_port() -> u16 {
    chosen_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_confero")
}

impl Confero {
    /// Starts Confero on a fresh data directory.
    pub fn start() -> Confero {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().to_path_buf();
        let mut c = Confero::start_in(&dir, &[]);
        c._temp = Some(temp);
        c
    }

    /// Starts Confero on `dir`, with extra environment variables.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Confero {
        Confero::launch(dir, env, None)
    }

    /// Starts Confero on `dir` with its open-file limit (soft and hard) set
    /// to `files` by `prlimit`, which execs it: the PID is Confero's.
    pub fn start_with_open_files(dir: &Path, env: &[(&str, &str)], files: u64) -> Confero {
        Confero::launch(dir, env, Some(files))
    }

    fn launch(dir: &Path, env: &[(&str, &str)], open_files: Option<u64>) -> Confero {
        let port = free_port();
        let log = dir.join(format!("confero-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = match open_files {
            Some(files) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={files}:{files}")).arg(binary());
                cmd
            }
            None => Command::new(binary()),
        };
        cmd.arg("run")
            .env("CONFERO_DATA_DIR", dir)
            .env("CONFERO_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("CONFERO_SIP_LISTEN", "127.0.0.1:0")
            .env("CONFERO_ADMIN_PASSWORD", PASSWORD)
            // The web bridge listens on fixed ports by default and the call
            // bridge links to every webBridges object: tests that want them
            // turn them on (tests/web.rs).
            .env("CONFERO_WEB", "off")
            .env("CONFERO_C2W_LINKS", "off")
            // Likewise the component link to an XMPP server (tests/xmpp.rs).
            .env("CONFERO_XMPP_LINK", "off")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start confero");
        let c = Confero { child: Some(child), port, data_dir: dir.to_path_buf(), _temp: None, log };
        c.wait_ready();
        c
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("confero did not listen on {}; log:\n{}", self.port, self.log_text());
    }

    /// Keeps `dir` (the data directory) until this process is dropped.
    #[allow(dead_code)]
    pub fn keep_dir(&mut self, dir: tempfile::TempDir) {
        self._temp = Some(dir);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM")
    }

    /// Sends `signal` (as `kill` spells it) and waits for the exit.
    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg(signal).arg(child.id().to_string()).status();
        child.wait().expect("wait")
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops this process and starts another on the same data directory.
    pub fn restart(mut self) -> Confero {
        self.terminate();
        let mut next = Confero::start_in(&self.data_dir.clone(), &[]);
        next._temp = self._temp.take();
        next
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.port, path)
    }

    /// Sends a request; `auth` false leaves out credentials.
    pub fn send(&self, method: &str, path: &str, body: Option<&[u8]>, auth: bool) -> Answer {
        self.send_with(method, path, body, if auth { Some((USER, PASSWORD)) } else { None }, None)
    }

    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        creds: Option<(&str, &str)>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut req = agent().request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), self.url(path));
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", content_type.unwrap_or("application/x-www-form-urlencoded"))
                .body(b.to_vec());
        }
        let resp = req.send().expect("request");
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let status = resp.status().as_u16();
        let location = header("location");
        let www_authenticate = header("www-authenticate");
        let content_type = header("content-type");
        let body = resp.text().expect("body");
        Answer { status, location, www_authenticate, content_type, body }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, true)
    }

    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.send("POST", path, Some(body.as_bytes()), true)
    }

    pub fn put(&self, path: &str, body: &str) -> Answer {
        self.send("PUT", path, Some(body.as_bytes()), true)
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None, true)
    }

    /// POSTs and returns the new object's id (the Location's last segment).
    pub fn create(&self, path: &str, body: &str) -> String {
        let a = self.post(path, body);
        assert_eq!(a.status, 200, "POST {path} {body}: {}", a.body);
        id_from_location(a.location.as_deref().expect("Location"))
    }
}

impl Drop for Confero {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn id_from_location(location: &str) -> String {
    location.rsplit('/').next().unwrap_or_default().to_string()
}

pub fn agent() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The text of the first `<name>` element (with or without attributes), if any.
pub fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let plain = format!("<{name}>");
    let with_attributes = format!("<{name} ");
    let start = match (xml.find(&plain), xml.find(&with_attributes)) {
        (Some(a), Some(b)) if b < a => b + xml[b..].find('>')? + 1,
        (Some(a), _) => a + plain.len(),
        (None, Some(b)) => b + xml[b..].find('>')? + 1,
        (None, None) => return None,
    };
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// The `total` attribute of a list.
pub fn total(xml: &str) -> usize {
    let start = xml.find("total=\"").expect("total") + 7;
    let end = xml[start..].find('"').expect("quote") + start;
    xml[start..end].parse().expect("number")
}

/// Every `id="..."` in a document, in order.
pub fn ids(xml: &str) -> Vec<String> {
    xml.match_indices(" id=\"").map(|(i, _)| xml[i + 5..i + 41].to_string()).collect()
}

/// Polls `f` until it is true or 20 s pass.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A CA and a certificate for `names` (host names or addresses) signed by
/// it: (CA, certificate, key), in PEM.
pub fn ca_and_leaf(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
