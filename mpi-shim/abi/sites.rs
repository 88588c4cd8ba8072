// Site-aware collectives in the MPI library's own terms (included after `c.rs`).
//
// Per communicator (an attribute): the epoch agreement of `straddle_shim::regroup` and,
// once the ranks agree on a grouping, a communicator per site plus one of the sites'
// leaders, built site-locally with MPI_Comm_create_group. Every collective entry point
// on an intracommunicator steps the agreement first (`step_collective`); the blocking
// ones listed in `collective_names.rs` with `via` then run the algorithms below, which
// call PMPI only and work inside each site first, across the WAN once per site.
// Nonblocking, persistent, neighbourhood, large-count and w-collectives step the
// agreement and run flat.

use straddle_shim::regroup::{agreed, contribution, cross_site_bytes, pays, pipeline_pieces, route, scan_chain_pieces, Agreement, Grouping, Route, SaOp, DIRECT_SITES};

pmpi!(PMPI_Comm_create_group: fn(Comm, Group, c_int, *mut Comm) -> c_int);
pmpi!(PMPI_Group_incl: fn(Group, c_int, *const c_int, *mut Group) -> c_int);
pmpi!(PMPI_Comm_free: fn(*mut Comm) -> c_int);
pmpi!(PMPI_Comm_dup: fn(Comm, *mut Comm) -> c_int);
pmpi!(PMPI_Comm_get_errhandler: fn(Comm, *mut Errhandler) -> c_int);
pmpi!(PMPI_Comm_set_errhandler: fn(Comm, Errhandler) -> c_int);
pmpi!(PMPI_Errhandler_free: fn(*mut Errhandler) -> c_int);
pmpi!(PMPI_Recv: fn(*mut c_void, c_int, Datatype, c_int, c_int, Comm, *mut c_void) -> c_int);
pmpi!(PMPI_Wait: fn(*mut Request, *mut c_void) -> c_int);
pmpi!(PMPI_Type_get_extent: fn(Datatype, *mut Aint, *mut Aint) -> c_int);
pmpi!(PMPI_Type_get_true_extent: fn(Datatype, *mut Aint, *mut Aint) -> c_int);
pmpi!(PMPI_Pack_size: fn(c_int, Datatype, Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Pack: fn(*const c_void, c_int, Datatype, *mut c_void, c_int, *mut c_int, Comm) -> c_int);
pmpi!(PMPI_Unpack: fn(*const c_void, c_int, *mut c_int, *mut c_void, c_int, Datatype, Comm) -> c_int);
pmpi!(PMPI_Op_commutative: fn(MpiOp, *mut c_int) -> c_int);
pmpi!(PMPI_Reduce_local: fn(*const c_void, *mut c_void, c_int, Datatype, MpiOp) -> c_int);
pmpi!(PMPI_Irecv: fn(*mut c_void, c_int, Datatype, c_int, c_int, Comm, *mut Request) -> c_int);
pmpi!(PMPI_Waitall: fn(c_int, *mut Request, *mut c_void) -> c_int);

/// Tags of the shim's own point-to-point messages on its (private) site communicators.
const HANDOVER_TAG: c_int = 0x5d5e;
const SIZES_TAG: c_int = 0x5d5f;
const TOTAL_TAG: c_int = 0x5d60;
/// Tags of MPI_Comm_create_group for the site and the leaders' communicators.
const LOCAL_GROUP_TAG: c_int = 0x5d61;
const LEADERS_GROUP_TAG: c_int = 0x5d62;
const CROSS_GROUP_TAG: c_int = 0x5d64;
/// Tag of the heads' direct messages (on the leaders' or the cross communicator).
const LEADERS_TAG: c_int = 0x5d63;
/// Tag of a pipelined reduction's or scan's pieces (on the cross communicator).
const PIECE_TAG: c_int = 0x5d65;

static REGROUP_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);

/// Agreements in flight on any communicator, completed at MPI_Finalize.
static IN_FLIGHT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// The agreement's buffers, boxed so they stay put while the library fills them.
struct Pending {
    req: Request,
    send: [u64; 2],
    recv: Vec<u64>,
}

/// One communicator's regrouping state.
struct Regroup {
    agreement: Agreement,
    pending: Option<Box<Pending>>,
    current: Option<SiteComms>,
    /// The epoch of the last agreement (`Some(None)`: some rank held no map).
    last_agreed: Option<Option<u64>>,
    /// The last grouping whose communicators could not be built.
    failed: Option<Grouping>,
    size: usize,
    me: usize,
    is_world: bool,
}

/// The site communicators of one agreed grouping.
struct SiteComms {
    g: Grouping,
    me: usize,
    /// This rank's group.
    mine: usize,
    /// This rank's site communicator (ranks in communicator order).
    local: Comm,
    /// The leaders' communicator (rank h leads group h), on leaders only.
    leaders: Option<Comm>,
    /// The whole communicator again, private to the shim: up to DIRECT_SITES sites the
    /// heads of a rooted operation (the root for its own site, `Grouping::head`) send to
    /// each other on it directly, by communicator rank.
    cross: Option<Comm>,
    /// Site-communicator rank of each communicator rank.
    local_rank: Vec<c_int>,
    /// Regroup even where the library would cross the WAN as little.
    always: bool,
}

unsafe fn free_site_comms(sc: &mut SiteComms) {
    // SAFETY: communicators this shim created; every member frees them at the same point.
    unsafe {
        PMPI_Comm_free()(&mut sc.local);
        for mut c in [sc.leaders.take(), sc.cross.take()].into_iter().flatten() {
            PMPI_Comm_free()(&mut c);
        }
    }
}

/// Completes the agreement in flight, if any.
unsafe fn finish_pending(rg: &mut Regroup) -> Option<Box<Pending>> {
    let mut p = rg.pending.take()?;
    // SAFETY: the request of our own Iallgather; every rank started it.
    unsafe { PMPI_Wait()(&mut p.req, status_ignore()) };
    let key = rg as *mut Regroup as usize;
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).retain(|&k| k != key);
    Some(p)
}

unsafe extern "C" fn free_regroup(comm: Comm, _: c_int, val: *mut c_void, _: *mut c_void) -> c_int {
    if val.is_null() {
        return 0;
    }
    // SAFETY: the attribute holds a Box<Option<Regroup>> from `regroup_state`.
    let mut b = unsafe { Box::from_raw(val as *mut Option<Regroup>) };
    if let Some(rg) = b.as_mut() {
        // SAFETY: see `finish_pending`; freeing is not allowed for MPI_COMM_WORLD at finalize.
        unsafe {
            finish_pending(rg);
            if !rg.is_world && comm != comm_world() {
                if let Some(sc) = rg.current.as_mut() {
                    free_site_comms(sc);
                }
            }
        }
    }
    0
}

/// Completes every agreement still in flight (MPI_Finalize is collective, and every rank
/// started the same ones).
unsafe fn finish_agreements() {
    let keys: Vec<usize> = std::mem::take(&mut *IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()));
    for k in keys {
        // SAFETY: keys are live Regroup states (removed when their communicator goes).
        unsafe { finish_pending(&mut *(k as *mut Regroup)) };
    }
}

fn note(s: &Shim, what: &str) {
    if s.config.verbose {
        let line = format!("straddle[{} rank {}]: {what}\n", s.id.job, s.id.rank);
        // SAFETY: writing a valid buffer to fd 2.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
}

/// The regrouping state of `comm` (created on first use; `None` for communicators that
/// never regroup: intercommunicators and single ranks).
unsafe fn regroup_state(s: &Shim, comm: Comm) -> Option<&'static mut Regroup> {
    if REGROUP_KEYVAL.load(Relaxed) == KEYVAL_UNSET {
        let mut k = 0;
        // SAFETY: creating a keyval with our own callbacks.
        if unsafe { PMPI_Comm_create_keyval()(Some(no_copy_comm), Some(free_regroup), &mut k, null_mut()) } != 0 {
            return None;
        }
        REGROUP_KEYVAL.store(k, Relaxed);
    }
    let key = REGROUP_KEYVAL.load(Relaxed);
    // SAFETY: the value is a Box<Option<Regroup>> of ours, freed with the communicator;
    // collectives on one communicator never run concurrently, so this rank's collective
    // is its only user.
    unsafe {
        let raw = match cached_on_comm(comm, key)? {
            Some(val) => val,
            None => {
                let built = Box::into_raw(Box::new(new_regroup(s, comm))) as *mut c_void;
                cache_on_comm(comm, key, built, |r| drop(Box::from_raw(r as *mut Option<Regroup>)))?
            }
        };
        (*(raw as *mut Option<Regroup>)).as_mut()
    }
}

unsafe fn new_regroup(s: &Shim, comm: Comm) -> Option<Regroup> {
    let (mut inter, mut size, mut me) = (0, 0, 0);
    // SAFETY: queries on a valid communicator.
    unsafe {
        PMPI_Comm_test_inter()(comm, &mut inter);
        PMPI_Comm_size()(comm, &mut size);
        PMPI_Comm_rank()(comm, &mut me);
    }
    if inter != 0 || size < 2 {
        return None;
    }
    Some(Regroup {
        agreement: Agreement::new(s.config.agree_every),
        pending: None,
        current: None,
        last_agreed: None,
        failed: None,
        size: size as usize,
        me: me as usize,
        is_world: comm == comm_world(),
    })
}

/// Every collective entry point on a communicator calls this first (outermost call only):
/// it advances the agreement and says whether this collective runs site-aware.
unsafe fn step_collective(comm: Comm) -> Option<&'static SiteComms> {
    let s = active()?;
    if !s.config.regroup {
        return None;
    }
    // SAFETY: the application's communicator; PMPI calls only.
    unsafe {
        let rg = regroup_state(s, comm)?;
        let step = rg.agreement.step();
        if step.complete {
            if let Some(p) = finish_pending(rg) {
                adopt(s, comm, rg, agreed(&p.recv));
            }
        }
        if step.start {
            let mut p = Box::new(Pending { req: std::mem::zeroed(), send: contribution(s.held_site()), recv: vec![0; 2 * rg.size] });
            let rc = PMPI_Iallgather()(
                p.send.as_ptr().cast(),
                16,
                byte_type(),
                p.recv.as_mut_ptr().cast(),
                16,
                byte_type(),
                comm,
                &mut p.req,
            );
            if rc == 0 {
                rg.pending = Some(p);
                rg.agreement.started();
                IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).push(rg as *mut Regroup as usize);
            }
        }
        rg.current.as_ref()
    }
}

/// Switches `comm` to the agreed grouping (every rank runs this at the same collective,
/// with the same `next`).
unsafe fn adopt(s: &Shim, comm: Comm, rg: &mut Regroup, next: Option<Grouping>) {
    let agreed_epoch = next.as_ref().map(|g| g.epoch);
    if let Some(e) = agreed_epoch {
        rg.agreement.adopt(e);
    }
    let next = next.filter(|g| route(g, false, true) == Route::SiteAware);
    let unchanged_flat = rg.current.is_none() && next.is_none() && rg.last_agreed == Some(agreed_epoch);
    rg.last_agreed = Some(agreed_epoch);
    if unchanged_flat {
        return;
    }
    // A grouping whose communicators could not be built is not retried until the map
    // changes (every rank keeps the same record, so all skip alike).
    if let (None, Some(f), Some(n)) = (&rg.current, &rg.failed, &next) {
        if f.same_as(n) {
            return;
        }
    }
    if let (Some(cur), Some(n)) = (&rg.current, &next) {
        if cur.g.same_as(n) {
            return;
        }
    }
    // SAFETY: collective over `comm`'s ranks, all of which are here.
    unsafe {
        if let Some(mut old) = rg.current.take() {
            free_site_comms(&mut old);
        }
        let Some(g) = next else {
            let why = match agreed_epoch {
                Some(e) => format!("epoch {e}: collectives flat (one site, or one rank per site)"),
                None => "collectives flat (not every rank holds a site map)".to_string(),
            };
            note(s, &why);
            return;
        };
        let epoch = g.epoch;
        let sites = g.groups.len();
        rg.current = build_site_comms(comm, rg.me, g.clone());
        rg.failed = rg.current.is_none().then_some(g);
        if rg.current.is_some() {
            note(s, &format!("epoch {epoch}: site-aware collectives over {sites} sites on a communicator of {} ranks", rg.size));
        } else {
            note(s, &format!("epoch {epoch}: could not build site communicators; collectives stay flat"));
        }
    }
}

/// Builds the site and leaders' communicators site-locally. Errors return instead of
/// aborting, and all ranks check that all succeeded before anyone uses them.
unsafe fn build_site_comms(comm: Comm, me: usize, g: Grouping) -> Option<SiteComms> {
    // SAFETY: PMPI calls on `comm`, reached by all of its ranks.
    unsafe {
        let mut user_eh: Errhandler = std::mem::zeroed();
        PMPI_Comm_get_errhandler()(comm, &mut user_eh);
        PMPI_Comm_set_errhandler()(comm, errors_return());
        // MPICH's MPI_Comm_create_group waits (forever) for a context id when a member has
        // none left, instead of failing: every rank first checks that it has the three it
        // may need, and all go on only if all have them.
        let have = context_ids_left(3);
        if !all_ranks(comm, have, g.site_of.len()) {
            PMPI_Comm_set_errhandler()(comm, user_eh);
            PMPI_Errhandler_free()(&mut user_eh);
            return None;
        }
        let mine = g.group_of[me];
        let leader = g.leader(mine) == me;
        let mut cg: Group = std::mem::zeroed();
        let mut ok = PMPI_Comm_group()(comm, &mut cg) == 0;
        let mut local: Option<Comm> = None;
        let mut leaders: Option<Comm> = None;
        let mut cross: Option<Comm> = None;
        if ok {
            let members: Vec<c_int> = g.groups[mine].iter().map(|&r| r as c_int).collect();
            let mut lg: Group = std::mem::zeroed();
            let mut c: Comm = std::mem::zeroed();
            ok = PMPI_Group_incl()(cg, members.len() as c_int, members.as_ptr(), &mut lg) == 0
                && PMPI_Comm_create_group()(comm, lg, LOCAL_GROUP_TAG, &mut c) == 0;
            if ok {
                local = Some(c);
                PMPI_Group_free()(&mut lg);
            }
            if ok && leader {
                let heads: Vec<c_int> = (0..g.groups.len()).map(|h| g.leader(h) as c_int).collect();
                let mut xg: Group = std::mem::zeroed();
                let mut x: Comm = std::mem::zeroed();
                ok = PMPI_Group_incl()(cg, heads.len() as c_int, heads.as_ptr(), &mut xg) == 0
                    && PMPI_Comm_create_group()(comm, xg, LEADERS_GROUP_TAG, &mut x) == 0;
                if ok {
                    leaders = Some(x);
                    PMPI_Group_free()(&mut xg);
                }
            }
            // Every rank takes part (a failure above only makes the result unused).
            if g.groups.len() <= DIRECT_SITES {
                let mut c: Comm = std::mem::zeroed();
                if PMPI_Comm_create_group()(comm, cg, CROSS_GROUP_TAG, &mut c) == 0 {
                    cross = Some(c);
                } else {
                    ok = false;
                }
            }
            PMPI_Group_free()(&mut cg);
        }
        // All or nothing, decided the same on every rank.
        let agreed_ok = all_ranks(comm, ok, g.site_of.len());
        PMPI_Comm_set_errhandler()(comm, user_eh);
        PMPI_Errhandler_free()(&mut user_eh);
        if !agreed_ok {
            for c in [local, leaders, cross].into_iter().flatten() {
                let mut c = c;
                PMPI_Comm_free()(&mut c);
            }
            return None;
        }
        let local = local?;
        PMPI_Comm_set_errhandler()(local, errors_return());
        for x in [leaders, cross].into_iter().flatten() {
            PMPI_Comm_set_errhandler()(x, errors_return());
        }
        let mut local_rank = vec![0; g.site_of.len()];
        for m in &g.groups {
            for (i, &r) in m.iter().enumerate() {
                local_rank[r] = i as c_int;
            }
        }
        let always = state::shim().is_some_and(|s| s.config.regroup_always);
        Some(SiteComms { me, mine, local, leaders, cross, local_rank, g, always })
    }
}

/// Whether `flag` holds on every rank of `comm` (of `n` ranks); false on any error.
unsafe fn all_ranks(comm: Comm, flag: bool, n: usize) -> bool {
    let mine = [flag as u8];
    let mut all = vec![0u8; n];
    // SAFETY: buffers sized for the call; every rank of `comm` is here.
    let rc = unsafe { PMPI_Allgather()(mine.as_ptr().cast(), 1, byte_type(), all.as_mut_ptr().cast(), 1, byte_type(), comm) };
    rc == 0 && all.iter().all(|&f| f == 1)
}

/// Whether this process can still create `k` communicators (duplicates of MPI_COMM_SELF,
/// freed at once; a purely local check).
unsafe fn context_ids_left(k: usize) -> bool {
    // SAFETY: PMPI calls on MPI_COMM_SELF; its error handler is restored.
    unsafe {
        let mut eh: Errhandler = std::mem::zeroed();
        PMPI_Comm_get_errhandler()(comm_self(), &mut eh);
        PMPI_Comm_set_errhandler()(comm_self(), errors_return());
        let mut made: Vec<Comm> = Vec::with_capacity(k);
        for _ in 0..k {
            let mut c: Comm = std::mem::zeroed();
            if PMPI_Comm_dup()(comm_self(), &mut c) != 0 {
                break;
            }
            made.push(c);
        }
        let ok = made.len() == k;
        for mut c in made {
            PMPI_Comm_free()(&mut c);
        }
        PMPI_Comm_set_errhandler()(comm_self(), eh);
        PMPI_Errhandler_free()(&mut eh);
        ok
    }
}

// --- helpers of the algorithms -----------------------------------------------------------

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

impl SiteComms {
    fn n(&self) -> usize {
        self.g.site_of.len()
    }
    fn leader(&self, h: usize) -> usize {
        self.g.leader(h)
    }
    fn is_leader(&self) -> bool {
        self.g.leader(self.mine) == self.me
    }
    /// Site-communicator rank of this site's leader.
    fn lead_local(&self) -> c_int {
        self.local_rank[self.g.leader(self.mine)]
    }
    /// Who speaks for group `h` across sites in an operation rooted at `root`
    /// (`Grouping::head`: the root for its own site where the heads exchange directly).
    fn head(&self, h: usize, root: usize) -> usize {
        self.g.head(h, Some(root))
    }
    /// Site-communicator rank of this site's head for `root`.
    fn head_local(&self, root: usize) -> c_int {
        self.local_rank[self.head(self.mine, root)]
    }
    fn members(&self) -> &[usize] {
        &self.g.groups[self.mine]
    }
    fn root(&self, root: c_int) -> Option<usize> {
        (root >= 0 && (root as usize) < self.n()).then_some(root as usize)
    }
    /// Commutative operation, or every site's ranks contiguous: the order of a reduction
    /// survives regrouping.
    unsafe fn reducible(&self, op: MpiOp) -> bool {
        let mut commute = 0;
        // SAFETY: valid out-pointer.
        unsafe { PMPI_Op_commutative()(op, &mut commute) };
        commute != 0 || self.g.contiguous()
    }
    /// Whether `op` should run site-aware here (see `regroup::pays`).
    fn worth(&self, op: SaOp, root: Option<usize>, bytes: u64) -> bool {
        self.always || pays(op, &self.g, root, bytes)
    }
    fn cross(&self, op: SaOp, root: Option<usize>, payload: u64, site_bytes: &[u64]) {
        let b = cross_site_bytes(op, &self.g, self.me, root, payload, site_bytes);
        if b > 0 {
            if let Some(s) = state::shim() {
                s.regrouped_bytes.fetch_add(b, Relaxed);
            }
        }
    }
    /// Per group: the sum of `per_rank` over its members.
    fn site_sums(&self, per_rank: impl Fn(usize) -> usize) -> Vec<usize> {
        self.g.groups.iter().map(|m| m.iter().map(|&r| per_rank(r)).sum()).collect()
    }
}

/// Extent and true bounds of a datatype.
#[derive(Clone, Copy)]
struct Layout {
    extent: isize,
    true_lb: isize,
    true_extent: isize,
}

unsafe fn layout(dt: Datatype) -> Option<Layout> {
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
fn at(buf: *const c_void, i: usize, ext: isize) -> *mut c_void {
    (buf as *mut u8).wrapping_offset(i as isize * ext) as *mut c_void
}

/// Scratch space for `count` elements laid out as the datatype expects.
struct Scratch {
    mem: Vec<u8>,
    l: Layout,
}

impl Scratch {
    fn new(count: usize, l: Layout) -> Scratch {
        let len = if count == 0 { 0 } else { (count as isize - 1) * l.extent + l.true_extent } as usize;
        Scratch { mem: vec![0; len.max(1)], l }
    }
    /// The buffer address to hand to MPI.
    fn buf(&mut self) -> *mut c_void {
        self.mem.as_mut_ptr().wrapping_offset(-self.l.true_lb) as *mut c_void
    }
    /// Byte range of elements [a, a + c) within `mem`.
    fn span(&self, a: usize, c: usize) -> std::ops::Range<usize> {
        let start = a as isize * self.l.extent;
        let end = if c == 0 { start } else { start + (c as isize - 1) * self.l.extent + self.l.true_extent };
        start as usize..end as usize
    }
}

/// Copies `count` elements of a datatype between buffers (same layout).
unsafe fn copy_elems(src: *const c_void, dst: *mut c_void, count: usize, l: Layout) {
    if count == 0 {
        return;
    }
    let len = (count as isize - 1) * l.extent + l.true_extent;
    // SAFETY: both buffers hold `count` elements of this layout.
    unsafe { std::ptr::copy((src as *const u8).wrapping_offset(l.true_lb), (dst as *mut u8).wrapping_offset(l.true_lb), len as usize) };
}

/// Appends `count` elements of `dt` at `buf`, packed.
unsafe fn pack(out: &mut Vec<u8>, buf: *const c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut need = 0;
    // SAFETY: PMPI pack calls with a buffer of the size the library asked for.
    unsafe {
        try_rc!(PMPI_Pack_size()(count, dt, comm, &mut need));
        // Never hand MPI a dangling pointer: Open MPI's MPI_IN_PLACE is address 1, which is
        // where an empty Vec<u8> points.
        out.reserve(1);
        let start = out.len();
        out.resize(start + need as usize, 0);
        let mut pos = start as c_int;
        let rc = PMPI_Pack()(buf, count, dt, out.as_mut_ptr().cast(), out.len() as c_int, &mut pos, comm);
        out.truncate(pos as usize);
        rc
    }
}

/// Unpacks `count` elements of `dt` from `data` into `buf`.
unsafe fn unpack(data: &[u8], buf: *mut c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut pos = 0;
    // SAFETY: `data` holds what `pack` produced for this signature.
    unsafe { PMPI_Unpack()(data.as_ptr().cast(), data.len() as c_int, &mut pos, buf, count, dt, comm) }
}

fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut o = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0;
    o.push(0);
    for &s in sizes {
        acc += s;
        o.push(acc);
    }
    o
}

fn ints(v: &[usize]) -> Vec<c_int> {
    v.iter().map(|&x| x as c_int).collect()
}

/// Gathers one usize per member to the site's member `at` (a communicator rank).
unsafe fn gather_sizes(sc: &SiteComms, mine: usize, at: usize) -> Result<Vec<usize>, c_int> {
    let k = sc.members().len();
    let send = [mine as u64];
    let mut recv = vec![0u64; if sc.me == at { k } else { 1 }];
    // SAFETY: buffers sized for the call.
    let rc = unsafe { PMPI_Gather()(send.as_ptr().cast(), 8, byte_type(), recv.as_mut_ptr().cast(), 8, byte_type(), sc.local_rank[at], sc.local) };
    if rc != 0 {
        return Err(rc);
    }
    Ok(recv.into_iter().map(|x| x as usize).collect())
}

/// The byte size of every member's block, at the site's member `at`: `uniform` when the
/// call says all are equal, else gathered from the members (`mine`: this rank's).
unsafe fn member_sizes(sc: &SiteComms, uniform: Option<usize>, mine: usize, at: usize) -> Result<Vec<usize>, c_int> {
    match uniform {
        Some(b) => Ok(vec![b; sc.members().len()]),
        // SAFETY: a gather on our site communicator.
        None => unsafe { gather_sizes(sc, mine, at) },
    }
}

/// Gathers `n` usizes per member to the site leader, member-major.
unsafe fn gather_vectors(sc: &SiteComms, mine: &[usize]) -> Result<Vec<usize>, c_int> {
    let k = sc.members().len();
    let n = mine.len();
    let send: Vec<u64> = mine.iter().map(|&x| x as u64).collect();
    let mut recv = vec![0u64; if sc.is_leader() { k * n } else { 1 }];
    let bytes = (8 * n) as c_int;
    // SAFETY: buffers sized for the call.
    let rc = unsafe { PMPI_Gather()(send.as_ptr().cast(), bytes, byte_type(), recv.as_mut_ptr().cast(), bytes, byte_type(), sc.lead_local(), sc.local) };
    if rc != 0 {
        return Err(rc);
    }
    Ok(recv.into_iter().map(|x| x as usize).collect())
}

/// Moves `len` bytes of `buf` from communicator rank `from` to `to` over the site
/// communicator (both in one site).
unsafe fn handover(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, from: usize, to: usize, tag: c_int) -> c_int {
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
unsafe fn typed_copy(src: *const c_void, dst: *mut c_void, count: c_int, dt: Datatype, comm: Comm) -> c_int {
    let mut packed = Vec::new();
    // SAFETY: both buffers hold `count` elements of `dt`.
    unsafe {
        try_rc!(pack(&mut packed, src, count, dt, comm));
        unpack(&packed, dst, count, dt, comm)
    }
}

/// The step between sites of a broadcast from `root`. Up to DIRECT_SITES sites the root
/// sends every other site's head one copy on the cross communicator; above, it hands the
/// data to its site's leader and the library broadcasts among the leaders.
unsafe fn x_bcast(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, root: usize) -> c_int {
    let rg = sc.g.group_of[root];
    // SAFETY: the caller's buffer of `count` elements of `dt`.
    unsafe {
        let Some(x) = sc.cross else {
            let rc = handover(sc, buf, count, dt, root, sc.leader(rg), HANDOVER_TAG);
            return match sc.leaders {
                Some(l) if rc == 0 => PMPI_Bcast()(buf, count, dt, rg as c_int, l),
                _ => rc,
            };
        };
        if sc.me != root {
            if sc.mine != rg && sc.head(sc.mine, root) == sc.me {
                return PMPI_Recv()(buf, count, dt, root as c_int, LEADERS_TAG, x, status_ignore());
            }
            return 0;
        }
        let sites = sc.g.groups.len();
        let mut reqs: Vec<Request> = Vec::with_capacity(sites);
        for h in (0..sites).filter(|&h| h != rg) {
            post!(reqs, PMPI_Isend, buf, count, dt, sc.head(h, root) as c_int, LEADERS_TAG, x);
        }
        PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore())
    }
}

/// The leaders' allgather of site blobs by direct exchange: each sends its site's blob
/// (at `offsets[mine]` in `all`) to every other leader in one message and receives theirs
/// in place. (MPICH's ring allgatherv cuts blobs over 32 KiB into blocking 32 KiB steps,
/// each waiting a WAN round trip.)
unsafe fn x_allgather_direct(sc: &SiteComms, x: Comm, all: &mut [u8], sizes: &[usize], offsets: &[usize]) -> c_int {
    let sites = sc.g.groups.len();
    let base = all.as_mut_ptr();
    let mut reqs: Vec<Request> = Vec::with_capacity(2 * sites);
    // SAFETY: disjoint regions of `all`, each as long as its site's blob.
    unsafe {
        for h in (0..sites).filter(|&h| h != sc.mine) {
            post!(reqs, PMPI_Irecv, base.add(offsets[h]).cast(), sizes[h] as c_int, byte_type(), h as c_int, LEADERS_TAG, x);
        }
        let mine = base.add(offsets[sc.mine]) as *const c_void;
        for h in (0..sites).filter(|&h| h != sc.mine) {
            post!(reqs, PMPI_Isend, mine, sizes[sc.mine] as c_int, byte_type(), h as c_int, LEADERS_TAG, x);
        }
        PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore())
    }
}

/// A reduction among heads by direct exchange on `x`, where group h's head is rank
/// `peer(h)`: this head sends its partial `mine` to every head h with `to(h)`, receives
/// the partials of every h with `from(h)`, and combines those (with its own when
/// `with_mine`) in site order into `out`. Site order is communicator order when a
/// non-commutative operation got this far.
#[allow(clippy::too_many_arguments)]
unsafe fn x_reduce_direct(
    sc: &SiteComms,
    x: Comm,
    peer: &dyn Fn(usize) -> c_int,
    mine: *const c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    l: Layout,
    to: &dyn Fn(usize) -> bool,
    from: &dyn Fn(usize) -> bool,
    with_mine: bool,
    out: *mut c_void,
    comm: Comm,
) -> c_int {
    let sites = sc.g.groups.len();
    let n = count.max(0) as usize;
    let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| from(h).then(|| Scratch::new(n, l))).collect();
    // SAFETY: scratch buffers of `count` elements of `dt`; `mine` holds as many.
    unsafe {
        let mut reqs: Vec<Request> = Vec::with_capacity(2 * sites);
        for (h, p) in partials.iter_mut().enumerate() {
            if let Some(p) = p {
                post!(reqs, PMPI_Irecv, p.buf(), count, dt, peer(h), LEADERS_TAG, x);
            }
        }
        for h in (0..sites).filter(|&h| h != sc.mine && to(h)) {
            post!(reqs, PMPI_Isend, mine, count, dt, peer(h), LEADERS_TAG, x);
        }
        try_rc!(PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore()));
        let order: Vec<usize> = (0..sites).filter(|&h| partials[h].is_some() || (with_mine && h == sc.mine)).collect();
        let Some(&last) = order.last() else { return 0 };
        let mut acc = Scratch::new(n, l);
        let src = |h: usize, partials: &mut Vec<Option<Scratch>>| -> *const c_void {
            match partials[h].as_mut() {
                Some(p) => p.buf(),
                None => mine,
            }
        };
        copy_elems(src(last, &mut partials), acc.buf(), n, l);
        for &h in order.iter().rev().skip(1) {
            try_rc!(PMPI_Reduce_local()(src(h, &mut partials), acc.buf(), count, dt, op));
        }
        typed_copy(acc.buf(), out, count, dt, comm)
    }
}

fn as_int(n: usize) -> Option<c_int> {
    c_int::try_from(n).ok()
}

// --- the algorithms ------------------------------------------------------------------------
//
// Each returns `None` to run the library's own algorithm instead (decided before any
// communication, identically on every rank), or `Some(rc)`.

/// Barrier: inside each site, among leaders, inside each site again.
unsafe fn sa_barrier(sc: &SiteComms, _comm: Comm) -> Option<c_int> {
    if !sc.worth(SaOp::Barrier, None, 0) {
        return None;
    }
    // SAFETY: our communicators.
    unsafe {
        ck!(PMPI_Barrier()(sc.local));
        if let Some(x) = sc.leaders {
            ck!(PMPI_Barrier()(x));
        }
        ck!(PMPI_Barrier()(sc.local));
    }
    Some(0)
}

/// Bcast: the root sends each other site's head a copy (`x_bcast`), then each head
/// broadcasts inside its site.
unsafe fn sa_bcast(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, root: c_int, _comm: Comm) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: the application's buffer, as it passed it.
    unsafe {
        if !sc.worth(SaOp::Bcast, Some(root), bytes(count, dt)) {
            return None;
        }
        match (pipeline_pieces(bytes(count, dt)), sc.cross, layout(dt)) {
            (Some(pieces), Some(x), Some(l)) => ck!(bcast_pieces(sc, x, buf, count, dt, root, pieces, l)),
            _ => {
                ck!(x_bcast(sc, buf, count, dt, root));
                ck!(PMPI_Bcast()(buf, count, dt, sc.head_local(root), sc.local));
            }
        }
        sc.cross(SaOp::Bcast, Some(root), bytes(count, dt), &[]);
    }
    Some(0)
}

/// Bcast in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): the root posts
/// piece j to every other site's head without waiting for it to leave, and every site
/// broadcasts piece j from its head as soon as the head has it, while the later pieces
/// cross.
#[allow(clippy::too_many_arguments)]
unsafe fn bcast_pieces(sc: &SiteComms, x: Comm, buf: *mut c_void, count: c_int, dt: Datatype, root: usize, pieces: usize, l: Layout) -> c_int {
    let parts = split(count.max(0) as usize, pieces);
    let rg = sc.g.group_of[root];
    let head = sc.head_local(root);
    let others: Vec<c_int> = (0..sc.g.groups.len()).filter(|&h| h != rg).map(|h| sc.head(h, root) as c_int).collect();
    // SAFETY: the caller's buffer of `count` elements of `dt`.
    unsafe {
        let mut reqs: Vec<Request> = Vec::new();
        if sc.mine != rg && sc.head(sc.mine, root) == sc.me {
            for &(a, c) in &parts {
                post!(reqs, PMPI_Irecv, elem(buf, a, l), c as c_int, dt, root as c_int, PIECE_TAG, x);
            }
        }
        for (k, &(a, c)) in parts.iter().enumerate() {
            if sc.me == root {
                for &h in &others {
                    post!(reqs, PMPI_Isend, elem(buf, a, l), c as c_int, dt, h, PIECE_TAG, x);
                }
            } else if let Some(q) = reqs.get_mut(k) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            try_rc!(PMPI_Bcast()(elem(buf, a, l), c as c_int, dt, head, sc.local));
        }
        // The root's sends (a head's receives are complete by now).
        PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore())
    }
}

/// Reduce: each site to its head (the root in its own site), the other heads straight to
/// the root; above DIRECT_SITES sites the leaders reduce to the root's leader, which hands
/// the result to the root.
unsafe fn sa_reduce(sc: &SiteComms, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, root: c_int, comm: Comm) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.reducible(op) || !sc.worth(SaOp::Reduce, Some(root), bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let inplace = me == root && in_place(s);
        // No MPI_IN_PLACE and no null receive buffers below: MPICH 4.0 reads through the
        // in-place sentinel when a reduction's root is not rank 0 and the message is long,
        // and its user-op path writes through non-roots' receive buffers.
        let mut input = Scratch::new(if inplace { count as usize } else { 0 }, l);
        let send = if inplace {
            copy_elems(r, input.buf(), count as usize, l);
            input.buf() as *const c_void
        } else {
            s
        };
        if let (Some(pieces), Some(x)) = (pipeline_pieces(bytes(count, dt)), sc.cross) {
            ck!(reduce_pieces(sc, x, send, r, count, dt, op, root, pieces, l, comm));
            sc.cross(SaOp::Reduce, Some(root), bytes(count, dt), &[]);
            return Some(0);
        }
        let mut site = Scratch::new(count as usize, l);
        ck!(PMPI_Reduce()(send, site.buf(), count, dt, op, sc.head_local(root), sc.local));
        let mut total = Scratch::new(if me == root { 0 } else { count as usize }, l);
        let acc = if me == root { r } else { total.buf() };
        if let Some(x) = sc.cross {
            // Every other site's head sends its partial straight to the root.
            let mine = sc.mine;
            if sc.head(mine, root) == me {
                let peer = |h: usize| sc.head(h, root) as c_int;
                ck!(x_reduce_direct(sc, x, &peer, site.buf(), count, dt, op, l, &|h| h == rg, &|h| mine == rg && h != rg, mine == rg, acc, comm));
            }
        } else {
            let rl = sc.leader(rg);
            if let Some(x) = sc.leaders {
                ck!(PMPI_Reduce()(site.buf(), acc, count, dt, op, rg as c_int, x));
            }
            ck!(handover(sc, acc, count, dt, rl, root, HANDOVER_TAG));
        }
        sc.cross(SaOp::Reduce, Some(root), bytes(count, dt), &[]);
    }
    Some(0)
}

/// `count` elements split into about `pieces` runs: (first element, elements).
fn split(count: usize, pieces: usize) -> Vec<(usize, usize)> {
    let step = count.div_ceil(pieces.max(1)).max(1);
    (0..count).step_by(step).map(|a| (a, step.min(count - a))).collect()
}

/// Address of element `a` of a buffer of layout `l`.
fn elem(p: *mut c_void, a: usize, l: Layout) -> *mut c_void {
    p.wrapping_byte_offset(a as isize * l.extent)
}

/// Posts the receives of every piece (`parts`: first element, elements) of each site's
/// partial that has a buffer in `partials`, from `peer(h)` on `x`; `recvs[h]` gets site h's
/// requests in piece order.
#[allow(clippy::too_many_arguments)]
unsafe fn recv_pieces(partials: &mut [Option<Scratch>], parts: &[(usize, usize)], dt: Datatype, l: Layout, peer: &dyn Fn(usize) -> c_int, x: Comm, recvs: &mut [Vec<Request>]) -> c_int {
    // SAFETY: each partial holds every piece's elements and outlives its requests.
    unsafe {
        for (h, p) in partials.iter_mut().enumerate() {
            if let Some(p) = p {
                for &(a, c) in parts {
                    post!(recvs[h], PMPI_Irecv, elem(p.buf(), a, l), c as c_int, dt, peer(h), PIECE_TAG, x);
                }
            }
        }
    }
    0
}

/// Waits for piece `k` from every site that sends one (`recv_pieces`).
unsafe fn wait_piece(recvs: &mut [Vec<Request>], k: usize) -> c_int {
    for q in recvs.iter_mut().filter_map(|v| v.get_mut(k)) {
        // SAFETY: a request of `recv_pieces`.
        try_rc!(unsafe { PMPI_Wait()(q, status_ignore()) });
    }
    0
}

/// Folds the sites' piece of `c` elements at element `a` into `acc`: partial_0 op
/// (partial_1 op (... op partial_last)), the library's order of ranks (sites contiguous
/// where the op does not commute). Site `own`'s partial is in `site`, every other site's
/// in `partials`.
#[allow(clippy::too_many_arguments)]
unsafe fn fold_piece(own: usize, site: &mut Scratch, partials: &mut [Option<Scratch>], acc: &mut Scratch, a: usize, c: usize, dt: Datatype, op: MpiOp, l: Layout) -> c_int {
    let sites = partials.len();
    let mut from = |h: usize| -> *mut c_void {
        elem(if h == own { site.buf() } else { partials[h].as_mut().map_or(std::ptr::null_mut(), |p| p.buf()) }, a, l)
    };
    let into = elem(acc.buf(), a, l);
    // SAFETY: every partial and `acc` hold the piece's elements of `dt`.
    unsafe {
        copy_elems(from(sites - 1), into, c, l);
        for h in (0..sites - 1).rev() {
            try_rc!(PMPI_Reduce_local()(from(h), into, c as c_int, dt, op));
        }
    }
    0
}

/// A site's reduction of a vector in pieces to local rank `to`, along a chain of the site's
/// ranks instead of the library's tree: the ranks below `to` pass piece j up, each
/// folding its own in after what came from below; the ranks above pass it down, each
/// folding its own in before what came from above; `to` joins the two around its own. The
/// result is x_0 op x_1 op ... op x_{k-1}, the library's order. Every rank receives and
/// sends each piece at most once (a tree's root takes log2 k of them and does every fold
/// on the critical path), so on busy cores the folds of piece j run on the ranks along
/// the chain while `to` already has piece j - 1 to send on.
struct Chain {
    lo: Scratch,
    hi: Scratch,
    mine: Scratch,
    recv_lo: Vec<Request>,
    recv_hi: Vec<Request>,
    sends: Vec<Request>,
}

impl Chain {
    /// Posts the receives of every piece (`parts`) this rank gets from its neighbours.
    #[allow(clippy::too_many_arguments)]
    unsafe fn start(sc: &SiteComms, parts: &[(usize, usize)], n: usize, dt: Datatype, l: Layout, to: c_int) -> Result<Chain, c_int> {
        let (me, k) = (sc.local_rank[sc.me], sc.members().len() as c_int);
        let from_lo = me > 0 && me <= to;
        let from_hi = me >= to && me < k - 1;
        let mut ch = Chain {
            lo: Scratch::new(if from_lo { n } else { 0 }, l),
            hi: Scratch::new(if from_hi { n } else { 0 }, l),
            mine: Scratch::new(if from_lo && me < to { n } else { 0 }, l),
            recv_lo: Vec::new(),
            recv_hi: Vec::new(),
            sends: Vec::new(),
        };
        let post = |buf: &mut Scratch, peer: c_int, reqs: &mut Vec<Request>| -> c_int {
            for &(a, c) in parts {
                // SAFETY: `buf` holds every piece and outlives its requests (`finish`).
                unsafe { post!(reqs, PMPI_Irecv, elem(buf.buf(), a, l), c as c_int, dt, peer, PIECE_TAG, sc.local) };
            }
            0
        };
        if from_lo {
            let rc = post(&mut ch.lo, me - 1, &mut ch.recv_lo);
            if rc != 0 {
                return Err(rc);
            }
        }
        if from_hi {
            let rc = post(&mut ch.hi, me + 1, &mut ch.recv_hi);
            if rc != 0 {
                return Err(rc);
            }
        }
        Ok(ch)
    }

    /// Piece `j` (`c` elements at element `a`) of this rank: folded in and passed on, or at
    /// `to`, the site's partial written into `site`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn piece(&mut self, sc: &SiteComms, j: usize, a: usize, c: usize, send: *const c_void, site: &mut Scratch, dt: Datatype, op: MpiOp, l: Layout, to: c_int) -> c_int {
        let me = sc.local_rank[sc.me];
        let own = elem(send as *mut c_void, a, l);
        let cnt = c as c_int;
        // SAFETY: every buffer holds the piece's elements of `dt`; requests of `start`.
        unsafe {
            if let Some(q) = self.recv_lo.get_mut(j) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            if let Some(q) = self.recv_hi.get_mut(j) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            let (lo, hi) = (elem(self.lo.buf(), a, l), elem(self.hi.buf(), a, l));
            let (has_lo, has_hi) = (!self.recv_lo.is_empty(), !self.recv_hi.is_empty());
            if me < to {
                // What came from below, then mine.
                let out = if has_lo {
                    let m = elem(self.mine.buf(), a, l);
                    copy_elems(own, m, c, l);
                    try_rc!(PMPI_Reduce_local()(lo, m, cnt, dt, op));
                    m
                } else {
                    own
                };
                post!(self.sends, PMPI_Isend, out, cnt, dt, me + 1, PIECE_TAG, sc.local);
            } else if me > to {
                // Mine, then what came from above.
                let out = if has_hi {
                    try_rc!(PMPI_Reduce_local()(own, hi, cnt, dt, op));
                    hi
                } else {
                    own
                };
                post!(self.sends, PMPI_Isend, out, cnt, dt, me - 1, PIECE_TAG, sc.local);
            } else {
                let into = elem(site.buf(), a, l);
                if has_hi {
                    try_rc!(PMPI_Reduce_local()(own, hi, cnt, dt, op));
                    copy_elems(hi, into, c, l);
                } else {
                    copy_elems(own, into, c, l);
                }
                if has_lo {
                    try_rc!(PMPI_Reduce_local()(lo, into, cnt, dt, op));
                }
            }
        }
        0
    }

    /// Completes this rank's sends; the buffers may go once it returns.
    unsafe fn finish(&mut self) -> c_int {
        // SAFETY: requests of `piece`.
        unsafe { PMPI_Waitall()(self.sends.len() as c_int, self.sends.as_mut_ptr(), status_ignore()) }
    }
}

/// Reduce in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): every site
/// reduces piece j to its head; every other site's head sends it to the root at once and
/// goes on with piece j + 1; the root, once its own site's pieces are reduced, folds each
/// piece of every site in site order as it arrives. `send` is never MPI_IN_PLACE.
#[allow(clippy::too_many_arguments)]
unsafe fn reduce_pieces(sc: &SiteComms, x: Comm, send: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, root: usize, pieces: usize, l: Layout, comm: Comm) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (me, mine, sites) = (sc.me, sc.mine, sc.g.groups.len());
    let rg = sc.g.group_of[root];
    let head = sc.head(mine, root) == me;
    // SAFETY: `send` and `r` hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Every rank gets a full receive buffer for the site's reduction (see `sa_reduce`).
        let mut site = Scratch::new(n, l);
        let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| (me == root && h != rg).then(|| Scratch::new(n, l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        try_rc!(recv_pieces(&mut partials, &parts, dt, l, &|h| sc.head(h, root) as c_int, x, &mut recvs));
        let mut sends: Vec<Request> = Vec::with_capacity(parts.len());
        for &(a, c) in &parts {
            try_rc!(PMPI_Reduce()(elem(send as *mut c_void, a, l), elem(site.buf(), a, l), c as c_int, dt, op, sc.head_local(root), sc.local));
            if head && mine != rg {
                post!(sends, PMPI_Isend, elem(site.buf(), a, l), c as c_int, dt, root as c_int, PIECE_TAG, x);
            }
        }
        if me == root {
            let mut acc = Scratch::new(n, l);
            for (k, &(a, c)) in parts.iter().enumerate() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(rg, &mut site, &mut partials, &mut acc, a, c, dt, op, l));
            }
            try_rc!(user_copy(acc.buf(), r, count, dt, l, comm));
        }
        PMPI_Waitall()(sends.len() as c_int, sends.as_mut_ptr(), status_ignore())
    }
}

/// Allreduce: each site to its leader, an allreduce among leaders, a broadcast inside
/// each site; from 1 MiB up to DIRECT_SITES sites in pieces (`allreduce_pieces`).
unsafe fn sa_allreduce(sc: &SiteComms, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, comm: Comm) -> Option<c_int> {
    // SAFETY: the application's buffers.
    unsafe {
        if !sc.reducible(op) || !sc.worth(SaOp::Allreduce, None, bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        let mut input = Scratch::new(if in_place(s) { count as usize } else { 0 }, l);
        let send = if in_place(s) {
            copy_elems(r, input.buf(), count as usize, l);
            input.buf() as *const c_void
        } else {
            s
        };
        if sc.g.groups.len() <= DIRECT_SITES {
            if let Some(pieces) = pipeline_pieces(bytes(count, dt)) {
                ck!(allreduce_pieces(sc, send, r, count, dt, op, pieces, l, comm));
                sc.cross(SaOp::Allreduce, None, bytes(count, dt), &[]);
                return Some(0);
            }
        }
        // Into `r` at the leader, scratch elsewhere (see `sa_reduce` on MPI_IN_PLACE).
        let mut spare = Scratch::new(if sc.is_leader() { 0 } else { count as usize }, l);
        let site = if sc.is_leader() { r } else { spare.buf() };
        ck!(PMPI_Reduce()(send, site, count, dt, op, sc.lead_local(), sc.local));
        if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Allreduce()(in_place_ptr(), r, count, dt, op, x));
            } else {
                let mine = sc.mine;
                ck!(x_reduce_direct(sc, x, &|h| h as c_int, r, count, dt, op, l, &|h| h != mine, &|h| h != mine, true, r, comm));
            }
        }
        ck!(PMPI_Bcast()(r, count, dt, sc.lead_local(), sc.local));
        sc.cross(SaOp::Allreduce, None, bytes(count, dt), &[]);
    }
    Some(0)
}

/// Allreduce in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): every site
/// reduces piece j to its leader along a chain of its ranks (`Chain`), and the leader posts
/// it to every other leader at once and goes on with piece j + 1; then every leader folds
/// piece j of all sites in site order as soon as the others' have arrived and broadcasts
/// it inside its site while the later pieces still cross. Each direction of the WAN
/// carries the vector once per remote site, as before, but the sites' reductions and
/// broadcasts overlap the crossing instead of preceding and following it. `send` is never
/// MPI_IN_PLACE.
#[allow(clippy::too_many_arguments)]
unsafe fn allreduce_pieces(sc: &SiteComms, send: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, pieces: usize, l: Layout, comm: Comm) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (mine, sites) = (sc.mine, sc.g.groups.len());
    // The leaders' communicator (rank h leads site h) exists on leaders only.
    let x = sc.leaders;
    let lead = sc.lead_local();
    // SAFETY: `send` and `r` hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Every rank gets a full receive buffer for the site's reduction (see `sa_reduce`).
        let mut site = Scratch::new(n, l);
        let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| (x.is_some() && h != mine).then(|| Scratch::new(n, l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        let mut sends: Vec<Request> = Vec::new();
        if let Some(x) = x {
            try_rc!(recv_pieces(&mut partials, &parts, dt, l, &|h| h as c_int, x, &mut recvs));
        }
        let mut chain = match Chain::start(sc, &parts, n, dt, l, lead) {
            Ok(ch) => ch,
            Err(rc) => return rc,
        };
        for (j, &(a, c)) in parts.iter().enumerate() {
            try_rc!(chain.piece(sc, j, a, c, send, &mut site, dt, op, l, lead));
            if let Some(x) = x {
                for h in (0..sites).filter(|&h| h != mine) {
                    post!(sends, PMPI_Isend, elem(site.buf(), a, l), c as c_int, dt, h as c_int, PIECE_TAG, x);
                }
            }
        }
        let mut acc = Scratch::new(if x.is_some() { n } else { 0 }, l);
        for (k, &(a, c)) in parts.iter().enumerate() {
            if x.is_some() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(mine, &mut site, &mut partials, &mut acc, a, c, dt, op, l));
                try_rc!(user_copy(elem(acc.buf(), a, l), elem(r, a, l), c as c_int, dt, l, comm));
            }
            try_rc!(PMPI_Bcast()(elem(r, a, l), c as c_int, dt, lead, sc.local));
        }
        try_rc!(chain.finish());
        PMPI_Waitall()(sends.len() as c_int, sends.as_mut_ptr(), status_ignore())
    }
}

/// Gather and Gatherv: each site packs its blocks at its head (the root in its own site),
/// the other heads send theirs straight to the root (above DIRECT_SITES sites: the
/// leaders gather to the root's leader, which hands everything to the root) to unpack. `recv` gives the
/// root's (count, displacement) of each rank's block; `mine` this rank's block size.
#[allow(clippy::too_many_arguments)]
unsafe fn gather_any(
    sc: &SiteComms,
    s: *const c_void,
    sc_: c_int,
    st: Datatype,
    r: *mut c_void,
    rt: Datatype,
    root: usize,
    comm: Comm,
    recv: &dyn Fn(usize) -> (c_int, usize),
    uniform: Option<usize>,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let rl = sc.leader(rg);
        let inplace = me == root && in_place(s);
        let rext = if me == root { layout(rt)?.extent } else { 1 };
        let mut mine = Vec::new();
        if inplace {
            let (c, d) = recv(root);
            ck!(pack(&mut mine, at(r, d, rext), c, rt, comm));
        } else {
            ck!(pack(&mut mine, s, sc_, st, comm));
        }
        // Member block sizes at the site's head.
        let head = sc.head(sc.mine, root);
        let member_sizes = match member_sizes(sc, uniform, mine.len(), head) {
            Ok(v) => v,
            Err(rc) => return Some(rc),
        };
        let mo = offsets(&member_sizes);
        let site_len = mo[mo.len() - 1];
        let mut site_blob = vec![0u8; if me == head { site_len.max(1) } else { 1 }];
        ck!(PMPI_Gatherv()(
            mine.as_ptr().cast(),
            mine.len() as c_int,
            byte_type(),
            site_blob.as_mut_ptr().cast(),
            ints(&member_sizes).as_ptr(),
            ints(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            sc.local_rank[head],
            sc.local
        ));
        // Site totals at the root's leader: known to everyone for Gather, from the root's
        // counts for Gatherv.
        let mut totals: Vec<u64> = match uniform {
            Some(b) => sc.g.groups.iter().map(|m| (m.len() * b) as u64).collect(),
            None if me == root => {
                let sz = type_size(rt) as usize;
                sc.site_sums(|m| recv(m).0.max(0) as usize * sz).into_iter().map(|x| x as u64).collect()
            }
            None => vec![0; sc.g.groups.len()],
        };
        if uniform.is_none() && sc.cross.is_none() {
            ck!(handover(sc, totals.as_mut_ptr().cast(), 8 * totals.len() as c_int, byte_type(), root, rl, SIZES_TAG));
        }
        let to = offsets(&totals.iter().map(|&t| t as usize).collect::<Vec<_>>());
        let total = to[to.len() - 1];
        let holds = me == root || (sc.cross.is_none() && me == rl);
        let mut all = vec![0u8; if holds { total.max(1) } else { 1 }];
        if let Some(x) = sc.cross {
            // Every other site's head sends its site's blocks straight to the root.
            if me == root {
                let own = site_len.min(to[rg + 1] - to[rg]);
                all[to[rg]..to[rg] + own].copy_from_slice(&site_blob[..own]);
                let base = all.as_mut_ptr();
                let mut reqs: Vec<Request> = Vec::with_capacity(sc.g.groups.len());
                for h in (0..sc.g.groups.len()).filter(|&h| h != rg) {
                    let mut q: Request = std::mem::zeroed();
                    let len = as_int(to[h + 1] - to[h])?;
                    ck!(PMPI_Irecv()(base.add(to[h]).cast(), len, byte_type(), sc.head(h, root) as c_int, LEADERS_TAG, x, &mut q));
                    reqs.push(q);
                }
                ck!(PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore()));
            } else if me == head {
                ck!(PMPI_Send()(site_blob.as_ptr().cast(), site_len as c_int, byte_type(), root as c_int, LEADERS_TAG, x));
            }
        } else if let Some(x) = sc.leaders {
            ck!(PMPI_Gatherv()(
                site_blob.as_ptr().cast(),
                site_len as c_int,
                byte_type(),
                all.as_mut_ptr().cast(),
                totals.iter().map(|&t| t as c_int).collect::<Vec<_>>().as_ptr(),
                ints(&to[..to.len() - 1]).as_ptr(),
                byte_type(),
                rg as c_int,
                x
            ));
        }
        if me == head && sc.mine != rg {
            let sb: Vec<u64> = (0..sc.g.groups.len()).map(|h| if h == sc.mine { site_len as u64 } else { 0 }).collect();
            sc.cross(SaOp::Gather, Some(root), 0, &sb);
        }
        if sc.cross.is_none() {
            ck!(handover(sc, all.as_mut_ptr().cast(), as_int(total)?, byte_type(), rl, root, HANDOVER_TAG));
        }
        if me == root {
            let sz = type_size(rt) as usize;
            let mut pos = 0;
            for m in &sc.g.groups {
                for &rank in m {
                    let (c, d) = recv(rank);
                    let len = uniform.unwrap_or(c.max(0) as usize * sz);
                    if !(inplace && rank == root) {
                        ck!(unpack(&all[pos..pos + len], at(r, d, rext), c, rt, comm));
                    }
                    pos += len;
                }
            }
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_gather(sc: &SiteComms, s: *const c_void, scnt: c_int, st: Datatype, r: *mut c_void, rcnt: c_int, rt: Datatype, root: c_int, comm: Comm) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: forwarded.
    unsafe {
        let block = if sc.me == root { bytes(rcnt, rt) } else { bytes(scnt, st) } as usize;
        as_int(block * sc.n())?;
        if !sc.worth(SaOp::Gather, Some(root), (block * sc.n()) as u64) {
            return None;
        }
        gather_any(sc, s, scnt, st, r, rt, root, comm, &|m| (rcnt, m * rcnt.max(0) as usize), Some(block))
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_gatherv(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    displs: *const c_int,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    // The library posts these at once (one WAN crossing, one copy per rank): nothing to
    // gain unless asked to regroup always.
    if !sc.always {
        return None;
    }
    let root = sc.root(root)?;
    let me = sc.me;
    // SAFETY: the root passes one count and displacement per rank.
    unsafe { gather_any(sc, s, scnt, st, r, rt, root, comm, &|m| if me == root { (*rcs.add(m), *displs.add(m) as usize) } else { (0, 0) }, None) }
}

/// Scatter and Scatterv: the root packs every block in site order and sends every other
/// site's head its site's blob (above DIRECT_SITES sites: hands it all to its leader, and
/// the leaders scatter one blob per site); each head scatters inside its site.
#[allow(clippy::too_many_arguments)]
unsafe fn scatter_any(
    sc: &SiteComms,
    s: *const c_void,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    root: usize,
    comm: Comm,
    send: &dyn Fn(usize) -> (c_int, usize),
    uniform: Option<usize>,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let rl = sc.leader(rg);
        let inplace = me == root && in_place(r);
        let mine_len = if inplace {
            bytes(send(root).0, st) as usize
        } else {
            bytes(rcnt, rt) as usize
        };
        let head = sc.head(sc.mine, root);
        let member_sizes = match member_sizes(sc, uniform, mine_len, head) {
            Ok(v) => v,
            Err(rc) => return Some(rc),
        };
        let mo = offsets(&member_sizes);
        let site_len = mo[mo.len() - 1];
        let mut totals: Vec<u64> = vec![0; sc.g.groups.len()];
        let mut all = Vec::new();
        if me == root {
            let sext = layout(st)?.extent;
            for m in &sc.g.groups {
                for &rank in m {
                    let (c, d) = send(rank);
                    ck!(pack(&mut all, at(s, d, sext), c, st, comm));
                }
            }
            let sz = type_size(st) as usize;
            totals = sc.site_sums(|m| send(m).0.max(0) as usize * sz).into_iter().map(|x| x as u64).collect();
        }
        if let Some(b) = uniform {
            totals = sc.g.groups.iter().map(|m| (m.len() * b) as u64).collect();
        } else if sc.cross.is_none() {
            ck!(handover(sc, totals.as_mut_ptr().cast(), 8 * totals.len() as c_int, byte_type(), root, rl, SIZES_TAG));
        }
        let to = offsets(&totals.iter().map(|&t| t as usize).collect::<Vec<_>>());
        let total = to[to.len() - 1];
        let mut site_blob = vec![0u8; site_len.max(1)];
        if let Some(x) = sc.cross {
            // The root sends every other site's head that site's blocks.
            if me == root {
                let own = site_len.min(to[rg + 1] - to[rg]);
                site_blob[..own].copy_from_slice(&all[to[rg]..to[rg] + own]);
                let mut reqs: Vec<Request> = Vec::with_capacity(sc.g.groups.len());
                for h in (0..sc.g.groups.len()).filter(|&h| h != rg) {
                    let mut q: Request = std::mem::zeroed();
                    let len = as_int(to[h + 1] - to[h])?;
                    ck!(PMPI_Isend()(all.as_ptr().add(to[h]).cast(), len, byte_type(), sc.head(h, root) as c_int, LEADERS_TAG, x, &mut q));
                    reqs.push(q);
                }
                ck!(PMPI_Waitall()(reqs.len() as c_int, reqs.as_mut_ptr(), status_ignore()));
            } else if me == head {
                ck!(PMPI_Recv()(site_blob.as_mut_ptr().cast(), site_len as c_int, byte_type(), root as c_int, LEADERS_TAG, x, status_ignore()));
            }
        } else {
            if me == rl && me != root {
                all = vec![0u8; total];
            }
            all.resize(all.len().max(1), 0);
            ck!(handover(sc, all.as_mut_ptr().cast(), as_int(total)?, byte_type(), root, rl, HANDOVER_TAG));
        }
        if let (None, Some(x)) = (sc.cross, sc.leaders) {
            ck!(PMPI_Scatterv()(
                all.as_ptr().cast(),
                totals.iter().map(|&t| t as c_int).collect::<Vec<_>>().as_ptr(),
                ints(&to[..to.len() - 1]).as_ptr(),
                byte_type(),
                site_blob.as_mut_ptr().cast(),
                site_len as c_int,
                byte_type(),
                rg as c_int,
                x
            ));
        }
        if me == head && sc.mine == rg {
            sc.cross(SaOp::Scatter, Some(root), 0, &totals);
        }
        let mut mine = vec![0u8; mine_len.max(1)];
        ck!(PMPI_Scatterv()(
            site_blob.as_ptr().cast(),
            ints(&member_sizes).as_ptr(),
            ints(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            mine.as_mut_ptr().cast(),
            mine_len as c_int,
            byte_type(),
            sc.local_rank[head],
            sc.local
        ));
        if !inplace {
            ck!(unpack(&mine[..mine_len], r, rcnt, rt, comm));
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_scatter(sc: &SiteComms, s: *const c_void, scnt: c_int, st: Datatype, r: *mut c_void, rcnt: c_int, rt: Datatype, root: c_int, comm: Comm) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: forwarded.
    unsafe {
        let block = if sc.me == root { bytes(scnt, st) } else { bytes(rcnt, rt) } as usize;
        as_int(block * sc.n())?;
        if !sc.worth(SaOp::Scatter, Some(root), (block * sc.n()) as u64) {
            return None;
        }
        scatter_any(sc, s, st, r, rcnt, rt, root, comm, &|m| (scnt, m * scnt.max(0) as usize), Some(block))
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_scatterv(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const c_int,
    displs: *const c_int,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    // The library posts these at once (one WAN crossing, one copy per rank): nothing to
    // gain unless asked to regroup always.
    if !sc.always {
        return None;
    }
    let root = sc.root(root)?;
    let me = sc.me;
    // SAFETY: the root passes one count and displacement per rank.
    unsafe { scatter_any(sc, s, st, r, rcnt, rt, root, comm, &|m| if me == root { (*scs.add(m), *displs.add(m) as usize) } else { (0, 0) }, None) }
}

/// Allgather and Allgatherv: each site packs its blocks at its leader, the leaders
/// allgather the site blobs, each leader broadcasts the whole inside its site.
/// `recv(m)` is every rank's (count, displacement) of rank m's block.
unsafe fn allgather_any(sc: &SiteComms, s: *const c_void, scnt: c_int, st: Datatype, r: *mut c_void, rt: Datatype, comm: Comm, recv: &dyn Fn(usize) -> (c_int, usize)) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let sz = type_size(rt) as usize;
        let rext = layout(rt)?.extent;
        let sizes: Vec<usize> = (0..sc.n()).map(|m| recv(m).0.max(0) as usize * sz).collect();
        let site_totals = sc.site_sums(|m| sizes[m]);
        let to = offsets(&site_totals);
        let total = as_int(to[to.len() - 1])? as usize;
        if !sc.worth(SaOp::Allgather, None, total as u64) {
            return None;
        }
        let inplace = in_place(s);
        let mut mine = Vec::new();
        if inplace {
            let (c, d) = recv(me);
            ck!(pack(&mut mine, at(r, d, rext), c, rt, comm));
        } else {
            ck!(pack(&mut mine, s, scnt, st, comm));
        }
        let member_sizes: Vec<usize> = sc.members().iter().map(|&m| sizes[m]).collect();
        let mo = offsets(&member_sizes);
        let mut all = vec![0u8; total.max(1)];
        // The site's blob lands where it belongs in the whole.
        let site_at = to[sc.mine];
        ck!(PMPI_Gatherv()(
            mine.as_ptr().cast(),
            mine.len() as c_int,
            byte_type(),
            all.as_mut_ptr().add(site_at).cast(),
            ints(&member_sizes).as_ptr(),
            ints(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        if sc.g.groups.len() <= DIRECT_SITES && pipeline_pieces(total as u64).is_some() {
            ck!(allgather_pieces(sc, &mut all, &site_totals, &to));
        } else if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Allgatherv()(
                    in_place_ptr(),
                    0,
                    byte_type(),
                    all.as_mut_ptr().cast(),
                    ints(&site_totals).as_ptr(),
                    ints(&to[..to.len() - 1]).as_ptr(),
                    byte_type(),
                    x
                ));
            } else {
                ck!(x_allgather_direct(sc, x, &mut all, &site_totals, &to));
            }
            ck!(PMPI_Bcast()(all.as_mut_ptr().cast(), total as c_int, byte_type(), sc.lead_local(), sc.local));
        } else {
            ck!(PMPI_Bcast()(all.as_mut_ptr().cast(), total as c_int, byte_type(), sc.lead_local(), sc.local));
        }
        if sc.leaders.is_some() {
            let sb: Vec<u64> = site_totals.iter().map(|&t| t as u64).collect();
            sc.cross(SaOp::Allgather, None, 0, &sb);
        }
        let mut pos = 0;
        for m in &sc.g.groups {
            for &rank in m {
                let (c, d) = recv(rank);
                if !(inplace && rank == me) {
                    ck!(unpack(&all[pos..pos + sizes[rank]], at(r, d, rext), c, rt, comm));
                }
                pos += sizes[rank];
            }
        }
    }
    Some(0)
}

/// The byte runs a site's blob of `len` bytes crosses in (`regroup::pipeline_pieces`; one
/// below its threshold).
fn blob_pieces(len: usize) -> Vec<(usize, usize)> {
    split(len, pipeline_pieces(len as u64).unwrap_or(1))
}

/// The leaders' exchange and the sites' broadcast of an allgather in pieces, up to
/// DIRECT_SITES sites, once each site's blob is at its leader (at `offsets[h]` in `all`,
/// `sizes[h]` bytes): every leader posts its blob to every other leader in pieces
/// (`blob_pieces`) and the site broadcasts its own blob while they cross; then each remote
/// piece, in site order, is broadcast as soon as the leader has it. Before, the whole
/// exchange came first and one broadcast of everything after it.
unsafe fn allgather_pieces(sc: &SiteComms, all: &mut [u8], sizes: &[usize], offsets: &[usize]) -> c_int {
    let sites = sizes.len();
    let base = all.as_mut_ptr();
    let lead = sc.lead_local();
    let mut recvs: Vec<Request> = Vec::new();
    let mut sends: Vec<Request> = Vec::new();
    // SAFETY: disjoint byte ranges of `all`, each within its site's blob.
    unsafe {
        if let Some(x) = sc.leaders {
            for h in (0..sites).filter(|&h| h != sc.mine) {
                for (a, c) in blob_pieces(sizes[h]) {
                    post!(recvs, PMPI_Irecv, base.add(offsets[h] + a).cast(), c as c_int, byte_type(), h as c_int, PIECE_TAG, x);
                }
            }
            for (a, c) in blob_pieces(sizes[sc.mine]) {
                for h in (0..sites).filter(|&h| h != sc.mine) {
                    post!(sends, PMPI_Isend, base.add(offsets[sc.mine] + a).cast(), c as c_int, byte_type(), h as c_int, PIECE_TAG, x);
                }
            }
        }
        try_rc!(PMPI_Bcast()(base.add(offsets[sc.mine]).cast(), sizes[sc.mine] as c_int, byte_type(), lead, sc.local));
        let mut k = 0;
        for h in (0..sites).filter(|&h| h != sc.mine) {
            for (a, c) in blob_pieces(sizes[h]) {
                if let Some(q) = recvs.get_mut(k) {
                    try_rc!(PMPI_Wait()(q, status_ignore()));
                }
                k += 1;
                try_rc!(PMPI_Bcast()(base.add(offsets[h] + a).cast(), c as c_int, byte_type(), lead, sc.local));
            }
        }
        PMPI_Waitall()(sends.len() as c_int, sends.as_mut_ptr(), status_ignore())
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_allgather(sc: &SiteComms, s: *const c_void, scnt: c_int, st: Datatype, r: *mut c_void, rcnt: c_int, rt: Datatype, comm: Comm) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { allgather_any(sc, s, scnt, st, r, rt, comm, &|m| (rcnt, m * rcnt.max(0) as usize)) }
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_allgatherv(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    displs: *const c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: every rank passes one count and displacement per rank.
    unsafe { allgather_any(sc, s, scnt, st, r, rt, comm, &|m| (*rcs.add(m), *displs.add(m) as usize)) }
}

/// Reduce_scatter(_block): each site reduces the whole vector at its leader, the leaders
/// reduce-scatter one segment per site (the vector permuted into site order when sites
/// interleave), each leader scatters its site's segments. `counts[m]`: rank m's segment.
unsafe fn reduce_scatter_any(sc: &SiteComms, s: *const c_void, r: *mut c_void, counts: &[usize], dt: Datatype, op: MpiOp) -> Option<c_int> {
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.reducible(op) {
            return None;
        }
        let l = layout(dt)?;
        let n_total: usize = counts.iter().sum();
        as_int(n_total)?;
        if !sc.worth(SaOp::ReduceScatter, None, n_total as u64 * type_size(dt)) {
            return None;
        }
        let input = if in_place(s) { r as *const c_void } else { s };
        if sc.g.groups.len() <= DIRECT_SITES && pipeline_pieces(n_total as u64 * type_size(dt)).is_some() {
            ck!(reduce_scatter_pieces(sc, input, r, counts, dt, op, l));
            return Some(0);
        }
        let leader = sc.is_leader();
        let mut full = Scratch::new(n_total, l);
        ck!(PMPI_Reduce()(input, full.buf(), n_total as c_int, dt, op, sc.lead_local(), sc.local));
        let site_counts = sc.site_sums(|m| counts[m]);
        let member_counts: Vec<usize> = sc.members().iter().map(|&m| counts[m]).collect();
        let mut seg = Scratch::new(if leader { site_counts[sc.mine] } else { 0 }, l);
        if let Some(x) = sc.leaders {
            let elem_at = offsets(counts);
            // Permute into site order unless the ranks already are.
            let ordered = sc.g.groups.iter().flatten().enumerate().all(|(i, &r)| i == r);
            let mut perm = Scratch::new(if ordered { 0 } else { n_total }, l);
            let src = if ordered {
                full.buf()
            } else {
                let mut k = 0;
                for m in &sc.g.groups {
                    for &rank in m {
                        let from = full.span(elem_at[rank], counts[rank]);
                        let to = perm.span(k, counts[rank]);
                        perm.mem[to].copy_from_slice(&full.mem[from]);
                        k += counts[rank];
                    }
                }
                perm.buf()
            };
            ck!(PMPI_Reduce_scatter()(src, seg.buf(), ints(&site_counts).as_ptr(), dt, op, x));
            let sz = type_size(dt);
            let sb: Vec<u64> = site_counts.iter().map(|&c| c as u64 * sz).collect();
            sc.cross(SaOp::ReduceScatter, None, 0, &sb);
        }
        let mo = offsets(&member_counts);
        let my_count = counts[sc.me] as c_int;
        ck!(PMPI_Scatterv()(seg.buf(), ints(&member_counts).as_ptr(), ints(&mo[..mo.len() - 1]).as_ptr(), dt, r, my_count, dt, sc.lead_local(), sc.local));
    }
    Some(0)
}

/// Reduce_scatter(_block) in pieces, up to DIRECT_SITES sites, once the operation may be
/// regrouped: every rank puts its input in site order; every site reduces each other
/// site's segment piece by piece (`blob_pieces` of its bytes) to its leader, which posts
/// each piece to that site's leader at once, then reduces its own segment; each leader
/// folds its segment's pieces of every site in site order as they arrive and scatters the
/// result inside its site. Before, the whole vector was reduced before anything crossed.
/// `input` may be the receive buffer (MPI_IN_PLACE): it is only written at the end.
#[allow(clippy::too_many_arguments)]
unsafe fn reduce_scatter_pieces(sc: &SiteComms, input: *const c_void, r: *mut c_void, counts: &[usize], dt: Datatype, op: MpiOp, l: Layout) -> c_int {
    let n_total: usize = counts.iter().sum();
    let (mine, sites) = (sc.mine, sc.g.groups.len());
    let x = sc.leaders;
    let lead = sc.lead_local();
    // SAFETY: `input` holds the counts' sum of elements of `dt`, `r` this rank's count;
    // scratch of its layout.
    unsafe {
        let sz = type_size(dt) as usize;
        let site_counts = sc.site_sums(|m| counts[m]);
        let seg_at = offsets(&site_counts);
        let pieces_of = |h: usize| split(site_counts[h], blob_pieces(site_counts[h] * sz).len());
        let ordered = sc.g.groups.iter().flatten().enumerate().all(|(i, &r)| i == r);
        let mut perm = Scratch::new(if ordered { 0 } else { n_total }, l);
        let src = if ordered {
            input as *mut c_void
        } else {
            let elem_at = offsets(counts);
            let mut k = 0;
            for m in &sc.g.groups {
                for &rank in m {
                    copy_elems(elem(input as *mut c_void, elem_at[rank], l), elem(perm.buf(), k, l), counts[rank], l);
                    k += counts[rank];
                }
            }
            perm.buf()
        };
        // Every rank gets full receive buffers for the site's reductions (see `sa_reduce`).
        let mut red = Scratch::new(n_total, l);
        let mut own = Scratch::new(site_counts[mine], l);
        let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| (x.is_some() && h != mine).then(|| Scratch::new(site_counts[mine], l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        let mut sends: Vec<Request> = Vec::new();
        if let Some(x) = x {
            try_rc!(recv_pieces(&mut partials, &pieces_of(mine), dt, l, &|h| h as c_int, x, &mut recvs));
        }
        // The other sites' segments first, each piece posted as soon as it is reduced.
        for h in (0..sites).filter(|&h| h != mine).chain([mine]) {
            for (a, c) in pieces_of(h) {
                let at = seg_at[h] + a;
                let into = if h == mine { elem(own.buf(), a, l) } else { elem(red.buf(), at, l) };
                try_rc!(PMPI_Reduce()(elem(src, at, l), into, c as c_int, dt, op, lead, sc.local));
                if let (Some(x), true) = (x, h != mine) {
                    post!(sends, PMPI_Isend, into, c as c_int, dt, h as c_int, PIECE_TAG, x);
                }
            }
        }
        let mut acc = Scratch::new(if x.is_some() { site_counts[mine] } else { 0 }, l);
        if x.is_some() {
            for (k, (a, c)) in pieces_of(mine).into_iter().enumerate() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(mine, &mut own, &mut partials, &mut acc, a, c, dt, op, l));
            }
            let b: Vec<u64> = site_counts.iter().map(|&c| (c * sz) as u64).collect();
            sc.cross(SaOp::ReduceScatter, None, 0, &b);
        }
        let member_counts: Vec<usize> = sc.members().iter().map(|&m| counts[m]).collect();
        let mo = offsets(&member_counts);
        try_rc!(PMPI_Scatterv()(acc.buf(), ints(&member_counts).as_ptr(), ints(&mo[..mo.len() - 1]).as_ptr(), dt, r, counts[sc.me] as c_int, dt, lead, sc.local));
        PMPI_Waitall()(sends.len() as c_int, sends.as_mut_ptr(), status_ignore())
    }
}

unsafe fn sa_reduce_scatter(sc: &SiteComms, s: *const c_void, r: *mut c_void, rcs: *const c_int, dt: Datatype, op: MpiOp, _comm: Comm) -> Option<c_int> {
    // SAFETY: every rank passes one count per rank.
    let counts: Vec<usize> = (0..sc.n()).map(|m| unsafe { *rcs.add(m) }.max(0) as usize).collect();
    // SAFETY: forwarded.
    unsafe { reduce_scatter_any(sc, s, r, &counts, dt, op) }
}

unsafe fn sa_reduce_scatter_block(sc: &SiteComms, s: *const c_void, r: *mut c_void, rcnt: c_int, dt: Datatype, op: MpiOp, _comm: Comm) -> Option<c_int> {
    let counts = vec![rcnt.max(0) as usize; sc.n()];
    // SAFETY: forwarded.
    unsafe { reduce_scatter_any(sc, s, r, &counts, dt, op) }
}

/// Scan and Exscan, when every site's ranks are contiguous: a scan inside each site, an
/// exclusive scan of the site totals among leaders, and each rank combines its site's
/// prefix with its own result.
unsafe fn scan_any(sc: &SiteComms, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, exclusive: bool, comm: Comm) -> Option<c_int> {
    if !sc.g.contiguous() {
        return None;
    }
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.worth(SaOp::Scan, None, bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        if let (Some(pieces), Some(x)) = (scan_chain_pieces(sc.g.groups.len(), bytes(count, dt)), sc.cross) {
            return Some(scan_chain(sc, x, s, r, count, dt, op, exclusive, pieces, l, comm));
        }
        let n = count.max(0) as usize;
        let members = sc.members();
        let last = *members.last()?;
        let local_index = sc.local_rank[sc.me];
        let input = if in_place(s) { r as *const c_void } else { s };
        // The site total, at the site's last rank, for the later sites (the last site's
        // total is nobody's prefix).
        let later_sites = sc.mine + 1 < sc.g.groups.len();
        let mut total = Scratch::new(if (later_sites && sc.me == last) || sc.is_leader() { n } else { 0 }, l);
        if later_sites && exclusive && sc.me == last {
            copy_elems(input, total.buf(), n, l);
        }
        ck!(if exclusive { PMPI_Exscan()(s, r, count, dt, op, sc.local) } else { PMPI_Scan()(s, r, count, dt, op, sc.local) });
        if later_sites && sc.me == last {
            if !exclusive {
                copy_elems(r, total.buf(), n, l);
            } else if local_index > 0 {
                ck!(PMPI_Reduce_local()(r, total.buf(), count, dt, op));
            }
        }
        if later_sites {
            ck!(handover(sc, total.buf(), count, dt, last, sc.leader(sc.mine), TOTAL_TAG));
        }
        let mut prefix = Scratch::new(n, l);
        if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Exscan()(total.buf(), prefix.buf(), count, dt, op, x));
            } else {
                let mine = sc.mine;
                let p = prefix.buf();
                ck!(x_reduce_direct(sc, x, &|h| h as c_int, total.buf(), count, dt, op, l, &|h| h > mine, &|h| h < mine, false, p, comm));
            }
            sc.cross(SaOp::Scan, None, bytes(count, dt), &[]);
        }
        if sc.mine > 0 {
            ck!(PMPI_Bcast()(prefix.buf(), count, dt, sc.lead_local(), sc.local));
            if exclusive && local_index == 0 {
                copy_elems(prefix.buf(), r, n, l);
            } else {
                ck!(PMPI_Reduce_local()(prefix.buf(), r, count, dt, op));
            }
        }
    }
    Some(0)
}

/// Copies `count` elements of `dt` into an application buffer: one copy where the type has
/// no gaps, else through the datatype (its gaps in `dst` stay untouched).
unsafe fn user_copy(src: *const c_void, dst: *mut c_void, count: c_int, dt: Datatype, l: Layout, comm: Comm) -> c_int {
    // SAFETY: both buffers hold `count` elements of `dt`.
    unsafe {
        if type_size(dt) as isize == l.true_extent && l.extent == l.true_extent {
            copy_elems(src, dst, count.max(0) as usize, l);
            0
        } else {
            typed_copy(src, dst, count, dt, comm)
        }
    }
}

/// Scan and Exscan over two sites of contiguous ranks, pipelined along the ranks
/// (`regroup::scan_chain_pieces`): rank i receives the prefix of ranks 0..i from i − 1
/// piece by piece, folds in its own elements and passes each piece on to i + 1 as soon as
/// it is done. The vector crosses the WAN once, between the two ranks that straddle the
/// sites, while the ranks on either side handle the pieces before and after.
#[allow(clippy::too_many_arguments)]
unsafe fn scan_chain(sc: &SiteComms, x: Comm, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, exclusive: bool, pieces: usize, l: Layout, comm: Comm) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (me, last) = (sc.me, sc.n() - 1);
    let at = |p: *mut c_void, a: usize| elem(p, a, l);
    let input = if in_place(s) { r as *const c_void } else { s };
    // SAFETY: the application's buffers hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Inclusive: the prefix arrives in `prev` and is folded into `r` (which then goes
        // on). Exclusive: the prefix arrives in `r` itself and is folded into a copy of this
        // rank's input, which goes on.
        let mut prev = Scratch::new(if !exclusive && me > 0 { n } else { 0 }, l);
        let mut acc = Scratch::new(if exclusive && me > 0 && me < last { n } else { 0 }, l);
        // Before the prefix may land in `r` (which an in-place exscan's input is).
        if exclusive && me > 0 && me < last {
            copy_elems(input, acc.buf(), n, l);
        }
        let mut recvs: Vec<Request> = Vec::with_capacity(parts.len());
        if me > 0 {
            let into = if exclusive { r } else { prev.buf() };
            for &(a, c) in &parts {
                post!(recvs, PMPI_Irecv, at(into, a), c as c_int, dt, (me - 1) as c_int, PIECE_TAG, x);
            }
        }
        let mut sends: Vec<Request> = Vec::with_capacity(parts.len());
        let mut send = |buf: *const c_void, c: usize| -> c_int {
            let mut q: Request = std::mem::zeroed();
            let rc = PMPI_Isend()(buf, c as c_int, dt, (me + 1) as c_int, PIECE_TAG, x, &mut q);
            sends.push(q);
            rc
        };
        if me == 0 {
            // The first rank's prefix is its input: pass it on (then, for a scan, copy it
            // out; an exscan leaves the first rank's result undefined).
            for &(a, c) in &parts {
                try_rc!(send(at(input as *mut c_void, a), c));
            }
            if !exclusive && !in_place(s) {
                try_rc!(user_copy(s, r, count, dt, l, comm));
            }
        } else {
            if !exclusive && !in_place(s) {
                try_rc!(user_copy(s, r, count, dt, l, comm));
            }
            for (k, &(a, c)) in parts.iter().enumerate() {
                try_rc!(PMPI_Wait()(&mut recvs[k], status_ignore()));
                let rc = if !exclusive {
                    PMPI_Reduce_local()(at(prev.buf(), a), at(r, a), c as c_int, dt, op)
                } else if me < last {
                    PMPI_Reduce_local()(at(r, a), at(acc.buf(), a), c as c_int, dt, op)
                } else {
                    0
                };
                if rc != 0 {
                    return rc;
                }
                if me < last {
                    try_rc!(send(if exclusive { at(acc.buf(), a) } else { at(r, a) }, c));
                }
            }
        }
        try_rc!(PMPI_Waitall()(sends.len() as c_int, sends.as_mut_ptr(), status_ignore()));
        sc.cross(SaOp::Scan, None, bytes(count, dt), &[]);
    }
    0
}

unsafe fn sa_scan(sc: &SiteComms, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, comm: Comm) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { scan_any(sc, s, r, count, dt, op, false, comm) }
}

unsafe fn sa_exscan(sc: &SiteComms, s: *const c_void, r: *mut c_void, count: c_int, dt: Datatype, op: MpiOp, comm: Comm) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { scan_any(sc, s, r, count, dt, op, true, comm) }
}

/// Alltoall(v), aggregated per pair of sites: blocks between ranks of one site go
/// directly; each rank's blocks for other sites go to its leader, which sends one message
/// per remote site to that site's leader, which hands each of its ranks its blocks.
/// `send(d)` / `recv(src)`: (count, displacement) of the block to d / from src.
#[allow(clippy::too_many_arguments)]
unsafe fn alltoall_any(
    sc: &SiteComms,
    s: *const c_void,
    st: Datatype,
    r: *mut c_void,
    rt: Datatype,
    comm: Comm,
    send: &dyn Fn(usize) -> (c_int, usize),
    recv: &dyn Fn(usize) -> (c_int, usize),
    uniform: bool,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let n = sc.n();
        let inplace = in_place(s);
        let (st, sext) = if inplace { (rt, layout(rt)?.extent) } else { (st, layout(st)?.extent) };
        let rext = layout(rt)?.extent;
        let send_src = if inplace { r as *const c_void } else { s };
        let send_of = |d: usize| if inplace { recv(d) } else { send(d) };
        // Pack everything this rank sends, in destination order.
        let mut out = Vec::new();
        let mut ssz = Vec::with_capacity(n);
        for d in 0..n {
            let before = out.len();
            let (c, disp) = send_of(d);
            ck!(pack(&mut out, at(send_src, disp, sext), c, st, comm));
            ssz.push(out.len() - before);
        }
        let soff = offsets(&ssz);
        let rsz_elem = type_size(rt) as usize;
        let rsz: Vec<usize> = (0..n).map(|src| recv(src).0.max(0) as usize * rsz_elem).collect();
        let roff = offsets(&rsz);
        as_int(soff[n])?;
        as_int(roff[n])?;
        let mut inbox = vec![0u8; roff[n].max(1)];
        let members = sc.members().to_vec();
        let k = members.len();
        // 1. Inside the site.
        let lsc: Vec<c_int> = members.iter().map(|&m| ssz[m] as c_int).collect();
        let lsd: Vec<c_int> = members.iter().map(|&m| soff[m] as c_int).collect();
        let lrc: Vec<c_int> = members.iter().map(|&m| rsz[m] as c_int).collect();
        let lrd: Vec<c_int> = members.iter().map(|&m| roff[m] as c_int).collect();
        ck!(PMPI_Alltoallv()(out.as_ptr().cast(), lsc.as_ptr(), lsd.as_ptr(), byte_type(), inbox.as_mut_ptr().cast(), lrc.as_ptr(), lrd.as_ptr(), byte_type(), sc.local));
        // 2. Block sizes of every member, at the leader: sent (to each rank) and received
        // (from each rank), member-major.
        let (all_ssz, all_rsz) = if uniform {
            (ssz.repeat(k), rsz.repeat(k))
        } else {
            let a = match gather_vectors(sc, &ssz) {
                Ok(v) => v,
                Err(rc) => return Some(rc),
            };
            let b = match gather_vectors(sc, &rsz) {
                Ok(v) => v,
                Err(rc) => return Some(rc),
            };
            (a, b)
        };
        let remote: Vec<usize> = (0..sc.g.groups.len()).filter(|&h| h != sc.mine).collect();
        // 3. Each member's blocks for remote sites, in (site, rank) order, to the leader.
        let mut far = Vec::with_capacity(1);
        for &h in &remote {
            for &b in &sc.g.groups[h] {
                far.extend_from_slice(&out[soff[b]..soff[b + 1]]);
            }
        }
        let leader = sc.is_leader();
        let far_sizes: Vec<usize> = if leader {
            (0..k).map(|i| remote.iter().flat_map(|&h| sc.g.groups[h].iter()).map(|&b| all_ssz[i * n + b]).sum()).collect()
        } else {
            vec![0; k]
        };
        let fo = offsets(&far_sizes);
        let mut gathered = vec![0u8; if leader { fo[k].max(1) } else { 1 }];
        ck!(PMPI_Gatherv()(
            far.as_ptr().cast(),
            far.len() as c_int,
            byte_type(),
            gathered.as_mut_ptr().cast(),
            ints(&far_sizes).as_ptr(),
            ints(&fo[..k]).as_ptr(),
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        // 4. Leaders: one message per remote site, (member, destination) order.
        let mut mine_remote = Vec::new();
        let mut back_sizes = vec![0usize; k];
        if let Some(x) = sc.leaders {
            let sites = sc.g.groups.len();
            // Where member i's block for rank b sits in `gathered`.
            let block_at = |i: usize, b: usize| -> (usize, usize) {
                let mut p = fo[i];
                for &h in &remote {
                    for &bb in &sc.g.groups[h] {
                        let len = all_ssz[i * n + bb];
                        if bb == b {
                            return (p, len);
                        }
                        p += len;
                    }
                }
                (p, 0)
            };
            let mut xsend = Vec::new();
            let mut xsc = vec![0usize; sites];
            for &h in &remote {
                let before = xsend.len();
                for i in 0..k {
                    for &b in &sc.g.groups[h] {
                        let (p, len) = block_at(i, b);
                        xsend.extend_from_slice(&gathered[p..p + len]);
                    }
                }
                xsc[h] = xsend.len() - before;
            }
            // What each remote site sends here: its ranks' blocks for my members, by the
            // sizes my members expect.
            let mut xrc = vec![0usize; sites];
            for &h in &remote {
                xrc[h] = sc.g.groups[h].iter().map(|&src| (0..k).map(|j| all_rsz[j * n + src]).sum::<usize>()).sum();
            }
            let xso = offsets(&xsc);
            let xro = offsets(&xrc);
            let mut xrecv = vec![0u8; xro[sites].max(1)];
            xsend.resize(xsend.len().max(1), 0);
            ck!(PMPI_Alltoallv()(
                xsend.as_ptr().cast(),
                ints(&xsc).as_ptr(),
                ints(&xso[..sites]).as_ptr(),
                byte_type(),
                xrecv.as_mut_ptr().cast(),
                ints(&xrc).as_ptr(),
                ints(&xro[..sites]).as_ptr(),
                byte_type(),
                x
            ));
            sc.cross(SaOp::Alltoall, None, xsc.iter().sum::<usize>() as u64, &[]);
            // 5. Re-sort per member: for each remote site, for each of its ranks.
            let mut per_member: Vec<Vec<u8>> = vec![Vec::new(); k];
            for &h in &remote {
                let mut p = xro[h];
                for &src in &sc.g.groups[h] {
                    for (j, pm) in per_member.iter_mut().enumerate() {
                        let len = all_rsz[j * n + src];
                        pm.extend_from_slice(&xrecv[p..p + len]);
                        p += len;
                    }
                }
            }
            for (j, pm) in per_member.iter().enumerate() {
                back_sizes[j] = pm.len();
            }
            mine_remote = per_member.concat();
        }
        let bo = offsets(&back_sizes);
        let my_far: usize = remote.iter().flat_map(|&h| sc.g.groups[h].iter()).map(|&src| rsz[src]).sum();
        let mut back = vec![0u8; my_far.max(1)];
        mine_remote.resize(mine_remote.len().max(1), 0);
        ck!(PMPI_Scatterv()(
            mine_remote.as_ptr().cast(),
            ints(&back_sizes).as_ptr(),
            ints(&bo[..k]).as_ptr(),
            byte_type(),
            back.as_mut_ptr().cast(),
            my_far as c_int,
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        let mut p = 0;
        for &h in &remote {
            for &src in &sc.g.groups[h] {
                inbox[roff[src]..roff[src + 1]].copy_from_slice(&back[p..p + rsz[src]]);
                p += rsz[src];
            }
        }
        // 6. Unpack every block where the caller wants it.
        for src in 0..n {
            let (c, d) = recv(src);
            ck!(unpack(&inbox[roff[src]..roff[src + 1]], at(r, d, rext), c, rt, comm));
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_alltoall(sc: &SiteComms, s: *const c_void, scnt: c_int, st: Datatype, r: *mut c_void, rcnt: c_int, rt: Datatype, comm: Comm) -> Option<c_int> {
    let sblock = scnt.max(0) as usize;
    let rblock = rcnt.max(0) as usize;
    // SAFETY: forwarded.
    if !sc.worth(SaOp::Alltoall, None, unsafe { bytes(rcnt, rt) }) {
        return None;
    }
    // SAFETY: forwarded.
    unsafe { alltoall_any(sc, s, st, r, rt, comm, &|d| (scnt, d * sblock), &|src| (rcnt, src * rblock), true) }
}

#[allow(clippy::too_many_arguments)]
unsafe fn sa_alltoallv(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const c_int,
    sd: *const c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    rd: *const c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // Posted at once by the library: one WAN crossing, the same bytes (see `sa_gatherv`).
    if !sc.always {
        return None;
    }
    // SAFETY: every rank passes one count and displacement per rank (send ones ignored
    // when in place).
    unsafe {
        alltoall_any(
            sc,
            s,
            st,
            r,
            rt,
            comm,
            &|d| if in_place(s) { (0, 0) } else { (*scs.add(d), *sd.add(d) as usize) },
            &|src| (*rcs.add(src), *rd.add(src) as usize),
            false,
        )
    }
}
