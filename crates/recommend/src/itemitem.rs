//! Item-to-item collaborative filtering learned in closed form (EASE, Steck 2019): a
//! weight matrix `B` (zero diagonal) with `X B ~ X` for the user-item engagement matrix `X`,
//! so a user's score for an item is the sum of `B` rows over the items they engaged with.
//! `B` costs `n^2` memory and an `n^3` inversion, so it covers the `max_items` most
//! engaged-with items (the head that co-engagement can say something about).

use std::collections::{HashMap, HashSet};

use crate::implicit::{Interactions, top_by, top_scored};

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct ItemItemParams {
    /// L2 strength added to the diagonal of the item-item Gram matrix.
    pub lambda: f64,
    /// Only the this many most engaged-with items get weights.
    pub max_items: usize,
}

impl Default for ItemItemParams {
    fn default() -> Self {
        ItemItemParams { lambda: 300.0, max_items: 4000 }
    }
}

/// A trained item-item model.
#[derive(Debug, Clone)]
pub struct ItemItem {
    /// Model row/column of each covered item id.
    index: HashMap<u32, usize>,
    /// Covered item ids by model index.
    items: Vec<u32>,
    /// Row-major `n x n` weights (f32: half the memory, no loss that ranks differently).
    weights: Vec<f32>,
}

impl ItemItem {
    pub fn train(data: &Interactions, params: ItemItemParams) -> ItemItem {
        let counts = data.item_counts();
        let mut by_count: Vec<u32> =
            (0..counts.len() as u32).filter(|&i| counts[i as usize] > 0).collect();
        by_count.sort_by_key(|&i| std::cmp::Reverse(counts[i as usize]));
        by_count.truncate(params.max_items);
        let items = by_count;
        let index: HashMap<u32, usize> = items.iter().enumerate().map(|(m, &i)| (i, m)).collect();
        let n = items.len();
        // Gram matrix of co-engagement counts over the covered items.
        let mut gram = vec![0.0f64; n * n];
        for u in 0..data.users() as u32 {
            let rows: Vec<usize> =
                data.of_user(u).iter().filter_map(|i| index.get(i).copied()).collect();
            for &a in &rows {
                let line = &mut gram[a * n..(a + 1) * n];
                for &b in &rows {
                    line[b] += 1.0;
                }
            }
        }
        for d in 0..n {
            gram[d * n + d] += params.lambda;
        }
        let p = spd_inverse(gram, n);
        let mut weights = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    weights[i * n + j] = (-p[i * n + j] / p[j * n + j]) as f32;
                }
            }
        }
        ItemItem { index, items, weights }
    }

    /// How many items the model covers.
    pub fn covered(&self) -> usize {
        self.items.len()
    }

    /// Scores of every covered item for a user who engaged with `engaged`.
    pub fn scores(&self, engaged: &[u32]) -> Vec<(f64, u32)> {
        let n = self.items.len();
        let mut acc = vec![0.0f64; n];
        for row in engaged.iter().filter_map(|i| self.index.get(i)) {
            for (a, w) in acc.iter_mut().zip(&self.weights[row * n..(row + 1) * n]) {
                *a += f64::from(*w);
            }
        }
        acc.into_iter().zip(self.items.iter().copied()).collect()
    }

    /// The `n` best covered items for a user who engaged with `engaged`, skipping `exclude`.
    pub fn top_n(&self, engaged: &[u32], n: usize, exclude: &HashSet<u32>) -> Vec<u32> {
        top_by(n, self.scores(engaged).into_iter().filter(|(_, i)| !exclude.contains(i)))
    }

    /// The `n` best (score, item) for a user who engaged with `engaged`, skipping items
    /// `skip` says to.
    pub fn top_scored(
        &self,
        engaged: &[u32],
        n: usize,
        skip: impl Fn(u32) -> bool,
    ) -> Vec<(f64, u32)> {
        top_scored(n, self.scores(engaged).into_iter().filter(|(_, i)| !skip(*i)))
    }

    /// The `n` items most similar to `item` (largest weights from it), for related videos.
    pub fn similar(&self, item: u32, n: usize) -> Vec<u32> {
        self.similar_scored(item, n).into_iter().map(|(_, i)| i).collect()
    }

    /// [`ItemItem::similar`] with the weights.
    pub fn similar_scored(&self, item: u32, n: usize) -> Vec<(f64, u32)> {
        let Some(&row) = self.index.get(&item) else { return Vec::new() };
        let width = self.items.len();
        let scored = self.weights[row * width..(row + 1) * width]
            .iter()
            .zip(&self.items)
            .filter(|(_, i)| **i != item)
            .map(|(w, i)| (f64::from(*w), *i));
        top_scored(n, scored)
    }
}

/// The inverse of a symmetric positive-definite `n x n` matrix (row-major), through its
/// Cholesky factor; column solves are spread over the available cores.
fn spd_inverse(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    // In place: the lower triangle becomes L with A = L Lᵀ.
    for j in 0..n {
        let prefix: Vec<f64> = a[j * n..j * n + j].to_vec();
        let d = a[j * n + j] - prefix.iter().map(|x| x * x).sum::<f64>();
        let d = if d > 0.0 { d.sqrt() } else { f64::MIN_POSITIVE.sqrt() };
        a[j * n + j] = d;
        for i in j + 1..n {
            let row_i = &mut a[i * n..i * n + j + 1];
            let s: f64 = row_i[j] - row_i[..j].iter().zip(&prefix).map(|(x, y)| x * y).sum::<f64>();
            row_i[j] = s / d;
        }
    }
    let l = a;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).max(1);
    let chunk = n.div_ceil(threads).max(1);
    let mut columns = vec![0.0f64; n * n];
    std::thread::scope(|scope| {
        for (c, out) in columns.chunks_mut(chunk * n).enumerate() {
            let l = &l;
            scope.spawn(move || {
                for (k, col) in out.chunks_exact_mut(n).enumerate() {
                    let e = c * chunk + k;
                    // L y = e_e, then Lᵀ x = y; `col` holds x, the inverse's column e.
                    for i in 0..n {
                        let mut s = if i == e { 1.0 } else { 0.0 };
                        let row = &l[i * n..i * n + i];
                        s -= row.iter().zip(&col[..i]).map(|(x, y)| x * y).sum::<f64>();
                        col[i] = s / l[i * n + i];
                    }
                    for i in (0..n).rev() {
                        let mut s = col[i];
                        for m in i + 1..n {
                            s -= l[m * n + i] * col[m];
                        }
                        col[i] = s / l[i * n + i];
                    }
                }
            });
        }
    });
    // Columns of a symmetric inverse are its rows.
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_a_known_matrix() {
        let a = vec![4.0, 2.0, 0.0, 2.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let inv = spd_inverse(a.clone(), 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|m| a[i * 3 + m] * inv[m * 3 + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-12, "({i},{j}) = {v}");
            }
        }
    }

    /// Users engage with items in two disjoint groups: an item's most similar items are
    /// in its group, and a user's unseen group item ranks first.
    #[test]
    fn learns_co_engagement() {
        let mut pairs = Vec::new();
        for u in 0..40u32 {
            let group = u % 2;
            for i in 0..10u32 {
                if i != u % 10 {
                    pairs.push((u, group * 10 + i));
                }
            }
        }
        let data = Interactions::from_pairs(40, 20, pairs);
        let model = ItemItem::train(&data, ItemItemParams { lambda: 1.0, max_items: 20 });
        for item in 0..20u32 {
            assert!(model.similar(item, 5).iter().all(|s| s / 10 == item / 10), "item {item}");
        }
        for u in 0..40u32 {
            let exclude: HashSet<u32> = data.of_user(u).iter().copied().collect();
            assert_eq!(model.top_n(data.of_user(u), 1, &exclude), vec![(u % 2) * 10 + u % 10]);
        }
    }
}
