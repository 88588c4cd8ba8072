//! The traffic `programs/traffic.c` and the Fortran programs must produce, computed
//! independently of the shim and the controller.

/// `bytes[s][d]` and `messages[s][d]` in travel direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub n: usize,
    pub p2p_bytes: Vec<Vec<u64>>,
    pub messages: Vec<Vec<u64>>,
    pub rma_bytes: Vec<Vec<u64>>,
    pub rma_ops: Vec<Vec<u64>>,
}

impl Expected {
    pub fn new(n: usize) -> Expected {
        let z = vec![vec![0; n]; n];
        Expected { n, p2p_bytes: z.clone(), messages: z.clone(), rma_bytes: z.clone(), rma_ops: z }
    }

    pub fn send(&mut self, s: usize, d: usize, bytes: u64, msgs: u64) {
        assert_ne!(s, d, "self-sends are not traffic");
        self.p2p_bytes[s][d] += bytes;
        self.messages[s][d] += msgs;
    }

    /// One-sided operation issued by `origin` at `target`: `put` bytes travel origin →
    /// target, `get` bytes target → origin.
    pub fn rma(&mut self, origin: usize, target: usize, put: u64, get: u64) {
        self.rma_bytes[origin][target] += put;
        self.rma_bytes[target][origin] += get;
        self.rma_ops[origin][target] += 1;
    }

    /// Total bytes matrix (point-to-point plus one-sided), row-major.
    pub fn bytes_flat(&self) -> Vec<f64> {
        (0..self.n).flat_map(|s| (0..self.n).map(move |d| (self.p2p_bytes[s][d] + self.rma_bytes[s][d]) as f64)).collect()
    }

    pub fn messages_flat(&self) -> Vec<f64> {
        (0..self.n).flat_map(|s| (0..self.n).map(move |d| self.messages[s][d] as f64)).collect()
    }

    pub fn rma_ops_flat(&self) -> Vec<f64> {
        (0..self.n).flat_map(|s| (0..self.n).map(move |d| self.rma_ops[s][d] as f64)).collect()
    }
}

/// `programs/traffic.c` with `n` ranks (even), `loops` iterations of the final loop.
pub fn traffic_c(n: usize, loops: u64, large_count: bool) -> Expected {
    assert!(n >= 4 && n.is_multiple_of(2), "traffic.c's pattern needs an even world of at least 4");
    let mut e = Expected::new(n);
    for r in 0..n {
        let (p1, p2, p3) = ((r + 1) % n, (r + 2) % n, (r + 3) % n);
        e.send(r, p1, 100 * (r as u64 + 1), 1); // A: Send
        e.send(r, p2, 64, 1); // B: Bsend 8 doubles
        e.send(r, p1, 20, 1); // Ibsend
        e.send(r, p3, 12, 1); // C: Ssend 3 ints
        e.send(r, p1, 5, 1); // D: Rsend
        e.send(r, p1, 40, 1); // Irsend
        e.send(r, p1, 10, 1); // E: Isend
        e.send(r, p1, 30, 1); // Issend
        e.send(r, p2, 56 * 5, 5); // F: Send_init, 3 Starts + 2 Startall
        e.send(r, p3, 9 * 2, 2); // Ssend_init, 2 Startall
        e.send(r, p1, 16, 1); // G: Sendrecv
        e.send(r, p3, 24, 1); // H: Sendrecv_replace 6 ints
        e.send(r, p2, 48, 1); // I: 2 x vector(3 x 2 ints)
                              // J: the next rank of the same parity.
        let same: Vec<usize> = (0..n).filter(|x| x % 2 == r % 2).collect();
        let idx = same.iter().position(|&x| x == r).unwrap();
        e.send(r, same[(idx + 1) % same.len()], 33, 1);
        // K: the same index in the other parity group.
        let other: Vec<usize> = (0..n).filter(|x| x % 2 != r % 2).collect();
        e.send(r, other[idx], 44, 1);
        e.send(r, p1, 55, 1); // L: duplicate of the world
        e.send(r, p1, 3 * 3, 3); // P: three recycled communicators
        if large_count {
            e.send(r, p1, 11, 1); // N: MPI_Send_c
        }
        if loops > 0 {
            e.send(r, p1, 8 * loops, loops); // O
        }
        // RMA
        e.rma(r, p1, 32, 0); // Put 4 doubles
        e.rma(r, p2, 0, 16); // Get 2 doubles
        e.rma(r, p3, 24, 0); // Accumulate 3 doubles
        e.rma(r, p1, 8, 8); // Get_accumulate 1 + 1 double
    }
    e
}

/// The Fortran programs (`programs/traffic.f`, `.f90`, `.f08`) with `n` ranks.
pub fn traffic_fortran(n: usize) -> Expected {
    let mut e = Expected::new(n);
    for r in 0..n {
        let (p1, p2) = ((r + 1) % n, (r + 2) % n);
        e.send(r, p1, 4 * 10 * (r as u64 + 1), 1); // Send 10(r+1) integers
        e.send(r, p2, 8 * 3, 1); // Isend 3 double precision
        e.send(r, p1, 4 * 6 * 4, 4); // Send_init 6 integers, 4 Starts
        e.send(r, p2, 4 * 5, 1); // Sendrecv 5 integers
        let same: Vec<usize> = (0..n).filter(|x| x % 2 == r % 2).collect();
        let idx = same.iter().position(|&x| x == r).unwrap();
        e.send(r, same[(idx + 1) % same.len()], 4 * 7, 1); // 7 integers on the parity sub-communicator
        e.rma(r, p1, 8 * 2, 0); // Put 2 double precision
        e.rma(r, p2, 0, 8 * 3); // Get 3 double precision
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_c_totals() {
        let e = traffic_c(4, 0, false);
        // Row 0 by hand: to 1: 100+20+5+40+10+30+16+55+9 + K(44, partner 1)
        assert_eq!(e.p2p_bytes[0][1], 100 + 20 + 5 + 40 + 10 + 30 + 16 + 55 + 9 + 44);
        // to 2: 64 + 280 + 48 + J(33) = 425
        assert_eq!(e.p2p_bytes[0][2], 64 + 280 + 48 + 33);
        assert_eq!(e.p2p_bytes[0][3], 12 + 18 + 24);
        assert_eq!(e.messages[0][2], 1 + 5 + 1 + 1);
        // Get from rank 2 travels 2 -> 0; rank 3's Get_accumulate on 0 returns 8 bytes 0 -> 3.
        assert_eq!(e.rma_bytes[2][0], 16);
        assert_eq!(e.rma_bytes[0][3], 24 + 8);
        assert_eq!(e.p2p_bytes.iter().enumerate().map(|(i, r)| r[i]).sum::<u64>(), 0);
    }
}
