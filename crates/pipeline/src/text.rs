//! Text folding shared by the compliance filter and tag normalisation.
//!
//! Folding is per character, so every output character can be traced to the input character
//! it came from; that is what lets the compliance filter report matches in the original text.

/// Folds one character: full-width ASCII forms to ASCII, the ideographic space to a space,
/// then lowercase. Several characters may come out (e.g. `İ` lowercases to two).
pub(crate) fn fold_char(c: char, out: &mut impl Extend<char>) {
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

/// Whether a (folded) character carries meaning for matching. Everything else — whitespace,
/// punctuation, symbols, emoji, zero-width and other format characters, combining marks — is
/// treated as a separator that spammers insert between characters, and dropped.
pub(crate) fn is_significant(c: char) -> bool {
    c.is_alphanumeric()
}

/// Folds a whole string (no characters dropped).
pub(crate) fn fold_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Whether a character is a CJK ideograph (the scripts jieba segments).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}'
        | '\u{2A700}'..='\u{2EBEF}'
        | '\u{30000}'..='\u{3134F}')
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
    fn separators_are_not_significant() {
        for c in [' ', '.', '\u{200B}', '\u{FEFF}', '、', '。', '·', '🎲', '\u{0301}', '-', '_']
        {
            assert!(!is_significant(c), "{c:?}");
        }
        for c in ['a', '7', '赌', 'é', 'я'] {
            assert!(is_significant(c), "{c:?}");
        }
    }
}
