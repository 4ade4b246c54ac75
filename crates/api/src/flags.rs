//! Gray release: named feature flags, each on for a percentage of users chosen by a stable
//! hash bucket of (flag, user id), optionally only in some regions.
//!
//! Hashing the flag name with the user id gives every flag an independent population, and a
//! user stays in or out of a flag across restarts, nodes and versions (SHA-256 does not change,
//! unlike `std`'s hasher). Raising a percentage only adds users; nobody flips off.

use std::collections::BTreeMap;

use quicktok_core::Id;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One flag's rollout rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FlagRule {
    /// Share of users (0-100) who get the flag.
    pub percent: u8,
    /// Regions the flag is limited to (empty: everywhere). Compared with the request's
    /// `X-QuickTok-Region` header, which the edge sets.
    pub regions: Vec<String>,
    /// What the flag turns on, for operators.
    pub description: String,
}

/// The bucket (0..100) of `user` for `flag`.
pub fn bucket(flag: &str, user: Id) -> u8 {
    let digest = Sha256::new()
        .chain_update(flag.as_bytes())
        .chain_update(b":")
        .chain_update(user.0.to_be_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Evaluates every configured flag for one user.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    rules: BTreeMap<String, FlagRule>,
}

impl Flags {
    pub fn new(rules: BTreeMap<String, FlagRule>) -> Self {
        Flags { rules }
    }

    /// Whether `flag` is on for `user` in `region`; unknown flags are off.
    pub fn enabled(&self, flag: &str, user: Id, region: Option<&str>) -> bool {
        self.rules.get(flag).is_some_and(|rule| rule_enabled(flag, rule, user, region))
    }

    /// Every flag's state for `user` in `region`.
    pub fn evaluate(&self, user: Id, region: Option<&str>) -> BTreeMap<String, bool> {
        self.rules
            .iter()
            .map(|(name, rule)| (name.clone(), rule_enabled(name, rule, user, region)))
            .collect()
    }
}

fn rule_enabled(flag: &str, rule: &FlagRule, user: Id, region: Option<&str>) -> bool {
    let region_ok = rule.regions.is_empty()
        || region
            .is_some_and(|r| rule.regions.iter().any(|allowed| allowed.eq_ignore_ascii_case(r)));
    region_ok && bucket(flag, user) < rule.percent.min(100)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flags(percent: u8, regions: &[&str]) -> Flags {
        let rule = FlagRule {
            percent,
            regions: regions.iter().map(|s| s.to_string()).collect(),
            description: String::new(),
        };
        Flags::new([("new_player".to_string(), rule)].into())
    }

    #[test]
    fn share_of_users_matches_percent() {
        let f = flags(10, &[]);
        let on = (0..20_000u64).filter(|u| f.enabled("new_player", Id(*u * 7919), None)).count();
        // 10% of 20 000 with a binomial standard deviation of ~42.
        assert!((1800..=2200).contains(&on), "{on}");
        assert!(!f.enabled("unknown", Id(1), None));
    }

    #[test]
    fn regions_restrict() {
        let f = flags(100, &["cn-north"]);
        assert!(f.enabled("new_player", Id(5), Some("CN-NORTH")));
        assert!(!f.enabled("new_player", Id(5), Some("eu-west")));
        assert!(!f.enabled("new_player", Id(5), None));
    }

    #[test]
    fn bucket_is_stable() {
        // Pinned values: a change here would silently move users between cohorts.
        let pinned: Vec<u8> = (0..8).map(|u| bucket("new_player", Id(u))).collect();
        assert_eq!(pinned, vec![6, 89, 23, 22, 6, 20, 75, 39]);
    }

    proptest! {
        #[test]
        fn raising_percent_never_turns_a_user_off(user in any::<u64>(), p in 0u8..=100, q in 0u8..=100) {
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            if flags(lo, &[]).enabled("new_player", Id(user), None) {
                prop_assert!(flags(hi, &[]).enabled("new_player", Id(user), None));
            }
        }
    }
}
