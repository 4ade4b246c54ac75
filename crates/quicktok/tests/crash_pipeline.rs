//! Crash and resume through the real binary: `quicktok serve` is SIGKILLed (with its ffmpeg
//! children, as a machine crash would take them) while it encodes, before publication, and
//! again after publication while the pass still encodes; each restart on the same data
//! directory resumes the job at the stage it was in, keeps the segments viewers may already
//! hold, and the video ends published with every planned rung, listed by the HLS master and
//! decodable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(240);

/// A free TCP port on 127.0.0.1 (bound and released; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The pids of `pid`'s children (every thread's).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every descendant of `pid`, parents before children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut next = children(pid);
    while let Some(p) = next.pop() {
        all.push(p);
        next.extend(children(p));
    }
    all
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is a live process (a zombie waiting to be reaped is dead).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last ')'.
        stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn sigkill(pid: u32) {
    // `kill` the command: the workspace forbids `unsafe`, so no libc::kill.
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
}

/// One `quicktok serve` process. Dropping it (a panicking test included) kills it and every
/// process it started.
struct Server {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, log: &Path) -> Server {
        let port = free_port();
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quicktok"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        // Only this test's settings: drop QUICKTOK_* configuration from the environment.
        for (name, _) in std::env::vars() {
            if name.starts_with("QUICKTOK_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("QUICKTOK_PIPELINE__RUNNER__LEASE_MS", "3000")
            .env("QUICKTOK_PIPELINE__RUNNER__POLL_INTERVAL_MS", "100")
            .env("QUICKTOK_PROCESSING__THREADS", "1")
            .env("QUICKTOK_RATE_LIMIT__ENABLED", "false")
            .env("QUICKTOK_AUTH__ADMINS", "[ops]")
            .env("QUICKTOK_SERVER__LOG_FORMAT", "pretty")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().unwrap();
        Server { child: Some(child), base: format!("http://127.0.0.1:{port}"), log: log.to_owned() }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's log so far (for failure messages).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until `/healthz` answers.
    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(self.url("/healthz")).send().await
                && r.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("quicktok exited during start-up ({status}):\n{}", self.log_tail());
            }
            assert!(tokio::time::Instant::now() < deadline, "not ready:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an ffmpeg child encoding with libx264 to `size` (`WxH`); returns its pid.
    async fn wait_for_encoder(&self, size: &str) -> u32 {
        let scale = format!("scale={}:", size.replace('x', ":"));
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            for pid in descendants(self.pid()) {
                let args = cmdline(pid);
                let ffmpeg = args.first().is_some_and(|a| a.ends_with("ffmpeg"));
                if ffmpeg
                    && args.iter().any(|a| a == "libx264")
                    && args.iter().any(|a| a.contains(&scale))
                {
                    return pid;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {size} encoder started:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the server, then every process it had started (a crash takes them all).
    fn crash(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let orphans = descendants(child.id());
        let _ = child.kill();
        let _ = child.wait();
        for pid in orphans {
            sigkill(pid);
        }
    }

    /// SIGTERM, and the exit status once the server has shut down gracefully.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                self.child = Some(child);
                panic!("quicktok did not stop within 30 s of SIGTERM:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A 1080x1920 clip with audio, long enough that each rung takes seconds to encode.
fn make_clip(dir: &Path) -> PathBuf {
    let path = dir.join("tall.mp4");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=s=1080x1920:d=6:r=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-shortest"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// Creates the uploader, an administrator (to read the job list), with the operator's CLI
/// on the data directory before the server starts (admin names cannot be registered over
/// the API).
fn add_admin(data_dir: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quicktok"));
    cmd.args(["user", "add-admin", "ops", "--data-dir"]).arg(data_dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("QUICKTOK_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .env("QUICKTOK_AUTH__ADMINS", "[ops]")
        .env("QUICKTOK_ADMIN_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("administrator ops"),
        "add-admin: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs the administrator in; the access token stays valid across restarts (the signing
/// secret is kept in the data directory).
async fn login(server: &Server, http: &reqwest::Client) -> String {
    let r = http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "ops", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A tus upload in 1 MiB chunks; returns the video id.
async fn tus_upload(server: &Server, http: &reqwest::Client, token: &str, bytes: &[u8]) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let r = http
        .post(server.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len())
        .header(
            "Upload-Metadata",
            format!("filename {},title {}", b64("tall.mp4"), b64("crash test #resume")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let video = r.headers()["quicktok-video-id"].to_str().unwrap().to_owned();
    let mut offset = 0;
    for part in bytes.chunks(1 << 20) {
        let r = http
            .patch(server.url(&location))
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset)
            .header("Content-Type", "application/offset+octet-stream")
            .body(part.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "PATCH at {offset}");
        offset += part.len();
    }
    video
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

/// The renditions listed complete (growing ones already play but are not counted).
fn complete_names(video: &Value) -> Vec<String> {
    video["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["complete"] == true)
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The first media segment's path (no signature) in `rung`'s HLS playlist.
async fn first_segment_of(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    video: &str,
    rung: &str,
) -> String {
    let play = get_json(http, &server.url(&format!("/api/v1/videos/{video}/play")), token).await;
    let master_url = server.url(play["hls"].as_str().unwrap());
    let master = http.get(&master_url).send().await.unwrap().text().await.unwrap();
    let playlist = master
        .lines()
        .find(|l| l.starts_with(&format!("/media/v/{video}/{rung}.m3u8")))
        .unwrap_or_else(|| panic!("no {rung} playlist in {master}"));
    let playlist = http.get(server.url(playlist)).send().await.unwrap().text().await.unwrap();
    let segment = playlist
        .lines()
        .find(|l| l.starts_with("/media/") && l.contains(".m4s"))
        .unwrap_or_else(|| panic!("no segment in {playlist}"));
    segment.split('?').next().unwrap().to_owned()
}

/// The pipeline job of `video` (among queued, running and done jobs).
async fn job(server: &Server, http: &reqwest::Client, token: &str, video: &str) -> Value {
    for status in ["running", "queued", "done"] {
        let url = server.url(&format!("/api/v1/admin/jobs?status={status}&limit=200"));
        let page = get_json(http, &url, token).await;
        if let Some(job) = page["items"].as_array().unwrap().iter().find(|j| j["video_id"] == video)
        {
            return job.clone();
        }
    }
    panic!("no job for video {video}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_mid_transcode_and_mid_ladder_resume_to_a_full_ladder() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("quicktok.log");
    let clip = make_clip(dir.path());
    let bytes = std::fs::read(&clip).unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    add_admin(&data);
    let mut server = Server::start(&data, &log);
    server.wait_ready(&http).await;
    let token = login(&server, &http).await;
    let video = tus_upload(&server, &http, &token, &bytes).await;
    let video_path = format!("/api/v1/videos/{video}");

    // Crash 1: before publication, while the pass encodes (the transcode stage samples
    // frames beside it).
    let encoder = server.wait_for_encoder("480x854").await;
    server.crash();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(encoder) {
        assert!(std::time::Instant::now() < deadline, "the encoder survived the crash");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("crashed while encoding before publication at {:?}", started.elapsed());

    let mut server = Server::start(&data, &log);
    server.wait_ready(&http).await;
    // Not published, nothing complete, and the job is still at it (read before the dead
    // worker's lease runs out, so before the job can move on).
    let v = get_json(&http, &server.url(&video_path), &token).await;
    assert_eq!(v["status"], "processing", "{v}");
    assert!(complete_names(&v).is_empty(), "{v}");
    let j = job(&server, &http, &token, &video).await;
    // The pass starts as soon as ffprobe vouches for the file: the crash can come in any
    // stage before publication.
    let stage = j["stage"].as_str().unwrap();
    assert!(["probe", "compliance", "tags", "transcode"].contains(&stage), "{j}");

    // Crash 2: after publication, while the pass still encodes the top rung: the video
    // plays from growing playlists.
    let deadline = tokio::time::Instant::now() + WAIT;
    while get_json(&http, &server.url(&video_path), &token).await["status"] != "published" {
        assert!(tokio::time::Instant::now() < deadline, "not published:\n{}", server.log_tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.wait_for_encoder("1080x1920").await;
    let first_segment = first_segment_of(&server, &http, &token, &video, "480p").await;
    server.crash();
    println!("crashed while encoding after publication at {:?}", started.elapsed());

    let mut server = Server::start(&data, &log);
    server.wait_ready(&http).await;
    let v = get_json(&http, &server.url(&video_path), &token).await;
    assert_eq!(v["status"], "published", "{v}");
    assert!(complete_names(&v).len() < 3, "the crash came after the pass ended: {v}");
    let j = job(&server, &http, &token, &video).await;
    assert!(j["stage"] == "publish" || j["stage"] == "ladder", "{j}");

    // The resumed pass completes: every planned rung, once each.
    let deadline = tokio::time::Instant::now() + WAIT;
    let v = loop {
        let v = get_json(&http, &server.url(&video_path), &token).await;
        if complete_names(&v).len() >= 3 {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ladder incomplete: {v}\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A viewer who started before the crash still finds the segment it was given: the
    // resumed pass kept what was stored (same encoder settings, same init segment).
    let after = first_segment_of(&server, &http, &token, &video, "480p").await;
    assert_eq!(after, first_segment, "the stored segments were replaced");
    println!("full ladder at {:?}", started.elapsed());
    assert_eq!(v["status"], "published", "{v}");
    let sizes: Vec<(String, u64, u64)> = v["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["width"].as_u64().unwrap(),
                r["height"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        vec![("480p".into(), 480, 854), ("720p".into(), 720, 1280), ("1080p".into(), 1080, 1920)]
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let j = job(&server, &http, &token, &video).await;
        if j["status"] == "done" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "job not done: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The HLS master lists the three rungs, and ffmpeg decodes each of them to the end.
    let play = get_json(&http, &server.url(&format!("/api/v1/videos/{video}/play")), &token).await;
    let master_url = server.url(play["hls"].as_str().unwrap());
    let master = http.get(&master_url).send().await.unwrap().text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3, "{master}");
    for resolution in ["RESOLUTION=480x854", "RESOLUTION=720x1280", "RESOLUTION=1080x1920"] {
        assert!(master.contains(resolution), "{resolution} missing: {master}");
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-v", "error", "-i", &master_url])
            .args(["-map", "0:v", "-map", "0:a?", "-f", "null", "-"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffmpeg: {stderr}");

    // Nothing the crashes interrupted is left behind: the job's work dir and the encoders'
    // job dirs are gone.
    assert!(!data.join("work").join(&video).exists(), "work dir kept");
    let leftovers: Vec<String> = std::fs::read_dir(data.join("work").join("jobs"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert_eq!(leftovers, Vec::<String>::new(), "job dirs left by the crashes");

    let status = server.stop();
    assert!(status.success(), "quicktok exited with {status}:\n{}", server.log_tail());
    println!("done at {:?}", started.elapsed());
}
