//! The bundled data set: manga catalog, FAQ and labelled intent examples from
//! `runtime/data/`. Compiled into the binary so `cargo run -p manga-runtime` and the
//! container need no data path; `MANGA_DATA_DIR` overrides it with files on disk.
//!
//! Consumers: the embedded services and retriever ([`crate::backends::catalog`],
//! [`crate::backends::bm25`]) and the intent classifier ([`crate::backends::classifier`]).

use crate::domain::{FaqEntry, Intent, Title};
use std::path::{Path, PathBuf};

const CATALOG_TSV: &str = include_str!("../data/catalog.tsv");
const FAQ_TSV: &str = include_str!("../data/faq.tsv");
const TRAIN_TSV: &str = include_str!("../data/intents/train.tsv");
const HELDOUT_TSV: &str = include_str!("../data/intents/heldout.tsv");

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct DataSet {
    pub catalog: Vec<Title>,
    pub faq: Vec<FaqEntry>,
    pub train: Vec<(Intent, String)>,
    pub heldout: Vec<(Intent, String)>,
}

impl DataSet {
    /// The copy compiled into the binary.
    pub fn bundled() -> Result<DataSet, DataError> {
        Ok(DataSet {
            catalog: parse_catalog("catalog.tsv", CATALOG_TSV)?,
            faq: parse_faq("faq.tsv", FAQ_TSV)?,
            train: parse_intents("intents/train.tsv", TRAIN_TSV)?,
            heldout: parse_intents("intents/heldout.tsv", HELDOUT_TSV)?,
        })
    }

    /// Files from a directory with the same layout as `runtime/data/`.
    pub fn from_dir(dir: &Path) -> Result<DataSet, DataError> {
        let read = |rel: &str| {
            let path = dir.join(rel);
            std::fs::read_to_string(&path).map_err(|source| DataError::Read { path, source })
        };
        Ok(DataSet {
            catalog: parse_catalog("catalog.tsv", &read("catalog.tsv")?)?,
            faq: parse_faq("faq.tsv", &read("faq.tsv")?)?,
            train: parse_intents("intents/train.tsv", &read("intents/train.tsv")?)?,
            heldout: parse_intents("intents/heldout.tsv", &read("intents/heldout.tsv")?)?,
        })
    }

    pub fn load(dir: Option<&Path>) -> Result<DataSet, DataError> {
        match dir {
            Some(d) => DataSet::from_dir(d),
            None => DataSet::bundled(),
        }
    }
}

fn rows<'a>(text: &'a str) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('\t').collect()))
}

fn parse_catalog(file: &str, text: &str) -> Result<Vec<Title>, DataError> {
    let err = |line, message: String| DataError::Parse {
        file: file.into(),
        line,
        message,
    };
    let mut out = Vec::new();
    for (line, f) in rows(text).skip(1) {
        let [id, title, author, genres, demographic, volumes, price, stock, synopsis] = f[..]
        else {
            return Err(err(
                line,
                format!("expected 9 tab-separated fields, got {}", f.len()),
            ));
        };
        let volumes = volumes
            .parse()
            .map_err(|_| err(line, format!("bad volumes {volumes:?}")))?;
        let stock = stock
            .parse()
            .map_err(|_| err(line, format!("bad stock {stock:?}")))?;
        let price_cents =
            parse_price(price).ok_or_else(|| err(line, format!("bad price {price:?}")))?;
        let isbn = synthetic_isbn(out.len() + 1);
        out.push(Title {
            id: id.to_string(),
            title: title.to_string(),
            author: author.to_string(),
            genres: genres.split(',').map(|g| g.trim().to_string()).collect(),
            demographic: demographic.to_string(),
            volumes,
            price_cents,
            stock,
            synopsis: synopsis.to_string(),
            isbn,
        });
    }
    Ok(out)
}

fn parse_price(s: &str) -> Option<u32> {
    let (d, c) = s.split_once('.')?;
    if c.len() != 2 {
        return None;
    }
    Some(d.parse::<u32>().ok()? * 100 + c.parse::<u32>().ok()?)
}

/// ISBN-13 `979-8-9000-0NNN-C` for the n-th title (1-based), with a valid check digit.
/// Synthetic on purpose: the catalog's prices and stock are invented too.
pub fn synthetic_isbn(n: usize) -> String {
    let body = format!("97989000{:04}", n % 10_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{body}{check}")
}

fn parse_faq(file: &str, text: &str) -> Result<Vec<FaqEntry>, DataError> {
    let mut out = Vec::new();
    for (line, f) in rows(text).skip(1) {
        let [id, topic, question, answer] = f[..] else {
            return Err(DataError::Parse {
                file: file.into(),
                line,
                message: format!("expected 4 tab-separated fields, got {}", f.len()),
            });
        };
        out.push(FaqEntry {
            id: id.into(),
            topic: topic.into(),
            question: question.into(),
            answer: answer.into(),
        });
    }
    Ok(out)
}

fn parse_intents(file: &str, text: &str) -> Result<Vec<(Intent, String)>, DataError> {
    let mut out = Vec::new();
    for (line, f) in rows(text) {
        let [label, example] = f[..] else {
            return Err(DataError::Parse {
                file: file.into(),
                line,
                message: "expected <intent>\\t<text>".into(),
            });
        };
        let intent = Intent::parse(label).ok_or_else(|| DataError::Parse {
            file: file.into(),
            line,
            message: format!("unknown intent {label:?}"),
        })?;
        out.push((intent, example.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_meets_the_issue_minimums() {
        let d = DataSet::bundled().expect("bundled data parses");
        assert!(
            d.catalog.len() >= 150,
            "catalog has {} titles",
            d.catalog.len()
        );
        for topic in ["shipping", "returns", "pre-orders", "payment", "accounts"] {
            assert!(d.faq.iter().any(|f| f.topic == topic), "FAQ lacks {topic}");
        }
        for intent in Intent::ALL {
            assert!(
                d.train.iter().any(|(i, _)| *i == intent),
                "no training example for {intent}"
            );
            assert!(
                d.heldout.iter().any(|(i, _)| *i == intent),
                "no held-out example for {intent}"
            );
        }
        let train: std::collections::HashSet<&str> =
            d.train.iter().map(|(_, t)| t.as_str()).collect();
        assert!(
            d.heldout.iter().all(|(_, t)| !train.contains(t.as_str())),
            "held-out leaks into train"
        );
    }

    #[test]
    fn synthetic_isbn_has_valid_check_digit() {
        // 979-8-9000-0023-? : weights 1,3,1,3,... over the first 12 digits.
        let isbn = synthetic_isbn(23);
        assert_eq!(isbn.len(), 13);
        assert_eq!(&isbn[..12], "979890000023");
        let digits: Vec<u32> = isbn.bytes().map(|b| u32::from(b - b'0')).collect();
        let total: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| d * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        assert_eq!(total % 10, 0);
    }
}
