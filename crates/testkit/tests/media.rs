//! Integration tests of blob delivery over HTTP: signed URLs, Range (single, suffix,
//! multi, bogus), conditional requests, caching headers, HEAD, and tiering moves that keep
//! URLs working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use futures::stream;
use quicktok_blob::{BlobStore, StorageClass};
use quicktok_core::Id;
use quicktok_testkit::AppSandbox;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn put(store: &dyn BlobStore, id: u64, bytes: &[u8]) {
    let chunks: Vec<std::io::Result<Bytes>> =
        bytes.chunks(10_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    store
        .put(
            Id(id),
            StorageClass::Hot,
            bytes.len() as u64,
            "video/mp4",
            Box::pin(stream::iter(chunks)),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn whole_range_suffix_and_multi_range() {
    let app = AppSandbox::start().await.unwrap();
    let data = content(300_000);
    put(app.blobs().as_ref(), 1, &data).await;
    let url = app.url(&app.media_path(Id(1)));

    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    // Cacheable as long as the signed URL lives (a copy must not outlive the signature).
    let exp: i64 = url.split("exp=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let fresh = exp - now.as_secs() as i64;
    let cache = h["cache-control"].to_str().unwrap();
    let max_age: i64 = cache
        .strip_prefix("public, max-age=")
        .and_then(|c| c.strip_suffix(", immutable"))
        .unwrap_or_else(|| panic!("{cache}"))
        .parse()
        .unwrap();
    assert!((fresh - 5..=fresh).contains(&max_age), "{cache} for a URL valid {fresh} s more");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["content-length"], "300000");
    assert!(h["etag"].to_str().unwrap().starts_with('"'));
    assert!(h.contains_key("last-modified"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    // A range crossing a 64 KiB block boundary.
    let r = app.client.get(&url).header("range", "bytes=65530-65545").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 65530-65545/300000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[65530..65546]);

    let r = app.client.get(&url).header("range", "bytes=-100").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[299_900..]);

    let r = app.client.get(&url).header("range", "bytes=0-9,200000-200009").send().await.unwrap();
    assert_eq!(r.status(), 206);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary = ctype.strip_prefix("multipart/byteranges; boundary=").unwrap().to_owned();
    let declared: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Content-Range: bytes 0-9/300000"));
    assert!(text.contains("Content-Range: bytes 200000-200009/300000"));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    let first = body.windows(10).position(|w| w == &data[0..10]).unwrap();
    assert!(first > 0);
    assert!(body.windows(10).any(|w| w == &data[200_000..200_010]));
}

#[tokio::test]
async fn bogus_ranges_never_crash() {
    let app = AppSandbox::start().await.unwrap();
    let data = content(1000);
    put(app.blobs().as_ref(), 2, &data).await;
    let url = app.url(&app.media_path(Id(2)));
    let r = app.client.get(&url).header("range", "bytes=5000-6000").send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1000");
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "range_not_satisfiable");
    for bogus in [
        "bytes=abc",
        "bytes=9-1",
        "lines=1-2",
        "bytes=--1",
        "bytes=1-2-3",
        &format!("bytes={}", "0-0,".repeat(500)),
    ] {
        let r = app.client.get(&url).header("range", bogus).send().await.unwrap();
        assert_eq!(r.status(), 200, "{bogus}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }
}

#[tokio::test]
async fn conditional_requests_and_head() {
    let app = AppSandbox::start().await.unwrap();
    put(app.blobs().as_ref(), 3, &content(5000)).await;
    let url = app.url(&app.media_path(Id(3)));
    let r = app.client.get(&url).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_owned();

    let r = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let r = app.client.get(&url).header("if-modified-since", &modified).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = app.client.get(&url).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // If-Range with a stale validator: the whole body, not the range.
    let r = app
        .client
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);

    let r = app.client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "5000");
}

#[tokio::test]
async fn urls_must_be_signed_and_fresh() {
    let app = AppSandbox::start().await.unwrap();
    put(app.blobs().as_ref(), 4, &content(100)).await;
    let good = app.media_path(Id(4));
    assert_eq!(app.client.get(app.url(&good)).send().await.unwrap().status(), 200);
    // Another blob's signature, a tampered expiry, no signature, an expired URL.
    let other = app.media_path(Id(5)).replace("/media/5", "/media/4");
    let tampered = good.replace("exp=", "exp=9");
    let expired = format!("/media/4?exp=1&sig={}", good.split("sig=").nth(1).unwrap());
    for path in [other.as_str(), tampered.as_str(), "/media/4", expired.as_str()] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert!(matches!(r.status().as_u16(), 403 | 422), "{path}: {}", r.status());
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(e["error"].is_string());
    }
    let missing = app.media_path(Id(999));
    assert_eq!(app.client.get(app.url(&missing)).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn url_keeps_working_across_class_moves() {
    let app = AppSandbox::start().await.unwrap();
    let data = content(200_000);
    put(app.blobs().as_ref(), 6, &data).await;
    let url = app.url(&app.media_path(Id(6)));
    let before = app.client.get(&url).send().await.unwrap();
    let etag = before.headers()["etag"].clone();
    for class in [StorageClass::Cold, StorageClass::Warm, StorageClass::Hot] {
        // Read while moving and after.
        let reader = {
            let client = app.client.clone();
            let url = url.clone();
            tokio::spawn(
                async move { client.get(url).send().await.unwrap().bytes().await.unwrap() },
            )
        };
        let meta = app.blobs().set_class(Id(6), class).await.unwrap();
        assert_eq!(meta.class, class);
        assert_eq!(reader.await.unwrap().as_ref(), &data[..]);
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["etag"], etag, "content did not change, neither does the validator");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    }
}
