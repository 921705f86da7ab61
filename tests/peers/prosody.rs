//! Prosody 0.12 as the XMPP server a call bridge attaches to (PEERS.md): a
//! configuration in a temporary directory, its component port on loopback
//! (plain, and TLS-wrapped through `net_multiplex` when asked), killed by
//! PID when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prosody.
pub struct Prosody {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    /// The plain component port.
    pub component_port: u16,
    /// The TLS-wrapped port (a multiplexed one that serves components too).
    pub tls_port: Option<u16>,
}

/// What a Prosody is started with.
pub struct ProsodySetup<'a> {
    /// Its host (`VirtualHost`), e.g. `localhost`.
    pub domain: &'a str,
    /// The component's JID, e.g. `conf.localhost`.
    pub component: &'a str,
    /// The component's secret.
    pub secret: &'a str,
    /// Certificate and key for the TLS port; none: no TLS port.
    pub tls: Option<(&'a Path, &'a Path)>,
}

impl Prosody {
    /// Starts Prosody in `dir` on free ports.
    pub fn start(dir: &Path, setup: &ProsodySetup) -> Prosody {
        std::fs::create_dir_all(dir).expect("prosody dir");
        let component_port = crate::common::free_port();
        let tls_port = setup.tls.map(|_| crate::common::free_port());
        let c2s_port = crate::common::free_port();
        let config = dir.join("prosody.cfg.lua");
        let mut text = format!(
            "pidfile = \"{d}/prosody.pid\"\n\
             data_path = \"{d}\"\n\
             log = {{ {{ levels = {{ min = \"info\" }}, to = \"file\", filename = \"{d}/prosody.log\" }} }}\n\
             interfaces = {{ \"127.0.0.1\" }}\n\
             c2s_ports = {{ {c2s_port} }}\n\
             s2s_ports = {{ }}\n\
             modules_disabled = {{ \"s2s\" }}\n\
             component_ports = {{ {component_port} }}\n\
             component_interfaces = {{ \"127.0.0.1\" }}\n\
             run_as_root = true\n",
            d = dir.display()
        );
        if let (Some((cert, key)), Some(port)) = (setup.tls, tls_port) {
            text.push_str(&format!(
                "modules_enabled = {{ \"net_multiplex\" }}\n\
                 ssl_ports = {{ {port} }}\n\
                 ssl = {{ certificate = \"{}\", key = \"{}\" }}\n",
                cert.display(),
                key.display()
            ));
        }
        text.push_str(&format!(
            "VirtualHost \"{}\"\nComponent \"{}\"\n  component_secret = \"{}\"\n",
            setup.domain, setup.component, setup.secret
        ));
        std::fs::write(&config, text).expect("prosody config");
        let mut p = Prosody { child: None, dir: dir.to_path_buf(), config, component_port, tls_port };
        p.launch();
        p
    }

    fn launch(&mut self) {
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prosody (apt install prosody)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let up = std::net::TcpStream::connect(("127.0.0.1", self.component_port)).is_ok()
                && self.tls_port.is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok());
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("prosody did not listen; log:\n{}", self.log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it and starts it again on the same ports.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A self-signed certificate naming `names`, written as `<stem>.pem` and
/// `<stem>.key` in `dir`.
pub fn certificate(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let (cert_path, key_path) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}
