//! Property tests of ladder planning.

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use quicktok_media::{VideoCodec, plan_ladder};

proptest! {
    #[test]
    fn ladder_is_sane(w in 16u32..4096, h in 16u32..4096, hevc in any::<bool>()) {
        let rungs = plan_ladder(w, h, hevc);
        prop_assert!(!rungs.is_empty());
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            let rs: Vec<_> = rungs.iter().filter(|r| r.codec == codec).collect();
            if codec == VideoCodec::H265 && !hevc {
                prop_assert!(rs.is_empty());
                continue;
            }
            prop_assert!(!rs.is_empty());
            for r in &rs {
                // Never upscaled, always even, orientation kept.
                prop_assert!(r.width <= w && r.height <= h, "{r:?} from {w}x{h}");
                prop_assert!(r.width % 2 == 0 && r.height % 2 == 0 && r.width >= 2 && r.height >= 2);
                prop_assert_eq!(r.width >= r.height, w >= h || r.width == r.height);
                prop_assert!(r.max_kbps >= r.video_kbps && r.video_kbps > 0);
                // Aspect ratio within rounding of the source.
                let src = f64::from(w) / f64::from(h);
                let out = f64::from(r.width) / f64::from(r.height);
                prop_assert!((src - out).abs() / src < 0.02 || r.width.min(r.height) < 64);
            }
            for pair in rs.windows(2) {
                prop_assert!(pair[0].width * pair[0].height < pair[1].width * pair[1].height);
                prop_assert!(pair[0].video_kbps < pair[1].video_kbps);
            }
            // The short side of each standard rung is its "p" number.
            if w.min(h) >= 480 {
                for r in &rs {
                    prop_assert!([480, 720, 1080].contains(&r.width.min(r.height)));
                }
            }
        }
    }
}
