//! Compliance stage (F3.2): a sensitive-word filter over a video's title, description and tags,
//! plus a pluggable hook for classifying sampled frames.
//!
//! Text and word lists go through the same [`normalize`] so that the usual evasions — full-width
//! letters, mixed case, separators or zero-width characters between the characters of a word
//! (`f.r.e.e c r y p t o`, `赌 博`, `ＦＲＥＥ`) — still match. Matches are reported as byte
//! ranges of the *original* field text so a moderator sees what was actually written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::text::{fold_char, is_significant};

/// Clearly abusive spam and scam phrases: a video containing one is rejected outright.
/// Deliberately small; operators extend it through [`ComplianceConfig`].
pub const BUILTIN_BLOCK_WORDS: &[&str] = &[
    "代开发票",
    "办理假证",
    "刷单返利",
    "网络赌博",
    "赌博网站",
    "网上赌场",
    "信用卡套现",
    "free crypto giveaway",
    "double your bitcoin",
    "guaranteed returns",
    "casino bonus code",
    "buy fake passport",
];

/// Terms that are often spam but also appear in legitimate videos (news, education), so they
/// go to a human instead of being rejected.
pub const BUILTIN_REVIEW_WORDS: &[&str] = &[
    "赌博",
    "博彩",
    "私信加微信",
    "兼职日结",
    "高额返利",
    "贷款秒批",
    "crypto giveaway",
    "get rich quick",
    "betting tips",
    "dm for promo",
    "buy followers",
];

/// Word lists of the compliance filter. TOML-friendly; unknown keys are rejected so a typo in
/// an operator's config fails loudly instead of silently disabling a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Include [`BUILTIN_BLOCK_WORDS`] and [`BUILTIN_REVIEW_WORDS`] (default `true`).
    pub builtin_lists: bool,
    /// Extra words whose presence rejects the video.
    pub block_words: Vec<String>,
    /// Extra words whose presence sends the video to human review.
    pub review_words: Vec<String>,
    /// A file of block words: one per line, blank lines and lines starting with `#` ignored.
    pub block_words_file: Option<PathBuf>,
    /// A file of review words, in the same format.
    pub review_words_file: Option<PathBuf>,
    /// For words that start (end) with an ASCII letter or digit, ignore matches glued to a
    /// preceding (following) ASCII letter or digit in the original text, so `class` does not
    /// match `ass` (default `true`). Chinese has no word spaces, so it is unaffected.
    pub ascii_word_boundaries: bool,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            builtin_lists: true,
            block_words: Vec::new(),
            review_words: Vec::new(),
            block_words_file: None,
            review_words_file: None,
            ascii_word_boundaries: true,
        }
    }
}

/// Which list a word came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Block,
    Review,
}

/// Which part of the video's text a match is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Title,
    Description,
    /// The user-given tag at this index.
    Tag(usize),
}

/// One sensitive word found in a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordMatch {
    pub list: ListKind,
    /// The word as it was written in its list.
    pub word: String,
    pub field: Field,
    /// Byte offset in the original field text where the match starts.
    pub start: usize,
    /// Byte offset in the original field text where the match ends (exclusive).
    pub end: usize,
    /// The original text of the match, separators included (`f.r.e.e`).
    pub text: String,
}

/// Outcome of the text check. Block words win over review words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ComplianceVerdict {
    Pass,
    /// Only review words matched.
    Review {
        matches: Vec<WordMatch>,
    },
    /// At least one block word matched; `matches` holds every match, review ones included,
    /// so the moderator sees the whole picture.
    Reject {
        matches: Vec<WordMatch>,
    },
}

impl ComplianceVerdict {
    /// How serious the verdict is.
    pub fn severity(&self) -> Severity {
        match self {
            ComplianceVerdict::Pass => Severity::Pass,
            ComplianceVerdict::Review { .. } => Severity::Review,
            ComplianceVerdict::Reject { .. } => Severity::Reject,
        }
    }

    /// The matches behind the verdict (empty for `Pass`).
    pub fn matches(&self) -> &[WordMatch] {
        match self {
            ComplianceVerdict::Pass => &[],
            ComplianceVerdict::Review { matches } | ComplianceVerdict::Reject { matches } => {
                matches
            }
        }
    }
}

/// Severity of a verdict, ordered `Pass < Review < Reject` so combining is a `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Pass,
    Review,
    Reject,
}

/// Text after [`normalize`], with a map from each normalised character back to the original
/// character it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// Per normalised character: its byte offset in `text`, and the byte range of the
    /// original character it came from.
    spans: Vec<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    norm_start: usize,
    orig_start: usize,
    orig_end: usize,
}

impl Normalized {
    /// Normalises `text`, remembering where each character came from.
    pub fn new(text: &str) -> Normalized {
        let mut out = String::with_capacity(text.len());
        let mut spans = Vec::with_capacity(text.len());
        let mut folded: Vec<char> = Vec::with_capacity(4);
        for (orig_start, c) in text.char_indices() {
            folded.clear();
            fold_char(c, &mut folded);
            for &f in &folded {
                if is_significant(f) {
                    spans.push(Span {
                        norm_start: out.len(),
                        orig_start,
                        orig_end: orig_start + c.len_utf8(),
                    });
                    out.push(f);
                }
            }
        }
        Normalized { text: out, spans }
    }

    /// The original byte range covering the normalised byte range `start..end`, which must lie
    /// on character boundaries of `self.text` and be non-empty.
    pub fn original_range(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let (first, last) = self.span_indices(start, end)?;
        Some((self.spans[first].orig_start, self.spans[last].orig_end))
    }

    /// Indices of the first and last span of the normalised byte range `start..end`.
    fn span_indices(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        if start >= end {
            return None;
        }
        let first = self.spans.binary_search_by_key(&start, |s| s.norm_start).ok()?;
        // The last character is the one starting before `end`.
        let last = self.spans.partition_point(|s| s.norm_start < end).checked_sub(1)?;
        (first <= last).then_some((first, last))
    }

    fn char_at(&self, span: usize) -> Option<char> {
        self.text.get(self.spans.get(span)?.norm_start..)?.chars().next()
    }
}

/// The normalisation applied to both word lists and text: full-width forms folded to ASCII,
/// lowercased, and every character that is not a letter or digit (whitespace, punctuation,
/// symbols, emoji, zero-width characters, combining marks) removed. Idempotent.
pub fn normalize(text: &str) -> String {
    Normalized::new(text).text
}

/// Parses a word-list file's contents: one word per line, surrounding whitespace trimmed,
/// blank lines and lines starting with `#` ignored.
pub fn parse_word_list(contents: &str) -> Vec<String> {
    contents
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn read_word_list(path: &Path) -> Result<Vec<String>> {
    let contents = std::fs::read_to_string(path)
        .map_err(|source| PipelineError::WordList { path: path.to_owned(), source })?;
    Ok(parse_word_list(&contents))
}

/// One pattern of the automaton.
#[derive(Debug, Clone)]
struct Pattern {
    list: ListKind,
    word: String,
    /// Boundary checks apply at the start/end (the normalised word starts/ends with ASCII).
    ascii_start: bool,
    ascii_end: bool,
}

/// The compiled sensitive-word filter. Build once per configuration and share: checking is
/// read-only and the type is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct ComplianceFilter {
    /// `None` when every list is empty: everything passes.
    matcher: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
    ascii_word_boundaries: bool,
}

impl ComplianceFilter {
    /// Builds the filter from a configuration, reading the configured word-list files.
    pub fn new(config: &ComplianceConfig) -> Result<ComplianceFilter> {
        let mut block: Vec<String> = Vec::new();
        let mut review: Vec<String> = Vec::new();
        if config.builtin_lists {
            block.extend(BUILTIN_BLOCK_WORDS.iter().map(|w| (*w).to_owned()));
            review.extend(BUILTIN_REVIEW_WORDS.iter().map(|w| (*w).to_owned()));
        }
        block.extend(config.block_words.iter().cloned());
        review.extend(config.review_words.iter().cloned());
        if let Some(path) = &config.block_words_file {
            block.extend(read_word_list(path)?);
        }
        if let Some(path) = &config.review_words_file {
            review.extend(read_word_list(path)?);
        }
        ComplianceFilter::from_lists(&block, &review, config.ascii_word_boundaries)
    }

    /// Builds the filter from explicit lists (no built-ins, no files).
    pub fn from_lists(
        block_words: &[String],
        review_words: &[String],
        ascii_word_boundaries: bool,
    ) -> Result<ComplianceFilter> {
        // Keyed by normalised form: duplicates collapse and a word on both lists stays a
        // block word.
        let mut by_norm: BTreeMap<String, (ListKind, &str)> = BTreeMap::new();
        let lists = [(ListKind::Block, block_words), (ListKind::Review, review_words)];
        for (list, words) in lists {
            for word in words {
                let norm = normalize(word);
                if norm.is_empty() {
                    // Only separators: it would match everywhere, so it is a config mistake.
                    tracing::warn!(word = %word, "ignoring sensitive word with no letters or digits");
                    continue;
                }
                by_norm.entry(norm).or_insert((list, word.as_str()));
            }
        }
        let mut keys = Vec::with_capacity(by_norm.len());
        let mut patterns = Vec::with_capacity(by_norm.len());
        for (norm, (list, word)) in by_norm {
            patterns.push(Pattern {
                list,
                word: word.to_owned(),
                ascii_start: norm.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()),
                ascii_end: norm.chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric()),
            });
            keys.push(norm);
        }
        let matcher = if keys.is_empty() {
            None
        } else {
            // Standard semantics so overlapping matches can all be reported: a match dropped by
            // the boundary check must not hide another one at the same place.
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&keys)
                .map_err(|e| PipelineError::Matcher(e.to_string()))?;
            Some(ac)
        };
        Ok(ComplianceFilter { matcher, patterns, ascii_word_boundaries })
    }

    /// Number of distinct (normalised) words in the filter.
    pub fn word_count(&self) -> usize {
        self.patterns.len()
    }

    /// Every sensitive word in one field's text, in order of position.
    pub fn find_matches(&self, field: Field, text: &str) -> Vec<WordMatch> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let norm = Normalized::new(text);
        let mut found = Vec::new();
        for m in matcher.find_overlapping_iter(&norm.text) {
            let Some(pattern) = self.patterns.get(m.pattern().as_usize()) else {
                continue;
            };
            let Some((first, last)) = norm.span_indices(m.start(), m.end()) else {
                continue;
            };
            if self.ascii_word_boundaries && self.inside_word(&norm, pattern, first, last) {
                continue;
            }
            let (start, end) = (norm.spans[first].orig_start, norm.spans[last].orig_end);
            found.push(WordMatch {
                list: pattern.list,
                word: pattern.word.clone(),
                field,
                start,
                end,
                text: text.get(start..end).unwrap_or_default().to_owned(),
            });
        }
        found.sort_by(|a, b| (a.start, a.end, &a.word).cmp(&(b.start, b.end, &b.word)));
        found
    }

    /// Whether an ASCII-edged match is glued to ASCII letters/digits of the surrounding word
    /// in the original text (no separator between them).
    fn inside_word(&self, norm: &Normalized, pattern: &Pattern, first: usize, last: usize) -> bool {
        let glued = |a: usize, b: usize| {
            norm.char_at(a).is_some_and(|c| c.is_ascii_alphanumeric())
                && norm.spans[a].orig_end >= norm.spans[b].orig_start
        };
        (pattern.ascii_start && first > 0 && glued(first - 1, first))
            || (pattern.ascii_end && last + 1 < norm.spans.len() && glued(last, last + 1))
    }

    /// Checks a video's title, description and user-given tags. Fields are checked apart, so
    /// a word never matches across the end of one field and the start of the next.
    pub fn check(&self, title: &str, description: &str, tags: &[String]) -> ComplianceVerdict {
        let mut matches = self.find_matches(Field::Title, title);
        matches.extend(self.find_matches(Field::Description, description));
        for (i, tag) in tags.iter().enumerate() {
            matches.extend(self.find_matches(Field::Tag(i), tag));
        }
        if matches.iter().any(|m| m.list == ListKind::Block) {
            ComplianceVerdict::Reject { matches }
        } else if matches.is_empty() {
            ComplianceVerdict::Pass
        } else {
            ComplianceVerdict::Review { matches }
        }
    }
}

/// What a frame classifier says about one frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum FrameVerdict {
    Pass,
    Review { reason: String },
    Reject { reason: String },
}

impl FrameVerdict {
    /// How serious the verdict is.
    pub fn severity(&self) -> Severity {
        match self {
            FrameVerdict::Pass => Severity::Pass,
            FrameVerdict::Review { .. } => Severity::Review,
            FrameVerdict::Reject { .. } => Severity::Reject,
        }
    }
}

/// A pluggable image classifier for sampled frames (e.g. a nudity or violence model). The
/// platform ships none; [`NoopClassifier`] passes everything.
pub trait FrameClassifier: Send + Sync {
    /// Classifies one frame, given as JPEG bytes.
    fn classify(&self, frame_jpeg: &[u8]) -> Result<FrameVerdict>;
}

/// The default classifier: every frame passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopClassifier;

impl FrameClassifier for NoopClassifier {
    fn classify(&self, _frame_jpeg: &[u8]) -> Result<FrameVerdict> {
        Ok(FrameVerdict::Pass)
    }
}

/// Runs a classifier over frames in order, stopping after the first `Reject` because nothing
/// later can change the outcome and classifiers are expensive.
pub fn classify_frames<F: AsRef<[u8]>>(
    classifier: &dyn FrameClassifier,
    frames: &[F],
) -> Result<Vec<FrameVerdict>> {
    let mut verdicts = Vec::with_capacity(frames.len());
    for frame in frames {
        let verdict = classifier.classify(frame.as_ref())?;
        let stop = verdict.severity() == Severity::Reject;
        verdicts.push(verdict);
        if stop {
            break;
        }
    }
    Ok(verdicts)
}

/// A non-passing frame verdict and the index of its frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameFinding {
    pub frame_index: usize,
    pub verdict: FrameVerdict,
}

/// The compliance stage's combined result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceOutcome {
    /// The most serious of the text and frame verdicts.
    pub severity: Severity,
    /// Sensitive words found in the text.
    pub text_matches: Vec<WordMatch>,
    /// Frames that did not pass.
    pub frame_findings: Vec<FrameFinding>,
}

/// Merges the text verdict with the per-frame verdicts (index `i` is frame `i`): the outcome
/// is as severe as the most severe of them, and carries every reason.
pub fn combine_verdicts(text: ComplianceVerdict, frames: &[FrameVerdict]) -> ComplianceOutcome {
    let mut severity = text.severity();
    let mut frame_findings = Vec::new();
    for (frame_index, verdict) in frames.iter().enumerate() {
        severity = severity.max(verdict.severity());
        if verdict.severity() != Severity::Pass {
            frame_findings.push(FrameFinding { frame_index, verdict: verdict.clone() });
        }
    }
    let text_matches = match text {
        ComplianceVerdict::Pass => Vec::new(),
        ComplianceVerdict::Review { matches } | ComplianceVerdict::Reject { matches } => matches,
    };
    ComplianceOutcome { severity, text_matches, frame_findings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    fn filter(block: &[&str], review: &[&str]) -> ComplianceFilter {
        ComplianceFilter::from_lists(&words(block), &words(review), true).unwrap()
    }

    #[test]
    fn normalize_folds_width_case_and_separators() {
        assert_eq!(normalize("ＦＲＥＥ Crypto!"), "freecrypto");
        assert_eq!(normalize("f.r.e.e  c r y p t o"), "freecrypto");
        assert_eq!(normalize("赌 博"), "赌博");
        assert_eq!(normalize("赌\u{200B}博"), "赌博");
        assert_eq!(normalize("代·开·发·票！"), "代开发票");
        assert_eq!(normalize("赌🎲博"), "赌博");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn matches_map_back_to_original_positions() {
        let f = filter(&["free crypto giveaway"], &[]);
        let title = "Hi!! ＦＲＥＥ c.r.y.p.t.o  give-away now";
        let m = f.find_matches(Field::Title, title);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].text, "ＦＲＥＥ c.r.y.p.t.o  give-away");
        assert_eq!(&title[m[0].start..m[0].end], m[0].text);
        assert_eq!(m[0].word, "free crypto giveaway");
    }

    #[test]
    fn chinese_with_separators_matches() {
        let f = filter(&["赌博"], &[]);
        let desc = "这里有 赌 . 博 信息";
        let m = f.find_matches(Field::Description, desc);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].text, "赌 . 博");
        assert_eq!(m[0].field, Field::Description);
    }

    #[test]
    fn block_wins_over_review() {
        let f = filter(&["代开发票"], &["兼职"]);
        let v = f.check("兼职 代开发票", "", &[]);
        let ComplianceVerdict::Reject { matches } = &v else { panic!("{v:?}") };
        assert_eq!(matches.len(), 2);
        assert_eq!(v.severity(), Severity::Reject);

        let v = f.check("周末兼职", "", &[]);
        assert!(matches!(v, ComplianceVerdict::Review { .. }), "{v:?}");
    }

    #[test]
    fn word_on_both_lists_is_a_block_word() {
        let f = filter(&["scam"], &["SCAM"]);
        assert_eq!(f.word_count(), 1);
        assert_eq!(f.check("a scam", "", &[]).severity(), Severity::Reject);
    }

    #[test]
    fn tags_are_checked_separately() {
        let f = filter(&["赌博"], &[]);
        let tags = words(&["旅行", "赌博"]);
        let v = f.check("好风景", "", &tags);
        assert_eq!(v.matches()[0].field, Field::Tag(1));
        // No match across the boundary of two tags.
        let tags = words(&["赌", "博"]);
        assert_eq!(f.check("", "", &tags), ComplianceVerdict::Pass);
    }

    #[test]
    fn ascii_words_respect_word_boundaries() {
        let f = filter(&["ass"], &[]);
        assert_eq!(f.check("my class is great", "", &[]), ComplianceVerdict::Pass);
        assert_eq!(f.check("what an ass!", "", &[]).severity(), Severity::Reject);
        assert_eq!(f.check("a.s.s", "", &[]).severity(), Severity::Reject);
        let loose = ComplianceFilter::from_lists(&words(&["ass"]), &[], false).unwrap();
        assert_eq!(loose.check("my class", "", &[]).severity(), Severity::Reject);
    }

    #[test]
    fn boundary_rejection_does_not_hide_an_overlapping_match() {
        let f = filter(&["ass", "lass"], &[]);
        let m = f.find_matches(Field::Title, "lass");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].word, "lass");
    }

    #[test]
    fn builtin_lists_catch_examples_and_pass_ordinary_text() {
        let f = ComplianceFilter::new(&ComplianceConfig::default()).unwrap();
        assert!(f.word_count() >= 10);
        assert_eq!(f.check("专业代·开·发·票", "", &[]).severity(), Severity::Reject);
        assert_eq!(f.check("ＦＲＥＥ crypto GIVEAWAY!!!", "", &[]).severity(), Severity::Reject);
        assert_eq!(f.check("聊聊 赌 博 的危害", "", &[]).severity(), Severity::Review);
        let ordinary = ["周末去北京吃烤鸭 #美食", "My cat learns to skateboard", "学做红烧肉"];
        for title in ordinary {
            assert_eq!(f.check(title, "今天天气很好", &words(&["vlog"])), ComplianceVerdict::Pass);
        }
        let off = ComplianceConfig { builtin_lists: false, ..ComplianceConfig::default() };
        assert_eq!(ComplianceFilter::new(&off).unwrap().word_count(), 0);
        assert_eq!(
            ComplianceFilter::new(&off).unwrap().check("代开发票", "", &[]).severity(),
            Severity::Pass
        );
    }

    #[test]
    fn separator_only_words_are_ignored() {
        let f = filter(&["...", " "], &["-"]);
        assert_eq!(f.word_count(), 0);
        assert_eq!(f.check("anything . - ", "", &[]), ComplianceVerdict::Pass);
    }

    #[test]
    fn word_files_are_read_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path().join("block.txt");
        std::fs::write(&block, "# operator list\n\n  刷 单  \nwire fraud\n#赌博\n").unwrap();
        let config = ComplianceConfig {
            builtin_lists: false,
            block_words_file: Some(block),
            ..ComplianceConfig::default()
        };
        let f = ComplianceFilter::new(&config).unwrap();
        assert_eq!(f.word_count(), 2);
        assert_eq!(f.check("刷单", "", &[]).severity(), Severity::Reject);
        assert_eq!(f.check("WIRE-FRAUD", "", &[]).severity(), Severity::Reject);
        assert_eq!(f.check("赌博", "", &[]).severity(), Severity::Pass);

        let missing = ComplianceConfig {
            review_words_file: Some(dir.path().join("nope.txt")),
            ..ComplianceConfig::default()
        };
        assert!(matches!(ComplianceFilter::new(&missing), Err(PipelineError::WordList { .. })));
    }

    #[test]
    fn config_is_toml_friendly_and_strict() {
        let config: ComplianceConfig =
            toml::from_str("block_words = [\"赌博\"]\nreview_words_file = \"/etc/review.txt\"")
                .unwrap();
        assert!(config.builtin_lists);
        assert_eq!(config.block_words, vec!["赌博".to_owned()]);
        assert_eq!(config.review_words_file, Some(PathBuf::from("/etc/review.txt")));
        let round: ComplianceConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(round, config);
        assert!(toml::from_str::<ComplianceConfig>("block_wrds = []").is_err());
        assert_eq!(toml::from_str::<ComplianceConfig>("").unwrap(), ComplianceConfig::default());
    }

    #[test]
    fn verdict_serializes_with_tag() {
        let f = filter(&["赌博"], &[]);
        let json = serde_json::to_value(f.check("赌博", "", &[])).unwrap();
        assert_eq!(json["verdict"], "reject");
        assert_eq!(json["matches"][0]["field"], "title");
    }

    struct FlagSecond;
    impl FrameClassifier for FlagSecond {
        fn classify(&self, frame_jpeg: &[u8]) -> Result<FrameVerdict> {
            match frame_jpeg.first() {
                Some(1) => Ok(FrameVerdict::Review { reason: "skin".into() }),
                Some(2) => Ok(FrameVerdict::Reject { reason: "gore".into() }),
                Some(_) => Ok(FrameVerdict::Pass),
                None => Err(PipelineError::Classifier("empty frame".into())),
            }
        }
    }

    #[test]
    fn frame_verdicts_combine_with_text() {
        let frames: Vec<Vec<u8>> = vec![vec![0], vec![1], vec![2], vec![1]];
        let verdicts = classify_frames(&FlagSecond, &frames).unwrap();
        assert_eq!(verdicts.len(), 3, "stops after the first reject");
        let out = combine_verdicts(ComplianceVerdict::Pass, &verdicts);
        assert_eq!(out.severity, Severity::Reject);
        assert_eq!(out.frame_findings.len(), 2);
        assert_eq!(out.frame_findings[0].frame_index, 1);

        let noop = classify_frames(&NoopClassifier, &frames).unwrap();
        let f = filter(&[], &["兼职"]);
        let out = combine_verdicts(f.check("兼职", "", &[]), &noop);
        assert_eq!(out.severity, Severity::Review);
        assert_eq!(out.text_matches.len(), 1);
        assert!(out.frame_findings.is_empty());

        assert_eq!(combine_verdicts(ComplianceVerdict::Pass, &[]).severity, Severity::Pass);
        let empty: Vec<Vec<u8>> = vec![vec![]];
        assert!(matches!(classify_frames(&FlagSecond, &empty), Err(PipelineError::Classifier(_))));
    }

    /// Separators a spammer might slip between characters.
    fn separator() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            " ", ".", "  ", "-", "_", "*", "\u{200B}", "\u{200D}", "\u{FEFF}", "\u{3000}", "、",
            "·", "！", "🎲", "\t",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(s in any::<String>()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
        }

        #[test]
        fn normalize_is_idempotent_on_cjk_and_fullwidth(s in "[\u{4E00}-\u{4E20}\u{FF01}-\u{FF5E}\u{3000}a-zA-Z .]{0,40}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
        }

        #[test]
        fn separators_inside_blocked_word_still_match(
            word_idx in 0..BUILTIN_BLOCK_WORDS.len(),
            seps in proptest::collection::vec(separator(), 64),
            prefix in "[\u{4E00}-\u{4E20} ]{0,5}",
            upper in any::<bool>(),
        ) {
            let word = BUILTIN_BLOCK_WORDS[word_idx];
            let mut text = format!("{prefix} ");
            for (i, c) in word.chars().enumerate() {
                text.push(if upper { c.to_ascii_uppercase() } else { c });
                text.push_str(&seps[i % seps.len()]);
            }
            text.push_str(" 结束");
            let f = ComplianceFilter::new(&ComplianceConfig::default()).unwrap();
            let m = f.find_matches(Field::Title, &text);
            prop_assert!(m.iter().any(|m| m.word == word && m.list == ListKind::Block), "{text:?}: {m:?}");
            for m in &m {
                prop_assert_eq!(normalize(&text[m.start..m.end]), normalize(&m.word));
            }
        }

        #[test]
        fn unrelated_text_passes(text in "[\u{7530}-\u{7560}a-k0-9 ,.!?]{0,80}") {
            // CJK range without any character of the built-in lists' words, and letters a-k
            // that cannot spell an English built-in word.
            let f = ComplianceFilter::new(&ComplianceConfig::default()).unwrap();
            let tags = std::slice::from_ref(&text);
            prop_assert_eq!(f.check(&text, &text, tags), ComplianceVerdict::Pass);
        }
    }
}
