//! Text folding and hashtag normalisation shared by every crate that handles tags (upload
//! metadata, the pipeline's tag stage, trending's per-tag lists), so a tag written `＃Dance`,
//! `#dance` or `DANCE` is one tag everywhere.

/// The longest tag kept, in characters.
pub const MAX_TAG_CHARS: usize = 32;

/// Folds one character: full-width ASCII forms to ASCII, the ideographic space to a space,
/// then lowercase. Several characters may come out (e.g. `İ` lowercases to two). Folding is
/// per character so callers can map folded text back to the original.
pub fn fold_char(c: char, out: &mut impl Extend<char>) {
    let c = match c {
        // The full-width block mirrors printable ASCII at a fixed offset.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    };
    if c.is_ascii() {
        out.extend([c.to_ascii_lowercase()]);
    } else {
        out.extend(c.to_lowercase());
    }
}

/// Folds a whole string (no characters dropped).
pub fn fold_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Whether `c` is a hash sign, ASCII or full-width.
pub fn is_hash(c: char) -> bool {
    c == '#' || c == '＃'
}

/// Normalises one tag: leading and trailing `#`/`＃` removed, full-width folded to ASCII,
/// lowercased, trimmed, inner whitespace runs collapsed to one space. `None` when the result
/// is empty, only digits, or longer than `max_chars` characters.
pub fn normalize_tag(tag: &str, max_chars: usize) -> Option<String> {
    let folded = fold_str(tag.trim().trim_matches(is_hash));
    let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars = collapsed.chars().count();
    if chars == 0 || chars > max_chars || collapsed.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_folds_to_ascii_lowercase() {
        assert_eq!(fold_str("ＦＲＥＥ！　Ａｂｃ１２３"), "free! abc123");
        assert_eq!(fold_str("北京"), "北京");
    }

    #[test]
    fn tags_normalise_alike() {
        for t in ["#Dance", "＃ＤＡＮＣＥ", " dance ", "#dance#"] {
            assert_eq!(normalize_tag(t, MAX_TAG_CHARS).as_deref(), Some("dance"), "{t}");
        }
        assert_eq!(normalize_tag("#北京 烤鸭", MAX_TAG_CHARS).as_deref(), Some("北京 烤鸭"));
        assert_eq!(normalize_tag("#123", MAX_TAG_CHARS), None);
        assert_eq!(normalize_tag("#", MAX_TAG_CHARS), None);
        assert_eq!(normalize_tag(&"a".repeat(33), MAX_TAG_CHARS), None);
    }
}
