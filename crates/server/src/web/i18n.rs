//! Translations (Fluent), and choosing the language of a page.
//!
//! Order: the language cookie set by the switcher (the most recent explicit choice on this
//! browser), then the signed-in user's own setting, then the browser's `Accept-Language`,
//! then the `default_language` setting.

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{Loader, static_loader};
use std::borrow::Cow;
use std::collections::HashMap;
use twofold_engine::Language;
use unic_langid::{LanguageIdentifier, langid};

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static EN: LanguageIdentifier = langid!("en");
static FR: LanguageIdentifier = langid!("fr");

fn id(language: Language) -> &'static LanguageIdentifier {
    match language {
        Language::En => &EN,
        Language::Fr => &FR,
    }
}

/// Translates for one page: templates call `t.t("key")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translator {
    pub language: Language,
}

impl Translator {
    pub fn new(language: Language) -> Self {
        Self { language }
    }

    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(id(self.language), key)
    }

    pub fn t1(&self, key: &str, name: &'static str, value: &str) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        args.insert(Cow::Borrowed(name), FluentValue::from(value.to_owned()));
        LOCALES.lookup_with_args(id(self.language), key, &args)
    }

    pub fn tag(&self) -> &'static str {
        self.language.tag()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with([' ', '#', '\t']) && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next().map(str::to_owned))
            .collect()
    }

    /// The keys of every catalogue file of `language`, by file name.
    fn catalogue(language: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(language);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, keys(&std::fs::read_to_string(&p).unwrap()))
            })
            .collect()
    }

    #[test]
    fn french_translates_every_english_message() {
        let en = catalogue("en");
        let fr = catalogue("fr");
        assert!(en.get("main.ftl").unwrap().len() > 20);
        assert_eq!(
            en.keys().collect::<Vec<_>>(),
            fr.keys().collect::<Vec<_>>(),
            "the same catalogue files in both languages"
        );
        for (file, keys) in &en {
            assert_eq!(
                keys, &fr[file],
                "{file}: the two catalogues must have the same keys"
            );
        }
        // No key is defined in two files (the loader would keep one of them).
        let mut seen = BTreeSet::new();
        for keys in en.values() {
            for key in keys {
                assert!(seen.insert(key.clone()), "{key} is defined twice");
            }
        }
    }

    #[test]
    fn messages_come_out_in_the_chosen_language() {
        assert_eq!(Translator::new(Language::En).t("sign-in-title"), "Sign in");
        assert_eq!(
            Translator::new(Language::Fr).t("sign-in-title"),
            "Connexion"
        );
        assert_eq!(
            Translator::new(Language::Fr).t1("account-intro", "username", "zoë"),
            "Connecté en tant que zoë."
        );
    }
}
