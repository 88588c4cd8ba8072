//! The controller's one clock. Every time the controller reads — rate windows, dwell and
//! cooldown, operation deadlines, decision timestamps — comes from here. It runs on tokio's
//! clock, so tests run on paused time and the simulator drives the real loop on simulated
//! time; wall-clock timestamps follow it from the wall time read once at start.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use straddle_model::time::Time;

#[derive(Debug, Clone)]
pub struct Clock {
    origin: tokio::time::Instant,
    wall_origin_ms: u64,
}

impl Clock {
    /// A clock starting now (needs a tokio runtime's time driver).
    pub fn new() -> Clock {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Clock { origin: tokio::time::Instant::now(), wall_origin_ms: u64::try_from(wall).unwrap_or(u64::MAX) }
    }

    pub fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    /// Milliseconds since the Unix epoch, moving with this clock.
    pub fn unix_ms(&self) -> u64 {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall_origin_ms.saturating_add(ms)
    }

    /// The tokio instant of a point on this clock.
    pub fn instant(&self, t: Time) -> tokio::time::Instant {
        self.origin + t.elapsed()
    }

    pub async fn sleep_until(&self, t: Time) {
        tokio::time::sleep_until(self.instant(t)).await
    }

    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_the_clock_and_the_wall_stamps_with_it() {
        let c = Clock::new();
        let (t0, w0) = (c.now(), c.unix_ms());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now().since(t0), Duration::from_secs(90));
        assert_eq!(c.unix_ms() - w0, 90_000);
        c.sleep_until(c.now() + Duration::from_secs(5)).await;
        assert_eq!(c.now().since(t0), Duration::from_secs(95));
    }
}
