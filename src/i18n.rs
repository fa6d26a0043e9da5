//! Messages in Dutch, French, German and English (Fluent catalogues in `locales/`), and the
//! choice of language: `ui_locales` of the request, then the language the person picked (cookie),
//! then `Accept-Language` (negotiated with `fluent-langneg`), then `[ui] default_language`.

use fluent_langneg::{negotiate_languages, NegotiationStrategy};
use fluent_templates::{Loader, StaticLoader};
use std::borrow::Cow;
use std::collections::HashMap;
use unic_langid::{langid, LanguageIdentifier};

/// A language the pages are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Nl,
    Fr,
    De,
    En,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Nl, Lang::Fr, Lang::De, Lang::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    /// The language's name in itself (the language switcher).
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::Nl => "Nederlands",
            Lang::Fr => "Français",
            Lang::De => "Deutsch",
            Lang::En => "English",
        }
    }

    /// Exactly `nl`, `fr`, `de` or `en`.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.as_str() == s)
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::Nl => langid!("nl"),
            Lang::Fr => langid!("fr"),
            Lang::De => langid!("de"),
            Lang::En => langid!("en"),
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

pub fn loader() -> &'static StaticLoader {
    &LOCALES
}

/// The best of our languages for tags in order of preference (`nl-BE`, `fr`, …), if any matches.
pub fn pick<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Lang> {
    let requested: Vec<LanguageIdentifier> =
        tags.into_iter().filter_map(|t| t.trim().replace('_', "-").parse().ok()).collect();
    let available: Vec<LanguageIdentifier> = Lang::ALL.iter().map(|l| l.id()).collect();
    let chosen = negotiate_languages(&requested, &available, None, NegotiationStrategy::Lookup);
    let first = chosen.first()?;
    Lang::ALL.into_iter().find(|l| l.id() == **first)
}

/// `Accept-Language`, most preferred first (its q-values; fluent-langneg itself keeps order only).
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut tags: Vec<(f32, &str)> = header
        .split(',')
        .map(|part| {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                .unwrap_or(1.0);
            (q, tag)
        })
        .filter(|(q, tag)| *q > 0.0 && !tag.is_empty() && *tag != "*")
        .collect();
    // A stable sort keeps the header's order between equal weights.
    tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    pick(tags.into_iter().map(|(_, t)| t))
}

/// A language chosen for one page; templates call `t("key")`.
#[derive(Clone, Debug)]
pub struct Tr {
    pub lang: Lang,
    id: LanguageIdentifier,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Self { lang, id: lang.id() }
    }

    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(&self.id, key)
    }

    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        self.tn(key, &[(name, value)])
    }

    /// A message with several arguments.
    pub fn tn(&self, key: &str, named: &[(&str, &str)]) -> String {
        let mut args: HashMap<Cow<'static, str>, fluent_templates::fluent_bundle::FluentValue> =
            HashMap::new();
        for (name, value) in named {
            args.insert(Cow::Owned(name.to_string()), value.to_string().into());
        }
        LOCALES.lookup_with_args(&self.id, key, &args)
    }

    /// A date (no time) as people of this language write it (Belgian time).
    pub fn date(&self, unix: i64) -> String {
        self.format(unix, "%d/%m/%Y", "%d.%m.%Y")
    }

    /// A date and time as people of this language write it (Belgian time).
    pub fn datetime(&self, unix: i64) -> String {
        self.format(unix, "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M")
    }

    fn format(&self, unix: i64, slashes: &str, dots: &str) -> String {
        let Some(utc) = chrono::DateTime::from_timestamp(unix, 0) else {
            return String::new();
        };
        let local = utc.with_timezone(&chrono_tz::Europe::Brussels);
        local.format(if self.lang == Lang::De { dots } else { slashes }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(from_accept_language("fr-BE,fr;q=0.9,en;q=0.8"), Some(Lang::Fr));
        assert_eq!(from_accept_language("es, de;q=0.5, en;q=0.7"), Some(Lang::En));
        assert_eq!(from_accept_language("es"), None);
        assert_eq!(from_accept_language("nl-BE;q=0, de"), Some(Lang::De));
        assert_eq!(pick(["nl-BE"]), Some(Lang::Nl));
        assert_eq!(pick(["de_CH"]), Some(Lang::De));
        assert_eq!(Lang::parse("nl-BE"), None);
    }

    fn keys(lang: &str) -> Vec<String> {
        let path = format!("{}/locales/{lang}/main.ftl", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut keys: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && l.contains(" ="))
            .filter_map(|l| l.split(" =").next().map(|k| k.trim().to_string()))
            .collect();
        keys.sort();
        keys
    }

    /// Every message exists in every language.
    #[test]
    fn catalogues_are_complete() {
        let en = keys("en");
        assert!(en.len() > 20);
        for lang in ["nl", "fr", "de"] {
            let other = keys(lang);
            let missing: Vec<_> = en.iter().filter(|k| !other.contains(k)).collect();
            let extra: Vec<_> = other.iter().filter(|k| !en.contains(k)).collect();
            assert!(missing.is_empty(), "{lang} misses {missing:?}");
            assert!(extra.is_empty(), "{lang} has keys English lacks: {extra:?}");
        }
    }

    #[test]
    fn lookup_and_arguments() {
        let nl = Tr::new(Lang::Nl);
        assert_ne!(nl.t("chooser-title"), Tr::new(Lang::En).t("chooser-title"));
        let s = Tr::new(Lang::En).t1("locked-until", "until", "12:00");
        assert!(s.contains("12:00"), "{s}");
    }

    #[test]
    fn dates_in_belgian_time() {
        // 2026-07-01 10:00 UTC = 12:00 in Brussels (summer); 2026-01-01 10:00 UTC = 11:00.
        assert_eq!(Tr::new(Lang::De).datetime(1_782_900_000), "01.07.2026 12:00");
        assert_eq!(Tr::new(Lang::Nl).datetime(1_767_261_600), "01/01/2026 11:00");
        assert_eq!(Tr::new(Lang::Fr).date(1_767_261_600), "01/01/2026");
        // The last Sunday of March 2026 (29th): 00:59 UTC is still winter, 01:00 summer.
        assert_eq!(Tr::new(Lang::En).datetime(1_774_745_940), "29/03/2026 01:59");
        assert_eq!(Tr::new(Lang::En).datetime(1_774_746_000), "29/03/2026 03:00");
    }
}
