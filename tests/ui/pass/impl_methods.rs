use amorsize::auto_parallel;

struct Grid {
    scale: u64,
    rows: Vec<Vec<u64>>,
}

impl Grid {
    #[auto_parallel]
    pub fn row_sums(&self) -> Vec<u64> {
        self.rows
            .iter()
            .map(|r| r.iter().map(|x| x * self.scale).sum::<u64>())
            .collect()
    }

    #[auto_parallel(backend = "threads")]
    fn into_total(self) -> u64 {
        self.rows.into_iter().flatten().map(|x| x + 1).sum()
    }
}

trait Count {
    fn nonzero(&self) -> usize;

    #[auto_parallel]
    fn provided(&self) -> usize {
        (0..10u32).filter(|x| x % 2 == 0).count() + self.nonzero()
    }
}

impl Count for Grid {
    #[auto_parallel]
    fn nonzero(&self) -> usize {
        self.rows.iter().filter(|r| r.iter().any(|x| *x != 0)).count()
    }
}

fn main() {
    let g = Grid {
        scale: 2,
        rows: vec![vec![1, 2], vec![0, 0], vec![3]],
    };
    assert_eq!(g.row_sums(), [6, 0, 6]);
    assert_eq!(g.nonzero(), 2);
    assert_eq!(g.provided(), 7);
    assert_eq!(g.into_total(), 6 + 5);
}
