//! The query language users type: free text, `#tag` (matches the exact hashtag) and
//! `@name` (videos of that creator), freely mixed.

use quicktok_core::text::{MAX_TAG_CHARS, fold_str, is_hash, normalize_tag};

use crate::error::{Result, SearchError};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A query split into its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// Free text, analysed like the documents.
    pub text: String,
    /// Hashtags in the shared normal form.
    pub tags: Vec<String>,
    /// Creator usernames, folded.
    pub creators: Vec<String>,
}

/// Splits `q`; empty, overlong or meaningless queries are refused.
pub fn parse_query(q: &str) -> Result<ParsedQuery> {
    let q = q.trim();
    if q.is_empty() {
        return Err(SearchError::BadQuery("q must not be empty".into()));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchError::BadQuery(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut parsed = ParsedQuery::default();
    let mut text = Vec::new();
    for word in q.split_whitespace() {
        if word.starts_with(is_hash) {
            if let Some(tag) = normalize_tag(word, MAX_TAG_CHARS) {
                parsed.tags.push(tag);
            }
        } else if let Some(name) = word.strip_prefix(['@', '＠']).filter(|n| !n.is_empty()) {
            parsed.creators.push(fold_str(name));
        } else {
            text.push(word);
        }
    }
    parsed.text = text.join(" ");
    let has_words = parsed.text.chars().any(char::is_alphanumeric);
    if !has_words && parsed.tags.is_empty() && parsed.creators.is_empty() {
        return Err(SearchError::BadQuery("q has nothing to search for".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_creators_and_text_are_told_apart() {
        let p = parse_query("  #Dance ＃北京 @Li.Wei funny cats ").unwrap();
        assert_eq!(p.tags, ["dance", "北京"]);
        assert_eq!(p.creators, ["li.wei"]);
        assert_eq!(p.text, "funny cats");
    }

    #[test]
    fn empty_and_meaningless_queries_are_refused() {
        for q in ["", "   ", "#", "!!! ???", &"x".repeat(201)] {
            assert!(parse_query(q).is_err(), "{q:?}");
        }
    }
}
