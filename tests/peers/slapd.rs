//! OpenLDAP's slapd as the directory LDAP users come from (PEERS.md): a
//! slapd.conf and an MDB database made with slapadd in a temporary
//! directory, listening on 127.0.0.1 on a free port, changed with
//! ldapmodify, killed by PID when dropped. Never the system's slapd service.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=confero,dc=test";
/// Where the people are.
pub const PEOPLE: &str = "ou=people,dc=confero,dc=test";
/// The account a sync binds as (read access to everything).
pub const READER_DN: &str = "cn=reader,dc=confero,dc=test";
/// Its password.
pub const READER_PASSWORD: &str = "reader-secret";
const ADMIN_DN: &str = "cn=admin,dc=confero,dc=test";
const ADMIN_PASSWORD: &str = "admin-secret";

/// A running slapd.
pub struct Slapd {
    child: Option<Child>,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its LDAPS port, when started with a certificate.
    pub tls_port: Option<u16>,
}

/// One person of the test directory.
pub struct Person<'a> {
    /// `uid`, also the RDN.
    pub uid: &'a str,
    /// `cn`.
    pub cn: &'a str,
    /// `mail`.
    pub mail: &'a str,
    /// `employeeNumber` (the tests' call IDs).
    pub number: &'a str,
    /// `userPassword`.
    pub password: &'a str,
}

/// The LDIF of a person's entry.
pub fn person_ldif(p: &Person) -> String {
    format!(
        "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\nmail: {mail}\n\
         employeeNumber: {number}\nuserPassword: {password}\n\n",
        uid = p.uid,
        cn = p.cn,
        mail = p.mail,
        number = p.number,
        password = p.password
    )
}

impl Slapd {
    /// Makes the database in `dir` with these people (and a group entry the
    /// tests' filters leave out) and starts slapd on a free port.
    pub fn start(dir: &Path, people: &[Person]) -> Slapd {
        Slapd::start_with_tls(dir, people, None)
    }

    /// As [`Slapd::start`], and with `tls` (certificate and key PEM files)
    /// also on an LDAPS port.
    pub fn start_with_tls(dir: &Path, people: &[Person], tls: Option<(&Path, &Path)>) -> Slapd {
        std::fs::create_dir_all(dir.join("db")).expect("slapd dir");
        let tls_lines = tls
            .map(|(cert, key)| {
                format!("TLSCertificateFile {}\nTLSCertificateKeyFile {}\n", cert.display(), key.display())
            })
            .unwrap_or_default();
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "{tls_lines}include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 pidfile {d}/slapd.pid\n\
                 database mdb\n\
                 maxsize 16777216\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PASSWORD}\n\
                 directory {d}/db\n\
                 access to attrs=userPassword by self write by anonymous auth by * none\n\
                 access to * by users read by * none\n",
                d = dir.display()
            ),
        )
        .expect("slapd.conf");
        let mut ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Confero\ndc: confero\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
             userPassword: {READER_PASSWORD}\n\n\
             dn: cn=staff,{PEOPLE}\nobjectClass: groupOfNames\ncn: staff\nmember: {READER_DN}\n\n"
        );
        for p in people {
            ldif.push_str(&person_ldif(p));
        }
        let data = dir.join("data.ldif");
        std::fs::write(&data, ldif).expect("ldif");
        let out = Command::new("slapadd").arg("-f").arg(&conf).arg("-l").arg(&data).output().expect("slapadd (slapd)");
        assert!(out.status.success(), "slapadd: {}", String::from_utf8_lossy(&out.stderr));
        let port = crate::common::free_port();
        let tls_port = tls.map(|_| crate::common::free_port());
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some(p) = tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let log = std::fs::File::create(dir.join("slapd.log")).expect("slapd log");
        // `-d 0`: in the foreground, so the child's PID is slapd's.
        let child = Command::new("slapd")
            .arg("-f")
            .arg(&conf)
            .args(["-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd");
        let slapd = Slapd { child: Some(child), dir: dir.to_path_buf(), port, tls_port };
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in std::iter::once(port).chain(tls_port) {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < deadline, "slapd did not listen on {p}: {}", slapd.log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        slapd
    }

    /// slapd's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
    }

    /// Applies an LDIF of changes (`changetype: ...`) as the directory's
    /// administrator.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port), "-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (ldap-utils)");
        child.stdin.take().expect("stdin").write_all(ldif.as_bytes()).expect("ldif to ldapmodify");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(out.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
