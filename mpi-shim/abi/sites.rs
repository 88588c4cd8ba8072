// Site-aware collectives in the MPI library's own terms (included after `c.rs`): per
// communicator, a communicator per site and one of the sites' leaders, built on first use
// from the grouping `straddle_shim::regroup` computes, cached in an attribute; the
// algorithms call PMPI only. Today: `MPI_Bcast` under the static map of
// STRADDLE_SITE_MAP, when STRADDLE_REGROUP=1.

use straddle_shim::regroup::{route, Grouping, Route};

pmpi!(PMPI_Comm_split: fn(Comm, c_int, c_int, *mut Comm) -> c_int);
pmpi!(PMPI_Comm_free: fn(*mut Comm) -> c_int);
pmpi!(PMPI_Recv: fn(*mut c_void, c_int, Datatype, c_int, c_int, Comm, *mut c_void) -> c_int);

const UNDEFINED: c_int = -32766;
/// Tag of the root-to-leader hand-over on the (private) site communicator.
const HANDOVER_TAG: c_int = 0x5d5e;

static SITES_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);

/// One communicator's site communicators (or `None`: this communicator stays flat).
struct SiteComms {
    grouping: Grouping,
    /// This rank's site communicator (ranks in communicator order).
    local: Comm,
    /// The leaders' communicator, on leaders only.
    leaders: Option<Comm>,
    /// Leaders' communicator rank of each group's leader.
    leader_index: Vec<c_int>,
    /// Site-communicator rank of each communicator rank.
    local_rank: Vec<c_int>,
    parent_is_world: bool,
}

unsafe extern "C" fn free_site_comms(comm: Comm, _: c_int, val: *mut c_void, _: *mut c_void) -> c_int {
    if val.is_null() {
        return 0;
    }
    // SAFETY: the attribute holds a Box<Option<SiteComms>> from `site_comms`.
    let b = unsafe { Box::from_raw(val as *mut Option<SiteComms>) };
    if let Some(mut sc) = *b {
        // MPI_COMM_WORLD's attributes go at MPI_Finalize, where freeing is not allowed.
        if !sc.parent_is_world && comm != comm_world() {
            // SAFETY: communicators this shim created.
            unsafe {
                PMPI_Comm_free()(&mut sc.local);
                if let Some(mut l) = sc.leaders {
                    PMPI_Comm_free()(&mut l);
                }
            }
        }
    }
    0
}

fn note(s: &Shim, what: &str) {
    if s.config.verbose {
        let line = format!("straddle[{} rank {}]: {what}\n", s.id.job, s.id.rank);
        // SAFETY: writing a valid buffer to fd 2.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
}

/// The site communicators of `comm`, built on first use (a collective point: every rank
/// of `comm` reaches it in the same call and decides the same).
unsafe fn site_comms(s: &Shim, comm: Comm) -> Option<&'static SiteComms> {
    let map = s.config.site_map.as_ref()?;
    if SITES_KEYVAL.load(Relaxed) == KEYVAL_UNSET {
        let mut k = 0;
        // SAFETY: creating a keyval with our own callbacks.
        if unsafe { PMPI_Comm_create_keyval()(Some(no_copy_comm), Some(free_site_comms), &mut k, null_mut()) } != 0 {
            return None;
        }
        // Every rank creates it at the same first call; a race between threads of one
        // rank would only waste a keyval.
        SITES_KEYVAL.store(k, Relaxed);
    }
    let key = SITES_KEYVAL.load(Relaxed);
    // SAFETY: the value is a Box<Option<SiteComms>> of ours, freed with the communicator.
    unsafe {
        let raw = match cached_on_comm(comm, key)? {
            Some(val) => val,
            None => {
                let built = Box::into_raw(Box::new(build_site_comms(s, comm, map))) as *mut c_void;
                cache_on_comm(comm, key, built, |r| drop(Box::from_raw(r as *mut Option<SiteComms>)))?
            }
        };
        (*(raw as *const Option<SiteComms>)).as_ref()
    }
}

unsafe fn build_site_comms(s: &Shim, comm: Comm, map: &[u32]) -> Option<SiteComms> {
    if map.len() != s.id.world_size as usize {
        return None;
    }
    let parent_is_world = comm == comm_world();
    let world: Vec<u32> = if parent_is_world {
        (0..s.id.world_size).collect()
    } else {
        // SAFETY: forwarded.
        let info = unsafe { comm_info(s, comm)? };
        if info.inter {
            return None;
        }
        info.world_ranks.clone()
    };
    let grouping = Grouping::new(1, &world, map)?;
    if route(&grouping, false, true) == Route::Flat {
        return None;
    }
    let mut me = 0;
    // SAFETY: PMPI calls on a valid communicator; every rank of it runs the same splits.
    unsafe {
        PMPI_Comm_rank()(comm, &mut me);
        let g = grouping.group_of[me as usize];
        let mut local: Comm = std::mem::zeroed();
        if PMPI_Comm_split()(comm, g as c_int, me, &mut local) != 0 {
            return None;
        }
        let leader = grouping.leader(g) == me as usize;
        let mut leaders: Comm = std::mem::zeroed();
        if PMPI_Comm_split()(comm, if leader { 0 } else { UNDEFINED }, me, &mut leaders) != 0 {
            return None;
        }
        let mut all_leaders: Vec<usize> = (0..grouping.groups.len()).map(|g| grouping.leader(g)).collect();
        all_leaders.sort_unstable();
        let leader_index = (0..grouping.groups.len())
            .map(|g| all_leaders.iter().position(|&l| l == grouping.leader(g)).unwrap() as c_int)
            .collect();
        let mut local_rank = vec![0; grouping.site_of.len()];
        for m in &grouping.groups {
            for (i, &r) in m.iter().enumerate() {
                local_rank[r] = i as c_int;
            }
        }
        note(s, &format!("site-aware collectives on a communicator of {} ranks over {} sites", grouping.site_of.len(), grouping.groups.len()));
        Some(SiteComms { grouping, local, leaders: leader.then_some(leaders), leader_index, local_rank, parent_is_world })
    }
}

/// `MPI_Bcast`, across the WAN once per site: the root hands the data to its site's leader,
/// the leaders broadcast among themselves, then each leader inside its site.
unsafe fn site_aware_bcast(buf: *mut c_void, count: c_int, dt: Datatype, root: c_int, comm: Comm) -> c_int {
    // SAFETY: forwarded from the application's call.
    unsafe {
        let flat = || PMPI_Bcast()(buf, count, dt, root, comm);
        let Some(s) = active() else { return flat() };
        if !s.config.regroup || root < 0 {
            return flat();
        }
        let Some(sc) = site_comms(s, comm) else { return flat() };
        let n = sc.grouping.site_of.len();
        if root as usize >= n {
            return flat();
        }
        let mut me = 0;
        PMPI_Comm_rank()(comm, &mut me);
        let (me, root) = (me as usize, root as usize);
        let root_group = sc.grouping.group_of[root];
        let root_leader = sc.grouping.leader(root_group);
        if root != root_leader {
            if me == root {
                let rc = PMPI_Send()(buf, count, dt, sc.local_rank[root_leader], HANDOVER_TAG, sc.local);
                if rc != 0 {
                    return rc;
                }
            } else if me == root_leader {
                let rc = PMPI_Recv()(buf, count, dt, sc.local_rank[root], HANDOVER_TAG, sc.local, status_ignore());
                if rc != 0 {
                    return rc;
                }
            }
        }
        if let Some(leaders) = sc.leaders {
            let rc = PMPI_Bcast()(buf, count, dt, sc.leader_index[root_group], leaders);
            if rc != 0 {
                return rc;
            }
        }
        let my_group = sc.grouping.group_of[me];
        PMPI_Bcast()(buf, count, dt, sc.local_rank[sc.grouping.leader(my_group)], sc.local)
    }
}
