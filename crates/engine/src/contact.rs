//! A user's email address and phone number, checked before they are stored.
//!
//! The checks are deliberately simple: enough to refuse what cannot be an address or a
//! number (text with spaces or control characters, a missing `@`, letters in a phone
//! number, anything over the lengths the standards allow), never so strict that a real
//! address is refused. Whether an address or a number reaches its owner is for the message
//! sent to it to prove.

/// RFC 5321: a path is at most 256 octets including the angle brackets.
pub const EMAIL_MAX: usize = 254;
/// RFC 5321: the local part is at most 64 octets.
const EMAIL_LOCAL_MAX: usize = 64;
/// Room for `+`, 15 digits (E.164) and the spaces, dashes, dots and brackets people type.
pub const PHONE_MAX: usize = 32;
/// E.164 numbers have at most 15 digits; fewer than 3 is no number at all.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 3..=15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ContactError {
    #[error("email {0:?} is not an address: write it as name@example.com")]
    Email(String),
    #[error("email is longer than {EMAIL_MAX} characters")]
    EmailTooLong,
    #[error(
        "phone {0:?} is not a phone number: use digits, an optional leading +, and spaces, dashes, dots or brackets (+1 555 0100)"
    )]
    Phone(String),
    #[error("phone is longer than {PHONE_MAX} characters")]
    PhoneTooLong,
}

/// Checks an email address (already trimmed); returns it unchanged when acceptable.
pub fn check_email(email: &str) -> Result<&str, ContactError> {
    if email.len() > EMAIL_MAX {
        return Err(ContactError::EmailTooLong);
    }
    let refuse = || ContactError::Email(email.to_owned());
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(refuse)?;
    if local.is_empty()
        || local.len() > EMAIL_LOCAL_MAX
        || local.contains('@')
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || (domain.contains(['@', '[', ']', '(', ')', ',', ';', ':', '<', '>', '\\', '"'])
            && !(domain.starts_with('[') && domain.ends_with(']')))
    {
        return Err(refuse());
    }
    Ok(email)
}

/// Checks a phone number (already trimmed); returns it unchanged when acceptable.
pub fn check_phone(phone: &str) -> Result<&str, ContactError> {
    if phone.len() > PHONE_MAX {
        return Err(ContactError::PhoneTooLong);
    }
    let refuse = || ContactError::Phone(phone.to_owned());
    let body = phone.strip_prefix('+').unwrap_or(phone);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(refuse());
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !PHONE_DIGITS.contains(&digits) {
        return Err(refuse());
    }
    Ok(phone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "alice@example.com",
            "a.b+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "用户@例子.广告",
            "x@localhost",
            "admin@[192.0.2.1]",
        ] {
            assert_eq!(check_email(ok), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn what_cannot_be_an_address_is_refused() {
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@@example.com",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice@example..com",
            "alice@.example.com",
            "alice@example.com.",
            "alice@exam<ple>.com",
            "alice\u{0}@example.com",
            "alice@example.com\n",
        ] {
            assert!(
                matches!(check_email(bad), Err(ContactError::Email(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_address_over_254_characters_or_a_local_part_over_64_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(check_email(&long), Err(ContactError::EmailTooLong));
        let local = format!("{}@example.com", "a".repeat(65));
        assert!(matches!(check_email(&local), Err(ContactError::Email(_))));
        let at_limit = format!("{}@{}.com", "a".repeat(64), "b".repeat(185));
        assert_eq!(at_limit.len(), EMAIL_MAX);
        assert!(check_email(&at_limit).is_ok());
    }

    #[test]
    fn phone_numbers_as_people_write_them_are_accepted() {
        for ok in [
            "+15550100",
            "+1 555 0100",
            "(555) 010-0100",
            "+44 20 7946 0958",
            "06.12.34.56.78",
            "112",
        ] {
            assert_eq!(check_phone(ok), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn what_cannot_be_a_phone_number_is_refused() {
        for bad in [
            "call me",
            "+1 555 CALL",
            "12",
            "+1234567890123456",
            "++15550100",
            "555\u{0}0100",
            "5550100 ext 2",
        ] {
            assert!(
                matches!(check_phone(bad), Err(ContactError::Phone(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_phone(&"1".repeat(PHONE_MAX + 1)),
            Err(ContactError::PhoneTooLong)
        );
    }
}
