//! [`SearchIndex`]: one Tantivy index holding videos and creators (a `kind` field tells them
//! apart), its writer (taken by the indexer only), readers reloaded on every commit, the
//! ranked queries with highlights, and the commit payload that records which log offset the
//! index is consistent with.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, Term};

use crate::config::{RankingConfig, SearchConfig};
use crate::error::{Result, SearchError};
use crate::query::{ParsedQuery, parse_query};
use crate::suggest::{Suggester, Suggestion, SuggestionKind};
use crate::tokenizer::{ANALYZER, QueryWord, analyzer, query_words};

/// Bumped whenever the schema or the analysis changes: an index of another version is
/// discarded and rebuilt from the log (or by `quicktok search rebuild`).
const SCHEMA_VERSION: u32 = 1;
/// Deepest result a cursor may ask for: ranking deeper than this is noise.
pub const MAX_OFFSET: usize = 1000;
/// Most results per page.
pub const MAX_LIMIT: usize = 50;

/// A video as the index stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDoc {
    pub id: u64,
    pub title: String,
    pub description: String,
    /// In the shared normal form of `quicktok_core::text`.
    pub tags: Vec<String>,
    pub creator_id: u64,
    pub creator: String,
    pub published_at_ms: i64,
    pub duration_ms: u64,
    pub views: u64,
    pub likes: u64,
}

/// A creator as the index stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatorDoc {
    pub id: u64,
    pub username: String,
    pub followers: u64,
}

/// A video search request (parsed from the API's query string).
#[derive(Debug, Clone, Default)]
pub struct VideoQuery {
    pub q: String,
    pub cursor: Option<String>,
    pub limit: usize,
    pub min_duration_ms: Option<u64>,
    pub max_duration_ms: Option<u64>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Highlighted fragments (HTML: matches in `<b>`, the rest escaped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Highlight {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// A matching video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoHit {
    pub id: u64,
    pub score: f32,
    pub highlight: Highlight,
}

/// A matching creator.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatorHit {
    pub id: u64,
    pub username: String,
    pub score: f32,
}

/// A page of hits and the cursor of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    key: Field,
    kind: Field,
    id: Field,
    title: Field,
    description: Field,
    tags: Field,
    tags_text: Field,
    creator: Field,
    creator_text: Field,
    published_at: Field,
    duration_ms: Field,
    likes: Field,
    views: Field,
    pop: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let analyzed = TextFieldIndexing::default()
        .set_tokenizer(ANALYZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    let text = TextOptions::default().set_indexing_options(analyzed);
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        kind: b.add_text_field("kind", STRING),
        id: b.add_u64_field("id", STORED | FAST),
        title: b.add_text_field("title", text.clone() | STORED),
        description: b.add_text_field("description", text.clone() | STORED),
        tags: b.add_text_field("tags", STRING | STORED),
        tags_text: b.add_text_field("tags_text", text.clone()),
        creator: b.add_text_field("creator", STRING | STORED),
        creator_text: b.add_text_field("creator_text", text),
        published_at: b.add_i64_field("published_at", INDEXED | FAST),
        duration_ms: b.add_u64_field("duration_ms", INDEXED | FAST),
        likes: b.add_u64_field("likes", FAST),
        views: b.add_u64_field("views", FAST),
        pop: b.add_u64_field("pop", FAST),
    };
    (b.build(), fields)
}

/// What every commit records.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    version: u32,
    /// The next log offset of the `videos` topic to apply: every record before it is in.
    offset: u64,
}

const VIDEO: &str = "video";
const CREATOR: &str = "user";

/// The search index; see the module docs. Cheap to share behind an `Arc`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    jieba: Arc<Jieba>,
    analyzer: TextAnalyzer,
    config: SearchConfig,
    suggester: RwLock<Arc<Suggester>>,
    suggest_built: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it when there is none; an index of another schema
    /// version is discarded (its committed offset goes with it, so the indexer replays).
    pub fn open(dir: &Path, config: SearchConfig) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let index = match Index::open_in_dir(dir) {
            Ok(index) if payload_of(&index).is_none_or(|p| p.version == SCHEMA_VERSION) => {
                if index.schema() != schema {
                    Self::wipe(dir)?;
                    Index::create_in_dir(dir, schema)?
                } else {
                    index
                }
            }
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "search index of another version; rebuilding");
                Self::wipe(dir)?;
                Index::create_in_dir(dir, schema)?
            }
            Err(tantivy::TantivyError::OpenDirectoryError(_))
            | Err(tantivy::TantivyError::OpenReadError(_)) => {
                Self::wipe(dir)?;
                Index::create_in_dir(dir, schema)?
            }
            Err(e) => return Err(e.into()),
        };
        let jieba = Arc::new(Jieba::new());
        let analyzer = analyzer(jieba.clone());
        index.tokenizers().register(ANALYZER, analyzer.clone());
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into()?;
        let this = SearchIndex {
            index,
            reader,
            writer: Mutex::new(None),
            fields,
            jieba,
            analyzer,
            config,
            suggester: RwLock::new(Arc::new(Suggester::default())),
            suggest_built: Mutex::new(None),
        };
        this.refresh_suggestions()?;
        Ok(this)
    }

    fn wipe(dir: &Path) -> Result<()> {
        std::fs::remove_dir_all(dir)?;
        std::fs::create_dir_all(dir)?;
        Ok(())
    }

    /// The offset of the `videos` topic the last commit is consistent with (`None` for a
    /// new index).
    pub fn committed_offset(&self) -> Option<u64> {
        payload_of(&self.index).map(|p| p.offset)
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut guard = self.writer.lock().map_err(|_| poisoned())?;
        if guard.is_none() {
            let budget = (self.config.writer_memory_mb.max(16) as usize) << 20;
            // Two indexing threads at most: indexing shares the node with the API.
            *guard = Some(self.index.writer_with_num_threads(2, budget)?);
        }
        match guard.as_mut() {
            Some(w) => f(w),
            None => Err(poisoned()),
        }
    }

    /// Adds or replaces a video (uncommitted until [`SearchIndex::commit`]).
    pub fn upsert_video(&self, v: &VideoDoc) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, video_key(v.id));
        doc.add_text(f.kind, VIDEO);
        doc.add_u64(f.id, v.id);
        doc.add_text(f.title, &v.title);
        doc.add_text(f.description, &v.description);
        for tag in &v.tags {
            doc.add_text(f.tags, tag);
            doc.add_text(f.tags_text, tag);
        }
        doc.add_text(f.creator, quicktok_core::text::fold_str(&v.creator));
        doc.add_text(f.creator_text, &v.creator);
        doc.add_i64(f.published_at, v.published_at_ms);
        doc.add_u64(f.duration_ms, v.duration_ms);
        doc.add_u64(f.likes, v.likes);
        doc.add_u64(f.views, v.views);
        doc.add_u64(f.pop, v.likes.saturating_add(v.views / 10));
        self.with_writer(|w| {
            w.delete_term(Term::from_field_text(f.key, &video_key(v.id)));
            w.add_document(doc)?;
            Ok(())
        })
    }

    /// Adds or replaces a creator.
    pub fn upsert_creator(&self, c: &CreatorDoc) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, creator_key(c.id));
        doc.add_text(f.kind, CREATOR);
        doc.add_u64(f.id, c.id);
        doc.add_text(f.creator, quicktok_core::text::fold_str(&c.username));
        doc.add_text(f.creator_text, &c.username);
        doc.add_u64(f.pop, c.followers);
        self.with_writer(|w| {
            w.delete_term(Term::from_field_text(f.key, &creator_key(c.id)));
            w.add_document(doc)?;
            Ok(())
        })
    }

    /// Removes a video (uncommitted until [`SearchIndex::commit`]); a no-op if absent.
    pub fn delete_video(&self, id: u64) -> Result<()> {
        let key = Term::from_field_text(self.fields.key, &video_key(id));
        self.with_writer(|w| {
            w.delete_term(key);
            Ok(())
        })
    }

    /// Removes every document (for a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|w| {
            w.delete_all_documents()?;
            Ok(())
        })
    }

    /// Commits everything added since the last commit together with `offset` (the next
    /// `videos` log offset to apply), then reloads the readers: after a crash the index is
    /// this commit and the indexer resumes from `offset`.
    pub fn commit(&self, offset: u64) -> Result<()> {
        let payload = serde_json::to_string(&Payload { version: SCHEMA_VERSION, offset })
            .map_err(|e| SearchError::BadQuery(e.to_string()))?;
        self.with_writer(|w| {
            let mut prepared = w.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        let due = {
            let built = self.suggest_built.lock().map_err(|_| poisoned())?;
            built.is_none_or(|t| t.elapsed().as_millis() as u64 >= self.config.suggest_refresh_ms)
        };
        if due {
            self.refresh_suggestions()?;
        }
        Ok(())
    }

    /// Reloads readers now (a node that does not write sees commits after a short delay).
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// How many videos are searchable.
    pub fn video_count(&self) -> Result<u64> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.kind, VIDEO),
            IndexRecordOption::Basic,
        );
        Ok(searcher.search(&q, &tantivy::collector::Count)? as u64)
    }

    fn term(&self, field: Field, text: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::WithFreqs))
    }

    /// A filter that adds nothing to the score.
    fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
        (Occur::Must, Box::new(BoostQuery::new(q, 0.0)))
    }

    /// One word over the weighted text fields: the whole term, or every sub-word of it.
    fn word_query(&self, word: &QueryWord, fields: &[(Field, Score)]) -> Box<dyn Query> {
        let over_fields = |term: &str| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                fields
                    .iter()
                    .map(|&(f, boost)| {
                        (
                            Occur::Should,
                            Box::new(BoostQuery::new(self.term(f, term), boost)) as Box<dyn Query>,
                        )
                    })
                    .collect(),
            ))
        };
        if word.parts.is_empty() {
            return over_fields(&word.whole);
        }
        let all_parts: Box<dyn Query> = Box::new(BooleanQuery::new(
            word.parts.iter().map(|p| (Occur::Must, over_fields(p))).collect(),
        ));
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, over_fields(&word.whole)),
            (Occur::Should, all_parts),
        ]))
    }

    fn text_clauses(&self, text: &str, fields: &[(Field, Score)]) -> Vec<(Occur, Box<dyn Query>)> {
        let mut analyzer = self.analyzer.clone();
        query_words(&self.jieba, &mut analyzer, text)
            .iter()
            .map(|w| (Occur::Must, self.word_query(w, fields)))
            .collect()
    }

    fn video_query(&self, parsed: &ParsedQuery, q: &VideoQuery) -> Box<dyn Query> {
        let f = self.fields;
        let weights =
            [(f.title, 3.0), (f.tags_text, 2.0), (f.creator_text, 1.5), (f.description, 1.0)];
        let mut clauses = self.text_clauses(&parsed.text, &weights);
        for tag in &parsed.tags {
            // Exact hashtag matches score like a title word, so `#tag` alone ranks too.
            clauses.push((Occur::Must, Box::new(BoostQuery::new(self.term(f.tags, tag), 3.0))));
        }
        for name in &parsed.creators {
            clauses.push((Occur::Must, self.term(f.creator, name)));
        }
        clauses.push(Self::filter(self.term(f.kind, VIDEO)));
        if q.min_duration_ms.is_some() || q.max_duration_ms.is_some() {
            let lo = q.min_duration_ms.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_u64(f.duration_ms, v))
            });
            let hi = q.max_duration_ms.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_u64(f.duration_ms, v))
            });
            clauses.push(Self::filter(Box::new(RangeQuery::new(lo, hi))));
        }
        if q.since_ms.is_some() || q.until_ms.is_some() {
            let lo = q.since_ms.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.published_at, v))
            });
            let hi = q.until_ms.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.published_at, v))
            });
            clauses.push(Self::filter(Box::new(RangeQuery::new(lo, hi))));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// Searches videos, ranked by BM25 tweaked by popularity and freshness as of `now_ms`.
    pub fn search_videos(&self, q: &VideoQuery, now_ms: i64) -> Result<Page<VideoHit>> {
        let parsed = parse_query(&q.q)?;
        let (offset, limit) = page(q.cursor.as_deref(), q.limit)?;
        let query = self.video_query(&parsed, q);
        let searcher = self.reader.searcher();
        if offset >= MAX_OFFSET {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let ranking = self.config.ranking.clone();
        let collector = TopDocs::with_limit(limit + 1).and_offset(offset).tweak_score(
            move |segment: &tantivy::SegmentReader| {
                let ff = segment.fast_fields();
                let likes = ff.u64("likes").ok().map(|c| c.first_or_default_col(0));
                let views = ff.u64("views").ok().map(|c| c.first_or_default_col(0));
                let published = ff.i64("published_at").ok().map(|c| c.first_or_default_col(0));
                let ranking = ranking.clone();
                move |doc: tantivy::DocId, bm25: Score| {
                    let likes = likes.as_ref().map_or(0, |c| c.get_val(doc));
                    let views = views.as_ref().map_or(0, |c| c.get_val(doc));
                    let published = published.as_ref().map_or(now_ms, |c| c.get_val(doc));
                    video_score(&ranking, bm25, likes, views, now_ms - published)
                }
            },
        );
        let hits = searcher.search(&*query, &collector)?;
        let more = hits.len() > limit;
        let title_gen = SnippetGenerator::create(&searcher, &*query, self.fields.title)?;
        let mut desc_gen = SnippetGenerator::create(&searcher, &*query, self.fields.description)?;
        desc_gen.set_max_num_chars(160);
        let mut items = Vec::with_capacity(limit);
        for (score, address) in hits.into_iter().take(limit) {
            let doc: TantivyDocument = searcher.doc(address)?;
            let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_u64()) else { continue };
            let title = doc.get_first(self.fields.title).and_then(|v| v.as_str()).unwrap_or("");
            let description =
                doc.get_first(self.fields.description).and_then(|v| v.as_str()).unwrap_or("");
            let highlight = Highlight {
                title: highlighted(&title_gen, title),
                description: highlighted(&desc_gen, description),
            };
            items.push(VideoHit { id, score, highlight });
        }
        let next_cursor = more.then(|| encode_cursor(offset + limit));
        Ok(Page { items, next_cursor })
    }

    /// Searches creators by name (a leading `@` is allowed), ranked by BM25 and followers.
    pub fn search_creators(
        &self,
        q: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<CreatorHit>> {
        let text = q.trim().trim_start_matches('@').trim();
        if text.is_empty() {
            return Err(SearchError::BadQuery("q must not be empty".into()));
        }
        let (offset, limit) = page(cursor, limit)?;
        if offset >= MAX_OFFSET {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let f = self.fields;
        let words = self.text_clauses(text, &[(f.creator_text, 1.0)]);
        let exact: Box<dyn Query> = Box::new(BoostQuery::new(
            self.term(f.creator, &quicktok_core::text::fold_str(text)),
            5.0,
        ));
        let mut either: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, exact)];
        if !words.is_empty() {
            either.push((Occur::Should, Box::new(BooleanQuery::new(words))));
        }
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(either)) as Box<dyn Query>),
            Self::filter(self.term(f.kind, CREATOR)),
        ]);
        let w_pop = self.config.ranking.popularity;
        let collector = TopDocs::with_limit(limit + 1).and_offset(offset).tweak_score(
            move |segment: &tantivy::SegmentReader| {
                let pop = segment.fast_fields().u64("pop").ok().map(|c| c.first_or_default_col(0));
                move |doc: tantivy::DocId, bm25: Score| {
                    let followers = pop.as_ref().map_or(0, |c| c.get_val(doc));
                    bm25 * (1.0 + w_pop * (1.0 + followers as f64).ln()) as f32
                }
            },
        );
        let searcher = self.reader.searcher();
        let hits = searcher.search(&query, &collector)?;
        let more = hits.len() > limit;
        let mut items = Vec::new();
        for (score, address) in hits.into_iter().take(limit) {
            let doc: TantivyDocument = searcher.doc(address)?;
            let Some(id) = doc.get_first(f.id).and_then(|v| v.as_u64()) else { continue };
            let username =
                doc.get_first(f.creator).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            items.push(CreatorHit { id, username, score });
        }
        Ok(Page { items, next_cursor: more.then(|| encode_cursor(offset + limit)) })
    }

    /// Completions of `prefix` among popular titles, tags and creator names, most popular
    /// first.
    pub fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<Suggestion>> {
        let suggester = self.suggester.read().map_err(|_| poisoned())?.clone();
        Ok(suggester.complete(prefix, limit))
    }

    /// Rebuilds the suggestion list from the most popular documents now searchable.
    pub fn refresh_suggestions(&self) -> Result<()> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let limit = self.config.suggest_sources.max(1) as usize;
        let top = searcher.search(
            &AllQuery,
            &TopDocs::with_limit(limit).order_by_fast_field::<u64>("pop", Order::Desc),
        )?;
        let mut entries = Vec::with_capacity(top.len() * 3);
        for (pop, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let weight = pop.unwrap_or(0);
            let is_video = doc.get_first(f.title).is_some();
            if let Some(title) = doc.get_first(f.title).and_then(|v| v.as_str()) {
                entries.push((SuggestionKind::Title, title.to_owned(), weight));
            }
            for tag in doc.get_all(f.tags).filter_map(|v| v.as_str()) {
                entries.push((SuggestionKind::Tag, tag.to_owned(), weight));
            }
            if let (false, Some(name)) =
                (is_video, doc.get_first(f.creator).and_then(|v| v.as_str()))
            {
                entries.push((SuggestionKind::Creator, name.to_owned(), weight));
            }
        }
        let built = Suggester::build(entries);
        *self.suggester.write().map_err(|_| poisoned())? = Arc::new(built);
        *self.suggest_built.lock().map_err(|_| poisoned())? = Some(Instant::now());
        Ok(())
    }
}

/// The ranking formula (see [`RankingConfig`]).
pub fn video_score(r: &RankingConfig, bm25: Score, likes: u64, views: u64, age_ms: i64) -> f32 {
    let popularity = (1.0 + likes as f64 + views as f64 / 10.0).ln();
    let half_life_ms = (r.half_life_hours.max(0.001)) * 3_600_000.0;
    let fresh = (-(age_ms.max(0) as f64) / half_life_ms * std::f64::consts::LN_2).exp();
    (bm25 as f64 * (1.0 + r.popularity * popularity) * (1.0 + r.freshness * fresh)) as f32
}

fn highlighted(generator: &SnippetGenerator, text: &str) -> Option<String> {
    let snippet = generator.snippet(text);
    (!snippet.highlighted().is_empty()).then(|| snippet.to_html())
}

fn payload_of(index: &Index) -> Option<Payload> {
    let metas = index.load_metas().ok()?;
    serde_json::from_str(metas.payload.as_deref()?).ok()
}

fn video_key(id: u64) -> String {
    format!("v:{id}")
}

fn creator_key(id: u64) -> String {
    format!("u:{id}")
}

fn poisoned() -> SearchError {
    SearchError::BadQuery("search index lock poisoned".into())
}

fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

/// The offset a cursor stands for and the page size; 400-worthy errors for bad ones.
fn page(cursor: Option<&str>, limit: usize) -> Result<(usize, usize)> {
    use base64::Engine;
    let limit = if limit == 0 { 20 } else { limit };
    if limit > MAX_LIMIT {
        return Err(SearchError::BadQuery(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let offset = match cursor {
        None | Some("") => 0,
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix('o')?.parse::<usize>().ok())
            .ok_or_else(|| SearchError::BadQuery("bad cursor".into()))?,
    };
    Ok((offset, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        assert_eq!(page(Some(&encode_cursor(40)), 20).unwrap(), (40, 20));
        assert!(page(Some("nope!"), 20).is_err());
        assert!(page(Some(&encode_cursor(1)[1..]), 20).is_err());
        assert!(page(None, 51).is_err());
    }

    #[test]
    fn popularity_and_freshness_raise_the_score() {
        let r = RankingConfig::default();
        let base = video_score(&r, 1.0, 0, 0, 10 * 24 * 3_600_000);
        assert!(video_score(&r, 1.0, 100, 1000, 10 * 24 * 3_600_000) > base);
        assert!(video_score(&r, 1.0, 0, 0, 0) > base);
        // One half-life halves the freshness bonus.
        let at = |h: i64| video_score(&r, 1.0, 0, 0, h * 3_600_000) - 1.0;
        assert!((at(72) - at(0) / 2.0).abs() < 1e-4);
    }
}
