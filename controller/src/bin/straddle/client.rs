//! Reaching the controller: its address (with or without a scheme), the token (from a file
//! or the environment), and gRPC statuses as one clear line.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::args::Conn;

/// `host:port` or `http://host:port` → a URL tonic accepts. An `https://` address asks for
/// TLS, which this build does not speak: refused rather than sent in clear.
pub fn url(addr: &str) -> Result<String> {
    let a = addr.trim();
    if a.is_empty() {
        bail!("controller: the address is empty");
    }
    if a.starts_with("https://") {
        bail!("controller: {a:?} asks for TLS, which this controller does not serve; use http:// on a trusted network");
    }
    let u = if a.contains("://") { a.to_string() } else { format!("http://{a}") };
    if !u.starts_with("http://") {
        bail!("controller: {a:?} is not host:port or http://host:port");
    }
    Ok(u)
}

/// The token: from `file` when given, else $STRADDLE_TOKEN.
pub fn token(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f).with_context(|| format!("token file {}", f.display()))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("token file {}: it is empty", f.display());
        }
        return Ok(Some(t));
    }
    Ok(std::env::var("STRADDLE_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

pub async fn channel(addr: &str) -> Result<Channel> {
    let u = url(addr)?;
    tonic::transport::Endpoint::from_shared(u.clone())
        .with_context(|| format!("controller: {addr:?} is not a valid address"))?
        .connect()
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach the controller at {u}"))
}

pub type Authed = InterceptedService<Channel, AddToken>;

#[derive(Clone)]
pub struct AddToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.0 {
            r.metadata_mut().insert("authorization", h.clone());
        }
        Ok(r)
    }
}

/// A channel that presents the token on every call.
pub async fn authed(conn: &Conn) -> Result<Authed> {
    let header = match token(conn.token_file.as_deref())? {
        Some(t) => Some(format!("Bearer {t}").parse().context("the token is not a valid header value")?),
        None => None,
    };
    Ok(InterceptedService::new(channel(&conn.controller).await?, AddToken(header)))
}

pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_word(s.code()), s.message())
}

fn code_word(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::NotFound => "not found",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unavailable => "controller unavailable",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::ResourceExhausted => "resource exhausted",
        tonic::Code::PermissionDenied => "permission denied",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_or_without_a_scheme() {
        assert_eq!(url("127.0.0.1:50051").unwrap(), "http://127.0.0.1:50051");
        assert_eq!(url("http://h:1").unwrap(), "http://h:1");
        assert!(url("https://h:1").unwrap_err().to_string().contains("TLS"));
        assert!(url("ftp://h:1").is_err());
        assert!(url(" ").is_err());
    }
}
