//! Early returns of the algorithms: a failed PMPI call's error code, a request posted, a
//! count that does not fit a C int.

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

/// A count, displacement or byte length (usize) as the C int MPI takes, or MPI_ERR_COUNT
/// returned from the enclosing function (of either kind above). Every such value the
/// algorithms pass is bounded by the call's own C int counts or by a total the entry
/// point checked to fit (`as_int`) before any communication, so this never returns in
/// practice; it stands where a cast would silently truncate.
macro_rules! int {
    ($n:expr) => {
        match c_int::try_from($n) {
            Ok(v) => v,
            Err(_) => return ERR_COUNT.into(),
        }
    };
}

/// `int!` for every element of a slice: a Vec<c_int> for MPI's count and displacement
/// arrays, or MPI_ERR_COUNT returned from the enclosing function.
macro_rules! ints {
    ($v:expr) => {
        match ints($v) {
            Some(v) => v,
            None => return ERR_COUNT.into(),
        }
    };
}
