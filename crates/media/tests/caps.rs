//! Resource caps: wall-clock timeouts kill the child; rlimits (via prlimit) stop it too.

// Test helpers outside #[test] fns may panic too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{clip, config};
use quicktok_media::{
    JobDir, MediaConfig, MediaError, plan_ladder_for, probe, rlimits_available, transcode_rung,
};

#[tokio::test]
async fn wall_clock_and_cpu_caps_stop_a_long_job() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "long.mp4", "testsrc2=s=640x360:d=12:r=25", false, &[]);
    // Fixed caps: no allowance growing with the clip's length.
    let base = MediaConfig {
        preset: "veryslow".into(),
        threads: 1,
        cpu_secs_per_output_second: 0.0,
        wall_secs_per_output_second: 0.0,
        ..config()
    };
    let info = probe(&base, &src).await.unwrap();
    let rung = plan_ladder_for(&info, &base).remove(0);

    let cfg = MediaConfig { job_timeout: Duration::from_secs(1), ..base.clone() };
    let job = JobDir::new(&cfg).unwrap();
    let t = Instant::now();
    let err = transcode_rung(&cfg, &job, &src, &info, &rung).await.unwrap_err();
    assert!(matches!(err, MediaError::Timeout { tool: "ffmpeg", .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(4), "killed promptly, took {:?}", t.elapsed());
    assert!(err.to_string().contains("wall-clock"), "{err}");

    if !rlimits_available(&base) {
        eprintln!("prlimit missing: skipping rlimit checks");
        return;
    }
    let cfg = MediaConfig { max_cpu_secs: 1, ..base.clone() };
    let err = transcode_rung(&cfg, &job, &src, &info, &rung).await.unwrap_err();
    assert!(
        matches!(&err, MediaError::ResourceLimit { what, .. } if what.contains("CPU")),
        "{err}"
    );

    let cfg = MediaConfig { max_address_space_bytes: 300 << 20, ..base };
    let err = transcode_rung(&cfg, &job, &src, &info, &rung).await.unwrap_err();
    assert!(
        matches!(&err, MediaError::ResourceLimit { what, .. } if what.contains("address")),
        "{err}"
    );
}
