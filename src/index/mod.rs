//! Layer 2: the encrypted full-text search index (docs/FORMAT.md §17).
//!
//! A tantivy index (BM25 ranking, English stemming) kept in `index/` in the
//! vault folder behind [`dir::SealedDir`], which seals every file with the
//! index subkey. It knows nothing of the vault: the daemon hands it
//! documents (a path, a modification time, text) as the vault reports
//! changes, and asks it queries. Old versions are indexed as documents of
//! their own (version > 0), searched only with `--history`.

pub mod dir;
pub mod extract;
mod query;

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use crate::crypto::AeadKey;

pub use query::QueryError;

/// Name of the tokenizer of note text (stemmed).
const TOKENIZER: &str = "quire_en";
/// Name of the tokenizer of the unstemmed copy (for typo tolerance).
const RAW_TOKENIZER: &str = "quire_raw";
/// Memory for the index writer's arena (tantivy's minimum is 15 MB).
const WRITER_HEAP: usize = 20_000_000;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no index yet.
    #[error("there is no search index yet")]
    Missing,
    /// The query did not parse.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// The index failed (damaged, tampered, or an I/O error).
    #[error("the search index failed: {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index(e.to_string())
    }
}

/// One document: a note's current text, or one old version's.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Path in the vault.
    pub path: String,
    /// 0 for the current text; N for version N.
    pub version: u32,
    /// Modification (or save) time, ns since the epoch.
    pub mtime_ns: i64,
    /// The text.
    pub text: String,
}

/// What to search.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Most hits returned.
    pub limit: usize,
    /// Only notes at or under this path.
    pub path: Option<String>,
    /// Only notes modified at or after (ns).
    pub since_ns: Option<i64>,
    /// Only notes modified at or before (ns).
    pub until_ns: Option<i64>,
    /// Old versions too.
    pub history: bool,
    /// Every matching line of each hit (for `--grep`), not only the first.
    pub all_lines: bool,
}

/// One hit.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// Path in the vault.
    pub path: String,
    /// 0: the current note; N: version N matched.
    pub version: u32,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// BM25 score.
    pub score: f32,
    /// A line of context.
    pub snippet: String,
    /// Byte ranges of `snippet` that matched.
    pub highlights: Vec<(usize, usize)>,
    /// Matching lines: (1-based line number, text).
    pub lines: Vec<(usize, String)>,
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    path: Field,
    dirs: Field,
    body: Field,
    raw: Field,
    mtime: Field,
    version: Field,
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

fn raw_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let f = Fields {
        key: b.add_text_field("key", STRING),
        path: b.add_text_field("path", STRING | STORED),
        dirs: b.add_text_field("dirs", STRING),
        body: b.add_text_field("body", text),
        raw: b.add_text_field(
            "raw",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(RAW_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
        mtime: b.add_i64_field("mtime", INDEXED | STORED | FAST),
        version: b.add_u64_field("version", INDEXED | STORED | FAST),
    };
    (b.build(), f)
}

fn key_of(path: &str, version: u32) -> String {
    format!("{version}\u{0}{path}")
}

/// The search index of one vault.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    f: Fields,
    dir: dir::SealedDir,
    /// Text bytes added since the last commit (see [`UNCOMMITTED_MOST`]).
    uncommitted: std::sync::atomic::AtomicUsize,
}

/// Most text bytes added to the writer before a commit (issue 22.3).
/// tantivy queues up to 10,000 added documents for its indexing thread
/// with no bound on their size, so a burst of saves (an untar of a source
/// tree) held all their text in memory at once: 130 MB of notes peaked the
/// daemon at 160 MiB. A commit within a batch past this bound waits for
/// the queue to drain.
const UNCOMMITTED_MOST: usize = 8 << 20;

/// Segments with more documents than this are not merged further (issue
/// 22.3). A merge reads each segment's stored text whole (our sealed
/// directory cannot map it): merging the segments of 130 MB of notes into
/// one peaked the daemon at 180 MiB. Segments stay at about this size
/// instead (a search visits a few more of them), and the daemon under
/// 100 MiB. Compaction (deleted text leaving the files) still rewrites
/// every segment that holds deletions.
const MERGE_DOCS_MOST: usize = 1000;

impl SearchIndex {
    /// Opens the index in `root` (creating it unless `read_only`).
    /// Returns whether it was just created (empty).
    pub fn open(root: &Path, key: AeadKey, read_only: bool) -> Result<(SearchIndex, bool), Error> {
        if read_only && !root.join("meta.json").exists() {
            return Err(Error::Missing);
        }
        let d =
            dir::SealedDir::open(root, key, read_only).map_err(|e| Error::Index(e.to_string()))?;
        let (schema, f) = schema();
        let fresh = !Index::exists(&d).map_err(|e| Error::Index(e.to_string()))?;
        if !fresh && !read_only {
            // Every block of every file, once per mount (tens of ms for a
            // 10,000-note index): a damaged index is rebuilt, not trusted.
            d.verify().map_err(|e| Error::Index(e.to_string()))?;
        }
        let index = if fresh {
            Index::create(d.clone(), schema, tantivy::IndexSettings::default())?
        } else {
            let i = Index::open(d.clone())?;
            if i.schema() != schema {
                return Err(Error::Index("the index has another layout".into()));
            }
            i
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        index.tokenizers().register(RAW_TOKENIZER, raw_analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = if read_only {
            None
        } else {
            let w: IndexWriter = index.writer_with_num_threads(1, WRITER_HEAP)?;
            let mut p = tantivy::merge_policy::LogMergePolicy::default();
            p.set_max_docs_before_merge(MERGE_DOCS_MOST);
            w.set_merge_policy(Box::new(p));
            Some(Mutex::new(w))
        };
        Ok((
            SearchIndex {
                index,
                reader,
                writer,
                f,
                dir: d,
                uncommitted: Default::default(),
            },
            fresh,
        ))
    }

    /// Removes every index file in `root` (before a rebuild).
    pub fn wipe(root: &Path) -> std::io::Result<()> {
        match std::fs::remove_dir_all(root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, Error> {
        self.writer
            .as_ref()
            .map(|w| w.lock().unwrap_or_else(|e| e.into_inner()))
            .ok_or_else(|| Error::Index("the index is open read-only".into()))
    }

    /// Adds or replaces a document.
    pub fn put(&self, d: &Doc) -> Result<(), Error> {
        let w = self.writer()?;
        let key = key_of(&d.path, d.version);
        w.delete_term(Term::from_field_text(self.f.key, &key));
        let mut doc = TantivyDocument::default();
        doc.add_text(self.f.key, &key);
        doc.add_text(self.f.path, &d.path);
        let mut at = 0;
        while let Some(i) = d.path[at..].find('/') {
            doc.add_text(self.f.dirs, &d.path[..at + i]);
            at += i + 1;
        }
        doc.add_text(self.f.body, &d.text);
        doc.add_text(self.f.raw, &d.text);
        doc.add_i64(self.f.mtime, d.mtime_ns);
        doc.add_u64(self.f.version, d.version as u64);
        w.add_document(doc)?;
        drop(w);
        // The text is in the document twice (stemmed and raw).
        let added = 2 * d.text.len() + d.path.len();
        let before = self
            .uncommitted
            .fetch_add(added, std::sync::atomic::Ordering::Relaxed);
        if before + added > UNCOMMITTED_MOST {
            self.commit()?;
        }
        Ok(())
    }

    /// Removes every document of `path` (current and versions), and of
    /// everything under it if it is a folder.
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        let w = self.writer()?;
        w.delete_term(Term::from_field_text(self.f.path, path));
        w.delete_term(Term::from_field_text(self.f.dirs, path));
        Ok(())
    }

    fn docs_matching(&self, q: &dyn Query) -> Result<Vec<Doc>, Error> {
        let s = self.reader.searcher();
        let n = s.num_docs() as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let top = s.search(q, &TopDocs::with_limit(n).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (_, a) in top {
            let d: TantivyDocument = s.doc(a)?;
            out.push(self.doc_of(&d));
        }
        Ok(out)
    }

    fn doc_of(&self, d: &TantivyDocument) -> Doc {
        let text = |f| {
            d.get_first(f)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Doc {
            path: text(self.f.path),
            text: text(self.f.body),
            version: d
                .get_first(self.f.version)
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as u32,
            mtime_ns: d
                .get_first(self.f.mtime)
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
        }
    }

    /// The documents of a note or a folder (every version, every note below).
    fn docs_under(&self, path: &str) -> Result<Vec<Doc>, Error> {
        let q = BooleanQuery::new(vec![
            (
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.path, path),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.dirs, path),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        self.docs_matching(&q)
    }

    /// Moves the documents of `from` (a note or a folder) to `to`.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let docs = self.docs_under(from)?;
        self.remove(from)?;
        for mut d in docs {
            d.path = format!("{to}{}", &d.path[from.len().min(d.path.len())..]);
            self.put(&d)?;
        }
        Ok(())
    }

    /// Swaps the documents of `a` and `b` (`renameat2(RENAME_EXCHANGE)`).
    pub fn exchange(&self, a: &str, b: &str) -> Result<(), Error> {
        let (da, db) = (self.docs_under(a)?, self.docs_under(b)?);
        self.remove(a)?;
        self.remove(b)?;
        for (docs, from, to) in [(da, a, b), (db, b, a)] {
            for mut d in docs {
                d.path = format!("{to}{}", &d.path[from.len().min(d.path.len())..]);
                self.put(&d)?;
            }
        }
        Ok(())
    }

    /// Removes every document (before a rebuild).
    pub fn clear(&self) -> Result<(), Error> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// The current document of `path`, as last committed.
    pub fn current_doc(&self, path: &str) -> Result<Option<Doc>, Error> {
        let q = TermQuery::new(
            Term::from_field_text(self.f.key, &key_of(path, 0)),
            IndexRecordOption::Basic,
        );
        Ok(self.docs_matching(&q)?.into_iter().next())
    }

    /// Makes the changes so far durable and searchable.
    pub fn commit(&self) -> Result<(), Error> {
        self.writer()?.commit()?;
        self.uncommitted
            .store(0, std::sync::atomic::Ordering::Relaxed);
        self.reader.reload()?;
        Ok(())
    }

    /// Rewrites every segment that holds deleted documents and removes the
    /// files no longer used, so the text of deleted and purged notes is
    /// gone from the index folder (not only marked deleted).
    pub fn compact(&self) -> Result<(), Error> {
        let ids: Vec<_> = self
            .index
            .searchable_segment_metas()?
            .into_iter()
            .filter(|m| m.has_deletes())
            .map(|m| m.id())
            .collect();
        let mut w = self.writer()?;
        if !ids.is_empty() {
            w.merge(&ids).wait()?;
        }
        w.garbage_collect_files().wait()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Path → modification time of every current note in the index.
    pub fn known(&self) -> Result<HashMap<String, i64>, Error> {
        let q = TermQuery::new(
            Term::from_field_u64(self.f.version, 0),
            IndexRecordOption::Basic,
        );
        Ok(self
            .docs_matching(&q)?
            .into_iter()
            .map(|d| (d.path, d.mtime_ns))
            .collect())
    }

    /// Number of documents, and bytes on disk.
    pub fn stats(&self) -> (u64, u64) {
        (self.reader.searcher().num_docs(), self.dir.disk_size())
    }

    /// Every stored text (tests: nothing of a purged note may remain).
    pub fn all_text(&self) -> Result<Vec<Doc>, Error> {
        self.docs_matching(&AllQuery)
    }

    /// `q` restricted by the options: current text only (unless
    /// `history`), under a path, within a time range.
    fn filtered(&self, q: Box<dyn Query>, o: &Options) -> BooleanQuery {
        let term = |f, t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f, t),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, q)];
        if !o.history {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(self.f.version, 0),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(p) = o
            .path
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Should, term(self.f.path, p)),
                    (Occur::Should, term(self.f.dirs, p)),
                ])),
            ));
        }
        if o.since_ns.is_some() || o.until_ns.is_some() {
            let b = |v: Option<i64>| match v {
                Some(x) => Bound::Included(Term::from_field_i64(self.f.mtime, x)),
                None => Bound::Unbounded,
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(b(o.since_ns), b(o.until_ns))),
            ));
        }
        BooleanQuery::new(clauses)
    }

    /// Runs a query. Words are first matched by their stems; only when
    /// that finds fewer than `limit` notes is the query run again forgiving
    /// typos (matching every word of the vault within an edit or two is
    /// most of a query's cost, and rarely changes a full page of results).
    pub fn search(&self, text: &str, o: &Options) -> Result<Vec<Hit>, Error> {
        let mut an = analyzer();
        let limit = o.limit.max(1);
        let exact = query::parse(text, self.f.body, None, &mut an)?;
        let s = self.reader.searcher();
        let mut parsed = exact;
        let mut top = s.search(
            &self.filtered(parsed.query.box_clone(), o),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        if top.len() < limit {
            parsed = query::parse(text, self.f.body, Some(self.f.raw), &mut an)?;
            top = s.search(
                &self.filtered(parsed.query.box_clone(), o),
                &TopDocs::with_limit(limit).order_by_score(),
            )?;
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, a) in top {
            let d: TantivyDocument = s.doc(a)?;
            let d = self.doc_of(&d);
            let (snippet, highlights, lines) =
                parsed.needles.snippet(&d.text, &mut an, o.all_lines);
            hits.push(Hit {
                path: d.path,
                version: d.version,
                mtime_ns: d.mtime_ns,
                score,
                snippet,
                highlights,
                lines,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AeadKey {
        AeadKey::from_bytes(&[3u8; 32])
    }

    fn doc(path: &str, version: u32, text: &str) -> Doc {
        Doc {
            path: path.into(),
            version,
            mtime_ns: 1_000 + version as i64,
            text: text.into(),
        }
    }

    fn paths(i: &SearchIndex, q: &str, o: &Options) -> Vec<String> {
        let mut v: Vec<String> = i
            .search(q, o)
            .unwrap()
            .into_iter()
            .map(|h| format!("{}@{}", h.path, h.version))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn queries_filters_renames_and_purges() {
        let d = tempfile::tempdir().unwrap();
        let (i, fresh) = SearchIndex::open(d.path(), key(), false).unwrap();
        assert!(fresh);
        i.put(&doc(
            "clients/anna.md",
            0,
            "Anna had a panic attack. Medications reviewed.",
        ))
        .unwrap();
        i.put(&doc(
            "clients/ben.md",
            0,
            "Ben sleeps badly.\nInsomnia since March.",
        ))
        .unwrap();
        i.put(&doc("clients/anna.md", 1, "Anna, first session: anxiety."))
            .unwrap();
        i.put(&doc("admin/todo.md", 0, "Order more medication forms"))
            .unwrap();
        i.commit().unwrap();
        let o = Options {
            limit: 10,
            ..Default::default()
        };
        assert_eq!(paths(&i, "panic", &o), ["clients/anna.md@0"]);
        assert_eq!(paths(&i, "\"panic attack\"", &o), ["clients/anna.md@0"]);
        assert!(paths(&i, "\"attack panic\"", &o).is_empty());
        assert_eq!(
            paths(&i, "insomnia OR panic", &o),
            ["clients/anna.md@0", "clients/ben.md@0"]
        );
        assert_eq!(paths(&i, "medication -forms", &o), ["clients/anna.md@0"]);
        assert_eq!(
            paths(&i, "medic*", &o),
            ["admin/todo.md@0", "clients/anna.md@0"]
        );
        assert_eq!(paths(&i, "insomnai", &o), ["clients/ben.md@0"]); // a typo
        assert_eq!(
            paths(&i, "medicaton", &o),
            ["admin/todo.md@0", "clients/anna.md@0"]
        ); // a typo across stems
        // Filters: path prefix, history, time.
        let under = Options {
            path: Some("clients".into()),
            ..o.clone()
        };
        assert_eq!(paths(&i, "medication", &under), ["clients/anna.md@0"]);
        assert!(paths(&i, "anxiety", &o).is_empty());
        let hist = Options {
            history: true,
            ..o.clone()
        };
        assert_eq!(paths(&i, "anxiety", &hist), ["clients/anna.md@1"]);
        let late = Options {
            since_ns: Some(1_001),
            history: true,
            ..o.clone()
        };
        assert_eq!(paths(&i, "anxiety", &late), ["clients/anna.md@1"]);
        let early = Options {
            until_ns: Some(1_000),
            history: true,
            ..o.clone()
        };
        assert!(paths(&i, "anxiety", &early).is_empty());
        // A folder rename moves every document under it.
        i.rename("clients", "people").unwrap();
        i.commit().unwrap();
        assert_eq!(paths(&i, "anxiety", &hist), ["people/anna.md@1"]);
        assert_eq!(paths(&i, "panic", &o), ["people/anna.md@0"]);
        // A purge leaves none of the note's text in any index file.
        i.remove("people/anna.md").unwrap();
        i.commit().unwrap();
        i.compact().unwrap();
        assert!(paths(&i, "panic", &hist).is_empty());
        drop(i);
        let (i, fresh) = SearchIndex::open(d.path(), key(), false).unwrap();
        assert!(!fresh);
        assert!(
            i.all_text()
                .unwrap()
                .iter()
                .all(|d| !d.text.contains("Anna"))
        );
        let dir = dir::SealedDir::open(d.path(), key(), true).unwrap();
        for e in std::fs::read_dir(d.path()).unwrap() {
            let name = e.unwrap().file_name();
            if let Ok(b) = tantivy::Directory::atomic_read(&dir, Path::new(&name)) {
                assert!(
                    !b.windows(4)
                        .any(|w| w == b"Anna" || w == b"anna" || w == b"anxi"),
                    "{name:?} still holds the purged note"
                );
            }
        }
        assert_eq!(i.known().unwrap().len(), 2);
    }
}
