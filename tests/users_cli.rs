//! MMP-style user administration with the real binary, and the first-start
//! password.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn confero(dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env("CONFERO_DATA_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn user_add_list_remove_take_effect_on_the_running_api() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _) = confero(dir.path(), &["user", "add", "alice", "api"], "alice-pass\n");
    assert!(ok);
    let (ok, _) = confero(dir.path(), &["user", "add", "mallory", "root"], "x\n");
    assert!(!ok, "only admin and api roles");
    let c = Confero::start_in(dir.path(), &[]);
    let (_, list) = confero(dir.path(), &["user", "list"], "");
    assert!(list.contains("alice\tapi"), "{list}");
    assert!(list.contains("admin\tadmin"), "{list}");
    let as_alice = |pw: &str| c.send_with("GET", "/api/v1/coSpaces", None, Some(("alice", pw)), None).status;
    assert_eq!(as_alice("alice-pass"), 200);
    assert_eq!(as_alice("nope"), 401);
    let (ok, _) = confero(dir.path(), &["user", "add", "alice", "api"], "changed\n");
    assert!(ok);
    assert_eq!(as_alice("alice-pass"), 401, "old password refused at once");
    assert_eq!(as_alice("changed"), 200);
    let (ok, _) = confero(dir.path(), &["user", "remove", "alice"], "");
    assert!(ok);
    assert_eq!(as_alice("changed"), 401, "removed user refused at once");
    let db = std::fs::read(dir.path().join("confero.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("changed"), "password stored in clear");
}

#[test]
fn first_start_without_users_prints_a_generated_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out_path = dir.path().join("stdout.txt");
    let start = || {
        Command::new(binary())
            .arg("run")
            .env("CONFERO_DATA_DIR", dir.path())
            .env("CONFERO_API_LISTEN", format!("127.0.0.1:{port}"))
            // Off the default ports, which something else may hold.
            .env("CONFERO_SIP_LISTEN", "127.0.0.1:0")
            .env("CONFERO_WEB", "off")
            .env("CONFERO_C2W_LINKS", "off")
            .env_remove("CONFERO_ADMIN_PASSWORD")
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    assert!(eventually(|| std::fs::read_to_string(&out_path).unwrap_or_default().contains("password")));
    assert!(eventually(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));
    let printed = std::fs::read_to_string(&out_path).unwrap();
    let password = printed.split("with password ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(password.len() >= 16);
    let status = agent()
        .get(format!("https://127.0.0.1:{port}/api/v1/system/status"))
        .basic_auth("admin", Some(&password))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = start();
    assert!(eventually(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!std::fs::read_to_string(&out_path).unwrap().contains("password"), "printed only once");
}
