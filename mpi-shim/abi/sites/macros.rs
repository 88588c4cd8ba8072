//! Early returns of the algorithms: a failed PMPI call's error code, a request posted.

/// Returns the error code of a failed PMPI call from a site-aware algorithm.
macro_rules! ck {
    ($e:expr) => {{
        let rc = $e;
        if rc != 0 {
            return Some(rc);
        }
    }};
}

/// Returns the error code of a failed PMPI call from a function that returns one.
macro_rules! try_rc {
    ($e:expr) => {{
        let rc = $e;
        if rc != 0 {
            return rc;
        }
    }};
}

/// Posts a nonblocking send or receive (`PMPI_Isend`, `PMPI_Irecv` and their arguments but
/// the request) and keeps its request in `reqs`; returns the library's error code from the
/// enclosing function if it fails.
macro_rules! post {
    ($reqs:expr, $start:ident, $($arg:expr),+) => {{
        let mut q: Request = std::mem::zeroed();
        try_rc!($start()($($arg),+, &mut q));
        $reqs.push(q);
    }};
}
