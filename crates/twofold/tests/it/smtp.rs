//! A real SMTP server for the tests: aiosmtpd (PyPI) run by `TWOFOLD_TEST_PYTHON`, on
//! 127.0.0.1, requiring STARTTLS (a certificate from a test CA) and AUTH LOGIN/PLAIN with
//! a known username and password over TLS only. Each message received is written as one JSON
//! line (envelope, headers, decoded plain-text body). Killed by PID when dropped.

#![allow(dead_code)]

use crate::support::{make_test_ca, python};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SERVER: &str = r#"
import email, json, ssl, sys, threading
from email import policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

host, port, cert, key, user, password, out = sys.argv[1:8]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"] or ""),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset() or "",
            "body": body.get_content() if body is not None else "",
            "tls": session.ssl is not None,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    if (isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()):
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Handler(), hostname=host, port=int(port), tls_context=context,
    require_starttls=True, authenticator=authenticator, auth_require_tls=True,
)
controller.start()
print("READY", flush=True)
threading.Event().wait()
"#;

pub(crate) struct SmtpServer {
    child: Child,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// The CA that signed the server's certificate (for `smtp.ca_file`).
    pub ca_file: PathBuf,
    messages: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as the server received it.
#[derive(Debug)]
pub(crate) struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub content_type: String,
    pub charset: String,
    pub body: String,
    /// Whether it came over TLS.
    pub tls: bool,
}

impl SmtpServer {
    /// The messages received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        let Ok(text) = std::fs::read_to_string(&self.messages) else {
            return Vec::new();
        };
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).expect("a JSON line");
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                Received {
                    mail_from: s("mail_from"),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    from: s("from"),
                    to: s("to"),
                    subject: s("subject"),
                    message_id: s("message_id"),
                    content_type: s("content_type"),
                    charset: s("charset"),
                    body: s("body"),
                    tls: v["tls"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }
}

pub(crate) use crate::ports::free_tcp_port;

/// Starts aiosmtpd under `dir` with this username and password.
pub(crate) fn start(dir: &Path, username: &str, password: &str) -> SmtpServer {
    std::fs::create_dir_all(dir).expect("smtp dir");
    let tls = dir.join("tls");
    make_test_ca(&tls);
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SERVER).expect("script");
    let messages = dir.join("messages.jsonl");
    for _ in 0..5 {
        let port = free_tcp_port();
        let mut child = Command::new(python())
            .arg(&script)
            .args([
                "127.0.0.1",
                &port.to_string(),
                &tls.join("server.pem").display().to_string(),
                &tls.join("server.key").display().to_string(),
                username,
                password,
                &messages.display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} cannot run ({e}): scripts/test prepares it with aiosmtpd",
                    python()
                )
            });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("READY") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_ok() {
            return SmtpServer {
                child,
                port,
                username: username.to_owned(),
                password: password.to_owned(),
                ca_file: tls.join("ca.pem"),
                messages,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "aiosmtpd did not start: install it in the Python of TWOFOLD_TEST_PYTHON (pip install aiosmtpd; scripts/test does)"
    );
}
