//! A libvirt daemon per site, in the site's network namespace and in mount and UTS
//! namespaces of its own (its own /etc/libvirt, /run/libvirt, /var/lib/libvirt, … bound
//! from the bed's folder, its own hostname and host UUID, so two sites are two hosts to
//! libvirt and can migrate between each other). Guests run under TCG (`type='qemu'`,
//! `qemu64`): this machine's /dev/kvm cannot run guests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{sh, Bed, BedError};

/// The folders libvirt keeps per host; each site gets its own copy.
const LIBVIRT_DIRS: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("log", "/var/log/libvirt"),
    ("cache", "/var/cache/libvirt"),
];

pub struct LibvirtSite {
    pub site: usize,
    pub dir: PathBuf,
    /// Local client URI (the daemon's unix socket).
    pub uri: String,
    /// What another site's daemon uses to reach this one (plain TCP, tests only).
    pub tcp_uri: String,
    pub address: String,
    daemon: Child,
}

fn uuid_for(prefix: &str, site: usize) -> String {
    // Distinct and stable per bed and site; libvirt refuses to migrate between equal UUIDs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{prefix}/{site}").bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", h >> 32, (h >> 16) & 0xffff, h & 0xfff, (h >> 20) & 0xfff, h & 0xffff_ffff_ffff)
}

impl LibvirtSite {
    /// Starts site `site`'s daemon and waits until it answers.
    pub fn start(bed: &Bed, site: usize) -> Result<LibvirtSite, BedError> {
        let name = &bed.spec.sites[site].name;
        let dir = bed.dir.join(format!("libvirt-{name}"));
        for (sub, host) in LIBVIRT_DIRS {
            std::fs::create_dir_all(dir.join(sub))?;
            std::fs::create_dir_all(host)?;
        }
        sh(&["cp", "-a", "/etc/libvirt/.", dir.join("etc").to_str().unwrap()])?;
        std::fs::write(
            dir.join("etc/libvirtd.conf"),
            format!(
                "listen_tls = 0\nlisten_tcp = 1\nauth_tcp = \"none\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
                 host_uuid = \"{}\"\nlog_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n",
                uuid_for(&bed.spec.prefix, site)
            ),
        )?;
        std::fs::write(
            dir.join("etc/qemu.conf"),
            "user = \"root\"\ngroup = \"root\"\ndynamic_ownership = 0\nsecurity_driver = \"none\"\n\
             cgroup_controllers = [ ]\nnamespaces = [ ]\nstdio_handler = \"file\"\n",
        )?;
        let mut script = format!("hostname {}-host-{name}\n", bed.spec.prefix);
        for (sub, host) in LIBVIRT_DIRS {
            script.push_str(&format!("mount --bind '{}' '{host}'\n", dir.join(sub).display()));
        }
        // Its own pid file too: the default /run/libvirtd.pid would be shared by all sites.
        script.push_str("exec libvirtd --listen --pid-file /run/libvirt/libvirtd.pid\n");
        let log = std::fs::File::create(dir.join("daemon.out"))?;
        let daemon = Command::new("ip")
            .args(["netns", "exec", &bed.site_ns(site), "unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let address = bed.site_address(site);
        let s = LibvirtSite {
            site,
            uri: format!("qemu+unix:///system?socket={}", dir.join("run/libvirt-sock").display()),
            tcp_uri: format!("qemu+tcp://{address}/system"),
            address,
            dir,
            daemon,
        };
        let start = Instant::now();
        loop {
            if s.virsh(&["version"]).is_ok() {
                return Ok(s);
            }
            if start.elapsed() > Duration::from_secs(30) {
                let out = std::fs::read_to_string(s.dir.join("daemon.out")).unwrap_or_default();
                return Err(BedError::Command { cmd: format!("libvirtd for site {name}"), stderr: format!("no answer in 30 s: {out}") });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn virsh(&self, args: &[&str]) -> Result<String, BedError> {
        let mut a = vec!["virsh", "-c", &self.uri];
        a.extend_from_slice(args);
        sh(&a)
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.id()
    }

    /// Kills the daemon with SIGKILL, as a crash would; the guests it started keep running.
    pub fn kill_daemon(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }

    /// Defines and starts a tiny guest on this site's bridge; its serial console goes to
    /// `<dir>/<name>.console`.
    pub fn boot(&self, g: &GuestSpec) -> Result<PathBuf, BedError> {
        let console = self.dir.join(format!("{}.console", g.name));
        // The product's domain XML (the agent's), on the site's own bridge and without the
        // agent's metadata: the agent leaves these guests alone.
        let (kernel, initrd, console_path) =
            (g.kernel.display().to_string(), g.initrd.display().to_string(), console.display().to_string());
        let xml = straddle_agent::vm::domain::Domain {
            domain_type: "qemu",
            name: &g.name,
            memory_mib: g.memory_mib,
            vcpus: 1,
            kernel: &kernel,
            initrd: &initrd,
            cmdline: format!(
                "straddle.name={} straddle.ip={} straddle.report={} straddle.dirty={} straddle.touch={} straddle.beat={}",
                g.name, g.ip, g.report, g.dirty_mib, g.touch_mib, g.beat
            ),
            bridge: "br0".into(),
            mac: g.mac.clone(),
            console: &console_path,
            cluster: None,
        }
        .xml();
        let path = self.dir.join(format!("{}.xml", g.name));
        std::fs::write(&path, xml)?;
        self.virsh(&["define", path.to_str().unwrap()])?;
        self.virsh(&["start", &g.name])?;
        Ok(console)
    }
}

impl Drop for LibvirtSite {
    fn drop(&mut self) {
        // Guests are children of the daemon in the site namespace; the bed's teardown kills
        // everything there. Stop the daemon itself now.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub name: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Address and prefix on the cluster segment, e.g. `10.77.0.100/16`.
    pub ip: String,
    /// `host:port` the guest's init reports to.
    pub report: String,
    pub mac: String,
    pub memory_mib: u32,
    /// MiB the guest rewrites over and over (0: an idle guest).
    pub dirty_mib: u32,
    /// MiB whose every page the guest dirties as fast as its CPU goes (0: none).
    pub touch_mib: u32,
    /// `host:port` the guest's heartbeat goes to (empty: none).
    pub beat: String,
}

/// Runs `f` on this thread inside a site's network namespace (sockets it makes stay
/// there), then comes back.
pub fn in_site<T>(bed: &Bed, site: usize, f: impl FnOnce() -> T) -> Result<T, BedError> {
    super::in_netns(&bed.site_ns(site), f)
}

/// Listens inside a site's network namespace for one report from a guest.
pub fn listen_in(bed: &Bed, site: usize, port: u16) -> Result<TcpListener, BedError> {
    let addr = bed.site_address(site);
    Ok(in_site(bed, site, || TcpListener::bind((addr.as_str(), port)))??)
}

/// Waits for one connection on `l` and returns what it sent.
pub fn receive(l: &TcpListener, timeout: Duration) -> Result<String, BedError> {
    l.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match l.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                let _ = s.flush();
                return Ok(text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > timeout {
                    return Err(BedError::Command { cmd: "wait for a guest report".into(), stderr: format!("nothing in {timeout:?}") });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
