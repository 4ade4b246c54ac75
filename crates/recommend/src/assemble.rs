//! Turns scored candidates from every source into one page: duplicates merged (best score
//! wins), a share of fresh uploads for exploration, and never two clips of the same creator
//! in a row (also across the page boundary).

use std::collections::HashMap;

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Trending,
    Following,
    /// The offline user vector (long-term interests).
    LongTerm,
    /// The last hour's engagement.
    ShortTerm,
    /// Item-to-item co-engagement with recently liked or completed clips.
    ItemItem,
    /// Recent uploads with little exposure (exploration).
    Fresh,
    /// Good clips carrying the tags of the user's long-term profile (the daily job).
    InterestTags,
    /// Clips of the creators the user engages with, followed or not (the daily job).
    InterestCreators,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Trending => "trending",
            Source::Following => "following",
            Source::LongTerm => "long_term",
            Source::ShortTerm => "short_term",
            Source::ItemItem => "item_item",
            Source::Fresh => "fresh",
            Source::InterestTags => "interest_tags",
            Source::InterestCreators => "interest_creators",
        }
    }
}

/// One scored candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub video: u64,
    pub author: u64,
    pub source: Source,
    /// The ranker's score (higher is better).
    pub score: f64,
}

/// The page: `n` clips from `candidates`, `explore_share` of them (rounded) fresh when
/// enough fresh candidates exist, no author twice in a row, starting after a clip by
/// `previous_author` (the last of the previous page). Shorter than `n` only when the
/// candidates cannot fill it under the author rule.
pub fn assemble(
    candidates: &[Candidate],
    n: usize,
    explore_share: f64,
    previous_author: Option<u64>,
) -> Vec<Candidate> {
    // Merge duplicates: the best score, and `Fresh` only when no other source had it.
    let mut best: HashMap<u64, Candidate> = HashMap::new();
    for c in candidates {
        best.entry(c.video)
            .and_modify(|b| {
                if c.score > b.score || (b.source == Source::Fresh && c.source != Source::Fresh) {
                    let source = if c.source == Source::Fresh { b.source } else { c.source };
                    *b = Candidate { source, score: c.score.max(b.score), ..*c };
                }
            })
            .or_insert(*c);
    }
    let by_score = |v: &mut Vec<Candidate>| {
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.video.cmp(&b.video)));
    };
    let (mut fresh, mut ranked): (Vec<Candidate>, Vec<Candidate>) =
        best.into_values().partition(|c| c.source == Source::Fresh);
    by_score(&mut fresh);
    by_score(&mut ranked);
    let explore = ((n as f64) * explore_share.clamp(0.0, 1.0)).round() as usize;
    // Fresh slots spread evenly through the page (positions where i * explore / n steps).
    let fresh_slot =
        |i: usize| explore > 0 && (i * explore / n.max(1)) != ((i + 1) * explore / n.max(1));
    let mut page: Vec<Candidate> = Vec::with_capacity(n);
    let mut last = previous_author;
    let mut fresh_used = 0;
    while page.len() < n {
        let want_fresh = fresh_slot(page.len()) && fresh_used < explore;
        let pick = |pool: &Vec<Candidate>| pool.iter().position(|c| Some(c.author) != last);
        let chosen = if want_fresh {
            pick(&fresh).map(|i| (true, i)).or_else(|| pick(&ranked).map(|i| (false, i)))
        } else {
            pick(&ranked).map(|i| (false, i)).or_else(|| pick(&fresh).map(|i| (true, i)))
        };
        let Some((from_fresh, i)) = chosen else { break };
        let c = if from_fresh {
            fresh_used += 1;
            fresh.remove(i)
        } else {
            ranked.remove(i)
        };
        last = Some(c.author);
        page.push(c);
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(video: u64, author: u64, source: Source, score: f64) -> Candidate {
        Candidate { video, author, source, score }
    }

    #[test]
    fn best_first_with_fresh_slots_and_no_repeated_author() {
        let mut cands: Vec<Candidate> =
            (0..20).map(|v| cand(v, v % 3, Source::LongTerm, 100.0 - v as f64)).collect();
        cands.extend((100..105).map(|v| cand(v, 50 + v, Source::Fresh, 1.0)));
        // A duplicate from another source with a lower score changes nothing.
        cands.push(cand(0, 0, Source::Trending, 1.0));
        let page = assemble(&cands, 10, 0.2, Some(0));
        assert_eq!(page.len(), 10);
        assert_eq!(page.iter().filter(|c| c.source == Source::Fresh).count(), 2);
        assert_ne!(page[0].author, 0, "the previous page ended with author 0");
        assert!(page.windows(2).all(|w| w[0].author != w[1].author));
        assert_eq!(page.iter().find(|c| c.video == 0).map(|c| c.source), Some(Source::LongTerm));
    }

    #[test]
    fn one_author_only_gives_one_clip() {
        let cands: Vec<Candidate> = (0..5).map(|v| cand(v, 7, Source::Following, 1.0)).collect();
        assert_eq!(assemble(&cands, 5, 0.0, None).len(), 1);
    }

    proptest! {
        #[test]
        fn pages_keep_the_rules(
            raw in proptest::collection::vec((0u64..60, 0usize..8, -10.0f64..10.0), 0..120),
            salt in 0u64..1000,
            n in 1usize..30,
            share in 0.0f64..0.5,
            previous in proptest::option::of(0u64..6),
        ) {
            const SOURCES: [Source; 8] = [Source::Trending, Source::Following, Source::LongTerm, Source::ShortTerm, Source::ItemItem, Source::Fresh, Source::InterestTags, Source::InterestCreators];
            // A video has one author, whichever source names it.
            let author = |v: u64| (v.wrapping_mul(2_654_435_761) + salt) % 6;
            let cands: Vec<Candidate> = raw.iter().map(|&(v, s, score)| cand(v, author(v), SOURCES[s], score)).collect();
            let page = assemble(&cands, n, share, previous);
            prop_assert!(page.len() <= n);
            let mut videos: Vec<u64> = page.iter().map(|c| c.video).collect();
            videos.sort_unstable();
            videos.dedup();
            prop_assert_eq!(videos.len(), page.len(), "duplicate video");
            prop_assert!(page.windows(2).all(|w| w[0].author != w[1].author));
            if let (Some(p), Some(first)) = (previous, page.first()) {
                prop_assert_ne!(first.author, p);
            }
            let distinct: std::collections::HashSet<u64> = cands.iter().map(|c| c.video).collect();
            // Short only when the author rule stops it: every unused candidate shares the
            // last author.
            if page.len() < n && page.len() < distinct.len() {
                let used: std::collections::HashSet<u64> = page.iter().map(|c| c.video).collect();
                let last = page.last().map(|c| c.author).or(previous);
                prop_assert!(cands.iter().filter(|c| !used.contains(&c.video)).all(|c| Some(c.author) == last));
            }
        }
    }
}
