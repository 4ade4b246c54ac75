//! `Upload-Metadata` parsing and validation: comma-separated `key base64value` pairs (the
//! value may be absent), keys ASCII without spaces or commas and unique, values valid
//! base64 of UTF-8 text without control characters. The keys QuickTok reads are
//! `filename`, `title`, `description`, `tags`, `visibility` (`public` or `private`) and
//! `kind` (`video`, the default, or `story`);
//! others (such as `filetype`, which many tus clients send) are accepted and ignored.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 150;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2200;
/// Most tags on one video.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = quicktok_core::text::MAX_TAG_CHARS;

/// Standard alphabet; padding optional (some clients strip it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a video gets from its upload's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoMetadata {
    pub filename: Option<String>,
    /// The `title`, else the `filename`, else `"Untitled"`.
    pub title: String,
    pub description: String,
    /// Normalised: lowercase, without a leading `#`, distinct, in the order given.
    pub tags: Vec<String>,
    /// `visibility` is `private` (only the author may see and play the video) rather than
    /// `public`, the default.
    pub private: bool,
    /// `kind` is `story` (a short clip visible for a limited time) rather than `video`, the
    /// default.
    pub kind: quicktok_meta::VideoKind,
}

/// Parses and validates an `Upload-Metadata` header. The error is a message for the client.
pub fn parse(header: &str, max_bytes: usize) -> Result<VideoMetadata, String> {
    if header.len() > max_bytes {
        return Err(format!("Upload-Metadata is longer than {max_bytes} bytes"));
    }
    let mut pairs: BTreeMap<&str, String> = BTreeMap::new();
    if !header.trim().is_empty() {
        for pair in header.split(',') {
            let pair = pair.trim();
            let (key, value) = match pair.split_once(' ') {
                Some((k, v)) => (k, Some(v.trim())),
                None => (pair, None),
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(format!(
                    "Upload-Metadata key {:?} must be non-empty printable ASCII without spaces or commas",
                    key.chars().take(32).collect::<String>()
                ));
            }
            let decoded = match value {
                None | Some("") => String::new(),
                Some(v) => {
                    let bytes = BASE64
                        .decode(v)
                        .map_err(|_| format!("Upload-Metadata value of {key:?} is not base64"))?;
                    String::from_utf8(bytes)
                        .map_err(|_| format!("Upload-Metadata value of {key:?} is not UTF-8"))?
                }
            };
            // Line breaks are allowed in descriptions only.
            let allowed = |c: char| key == "description" && (c == '\n' || c == '\r');
            if decoded.chars().any(|c| c.is_control() && !allowed(c)) {
                return Err(format!("Upload-Metadata value of {key:?} has control characters"));
            }
            if pairs.insert(key, decoded).is_some() {
                return Err(format!("Upload-Metadata key {key:?} appears twice"));
            }
        }
    }
    let clean = |s: Option<&String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let filename = clean(pairs.get("filename"));
    let title = clean(pairs.get("title"))
        .or_else(|| filename.clone())
        .unwrap_or_else(|| "Untitled".to_owned());
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(format!("title is longer than {MAX_TITLE_CHARS} characters"));
    }
    let description = clean(pairs.get("description")).unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"));
    }
    let tags = match pairs.get("tags") {
        Some(t) => parse_tags(t)?,
        None => Vec::new(),
    };
    let private = match clean(pairs.get("visibility")).as_deref() {
        None | Some("public") => false,
        Some("private") => true,
        Some(_) => return Err("visibility must be public or private".to_owned()),
    };
    let kind = match clean(pairs.get("kind")).as_deref() {
        None | Some("video") => quicktok_meta::VideoKind::Video,
        Some("story") => quicktok_meta::VideoKind::Story,
        Some(_) => return Err("kind must be video or story".to_owned()),
    };
    Ok(VideoMetadata { filename, title, description, tags, private, kind })
}

/// Tags separated by commas and/or whitespace, each letters, digits and `_` (not only
/// digits), in the shared normal form of `quicktok_core::text`.
pub(crate) fn parse_tags(text: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for raw in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if raw.trim_matches(quicktok_core::text::is_hash).is_empty() {
            continue;
        }
        // The shared normal form (case and width folded), then this field's stricter rule.
        let tag = quicktok_core::text::normalize_tag(raw, MAX_TAG_CHARS).unwrap_or_default();
        if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "tag {:?} must be 1 to {MAX_TAG_CHARS} letters, digits or underscores, not only digits",
                raw.chars().take(MAX_TAG_CHARS).collect::<String>()
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    Ok(tags)
}

/// Encodes `pairs` as an `Upload-Metadata` header (for tests and clients).
pub fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", general_purpose::STANDARD.encode(v)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys_and_defaults() {
        let h = encode(&[("filename", "cat.mp4"), ("filetype", "video/mp4")]);
        let m = parse(&h, 4096).unwrap();
        assert_eq!(m.title, "cat.mp4");
        assert_eq!(m.filename.as_deref(), Some("cat.mp4"));
        let h = encode(&[
            ("title", "Cats"),
            ("description", "line one\nline two"),
            ("tags", "#Cats, funny  cats"),
        ]);
        let m = parse(&(h + ",is_confidential"), 4096).unwrap();
        assert_eq!((m.title.as_str(), m.description.as_str()), ("Cats", "line one\nline two"));
        assert_eq!(m.tags, ["cats", "funny"]);
        assert_eq!(parse("", 10).unwrap().title, "Untitled");
        // Unpadded base64 is accepted.
        assert_eq!(parse("title Q2F0cw", 100).unwrap().title, "Cats");
        assert!(!m.private, "public by default");
        assert!(parse(&encode(&[("visibility", "private")]), 100).unwrap().private);
        assert!(!parse(&encode(&[("visibility", "public")]), 100).unwrap().private);
        use quicktok_meta::VideoKind;
        assert_eq!(m.kind, VideoKind::Video, "a video by default");
        assert_eq!(parse(&encode(&[("kind", "story")]), 100).unwrap().kind, VideoKind::Story);
        assert_eq!(parse(&encode(&[("kind", "video")]), 100).unwrap().kind, VideoKind::Video);
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "title !!notbase64".to_owned(),
            encode(&[("title", "a"), ("title", "b")]),
            encode(&[("title", "bell\u{7}")]),
            encode(&[("filename", "a\nb")]),
            "t\u{e9}tle QQ==".to_owned(),
            ",title QQ==".to_owned(),
            "title /w==".to_owned(), // not UTF-8
            encode(&[("tags", "ok, not-ok")]),
            encode(&[("visibility", "friends")]),
            encode(&[("kind", "reel")]),
            encode(&[("kind", "Story")]),
            encode(&[("title", &"x".repeat(151))]),
        ] {
            assert!(parse(&bad, 4096).is_err(), "{bad}");
        }
        assert!(parse(&encode(&[("title", "abc")]), 5).is_err());
    }
}
