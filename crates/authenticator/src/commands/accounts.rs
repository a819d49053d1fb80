//! `list` and `code`: the saved accounts, and their offline codes.

use std::process::ExitCode;

use anyhow::bail;
use twofold_authenticator::client::{ClientError, Device, unix_now};
use twofold_authenticator::protocol::DeviceInfo;
use twofold_authenticator::store::Account;
use twofold_authenticator::totp::Totp;

use super::{Context, rfc3339};

pub async fn list(context: &Context) -> anyhow::Result<ExitCode> {
    let store = context.store()?;
    if store.accounts.is_empty() {
        println!(
            "No account yet ({}). Activate one: twofold-authenticator activate URL CODE",
            store.path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // The servers are asked together; a server that is down only changes its account's
    // "last used" line.
    let http = context.http();
    let mut asked = tokio::task::JoinSet::new();
    for (index, account) in store.accounts.iter().enumerate() {
        let device = match &http {
            Ok(http) => Device::new(http, account).map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        asked.spawn(async move {
            let info = match device {
                Ok(device) => device.info().await.map_err(|e| last_used_problem(&e)),
                Err(e) => Err(format!("unknown ({e})")),
            };
            (index, info)
        });
    }
    let mut infos: Vec<Option<Result<DeviceInfo, String>>> = vec![None; store.accounts.len()];
    while let Some(joined) = asked.join_next().await {
        if let Ok((index, info)) = joined
            && let Some(slot) = infos.get_mut(index)
        {
            *slot = Some(info);
        }
    }
    for (account, info) in store.accounts.iter().zip(infos) {
        print!("{}", render_account(account, info.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

fn last_used_problem(error: &ClientError) -> String {
    match error.problem_code() {
        Some("unknown_device") => {
            "unknown: the server no longer knows this device (removed?)".to_owned()
        }
        _ if error.is_network() => format!("unknown (server not reachable: {error})"),
        _ => format!("unknown ({error})"),
    }
}

fn render_account(account: &Account, info: Option<&Result<DeviceInfo, String>>) -> String {
    let last_used = match info {
        Some(Ok(DeviceInfo {
            last_used_at: Some(t),
            ..
        })) => rfc3339(*t),
        Some(Ok(_)) => "never".to_owned(),
        Some(Err(why)) => why.clone(),
        None => "unknown".to_owned(),
    };
    format!(
        "{label}\n  device id:     {id} ({algorithm}, named {name:?})\n  server:        {url}\n  activated:     {activated}\n  last used:     {last_used}\n  offline codes: {codes}\n",
        label = account.label,
        id = account.device_id,
        algorithm = account.algorithm,
        name = account.name,
        url = account.server_url,
        activated = rfc3339(account.activated_at),
        codes = if account.oath.is_some() { "yes" } else { "no" },
    )
}

pub fn code(context: &Context, device_id: Option<&str>) -> anyhow::Result<ExitCode> {
    let accounts: Vec<Account> = context
        .accounts(device_id)?
        .into_iter()
        .filter(|a| a.oath.is_some())
        .collect();
    if accounts.is_empty() {
        bail!(
            "no account here has offline codes (the server gives them at activation when the user has no OATH token yet)"
        );
    }
    let now = u64::try_from(unix_now()).unwrap_or(0);
    for account in &accounts {
        let Some(seed) = &account.oath else { continue };
        match Totp::from_seed(seed) {
            Ok(totp) => println!(
                "{} ({})  {}  ({} s left)",
                account.label,
                account.device_id,
                totp.code_at(now),
                totp.seconds_left(now)
            ),
            Err(e) => bail!("{}: {e}", account.label),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use twofold_authenticator::keys::Algorithm;

    fn account() -> Account {
        Account {
            device_id: "d_1".into(),
            algorithm: Algorithm::Ed25519,
            private_key: String::new(),
            public_key: String::new(),
            server_url: "https://mfa.example.com".into(),
            server_public_key: String::new(),
            username: "ada".into(),
            label: "Contoso: ada".into(),
            name: "laptop".into(),
            push_endpoint: None,
            oath: None,
            activated_at: 1796032800,
        }
    }

    #[test]
    fn the_listing_shows_the_account_and_when_the_server_last_saw_it() {
        let info = DeviceInfo {
            device_id: "d_1".into(),
            name: "laptop".into(),
            algorithm: "ed25519".into(),
            username: "ada".into(),
            created_at: 1796032800,
            last_used_at: Some(1796036400),
        };
        let shown = render_account(&account(), Some(&Ok(info)));
        assert!(shown.starts_with("Contoso: ada\n"), "{shown}");
        assert!(shown.contains("device id:     d_1 (ed25519"), "{shown}");
        assert!(
            shown.contains("server:        https://mfa.example.com"),
            "{shown}"
        );
        assert!(
            shown.contains("activated:     2026-11-30T10:00:00Z"),
            "{shown}"
        );
        assert!(
            shown.contains("last used:     2026-11-30T11:00:00Z"),
            "{shown}"
        );
        assert!(shown.contains("offline codes: no"), "{shown}");
    }

    #[test]
    fn a_server_that_is_down_only_leaves_last_used_unknown() {
        let shown = render_account(
            &account(),
            Some(&Err("unknown (server not reachable: refused)".into())),
        );
        assert!(shown.contains("last used:     unknown (server not reachable: refused)"));
        assert!(shown.contains("activated:     2026-11-30T10:00:00Z"));
    }
}
