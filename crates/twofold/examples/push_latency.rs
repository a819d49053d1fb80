//! Measures the mobile app's push (`scripts/bench-push` runs it): prints numbers, asserts
//! nothing.
//!
//! - `latency`: `--count` sign-ins through the SDK, each approved with the real
//!   `twofold-authenticator approve ID --number N`; the time from starting that command to
//!   the authentication reading `approved` (polled every 10 ms, as a page asking often
//!   would). p50, p99 and the worst.
//! - `idle`: `--devices` long-polls (`GET /app/v1/requests?wait=25`, each signed, each on its
//!   own TLS connection, as idle phones hold them) against the server whose PID is given;
//!   the server's resident memory before and while they are held.
//!
//! ```text
//! push_latency latency --url https://127.0.0.1:18443 --ca-file data/tls/cert.pem \
//!     --sdk app1:SECRET --username ada --authenticator target/release/twofold-authenticator \
//!     --authenticator-dir /tmp/authn --count 100
//! push_latency idle --url https://127.0.0.1:18443 --ca-file data/tls/cert.pem \
//!     --sdk app1:SECRET --username ada --server-pid 1234 --devices 1000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use twofold_engine::app as protocol;

#[derive(Default)]
struct Args {
    mode: String,
    url: String,
    ca_file: String,
    sdk: String,
    username: String,
    authenticator: String,
    authenticator_dir: String,
    count: usize,
    server_pid: u32,
    devices: usize,
}

fn args() -> Args {
    let mut a = Args {
        count: 100,
        devices: 1000,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    a.mode = it.next().expect("latency or idle");
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value().trim_end_matches('/').to_owned(),
            "--ca-file" => a.ca_file = value(),
            "--sdk" => a.sdk = value(),
            "--username" => a.username = value(),
            "--authenticator" => a.authenticator = value(),
            "--authenticator-dir" => a.authenticator_dir = value(),
            "--count" => a.count = value().parse().expect("a number"),
            "--server-pid" => a.server_pid = value().parse().expect("a PID"),
            "--devices" => a.devices = value().parse().expect("a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn client(ca_file: &str) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(ca_file).expect("the server's certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a PEM certificate")).expect("a root");
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .http1_only()
        .build()
        .expect("client")
}

struct Sdk {
    http: reqwest::Client,
    url: String,
    user: String,
    secret: String,
}

impl Sdk {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.secret))
            .json(&body)
            .send()
            .await
            .expect("SDK call");
        let status = r.status();
        let v: Value = r.json().await.expect("JSON");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.secret))
            .send()
            .await
            .expect("SDK call")
            .json()
            .await
            .expect("JSON")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(a: &Args, sdk: &Sdk) {
    let authn = |args: &[&str]| {
        Command::new(&a.authenticator)
            .arg("--data-dir")
            .arg(&a.authenticator_dir)
            .arg("--ca-file")
            .arg(&a.ca_file)
            .args(args)
            .output()
            .expect("twofold-authenticator")
    };
    let mut latencies = Vec::with_capacity(a.count);
    for _ in 0..a.count {
        let started = sdk
            .post(
                "/sdk/v1/authentications",
                json!({"username": a.username, "method": "mobile_app", "client_ip": "203.0.113.9"}),
            )
            .await;
        let id = started["id"].as_str().expect("an id").to_owned();
        let number = started["number"].as_u64().expect("a number");
        let pending = authn(&["pending", "--json"]);
        let requests: Value = serde_json::from_slice(&pending.stdout).expect("pending --json");
        let request = requests
            .as_array()
            .and_then(|r| r.first())
            .expect("the request reached the authenticator");
        let request_id = request["id"].as_str().unwrap().to_owned();
        let t0 = Instant::now();
        let mut approve = Command::new(&a.authenticator)
            .arg("--data-dir")
            .arg(&a.authenticator_dir)
            .arg("--ca-file")
            .arg(&a.ca_file)
            .args(["approve", &request_id, "--number", &number.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("approve");
        loop {
            let now = sdk.get(&format!("/sdk/v1/authentications/{id}")).await;
            match now["state"].as_str() {
                Some("approved") => break,
                Some("pending") => tokio::time::sleep(Duration::from_millis(10)).await,
                other => panic!("the sign-in ended {other:?}: {now}"),
            }
        }
        latencies.push(t0.elapsed());
        let _ = approve.wait();
    }
    latencies.sort();
    println!(
        "approve (twofold-authenticator) to sign-in approved, {} sign-ins: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A device of this driver's own: its key and id.
async fn activate(a: &Args, sdk: &Sdk) -> (ed25519_dalek::SigningKey, String) {
    let activation = sdk
        .post(
            &format!("/sdk/v1/users/{}/devices/activation", a.username),
            json!({}),
        )
        .await;
    let code = activation["code"].as_str().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&rand_bytes());
    let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let normalized = protocol::normalize_activation_code(code).unwrap();
    let proof = key.sign(protocol::activation_proof_string(&normalized, &public).as_bytes());
    let r = sdk
        .http
        .post(format!("{}/app/v1/activate", a.url))
        .json(&json!({
            "code": code, "algorithm": "ed25519", "public_key": public,
            "name": "bench", "proof": URL_SAFE_NO_PAD.encode(proof.to_bytes()),
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "activation: {v}");
    (key, v["device_id"].as_str().unwrap().to_owned())
}

fn rand_bytes() -> [u8; 32] {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b
}

async fn idle(a: &Args, sdk: &Sdk) {
    let (key, device) = activate(a, sdk).await;
    let before = rss_kib(a.server_pid);
    let path = "/app/v1/requests?wait=25";
    let mut polls = Vec::with_capacity(a.devices);
    for _ in 0..a.devices {
        let http = client(&a.ca_file);
        let nonce = URL_SAFE_NO_PAD.encode(&rand_bytes()[..16]);
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let message = protocol::request_signing_string("GET", path, &ts, &nonce, b"");
        let signature = URL_SAFE_NO_PAD.encode(key.sign(message.as_bytes()).to_bytes());
        let request = http
            .get(format!("{}{path}", a.url))
            .header("Twofold-Device", &device)
            .header("Twofold-Timestamp", ts)
            .header("Twofold-Nonce", nonce)
            .header("Twofold-Signature", signature);
        polls.push(tokio::spawn(async move {
            let r = request.send().await;
            (http, r.map(|r| r.status().as_u16()))
        }));
    }
    // Every poll sent and held (none waits more than 25 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = rss_kib(a.server_pid);
    let held = a.devices as f64;
    println!(
        "{} idle long-polls: server RSS {} KiB before, {} KiB while held: {:.0} KiB per 1,000 connected devices",
        a.devices,
        before,
        during,
        (during.saturating_sub(before)) as f64 / held * 1000.0
    );
    let mut statuses = std::collections::BTreeMap::new();
    for p in polls {
        let (_, status) = p.await.unwrap();
        *statuses
            .entry(
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string()),
            )
            .or_insert(0) += 1;
    }
    println!("  their answers after the wait: {statuses:?}");
}

#[tokio::main]
async fn main() {
    let a = args();
    let (user, secret) = a.sdk.split_once(':').expect("--sdk NAME:SECRET");
    let sdk = Sdk {
        http: client(&a.ca_file),
        url: a.url.clone(),
        user: user.to_owned(),
        secret: secret.to_owned(),
    };
    match a.mode.as_str() {
        "latency" => latency(&a, &sdk).await,
        "idle" => idle(&a, &sdk).await,
        other => panic!("{other}: use latency or idle"),
    }
}
