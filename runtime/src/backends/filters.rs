//! Structured constraints parsed from a question — demographic, genres, a volume number,
//! price bounds — so retrieval ([`super::hybrid`], [`super::bm25`], the OpenSearch
//! `bool` filter in [`super::aws::opensearch`]) and recommendations
//! ([`super::catalog`]) apply them as filters instead of hoping the words rank well.
//!
//! The vocabulary (genres and demographics) is the catalog's own, plus a few customer
//! words ("scary" → horror, "for adults" → seinen). Genre words are only taken as a
//! constraint when the question asks for a kind of manga: it has a recommendation cue
//! ("recommend", "something", "anything", …), a demographic or a price bound, or it is
//! made of nothing but genre words ("seinen horror", "a time travel thriller"), and it
//! names no title. Otherwise "high school volleyball team" would filter on `school`.

use super::catalog::normalize;
use crate::domain::Title;
use regex::Regex;
use std::sync::LazyLock;

/// Demographics of the catalog, with the spellings customers use.
const DEMOGRAPHICS: &[(&str, &str)] = &[
    ("shonen", "shonen"),
    ("shounen", "shonen"),
    ("seinen", "seinen"),
    ("shojo", "shojo"),
    ("shoujo", "shojo"),
    ("josei", "josei"),
    ("kodomo", "kodomo"),
];

/// Customer words for a demographic; weaker than the names above, so they only count
/// in a question that asks for a kind of manga.
const AUDIENCE_WORDS: &[(&str, &str)] = &[
    ("for adults", "seinen"),
    ("for grown ups", "seinen"),
    ("for kids", "kodomo"),
    ("for children", "kodomo"),
    ("for my kid", "kodomo"),
];

/// Customer words for genres of the catalog (comma-separated when several).
const GENRE_WORDS: &[(&str, &str)] = &[
    ("scary", "horror"),
    ("creepy", "horror"),
    ("funny", "comedy"),
    ("hilarious", "comedy"),
    ("romantic comedy", "romance,comedy"),
    ("romcom", "romance,comedy"),
    ("rom com", "romance,comedy"),
    ("romantic", "romance"),
    ("love story", "romance"),
    ("science fiction", "sci fi"),
    ("scifi", "sci fi"),
    ("zombies", "zombie"),
    ("samurais", "samurai"),
    ("thrillers", "thriller"),
    ("mysteries", "mystery"),
    ("robots", "mecha"),
    ("giant robot", "mecha"),
];

/// Words that make a question ask for a kind of manga rather than describe one.
const CUES: &[&str] = &[
    "recommend",
    "recommendation",
    "recommendations",
    "suggest",
    "suggestion",
    "suggestions",
    "something",
    "anything",
    "what should i read",
    "any good",
];

/// Words that carry no constraint and no description ("a seinen thriller manga").
const FILLER: &[&str] = &[
    "a", "an", "the", "some", "any", "manga", "mangas", "series", "story", "stories", "book",
    "books", "comic", "comics", "title", "titles", "please", "set", "in", "with", "elements", "me",
    "i", "for", "of", "one", "good", "cheap", "new", "and", "or", "like", "read", "want", "would",
    "what", "should", "do", "you", "have", "is", "there", "s",
];

static PRICE_MAX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(under|below|less than|cheaper than|at most|up to|max(?:imum)?)\s*\$?\s*(\d{1,4})(?:\.(\d{2}))?")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static PRICE_MIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(over|above|more than|at least|min(?:imum)?)\s*\$?\s*(\d{1,4})(?:\.(\d{2}))?",
    )
    .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static VOLUME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:vol(?:ume)?\.?\s*#?\s*(\d{1,3})\b|(\d{1,3})(?:st|nd|rd|th)\s+volume\b)")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// The volume number a question names ("vol. 12", "volume 3", "the 3rd volume").
pub fn volume_number(text: &str) -> Option<u32> {
    let c = VOLUME.captures(text)?;
    c.get(1).or_else(|| c.get(2))?.as_str().parse().ok()
}

/// Constraints on catalog titles. The empty value constrains nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Normalised demographic (`seinen`, `shojo`, …).
    pub demographic: Option<String>,
    /// Normalised genres, all required.
    pub genres: Vec<String>,
    /// A volume the series must have (it has at least this many).
    pub volume: Option<u32>,
    /// Price per volume in cents, bounds inclusive.
    pub min_price_cents: Option<u32>,
    pub max_price_cents: Option<u32>,
}

impl Filters {
    /// True when some constraint is set (a volume number alone does not make a question
    /// a constraint question: "one piece volume 3" still names its title).
    pub fn constrains_kind(&self) -> bool {
        self.demographic.is_some()
            || !self.genres.is_empty()
            || self.min_price_cents.is_some()
            || self.max_price_cents.is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.constrains_kind() && self.volume.is_none()
    }

    /// Whether a title meets every constraint.
    pub fn admits(&self, t: &Title) -> bool {
        self.admits_fields(
            &normalize(&t.demographic),
            &t.genres.iter().map(|g| normalize(g)).collect::<Vec<_>>(),
            t.volumes,
            t.price_cents,
        )
    }

    /// The same test on the indexed fields (normalised demographic and genres).
    pub fn admits_fields(
        &self,
        demographic: &str,
        genres: &[String],
        volumes: u32,
        price_cents: u32,
    ) -> bool {
        self.demographic.as_deref().is_none_or(|d| d == demographic)
            && self.genres.iter().all(|g| genres.contains(g))
            && self.volume.is_none_or(|v| v >= 1 && v <= volumes)
            && self.min_price_cents.is_none_or(|p| price_cents >= p)
            && self.max_price_cents.is_none_or(|p| price_cents <= p)
    }
}

/// Parses [`Filters`] with the catalog's vocabulary.
#[derive(Debug, Clone)]
pub struct FilterParser {
    /// Normalised genre phrases of the catalog, longest first (so "dark fantasy" wins
    /// over "fantasy").
    genres: Vec<String>,
    /// Normalised title phrases (full title, title before a colon, id words): a question
    /// that names a title is about that title, not a kind.
    titles: Vec<String>,
}

fn padded(s: &str) -> String {
    format!(" {s} ")
}

fn contains_phrase(padded_text: &str, phrase: &str) -> bool {
    padded_text.contains(&padded(phrase))
}

/// Removes the first whole-word occurrence of `phrase` (so it is not matched twice).
fn take_phrase(padded_text: &mut String, phrase: &str) -> bool {
    let p = padded(phrase);
    match padded_text.find(&p) {
        Some(i) => {
            padded_text.replace_range(i..i + p.len(), " ");
            true
        }
        None => false,
    }
}

impl FilterParser {
    pub fn new(catalog: &[Title]) -> FilterParser {
        let mut genres: Vec<String> = catalog
            .iter()
            .flat_map(|t| t.genres.iter().map(|g| normalize(g)))
            .collect();
        genres.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        genres.dedup();
        let mut titles: Vec<String> = catalog
            .iter()
            .flat_map(|t| {
                [
                    normalize(&t.title),
                    normalize(t.title.split(':').next().unwrap_or(&t.title)),
                    t.id.replace('-', " "),
                ]
            })
            .filter(|p| p.len() >= 4)
            .collect();
        titles.sort();
        titles.dedup();
        FilterParser { genres, titles }
    }

    pub fn parse(&self, text: &str) -> Filters {
        let mut f = Filters {
            volume: volume_number(text),
            ..Filters::default()
        };
        let cents = |c: &regex::Captures<'_>| -> Option<u32> {
            let dollars: u32 = c.get(2)?.as_str().parse().ok()?;
            let cents: u32 = c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?;
            Some(dollars * 100 + cents)
        };
        if let Some(c) = PRICE_MAX.captures(text) {
            // "under $10" excludes $10.00 itself; "at most"/"up to" include it.
            let strict = matches!(
                c.get(1).map(|m| m.as_str().to_ascii_lowercase()).as_deref(),
                Some("under" | "below" | "less than" | "cheaper than")
            );
            f.max_price_cents = cents(&c).map(|p| if strict { p.saturating_sub(1) } else { p });
        }
        if let Some(c) = PRICE_MIN.captures(text) {
            let strict = matches!(
                c.get(1).map(|m| m.as_str().to_ascii_lowercase()).as_deref(),
                Some("over" | "above" | "more than")
            );
            f.min_price_cents = cents(&c).map(|p| if strict { p + 1 } else { p });
        }
        // Price and volume phrases are consumed before the words are looked at.
        let stripped = VOLUME.replace_all(text, " ");
        let stripped = PRICE_MAX.replace_all(&stripped, " ");
        let stripped = PRICE_MIN.replace_all(&stripped, " ");
        let norm = normalize(&stripped);
        let mut rest = padded(&norm);
        let names_title = self.titles.iter().any(|t| contains_phrase(&rest, t));

        for (word, demo) in DEMOGRAPHICS {
            if take_phrase(&mut rest, word) {
                f.demographic = Some((*demo).to_string());
            }
        }
        let cue = CUES.iter().any(|c| take_phrase(&mut rest, c));
        let mut audience = None;
        for (word, demo) in AUDIENCE_WORDS {
            if take_phrase(&mut rest, word) {
                audience = Some((*demo).to_string());
            }
        }
        let mut genres: Vec<String> = Vec::new();
        for (word, genre) in GENRE_WORDS {
            while take_phrase(&mut rest, word) {
                genres.extend(
                    genre
                        .split(',')
                        .filter(|g| self.genres.iter().any(|k| k == g))
                        .map(str::to_string),
                );
            }
        }
        for g in &self.genres {
            while take_phrase(&mut rest, g) {
                genres.push(g.clone());
            }
        }
        genres.sort();
        genres.dedup();
        let only_kind_words = rest.split_whitespace().all(|w| FILLER.contains(&w));
        let asks_for_kind = cue
            || f.demographic.is_some()
            || audience.is_some()
            || f.min_price_cents.is_some()
            || f.max_price_cents.is_some()
            || only_kind_words;
        if asks_for_kind && !names_title {
            f.genres = genres;
            if f.demographic.is_none() {
                f.demographic = audience;
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSet;

    fn parser() -> FilterParser {
        FilterParser::new(&DataSet::bundled().expect("data").catalog)
    }

    #[test]
    fn constraints_from_customer_questions() {
        let p = parser();
        let f = p.parse("recommend a seinen thriller");
        assert_eq!(f.demographic.as_deref(), Some("seinen"));
        assert_eq!(f.genres, vec!["thriller".to_string()]);
        let f = p.parse("a shojo romance under $10 with supernatural elements");
        assert_eq!(f.demographic.as_deref(), Some("shojo"));
        assert_eq!(
            f.genres,
            vec!["romance".to_string(), "supernatural".to_string()]
        );
        assert_eq!(f.max_price_cents, Some(999));
        let f = p.parse("horror manga over $14");
        assert_eq!(f.min_price_cents, Some(1401));
        assert_eq!(f.genres, vec!["horror".to_string()]);
        let f = p.parse("a sci-fi seinen up to $12.99");
        assert_eq!(f.max_price_cents, Some(1299));
        assert_eq!(f.genres, vec!["sci fi".to_string()]);
        let f = p.parse("recommend a shonen romantic comedy");
        assert_eq!(f.genres, vec!["comedy".to_string(), "romance".to_string()]);
        let f = p.parse("action comedy for adults");
        assert_eq!(f.demographic.as_deref(), Some("seinen"));
        let f = p.parse("a time travel thriller");
        assert_eq!(
            f.genres,
            vec!["thriller".to_string(), "time travel".to_string()]
        );
    }

    #[test]
    fn descriptions_and_titles_are_not_constraints() {
        let p = parser();
        assert!(p.parse("high school volleyball team").is_empty());
        assert!(p.parse("junji ito horror").genres.is_empty());
        // "Monster" is a title (and a genre): a question naming it is about the title.
        assert!(p
            .parse("recommend something like monster")
            .genres
            .is_empty());
        let f = p.parse("do you have one piece volume 3 in stock?");
        assert_eq!(f.volume, Some(3));
        assert!(!f.constrains_kind());
        assert_eq!(volume_number("price of vol. 12 of berserk"), Some(12));
        assert_eq!(volume_number("the 3rd volume of naruto"), Some(3));
        assert_eq!(volume_number("volume"), None);
    }

    #[test]
    fn admits_checks_every_constraint() {
        let d = DataSet::bundled().expect("data");
        let p = parser();
        let f = p.parse("recommend a seinen thriller");
        let mut ids: Vec<&str> = d
            .catalog
            .iter()
            .filter(|t| f.admits(t))
            .map(|t| t.id.as_str())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, ["20th-century-boys", "ajin", "erased", "monster"]);
        let one_piece = &d.catalog[0];
        assert!(p.parse("one piece volume 110").admits(one_piece));
        assert!(!p.parse("one piece volume 111").admits(one_piece));
    }
}
