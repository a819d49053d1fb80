//! Emails through a real SMTP server (aiosmtpd with STARTTLS and AUTH): `twofold email test`
//! delivers, and every way it can fail says what to fix, without showing the password.

use crate::smtp::{self, SmtpServer};
use crate::support::*;

pub(crate) const USERNAME: &str = "twofold-mailer";
pub(crate) const PASSWORD: &str = "mailer-password-7f3a";
const FROM: &str = "Twofold <mfa@example.com>";

pub(crate) fn smtp_env(env: Env, server: &SmtpServer, password: &str, trust: bool) -> Env {
    let env = env
        .set("TWOFOLD_CHANNELS__EMAIL", "smtp")
        .set("TWOFOLD_SMTP__HOST", "127.0.0.1")
        .set("TWOFOLD_SMTP__PORT", &server.port.to_string())
        .set("TWOFOLD_SMTP__USERNAME", USERNAME)
        .set("TWOFOLD_SMTP__PASSWORD", password)
        .set("TWOFOLD_SMTP__FROM", FROM)
        .set("TWOFOLD_SMTP__TIMEOUT_SECONDS", "5");
    if trust {
        env.set(
            "TWOFOLD_SMTP__CA_FILE",
            &server.ca_file.display().to_string(),
        )
    } else {
        env
    }
}

fn run(env: &Env, address: &str) -> (bool, String) {
    let out = env.cli(&["email", "test", address], "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn email_test_delivers_through_smtp_with_starttls_and_sign_in() {
    let env = Env::new(Backend::Sqlite).await;
    let server = smtp::start(&env.dir.path().join("smtp"), USERNAME, PASSWORD);
    let env = smtp_env(env, &server, PASSWORD, true);
    let (ok, out) = run(&env, "bob@example.com");
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "sent to bob@example.com through 127.0.0.1:{} (STARTTLS, signed in as {USERNAME})",
            server.port
        )),
        "{out}"
    );
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let message = &received[0];
    assert_eq!(message.from, FROM);
    assert_eq!(message.mail_from, "mfa@example.com");
    assert_eq!(message.rcpt_tos, ["bob@example.com"]);
    assert_eq!(message.to, "bob@example.com");
    assert_eq!(message.subject, "Twofold test email");
    assert_eq!(message.content_type, "text/plain");
    assert_eq!(message.charset, "utf-8");
    assert!(message.message_id.ends_with("@example.com>"), "{message:?}");
    assert!(message.tls, "sent over STARTTLS");
    assert!(
        message.body.contains("test email from Twofold"),
        "{message:?}"
    );
    assert!(!out.contains(PASSWORD));
}

#[tokio::test]
async fn a_wrong_smtp_password_fails_naming_the_username_setting() {
    let env = Env::new(Backend::Sqlite).await;
    let server = smtp::start(&env.dir.path().join("smtp"), USERNAME, PASSWORD);
    let wrong = "not-the-mailer-password-91c2";
    let env = smtp_env(env, &server, wrong, true);
    let (ok, out) = run(&env, "bob@example.com");
    assert!(!ok, "{out}");
    assert!(
        out.contains("refused the sign-in as twofold-mailer"),
        "{out}"
    );
    assert!(out.contains("smtp.username and smtp.password"), "{out}");
    assert!(!out.contains(wrong), "the password is never shown: {out}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn an_smtp_server_that_is_not_listening_is_named_with_the_fix() {
    let env = Env::new(Backend::Sqlite).await;
    let server = smtp::start(&env.dir.path().join("smtp"), USERNAME, PASSWORD);
    let env = smtp_env(env, &server, PASSWORD, true);
    let closed = smtp::free_tcp_port();
    let env = env.set("TWOFOLD_SMTP__PORT", &closed.to_string());
    let (ok, out) = run(&env, "bob@example.com");
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("127.0.0.1:{closed}")), "{out}");
    assert!(out.contains("check smtp.host and smtp.port"), "{out}");
    assert!(!out.contains(PASSWORD));
}

#[tokio::test]
async fn an_untrusted_certificate_fails_without_falling_back_to_plain_text() {
    let env = Env::new(Backend::Sqlite).await;
    let server = smtp::start(&env.dir.path().join("smtp"), USERNAME, PASSWORD);
    // No ca_file: the test CA is not among the public roots.
    let env = smtp_env(env, &server, PASSWORD, false);
    let (ok, out) = run(&env, "bob@example.com");
    assert!(!ok, "{out}");
    assert!(out.contains("smtp.ca_file"), "{out}");
    assert!(!out.contains(PASSWORD));
    assert!(server.received().is_empty(), "nothing sent in clear");
}

#[tokio::test]
async fn with_the_console_channel_the_test_email_goes_to_nobody() {
    let env = Env::new(Backend::Sqlite).await;
    let (ok, out) = run(&env, "bob@example.com");
    assert!(ok, "{out}");
    assert!(out.contains("not sent to anyone"), "{out}");
    assert!(out.contains("Nothing was sent to bob@example.com"), "{out}");
}

#[tokio::test]
async fn smtp_channel_settings_that_cannot_work_stop_with_the_fix() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_CHANNELS__EMAIL", "smtp");
    let (ok, out) = run(&env, "bob@example.com");
    assert!(!ok);
    assert!(out.contains("no [smtp] section"), "{out}");
    let stderr = env.start_fails();
    assert!(stderr.contains("no [smtp] section"), "{stderr}");

    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_CHANNELS__SMS", "smtp");
    let stderr = env.start_fails();
    assert!(stderr.contains("channels.sms = \"smtp\""), "{stderr}");
    assert!(stderr.contains("Fix:"), "{stderr}");

    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SMTP__HOST", "smtp.example.com")
        .set("TWOFOLD_SMTP__FROM", "not an address");
    let stderr = env.start_fails();
    assert!(stderr.contains("smtp.from"), "{stderr}");
}

#[tokio::test]
async fn plain_smtp_to_another_host_is_warned_about_at_start() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_CHANNELS__EMAIL", "smtp")
        .set("TWOFOLD_SMTP__HOST", "192.0.2.25")
        .set("TWOFOLD_SMTP__PORT", "25")
        .set("TWOFOLD_SMTP__SECURITY", "none")
        .set("TWOFOLD_SMTP__USERNAME", USERNAME)
        .set("TWOFOLD_SMTP__PASSWORD", PASSWORD)
        .set("TWOFOLD_SMTP__FROM", FROM);
    let server = env.start();
    let mut stderr = server.stderr();
    for _ in 0..50 {
        if stderr.contains("smtp.security") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        stderr = server.stderr();
    }
    assert!(stderr.contains("smtp.security = \"none\""), "{stderr}");
    assert!(stderr.contains("192.0.2.25"), "{stderr}");
    assert!(stderr.contains("the SMTP password"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    let local = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_CHANNELS__EMAIL", "smtp")
        .set("TWOFOLD_SMTP__HOST", "127.0.0.1")
        .set("TWOFOLD_SMTP__PORT", "25")
        .set("TWOFOLD_SMTP__SECURITY", "none")
        .set("TWOFOLD_SMTP__FROM", FROM);
    let server = local.start();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !server.stderr().contains("smtp.security"),
        "{}",
        server.stderr()
    );
}
