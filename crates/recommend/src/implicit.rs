//! The offline model: implicit-feedback matrix factorisation (iALS, Hu, Koren and Volinsky
//! 2008, with the frequency-scaled regularisation of Rendle et al. 2021) trained on who
//! engaged with what. Its item factors give item-to-item similarity (co-engagement) and its
//! user factors long-term interests; a user's recent events are folded in without retraining.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};

/// Who engaged with what: dense user and item indices (`0..users`, `0..items`).
#[derive(Debug, Clone, Default)]
pub struct Interactions {
    by_user: Vec<Vec<u32>>,
    by_item: Vec<Vec<u32>>,
}

impl Interactions {
    /// From (user, item) pairs; duplicates count once.
    pub fn from_pairs(
        users: usize,
        items: usize,
        pairs: impl IntoIterator<Item = (u32, u32)>,
    ) -> Self {
        let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); users];
        let mut by_item: Vec<Vec<u32>> = vec![Vec::new(); items];
        for (u, i) in pairs {
            if (u as usize) < users && (i as usize) < items {
                by_user[u as usize].push(i);
            }
        }
        for (u, list) in by_user.iter_mut().enumerate() {
            list.sort_unstable();
            list.dedup();
            for &i in list.iter() {
                by_item[i as usize].push(u as u32);
            }
        }
        Interactions { by_user, by_item }
    }

    pub fn users(&self) -> usize {
        self.by_user.len()
    }

    pub fn items(&self) -> usize {
        self.by_item.len()
    }

    /// The items `user` engaged with, sorted.
    pub fn of_user(&self, user: u32) -> &[u32] {
        self.by_user.get(user as usize).map_or(&[], Vec::as_slice)
    }

    /// How many users engaged with each item.
    pub fn item_counts(&self) -> Vec<u32> {
        self.by_item.iter().map(|u| u.len() as u32).collect()
    }
}

/// Training settings. The defaults were chosen on MovieLens 100k (see `docs/recommendation.md`).
#[derive(Debug, Clone, Copy)]
pub struct AlsParams {
    /// Embedding size.
    pub factors: usize,
    pub iterations: usize,
    /// L2 strength, scaled per row by `(observed + unobserved_weight * rows)^exponent`.
    pub regularization: f64,
    /// Weight of every unobserved (user, item) cell relative to an observed one (which
    /// weighs 1): the implicit "probably not interested" signal.
    pub unobserved_weight: f64,
    /// Frequency scaling exponent of the regularisation (0 = plain L2).
    pub exponent: f64,
    /// Initial factors ~ N(0, stddev / sqrt(factors)).
    pub init_stddev: f64,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            iterations: 12,
            regularization: 0.03,
            unobserved_weight: 0.1,
            exponent: 1.0,
            init_stddev: 0.1,
            seed: 42,
        }
    }
}

/// A trained model: one vector per user and per item.
#[derive(Debug, Clone)]
pub struct Factors {
    k: usize,
    users: Vec<f64>,
    items: Vec<f64>,
    /// `Yᵀ Y` of the item vectors, kept for fold-in (it costs `items x k^2` to compute).
    item_gram: Vec<f64>,
    /// The item vectors in f32, for scans over every item (twice the lanes per instruction).
    items_f32: Vec<f32>,
    params: AlsParams,
}

impl Factors {
    /// Trains on `data` (alternating exact least-squares solves, both halves threaded).
    pub fn train(data: &Interactions, params: AlsParams) -> Factors {
        let k = params.factors.max(1);
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let scale = params.init_stddev / (k as f64).sqrt();
        let mut init = |n: usize| -> Vec<f64> {
            (0..n * k).map(|_| (rng.r#gen::<f64>() * 2.0 - 1.0) * scale * 3f64.sqrt()).collect()
        };
        let mut users = init(data.users());
        let mut items = init(data.items());
        for _ in 0..params.iterations {
            users = solve_side(&data.by_user, &items, k, &params, data.items());
            items = solve_side(&data.by_item, &users, k, &params, data.users());
        }
        let item_gram = gramian(&items, k);
        let items_f32 = items.iter().map(|x| *x as f32).collect();
        Factors { k, users, items, item_gram, items_f32, params }
    }

    pub fn factors(&self) -> usize {
        self.k
    }

    pub fn item_vector(&self, item: u32) -> Option<&[f64]> {
        let start = item as usize * self.k;
        self.items.get(start..start + self.k)
    }

    pub fn user_vector(&self, user: u32) -> Option<&[f64]> {
        let start = user as usize * self.k;
        self.users.get(start..start + self.k)
    }

    /// A user vector for `engaged` items computed now against the trained item factors
    /// (fold-in): how new and changed users get a vector between trainings.
    pub fn fold_in(&self, engaged: &[u32]) -> Vec<f64> {
        let valid: Vec<u32> =
            engaged.iter().copied().filter(|&i| (i as usize) < self.items.len() / self.k).collect();
        solve_row(
            &valid,
            &self.items,
            &self.item_gram,
            self.k,
            &self.params,
            self.items.len() / self.k,
        )
    }

    /// Affinity of a user vector for an item.
    pub fn score(&self, user: &[f64], item: u32) -> f64 {
        self.item_vector(item).map_or(f64::NEG_INFINITY, |v| dot(user, v))
    }

    /// The `n` best items for `user` (a vector), skipping `exclude`, best first.
    pub fn top_n(&self, user: &[f64], n: usize, exclude: &HashSet<u32>) -> Vec<u32> {
        self.top_scored(user, n, |i| exclude.contains(&i)).into_iter().map(|(_, i)| i).collect()
    }

    /// The `n` best (score, item) for `user`, skipping items `skip` says to.
    pub fn top_scored(
        &self,
        user: &[f64],
        n: usize,
        skip: impl Fn(u32) -> bool,
    ) -> Vec<(f64, u32)> {
        let user: Vec<f32> = user.iter().map(|x| *x as f32).collect();
        let scored = self
            .items_f32
            .chunks_exact(self.k)
            .enumerate()
            .map(|(i, v)| (f64::from(dot_f32(&user, v)), i as u32))
            .filter(|(_, i)| !skip(*i));
        top_scored(n, scored)
    }

    /// Item vectors trained.
    pub fn items(&self) -> usize {
        self.items.len() / self.k
    }
}

/// The `n` highest-scored ids, best first (ties: lower id first).
pub fn top_by(n: usize, scored: impl Iterator<Item = (f64, u32)>) -> Vec<u32> {
    top_scored(n, scored).into_iter().map(|(_, id)| id).collect()
}

/// The `n` highest (score, id) pairs, best first (ties: lower id first).
pub fn top_scored(n: usize, scored: impl Iterator<Item = (f64, u32)>) -> Vec<(f64, u32)> {
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked>> =
        std::collections::BinaryHeap::with_capacity(n + 1);
    if n == 0 {
        return Vec::new();
    }
    for (score, id) in scored {
        let candidate = Ranked(score, id);
        if heap.len() < n {
            heap.push(std::cmp::Reverse(candidate));
        } else if let Some(mut worst) = heap.peek_mut()
            && candidate > worst.0
        {
            // Most items lose to the current n-th best: one comparison, no heap work.
            *worst = std::cmp::Reverse(candidate);
        }
    }
    let mut out: Vec<Ranked> = heap.into_iter().map(|r| r.0).collect();
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|r| (r.0, r.1)).collect()
}

/// A score with its id, ordered by score then by lower id (total order, NaN lowest).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked(f64, u32);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = if self.0.is_nan() { f64::NEG_INFINITY } else { self.0 };
        let b = if other.0.is_nan() { f64::NEG_INFINITY } else { other.0 };
        a.total_cmp(&b).then_with(|| other.1.cmp(&self.1))
    }
}

/// Dot product in eight independent lanes (so the compiler can vectorise it without
/// reordering a single running sum).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `Vᵀ V` of a row-major `n x k` matrix.
fn gramian(v: &[f64], k: usize) -> Vec<f64> {
    let mut g = vec![0.0; k * k];
    for row in v.chunks_exact(k) {
        add_outer(&mut g, row, 1.0, k);
    }
    g
}

fn add_outer(m: &mut [f64], v: &[f64], weight: f64, k: usize) {
    for (a, &va) in v.iter().enumerate() {
        let wa = weight * va;
        let line = &mut m[a * k..(a + 1) * k];
        for (cell, &vb) in line.iter_mut().zip(v) {
            *cell += wa * vb;
        }
    }
}

/// New vectors for every row of one side given the other side's fixed vectors.
fn solve_side(
    rows: &[Vec<u32>],
    other: &[f64],
    k: usize,
    p: &AlsParams,
    others: usize,
) -> Vec<f64> {
    let gram = gramian(other, k);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);
    let chunk = rows.len().div_ceil(threads).max(1);
    let mut out = vec![0.0; rows.len() * k];
    std::thread::scope(|scope| {
        for (rows, out) in rows.chunks(chunk).zip(out.chunks_mut(chunk * k)) {
            let gram = &gram;
            scope.spawn(move || {
                for (row, dest) in rows.iter().zip(out.chunks_exact_mut(k)) {
                    dest.copy_from_slice(&solve_row(row, other, gram, k, p, others));
                }
            });
        }
    });
    out
}

/// The least-squares vector of one row: observed cells weigh 1 (target 1), every cell
/// weighs `unobserved_weight` (target 0), plus the scaled L2 term.
fn solve_row(
    observed: &[u32],
    other: &[f64],
    gram: &[f64],
    k: usize,
    p: &AlsParams,
    others: usize,
) -> Vec<f64> {
    let w0 = p.unobserved_weight;
    let mut a: Vec<f64> = gram.iter().map(|g| g * w0).collect();
    let mut b = vec![0.0; k];
    for &j in observed {
        let v = &other[j as usize * k..(j as usize + 1) * k];
        // Observed weight 1 replaces the unobserved w0 already counted in the gramian.
        add_outer(&mut a, v, 1.0 - w0, k);
        for (bi, vi) in b.iter_mut().zip(v) {
            *bi += vi;
        }
    }
    let lambda = p.regularization * (observed.len() as f64 + w0 * others as f64).powf(p.exponent);
    for d in 0..k {
        a[d * k + d] += lambda;
    }
    cholesky_solve(&mut a, &mut b, k);
    b
}

/// Solves `A x = b` for symmetric positive-definite `A` in place (`b` becomes `x`). A
/// non-positive pivot (impossible with `lambda > 0`) leaves a zero vector.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) {
    for j in 0..k {
        let mut d = a[j * k + j];
        for m in 0..j {
            d -= a[j * k + m] * a[j * k + m];
        }
        if d <= 0.0 || !d.is_finite() {
            b.iter_mut().for_each(|x| *x = 0.0);
            return;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for m in 0..j {
                s -= a[i * k + m] * a[j * k + m];
            }
            a[i * k + j] = s / d;
        }
    }
    for i in 0..k {
        let mut s = b[i];
        for m in 0..i {
            s -= a[i * k + m] * b[m];
        }
        b[i] = s / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for m in i + 1..k {
            s -= a[m * k + i] * b[m];
        }
        b[i] = s / a[i * k + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], x = [1, 2] -> b = [8, 8].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![8.0, 8.0];
        cholesky_solve(&mut a, &mut b, 2);
        assert!((b[0] - 1.0).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn top_by_orders_and_breaks_ties_by_id() {
        let scored = vec![(0.5, 3), (0.9, 1), (0.5, 2), (f64::NAN, 7), (0.1, 4)];
        assert_eq!(top_by(3, scored.into_iter()), vec![1, 2, 3]);
    }

    /// Two groups of users with disjoint tastes: the model must rank the unseen item of a
    /// user's own group above every item of the other group.
    #[test]
    fn learns_group_structure() {
        let mut pairs = Vec::new();
        for u in 0..40u32 {
            let group = u % 2;
            for i in 0..10u32 {
                let item = group * 10 + i;
                // Each user misses one item of their group: the one to predict.
                if i != u % 10 {
                    pairs.push((u, item));
                }
            }
        }
        let data = Interactions::from_pairs(40, 20, pairs);
        let model = Factors::train(&data, AlsParams { factors: 8, ..AlsParams::default() });
        for u in 0..40u32 {
            let group = u % 2;
            let exclude: HashSet<u32> = data.of_user(u).iter().copied().collect();
            let vector = model.user_vector(u).map(<[f64]>::to_vec).unwrap_or_default();
            let best = model.top_n(&vector, 1, &exclude);
            assert_eq!(best, vec![group * 10 + u % 10], "user {u}");
            // Folding the same history in gives the same answer without retraining.
            let folded = model.fold_in(data.of_user(u));
            assert_eq!(model.top_n(&folded, 1, &exclude), best, "fold-in of user {u}");
        }
    }
}
