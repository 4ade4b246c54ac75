//! The brute-force oracle (a literal recount of the window rule over every raw event) and
//! the random view streams the property tests feed to it and to the rankers.

use std::cmp::Reverse;
use std::collections::HashMap;

use proptest::prelude::*;
use quicktok_core::Id;
use quicktok_rank::{QualifiedView, ViewRecord, Window};

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;
pub const MONTH: i64 = 30 * DAY;
/// 2023-11-14: a realistic starting time.
pub const BASE: i64 = 1_700_000_000_000;

/// Every event applied, and the watermark, recounted from scratch on each query.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    pub views: Vec<QualifiedView>,
    pub watermark: Option<i64>,
}

impl Oracle {
    pub fn apply(&mut self, record: &ViewRecord) {
        let at = record.at_ms();
        self.watermark = Some(self.watermark.map_or(at, |w| w.max(at)));
        if let ViewRecord::View(v) = record {
            self.views.push(v.clone());
        }
    }

    /// The rule of `quicktok_rank::window`, written out independently.
    pub fn counts(&self, window: Window) -> HashMap<Id, u64> {
        let mut out = HashMap::new();
        let Some(w) = self.watermark else { return out };
        for v in &self.views {
            let t = v.at_ms;
            let counted = match window {
                Window::Hour => t > w - HOUR && t <= w,
                Window::Day => t.div_euclid(MIN) > (w - DAY).div_euclid(MIN) && t <= w,
                Window::Month => t.div_euclid(MIN) > (w - MONTH).div_euclid(MIN) && t <= w,
                Window::All => true,
            };
            if counted {
                *out.entry(v.video_id).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn tag_counts(&self, tag: &str) -> HashMap<Id, u64> {
        let mut out = HashMap::new();
        let Some(w) = self.watermark else { return out };
        for v in &self.views {
            let t = v.at_ms;
            let mut tags = v.tags.clone();
            tags.sort();
            tags.dedup();
            if tags.iter().any(|x| x == tag)
                && t.div_euclid(MIN) > (w - DAY).div_euclid(MIN)
                && t <= w
            {
                *out.entry(v.video_id).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn top(&self, window: Window, k: usize) -> Vec<(Id, u64)> {
        rank(self.counts(window), k)
    }

    pub fn top_tag(&self, tag: &str, k: usize) -> Vec<(Id, u64)> {
        rank(self.tag_counts(tag), k)
    }

    /// Every count sorted by id (the form `Ranker::counts` returns).
    pub fn sorted_counts(&self, window: Window) -> Vec<(Id, u64)> {
        let mut v: Vec<(Id, u64)> = self.counts(window).into_iter().collect();
        v.sort();
        v
    }
}

/// Count desc, then id asc, at most `k` (and at most 1000).
pub fn rank(counts: HashMap<Id, u64>, k: usize) -> Vec<(Id, u64)> {
    let mut v: Vec<(Id, u64)> = counts.into_iter().filter(|(_, c)| *c > 0).collect();
    v.sort_by_key(|&(id, c)| (Reverse(c), id));
    v.truncate(k.min(1000));
    v
}

pub const TAGS: [&str; 3] = ["cat", "dance", "food"];

/// One generated step; times are resolved against the running clock by [`resolve`].
#[derive(Debug, Clone)]
pub enum Step {
    /// A view `gap` ms after the newest time so far.
    View { video: u64, tags: u8, gap: i64 },
    /// A view `back` ms before the newest time (a late event).
    Late { video: u64, tags: u8, back: Back },
    /// A tick `gap` ms after the newest time.
    Tick { gap: i64 },
}

#[derive(Debug, Clone)]
pub enum Back {
    Ms(i64),
    /// Exactly on (`0`) or just before (`-1`) the first counted millisecond of a window,
    /// or on the 1h boundary.
    Edge(Window, i64),
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..3,
        10 => 0i64..5_000,
        8 => 0i64..150_000,
        2 => (HOUR - 120_000)..(HOUR + 120_000),
        2 => (DAY - 200_000)..(DAY + 200_000),
        1 => (MONTH - 200_000)..(MONTH + 200_000),
        1 => (2 * MONTH)..(3 * MONTH),
    ]
}

fn back() -> impl Strategy<Value = Back> {
    prop_oneof![
        4 => (0i64..120_000).prop_map(Back::Ms),
        2 => ((HOUR - 90_000)..(HOUR + 90_000)).prop_map(Back::Ms),
        2 => ((DAY - 150_000)..(DAY + 150_000)).prop_map(Back::Ms),
        1 => ((MONTH - 150_000)..(MONTH + 150_000)).prop_map(Back::Ms),
        1 => ((MONTH + DAY)..(3 * MONTH)).prop_map(Back::Ms),
        3 => (
            prop_oneof![Just(Window::Hour), Just(Window::Day), Just(Window::Month)],
            -1i64..=1,
        )
            .prop_map(|(w, d)| Back::Edge(w, d)),
    ]
}

pub fn step(videos: u64) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..videos, 0u8..8, gap()).prop_map(|(video, tags, gap)| Step::View { video, tags, gap }),
        3 => (0..videos, 0u8..8, back()).prop_map(|(video, tags, back)| Step::Late { video, tags, back }),
        1 => gap().prop_map(|gap| Step::Tick { gap }),
    ]
}

/// Turns steps into records, tracking the newest time like the watermark does.
pub fn resolve(steps: &[Step]) -> Vec<ViewRecord> {
    let mut now = BASE;
    let tags_of = |mask: u8| -> Vec<&'static str> {
        TAGS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, t)| *t).collect()
    };
    steps
        .iter()
        .map(|s| match s {
            Step::View { video, tags, gap } => {
                now += gap;
                ViewRecord::View(QualifiedView::new(Id(*video + 1), tags_of(*tags), now))
            }
            Step::Late { video, tags, back } => {
                let at = match back {
                    Back::Ms(b) => now - b,
                    Back::Edge(Window::Hour, d) => now - HOUR + d,
                    Back::Edge(w, d) => {
                        let len = if *w == Window::Day { DAY } else { MONTH };
                        ((now - len).div_euclid(MIN) + 1) * MIN + d
                    }
                };
                ViewRecord::View(QualifiedView::new(Id(*video + 1), tags_of(*tags), at.max(0)))
            }
            Step::Tick { gap } => {
                now += gap;
                ViewRecord::Tick { at_ms: now }
            }
        })
        .collect()
}

/// A deterministic pseudo-random stream for the non-proptest tests: `n` records over about
/// `span_ms`, some late, some ticks.
pub fn lcg_stream(seed: u64, n: usize, videos: u64, span_ms: i64) -> Vec<ViewRecord> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x >> 33
    };
    let step = (span_ms / n as i64).max(1);
    let mut now = BASE;
    (0..n)
        .map(|_| {
            let r = next();
            now += (r as i64) % (2 * step);
            // Skewed popularity: low ids are watched far more often.
            let v = (next() % videos).min(next() % videos) + 1;
            let tags: Vec<&str> = TAGS.iter().copied().filter(|_| next() % 3 == 0).collect();
            match r % 20 {
                0 => ViewRecord::Tick { at_ms: now },
                1 | 2 => {
                    let back = (next() as i64) % (2 * DAY);
                    ViewRecord::View(QualifiedView::new(Id(v), tags, now - back))
                }
                _ => ViewRecord::View(QualifiedView::new(Id(v), tags, now)),
            }
        })
        .collect()
}
