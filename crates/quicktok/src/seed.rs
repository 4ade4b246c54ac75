//! `quicktok seed-demo`: demo accounts and a dozen synthetic clips, published through the
//! real HTTP API (register, tus upload, processing), so a fresh install opens on a
//! populated feed.
//!
//! Without `--url` the platform is started in-process on the configured data directory
//! (port 0, every role) and stopped gracefully afterwards; with `--url` a running server is
//! seeded. Either way everything goes over HTTP, exactly as a client's upload would.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quicktok::App;
use quicktok::config::{Config, Role};
use quicktok_core::Shutdown;
use quicktok_media::{DemoClip, JobDir, MediaConfig, Pattern, synthesize};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

/// The demo accounts' shared password (printed at the end; these are throwaway accounts).
pub const DEMO_PASSWORD: &str = "quicktok-demo";

/// The demo accounts. The `.demo` suffix keeps them apart from real users' names.
pub const DEMO_USERS: [&str; 4] = ["xiaoyu.demo", "chenhao.demo", "maya.demo", "sam.demo"];

/// What `seed-demo` was asked to do.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Seed this running server instead of starting one.
    pub url: Option<String>,
    /// Skip when the feed already has videos (see [`demo_present`]).
    pub if_empty: bool,
    /// How many clips to publish (the plan repeats, with new seeds, past its 12 entries).
    pub clips: usize,
    /// How long to wait for every video to be published.
    pub timeout: Duration,
}

/// One planned clip: who posts it, what it says, what it shows.
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// Index into [`DEMO_USERS`].
    user: usize,
    title: &'static str,
    description: &'static str,
    /// The `tags` upload metadata (the pipeline also reads the title's hashtags).
    tags: &'static str,
    pattern: Pattern,
    hue_deg: u16,
    duration_ms: u32,
    tone_hz: Option<u32>,
}

/// The demo feed: Chinese and English posts, every pattern, 3-6 s, two silent clips.
const PLAN: [Planned; 12] = [
    Planned {
        user: 0,
        title: "夏日海边 #旅行 #vlog",
        description: "海风、浪花和一杯冰美式。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "旅行 vlog 海边",
        pattern: Pattern::Gradients,
        hue_deg: 200,
        duration_ms: 5000,
        tone_hz: Some(392),
    },
    Planned {
        user: 3,
        title: "Morning run #fitness",
        description: "5 km before breakfast. (QuickTok demo clip, generated with ffmpeg)",
        tags: "fitness running morning",
        pattern: Pattern::BouncingBoxes,
        hue_deg: 20,
        duration_ms: 4000,
        tone_hz: Some(523),
    },
    Planned {
        user: 1,
        title: "深夜食堂 #美食 #宵夜",
        description: "凌晨一点的一碗面。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "美食 宵夜",
        pattern: Pattern::Life,
        hue_deg: 30,
        duration_ms: 4500,
        tone_hz: Some(330),
    },
    Planned {
        user: 2,
        title: "Zooming into the Mandelbrot set #math #fractal",
        description: "Infinite detail, four seconds. (QuickTok demo clip, generated with ffmpeg)",
        tags: "math fractal",
        pattern: Pattern::Mandelbrot,
        hue_deg: 0,
        duration_ms: 4000,
        tone_hz: Some(440),
    },
    Planned {
        user: 0,
        title: "城市夜景 #城市 #夜景",
        description: "霓虹灯下的十字路口。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "城市 夜景",
        pattern: Pattern::Spectrum,
        hue_deg: 270,
        duration_ms: 3500,
        tone_hz: Some(294),
    },
    Planned {
        user: 3,
        title: "Retro TV test card #retro #tv",
        description: "Found this on channel 0 at 3 am. (QuickTok demo clip, generated with ffmpeg)",
        tags: "retro tv",
        pattern: Pattern::ColorBars,
        hue_deg: 0,
        duration_ms: 3000,
        tone_hz: Some(1000),
    },
    Planned {
        user: 1,
        title: "猫咪日常 #萌宠 #猫",
        description: "它又在键盘上睡着了。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "萌宠 猫",
        pattern: Pattern::CellAuto,
        hue_deg: 120,
        duration_ms: 4000,
        tone_hz: None,
    },
    Planned {
        user: 2,
        title: "Sunset timelapse #sunset #timelapse",
        description: "Golden hour, sped up. (QuickTok demo clip, generated with ffmpeg)",
        tags: "sunset timelapse",
        pattern: Pattern::Gradients,
        hue_deg: 25,
        duration_ms: 6000,
        tone_hz: Some(262),
    },
    Planned {
        user: 0,
        title: "第一次学做蛋糕 #烘焙 #甜品",
        description: "配方在评论区，成功率五成。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "烘焙 甜品",
        pattern: Pattern::Sierpinski,
        hue_deg: 330,
        duration_ms: 4000,
        tone_hz: Some(587),
    },
    Planned {
        user: 3,
        title: "Leg day, no excuses #fitness #gym",
        description: "Squats, lunges, regret. (QuickTok demo clip, generated with ffmpeg)",
        tags: "fitness gym",
        pattern: Pattern::TestCard,
        hue_deg: 90,
        duration_ms: 3500,
        tone_hz: Some(659),
    },
    Planned {
        user: 1,
        title: "周末徒步 #户外 #徒步",
        description: "山顶的风很大，值得。\n（QuickTok 演示视频，由 ffmpeg 生成）",
        tags: "户外 徒步",
        pattern: Pattern::Life,
        hue_deg: 140,
        duration_ms: 5000,
        tone_hz: Some(349),
    },
    Planned {
        user: 2,
        title: "Deep zoom, no music #fractal #chill",
        description: "Just the shapes. (QuickTok demo clip, generated with ffmpeg)",
        tags: "fractal chill",
        pattern: Pattern::Mandelbrot,
        hue_deg: 180,
        duration_ms: 5500,
        tone_hz: None,
    },
];

/// One clip of this run: the plan entry and the concrete spec.
#[derive(Debug, Clone)]
struct ClipJob {
    user: usize,
    title: String,
    description: &'static str,
    tags: &'static str,
    spec: DemoClip,
}

/// The clips of a run. `run_seed` varies every clip's structure, so seeding the same server
/// again seldom repeats a clip closely enough for the pipeline to reject it as a near
/// duplicate (within a run, the consecutive seeds rule that out).
fn plan(count: usize, run_seed: u32) -> Vec<ClipJob> {
    (0..count)
        .map(|i| {
            let p = PLAN[i % PLAN.len()];
            let round = i / PLAN.len();
            let title = if round == 0 {
                p.title.to_owned()
            } else {
                format!("{} ({})", p.title, round + 1)
            };
            let spec = DemoClip {
                pattern: p.pattern,
                hue_deg: p.hue_deg,
                duration_ms: p.duration_ms,
                tone_hz: p.tone_hz,
                // Consecutive seeds: patterns guarantee those differ (see `DemoClip::seed`).
                seed: (run_seed >> 1).wrapping_add(i as u32),
                ..DemoClip::default()
            };
            ClipJob { user: p.user, title, description: p.description, tags: p.tags, spec }
        })
        .collect()
}

/// Runs `seed-demo`.
pub async fn run(mut config: Config, opts: SeedOptions) -> anyhow::Result<()> {
    if let Some(url) = &opts.url {
        let base = Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
        let seeder = Seeder::new(base, config.processing.clone())?;
        return seeder.seed_unless_present(&opts, None).await;
    }
    // A private port and every role: processing must run for the videos to publish.
    config.server.listen = "127.0.0.1:0".into();
    config.server.roles = Role::ALL.into_iter().collect();
    let data_dir = config.server.data_dir.clone();
    let media = config.processing.clone();
    let app = App::start(config, Shutdown::new()).await.with_context(|| {
        format!(
            "starting QuickTok on {} (if a server is already running on it, pass --url)",
            data_dir.display()
        )
    })?;
    let outcome = match app.url() {
        Some(url) => {
            let seeder = Seeder::new(Url::parse(&url)?, media)?;
            tokio::select! {
                r = seeder.seed_unless_present(&opts, Some(&app)) => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        }
        None => Err(anyhow::anyhow!("the in-process server has no HTTP listener")),
    };
    // Stop gracefully either way, so the data directory is left clean for `serve`.
    app.stop();
    let stopped = app.run_until_stopped().await;
    outcome.and(stopped)
}

/// Why the server needs no demo, if it does not: its public feed already has a video, or
/// (in-process, where the metadata store is at hand) a demo account already uploaded one
/// that may still be processing from an interrupted run.
async fn demo_present(seeder: &Seeder, app: Option<&App>) -> anyhow::Result<Option<String>> {
    // The feed is what a newcomer sees, so it is the test that matters; it works the same
    // in-process and against --url, whoever posted the videos.
    let url = seeder.url("/api/v1/videos?limit=1")?;
    let r = seeder.send("listing videos", || seeder.http.get(url.clone())).await?;
    if r.status() != StatusCode::OK {
        bail!("GET /api/v1/videos answered {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let page: serde_json::Value = r.json().await.context("the video list")?;
    if page["items"].as_array().is_some_and(|items| !items.is_empty()) {
        return Ok(Some("the feed already has videos".into()));
    }
    if let Some(state) = app.and_then(App::api_state) {
        let meta = state.meta();
        for name in DEMO_USERS {
            let Some(user) = meta.users().by_username(name).await? else { continue };
            if !meta.videos().by_author(user.id, None, 1).await?.is_empty() {
                return Ok(Some(format!("{name} already uploaded videos")));
            }
        }
    }
    Ok(None)
}

/// An HTTP client for one server.
struct Seeder {
    http: reqwest::Client,
    base: Url,
    media: MediaConfig,
    tty: bool,
}

/// A signed-in demo account.
struct Account {
    name: &'static str,
    token: String,
}

/// An uploaded clip and where it is.
struct Uploaded {
    video_id: String,
    user: usize,
    title: String,
    status: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct SessionBody {
    access_token: String,
}

#[derive(Deserialize)]
struct VideoBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Statuses a video does not leave by itself.
fn is_final(status: &str) -> bool {
    matches!(status, "published" | "rejected" | "review" | "removed")
}

impl Seeder {
    fn new(base: Url, media: MediaConfig) -> anyhow::Result<Seeder> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Seeder { http, base, media, tty: std::io::stdout().is_terminal() })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base.join(path).with_context(|| format!("joining {path} to {}", self.base))
    }

    /// Sends a request built by `build`, waiting out 429s (the API's rate limits) a few times.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        for _ in 0..5 {
            let r = build().send().await.with_context(|| format!("{what}: no answer"))?;
            if r.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(r);
            }
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 60);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        bail!("{what}: still rate limited after several tries")
    }

    async fn seed_unless_present(
        &self,
        opts: &SeedOptions,
        app: Option<&App>,
    ) -> anyhow::Result<()> {
        if opts.if_empty
            && let Some(why) = demo_present(self, app).await?
        {
            println!("seed-demo: skipped: {why}");
            return Ok(());
        }
        self.seed(opts).await
    }

    async fn seed(&self, opts: &SeedOptions) -> anyhow::Result<()> {
        let started = Instant::now();
        println!("seed-demo: seeding {} with {} clips", self.base, opts.clips);
        let mut accounts = Vec::with_capacity(DEMO_USERS.len());
        for name in DEMO_USERS {
            accounts.push(self.account(name).await?);
        }
        let clips = plan(opts.clips, rand::random());
        // Private to this run and removed on drop, success or not.
        let work = JobDir::new(&self.media).context("creating a working directory")?;
        let files = self.generate(&clips, work.path()).await?;
        let mut uploaded = self.upload_all(&accounts, &clips, &files).await?;
        self.wait_published(&mut accounts, &mut uploaded, opts.timeout).await?;
        println!("seed-demo: {} videos published in {:.0?}", uploaded.len(), started.elapsed());
        println!("  accounts: {}", DEMO_USERS.join(", "));
        println!("  password: {DEMO_PASSWORD}");
        Ok(())
    }

    /// Signs in `name` with the demo password; `None` when the server refuses the password
    /// (or the account does not exist).
    async fn login(&self, name: &str) -> anyhow::Result<Option<String>> {
        let body = serde_json::json!({ "username": name, "password": DEMO_PASSWORD });
        let url = self.url("/api/v1/auth/login")?;
        let r = self.send("login", || self.http.post(url.clone()).json(&body)).await?;
        match r.status() {
            StatusCode::OK => Ok(Some(r.json::<SessionBody>().await?.access_token)),
            StatusCode::UNAUTHORIZED => Ok(None),
            s => bail!("login as {name}: {s}: {}", r.text().await.unwrap_or_default()),
        }
    }

    /// Registers `name`, or signs in when a previous run already did.
    async fn account(&self, name: &'static str) -> anyhow::Result<Account> {
        let body = serde_json::json!({ "username": name, "password": DEMO_PASSWORD });
        let url = self.url("/api/v1/auth/register")?;
        let r = self.send("register", || self.http.post(url.clone()).json(&body)).await?;
        let token = match r.status() {
            StatusCode::CREATED => r.json::<SessionBody>().await?.access_token,
            StatusCode::CONFLICT => match self.login(name).await? {
                Some(token) => token,
                None => bail!(
                    "the username {name} is taken by an account that does not use the demo password"
                ),
            },
            s => bail!("registering {name}: {s}: {}", r.text().await.unwrap_or_default()),
        };
        Ok(Account { name, token })
    }

    /// Synthesises every clip into `dir`; returns the files.
    async fn generate(&self, clips: &[ClipJob], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let bar = Progress::new(self.tty, "generate", clips.len() as u64, false);
        let mut files = Vec::with_capacity(clips.len());
        for (i, clip) in clips.iter().enumerate() {
            let path = dir.join(format!("clip-{i:02}-{}.mp4", clip.spec.pattern.name()));
            bar.message(clip.spec.pattern.name());
            synthesize(&self.media, &clip.spec, &path)
                .await
                .with_context(|| format!("generating clip {i} ({})", clip.spec.pattern.name()))?;
            bar.inc(1);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            bar.line(&format!(
                "{} ({}, {} KiB)",
                clip.title,
                clip.spec.pattern.name(),
                size / 1024
            ));
            files.push(path);
        }
        bar.finish();
        Ok(files)
    }

    async fn upload_all(
        &self,
        accounts: &[Account],
        clips: &[ClipJob],
        files: &[PathBuf],
    ) -> anyhow::Result<Vec<Uploaded>> {
        let mut total = 0;
        for f in files {
            total +=
                std::fs::metadata(f).with_context(|| format!("reading {}", f.display()))?.len();
        }
        let bar = Progress::new(self.tty, "upload", total, true);
        let mut uploaded = Vec::with_capacity(clips.len());
        for (clip, file) in clips.iter().zip(files) {
            let account = &accounts[clip.user];
            bar.message(&clip.title);
            let video_id = self.upload(account, clip, file, &bar).await?;
            bar.line(&format!("{} -> video {video_id} ({})", clip.title, account.name));
            uploaded.push(Uploaded {
                video_id,
                user: clip.user,
                title: clip.title.clone(),
                status: "processing".into(),
                reason: None,
            });
        }
        bar.finish();
        Ok(uploaded)
    }

    /// One tus upload: create with the metadata, then PATCH the bytes in at least two chunks
    /// (resuming from the server's offset after a failed chunk). Returns the video id.
    async fn upload(
        &self,
        account: &Account,
        clip: &ClipJob,
        file: &Path,
        bar: &Progress,
    ) -> anyhow::Result<String> {
        let bytes =
            tokio::fs::read(file).await.with_context(|| format!("reading {}", file.display()))?;
        let len = bytes.len() as u64;
        let filename = file.file_name().and_then(|n| n.to_str()).unwrap_or("clip.mp4");
        let metadata = quicktok_api::upload::metadata::encode(&[
            ("filename", filename),
            ("filetype", "video/mp4"),
            ("title", &clip.title),
            ("description", clip.description),
            ("tags", clip.tags),
        ]);
        let what = format!("uploading {:?}", clip.title);
        let create_url = self.url("/api/v1/uploads")?;
        let r = self
            .send(&what, || {
                self.tus(Method::POST, create_url.clone(), &account.token)
                    .header("Upload-Length", len)
                    .header("Upload-Metadata", &metadata)
            })
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!(
                "{what}: creation answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let header =
            |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let location = header("location").with_context(|| format!("{what}: no Location"))?;
        let video_id =
            header("quicktok-video-id").with_context(|| format!("{what}: no QuickTok-Video-Id"))?;
        let upload_url = self.url(&location)?;

        // Half the file at most, so even a small clip takes the multi-chunk path.
        let chunk = len.div_ceil(2).clamp(1, 1 << 20);
        let mut offset = 0u64;
        let mut failures = 0;
        while offset < len {
            let end = (offset + chunk).min(len);
            let body = bytes[offset as usize..end as usize].to_vec();
            let sent = self
                .tus(Method::PATCH, upload_url.clone(), &account.token)
                .header("Content-Type", "application/offset+octet-stream")
                .header("Upload-Offset", offset)
                .body(body)
                .send()
                .await;
            let new_offset = match sent {
                Ok(r) if r.status() == StatusCode::NO_CONTENT => r
                    .headers()
                    .get("upload-offset")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok()),
                Ok(r)
                    if r.status().is_client_error()
                        && !matches!(r.status().as_u16(), 409 | 423 | 429) =>
                {
                    bail!(
                        "{what}: PATCH answered {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )
                }
                _ => None,
            };
            match new_offset {
                Some(n) if n > offset && n <= len => {
                    bar.inc(n - offset);
                    offset = n;
                }
                _ => {
                    failures += 1;
                    if failures > 3 {
                        bail!("{what}: the chunk at offset {offset} failed {failures} times");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    // Resume where the server says the upload is.
                    let r =
                        self.tus(Method::HEAD, upload_url.clone(), &account.token).send().await?;
                    let at = r
                        .headers()
                        .get("upload-offset")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .with_context(|| format!("{what}: HEAD answered {}", r.status()))?;
                    if at > offset {
                        bar.inc(at - offset);
                    }
                    offset = at;
                }
            }
        }
        Ok(video_id)
    }

    fn tus(&self, method: Method, url: Url, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(token).header("Tus-Resumable", "1.0.0")
    }

    /// Polls every video until it is published, ends otherwise, or `timeout` passes.
    async fn wait_published(
        &self,
        accounts: &mut [Account],
        videos: &mut [Uploaded],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let bar = Progress::new(self.tty, "processing", videos.len() as u64, false);
        let deadline = Instant::now() + timeout;
        loop {
            for v in videos.iter_mut().filter(|v| !is_final(&v.status)) {
                let body = self.video_status(&mut accounts[v.user], &v.video_id).await?;
                if body.status != v.status {
                    v.status = body.status;
                    v.reason = body.reason;
                    if is_final(&v.status) {
                        bar.inc(1);
                        bar.line(&format!("{}: {}", v.title, v.status));
                    }
                }
            }
            let pending = videos.iter().filter(|v| !is_final(&v.status)).count();
            bar.message(&format!("{pending} still processing"));
            if pending == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        bar.finish();
        let failed: Vec<String> = videos
            .iter()
            .filter(|v| v.status != "published")
            .map(|v| {
                let why = match (&v.reason, is_final(&v.status)) {
                    (Some(r), _) => format!("{} ({r})", v.status),
                    (None, true) => v.status.clone(),
                    (None, false) => {
                        format!("still {} after {}", v.status, humanize(timeout))
                    }
                };
                format!("  video {} {:?} by {}: {why}", v.video_id, v.title, accounts[v.user].name)
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        bail!(
            "{} of {} demo videos were not published:\n{}",
            failed.len(),
            videos.len(),
            failed.join("\n")
        )
    }

    /// `GET /api/v1/videos/{id}` as the uploader, signing in again if the token expired.
    async fn video_status(&self, account: &mut Account, id: &str) -> anyhow::Result<VideoBody> {
        let url = self.url(&format!("/api/v1/videos/{id}"))?;
        for _ in 0..2 {
            let token = account.token.clone();
            let r = self
                .send("video status", || self.http.get(url.clone()).bearer_auth(&token))
                .await?;
            match r.status() {
                StatusCode::OK => return r.json().await.context("video status body"),
                StatusCode::UNAUTHORIZED => match self.login(account.name).await? {
                    Some(token) => account.token = token,
                    None => {
                        bail!("the demo account {} no longer accepts its password", account.name)
                    }
                },
                StatusCode::NOT_FOUND => bail!(
                    "GET /api/v1/videos/{id} answered 404: this server does not report video \
                     status (is it older than this seed-demo?)"
                ),
                s => bail!("GET /api/v1/videos/{id}: {s}: {}", r.text().await.unwrap_or_default()),
            }
        }
        bail!("GET /api/v1/videos/{id}: still unauthorised after signing in again")
    }
}

/// `10m`, `90s`.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) { format!("{}m", s / 60) } else { format!("{s}s") }
}

/// A phase's progress: an indicatif bar on a terminal, plain lines otherwise (logs, CI,
/// `make run` piped somewhere).
struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    bytes: bool,
}

impl Progress {
    fn new(tty: bool, label: &'static str, total: u64, bytes: bool) -> Progress {
        let bar = tty.then(|| {
            let template = if bytes {
                "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg}"
            } else {
                "{prefix:>10} [{bar:30}] {pos}/{len} {msg}"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout())
                .with_style(style)
                .with_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, label, total, done: Default::default(), bytes }
    }

    fn inc(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// What is being worked on (the bar only: plain output prints finished items).
    fn message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_owned());
        }
    }

    /// A finished item: a line above the bar, or a plain line with the count.
    fn line(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("{:>10} {msg}", self.label)),
            None if self.bytes => println!("{}: {msg}", self.label),
            None => {
                let done = self.done.load(std::sync::atomic::Ordering::Relaxed);
                println!("{} [{done}/{}]: {msg}", self.label, self.total);
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message("done");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use quicktok_pipeline::compliance::{ComplianceConfig, ComplianceFilter, ComplianceVerdict};

    #[test]
    fn demo_accounts_pass_the_api_rules() {
        for name in DEMO_USERS {
            assert_eq!(quicktok_api::auth::username::normalize_username(name).unwrap(), name);
        }
        quicktok_api::auth::username::check_password(DEMO_PASSWORD).unwrap();
    }

    #[test]
    fn the_plan_is_varied_and_valid_metadata() {
        let clips = plan(12, 42);
        let patterns: std::collections::BTreeSet<_> =
            clips.iter().map(|c| c.spec.pattern.name()).collect();
        assert_eq!(patterns.len(), Pattern::ALL.len(), "every pattern is used");
        assert!(
            clips.iter().any(|c| c.title.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)))
        );
        assert!(clips.iter().any(|c| c.title.is_ascii()));
        assert!(clips.iter().any(|c| c.spec.tone_hz.is_none()));
        for (user, name) in DEMO_USERS.iter().enumerate() {
            assert!(clips.iter().any(|c| c.user == user), "{name} posts");
        }
        let filter = ComplianceFilter::new(&ComplianceConfig::default()).unwrap();
        for c in &clips {
            assert!((3000..=6000).contains(&c.spec.duration_ms), "{}", c.title);
            let header = quicktok_api::upload::metadata::encode(&[
                ("filename", "clip-00-life.mp4"),
                ("title", &c.title),
                ("description", c.description),
                ("tags", c.tags),
            ]);
            let parsed = quicktok_api::upload::metadata::parse(&header, 4096).unwrap();
            assert_eq!(parsed.title, c.title);
            assert!(parsed.tags.len() >= 2, "{}", c.title);
            let verdict = filter.check(&parsed.title, &parsed.description, &parsed.tags);
            assert!(matches!(verdict, ComplianceVerdict::Pass), "{}: {verdict:?}", c.title);
        }
        // Later rounds repeat the plan with new seeds and numbered titles.
        let more = plan(14, 42);
        assert_eq!(more[12].title, format!("{} (2)", PLAN[0].title));
        assert_ne!(more[12].spec.seed, more[0].spec.seed);
        assert_ne!(plan(1, 1)[0].spec.seed, plan(1, 2)[0].spec.seed);
    }

    /// The whole path on a fresh data directory: accounts, upload, processing, publication;
    /// then `--if-empty` leaves the seeded directory alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeds_an_empty_data_dir_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_owned();
        let opts =
            SeedOptions { url: None, if_empty: true, clips: 2, timeout: Duration::from_secs(300) };
        run(config.clone(), opts.clone()).await.unwrap();
        run(config.clone(), opts).await.unwrap();

        let meta = quicktok_meta::MetaStore::connect(&config.meta, dir.path()).await.unwrap();
        let mut videos = Vec::new();
        for name in DEMO_USERS {
            let user = meta.users().by_username(name).await.unwrap().unwrap();
            videos.extend(meta.videos().by_author(user.id, None, 10).await.unwrap());
        }
        assert_eq!(videos.len(), 2, "the second run seeded nothing");
        for v in &videos {
            assert_eq!(v.status, quicktok_meta::VideoStatus::Published, "{v:?}");
            assert_eq!((v.width, v.height), (Some(540), Some(960)));
        }
        let titles: Vec<&str> = videos.iter().map(|v| v.title.as_str()).collect();
        assert!(titles.contains(&PLAN[0].title) && titles.contains(&PLAN[1].title), "{titles:?}");
        meta.close().await;
    }

    /// The pipeline rejects near duplicates (mean distance of 16 frame dHashes at most 10
    /// bits), so the demo's clips must be far apart, including the pairs sharing a pattern.
    #[tokio::test]
    async fn demo_clips_are_not_near_duplicates_of_each_other() {
        let cfg = MediaConfig { threads: 1, ..MediaConfig::default() };
        let job = JobDir::new(&cfg).unwrap();
        let mut hashes = Vec::new();
        // A fixed run seed keeps the test deterministic (a sweep over ten run seeds found no
        // pair under 16 bits; three-round plans of 36 clips, none under 14).
        for (i, clip) in plan(12, 0x5eed).into_iter().enumerate() {
            // A smaller frame keeps the test quick; the structure is the same.
            let spec = DemoClip { width: 270, height: 480, ..clip.spec };
            let out = job.path().join(format!("{i}.mp4"));
            synthesize(&cfg, &spec, &out).await.unwrap();
            let info = quicktok_media::probe(&cfg, &out).await.unwrap();
            let h = quicktok_media::frame_hashes(&cfg, &job, &out, &info, 16).await.unwrap();
            hashes.push((clip.title, spec.seed, h));
        }
        for (i, (ta, sa, a)) in hashes.iter().enumerate() {
            for (tb, sb, b) in &hashes[i + 1..] {
                let d = quicktok_media::clip_distance(a, b);
                assert!(d > 10.0, "{ta:?} (seed {sa}) and {tb:?} (seed {sb}): {d:.1} bits");
            }
        }
    }
}
