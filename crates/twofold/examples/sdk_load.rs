//! Load driver for the Web Service SDK: OTP verifications as an application makes them,
//! `POST /sdk/v1/authentications` then `POST /sdk/v1/authentications/{id}/answer`, over TLS
//! with keep-alive. Prints requests per second and p50/p99 latency of whole verifications;
//! asserts nothing. Each worker owns one user with an HOTP hardware token and sends
//! counter-ahead codes (each code is used once), or wrong codes with `--wrong`.
//!
//! ```text
//! cargo run --release --example sdk_load -- --url https://127.0.0.1:18443 \
//!     --ca-file data/tls/cert.pem --account bench --secret "$SECRET" \
//!     --concurrency 32 --seconds 10 [--wrong] [--setup]
//! ```
//! `--password PW` sends that password with every start, so each verification checks a
//! password too (the local store's or the directory's, as `primary_authentication` says);
//! `--setup` then gives the users that local password.
//! `--url` may be given once per node of a cluster: worker `w` then talks to node `w % n`.
//! `--setup` creates the users and tokens first (the server needs
//! `settings.allow_third_party_oath_token = true`, and for `--wrong` the highest lockout
//! threshold and high second-factor rate limits, or users lock as a real attacker's would;
//! every 50th answer for a user is then a right code, which clears its counters).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use twofold_engine::oath::{self, Algorithm};
use twofold_sdk::client::{ClientConfig, SdkClient};
use twofold_sdk::{
    AuthenticationAnswer, AuthenticationStart, OathEnroll, OtpAnswer, TokenImport, UserCreate,
};

const SECRET_HEX: &str = "3132333435363738393031323334353637383930";

struct Args {
    /// One or more nodes; worker `w` talks to node `w % n` (load spread across them).
    urls: Vec<String>,
    ca_file: String,
    account: String,
    secret: String,
    concurrency: usize,
    seconds: u64,
    wrong: bool,
    setup: bool,
    users: usize,
    password: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        urls: Vec::new(),
        ca_file: String::new(),
        account: String::new(),
        secret: String::new(),
        concurrency: 1,
        seconds: 10,
        wrong: false,
        setup: false,
        users: 64,
        password: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.urls.push(value()),
            "--ca-file" => a.ca_file = value(),
            "--account" => a.account = value(),
            "--secret" => a.secret = value(),
            "--concurrency" => a.concurrency = value().parse().expect("a number"),
            "--seconds" => a.seconds = value().parse().expect("a number"),
            "--users" => a.users = value().parse().expect("a number"),
            "--wrong" => a.wrong = true,
            "--setup" => a.setup = true,
            "--password" => a.password = Some(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn code(counter: u64) -> String {
    oath::hotp(
        &hex::decode(SECRET_HEX).unwrap(),
        counter,
        Algorithm::Sha1,
        6,
    )
    .unwrap()
}

async fn setup(client: &SdkClient, users: usize, password: Option<String>) {
    let mut csv = String::from("serial,secret,type,digits,period_or_counter\n");
    for i in 0..users {
        csv.push_str(&format!("LOAD-{i},hex:{SECRET_HEX},hotp,6,0\n"));
    }
    client
        .import_tokens(&TokenImport {
            content: csv,
            key: None,
            password: None,
        })
        .await
        .expect("import tokens");
    for i in 0..users {
        let username = format!("load{i}");
        client
            .create_user(&UserCreate {
                username: username.clone(),
                email: None,
                phone: None,
                password: password.clone(),
                language: None,
            })
            .await
            .expect("create user");
        client
            .enroll_oath(
                &username,
                &OathEnroll::Hardware {
                    serial: format!("LOAD-{i}"),
                    code: Some(code(0)),
                },
            )
            .await
            .expect("associate token");
        let _ = client
            .patch_user(
                &username,
                &twofold_sdk::UserPatch {
                    method: Some("oath".into()),
                    ..Default::default()
                },
            )
            .await;
    }
    // Finish enrolment: a user with a token and the oath method is enrolled once marked so;
    // the SDK treats a user with an active token as ready when the server completes it.
    eprintln!("set up {users} users with HOTP tokens");
}

#[tokio::main]
async fn main() {
    let a = args();
    assert!(
        a.users >= a.concurrency,
        "--users must be at least --concurrency (one user per worker)"
    );
    assert!(!a.urls.is_empty(), "--url is needed (once per node)");
    let clients: Vec<SdkClient> = a
        .urls
        .iter()
        .map(|url| {
            SdkClient::new(&ClientConfig {
                url: url.clone(),
                username: a.account.clone(),
                password: a.secret.clone(),
                ca_file: Some(a.ca_file.clone().into()),
                pin_sha256: None,
                timeout: Duration::from_secs(30),
                retries: 0,
            })
            .expect("client")
        })
        .collect();
    let client = clients[0].clone();
    if a.setup {
        setup(&client, a.users, a.password.clone()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let counters: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..a.users)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    // Where each user's counter stands: ask the server by sending nothing; we track it
    // ourselves from a state file so that runs can follow one another.
    let state_file = std::env::temp_dir().join(format!(
        "twofold-sdk-load-{}.counters",
        a.urls[0].replace([':', '/'], "_")
    ));
    if let Ok(text) = std::fs::read_to_string(&state_file) {
        for (i, line) in text.lines().enumerate().take(a.users) {
            counters[i].store(
                line.parse().unwrap_or(0),
                std::sync::atomic::Ordering::SeqCst,
            );
        }
    }
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let client = clients[worker % clients.len()].clone();
        let counters = counters.clone();
        let wrong = a.wrong;
        let users = a.users;
        let concurrency = a.concurrency;
        let password = a.password.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            // Each worker has users of its own (w, w + c, w + 2c, …), so that a user's HOTP
            // codes arrive in order, and takes them in turn, so that wrong codes spread over
            // them as they would over a population.
            let concurrency = concurrency.max(1);
            let mine: Vec<usize> = (worker..users).step_by(concurrency).collect();
            let mut turn = 0usize;
            while Instant::now() < deadline {
                let user = mine[turn % mine.len()];
                // With --wrong, every 50th answer for a user is a right code: it clears the
                // user's failure counters, as a real user's sign-in would, so the run
                // measures wrong codes checked rather than a locked account's refusals
                // (the hard cap stops 100 failures in a row). It is not counted.
                let clearing = wrong && (turn / mine.len()) % 50 == 49;
                turn += 1;
                let started = Instant::now();
                let auth = client
                    .start_authentication(&AuthenticationStart {
                        username: format!("load{user}"),
                        password: password.clone(),
                        method: None,
                        phone: None,
                        client_ip: None,
                        context: Default::default(),
                    })
                    .await;
                let auth = match auth {
                    Ok(auth) => auth,
                    Err(e) => {
                        errors += 1;
                        if errors < 3 {
                            eprintln!("start refused: {e:?}");
                        }
                        continue;
                    }
                };
                let otp = if wrong && !clearing {
                    "000000".to_owned()
                } else {
                    let c = counters[user].fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    code(c)
                };
                let answer = client
                    .answer(
                        &auth.id,
                        &AuthenticationAnswer::Otp(OtpAnswer { otp, pin: None }),
                    )
                    .await;
                match (wrong, answer) {
                    (true, Ok(a)) if clearing && a.state == "approved" => {}
                    (false, Ok(a)) if a.state == "approved" => latencies.push(started.elapsed()),
                    (true, Err(e)) if e.code() == Some("invalid_code") => {
                        latencies.push(started.elapsed())
                    }
                    (_, other) => {
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
    let text: Vec<String> = counters
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::SeqCst).to_string())
        .collect();
    let _ = std::fs::write(&state_file, text.join("\n"));
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let per_second = all.len() as f64 / a.seconds as f64;
    println!(
        "{}{} verifications, concurrency {}: {:.0} verifications/s ({:.0} requests/s), p50 {:.2} ms, p99 {:.2} ms, {} errors",
        if a.password.is_some() {
            "password + "
        } else {
            ""
        },
        if a.wrong { "wrong-code" } else { "successful" },
        a.concurrency,
        per_second,
        per_second * 2.0,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        errors
    );
}
