//! The tunnel's data path: WireGuard's protocol (boringtun's `noise`) between this
//! gateway's TUN device and its UDP socket. One thread takes packets from the TUN device,
//! encrypts them for the peer owning their destination and sends them; one receives
//! datagrams, decrypts them and writes them to the TUN device (answering handshakes); one
//! drives the protocol's timers (handshake retries, key rotation, keepalives).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

use super::config::Checked;

/// Largest packet the TUN device hands over; room for WireGuard's additions besides.
const BUF: usize = 65_536 + 256;

struct Peer {
    name: String,
    endpoint: SocketAddr,
    tunn: Mutex<Tunn>,
}

pub struct Tunnel {
    peers: Vec<Peer>,
    by_inner: HashMap<Ipv4Addr, usize>,
    by_endpoint: HashMap<SocketAddr, usize>,
    sock: UdpSocket,
    tun: File,
}

fn big_buffers(sock: &UdpSocket) {
    let size: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setting an int socket option on a socket we own.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
            )
        };
    }
}

impl Tunnel {
    pub fn new(c: &Checked, private: [u8; 32], sock: UdpSocket, tun: File) -> Tunnel {
        big_buffers(&sock);
        let secret = StaticSecret::from(private);
        let peers: Vec<Peer> = c
            .peers
            .iter()
            .enumerate()
            .map(|(i, (p, k))| Peer {
                name: p.name.clone(),
                endpoint: p.endpoint,
                tunn: Mutex::new(Tunn::new(secret.clone(), PublicKey::from(*k), None, Some(25), u32::try_from(i).unwrap_or(0) << 8, None)),
            })
            .collect();
        let by_inner = c.peers.iter().enumerate().map(|(i, (p, _))| (p.address, i)).collect();
        let by_endpoint = c.peers.iter().enumerate().map(|(i, (p, _))| (p.endpoint, i)).collect();
        Tunnel { peers, by_inner, by_endpoint, sock, tun }
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Tunn> {
        self.peers[i].tunn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// TUN → peers.
    fn outbound(&self) -> std::io::Result<()> {
        let mut tun = self.tun.try_clone()?;
        let (mut pkt, mut out) = (vec![0u8; BUF], vec![0u8; BUF]);
        loop {
            let n = tun.read(&mut pkt)?;
            let p = &pkt[..n];
            if n < 20 || p[0] >> 4 != 4 {
                continue;
            }
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let Some(&i) = self.by_inner.get(&dst) else { continue };
            if let TunnResult::WriteToNetwork(d) = self.lock(i).encapsulate(p, &mut out) {
                let _ = self.sock.send_to(d, self.peers[i].endpoint);
            }
        }
    }

    /// Peers → TUN.
    fn inbound(&self) -> std::io::Result<()> {
        let mut tun = self.tun.try_clone()?;
        let (mut dgram, mut out) = (vec![0u8; BUF], vec![0u8; BUF]);
        loop {
            let (n, from) = self.sock.recv_from(&mut dgram)?;
            let Some(&i) = self.by_endpoint.get(&from) else { continue };
            let mut t = self.lock(i);
            let mut first = true;
            loop {
                let r = if first { t.decapsulate(Some(from.ip()), &dgram[..n], &mut out) } else { t.decapsulate(None, &[], &mut out) };
                first = false;
                match r {
                    // A handshake answer or queued packets: send, then ask for more.
                    TunnResult::WriteToNetwork(d) => {
                        let _ = self.sock.send_to(d, from);
                        continue;
                    }
                    // Only what the peer may send: its own inner address as the source.
                    TunnResult::WriteToTunnelV4(p, src) if self.by_inner.get(&src) == Some(&i) => {
                        let _ = tun.write(p);
                    }
                    TunnResult::Err(e) => tracing::debug!(peer = %self.peers[i].name, "dropped a datagram: {e:?}"),
                    _ => {}
                }
                break;
            }
        }
    }

    /// The protocol's timers, every 100 ms.
    fn timers(&self) {
        let mut out = vec![0u8; BUF];
        loop {
            std::thread::sleep(Duration::from_millis(100));
            for (i, p) in self.peers.iter().enumerate() {
                if let TunnResult::WriteToNetwork(d) = self.lock(i).update_timers(&mut out) {
                    let _ = self.sock.send_to(d, p.endpoint);
                }
            }
        }
    }

    /// Runs until a thread's I/O fails (the error says which).
    pub fn run(self) -> std::io::Error {
        let me = Arc::new(self);
        let (a, b, c) = (me.clone(), me.clone(), me);
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(a.outbound().err().unwrap_or_else(|| std::io::Error::other("the TUN reader ended")));
        });
        std::thread::spawn(move || {
            let _ = tx2.send(b.inbound().err().unwrap_or_else(|| std::io::Error::other("the UDP reader ended")));
        });
        std::thread::spawn(move || c.timers());
        rx.recv().unwrap_or_else(|_| std::io::Error::other("the tunnel's threads ended"))
    }
}
