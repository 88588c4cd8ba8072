//! ABI-generic part of the shim, compiled once per MPI ABI: the crate defines `mod abi`
//! (handle types, constants, builtin type sizes) that this module builds on.
//!
//! Everything here calls MPI through PMPI only, resolved lazily with dlsym(RTLD_NEXT) so the
//! shared object has no undefined MPI symbol and loads into processes without MPI.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use straddle_shim::collectives::{key as coll_key, Mode, Op};
use straddle_shim::comms::CommInfo;
use straddle_shim::persistent::Planned;
use straddle_shim::state::{self, Identity};
use straddle_shim::Shim;

use crate::abi::*;
use crate::c::PMPI_Bcast;
use crate::sites::{finish_agreements, note};

/// A function of the MPI library, or null: the next object after the shim, any object in
/// the global scope, or else an MPI library loaded with local scope (`local_mpi`).
pub(crate) fn lookup(name: &'static str) -> *mut c_void {
    // SAFETY: `name` is a NUL-terminated literal; dlsym has no other preconditions.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if !p.is_null() {
        return p;
    }
    lookup_data(name)
}

/// A variable of the MPI library (a predefined handle), or null: the global scope first —
/// where a program linked against MPI holds its copy-relocated instance, the one the
/// library itself uses — else an MPI library loaded with local scope.
pub(crate) fn lookup_data(name: &'static str) -> *mut c_void {
    // SAFETY: `name` is a NUL-terminated literal; dlsym has no other preconditions.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast()) };
    if !p.is_null() {
        return p;
    }
    match local_mpi() {
        // SAFETY: a handle from dlopen, never closed; `name` as above.
        Some(h) => unsafe { libc::dlsym(h as *mut c_void, name.as_ptr().cast()) },
        None => null_mut(),
    }
}

/// Resolves a symbol of the MPI library. When the library has no `PMPI_` entry point of
/// that name but an `MPI_` one that is not the shim's, the call passes through to that
/// and the shim stops counting; with neither, there is no MPI library to call and the
/// process aborts.
#[cold]
pub(crate) fn resolve(name: &'static str) -> *mut c_void {
    let p = lookup(name);
    if !p.is_null() {
        return p;
    }
    if let Some(plain) = name.strip_prefix('P').and_then(|n| std::ffi::CString::new(n.trim_end_matches('\0')).ok()) {
        // SAFETY: a NUL-terminated name; RTLD_NEXT looks past the shim, a handle of
        // `local_mpi` at the library and its dependencies.
        let next = unsafe { libc::dlsym(libc::RTLD_NEXT, plain.as_ptr()) };
        // SAFETY: as above.
        let local = local_mpi().map_or(null_mut(), |h| unsafe { libc::dlsym(h as *mut c_void, plain.as_ptr()) });
        if let Some(q) = [next, local].into_iter().find(|q| !q.is_null() && foreign(*q)) {
            state::disable();
            return q;
        }
    }
    let msg = format!("straddle shim: the MPI library has no {}\n", name.trim_end_matches('\0'));
    // SAFETY: writing a valid buffer to stderr, then aborting: the call cannot proceed.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort();
    }
}

/// The path of the object holding `addr`, as the dynamic loader names it.
fn object_of(addr: *const c_void) -> Option<std::ffi::CString> {
    // SAFETY: dladdr fills `info` for any address; dli_fname points into the loader's
    // link map, copied before returning.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(info.dli_fname).to_owned())
    }
}

/// Whether `addr` lies outside the shim.
fn foreign(addr: *const c_void) -> bool {
    object_of(addr) != object_of(lookup as *const c_void)
}

/// The MPI library when it was loaded with local scope (a plugin linked against it and
/// opened with RTLD_LOCAL, as Python, Julia and R load MPI): neither RTLD_NEXT nor the
/// global scope sees it, but it is loaded. The first loaded object, other than the shim,
/// through which `PMPI_Init_thread` resolves: a handle to it (or to a plugin that depends
/// on it) from dlopen(RTLD_NOLOAD), kept for good. Searched once.
fn local_mpi() -> Option<usize> {
    static FOUND: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        unsafe extern "C" fn collect(info: *mut libc::dl_phdr_info, _: libc::size_t, data: *mut c_void) -> c_int {
            // SAFETY: the loader passes a valid entry; `data` is the Vec below.
            unsafe {
                let name = (*info).dlpi_name;
                if !name.is_null() && *name != 0 {
                    (*(data as *mut Vec<std::ffi::CString>)).push(std::ffi::CStr::from_ptr(name).to_owned());
                }
            }
            0
        }
        let mut names: Vec<std::ffi::CString> = Vec::new();
        // SAFETY: the callback only copies names; dlopen runs after the walk, not inside it.
        unsafe { libc::dl_iterate_phdr(Some(collect), (&mut names as *mut Vec<std::ffi::CString>).cast()) };
        let me = object_of(lookup as *const c_void);
        for name in names.into_iter().filter(|n| Some(n) != me.as_ref()) {
            // SAFETY: RTLD_NOLOAD only returns a handle to an object already loaded.
            let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
            if h.is_null() {
                continue;
            }
            // SAFETY: a live handle and a NUL-terminated name.
            let p = unsafe { libc::dlsym(h, c"PMPI_Init_thread".as_ptr()) };
            if !p.is_null() && foreign(p) {
                return Some(h as usize);
            }
            // SAFETY: the handle dlopen just gave, unused.
            unsafe { libc::dlclose(h) };
        }
        None
    })
}

/// Declares a lazily resolved PMPI function: `NAME()` returns the function pointer.
macro_rules! pmpi {
    ($name:ident : fn($($t:ty),* $(,)?) -> $r:ty) => {
        #[allow(non_snake_case, dead_code)]
        #[inline(always)]
        pub(crate) unsafe fn $name() -> unsafe extern "C" fn($($t),*) -> $r {
            use ::std::sync::atomic::{AtomicPtr, Ordering::Relaxed};
            static P: AtomicPtr<::std::ffi::c_void> = AtomicPtr::new(::std::ptr::null_mut());
            let mut p = P.load(Relaxed);
            if p.is_null() {
                p = $crate::common::resolve(concat!(stringify!($name), "\0"));
                P.store(p, Relaxed);
            }
            // SAFETY: the symbol is the MPI function of this name, whose C signature is
            // the one declared here for this ABI.
            unsafe { ::std::mem::transmute::<*mut ::std::ffi::c_void, unsafe extern "C" fn($($t),*) -> $r>(p) }
        }
    };
}

pmpi!(PMPI_Initialized: fn(*mut c_int) -> c_int);
pmpi!(PMPI_Finalized: fn(*mut c_int) -> c_int);
pmpi!(PMPI_Query_thread: fn(*mut c_int) -> c_int);
pmpi!(PMPI_Comm_rank: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Comm_size: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Comm_remote_size: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Comm_test_inter: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Comm_group: fn(Comm, *mut Group) -> c_int);
pmpi!(PMPI_Comm_remote_group: fn(Comm, *mut Group) -> c_int);
pmpi!(PMPI_Group_size: fn(Group, *mut c_int) -> c_int);
pmpi!(PMPI_Group_translate_ranks: fn(Group, c_int, *const c_int, Group, *mut c_int) -> c_int);
pmpi!(PMPI_Group_free: fn(*mut Group) -> c_int);
pmpi!(PMPI_Comm_create_keyval: fn(CommCopyFn, CommDeleteFn, *mut c_int, *mut c_void) -> c_int);
pmpi!(PMPI_Comm_get_attr: fn(Comm, c_int, *mut c_void, *mut c_int) -> c_int);
pmpi!(PMPI_Comm_set_attr: fn(Comm, c_int, *mut c_void) -> c_int);
pmpi!(PMPI_Win_create_keyval: fn(WinCopyFn, WinDeleteFn, *mut c_int, *mut c_void) -> c_int);
pmpi!(PMPI_Win_get_attr: fn(Win, c_int, *mut c_void, *mut c_int) -> c_int);
pmpi!(PMPI_Win_set_attr: fn(Win, c_int, *mut c_void) -> c_int);
pmpi!(PMPI_Win_get_group: fn(Win, *mut Group) -> c_int);
pmpi!(PMPI_Type_size: fn(Datatype, *mut c_int) -> c_int);
pmpi!(PMPI_Topo_test: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Cartdim_get: fn(Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Graph_neighbors_count: fn(Comm, c_int, *mut c_int) -> c_int);
pmpi!(PMPI_Dist_graph_neighbors_count: fn(Comm, *mut c_int, *mut c_int, *mut c_int) -> c_int);

type CommCopyFn = Option<unsafe extern "C" fn(Comm, c_int, *mut c_void, *mut c_void, *mut c_void, *mut c_int) -> c_int>;
type CommDeleteFn = Option<unsafe extern "C" fn(Comm, c_int, *mut c_void, *mut c_void) -> c_int>;
type WinCopyFn = Option<unsafe extern "C" fn(Win, c_int, *mut c_void, *mut c_void, *mut c_void, *mut c_int) -> c_int>;
type WinDeleteFn = Option<unsafe extern "C" fn(Win, c_int, *mut c_void, *mut c_void) -> c_int>;

pub(crate) const KEYVAL_UNSET: c_int = c_int::MIN;
static COMM_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);
static FLUSH_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);
static WIN_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);

// ---------------------------------------------------------------------------------------
// Re-entrancy: counting happens only in the outermost MPI call of a thread, so calls the
// MPI library makes to itself (ROMIO, a binding implemented over another) count once.
// Below MPI_THREAD_MULTIPLE no two threads are inside MPI at once, so one process-wide
// depth (a plain load and store) does; MPI_THREAD_MULTIPLE programs use a thread-local one.

static SERIAL: AtomicBool = AtomicBool::new(false);
static SERIAL_DEPTH: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

pub(crate) enum Guard {
    Serial { outer: bool },
    Threaded { depth: *const Cell<u32>, outer: bool },
}

impl Guard {
    #[inline(always)]
    pub(crate) fn enter() -> Guard {
        if SERIAL.load(Relaxed) {
            let d = SERIAL_DEPTH.load(Relaxed);
            SERIAL_DEPTH.store(d + 1, Relaxed);
            Guard::Serial { outer: d == 0 }
        } else {
            DEPTH.with(|c| {
                let d = c.get();
                c.set(d + 1);
                Guard::Threaded { depth: c as *const Cell<u32>, outer: d == 0 }
            })
        }
    }

    #[inline(always)]
    pub(crate) fn outer(&self) -> bool {
        match self {
            Guard::Serial { outer } | Guard::Threaded { outer, .. } => *outer,
        }
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        match self {
            Guard::Serial { .. } => SERIAL_DEPTH.store(SERIAL_DEPTH.load(Relaxed).wrapping_sub(1), Relaxed),
            // SAFETY: the pointer is this thread's own thread-local, alive while the thread
            // runs this call.
            Guard::Threaded { depth, .. } => unsafe { (**depth).set((**depth).get() - 1) },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Start: the first MPI call after MPI is initialised brings the shim up.

#[inline(always)]
pub(crate) fn active() -> Option<&'static Shim> {
    match state::shim() {
        Some(s) => Some(s),
        None if state::may_start() => start(None),
        None => None,
    }
}

/// Brings the shim up. `agreed_job` is the job id agreed through MPI at init, when the
/// environment names none.
#[cold]
fn start(agreed_job: Option<String>) -> Option<&'static Shim> {
    // SAFETY: PMPI calls with valid out-pointers; MPI_Initialized/Finalized may be called
    // at any time.
    unsafe {
        let (mut init, mut fini) = (0, 0);
        PMPI_Initialized()(&mut init);
        PMPI_Finalized()(&mut fini);
        if init == 0 || fini != 0 || !state::begin_start() {
            return None;
        }
        let (mut rank, mut size) = (0, 0);
        if PMPI_Comm_rank()(comm_world(), &mut rank) != 0 || PMPI_Comm_size()(comm_world(), &mut size) != 0 {
            state::abandon_start();
            return None;
        }
        let mut level = 0;
        PMPI_Query_thread()(&mut level);
        let multiple = level >= THREAD_MULTIPLE;
        let config = straddle_shim::config::Config::from_env();
        let job = straddle_shim::identity::job_from_env(|k| std::env::var(k).ok()).or(agreed_job).unwrap_or_else(fallback_job);
        let id = Identity {
            job,
            rank: rank as u32,
            world_size: size as u32,
            node: straddle_shim::identity::node(),
            mpi_impl: IMPL,
            thread_multiple: multiple,
        };
        let shim = state::install(id, config);
        SERIAL.store(!multiple, Relaxed);
        state::shim()?; // None: STRADDLE_DISABLE
        create_keyvals();
        // MPI_COMM_WORLD is communicator 1 everywhere; ranks translate to themselves.
        let world = shim.comms.register((0..size as u32).collect(), false, vec![]);
        debug_assert_eq!(world.id, 1);
        Some(shim)
    }
}

/// Without a job id from the environment or an agreement at init (a program that
/// initialised MPI without our MPI_Init wrapper), the job is named by the launcher's
/// process on this node; ranks on other nodes may then report under another name.
fn fallback_job() -> String {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    format!("mpi-{}-{}", straddle_shim::identity::hostname(), ppid)
}

pub(crate) unsafe extern "C" fn no_copy_comm(_: Comm, _: c_int, _: *mut c_void, _: *mut c_void, _: *mut c_void, flag: *mut c_int) -> c_int {
    // SAFETY: MPI passes a valid flag pointer.
    unsafe { *flag = 0 };
    0
}

unsafe extern "C" fn drop_comm_info(_: Comm, _: c_int, val: *mut c_void, _: *mut c_void) -> c_int {
    if !val.is_null() {
        // SAFETY: the attribute holds a pointer from Arc::into_raw in `comm_info`.
        drop(unsafe { Arc::from_raw(val as *const CommInfo) });
    }
    0
}

unsafe extern "C" fn flush_at_finalize(_: Comm, _: c_int, _: *mut c_void, _: *mut c_void) -> c_int {
    // MPI_Finalize deletes MPI_COMM_SELF's attributes first: the last moment MPI is
    // fully up. Site-map agreements still in flight complete here (every rank started
    // them, and every rank is finalizing). The flush is bounded by STRADDLE_FLUSH_TIMEOUT_MS.
    // SAFETY: MPI is still fully up.
    unsafe { finish_agreements() };
    if let Some(s) = state::shim() {
        let calls = s.site_aware_calls.load(Relaxed);
        if s.config.verbose && calls > 0 {
            note(s, &format!("{calls} collectives ran site-aware, {} bytes across sites", s.regrouped_bytes.load(Relaxed)));
        }
    }
    state::flush();
    0
}

unsafe extern "C" fn no_copy_win(_: Win, _: c_int, _: *mut c_void, _: *mut c_void, _: *mut c_void, flag: *mut c_int) -> c_int {
    // SAFETY: MPI passes a valid flag pointer.
    unsafe { *flag = 0 };
    0
}

unsafe extern "C" fn drop_win_info(_: Win, _: c_int, val: *mut c_void, _: *mut c_void) -> c_int {
    if !val.is_null() {
        // SAFETY: the attribute holds a pointer from Arc::into_raw in `win_info`.
        drop(unsafe { Arc::from_raw(val as *const CommInfo) });
    }
    0
}

unsafe fn create_keyvals() {
    // SAFETY: called once from `start`, with MPI initialised.
    unsafe {
        let mut k = 0;
        if PMPI_Comm_create_keyval()(Some(no_copy_comm), Some(drop_comm_info), &mut k, null_mut()) == 0 {
            COMM_KEYVAL.store(k, Relaxed);
        }
        if PMPI_Win_create_keyval()(Some(no_copy_win), Some(drop_win_info), &mut k, null_mut()) == 0 {
            WIN_KEYVAL.store(k, Relaxed);
        }
        if PMPI_Comm_create_keyval()(Some(no_copy_comm), Some(flush_at_finalize), &mut k, null_mut()) == 0 {
            FLUSH_KEYVAL.store(k, Relaxed);
            PMPI_Comm_set_attr()(comm_self(), k, null_mut());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Translation: communicator and window ranks to MPI_COMM_WORLD ranks, cached in attributes.

unsafe fn group_to_world(g: Group) -> Vec<u32> {
    // SAFETY: PMPI calls on a valid group with buffers of the group's size.
    unsafe {
        let mut n = 0;
        PMPI_Group_size()(g, &mut n);
        let ranks: Vec<c_int> = (0..n).collect();
        let mut out = vec![0 as c_int; n.max(0) as usize];
        let mut wg: Group = std::mem::zeroed();
        PMPI_Comm_group()(comm_world(), &mut wg);
        PMPI_Group_translate_ranks()(g, n, ranks.as_ptr(), wg, out.as_mut_ptr());
        PMPI_Group_free()(&mut wg);
        out.into_iter().map(|r| if r < 0 { u32::MAX } else { r as u32 }).collect()
    }
}

/// The cached description of `comm`, built on first sight.
#[inline]
unsafe fn comm_info(s: &Shim, comm: Comm) -> Option<&'static CommInfo> {
    let key = COMM_KEYVAL.load(Relaxed);
    if key == KEYVAL_UNSET {
        return None;
    }
    // SAFETY: the attribute value is an Arc<CommInfo> pointer that lives until MPI deletes
    // the attribute with the communicator, i.e. for as long as the application may pass
    // this handle.
    unsafe {
        match cached_on_comm(comm, key)? {
            Some(val) => Some(&*(val as *const CommInfo)),
            None => comm_info_slow(s, comm, key),
        }
    }
}

/// What `comm` caches under `key`: `Some(Some(value))`, `Some(None)` when nothing yet,
/// `None` on an MPI error.
#[inline(always)]
pub(crate) unsafe fn cached_on_comm(comm: Comm, key: c_int) -> Option<Option<*mut c_void>> {
    let mut val: *mut c_void = null_mut();
    let mut flag = 0;
    // SAFETY: PMPI attribute call with valid out-pointers.
    if unsafe { PMPI_Comm_get_attr()(comm, key, (&mut val as *mut *mut c_void).cast(), &mut flag) } != 0 {
        return None;
    }
    Some((flag != 0 && !val.is_null()).then_some(val))
}

/// Caches `raw` on `comm` under `key`; when MPI refuses, `reclaim` takes it back.
pub(crate) unsafe fn cache_on_comm(comm: Comm, key: c_int, raw: *mut c_void, reclaim: impl FnOnce(*mut c_void)) -> Option<*mut c_void> {
    // SAFETY: PMPI attribute call; the keyval's delete callback owns `raw` from now on.
    if unsafe { PMPI_Comm_set_attr()(comm, key, raw) } != 0 {
        reclaim(raw);
        return None;
    }
    Some(raw)
}

#[cold]
unsafe fn comm_info_slow(s: &Shim, comm: Comm, key: c_int) -> Option<&'static CommInfo> {
    // SAFETY: PMPI calls on a communicator the application just used successfully.
    unsafe {
        let mut inter = 0;
        PMPI_Comm_test_inter()(comm, &mut inter);
        let mut g: Group = std::mem::zeroed();
        PMPI_Comm_group()(comm, &mut g);
        let local = group_to_world(g);
        PMPI_Group_free()(&mut g);
        let remote = if inter != 0 {
            let mut rg: Group = std::mem::zeroed();
            PMPI_Comm_remote_group()(comm, &mut rg);
            let r = group_to_world(rg);
            PMPI_Group_free()(&mut rg);
            r
        } else {
            vec![]
        };
        let info = s.comms.register(local, inter != 0, remote);
        let raw = cache_on_comm(comm, key, Arc::into_raw(info) as *mut c_void, |r| drop(Arc::from_raw(r as *const CommInfo)))?;
        Some(&*(raw as *const CommInfo))
    }
}

#[inline]
unsafe fn win_info(win: Win) -> Option<&'static CommInfo> {
    let key = WIN_KEYVAL.load(Relaxed);
    if key == KEYVAL_UNSET {
        return None;
    }
    // SAFETY: as for communicators: the attribute lives as long as the window.
    unsafe {
        let mut val: *mut c_void = null_mut();
        let mut flag = 0;
        if PMPI_Win_get_attr()(win, key, (&mut val as *mut *mut c_void).cast(), &mut flag) != 0 {
            return None;
        }
        if flag != 0 && !val.is_null() {
            return Some(&*(val as *const CommInfo));
        }
        let mut g: Group = std::mem::zeroed();
        PMPI_Win_get_group()(win, &mut g);
        let ranks = group_to_world(g);
        PMPI_Group_free()(&mut g);
        let info = Arc::new(CommInfo { id: 0, world_ranks: ranks, inter: false, remote_world_ranks: vec![] });
        let raw = Arc::into_raw(info) as *mut c_void;
        if PMPI_Win_set_attr()(win, key, raw) != 0 {
            drop(Arc::from_raw(raw as *const CommInfo));
            return None;
        }
        Some(&*(raw as *const CommInfo))
    }
}

/// The world rank a send to `dest` on `comm` reaches, or `None` when it is no network
/// traffic (MPI_PROC_NULL, a send to self, a wildcard).
#[inline(always)]
unsafe fn world_dest(s: &Shim, comm: Comm, dest: c_int) -> Option<usize> {
    if dest < 0 {
        return (dest == PROC_NULL && s.config.count_proc_null).then(|| s.peers.bench_slot());
    }
    let w = if comm == comm_world() {
        dest as u32
    } else {
        // SAFETY: forwarded from the caller's contract.
        unsafe { comm_info(s, comm)?.dest_world(dest)? }
    };
    (w != s.id.rank && (w as usize) < s.peers.world_size()).then_some(w as usize)
}

#[inline(always)]
unsafe fn win_dest(s: &Shim, win: Win, target: c_int) -> Option<usize> {
    if target < 0 {
        return (target == PROC_NULL && s.config.count_proc_null).then(|| s.peers.bench_slot());
    }
    // SAFETY: forwarded from the caller's contract.
    let w = unsafe { win_info(win)?.world_ranks.get(target as usize).copied()? };
    (w != s.id.rank && (w as usize) < s.peers.world_size()).then_some(w as usize)
}

// ---------------------------------------------------------------------------------------
// Sizes.

/// Element counts of either width as bytes-multipliers; negative counts are errors MPI
/// will report, and count as zero.
pub(crate) trait AsCount: Copy {
    fn n(self) -> u64;
}
impl AsCount for c_int {
    #[inline(always)]
    fn n(self) -> u64 {
        self.max(0) as u64
    }
}
impl AsCount for i64 {
    #[inline(always)]
    fn n(self) -> u64 {
        self.max(0) as u64
    }
}

#[inline(always)]
pub(crate) unsafe fn type_size(dt: Datatype) -> u64 {
    if let Some(sz) = builtin_type_size(dt) {
        return sz;
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe { derived_type_size(dt) }
}

/// Sizes of derived types, cached by handle where the ABI's handles fit (MPICH's 32-bit
/// handles); `MPI_Type_free` evicts. Open MPI asks the library, which reads one field.
static TYPE_CACHE: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

#[inline]
unsafe fn derived_type_size(dt: Datatype) -> u64 {
    let h = handle_u32(dt);
    let slot = h.map(|h| &TYPE_CACHE[(h as usize) & 1023]);
    if let (Some(h), Some(slot)) = (h, slot) {
        let v = slot.load(Relaxed);
        if v >> 32 == h as u64 && v != 0 {
            return v & 0xffff_ffff;
        }
    }
    let mut sz: c_int = 0;
    // SAFETY: valid out-pointer; an invalid type makes MPI return an error, sz stays 0.
    unsafe { PMPI_Type_size()(dt, &mut sz) };
    let sz = sz.max(0) as u64;
    if let (Some(h), Some(slot)) = (h, slot) {
        slot.store(((h as u64) << 32) | sz, Relaxed);
    }
    sz
}

pub(crate) fn evict_type(dt: Datatype) {
    if let Some(h) = handle_u32(dt) {
        TYPE_CACHE[(h as usize) & 1023].store(0, Relaxed);
    }
}

#[inline(always)]
pub(crate) unsafe fn bytes(count: impl AsCount, dt: Datatype) -> u64 {
    // SAFETY: forwarded.
    count.n().saturating_mul(unsafe { type_size(dt) })
}

/// Sum of `n` counts from an array (v-collectives).
#[inline]
pub(crate) unsafe fn sum_counts<T: AsCount>(counts: *const T, n: usize) -> u64 {
    if counts.is_null() {
        return 0;
    }
    // SAFETY: MPI requires `counts` to hold one entry per peer.
    unsafe { (0..n).map(|i| (*counts.add(i)).n()).sum() }
}

// ---------------------------------------------------------------------------------------
// Counting helpers used by the wrappers.

#[inline(always)]
pub(crate) unsafe fn count_send(comm: Comm, dest: c_int, nbytes: impl FnOnce() -> u64) {
    if let Some(s) = active() {
        // SAFETY: forwarded.
        if let Some(w) = unsafe { world_dest(s, comm, dest) } {
            s.peers.add_p2p(w, nbytes());
        }
    }
}

#[inline(always)]
pub(crate) unsafe fn count_rma(win: Win, target: c_int, put: impl FnOnce() -> u64, get: impl FnOnce() -> u64) {
    if let Some(s) = active() {
        // SAFETY: forwarded.
        if let Some(w) = unsafe { win_dest(s, win, target) } {
            s.peers.add_rma(w, put(), get());
        }
    }
}

/// Remembers what persistent send request `req` will send at each start.
pub(crate) unsafe fn plan_send(req: Request, comm: Comm, dest: c_int, nbytes: u64) {
    if let Some(s) = active() {
        // SAFETY: forwarded.
        let dest = unsafe { world_dest(s, comm, dest) };
        // World ranks are below the world size, a u32.
        if let Some(dest) = dest.and_then(|d| u32::try_from(d).ok()) {
            s.persistent.insert(handle_usize(req), Planned::Send { dest, bytes: nbytes });
        }
    }
}

/// Counts the start of a persistent request.
#[inline]
pub(crate) fn count_start(req: Request) {
    if let Some(s) = active() {
        match s.persistent.get(handle_usize(req)) {
            Some(Planned::Send { dest, bytes }) => s.peers.add_p2p(dest as usize, bytes),
            Some(Planned::Collective { key, bytes }) => s.collectives.record(key, bytes),
            None => {}
        }
    }
}

pub(crate) fn forget_request(req: Request) {
    if let Some(s) = state::shim() {
        s.persistent.remove(handle_usize(req));
    }
}

/// Facts about a communicator a collective needs: id and size (the remote size on an
/// intercommunicator).
pub(crate) struct CollComm {
    pub(crate) id: u32,
    pub(crate) size: usize,
}

#[inline]
unsafe fn coll_comm(s: &Shim, comm: Comm) -> CollComm {
    if comm == comm_world() {
        return CollComm { id: 1, size: s.id.world_size as usize };
    }
    // SAFETY: forwarded.
    match unsafe { comm_info(s, comm) } {
        Some(c) if c.inter => CollComm { id: c.id, size: c.remote_world_ranks.len() },
        Some(c) => CollComm { id: c.id, size: c.world_ranks.len() },
        None => {
            let mut n = 0;
            // SAFETY: valid out-pointer.
            unsafe { PMPI_Comm_size()(comm, &mut n) };
            CollComm { id: 0, size: n.max(0) as usize }
        }
    }
}

/// The root as reported: a rank, -1 for none, -2 for MPI_ROOT, -3 for MPI_PROC_NULL on
/// an intercommunicator.
#[inline(always)]
fn report_root(root: Option<c_int>) -> i32 {
    match root {
        None => -1,
        Some(r) if r == ROOT => -2,
        Some(r) if r == PROC_NULL => -3,
        Some(r) => r,
    }
}

/// Out-degree of a process topology (neighbourhood collectives).
pub(crate) unsafe fn out_degree(comm: Comm) -> usize {
    // SAFETY: PMPI topology queries with valid out-pointers.
    unsafe {
        let mut kind = 0;
        PMPI_Topo_test()(comm, &mut kind);
        if kind == TOPO_CART {
            let mut nd = 0;
            PMPI_Cartdim_get()(comm, &mut nd);
            return 2 * nd.max(0) as usize;
        }
        if kind == TOPO_GRAPH {
            let (mut rank, mut n) = (0, 0);
            PMPI_Comm_rank()(comm, &mut rank);
            PMPI_Graph_neighbors_count()(comm, rank, &mut n);
            return n.max(0) as usize;
        }
        if kind == TOPO_DIST_GRAPH {
            let (mut indeg, mut outdeg, mut w) = (0, 0, 0);
            PMPI_Dist_graph_neighbors_count()(comm, &mut indeg, &mut outdeg, &mut w);
            return outdeg.max(0) as usize;
        }
        0
    }
}

/// Records one collective call (or plans it, for a persistent request).
#[inline]
pub(crate) unsafe fn count_coll(
    comm: Comm,
    op: Op,
    mode: Mode,
    root: Option<c_int>,
    req: Option<Request>,
    nbytes: impl FnOnce(&CollComm) -> u64,
) {
    if let Some(s) = active() {
        // SAFETY: forwarded.
        let cc = unsafe { coll_comm(s, comm) };
        let key = coll_key(cc.id, op, mode, report_root(root));
        let b = nbytes(&cc);
        if mode == Mode::SiteAware {
            s.site_aware_calls.fetch_add(1, Relaxed);
        }
        match (mode, req) {
            (Mode::Persistent, Some(r)) => s.persistent.insert(handle_usize(r), Planned::Collective { key, bytes: b }),
            _ => s.collectives.record(key, b),
        }
    }
}

/// Agrees on a job id at MPI_Init when the environment names none: rank 0's choice,
/// broadcast on MPI_COMM_WORLD (MPI_Init is collective, so this adds no new sync point).
pub(crate) unsafe fn agree_job_at_init() {
    if state::shim().is_some() || !state::may_start() {
        return;
    }
    if straddle_shim::identity::job_from_env(|k| std::env::var(k).ok()).is_some() {
        start(None);
        // SAFETY: every rank is in MPI_Init.
        unsafe { crate::sites::prepare_world() };
        return;
    }
    const LEN: c_int = 128;
    let mut buf = [0u8; LEN as usize];
    // SAFETY: PMPI calls on MPI_COMM_WORLD with a valid buffer, right after PMPI_Init.
    unsafe {
        let mut rank = 0;
        PMPI_Comm_rank()(comm_world(), &mut rank);
        if rank == 0 {
            let j = fallback_job();
            let n = j.len().min(buf.len() - 1);
            buf[..n].copy_from_slice(&j.as_bytes()[..n]);
        }
        PMPI_Bcast()(buf.as_mut_ptr().cast(), LEN, byte_type(), 0, comm_world());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    start(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
    // SAFETY: every rank is in MPI_Init.
    unsafe { crate::sites::prepare_world() };
}
