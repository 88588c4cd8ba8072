//! The accept loop, bounded: at most `max` connections at once, a connection that has not
//! started talking after `handshake` or has been silent for `idle` is closed, and when the
//! table is full (or the process is out of descriptors) the longest-silent connection makes
//! room for the new one, so idle connections cannot lock operators out. Accept errors back
//! off instead of spinning.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::ReceiverStream;

use crate::clock::Clock;

#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max: usize,
    /// A connection that sent nothing at all by then is closed.
    pub handshake: Duration,
    /// A connection silent this long is closed (HTTP/2 keepalive pings keep live ones busy).
    pub idle: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits { max: 16_384, handshake: Duration::from_secs(10), idle: Duration::from_secs(120) }
    }
}

struct Entry {
    fd: RawFd,
    opened_ms: u64,
    last_ms: Arc<AtomicU64>,
    talked: Arc<AtomicBool>,
}

#[derive(Default)]
struct Table {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    closed: AtomicU64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the connection silent longest (its reads end; its task then drops it).
    fn evict_oldest(&self) -> bool {
        let g = self.lock();
        let victim = g.iter().min_by_key(|(_, e)| e.last_ms.load(Ordering::Relaxed)).map(|(_, e)| e.fd);
        match victim {
            Some(fd) => {
                shutdown(fd);
                self.closed.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

fn shutdown(fd: RawFd) {
    // SAFETY: `fd` belongs to a live connection: entries are removed (under the table's
    // lock, which the caller holds) before a connection's socket is closed, so it cannot
    // name a reused descriptor. shutdown(2) only ends the stream; the owner still closes.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// An accepted connection that records when it last read.
pub struct Conn {
    inner: TcpStream,
    id: u64,
    last_ms: Arc<AtomicU64>,
    talked: Arc<AtomicBool>,
    table: Arc<Table>,
    clock: Clock,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Out of the table before the socket closes (the fields drop after this).
        self.table.lock().remove(&self.id);
    }
}

fn now_ms(c: &Clock) -> u64 {
    u64::try_from(c.now().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_ms.store(now_ms(&self.clock), Ordering::Relaxed);
            self.talked.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Counts of the accept loop, for logs and tests.
#[derive(Clone)]
pub struct ConnStats(Arc<Table>);

impl ConnStats {
    pub fn open(&self) -> usize {
        self.0.lock().len()
    }

    /// Connections closed for silence or to make room.
    pub fn closed(&self) -> u64 {
        self.0.closed.load(Ordering::Relaxed)
    }
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM))
}

/// Accepts connections on `listener` under `limits`; the stream tonic serves.
pub fn incoming(listener: TcpListener, limits: ConnLimits, clock: Clock) -> (ReceiverStream<std::io::Result<Conn>>, ConnStats) {
    let table = Arc::new(Table::default());
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let (t, c) = (table.clone(), clock.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) if out_of_descriptors(&e) => {
                    if !t.evict_oldest() {
                        tracing::warn!("out of descriptors and nothing to close: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if t.lock().len() >= limits.max {
                t.evict_oldest();
            }
            let now = now_ms(&c);
            let (last_ms, talked) = (Arc::new(AtomicU64::new(now)), Arc::new(AtomicBool::new(false)));
            let id = t.next.fetch_add(1, Ordering::Relaxed);
            t.lock().insert(id, Entry { fd: stream.as_raw_fd(), opened_ms: now, last_ms: last_ms.clone(), talked: talked.clone() });
            let conn = Conn { inner: stream, id, last_ms, talked, table: t.clone(), clock: c.clone() };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });
    let (t, c) = (table.clone(), clock);
    tokio::spawn(async move {
        let (handshake, idle) =
            (u64::try_from(limits.handshake.as_millis()).unwrap_or(u64::MAX), u64::try_from(limits.idle.as_millis()).unwrap_or(u64::MAX));
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = now_ms(&c);
            let g = t.lock();
            for e in g.values() {
                let silent = now.saturating_sub(e.last_ms.load(Ordering::Relaxed));
                let mute = !e.talked.load(Ordering::Relaxed) && now.saturating_sub(e.opened_ms) >= handshake;
                if mute || silent >= idle {
                    shutdown(e.fd);
                    t.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (ReceiverStream::new(rx), ConnStats(table))
}

/// Raises this process's descriptor limit to its hard limit (connections need one each).
pub fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the plain struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
    }
    r.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_full_table_makes_room_and_silent_connections_close() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (mut conns, stats) =
            incoming(l, ConnLimits { max: 3, handshake: Duration::from_secs(2), idle: Duration::from_secs(60) }, Clock::new());
        let mut clients = Vec::new();
        let mut served = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
            served.push(conns.next().await.unwrap().unwrap());
        }
        assert_eq!(stats.open(), 3);
        // The fourth gets in: the longest-silent one is closed for it.
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        served.push(conns.next().await.unwrap().unwrap());
        assert_eq!(stats.closed(), 1);
        fourth.write_all(b"hello").await.unwrap();
        // The ones that never talk are closed after the handshake time.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(stats.closed() >= 3, "{}", stats.closed());
        drop(served);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stats.open(), 0);
        assert!(raise_fd_limit() >= 1024);
    }
}
