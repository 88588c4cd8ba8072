//! Who may call what. With an operator token configured the controller is secured: calls
//! that change placement or read traffic need the operator token, and a rank's stream
//! needs its job's credential (issued by the scheduler's submit) or the operator token.
//! Without one (a development controller on loopback) everything is open. Tokens are
//! compared as SHA-256 digests in constant time; none is kept in plain text.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::credential::{digest, same};
use crate::plane::ControlPlane;

/// The bearer token a call presents.
pub fn bearer(md: &MetadataMap) -> Option<&str> {
    md.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim)
}

#[derive(Clone, Default)]
pub struct Auth {
    operator: Option<[u8; 32]>,
    plane: Option<Arc<ControlPlane>>,
}

impl Auth {
    pub fn new(operator_token: Option<&str>, plane: Option<Arc<ControlPlane>>) -> Auth {
        Auth { operator: operator_token.map(digest), plane }
    }

    /// Whether calls must authenticate.
    pub fn secured(&self) -> bool {
        self.operator.is_some()
    }

    pub fn is_operator(&self, token: Option<&str>) -> bool {
        match (&self.operator, token) {
            (None, _) => true,
            (Some(want), Some(t)) => same(&digest(t), want),
            (Some(_), None) => false,
        }
    }

    /// The operator, or a holder of `job`'s credential.
    pub fn may_use_job(&self, job: &str, token: Option<&str>) -> bool {
        if self.is_operator(token) {
            return true;
        }
        let (Some(plane), Some(t)) = (&self.plane, token) else { return false };
        match plane.credential(job) {
            Some(want) => same(&digest(t), &want),
            None => false,
        }
    }

    /// The check for calls that need the operator.
    pub fn operator(&self, md: &MetadataMap) -> Result<(), Status> {
        if self.is_operator(bearer(md)) {
            Ok(())
        } else {
            Err(Status::unauthenticated("a valid operator token is required (authorization: Bearer ...)"))
        }
    }

    pub fn job(&self, md: &MetadataMap, job: &str) -> Result<(), Status> {
        if self.may_use_job(job, bearer(md)) {
            Ok(())
        } else {
            Err(Status::unauthenticated("this job's credential or an operator token is required (authorization: Bearer ...)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_digest_and_an_open_controller_lets_all_in() {
        let open = Auth::new(None, None);
        assert!(!open.secured() && open.is_operator(None) && open.may_use_job("x", None));
        let a = Auth::new(Some("s3cret"), None);
        assert!(a.secured());
        assert!(a.is_operator(Some("s3cret")));
        assert!(!a.is_operator(Some("s3cre")) && !a.is_operator(None));
        assert!(!a.may_use_job("cg", Some("guess")), "no plane: only the operator");
        let mut md = MetadataMap::new();
        md.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(a.operator(&md).is_ok());
        assert_eq!(a.operator(&MetadataMap::new()).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
