//! The reporter thread: ships what changed every interval over one gRPC stream, takes acks
//! and site maps back, reconnects with backoff. It never calls MPI, runs at the lowest
//! priority, owns no signal handler and never blocks the application: when the controller
//! is slow the report of that tick is skipped (counts are cumulative, nothing is lost).

use std::collections::HashMap;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{AcqRel, Acquire},
};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, CollectiveTraffic, CommunicatorInfo, Hello, PeerTraffic, Report, ShimMessage};
use tokio::sync::{mpsc, Notify};

use crate::collectives;
use crate::counters::PeerValues;
use crate::state::Shim;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct FlushState {
    done: bool,
}

pub struct Reporter {
    flush_requested: AtomicBool,
    wake: Arc<Notify>,
    flushed: Arc<(Mutex<FlushState>, Condvar)>,
}

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter {
            flush_requested: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
            flushed: Arc::new((Mutex::new(FlushState::default()), Condvar::new())),
        }
    }

    pub fn spawn(&self, shim: &'static Shim) {
        let spawned = std::thread::Builder::new().name("straddle-report".into()).stack_size(512 * 1024).spawn(move || {
            lower_priority();
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(_) => return mark_done(&shim_reporter(shim).flushed),
            };
            rt.block_on(run(shim));
        });
        if spawned.is_err() {
            mark_done(&self.flushed);
        }
    }

    /// Asks for a final report and waits until it is acknowledged, the reporter gives up,
    /// or `timeout` passes. Only the first caller waits.
    pub fn flush(&self, timeout: Duration) {
        if self.flush_requested.swap(true, AcqRel) {
            return;
        }
        self.wake.notify_one();
        let (lock, cv) = &*self.flushed;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !st.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

fn shim_reporter(shim: &'static Shim) -> &'static Reporter {
    shim.reporter().expect("reporter thread runs only when a reporter exists")
}

fn mark_done(flushed: &(Mutex<FlushState>, Condvar)) {
    let (lock, cv) = flushed;
    lock.lock().unwrap_or_else(|p| p.into_inner()).done = true;
    cv.notify_all();
}

fn lower_priority() {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    if let Ok(tid) = libc::id_t::try_from(tid) {
        // SAFETY: a plain syscall on the calling thread; failure only leaves the priority as is.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) };
    }
}

/// Builds reports of what changed since the last one the stream took.
pub struct ReportBuilder {
    seq: u64,
    sent_peers: Vec<PeerValues>,
    sent_colls: HashMap<u64, (u64, u64)>,
    comm_cursor: usize,
    sent_regrouped: u64,
    scratch: Vec<(u64, u64, u64)>,
}

/// A report plus what the builder must remember once it has been handed to the stream.
pub struct Pending {
    pub report: Report,
    peers: Vec<(usize, PeerValues)>,
    colls: Vec<(u64, u64, u64)>,
    comm_cursor: usize,
}

impl ReportBuilder {
    pub fn new(world_size: usize) -> ReportBuilder {
        ReportBuilder {
            seq: 0,
            sent_peers: vec![PeerValues::default(); world_size],
            sent_colls: HashMap::new(),
            comm_cursor: 0,
            sent_regrouped: 0,
            scratch: Vec::new(),
        }
    }

    /// Forgets what was sent: the next report describes everything (after a reconnect).
    pub fn reset(&mut self) {
        self.sent_peers.iter_mut().for_each(|p| *p = PeerValues::default());
        self.sent_colls.clear();
        self.comm_cursor = 0;
    }

    /// The next report, or `None` when nothing changed and `force` is false.
    pub fn build(&mut self, shim: &Shim, force: bool) -> Option<Pending> {
        let mut report = Report::default();
        let mut peers = Vec::new();
        // World ranks are u32 (the world size is one).
        for (dest, (sent, rank)) in self.sent_peers.iter().zip(0u32..).enumerate() {
            let now = shim.peers.read(dest);
            if now != *sent {
                report.peers.push(PeerTraffic {
                    dest: rank,
                    p2p_bytes: now.p2p_bytes,
                    p2p_messages: now.p2p_messages,
                    rma_put_bytes: now.rma_put_bytes,
                    rma_get_bytes: now.rma_get_bytes,
                    rma_operations: now.rma_operations,
                });
                peers.push((dest, now));
            }
        }
        let new_comms = shim.comms.since(self.comm_cursor);
        let comm_cursor = self.comm_cursor + new_comms.len();
        report.communicators = new_comms
            .iter()
            .map(|c| CommunicatorInfo {
                comm_id: c.id,
                world_ranks: c.world_ranks.clone(),
                inter: c.inter,
                remote_world_ranks: c.remote_world_ranks.clone(),
            })
            .collect();
        shim.collectives.snapshot(&mut self.scratch);
        let mut colls = Vec::new();
        for &(key, calls, bytes) in &self.scratch {
            if self.sent_colls.get(&key) != Some(&(calls, bytes)) {
                let (comm_id, op, mode, root) = collectives::unpack(key);
                report.collectives.push(CollectiveTraffic { comm_id, op, mode, root, calls, bytes });
                colls.push((key, calls, bytes));
            }
        }
        report.dropped_records = shim.collectives.dropped() + shim.persistent.dropped();
        report.regrouped_cross_site_bytes = shim.regrouped_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let regrouped_changed = report.regrouped_cross_site_bytes != self.sent_regrouped;
        if !force && report.peers.is_empty() && report.communicators.is_empty() && report.collectives.is_empty() && !regrouped_changed {
            return None;
        }
        report.seq = self.seq + 1;
        Some(Pending { report, peers, colls, comm_cursor })
    }

    /// Records that `p` went out.
    pub fn commit(&mut self, p: Pending) -> u64 {
        for (dest, v) in p.peers {
            self.sent_peers[dest] = v;
        }
        for (key, calls, bytes) in p.colls {
            self.sent_colls.insert(key, (calls, bytes));
        }
        self.comm_cursor = p.comm_cursor;
        self.sent_regrouped = p.report.regrouped_cross_site_bytes;
        self.seq = p.report.seq;
        self.seq
    }
}

enum SessionEnd {
    /// The final report was acknowledged, or could not be sent in time: stop.
    Flushed,
    /// The connection broke, or never came up: retry.
    Lost,
    /// The controller answered with an error status: it refuses this rank's stream
    /// (unknown job, world-size mismatch, ...). Retry all the same: it may change its mind.
    Refused(tonic::Status),
}

async fn run(shim: &'static Shim) {
    let reporter = shim_reporter(shim);
    let url = shim.config.controller.clone().unwrap_or_default();
    let mut builder = ReportBuilder::new(shim.id.world_size as usize);
    let incarnation = incarnation();
    let mut backoff = Duration::from_millis(100);
    // The last refusal said, so that retries under the same refusal stay quiet.
    let mut said_refusal: Option<(tonic::Code, String)> = None;
    loop {
        let mut answered = false;
        let end = match tokio::time::timeout(shim.config.connect_timeout, attach(&url, &shim.config)).await {
            Ok(Ok((tx, mut inbound))) => {
                builder.reset();
                let hello = Hello {
                    job: shim.id.job.clone(),
                    rank: shim.id.rank,
                    world_size: shim.id.world_size,
                    node: shim.id.node.clone(),
                    pid: std::process::id(),
                    mpi_impl: shim.id.mpi_impl as i32,
                    shim_version: env!("CARGO_PKG_VERSION").into(),
                    incarnation,
                };
                if tx.try_send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).is_ok() {
                    let end = session(shim, reporter, &mut builder, tx, &mut inbound, &mut answered, &url).await;
                    if let SessionEnd::Flushed = end {
                        // Close the stream cleanly (the controller sees its end, not a
                        // reset) before the application goes on to exit.
                        let _ =
                            tokio::time::timeout(Duration::from_millis(200), async { while let Ok(Some(_)) = inbound.message().await {} })
                                .await;
                    }
                    end
                } else {
                    SessionEnd::Lost
                }
            }
            Ok(Err(Some(refusal))) => SessionEnd::Refused(refusal),
            _ => SessionEnd::Lost,
        };
        if answered {
            backoff = Duration::from_millis(100);
            said_refusal = None;
        }
        match end {
            SessionEnd::Flushed => return mark_done(&reporter.flushed),
            SessionEnd::Refused(st) => {
                let refusal = (st.code(), st.message().to_string());
                if said_refusal.as_ref() != Some(&refusal) {
                    say(shim, &format!("refused by the controller at {url}: {}: {}", code_name(st.code()), st.message()));
                    said_refusal = Some(refusal);
                }
            }
            SessionEnd::Lost => {}
        }
        if reporter.flush_requested.load(Acquire) {
            // Could not deliver the final report: give up, do not hold the application.
            return mark_done(&reporter.flushed);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = reporter.wake.notified() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Inbound = tonic::Streaming<straddle_proto::ControllerMessage>;

/// Opens the stream, with the job's credential when there is one; TLS for an `https://`
/// controller (never dropped to plain text). Fails with the controller's status when it
/// answers with one at once, with `None` when it cannot be reached.
async fn attach(url: &str, config: &crate::config::Config) -> Result<(mpsc::Sender<ShimMessage>, Inbound), Option<tonic::Status>> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|_| None)?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = &config.ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| Some(tonic::Status::failed_precondition(format!("STRADDLE_CA_CERT {}: {e}", ca.display()))))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| Some(tonic::Status::failed_precondition(format!("TLS: {e}"))))?;
    }
    let channel = endpoint.connect().await.map_err(|_| None)?;
    let mut client = TelemetryClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(token) = &config.job_token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Some(tonic::Status::invalid_argument("STRADDLE_JOB_TOKEN is not a valid header value")))?;
        req.metadata_mut().insert("authorization", value);
    }
    match client.attach(req).await {
        Ok(response) => Ok((tx, response.into_inner())),
        Err(st) => Err(refusal(st)),
    }
}

/// `st` if the controller sent it as its answer, `None` if it stands for a broken
/// connection: a transport failure carries its cause as the status's source, or comes as
/// one of the codes of a call that never got its answer.
fn refusal(st: tonic::Status) -> Option<tonic::Status> {
    use tonic::Code::*;
    let broken = std::error::Error::source(&st).is_some()
        || matches!(st.code(), Ok | Cancelled | Unknown | DeadlineExceeded | Aborted | Internal | Unavailable | DataLoss);
    (!broken).then_some(st)
}

/// A status code as words: `NotFound` → "not found".
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for c in format!("{code:?}").chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push(' ');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

async fn session(
    shim: &'static Shim,
    reporter: &Reporter,
    builder: &mut ReportBuilder,
    tx: mpsc::Sender<ShimMessage>,
    inbound: &mut Inbound,
    answered: &mut bool,
    url: &str,
) -> SessionEnd {
    let mut tick = tokio::time::interval(shim.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush_seq: Option<u64> = None;
    loop {
        if flush_seq.is_none() && reporter.flush_requested.load(Acquire) {
            let Some(p) = builder.build(shim, true) else { return SessionEnd::Lost };
            let msg = ShimMessage { body: Some(shim_message::Body::Report(p.report.clone())) };
            // The final report may wait for room, bounded by the flush timeout.
            match tokio::time::timeout(shim.config.flush_timeout, tx.send(msg)).await {
                Ok(Ok(())) => flush_seq = Some(builder.commit(p)),
                _ => return SessionEnd::Flushed,
            }
        }
        tokio::select! {
            _ = tick.tick(), if flush_seq.is_none() => {
                if let Some(p) = builder.build(shim, false) {
                    let msg = ShimMessage { body: Some(shim_message::Body::Report(p.report.clone())) };
                    match tx.try_send(msg) {
                        Ok(()) => { builder.commit(p); }
                        Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => return SessionEnd::Lost,
                    }
                }
            }
            _ = reporter.wake.notified() => {}
            msg = inbound.message() => match msg {
                Ok(Some(m)) => {
                    // The controller took the stream: its first answer is an ack or a
                    // site map.
                    if !*answered && m.body.is_some() {
                        *answered = true;
                        say(shim, &format!("attached to {url}"));
                    }
                    match m.body {
                        Some(controller_message::Body::Ack(a)) if flush_seq.is_some_and(|f| a.seq >= f) => return SessionEnd::Flushed,
                        Some(controller_message::Body::Ack(_)) | None => {}
                        Some(controller_message::Body::SiteMap(map)) => {
                            if shim.config.verbose {
                                let sites: Vec<&str> =
                                    map.rank_site.iter().map(|&s| map.sites.get(s as usize).map_or("?", |n| n.as_str())).collect();
                                say(shim, &format!("site map epoch {}: {}", map.epoch, sites.join(",")));
                            }
                            *shim.site_map.lock().unwrap_or_else(|p| p.into_inner()) = Some(map);
                        }
                    }
                }
                Err(st) => match refusal(st) {
                    Some(st) => return SessionEnd::Refused(st),
                    None if flush_seq.is_some() => return SessionEnd::Flushed,
                    None => return SessionEnd::Lost,
                },
                Ok(None) => return if flush_seq.is_some() { SessionEnd::Flushed } else { SessionEnd::Lost },
            }
        }
    }
}

/// One line on stderr, when STRADDLE_VERBOSE asks for it — in one write, so lines of
/// ranks sharing a launcher's stderr do not interleave.
fn say(shim: &Shim, what: &str) {
    if shim.config.verbose {
        let line = format!("straddle[{} rank {}]: {what}\n", shim.id.job, shim.id.rank);
        // SAFETY: writing a valid buffer to fd 2.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
}

fn incarnation() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().wrapping_mul(1_000_000_000).wrapping_add(u64::from(d.subsec_nanos())))
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}
