//! Deadlines from durations, without overflow: `now + d`, capped at [`FAR`] from now.
//!
//! A wait of `Duration::MAX` (or any duration `Instant` cannot add) is a wait of a hundred
//! years: it still has a deadline, so it is a pending timer — a possible waker, as in Go, for
//! `run`'s deadlock detector — and no later arithmetic on it can overflow.

use std::time::{Duration, Instant};

/// The longest wait goro arms: a hundred years.
pub(crate) const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The instant `d` from now, or [`FAR`] from now if that is sooner.
pub(crate) fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_are_capped_not_overflowed() {
        let t = after(Duration::MAX);
        let left = t.duration_since(Instant::now());
        assert!(
            left <= FAR && left > FAR - Duration::from_secs(60),
            "{left:?}"
        );
        let near = after(Duration::from_millis(5));
        assert!(near.duration_since(Instant::now()) <= Duration::from_millis(5));
    }
}
