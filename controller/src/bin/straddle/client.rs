//! Reaching the controller: its address (with or without a scheme), the token (from a file
//! or the environment), and gRPC statuses as one clear line.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::args::Conn;

/// `host:port`, `http://host:port` or `https://host:port` → a URL tonic accepts.
pub fn url(addr: &str) -> Result<String> {
    let a = addr.trim();
    if a.is_empty() {
        bail!("controller: the address is empty");
    }
    let u = if a.contains("://") { a.to_string() } else { format!("http://{a}") };
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        bail!("controller: {a:?} is not host:port, http://host:port or https://host:port");
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

/// A channel to the controller: TLS for an `https://` address (with `conn`'s CA and,
/// for mutual TLS, its certificate), plain HTTP/2 otherwise. TLS is never dropped silently.
pub async fn channel(conn: &Conn) -> Result<Channel> {
    let u = url(&conn.controller)?;
    let mut e = tonic::transport::Endpoint::from_shared(u.clone())
        .with_context(|| format!("controller: {:?} is not a valid address", conn.controller))?;
    if u.starts_with("https://") {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let Some(ca) = &conn.ca_cert else {
            bail!("controller: {u} is TLS; name the CA that signed its certificate with --ca-cert or STRADDLE_CA_CERT");
        };
        let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
        if let (Some(c), Some(k)) = (&conn.tls_cert, &conn.tls_key) {
            tls = tls.identity(tonic::transport::Identity::from_pem(read(c)?, read(k)?));
        }
        e = e.tls_config(tls).context("TLS settings")?;
    }
    e.connect().await.map_err(|err| {
        let why = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
        anyhow::anyhow!("cannot reach the controller at {u}{why}")
    })
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
    Ok(InterceptedService::new(channel(conn).await?, AddToken(header)))
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
        assert_eq!(url("https://h:1").unwrap(), "https://h:1");
        assert!(url("ftp://h:1").is_err());
        assert!(url(" ").is_err());
    }
}
