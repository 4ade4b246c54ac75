//! The search section: a generated corpus of short-video texts (mixed Chinese / English
//! titles and tags, words Zipf-distributed over a vocabulary built here) indexed by
//! `quicktok-search` (Tantivy + jieba) and by SQLite FTS5 with the trigram tokenizer, the
//! same fixed query mix timed on both, and the recall of each on the hand-labelled fixture
//! of `crates/search/tests/fixtures/relevance.json`.

use std::fmt::Write as _;
use std::time::Instant;

use quicktok_search::{SearchConfig, SearchIndex, VideoDoc, VideoQuery};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CHINESE: &[&str] = &[
    "美食",
    "旅行",
    "北京",
    "烤鸭",
    "上海",
    "小笼包",
    "猫咪",
    "狗狗",
    "舞蹈",
    "音乐",
    "搞笑",
    "教程",
    "做法",
    "日常",
    "生活",
    "健身",
    "跑步",
    "电影",
    "游戏",
    "手机",
    "评测",
    "开箱",
    "化妆",
    "穿搭",
    "宝宝",
    "学习",
    "英语",
    "编程",
    "汽车",
    "足球",
    "篮球",
    "风景",
    "日落",
    "咖啡",
    "火锅",
    "面条",
    "包子",
    "饺子",
    "奶茶",
    "蛋糕",
    "周末",
    "早餐",
    "夜市",
    "街头",
    "小吃",
    "探店",
    "成都",
    "重庆",
    "广州",
    "深圳",
    "西安",
    "杭州",
    "故宫",
    "长城",
    "海边",
    "露营",
    "徒步",
    "骑行",
    "摄影",
    "手工",
    "绘画",
    "唱歌",
    "吉他",
    "钢琴",
    "宠物",
    "训练",
    "减肥",
    "瑜伽",
    "家常菜",
    "红烧肉",
    "麻辣烫",
    "北京烤鸭",
    "四川火锅",
    "一日游",
    "攻略",
    "分享",
    "推荐",
    "挑战",
    "第一次",
    "真实",
    "记录",
    "校园",
    "毕业",
    "婚礼",
    "春节",
    "中秋",
];

const ENGLISH: &[&str] = &[
    "food",
    "travel",
    "vlog",
    "cooking",
    "recipe",
    "street",
    "dance",
    "music",
    "funny",
    "cats",
    "dogs",
    "running",
    "workout",
    "fitness",
    "review",
    "unboxing",
    "makeup",
    "fashion",
    "baby",
    "learning",
    "english",
    "coding",
    "cars",
    "football",
    "basketball",
    "sunset",
    "coffee",
    "hotpot",
    "noodles",
    "dumplings",
    "cake",
    "weekend",
    "breakfast",
    "night",
    "market",
    "beijing",
    "shanghai",
    "duck",
    "camping",
    "hiking",
    "cycling",
    "photography",
    "guitar",
    "piano",
    "pets",
    "training",
    "yoga",
    "challenge",
    "first",
    "time",
    "daily",
    "life",
    "tutorial",
    "tips",
    "best",
    "easy",
    "quick",
    "homemade",
    "spicy",
    "sweet",
    "trip",
    "city",
    "beach",
    "mountain",
    "river",
    "morning",
    "evening",
    "friends",
    "family",
    "school",
    "wedding",
    "festival",
    "game",
    "play",
    "live",
    "show",
    "story",
    "song",
    "cover",
    "how",
];

/// Zipf(1) sampling over a shuffled vocabulary.
struct Zipf {
    words: Vec<&'static str>,
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(rng: &mut StdRng) -> Zipf {
        let mut words: Vec<&'static str> = CHINESE.iter().chain(ENGLISH).copied().collect();
        // Fisher-Yates, so both languages are spread over the ranks.
        for i in (1..words.len()).rev() {
            let j = rng.gen_range(0..=i);
            words.swap(i, j);
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Zipf { words, cumulative }
    }

    fn sample(&self, rng: &mut StdRng) -> &'static str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen_range(0.0..total);
        let i = self.cumulative.partition_point(|c| *c < x).min(self.words.len() - 1);
        self.words[i]
    }
}

fn text(zipf: &Zipf, rng: &mut StdRng, words: usize) -> String {
    let mut out = String::new();
    for _ in 0..words {
        let w = zipf.sample(rng);
        // Chinese words run together as in real titles; English ones are spaced.
        let han = w.chars().next().is_some_and(quicktok_search::tokenizer::is_han);
        let last_han = out.chars().last().is_some_and(quicktok_search::tokenizer::is_han);
        let run_together = han && last_han;
        if !out.is_empty() && !run_together {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn corpus(n: usize) -> Vec<VideoDoc> {
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(&mut rng);
    (0..n as u64)
        .map(|id| {
            let title_words = rng.gen_range(3..8);
            let desc_words = rng.gen_range(5..15);
            let tags = (0..rng.gen_range(1..4)).map(|_| zipf.sample(&mut rng).to_owned()).collect();
            VideoDoc {
                id: id + 1,
                title: text(&zipf, &mut rng, title_words),
                description: text(&zipf, &mut rng, desc_words),
                tags,
                creator_id: rng.gen_range(1..10_000),
                creator: format!("creator{}", rng.gen_range(1..10_000)),
                published_at_ms: 1_800_000_000_000 - rng.gen_range(0..90 * 86_400_000i64),
                duration_ms: rng.gen_range(5_000..180_000),
                views: rng.gen_range(0..100_000),
                likes: rng.gen_range(0..5_000),
            }
        })
        .collect()
}

/// The fixed query mix: common and rare, Chinese words inside compounds, English with
/// stemming, mixed, and hashtags.
const QUERIES: &[&str] = &[
    "烤鸭",
    "北京烤鸭",
    "美食 vlog",
    "火锅",
    "周末 旅行",
    "猫咪",
    "red",
    "running",
    "dance music",
    "cooking recipe",
    "street food",
    "北京",
    "小吃",
    "coffee",
    "#美食",
    "#travel",
    "上海 小笼包",
    "sunset beach",
    "婚礼",
    "guitar cover",
];

fn open_fts(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
         CREATE VIRTUAL TABLE docs USING fts5(title, description, tags, creator, tokenize='trigram');",
    )?;
    Ok(db)
}

fn fts_insert(db: &mut rusqlite::Connection, docs: &[VideoDoc]) -> anyhow::Result<()> {
    let tx = db.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO docs (rowid, title, description, tags, creator) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for d in docs {
            insert.execute(rusqlite::params![
                d.id as i64,
                d.title,
                d.description,
                d.tags.join(" "),
                d.creator
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// FTS5's answer to a query: trigram MATCH for words of three characters or more (a
/// quoted substring), `LIKE` for shorter ones (trigrams cannot index them: a full scan),
/// ranked by FTS5's bm25 when MATCH is used.
fn fts_search(db: &rusqlite::Connection, q: &str, limit: usize) -> anyhow::Result<Vec<u64>> {
    let words: Vec<String> =
        q.split_whitespace().map(|w| w.trim_start_matches(['#', '@']).to_owned()).collect();
    let (long, short): (Vec<&String>, Vec<&String>) =
        words.iter().partition(|w| w.chars().count() >= 3);
    let like = "(title || ' ' || description || ' ' || tags || ' ' || creator) LIKE ?";
    let mut params: Vec<String> = Vec::new();
    let mut sql = String::from("SELECT rowid FROM docs WHERE ");
    let mut conditions = Vec::new();
    if !long.is_empty() {
        conditions.push("docs MATCH ?".to_owned());
        params.push(
            long.iter()
                .map(|w| format!("\"{}\"", w.replace('"', "")))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
    }
    for w in &short {
        conditions.push(like.to_owned());
        params.push(format!("%{w}%"));
    }
    sql.push_str(&conditions.join(" AND "));
    if !long.is_empty() {
        sql.push_str(" ORDER BY rank");
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, i64>(0))?;
    Ok(rows.filter_map(Result::ok).map(|id| id as u64).collect())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Timing {
    p50_ms: f64,
    p99_ms: f64,
    qps: f64,
}

fn time_queries(
    rounds: usize,
    mut run: impl FnMut(&str) -> anyhow::Result<usize>,
) -> anyhow::Result<Timing> {
    let mut lat = Vec::new();
    let started = Instant::now();
    for _ in 0..rounds {
        for q in QUERIES {
            let t = Instant::now();
            run(q)?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let total = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Ok(Timing {
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        qps: lat.len() as f64 / total,
    })
}

#[derive(serde::Deserialize)]
struct Fixture {
    now_ms: i64,
    docs: Vec<FixtureDoc>,
    queries: Vec<FixtureQuery>,
}

#[derive(serde::Deserialize)]
struct FixtureDoc {
    id: u64,
    title: String,
    description: String,
    tags: Vec<String>,
    creator: String,
    age_hours: i64,
    views: u64,
    likes: u64,
}

#[derive(serde::Deserialize)]
struct FixtureQuery {
    q: String,
    relevant: Vec<u64>,
}

/// Mean recall@10 of both engines on the labelled fixture.
fn fixture_recall() -> anyhow::Result<(f64, f64)> {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../search/tests/fixtures/relevance.json"))?;
    let docs: Vec<VideoDoc> = fixture
        .docs
        .iter()
        .map(|d| VideoDoc {
            id: d.id,
            title: d.title.clone(),
            description: d.description.clone(),
            tags: d.tags.clone(),
            creator_id: 1,
            creator: d.creator.clone(),
            published_at_ms: fixture.now_ms - d.age_hours * 3_600_000,
            duration_ms: 30_000,
            views: d.views,
            likes: d.likes,
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open(&dir.path().join("index"), SearchConfig::default())?;
    for d in &docs {
        index.upsert_video(d)?;
    }
    index.commit(0)?;
    let mut db = open_fts(&dir.path().join("fts.db"))?;
    fts_insert(&mut db, &docs)?;
    let recall = |got: &[u64], want: &[u64]| {
        want.iter().filter(|w| got.contains(w)).count() as f64 / want.len() as f64
    };
    let (mut ours, mut fts) = (0.0, 0.0);
    for q in &fixture.queries {
        let query = VideoQuery { q: q.q.clone(), limit: 10, ..Default::default() };
        let got: Vec<u64> =
            index.search_videos(&query, fixture.now_ms)?.items.iter().map(|h| h.id).collect();
        ours += recall(&got, &q.relevant);
        fts += recall(&fts_search(&db, &q.q, 10)?, &q.relevant);
    }
    let n = fixture.queries.len() as f64;
    Ok((ours / n, fts / n))
}

/// Runs the section on `n` generated videos.
pub fn search_section(run: &crate::report::RunInfo, n: usize) -> anyhow::Result<String> {
    let mut report = String::new();
    eprintln!("search: generating {n} videos");
    let docs = corpus(n);
    let dir = tempfile::tempdir()?;

    eprintln!("search: indexing with quicktok-search");
    let config =
        SearchConfig { writer_memory_mb: 256, suggest_sources: 1, ..SearchConfig::default() };
    let index = SearchIndex::open(&dir.path().join("index"), config)?;
    let started = Instant::now();
    for d in &docs {
        index.upsert_video(d)?;
    }
    index.commit(0)?;
    let ours_index_s = started.elapsed().as_secs_f64();

    eprintln!("search: indexing with FTS5 trigram");
    let mut db = open_fts(&dir.path().join("fts.db"))?;
    let started = Instant::now();
    fts_insert(&mut db, &docs)?;
    let fts_index_s = started.elapsed().as_secs_f64();
    drop(docs);

    eprintln!("search: queries");
    let now = 1_800_000_000_000;
    let ours = time_queries(5, |q| {
        let query = VideoQuery { q: q.to_owned(), limit: 20, ..Default::default() };
        Ok(index.search_videos(&query, now)?.items.len())
    })?;
    let fts = time_queries(1, |q| Ok(fts_search(&db, q, 20)?.len()))?;
    let (ours_recall, fts_recall) = fixture_recall()?;

    writeln!(report, "## Search (`quicktok-search`: Tantivy + jieba, vs SQLite FTS5 trigram)\n")?;
    writeln!(report, "- Machine: {}", run.machine)?;
    writeln!(report, "- Date: {}", run.date)?;
    writeln!(report, "- Command: `{}`\n", run.command)?;
    writeln!(
        report,
        "{n} generated videos (titles of 3-7 and descriptions of 5-14 words, 1-3 tags, Zipf(1) over {} Chinese and {} English words, Chinese words run together as in real titles), one process, one query at a time. Our queries include ranking (BM25 x popularity x freshness over fast fields), the stored-document read and title/description highlighting; FTS5's return row ids ranked by its bm25. Trigrams cannot index words shorter than three characters (most Chinese words): FTS5 answers those with `LIKE` (a scan, unranked, that stops at the 20th match, so it is quick for common words). The {} queries: {}.\n",
        CHINESE.len(),
        ENGLISH.len(),
        QUERIES.len(),
        QUERIES.iter().map(|q| format!("`{q}`")).collect::<Vec<_>>().join(", ")
    )?;
    writeln!(report, "| measure | quicktok-search | FTS5 trigram | ratio (ours / FTS5) |")?;
    writeln!(report, "|---|---:|---:|---:|")?;
    let (ours_dps, fts_dps) = (n as f64 / ours_index_s, n as f64 / fts_index_s);
    writeln!(
        report,
        "| indexing, docs/s | {ours_dps:.0} | {fts_dps:.0} | {:.2} |",
        ours_dps / fts_dps
    )?;
    writeln!(
        report,
        "| query p50, ms | {:.2} | {:.2} | {:.3} |",
        ours.p50_ms,
        fts.p50_ms,
        ours.p50_ms / fts.p50_ms
    )?;
    writeln!(
        report,
        "| query p99, ms | {:.2} | {:.2} | {:.3} |",
        ours.p99_ms,
        fts.p99_ms,
        ours.p99_ms / fts.p99_ms
    )?;
    writeln!(
        report,
        "| queries/s (one thread) | {:.0} | {:.1} | {:.1} |",
        ours.qps,
        fts.qps,
        ours.qps / fts.qps
    )?;
    writeln!(
        report,
        "| recall@10 on the labelled fixture (8 queries) | {ours_recall:.2} | {fts_recall:.2} | |"
    )?;
    Ok(report)
}

/// Near-real-time through a whole app (all roles, embedded defaults): a clip published on
/// the log until `GET /api/v1/search` finds it, and removed until the search no longer does.
pub async fn freshness_section(clips: usize) -> anyhow::Result<String> {
    use quicktok_core::{Event, Id};
    eprintln!("search: freshness through the app");
    let app = crate::app::BenchApp::start().await?;
    let (base, state, config) = (app.base.clone(), app.state.clone(), app.config.clone());
    let client = reqwest::Client::new();
    let creds =
        serde_json::json!({"username": "fresh.bench", "password": "correct horse battery staple"});
    let session: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await?
        .json()
        .await?;
    let author: Id = session["user"]["id"].as_str().unwrap_or_default().parse()?;
    let append = |event: Event| {
        let log = state.log().clone();
        async move {
            let record =
                quicktok_log::NewRecord { timestamp_ms: event.at_ms(), payload: event.encode() };
            log.append("videos", vec![record]).await
        }
    };
    let found = |word: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let body: serde_json::Value =
                client.get(format!("{base}/api/v1/search?q={word}")).send().await?.json().await?;
            anyhow::Ok(body["items"].as_array().is_some_and(|a| !a.is_empty()))
        }
    };
    let (mut visible, mut gone) = (Vec::new(), Vec::new());
    for i in 0..clips {
        // A word nothing else contains (letters only, so the analyzer keeps it whole).
        let word: String =
            format!("zyxfresh{}", (b'a' + (i % 26) as u8) as char) + &"q".repeat(i / 26 + 1);
        let id = state.next_id();
        let now = state.clock().now_ms();
        let videos = state.meta().videos();
        videos
            .create(quicktok_meta::NewVideo {
                id,
                author_id: author,
                title: format!("{word} clip"),
                description: String::new(),
                tags: vec![],
                created_at_ms: now,
            })
            .await?;
        videos.set_media_info(id, 15_000, 720, 1280, now).await?;
        videos.set_status(id, quicktok_meta::VideoStatus::Published, None, now).await?;
        let t = Instant::now();
        append(Event::VideoPublished { video_id: id, author, at_ms: now }).await?;
        while !found(word.clone()).await? {
            anyhow::ensure!(t.elapsed() < std::time::Duration::from_secs(30), "never searchable");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        visible.push(t.elapsed());
        let now = state.clock().now_ms();
        videos.set_status(id, quicktok_meta::VideoStatus::Removed, Some("bench"), now).await?;
        let t = Instant::now();
        append(Event::VideoRemoved {
            video_id: id,
            author,
            by: author,
            reason: "bench".into(),
            at_ms: now,
        })
        .await?;
        while found(word.clone()).await? {
            anyhow::ensure!(t.elapsed() < std::time::Duration::from_secs(30), "never removed");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        gone.push(t.elapsed());
    }
    app.stop().await?;
    visible.sort();
    gone.sort();
    let ms = |v: &[std::time::Duration], p: f64| crate::percentile(v, p);
    let mut report = String::new();
    writeln!(
        report,
        "\nNear-real-time through a whole app (all roles, `search.commit_interval_ms` = {}): {clips} clips, each published on the log and polled with `GET /api/v1/search` until found, then removed until gone:\n",
        config.search.commit_interval_ms
    )?;
    writeln!(report, "| change | p50 ms | max ms | goal |")?;
    writeln!(report, "|---|---:|---:|---|")?;
    writeln!(
        report,
        "| published -> searchable | {:.0} | {:.0} | within 1 s: **{}** |",
        ms(&visible, 0.5),
        ms(&visible, 1.0),
        if ms(&visible, 1.0) <= 1000.0 { "met" } else { "not met" }
    )?;
    writeln!(
        report,
        "| removed -> gone | {:.0} | {:.0} | within 1 s: **{}** |",
        ms(&gone, 0.5),
        ms(&gone, 1.0),
        if ms(&gone, 1.0) <= 1000.0 { "met" } else { "not met" }
    )?;
    Ok(report)
}
