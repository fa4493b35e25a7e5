//! Chains that look like pipelines but are not on an iterator keep their meaning.

use amorsize::auto_parallel;
use rayon::prelude::*;

/// A query builder with `filter` and `count` of its own (like an ORM's).
struct Query {
    conditions: Vec<fn(u32) -> bool>,
}

impl Query {
    fn filter(mut self, f: fn(u32) -> bool) -> Query {
        self.conditions.push(f);
        self
    }

    fn count(self) -> usize {
        (0..100).filter(|x| self.conditions.iter().all(|c| c(*x))).count()
    }
}

/// An `IntoIterator` that is not an iterator, with a `map` of its own.
struct Grid(Vec<u32>);

impl Grid {
    fn map(&self, f: impl Fn(&u32) -> u32) -> Grid {
        Grid(self.0.iter().map(f).collect())
    }

    fn max(&self) -> Option<u32> {
        self.0.iter().copied().max()
    }
}

impl IntoIterator for Grid {
    type Item = u32;
    type IntoIter = std::vec::IntoIter<u32>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[auto_parallel]
fn evens() -> usize {
    Query { conditions: Vec::new() }.filter(|x| x % 2 == 0).count()
}

#[auto_parallel]
fn doubled_max(g: Grid) -> Option<u32> {
    // `&u32`: `Grid::map`, not `Iterator::map` on its items.
    g.map(|x: &u32| x * 2).max()
}

/// A rayon iterator held in a variable: its own `map` and `sum`.
#[auto_parallel]
fn rayon_sum(v: &[u64]) -> u64 {
    let it = v.par_iter();
    it.map(|x| x * 2).sum()
}

fn main() {
    assert_eq!(rayon_sum(&[1, 2]), 6);
    assert_eq!(evens(), 50);
    assert_eq!(doubled_max(Grid(vec![1, 5, 2])), Some(10));
}
