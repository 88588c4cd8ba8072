//! The libvirt calls the `virt` crate does not wrap (or wraps leaking): aborting a domain's
//! job, switching a migration to post-copy, a host's available memory, and a domain's
//! measured dirty rate.

use std::ffi::CStr;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

/// Aborts the domain's current job (a migration: the guest keeps running on the source).
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `as_ptr` is the live domain handle `dom` owns for the duration of the call;
    // virDomainAbortJob only reads it.
    let r = unsafe { virt::sys::virDomainAbortJob(dom.as_ptr()) };
    if r < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// Switches a migration started with post-copy allowed to post-copy now.
pub fn start_postcopy(dom: &Domain) -> Result<(), Error> {
    // SAFETY: as in `abort_job`; flags 0 is the only defined value.
    let r = unsafe { virt::sys::virDomainMigrateStartPostCopy(dom.as_ptr(), 0) };
    if r < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// Bytes a host can give a new guest: free memory plus the page cache and buffers the
/// kernel gives back on demand (`None` when the driver does not report memory statistics).
pub fn memory_available(conn: &Connect) -> Result<Option<u64>, Error> {
    let mut n: std::os::raw::c_int = 0;
    // SAFETY: the first call with no buffer only writes the number of statistics to `n`;
    // `as_ptr` is the live connection `conn` owns for the duration of the call.
    let r = unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), sys::VIR_NODE_MEMORY_STATS_ALL_CELLS, std::ptr::null_mut(), &mut n, 0) };
    if r < 0 {
        let e = Error::last_error();
        if e.code().is(virt::error::ErrorNumber::NoSupport) {
            return Ok(None);
        }
        return Err(e);
    }
    let len = usize::try_from(n).unwrap_or(0);
    if len == 0 {
        return Ok(None);
    }
    let mut stats = vec![sys::virNodeMemoryStats { field: [0; 80], value: 0 }; len];
    // SAFETY: `stats` holds `n` records, as the call is told.
    let r = unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), sys::VIR_NODE_MEMORY_STATS_ALL_CELLS, stats.as_mut_ptr(), &mut n, 0) };
    if r < 0 {
        return Err(Error::last_error());
    }
    let mut kib = 0u64;
    for s in stats.iter().take(usize::try_from(n).unwrap_or(0)) {
        // SAFETY: libvirt writes NUL-terminated field names within the 80 bytes.
        let f = unsafe { CStr::from_ptr(s.field.as_ptr()) };
        if matches!(f.to_bytes(), b"free" | b"buffers" | b"cached") {
            kib = kib.saturating_add(s.value);
        }
    }
    Ok(Some(kib.saturating_mul(1024)))
}

/// Starts measuring the domain's dirty rate over `seconds` (QEMU's page sampling).
pub fn start_dirty_rate(dom: &Domain, seconds: i32) -> Result<(), Error> {
    // SAFETY: as in `abort_job`.
    let r = unsafe { sys::virDomainStartDirtyRateCalc(dom.as_ptr(), seconds, sys::VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING) };
    if r < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// The domain's last measured dirty rate in bytes per second, once a measurement finished
/// (`None` while measuring or when none was made).
pub fn dirty_rate(dom: &Domain) -> Result<Option<f64>, Error> {
    let mut doms = [
        // SAFETY: as in `abort_job`.
        unsafe { dom.as_ptr() },
        std::ptr::null_mut(),
    ];
    let mut records: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: `doms` is a NULL-terminated list of one live domain; libvirt allocates the
    // records, which are freed below whatever happens.
    let r = unsafe { sys::virDomainListGetStats(doms.as_mut_ptr(), sys::VIR_DOMAIN_STATS_DIRTYRATE, &mut records, 0) };
    if r < 0 {
        return Err(Error::last_error());
    }
    let mut status = None;
    let mut mib_per_s = None;
    // SAFETY: `r` records are valid until freed; each holds `nparams` typed parameters.
    unsafe {
        for i in 0..usize::try_from(r).unwrap_or(0) {
            let rec = &**records.add(i);
            for k in 0..usize::try_from(rec.nparams).unwrap_or(0) {
                let p = &*rec.params.add(k);
                let f = CStr::from_ptr(p.field.as_ptr());
                let v = match u32::try_from(p.type_).unwrap_or(0) {
                    sys::VIR_TYPED_PARAM_INT => f64::from(p.value.i),
                    sys::VIR_TYPED_PARAM_UINT => f64::from(p.value.ui),
                    sys::VIR_TYPED_PARAM_LLONG => p.value.l as f64,
                    sys::VIR_TYPED_PARAM_ULLONG => p.value.ul as f64,
                    _ => continue,
                };
                if f == sys::VIR_DOMAIN_STATS_DIRTYRATE_CALC_STATUS {
                    status = Some(v);
                } else if f == sys::VIR_DOMAIN_STATS_DIRTYRATE_MEGABYTES_PER_SECOND {
                    mib_per_s = Some(v);
                }
            }
        }
        sys::virDomainStatsRecordListFree(records);
    }
    // Status 2: measured (0 not started, 1 measuring).
    Ok(match (status, mib_per_s) {
        (Some(s), Some(m)) if (s - 2.0).abs() < 0.5 => Some(m * 1048576.0),
        _ => None,
    })
}
