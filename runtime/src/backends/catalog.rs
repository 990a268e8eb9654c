//! Embedded [`Services`]: catalog search, title look-up (name or ISBN), price/stock,
//! recommendations and order status over the bundled catalog
//! ([`crate::data`]) and a deterministically generated orders table. Stands in for the
//! commerce APIs the production orchestrator calls in parallel (PO-07, PO-08).
//!
//! Matching is plain and explainable: title/author phrases via aho-corasick, genre and
//! demographic words, and synopsis word overlap. Ranked passage retrieval is the job of
//! [`super::bm25`].

use super::classifier::SplitMix64;
use super::filters::FilterParser;
use super::{BackendError, Recommendation, Services};
use crate::domain::{Order, OrderLine, OrderState, Scope, Title, Volume};
use aho_corasick::{AhoCorasick, MatchKind};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};

/// Lower-case ASCII words separated by single spaces; everything else becomes a space.
/// Shared by the services, the cache key and the rules so phrases match the same way.
pub fn normalize(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "about",
    "is",
    "are",
    "do",
    "does",
    "you",
    "your",
    "have",
    "has",
    "any",
    "me",
    "my",
    "i",
    "im",
    "it",
    "its",
    "that",
    "this",
    "what",
    "which",
    "who",
    "how",
    "much",
    "many",
    "show",
    "find",
    "search",
    "looking",
    "look",
    "want",
    "like",
    "manga",
    "manga's",
    "series",
    "book",
    "books",
    "volume",
    "volumes",
    "vol",
    "please",
    "some",
    "something",
    "get",
    "can",
    "could",
    "would",
    "should",
    "there",
    "by",
    "from",
    "sell",
    "carry",
    "stock",
    "buy",
    "titles",
    "title",
    "recommend",
    "suggest",
    "similar",
    "good",
    "read",
    "next",
    "more",
    "one",
    "be",
    "s",
    "t",
    "all",
    "catalog",
];

/// Words in questions that stand for a genre or demographic in the catalog.
const SYNONYMS: &[(&str, &str)] = &[
    ("scary", "horror"),
    ("creepy", "horror"),
    ("funny", "comedy"),
    ("hilarious", "comedy"),
    ("romantic", "romance"),
    ("love story", "romance"),
    ("science fiction", "sci fi"),
    ("scifi", "sci fi"),
    ("robots", "mecha"),
    ("robot", "mecha"),
    ("ninja", "martial arts"),
    ("samurai", "samurai"),
    ("cozy", "slice of life"),
    ("cosy", "slice of life"),
    ("food", "cooking"),
    ("football", "sports"),
    ("soccer", "sports"),
    ("volleyball", "sports"),
    ("basketball", "sports"),
    ("baseball", "baseball"),
    ("boxing", "boxing"),
    ("zombies", "zombie"),
    ("ghosts", "supernatural"),
    ("magic", "magic"),
    ("kids", "kodomo"),
    ("children", "kodomo"),
    ("child", "kodomo"),
    ("adults", "seinen"),
    ("teen", "shonen"),
    ("teens", "shonen"),
    ("teenager", "shonen"),
];

#[derive(Debug)]
pub struct CatalogServices {
    titles: Vec<Title>,
    by_id: HashMap<String, usize>,
    /// Pattern index → title index, for title phrases ("one piece", "demon slayer").
    title_matcher: AhoCorasick,
    title_of_pattern: Vec<usize>,
    author_matcher: AhoCorasick,
    titles_of_author_pattern: Vec<Vec<usize>>,
    /// Normalised genre and demographic phrases used by the catalog.
    facets: Vec<String>,
    /// Per title: normalised genres + demographic, and synopsis words (precomputed because
    /// every search scores every title).
    title_facets: Vec<Vec<String>>,
    synopsis_words: Vec<HashSet<String>>,
    orders: HashMap<String, Order>,
    filters: FilterParser,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build catalog matcher: {0}")]
pub struct CatalogError(String);

impl CatalogServices {
    pub fn new(titles: Vec<Title>, order_count: u32) -> Result<Self, CatalogError> {
        let by_id = titles
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let mut pats: Vec<String> = Vec::new();
        let mut title_of_pattern = Vec::new();
        let mut seen = HashSet::new();
        for (i, t) in titles.iter().enumerate() {
            let full = normalize(&t.title);
            let short = normalize(t.title.split(':').next().unwrap_or(&t.title));
            let from_id = t.id.replace('-', " ");
            for p in [
                full.clone(),
                short,
                from_id,
                full.strip_prefix("the ").unwrap_or("").to_string(),
            ] {
                // Very short phrases ("k on" aside) would match ordinary words.
                if p.len() >= 4 && seen.insert(p.clone()) {
                    pats.push(p);
                    title_of_pattern.push(i);
                }
            }
        }
        let title_matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&pats)
            .map_err(|e| CatalogError(e.to_string()))?;

        let mut author_pats: Vec<String> = Vec::new();
        let mut titles_of_author_pattern: Vec<Vec<usize>> = Vec::new();
        for (i, t) in titles.iter().enumerate() {
            for a in t.author.split(',') {
                let a = normalize(a);
                if a.len() < 2 {
                    continue;
                }
                match author_pats.iter().position(|p| *p == a) {
                    Some(k) => titles_of_author_pattern[k].push(i),
                    None => {
                        author_pats.push(a);
                        titles_of_author_pattern.push(vec![i]);
                    }
                }
            }
        }
        let author_matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&author_pats)
            .map_err(|e| CatalogError(e.to_string()))?;

        let mut facets: Vec<String> = titles
            .iter()
            .flat_map(|t| {
                t.genres
                    .iter()
                    .map(|g| normalize(g))
                    .chain([normalize(&t.demographic)])
            })
            .collect();
        facets.sort();
        facets.dedup();
        let title_facets = titles
            .iter()
            .map(|t| {
                t.genres
                    .iter()
                    .map(|g| normalize(g))
                    .chain([normalize(&t.demographic)])
                    .collect()
            })
            .collect();
        let synopsis_words = titles
            .iter()
            .map(|t| {
                normalize(&t.synopsis)
                    .split(' ')
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        let orders = generate_orders(&titles, order_count);
        let filters = FilterParser::new(&titles);
        Ok(CatalogServices {
            filters,
            title_facets,
            synopsis_words,
            titles,
            by_id,
            title_matcher,
            title_of_pattern,
            author_matcher,
            titles_of_author_pattern,
            facets,
            orders,
        })
    }

    pub fn titles(&self) -> &[Title] {
        &self.titles
    }

    pub fn title(&self, id: &str) -> Option<&Title> {
        self.by_id.get(id).map(|&i| &self.titles[i])
    }

    /// Volume `number` of title `i`, if the series has it. The catalog has one stock
    /// figure per series (the copies of its best-stocked volume): each volume's stock is
    /// drawn from it deterministically, so the same volume always has the same stock,
    /// some volumes of a stocked series are sold out, and a sold-out series has none.
    fn volume(&self, i: usize, number: u32) -> Option<Volume> {
        let t = &self.titles[i];
        if number == 0 || number > t.volumes {
            return None;
        }
        let mut rng = SplitMix64(0x766f_6c75_6d65 ^ ((i as u64) << 20) ^ u64::from(number));
        let stock = if t.stock == 0 || rng.below(8) == 0 {
            0
        } else {
            1 + rng.below(u64::from(t.stock)) as u32
        };
        Some(Volume {
            number,
            price_cents: t.price_cents,
            stock,
        })
    }

    pub fn order_ids(&self) -> impl Iterator<Item = &str> {
        self.orders.keys().map(String::as_str)
    }

    /// Titles named in the text, longest phrase first, each once.
    pub fn mentioned_titles(&self, text: &str) -> Vec<usize> {
        let norm = normalize(text);
        let mut out = Vec::new();
        for m in self.title_matcher.find_iter(&norm) {
            if at_word_boundaries(&norm, m.start(), m.end()) {
                let t = self.title_of_pattern[m.pattern().as_usize()];
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    fn mentioned_authors(&self, norm: &str) -> Vec<usize> {
        let mut out = Vec::new();
        for m in self.author_matcher.find_iter(norm) {
            if at_word_boundaries(norm, m.start(), m.end()) {
                for &t in &self.titles_of_author_pattern[m.pattern().as_usize()] {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// Genre/demographic phrases asked for, after synonym expansion.
    fn mentioned_facets(&self, norm: &str) -> Vec<String> {
        let padded = format!(" {norm} ");
        let mut out: Vec<String> = self
            .facets
            .iter()
            .filter(|f| padded.contains(&format!(" {f} ")))
            .cloned()
            .collect();
        for (word, facet) in SYNONYMS {
            if padded.contains(&format!(" {word} ")) && !out.iter().any(|f| f == facet) {
                out.push((*facet).to_string());
            }
        }
        out
    }

    fn isbn_title(&self, text: &str) -> Option<usize> {
        let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() < 13 {
            return None;
        }
        self.titles.iter().position(|t| digits.contains(&t.isbn))
    }

    fn score(&self, query: &str) -> Vec<(f32, usize)> {
        let norm = normalize(query);
        let mut scores = vec![0.0f32; self.titles.len()];
        for (rank, t) in self.mentioned_titles(query).into_iter().enumerate() {
            scores[t] += 10.0 - rank as f32 * 0.1;
        }
        for t in self.mentioned_authors(&norm) {
            scores[t] += 6.0;
        }
        if let Some(t) = self.isbn_title(query) {
            scores[t] += 12.0;
        }
        let facets = self.mentioned_facets(&norm);
        let terms: Vec<&str> = norm
            .split(' ')
            .filter(|w| w.len() > 2 && !STOPWORDS.contains(w))
            .collect();
        for (i, score) in scores.iter_mut().enumerate() {
            let tf = &self.title_facets[i];
            *score += 3.0 * facets.iter().filter(|f| tf.contains(f)).count() as f32;
            let syn = &self.synopsis_words[i];
            *score += 0.5 * terms.iter().filter(|w| syn.contains(**w)).count() as f32;
        }
        let mut ranked: Vec<(f32, usize)> = scores
            .into_iter()
            .enumerate()
            .filter(|(_, s)| *s > 0.0)
            .map(|(i, s)| (s, i))
            .collect();
        // Ties broken by catalog order so results are deterministic.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
    }
}

fn at_word_boundaries(s: &str, start: usize, end: usize) -> bool {
    let b = s.as_bytes();
    (start == 0 || b[start - 1] == b' ') && (end == b.len() || b[end] == b' ')
}

/// Canonical `MA-123456` form of an order reference (`MA-123456`, `ma123456`, `#123456`).
pub fn canonical_order_id(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits.len() == 6).then(|| format!("MA-{digits}"))
}

/// Deterministic orders `MA-100000`.. so the demo and tests can look them up; dates are
/// fixed strings, not derived from the clock. Order `MA-1000nn` belongs to customer
/// `customer-{nn % 50}` (see [`demo_customer`]).
fn generate_orders(titles: &[Title], count: u32) -> HashMap<String, Order> {
    let mut rng = SplitMix64(0x6f72_6465_7273);
    let states = [
        OrderState::Processing,
        OrderState::Shipped,
        OrderState::Shipped,
        OrderState::OutForDelivery,
        OrderState::Delivered,
        OrderState::Delivered,
        OrderState::Delivered,
        OrderState::Cancelled,
    ];
    let carriers = ["UPS", "USPS", "FedEx"];
    let mut out = HashMap::new();
    if titles.is_empty() {
        return out;
    }
    for n in 0..count {
        let id = format!("MA-{}", 100_000 + n);
        let day = 1 + rng.below(28);
        let month = 1 + rng.below(12);
        let lines = (0..1 + rng.below(3))
            .map(|_| {
                let t = &titles[rng.below(titles.len() as u64) as usize];
                OrderLine {
                    title_id: t.id.clone(),
                    title: t.title.clone(),
                    volume: 1 + rng.below(u64::from(t.volumes.max(1))) as u32,
                    quantity: 1 + rng.below(2) as u32,
                }
            })
            .collect();
        let state = states[rng.below(states.len() as u64) as usize];
        let shipped = matches!(
            state,
            OrderState::Shipped | OrderState::OutForDelivery | OrderState::Delivered
        );
        let carrier = shipped.then(|| carriers[rng.below(3) as usize].to_string());
        let tracking = shipped.then(|| format!("1Z{:010}", rng.below(10_000_000_000)));
        let eta = matches!(
            state,
            OrderState::Processing | OrderState::Shipped | OrderState::OutForDelivery
        )
        .then(|| format!("2025-{:02}-{:02}", month, (day + 4).min(28)));
        out.insert(
            id.clone(),
            Order {
                id,
                customer: demo_customer(n),
                placed_on: format!("2025-{month:02}-{day:02}"),
                state,
                lines,
                carrier,
                tracking,
                eta,
            },
        );
    }
    out
}

/// The owner of generated order number `n` (`MA-{100000 + n}`): customers
/// `customer-0` to `customer-49`, so a token with `sub: customer-1` owns
/// `MA-100001`, `MA-100051`, …
pub fn demo_customer(n: u32) -> String {
    format!("customer-{}", n % 50)
}

#[async_trait]
impl Services for CatalogServices {
    async fn search_catalog(&self, query: &str, limit: usize) -> Result<Vec<Title>, BackendError> {
        Ok(self
            .score(query)
            .into_iter()
            .take(limit)
            .map(|(_, i)| self.titles[i].clone())
            .collect())
    }

    async fn lookup_title(&self, query: &str) -> Result<Option<Title>, BackendError> {
        let hit = self
            .isbn_title(query)
            .or_else(|| self.mentioned_titles(query).first().copied());
        Ok(hit.map(|i| self.titles[i].clone()))
    }

    async fn lookup_volume(
        &self,
        query: &str,
        number: u32,
    ) -> Result<Option<(Title, Option<Volume>)>, BackendError> {
        let hit = self
            .isbn_title(query)
            .or_else(|| self.mentioned_titles(query).first().copied());
        Ok(hit.map(|i| (self.titles[i].clone(), self.volume(i, number))))
    }

    async fn order_status(
        &self,
        order_id: &str,
        scope: Scope<'_>,
    ) -> Result<Option<Order>, BackendError> {
        Ok(canonical_order_id(order_id)
            .and_then(|id| self.orders.get(&id))
            .filter(|o| scope.may_read(&o.customer))
            .cloned())
    }

    async fn recommend(
        &self,
        query: &str,
        seen: &[String],
        limit: usize,
    ) -> Result<Recommendation, BackendError> {
        let mentioned = self.mentioned_titles(query);
        let filters = self.filters.parse(query);
        // What the question asks for comes first: a kind of title ("a seinen thriller")
        // is not anchored on a title from an earlier turn; "more like that one" is.
        let seed_idx = mentioned.first().copied().or_else(|| {
            if filters.constrains_kind() {
                None
            } else {
                seen.iter().find_map(|id| self.by_id.get(id).copied())
            }
        });
        let norm = normalize(query);
        let facets = self.mentioned_facets(&norm);
        let exclude: HashSet<usize> = mentioned
            .iter()
            .copied()
            .chain(seen.iter().filter_map(|id| self.by_id.get(id).copied()))
            .collect();
        let seed = seed_idx.map(|i| &self.titles[i]);
        let mut ranked: Vec<(f32, usize)> = self
            .titles
            .iter()
            .enumerate()
            .filter(|(i, t)| !exclude.contains(i) && filters.admits(t))
            .map(|(i, t)| {
                let mut s = 0.0;
                if let Some(seed) = seed {
                    s += 2.0 * t.genres.iter().filter(|g| seed.genres.contains(g)).count() as f32;
                    if t.demographic == seed.demographic {
                        s += 1.0;
                    }
                }
                s += 3.0
                    * facets
                        .iter()
                        .filter(|f| self.title_facets[i].contains(f))
                        .count() as f32;
                if t.stock > 0 {
                    s += 0.5; // prefer what we can ship today
                }
                (s, i)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let titles = ranked
            .into_iter()
            .take(limit)
            .map(|(_, i)| self.titles[i].clone())
            .collect();
        Ok(Recommendation {
            seed: seed.cloned(),
            titles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSet;

    fn services() -> CatalogServices {
        let d = DataSet::bundled().expect("data");
        CatalogServices::new(d.catalog, 50).expect("catalog")
    }

    #[tokio::test]
    async fn finds_titles_authors_isbns_and_orders() {
        let s = services();
        let hits = s
            .search_catalog("do you have demon slayer?", 3)
            .await
            .expect("search");
        assert_eq!(hits[0].id, "demon-slayer");
        let urasawa = s
            .search_catalog("manga by naoki urasawa", 5)
            .await
            .expect("search");
        assert!(
            urasawa
                .iter()
                .take(3)
                .all(|t| t.author.contains("Naoki Urasawa")),
            "{urasawa:?}"
        );
        let first = &s.titles()[0];
        let by_isbn = s
            .lookup_title(&format!("isbn {}", first.isbn))
            .await
            .expect("lookup");
        assert_eq!(by_isbn.map(|t| t.id), Some(first.id.clone()));
        assert!(s
            .order_status("ma100003", Scope::Developer)
            .await
            .expect("order")
            .is_some());
        assert!(s
            .order_status("MA-999999", Scope::Developer)
            .await
            .expect("order")
            .is_none());
        let own = Scope::Customer("customer-3");
        assert_eq!(
            s.order_status("MA-100003", own)
                .await
                .expect("order")
                .map(|o| o.customer),
            Some("customer-3".to_string())
        );
        assert!(
            s.order_status("MA-100004", own)
                .await
                .expect("order")
                .is_none(),
            "another customer's order is not found"
        );
    }

    #[tokio::test]
    async fn recommendations_share_genres_and_exclude_the_seed() {
        let s = services();
        let r = s
            .recommend("something like death note", &[], 5)
            .await
            .expect("recommend");
        assert_eq!(r.seed.as_ref().map(|t| t.id.as_str()), Some("death-note"));
        assert!(r.titles.iter().all(|t| t.id != "death-note"));
        let seed_genres = &s.title("death-note").expect("seed").genres;
        assert!(r.titles[0].genres.iter().any(|g| seed_genres.contains(g)));
    }

    #[test]
    fn title_phrases_need_word_boundaries() {
        let s = services();
        assert!(s.mentioned_titles("one piece please").contains(&0));
        assert!(s.mentioned_titles("someone pieces").is_empty());
    }
}
