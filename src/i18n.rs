//! Messages in Dutch, French, German and English (Fluent catalogues in `locales/`), and the
//! choice of language: `ui_locales` of the request, then the language the person picked (cookie),
//! then `Accept-Language`, then `[ui] default_language`.

use fluent_templates::{Loader, StaticLoader};
use std::borrow::Cow;
use std::collections::HashMap;
use unic_langid::LanguageIdentifier;

pub const LANGUAGES: [&str; 4] = ["nl", "fr", "de", "en"];

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

pub fn is_supported(lang: &str) -> bool {
    LANGUAGES.contains(&lang)
}

/// The first supported language among tags like `nl-BE`, `fr`, `de-DE;q=0.8`.
pub fn pick<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    tags.into_iter().find_map(|t| {
        let primary = t.split(';').next()?.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        LANGUAGES.iter().copied().find(|l| *l == primary)
    })
}

/// `Accept-Language` in the order of its q-values.
pub fn from_accept_language(header: &str) -> Option<&'static str> {
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
        .collect();
    tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    pick(tags.into_iter().map(|(_, t)| t))
}

/// A language chosen for one page; templates call `t("key")`.
#[derive(Clone, Debug)]
pub struct Tr {
    pub lang: &'static str,
    id: LanguageIdentifier,
}

impl Tr {
    pub fn new(lang: &str) -> Self {
        let lang = LANGUAGES.iter().copied().find(|l| *l == lang).unwrap_or("en");
        let id = lang.parse().unwrap_or_default();
        Self { lang, id }
    }

    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(&self.id, key)
    }

    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args: HashMap<Cow<'static, str>, fluent_templates::fluent_bundle::FluentValue> =
            HashMap::new();
        args.insert(Cow::Owned(name.to_string()), value.to_string().into());
        LOCALES.lookup_with_args(&self.id, key, &args)
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
        let dt = self.datetime(unix);
        dt.split(' ').next().unwrap_or_default().to_string()
    }

    /// A date and time as people of this language write it (Belgian time).
    pub fn datetime(&self, unix: i64) -> String {
        use chrono::TimeZone;
        let Some(utc) = chrono::Utc.timestamp_opt(unix, 0).single() else {
            return String::new();
        };
        // Brussels: CET/CEST. Without a time-zone database, apply the EU summer-time rule.
        let local = utc + chrono::Duration::hours(if eu_summer_time(&utc) { 2 } else { 1 });
        match self.lang {
            "en" => local.format("%d/%m/%Y %H:%M").to_string(),
            "de" => local.format("%d.%m.%Y %H:%M").to_string(),
            _ => local.format("%d/%m/%Y %H:%M").to_string(),
        }
    }
}

/// EU summer time: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of
/// October.
fn eu_summer_time(t: &chrono::DateTime<chrono::Utc>) -> bool {
    use chrono::{Datelike, TimeZone};
    let last_sunday = |month: u32| {
        let mut d = chrono::NaiveDate::from_ymd_opt(t.year(), month, 31).unwrap_or_default();
        while d.weekday() != chrono::Weekday::Sun {
            d = d.pred_opt().unwrap_or(d);
        }
        chrono::Utc.from_utc_datetime(&d.and_hms_opt(1, 0, 0).unwrap_or_default())
    };
    *t >= last_sunday(3) && *t < last_sunday(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(from_accept_language("fr-BE,fr;q=0.9,en;q=0.8"), Some("fr"));
        assert_eq!(from_accept_language("es, de;q=0.5, en;q=0.7"), Some("en"));
        assert_eq!(from_accept_language("es"), None);
        assert_eq!(pick(["nl-BE"]), Some("nl"));
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
        let nl = Tr::new("nl");
        assert_ne!(nl.t("chooser-title"), Tr::new("en").t("chooser-title"));
        let s = Tr::new("en").t1("locked-until", "until", "12:00");
        assert!(s.contains("12:00"), "{s}");
    }

    #[test]
    fn dates_in_belgian_time() {
        // 2026-07-01 10:00 UTC = 12:00 in Brussels (summer); 2026-01-01 10:00 UTC = 11:00.
        assert_eq!(Tr::new("de").datetime(1_782_900_000), "01.07.2026 12:00");
        assert_eq!(Tr::new("nl").datetime(1_767_261_600), "01/01/2026 11:00");
    }
}
