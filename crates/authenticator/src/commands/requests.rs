//! `pending`, `watch`, `approve` and `deny`: the requests waiting for the user's answer.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use twofold_authenticator::client::{ClientError, Device, Http, unix_now};
use twofold_authenticator::protocol::{
    Answer, AnswerRequest, LONG_POLL_SECONDS, PendingRequest, RequestContext,
};
use twofold_authenticator::store::Account;

use super::{Context, rfc3339};
use crate::cli::{ApproveArgs, DenyArgs, Direct};

/// A request as `pending --json` prints it.
#[derive(Debug, Serialize)]
struct PendingJson<'a> {
    account: &'a str,
    device_id: &'a str,
    id: &'a str,
    nonce: &'a str,
    numbers: &'a [u8],
    number_matching: bool,
    pin_required: bool,
    context: &'a RequestContext,
    created_at: i64,
    expires_at: i64,
}

/// The requests waiting on each account (`wait=0`), asked of every server together, in the
/// accounts' order.
async fn fetch_all(
    http: &Http,
    accounts: &[Account],
) -> Vec<(Account, Result<Vec<PendingRequest>, ClientError>)> {
    let mut asked = tokio::task::JoinSet::new();
    for (index, account) in accounts.iter().enumerate() {
        let device = Device::new(http, account);
        asked.spawn(async move {
            let requests = match device {
                Ok(device) => device.requests(0).await,
                Err(e) => Err(e),
            };
            (index, requests)
        });
    }
    let mut results: Vec<Option<Result<Vec<PendingRequest>, ClientError>>> =
        accounts.iter().map(|_| None).collect();
    while let Some(joined) = asked.join_next().await {
        if let Ok((index, requests)) = joined
            && let Some(slot) = results.get_mut(index)
        {
            *slot = Some(requests);
        }
    }
    accounts
        .iter()
        .cloned()
        .zip(results)
        .filter_map(|(account, result)| result.map(|r| (account, r)))
        .collect()
}

pub async fn pending(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let accounts = context.accounts(None)?;
    let http = context.http()?;
    let results = fetch_all(&http, &accounts).await;
    let now = unix_now();

    let mut failed = false;
    let mut seen = std::collections::HashSet::new();
    let mut found: Vec<(Account, PendingRequest)> = Vec::new();
    for (account, result) in results {
        match result {
            Ok(requests) => {
                for request in requests {
                    // Two devices of one user see the same request: show it once.
                    if seen.insert(request.id.clone()) {
                        found.push((account.clone(), request));
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {} ({}): {e}", account.label, account.server_url);
            }
        }
    }

    if json {
        let rows: Vec<PendingJson<'_>> = found
            .iter()
            .map(|(account, request)| PendingJson {
                account: &account.label,
                device_id: &account.device_id,
                id: &request.id,
                nonce: &request.nonce,
                numbers: &request.numbers,
                number_matching: request.number_matching,
                pin_required: request.pin_required,
                context: &request.context,
                created_at: request.created_at,
                expires_at: request.expires_at,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if found.is_empty() {
        if !failed {
            println!("No request is waiting.");
        }
    } else {
        for (account, request) in &found {
            print!("{}", render_request(&account.label, request, now));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A request as a person reads it.
fn render_request(label: &str, request: &PendingRequest, now: i64) -> String {
    let context = &request.context;
    let mut from = vec![context.application.clone()];
    if let Some(address) = &context.address {
        from.push(address.clone());
    }
    from.push(rfc3339(context.time));
    let numbers = if request.number_matching {
        let list: Vec<String> = request.numbers.iter().map(u8::to_string).collect();
        format!(
            "{}  (approve with the one the sign-in page shows)",
            list.join("  ")
        )
    } else {
        "none asked".to_owned()
    };
    let expires = (request.expires_at - now).max(0);
    format!(
        "{id}  {label}\n  for:      {purpose}{user}\n  from:     {from}\n  numbers:  {numbers}\n  PIN:      {pin}\n  expires in {expires} s\n",
        id = request.id,
        purpose = context.purpose_text(),
        user = context
            .username
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default(),
        from = from.join(", "),
        pin = if request.pin_required {
            "required"
        } else {
            "not required"
        },
    )
}

pub async fn watch(context: &Context, device_id: Option<&str>) -> anyhow::Result<ExitCode> {
    let accounts = context.accounts(device_id)?;
    let http = context.http()?;
    // Request ids already shown, with when they expire (forgotten after).
    let shown: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let mut watchers = tokio::task::JoinSet::new();
    for account in &accounts {
        let device = Device::new(&http, account)
            .with_context(|| format!("{} ({})", account.label, account.device_id))?;
        watchers.spawn(watch_account(device, account.label.clone(), shown.clone()));
    }
    eprintln!(
        "Watching {} account{} for requests; Ctrl-C stops.",
        accounts.len(),
        if accounts.len() == 1 { "" } else { "s" }
    );
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a Ctrl-C handler the default one ends the process.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupted => Ok(ExitCode::SUCCESS),
        _ = async { while watchers.join_next().await.is_some() {} } => {
            // Every account stopped: the server no longer knows any of these devices.
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Long-polls one account until the server no longer knows its device.
async fn watch_account(device: Device, label: String, shown: Arc<Mutex<HashMap<String, i64>>>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(60);
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        match device.requests(LONG_POLL_SECONDS).await {
            Ok(requests) => {
                backoff = Duration::from_secs(1);
                let now = unix_now();
                for request in &requests {
                    if first_sight(&shown, request, now) {
                        println!(
                            "{}{}",
                            render_request(&label, request, now),
                            how_to_answer(request)
                        );
                    }
                }
                // A waiting request comes back at once until it is answered: poll again
                // only after a pause. So too with a server that does not hold the poll.
                if !requests.is_empty() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                } else if started.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) if e.problem_code() == Some("unknown_device") => {
                eprintln!(
                    "{label}: the server no longer knows this device (removed?); it is no longer watched"
                );
                return;
            }
            Err(e) => {
                eprintln!("{label}: {e}; trying again in {} s", backoff.as_secs());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The commands that answer `request`.
fn how_to_answer(request: &PendingRequest) -> String {
    let mut approve = format!("twofold-authenticator approve {}", request.id);
    if request.number_matching {
        approve.push_str(" --number N");
    }
    if request.pin_required {
        approve.push_str(" --pin -");
    }
    format!(
        "  approve: {approve}\n  deny:    twofold-authenticator deny {} [--not-me]\n",
        request.id
    )
}

/// Records `request` as shown; true the first time.
fn first_sight(shown: &Mutex<HashMap<String, i64>>, request: &PendingRequest, now: i64) -> bool {
    let Ok(mut shown) = shown.lock() else {
        return true;
    };
    shown.retain(|_, expires_at| *expires_at + 60 >= now);
    shown
        .insert(request.id.clone(), request.expires_at)
        .is_none()
}

pub async fn approve(context: &Context, args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let pin = match args.pin.as_deref() {
        Some("-") => Some(read_pin()?),
        other => other.map(str::to_owned),
    };
    answer(
        context,
        &args.id,
        Answer::Approve,
        args.number,
        pin,
        &args.direct,
    )
    .await
}

pub async fn deny(context: &Context, args: DenyArgs) -> anyhow::Result<ExitCode> {
    let answer_kind = if args.not_me {
        Answer::NotMe
    } else {
        Answer::Deny
    };
    answer(context, &args.id, answer_kind, None, None, &args.direct).await
}

fn read_pin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("the PIN cannot be read from standard input")?;
    let pin = line.trim_end_matches(['\r', '\n']).to_owned();
    if pin.is_empty() {
        bail!("no PIN on standard input");
    }
    Ok(pin)
}

async fn answer(
    context: &Context,
    id: &str,
    kind: Answer,
    number: Option<u8>,
    pin: Option<String>,
    direct: &Direct,
) -> anyhow::Result<ExitCode> {
    let accounts = context.accounts(direct.account.as_deref())?;
    let http = context.http()?;

    let (account, body) = match &direct.nonce {
        Some(nonce) => {
            let [account] = accounts.as_slice() else {
                bail!("--nonce needs --account DEVICE_ID: there are several accounts");
            };
            let body = AnswerRequest {
                nonce: nonce.clone(),
                answer: kind,
                number: if kind == Answer::Approve {
                    number
                } else {
                    None
                },
                pin: if kind == Answer::Approve { pin } else { None },
            };
            (account.clone(), body)
        }
        None => {
            let results = fetch_all(&http, &accounts).await;
            let mut problems = Vec::new();
            let mut found = None;
            for (account, result) in results {
                match result {
                    Ok(requests) => {
                        if let Some(request) = requests.into_iter().find(|r| r.id == id) {
                            found = Some((account, request));
                            break;
                        }
                    }
                    Err(e) => problems.push(format!("{}: {e}", account.label)),
                }
            }
            let Some((account, request)) = found else {
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                bail!("no pending request {id}");
            };
            (account, answer_body(&request, kind, number, pin)?)
        }
    };

    let device = Device::new(&http, &account)?;
    let outcome = device
        .answer(id, &body)
        .await
        .with_context(|| format!("the answer to {id} was not taken"))?;
    println!("{}", outcome.describe());
    Ok(ExitCode::SUCCESS)
}

/// The answer's body, checked against what the request asks for.
fn answer_body(
    request: &PendingRequest,
    kind: Answer,
    number: Option<u8>,
    pin: Option<String>,
) -> anyhow::Result<AnswerRequest> {
    let mut body = AnswerRequest {
        nonce: request.nonce.clone(),
        answer: kind,
        number: None,
        pin: None,
    };
    if kind != Answer::Approve {
        return Ok(body);
    }
    if request.number_matching {
        let Some(number) = number else {
            bail!(
                "approving {} needs --number N: the number the sign-in page shows",
                request.id
            );
        };
        if !request.numbers.contains(&number) {
            let list: Vec<String> = request.numbers.iter().map(u8::to_string).collect();
            bail!(
                "{number} is not one of this request's numbers ({}): check the number on the sign-in page (nothing was sent)",
                list.join(", ")
            );
        }
        body.number = Some(number);
    } else if number.is_some() {
        eprintln!("note: this request asks for no number; --number is ignored");
    }
    if request.pin_required {
        let Some(pin) = pin else {
            bail!(
                "approving {} needs your PIN: --pin PIN (or --pin - to type it on standard input)",
                request.id
            );
        };
        body.pin = Some(pin);
    } else if pin.is_some() {
        eprintln!("note: this request asks for no PIN; --pin is ignored");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn request(number_matching: bool, pin_required: bool) -> PendingRequest {
        PendingRequest {
            id: "p_1".into(),
            nonce: "nonce-1".into(),
            numbers: if number_matching {
                vec![47, 12, 83]
            } else {
                vec![]
            },
            number_matching,
            pin_required,
            context: RequestContext {
                application: "Contoso VPN".into(),
                address: Some("203.0.113.9".into()),
                time: 1796032800,
                username: Some("ada".into()),
                purpose: "sign_in".into(),
            },
            created_at: 1796032800,
            expires_at: 1796032920,
        }
    }

    #[test]
    fn a_request_shows_where_it_comes_from_its_numbers_and_time_left() {
        let shown = render_request("Contoso: ada", &request(true, true), 1796032830);
        assert!(shown.starts_with("p_1  Contoso: ada\n"), "{shown}");
        assert!(shown.contains("for:      sign-in as ada"), "{shown}");
        assert!(
            shown.contains("from:     Contoso VPN, 203.0.113.9, 2026-11-30T10:00:00Z"),
            "{shown}"
        );
        assert!(shown.contains("numbers:  47  12  83"), "{shown}");
        assert!(shown.contains("PIN:      required"), "{shown}");
        assert!(shown.contains("expires in 90 s"), "{shown}");
    }

    #[test]
    fn approving_sends_the_picked_number_and_the_pin_with_the_request_nonce() {
        let body = answer_body(
            &request(true, true),
            Answer::Approve,
            Some(12),
            Some("1234".into()),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"nonce":"nonce-1","answer":"approve","number":12,"pin":"1234"}"#
        );
    }

    #[test]
    fn approving_without_the_number_or_pin_asked_for_sends_nothing() {
        assert!(answer_body(&request(true, false), Answer::Approve, None, None).is_err());
        assert!(answer_body(&request(true, false), Answer::Approve, Some(50), None).is_err());
        assert!(answer_body(&request(true, true), Answer::Approve, Some(47), None).is_err());
    }

    #[test]
    fn without_number_matching_no_number_is_sent() {
        let body = answer_body(&request(false, false), Answer::Approve, Some(47), None).unwrap();
        assert_eq!(body.number, None);
    }

    #[test]
    fn denying_sends_only_the_nonce_and_the_answer() {
        let body = answer_body(
            &request(true, true),
            Answer::NotMe,
            Some(47),
            Some("1".into()),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"nonce":"nonce-1","answer":"not_me"}"#
        );
    }

    #[test]
    fn a_watched_request_is_shown_once() {
        let shown = Mutex::new(HashMap::new());
        let one = request(true, false);
        assert!(first_sight(&shown, &one, 1796032800));
        assert!(!first_sight(&shown, &one, 1796032810));
        // Long after it expired it is forgotten (the server no longer sends it anyway).
        let mut other = request(true, false);
        other.id = "p_2".into();
        assert!(first_sight(&shown, &other, 1796040000));
        assert!(!shown.lock().unwrap().contains_key("p_1"));
    }
}
