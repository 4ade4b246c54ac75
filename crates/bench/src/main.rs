//! `make bench`: measures the foundation's hot paths on this machine and writes the figures,
//! with the machine, command and date, to `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use quicktok_log::{EventLog, FileLog, LogConfig, NewRecord, SyncPolicy};

mod app;
mod feed;
mod likes;
mod report;
mod search;
mod upload;

use report::Section;

#[derive(Parser)]
#[command(about = "QuickTok benchmarks")]
struct Args {
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Scale factor for record counts (1 = the default run, about two minutes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Run only these sections (comma-separated). When `--out` already exists, its other
    /// sections are kept and only these are replaced, so one figure can be re-measured
    /// without rerunning everything.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Section>,
    /// Size of the random file the `tus` section uploads, MiB.
    #[arg(long, default_value_t = 200)]
    tus_mib: u64,
    /// Users in the `feed` section's synthetic graph (videos are ten per user).
    #[arg(long, default_value_t = 100_000)]
    feed_users: usize,
    /// Keep the `feed` section's generated store (its path is printed) to try queries on
    /// it afterwards, e.g. with `sqlite3`.
    #[arg(long)]
    keep_feed_db: bool,
}

const PAYLOAD: usize = 256;

struct AppendResult {
    label: String,
    records: u64,
    secs: f64,
    fsyncs: u64,
}

async fn open_log(dir: &std::path::Path, sync: SyncPolicy) -> anyhow::Result<Arc<FileLog>> {
    let cfg = LogConfig { sync, ..LogConfig::default() };
    Ok(Arc::new(FileLog::open(dir, cfg).await?))
}

/// `writers` tasks each append `per_writer` records of `batch` records per call.
async fn append_run(
    label: &str,
    sync: SyncPolicy,
    writers: usize,
    per_writer: usize,
    batch: usize,
) -> anyhow::Result<AppendResult> {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path(), sync).await?;
    let before = log.stats();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let payload = vec![b'x'; PAYLOAD];
            let mut done = 0;
            while done < per_writer {
                let n = batch.min(per_writer - done);
                let records = (0..n)
                    .map(|i| NewRecord::new((w * per_writer + done + i) as i64, payload.clone()))
                    .collect();
                log.append("bench", records).await?;
                done += n;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = log.stats();
    Ok(AppendResult {
        label: label.to_owned(),
        records: (writers * per_writer) as u64,
        secs,
        fsyncs: after.fsyncs - before.fsyncs,
    })
}

async fn read_run(records: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path(), SyncPolicy::Never).await?;
    let payload = vec![b'r'; PAYLOAD];
    for chunk in 0..records.div_ceil(1000) {
        let n = 1000.min(records - chunk * 1000);
        log.append("bench", (0..n).map(|i| NewRecord::new(i as i64, payload.clone())).collect())
            .await?;
    }
    // Reopen so reads come through the recovery path and the page cache, not a warm writer.
    log.close().await?;
    drop(log);
    let log = open_log(dir.path(), SyncPolicy::Never).await?;
    let started = Instant::now();
    let mut offset = 0u64;
    let mut bytes = 0usize;
    loop {
        let batch = log.read("bench", offset, 4096, 4 << 20).await?;
        let Some(last) = batch.last() else { break };
        offset = last.offset + 1;
        bytes += batch.iter().map(|r| r.payload.len()).sum::<usize>();
    }
    anyhow::ensure!(offset as usize == records, "read {offset} of {records}");
    let secs = started.elapsed().as_secs_f64();
    Ok((records as f64 / secs, bytes as f64 / secs / 1e6))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn login_run(count: usize, concurrency: usize) -> anyhow::Result<(f64, f64, f64)> {
    let app = app::BenchApp::start().await?;
    let base = app.base.clone();
    let client = reqwest::Client::new();
    let creds =
        serde_json::json!({"username": "bencher", "password": "correct horse battery staple"});
    let r = client.post(format!("{base}/api/v1/auth/register")).json(&creds).send().await?;
    anyhow::ensure!(r.status() == 201, "register: {}", r.status());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = format!("{base}/api/v1/auth/login");
        let creds = creds.clone();
        let n = count / concurrency;
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let r = client.post(&url).json(&creds).send().await?;
                anyhow::ensure!(r.status() == 200, "login: {}", r.status());
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
    let rate = times.len() as f64 / started.elapsed().as_secs_f64();
    times.sort();
    app.stop().await?;
    Ok((percentile(&times, 0.5), percentile(&times, 0.99), rate))
}

struct TrendingFigures {
    views: usize,
    videos: usize,
    ingest_views_per_s: f64,
    fresh_p50_ms: f64,
    fresh_max_ms: f64,
    query_p50_ms: f64,
    query_p99_ms: f64,
    queries_per_s: f64,
}

/// Ingestion, freshness and HTTP query latency of the trending lists on a whole app.
async fn trending_run(
    views: usize,
    videos: u64,
    queries: usize,
) -> anyhow::Result<TrendingFigures> {
    use quicktok_rank::{QualifiedView, VIEWS_TOPIC};
    let app = app::BenchApp::start().await?;
    let base = app.base.clone();
    let log = app.state.log().clone();
    let client = reqwest::Client::new();
    let offset_now = |client: reqwest::Client, base: String| async move {
        let body: serde_json::Value = client
            .get(format!("{base}/api/v1/trending?window=1h&k=1"))
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(body["log_offset"].as_u64().unwrap_or(0))
    };

    // Zipf-like popularity: video i gets weight 1/(i+1).
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let weights: Vec<f64> = (0..videos).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let started = Instant::now();
    let mut appended = 0usize;
    while appended < views {
        let n = 4096.min(views - appended);
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            let x = next();
            let video = cumulative.partition_point(|c| *c < x) as u64 + 1;
            let at = now - 3_000_000 + ((appended + i) as i64 * 3_000_000 / views as i64);
            batch.push(
                QualifiedView::new(quicktok_core::Id(video), Vec::<String>::new(), at)
                    .to_record()?,
            );
        }
        log.append(VIEWS_TOPIC, batch).await?;
        appended += n;
    }
    let end = log.end_offset(VIEWS_TOPIC).await?;
    while offset_now(client.clone(), base.clone()).await? < end {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ingest_views_per_s = views as f64 / started.elapsed().as_secs_f64();

    // Freshness: one more view, until the published lists include it.
    let mut fresh = Vec::new();
    for i in 0..20 {
        let target = log.end_offset(VIEWS_TOPIC).await? + 1;
        let t = Instant::now();
        let view =
            QualifiedView::new(quicktok_core::Id(1 + i), Vec::<String>::new(), now).to_record()?;
        log.append(VIEWS_TOPIC, vec![view]).await?;
        while offset_now(client.clone(), base.clone()).await? < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        fresh.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fresh.sort();

    let url = format!("{base}/api/v1/trending?window=1d&k=100");
    for _ in 0..200 {
        client.get(&url).send().await?.bytes().await?;
    }
    let mut times = Vec::with_capacity(queries);
    let started = Instant::now();
    for _ in 0..queries {
        let t = Instant::now();
        let r = client.get(&url).send().await?;
        anyhow::ensure!(r.status() == 200, "trending: {}", r.status());
        r.bytes().await?;
        times.push(t.elapsed());
    }
    let queries_per_s = queries as f64 / started.elapsed().as_secs_f64();
    times.sort();
    app.stop().await?;
    Ok(TrendingFigures {
        views,
        videos: videos as usize,
        ingest_views_per_s,
        fresh_p50_ms: percentile(&fresh, 0.5),
        fresh_max_ms: percentile(&fresh, 1.0),
        query_p50_ms: percentile(&times, 0.5),
        query_p99_ms: percentile(&times, 0.99),
        queries_per_s,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM, Linux")
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The event log section: appends (group commit) and sequential reads.
async fn log_section(scaled: impl Fn(usize) -> usize) -> anyhow::Result<String> {
    let mut report = String::new();
    eprintln!("event log: appends");
    let runs = vec![
        append_run(
            "1 writer, 1 record per append, sync=always (one fsync per append)",
            SyncPolicy::Always,
            1,
            scaled(500),
            1,
        )
        .await?,
        append_run(
            "64 writers, 1 record per append, sync=always (group commit)",
            SyncPolicy::Always,
            64,
            scaled(200),
            1,
        )
        .await?,
        append_run(
            "4 writers, 100 records per append, sync=always",
            SyncPolicy::Always,
            4,
            scaled(25_000),
            100,
        )
        .await?,
        append_run(
            "64 writers, 1 record per append, sync=interval:10ms",
            SyncPolicy::Interval(Duration::from_millis(10)),
            64,
            scaled(1000),
            1,
        )
        .await?,
    ];
    writeln!(report, "## Event log (`FileLog`), {PAYLOAD}-byte records\n")?;
    writeln!(report, "| append workload | records | records/s | fsyncs | records per fsync |")?;
    writeln!(report, "|---|---:|---:|---:|---:|")?;
    for r in &runs {
        writeln!(
            report,
            "| {} | {} | {:.0} | {} | {:.1} |",
            r.label,
            r.records,
            r.records as f64 / r.secs,
            r.fsyncs,
            r.records as f64 / r.fsyncs.max(1) as f64
        )?;
    }
    let serial = runs[0].records as f64 / runs[0].secs;
    let grouped = runs[1].records as f64 / runs[1].secs;
    writeln!(
        report,
        "\nGroup commit vs one fsync per append, same durability (acknowledged = on disk): **{:.1}x** the records/s.\n",
        grouped / serial
    )?;

    eprintln!("event log: reads");
    let read_records = scaled(500_000);
    let (rps, mbps) = read_run(read_records).await?;
    writeln!(report, "| read workload | records | records/s | MB/s (payload) |")?;
    writeln!(report, "|---|---:|---:|---:|")?;
    writeln!(
        report,
        "| sequential scan from offset 0 after reopen, batches of 4096 | {read_records} | {rps:.0} | {mbps:.0} |"
    )?;
    Ok(report)
}

/// The login section: argon2id behind HTTP, one and four clients.
async fn login_section(scaled: impl Fn(usize) -> usize) -> anyhow::Result<String> {
    let mut report = String::new();
    eprintln!("login");
    let (p50, p99, rate) = login_run(scaled(200), 1).await?;
    let (cp50, cp99, crate_) = login_run(scaled(200), 4).await?;
    writeln!(
        report,
        "## Login (`POST /api/v1/auth/login` over HTTP, argon2id m=19 MiB t=2 p=1)\n"
    )?;
    writeln!(report, "| clients | p50 ms | p99 ms | logins/s |")?;
    writeln!(report, "|---:|---:|---:|---:|")?;
    writeln!(report, "| 1 | {p50:.1} | {p99:.1} | {rate:.1} |")?;
    writeln!(report, "| 4 | {cp50:.1} | {cp99:.1} | {crate_:.1} |")?;
    writeln!(
        report,
        "\nLogin cost is the password hash by design (OWASP parameters); `auth.max_concurrent_hashes` bounds how many run at once."
    )?;
    Ok(report)
}

/// The trending section: ingestion, freshness and query latency.
async fn trending_section(scaled: impl Fn(usize) -> usize) -> anyhow::Result<String> {
    let mut report = String::new();
    eprintln!("trending");
    let t = trending_run(scaled(1_000_000), 100_000, scaled(5000)).await?;
    writeln!(report, "## Trending (`quicktok-rank` behind `GET /api/v1/trending`)\n")?;
    writeln!(
        report,
        "A whole app (4 ranker shards); {} qualified views over {} videos with Zipf-like popularity appended to the `views` topic, then queried over HTTP (one client, keep-alive).\n",
        t.views, t.videos
    )?;
    writeln!(report, "| measure | figure | the design document |")?;
    writeln!(report, "|---|---:|---|")?;
    writeln!(
        report,
        "| ingestion (log to published lists), views/s | {:.0} | 700k views/s across the cluster |",
        t.ingest_views_per_s
    )?;
    writeln!(
        report,
        "| freshness: append to visible in the lists, p50 / max of 20, ms | {:.1} / {:.1} | 60 000 (aim 1 000) |",
        t.fresh_p50_ms, t.fresh_max_ms
    )?;
    writeln!(
        report,
        "| `GET /api/v1/trending?window=1d&k=100`, p50 / p99, ms | {:.3} / {:.3} | 10-100 (aim < 5) |",
        t.query_p50_ms, t.query_p99_ms
    )?;
    writeln!(report, "| same query, requests/s (one client) | {:.0} | |", t.queries_per_s)?;
    Ok(report)
}

/// The command line that reproduces this run, for the report.
fn command_line(args: &Args) -> String {
    let mut cmd = String::from("cargo run --release -p quicktok-bench --");
    if !args.only.is_empty() {
        let names: Vec<&str> = args.only.iter().map(|s| s.name()).collect();
        cmd.push_str(&format!(" --only {}", names.join(",")));
    }
    if args.tus_mib != 200 && (args.only.is_empty() || args.only.contains(&Section::Tus)) {
        cmd.push_str(&format!(" --tus-mib {}", args.tus_mib));
    }
    if args.feed_users != 100_000 && (args.only.is_empty() || args.only.contains(&Section::Feed)) {
        cmd.push_str(&format!(" --feed-users {}", args.feed_users));
    }
    if (args.scale - 1.0).abs() > f64::EPSILON {
        cmd.push_str(&format!(" --scale {}", args.scale));
    }
    cmd.push_str(&format!(" --out {}", args.out.display()));
    cmd
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = args.scale;
    let scaled = move |n: usize| ((n as f64 * scale).round() as usize).max(1);
    let selected: Vec<Section> =
        if args.only.is_empty() { Section::ALL.to_vec() } else { args.only.clone() };
    let run = report::RunInfo { machine: machine(), date: date(), command: command_line(&args) };

    let mut fresh = Vec::new();
    for section in Section::ALL {
        if !selected.contains(&section) {
            continue;
        }
        let text = match section {
            Section::Log => log_section(scaled).await?,
            Section::Login => login_section(scaled).await?,
            Section::Trending => trending_section(scaled).await?,
            Section::Ladder => upload::ladder_section(&run).await?,
            Section::Tus => upload::tus_section(&run, args.tus_mib << 20).await?,
            Section::Likes => likes::likes_section(scaled).await?,
            Section::Feed => {
                feed::feed_section(
                    &run,
                    feed::Params {
                        users: args.feed_users,
                        videos: args.feed_users * 10,
                        median_followees: 200.0,
                        active_fraction: 0.1,
                        reads: scaled(2_000),
                        keep_db: args.keep_feed_db,
                    },
                )
                .await?
            }
            Section::Search => {
                let mut text = search::search_section(&run, scaled(1_000_000))?;
                text.push_str(&search::freshness_section(20).await?);
                text
            }
        };
        fresh.push((section, text));
    }

    let mut header = String::new();
    writeln!(header, "# Benchmarks\n")?;
    writeln!(
        header,
        "Written by `make bench` (`cargo run --release -p quicktok-bench -- --out docs/benchmarks.md`; `--only ladder,tus` re-measures some sections and keeps the others). Figures from one run on a shared, noisy machine: compare ratios within a run rather than absolute numbers across runs.\n"
    )?;
    writeln!(header, "- Machine: {}", run.machine)?;
    writeln!(header, "- Date: {}", run.date)?;
    if args.only.is_empty() {
        writeln!(header, "- Command: `make bench`")?;
    } else {
        writeln!(header, "- Command: `{}`", run.command)?;
    }

    // A partial run keeps the other sections of an existing report.
    let existing = if args.only.is_empty() {
        None
    } else {
        match std::fs::read_to_string(&args.out) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        }
    };
    let report = report::assemble(&header, existing.as_deref(), &fresh);

    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &report)?;
    print!("{report}");
    Ok(())
}
