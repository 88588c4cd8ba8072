//! Who this rank is: job, rank, node. Documented `STRADDLE_*` variables first, then what
//! the launcher (or the VM) already says.

/// The job id: `STRADDLE_JOB`, else the launcher's own (Open MPI/PRRTE, PMIx, Slurm, PBS).
/// `None` when nothing names the job; the caller then agrees on one through MPI at init.
pub fn job_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let nonempty = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(j) = nonempty("STRADDLE_JOB") {
        return Some(j);
    }
    if let Some(j) = nonempty("OMPI_MCA_ess_base_jobid") {
        return Some(format!("ompi-{j}"));
    }
    if let Some(j) = nonempty("PMIX_NAMESPACE") {
        return Some(format!("pmix-{j}"));
    }
    if let Some(j) = nonempty("SLURM_JOB_ID") {
        return Some(match nonempty("SLURM_STEP_ID") {
            Some(s) => format!("slurm-{j}.{s}"),
            None => format!("slurm-{j}"),
        });
    }
    nonempty("PBS_JOBID").map(|j| format!("pbs-{j}"))
}

/// The node: `STRADDLE_NODE`, else the SMBIOS UUID a libvirt guest exposes, else the
/// hostname.
pub fn node() -> String {
    if let Ok(n) = std::env::var("STRADDLE_NODE") {
        let n = n.trim();
        if !n.is_empty() {
            return n.to_string();
        }
    }
    if let Ok(uuid) = std::fs::read_to_string("/sys/class/dmi/id/product_uuid") {
        let uuid = uuid.trim().to_ascii_lowercase();
        if is_uuid(&uuid) && uuid != "00000000-0000-0000-0000-000000000000" {
            return uuid;
        }
    }
    hostname()
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn job_precedence() {
        assert_eq!(job_from_env(env(&[("STRADDLE_JOB", "cg"), ("SLURM_JOB_ID", "9")])), Some("cg".into()));
        assert_eq!(job_from_env(env(&[("OMPI_MCA_ess_base_jobid", "17")])), Some("ompi-17".into()));
        assert_eq!(job_from_env(env(&[("SLURM_JOB_ID", "9"), ("SLURM_STEP_ID", "0")])), Some("slurm-9.0".into()));
        assert_eq!(job_from_env(env(&[("STRADDLE_JOB", "  ")])), None);
        assert_eq!(job_from_env(env(&[])), None);
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("4c4c4544-0042-3510-8052-b4c04f4e4b32"));
        assert!(!is_uuid("not-a-uuid"));
    }
}
