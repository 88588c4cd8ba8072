//! Credentials: random tokens issued to a job's ranks (and configured for operators), kept
//! only as SHA-256 digests and compared in constant time.

use sha2::{Digest, Sha256};

/// The SHA-256 of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: 32 bytes from the kernel, in hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(hex(&b))
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|x| format!("{x:02x}")).collect()
}

/// A digest kept as hex, back to bytes (`None` when it is not one).
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token and what is kept of it.
pub fn issue() -> std::io::Result<(String, String)> {
    let t = new_token()?;
    let d = hex(&digest(&t));
    Ok((t, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_hex() {
        let (t, kept) = issue().unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(unhex(&kept), Some(digest(&t)));
        assert!(unhex("zz").is_none() && unhex(&"g".repeat(64)).is_none());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
