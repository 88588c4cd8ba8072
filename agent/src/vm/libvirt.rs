//! The host's cluster VMs through libvirt: define, start, stop, remove, list, and their
//! usage from libvirt's domain statistics. Every call is idempotent; a domain the agent
//! did not define (no straddle metadata) is never touched. Blocking libvirt calls run on
//! tokio's blocking pool, one connection per call (a unix socket: cheap, and nothing to
//! repair after the daemon restarts).

use std::path::PathBuf;

use straddle_proto::{VmState, VmUsage};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use super::domain::{seen, NodeVm};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error("libvirt at {uri}: {why}")]
    Libvirt { uri: String, why: String },
    #[error("a domain named {0:?} exists and is not one of straddle's: left alone")]
    NotOurs(String),
    #[error("VM {0:?} is not defined on this host")]
    Unknown(String),
    #[error("VM {name:?} runs with {what} {have:?}, the spec says {want:?}: stop it first")]
    Differs { name: String, what: &'static str, have: String, want: String },
}

/// One host's libvirt daemon.
#[derive(Debug, Clone)]
pub struct Domains {
    pub uri: String,
    /// `qemu` (software emulation) or `kvm`.
    pub domain_type: String,
    /// Where consoles go (`<dir>/<vm>.console`).
    pub dir: PathBuf,
}

/// A sample of one VM's counters, for usage between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counters {
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub vcpus: u32,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl Domains {
    fn err(&self, e: impl std::fmt::Display) -> VmError {
        VmError::Libvirt { uri: self.uri.clone(), why: e.to_string() }
    }

    fn open(&self) -> Result<Connect, VmError> {
        Connect::open(Some(&self.uri)).map_err(|e| self.err(e))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Domains, &Connect) -> Result<T, VmError> + Send + 'static,
    ) -> Result<T, VmError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let c = me.open()?;
            f(&me, &c)
        })
        .await
        .map_err(|e| self.err(e))?
    }

    fn lookup(c: &Connect, name: &str) -> Option<Domain> {
        c.lookup_domain_by_name(name).ok()
    }

    fn state_of(&self, d: &Domain, name: &str) -> Result<VmState, VmError> {
        let xml = d.xml_desc(0).map_err(|e| self.err(e))?;
        let s = seen(&xml);
        if s.cluster.is_none() {
            return Err(VmError::NotOurs(name.into()));
        }
        Ok(VmState { name: name.into(), defined: true, running: d.is_active().unwrap_or(false), mac: s.mac, bridge: s.bridge })
    }

    /// Defines `vm` (again: its definition is replaced while it is stopped; a running VM
    /// must already match on MAC and bridge).
    pub async fn define(&self, vm: NodeVm) -> Result<VmState, VmError> {
        self.blocking(move |me, c| {
            let want_mac = vm.id.mac().to_string();
            if let Some(d) = Self::lookup(c, &vm.name) {
                let have = me.state_of(&d, &vm.name)?;
                if have.running {
                    if have.mac != want_mac {
                        return Err(VmError::Differs { name: vm.name.clone(), what: "MAC", have: have.mac, want: want_mac });
                    }
                    if have.bridge != vm.bridge() {
                        return Err(VmError::Differs { name: vm.name.clone(), what: "bridge", have: have.bridge, want: vm.bridge() });
                    }
                    return Ok(have);
                }
            }
            std::fs::create_dir_all(&me.dir).map_err(|e| me.err(format!("{}: {e}", me.dir.display())))?;
            let console = me.dir.join(format!("{}.console", vm.name));
            let d = c.define_domain_xml(&vm.xml(&me.domain_type, &console.to_string_lossy())).map_err(|e| me.err(e))?;
            me.state_of(&d, &vm.name)
        })
        .await
    }

    pub async fn start(&self, name: &str) -> Result<VmState, VmError> {
        let name = name.to_string();
        self.blocking(move |me, c| {
            let d = Self::lookup(c, &name).ok_or_else(|| VmError::Unknown(name.clone()))?;
            me.state_of(&d, &name)?;
            if !d.is_active().unwrap_or(false) {
                d.create().map_err(|e| me.err(e))?;
            }
            me.state_of(&d, &name)
        })
        .await
    }

    pub async fn stop(&self, name: &str) -> Result<VmState, VmError> {
        let name = name.to_string();
        self.blocking(move |me, c| {
            let d = Self::lookup(c, &name).ok_or_else(|| VmError::Unknown(name.clone()))?;
            me.state_of(&d, &name)?;
            if d.is_active().unwrap_or(false) {
                d.destroy().map_err(|e| me.err(e))?;
            }
            me.state_of(&d, &name)
        })
        .await
    }

    /// Stops and undefines `name`; a VM that is not there is already removed.
    pub async fn remove(&self, name: &str) -> Result<(), VmError> {
        let name = name.to_string();
        self.blocking(move |me, c| {
            let Some(d) = Self::lookup(c, &name) else { return Ok(()) };
            me.state_of(&d, &name)?;
            if d.is_active().unwrap_or(false) {
                d.destroy().map_err(|e| me.err(e))?;
            }
            if let Err(e) = d.undefine() {
                // Migrated away meanwhile, or a transient domain that went with destroy.
                if Self::lookup(c, &name).is_some() {
                    return Err(me.err(e));
                }
            }
            let _ = std::fs::remove_file(me.dir.join(format!("{name}.console")));
            Ok(())
        })
        .await
    }

    /// The agent's VMs on this host (domains without straddle's metadata are left out).
    pub async fn list(&self) -> Result<Vec<VmState>, VmError> {
        self.blocking(|me, c| {
            let doms = c.list_all_domains(0).map_err(|e| me.err(e))?;
            Ok(doms.iter().filter_map(|d| me.state_of(d, &d.name().ok()?).ok()).collect())
        })
        .await
    }

    /// Counters of every running VM of the agent's (name, counters).
    pub async fn counters(&self) -> Result<Vec<(String, Counters)>, VmError> {
        self.blocking(|me, c| {
            let doms = c.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE).map_err(|e| me.err(e))?;
            let mut out = Vec::new();
            for d in doms {
                let (Ok(name), Ok(info), Ok(xml)) = (d.name(), d.info(), d.xml_desc(0)) else { continue };
                let s = seen(&xml);
                if s.cluster.is_none() {
                    continue;
                }
                let io = if s.tap.is_empty() { None } else { d.interface_stats(&s.tap).ok() };
                out.push((
                    name,
                    Counters {
                        cpu_ns: info.cpu_time,
                        memory_bytes: info.memory * 1024,
                        vcpus: info.nr_virt_cpu,
                        rx_bytes: io.as_ref().map_or(0, |i| i.rx_bytes.max(0) as u64),
                        tx_bytes: io.as_ref().map_or(0, |i| i.tx_bytes.max(0) as u64),
                    },
                ));
            }
            Ok(out)
        })
        .await
    }
}

/// Per-VM usage between two samples `secs` apart (VMs in both samples only).
pub fn usage(before: &[(String, Counters)], after: &[(String, Counters)], secs: f64) -> Vec<VmUsage> {
    after
        .iter()
        .filter_map(|(name, a)| {
            let (_, b) = before.iter().find(|(n, _)| n == name)?;
            Some(VmUsage {
                vm: name.clone(),
                cpu_utilisation: if secs > 0.0 { a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / 1e9 / secs } else { 0.0 },
                memory_bytes: a.memory_bytes,
                dirty_rate_bytes_per_sec: 0,
                net_rx_bytes: a.rx_bytes,
                net_tx_bytes: a.tx_bytes,
                vcpus: a.vcpus,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_between_samples() {
        let c = |cpu_ns, rx| Counters { cpu_ns, memory_bytes: 5, vcpus: 2, rx_bytes: rx, tx_bytes: 1 };
        let before = vec![("a".to_string(), c(1_000_000_000, 10)), ("gone".to_string(), c(0, 0))];
        let after = vec![("a".to_string(), c(2_500_000_000, 30)), ("new".to_string(), c(9, 9))];
        let u = usage(&before, &after, 2.0);
        assert_eq!(u.len(), 1, "only VMs seen twice");
        assert!((u[0].cpu_utilisation - 0.75).abs() < 1e-9);
        assert_eq!((u[0].net_rx_bytes, u[0].vcpus), (30, 2));
    }
}
