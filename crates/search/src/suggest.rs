//! Prefix completion for the search box: a sorted list of folded keys (titles, tags,
//! creator names from the most popular documents) searched by binary search, so Chinese
//! prefixes work like any other (北京 -> 北京烤鸭...). Rebuilt from the index after commits.

use serde::Serialize;

/// What a suggestion completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    Title,
    Tag,
    Creator,
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub text: String,
    pub kind: SuggestionKind,
    /// Popularity (likes + views / 10, followers for creators; summed over documents).
    pub weight: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    text: String,
    kind: SuggestionKind,
    weight: u64,
}

/// The completion list.
#[derive(Debug, Default)]
pub struct Suggester {
    entries: Vec<Entry>,
}

/// Most entries looked at per completion: a one-letter prefix matches many.
const SCAN_LIMIT: usize = 20_000;

impl Suggester {
    /// Builds the list from `(kind, text, weight)`; equal texts of one kind are merged and
    /// their weights summed.
    pub fn build(items: Vec<(SuggestionKind, String, u64)>) -> Suggester {
        let mut entries: Vec<Entry> = items
            .into_iter()
            .map(|(kind, text, weight)| {
                let text = text.trim().to_owned();
                Entry { key: quicktok_core::text::fold_str(&text), text, kind, weight }
            })
            .filter(|e| !e.key.is_empty())
            .collect();
        entries.sort_by(|a, b| (&a.key, a.kind as u8).cmp(&(&b.key, b.kind as u8)));
        let mut merged: Vec<Entry> = Vec::with_capacity(entries.len());
        for e in entries {
            match merged.last_mut() {
                Some(last) if last.key == e.key && last.kind == e.kind => {
                    last.weight = last.weight.saturating_add(e.weight);
                }
                _ => merged.push(e),
            }
        }
        Suggester { entries: merged }
    }

    /// At most `limit` completions of `prefix` (folded), most popular first.
    pub fn complete(&self, prefix: &str, limit: usize) -> Vec<Suggestion> {
        let key = quicktok_core::text::fold_str(prefix.trim().trim_start_matches(['#', '@']));
        if key.is_empty() {
            return Vec::new();
        }
        let start = self.entries.partition_point(|e| e.key.as_str() < key.as_str());
        let mut found: Vec<&Entry> = self.entries[start..]
            .iter()
            .take(SCAN_LIMIT)
            .take_while(|e| e.key.starts_with(&key))
            .collect();
        found.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.key.cmp(&b.key)));
        found
            .into_iter()
            .take(limit)
            .map(|e| Suggestion { text: e.text.clone(), kind: e.kind, weight: e.weight })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_prefixes_complete_by_popularity() {
        let s = Suggester::build(vec![
            (SuggestionKind::Title, "北京烤鸭的做法".into(), 5),
            (SuggestionKind::Title, "北京一日游".into(), 50),
            (SuggestionKind::Tag, "北京".into(), 7),
            (SuggestionKind::Tag, "北京".into(), 7),
            (SuggestionKind::Title, "上海小笼包".into(), 500),
        ]);
        let got: Vec<(String, u64)> =
            s.complete("北京", 10).into_iter().map(|s| (s.text, s.weight)).collect();
        assert_eq!(
            got,
            [("北京一日游".into(), 50), ("北京".into(), 14), ("北京烤鸭的做法".into(), 5)]
        );
        assert_eq!(s.complete("北京", 1).len(), 1);
        assert!(s.complete("广州", 10).is_empty());
        assert!(s.complete("", 10).is_empty());
    }

    #[test]
    fn latin_prefixes_fold_case() {
        let s = Suggester::build(vec![(SuggestionKind::Creator, "Maya.Demo".into(), 1)]);
        assert_eq!(s.complete("@ma", 5)[0].text, "Maya.Demo");
    }
}
