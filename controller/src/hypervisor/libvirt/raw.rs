//! The libvirt calls the `virt` crate does not wrap: aborting a domain's job and switching
//! a migration to post-copy.

use virt::domain::Domain;
use virt::error::Error;

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
