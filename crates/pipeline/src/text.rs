//! Text helpers of the compliance filter and the tag stage (folding itself lives in
//! `quicktok_core::text`, shared with the API).
//!
//! Folding is per character, so every output character can be traced to the input character
//! it came from; that is what lets the compliance filter report matches in the original text.

pub(crate) use quicktok_core::text::{fold_char, fold_str};

/// Whether a (folded) character carries meaning for matching. Everything else — whitespace,
/// punctuation, symbols, emoji, zero-width and other format characters, combining marks — is
/// treated as a separator that spammers insert between characters, and dropped.
pub(crate) fn is_significant(c: char) -> bool {
    c.is_alphanumeric()
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
