//! The ranking model: logistic regression predicting whether a shown clip is completed or
//! liked, from user, video and context features. The offline job trains it on the
//! platform's own impressions ([`LogisticModel::train`]) and reports AUC and log loss on a
//! held-out part; until a trained model exists the hand-tuned [`LogisticModel::fallback`]
//! ranks.

use rand::SeedableRng;
use rand::seq::SliceRandom;

/// The features of one (user, clip, context), in [`FEATURE_NAMES`] order.
pub const FEATURES: usize = 9;

/// What each feature is (for reports and the trained model's dump).
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "bias",
    "long_term",
    "item_item",
    "short_term",
    "follows_author",
    "log_popularity",
    "freshness",
    "completion_rate",
    "profile",
];

/// One candidate's features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features(pub [f64; FEATURES]);

impl Features {
    /// Builds the vector; the inputs are what the candidate sources and the catalogue know.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        long_term: f64,
        item_item: f64,
        short_term: f64,
        follows_author: bool,
        plays: u64,
        age_hours: f64,
        completion_rate: f64,
        profile: f64,
    ) -> Features {
        Features([
            1.0,
            long_term,
            item_item,
            short_term.clamp(-5.0, 5.0),
            if follows_author { 1.0 } else { 0.0 },
            (1.0 + plays as f64).ln(),
            (-age_hours.max(0.0) / 48.0).exp(),
            completion_rate.clamp(0.0, 1.0),
            profile.clamp(0.0, 3.0),
        ])
    }
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainParams {
    pub epochs: usize,
    pub learning_rate: f64,
    pub l2: f64,
    /// Share of examples held out to report metrics.
    pub holdout: f64,
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams { epochs: 20, learning_rate: 0.05, l2: 1e-4, holdout: 0.2, seed: 7 }
    }
}

/// What training reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainReport {
    pub examples: usize,
    pub holdout_auc: f64,
    pub holdout_log_loss: f64,
    /// The fallback's AUC on the same held-out examples, for comparison.
    pub fallback_auc: f64,
}

/// A linear model over [`Features`] with a logistic link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticModel {
    pub weights: [f64; FEATURES],
    pub trained: bool,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl LogisticModel {
    /// Hand-tuned weights: interest signals first, then what the creator's followers and
    /// everyone else did, then freshness. The long-term profile weighs like a follow.
    pub fn fallback() -> LogisticModel {
        LogisticModel { weights: [-2.0, 1.0, 1.0, 0.6, 0.8, 0.15, 0.5, 1.5, 0.8], trained: false }
    }

    /// The predicted probability of a completion or like.
    pub fn predict(&self, f: &Features) -> f64 {
        sigmoid(self.weights.iter().zip(&f.0).map(|(w, x)| w * x).sum())
    }

    /// Trains by SGD on `examples` (features, engaged); returns the model and its metrics on
    /// the held-out share.
    pub fn train(
        examples: &[(Features, bool)],
        params: TrainParams,
    ) -> (LogisticModel, TrainReport) {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        order.shuffle(&mut rng);
        let held = ((examples.len() as f64) * params.holdout.clamp(0.0, 0.9)) as usize;
        let (test, train) = order.split_at(held);
        let mut train = train.to_vec();
        let mut w = [0.0; FEATURES];
        for epoch in 0..params.epochs {
            train.shuffle(&mut rng);
            let lr = params.learning_rate / (1.0 + epoch as f64 * 0.5);
            for &i in &train {
                let (f, y) = &examples[i];
                let p = sigmoid(w.iter().zip(&f.0).map(|(w, x)| w * x).sum());
                let g = p - if *y { 1.0 } else { 0.0 };
                for (wj, xj) in w.iter_mut().zip(&f.0) {
                    *wj -= lr * (g * xj + params.l2 * *wj);
                }
            }
        }
        let model = LogisticModel { weights: w, trained: true };
        let judged: Vec<(f64, bool)> =
            test.iter().map(|&i| (model.predict(&examples[i].0), examples[i].1)).collect();
        let fallback = LogisticModel::fallback();
        let fallback_judged: Vec<(f64, bool)> =
            test.iter().map(|&i| (fallback.predict(&examples[i].0), examples[i].1)).collect();
        let report = TrainReport {
            examples: examples.len(),
            holdout_auc: auc(&judged),
            holdout_log_loss: log_loss(&judged),
            fallback_auc: auc(&fallback_judged),
        };
        (model, report)
    }
}

/// Area under the ROC curve (ties count half); 0.5 when one class is missing.
pub fn auc(judged: &[(f64, bool)]) -> f64 {
    let mut sorted = judged.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // Sum of positive ranks (average rank within ties), Mann-Whitney U.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += sorted[i..j].iter().filter(|(_, y)| *y).count() as f64 * avg_rank;
        i = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Mean log loss (probabilities clamped away from 0 and 1).
pub fn log_loss(judged: &[(f64, bool)]) -> f64 {
    let n = judged.len().max(1) as f64;
    judged
        .iter()
        .map(|(p, y)| {
            let p = p.clamp(1e-7, 1.0 - 1e-7);
            if *y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn auc_of_known_orders() {
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(auc(&[(0.9, false), (0.1, true)]), 0.0);
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), 0.5);
        assert_eq!(auc(&[(0.5, true)]), 0.5);
    }

    /// Engagement generated from a hidden linear rule: training recovers a model that ranks
    /// held-out examples about as well as the rule itself, and better than the fallback.
    #[test]
    fn learns_a_hidden_rule() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let hidden = [-1.0, 0.2, 0.1, 2.0, 0.0, -0.3, 0.0, 0.5, 0.3];
        let examples: Vec<(Features, bool)> = (0..20_000)
            .map(|_| {
                let f = Features::new(
                    rng.r#gen::<f64>(),
                    rng.r#gen::<f64>(),
                    rng.r#gen::<f64>() * 4.0 - 2.0,
                    rng.r#gen::<bool>(),
                    rng.gen_range(0..100_000),
                    rng.r#gen::<f64>() * 100.0,
                    rng.r#gen::<f64>(),
                    rng.r#gen::<f64>(),
                );
                let p = sigmoid(hidden.iter().zip(&f.0).map(|(w, x)| w * x).sum());
                (f, rng.r#gen::<f64>() < p)
            })
            .collect();
        let (model, report) = LogisticModel::train(&examples, TrainParams::default());
        assert!(model.trained);
        assert!(report.holdout_auc > 0.75, "{report:?}");
        assert!(report.holdout_auc > report.fallback_auc, "{report:?}");
        // The dominant hidden weight is recovered as the largest.
        let largest = (1..FEATURES)
            .max_by(|a, b| model.weights[*a].abs().total_cmp(&model.weights[*b].abs()));
        assert_eq!(largest, Some(3), "{:?}", model.weights);
    }
}
