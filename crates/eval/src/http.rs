//! The For-You latency as a client sees it: a whole QuickTok app (every role, temporary
//! data directory, port 0, no rate limits) whose metadata store is bulk-loaded with the
//! latency benchmark's world and whose event log holds its engagement before start, so the
//! app's own recommender replays and trains on it; then `GET /api/v1/feed/for-you` over
//! keep-alive HTTP, signed in and anonymous, one client and four at once.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use quicktok_core::{Clock, Event, Id, SOCIAL_TOPIC, Shutdown, SystemClock, WATCHES_TOPIC};
use quicktok_log::{EventLog, FileLog, NewRecord};
use quicktok_meta::{MetaConfig, MetaStore, SqliteSynchronous};
use quicktok_rank::{QualifiedView, VIEWS_TOPIC, Window};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::latency::percentile;

const DAY_MS: i64 = 86_400_000;
/// Topics (one tag each); creators keep to one.
pub(crate) const TOPICS: usize = 50;
/// Users who post, the first ids.
pub(crate) const CREATORS: u64 = 2_000;
/// Video ids start here (users are 1..=users).
const VIDEO_BASE: u64 = 10_000_000;
/// Every clip is 15 s: four segments per rendition.
const CLIP_MS: u64 = 15_000;
/// Follows per user: this many creators of their favourite topics and some at random.
const TOPIC_FOLLOWS: usize = 24;
const RANDOM_FOLLOWS: usize = 8;
/// Signed-in users the requests are spread over.
pub(crate) const SAMPLE_USERS: usize = 500;
const CONCURRENT_CLIENTS: usize = 4;

/// Latencies of one kind of request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_s: f64,
}

/// What was measured, and what the app said about itself.
#[derive(Debug, Clone, Default)]
pub struct HttpReport {
    pub users: usize,
    pub videos: usize,
    pub follows: usize,
    pub watches: usize,
    pub likes: usize,
    pub load_secs: f64,
    pub start_secs: f64,
    pub settle_secs: f64,
    pub trained_users: f64,
    pub trained_videos: f64,
    pub trained_interactions: f64,
    pub catalog: usize,
    pub trending: usize,
    pub page_size: usize,
    pub first_page: Timing,
    pub second_page: Timing,
    pub anonymous: Timing,
    pub concurrent: Timing,
    /// Answers that were not 200, shorter than a page, or not real clips.
    pub bad_answers: usize,
    /// `degraded` reasons seen, with counts.
    pub degraded: Vec<(String, usize)>,
    /// Mean size of a page's JSON body.
    pub body_kb: f64,
    /// Mean ms per stage of the signed-in pages of one client (`recommend_stage_seconds`
    /// from the app's `/metrics`, before and after): relations, rank, views, covers.
    pub stages_ms: Vec<(&'static str, f64)>,
}

/// Latencies and throughput: `wall` for clients running at once; `None` for one client in
/// sequence, whose throughput is one over the mean latency.
fn timing(mut times: Vec<Duration>, wall: Option<Duration>) -> Timing {
    times.sort();
    let wall = wall.unwrap_or_else(|| times.iter().sum());
    Timing {
        requests: times.len(),
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        per_s: times.len() as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE),
    }
}

/// The world both halves of the benchmark agree on: clip `i` (0-based) is of topic
/// `i % TOPICS`, by one of that topic's creators, published over the 30 days up to `now`.
struct World {
    users: u64,
    videos: u64,
    now: i64,
    /// Each user's three favourite topics.
    favourites: Vec<[usize; 3]>,
}

impl World {
    fn video_id(&self, i: u64) -> Id {
        Id(VIDEO_BASE + i)
    }
    fn topic(i: u64) -> usize {
        (i % TOPICS as u64) as usize
    }
    /// Creators `c` with `(c - 1) % TOPICS == topic` post that topic.
    fn author(&self, i: u64) -> Id {
        let per_topic = CREATORS / TOPICS as u64;
        Id(1 + Self::topic(i) as u64 + TOPICS as u64 * ((i / TOPICS as u64) % per_topic))
    }
    fn published_at(&self, i: u64) -> i64 {
        self.now - 30 * DAY_MS + (i as i64) * (30 * DAY_MS / self.videos as i64)
    }
}

/// Rendition JSON as the pipeline stores it: three muxed H.264 rungs of a 15 s vertical clip.
fn rendition_specs() -> anyhow::Result<Vec<(String, i32, i64, String)>> {
    use quicktok_media::{Rendition, Rung, Segment, VideoCodec};
    let mut out = Vec::new();
    for &(short, kbps) in quicktok_media::STANDARD_RUNGS {
        let (width, height) = (short, short * 16 / 9 / 2 * 2);
        let name = format!("{short}p");
        let segments = (0..4)
            .map(|n| Segment {
                path: format!("{name}/seg{n:05}.m4s").into(),
                duration_ms: if n < 3 { 4_000 } else { CLIP_MS - 12_000 },
                size_bytes: u64::from(kbps) * 4_000 / 8,
            })
            .collect();
        let bandwidth = u64::from(kbps) * 1_200;
        let r = Rendition {
            rung: Rung {
                name: name.clone(),
                codec: VideoCodec::H264,
                width,
                height,
                video_kbps: kbps,
                max_kbps: kbps * 3 / 2,
            },
            dir: name.clone().into(),
            init: format!("{name}/init.mp4").into(),
            segments,
            bandwidth,
            average_bandwidth: u64::from(kbps) * 1_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            width,
            height,
            fps: 30.0,
            has_audio: true,
            duration_ms: CLIP_MS,
            growing: false,
            truncated: false,
        };
        out.push((name, height as i32, bandwidth as i64, serde_json::to_string(&r)?));
    }
    Ok(out)
}

/// Users, creators' clips with tags and renditions, follows and activity, straight into the
/// app's store before it starts. Returns the number of follows.
async fn load_store(
    world: &World,
    config: &MetaConfig,
    dir: &Path,
    rng: &mut StdRng,
) -> anyhow::Result<usize> {
    // Few huge transactions: synchronous=NORMAL while loading; the app reopens with its own.
    let loading = MetaConfig { sqlite_synchronous: SqliteSynchronous::Normal, ..config.clone() };
    let meta = MetaStore::connect(&loading, dir).await?;
    let bulk = meta.bulk();
    let users: Vec<Id> = (1..=world.users).map(Id).collect();
    bulk.users(&users, world.now - 60 * DAY_MS).await?;
    let specs = rendition_specs()?;
    let chunk = 10_000u64;
    for start in (0..world.videos).step_by(chunk as usize) {
        let range = start..(start + chunk).min(world.videos);
        let videos: Vec<(Id, Id, i64)> = range
            .clone()
            .map(|i| (world.video_id(i), world.author(i), world.published_at(i)))
            .collect();
        bulk.published_videos(&videos).await?;
        let tags: Vec<(Id, String)> = range
            .clone()
            .map(|i| (world.video_id(i), format!("topic{}", World::topic(i))))
            .collect();
        bulk.video_tags(&tags).await?;
        let renditions: Vec<(Id, String, i32, i64, String, i64)> = range
            .flat_map(|i| {
                specs.iter().map(move |(name, height, bandwidth, spec)| {
                    let at = world.published_at(i);
                    (world.video_id(i), name.clone(), *height, *bandwidth, spec.clone(), at)
                })
            })
            .collect();
        bulk.renditions(&renditions).await?;
    }
    let per_topic = CREATORS / TOPICS as u64;
    let mut follows = Vec::new();
    let mut link = 1u64 << 40;
    for (u, favourites) in (1..=world.users).zip(&world.favourites) {
        let mut chosen = HashSet::new();
        while chosen.len() < TOPIC_FOLLOWS {
            let topic = favourites[rng.gen_range(0..3)] as u64;
            chosen.insert(1 + topic + TOPICS as u64 * rng.gen_range(0..per_topic));
        }
        while chosen.len() < TOPIC_FOLLOWS + RANDOM_FOLLOWS {
            chosen.insert(rng.gen_range(1..=CREATORS));
        }
        chosen.remove(&u);
        for c in chosen {
            link += 1;
            follows.push((Id(u), Id(c), Id(link), world.now - rng.gen_range(1..30 * DAY_MS)));
        }
    }
    for batch in follows.chunks(50_000) {
        bulk.follows(batch).await?;
    }
    let active: Vec<(Id, i64)> = users.iter().map(|&u| (u, world.now - 3_600_000)).collect();
    bulk.activity(&active).await?;
    meta.close().await;
    Ok(follows.len())
}

/// The engagement of the service-level benchmark, as the API would have logged it over the
/// last 20 hours: each completed watch a `VideoWatched` and a qualified view, every fourth
/// also a like. Returns (watches, likes).
async fn fill_log(
    world: &World,
    config: &quicktok_log::LogConfig,
    dir: &Path,
    per_user: usize,
    rng: &mut StdRng,
) -> anyhow::Result<(usize, usize)> {
    let per_topic = world.videos / TOPICS as u64;
    let mut events = Vec::with_capacity(world.users as usize * per_user);
    for (u, favourites) in (1..=world.users).zip(&world.favourites) {
        for k in 0..per_user {
            let topic = favourites[k % 3] as u64;
            // Power-law popularity within the topic (rank r with weight ~ 1/r), the ranks
            // spread over the topic's clips so popularity does not follow age.
            let r = (per_topic as f64).powf(rng.r#gen::<f64>()) as u64 % per_topic;
            let i = topic + TOPICS as u64 * ((r * 7_919) % per_topic);
            let at = world.now - 20 * 3_600_000 + rng.gen_range(0..20 * 3_600_000 - 60_000);
            events.push((at, u, i, k % 4 == 0));
        }
    }
    events.sort_unstable();
    let log = FileLog::open(dir.join("log"), config.clone()).await?;
    let (mut watches, mut views, mut social) = (Vec::new(), Vec::new(), Vec::new());
    let mut likes = 0;
    for &(at, u, i, liked) in &events {
        let video = world.video_id(i);
        let watched = Event::VideoWatched {
            video_id: video,
            user_id: Id(u),
            watched_ms: CLIP_MS,
            duration_ms: Some(CLIP_MS as i64),
            at_ms: at,
        };
        watches.push(NewRecord::new(at, watched.encode()));
        let tag = format!("topic{}", World::topic(i));
        views.push(QualifiedView::new(video, [tag], at).to_record()?);
        if liked {
            let like = Event::VideoLiked {
                video_id: video,
                author: world.author(i),
                user_id: Id(u),
                liked: true,
                at_ms: at + 1,
            };
            social.push(NewRecord::new(at + 1, like.encode()));
            likes += 1;
        }
    }
    // A tick at the end moves the rankers' watermark to now.
    views.push(NewRecord::new(world.now, quicktok_rank::encode_tick(world.now)?));
    for (topic, records) in [(WATCHES_TOPIC, watches), (VIEWS_TOPIC, views), (SOCIAL_TOPIC, social)]
    {
        let mut records = records;
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(10_000));
            log.append(topic, records).await?;
            records = rest;
        }
    }
    log.close().await?;
    Ok((events.len(), likes))
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The For-You handler's stages, as `recommend_stage_seconds` labels them.
const STAGES: [&str; 4] = ["relations", "rank", "views", "covers"];

/// (sum of seconds, count) of each stage in a `/metrics` text.
fn stage_totals(text: &str) -> Vec<(f64, f64)> {
    STAGES
        .iter()
        .map(|stage| {
            let series = format!("{{stage=\"{stage}\"}}");
            let sum = gauge(text, &format!("recommend_stage_seconds_sum{series}"));
            let count = gauge(text, &format!("recommend_stage_seconds_count{series}"));
            (sum, count)
        })
        .collect()
}

/// A gauge's value in the Prometheus text.
fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

/// One For-You page: its time, and whether it is a full page of real clips.
struct Answer {
    took: Duration,
    bytes: usize,
    good: bool,
    degraded: Option<String>,
    cursor: Option<String>,
}

async fn get_page(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    cursor: Option<&str>,
    page_size: usize,
) -> anyhow::Result<Answer> {
    let mut req = client.get(format!("{base}/api/v1/feed/for-you"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cursor {
        req = req.query(&[("cursor", c)]);
    }
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = started.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let items = json["items"].as_array().cloned().unwrap_or_default();
    // A real clip: an author with a name, a tag and playable renditions.
    let real = |v: &serde_json::Value| {
        v["author"]["username"].as_str().is_some_and(|s| !s.is_empty())
            && v["tags"].as_array().is_some_and(|t| !t.is_empty())
            && v["renditions"].as_array().is_some_and(|r| r.len() == 3)
    };
    Ok(Answer {
        took,
        bytes: body.len(),
        good: status == reqwest::StatusCode::OK
            && items.len() == page_size
            && items.iter().all(real),
        degraded: json["degraded"].as_str().map(str::to_owned),
        cursor: json["next_cursor"].as_str().map(str::to_owned),
    })
}

#[derive(Default)]
struct Tally {
    bad: usize,
    answers: usize,
    bytes: usize,
    degraded: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    fn note(&mut self, a: &Answer) {
        self.bad += usize::from(!a.good);
        self.answers += 1;
        self.bytes += a.bytes;
        if let Some(d) = &a.degraded {
            *self.degraded.entry(d.clone()).or_default() += 1;
        }
    }
}

/// Builds the world in a fresh app and times `requests` signed-in first and second pages,
/// as many anonymous pages, then four clients at once.
pub fn run(
    users: usize,
    videos: usize,
    per_user: usize,
    requests: usize,
) -> anyhow::Result<HttpReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(users, videos, per_user, requests))
}

async fn run_async(
    users: usize,
    videos: usize,
    per_user: usize,
    requests: usize,
) -> anyhow::Result<HttpReport> {
    // The recorder must exist before the app trains, or its training gauges are dropped.
    let _ = quicktok_api::metrics::handle();
    let dir = tempfile::tempdir()?;
    let mut config = quicktok::Config::default();
    config.server.data_dir = dir.path().to_owned();
    config.server.listen = "127.0.0.1:0".into();
    config.rate_limit.enabled = false;
    let mut rng = StdRng::seed_from_u64(8);
    let world = World {
        users: users as u64,
        videos: videos as u64,
        now: SystemClock.now_ms(),
        favourites: (0..users).map(|_| [0; 3].map(|_| rng.gen_range(0..TOPICS))).collect(),
    };
    let loading = Instant::now();
    eprintln!("latency over HTTP: loading {users} users, {videos} videos");
    let follows = load_store(&world, &config.meta, dir.path(), &mut rng).await?;
    let (watches, likes) = fill_log(&world, &config.log, dir.path(), per_user, &mut rng).await?;
    let load_secs = loading.elapsed().as_secs_f64();

    eprintln!("latency over HTTP: starting the app (replay and training)");
    let starting = Instant::now();
    let shutdown = Shutdown::new();
    let app = quicktok::App::start(config.clone(), shutdown.clone()).await?;
    let start_secs = starting.elapsed().as_secs_f64();
    let base = app.url().context("no api")?;
    let state = app.api_state().context("no api")?.clone();
    let running = tokio::spawn(app.run_until_stopped());
    let result = measure(&world, &config, &state, &base, requests, &mut rng).await;
    shutdown.cancel();
    running.await??;
    let mut report = result?;
    report.users = users;
    report.videos = videos;
    report.follows = follows;
    report.watches = watches;
    report.likes = likes;
    report.load_secs = load_secs;
    report.start_secs = start_secs;
    Ok(report)
}

async fn measure(
    world: &World,
    config: &quicktok::Config,
    state: &quicktok_api::AppState,
    base: &str,
    requests: usize,
    rng: &mut StdRng,
) -> anyhow::Result<HttpReport> {
    let settling = Instant::now();
    let rec = state.recommender().context("no recommender")?.clone();
    // The trending rankers replay the views topic in the background; then the other
    // consumers (notifications of the likes, play counts) finish theirs: wait until the
    // process is idle (under 10% of a core for two seconds running) so they do not bias
    // the timings.
    let mut idle = 0;
    let mut last = cpu_secs();
    let mut trending = 0;
    while settling.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_secs();
        let busy = match (last, now) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        };
        last = now;
        let top = state.trending().map(|h| h.top(Window::Day, 1000));
        trending = top.as_ref().filter(|t| t.caught_up).map_or(0, |t| t.videos.len());
        idle = if busy < 0.1 && trending > 0 { idle + 1 } else { 0 };
        if idle >= 2 {
            break;
        }
    }
    anyhow::ensure!(trending > 0, "the trending list never filled");
    let settle_secs = settling.elapsed().as_secs_f64();

    let client = reqwest::Client::builder().pool_max_idle_per_host(16).build()?;
    let metrics = client.get(format!("{base}/metrics")).send().await?.text().await?;
    let page_size = config.recommend.page_size;

    let secret = quicktok_api::auth::load_secret(&config.auth, &config.server.data_dir)
        .map_err(|e| anyhow::anyhow!("jwt secret: {}", e.message))?;
    let keys = quicktok_api::auth::TokenKeys::from_secret(&config.auth, &secret)
        .map_err(|e| anyhow::anyhow!("token keys: {}", e.message))?;
    let now_secs = world.now / 1000;
    let mut sample: Vec<u64> = (1..=world.users).collect();
    sample.shuffle(rng);
    sample.truncate(SAMPLE_USERS);
    let tokens: Vec<String> = sample
        .iter()
        .map(|&u| keys.issue(Id(u), now_secs, 3_600))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("issuing tokens: {}", e.message))?;

    // Warm the connection and the caches a server would have warm; not counted.
    for token in tokens.iter().take(50) {
        get_page(&client, base, Some(token.as_str()), None, page_size).await?;
    }
    eprintln!("latency over HTTP: measuring (settled in {settle_secs:.0} s)");
    let mut tally = Tally::default();
    let stages_before =
        stage_totals(&client.get(format!("{base}/metrics")).send().await?.text().await?);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..requests {
        let token = &tokens[rng.gen_range(0..tokens.len())];
        let a = get_page(&client, base, Some(token.as_str()), None, page_size).await?;
        tally.note(&a);
        first.push(a.took);
        let b =
            get_page(&client, base, Some(token.as_str()), a.cursor.as_deref(), page_size).await?;
        tally.note(&b);
        second.push(b.took);
    }
    let stages_after =
        stage_totals(&client.get(format!("{base}/metrics")).send().await?.text().await?);
    let stages_ms = STAGES
        .iter()
        .zip(stages_before.iter().zip(&stages_after))
        .map(|(stage, ((sum0, n0), (sum1, n1)))| (*stage, (sum1 - sum0) * 1000.0 / (n1 - n0)))
        .collect();
    let first_page = timing(first, None);
    let second_page = timing(second, None);
    let mut anon = Vec::new();
    for _ in 0..requests {
        let a = get_page(&client, base, None, None, page_size).await?;
        tally.note(&a);
        anon.push(a.took);
    }
    let anonymous = timing(anon, None);

    // Four clients at once, each with its own connection, signed-in first pages.
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CONCURRENT_CLIENTS {
        let (tokens, base) = (tokens.clone(), base.to_owned());
        let client = reqwest::Client::builder().build()?;
        let mut rng = StdRng::seed_from_u64(100 + c as u64);
        let n = requests / CONCURRENT_CLIENTS * 2;
        clients.spawn(async move {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let token = &tokens[rng.gen_range(0..tokens.len())];
                out.push(get_page(&client, &base, Some(token.as_str()), None, page_size).await?);
            }
            anyhow::Ok(out)
        });
    }
    let mut times = Vec::new();
    while let Some(answers) = clients.join_next().await {
        for a in answers?? {
            tally.note(&a);
            times.push(a.took);
        }
    }
    let concurrent = timing(times, Some(started.elapsed()));

    Ok(HttpReport {
        settle_secs,
        trained_users: gauge(&metrics, "recommend_trained_users"),
        trained_videos: gauge(&metrics, "recommend_trained_videos"),
        trained_interactions: gauge(&metrics, "recommend_trained_interactions"),
        catalog: rec.catalog_len(),
        trending,
        page_size,
        first_page,
        second_page,
        anonymous,
        concurrent,
        bad_answers: tally.bad,
        body_kb: tally.bytes as f64 / tally.answers.max(1) as f64 / 1000.0,
        stages_ms,
        degraded: tally.degraded.into_iter().collect(),
        ..HttpReport::default()
    })
}
