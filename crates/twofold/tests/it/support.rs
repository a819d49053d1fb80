//! Boots the real `twofold` binary per test: its own data directory, its own port, real TLS.

#![allow(dead_code)]

use reqwest::redirect::Policy;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Once};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_twofold");

/// Which store a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The administration URL of the test PostgreSQL server that `scripts/test` starts.
pub fn postgres_admin_url() -> String {
    std::env::var("TWOFOLD_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "TWOFOLD_TEST_POSTGRES_URL is not set: these tests need the PostgreSQL server that \
             scripts/test installs and starts. Run the tests with scripts/test."
        )
    })
}

/// A fresh, empty PostgreSQL database for one test; returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = format!("twofold_test_{}", hex(&rand_bytes()));
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs SQL as the PostgreSQL superuser on the admin database.
pub async fn postgres_admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("admin connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

fn rand_bytes() -> [u8; 8] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut b = [0u8; 8];
    let mixed = nanos
        ^ (std::process::id() as u128) << 64
        ^ COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as u128;
    b.copy_from_slice(
        &(mixed as u64)
            .wrapping_mul(0x9E3779B97F4A7C15)
            .to_le_bytes(),
    );
    b
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The environment of one server and of the CLI commands that go with it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: HashMap<String, String>,
    /// Run the portal on its own (`twofold portal`), reaching the server through the SDK.
    pub split: bool,
    /// In the split topology, the server keeps its generated self-signed certificate and
    /// the portal trusts that (instead of a test CA).
    pub split_self_signed: bool,
}

impl Env {
    pub async fn new(backend: Backend) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vars = HashMap::new();
        vars.insert(
            "TWOFOLD_DATA_DIR".to_owned(),
            dir.path().join("data").display().to_string(),
        );
        vars.insert("TWOFOLD_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
        vars.insert("TWOFOLD_LOG__LEVEL".to_owned(), "warn".to_owned());
        // The wizard's tests enrol an authenticator app without choosing among methods;
        // the phone tests set the methods they need.
        vars.insert(
            "TWOFOLD_SETTINGS__SELECTABLE_METHODS".to_owned(),
            r#"["oath"]"#.to_owned(),
        );
        if backend == Backend::Postgres {
            vars.insert(
                "TWOFOLD_DATABASE__URL".to_owned(),
                fresh_postgres_database().await,
            );
        }
        Env {
            dir,
            vars,
            split: false,
            split_self_signed: false,
        }
    }

    /// The split deployment: `start()` runs the server with a certificate from a test CA,
    /// creates a service account, and runs `twofold portal` trusting the CA through
    /// `ca_file`; the returned handle is the portal's.
    pub fn split(mut self) -> Env {
        self.split = true;
        self
    }

    /// The split deployment as the original documented it: the server's own self-signed
    /// certificate, imported on the portal's host (here `ca_file = data_dir/tls/cert.pem`).
    pub fn split_trusting_self_signed(mut self) -> Env {
        self.split = true;
        self.split_self_signed = true;
        self
    }

    /// Signs in from a trusted address (the tests' 127.0.0.1), so the password is the only
    /// factor: for the tests of the password step, sessions and pages.
    pub fn password_only(self) -> Env {
        self.set("TWOFOLD_SETTINGS__TRUSTED_IP_RANGES", "[\"127.0.0.0/8\"]")
    }

    pub fn set(mut self, key: &str, value: &str) -> Env {
        self.vars.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "tester")
            .envs(&self.vars)
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs a CLI command with `stdin` and returns its output.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twofold");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wait twofold")
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "twofold {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_user(&self, username: &str, password: &str) {
        self.cli_ok(
            &["user", "add", username, "--password-stdin"],
            &format!("{password}\n"),
        );
    }

    /// Starts the deployment: `twofold serve`, and in the split topology `twofold portal`
    /// in front of it. Returns the handle of what browsers talk to.
    pub fn start(&self) -> Server {
        if !self.split {
            return self.start_process(&["serve"], &self.vars, self.data_dir());
        }
        let tls = self.dir.path().join("test-ca");
        let mut server_vars = self.vars.clone();
        let ca_file = if self.split_self_signed {
            self.data_dir().join("tls/cert.pem")
        } else {
            make_test_ca(&tls);
            server_vars.insert(
                "TWOFOLD_TLS__CERT_FILE".into(),
                tls.join("server.pem").display().to_string(),
            );
            server_vars.insert(
                "TWOFOLD_TLS__KEY_FILE".into(),
                tls.join("server.key").display().to_string(),
            );
            tls.join("ca.pem")
        };
        let server = self.start_process(&["serve"], &server_vars, self.data_dir());
        let secret = self
            .cli_ok(
                &["service-account", "add", "portal-host", "--role", "portal"],
                "",
            )
            .trim()
            .to_owned();
        let portal_dir = self.dir.path().join("portal");
        let mut portal_vars: HashMap<String, String> = self
            .vars
            .iter()
            .filter(|(k, _)| {
                k.starts_with("TWOFOLD_LIMITS__")
                    || k.starts_with("TWOFOLD_HTTP__")
                    || k.starts_with("TWOFOLD_LOG__")
                    || *k == "NOTIFY_SOCKET"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        portal_vars.insert("TWOFOLD_DATA_DIR".into(), portal_dir.display().to_string());
        portal_vars.insert("TWOFOLD_LISTEN".into(), "127.0.0.1:0".into());
        portal_vars.insert("TWOFOLD_SDK__URL".into(), server.base.clone());
        portal_vars.insert("TWOFOLD_SDK__USERNAME".into(), "portal-host".into());
        portal_vars.insert("TWOFOLD_SDK__PASSWORD".into(), secret);
        portal_vars.insert("TWOFOLD_SDK__CA_FILE".into(), ca_file.display().to_string());
        let mut portal = self.start_process(&["portal"], &portal_vars, portal_dir);
        portal.behind = Some(Box::new(server));
        portal
    }

    fn start_process(
        &self,
        args: &[&str],
        vars: &HashMap<String, String>,
        data_dir: PathBuf,
    ) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "tester")
            .envs(vars)
            .current_dir(self.dir.path());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twofold serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_log = Arc::new(std::sync::Mutex::new(String::new()));
        let log = stderr_log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let mut banner = String::new();
        let mut base = None;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            banner.push_str(&line);
            banner.push('\n');
            if let Some(url) = line.trim().strip_prefix("portal:") {
                base = Some(url.trim().trim_end_matches('/').to_owned());
                // The rest of the banner follows at once.
                while let Ok(more) = rx.recv_timeout(Duration::from_millis(200)) {
                    banner.push_str(&more);
                    banner.push('\n');
                }
                break;
            }
        }
        let Some(base) = base else {
            let _ = child.kill();
            let err = stderr_log.lock().map(|s| s.clone()).unwrap_or_default();
            panic!("the server did not start.\nstdout:\n{banner}\nstderr:\n{err}");
        };
        Server {
            child,
            base,
            banner,
            data_dir,
            stderr: stderr_log,
            behind: None,
        }
    }

    /// Starts one more node of the same deployment: `twofold serve` with the same variables
    /// (database, keys, settings) but its own data directory, `name` in the test directory.
    /// It gets a copy of the certificate the first node generated, as nodes behind one load
    /// balancer share one, so a browser trusts both: start the first node before this one.
    pub fn start_another_node(&self, name: &str) -> Server {
        let data_dir = self.dir.path().join(name);
        let tls = self.data_dir().join("tls");
        std::fs::create_dir_all(data_dir.join("tls")).expect("the node's tls directory");
        for entry in std::fs::read_dir(&tls).expect("the first node's tls directory") {
            let entry = entry.expect("a tls file");
            std::fs::copy(entry.path(), data_dir.join("tls").join(entry.file_name()))
                .expect("copy a tls file");
        }
        let mut vars = self.vars.clone();
        vars.insert("TWOFOLD_DATA_DIR".into(), data_dir.display().to_string());
        self.start_process(&["serve"], &vars, data_dir)
    }

    /// Runs `twofold serve` expecting it to refuse to start; returns stderr.
    pub fn start_fails(&self) -> String {
        let mut child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("the server started although it should have refused");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        assert!(!out.status.success(), "exit status should be non-zero");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub banner: String,
    pub data_dir: PathBuf,
    stderr: Arc<std::sync::Mutex<String>>,
    /// In the split topology, the MFA server behind this portal.
    pub behind: Option<Box<Server>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's generated certificate (what a device's `--ca-file` trusts).
    pub fn cert_file(&self) -> PathBuf {
        self.data_dir.join("tls/cert.pem")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM (as `systemctl stop` does) and waits for the exit, 30 seconds at most.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A browser-like client: keeps cookies, follows no redirects (tests look at them), and
    /// trusts only this server's own certificate.
    pub fn client(&self) -> reqwest::Client {
        client_trusting(
            &self.data_dir.join("tls/cert.pem"),
            self.base.starts_with("https"),
        )
    }

    /// A client that speaks HTTP/2 only, as browsers do over TLS: an early answer (413)
    /// resets one stream instead of breaking a half-sent HTTP/1.1 request.
    pub fn http2_client(&self) -> reqwest::Client {
        builder_trusting(&self.data_dir.join("tls/cert.pem"), true)
            .http2_prior_knowledge()
            .build()
            .expect("client")
    }
}

pub fn client_trusting(cert: &Path, https: bool) -> reqwest::Client {
    builder_trusting(cert, https).build().expect("client")
}

fn builder_trusting(cert: &Path, https: bool) -> reqwest::ClientBuilder {
    install_crypto();
    let mut builder = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30));
    if https {
        let pem = std::fs::read(cert).expect("server certificate");
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile_certs(&pem) {
            roots.add(c).expect("add root");
        }
        let mut tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        builder = builder.use_preconfigured_tls(tls);
    }
    builder
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

/// The value of `<input name="NAME" value="…">` in a page (the first one).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Gets the sign-in page and returns its CSRF token.
pub async fn sign_in_token(client: &reqwest::Client, server: &Server) -> String {
    let page = client
        .get(server.url("/sign-in"))
        .send()
        .await
        .expect("GET /sign-in");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    // The sign-in form's token is the one after the form's action.
    let form = &html[html.find("action=\"/sign-in\"").expect("sign-in form")..];
    input_value(form, "csrf_token").expect("csrf token")
}

/// Posts the sign-in form; returns the response.
pub async fn sign_in(
    client: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = sign_in_token(client, server).await;
    client
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", password),
            ("next", "/account"),
        ])
        .send()
        .await
        .expect("POST /sign-in")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

// ---- outside OTP clients: oathtool, zbarimg, pyotp, python-pskc ----

fn run_tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): scripts/test installs it; run the tests with scripts/test"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time, once at least five seconds remain of the current 30-second TOTP
/// step. An enrolment code computed at this time reaches the server within its own step:
/// one computed just before a step ends may be checked in the next one, and the server
/// then remembers one step of clock drift, which moves the window a later "next code"
/// must fall in.
pub fn mid_step_now() -> i64 {
    let left = 30 - unix_now().rem_euclid(30);
    if left < 5 {
        std::thread::sleep(std::time::Duration::from_secs(left as u64 + 1));
    }
    unix_now()
}

/// The TOTP code `oathtool` computes for a base32 secret at `at` (Unix seconds).
pub fn oathtool_totp(secret_b32: &str, at: i64) -> String {
    run_tool(
        "oathtool",
        &["--totp", "-b", secret_b32, "-N", &format!("@{at}")],
        None,
    )
}

/// The HOTP code `oathtool` computes for a hex secret at `counter`.
pub fn oathtool_hotp_hex(secret_hex: &str, counter: u64) -> String {
    run_tool(
        "oathtool",
        &["--hotp", "-c", &counter.to_string(), secret_hex],
        None,
    )
}

/// The Python interpreter with pyotp and python-pskc (scripts/test prepares it).
pub fn python() -> String {
    std::env::var("TWOFOLD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs a Python program; returns its stdout.
pub fn python_run(program: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", program];
    all.extend_from_slice(args);
    run_tool(&python(), &all, None)
}

/// The code pyotp computes from an `otpauth://` URI at `at`: proves the URI is one an
/// ordinary authenticator library accepts.
pub fn pyotp_code(uri: &str, at: i64) -> String {
    python_run(
        "import sys, pyotp; otp = pyotp.parse_uri(sys.argv[1]); print(otp.at(int(sys.argv[2])))",
        &[uri, &at.to_string()],
    )
}

/// Decodes the QR code of an SVG image the way a phone would see it: rendered to PNG
/// (`rsvg-convert`) and read by `zbarimg`.
pub fn decode_qr_svg(svg: &str, dir: &Path) -> String {
    let svg_path = dir.join("qr.svg");
    let png_path = dir.join("qr.png");
    std::fs::write(&svg_path, svg).expect("write svg");
    run_tool(
        "rsvg-convert",
        &[
            "-w",
            "400",
            "-h",
            "400",
            "-b",
            "white",
            "-o",
            &png_path.display().to_string(),
            &svg_path.display().to_string(),
        ],
        None,
    );
    run_tool(
        "zbarimg",
        &["--nodbus", "--raw", "-q", &png_path.display().to_string()],
        None,
    )
}

/// The `secret=` parameter of an otpauth URI.
pub fn uri_secret(uri: &str) -> String {
    url::Url::parse(uri)
        .expect("otpauth URI")
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
        .expect("secret parameter")
}

/// The text between `start` (inclusive) and `end` (inclusive) in a page.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let a = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page:\n{html}"));
    let b = html[a..]
        .find(end)
        .map(|b| a + b + end.len())
        .expect("end marker");
    &html[a..b]
}

/// Undoes HTML escaping of text in a page (askama escapes &, <, >, " and ').
pub fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A test CA and a server certificate it signed for 127.0.0.1 (openssl): the split
/// deployment trusts the server through the CA, as an operator with an internal CA would.
pub fn make_test_ca(dir: &Path) {
    std::fs::create_dir_all(dir).expect("ca dir");
    let d = |f: &str| dir.join(f).display().to_string();
    run_tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Twofold test CA",
            "-keyout",
            &d("ca.key"),
            "-out",
            &d("ca.pem"),
        ],
        None,
    );
    run_tool(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &d("server.key"),
            "-out",
            &d("server.csr"),
        ],
        None,
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").expect("ext");
    run_tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &d("server.csr"),
            "-CA",
            &d("ca.pem"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &d("ext.cnf"),
            "-out",
            &d("server.pem"),
        ],
        None,
    );
}

/// The same scenario in either topology.
pub fn topology(env: Env, split: bool) -> Env {
    if split { env.split() } else { env }
}

/// The `twofold-authenticator` binary of this workspace (the app's reference client), built
/// once if the test run has not built it yet.
pub fn authenticator_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(BIN).parent().expect("the binary's directory");
            let bin = dir.join("twofold-authenticator");
            if !bin.is_file() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new(cargo)
                    .args([
                        "build",
                        "-p",
                        "twofold-authenticator",
                        "--bin",
                        "twofold-authenticator",
                    ])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .expect("run cargo build for twofold-authenticator");
                assert!(status.success(), "twofold-authenticator did not build");
            }
            assert!(bin.is_file(), "{} is missing", bin.display());
            bin
        })
        .clone()
}

/// Runs `twofold-authenticator` with its own data directory, trusting `server`'s
/// certificate.
pub fn authenticator(data_dir: &Path, ca_file: &Path, args: &[&str]) -> Output {
    Command::new(authenticator_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--ca-file")
        .arg(ca_file)
        .args(args)
        .output()
        .expect("run twofold-authenticator")
}
