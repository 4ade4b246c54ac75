//! Duplicate-detection stage (F3.3): exact duplicates by content hash (SHA-256), near
//! duplicates by the 64-bit perceptual hashes of sampled frames.
//!
//! Frame hashes live in a BK-tree (a metric tree under Hamming distance) so finding the frames
//! within `near_threshold_bits` of a query frame does not scan every stored frame. Candidates
//! found that way are then scored as whole clips: the mean, over the query's frames, of the
//! Hamming distance to the nearest frame of the candidate.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use quicktok_core::Id;
use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

/// Thresholds of near-duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Two frames match when their hashes differ in at most this many bits, and a clip is a
    /// near duplicate when its mean frame distance is at most this (default 10, at most 64).
    pub near_threshold_bits: u32,
    /// A candidate needs at least this many matching query frames (capped at the number of
    /// usable query frames, so very short clips can still match); default 3.
    pub min_matching_frames: usize,
    /// Ignore frames hashed as all zeros or all ones — what uniform (e.g. black) frames hash
    /// to — since every video has them; default `true`.
    pub skip_uniform_frames: bool,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { near_threshold_bits: 10, min_matching_frames: 3, skip_uniform_frames: true }
    }
}

/// Result of a duplicate check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupVerdict {
    Unique,
    /// Byte-identical to this video (the oldest, when several are).
    Exact(Id),
    /// Visually close to this video.
    Near {
        of: Id,
        /// Mean over the query's frames of the Hamming distance to the nearest candidate frame.
        distance: f64,
        /// How many query frames have a candidate frame within `near_threshold_bits`.
        matching_frames: usize,
    },
}

/// A SHA-256 digest, parsed from and shown as 64 hexadecimal digits.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl FromStr for ContentHash {
    type Err = PipelineError;

    fn from_str(s: &str) -> Result<ContentHash> {
        let invalid = || PipelineError::InvalidContentHash(s.chars().take(80).collect());
        if s.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(ContentHash(out))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// Number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Mean over `query` of the Hamming distance to the nearest hash in `candidate`; 64 (the
/// maximum) when either is empty.
pub fn clip_distance(query: &[u64], candidate: &[u64]) -> f64 {
    if query.is_empty() || candidate.is_empty() {
        return 64.0;
    }
    let total: u64 = query
        .iter()
        .map(|&q| u64::from(candidate.iter().map(|&c| hamming(q, c)).min().unwrap_or(64)))
        .sum();
    total as f64 / query.len() as f64
}

/// A BK-tree over 64-bit hashes under Hamming distance: a set with range queries.
#[derive(Debug, Clone, Default)]
pub struct BkTree {
    nodes: Vec<BkNode>,
}

#[derive(Debug, Clone)]
struct BkNode {
    hash: u64,
    /// (distance to this node, child index); at most 64 entries, one per distance.
    children: Vec<(u32, usize)>,
}

impl BkTree {
    pub fn new() -> BkTree {
        BkTree::default()
    }

    /// Number of distinct hashes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a hash; `false` when it was already there.
    pub fn insert(&mut self, hash: u64) -> bool {
        let new_index = self.nodes.len();
        if new_index == 0 {
            self.nodes.push(BkNode { hash, children: Vec::new() });
            return true;
        }
        // Iterative: a degenerate tree can be deeper than the stack likes.
        let mut at = 0;
        loop {
            let node = &self.nodes[at];
            let d = hamming(node.hash, hash);
            if d == 0 {
                return false;
            }
            match node.children.iter().find(|(cd, _)| *cd == d) {
                Some(&(_, child)) => at = child,
                None => {
                    self.nodes[at].children.push((d, new_index));
                    self.nodes.push(BkNode { hash, children: Vec::new() });
                    return true;
                }
            }
        }
    }

    /// Whether the hash is in the tree.
    pub fn contains(&self, hash: u64) -> bool {
        !self.find_within(hash, 0).is_empty()
    }

    /// Every stored hash within `radius` bits of `query`, with its distance, in no particular
    /// order.
    pub fn find_within(&self, query: u64, radius: u32) -> Vec<(u64, u32)> {
        let mut found = Vec::new();
        if self.nodes.is_empty() {
            return found;
        }
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at];
            let d = hamming(node.hash, query);
            if d <= radius {
                found.push((node.hash, d));
            }
            // Triangle inequality: a match below a child at distance `cd` has
            // |cd - d| <= radius.
            let (lo, hi) = (d.saturating_sub(radius), d.saturating_add(radius));
            stack.extend(
                node.children.iter().filter(|(cd, _)| (lo..=hi).contains(cd)).map(|&(_, c)| c),
            );
        }
        found
    }

    /// All stored hashes, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes.iter().map(|n| n.hash)
    }
}

#[derive(Debug, Clone)]
struct StoredVideo {
    content: ContentHash,
    /// Usable frame hashes (uniform ones dropped when so configured).
    frames: Vec<u64>,
}

/// In-memory index of the fingerprints of published (or in-flight) videos. The orchestrator
/// rebuilds it at start-up from stored fingerprints with [`DedupIndex::insert`], calls
/// [`DedupIndex::check`] for each new upload before inserting it, and
/// [`DedupIndex::remove`]s deleted videos.
#[derive(Debug, Clone)]
pub struct DedupIndex {
    config: DedupConfig,
    videos: HashMap<Id, StoredVideo>,
    by_content: HashMap<ContentHash, BTreeSet<Id>>,
    /// Frame hash -> videos with that frame. Only live hashes have an entry.
    owners: HashMap<u64, BTreeSet<Id>>,
    /// Every frame hash ever inserted since the last rebuild; BK-trees cannot delete, so
    /// removed hashes stay as stale nodes until there are more stale than live ones.
    tree: BkTree,
    stale: usize,
}

/// Below this many stale nodes a rebuild is not worth it.
const MIN_STALE_FOR_REBUILD: usize = 1024;

impl DedupIndex {
    /// An empty index.
    pub fn new(config: DedupConfig) -> Result<DedupIndex> {
        if config.near_threshold_bits > 64 {
            return Err(PipelineError::InvalidConfig(format!(
                "dedup.near_threshold_bits is {}, at most 64",
                config.near_threshold_bits
            )));
        }
        Ok(DedupIndex {
            config,
            videos: HashMap::new(),
            by_content: HashMap::new(),
            owners: HashMap::new(),
            tree: BkTree::new(),
            stale: 0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    /// Number of indexed videos.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    pub fn contains(&self, video_id: Id) -> bool {
        self.videos.contains_key(&video_id)
    }

    fn usable(&self, frames: &[u64]) -> Vec<u64> {
        frames
            .iter()
            .copied()
            .filter(|&h| !(self.config.skip_uniform_frames && (h == 0 || h == u64::MAX)))
            .collect()
    }

    /// Adds (or replaces) a video's fingerprint. `content_hash` is SHA-256 as hex.
    pub fn insert(
        &mut self,
        video_id: Id,
        content_hash: &str,
        frame_hashes: Vec<u64>,
    ) -> Result<()> {
        let content: ContentHash = content_hash.parse()?;
        self.remove(video_id);
        let frames = self.usable(&frame_hashes);
        for &h in &frames {
            let owners = self.owners.entry(h).or_default();
            if owners.is_empty() && !self.tree.insert(h) {
                // Already in the tree as a stale node: live again.
                self.stale = self.stale.saturating_sub(1);
            }
            owners.insert(video_id);
        }
        self.by_content.entry(content).or_default().insert(video_id);
        self.videos.insert(video_id, StoredVideo { content, frames });
        Ok(())
    }

    /// Forgets a video; `false` when it was not indexed.
    pub fn remove(&mut self, video_id: Id) -> bool {
        let Some(video) = self.videos.remove(&video_id) else {
            return false;
        };
        if let Some(ids) = self.by_content.get_mut(&video.content) {
            ids.remove(&video_id);
            if ids.is_empty() {
                self.by_content.remove(&video.content);
            }
        }
        for h in video.frames {
            if let Some(owners) = self.owners.get_mut(&h)
                && owners.remove(&video_id)
                && owners.is_empty()
            {
                self.owners.remove(&h);
                self.stale += 1;
            }
        }
        if self.stale >= MIN_STALE_FOR_REBUILD && self.stale > self.owners.len() {
            self.rebuild_tree();
        }
        true
    }

    fn rebuild_tree(&mut self) {
        let mut tree = BkTree::new();
        for &h in self.owners.keys() {
            tree.insert(h);
        }
        self.tree = tree;
        self.stale = 0;
    }

    /// Checks a new upload against the index (the upload itself should not be indexed yet).
    pub fn check(&self, content_hash: &str, frame_hashes: &[u64]) -> Result<DedupVerdict> {
        let content: ContentHash = content_hash.parse()?;
        if let Some(&oldest) = self.by_content.get(&content).and_then(|ids| ids.first()) {
            return Ok(DedupVerdict::Exact(oldest));
        }
        let query = self.usable(frame_hashes);
        if query.is_empty() {
            return Ok(DedupVerdict::Unique);
        }
        let radius = self.config.near_threshold_bits;
        // Candidate -> (query frames with a match, last query frame counted).
        let mut candidates: HashMap<Id, (usize, usize)> = HashMap::new();
        for (i, &q) in query.iter().enumerate() {
            for (h, _) in self.tree.find_within(q, radius) {
                for &id in self.owners.get(&h).into_iter().flatten() {
                    let entry = candidates.entry(id).or_insert((0, usize::MAX));
                    if entry.1 != i {
                        *entry = (entry.0 + 1, i);
                    }
                }
            }
        }
        let required = self.config.min_matching_frames.min(query.len()).max(1);
        let mut best: Option<(f64, Id, usize)> = None;
        for (id, (matching, _)) in candidates {
            let Some(video) = self.videos.get(&id) else { continue };
            if matching < required {
                continue;
            }
            let distance = clip_distance(&query, &video.frames);
            if distance > f64::from(radius) {
                continue;
            }
            // Closest wins; on a tie the oldest (smallest id) for a stable answer.
            let better = best.is_none_or(|(bd, bid, _)| (distance, id) < (bd, bid));
            if better {
                best = Some((distance, id, matching));
            }
        }
        Ok(match best {
            Some((distance, of, matching_frames)) => {
                DedupVerdict::Near { of, distance, matching_frames }
            }
            None => DedupVerdict::Unique,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH_A: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HASH_B: &str = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B856";
    const HASH_C: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    /// A deterministic pseudo-random sequence (splitmix64), so tests need no rand crate.
    fn hashes(seed: u64, n: usize) -> Vec<u64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect()
    }

    /// Flips `bits` distinct low-order-spread bits of each hash (a re-encode's noise).
    fn perturb(frames: &[u64], bits: u32) -> Vec<u64> {
        frames
            .iter()
            .enumerate()
            .map(|(i, &h)| (0..bits).fold(h, |h, b| h ^ (1u64 << ((i as u32 * 7 + b * 13) % 64))))
            .collect()
    }

    fn index() -> DedupIndex {
        DedupIndex::new(DedupConfig::default()).unwrap()
    }

    #[test]
    fn content_hash_parses_and_prints() {
        let h: ContentHash = HASH_B.parse().unwrap();
        assert_eq!(h.to_string(), HASH_B.to_lowercase());
        for bad in
            ["", "abc", &HASH_A[..63], &format!("{}g", &HASH_A[..63]), "é".repeat(32).as_str()]
        {
            assert!(matches!(
                bad.parse::<ContentHash>(),
                Err(PipelineError::InvalidContentHash(_))
            ));
        }
    }

    #[test]
    fn exact_duplicate_by_content_hash() {
        let mut idx = index();
        idx.insert(Id(7), HASH_A, hashes(1, 8)).unwrap();
        idx.insert(Id(3), HASH_A, hashes(2, 8)).unwrap();
        assert_eq!(idx.check(HASH_A, &[]).unwrap(), DedupVerdict::Exact(Id(3)));
        // Case of the hex does not matter.
        assert_eq!(idx.check(&HASH_A.to_uppercase(), &[]).unwrap(), DedupVerdict::Exact(Id(3)));
        assert_eq!(idx.check(HASH_C, &hashes(99, 8)).unwrap(), DedupVerdict::Unique);
        assert!(idx.check("nope", &[]).is_err());
        assert!(idx.insert(Id(1), "nope", vec![]).is_err());
        assert!(!idx.contains(Id(1)));
    }

    #[test]
    fn near_duplicate_of_reencoded_clip() {
        let mut idx = index();
        let original = hashes(10, 16);
        idx.insert(Id(1), HASH_A, original.clone()).unwrap();
        idx.insert(Id(2), HASH_B, hashes(20, 16)).unwrap();

        let reencoded = perturb(&original, 4);
        let v = idx.check(HASH_C, &reencoded).unwrap();
        assert_eq!(v, DedupVerdict::Near { of: Id(1), distance: 4.0, matching_frames: 16 });

        // A trimmed copy (a subset of the frames) is still a near duplicate.
        let v = idx.check(HASH_C, &perturb(&original[4..10], 2)).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(1), .. }), "{v:?}");

        // Too noisy, or unrelated: unique.
        assert_eq!(idx.check(HASH_C, &perturb(&original, 14)).unwrap(), DedupVerdict::Unique);
        assert_eq!(idx.check(HASH_C, &hashes(30, 16)).unwrap(), DedupVerdict::Unique);
    }

    #[test]
    fn few_matching_frames_are_not_enough() {
        let mut idx = index();
        let original = hashes(10, 16);
        idx.insert(Id(1), HASH_A, original.clone()).unwrap();
        // Two shared frames among sixteen unrelated ones: below min_matching_frames and far
        // on average.
        let mut query = hashes(40, 14);
        query.extend_from_slice(&original[..2]);
        assert_eq!(idx.check(HASH_C, &query).unwrap(), DedupVerdict::Unique);
    }

    #[test]
    fn closest_candidate_wins() {
        let mut idx = index();
        let base = hashes(50, 12);
        idx.insert(Id(5), HASH_A, perturb(&base, 6)).unwrap();
        idx.insert(Id(9), HASH_B, perturb(&base, 1)).unwrap();
        let v = idx.check(HASH_C, &base).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(9), .. }), "{v:?}");
    }

    #[test]
    fn uniform_frames_are_ignored() {
        let mut idx = index();
        idx.insert(Id(1), HASH_A, vec![0, 0, u64::MAX, 0]).unwrap();
        assert_eq!(idx.check(HASH_C, &[0, 0, 0, u64::MAX]).unwrap(), DedupVerdict::Unique);
        let config = DedupConfig { skip_uniform_frames: false, ..DedupConfig::default() };
        let mut strict = DedupIndex::new(config).unwrap();
        strict.insert(Id(1), HASH_A, vec![0, 0, u64::MAX, 0]).unwrap();
        let v = strict.check(HASH_C, &[0, 0, 0, u64::MAX]).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(1), .. }), "{v:?}");
    }

    #[test]
    fn remove_and_replace() {
        let mut idx = index();
        let frames = hashes(60, 8);
        idx.insert(Id(1), HASH_A, frames.clone()).unwrap();
        idx.insert(Id(2), HASH_B, frames.clone()).unwrap();
        assert!(idx.remove(Id(1)));
        assert!(!idx.remove(Id(1)));
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.check(HASH_A, &[]).unwrap(), DedupVerdict::Unique);
        let v = idx.check(HASH_C, &frames).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(2), .. }), "{v:?}");
        // Re-inserting an id replaces its fingerprint.
        idx.insert(Id(2), HASH_C, hashes(61, 8)).unwrap();
        assert_eq!(idx.check(HASH_B, &frames).unwrap(), DedupVerdict::Unique);
        assert_eq!(idx.check(HASH_C, &[]).unwrap(), DedupVerdict::Exact(Id(2)));
    }

    #[test]
    fn many_removals_rebuild_the_tree_and_keep_answers() {
        let mut idx = index();
        for i in 0..300u64 {
            idx.insert(Id(i), HASH_A, hashes(1000 + i, 8)).unwrap();
        }
        for i in 0..290u64 {
            idx.remove(Id(i));
        }
        assert!(idx.tree.len() < 300 * 8, "tree was rebuilt");
        assert_eq!(idx.tree.len() - idx.stale, idx.owners.len());
        let v = idx.check(HASH_B, &perturb(&hashes(1295, 8), 3)).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(295), .. }), "{v:?}");
        assert_eq!(idx.check(HASH_B, &hashes(1005, 8)).unwrap(), DedupVerdict::Unique);
        // A hash removed, then added again, is live once more.
        idx.insert(Id(5), HASH_C, hashes(1005, 8)).unwrap();
        let v = idx.check(HASH_B, &hashes(1005, 8)).unwrap();
        assert!(matches!(v, DedupVerdict::Near { of: Id(5), .. }), "{v:?}");
    }

    #[test]
    fn config_validation_and_toml() {
        let bad = DedupConfig { near_threshold_bits: 65, ..DedupConfig::default() };
        assert!(DedupIndex::new(bad).is_err());
        let c: DedupConfig = toml::from_str("near_threshold_bits = 8").unwrap();
        assert_eq!(c.min_matching_frames, 3);
        assert!(toml::from_str::<DedupConfig>("threshold = 8").is_err());
    }

    #[test]
    fn verdict_json_shape() {
        assert_eq!(serde_json::to_value(DedupVerdict::Unique).unwrap(), "unique");
        let exact = serde_json::to_value(DedupVerdict::Exact(Id(42))).unwrap();
        assert_eq!(exact, serde_json::json!({"exact": "42"}));
    }

    #[test]
    fn clip_distance_basics() {
        assert_eq!(clip_distance(&[], &[1]), 64.0);
        assert_eq!(clip_distance(&[0b1011], &[0b1000, 0b1111]), 1.0);
        assert_eq!(clip_distance(&[1, 2], &[1, 2, 3]), 0.0);
    }

    /// Hashes clustered around a few centres, so small radii find something.
    fn clustered() -> impl Strategy<Value = Vec<u64>> {
        (
            proptest::collection::vec(any::<u64>(), 1..6),
            proptest::collection::vec((0usize..6, any::<u64>(), 0u32..20), 0..200),
        )
            .prop_map(|(centres, points)| {
                points
                    .into_iter()
                    .map(|(c, noise, bits)| {
                        let centre = centres[c % centres.len()];
                        // Keep `bits` of the noise's set bits at most: few flips.
                        let mut mask = 0u64;
                        let mut n = noise;
                        for _ in 0..bits {
                            if n == 0 {
                                break;
                            }
                            let low = n & n.wrapping_neg();
                            mask |= low;
                            n &= n - 1;
                        }
                        centre ^ mask
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn bk_tree_matches_brute_force(stored in clustered(), query in any::<u64>(), use_stored in any::<bool>(), pick in any::<usize>(), radius in 0u32..=64) {
            let mut tree = BkTree::new();
            for &h in &stored {
                tree.insert(h);
            }
            let distinct: BTreeSet<u64> = stored.iter().copied().collect();
            prop_assert_eq!(tree.len(), distinct.len());
            let query = if use_stored && !stored.is_empty() { stored[pick % stored.len()] ^ 1 } else { query };
            let mut got = tree.find_within(query, radius);
            got.sort_unstable();
            let want: Vec<(u64, u32)> = distinct
                .iter()
                .map(|&h| (h, hamming(h, query)))
                .filter(|&(_, d)| d <= radius)
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn bk_tree_radius_sweep_matches_brute_force(stored in proptest::collection::vec(any::<u64>(), 0..300), query in any::<u64>()) {
            let mut tree = BkTree::new();
            for &h in &stored {
                tree.insert(h);
            }
            let distinct: BTreeSet<u64> = stored.iter().copied().collect();
            for radius in [0u32, 8, 24, 32, 40, 64] {
                let mut got: Vec<u64> = tree.find_within(query, radius).into_iter().map(|(h, _)| h).collect();
                got.sort_unstable();
                let want: Vec<u64> = distinct.iter().copied().filter(|&h| hamming(h, query) <= radius).collect();
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn stored_clip_is_found_as_near_duplicate_of_itself(seed in any::<u64>(), n in 1usize..24) {
            let mut idx = index();
            let frames = hashes(seed, n);
            idx.insert(Id(1), HASH_A, frames.clone()).unwrap();
            let usable = frames.iter().filter(|&&h| h != 0 && h != u64::MAX).count();
            let v = idx.check(HASH_B, &frames).unwrap();
            if usable > 0 {
                prop_assert_eq!(v, DedupVerdict::Near { of: Id(1), distance: 0.0, matching_frames: usable });
            }
        }
    }
}
