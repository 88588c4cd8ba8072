//! The per-site sub-communicators of an agreed grouping: built site-locally, all or
//! nothing, and what the algorithms ask of them (Open MPI HAN: `coll_han_subcomms.c`).

use super::*;

/// The site communicators of one agreed grouping.
pub(crate) struct SiteComms {
    pub(super) g: Grouping,
    pub(super) me: usize,
    /// This rank's group.
    pub(super) mine: usize,
    /// This rank's site communicator (ranks in communicator order).
    pub(super) local: Comm,
    /// The leaders' communicator (rank h leads group h), on leaders only.
    pub(super) leaders: Option<Comm>,
    /// The whole communicator again, private to the shim: up to DIRECT_SITES sites the
    /// heads of a rooted operation (the root for its own site, `Grouping::head`) send to
    /// each other on it directly, by communicator rank.
    pub(super) cross: Option<Comm>,
    /// Site-communicator rank of each communicator rank.
    pub(super) local_rank: Vec<c_int>,
    /// Regroup even where the library would cross the WAN as little.
    pub(super) always: bool,
}

/// A rank, group number or number of ranks of a communicator as MPI takes it: exact, as
/// all are at most the communicator's size, which MPI gave as a C int. (Were one not,
/// c_int::MAX is no rank, and the library would answer MPI_ERR_RANK rather than reach a
/// wrong one.)
#[inline(always)]
pub(super) fn as_rank(r: usize) -> c_int {
    c_int::try_from(r).unwrap_or(c_int::MAX)
}

pub(super) unsafe fn free_site_comms(sc: &mut SiteComms) {
    // SAFETY: communicators this shim created; every member frees them at the same point.
    unsafe {
        PMPI_Comm_free()(&mut sc.local);
        for mut c in [sc.leaders.take(), sc.cross.take()].into_iter().flatten() {
            PMPI_Comm_free()(&mut c);
        }
    }
}

/// Builds the site and leaders' communicators site-locally. Errors return instead of
/// aborting, and all ranks check that all succeeded before anyone uses them.
pub(super) unsafe fn build_site_comms(comm: Comm, me: usize, g: Grouping) -> Option<SiteComms> {
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
            let members: Vec<c_int> = g.groups[mine].iter().map(|&r| as_rank(r)).collect();
            let mut lg: Group = std::mem::zeroed();
            let mut c: Comm = std::mem::zeroed();
            ok = PMPI_Group_incl()(cg, as_rank(members.len()), members.as_ptr(), &mut lg) == 0
                && PMPI_Comm_create_group()(comm, lg, LOCAL_GROUP_TAG, &mut c) == 0;
            if ok {
                local = Some(c);
                PMPI_Group_free()(&mut lg);
            }
            if ok && leader {
                let heads: Vec<c_int> = (0..g.groups.len()).map(|h| as_rank(g.leader(h))).collect();
                let mut xg: Group = std::mem::zeroed();
                let mut x: Comm = std::mem::zeroed();
                ok = PMPI_Group_incl()(cg, as_rank(heads.len()), heads.as_ptr(), &mut xg) == 0
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
                local_rank[r] = as_rank(i);
            }
        }
        let always = state::shim().is_some_and(|s| s.config.regroup_always);
        Some(SiteComms { me, mine, local, leaders, cross, local_rank, g, always })
    }
}

/// Whether `flag` holds on every rank of `comm` (of `n` ranks); false on any error.
pub(super) unsafe fn all_ranks(comm: Comm, flag: bool, n: usize) -> bool {
    let mine = [flag as u8];
    let mut all = vec![0u8; n];
    // SAFETY: buffers sized for the call; every rank of `comm` is here.
    let rc = unsafe { PMPI_Allgather()(mine.as_ptr().cast(), 1, byte_type(), all.as_mut_ptr().cast(), 1, byte_type(), comm) };
    rc == 0 && all.iter().all(|&f| f == 1)
}

/// Whether this process can still create `k` communicators (duplicates of MPI_COMM_SELF,
/// freed at once; a purely local check).
pub(super) unsafe fn context_ids_left(k: usize) -> bool {
    // One thread at a time: MPI_COMM_SELF is one communicator for every thread, and its
    // error handler is swapped and restored around the duplicates.
    static SELF: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SELF.lock().unwrap_or_else(|p| p.into_inner());
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

impl SiteComms {
    pub(super) fn n(&self) -> usize {
        self.g.site_of.len()
    }
    pub(super) fn leader(&self, h: usize) -> usize {
        self.g.leader(h)
    }
    pub(super) fn is_leader(&self) -> bool {
        self.g.leader(self.mine) == self.me
    }
    /// Site-communicator rank of this site's leader.
    pub(super) fn lead_local(&self) -> c_int {
        self.local_rank[self.g.leader(self.mine)]
    }
    /// Who speaks for group `h` across sites in an operation rooted at `root`
    /// (`Grouping::head`: the root for its own site where the heads exchange directly).
    pub(super) fn head(&self, h: usize, root: usize) -> usize {
        self.g.head(h, Some(root))
    }
    /// Site-communicator rank of this site's head for `root`.
    pub(super) fn head_local(&self, root: usize) -> c_int {
        self.local_rank[self.head(self.mine, root)]
    }
    pub(super) fn members(&self) -> &[usize] {
        &self.g.groups[self.mine]
    }
    pub(super) fn root(&self, root: c_int) -> Option<usize> {
        (root >= 0 && (root as usize) < self.n()).then_some(root as usize)
    }
    /// Commutative operation, or every site's ranks contiguous: the order of a reduction
    /// survives regrouping.
    pub(super) unsafe fn reducible(&self, op: MpiOp) -> bool {
        let mut commute = 0;
        // SAFETY: valid out-pointer.
        unsafe { PMPI_Op_commutative()(op, &mut commute) };
        commute != 0 || self.g.contiguous()
    }
    /// Whether `op` should run site-aware here (see `regroup::pays`).
    pub(super) fn worth(&self, op: SaOp, root: Option<usize>, bytes: u64) -> bool {
        self.always || pays(op, &self.g, root, bytes)
    }
    pub(super) fn cross(&self, op: SaOp, root: Option<usize>, payload: u64, site_bytes: &[u64]) {
        let b = cross_site_bytes(op, &self.g, self.me, root, payload, site_bytes);
        if b > 0 {
            if let Some(s) = state::shim() {
                s.regrouped_bytes.fetch_add(b, Relaxed);
            }
        }
    }
    /// Per group: the sum of `per_rank` over its members.
    pub(super) fn site_sums(&self, per_rank: impl Fn(usize) -> usize) -> Vec<usize> {
        self.g.groups.iter().map(|m| m.iter().map(|&r| per_rank(r)).sum()).collect()
    }
}
