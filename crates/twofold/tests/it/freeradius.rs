//! A real FreeRADIUS server (Debian `freeradius`) for the tests: its own configuration in the
//! test's temporary directory, one virtual server on 127.0.0.1, one client (127.0.0.1) that
//! must sign its requests with Message-Authenticator, and users with cleartext passwords.
//! Stopped (killed by PID) when the value is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/sbin/freeradius";
const STOCK_CONFIG: &str = "/etc/freeradius/3.0";

/// How the server is set up.
pub(crate) struct RadiusSetup<'a> {
    /// `(username, password)` pairs.
    pub users: &'a [(&'a str, &'a str)],
    /// The shared secret of the 127.0.0.1 client.
    pub secret: &'a str,
    /// Add a Message-Authenticator to every answer. FreeRADIUS 3.2.1 does not on its own:
    /// without it, a client that insists on one hears nothing valid.
    pub signs_answers: bool,
}

impl Default for RadiusSetup<'_> {
    fn default() -> Self {
        Self {
            users: &[],
            secret: "radius-shared-secret",
            signs_answers: true,
        }
    }
}

pub(crate) struct FreeRadius {
    child: Child,
    pub port: u16,
    pub secret: String,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FreeRadius {
    /// `127.0.0.1:PORT`.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server has written so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Starts FreeRADIUS under `dir` (a fresh directory of the test's), waits until it is ready.
pub(crate) fn start(dir: &Path, setup: &RadiusSetup) -> FreeRadius {
    assert!(
        Path::new(BINARY).exists(),
        "{BINARY} is missing: install the Debian packages freeradius and freeradius-utils (scripts/test does)"
    );
    for _ in 0..5 {
        if let Some(server) = try_start(dir, setup, crate::ports::free_udp_port()) {
            return server;
        }
    }
    panic!("FreeRADIUS did not start (see the messages above)");
}

fn try_start(dir: &Path, setup: &RadiusSetup, port: u16) -> Option<FreeRadius> {
    let raddb = dir.join("raddb");
    let _ = std::fs::remove_dir_all(&raddb);
    let copied = Command::new("cp")
        .args(["-a", STOCK_CONFIG])
        .arg(&raddb)
        .status()
        .expect("cp");
    assert!(copied.success(), "cannot copy {STOCK_CONFIG}");
    let _ = std::fs::remove_file(raddb.join("mods-enabled/eap"));
    for entry in std::fs::read_dir(raddb.join("sites-enabled")).expect("sites-enabled") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove site");
    }
    let run = dir.join("radius-run");
    let logs = dir.join("radius-log");
    std::fs::create_dir_all(&run).expect("run dir");
    std::fs::create_dir_all(&logs).expect("log dir");

    let main = std::fs::read_to_string(raddb.join("radiusd.conf")).expect("radiusd.conf");
    let main: String = main
        .lines()
        .map(|line| {
            let t = line.trim_start();
            if t.starts_with("logdir =") {
                format!("logdir = {}", logs.display())
            } else if t.starts_with("run_dir =") {
                format!("run_dir = {}", run.display())
            } else if t.starts_with("user = ") || t.starts_with("group = ") {
                // Stay the user the tests run as: the files are theirs.
                format!("#{line}")
            } else if t.starts_with("reject_delay =") {
                "\treject_delay = 0".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(raddb.join("radiusd.conf"), main).expect("radiusd.conf");
    std::fs::write(
        raddb.join("clients.conf"),
        format!(
            "client tests {{\n\tipaddr = 127.0.0.1\n\tsecret = \"{}\"\n\trequire_message_authenticator = yes\n}}\n",
            setup.secret
        ),
    )
    .expect("clients.conf");
    let sign = if setup.signs_answers {
        "\t\tupdate reply {\n\t\t\tMessage-Authenticator := 0x00\n\t\t}\n"
    } else {
        ""
    };
    std::fs::write(
        raddb.join("sites-enabled/twofold"),
        format!(
            "server twofold {{\n\
             \tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {port}\n\t}}\n\
             \tauthorize {{\n\t\tfiles\n\t\tpap\n\t}}\n\
             \tauthenticate {{\n\t\tAuth-Type PAP {{\n\t\t\tpap\n\t\t}}\n\t}}\n\
             \tpost-auth {{\n{sign}\t\tPost-Auth-Type REJECT {{\n{sign}\t\t}}\n\t}}\n\
             }}\n"
        ),
    )
    .expect("site");
    let users: String = setup
        .users
        .iter()
        .map(|(name, password)| format!("\"{name}\" Cleartext-Password := \"{password}\"\n"))
        .collect();
    std::fs::write(raddb.join("mods-config/files/authorize"), users).expect("users");

    let mut child = Command::new(BINARY)
        .arg("-f")
        .arg("-d")
        .arg(&raddb)
        .args(["-l", "stdout"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{BINARY} cannot run ({e}): install the Debian package freeradius")
        });
    let log = Arc::new(Mutex::new(String::new()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<bool>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.clone();
        let ready_tx = ready_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("Ready to process requests") {
                    let _ = ready_tx.send(true);
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if ready_rx.recv_timeout(Duration::from_millis(100)) == Ok(true) {
            return Some(FreeRadius {
                child,
                port,
                secret: setup.secret.to_owned(),
                dir: raddb,
                log,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "FreeRADIUS exited ({status}) on port {port}:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            );
            return None;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "FreeRADIUS was not ready in 20 s:\n{}",
        log.lock().map(|l| l.clone()).unwrap_or_default()
    );
    None
}
