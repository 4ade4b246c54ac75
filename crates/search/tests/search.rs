//! The search index end to end on disk: Chinese segmentation, stemming, hashtags, filters,
//! removal and updates, highlighting, suggestions, crash recovery of the committed offset,
//! and relevance on the hand-labelled fixture (`fixtures/relevance.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quicktok_search::{
    CreatorDoc, SearchConfig, SearchIndex, SuggestionKind, VideoDoc, VideoQuery,
};

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

fn video(id: u64, title: &str, tags: &[&str]) -> VideoDoc {
    VideoDoc {
        id,
        title: title.into(),
        description: String::new(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        creator_id: 100,
        creator: "li.wei".into(),
        published_at_ms: NOW - HOUR,
        duration_ms: 15_000,
        views: 0,
        likes: 0,
    }
}

fn open(dir: &std::path::Path) -> SearchIndex {
    SearchIndex::open(dir, SearchConfig::default()).unwrap()
}

fn ids(index: &SearchIndex, q: &str) -> Vec<u64> {
    let query = VideoQuery { q: q.into(), limit: 50, ..Default::default() };
    index.search_videos(&query, NOW).unwrap().items.into_iter().map(|h| h.id).collect()
}

#[test]
fn chinese_words_inside_longer_phrases_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.upsert_video(&video(1, "周末去吃北京烤鸭真开心", &[])).unwrap();
    index.upsert_video(&video(2, "上海小笼包", &[])).unwrap();
    index.commit(2).unwrap();
    assert_eq!(ids(&index, "烤鸭"), [1]);
    assert_eq!(ids(&index, "北京"), [1]);
    assert_eq!(ids(&index, "北京烤鸭"), [1]);
    assert_eq!(ids(&index, "小笼包"), [2]);
    assert!(ids(&index, "广州").is_empty());
}

#[test]
fn english_is_stemmed_and_case_folded() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.upsert_video(&video(1, "Running Dogs", &[])).unwrap();
    index.upsert_video(&video(2, "Sleeping cats", &[])).unwrap();
    index.commit(2).unwrap();
    assert_eq!(ids(&index, "run dog"), [1]);
    assert_eq!(ids(&index, "RUNS"), [1]);
    assert_eq!(ids(&index, "cat"), [2]);
    assert!(ids(&index, "run cat").is_empty(), "every word must match");
}

#[test]
fn hashtags_match_the_tag_exactly_and_creators_by_at() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.upsert_video(&video(1, "morning routine", &["dance"])).unwrap();
    index.upsert_video(&video(2, "dance battle", &["battle"])).unwrap();
    let mut other = video(3, "dance lesson", &["dance"]);
    other.creator = "Maya.Demo".into();
    index.upsert_video(&other).unwrap();
    index.commit(3).unwrap();
    let mut tagged = ids(&index, "#Dance");
    tagged.sort();
    assert_eq!(tagged, [1, 3], "the title word alone does not make a hashtag");
    assert_eq!(ids(&index, "#dance @maya.demo"), [3]);
    assert_eq!(ids(&index, "＃ＤＡＮＣＥ lesson"), [3]);
}

#[test]
fn removal_and_updates_show_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.upsert_video(&video(1, "old title", &["old"])).unwrap();
    index.commit(1).unwrap();
    assert_eq!(ids(&index, "old"), [1]);
    index.upsert_video(&video(1, "fresh words", &["new"])).unwrap();
    index.commit(2).unwrap();
    assert!(ids(&index, "old").is_empty());
    assert_eq!(ids(&index, "fresh"), [1]);
    assert_eq!(ids(&index, "#new"), [1]);
    assert_eq!(index.video_count().unwrap(), 1);
    index.delete_video(1).unwrap();
    index.commit(3).unwrap();
    assert!(ids(&index, "fresh").is_empty());
    assert_eq!(index.video_count().unwrap(), 0);
}

#[test]
fn filters_paging_and_highlights() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    for i in 0..5u64 {
        let mut v = video(i + 1, "猫咪 cat video", &[]);
        v.description = format!("a long description about a cat number {i}");
        v.duration_ms = 10_000 * (i + 1);
        v.published_at_ms = NOW - (i as i64) * 24 * HOUR;
        index.upsert_video(&v).unwrap();
    }
    index.commit(5).unwrap();
    let q = |min, max, since| VideoQuery {
        q: "cat".into(),
        limit: 50,
        min_duration_ms: min,
        max_duration_ms: max,
        since_ms: since,
        ..Default::default()
    };
    let got = |q: VideoQuery| {
        let mut v: Vec<u64> =
            index.search_videos(&q, NOW).unwrap().items.into_iter().map(|h| h.id).collect();
        v.sort();
        v
    };
    assert_eq!(got(q(Some(20_000), Some(40_000), None)), [2, 3, 4]);
    assert_eq!(got(q(None, None, Some(NOW - 36 * HOUR))), [1, 2]);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .search_videos(
                &VideoQuery { q: "猫咪".into(), limit: 2, cursor, ..Default::default() },
                NOW,
            )
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|h| h.id));
        let first = &page.items[0].highlight;
        assert_eq!(first.title.as_deref(), Some("<b>猫咪</b> cat video"));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    let page = index
        .search_videos(&VideoQuery { q: "cat".into(), limit: 1, ..Default::default() }, NOW)
        .unwrap();
    let description = page.items[0].highlight.description.clone().unwrap();
    assert!(description.contains("<b>cat</b>"), "{description}");

    for bad in ["", "  ", "#"] {
        let q = VideoQuery { q: bad.into(), ..Default::default() };
        assert!(index.search_videos(&q, NOW).is_err(), "{bad:?}");
    }
    let q = VideoQuery { q: "cat".into(), cursor: Some("%%%".into()), ..Default::default() };
    assert!(index.search_videos(&q, NOW).is_err());
}

#[test]
fn creators_are_searchable_and_suggestions_complete_chinese_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let mut a = video(1, "北京烤鸭的做法", &["美食"]);
    a.likes = 10;
    let mut b = video(2, "北京一日游", &["旅行"]);
    b.likes = 500;
    index.upsert_video(&a).unwrap();
    index.upsert_video(&b).unwrap();
    index.upsert_video(&video(3, "上海外滩", &[])).unwrap();
    index.upsert_creator(&CreatorDoc { id: 100, username: "li.wei".into(), followers: 3 }).unwrap();
    index
        .upsert_creator(&CreatorDoc { id: 101, username: "wei.zhang".into(), followers: 30 })
        .unwrap();
    index.commit(4).unwrap();
    index.refresh_suggestions().unwrap();
    let got: Vec<String> = index.suggest("北京", 10).unwrap().into_iter().map(|s| s.text).collect();
    assert_eq!(got, ["北京一日游", "北京烤鸭的做法"]);
    let creators = index.suggest("@li", 10).unwrap();
    assert_eq!(creators[0].kind, SuggestionKind::Creator);
    assert_eq!(creators[0].text, "li.wei");

    let users = index.search_creators("@li.wei", None, 10).unwrap();
    assert_eq!(users.items[0].id, 100, "the exact name first");
    let mut both: Vec<u64> =
        index.search_creators("wei", None, 10).unwrap().items.iter().map(|h| h.id).collect();
    assert_eq!(both, [101, 100], "more followers first");
    both.clear();
    assert!(index.search_creators("  ", None, 10).is_err());
    // Creators never show up as videos.
    assert!(ids(&index, "wei").iter().all(|id| *id < 100));
}

#[test]
fn a_crash_loses_only_what_was_not_committed_and_the_offset_says_where_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    // The "log": event i indexes video i.
    let events: Vec<VideoDoc> =
        (0..10u64).map(|i| video(i, &format!("clip number{i}"), &[])).collect();
    {
        let index = open(dir.path());
        assert_eq!(index.committed_offset(), None);
        for e in &events[..6] {
            index.upsert_video(e).unwrap();
        }
        index.commit(6).unwrap();
        for e in &events[6..9] {
            index.upsert_video(e).unwrap();
        }
        // Dropped without a commit: the crash.
    }
    let index = open(dir.path());
    let resume = index.committed_offset().unwrap();
    assert_eq!(resume, 6);
    assert_eq!(index.video_count().unwrap(), 6);
    // Resume from the committed offset, replaying one record twice for good measure.
    for e in &events[resume as usize - 1..] {
        index.upsert_video(e).unwrap();
    }
    index.commit(10).unwrap();
    assert_eq!(index.video_count().unwrap(), 10, "no loss, no duplicates");
    assert_eq!(index.committed_offset(), Some(10));
    assert_eq!(ids(&index, "clip").len(), 10);
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
    /// Relevant documents, most relevant first (graded: the first gets the highest grade).
    relevant: Vec<u64>,
}

/// NDCG@k of `got` against graded `relevant`.
fn ndcg(got: &[u64], relevant: &[u64], k: usize) -> f64 {
    let grade = |id: u64| {
        relevant.iter().position(|r| *r == id).map_or(0.0, |p| (relevant.len() - p) as f64)
    };
    let dcg = |ids: &mut dyn Iterator<Item = u64>| {
        ids.take(k)
            .enumerate()
            .map(|(i, id)| (2f64.powf(grade(id)) - 1.0) / ((i + 2) as f64).log2())
            .sum::<f64>()
    };
    dcg(&mut got.iter().copied()) / dcg(&mut relevant.iter().copied())
}

#[test]
fn relevance_on_the_labelled_fixture() {
    let fixture: Fixture = serde_json::from_str(include_str!("fixtures/relevance.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    for d in &fixture.docs {
        index
            .upsert_video(&VideoDoc {
                id: d.id,
                title: d.title.clone(),
                description: d.description.clone(),
                tags: d.tags.clone(),
                creator_id: 1,
                creator: d.creator.clone(),
                published_at_ms: fixture.now_ms - d.age_hours * HOUR,
                duration_ms: 30_000,
                views: d.views,
                likes: d.likes,
            })
            .unwrap();
    }
    index.commit(0).unwrap();
    let mut total = 0.0;
    for q in &fixture.queries {
        let query = VideoQuery { q: q.q.clone(), limit: 10, ..Default::default() };
        let got: Vec<u64> = index
            .search_videos(&query, fixture.now_ms)
            .unwrap()
            .items
            .iter()
            .map(|h| h.id)
            .collect();
        let score = ndcg(&got, &q.relevant, 3);
        println!("{:>10} ndcg@3 {score:.3} got {got:?} want {:?}", q.q, q.relevant);
        assert!(score >= 0.6, "{}: {got:?} vs {:?}", q.q, q.relevant);
        total += score;
    }
    let mean = total / fixture.queries.len() as f64;
    println!("mean ndcg@3 {mean:.3}");
    assert!(mean >= 0.85, "mean NDCG@3 {mean:.3}");
}
