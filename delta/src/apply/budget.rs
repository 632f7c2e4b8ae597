//! The applier's memory budget for large decoder state: zstd bases and windows, bzip2 blocks,
//! zstd compression tables. Each decoder reserves its share before it allocates; a reservation
//! that does not fit fails with a message naming the limit, instead of the process growing.

use std::cell::Cell;
use std::rc::Rc;

use super::ApplyError;

/// Shared counter of reserved bytes.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: Cell<u64>,
    peak: Cell<u64>,
}

/// Bytes held until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Rc<Budget>,
    amount: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Rc<Budget> {
        Rc::new(Budget {
            limit,
            used: Cell::new(0),
            peak: Cell::new(0),
        })
    }

    /// Reserves `amount` bytes for `what`, or fails if the budget would be exceeded.
    pub fn reserve(self: &Rc<Self>, amount: u64, what: &str) -> Result<Reservation, ApplyError> {
        let used = self.used.get();
        let total = used.saturating_add(amount);
        if total > self.limit {
            return Err(ApplyError::MemoryLimit {
                what: what.to_string(),
                needed: amount,
                in_use: used,
                limit: self.limit,
            });
        }
        self.used.set(total);
        self.peak.set(self.peak.get().max(total));
        Ok(Reservation {
            budget: Rc::clone(self),
            amount,
        })
    }

    /// The most bytes reserved at once so far.
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let b = &self.budget;
        b.used.set(b.used.get().saturating_sub(self.amount));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_released_and_limited() {
        let b = Budget::new(100);
        let r1 = b.reserve(60, "a").unwrap();
        assert!(b.reserve(50, "b").is_err());
        drop(r1);
        let _r2 = b.reserve(100, "c").unwrap();
        assert_eq!(b.peak(), 100);
    }
}
