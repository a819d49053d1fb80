//! `activate`: a new device key, registered with the server by an activation code.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use twofold_authenticator::client::{ClientError, unix_now};
use twofold_authenticator::keys::{Algorithm, DeviceKey};
use twofold_authenticator::protocol::{
    ActivateRequest, activation_proof_string, normalise_code, server_base_url,
};
use twofold_authenticator::qr;
use twofold_authenticator::store::Account;

use super::Context;
use crate::cli::ActivateArgs;

/// The longest device name the server takes.
const NAME_MAX: usize = 64;

pub async fn activate(context: &Context, args: ActivateArgs) -> anyhow::Result<ExitCode> {
    let (url, code) = match (&args.qr, args.url, args.code) {
        (Some(path), _, _) => {
            let link = qr::read_activation_link(path)?;
            (link.url, link.code)
        }
        (None, Some(url), Some(code)) => (
            server_base_url(&url).with_context(|| format!("the server URL {url:?}"))?,
            code.trim().to_owned(),
        ),
        _ => bail!("give the server's URL and the activation code, or --qr FILE.png"),
    };
    let normalised = normalise_code(&code)?;
    let name = match args.name {
        Some(name) => check_name(&name)?,
        None => default_name(),
    };
    if let Some(endpoint) = &args.push_endpoint {
        check_push_endpoint(endpoint)?;
    }

    // Before the code is spent: the accounts file must be readable and writable, or the
    // new device's key would be lost.
    let mut store = context.store()?;
    store.save().with_context(|| {
        format!(
            "the accounts file cannot be written, so the activation code was not used ({})",
            store.path().display()
        )
    })?;
    let http = context.http()?;

    let algorithm = if args.p256 {
        Algorithm::P256
    } else {
        Algorithm::Ed25519
    };
    let key = DeviceKey::generate(algorithm);
    let public_key = key.public_key_b64();
    let proof = key.sign_b64(activation_proof_string(&normalised, &public_key).as_bytes());
    let request = ActivateRequest {
        code,
        algorithm,
        public_key: public_key.clone(),
        name: name.clone(),
        push_endpoint: args.push_endpoint.clone(),
        proof,
    };
    let answer = match http.activate(&url, &request).await {
        Ok(answer) => answer,
        Err(e) => {
            let hint = hint(&e);
            bail!("activation at {url} failed: {e}{hint}");
        }
    };

    let account = Account {
        device_id: answer.device_id.clone(),
        algorithm,
        private_key: key.private_key_b64(),
        public_key,
        server_url: url.clone(),
        server_public_key: answer.server.public_key,
        username: answer.account.username,
        label: answer.account.label.clone(),
        name,
        push_endpoint: args.push_endpoint,
        oath: answer.oath,
        activated_at: unix_now(),
    };
    let has_codes = account.oath.is_some();
    store.upsert(account);
    store.save().with_context(|| {
        format!(
            "the server activated device {} but the accounts file cannot be written ({}): remove the device in the portal and activate again",
            answer.device_id,
            store.path().display()
        )
    })?;

    println!("Activated {}", answer.account.label);
    println!("  device id: {}", answer.device_id);
    println!("  server:    {url}");
    if has_codes {
        println!(
            "  offline codes: yes (`twofold-authenticator code` shows them; they are your OATH token)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What to do about a refused activation.
fn hint(error: &ClientError) -> &'static str {
    match error.problem_code() {
        Some("invalid_activation_code") => {
            "\nAsk for a new code: a code works once, for a few minutes."
        }
        Some("device_limit") => {
            "\nYou have as many devices as allowed: remove one in the portal first."
        }
        Some("rate_limited") => "\nToo many attempts: wait a few minutes.",
        _ => "",
    }
}

/// "twofold-authenticator on <host name>", or "… on this machine".
fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.chars().any(char::is_control))
        .unwrap_or_else(|| "this machine".to_owned());
    format!("twofold-authenticator on {host}")
        .chars()
        .take(NAME_MAX)
        .collect()
}

fn check_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > NAME_MAX {
        bail!("--name must have 1 to {NAME_MAX} characters (it has {len})");
    }
    if name.chars().any(char::is_control) {
        bail!("--name must not hold control characters");
    }
    Ok(name.to_owned())
}

fn check_push_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(endpoint)
        .with_context(|| format!("--push-endpoint {endpoint:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        bail!("--push-endpoint must be an https:// (or http://) URL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_default_device_name_names_this_machine_within_64_characters() {
        let name = default_name();
        assert!(name.starts_with("twofold-authenticator on "));
        assert!(name.chars().count() <= NAME_MAX);
    }

    #[test]
    fn a_device_name_must_fit_the_device_list() {
        assert_eq!(check_name("  Ada's laptop ").unwrap(), "Ada's laptop");
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name(&"é".repeat(64)).is_ok());
        assert!(check_name("bad\nname").is_err());
    }

    #[test]
    fn a_push_endpoint_must_be_a_web_url() {
        assert!(check_push_endpoint("https://ntfy.example.net/upAbCd").is_ok());
        assert!(check_push_endpoint("mailto:ada@example.com").is_err());
        assert!(check_push_endpoint("ntfy").is_err());
    }
}
