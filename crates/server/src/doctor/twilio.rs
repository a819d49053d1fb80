//! Twilio (`[twilio]`): the account's credentials, through a read-only call that fetches
//! the account (`GET /2010-04-01/Accounts/{AccountSid}.json`).

use super::Check;
use crate::channels::{DeliveryError, TwilioChannel};
use crate::config::{ChannelProvider, Config};

const NAME: &str = "twilio";

pub(super) async fn check(config: &Config) -> Check {
    let Some(twilio) = &config.twilio else {
        return Check::skip(
            NAME,
            "no [twilio] section: calls and texts go to the log and /dev/inbox (the console \
             channel), not to anyone",
        );
    };
    let channel = match TwilioChannel::from_config(twilio) {
        Ok(channel) => channel,
        Err(e) => return Check::failed_with(NAME, &e.0, "correct [twilio] as the message says"),
    };
    let used = config.channels.voice == ChannelProvider::Twilio
        || config.channels.sms == ChannelProvider::Twilio;
    let unused = if used {
        ""
    } else {
        " (neither channels.voice nor channels.sms is \"twilio\": it delivers nothing yet)"
    };
    match channel.fetch_account().await {
        Ok(account) if account.status == "active" => Check::pass(
            NAME,
            format!(
                "{} accepts the credentials of account {}{}, which is active{unused}",
                twilio.api_base(),
                twilio.account_sid.trim(),
                if account.friendly_name.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", account.friendly_name)
                }
            ),
        ),
        Ok(account) => Check::fail(
            NAME,
            format!(
                "Twilio accepts the credentials, but account {} is {}: it places no calls and sends no texts",
                twilio.account_sid.trim(),
                if account.status.is_empty() {
                    "not active"
                } else {
                    account.status.as_str()
                }
            ),
            "see the account's status in the Twilio console (a suspended account must be reactivated \
             with Twilio), or use another account",
        ),
        Err(DeliveryError::Permanent(m) | DeliveryError::Transient(m)) => Check::failed_with(
            NAME,
            &m,
            "check twilio.account_sid, twilio.auth_token and twilio.api_base",
        ),
    }
}
