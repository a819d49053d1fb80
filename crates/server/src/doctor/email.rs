//! The SMTP server (`[smtp]`): it takes the connection, TLS as configured, and the sign-in.
//! Nothing is sent.

use super::Check;
use crate::channels::{DeliveryError, SmtpChannel};
use crate::config::{ChannelProvider, Config};

const NAME: &str = "smtp";

pub(super) async fn check(config: &Config) -> Check {
    let Some(smtp) = &config.smtp else {
        return Check::skip(
            NAME,
            "no [smtp] section: emails go to the log and /dev/inbox (channels.email = \"console\"), \
             not to anyone",
        );
    };
    let channel = match SmtpChannel::from_config(smtp) {
        Ok(channel) => channel,
        Err(e) => return Check::failed_with(NAME, &e.0, "correct [smtp] as the message says"),
    };
    let unused = if config.channels.email == ChannelProvider::Smtp {
        ""
    } else {
        " (channels.email is not \"smtp\": emails do not go through it yet)"
    };
    match channel.check_sign_in().await {
        Ok(()) => Check::pass(
            NAME,
            format!(
                "{} takes the connection{}{unused}",
                channel.describe(),
                if smtp.username.is_some() {
                    " and the sign-in"
                } else {
                    ""
                }
            ),
        ),
        Err(DeliveryError::Permanent(m) | DeliveryError::Transient(m)) => Check::failed_with(
            NAME,
            &m,
            "check smtp.host, smtp.port, smtp.security and the sign-in (smtp.username, smtp.password)",
        ),
    }
}
