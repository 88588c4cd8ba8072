//! A cluster node's libvirt domain, as XML: built from the node's spec (pure), and read
//! back from what libvirt holds (its MAC, bridge and tap device), so a restarted agent
//! recognises its own domains instead of defining them again.

use crate::net::addressing::{cluster_subnet, NodeId};
use crate::net::state::bridge_name;

/// A VM of a virtual cluster, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVm {
    pub name: String,
    pub cluster: String,
    pub id: NodeId,
    pub vni: u32,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub kernel: String,
    pub initrd: String,
    pub cmdline: String,
}

/// What is wrong with a VM spec, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {why}")]
pub struct SpecError {
    pub field: &'static str,
    pub value: String,
    pub why: String,
}

fn bad(field: &'static str, value: impl ToString, why: impl Into<String>) -> SpecError {
    SpecError { field, value: value.to_string(), why: why.into() }
}

/// Characters a domain name, path or kernel argument may carry into the XML unescaped.
fn plain(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+ ".contains(c))
}

impl NodeVm {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        cluster: &str,
        cluster_id: u32,
        vni: u32,
        home_site: u32,
        node: u32,
        memory_mib: u32,
        vcpus: u32,
        kernel: &str,
        initrd: &str,
        cmdline: &str,
    ) -> Result<NodeVm, SpecError> {
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad("name", name, "1 to 64 letters, digits, '-' or '_'"));
        }
        let id = NodeId::new(cluster_id, home_site, node).map_err(|e| SpecError { field: e.field, value: e.value, why: e.why.into() })?;
        if vni == 0 || vni > crate::net::fabric::MAX_VNI {
            return Err(bad("vni", vni, "from 1 to 16777215"));
        }
        if !(16..=1 << 20).contains(&memory_mib) {
            return Err(bad("memory_mib", memory_mib, "from 16 to 1048576"));
        }
        if !(1..=64).contains(&vcpus) {
            return Err(bad("vcpus", vcpus, "from 1 to 64"));
        }
        for (field, path) in [("kernel", kernel), ("initrd", initrd)] {
            if !path.starts_with('/') || !plain(path) {
                return Err(bad(field, path, "an absolute path of plain characters"));
            }
            if !std::path::Path::new(path).is_file() {
                return Err(bad(field, path, "no such file on this host"));
            }
        }
        if !plain(cmdline) {
            return Err(bad("cmdline", cmdline, "letters, digits, spaces and -_./=:,+ only"));
        }
        Ok(NodeVm {
            name: name.into(),
            cluster: cluster.into(),
            id,
            vni,
            memory_mib,
            vcpus,
            kernel: kernel.into(),
            initrd: initrd.into(),
            cmdline: cmdline.into(),
        })
    }

    pub fn bridge(&self) -> String {
        bridge_name(self.vni)
    }

    /// The domain: its NIC on the cluster's bridge with the node's MAC, its address and
    /// name on the kernel command line, the serial console to `console`.
    pub fn domain<'a>(&'a self, domain_type: &'a str, console: &'a str) -> Domain<'a> {
        let (_, prefix) = cluster_subnet(self.id.cluster);
        Domain {
            domain_type,
            name: &self.name,
            memory_mib: self.memory_mib,
            vcpus: self.vcpus,
            kernel: &self.kernel,
            initrd: &self.initrd,
            cmdline: format!(
                "straddle.name={} straddle.ip={}/{prefix} straddle.hostname={} {}",
                self.name,
                self.id.ipv4(),
                self.id.hostname(&self.cluster),
                self.cmdline.trim()
            ),
            bridge: self.bridge(),
            mac: self.id.mac().to_string(),
            console,
            cluster: Some(&self.cluster),
        }
    }

    pub fn xml(&self, domain_type: &str, console: &str) -> String {
        self.domain(domain_type, console).xml()
    }
}

/// A guest booted from a kernel and an initramfs with one NIC on a bridge: the one domain
/// XML of the project (the agent's cluster nodes, and the test bed's guests on its own
/// bridges).
#[derive(Debug, Clone)]
pub struct Domain<'a> {
    /// `qemu` (software emulation) or `kvm`.
    pub domain_type: &'a str,
    pub name: &'a str,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub kernel: &'a str,
    pub initrd: &'a str,
    /// Kernel arguments after the console's.
    pub cmdline: String,
    pub bridge: String,
    pub mac: String,
    pub console: &'a str,
    /// The cluster the agent defines it for (kept in the domain's metadata: what the agent
    /// recognises as its own); `None` for a domain the agent must leave alone.
    pub cluster: Option<&'a str>,
}

impl Domain<'_> {
    pub fn xml(&self) -> String {
        let metadata = match self.cluster {
            Some(c) => format!("\n  <metadata><straddle:node xmlns:straddle='urn:straddle:node:1' cluster='{c}'/></metadata>"),
            None => String::new(),
        };
        format!(
            r#"<domain type='{domain_type}'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{vcpus}</vcpu>{metadata}
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 {cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <interface type='bridge'><source bridge='{bridge}'/><model type='virtio'/><mac address='{mac}'/></interface>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
"#,
            domain_type = self.domain_type,
            name = self.name,
            mem = self.memory_mib,
            vcpus = self.vcpus,
            kernel = self.kernel,
            initrd = self.initrd,
            cmdline = self.cmdline.trim(),
            bridge = self.bridge,
            mac = self.mac,
            console = self.console,
        )
    }
}

/// What the agent reads back from a domain's XML.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    /// The cluster the agent defined it for (`None`: not one of the agent's domains).
    pub cluster: Option<String>,
    pub mac: String,
    pub bridge: String,
    /// The tap device libvirt plugged into the bridge (running domains only).
    pub tap: String,
}

/// The value of `attr='…'` (or `"…"`) in the first element of `text` that starts with `tag`.
fn attr(text: &str, tag: &str, attr: &str) -> Option<String> {
    let start = text.find(tag)?;
    let elem = &text[start..start + text[start..].find('>')?];
    let at = elem.find(&format!("{attr}="))? + attr.len() + 1;
    let quote = elem[at..].chars().next()?;
    let rest = &elem[at + 1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Reads a domain's XML (as libvirt prints it).
pub fn seen(xml: &str) -> Seen {
    let nic = xml.find("<interface").map(|i| &xml[i..]).unwrap_or("");
    Seen {
        cluster: attr(xml, "<straddle:node", "cluster"),
        mac: attr(nic, "<mac ", "address").unwrap_or_default(),
        bridge: attr(nic, "<source ", "bridge").unwrap_or_default(),
        tap: attr(nic, "<target ", "dev").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> NodeVm {
        NodeVm::new("red-n1", "red", 1, 101, 2, 7, 128, 1, "/proc/self/exe", "/proc/self/exe", "straddle.beat=x:1").unwrap()
    }

    #[test]
    fn the_xml_carries_the_nodes_addresses_and_reads_back() {
        let v = vm();
        let x = v.xml("qemu", "/tmp/c");
        assert!(x.contains("<mac address='02:53:00:01:02:07'/>"), "{x}");
        assert!(x.contains("straddle.ip=10.1.2.7/16 straddle.hostname=red-s2-n7 straddle.beat=x:1"), "{x}");
        assert!(x.contains("<source bridge='sbr101'/>"));
        // libvirt prints it back with double quotes and the tap it made.
        let live = x.replace('\'', "\"").replace("<model type=\"virtio\"/>", "<target dev=\"vnet3\"/><model type=\"virtio\"/>");
        assert_eq!(
            seen(&live),
            Seen { cluster: Some("red".into()), mac: "02:53:00:01:02:07".into(), bridge: "sbr101".into(), tap: "vnet3".into() }
        );
        assert_eq!(seen("<domain><name>other</name></domain>").cluster, None);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let e = |r: Result<NodeVm, SpecError>| r.unwrap_err().field;
        let ok = "/proc/self/exe";
        assert_eq!(e(NodeVm::new("a b", "red", 1, 101, 0, 1, 128, 1, ok, ok, "")), "name");
        assert_eq!(e(NodeVm::new("a", "red", 0, 101, 0, 1, 128, 1, ok, ok, "")), "cluster");
        assert_eq!(e(NodeVm::new("a", "red", 1, 101, 0, 255, 128, 1, ok, ok, "")), "node");
        assert_eq!(e(NodeVm::new("a", "red", 1, 0, 0, 1, 128, 1, ok, ok, "")), "vni");
        assert_eq!(e(NodeVm::new("a", "red", 1, 101, 0, 1, 1, 1, ok, ok, "")), "memory_mib");
        assert_eq!(e(NodeVm::new("a", "red", 1, 101, 0, 1, 128, 1, "/nonexistent/k", ok, "")), "kernel");
        assert_eq!(e(NodeVm::new("a", "red", 1, 101, 0, 1, 128, 1, ok, ok, "x'><devices>")), "cmdline");
    }
}
