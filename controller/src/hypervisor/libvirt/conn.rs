//! One libvirt connection per host, opened on first use from the host's URI, kept alive by
//! libvirt's keepalive (over the event loop started here), and reopened with backoff when
//! it drops. Every call here blocks: callers run it off the async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use virt::connect::Connect;

use crate::hypervisor::{HostRef, HypervisorError};

/// First and longest wait before reopening a host's connection after a failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Keepalive: a probe every 5 s; the connection is closed after 3 unanswered.
const KEEPALIVE_INTERVAL_S: i32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

/// libvirt's default event loop, on a thread of its own, once per process: keepalive
/// needs it. False when it could not start (connections then go without keepalive).
fn event_loop() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        // libvirt prints every error to stderr by default; ours are reported where they
        // happen, naming the host.
        virt::error::clear_error_callback();
        if virt::event::event_register_default_impl().is_err() {
            return false;
        }
        std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                if virt::event::event_run_default_impl().is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .is_ok()
    })
}

#[derive(Default)]
struct Slot {
    conn: Option<Connect>,
    /// After a failure: not before this, and the wait after the next failure.
    retry_at: Option<(Instant, Duration)>,
}

/// The connections, by URI.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

/// A libvirt error as the hypervisor's, naming the host.
pub fn backend(host: &str, e: &virt::error::Error) -> HypervisorError {
    HypervisorError::Backend { host: host.to_string(), why: e.message().to_string() }
}

impl Pool {
    pub fn new() -> Pool {
        Pool::default()
    }

    /// The host's shared connection, opened or reopened as needed.
    pub fn connect(&self, host: &HostRef) -> Result<Connect, HypervisorError> {
        if host.uri.is_empty() {
            return Err(HypervisorError::Backend { host: host.name.clone(), why: "the topology gives this host no libvirt_uri".into() });
        }
        let slot = self.slots.lock().unwrap().entry(host.uri.clone()).or_default().clone();
        {
            let mut s = slot.lock().unwrap();
            if let Some(c) = &s.conn {
                if c.is_alive().unwrap_or(false) {
                    return Ok(c.clone());
                }
                tracing::warn!(host = %host.name, "the libvirt connection dropped; reopening");
                s.conn = None;
            }
            if let Some((at, _)) = s.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(HypervisorError::Unreachable {
                        host: host.name.clone(),
                        why: format!("{}: the last attempt failed; next in {:.1} s", host.uri, (at - now).as_secs_f64()),
                    });
                }
            }
        }
        // Opened without the slot held: an unreachable host may take a TCP timeout to say so.
        let r = open(host);
        let mut s = slot.lock().unwrap();
        match r {
            Ok(c) => {
                if s.conn.is_none() {
                    s.conn = Some(c.clone());
                }
                s.retry_at = None;
                Ok(c)
            }
            Err(e) => {
                let wait = s.retry_at.map_or(BACKOFF_FIRST, |(_, w)| (w * 2).min(BACKOFF_MAX));
                s.retry_at = Some((Instant::now() + wait, wait));
                Err(e)
            }
        }
    }

    /// A connection of its own to the host (to watch or abort a migration while the
    /// shared one is busy running it).
    pub fn open_fresh(&self, host: &HostRef) -> Result<Connect, HypervisorError> {
        open(host)
    }
}

fn open(host: &HostRef) -> Result<Connect, HypervisorError> {
    let keepalive = event_loop();
    let c = Connect::open(Some(host.uri.as_str()))
        .map_err(|e| HypervisorError::Unreachable { host: host.name.clone(), why: format!("{}: {}", host.uri, e.message()) })?;
    if keepalive {
        if let Err(e) = c.set_keep_alive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) {
            tracing::debug!(host = %host.name, "no keepalive on this connection: {}", e.message());
        }
    }
    Ok(c)
}
