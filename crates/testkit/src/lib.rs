//! Test kit: [`AppSandbox`] runs the whole QuickTok app on port 0 in a temporary data
//! directory so integration tests talk to it over real HTTP, plus small helpers for the
//! calls most tests need.

use std::time::Duration;

use quicktok::{App, Config};
use quicktok_core::Shutdown;
use serde_json::Value;

/// A whole QuickTok node for one test: its own data directory, its own port.
pub struct AppSandbox {
    pub base_url: String,
    blobs: std::sync::Arc<dyn quicktok_blob::BlobStore>,
    state: quicktok_api::AppState,
    pub client: reqwest::Client,
    pub config: Config,
    shutdown: Shutdown,
    app: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the data directory outlives the app.
    data_dir: tempfile::TempDir,
}

impl std::fmt::Debug for AppSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSandbox").field("base_url", &self.base_url).finish()
    }
}

/// The sandbox's default configuration: a temp data dir, port 0, rate limits generous
/// enough not to interfere with ordinary tests (rate-limit tests set their own).
pub fn sandbox_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = data_dir.to_owned();
    config.server.listen = "127.0.0.1:0".into();
    config.server.shutdown_grace_secs = 5;
    config.rate_limit.ip_per_second = 100_000;
    config.rate_limit.ip_burst = 100_000;
    config.rate_limit.user_per_second = 100_000;
    config.rate_limit.user_burst = 100_000;
    config.rate_limit.auth_per_minute = 100_000;
    config.rate_limit.auth_burst = 100_000;
    // Tests share two cores: one encoder thread, the fastest preset, quick retries.
    config.processing.threads = 1;
    config.processing.preset = "ultrafast".into();
    config.pipeline.runner.backoff_base_ms = 200;
    config.pipeline.runner.lease_ms = 5_000;
    config.pipeline.runner.poll_interval_ms = 100;
    config
}

impl AppSandbox {
    /// Starts a node with [`sandbox_config`].
    pub async fn start() -> anyhow::Result<AppSandbox> {
        Self::start_with(|_| {}).await
    }

    /// Starts a node with [`sandbox_config`] adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<AppSandbox> {
        let data_dir = tempfile::tempdir()?;
        let mut config = sandbox_config(data_dir.path());
        adjust(&mut config);
        Self::start_in(data_dir, config).await
    }

    /// Starts a node with [`sandbox_config`] adjusted by `adjust`, on a clock the test moves
    /// (expiry, windows). Start the clock near the real time: access tokens are checked
    /// against the system clock.
    pub async fn start_with_clock(
        clock: quicktok_core::ManualClock,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<AppSandbox> {
        let data_dir = tempfile::tempdir()?;
        let mut config = sandbox_config(data_dir.path());
        adjust(&mut config);
        Self::start_in_with_clock(data_dir, config, std::sync::Arc::new(clock)).await
    }

    /// Starts a node on an existing data directory (to test restarts).
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        config: Config,
    ) -> anyhow::Result<AppSandbox> {
        Self::start_in_with_clock(data_dir, config, std::sync::Arc::new(quicktok_core::SystemClock))
            .await
    }

    /// Starts a node on an existing data directory with `clock`.
    pub async fn start_in_with_clock(
        data_dir: tempfile::TempDir,
        config: Config,
        clock: quicktok_core::clock::SharedClock,
    ) -> anyhow::Result<AppSandbox> {
        let shutdown = Shutdown::new();
        let app = App::start_with_clock(config.clone(), shutdown.clone(), clock).await?;
        let base_url =
            app.url().ok_or_else(|| anyhow::anyhow!("sandbox runs without the api role"))?;
        let blobs = app.blobs();
        let state = app.api_state().cloned().ok_or_else(|| anyhow::anyhow!("no api state"))?;
        let handle = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(AppSandbox {
            base_url,
            blobs,
            state,
            client,
            config,
            shutdown,
            app: Some(handle),
            data_dir,
        })
    }

    /// Stops the node gracefully and hands back its data directory.
    pub async fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        self.shutdown.cancel();
        if let Some(handle) = self.app.take() {
            handle.await??;
        }
        let dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir()?);
        Ok(dir)
    }

    /// The node's blob store, for putting fixtures in place.
    pub fn blobs(&self) -> &std::sync::Arc<dyn quicktok_blob::BlobStore> {
        &self.blobs
    }

    /// A signed media path (`/media/{id}?exp=..&sig=..`) for blob `id`.
    pub fn media_path(&self, id: quicktok_core::Id) -> String {
        self.state.media_path(id)
    }

    /// The API state (services behind the HTTP layer).
    pub fn state(&self) -> &quicktok_api::AppState {
        &self.state
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// An absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// `POST path` with a JSON body, optionally authenticated.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        Ok(request.send().await?)
    }

    /// `GET path`, optionally authenticated.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.get(self.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        Ok(request.send().await?)
    }

    /// Registers `username` with a fixed test password and returns the session JSON.
    pub async fn register(&self, username: &str) -> anyhow::Result<Value> {
        let response = self
            .post_json(
                "/api/v1/auth/register",
                &serde_json::json!({"username": username, "password": TEST_PASSWORD}),
                None,
            )
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status == 201, "register {username}: {status} {body}");
        Ok(body)
    }
}

/// A signed-in uploader.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub token: String,
    pub user_id: String,
}

impl AppSandbox {
    /// Registers `username` and returns its token and id.
    pub async fn uploader(&self, username: &str) -> anyhow::Result<Uploader> {
        let session = self.register(username).await?;
        let token = session["access_token"].as_str().unwrap_or_default().to_owned();
        let user_id = session["user"]["id"].as_str().unwrap_or_default().to_owned();
        Ok(Uploader { token, user_id })
    }

    /// Creates the administrator `username` (listed in `auth.admins`: such names cannot be
    /// registered over the API) the way the operator's CLI does, and signs it in.
    pub async fn admin(&self, username: &str) -> anyhow::Result<Uploader> {
        let session = self
            .state
            .auth()
            .register_admin(username, TEST_PASSWORD.to_owned())
            .await
            .map_err(|e| anyhow::anyhow!("creating admin {username}: {e}"))?;
        Ok(Uploader { token: session.access_token, user_id: session.user.id.to_string() })
    }

    /// Uploads `bytes` with tus in chunks of `chunk` bytes and returns the video id.
    /// `metadata` pairs are base64-encoded into `Upload-Metadata`.
    pub async fn tus_upload(
        &self,
        token: &str,
        bytes: &[u8],
        metadata: &[(&str, &str)],
        chunk: usize,
    ) -> anyhow::Result<String> {
        let done = tus_upload(&self.client, &self.base_url, token, bytes, metadata, chunk).await?;
        Ok(done.video)
    }

    /// Creates a published video by `author_id` straight in the metadata store (no media,
    /// 20 s long), for tests of what happens around videos; returns its id.
    pub async fn published_video(&self, author_id: &str, private: bool) -> anyhow::Result<String> {
        let author: quicktok_core::Id = author_id.parse()?;
        let id = self.state.next_id();
        let now = self.state.clock().now_ms();
        let videos = self.state.meta().videos();
        videos
            .create(quicktok_meta::NewVideo {
                id,
                author_id: author,
                title: format!("clip {id}"),
                description: String::new(),
                tags: vec![],
                created_at_ms: now,
            })
            .await?;
        videos.set_media_info(id, 20_000, 720, 1280, now).await?;
        videos.set_status(id, quicktok_meta::VideoStatus::Published, None, now).await?;
        if private {
            videos.set_private(id, true, now).await?;
        }
        Ok(id.to_string())
    }

    /// Creates a published story by `author_id` straight in the metadata store (no media,
    /// `duration_ms` long), published now on the app clock with the configured lifetime;
    /// returns its id.
    pub async fn published_story(
        &self,
        author_id: &str,
        duration_ms: i64,
    ) -> anyhow::Result<String> {
        let author: quicktok_core::Id = author_id.parse()?;
        let id = self.state.next_id();
        let now = self.state.clock().now_ms();
        let videos = self.state.meta().videos();
        videos
            .create(quicktok_meta::NewVideo {
                id,
                author_id: author,
                title: format!("story {id}"),
                description: String::new(),
                tags: vec![],
                created_at_ms: now,
            })
            .await?;
        videos.set_kind(id, quicktok_meta::VideoKind::Story, now).await?;
        videos.set_media_info(id, duration_ms, 720, 1280, now).await?;
        videos.publish(id, now, self.config.social.stories.lifetime_ms_i64()).await?;
        Ok(id.to_string())
    }

    /// Polls `GET /api/v1/videos/{id}` until its status is one of `until` (or `timeout`),
    /// returning the video JSON.
    pub async fn wait_for_video(
        &self,
        token: &str,
        video: &str,
        until: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.get(&format!("/api/v1/videos/{video}"), Some(token)).await?;
            let status = r.status();
            let body: Value = r.json().await?;
            anyhow::ensure!(status == 200, "GET video {video}: {status} {body}");
            if until.iter().any(|s| body["status"] == *s) {
                return Ok(body);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "video {video} still {} after {timeout:?}: {body}",
                body["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A finished tus upload.
#[derive(Debug, Clone)]
pub struct TusUpload {
    /// The `QuickTok-Video-Id` of the creation answer.
    pub video: String,
    /// `PATCH` requests sent.
    pub patches: usize,
}

/// Uploads `bytes` to the server at `base_url` with tus: creation (with `metadata` pairs
/// base64-encoded into `Upload-Metadata`), then `PATCH`es of `chunk` bytes. Returns once
/// the last `PATCH` is answered, i.e. when the upload is complete.
pub async fn tus_upload(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    bytes: &[u8],
    metadata: &[(&str, &str)],
    chunk: usize,
) -> anyhow::Result<TusUpload> {
    use base64::Engine;
    let meta: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("{k} {}", base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    let r = client
        .post(format!("{base_url}/api/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len())
        .header("Upload-Metadata", meta.join(","))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "tus create: {} {}", r.status(), r.text().await?);
    let header = |name: &str| {
        r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).unwrap_or_default()
    };
    let (location, video) = (header("location"), header("quicktok-video-id"));
    anyhow::ensure!(!location.is_empty() && !video.is_empty(), "tus create: no location or id");
    let url = if location.starts_with("http") { location } else { format!("{base_url}{location}") };
    let mut offset = 0;
    let mut patches = 0;
    for part in bytes.chunks(chunk.max(1)) {
        let r = client
            .patch(&url)
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset)
            .header("Content-Type", "application/offset+octet-stream")
            .body(part.to_vec())
            .send()
            .await?;
        anyhow::ensure!(
            r.status() == 204,
            "tus patch at {offset}: {} {}",
            r.status(),
            r.text().await?
        );
        offset += part.len();
        patches += 1;
    }
    Ok(TusUpload { video, patches })
}

/// Writes a test clip with ffmpeg (test setup, not untrusted input): `source` is a lavfi
/// video graph such as `testsrc2=s=640x360:d=3:r=25`; a sine tone is added when `audio`.
pub fn make_clip(
    dir: &std::path::Path,
    name: &str,
    source: &str,
    audio: bool,
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(name);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]);
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-shortest"]);
    }
    cmd.args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
    if audio {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    cmd.arg(&path);
    let out = cmd.output()?;
    anyhow::ensure!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    Ok(path)
}

impl Drop for AppSandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The password [`AppSandbox::register`] uses.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// The test database URLs `make test` exports when the services answer.
pub fn env_url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
