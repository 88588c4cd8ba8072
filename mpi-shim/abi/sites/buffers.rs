//! Buffers of the algorithms: datatype layouts, scratch space, packing, typed copies and
//! the exchange of block sizes inside a site (Open MPI HAN: `coll_han_utils.c`).

use super::*;

/// Extent and true bounds of a datatype.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) extent: isize,
    pub(super) true_lb: isize,
    pub(super) true_extent: isize,
}

pub(super) unsafe fn layout(dt: Datatype) -> Option<Layout> {
    let (mut lb, mut ext, mut tlb, mut text) = (0, 0, 0, 0);
    // SAFETY: valid out-pointers.
    unsafe {
        if PMPI_Type_get_extent()(dt, &mut lb, &mut ext) != 0 || PMPI_Type_get_true_extent()(dt, &mut tlb, &mut text) != 0 {
            return None;
        }
    }
    (ext > 0 && text >= 0).then_some(Layout { extent: ext, true_lb: tlb, true_extent: text })
}

/// Address of element `i` of a buffer of `dt` (extent `ext`).
pub(super) fn at(buf: *const c_void, i: usize, ext: isize) -> *mut c_void {
    (buf as *mut u8).wrapping_offset(i as isize * ext) as *mut c_void
}

/// Scratch space for `count` elements laid out as the datatype expects.
pub(super) struct Scratch {
    pub(super) mem: Vec<u8>,
    pub(super) l: Layout,
}

impl Scratch {
    pub(super) fn new(count: usize, l: Layout) -> Scratch {
        let len = if count == 0 { 0 } else { (count as isize - 1) * l.extent + l.true_extent } as usize;
        Scratch { mem: vec![0; len.max(1)], l }
    }
    /// The buffer address to hand to MPI.
    pub(super) fn buf(&mut self) -> *mut c_void {
        self.mem.as_mut_ptr().wrapping_offset(-self.l.true_lb) as *mut c_void
    }
    /// Byte range of elements [a, a + c) within `mem`.
    pub(super) fn span(&self, a: usize, c: usize) -> std::ops::Range<usize> {
        let start = a as isize * self.l.extent;
        let end = if c == 0 { start } else { start + (c as isize - 1) * self.l.extent + self.l.true_extent };
        start as usize..end as usize
    }
}

/// Copies `count` elements of a datatype between buffers (same layout).
pub(super) unsafe fn copy_elems(src: *const c_void, dst: *mut c_void, count: usize, l: Layout) {
    if count == 0 {
        return;
    }
    let len = (count as isize - 1) * l.extent + l.true_extent;
    // SAFETY: both buffers hold `count` elements of this layout.
    unsafe { std::ptr::copy((src as *const u8).wrapping_offset(l.true_lb), (dst as *mut u8).wrapping_offset(l.true_lb), len as usize) };
}

/// Appends `count` elements of `dt` at `buf`, packed.
pub(super) unsafe fn pack(out: &mut Vec<u8>, buf: *const c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut need = 0;
    // SAFETY: PMPI pack calls with a buffer of the size the library asked for.
    unsafe {
        try_rc!(PMPI_Pack_size()(count, dt, comm, &mut need));
        // Never hand MPI a dangling pointer: Open MPI's MPI_IN_PLACE is address 1, which is
        // where an empty Vec<u8> points.
        out.reserve(1);
        let start = out.len();
        out.resize(start + need as usize, 0);
        let mut pos = int!(start);
        let rc = PMPI_Pack()(buf, count, dt, out.as_mut_ptr().cast(), int!(out.len()), &mut pos, comm);
        out.truncate(pos as usize);
        rc
    }
}

/// Unpacks `count` elements of `dt` from `data` into `buf`.
pub(super) unsafe fn unpack(data: &[u8], buf: *mut c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut pos = 0;
    // SAFETY: `data` holds what `pack` produced for this signature.
    unsafe { PMPI_Unpack()(data.as_ptr().cast(), int!(data.len()), &mut pos, buf, count, dt, comm) }
}

pub(super) fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut o = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0;
    o.push(0);
    for &s in sizes {
        acc += s;
        o.push(acc);
    }
    o
}

/// Every element as a C int, if all fit (see `ints!`).
pub(super) fn ints<T: Copy + TryInto<c_int>>(v: &[T]) -> Option<Vec<c_int>> {
    v.iter().map(|&x| x.try_into().ok()).collect()
}

// The algorithms size buffers in usize from the u64 byte counts of `bytes` and
// `type_size`: exact on the 64-bit targets the shim is built for (MPI_Aint is 8 bytes,
// abi_check.c).
const _: () = assert!(usize::BITS == u64::BITS, "the shim needs 64-bit usize");

/// A byte count as usize.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // usize is as wide as u64 (asserted above): exact.
pub(super) fn size(b: u64) -> usize {
    b as usize
}

/// Completes every request of `reqs` (MPI_Waitall, in runs of at most c_int::MAX).
pub(super) unsafe fn wait_all(reqs: &mut [Request]) -> c_int {
    for run in reqs.chunks_mut(c_int::MAX as usize) {
        let n = c_int::try_from(run.len()).unwrap_or(c_int::MAX);
        // SAFETY: requests the caller posted and has not completed; `n` of them.
        try_rc!(unsafe { PMPI_Waitall()(n, run.as_mut_ptr(), status_ignore()) });
    }
    0
}

/// Gathers one usize per member to the site's member `at` (a communicator rank).
pub(super) unsafe fn gather_sizes(sc: &SiteComms, mine: usize, at: usize) -> Result<Vec<usize>, c_int> {
    let k = sc.members().len();
    let send = [mine as u64];
    let mut recv = vec![0u64; if sc.me == at { k } else { 1 }];
    // SAFETY: buffers sized for the call.
    let rc = unsafe {
        PMPI_Gather()(send.as_ptr().cast(), 8, byte_type(), recv.as_mut_ptr().cast(), 8, byte_type(), sc.local_rank[at], sc.local)
    };
    if rc != 0 {
        return Err(rc);
    }
    Ok(recv.into_iter().map(size).collect())
}

/// The byte size of every member's block, at the site's member `at`: `uniform` when the
/// call says all are equal, else gathered from the members (`mine`: this rank's).
pub(super) unsafe fn member_sizes(sc: &SiteComms, uniform: Option<usize>, mine: usize, at: usize) -> Result<Vec<usize>, c_int> {
    match uniform {
        Some(b) => Ok(vec![b; sc.members().len()]),
        // SAFETY: a gather on our site communicator.
        None => unsafe { gather_sizes(sc, mine, at) },
    }
}

/// Gathers `n` usizes per member to the site leader, member-major.
pub(super) unsafe fn gather_vectors(sc: &SiteComms, mine: &[usize]) -> Result<Vec<usize>, c_int> {
    let k = sc.members().len();
    let n = mine.len();
    let send: Vec<u64> = mine.iter().map(|&x| x as u64).collect();
    let mut recv = vec![0u64; if sc.is_leader() { k * n } else { 1 }];
    let bytes = c_int::try_from(8 * n).map_err(|_| ERR_COUNT)?;
    // SAFETY: buffers sized for the call.
    let rc = unsafe {
        PMPI_Gather()(send.as_ptr().cast(), bytes, byte_type(), recv.as_mut_ptr().cast(), bytes, byte_type(), sc.lead_local(), sc.local)
    };
    if rc != 0 {
        return Err(rc);
    }
    Ok(recv.into_iter().map(size).collect())
}

/// Moves `len` bytes of `buf` from communicator rank `from` to `to` over the site
/// communicator (both in one site).
pub(super) unsafe fn handover(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, from: usize, to: usize, tag: c_int) -> c_int {
    if from == to {
        return 0;
    }
    // SAFETY: forwarded buffers.
    unsafe {
        if sc.me == from {
            PMPI_Send()(buf, count, dt, sc.local_rank[to], tag, sc.local)
        } else if sc.me == to {
            PMPI_Recv()(buf, count, dt, sc.local_rank[from], tag, sc.local, status_ignore())
        } else {
            0
        }
    }
}

/// Copies `count` elements of `dt` from `src` to `dst` through the datatype (gaps in
/// `dst` stay untouched).
pub(super) unsafe fn typed_copy(src: *const c_void, dst: *mut c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut packed = Vec::new();
    // SAFETY: both buffers hold `count` elements of `dt`.
    unsafe {
        try_rc!(pack(&mut packed, src, count, dt, comm));
        unpack(&packed, dst, count, dt, comm)
    }
}

pub(super) fn as_int(n: usize) -> Option<c_int> {
    c_int::try_from(n).ok()
}

/// Address of element `a` of a buffer of layout `l`.
pub(super) fn elem(p: *mut c_void, a: usize, l: Layout) -> *mut c_void {
    p.wrapping_byte_offset(a as isize * l.extent)
}

/// Copies `count` elements of `dt` into an application buffer: one copy where the type has
/// no gaps, else through the datatype (its gaps in `dst` stay untouched).
pub(super) unsafe fn user_copy(src: *const c_void, dst: *mut c_void, count: c_int, dt: Datatype, l: Layout, comm: Comm) -> c_int {
    // SAFETY: both buffers hold `count` elements of `dt`.
    unsafe {
        if isize::try_from(type_size(dt)).is_ok_and(|sz| sz == l.true_extent) && l.extent == l.true_extent {
            copy_elems(src, dst, count.max(0) as usize, l);
            0
        } else {
            typed_copy(src, dst, count, dt, comm)
        }
    }
}
