//! The For-You latency benchmark `make eval` reports: the real `Recommender` with a
//! synthetic catalogue and engagement at the scale (10k users, 100k videos),
//! trained, then asked for pages by random users one after another.

use std::time::{Duration, Instant};

use quicktok_recommend::interests::Signal;
use quicktok_recommend::{
    AlsParams, FeedRequest, ItemItemParams, Recommender, RecommenderParams, UserEvent, VideoInfo,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const START: i64 = 1_800_000_000_000;

/// What was measured.
#[derive(Debug, Clone, Copy)]
pub struct LatencyReport {
    pub users: usize,
    pub videos: usize,
    pub interactions: usize,
    pub train_secs: f64,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_s: f64,
    pub page: usize,
    pub factors: usize,
    pub head_items: usize,
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Builds the world, trains, and times `requests` For-You pages.
pub fn run(users: usize, videos: usize, per_user: usize, requests: usize) -> LatencyReport {
    let params = RecommenderParams {
        als: AlsParams { factors: 32, iterations: 6, ..AlsParams::default() },
        itemitem: ItemItemParams { max_items: 2000, ..ItemItemParams::default() },
        ..RecommenderParams::default()
    };
    let rec = Recommender::new(params);
    let mut rng = StdRng::seed_from_u64(5);
    for v in 1..=videos as u64 {
        rec.publish(VideoInfo {
            id: v,
            author: 1_000_000 + v % 5_000,
            tags: vec![format!("topic{}", v % 50)],
            // Spread over 30 days, the newest last.
            published_at_ms: START - 30 * 86_400_000
                + (v as i64) * (30 * 86_400_000 / videos as i64),
        });
    }
    // Power-law popularity: clip rank r drawn with weight ~ 1/r, users favouring 3 topics.
    let mut interactions = 0;
    for u in 1..=users as u64 {
        let topics: Vec<u64> = (0..3).map(|_| rng.gen_range(0..50)).collect();
        for k in 0..per_user {
            let topic = topics[k % 3];
            let r = (videos as f64 / 50.0).powf(rng.r#gen::<f64>()) as u64;
            let v = (r * 50 + topic).clamp(1, videos as u64);
            let signal = if k % 4 == 0 { Signal::Liked } else { Signal::Completed };
            rec.record(UserEvent {
                user: u,
                video: v,
                signal,
                at_ms: START - 86_400_000 + k as i64,
            });
            interactions += 1;
        }
    }
    let trained = Instant::now();
    rec.train(START);
    let train_secs = trained.elapsed().as_secs_f64();
    rec.caught_up(START);
    let trending: Vec<u64> = (1..=1000).collect();
    let mut times = Vec::with_capacity(requests);
    let started = Instant::now();
    let mut page = 0;
    for i in 0..requests {
        let req = FeedRequest {
            user: Some(rng.gen_range(1..=users as u64)),
            now_ms: START + i as i64,
            followed: (0..20).map(|_| 1_000_000 + rng.gen_range(0..5_000)).collect(),
            trending: trending.clone(),
            candidates_healthy: true,
            log_head_ms: START,
            ..FeedRequest::default()
        };
        let t = Instant::now();
        let answer = rec.for_you(&req);
        times.push(t.elapsed());
        page = page.max(answer.items.len());
    }
    let per_s = requests as f64 / started.elapsed().as_secs_f64();
    times.sort();
    LatencyReport {
        users,
        videos,
        interactions,
        train_secs,
        requests,
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        per_s,
        page,
        factors: 32,
        head_items: 2000,
    }
}
