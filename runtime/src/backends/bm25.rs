//! Embedded [`Retriever`]: BM25 over the bundled catalog and FAQ with tantivy, in an
//! in-RAM index built at start-up (about 200 short documents; milliseconds to build).
//! Stands in for OpenSearch Serverless's BM25 half (PO-03); [`super::hybrid`] fuses it
//! with vector scores. Documents come from [`super::corpus`], the shape every retriever
//! indexes; [`Filters`] are applied exactly: the corpus is small enough to rank every
//! document and drop the ones a filter rejects before taking `k`.

use super::corpus::{documents, IndexDoc};
use super::filters::Filters;
use super::{BackendError, Retriever};
use crate::domain::{Corpus, FaqEntry, Passage, Title};
use async_trait::async_trait;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, STRING, TEXT};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Term};

#[derive(Debug, thiserror::Error)]
#[error("cannot build the retrieval index: {0}")]
pub struct IndexError(#[from] tantivy::TantivyError);

pub struct Bm25Retriever {
    docs: Vec<IndexDoc>,
    reader: IndexReader,
    parser: QueryParser,
    kind: Field,
}

impl std::fmt::Debug for Bm25Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Retriever")
            .field("docs", &self.reader.searcher().num_docs())
            .finish()
    }
}

const QUERY_STOPWORDS: &[&str] = &[
    "a", "an", "the", "do", "does", "did", "i", "you", "your", "my", "me", "we", "our", "is",
    "are", "was", "be", "to", "of", "for", "in", "on", "at", "and", "or", "it", "its", "can",
    "could", "would", "with", "there", "any", "what", "which", "who", "that", "this", "have",
    "has", "please",
];

/// Lower-cases, keeps letters and digits, folds plurals ("orders" → "order",
/// "stories" → "story") and splits "preorder" like the corpus's "pre-order", for
/// documents and queries alike. A deliberately small stand-in for a stemmer (tantivy's would add a crate).
fn fold(text: &str) -> String {
    let lowered: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    for w in lowered.split_whitespace() {
        let w = match w {
            "preorder" | "preorders" => {
                out.push("pre".into());
                "order"
            }
            w => w,
        };
        let folded = if w.len() > 4 && w.ends_with("ies") {
            format!("{}y", &w[..w.len() - 3])
        } else if w.len() > 3
            && w.ends_with('s')
            && !w.ends_with("ss")
            && !w.ends_with("us")
            && !w.ends_with("is")
            && !w.ends_with("ies")
        {
            w[..w.len() - 1].to_string()
        } else {
            w.to_string()
        };
        out.push(folded);
    }
    out.join(" ")
}

/// Smallest per-thread indexing arena tantivy accepts; the corpus is tiny.
const WRITER_ARENA_BYTES: usize = 15_000_000;

impl Bm25Retriever {
    pub fn build(catalog: &[Title], faq: &[FaqEntry]) -> Result<Self, IndexError> {
        let mut sb = Schema::builder();
        // A document's position in `docs` (a fast field: read per hit without loading
        // stored documents); display text lives in `docs`, the indexed copies are folded
        // (see `fold`).
        let ord = sb.add_u64_field("ord", FAST);
        let kind = sb.add_text_field("kind", STRING);
        let title_idx = sb.add_text_field("title_idx", TEXT);
        let body_idx = sb.add_text_field("body_idx", TEXT);
        let index = Index::create_in_ram(sb.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_ARENA_BYTES)?;
        let docs = documents(catalog, faq);
        for (i, d) in docs.iter().enumerate() {
            writer.add_document(doc!(
                ord => i as u64,
                kind => d.corpus.clone(),
                title_idx => fold(&d.title),
                body_idx => fold(&d.text),
            ))?;
        }
        writer.commit()?;
        // Manual reload: the index never changes after start-up, so no watcher thread.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![title_idx, body_idx]);
        parser.set_field_boost(title_idx, 2.0);
        Ok(Bm25Retriever {
            docs,
            reader,
            parser,
            kind,
        })
    }

    /// [`Self::search_filtered`] without filters.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
    ) -> Result<Vec<Passage>, BackendError> {
        self.search_filtered(query, k, corpus, &Filters::default())
    }

    /// The documents in index order ([`super::corpus::documents`]).
    pub fn docs(&self) -> &[IndexDoc] {
        &self.docs
    }

    /// Ranked document positions (into [`Self::docs`]) with their BM25 scores, the
    /// filters applied, at most `k`.
    pub fn rank(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<(usize, f32)>, BackendError> {
        // `fold` also strips query syntax, so user text can never be a malformed tantivy
        // query. Function words are dropped: the index keeps them (no stopword filter
        // compiled in), so "how do I …" would otherwise favour answers that say "do" twice.
        let cleaned = fold(query)
            .split(' ')
            .filter(|w| !QUERY_STOPWORDS.contains(w))
            .collect::<Vec<_>>()
            .join(" ");
        if cleaned.trim().is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let (text_query, _ignored) = self.parser.parse_query_lenient(&cleaned);
        let query: Box<dyn Query> = match corpus {
            Corpus::All => text_query,
            Corpus::Catalog | Corpus::Faq => {
                let kind = if corpus == Corpus::Faq {
                    "faq"
                } else {
                    "catalog"
                };
                let filter = TermQuery::new(
                    Term::from_field_text(self.kind, kind),
                    IndexRecordOption::Basic,
                );
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, text_query),
                    (Occur::Must, Box::new(filter)),
                ]))
            }
        };
        let searcher = self.reader.searcher();
        // Every document is ranked when a filter applies (about 200), so the filter
        // removes candidates without costing recall.
        let limit = if filters.is_empty() {
            k
        } else {
            self.docs.len().max(1)
        };
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let mut out = Vec::with_capacity(k);
        for (score, addr) in top {
            let column = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("ord")
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
            let Some(i) = column
                .first(addr.doc_id)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < self.docs.len())
            else {
                return Err(BackendError::Invalid("index document without ord".into()));
            };
            if self.docs[i].admitted_by(filters) {
                out.push((i, score));
                if out.len() == k {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Synchronous search with filters; fast enough (tens of µs) to run on the async
    /// worker directly.
    pub fn search_filtered(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError> {
        Ok(self
            .rank(query, k, corpus, filters)?
            .into_iter()
            .map(|(i, s)| self.docs[i].passage(s))
            .collect())
    }
}

#[async_trait]
impl Retriever for Bm25Retriever {
    async fn retrieve(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError> {
        self.search_filtered(query, k, corpus, filters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSet;

    #[test]
    fn ranks_the_relevant_faq_and_catalog_entries_first() {
        let d = DataSet::bundled().expect("data");
        let r = Bm25Retriever::build(&d.catalog, &d.faq).expect("index");
        let faq = r
            .search("how do I return a volume?", 3, Corpus::Faq)
            .expect("search");
        assert!(faq.iter().all(|p| p.source_id.starts_with("faq:")));
        assert_eq!(faq[0].source_id, "faq:returns-how", "{faq:?}");
        let pre = r
            .search("can i preorder the next volume", 1, Corpus::Faq)
            .expect("search");
        assert_eq!(pre[0].source_id, "faq:preorder-how", "{pre:?}");
        let cat = r
            .search("pirate crew treasure", 3, Corpus::Catalog)
            .expect("search");
        assert_eq!(cat[0].source_id, "catalog:one-piece");
        assert!(r.search("?!*", 3, Corpus::All).expect("search").is_empty());
    }

    #[test]
    fn every_faq_question_finds_its_own_answer() {
        let d = DataSet::bundled().expect("data");
        let r = Bm25Retriever::build(&d.catalog, &d.faq).expect("index");
        for f in &d.faq {
            let hits = r.search(&f.question, 1, Corpus::Faq).expect("search");
            assert_eq!(hits[0].source_id, format!("faq:{}", f.id), "{}", f.question);
        }
    }
}
