//! Offline evaluation of top-N recommenders: k-fold splits of interactions and the ranking
//! metrics `make eval` reports (Precision@K, Recall@K, NDCG@K with binary relevance).

use std::collections::HashSet;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::implicit::{AlsParams, Factors, Interactions, top_by};
use crate::itemitem::{ItemItem, ItemItemParams};

/// Mean ranking metrics over the users who have held-out items.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RankingMetrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub users: usize,
}

impl RankingMetrics {
    /// The mean of several folds' metrics (each fold weighs the same).
    pub fn mean(folds: &[RankingMetrics]) -> RankingMetrics {
        let n = folds.len().max(1) as f64;
        RankingMetrics {
            precision: folds.iter().map(|m| m.precision).sum::<f64>() / n,
            recall: folds.iter().map(|m| m.recall).sum::<f64>() / n,
            ndcg: folds.iter().map(|m| m.ndcg).sum::<f64>() / n,
            users: folds.iter().map(|m| m.users).sum(),
        }
    }
}

/// Precision, recall and NDCG at `k` of one ranked list against the relevant set. NDCG's
/// ideal list puts `min(k, |relevant|)` hits first.
pub fn metrics_at(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> (f64, f64, f64) {
    if relevant.is_empty() || k == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mut hits = 0usize;
    let mut dcg = 0.0;
    for (rank, item) in ranked.iter().take(k).enumerate() {
        if relevant.contains(item) {
            hits += 1;
            dcg += 1.0 / ((rank + 2) as f64).log2();
        }
    }
    let ideal: f64 = (0..k.min(relevant.len())).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    (hits as f64 / k as f64, hits as f64 / relevant.len() as f64, dcg / ideal)
}

/// Splits `pairs` into `folds` disjoint, shuffled parts of (almost) equal size.
pub fn k_fold(pairs: &[(u32, u32)], folds: usize, seed: u64) -> Vec<Vec<(u32, u32)>> {
    let mut shuffled = pairs.to_vec();
    shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let folds = folds.max(1);
    let mut parts = vec![Vec::new(); folds];
    for (i, pair) in shuffled.into_iter().enumerate() {
        parts[i % folds].push(pair);
    }
    parts
}

/// A model that ranks items for a user of the training data.
pub trait TopN {
    /// The `n` best items for `user`, never one of `seen`.
    fn recommend(&self, user: u32, seen: &HashSet<u32>, n: usize) -> Vec<u32>;
}

/// The item-popularity baseline: the most engaged-with items the user has not seen.
pub struct ItemPop {
    counts: Vec<u32>,
}

impl ItemPop {
    pub fn train(data: &Interactions) -> ItemPop {
        ItemPop { counts: data.item_counts() }
    }
}

impl TopN for ItemPop {
    fn recommend(&self, _user: u32, seen: &HashSet<u32>, n: usize) -> Vec<u32> {
        let scored = self
            .counts
            .iter()
            .enumerate()
            .filter(|(i, _)| !seen.contains(&(*i as u32)))
            .map(|(i, c)| (f64::from(*c), i as u32));
        top_by(n, scored)
    }
}

impl TopN for (&ItemItem, &Interactions) {
    fn recommend(&self, user: u32, seen: &HashSet<u32>, n: usize) -> Vec<u32> {
        self.0.top_n(self.1.of_user(user), n, seen)
    }
}

impl TopN for Factors {
    fn recommend(&self, user: u32, seen: &HashSet<u32>, n: usize) -> Vec<u32> {
        match self.user_vector(user) {
            Some(v) => self.top_n(v, n, seen),
            None => Vec::new(),
        }
    }
}

/// Metrics at `k` of `model` (trained on `train`) on the held-out `test` pairs.
pub fn evaluate(
    model: &dyn TopN,
    train: &Interactions,
    test: &[(u32, u32)],
    k: usize,
) -> RankingMetrics {
    let mut relevant: Vec<HashSet<u32>> = vec![HashSet::new(); train.users()];
    for &(u, i) in test {
        if let Some(set) = relevant.get_mut(u as usize) {
            set.insert(i);
        }
    }
    let mut sums = RankingMetrics::default();
    for (user, rel) in relevant.iter().enumerate() {
        if rel.is_empty() {
            continue;
        }
        let seen: HashSet<u32> = train.of_user(user as u32).iter().copied().collect();
        let ranked = model.recommend(user as u32, &seen, k);
        let (p, r, n) = metrics_at(&ranked, rel, k);
        sums.precision += p;
        sums.recall += r;
        sums.ndcg += n;
        sums.users += 1;
    }
    let n = sums.users.max(1) as f64;
    RankingMetrics {
        precision: sums.precision / n,
        recall: sums.recall / n,
        ndcg: sums.ndcg / n,
        users: sums.users,
    }
}

/// Both offline models, their scores standardised per user and mixed: `weight` on the
/// item-item model, the rest on the factor model.
pub struct Blend<'a> {
    pub factors: &'a Factors,
    pub itemitem: &'a ItemItem,
    pub data: &'a Interactions,
    pub weight: f64,
}

/// Scores shifted and scaled to mean 0 and deviation 1 (unchanged when constant).
fn standardise(scores: &mut [f64]) {
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n;
    let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
    scores.iter_mut().for_each(|s| *s = (*s - mean) / sd);
}

impl Blend<'_> {
    /// Mixed scores of every item for `user`.
    pub fn scores(&self, user: u32) -> Vec<f64> {
        let items = self.data.items();
        let mut f: Vec<f64> = match self.factors.user_vector(user) {
            Some(v) => (0..items as u32).map(|i| self.factors.score(v, i)).collect(),
            None => vec![0.0; items],
        };
        let mut e = vec![f64::NAN; items];
        for (score, item) in self.itemitem.scores(self.data.of_user(user)) {
            if let Some(slot) = e.get_mut(item as usize) {
                *slot = score;
            }
        }
        // Items the item-item model does not cover get its lowest score.
        let floor = e.iter().copied().filter(|x| !x.is_nan()).fold(f64::INFINITY, f64::min);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        e.iter_mut().filter(|x| x.is_nan()).for_each(|x| *x = floor);
        standardise(&mut f);
        standardise(&mut e);
        f.iter().zip(&e).map(|(a, b)| (1.0 - self.weight) * a + self.weight * b).collect()
    }
}

impl TopN for Blend<'_> {
    fn recommend(&self, user: u32, seen: &HashSet<u32>, n: usize) -> Vec<u32> {
        let scores = self.scores(user);
        top_by(
            n,
            scores
                .into_iter()
                .enumerate()
                .map(|(i, s)| (s, i as u32))
                .filter(|(_, i)| !seen.contains(i)),
        )
    }
}

/// The models `make eval` compares and their settings.
#[derive(Debug, Clone, Copy)]
pub struct ModelSettings {
    pub als: AlsParams,
    pub itemitem: ItemItemParams,
    /// The blend's weight on the item-item model.
    pub blend_weight: f64,
    pub seed: u64,
}

/// One fold's metrics of every model.
#[derive(Debug, Clone, Copy)]
pub struct FoldMetrics {
    pub item_pop: RankingMetrics,
    pub factors: RankingMetrics,
    pub itemitem: RankingMetrics,
    pub blend: RankingMetrics,
}

/// `folds`-fold cross-validation of every model over `pairs` (`users` x `items` dense
/// indices), metrics at `k`.
pub fn cross_validate(
    users: usize,
    items: usize,
    pairs: &[(u32, u32)],
    folds: usize,
    k: usize,
    settings: ModelSettings,
) -> Vec<FoldMetrics> {
    let parts = k_fold(pairs, folds, settings.seed);
    (0..parts.len())
        .map(|f| {
            let train_pairs = parts
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != f)
                .flat_map(|(_, p)| p.iter().copied());
            let train = Interactions::from_pairs(users, items, train_pairs);
            let test = &parts[f];
            let factors = Factors::train(&train, settings.als);
            let itemitem = ItemItem::train(&train, settings.itemitem);
            let blend = Blend {
                factors: &factors,
                itemitem: &itemitem,
                data: &train,
                weight: settings.blend_weight,
            };
            FoldMetrics {
                item_pop: evaluate(&ItemPop::train(&train), &train, test, k),
                factors: evaluate(&factors, &train, test, k),
                itemitem: evaluate(&(&itemitem, &train), &train, test, k),
                blend: evaluate(&blend, &train, test, k),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_known_lists() {
        let relevant: HashSet<u32> = [1, 2].into_iter().collect();
        // Hits at ranks 1 and 3 of 4.
        let (p, r, n) = metrics_at(&[1, 9, 2, 8], &relevant, 4);
        assert!((p - 0.5).abs() < 1e-12);
        assert!((r - 1.0).abs() < 1e-12);
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((n - (1.0 + 1.0 / 4f64.log2()) / ideal).abs() < 1e-12, "{n}");
        assert_eq!(metrics_at(&[1, 2], &relevant, 2), (1.0, 1.0, 1.0));
        assert_eq!(metrics_at(&[7, 8], &relevant, 2), (0.0, 0.0, 0.0));
    }

    #[test]
    fn folds_partition_the_pairs() {
        let mut pairs: Vec<(u32, u32)> = (0..103).map(|i| (i % 7, i)).collect();
        pairs.sort_unstable();
        let parts = k_fold(&pairs, 5, 1);
        assert_eq!(parts.len(), 5);
        let mut all: Vec<(u32, u32)> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, pairs);
        assert!(parts.iter().all(|p| p.len() == 20 || p.len() == 21));
    }

    #[test]
    fn item_pop_skips_seen_items() {
        let data = Interactions::from_pairs(3, 3, [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (0, 2)]);
        let pop = ItemPop::train(&data);
        let seen: HashSet<u32> = [0].into_iter().collect();
        assert_eq!(pop.recommend(0, &seen, 2), vec![1, 2]);
    }
}
