//! Whether running a call site-aware beats the library's own algorithm.

use crate::{crossing, default_alg, leaders, library_crossing, Op, Size};

/// Below this (the message, or an all-to-all's block), a call is latency-bound: regrouping
/// pays where the library's algorithm crosses the WAN in more than one round on the
/// critical path (site-aware crosses once, plus two LAN phases).
pub const LONG: f64 = 65_536.0;
/// From this block size on an all-to-all stays flat: it moves the same bytes across either
/// way, and the detour through the heads (two in-site phases of the whole volume) costs
/// more than the WAN latencies it saves.
pub const ALLTOALL_FLAT: f64 = 32_768.0;
/// Long calls regroup only where the library moves this many times the bytes across that
/// the site-aware exchange does (one copy per remote site).
pub const BYTES_MARGIN: f64 = 1.25;

/// Whether running `op` site-aware pays over the library's default algorithm
/// ([`default_alg`]), when `site[i]` is the site of communicator rank i. Deterministic in
/// its arguments: every rank passing the same ones decides the same.
pub fn pays(op: Op, site: &[usize], root: usize, size: Size) -> bool {
    let alltoall = matches!(op, Op::Alltoall | Op::Alltoallv);
    if alltoall && size.block >= ALLTOALL_FLAT {
        return false;
    }
    let flat = library_crossing(op, default_alg(op, site.len(), size), site, root, size);
    if (if alltoall { size.block } else { size.msg }) >= LONG {
        // Long messages: the WAN latencies saved are small next to two in-site phases of
        // the whole message; only fewer bytes across pays.
        flat.bytes > BYTES_MARGIN * crossing(&leaders(op, site, root, size), site).bytes
    } else {
        flat.rounds >= 2
    }
}
