//! The languages the portal speaks, and choosing one from `Accept-Language`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Fr,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    /// The BCP 47 tag, as used in `lang` attributes and settings.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    /// The language's own name for itself, as shown in the switcher.
    pub fn autonym(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Fr => "Français",
        }
    }

    /// Parses a tag such as `fr`, `fr-CA` or `EN-gb`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    /// The best supported language for an `Accept-Language` header, by quality value;
    /// `None` when the header names none we speak.
    pub fn negotiate(accept_language: &str) -> Option<Self> {
        let mut best: Option<(u16, Language)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if !(0.0..=1.0).contains(&quality) || quality == 0.0 {
                continue;
            }
            let q = (quality * 1000.0) as u16;
            if let Some(lang) = Self::from_tag(tag)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_quality_supported_language_wins() {
        assert_eq!(
            Language::negotiate("fr-CA,fr;q=0.9,en;q=0.8"),
            Some(Language::Fr)
        );
        assert_eq!(
            Language::negotiate("de-DE,en;q=0.5,fr;q=0.7"),
            Some(Language::Fr)
        );
        assert_eq!(Language::negotiate("en-GB"), Some(Language::En));
    }

    #[test]
    fn unsupported_or_refused_languages_give_none() {
        assert_eq!(Language::negotiate("de,es;q=0.5"), None);
        assert_eq!(Language::negotiate("fr;q=0"), None);
        assert_eq!(Language::negotiate(""), None);
        assert_eq!(Language::negotiate("fr;q=nonsense"), Some(Language::Fr));
    }
}
