//! The one analyzer for mixed Chinese / Latin text: runs of Han characters go to jieba
//! (search mode at index time, so 北京烤鸭 is also indexed as 北京 and 烤鸭), everything else
//! is split on non-alphanumerics, width- and case-folded and English-stemmed, so "Running
//! Dogs" and "run dog" meet.

use std::sync::Arc;

use jieba_rs::Jieba;
use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};

/// The name the analyzer is registered under in the index.
pub const ANALYZER: &str = "qt_mixed";

/// Whether `c` is a Han ideograph (the characters jieba segments).
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF)
}

/// A run of text of one kind, with its byte offset in the input.
struct Run<'a> {
    start: usize,
    text: &'a str,
    han: bool,
}

/// Splits `text` into maximal runs of Han and of alphanumeric non-Han characters (other
/// characters separate runs and are dropped).
fn runs(text: &str) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    let mut current: Option<(usize, bool)> = None;
    for (i, c) in text.char_indices() {
        let kind = if is_han(c) {
            Some(true)
        } else if c.is_alphanumeric() {
            Some(false)
        } else {
            None
        };
        match (current, kind) {
            (Some((_, h)), Some(k)) if h == k => {}
            (Some((s, h)), k) => {
                out.push(Run { start: s, text: &text[s..i], han: h });
                current = k.map(|k| (i, k));
            }
            (None, k) => current = k.map(|k| (i, k)),
        }
    }
    if let Some((s, h)) = current {
        out.push(Run { start: s, text: &text[s..], han: h });
    }
    out
}

/// The segmenting tokenizer (before stemming); see the module docs.
#[derive(Clone)]
pub struct MixedTokenizer {
    jieba: Arc<Jieba>,
    tokens: Vec<Token>,
}

impl MixedTokenizer {
    pub fn new(jieba: Arc<Jieba>) -> Self {
        MixedTokenizer { jieba, tokens: Vec::new() }
    }
}

/// Tokens computed up front (jieba works on whole runs).
pub struct VecTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next.saturating_sub(1).min(self.tokens.len().saturating_sub(1))]
    }
    fn token_mut(&mut self) -> &mut Token {
        let i = self.next.saturating_sub(1).min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = VecTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream<'a> {
        self.tokens.clear();
        let mut position = 0;
        let mut push = |tokens: &mut Vec<Token>, text: String, from: usize, to: usize| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position,
                text,
                position_length: 1,
            });
            position += 1;
        };
        for run in runs(text) {
            if run.han {
                for t in self.jieba.cut_for_search(run.text, true) {
                    push(
                        &mut self.tokens,
                        t.word.to_owned(),
                        run.start + t.byte_start,
                        run.start + t.byte_end,
                    );
                }
            } else {
                push(
                    &mut self.tokens,
                    quicktok_core::text::fold_str(run.text),
                    run.start,
                    run.start + run.text.len(),
                );
            }
        }
        VecTokenStream { tokens: &mut self.tokens, next: 0 }
    }
}

/// The index-time analyzer: the mixed tokenizer followed by the English stemmer (which
/// leaves Han words alone).
pub fn analyzer(jieba: Arc<Jieba>) -> TextAnalyzer {
    TextAnalyzer::builder(MixedTokenizer::new(jieba))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// One word of a query: its term, and the sub-words jieba's search mode finds inside it (a
/// document matches the word if it has the whole term or every sub-word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    pub whole: String,
    pub parts: Vec<String>,
}

/// Segments a query: Han runs with jieba's default mode (the longest dictionary words,
/// each with its search-mode sub-words), the rest as the index analyzer does.
pub fn query_words(jieba: &Jieba, analyzer: &mut TextAnalyzer, text: &str) -> Vec<QueryWord> {
    let mut out: Vec<QueryWord> = Vec::new();
    for run in runs(text) {
        if run.han {
            for word in jieba.cut(run.text, true) {
                let mut parts: Vec<String> = jieba
                    .cut_for_search(word.word, true)
                    .into_iter()
                    .map(|t| t.word.to_owned())
                    .filter(|p| p != word.word)
                    .collect();
                parts.dedup();
                out.push(QueryWord { whole: word.word.to_owned(), parts });
            }
        } else {
            let mut stream = analyzer.token_stream(run.text);
            while let Some(t) = stream.next() {
                out.push(QueryWord { whole: t.text.clone(), parts: Vec::new() });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| seen.insert(w.whole.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut a = analyzer(Arc::new(Jieba::new()));
        let mut s = a.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = s.next() {
            assert_eq!(&text[t.offset_from..t.offset_to].is_empty(), &false);
            out.push(t.text.clone());
        }
        out
    }

    #[test]
    fn han_runs_are_segmented_in_search_mode() {
        let t = tokens("我爱北京烤鸭");
        assert!(t.contains(&"烤鸭".to_owned()), "{t:?}");
        assert!(t.contains(&"北京".to_owned()), "{t:?}");
    }

    #[test]
    fn latin_is_folded_and_stemmed_and_mixed_text_split() {
        assert_eq!(tokens("Running Dogs"), ["run", "dog"]);
        assert_eq!(tokens("ＤＡＮＣＥ"), ["danc"]);
        let t = tokens("vlog北京烤鸭review");
        assert_eq!(t.first().map(String::as_str), Some("vlog"));
        assert_eq!(t.last().map(String::as_str), Some("review"));
        assert!(t.contains(&"烤鸭".to_owned()));
    }

    #[test]
    fn query_words_carry_sub_words() {
        let jieba = Jieba::new();
        let mut a = analyzer(Arc::new(Jieba::new()));
        let words = query_words(&jieba, &mut a, "北京烤鸭 Running");
        assert_eq!(words.last().map(|w| w.whole.as_str()), Some("run"));
        let first = &words[0];
        assert!(first.whole == "北京烤鸭" || first.whole == "北京", "{words:?}");
    }
}
