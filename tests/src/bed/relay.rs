//! The WAN between sites: a user-space relay that joins the sites' bridges through one TAP
//! device per site and carries every frame to its destination site after the configured
//! one-way delay, in order. It learns which site each MAC address lives in (flooding
//! broadcasts and unknown destinations), may drop frames with a loss probability, and
//! counts bytes and frames per site pair in a shared stats file.
//!
//! Bandwidth is shaped by the kernel (`tbf` on each site's TAP); latency here, since this
//! kernel has no `netem`. Writers sleep to an absolute deadline with 1 ns timer slack under
//! SCHED_FIFO, so busy MPI ranks on the same cores do not delay frames.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::stats::{self, StatsMap};

/// One site the relay serves: its network namespace and the TAP to create there.
#[derive(Debug, Clone)]
pub struct RelaySite {
    pub name: String,
    pub netns: PathBuf,
    pub tap: String,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub sites: Vec<RelaySite>,
    /// One-way delay per ordered site pair, `delay[src][dst]`.
    pub delay: Vec<Vec<Duration>>,
    /// Drop probability per frame, 0..1.
    pub loss: f64,
    pub stats: PathBuf,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// How early a frame may leave to spare a timer wake-up.
const EARLY_NS: u64 = 30_000;

/// The most the writer aims early to make up for late timer wake-ups.
const MAX_COMPENSATION_NS: u64 = 300_000;

/// Opens (creating) TAP `name` inside the network namespace at `netns`.
pub fn open_tap_in(netns: &std::path::Path, name: &str) -> std::io::Result<File> {
    let here = File::open("/proc/thread-self/ns/net")?;
    let there = File::open(netns)?;
    // SAFETY: setns on this thread with a namespace fd we hold; we switch back below.
    if unsafe { libc::setns(there.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let tap = (|| {
        let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
        let mut ifr = [0u8; 40];
        let n = name.len().min(15);
        ifr[..n].copy_from_slice(&name.as_bytes()[..n]);
        let flags = i16::try_from(libc::IFF_TAP | libc::IFF_NO_PI).expect("the TAP flags fit ifr_flags");
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF with an ifreq-sized buffer.
        if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    })();
    // SAFETY: back to the namespace this thread started in.
    unsafe { libc::setns(here.as_raw_fd(), libc::CLONE_NEWNET) };
    tap
}

pub(crate) fn now_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

pub(crate) fn sleep_until(deadline_ns: u64) {
    let t = libc::timespec { tv_sec: (deadline_ns / 1_000_000_000) as _, tv_nsec: (deadline_ns % 1_000_000_000) as _ };
    // SAFETY: absolute sleep on the monotonic clock; EINTR just returns early.
    while unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &t, std::ptr::null_mut()) } == libc::EINTR {}
}

pub(crate) fn realtime_thread() {
    // SAFETY: plain calls on the current thread; failure leaves normal scheduling.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0);
        let p = libc::sched_param { sched_priority: 20 };
        libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &p);
    }
}

/// A small xorshift generator for the loss model (no dependency, reproducible per thread).
struct Lossy(u64);

impl Lossy {
    fn drop(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Frames on their way to one ordered pair's writer, each with the instant it is due (ns).
type FrameSender = mpsc::Sender<(u64, Vec<u8>)>;

/// Runs the relay until the process is killed. Prints `relay ready` once the TAPs exist.
pub fn run(cfg: RelayConfig) -> std::io::Result<()> {
    let n = cfg.sites.len();
    let taps: Vec<Arc<File>> = cfg.sites.iter().map(|s| open_tap_in(&s.netns, &s.tap).map(Arc::new)).collect::<Result<_, _>>()?;
    let stats = Arc::new(StatsMap::create(&cfg.stats, n)?);
    let macs: Arc<RwLock<HashMap<[u8; 6], usize>>> = Arc::default();

    // One FIFO and one writer per ordered pair: deadlines in a FIFO are monotone.
    let mut senders: Vec<Vec<Option<FrameSender>>> = vec![vec![None; n]; n];
    for (src, row) in senders.iter_mut().enumerate() {
        for (dst, slot) in row.iter_mut().enumerate() {
            if src == dst {
                continue;
            }
            let (tx, rx) = mpsc::channel::<(u64, Vec<u8>)>();
            *slot = Some(tx);
            let tap = taps[dst].clone();
            let stats = stats.clone();
            std::thread::Builder::new().name(format!("wan-w{src}{dst}")).spawn(move || {
                realtime_thread();
                let mut out: &File = &tap;
                // How late this thread wakes from its timer, learnt as it goes: it aims
                // that much early, so frames leave on time rather than a wake-up late.
                let mut wake_late: u64 = 0;
                while let Ok((deadline, frame)) = rx.recv() {
                    // Frames due within EARLY_NS go at once: at high rates this saves a
                    // timer wake-up per frame and keeps the delay well inside 0.1 ms.
                    let aim = deadline.saturating_sub(wake_late);
                    if now_ns() + EARLY_NS < aim {
                        sleep_until(aim);
                        let late = now_ns().saturating_sub(aim).min(MAX_COMPENSATION_NS);
                        wake_late = (wake_late * 7 + late) / 8;
                    }
                    if out.write(&frame).is_ok() {
                        stats.add(src, dst, stats::DELIVERED_BYTES, frame.len() as u64);
                    }
                }
            })?;
        }
    }
    for (src, tap) in taps.iter().enumerate() {
        let tap = tap.clone();
        let out: Vec<Option<FrameSender>> = senders[src].clone();
        let delays: Vec<u64> = cfg.delay[src].iter().map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).collect();
        let stats = stats.clone();
        let macs = macs.clone();
        let loss = cfg.loss;
        std::thread::Builder::new().name(format!("wan-r{src}")).spawn(move || {
            realtime_thread();
            let mut lossy = Lossy(0x9E37_79B9_7F4A_7C15 ^ (src as u64 + 1));
            let mut buf = vec![0u8; 65_536];
            let mut input: &File = &tap;
            loop {
                let len = match input.read(&mut buf) {
                    Ok(l) if l >= 14 => l,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let t = now_ns();
                let frame = &buf[..len];
                let dst_mac: [u8; 6] = frame[0..6].try_into().unwrap();
                let src_mac: [u8; 6] = frame[6..12].try_into().unwrap();
                if macs.read().unwrap().get(&src_mac) != Some(&src) {
                    macs.write().unwrap().insert(src_mac, src);
                }
                let known = if dst_mac[0] & 1 == 0 { macs.read().unwrap().get(&dst_mac).copied() } else { None };
                for (dst, tx) in out.iter().enumerate() {
                    let Some(tx) = tx else { continue };
                    if known.is_some_and(|k| k != dst) {
                        continue;
                    }
                    stats.add(src, dst, stats::SENT_BYTES, len as u64);
                    stats.add(src, dst, stats::SENT_FRAMES, 1);
                    if lossy.drop(loss) {
                        stats.add(src, dst, stats::DROPPED_FRAMES, 1);
                        continue;
                    }
                    let _ = tx.send((t + delays[dst], frame.to_vec()));
                }
            }
        })?;
    }
    println!("relay ready");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}
