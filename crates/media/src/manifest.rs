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

/// HLS media playlist (version 7) for one rendition: VOD when it is complete; while it is
/// still being encoded (`growing`), an EVENT playlist of the segments finished so far that
/// players reload (RFC 8216 6.2.1) and start from the beginning (`EXT-X-START`), which
/// becomes the VOD one when the last segment lands.
pub fn hls_media_playlist(r: &Rendition, url_of: impl Fn(&Path) -> String) -> String {
    // Rounded, not ceiled (RFC 8216 4.3.3.1): a 2.002 s segment keeps a 2 s target, so the
    // target stays the same while an EVENT playlist grows.
    let target = r.segments.iter().map(|s| (s.duration_ms + 500) / 1000).max().unwrap_or(1).max(1);
    let kind = if r.growing { "EVENT\n#EXT-X-START:TIME-OFFSET=0,PRECISE=YES" } else { "VOD" };
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:{kind}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
        quoted_safe(&url_of(&r.init))
    );
    for seg in &r.segments {
        let _ =
            write!(s, "#EXTINF:{},\n{}\n", secs(seg.duration_ms), line_safe(&url_of(&seg.path)));
    }
    if !r.growing {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

/// Whether `r` is the audio track (see [`crate::transcode_audio`]) rather than a video rung.
pub fn is_audio_track(r: &Rendition) -> bool {
    r.width == 0 && r.height == 0 && r.has_audio
}

/// HLS master playlist listing the video `renditions` in the given order (put the lowest
/// rung first: players start with the first variant). An audio track among them becomes
/// the `EXT-X-MEDIA` audio group every variant plays with.
pub fn hls_master(
    renditions: &[Rendition],
    url_of_playlist: impl Fn(&Rendition) -> String,
) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let audio = renditions.iter().find(|r| is_audio_track(r));
    if let Some(a) = audio {
        let _ = writeln!(
            s,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"{}\"",
            quoted_safe(&url_of_playlist(a))
        );
    }
    for r in renditions.iter().filter(|r| !is_audio_track(r)) {
        // A variant's bandwidth counts everything a player downloads to play it.
        let (peak, average, codecs, group) = match audio {
            Some(a) => (
                r.bandwidth + a.bandwidth,
                r.average_bandwidth + a.average_bandwidth,
                format!("{},{}", r.codecs, a.codecs),
                ",AUDIO=\"audio\"",
            ),
            None => (r.bandwidth, r.average_bandwidth, r.codecs.clone(), ""),
        };
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={:.3}{group}\n{}\n",
            peak.max(1),
            average.max(1),
            codecs,
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

/// Static MPEG-DASH MPD of complete renditions (a growing one would end playback early: the
/// caller waits for the pass to finish). One AdaptationSet per video codec (players may not switch codecs
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
        let reps: Vec<&Rendition> =
            renditions.iter().filter(|r| r.rung.codec == codec && !is_audio_track(r)).collect();
        if reps.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">"
        );
        for r in reps {
            let _ = writeln!(
                s,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" width=\"{}\" height=\"{}\" frameRate=\"{}\" sar=\"1:1\">",
                xml_escape(&r.rung.name),
                r.bandwidth.max(1),
                xml_escape(&r.codecs),
                r.width,
                r.height,
                fps_attr(r.fps),
            );
            segment_list(&mut s, r, &url_of);
            s.push_str("      </Representation>\n");
        }
        s.push_str("    </AdaptationSet>\n");
    }
    if let Some(a) = renditions.iter().find(|r| is_audio_track(r)) {
        let _ = writeln!(
            s,
            "    <AdaptationSet id=\"2\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"und\" segmentAlignment=\"true\" startWithSAP=\"1\">\n\
             \x20     <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"48000\">\n\
             \x20       <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>",
            xml_escape(&a.rung.name),
            a.bandwidth.max(1),
            xml_escape(&a.codecs),
        );
        segment_list(&mut s, a, &url_of);
        s.push_str("      </Representation>\n    </AdaptationSet>\n");
    }
    s.push_str("  </Period>\n</MPD>\n");
    s
}

/// A representation's `SegmentList`: the init segment, the exact timeline, the URLs.
fn segment_list(s: &mut String, r: &Rendition, url_of: &impl Fn(&Path) -> String) {
    let _ = writeln!(
        s,
        "        <SegmentList timescale=\"1000\">\n          <Initialization sourceURL=\"{}\"/>\n          <SegmentTimeline>",
        xml_escape(&url_of(&r.init))
    );
    let mut t = 0u64;
    for seg in &r.segments {
        let _ = writeln!(s, "            <S t=\"{t}\" d=\"{}\"/>", seg.duration_ms);
        t += seg.duration_ms;
    }
    s.push_str("          </SegmentTimeline>\n");
    for seg in &r.segments {
        let _ = writeln!(s, "          <SegmentURL media=\"{}\"/>", xml_escape(&url_of(&seg.path)));
    }
    s.push_str("        </SegmentList>\n");
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
            growing: false,
            truncated: false,
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
    fn growing_playlist_is_an_event_playlist_from_the_start() {
        let mut r = rendition("480p", false);
        r.growing = true;
        let p = hls_media_playlist(&r, |p| p.display().to_string());
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0,PRECISE=YES\n"));
        assert!(!p.contains("ENDLIST"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"));
        r.growing = false;
        let p = hls_media_playlist(&r, |p| p.display().to_string());
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn target_duration_is_the_rounded_longest_segment() {
        let mut r = rendition("480p", false);
        r.segments[0].duration_ms = 2002;
        let p = hls_media_playlist(&r, |p| p.display().to_string());
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"), "{p}");
        r.segments[0].duration_ms = 2600;
        let p = hls_media_playlist(&r, |p| p.display().to_string());
        assert!(p.contains("#EXT-X-TARGETDURATION:3\n"), "{p}");
    }

    #[test]
    fn urls_cannot_inject_lines() {
        let p = hls_media_playlist(&rendition("480p", true), |_| "a\n#EXT-X-ENDLIST\"".into());
        assert_eq!(p.lines().filter(|l| l.starts_with("#EXT-X-ENDLIST")).count(), 1);
        assert!(!p.contains("\"\"") && p.contains("%22"));
    }

    fn audio_track() -> Rendition {
        let mut a = rendition("audio", true);
        a.rung.width = 0;
        a.rung.height = 0;
        a.width = 0;
        a.height = 0;
        a.codecs = "mp4a.40.2".into();
        a.bandwidth = 100_000;
        a.average_bandwidth = 96_000;
        a
    }

    #[test]
    fn audio_is_its_own_group_and_adaptation_set() {
        let set = [rendition("480p", false), audio_track()];
        let m = hls_master(&set, |r| format!("{}.m3u8", r.rung.name));
        assert!(m.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\""));
        assert!(m.contains("URI=\"audio.m3u8\""));
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 1, "{m}");
        assert!(m.contains(
            "BANDWIDTH=700000,AVERAGE-BANDWIDTH=596000,CODECS=\"avc1.64001e,mp4a.40.2\""
        ));
        assert!(m.contains(",AUDIO=\"audio\"\n480p.m3u8\n"));
        let mpd = dash_mpd(&set, |p| p.display().to_string());
        assert_eq!(mpd.matches("<AdaptationSet").count(), 2, "{mpd}");
        assert!(mpd.contains("mimeType=\"audio/mp4\""));
        assert!(
            mpd.contains("<Representation id=\"audio\" bandwidth=\"100000\" codecs=\"mp4a.40.2\"")
        );
        assert!(
            mpd.contains("<Representation id=\"480p\" bandwidth=\"600000\" codecs=\"avc1.64001e\"")
        );
        assert!(mpd.contains("/j/audio/seg_00001.m4s"));
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
