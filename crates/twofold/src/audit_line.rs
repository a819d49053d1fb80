//! `audit tail`'s text lines: one event per line, every field escaped.
//!
//! The audit log holds what clients chose (usernames as typed, user agents, the SDK caller's
//! account name): printed as is, a newline would forge a second event and an escape sequence
//! would rewrite the operator's terminal. So no control character (C0, DEL, C1: newline, ESC,
//! …) and no Unicode control that reorders or hides text (bidirectional overrides and
//! isolates, zero-width characters, line and paragraph separators) is printed as itself:
//! each is written as `\n`, `\r`, `\t` or `\u{…}`, like Rust's `{:?}`. Values are quoted
//! (`user="alice"`), with `"` and `\` escaped, so a value cannot end early and forge a
//! field; the actor, action and outcome are printed bare when they hold only plain
//! characters (`actor=sdk:app1`), and quoted otherwise.

use std::fmt::Write as _;
use twofold_server::store::AuditRow;

/// One event as a line of text (without its newline).
pub fn text_line(row: &AuditRow, at: &str) -> String {
    let mut line = format!(
        "{} {} {} actor={}",
        bare_or_quoted(at),
        bare_or_quoted(&row.action),
        bare_or_quoted(&row.outcome),
        bare_or_quoted(&row.actor)
    );
    for (key, value) in [
        ("user", &row.subject),
        ("ip", &row.client_ip),
        ("detail", &row.detail),
        ("agent", &row.user_agent),
    ] {
        if let Some(value) = value {
            let _ = write!(line, " {key}={}", quoted(value));
        }
    }
    line
}

/// Characters that may be printed bare: they cannot start a field, a line or a sequence.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '@' | '+' | '/')
}

fn bare_or_quoted(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_plain) {
        value.to_owned()
    } else {
        quoted(value)
    }
}

/// `value` in double quotes, escaped so that it shows every character it holds and nothing
/// a terminal acts on.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unicode format characters that reorder or hide text on a terminal (Trojan Source,
/// CVE-2021-42574) or break a line without being a newline.
fn is_invisible_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(actor: &str, subject: &str, agent: &str) -> AuditRow {
        AuditRow {
            id: 1,
            at: 0,
            action: "sign_in".into(),
            outcome: "failure".into(),
            actor: actor.into(),
            subject: Some(subject.into()),
            client_ip: Some("127.0.0.1".into()),
            user_agent: Some(agent.into()),
            detail: Some("invalid_credentials".into()),
        }
    }

    #[test]
    fn plain_events_read_as_before() {
        assert_eq!(
            text_line(&row("sdk:app1", "alice", "curl/8"), "2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00Z sign_in failure actor=sdk:app1 user=\"alice\" ip=\"127.0.0.1\" detail=\"invalid_credentials\" agent=\"curl/8\""
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let forged = "x\n2026-01-01T00:00:00Z sign_in success actor=portal user=\"root\"\x1b[2K\r\u{9b}31m\u{202e}\u{7f}";
        let line = text_line(&row(forged, forged, forged), "t");
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || is_invisible_control(c)),
            "{line:?}"
        );
        assert!(line.contains("actor=\"x\\n2026"), "{line}");
        assert!(
            line.contains("\\u{1b}[2K\\r\\u{9b}31m\\u{202e}\\u{7f}"),
            "{line}"
        );
        // The quotes inside a value are escaped: the value cannot end early.
        assert!(line.contains("user=\\\"root\\\""), "{line}");
        assert_eq!(line.matches(" user=\"").count(), 1, "{line}");
    }

    #[test]
    fn an_actor_with_a_space_or_an_equals_sign_is_quoted() {
        let line = text_line(&row("user:x user=root", "a", "b"), "t");
        assert!(line.contains("actor=\"user:x user=root\""), "{line}");
        let line = text_line(&row("", "a", "b"), "t");
        assert!(line.contains("actor=\"\""), "{line}");
    }
}
