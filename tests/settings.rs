//! Settings from a TOML file, environment overrides, and an operator's own
//! certificate for the API.

mod common;
use common::*;
use std::process::{Command, Stdio};

fn wait_port(port: u16) -> bool {
    eventually(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
}

#[test]
fn toml_file_sets_listen_address_data_dir_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = dir.path().join("data");
    let file = dir.path().join("confero.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\nadmin_user = \"ops\"\nadmin_password = \"from-file\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["run", "--config", file.to_str().unwrap()])
        .env_remove("CONFERO_DATA_DIR")
        .env_remove("CONFERO_API_LISTEN")
        .env_remove("CONFERO_ADMIN_PASSWORD")
        .env_remove("CONFERO_ADMIN_USER")
        // Off the default ports, which something else may hold.
        .env("CONFERO_SIP_LISTEN", "127.0.0.1:0")
        .env("CONFERO_WEB", "off")
        .env("CONFERO_C2W_LINKS", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_port(port));
    let status = agent()
        .get(format!("https://127.0.0.1:{port}/api/v1/system/status"))
        .basic_auth("ops", Some("from-file"))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    assert!(data.join("confero.db").exists());
    child.kill().unwrap();
    child.wait().unwrap();

    // A bad file is a clear start-up error, not a panic.
    std::fs::write(&file, "api_listen = \"nowhere\"\n").unwrap();
    let out = Command::new(binary()).args(["run", "--config", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_configured_certificate_is_served_and_the_generated_one_is_kept() {
    // Let one instance make a key pair, then hand it to another as an operator's own.
    let first = Confero::start();
    let cert = first.data_dir.join("api-cert.pem");
    let key = first.data_dir.join("api-key.pem");
    let pem = std::fs::read(&cert).unwrap();
    let first = first.restart();
    assert_eq!(std::fs::read(&cert).unwrap(), pem, "the self-signed certificate survives a restart");

    let other = tempfile::tempdir().unwrap();
    let second = Confero::start_in(
        other.path(),
        &[("CONFERO_TLS_CERT", cert.to_str().unwrap()), ("CONFERO_TLS_KEY", key.to_str().unwrap())],
    );
    assert!(!other.path().join("api-cert.pem").exists());
    // A client that trusts only that certificate (no "accept invalid") connects.
    let strict = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let status = strict
        .get(format!("https://127.0.0.1:{}/api/v1/system/status", second.port))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    drop(first);
}
