//! The observer of the guests' heartbeats (`beat.c`): a UDP socket in a site's namespace
//! that stamps every datagram on arrival, and the largest gap between arrivals from one
//! guest within a span of time, which is how long the guest looked stopped from outside.

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::libvirt::in_site;
use super::{Bed, BedError};

/// One heartbeat as it arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    pub at: Instant,
    pub from: IpAddr,
    pub seq: u64,
}

/// Receives heartbeats until dropped.
pub struct Observer {
    beats: Arc<Mutex<Vec<Beat>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    /// Listens on `port` at site `site`'s address.
    pub fn start(bed: &Bed, site: usize, port: u16) -> Result<Observer, BedError> {
        let addr = bed.site_address(site);
        let sock = in_site(bed, site, || UdpSocket::bind((addr.as_str(), port)))??;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let beats: Arc<Mutex<Vec<Beat>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (beats.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    let at = Instant::now();
                    let seq = std::str::from_utf8(&buf[..n]).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
                    b.lock().unwrap().push(Beat { at, from: peer.ip(), seq });
                }
            }
        });
        Ok(Observer { beats, stop, thread: Some(thread) })
    }

    /// The heartbeats from `from` that arrived within `[start, end]`.
    pub fn beats(&self, from: IpAddr, start: Instant, end: Instant) -> Vec<Beat> {
        self.beats.lock().unwrap().iter().filter(|b| b.from == from && b.at >= start && b.at <= end).copied().collect()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The largest gap between consecutive arrivals (`None` with fewer than two).
pub fn largest_gap(beats: &[Beat]) -> Option<Duration> {
    beats.windows(2).map(|w| w[1].at.saturating_duration_since(w[0].at)).max()
}

/// Heartbeats that never arrived, by their sequence numbers.
pub fn missing(beats: &[Beat]) -> u64 {
    beats.windows(2).map(|w| w[1].seq.saturating_sub(w[0].seq).saturating_sub(1)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_missing_beats() {
        let t = Instant::now();
        let ip: IpAddr = "10.77.0.100".parse().unwrap();
        let at = |ms: u64, seq: u64| Beat { at: t + Duration::from_millis(ms), from: ip, seq };
        let beats = [at(0, 1), at(5, 2), at(10, 3), at(260, 53), at(265, 54)];
        assert_eq!(largest_gap(&beats), Some(Duration::from_millis(250)));
        assert_eq!(missing(&beats), 49);
        assert_eq!(largest_gap(&beats[..1]), None);
    }
}
