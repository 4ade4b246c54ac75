//! Tags stage (F3.4): hashtags written in the title and description, merged with the tags the
//! user gave, plus keywords extracted from the text for search and recommendation.
//!
//! Keywords come from jieba's TF-IDF (its dictionary and IDF table are embedded) for Chinese,
//! and from a stop-word-filtered word count for English; the two lists are interleaved.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jieba_rs::{Jieba, KeywordExtract, KeywordExtractConfig, TfIdf};
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::text::{fold_char, fold_str, is_cjk};

/// Limits of the tags stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagsConfig {
    /// At most this many hashtags (user tags first, then title, then description); default 10.
    pub max_hashtags: usize,
    /// Hashtags longer than this many characters are dropped, not truncated, because a cut
    /// tag is a different tag; default 32.
    pub max_tag_chars: usize,
    /// At most this many keywords; default 8.
    pub max_keywords: usize,
    /// English keywords shorter than this are ignored; default 3.
    pub min_english_keyword_chars: usize,
    /// Words never returned as keywords, in addition to the built-in stop words.
    pub extra_stop_words: Vec<String>,
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            max_hashtags: 10,
            max_tag_chars: 32,
            max_keywords: 8,
            min_english_keyword_chars: 3,
            extra_stop_words: Vec::new(),
        }
    }
}

/// The tags stage's result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tags {
    /// Normalised tags: user-given ones first, then hashtags from the title and description.
    pub hashtags: Vec<String>,
    /// Extracted keywords, best first, none repeating a hashtag.
    pub keywords: Vec<String>,
}

/// Common English words that carry no topic.
const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below", "best",
    "between", "both", "but", "by", "can", "can't", "could", "day", "did", "didn't", "do", "does",
    "doesn't", "doing", "don't", "down", "during", "each", "even", "ever", "every", "few", "for",
    "from", "further", "get", "gets", "got", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "i'm", "if", "in", "into", "is", "isn't", "it", "it's",
    "its", "just", "let", "let's", "like", "made", "make", "many", "me", "more", "most", "much",
    "must", "my", "new", "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or",
    "other", "our", "ours", "out", "over", "own", "part", "really", "same", "see", "she", "should",
    "so", "some", "such", "than", "that", "that's", "the", "their", "theirs", "them", "then",
    "there", "these", "they", "thing", "things", "this", "those", "through", "time", "to", "today",
    "too", "under", "until", "up", "us", "very", "video", "videos", "was", "wasn't", "watch",
    "way", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "won't", "would", "you", "you'll", "you're", "you've", "your", "yours",
];

/// Common Chinese words that jieba's IDF table does not push down far enough for short titles.
const CHINESE_STOP_WORDS: &[&str] = &[
    "我们", "你们", "他们", "她们", "这个", "那个", "一个", "什么", "怎么", "没有", "就是", "可以",
    "自己", "还是", "因为", "所以", "但是", "如果", "这样", "那么", "一下", "大家", "真的", "视频",
    "今天", "现在", "已经", "一起", "然后", "这里", "那里", "时候", "不是", "还有",
];

/// Whether `c` continues a hashtag body: letters and digits of any script, and underscores.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '＿'
}

use quicktok_core::text::is_hash;
pub use quicktok_core::text::normalize_tag;

/// Hashtags in `text`, normalised, deduplicated, in order of first appearance.
///
/// A hashtag is `#` or `＃` followed by letters, digits or underscores of any script; it stops
/// at whitespace or punctuation (`#美食，` gives `美食`). The Weibo form `#话题#` is
/// recognised: its closing `#` is consumed, so it does not start another tag. A `#` glued to a
/// preceding ASCII letter or digit (`C#`, `issue#12`, `&#123;`) starts no tag; one after a
/// Chinese character does, since Chinese puts no space there. Purely numeric bodies (`#1`) are
/// not tags.
pub fn extract_hashtags(text: &str, max_chars: usize) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if !is_hash(c) || prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_' || p == '&') {
            prev = Some(c);
            continue;
        }
        let mut body = String::new();
        while let Some(&next) = chars.peek() {
            if !is_tag_char(next) {
                break;
            }
            body.push(next);
            chars.next();
        }
        prev = body.chars().next_back().or(Some(c));
        if body.is_empty() {
            continue;
        }
        if chars.peek().is_some_and(|&next| is_hash(next)) {
            // Weibo closing hash.
            chars.next();
            prev = Some('#');
        }
        if let Some(tag) = normalize_tag(&body, max_chars)
            && !tags.contains(&tag)
        {
            tags.push(tag);
        }
    }
    tags
}

/// Extracts hashtags and keywords. Loading jieba's dictionaries takes a while, so build one
/// and share it (it is `Send + Sync` and extraction is read-only).
pub struct TagExtractor {
    config: TagsConfig,
    jieba: Jieba,
    tfidf: TfIdf,
    english_stop_words: HashSet<String>,
}

impl fmt::Debug for TagExtractor {
    // Hand-written: the derived form would print jieba's whole IDF table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagExtractor").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TagExtractor {
    /// Loads jieba's embedded dictionaries.
    pub fn new(config: TagsConfig) -> Result<TagExtractor> {
        if config.max_tag_chars == 0 {
            return Err(PipelineError::InvalidConfig(
                "tags.max_tag_chars must be at least 1".into(),
            ));
        }
        let mut extra_chinese = Vec::new();
        let mut english_stop_words: HashSet<String> =
            ENGLISH_STOP_WORDS.iter().map(|w| (*w).to_owned()).collect();
        for word in &config.extra_stop_words {
            let word = fold_str(word.trim());
            if word.chars().any(is_cjk) {
                extra_chinese.push(word);
            } else {
                english_stop_words.insert(word);
            }
        }
        let mut builder = KeywordExtractConfig::builder();
        for word in CHINESE_STOP_WORDS.iter().map(|w| (*w).to_owned()).chain(extra_chinese) {
            builder = builder.add_stop_word(word);
        }
        let mut tfidf = TfIdf::default();
        *tfidf.config_mut() = builder.build();
        Ok(TagExtractor { config, jieba: Jieba::new(), tfidf, english_stop_words })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TagsConfig {
        &self.config
    }

    /// Hashtags (user tags merged with those written in the text) and keywords.
    pub fn extract(&self, title: &str, description: &str, user_tags: &[String]) -> Tags {
        let hashtags = self.hashtags(title, description, user_tags);
        let keywords = self.keywords(title, description, &hashtags);
        Tags { hashtags, keywords }
    }

    /// User tags first (explicit intent), then hashtags from the title, then the description;
    /// normalised, deduplicated, capped at `max_hashtags`.
    pub fn hashtags(&self, title: &str, description: &str, user_tags: &[String]) -> Vec<String> {
        let max_chars = self.config.max_tag_chars;
        let user = user_tags.iter().filter_map(|t| normalize_tag(t, max_chars));
        let written = extract_hashtags(title, max_chars)
            .into_iter()
            .chain(extract_hashtags(description, max_chars));
        let mut out: Vec<String> = Vec::new();
        for tag in user.chain(written) {
            if out.len() >= self.config.max_hashtags {
                break;
            }
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        out
    }

    /// Keywords of the title and description, best first, leaving out anything in `exclude`
    /// (normally the hashtags, which already describe the video).
    pub fn keywords(&self, title: &str, description: &str, exclude: &[String]) -> Vec<String> {
        let max = self.config.max_keywords;
        if max == 0 {
            return Vec::new();
        }
        let excluded = |w: &str| exclude.iter().any(|e| e == w);
        let chinese: Vec<String> = self
            .chinese_keywords(title, description, max + exclude.len())
            .into_iter()
            .filter(|w| !excluded(w))
            .collect();
        let english: Vec<String> = self
            .english_keywords(title, description, max + exclude.len())
            .into_iter()
            .filter(|w| !excluded(w))
            .collect();

        // Interleave, the script that dominates the text first. One Chinese character carries
        // about as much as a few English letters, hence the weight.
        let text = format!("{title}\n{description}");
        let cjk = text.chars().filter(|&c| is_cjk(c)).count();
        let latin = text.chars().filter(char::is_ascii_alphabetic).count();
        let (first, second) =
            if cjk * 3 >= latin { (chinese, english) } else { (english, chinese) };
        let mut out = Vec::with_capacity(max);
        let (mut a, mut b) = (first.into_iter(), second.into_iter());
        while out.len() < max {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => {
                    for word in [x, y].into_iter().flatten() {
                        if out.len() < max && !out.contains(&word) {
                            out.push(word);
                        }
                    }
                }
            }
        }
        out
    }

    /// Chinese keywords by jieba TF-IDF. The title is given twice so its words weigh more than
    /// the description's.
    fn chinese_keywords(&self, title: &str, description: &str, top_k: usize) -> Vec<String> {
        let text = fold_str(&format!("{title}。{title}。{description}"));
        if !text.chars().any(is_cjk) {
            return Vec::new();
        }
        // Ask for more than needed: the English and numeric tokens jieba also returns are
        // dropped here and ranked by the English method instead.
        let found = self.tfidf.extract_keywords(&self.jieba, &text, top_k * 2 + 4, Vec::new());
        found.into_iter().map(|k| k.keyword).filter(|w| w.chars().any(is_cjk)).take(top_k).collect()
    }

    /// English keywords: lowercase words outside the stop list, by frequency (title words
    /// count twice), ties broken by first appearance.
    fn english_keywords(&self, title: &str, description: &str, top_k: usize) -> Vec<String> {
        // word -> (weighted count, first position)
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        let mut position = 0;
        for (text, weight) in [(title, 2), (description, 1)] {
            for word in english_words(text) {
                if word.chars().count() < self.config.min_english_keyword_chars
                    || word.chars().all(|c| c.is_ascii_digit())
                    || self.english_stop_words.contains(&word)
                {
                    continue;
                }
                let entry = counts.entry(word).or_insert((0, position));
                entry.0 += weight;
                position += 1;
            }
        }
        let mut ranked: Vec<(String, (usize, usize))> = counts.into_iter().collect();
        ranked.sort_by(|(_, (ca, pa)), (_, (cb, pb))| cb.cmp(ca).then(pa.cmp(pb)));
        ranked.into_iter().take(top_k).map(|(w, _)| w).collect()
    }
}

/// Lowercased ASCII words (letters, digits, inner apostrophes) after full-width folding; a
/// trailing possessive `'s` is dropped.
fn english_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut folded: Vec<char> = Vec::with_capacity(2);
    let flush = |current: &mut String, words: &mut Vec<String>| {
        let word = current.trim_matches('\'');
        let word = word.strip_suffix("'s").unwrap_or(word);
        if !word.is_empty() {
            words.push(word.to_owned());
        }
        current.clear();
    };
    for c in text.chars() {
        folded.clear();
        fold_char(if c == '’' { '\'' } else { c }, &mut folded);
        for &f in &folded {
            if f.is_ascii_alphanumeric() || f == '\'' {
                current.push(f);
            } else {
                flush(&mut current, &mut words);
            }
        }
    }
    flush(&mut current, &mut words);
    words
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;
    use proptest::prelude::*;

    /// Loading jieba is slow in debug builds: one extractor for all tests.
    static EXTRACTOR: LazyLock<TagExtractor> =
        LazyLock::new(|| TagExtractor::new(TagsConfig::default()).unwrap());

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn hashtags_plain_fullwidth_chinese_and_weibo() {
        assert_eq!(extract_hashtags("周末去北京吃烤鸭 #美食", 32), strings(&["美食"]));
        assert_eq!(extract_hashtags("＃北京烤鸭，真好吃", 32), strings(&["北京烤鸭"]));
        assert_eq!(extract_hashtags("#话题#后面的文字 #旅行", 32), strings(&["话题", "旅行"]));
        assert_eq!(extract_hashtags("今天#美食#和#旅行#", 32), strings(&["美食", "旅行"]));
        assert_eq!(
            extract_hashtags("Cooking #BBQ! #bbq #Ｓｕｍｍｅｒ_2024.", 32),
            strings(&["bbq", "summer_2024"])
        );
        assert_eq!(extract_hashtags("#a#b #c", 32), strings(&["a", "c"]));
    }

    #[test]
    fn hashtag_non_tags() {
        assert!(extract_hashtags("I code in C# and F#", 32).is_empty());
        assert!(extract_hashtags("see issue#12 and &#123;", 32).is_empty());
        assert!(extract_hashtags("#1 fan # ## #！", 32).is_empty());
        assert!(extract_hashtags("", 32).is_empty());
        assert_eq!(extract_hashtags("#abcdef #abc", 4), strings(&["abc"]));
    }

    #[test]
    fn normalize_tag_rules() {
        assert_eq!(normalize_tag("  #Travel  ", 32).as_deref(), Some("travel"));
        assert_eq!(normalize_tag("#话题#", 32).as_deref(), Some("话题"));
        assert_eq!(normalize_tag("Ｎｏｒｔｈ   Beach", 32).as_deref(), Some("north beach"));
        assert_eq!(normalize_tag("   ", 32), None);
        assert_eq!(normalize_tag("2024", 32), None);
        assert_eq!(normalize_tag("北京烤鸭", 3), None);
    }

    #[test]
    fn chinese_title_gives_hashtag_and_keywords() {
        let tags = EXTRACTOR.extract("周末去北京吃烤鸭 #美食", "", &[]);
        assert_eq!(tags.hashtags, strings(&["美食"]));
        assert!(tags.keywords.contains(&"北京".to_owned()), "{tags:?}");
        assert!(tags.keywords.contains(&"烤鸭".to_owned()), "{tags:?}");
        assert!(!tags.keywords.contains(&"美食".to_owned()), "hashtags are not repeated");
    }

    #[test]
    fn user_tags_come_first_and_merge() {
        let user = strings(&["#Food", "美食", "  "]);
        let tags = EXTRACTOR.extract("成都火锅 #美食 #food", "好吃 #辣", &user);
        assert_eq!(tags.hashtags, strings(&["food", "美食", "辣"]));
        assert!(tags.keywords.contains(&"火锅".to_owned()), "{tags:?}");
    }

    #[test]
    fn english_keywords_by_frequency() {
        let tags = EXTRACTOR.extract(
            "Sourdough bread recipe for beginners #baking",
            "The sourdough starter needs time. This bread is the easiest bread you'll make! \
             Baking at home.",
            &[],
        );
        assert_eq!(tags.hashtags, strings(&["baking"]));
        assert_eq!(tags.keywords[0], "bread", "{tags:?}");
        assert_eq!(tags.keywords[1], "sourdough", "{tags:?}");
        for stop in ["the", "for", "this", "time", "baking"] {
            assert!(!tags.keywords.contains(&stop.to_owned()), "{stop}: {tags:?}");
        }
    }

    #[test]
    fn mixed_text_interleaves_scripts() {
        let tags = EXTRACTOR.extract("iPhone 评测：拍照 续航 拍照 iPhone", "", &[]);
        assert!(tags.keywords.contains(&"iphone".to_owned()), "{tags:?}");
        assert!(tags.keywords.contains(&"拍照".to_owned()), "{tags:?}");
        assert_eq!(tags.keywords[0], "拍照", "Chinese dominates: {tags:?}");
    }

    #[test]
    fn limits_are_applied() {
        let config = TagsConfig {
            max_hashtags: 2,
            max_keywords: 1,
            extra_stop_words: strings(&["北京", "Duck"]),
            ..TagsConfig::default()
        };
        let ex = TagExtractor::new(config).unwrap();
        let tags = ex.extract("#a1 #b2 #c3 北京烤鸭店 北京 duck duck", "", &[]);
        assert_eq!(tags.hashtags, strings(&["a1", "b2"]));
        assert_eq!(tags.keywords.len(), 1);
        assert_ne!(tags.keywords[0], "北京");
        assert_ne!(tags.keywords[0], "duck");
        let none = TagExtractor::new(TagsConfig { max_keywords: 0, ..TagsConfig::default() });
        assert!(none.unwrap().extract("北京烤鸭", "", &[]).keywords.is_empty());
        assert!(
            TagExtractor::new(TagsConfig { max_tag_chars: 0, ..TagsConfig::default() }).is_err()
        );
    }

    #[test]
    fn empty_input_gives_empty_tags() {
        assert_eq!(EXTRACTOR.extract("", "", &[]), Tags::default());
    }

    #[test]
    fn config_is_toml_friendly_and_strict() {
        let c: TagsConfig = toml::from_str("max_keywords = 3").unwrap();
        assert_eq!(c.max_keywords, 3);
        assert_eq!(c.max_hashtags, 10);
        assert!(toml::from_str::<TagsConfig>("max_keyword = 3").is_err());
    }

    proptest! {
        #[test]
        fn extracted_hashtags_respect_invariants(text in "[#＃ a-zA-Z0-9北京烤鸭美食，。!_]{0,60}") {
            let tags = extract_hashtags(&text, 8);
            let unique: HashSet<&String> = tags.iter().collect();
            prop_assert_eq!(unique.len(), tags.len());
            for tag in &tags {
                prop_assert!(!tag.is_empty() && tag.chars().count() <= 8);
                prop_assert!(tag.chars().all(is_tag_char), "{:?}", tag);
                prop_assert_eq!(tag.to_lowercase(), tag.clone());
                prop_assert_eq!(normalize_tag(tag, 8), Some(tag.clone()));
            }
        }
    }
}
