//! A real OpenLDAP server for the directory tests: Debian's `slapd` on 127.0.0.1, with
//! StartTLS and LDAPS on a test CA, the `memberof` overlay (with `refint`) and the `ppolicy`
//! overlay, seeded with a small company:
//!
//! - `uid=alice` and `uid=bob` in `cn=mfa-users,ou=groups`;
//! - `uid=carol`, in no group;
//! - `uid=dave` in the group but locked by the password policy (a disabled account);
//! - `cn=twofold`, the service account, which may read everything but passwords.
//!
//! It runs in its own temporary directory and is killed (by its PID) when dropped.

#![allow(dead_code)]

use crate::support::make_test_ca;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SLAPD: &str = "/usr/sbin/slapd";
pub(crate) const BASE_DN: &str = "dc=corp,dc=example";
pub(crate) const PEOPLE_DN: &str = "ou=people,dc=corp,dc=example";
pub(crate) const GROUP_DN: &str = "cn=mfa-users,ou=groups,dc=corp,dc=example";
pub(crate) const SERVICE_DN: &str = "cn=twofold,dc=corp,dc=example";
pub(crate) const SERVICE_PASSWORD: &str = "service-account secret 7f3a";
const ROOT_DN: &str = "cn=admin,dc=corp,dc=example";
const ROOT_PASSWORD: &str = "root secret 91c2";

/// The directory password of a seeded or added user.
pub(crate) fn password_of(user: &str) -> String {
    format!("{user} directory Pw 4821")
}

/// The DN of a user under `ou=people`.
pub(crate) fn user_dn(user: &str) -> String {
    format!("uid={user},{PEOPLE_DN}")
}

pub(crate) struct Slapd {
    dir: tempfile::TempDir,
    pub(crate) ldap_port: u16,
    pub(crate) ldaps_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// A started and seeded server.
    pub(crate) fn new() -> Slapd {
        assert!(
            Path::new(SLAPD).exists(),
            "{SLAPD} is missing: install the Debian packages slapd and ldap-utils (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        make_test_ca(&dir.path().join("tls"));
        let mut slapd = Slapd {
            dir,
            ldap_port: 0,
            ldaps_port: 0,
            child: None,
        };
        slapd.write_config();
        // Ports are picked free, but another process may take one first: try a few pairs.
        for _ in 0..5 {
            slapd.ldap_port = free_port();
            slapd.ldaps_port = free_port();
            if slapd.try_start() {
                slapd.seed();
                return slapd;
            }
        }
        panic!("slapd did not start: {}", slapd.log());
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub(crate) fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    pub(crate) fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The `[ldap]` section as `TWOFOLD_` variables, for StartTLS (`ldap://` upgraded) or
    /// LDAPS, with sign-in limited to the group, and `primary_authentication = "ldap"`.
    pub(crate) fn twofold_env(&self, ldaps: bool) -> Vec<(String, String)> {
        let mut vars = vec![
            (
                "TWOFOLD_SETTINGS__PRIMARY_AUTHENTICATION",
                "ldap".to_owned(),
            ),
            (
                "TWOFOLD_LDAP__URL",
                if ldaps {
                    self.ldaps_url()
                } else {
                    self.ldap_url()
                },
            ),
            ("TWOFOLD_LDAP__STARTTLS", (!ldaps).to_string()),
            (
                "TWOFOLD_LDAP__CA_FILE",
                self.ca_file().display().to_string(),
            ),
            ("TWOFOLD_LDAP__BIND_DN", SERVICE_DN.to_owned()),
            ("TWOFOLD_LDAP__BIND_PASSWORD", SERVICE_PASSWORD.to_owned()),
            ("TWOFOLD_LDAP__BASE_DN", BASE_DN.to_owned()),
            ("TWOFOLD_LDAP__GROUP_DN", GROUP_DN.to_owned()),
            ("TWOFOLD_LDAP__TIMEOUT_SECONDS", "3".to_owned()),
        ];
        vars.sort();
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let tls = d.join("tls");
        let config = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb.la
moduleload memberof.la
moduleload refint.la
moduleload ppolicy.la
pidfile {pid}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw "{ROOT_PASSWORD}"
directory {db}
maxsize 268435456
overlay memberof
memberof-refint TRUE
overlay refint
refint_attributes member
limits dn.exact="{SERVICE_DN}" size=unlimited time=unlimited
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{BASE_DN}"
ppolicy_use_lockout
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{SERVICE_DN}" read by self read by * none
"#,
            pid = d.join("slapd.pid").display(),
            ca = tls.join("ca.pem").display(),
            cert = tls.join("server.pem").display(),
            key = tls.join("server.key").display(),
            db = d.join("db").display(),
        );
        std::fs::write(d.join("slapd.conf"), config).expect("slapd.conf");
    }

    /// What slapd logged: connections and operations (`-d stats`), one line each.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Starts slapd on its ports and waits until it accepts connections; `false` when it
    /// exited (a port taken).
    fn try_start(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("log");
        let child = Command::new(SLAPD)
            .args([
                "-d",
                "stats",
                "-f",
                &self.dir.path().join("slapd.conf").display().to_string(),
                "-h",
                &format!("{}/ {}/", self.ldap_url(), self.ldaps_url()),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{SLAPD} cannot run ({e}): install the Debian package slapd")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(self.ldap_port) && up(self.ldaps_port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Kills the server (as a crash would).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports, with the same data.
    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none(), "slapd is already running");
        for _ in 0..20 {
            if self.try_start() {
                return;
            }
            // The old listener's sockets may linger a moment.
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("slapd did not start again: {}", self.log());
    }

    fn tool(&self, program: &str, extra: &[&str], input: &str) -> String {
        let mut args = vec!["-x", "-H", "", "-D", ROOT_DN, "-w", ROOT_PASSWORD];
        let url = self.ldap_url();
        args[2] = &url;
        args.extend_from_slice(extra);
        let mut child = Command::new(program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} cannot run ({e}): install the Debian package ldap-utils")
            });
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("ldif");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds entries (LDIF) as the root DN.
    pub(crate) fn ldapadd(&self, ldif: &str) {
        self.tool("ldapadd", &[], ldif);
    }

    /// Changes entries (LDIF with `changetype: modify`) as the root DN.
    pub(crate) fn ldapmodify(&self, ldif: &str) {
        self.tool("ldapmodify", &[], ldif);
    }

    /// Adds `count` users `{prefix}0`, `{prefix}1`, …, members of the group, each with an
    /// email and the password [`password_of`]`(prefix)`.
    pub(crate) fn add_users(&self, prefix: &str, count: usize) {
        let hash = ssha(&password_of(prefix));
        let mut ldif = String::new();
        let mut members = String::new();
        for i in 0..count {
            let name = format!("{prefix}{i}");
            ldif.push_str(&format!(
                "dn: {}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\nmail: {name}@corp.example\nuserPassword: {hash}\n\n",
                user_dn(&name)
            ));
            members.push_str(&format!("member: {}\n", user_dn(&name)));
        }
        self.ldapadd(&ldif);
        self.ldapmodify(&format!(
            "dn: {GROUP_DN}\nchangetype: modify\nadd: member\n{members}\n"
        ));
    }

    /// The DNs a search as the service account finds with `filter` (as given, unescaped).
    pub(crate) fn search_dns(&self, filter: &str) -> Vec<String> {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-H",
                &self.ldap_url(),
                "-D",
                SERVICE_DN,
                "-w",
                SERVICE_PASSWORD,
                "-b",
                BASE_DN,
                filter,
                "1.1",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!("ldapsearch cannot run ({e}): install the Debian package ldap-utils")
            });
        assert!(
            out.status.success(),
            "ldapsearch {filter} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("dn: "))
            .map(str::to_owned)
            .collect()
    }

    fn seed(&self) {
        let mut ldif = format!(
            "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Corp\ndc: corp\n\n\
             dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=policies,{BASE_DN}\nobjectClass: organizationalUnit\nou: policies\n\n\
             dn: cn=default,ou=policies,{BASE_DN}\nobjectClass: pwdPolicy\nobjectClass: device\ncn: default\n\
             pwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0\n\n\
             dn: {SERVICE_DN}\nobjectClass: person\ncn: twofold\nsn: service\nuserPassword: {}\n\n",
            ssha(SERVICE_PASSWORD)
        );
        ldif.push_str(&person(
            "alice",
            &password_of("alice"),
            "mail: alice@corp.example\ntelephoneNumber: +33 1 23 45 67 89\nmobile: +33 6 12 34 56 78\npreferredLanguage: fr\n",
        ));
        ldif.push_str(&person(
            "bob",
            &password_of("bob"),
            "mail: bob@corp.example\n",
        ));
        ldif.push_str(&person("carol", &password_of("carol"), ""));
        ldif.push_str(&person(
            "dave",
            &password_of("dave"),
            "pwdAccountLockedTime: 000001010000Z\n",
        ));
        ldif.push_str(&format!(
            "dn: {GROUP_DN}\nobjectClass: groupOfNames\ncn: mfa-users\nmember: {}\nmember: {}\nmember: {}\n\n",
            user_dn("alice"),
            user_dn("bob"),
            user_dn("dave"),
        ));
        self.ldapadd(&ldif);
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn person(name: &str, password: &str, extra: &str) -> String {
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\nuserPassword: {}\n{extra}\n",
        user_dn(name),
        ssha(password)
    )
}

/// A salted SHA-1 password hash as `slappasswd` makes it.
fn ssha(password: &str) -> String {
    let out = Command::new("/usr/sbin/slappasswd")
        .args(["-h", "{SSHA}", "-s", password])
        .output()
        .unwrap_or_else(|e| {
            panic!("slappasswd cannot run ({e}): install the Debian package slapd")
        });
    assert!(out.status.success(), "slappasswd failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A port below the ephemeral range that nothing listens on now, and that no other test
/// in this process was given.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut x = u64::from(nanos)
            ^ (u64::from(std::process::id()) << 32)
            ^ COUNTER
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let port = 20000 + (x % 12000) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}
