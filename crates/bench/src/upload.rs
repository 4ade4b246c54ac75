//! Upload to playback: a generated 15 s 1080x1920 30 fps clip through the whole platform
//! (time to first play, time to full ladder, where the time goes) side by side with one
//! plain ffmpeg invocation making the same 3-rung HLS ladder; and tus upload throughput on
//! loopback against `cp` on the same disk. The bench spawns ffmpeg itself for the fixture
//! and the baseline: it is a measurement tool, not the platform.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::report::RunInfo;

/// The clip the issue names: displayed size, frame rate, length.
const CLIP_W: u32 = 1080;
const CLIP_H: u32 = 1920;
const CLIP_FPS: u32 = 30;
const CLIP_SECS: u32 = 15;
/// A phone's 1080p30 H.264 bit rate, so decoding the upload costs what a real one would.
const CLIP_KBPS: u32 = 12_000;
/// GOP of the clip: one second, as phones record.
const CLIP_GOP: u32 = CLIP_FPS;

/// The ladder `quicktok_media::plan_ladder` makes for a 1080x1920 source (name, width,
/// height, video kbit/s); the platform run checks it got the same sizes.
type Rung = (&'static str, u32, u32, u32);
const RUNGS: [Rung; 3] =
    [("480p", 480, 854, 500), ("720p", 720, 1280, 1000), ("1080p", 1080, 1920, 1500)];

/// The stage that runs after publication (everything else runs before it); the table
/// lists stages in the pipeline's order (`quicktok_pipeline::jobs::Stage::ALL`) as far as
/// this list knows it, and any other stage `/metrics` names after them.
const AFTER_PUBLISH: &str = "ladder";
/// Platform runs per bench (medians are reported).
const PLATFORM_RUNS: usize = 3;
const KNOWN_ORDER: [&str; 8] =
    ["probe", "compliance", "tags", "transcode", "dedup", "covers", "publish", "ladder"];

/// How often the platform run polls the video.
const POLL: Duration = Duration::from_millis(50);
/// The poll once the video plays: the observer's own requests share the 2 cores with the
/// encoder, and the full ladder takes seconds, so a coarser poll disturbs it less.
const POLL_AFTER_FIRST_PLAY: Duration = Duration::from_millis(100);
/// Longest the platform may take to finish the ladder before the run is called failed.
const PIPELINE_DEADLINE: Duration = Duration::from_secs(15 * 60);

// ---- process accounting ----

/// CPU seconds of this process and of its reaped children (ffmpeg runs, in process or not).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    own: f64,
    children: f64,
}

impl Cpu {
    fn now(tick: f64) -> Cpu {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Cpu::default() };
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
        let field = |n: usize| f.get(n - 3).copied().unwrap_or(0.0) / tick;
        Cpu { own: field(14) + field(15), children: field(16) + field(17) }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu { own: self.own - before.own, children: self.children - before.children }
    }

    fn total(self) -> f64 {
        self.own + self.children
    }
}

/// Clock ticks per second for `/proc` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `args` as one shell-quoted line, for the report.
fn shell_line(program: &str, args: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=%+,".contains(c);
    let mut line = program.to_owned();
    for a in args {
        line.push(' ');
        if !a.is_empty() && a.chars().all(plain) {
            line.push_str(a);
        } else {
            line.push_str(&format!("'{}'", a.replace('\'', r"'\''")));
        }
    }
    line
}

/// Runs `program` in `dir`; fails with its stderr if it fails. Returns the wall time.
async fn run_tool(program: &str, args: &[String], dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {program}"))?;
    let wall = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "{program} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(wall)
}

// ---- HTTP helpers ----

/// Registers a user and returns its access token.
async fn register(client: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<String> {
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &serde_json::json!({"username": username, "password": "correct horse battery staple"}),
        )
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    anyhow::ensure!(status == 201, "register: {status} {body}");
    body["access_token"].as_str().map(str::to_owned).context("register: no access_token")
}

/// A finished tus upload.
struct Uploaded {
    video: String,
    /// Creation `POST` to the last `PATCH` answered.
    elapsed: Duration,
    /// When the last `PATCH` was answered (the upload is complete).
    done: Instant,
    patches: usize,
}

/// Uploads `bytes` with tus (creation, then `PATCH`es of `chunk` bytes), timed.
async fn tus_upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    bytes: &[u8],
    chunk: usize,
    filename: &str,
) -> anyhow::Result<Uploaded> {
    let started = Instant::now();
    let meta = [("filename", filename), ("title", "bench clip")];
    let up = quicktok_testkit::tus_upload(client, base, token, bytes, &meta, chunk).await?;
    let done = Instant::now();
    Ok(Uploaded { video: up.video, elapsed: done - started, done, patches: up.patches })
}

/// Per-stage `(sum of seconds, count)` of `quicktok_pipeline_stage_seconds` in `/metrics`
/// (empty when the recorder is not installed).
async fn stage_metrics(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<BTreeMap<String, (f64, u64)>> {
    let r = client.get(format!("{base}/metrics")).send().await?;
    if !r.status().is_success() {
        return Ok(BTreeMap::new());
    }
    Ok(parse_stage_metrics(&r.text().await?))
}

/// The per-stage sums and counts in a Prometheus text exposition.
fn parse_stage_metrics(text: &str) -> BTreeMap<String, (f64, u64)> {
    let mut out: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let (is_sum, rest) =
            if let Some(r) = line.strip_prefix("quicktok_pipeline_stage_seconds_sum{") {
                (true, r)
            } else if let Some(r) = line.strip_prefix("quicktok_pipeline_stage_seconds_count{") {
                (false, r)
            } else {
                continue;
            };
        let Some((labels, value)) = rest.split_once('}') else { continue };
        let Some(stage) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("stage=\""))
            .and_then(|v| v.strip_suffix('"'))
        else {
            continue;
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        let entry = out.entry(stage.to_owned()).or_default();
        if is_sum {
            entry.0 = value;
        } else {
            entry.1 = value as u64;
        }
    }
    out
}

/// Whether the video plays: `/play` answers, the signed HLS master answers 200 and lists a
/// variant, that variant's playlist answers 200 with segments, and its first segment 200.
async fn playable(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    video: &str,
) -> anyhow::Result<bool> {
    let r =
        client.get(format!("{base}/api/v1/videos/{video}/play")).bearer_auth(token).send().await?;
    if r.status() != 200 {
        return Ok(false);
    }
    let play: Value = r.json().await?;
    let Some(hls) = play["hls"].as_str() else { return Ok(false) };
    let r = client.get(format!("{base}{hls}")).send().await?;
    if r.status() != 200 {
        return Ok(false);
    }
    let master = r.text().await?;
    let variant = master
        .lines()
        .skip_while(|l| !l.starts_with("#EXT-X-STREAM-INF"))
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(variant) = variant else { return Ok(false) };
    let r = client.get(format!("{base}{variant}")).send().await?;
    if r.status() != 200 {
        return Ok(false);
    }
    let playlist = r.text().await?;
    // The first media segment must answer too: a player needs bytes, not a list.
    let first = playlist
        .lines()
        .skip_while(|l| !l.starts_with("#EXTINF"))
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = first else { return Ok(false) };
    Ok(client.get(format!("{base}{first}")).send().await?.status() == 200)
}

// ---- the ladder section ----

/// The generated clip.
struct Clip {
    path: PathBuf,
    bytes: u64,
}

/// Writes the issue's clip into `dir` (not timed).
async fn make_clip(dir: &Path) -> anyhow::Result<Clip> {
    let kbps = CLIP_KBPS;
    let args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=s={CLIP_W}x{CLIP_H}:r={CLIP_FPS}:d={CLIP_SECS}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={CLIP_SECS}"),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        &format!("{kbps}k"),
        "-maxrate",
        &format!("{}k", kbps * 6 / 5),
        "-bufsize",
        &format!("{}k", kbps * 2),
        "-g",
        &CLIP_GOP.to_string(),
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        "-shortest",
        "clip.mp4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run_tool("ffmpeg", &args, dir).await?;
    let path = dir.join("clip.mp4");
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Clip { path, bytes })
}

/// The platform's encoder settings the baseline copies (from the default config).
struct EncodeSettings {
    preset: String,
    segment_ms: u32,
    /// The first segment's length, s (shorter than the others when the platform's is).
    first_s: f64,
    /// `-force_key_frames`: the platform's segment grid.
    key_frames: String,
    audio_kbps: u32,
    threads: u32,
}

impl EncodeSettings {
    fn defaults() -> EncodeSettings {
        let p = quicktok::Config::default().processing;
        EncodeSettings {
            first_s: quicktok_media::segment_grid(&p).0,
            key_frames: quicktok_media::key_frame_expr(&p),
            preset: p.preset,
            segment_ms: p.segment_duration_ms.max(500),
            audio_kbps: p.audio_kbps,
            threads: p.threads,
        }
    }
}

/// The plain baseline's arguments: one ffmpeg, one decode, `split` into the three scaled
/// copies, the platform's x264 settings (`quicktok_media::transcode_rung`), HLS fMP4.
fn plain_ladder_args(s: &EncodeSettings, rungs: &[Rung], out: &str) -> Vec<String> {
    let seg_s = f64::from(s.segment_ms) / 1000.0;
    let gop = ((f64::from(CLIP_FPS) * seg_s).round() as u32).max(1).to_string();
    let mut filter = format!("[0:v]split={}", rungs.len());
    for i in 0..rungs.len() {
        filter.push_str(&format!("[s{i}]"));
    }
    for (i, (_, w, h, _)) in rungs.iter().enumerate() {
        filter
            .push_str(&format!(";[s{i}]scale={w}:{h}:flags=bicubic,setsar=1,format=yuv420p[v{i}]"));
    }
    let mut a: Vec<String> =
        ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", "clip.mp4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    a.extend(["-filter_complex".into(), filter]);
    for i in 0..rungs.len() {
        a.extend(["-map".into(), format!("[v{i}]")]);
    }
    // Audio once, its own track in one group every variant uses, as the platform stores it.
    a.extend(["-map".into(), "0:a:0".into()]);
    a.extend(
        [
            "-map_metadata",
            "-1",
            "-c:v",
            "libx264",
            "-preset",
            &s.preset,
            "-profile:v",
            "high",
            "-x264-params",
            "open-gop=0",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for (i, (_, _, _, kbps)) in rungs.iter().enumerate() {
        a.extend([
            format!("-b:v:{i}"),
            format!("{kbps}k"),
            format!("-maxrate:v:{i}"),
            format!("{}k", kbps * 3 / 2),
            format!("-bufsize:v:{i}"),
            format!("{}k", kbps * 2),
        ]);
    }
    let mut map = Vec::new();
    for i in 0..rungs.len() {
        map.push(format!("v:{i},agroup:audio"));
    }
    map.push("a:0,agroup:audio".into());
    a.extend([
        "-g".into(),
        gop.clone(),
        "-keyint_min".into(),
        gop,
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        s.key_frames.clone(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", s.audio_kbps),
        "-ac".into(),
        "2".into(),
        "-ar".into(),
        "48000".into(),
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        format!("{seg_s}"),
        "-hls_init_time".into(),
        format!("{}", if s.first_s < seg_s { s.first_s } else { 0.0 }),
        "-hls_segment_type".into(),
        "fmp4".into(),
        "-hls_playlist_type".into(),
        "vod".into(),
        "-hls_flags".into(),
        "independent_segments".into(),
        "-hls_segment_filename".into(),
        format!("{out}/%v/seg_%05d.m4s"),
        "-master_pl_name".into(),
        "master.m3u8".into(),
        "-var_stream_map".into(),
        map.join(" "),
        format!("{out}/%v/index.m3u8"),
    ]);
    a
}

/// One timed plain ffmpeg run in `dir` (which holds `clip.mp4`).
struct PlainRun {
    wall: f64,
    cpu: f64,
}

/// Times `args` (an ffmpeg run in `dir`): wall and CPU seconds.
async fn timed_ffmpeg(dir: &Path, args: &[String]) -> anyhow::Result<PlainRun> {
    let tick = clock_ticks();
    let before = Cpu::now(tick);
    let wall = run_tool("ffmpeg", args, dir).await?;
    let cpu = Cpu::now(tick).since(before);
    Ok(PlainRun { wall: wall.as_secs_f64(), cpu: cpu.children })
}

/// The plain ladder of `rungs` into `dir/<out>`, checked and removed afterwards.
async fn plain_ladder(
    dir: &Path,
    settings: &EncodeSettings,
    rungs: &[Rung],
    out: &str,
) -> anyhow::Result<PlainRun> {
    let run = timed_ffmpeg(dir, &plain_ladder_args(settings, rungs, out)).await?;
    let master = std::fs::read_to_string(dir.join(out).join("master.m3u8"))?;
    // ffmpeg also lists the audio group as an audio-only variant (no RESOLUTION).
    let variants = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains("RESOLUTION="))
        .count();
    let audio = master.matches("#EXT-X-MEDIA:TYPE=AUDIO").count();
    anyhow::ensure!(
        variants == rungs.len() && audio == 1,
        "plain ladder made {variants} video variants and {audio} audio tracks:\n{master}"
    );
    std::fs::remove_dir_all(dir.join(out))?;
    Ok(run)
}

/// Decoding the clip's video and nothing else: the floor for any pass over every frame.
async fn decode_only(dir: &Path) -> anyhow::Result<PlainRun> {
    let args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        "clip.mp4",
        "-map",
        "0:v",
        "-f",
        "null",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    timed_ffmpeg(dir, &args).await
}

/// What the platform run measured.
struct PlatformRun {
    upload: Uploaded,
    first_play: f64,
    full_ladder: f64,
    /// (name, width, height, seconds after upload complete when first listed complete)
    rungs: Vec<(String, u64, u64, f64)>,
    /// stage -> (seconds, runs) during this run
    stages: BTreeMap<String, (f64, u64)>,
    cpu: Cpu,
    /// Polls made, and the slowest `GET /api/v1/videos/{id}` among them, seconds.
    polls: usize,
    slowest_poll: f64,
}

/// The platform in process with the default processing settings: upload the clip, poll
/// until it plays and until the ladder is complete.
async fn platform_run(clip: &Clip) -> anyhow::Result<PlatformRun> {
    let dir = tempfile::tempdir()?;
    let mut config = quicktok::Config::default();
    config.server.data_dir = dir.path().join("data");
    config.server.listen = "127.0.0.1:0".into();
    // The 50 ms poll must not be throttled; processing settings stay the defaults.
    config.rate_limit.enabled = false;
    let shutdown = quicktok_core::Shutdown::new();
    let app = quicktok::App::start(config, shutdown.clone()).await?;
    let base = app.url().context("no api role")?;
    let running = tokio::spawn(app.run_until_stopped());
    let result = drive_platform(&base, clip).await;
    shutdown.cancel();
    running.await??;
    result
}

async fn drive_platform(base: &str, clip: &Clip) -> anyhow::Result<PlatformRun> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let token = register(&client, base, "bencher").await?;
    let bytes = tokio::fs::read(&clip.path).await?;
    let before = stage_metrics(&client, base).await?;
    let tick = clock_ticks();
    let cpu_before = Cpu::now(tick);
    let upload = tus_upload(&client, base, &token, &bytes, bytes.len() / 4 + 1, "clip.mp4").await?;
    let t0 = upload.done;
    let deadline = t0 + PIPELINE_DEADLINE;
    let mut rungs: Vec<(String, u64, u64, f64)> = Vec::new();
    let mut first_play = None;
    let (mut polls, mut slowest_poll) = (0, 0.0f64);
    let full_ladder = loop {
        let asked = Instant::now();
        let r = client
            .get(format!("{base}/api/v1/videos/{}", upload.video))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        polls += 1;
        slowest_poll = slowest_poll.max(asked.elapsed().as_secs_f64());
        anyhow::ensure!(status == 200, "GET video: {status} {v}");
        let state = v["status"].as_str().unwrap_or_default();
        anyhow::ensure!(
            matches!(state, "processing" | "published"),
            "the platform refused the clip: {v}"
        );
        // Video rungs only (an audio-only rendition, if the view ever lists one, is not a rung).
        let listed: Vec<Value> = v["renditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["name"] != "audio" && r["height"].as_u64().unwrap_or(0) > 0)
            .collect();
        let seen_at = t0.elapsed().as_secs_f64();
        // Renditions play while they grow; a rung counts once it is complete.
        let complete: Vec<&Value> = listed.iter().filter(|r| r["complete"] == true).collect();
        for r in &complete {
            let name = r["name"].as_str().unwrap_or_default();
            if !rungs.iter().any(|(n, ..)| n == name) {
                let (w, h) = (r["width"].as_u64().unwrap_or(0), r["height"].as_u64().unwrap_or(0));
                eprintln!("  {name} ({w}x{h}) complete {seen_at:.2} s after upload complete");
                rungs.push((name.to_owned(), w, h, seen_at));
            }
        }
        if first_play.is_none()
            && state == "published"
            && !listed.is_empty()
            && playable(&client, base, &token, &upload.video).await?
        {
            let at = t0.elapsed().as_secs_f64();
            eprintln!("  first play {at:.2} s after upload complete");
            first_play = Some(at);
        }
        if first_play.is_some() && complete.len() >= RUNGS.len() {
            break t0.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "ladder incomplete after {PIPELINE_DEADLINE:?}: {v}"
        );
        tokio::time::sleep(if first_play.is_some() { POLL_AFTER_FIRST_PLAY } else { POLL }).await;
    };
    // The ladder stage records its duration just after its last rung is stored.
    let wait_until = Instant::now() + Duration::from_secs(30);
    let stages = loop {
        let now = stage_metrics(&client, base).await?;
        let delta: BTreeMap<String, (f64, u64)> = now
            .iter()
            .map(|(k, (sum, n))| {
                let (s0, n0) = before.get(k).copied().unwrap_or((0.0, 0));
                (k.clone(), (sum - s0, n.saturating_sub(n0)))
            })
            .filter(|(_, (_, n))| *n > 0)
            .collect();
        let ladder_done = delta.get(AFTER_PUBLISH).is_some_and(|(_, n)| *n > 0);
        if ladder_done || now.is_empty() || Instant::now() > wait_until {
            break delta;
        }
        tokio::time::sleep(POLL).await;
    };
    let cpu = Cpu::now(tick).since(cpu_before);
    let first_play = first_play.context("no first play")?;
    Ok(PlatformRun { upload, first_play, full_ladder, rungs, stages, cpu, polls, slowest_poll })
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole * 100.0 } else { 0.0 }
}

/// Clip, plain ladder, platform, plain ladder again; the section's text.
pub async fn ladder_section(run: &RunInfo) -> anyhow::Result<String> {
    let load = load_average();
    let dir = tempfile::tempdir()?;
    eprintln!("ladder: generating the clip");
    let clip = make_clip(dir.path()).await?;
    let settings = EncodeSettings::defaults();
    eprintln!("ladder: plain ffmpeg ladder (1 of 2)");
    let plain1 = plain_ladder(dir.path(), &settings, &RUNGS, "plain-1").await?;
    eprintln!("  {:.2} s wall, {:.1} CPU s", plain1.wall, plain1.cpu);
    // The platform three times: one run on a shared 2-core machine is noise as much as
    // signal. Goals are judged on the medians; every run is listed.
    let mut runs = Vec::new();
    for i in 1..=PLATFORM_RUNS {
        eprintln!("ladder: the platform ({i} of {PLATFORM_RUNS})");
        runs.push(platform_run(&clip).await?);
    }
    let median = |f: fn(&PlatformRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let first_play = median(|p| p.first_play);
    let full_ladder = median(|p| p.full_ladder);
    // Where the time goes: the run whose first play is the median.
    let p = runs.iter().find(|p| p.first_play == first_play).context("no platform run")?;
    let each = |f: fn(&PlatformRun) -> f64| {
        runs.iter().map(|p| format!("{:.2}", f(p))).collect::<Vec<_>>().join(" / ")
    };
    eprintln!("ladder: plain ffmpeg ladder (2 of 2)");
    let plain2 = plain_ladder(dir.path(), &settings, &RUNGS, "plain-2").await?;
    eprintln!("  {:.2} s wall, {:.1} CPU s", plain2.wall, plain2.cpu);
    // References for where time to first play can go: the lowest rung alone, and decoding.
    eprintln!("ladder: plain ffmpeg, the lowest rung alone; decoding alone");
    let lowest = plain_ladder(dir.path(), &settings, &RUNGS[..1], "plain-lowest").await?;
    let decode = decode_only(dir.path()).await?;
    eprintln!("  lowest rung {:.2} s wall, decode {:.2} s wall", lowest.wall, decode.wall);
    let load_after = load_average();

    let plain = (plain1.wall + plain2.wall) / 2.0;
    let plain_cpu = (plain1.cpu + plain2.cpu) / 2.0;
    let ttfp_pct = pct(first_play, plain);
    let full_ratio = if plain > 0.0 { full_ladder / plain } else { 0.0 };
    let met = |ok: bool| if ok { "**met**" } else { "**not met**" };
    let clip_mb = clip.bytes as f64 / 1e6;
    let clip_mbit = clip.bytes as f64 * 8.0 / 1e6 / f64::from(CLIP_SECS);

    let mut r = String::new();
    writeln!(
        r,
        "## Upload to playback ({CLIP_SECS} s {CLIP_W}x{CLIP_H} {CLIP_FPS} fps clip with audio): the platform vs one plain ffmpeg ladder\n"
    )?;
    writeln!(r, "- Machine: {}", run.machine)?;
    writeln!(r, "- Date: {}", run.date)?;
    writeln!(r, "- Command: `{}`", run.command)?;
    writeln!(
        r,
        "- Load average (1 / 5 / 15 min) at the start: {load}; at the end: {load_after} (other builds and tests share the machine)\n"
    )?;
    writeln!(
        r,
        "Clip: ffmpeg `testsrc2` {CLIP_W}x{CLIP_H} {CLIP_FPS} fps {CLIP_SECS} s + 440 Hz sine, H.264 High {CLIP_KBPS} kbit/s target with a {CLIP_GOP}-frame GOP (like a phone) + AAC 128 kbit/s stereo: {clip_mb:.1} MB, {clip_mbit:.1} Mbit/s. Generated once per run, not timed.\n"
    )?;
    writeln!(
        r,
        "Plain ladder: one ffmpeg invocation that decodes once and `split`s into the 3 rungs the platform plans ({}), with the platform's encoder settings (`-preset {}`, High profile, `open-gop=0`, GOP {} frames with keyframes forced on the platform's segment grid: {} s, then every {} s, VBV maxrate 1.5x and bufsize 2x the rung's rate, AAC {} kbit/s encoded once as its own audio track, as the platform stores it), HLS fMP4 segments on that grid; ffmpeg's default threading. Run before and after the platform run; the figure is the mean. The command, in the clip's directory:\n",
        RUNGS.iter().map(|(n, w, h, k)| format!("{n} {w}x{h} {k}k")).collect::<Vec<_>>().join(", "),
        settings.preset,
        (f64::from(CLIP_FPS) * f64::from(settings.segment_ms) / 1000.0).round(),
        settings.first_s,
        f64::from(settings.segment_ms) / 1000.0,
        settings.audio_kbps,
    )?;
    writeln!(
        r,
        "```\n{}\n```\n",
        shell_line("ffmpeg", &plain_ladder_args(&settings, &RUNGS, "plain"))
    )?;
    writeln!(
        r,
        "Platform: `quicktok::App` in this process with the default configuration (all roles, `processing.threads = {}`, `processing.preset = \"{}\"`), rate limits off so the poll is not throttled. The clip goes up with tus in {} `PATCH`es over loopback; *upload complete* is when the last `PATCH` is answered. Then `GET /api/v1/videos/{{id}}` in a loop: *first play* is the first poll that sees status `published` with a rendition listed **and** whose signed HLS master (from `/play`) answers 200 listing a variant whose playlist answers 200 with a first segment that answers 200 (the playlist may still be growing: an HLS EVENT playlist); *full ladder* is when all {} renditions are listed complete. Poll granularity: {} ms until first play, {} ms after (the observer's requests run on the same cores as the encoder).\n",
        settings.threads,
        settings.preset,
        p.upload.patches,
        RUNGS.len(),
        POLL.as_millis(),
        POLL_AFTER_FIRST_PLAY.as_millis(),
    )?;
    writeln!(r, "| measure | figure | goal | result |")?;
    writeln!(r, "|---|---:|---|---|")?;
    writeln!(
        r,
        "| plain ffmpeg ladder, wall s (before / after the platform run) | **{plain:.2}** ({:.2} / {:.2}) | | |",
        plain1.wall, plain2.wall
    )?;
    writeln!(
        r,
        "| time to first play: upload complete -> first rung playable, s, median of {PLATFORM_RUNS} runs ({}) | **{:.2}** | <= 25% of the plain ladder (<= {:.2} s) | {}: {ttfp_pct:.0}% of the plain ladder |",
        each(|p| p.first_play),
        first_play,
        plain * 0.25,
        met(ttfp_pct <= 25.0)
    )?;
    writeln!(
        r,
        "| time to full ladder: upload complete -> {} rungs complete, s, median of {PLATFORM_RUNS} runs ({}) | **{:.2}** | <= 1.05x the plain ladder (<= {:.2} s) | {}: {full_ratio:.2}x the plain ladder |",
        RUNGS.len(),
        each(|p| p.full_ladder),
        full_ladder,
        plain * 1.05,
        met(full_ratio <= 1.05)
    )?;
    writeln!(
        r,
        "| CPU s: plain ladder (mean) / platform from upload complete to full ladder in the median run (ffmpeg children + the app's own threads) | {plain_cpu:.1} / {:.1} ({:.1} + {:.1}) | | {:.2}x the CPU |",
        p.cpu.total(),
        p.cpu.children,
        p.cpu.own,
        if plain_cpu > 0.0 { p.cpu.total() / plain_cpu } else { 0.0 }
    )?;
    writeln!(
        r,
        "| the clip's own tus upload ({clip_mb:.1} MB, {} `PATCH`es), s | {:.2} | | |",
        p.upload.patches,
        p.upload.elapsed.as_secs_f64()
    )?;
    writeln!(
        r,
        "| reference: plain ffmpeg, the {} rung + audio alone (same settings), wall s | {:.2} | | {:.0}% of the plain ladder |",
        RUNGS[0].0,
        lowest.wall,
        pct(lowest.wall, plain)
    )?;
    writeln!(
        r,
        "| reference: plain ffmpeg decoding the clip's video to `-f null`, wall s | {:.2} | | {:.0}% of the plain ladder |",
        decode.wall,
        pct(decode.wall, plain)
    )?;
    writeln!(r, "\n### Where the platform's time goes\n")?;
    writeln!(
        r,
        "Stage durations are the median run's (by time to first play) `quicktok_pipeline_stage_seconds` (sum and count) from `/metrics`; rung times are when the poll first saw each rendition complete.\n"
    )?;
    writeln!(r, "| stage | s | share of time to first play |")?;
    writeln!(r, "|---|---:|---:|")?;
    let mut in_stages = 0.0;
    let mut dominant: Option<(String, f64)> = None;
    let mut before_publish: Vec<&str> =
        KNOWN_ORDER.into_iter().filter(|s| *s != AFTER_PUBLISH).collect();
    for stage in p.stages.keys() {
        if stage != AFTER_PUBLISH && !before_publish.contains(&stage.as_str()) {
            before_publish.push(stage);
        }
    }
    for key in before_publish {
        let label = format!("`{key}`");
        let Some((secs, runs)) = p.stages.get(key).copied() else {
            writeln!(r, "| {label} | n/a | |")?;
            continue;
        };
        in_stages += secs;
        if dominant.as_ref().is_none_or(|(_, d)| secs > *d) {
            dominant = Some((label.clone(), secs));
        }
        let runs = if runs > 1 { format!(" ({runs} runs)") } else { String::new() };
        writeln!(r, "| {label}{runs} | {secs:.2} | {:.0}% |", pct(secs, p.first_play))?;
    }
    let outside = p.first_play - in_stages;
    writeln!(
        r,
        "| outside the stages: upload event -> job enqueued and claimed, job saves between stages, poll granularity | {outside:.2} | {:.0}% |",
        pct(outside, p.first_play)
    )?;
    writeln!(r, "| **time to first play** | **{:.2}** | 100% |", p.first_play)?;
    match p.stages.get(AFTER_PUBLISH) {
        Some((secs, _)) => writeln!(
            r,
            "| `{AFTER_PUBLISH}` (waiting, after publication, for the pass to finish all {} rungs) | {secs:.2} | |",
            RUNGS.len()
        )?,
        None => writeln!(r, "| `{AFTER_PUBLISH}` (after publication) | n/a | |")?,
    }
    writeln!(r, "| **time to full ladder** | **{:.2}** | |", p.full_ladder)?;
    writeln!(r)?;
    let listed: Vec<String> =
        p.rungs.iter().map(|(n, w, h, at)| format!("{n} ({w}x{h}) at {at:.2} s")).collect();
    writeln!(
        r,
        "Rungs complete after upload complete: {}. The API answered {} polls meanwhile, the slowest in {:.0} ms.",
        listed.join(", "),
        p.polls,
        p.slowest_poll * 1000.0
    )?;
    let sizes_match = p.rungs.len() == RUNGS.len()
        && RUNGS.iter().all(|(n, w, h, _)| {
            p.rungs
                .iter()
                .any(|(pn, pw, ph, _)| pn == n && *pw == u64::from(*w) && *ph == u64::from(*h))
        });
    if !sizes_match {
        writeln!(r, "\n**The platform's ladder differs from the baseline's**; compare with care.")?;
    }
    if let Some((label, secs)) = dominant {
        writeln!(
            r,
            "\nTime to first play is dominated by the {label} stage: {secs:.2} s, {:.0}% of it.",
            pct(secs, p.first_play)
        )?;
    }
    writeln!(
        r,
        "\nGoals: time to first play {} ({:.2} s, {ttfp_pct:.0}% of the plain ladder; goal <= 25%); full ladder {} ({full_ratio:.2}x; goal <= 1.05x).",
        if ttfp_pct <= 25.0 { "met" } else { "not met" },
        first_play,
        if full_ratio <= 1.05 { "met" } else { "not met" }
    )?;
    writeln!(
        r,
        "\nHow the platform gets there: one encoding pass makes every rung and the audio track \
         (one decode, as the plain ladder), and each segment is stored as ffmpeg closes it; \
         the video is published while the pass runs, as soon as its first (1 s) segment of the \
         lowest rung and audio is stored and ffmpeg's progress says a viewer starting then \
         cannot catch up with the encoder (HLS EVENT playlists grow until the pass ends). \
         Before that, the duplicate check needs frames from the whole clip: a second decode \
         (B-frames skipped) samples them while the pass, at lower priority, takes the CPU \
         left. What bounds the figures: time to first play is about that sampling decode plus \
         probing plus the first segment; the full ladder pays the sampling decode's CPU (the \
         `CPU s` row) and the probe on top of the plain ladder."
    )?;
    Ok(r)
}

// ---- the tus section ----

/// `size` bytes that do not compress (xorshift64*).
fn random_bytes(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while out.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(size);
    out
}

/// `cp src dst` then `sync dst` (an fsync of the copy); the wall time of both.
async fn cp_run(dir: &Path, name: &str) -> anyhow::Result<f64> {
    let (src, dst) = ("random.bin".to_owned(), name.to_owned());
    let started = Instant::now();
    run_tool("cp", &[src, dst.clone()], dir).await?;
    run_tool("sync", std::slice::from_ref(&dst), dir).await?;
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(dir.join(&dst))?;
    Ok(secs)
}

/// The filesystem `path` is on, as `df` names it.
fn filesystem(path: &Path) -> String {
    std::process::Command::new("df")
        .args(["--output=source,fstype"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().nth(1).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_else(|| "unknown".into())
}

/// tus throughput on loopback (8 and 32 MiB `PATCH`es) vs `cp` + fsync on the same disk.
pub async fn tus_section(run: &RunInfo, size: u64) -> anyhow::Result<String> {
    const MIB: usize = 1 << 20;
    const CHUNKS: [usize; 2] = [8 * MIB, 32 * MIB];
    let load = load_average();
    let root = tempfile::tempdir()?;
    let size = usize::try_from(size)?;
    eprintln!("tus: writing {} MiB of random bytes", size / MIB);
    let bytes = random_bytes(size);
    let src = root.path().join("random.bin");
    tokio::fs::write(&src, &bytes).await?;
    tokio::fs::File::open(&src).await?.sync_all().await?;
    let mb = size as f64 / 1e6;

    // The api role only: nothing takes the (non-video) uploads over afterwards.
    let mut config = quicktok::Config::default();
    config.server.data_dir = root.path().join("data");
    config.server.listen = "127.0.0.1:0".into();
    config.server.roles = [quicktok::Role::Api].into_iter().collect();
    config.rate_limit.enabled = false;
    let shutdown = quicktok_core::Shutdown::new();
    let app = quicktok::App::start(config, shutdown.clone()).await?;
    let base = app.url().context("no api role")?;
    let running = tokio::spawn(app.run_until_stopped());
    // Rounds of cp, then tus with each chunk size, so load changes hit all of them alike.
    let rounds = async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
        let token = register(&client, &base, "bencher").await?;
        let mut cp = Vec::new();
        let mut tus: Vec<Vec<f64>> = vec![Vec::new(); CHUNKS.len()];
        let mut patches = vec![0; CHUNKS.len()];
        for round in 1..=TUS_ROUNDS {
            let secs = cp_run(root.path(), "copy.bin").await?;
            eprintln!("tus round {round}: cp + sync {secs:.2} s, {:.0} MB/s", mb / secs);
            cp.push(secs);
            for (i, chunk) in CHUNKS.into_iter().enumerate() {
                let up = tus_upload(&client, &base, &token, &bytes, chunk, "random.bin").await?;
                let secs = up.elapsed.as_secs_f64();
                eprintln!("  tus {} MiB chunks {secs:.2} s, {:.0} MB/s", chunk / MIB, mb / secs);
                tus[i].push(secs);
                patches[i] = up.patches;
                // Keep the disk from filling with finished uploads nobody processes.
                remove_uploads(&root.path().join("data").join("uploads"))?;
            }
        }
        anyhow::Ok((cp, tus, patches))
    }
    .await;
    shutdown.cancel();
    running.await??;
    let (cp, tus, patches) = rounds?;
    let cp_secs = median(&cp);
    let cp_rate = mb / cp_secs;
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.2}-{hi:.2}")
    };

    let mut r = String::new();
    writeln!(r, "## tus upload throughput on loopback vs `cp` on the same disk\n")?;
    writeln!(r, "- Machine: {}", run.machine)?;
    writeln!(r, "- Date: {}", run.date)?;
    writeln!(r, "- Command: `{}`", run.command)?;
    writeln!(r, "- Load average (1 / 5 / 15 min) at the start: {load}\n")?;
    writeln!(
        r,
        "A {mb:.1} MB file of random bytes (not a video; the node runs the `api` role only, so nothing processes it), uploaded from memory with tus over loopback: one client, one upload at a time, creation `POST` then `PATCH`es, each of which the server writes and fsyncs (`sync_data`) before answering. Baseline: `cp` of the same file (in the page cache) then `sync <copy>`, an fsync of that one file (GNU coreutils); timed together. All files on `{}` in one temporary directory. {TUS_ROUNDS} rounds of cp, tus 8 MiB, tus 32 MiB; medians, with the range. MB = 10^6 bytes.\n",
        filesystem(root.path())
    )?;
    writeln!(r, "| writer | s (median) | s (range) | MB/s | vs `cp` |")?;
    writeln!(r, "|---|---:|---:|---:|---:|")?;
    writeln!(r, "| `cp` + `sync` | {cp_secs:.2} | {} | {cp_rate:.0} | 1.00x |", spread(&cp))?;
    for (i, chunk) in CHUNKS.into_iter().enumerate() {
        let secs = median(&tus[i]);
        let rate = mb / secs;
        writeln!(
            r,
            "| tus, {} MiB `PATCH`es ({}) | {secs:.2} | {} | {rate:.0} | **{:.2}x** |",
            chunk / MIB,
            patches[i],
            spread(&tus[i]),
            rate / cp_rate
        )?;
    }
    Ok(r)
}

/// How many times each tus and cp measurement runs.
const TUS_ROUNDS: usize = 3;

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Deletes the `.part` files in `dir` (finished uploads of the api-only node).
fn remove_uploads(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "part") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_line("ffmpeg", &["-i".into(), "a b".into()]), "ffmpeg -i 'a b'");
    }

    #[test]
    fn stage_metrics_parse() {
        let text = "# TYPE quicktok_pipeline_stage_seconds summary\n\
            quicktok_pipeline_stage_seconds{stage=\"probe\",quantile=\"0.5\"} 0.25\n\
            quicktok_pipeline_stage_seconds_sum{stage=\"probe\"} 0.5\n\
            quicktok_pipeline_stage_seconds_count{stage=\"probe\"} 2\n\
            quicktok_pipeline_stage_seconds_sum{stage=\"ladder\"} 12.5\n\
            quicktok_pipeline_stage_seconds_count{stage=\"ladder\"} 1\n\
            http_requests_total{route=\"/x\"} 3\n";
        let m = parse_stage_metrics(text);
        assert_eq!(m.get("probe"), Some(&(0.5, 2)));
        assert_eq!(m.get("ladder"), Some(&(12.5, 1)));
        assert_eq!(m.len(), 2);
    }
}
