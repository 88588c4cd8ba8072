//! A point on the controller's one clock: the time since the clock's origin. The model
//! never reads a clock; callers pass `Time` in, so the same code runs on real, paused or
//! simulated time.

use std::ops::{Add, Sub};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(Duration);

impl Time {
    pub const ZERO: Time = Time(Duration::ZERO);

    pub fn from_duration(d: Duration) -> Time {
        Time(d)
    }

    pub fn from_secs(s: u64) -> Time {
        Time(Duration::from_secs(s))
    }

    /// Since the clock's origin.
    pub fn elapsed(self) -> Duration {
        self.0
    }

    /// Whole seconds since the origin (the resolution of traffic checkpoints).
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// How long after `earlier` this is (zero when it is not after).
    pub fn since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_and_add_moves_forward() {
        let a = Time::from_secs(10);
        let b = a + Duration::from_millis(1500);
        assert_eq!(b.since(a), Duration::from_millis(1500));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(b.as_secs(), 11);
        assert_eq!((a - Duration::from_secs(20)), Time::ZERO);
    }
}
