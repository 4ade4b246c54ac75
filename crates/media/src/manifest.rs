//! Manifests (pure): HLS v7 media and master playlists and a static MPEG-DASH MPD, all
//! referencing the same fMP4 init and media segments. URLs come from the caller (the
//! publish stage passes signed blob URLs).

use std::fmt::Write as _;
use std::path::Path;

use crate::ladder::VideoCodec;
use crate::transcode::Rendition;

/// A URL as one playlist line: line breaks would inject tags, so they are dropped.
fn line_safe(url: &str) -> String {
    url.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// A URL inside a quoted attribute: additionally percent-encode the quote.
fn quoted_safe(url: &str) -> String {
    line_safe(url).replace('"', "%22")
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// HLS media playlist (version 7, VOD) for one rendition.
pub fn hls_media_playlist(r: &Rendition, url_of: impl Fn(&Path) -> String) -> String {
    let target = r.segments.iter().map(|s| s.duration_ms.div_ceil(1000)).max().unwrap_or(1).max(1);
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
        quoted_safe(&url_of(&r.init))
    );
    for seg in &r.segments {
        let _ =
            write!(s, "#EXTINF:{},\n{}\n", secs(seg.duration_ms), line_safe(&url_of(&seg.path)));
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// HLS master playlist listing `renditions` in the given order (put the lowest rung
/// first: players start with the first variant).
pub fn hls_master(
    renditions: &[Rendition],
    url_of_playlist: impl Fn(&Rendition) -> String,
) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in renditions {
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={:.3}\n{}\n",
            r.bandwidth.max(1),
            r.average_bandwidth.max(1),
            r.codecs,
            r.width,
            r.height,
            r.fps,
            line_safe(&url_of_playlist(r))
        );
    }
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Static MPEG-DASH MPD. One AdaptationSet per video codec (players may not switch codecs
/// mid-stream); each Representation is a SegmentList with the exact segment timeline.
/// Audio is muxed into the same segments, so its codec appears in `@codecs` when present.
pub fn dash_mpd(renditions: &[Rendition], url_of: impl Fn(&Path) -> String) -> String {
    let duration = renditions.iter().map(|r| r.duration_ms).max().unwrap_or(0);
    let min_buffer = renditions
        .iter()
        .flat_map(|r| r.segments.iter().map(|s| s.duration_ms))
        .max()
        .unwrap_or(2000);
    let mut s = String::new();
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
         profiles=\"urn:mpeg:dash:profile:isoff-main:2011\" \
         mediaPresentationDuration=\"PT{}S\" minBufferTime=\"PT{}S\">\n  <Period id=\"0\" start=\"PT0S\">\n",
        secs(duration),
        secs(min_buffer)
    );
    for (set_id, codec) in [VideoCodec::H264, VideoCodec::H265].into_iter().enumerate() {
        let reps: Vec<&Rendition> = renditions.iter().filter(|r| r.rung.codec == codec).collect();
        if reps.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "    <AdaptationSet id=\"{set_id}\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">"
        );
        for r in reps {
            let _ = write!(
                s,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" width=\"{}\" height=\"{}\" frameRate=\"{}\" sar=\"1:1\">\n\
                 \x20       <SegmentList timescale=\"1000\">\n\
                 \x20         <Initialization sourceURL=\"{}\"/>\n\
                 \x20         <SegmentTimeline>\n",
                xml_escape(&r.rung.name),
                r.bandwidth.max(1),
                xml_escape(&r.codecs),
                r.width,
                r.height,
                fps_attr(r.fps),
                xml_escape(&url_of(&r.init)),
            );
            let mut t = 0u64;
            for seg in &r.segments {
                let _ = writeln!(s, "            <S t=\"{t}\" d=\"{}\"/>", seg.duration_ms);
                t += seg.duration_ms;
            }
            s.push_str("          </SegmentTimeline>\n");
            for seg in &r.segments {
                let _ = writeln!(
                    s,
                    "          <SegmentURL media=\"{}\"/>",
                    xml_escape(&url_of(&seg.path))
                );
            }
            s.push_str("        </SegmentList>\n      </Representation>\n");
        }
        s.push_str("    </AdaptationSet>\n");
    }
    s.push_str("  </Period>\n</MPD>\n");
    s
}

/// DASH `@frameRate`: an integer, or `num/1001` for the NTSC family.
fn fps_attr(fps: f64) -> String {
    let r = fps.round();
    if (fps - r).abs() < 0.001 {
        format!("{}", r as u64)
    } else {
        format!("{}/1001", (fps * 1001.0).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::ladder::Rung;
    use crate::transcode::Segment;

    fn rendition(name: &str, audio: bool) -> Rendition {
        let dir = PathBuf::from(format!("/j/{name}"));
        Rendition {
            rung: Rung {
                name: name.into(),
                codec: VideoCodec::H264,
                width: 480,
                height: 854,
                video_kbps: 500,
                max_kbps: 750,
            },
            init: dir.join("init.mp4"),
            segments: vec![
                Segment { path: dir.join("seg_00000.m4s"), duration_ms: 2000, size_bytes: 1 },
                Segment { path: dir.join("seg_00001.m4s"), duration_ms: 1500, size_bytes: 1 },
            ],
            dir,
            bandwidth: 600_000,
            average_bandwidth: 500_000,
            codecs: if audio { "avc1.64001e,mp4a.40.2".into() } else { "avc1.64001e".into() },
            width: 480,
            height: 854,
            fps: 30.0,
            has_audio: audio,
            duration_ms: 3500,
        }
    }

    #[test]
    fn media_playlist_shape() {
        let p = hls_media_playlist(&rendition("480p", true), |p| {
            format!("https://b/x?sig=1&p={}", p.display())
        });
        assert!(p.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"));
        assert!(p.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
        assert!(p.contains("#EXT-X-MAP:URI=\"https://b/x?sig=1&p=/j/480p/init.mp4\"\n"));
        assert!(p.contains("#EXTINF:1.500,\nhttps://b/x?sig=1&p=/j/480p/seg_00001.m4s\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn urls_cannot_inject_lines() {
        let p = hls_media_playlist(&rendition("480p", true), |_| "a\n#EXT-X-ENDLIST\"".into());
        assert_eq!(p.lines().filter(|l| l.starts_with("#EXT-X-ENDLIST")).count(), 1);
        assert!(!p.contains("\"\"") && p.contains("%22"));
    }

    #[test]
    fn master_and_mpd_say_whether_there_is_audio() {
        let silent = [rendition("480p", false)];
        let m = hls_master(&silent, |r| format!("{}.m3u8", r.rung.name));
        assert!(m.contains("CODECS=\"avc1.64001e\",RESOLUTION=480x854"));
        let mpd = dash_mpd(&silent, |p| p.display().to_string());
        assert!(mpd.contains("codecs=\"avc1.64001e\""));
        assert!(!mpd.contains("mp4a"));
        let mpd = dash_mpd(&[rendition("480p", true)], |_| "u?a=1&b=2".into());
        assert!(mpd.contains("sourceURL=\"u?a=1&amp;b=2\""));
        assert!(mpd.contains("<S t=\"2000\" d=\"1500\"/>"));
        assert!(mpd.contains("mediaPresentationDuration=\"PT3.500S\""));
    }
}
