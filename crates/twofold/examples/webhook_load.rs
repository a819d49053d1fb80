//! Load driver for Twilio's webhooks: inbound text messages posted to
//! `POST /hooks/twilio/sms` as Twilio posts them, each signed (`X-Twilio-Signature`) with
//! the auth token over the public address, each with its own `MessageSid` (so none is a
//! replay), from numbers with no text waiting for a reply. So every request is checked
//! whole: the signature, the once-only receipt written to the store, the sender looked up.
//! Over TLS with keep-alive; prints webhooks per second and p50/p99 latency; asserts
//! nothing.
//!
//! ```text
//! cargo run --release --example webhook_load -- --url https://127.0.0.1:18743 \
//!     --ca-file data/tls/cert.pem --token "$AUTH_TOKEN" --public-url https://mfa.example.com \
//!     --concurrency 32 --seconds 10
//! ```
//! `--wrong-signature` signs with another token: what an attacker's flood costs (403s).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use twofold_server::channels::twilio::signature;

struct Args {
    url: String,
    ca_file: String,
    token: String,
    public_url: String,
    concurrency: usize,
    seconds: u64,
    wrong_signature: bool,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        ca_file: String::new(),
        token: String::new(),
        public_url: String::new(),
        concurrency: 32,
        seconds: 10,
        wrong_signature: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--ca-file" => a.ca_file = value(),
            "--token" => a.token = value(),
            "--public-url" => a.public_url = value(),
            "--concurrency" => a.concurrency = value().parse().expect("a number"),
            "--seconds" => a.seconds = value().parse().expect("a number"),
            "--wrong-signature" => a.wrong_signature = true,
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
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[tokio::main]
async fn main() {
    let a = Arc::new(args());
    let http = client(&a.ca_file);
    let counter = Arc::new(AtomicU64::new(0));
    let run = rand_tag();
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let (a, http, counter, run) = (a.clone(), http.clone(), counter.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let token = if a.wrong_signature {
                "not-the-auth-token".to_owned()
            } else {
                a.token.clone()
            };
            let signed_url = format!("{}/hooks/twilio/sms", a.public_url.trim_end_matches('/'));
            let url = format!("{}/hooks/twilio/sms", a.url.trim_end_matches('/'));
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let params: Vec<(String, String)> = vec![
                    (
                        "AccountSid".into(),
                        "AC0123456789abcdef0123456789abcdef".into(),
                    ),
                    ("ApiVersion".into(), "2010-04-01".into()),
                    ("Body".into(), "123456".into()),
                    (
                        "From".into(),
                        format!("+3361{:07}", (worker as u64 * 7919 + n) % 10_000_000),
                    ),
                    ("MessageSid".into(), format!("SM{run}{n:020}")),
                    ("NumMedia".into(), "0".into()),
                    ("NumSegments".into(), "1".into()),
                    ("SmsSid".into(), format!("SM{run}{n:020}")),
                    ("To".into(), "+15005550006".into()),
                ];
                let sig = signature::signature(&token, &signed_url, &params);
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .header("X-Twilio-Signature", sig)
                    .form(&params)
                    .send()
                    .await;
                let expected = if a.wrong_signature { 403 } else { 200 };
                match response {
                    Ok(r) if r.status().as_u16() == expected => {
                        let _ = r.bytes().await;
                        latencies.push(started.elapsed());
                    }
                    other => {
                        errors += 1;
                        if errors < 3 {
                            eprintln!("unexpected: {other:?}");
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} inbound-text webhooks, concurrency {}: {:.0} webhooks/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        if a.wrong_signature {
            "forged"
        } else {
            "signed"
        },
        a.concurrency,
        all.len() as f64 / a.seconds as f64,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        errors
    );
}

/// A tag that keeps this run's message ids apart from an earlier run's.
fn rand_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:012x}", nanos % (1 << 48))
}
