//! Phone numbers: read as people type them, kept in E.164 (`+33612345678`), shown back in
//! the international format (`+33 6 12 34 56 78`), masked where a page must not show them
//! whole.
//!
//! Parsing and validation are libphonenumber's rules (the `phonenumber` crate): a number
//! written without its country code is read in the `default_region` setting's country, and
//! refused when there is none. An extension may follow the number (`x890`, `ext. 890`, the
//! form the original's directory import read); it is dialled once the call is answered.

use phonenumber::country;
use phonenumber::{Mode, PhoneNumber};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The most digits an extension may have.
pub const EXTENSION_MAX: usize = 10;

/// A number that is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PhoneError {
    #[error("{0:?} is not a phone number: use digits, with the country code (+33 6 12 34 56 78)")]
    NotANumber(String),
    #[error(
        "the phone number {0:?} has no country code: write it with one (+33 6 12 34 56 78), or set default_region"
    )]
    NoCountry(String),
    #[error("{0:?} cannot be a valid phone number in {1}: check the digits and the country code")]
    Invalid(String, String),
    #[error("the extension {0:?} must be 1 to {EXTENSION_MAX} digits")]
    Extension(String),
    #[error("{0:?} is not a country: use its two-letter code (FR, US, GB)")]
    Region(String),
}

impl PhoneError {
    /// A stable code for the SDK and the portal's messages.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::NotANumber(_) => "invalid_phone",
            PhoneError::NoCountry(_) => "phone_needs_country",
            PhoneError::Invalid(..) => "invalid_phone",
            PhoneError::Extension(_) => "invalid_extension",
            PhoneError::Region(_) => "invalid_region",
        }
    }
}

/// A phone number as stored: E.164, with the extension to dial after the call is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    /// `+33612345678`.
    pub number: String,
    /// Digits only (`890`).
    pub extension: Option<String>,
}

/// Checks a region setting (`FR`, `us`): its upper-case two-letter code.
pub fn check_region(region: &str) -> Result<String, PhoneError> {
    let upper = region.trim().to_ascii_uppercase();
    if upper.len() != 2 || country::Id::from_str(&upper).is_err() {
        return Err(PhoneError::Region(region.to_owned()));
    }
    Ok(upper)
}

fn region_id(region: Option<&str>) -> Option<country::Id> {
    region
        .filter(|r| !r.is_empty())
        .and_then(|r| country::Id::from_str(&r.to_ascii_uppercase()).ok())
}

/// Digits and what people put between them (`+`, spaces, dashes, dots, brackets,
/// slashes), then an optional extension (`x890`, `ext. 890`, `;ext=890`): never letters
/// standing for digits, which no one types for their own phone.
fn plausible(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    let number = ["ext.", "ext", ";ext=", "x"]
        .iter()
        .find_map(|mark| lower.split_once(mark).map(|(n, _)| n))
        .unwrap_or(&lower);
    // E.164 allows 15 digits; a national prefix (0, 00, 011) adds a few.
    (3..=18).contains(&number.chars().filter(char::is_ascii_digit).count())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/'))
}

fn digits_only(s: &str) -> bool {
    !s.is_empty() && s.len() <= EXTENSION_MAX && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a number as typed (with an optional extension written after it: `x890`,
/// `ext. 890`, `;ext=890`), or with the extension given apart (`extension`, which wins).
pub fn parse(
    input: &str,
    extension: Option<&str>,
    default_region: Option<&str>,
) -> Result<Phone, PhoneError> {
    let input = input.trim();
    if input.is_empty() || input.len() > 64 || !plausible(input) {
        return Err(PhoneError::NotANumber(input.to_owned()));
    }
    let region = region_id(default_region);
    if region.is_none() && !input.starts_with('+') && !input.starts_with("00") {
        return Err(PhoneError::NoCountry(input.to_owned()));
    }
    // "00" is the international prefix of most countries; libphonenumber reads it as such
    // only with a region, so it is written as "+" here.
    let international;
    let text = match input.strip_prefix("00") {
        Some(rest) if region.is_none() => {
            international = format!("+{rest}");
            international.as_str()
        }
        _ => input,
    };
    let parsed: PhoneNumber =
        phonenumber::parse(region, text).map_err(|_| PhoneError::NotANumber(input.to_owned()))?;
    if !parsed.is_valid() {
        let country = parsed.country().id().map_or_else(
            || format!("+{}", parsed.code().value()),
            |id| id.as_ref().to_owned(),
        );
        return Err(PhoneError::Invalid(input.to_owned(), country));
    }
    let extension = match extension.map(str::trim).filter(|e| !e.is_empty()) {
        Some(given) => {
            let digits = given.trim_start_matches(['x', 'X']).trim();
            if !digits_only(digits) {
                return Err(PhoneError::Extension(given.to_owned()));
            }
            Some(digits.to_owned())
        }
        None => match parsed.extension() {
            Some(ext) if digits_only(ext.as_ref()) => Some(ext.as_ref().to_owned()),
            Some(ext) => return Err(PhoneError::Extension(ext.as_ref().to_owned())),
            None => None,
        },
    };
    Ok(Phone {
        number: parsed.format().mode(Mode::E164).to_string(),
        extension,
    })
}

/// The stored number in the international format (`+33 6 12 34 56 78`); as stored when it
/// does not parse (it always does when it went through [`parse`]).
pub fn display(number: &str) -> String {
    match phonenumber::parse(None, number) {
        Ok(n) => n.format().mode(Mode::International).to_string(),
        Err(_) => number.to_owned(),
    }
}

/// The number with all but its last two digits hidden (`+33 6 •• •• •• 12`): what a page
/// shows before the user proved they own it.
pub fn masked(number: &str) -> String {
    let shown = display(number);
    let total = shown.chars().filter(char::is_ascii_digit).count();
    let code_digits = phonenumber::parse(None, number)
        .map(|n| n.code().value().to_string().len())
        .unwrap_or(0);
    // The country code, the first digit after it and the last two stay.
    let keep_front = code_digits + 1;
    let mut seen = 0;
    shown
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= keep_front || seen + 2 > total {
                    c
                } else {
                    '•'
                }
            } else {
                c
            }
        })
        .collect()
}

/// The two-letter code of the country a stored number belongs to (`FR`).
pub fn region_of(number: &str) -> Option<String> {
    phonenumber::parse(None, number)
        .ok()
        .and_then(|n| n.country().id())
        .map(|id| id.as_ref().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stored_in_e164_whatever_their_spelling() {
        for typed in ["+33 6 12 34 56 78", "+33612345678", "0033 6 12 34 56 78"] {
            assert_eq!(parse(typed, None, None).unwrap().number, "+33612345678");
        }
        assert_eq!(
            parse("06 12 34 56 78", None, Some("FR")).unwrap().number,
            "+33612345678"
        );
        assert_eq!(
            parse("(201) 555-0123", None, Some("us")).unwrap().number,
            "+12015550123"
        );
    }

    #[test]
    fn a_national_number_without_a_default_region_asks_for_the_country_code() {
        assert!(matches!(
            parse("06 12 34 56 78", None, None),
            Err(PhoneError::NoCountry(_))
        ));
    }

    #[test]
    fn numbers_that_cannot_be_valid_are_refused_with_the_reason() {
        assert!(matches!(
            parse("+33 6 12", None, None),
            Err(PhoneError::Invalid(_, c)) if c == "FR"
        ));
        assert!(matches!(
            parse("call me", None, Some("FR")),
            Err(PhoneError::NotANumber(_))
        ));
        assert!(matches!(
            parse("", None, None),
            Err(PhoneError::NotANumber(_))
        ));
        assert!(parse("+1 555\n0100", None, None).is_err());
        // Letters are not digits, even where a keypad would say so.
        assert!(matches!(
            parse("+1 800 FLOWERS", None, None),
            Err(PhoneError::NotANumber(_))
        ));
    }

    #[test]
    fn an_extension_is_read_from_the_number_or_apart() {
        let p = parse("+1 201 555 0123 x890", None, None).unwrap();
        assert_eq!(p.number, "+12015550123");
        assert_eq!(p.extension.as_deref(), Some("890"));
        let p = parse("+1 201 555 0123", Some("x4567"), None).unwrap();
        assert_eq!(p.extension.as_deref(), Some("4567"));
        assert!(matches!(
            parse("+1 201 555 0123", Some("12a"), None),
            Err(PhoneError::Extension(_))
        ));
    }

    #[test]
    fn numbers_are_shown_back_formatted_and_masked() {
        assert_eq!(display("+33612345678"), "+33 6 12 34 56 78");
        assert_eq!(masked("+33612345678"), "+33 6 •• •• •• 78");
        assert_eq!(region_of("+33612345678").as_deref(), Some("FR"));
        assert_eq!(region_of("+12015550123").as_deref(), Some("US"));
    }

    #[test]
    fn regions_are_two_letter_country_codes() {
        assert_eq!(check_region("fr").unwrap(), "FR");
        assert!(check_region("France").is_err());
        assert!(check_region("ZZ").is_err());
    }
}
