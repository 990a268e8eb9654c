//! The passages every retriever indexes, in one shape: the embedded BM25 index
//! ([`super::bm25`]), the in-memory vectors ([`super::hybrid`]) and the OpenSearch
//! documents of the OpenSearch index ([`super::aws::opensearch`]). One document per
//! catalog title and per FAQ entry, with the keyword fields the filters
//! ([`super::filters`]) test.

use super::catalog::normalize;
use super::filters::Filters;
use crate::domain::{Corpus, FaqEntry, Passage, Title};
use serde::{Deserialize, Serialize};

/// One indexed passage. `source_id` is `catalog:<id>` or `faq:<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDoc {
    pub source_id: String,
    /// `catalog` or `faq`.
    pub corpus: String,
    pub title: String,
    pub text: String,
    /// Normalised demographic (catalog only, empty for FAQ).
    pub demographic: String,
    /// Normalised genres (catalog only).
    pub genres: Vec<String>,
    pub volumes: u32,
    pub price_cents: u32,
}

impl IndexDoc {
    /// The text that is embedded: title and body, as a reader would see them.
    pub fn embedding_text(&self) -> String {
        format!("{}. {}", self.title, self.text)
    }

    pub fn in_corpus(&self, corpus: Corpus) -> bool {
        match corpus {
            Corpus::All => true,
            Corpus::Catalog => self.corpus == "catalog",
            Corpus::Faq => self.corpus == "faq",
        }
    }

    /// FAQ passages have no demographic, genre or price, so a question that constrains
    /// the kind of title admits none of them; a volume number alone does not exclude them.
    pub fn admitted_by(&self, f: &Filters) -> bool {
        if self.corpus == "faq" {
            return !f.constrains_kind();
        }
        f.admits_fields(
            &self.demographic,
            &self.genres,
            self.volumes,
            self.price_cents,
        )
    }

    pub fn passage(&self, score: f32) -> Passage {
        Passage {
            source_id: self.source_id.clone(),
            title: self.title.clone(),
            text: self.text.clone(),
            score,
        }
    }
}

/// The documents of the bundled (or `MANGA_DATA_DIR`) catalog and FAQ, catalog first.
pub fn documents(catalog: &[Title], faq: &[FaqEntry]) -> Vec<IndexDoc> {
    let mut out = Vec::with_capacity(catalog.len() + faq.len());
    for t in catalog {
        out.push(IndexDoc {
            source_id: format!("catalog:{}", t.id),
            corpus: "catalog".into(),
            title: t.title.clone(),
            text: format!(
                "{} by {} ({}; {}, {} volumes): {}",
                t.title,
                t.author,
                t.genres.join(", "),
                t.demographic,
                t.volumes,
                t.synopsis
            ),
            demographic: normalize(&t.demographic),
            genres: t.genres.iter().map(|g| normalize(g)).collect(),
            volumes: t.volumes,
            price_cents: t.price_cents,
        });
    }
    for f in faq {
        out.push(IndexDoc {
            source_id: format!("faq:{}", f.id),
            corpus: "faq".into(),
            title: f.question.clone(),
            text: format!("{} ({})", f.answer, f.topic),
            demographic: String::new(),
            genres: Vec::new(),
            volumes: 0,
            price_cents: 0,
        });
    }
    out
}
