//! Only the controller may command an agent: every call presents the fabric token
//! (`authorization: Bearer <token>`), compared by SHA-256 digest in constant time. The
//! agent keeps only the digest.

use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::Status;

#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

fn digest(t: &str) -> [u8; 32] {
    Sha256::digest(t.as_bytes()).into()
}

impl Token {
    /// `None` for an empty token: an agent never runs open.
    pub fn new(token: &str) -> Option<Token> {
        let t = token.trim();
        (!t.is_empty()).then(|| Token { digest: digest(t) })
    }

    pub fn admits(&self, md: &MetadataMap) -> Result<(), Status> {
        let given = md.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        match given {
            Some(t) if digest(t).iter().zip(&self.digest).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0 => Ok(()),
            _ => Err(Status::unauthenticated(
                "only the controller may command this agent: the fabric token is required (authorization: Bearer ...)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_admits() {
        assert!(Token::new("  ").is_none());
        let t = Token::new("s3cret\n").unwrap();
        let mut md = MetadataMap::new();
        assert_eq!(t.admits(&md).unwrap_err().code(), tonic::Code::Unauthenticated);
        md.insert("authorization", "Bearer s3cre".parse().unwrap());
        assert!(t.admits(&md).is_err());
        md.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(t.admits(&md).is_ok());
    }
}
