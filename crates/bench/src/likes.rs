//! The like write path (issue #5's benchmark): likes/s over HTTP with the counter service,
//! the lag until the stored counters are exact, and the same like writes at the repository
//! level with write-behind counters vs a synchronous counter update per like (the peer).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicktok_core::Id;
use quicktok_meta::{MetaStore, NewUser, NewVideo, VideoStatus};
use quicktok_social::{CounterKey, Metric};

use crate::percentile;

/// Users who like, videos they like (Zipf-popular), concurrent HTTP clients.
const USERS: usize = 64;
const VIDEOS: usize = 500;
const CLIENTS: usize = 32;

/// One xorshift stream (reproducible runs, no dependency).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` distinct (user index, video index) pairs, videos drawn Zipf-like (a few hot
/// videos take most likes, as on a real platform), users uniformly.
fn like_pairs(count: usize, seed: u64) -> Vec<(usize, usize)> {
    let weights: Vec<f64> = (0..VIDEOS).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(VIDEOS);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let mut rng = Rng(seed);
    let mut seen = std::collections::HashSet::new();
    let mut pairs = Vec::with_capacity(count);
    let capacity = USERS * VIDEOS;
    while pairs.len() < count.min(capacity) {
        let video = cumulative.partition_point(|c| *c < rng.next_f64()).min(VIDEOS - 1);
        let user = ((rng.next_f64() * USERS as f64) as usize).min(USERS - 1);
        if seen.insert((user, video)) {
            pairs.push((user, video));
        }
    }
    pairs
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `VIDEOS` published videos by one author, straight in the store.
async fn published_videos(meta: &MetaStore, author: Id, ids: Vec<Id>) -> anyhow::Result<Vec<Id>> {
    let now = now_ms();
    for (i, &id) in ids.iter().enumerate() {
        let videos = meta.videos();
        videos
            .create(NewVideo {
                id,
                author_id: author,
                title: format!("bench clip {i}"),
                description: String::new(),
                tags: vec![],
                created_at_ms: now,
            })
            .await?;
        videos.set_media_info(id, 15_000, 720, 1280, now).await?;
        videos.set_status(id, VideoStatus::Published, None, now).await?;
    }
    Ok(ids)
}

struct HttpFigures {
    likes: usize,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    api_exact: bool,
    store_lag_ms: f64,
    flush_interval_ms: u64,
}

/// Likes over HTTP on a whole app: throughput, latency, and how long after the last answer
/// the persisted `counters` rows equal the like rows.
async fn http_run(likes: usize) -> anyhow::Result<HttpFigures> {
    let app = crate::app::BenchApp::start().await?;
    let flush_interval_ms = app.config.social.counters.flush_interval_ms;
    let (base, state) = (app.base.clone(), app.state.clone());
    let client = reqwest::Client::new();

    let mut tokens = Vec::with_capacity(USERS);
    let mut author = None;
    for u in 0..USERS {
        let creds = serde_json::json!({"username": format!("liker{u}"), "password": "correct horse battery staple"});
        let r = client.post(format!("{base}/api/v1/auth/register")).json(&creds).send().await?;
        anyhow::ensure!(r.status() == 201, "register: {}", r.status());
        let body: serde_json::Value = r.json().await?;
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        if author.is_none() {
            author = body["user"]["id"].as_str().and_then(|s| s.parse::<Id>().ok());
        }
        tokens.push(token);
    }
    let author = author.ok_or_else(|| anyhow::anyhow!("no user id"))?;
    let ids = (0..VIDEOS).map(|_| state.next_id()).collect();
    let videos = published_videos(state.meta(), author, ids).await?;
    let pairs = like_pairs(likes, 0x5eed_1111);
    let mut truth: HashMap<Id, i64> = HashMap::new();
    for (_, v) in &pairs {
        *truth.entry(videos[*v]).or_default() += 1;
    }

    let pairs = Arc::new(pairs);
    let tokens = Arc::new(tokens);
    let videos = Arc::new(videos);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base) = (client.clone(), base.clone());
        let (pairs, tokens, videos, next) =
            (pairs.clone(), tokens.clone(), videos.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(u, v)) = pairs.get(i) else { break };
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/api/v1/videos/{}/like", videos[v]))
                    .bearer_auth(&tokens[u])
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "like: {}", r.status());
                r.bytes().await?;
                times.push(t.elapsed());
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let done = Instant::now();

    // The API's answer (stored value plus pending deltas) is exact at once on one node.
    let mut api_exact = true;
    for (video, want) in &truth {
        let body: serde_json::Value = client
            .get(format!("{base}/api/v1/videos/{video}"))
            .bearer_auth(&tokens[0])
            .send()
            .await?
            .json()
            .await?;
        api_exact &= body["counts"]["likes"].as_i64() == Some(*want);
    }
    // The store catches up when the write-behind flush runs.
    let keys: Vec<(Id, i64)> = truth.iter().map(|(k, v)| (*k, *v)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let store_lag = loop {
        let stored = state
            .meta()
            .counters()
            .get(
                &keys
                    .iter()
                    .map(|(id, _)| quicktok_meta::CounterKey {
                        subject: "video",
                        id: *id,
                        metric: "likes",
                    })
                    .collect::<Vec<_>>(),
            )
            .await?;
        if stored.iter().zip(&keys).all(|(s, (_, want))| s == want) {
            break done.elapsed();
        }
        anyhow::ensure!(Instant::now() < deadline, "stored counters never became exact");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    app.stop().await?;
    times.sort();
    Ok(HttpFigures {
        likes: times.len(),
        per_s: times.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        api_exact,
        store_lag_ms: store_lag.as_secs_f64() * 1000.0,
        flush_interval_ms,
    })
}

/// Likes/s at the repository level, `writers` concurrent tasks: the like row plus either
/// the counter service's in-process add (`write_behind`) or a synchronous `counters` upsert.
async fn repository_run(likes: usize, writers: usize, write_behind: bool) -> anyhow::Result<f64> {
    let app = crate::app::BenchApp::start().await?;
    let (state, counters) = (app.state.clone(), app.counters.clone());
    let meta = state.meta().clone();
    let now = now_ms();
    let mut users = Vec::with_capacity(USERS);
    for u in 0..USERS {
        let id = state.next_id();
        meta.users()
            .create(NewUser {
                id,
                username: format!("repo{u}"),
                password_hash: "x".into(),
                created_at_ms: now,
            })
            .await?;
        users.push(id);
    }
    let ids = (0..VIDEOS).map(|_| state.next_id()).collect();
    let videos = published_videos(&meta, users[0], ids).await?;
    let pairs = Arc::new(like_pairs(likes, 0x5eed_2222));
    let (users, videos) = (Arc::new(users), Arc::new(videos));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (meta, counters) = (meta.clone(), counters.clone());
        let (pairs, users, videos, next) =
            (pairs.clone(), users.clone(), videos.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(u, v)) = pairs.get(i) else { break };
                if meta.social().like(users[u], videos[v], now).await? {
                    if write_behind {
                        counters.add(CounterKey::video(videos[v], Metric::Likes), 1);
                    } else {
                        let key = quicktok_meta::CounterKey {
                            subject: "video",
                            id: videos[v],
                            metric: "likes",
                        };
                        meta.counters().add(&[(key, 1)]).await?;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let per_s = pairs.len() as f64 / started.elapsed().as_secs_f64();
    app.stop().await?;
    Ok(per_s)
}

/// The like section of the report.
pub async fn likes_section(scaled: impl Fn(usize) -> usize) -> anyhow::Result<String> {
    eprintln!("likes");
    let likes = scaled(20_000).min(USERS * VIDEOS / 2);
    let http = http_run(likes).await?;
    let behind = repository_run(likes, 8, true).await?;
    let synchronous = repository_run(likes, 8, false).await?;
    let mut report = String::new();
    writeln!(report, "## Likes (write path with the counter service)\n")?;
    writeln!(
        report,
        "A whole app on the embedded SQLite store; {} distinct likes by {USERS} users over {VIDEOS} videos with Zipf-like popularity (a few hot videos take most likes), {CLIENTS} concurrent HTTP clients (keep-alive).\n",
        http.likes
    )?;
    writeln!(report, "| measure | figure |")?;
    writeln!(report, "|---|---:|")?;
    writeln!(report, "| `POST /api/v1/videos/{{id}}/like`, likes/s | {:.0} |", http.per_s)?;
    writeln!(report, "| same, p50 / p99 ms | {:.2} / {:.2} |", http.p50_ms, http.p99_ms)?;
    writeln!(
        report,
        "| like counts in `GET /api/v1/videos/{{id}}` exact right after the last like | {} |",
        if http.api_exact { "yes" } else { "no" }
    )?;
    writeln!(
        report,
        "| lag until the stored `counters` rows are exact (write-behind every {} ms), ms | {:.0} |",
        http.flush_interval_ms, http.store_lag_ms
    )?;
    writeln!(
        report,
        "\nRepository level, same likes, 8 writers: like row + counter service (write-behind) **{behind:.0} likes/s** vs like row + synchronous counter upsert per like **{synchronous:.0} likes/s**: **{:.2}x**. The synchronous peer serialises every like of a hot video on one counter row; the counter service adds in memory and writes one summed delta per key per flush.",
        behind / synchronous.max(f64::MIN_POSITIVE)
    )?;
    Ok(report)
}
