//! Usernames: normalised so that one person has one account however they type their name.
//!
//! Normalisation is Unicode NFKC (so full-width `ａｌｉｃｅ` and a decomposed `Zoe\u{308}` match
//! their ordinary forms), then lower case, then trimmed. What is left must be printable:
//! control characters, invisible format characters (zero-width joiners, bidi overrides) and
//! inner whitespace are refused, because two usernames that look the same must be the same.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// The longest username accepted, in characters after normalisation.
pub const MAX_USERNAME_CHARS: usize = 128;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsernameError {
    #[error("the username is empty")]
    Empty,
    #[error("the username is longer than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    #[error("the username contains whitespace; use a name without spaces")]
    Whitespace,
    #[error("the username contains an invisible or control character (U+{0:04X}); retype it")]
    Invisible(u32),
}

/// A normalised username. The only way to make one is [`Username::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        // Bound the work before normalising: NFKC can expand a string, never by more than 18x.
        if input.chars().count() > MAX_USERNAME_CHARS * 4 {
            return Err(UsernameError::TooLong);
        }
        let normalised: String = input.nfkc().collect::<String>().to_lowercase();
        // Lower-casing can produce sequences that are not NFKC any more (e.g. U+0130).
        let normalised: String = normalised.nfkc().collect();
        let trimmed = normalised.trim();
        if trimmed.is_empty() {
            return Err(UsernameError::Empty);
        }
        if trimmed.chars().count() > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        for c in trimmed.chars() {
            if c.is_whitespace() {
                return Err(UsernameError::Whitespace);
            }
            if c.is_control() || is_format_character(c) {
                return Err(UsernameError::Invisible(c as u32));
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Username::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Unicode general category Cf (format) and the other invisible code points that make two
/// strings render the same: the ones a username must never contain.
fn is_format_character(c: char) -> bool {
    matches!(c as u32,
        0x00AD            // soft hyphen
        | 0x034F          // combining grapheme joiner
        | 0x061C          // arabic letter mark
        | 0x115F | 0x1160 // hangul fillers
        | 0x17B4 | 0x17B5
        | 0x180B..=0x180F // mongolian variation selectors and vowel separator
        | 0x200B..=0x200F // zero-width space, joiners, direction marks
        | 0x202A..=0x202E // bidi embeddings and overrides
        | 0x2060..=0x206F // word joiner, invisible operators, bidi isolates
        | 0x3164          // hangul filler
        | 0xFE00..=0xFE0F // variation selectors
        | 0xFEFF          // byte order mark
        | 0xFFA0
        | 0xFFF0..=0xFFFB
        | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF // tags and variation selectors supplement
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn case_and_surrounding_spaces_do_not_make_a_new_user() {
        assert_eq!(Username::parse("  Alice ").unwrap().as_str(), "alice");
        assert_eq!(
            Username::parse("ALICE").unwrap(),
            Username::parse("alice").unwrap()
        );
    }

    #[test]
    fn full_width_and_decomposed_forms_are_the_same_user() {
        assert_eq!(Username::parse("ａｌｉｃｅ").unwrap().as_str(), "alice");
        assert_eq!(
            Username::parse("Zoe\u{0308}").unwrap(),
            Username::parse("zoë").unwrap()
        );
        assert_eq!(Username::parse("ZOË").unwrap().as_str(), "zoë");
    }

    #[test]
    fn domain_and_upn_forms_are_accepted() {
        assert_eq!(
            Username::parse("CONTOSO\\Bob").unwrap().as_str(),
            "contoso\\bob"
        );
        assert_eq!(
            Username::parse("bob@Contoso.com").unwrap().as_str(),
            "bob@contoso.com"
        );
    }

    #[test]
    fn invisible_characters_are_refused() {
        assert_eq!(
            Username::parse("al\u{200B}ice"),
            Err(UsernameError::Invisible(0x200B))
        );
        assert_eq!(
            Username::parse("alice\u{202E}"),
            Err(UsernameError::Invisible(0x202E))
        );
        assert_eq!(
            Username::parse("a\u{0007}b"),
            Err(UsernameError::Invisible(7))
        );
    }

    #[test]
    fn empty_spaces_and_overlong_names_are_refused() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse(" \u{3000} "), Err(UsernameError::Empty));
        assert_eq!(Username::parse("ali ce"), Err(UsernameError::Whitespace));
        assert_eq!(
            Username::parse(&"a".repeat(129)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse(&"a".repeat(100_000)),
            Err(UsernameError::TooLong)
        );
        assert!(Username::parse(&"a".repeat(128)).is_ok());
    }
}
