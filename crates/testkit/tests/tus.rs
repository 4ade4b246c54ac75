//! Conformance of the tus 1.0.0 upload server at `/api/v1/uploads` over real HTTP: core
//! protocol, creation, creation-with-upload, termination, checksum and expiration, plus
//! quotas, ownership, cut-off bodies, the per-upload lock and resuming after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quicktok_api::upload::part_path;
use quicktok_core::{Event, Id};
use quicktok_meta::VideoStatus;
use quicktok_testkit::AppSandbox;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const OCTETS: &str = "application/offset+octet-stream";
/// A chunk with known digests.
const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
const FOX_SHA1: &str = "L9ThxnotKPzthJ7hu3bnORuT6xI=";
const FOX_MD5: &str = "nhB9nTcrtoJr2B01QqQZ1g==";

/// These tests are about the protocol: no pipeline worker races them for the completed
/// uploads' files and statuses (the pipeline has its own tests).
fn protocol_only(c: &mut quicktok::Config) {
    c.server.roles.remove(&quicktok::Role::Worker);
}

fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k} {}", STANDARD.encode(v))).collect::<Vec<_>>().join(",")
}

fn header<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// A signed-in tus client.
struct Tus<'a> {
    app: &'a AppSandbox,
    token: String,
}

impl<'a> Tus<'a> {
    async fn new(app: &'a AppSandbox, username: &str) -> Tus<'a> {
        let session = app.register(username).await.unwrap();
        Tus { app, token: session["access_token"].as_str().unwrap().to_owned() }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("Tus-Resumable", "1.0.0")
    }

    async fn create(&self, length: u64, meta: &str) -> Response {
        let mut r = self.req(Method::POST, "/api/v1/uploads").header("Upload-Length", length);
        if !meta.is_empty() {
            r = r.header("Upload-Metadata", meta);
        }
        r.send().await.unwrap()
    }

    /// Creates an upload and returns its path and video id.
    async fn created(&self, length: u64) -> (String, Id) {
        let r = self.create(length, &metadata(&[("filename", "clip.mp4")])).await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let location = header(&r, "location").unwrap().to_owned();
        let video = header(&r, "quicktok-video-id").unwrap().parse().unwrap();
        (location, video)
    }

    async fn head(&self, location: &str) -> Response {
        self.req(Method::HEAD, location).send().await.unwrap()
    }

    async fn offset(&self, location: &str) -> u64 {
        let r = self.head(location).await;
        assert_eq!(r.status(), 200);
        header(&r, "upload-offset").unwrap().parse().unwrap()
    }

    async fn patch(&self, location: &str, offset: u64, bytes: &[u8]) -> Response {
        self.req(Method::PATCH, location)
            .header("Content-Type", OCTETS)
            .header("Upload-Offset", offset)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, location: &str) -> Response {
        self.req(Method::DELETE, location).send().await.unwrap()
    }
}

fn upload_id(location: &str) -> Id {
    location.rsplit('/').next().unwrap().parse().unwrap()
}

async fn video_status(app: &AppSandbox, id: Id) -> Option<VideoStatus> {
    app.state().meta().videos().by_id(id).await.unwrap().map(|v| v.status)
}

async fn completed_events(app: &AppSandbox) -> Vec<Event> {
    let records = app.state().log().read("uploads", 0, 1000, 1 << 20).await.unwrap();
    records.iter().map(|r| Event::decode(&r.payload).unwrap()).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Opens a raw connection and sends a PATCH whose declared `Content-Length` is `declared`
/// but only the first `sent.len()` bytes of the body; the caller decides when to close.
async fn partial_patch(
    app: &AppSandbox,
    token: &str,
    location: &str,
    offset: u64,
    declared: usize,
    sent: &[u8],
) -> tokio::net::TcpStream {
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Polls `HEAD` until the offset is `want` (the server notices a closed connection
/// asynchronously).
async fn wait_for_offset(tus: &Tus<'_>, location: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = tus.offset(location).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "offset stuck at {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn options_and_tus_resumable() {
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.max_size_bytes = 12345;
    })
    .await
    .unwrap();
    // OPTIONS needs neither a token nor Tus-Resumable.
    let r = app.client.request(Method::OPTIONS, app.url("/api/v1/uploads")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    assert_eq!(header(&r, "tus-version"), Some("1.0.0"));
    let extensions: Vec<&str> = header(&r, "tus-extension").unwrap().split(',').collect();
    for ext in ["creation", "creation-with-upload", "termination", "checksum", "expiration"] {
        assert!(extensions.contains(&ext), "{ext} missing from {extensions:?}");
    }
    assert_eq!(header(&r, "tus-max-size"), Some("12345"));
    assert!(header(&r, "tus-checksum-algorithm").unwrap().split(',').any(|a| a == "sha1"));

    let tus = Tus::new(&app, "ana").await;
    let (location, _) = tus.created(10).await;
    // Without Tus-Resumable (or with another version): 412 with Tus-Version.
    for (method, path) in [
        (Method::POST, "/api/v1/uploads"),
        (Method::HEAD, location.as_str()),
        (Method::PATCH, location.as_str()),
        (Method::DELETE, location.as_str()),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&tus.token)
            .header("Upload-Length", "10")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412, "{method} {path}");
        assert_eq!(header(&r, "tus-version"), Some("1.0.0"));
        assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    }
    let r = app
        .client
        .head(app.url(&location))
        .bearer_auth(&tus.token)
        .header("Tus-Resumable", "0.2.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // Errors still carry Tus-Resumable and the JSON error body.
    let r = tus.req(Method::POST, "/api/v1/uploads").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    // Unauthenticated: 401.
    let r = app
        .client
        .post(app.url("/api/v1/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn create_head_patch_to_completion() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let meta = metadata(&[
        ("filename", "cat.mp4"),
        ("title", "My cat"),
        ("description", "She jumps.\nTwice."),
        ("tags", "#Cats funny"),
        ("filetype", "video/mp4"),
    ]);
    let content = data(100_000);
    let r = tus.create(content.len() as u64, &meta).await;
    assert_eq!(r.status(), 201);
    let location = header(&r, "location").unwrap().to_owned();
    assert!(location.starts_with("/api/v1/uploads/"), "{location}");
    let video_id: Id = header(&r, "quicktok-video-id").unwrap().parse().unwrap();
    let expires = header(&r, "upload-expires").unwrap();
    assert!(expires.ends_with(" GMT") && expires.len() == 29, "{expires}");
    assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    assert_eq!(header(&r, "upload-offset"), None);

    let video = app.state().meta().videos().by_id(video_id).await.unwrap().unwrap();
    assert_eq!(video.status, VideoStatus::Uploading);
    assert_eq!(
        (video.title.as_str(), video.description.as_str()),
        ("My cat", "She jumps.\nTwice.")
    );
    assert_eq!(video.tags, ["cats", "funny"]);
    let me = app.get("/api/v1/me", Some(&tus.token)).await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(video.author_id.to_string(), me["id"].as_str().unwrap());

    let r = tus.head(&location).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "upload-offset"), Some("0"));
    assert_eq!(header(&r, "upload-length"), Some("100000"));
    assert_eq!(header(&r, "upload-metadata"), Some(meta.as_str()));
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    assert!(header(&r, "upload-expires").is_some());

    // Three chunks; the middle one's offset is wrong first (409), its type too (415).
    let r = tus.patch(&location, 0, &content[..40_000]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "upload-offset"), Some("40000"));
    assert!(header(&r, "upload-expires").is_some());
    assert_eq!(tus.offset(&location).await, 40_000);

    let r = tus.patch(&location, 0, &content[40_000..80_000]).await;
    assert_eq!(r.status(), 409);
    let r = tus
        .req(Method::PATCH, &location)
        .header("Content-Type", "application/octet-stream")
        .header("Upload-Offset", 40_000)
        .body(content[40_000..80_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = tus.req(Method::PATCH, &location).header("Content-Type", OCTETS).send().await.unwrap();
    assert_eq!(r.status(), 400, "missing Upload-Offset");
    assert_eq!(tus.offset(&location).await, 40_000);

    // A streamed (chunked) body works too.
    let stream = futures::stream::iter(
        content[40_000..80_000]
            .chunks(7_000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = tus
        .req(Method::PATCH, &location)
        .header("Content-Type", OCTETS)
        .header("Upload-Offset", 40_000)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "upload-offset"), Some("80000"));
    assert!(completed_events(&app).await.is_empty());
    assert_eq!(video_status(&app, video_id).await, Some(VideoStatus::Uploading));

    let r = tus.patch(&location, 80_000, &content[80_000..]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "upload-offset"), Some("100000"));
    assert_eq!(header(&r, "upload-expires"), None);
    assert_eq!(video_status(&app, video_id).await, Some(VideoStatus::Processing));
    let upload = upload_id(&location);
    match completed_events(&app).await.as_slice() {
        [Event::UploadCompleted { upload_id, video_id: v, owner, size, .. }] => {
            assert_eq!((*upload_id, *v, *size), (upload, video_id, 100_000));
            assert_eq!(owner.to_string(), me["id"].as_str().unwrap());
        }
        other => panic!("events: {other:?}"),
    }
    let on_disk = std::fs::read(part_path(app.data_dir(), upload)).unwrap();
    assert!(on_disk == content, "stored bytes differ");

    let r = tus.head(&location).await;
    assert_eq!(header(&r, "upload-offset"), Some("100000"));
    assert_eq!(header(&r, "upload-expires"), None);
    // Complete: no more bytes (413), and it cannot be terminated (409).
    assert_eq!(tus.patch(&location, 100_000, b"x").await.status(), 413);
    assert_eq!(tus.delete(&location).await.status(), 409);
    // An empty PATCH at the end is a harmless retry.
    assert_eq!(tus.patch(&location, 100_000, b"").await.status(), 204);
}

#[tokio::test]
async fn creation_with_upload() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let content = data(5_000);
    let r = tus
        .req(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", 5_000)
        .header("Content-Type", OCTETS)
        .body(content[..3_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "upload-offset"), Some("3000"));
    let location = header(&r, "location").unwrap().to_owned();
    let video_id: Id = header(&r, "quicktok-video-id").unwrap().parse().unwrap();
    assert_eq!(tus.offset(&location).await, 3_000);
    assert_eq!(tus.patch(&location, 3_000, &content[3_000..]).await.status(), 204);
    assert_eq!(video_status(&app, video_id).await, Some(VideoStatus::Processing));

    // The whole file at creation completes at once.
    let r = tus
        .req(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", FOX.len())
        .header("Content-Type", OCTETS)
        .header("Upload-Checksum", format!("sha1 {FOX_SHA1}"))
        .body(FOX)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "upload-offset"), Some(FOX.len().to_string().as_str()));
    assert_eq!(header(&r, "upload-expires"), None);
    assert_eq!(completed_events(&app).await.len(), 2);

    // A body with a bad checksum or too long creates nothing.
    let me = app.get("/api/v1/me", Some(&tus.token)).await.unwrap().json::<Value>().await.unwrap();
    let me: Id = me["id"].as_str().unwrap().parse().unwrap();
    let usage = || async { app.state().meta().uploads().owner_usage(me, now_ms()).await.unwrap() };
    let before = usage().await;
    let r = tus
        .req(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", 100)
        .header("Content-Type", OCTETS)
        .header("Upload-Checksum", format!("sha1 {FOX_SHA1}"))
        .body(b"not the fox".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 460);
    assert_eq!(header(&r, "location"), None);
    let r = tus
        .req(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", 3)
        .header("Content-Type", OCTETS)
        .body(b"four".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(usage().await, before);
    // A body of another type: 415.
    let r = tus
        .req(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", 100)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn checksums() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let (location, _) = tus.created(FOX.len() as u64 * 3).await;
    let patch = |offset: u64, body: &[u8], checksum: &str| {
        tus.req(Method::PATCH, &location)
            .header("Content-Type", OCTETS)
            .header("Upload-Offset", offset)
            .header("Upload-Checksum", checksum.to_owned())
            .body(body.to_vec())
            .send()
    };
    let n = FOX.len() as u64;
    // Mismatch: 460 and nothing kept.
    let mut wrong = FOX.to_vec();
    wrong[5] ^= 1;
    let r = patch(0, &wrong, &format!("sha1 {FOX_SHA1}")).await.unwrap();
    assert_eq!(r.status(), 460);
    assert_eq!(tus.offset(&location).await, 0);
    // Unsupported algorithm, malformed digest: 400.
    assert_eq!(patch(0, FOX, "crc32 AAAAAA==").await.unwrap().status(), 400);
    assert_eq!(patch(0, FOX, "sha1 not-base64!").await.unwrap().status(), 400);
    assert_eq!(patch(0, FOX, "sha1").await.unwrap().status(), 400);
    assert_eq!(tus.offset(&location).await, 0);
    // Correct sha1, md5; then a mismatch after good chunks truncates back to them.
    let r = patch(0, FOX, &format!("sha1 {FOX_SHA1}")).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "upload-offset"), Some(n.to_string().as_str()));
    assert_eq!(patch(n, FOX, &format!("md5 {FOX_MD5}")).await.unwrap().status(), 204);
    assert_eq!(patch(2 * n, &wrong, &format!("md5 {FOX_MD5}")).await.unwrap().status(), 460);
    assert_eq!(tus.offset(&location).await, 2 * n);
    let on_disk = std::fs::read(part_path(app.data_dir(), upload_id(&location))).unwrap();
    assert_eq!(on_disk, [FOX, FOX].concat());
    assert_eq!(patch(2 * n, FOX, &format!("sha1 {FOX_SHA1}")).await.unwrap().status(), 204);
    assert_eq!(tus.offset(&location).await, 3 * n);
}

#[tokio::test]
async fn sizes_past_the_length_and_the_maximum() {
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.max_size_bytes = 1000;
    })
    .await
    .unwrap();
    let tus = Tus::new(&app, "ana").await;
    assert_eq!(tus.create(1001, "").await.status(), 413);
    assert_eq!(tus.create(u64::MAX, "").await.status(), 413);
    assert_eq!(tus.create(0, "").await.status(), 400);
    let (location, _) = tus.created(1000).await;
    assert_eq!(tus.patch(&location, 0, &data(600)).await.status(), 204);
    // Declared length past the end: refused before any byte is written.
    assert_eq!(tus.patch(&location, 600, &data(401)).await.status(), 413);
    // Chunked, so the server only finds out while reading: still nothing kept.
    let stream =
        futures::stream::iter([data(300), data(300)].into_iter().map(Ok::<_, std::io::Error>));
    let r = tus
        .req(Method::PATCH, &location)
        .header("Content-Type", OCTETS)
        .header("Upload-Offset", 600)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(tus.offset(&location).await, 600);
    let on_disk = std::fs::read(part_path(app.data_dir(), upload_id(&location))).unwrap();
    assert_eq!(on_disk.len(), 600);
    assert_eq!(tus.patch(&location, 600, &data(400)).await.status(), 204);
    assert_eq!(tus.offset(&location).await, 1000);
}

#[tokio::test]
async fn bad_creation_headers_are_400() {
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.max_metadata_bytes = 200;
    })
    .await
    .unwrap();
    let tus = Tus::new(&app, "ana").await;
    let bad = [
        "title !!!notbase64".to_owned(),
        metadata(&[("title", "bell\u{7}ring")]),
        metadata(&[("filename", "two\nlines.mp4")]),
        metadata(&[("title", "a"), ("title", "b")]),
        format!("title {}", STANDARD.encode([0xff, 0xfe])),
        metadata(&[("tags", "fine, not-fine")]),
        metadata(&[("description", &"x".repeat(300))]),
        ",title QQ==".to_owned(),
    ];
    for meta in &bad {
        let r = tus.create(10, meta).await;
        assert_eq!(r.status(), 400, "{meta}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{meta}");
    }
    // Missing, malformed or deferred length.
    let r = tus.req(Method::POST, "/api/v1/uploads").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = tus.req(Method::POST, "/api/v1/uploads").header("Upload-Length", "-1").send().await;
    assert_eq!(r.unwrap().status(), 400);
    let r = tus.req(Method::POST, "/api/v1/uploads").header("Upload-Defer-Length", "1").send();
    assert_eq!(r.await.unwrap().status(), 400);
    // Nothing was created by any of them; a title defaults to the filename.
    let (_, video) = tus.created(10).await;
    let v = app.state().meta().videos().by_id(video).await.unwrap().unwrap();
    assert_eq!(v.title, "clip.mp4");
    let r = tus.create(10, "").await;
    let video: Id = header(&r, "quicktok-video-id").unwrap().parse().unwrap();
    let v = app.state().meta().videos().by_id(video).await.unwrap().unwrap();
    assert_eq!(v.title, "Untitled");
}

#[tokio::test]
async fn quotas() {
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.max_concurrent_per_user = 2;
        c.uploads.user_quota_bytes = 1000;
    })
    .await
    .unwrap();
    let ana = Tus::new(&app, "ana").await;
    let bob = Tus::new(&app, "bob").await;
    let (first, _) = ana.created(600).await;
    // Over the byte quota: 413 with a clear message.
    let r = ana.create(401, "").await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("quota"), "{body}");
    let (_second, _) = ana.created(400).await;
    // Over the count: 429.
    let r = ana.create(1, "").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
    // Quotas are per user.
    bob.created(1000).await;
    // Finishing (or terminating) one frees its share.
    assert_eq!(ana.patch(&first, 0, &data(600)).await.status(), 204);
    let (third, _) = ana.created(600).await;
    assert_eq!(ana.create(1, "").await.status(), 429);
    assert_eq!(ana.delete(&third).await.status(), 204);
    ana.created(600).await;
}

#[tokio::test]
async fn only_the_owner_sees_an_upload() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let ana = Tus::new(&app, "ana").await;
    let bob = Tus::new(&app, "bob").await;
    let (location, video) = ana.created(10).await;
    assert_eq!(bob.head(&location).await.status(), 404);
    assert_eq!(bob.patch(&location, 0, b"0123456789").await.status(), 404);
    assert_eq!(bob.delete(&location).await.status(), 404);
    let r = app.client.head(app.url(&location)).header("Tus-Resumable", "1.0.0").send().await;
    assert_eq!(r.unwrap().status(), 401);
    // Unknown and malformed ids look the same.
    assert_eq!(ana.head("/api/v1/uploads/12345").await.status(), 404);
    assert_eq!(ana.head("/api/v1/uploads/nope").await.status(), 404);
    assert_eq!(ana.offset(&location).await, 0);
    assert_eq!(video_status(&app, video).await, Some(VideoStatus::Uploading));
}

#[tokio::test]
async fn termination() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let (location, video) = tus.created(100).await;
    assert_eq!(tus.patch(&location, 0, &data(50)).await.status(), 204);
    let path = part_path(app.data_dir(), upload_id(&location));
    assert!(path.exists());
    let r = tus.delete(&location).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "tus-resumable"), Some("1.0.0"));
    assert!(!path.exists());
    assert_eq!(tus.head(&location).await.status(), 404);
    assert_eq!(tus.patch(&location, 50, &data(50)).await.status(), 404);
    assert_eq!(tus.delete(&location).await.status(), 404);
    // The video never existed for anyone: its row is gone.
    assert_eq!(video_status(&app, video).await, None);
}

#[tokio::test]
async fn expiration() {
    // A one-second expiry.
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.expiry_hours = 1.0 / 3600.0;
        c.uploads.max_concurrent_per_user = 1;
    })
    .await
    .unwrap();
    let tus = Tus::new(&app, "ana").await;
    // A completed upload never expires.
    let (done, done_video) = tus.created(10).await;
    assert_eq!(tus.patch(&done, 0, &data(10)).await.status(), 204);
    let (location, video) = tus.created(100).await;
    assert_eq!(tus.patch(&location, 0, &data(10)).await.status(), 204);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Expired: 410 until cleaned up; it no longer counts against the quota.
    assert_eq!(tus.head(&location).await.status(), 410);
    assert_eq!(tus.patch(&location, 10, &data(10)).await.status(), 410);
    let (other, _) = tus.created(5).await;
    tus.delete(&other).await;

    let report = app.state().cleanup_expired_uploads(now_ms()).await.unwrap();
    assert_eq!(report.uploads_removed, 1);
    assert_eq!(tus.head(&location).await.status(), 404);
    assert!(!part_path(app.data_dir(), upload_id(&location)).exists());
    assert_eq!(video_status(&app, video).await, None);
    assert_eq!(tus.offset(&done).await, 10);
    assert_eq!(video_status(&app, done_video).await, Some(VideoStatus::Processing));
    let report = app.state().cleanup_expired_uploads(now_ms()).await.unwrap();
    assert_eq!(report.uploads_removed, 0);

    // Default expiry (24 h): only a cleanup "a day later" removes it.
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let (location, _) = tus.created(100).await;
    assert_eq!(app.state().cleanup_expired_uploads(now_ms()).await.unwrap().uploads_removed, 0);
    let later = now_ms() + 25 * 3_600_000;
    assert_eq!(app.state().cleanup_expired_uploads(later).await.unwrap().uploads_removed, 1);
    assert_eq!(tus.head(&location).await.status(), 404);
}

#[tokio::test]
async fn cut_off_body_keeps_what_arrived_and_the_lock_serialises_writers() {
    let app = AppSandbox::start_with(|c| {
        protocol_only(c);
        c.uploads.lock_wait_ms = 200;
    })
    .await
    .unwrap();
    let tus = Tus::new(&app, "ana").await;
    let content = data(1000);
    let (location, video) = tus.created(1000).await;

    // 400 of a declared 1000 bytes arrive; the connection stays open meanwhile.
    let stream = partial_patch(&app, &tus.token, &location, 0, 1000, &content[..400]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another writer meanwhile: refused (423) after the lock wait; HEAD still answers
    // with the acknowledged offset.
    let r = tus.patch(&location, 0, &content[..10]).await;
    assert_eq!(r.status(), 423);
    assert_eq!(tus.delete(&location).await.status(), 423);
    assert_eq!(tus.offset(&location).await, 0);
    // The client goes away: exactly the bytes received count.
    drop(stream);
    wait_for_offset(&tus, &location, 400).await;
    let on_disk = std::fs::read(part_path(app.data_dir(), upload_id(&location))).unwrap();
    assert!(on_disk == content[..400], "stored bytes differ");

    // A stale resume is refused, the right one completes the upload.
    assert_eq!(tus.patch(&location, 0, &content).await.status(), 409);
    let r = tus.patch(&location, 400, &content[400..]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "upload-offset"), Some("1000"));
    let on_disk = std::fs::read(part_path(app.data_dir(), upload_id(&location))).unwrap();
    assert!(on_disk == content, "stored bytes differ");
    assert_eq!(video_status(&app, video).await, Some(VideoStatus::Processing));

    // A cut-off chunk with a checksum cannot be verified: it is dropped whole.
    let (location, _) = tus.created(100).await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: {OCTETS}\r\nUpload-Offset: 0\r\n\
         Upload-Checksum: sha1 {FOX_SHA1}\r\nContent-Length: {}\r\n\r\n",
        tus.token,
        FOX.len()
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    raw.write_all(&FOX[..20]).await.unwrap();
    raw.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(raw);
    // Wait until the lock is free again (the server noticed), then check.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = tus.patch(&location, 0, b"").await;
        if r.status() == 204 {
            break;
        }
        assert_eq!(r.status(), 423);
        assert!(Instant::now() < deadline);
    }
    assert_eq!(tus.offset(&location).await, 0);
}

#[tokio::test]
async fn resumes_across_a_restart() {
    let app = AppSandbox::start_with(protocol_only).await.unwrap();
    let tus = Tus::new(&app, "ana").await;
    let token = tus.token.clone();
    let content = data(300_000);
    let (location, video) = tus.created(content.len() as u64).await;
    assert_eq!(tus.patch(&location, 0, &content[..123_456]).await.status(), 204);
    // A PATCH cut off just before the restart keeps its bytes too.
    let stream =
        partial_patch(&app, &token, &location, 123_456, 100_000, &content[123_456..150_000]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    wait_for_offset(&tus, &location, 150_000).await;
    drop(tus);

    let config = app.config.clone();
    let dir = app.stop().await.unwrap();
    let app = AppSandbox::start_in(dir, config).await.unwrap();
    let tus = Tus { app: &app, token };
    let r = tus.head(&location).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "upload-offset"), Some("150000"));
    assert_eq!(header(&r, "upload-length"), Some("300000"));
    assert_eq!(tus.patch(&location, 150_000, &content[150_000..]).await.status(), 204);
    let on_disk = std::fs::read(part_path(app.data_dir(), upload_id(&location))).unwrap();
    assert!(on_disk == content, "stored bytes differ");
    assert_eq!(video_status(&app, video).await, Some(VideoStatus::Processing));
    assert_eq!(completed_events(&app).await.len(), 1);
}
