//! At start, what the hypervisor runs against what the topology and the kept placements
//! say. A VM placed on a host that answers, and run by no host that answers, is refused by
//! name (the controller would plan moves of a VM that is not there); a host that does not
//! answer is reported, and the VMs placed on it are taken as placed; a VM running on
//! another host than the kept placement is adopted where it runs (moved by hand while the
//! controller was down).

use crate::hypervisor::{HostRef, Hypervisor};
use crate::plane::ControlPlane;

/// What the survey found.
#[derive(Debug, Default, PartialEq)]
pub struct Survey {
    /// Hosts that did not answer: (host, why).
    pub unreachable: Vec<(String, String)>,
    /// VMs of the topology no answering host runs.
    pub missing: Vec<String>,
    /// VMs found on another host than placed: (vm, placed on, runs on).
    pub elsewhere: Vec<(String, String, String)>,
}

impl Survey {
    /// The refusal to start, when there is one: VMs missing.
    pub fn refusal(&self, hosts: &[HostRef]) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let answered: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).filter(|h| !self.unreachable.iter().any(|(u, _)| u == h)).collect();
        let silent: Vec<&str> = self.unreachable.iter().map(|(h, _)| h.as_str()).collect();
        Some(format!(
            "the topology's VM{} {} run{} on no host (asked {}{})",
            if self.missing.len() == 1 { "" } else { "s" },
            self.missing.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "),
            if self.missing.len() == 1 { "s" } else { "" },
            answered.join(", "),
            if silent.is_empty() { String::new() } else { format!("; {} did not answer", silent.join(", ")) }
        ))
    }
}

/// Asks every host what it runs and compares with the plane's placements.
pub async fn survey(hv: &dyn Hypervisor, plane: &ControlPlane) -> Survey {
    let topo = &plane.topo;
    let hosts: Vec<HostRef> = topo.hosts.iter().map(HostRef::of).collect();
    let mut out = Survey::default();
    // runs[v]: the host running VM v, if any answering host does.
    let mut runs: Vec<Option<usize>> = vec![None; topo.vms.len()];
    for (h, host) in hosts.iter().enumerate() {
        match hv.inventory(host).await {
            Ok(vms) => {
                for s in vms.iter().filter(|s| s.running) {
                    if let Some(v) = topo.vm(&s.name) {
                        runs[v] = Some(h);
                    }
                }
            }
            Err(e) => out.unreachable.push((host.name.clone(), e.to_string())),
        }
    }
    let placed = plane.read(|st| st.vm_host.clone());
    for (v, vm) in topo.vms.iter().enumerate() {
        match runs[v] {
            None => {
                // On an unreachable host it may well run where it was placed.
                let placed_on = &topo.hosts[placed[v]].name;
                if !out.unreachable.iter().any(|(h, _)| h == placed_on) {
                    out.missing.push(vm.name.clone());
                }
            }
            Some(h) if h != placed[v] => {
                out.elsewhere.push((vm.name.clone(), topo.hosts[placed[v]].name.clone(), topo.hosts[h].name.clone()));
            }
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<HostRef> {
        ["he", "hw"].iter().map(|n| HostRef { name: n.to_string(), ..HostRef::default() }).collect()
    }

    #[test]
    fn missing_vms_are_refused_by_name() {
        let mut s = Survey { missing: vec!["g3".into()], ..Survey::default() };
        assert_eq!(s.refusal(&hosts()).unwrap(), "the topology's VM \"g3\" runs on no host (asked he, hw)");
        s.unreachable.push(("hw".into(), "down".into()));
        s.missing.push("g4".into());
        assert_eq!(s.refusal(&hosts()).unwrap(), "the topology's VMs \"g3\", \"g4\" run on no host (asked he; hw did not answer)");
        assert_eq!(Survey::default().refusal(&hosts()), None);
    }
}
