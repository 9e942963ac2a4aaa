//! The minimal promise set: an exact set cover by branch and bound.
//!
//! Each requirement is a list of alternatives (promise sets, each enough on its own — from
//! [`pledge_core::policy::promises::promises_allowing`]); a solution must contain one whole
//! alternative of every requirement. `free` promises (what the sandbox adds by itself, e.g.
//! `rpath prot_exec` for a dynamic program) cost nothing. The search branches on the
//! alternatives of the first unmet requirement, in table order, and prunes any branch that
//! cannot beat the best solution so far, so the result is deterministic: among the smallest
//! covers, the first in that order.

use pledge_core::PromiseSet;

/// The smallest set of promises (beyond `free`) that meets every requirement. Requirements
/// with no alternative are ignored (nothing can meet them; the caller lists them).
pub fn minimal_cover(requirements: &[Vec<PromiseSet>], free: &PromiseSet) -> PromiseSet {
    let reqs: Vec<&Vec<PromiseSet>> = requirements.iter().filter(|r| !r.is_empty()).collect();
    let mut best: Option<PromiseSet> = None;
    search(&reqs, free.clone(), free, &mut best);
    let best = best.unwrap_or_else(|| free.clone());
    best.iter().filter(|p| !free.contains(*p)).collect()
}

fn meets(set: &PromiseSet, alt: &PromiseSet) -> bool {
    alt.iter().all(|p| set.contains(p))
}

fn search(
    reqs: &[&Vec<PromiseSet>],
    chosen: PromiseSet,
    free: &PromiseSet,
    best: &mut Option<PromiseSet>,
) {
    let cost = |s: &PromiseSet| s.iter().filter(|p| !free.contains(*p)).count();
    let unmet = reqs
        .iter()
        .find(|r| !r.iter().any(|alt| meets(&chosen, alt)));
    let Some(unmet) = unmet else {
        if best.as_ref().is_none_or(|b| cost(&chosen) < cost(b)) {
            *best = Some(chosen);
        }
        return;
    };
    // One more promise at least is needed; prune when that cannot beat the best.
    if best.as_ref().is_some_and(|b| cost(&chosen) + 1 >= cost(b)) {
        return;
    }
    for alt in unmet.iter() {
        let mut next = chosen.clone();
        for p in alt.iter() {
            next.insert(p);
        }
        if best.as_ref().is_some_and(|b| cost(&next) >= cost(b)) {
            continue;
        }
        search(reqs, next, free, best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pledge_core::Promise::{self, *};
    use proptest::prelude::*;

    fn s(ps: &[Promise]) -> PromiseSet {
        ps.iter().copied().collect()
    }

    #[test]
    fn picks_the_shared_promise() {
        // socket (inet|anet|dns), connect (inet|unix|dns), openat read (rpath|dns): dns alone.
        let reqs = vec![
            vec![s(&[Stdio])],
            vec![s(&[Inet]), s(&[Anet]), s(&[Dns])],
            vec![s(&[Inet]), s(&[Unix]), s(&[Dns])],
            vec![s(&[Rpath]), s(&[Dns])],
        ];
        assert_eq!(minimal_cover(&reqs, &PromiseSet::new()), s(&[Stdio, Dns]));
        // With rpath free, inet (first in table order) ties dns and wins.
        assert_eq!(minimal_cover(&reqs, &s(&[Rpath])), s(&[Stdio, Inet]));
    }

    #[test]
    fn multi_promise_alternatives_and_impossible_calls() {
        let reqs = vec![vec![s(&[Wpath, Cpath])], vec![], vec![s(&[Wpath])]];
        assert_eq!(minimal_cover(&reqs, &PromiseSet::new()), s(&[Wpath, Cpath]));
    }

    proptest! {
        /// The cover meets every requirement and no smaller set (brute force) does.
        #[test]
        fn cover_is_exact(raw in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(0usize..8, 1..3), 1..4), 0..8)) {
            let reqs: Vec<Vec<PromiseSet>> = raw.iter().map(|alts| alts.iter().map(|a| a.iter().map(|i| Promise::ALL[*i]).collect()).collect()).collect();
            let got = minimal_cover(&reqs, &PromiseSet::new());
            for r in &reqs {
                prop_assert!(r.iter().any(|alt| meets(&got, alt)));
            }
            let mut smallest = usize::MAX;
            for mask in 0u32..256 {
                let cand: PromiseSet = (0..8).filter(|i| mask & (1 << i) != 0).map(|i| Promise::ALL[i]).collect();
                if reqs.iter().all(|r| r.iter().any(|alt| meets(&cand, alt))) {
                    smallest = smallest.min(cand.len());
                }
            }
            prop_assert_eq!(got.len(), smallest);
        }
    }
}
