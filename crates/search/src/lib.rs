//! QuickTok full-text search over videos and creators with Chinese segmentation.
//!
//! One Tantivy index (`<data_dir>/search/`) holds videos and creators as documents of two
//! kinds. Text is analysed by one mixed tokenizer ([`tokenizer`]): Han runs are segmented
//! by jieba in search mode (a title with 北京烤鸭 is also indexed under 北京 and 烤鸭), the
//! rest is folded, lowercased and English-stemmed. Queries ([`query`]) mix free text,
//! `#tag` (exact hashtag) and `@name` (one creator's videos).
//!
//! Ranking: `score = bm25 * (1 + w_pop * ln(1 + likes + views / 10)) * (1 + w_fresh *
//! 2^(-age / half_life))` over fast fields with Tantivy's `tweak_score`; the weights are
//! `search.ranking.*` ([`RankingConfig`]). Creators: `bm25 * (1 + w_pop * ln(1 +
//! followers))`.
//!
//! Durability: every commit carries the next `videos` log offset in its payload, so the
//! index and the position of its indexer move together; after a crash, uncommitted
//! documents are gone and the indexer replays from the committed offset (documents are
//! keyed, so a replay replaces rather than duplicates).

pub mod config;
pub mod error;
pub mod index;
pub mod query;
pub mod suggest;
pub mod tokenizer;

pub use config::{RankingConfig, SearchConfig};
pub use error::{Result, SearchError};
pub use index::{
    CreatorDoc, CreatorHit, Highlight, MAX_LIMIT, Page, SearchIndex, VideoDoc, VideoHit, VideoQuery,
};
pub use suggest::{Suggestion, SuggestionKind};
