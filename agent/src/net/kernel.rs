//! The kernel side, through netlink (rtnetlink): reads the host's share of the fabric back
//! (only links named with straddle's prefixes, and their forwarding entries that point at a
//! tunnel endpoint) and carries out a plan, action by action. The first failure stops the
//! plan and names the action; what was done before it stays, and the next `ensure` plans
//! from there (every action is idempotent against a fresh read).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use futures_util::stream::TryStreamExt;
use futures_util::StreamExt;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVlan, LinkVxlan};

use super::addressing::Mac;
use super::plan::{plan, Action};
use super::state::{ours, Fdb, HostState, Kind, Link};

/// A netlink failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {why}")]
pub struct NetError {
    pub doing: String,
    pub why: String,
}

fn failed(doing: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let doing = doing.into();
    move |e| NetError { doing, why: e.to_string() }
}

/// The host's network, through one netlink connection.
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens a netlink connection in the current network namespace and drives it on the
    /// current tokio runtime.
    pub fn connect() -> Result<Kernel, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| NetError { doing: "open netlink".into(), why: e.to_string() })?;
        tokio::spawn(conn);
        Ok(Kernel { handle })
    }

    async fn links(&self) -> Result<Vec<LinkMessage>, NetError> {
        self.handle.link().get().execute().try_collect().await.map_err(failed("list links"))
    }

    async fn index(&self, name: &str) -> Result<u32, NetError> {
        let msgs = self.links().await?;
        msgs.iter()
            .find(|m| name_of(m) == Some(name))
            .map(|m| m.header.index)
            .ok_or_else(|| NetError { doing: format!("find link {name}"), why: "no such link".into() })
    }

    /// What exists of the agent's objects.
    pub async fn read(&self) -> Result<HostState, NetError> {
        let msgs = self.links().await?;
        let names: HashMap<u32, String> = msgs.iter().filter_map(|m| Some((m.header.index, name_of(m)?.to_string()))).collect();
        let mut out = HostState::default();
        let mut vxlans: HashMap<u32, String> = HashMap::new();
        for m in &msgs {
            let Some(name) = name_of(m).filter(|n| ours(n)) else { continue };
            let mut mtu = 0;
            let mut master = None;
            let mut kind = Kind::Other;
            for a in &m.attributes {
                match a {
                    LinkAttribute::Mtu(v) => mtu = *v,
                    LinkAttribute::Controller(i) => master = names.get(i).cloned(),
                    LinkAttribute::LinkInfo(infos) => kind = kind_of(infos),
                    _ => {}
                }
            }
            if matches!(kind, Kind::Vxlan { .. }) {
                vxlans.insert(m.header.index, name.to_string());
                out.fdb.insert(name.to_string(), BTreeSet::new());
            }
            out.links.insert(name.to_string(), Link { kind, mtu, master, up: m.header.flags.contains(LinkFlags::Up) });
        }
        let mut req = self.handle.neighbours().get();
        req.message_mut().header.family = AddressFamily::Bridge;
        let entries: Vec<NeighbourMessage> = req.execute().try_collect().await.map_err(failed("list forwarding entries"))?;
        for n in entries {
            let Some(dev) = vxlans.get(&n.header.ifindex) else { continue };
            let mut mac = None;
            let mut dst = None;
            for a in &n.attributes {
                match a {
                    NeighbourAttribute::LinkLocalAddress(l) if l.len() == 6 => mac = Some(Mac([l[0], l[1], l[2], l[3], l[4], l[5]])),
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => dst = Some(*ip),
                    // In a bridge-family message the address comes unparsed.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
                        dst = Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                    }
                    _ => {}
                }
            }
            if let (Some(mac), Some(dst)) = (mac, dst) {
                out.fdb.entry(dev.clone()).or_default().insert(Fdb { mac, dst });
            }
        }
        Ok(out)
    }

    /// Carries out `actions` in order; stops at the first failure.
    pub async fn apply(&self, actions: &[Action]) -> Result<(), NetError> {
        for a in actions {
            self.one(a).await?;
        }
        Ok(())
    }

    /// Gives link `name` an IPv4 address and an MTU, and brings it up (a tunnel's device).
    pub async fn configure(&self, name: &str, addr: Ipv4Addr, prefix: u8, mtu: u32) -> Result<(), NetError> {
        let i = self.index(name).await?;
        let link = self.handle.link();
        link.set(LinkUnspec::new_with_index(i).mtu(mtu).up().build()).execute().await.map_err(failed(format!("{name}: mtu {mtu}, up")))?;
        self.handle.address().add(i, addr.into(), prefix).execute().await.map_err(failed(format!("{name}: address {addr}/{prefix}")))
    }

    /// Reads, plans towards `want`, applies; answers what was changed.
    pub async fn ensure(&self, want: &HostState) -> Result<Vec<Action>, NetError> {
        let have = self.read().await?;
        let actions = plan(&have, want);
        self.apply(&actions).await?;
        Ok(actions)
    }

    async fn one(&self, a: &Action) -> Result<(), NetError> {
        let doing = format!("{a:?}");
        let link = self.handle.link();
        match a {
            Action::AddBridge { name, mtu } => link.add(LinkBridge::new(name).mtu(*mtu).build()).execute().await.map_err(failed(doing)),
            Action::AddVxlan { name, vni, local, port, mtu } => link
                .add(LinkVxlan::new(name, *vni).local(*local).port(*port).learning(false).mtu(*mtu).build())
                .execute()
                .await
                .map_err(failed(doing)),
            Action::DelLink { name } => {
                let i = self.index(name).await?;
                link.del(i).execute().await.map_err(failed(doing))
            }
            Action::SetMtu { name, mtu } => {
                let i = self.index(name).await?;
                link.set(LinkUnspec::new_with_index(i).mtu(*mtu).build()).execute().await.map_err(failed(doing))
            }
            Action::SetMaster { name, master } => {
                let (i, m) = (self.index(name).await?, self.index(master).await?);
                link.set(LinkUnspec::new_with_index(i).controller(m).build()).execute().await.map_err(failed(doing))
            }
            Action::Up { name } => {
                let i = self.index(name).await?;
                link.set(LinkUnspec::new_with_index(i).up().build()).execute().await.map_err(failed(doing))
            }
            Action::AddFdb { dev, entry } => self.fdb(dev, entry, true).await.map_err(failed(doing)),
            Action::DelFdb { dev, entry } => self.fdb(dev, entry, false).await.map_err(failed(doing)),
        }
    }

    /// Adds or removes one forwarding entry of a VXLAN device (`bridge fdb append|del`).
    /// Flooding entries (all-zeros MAC) are appended, one per remote endpoint; a member's
    /// entry replaces any other for its MAC.
    async fn fdb(&self, dev: &str, e: &Fdb, add: bool) -> Result<(), rtnetlink::Error> {
        let index = self.index(dev).await.map_err(|_| rtnetlink::Error::RequestFailed)?;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = index;
        m.header.state = NeighbourState::Permanent;
        m.header.flags = NeighbourFlags::Own;
        m.attributes.push(NeighbourAttribute::LinkLocalAddress(e.mac.0.to_vec()));
        m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(e.dst)));
        let (msg, flags) = if add {
            let how = if e.mac == Mac::ZERO { NLM_F_APPEND } else { NLM_F_REPLACE };
            (RouteNetlinkMessage::NewNeighbour(m), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | how)
        } else {
            (RouteNetlinkMessage::DelNeighbour(m), NLM_F_REQUEST | NLM_F_ACK)
        };
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        let mut h = self.handle.clone();
        let mut resp = h.request(req)?;
        while let Some(r) = resp.next().await {
            if let NetlinkPayload::Error(err) = r.payload {
                return Err(rtnetlink::Error::NetlinkError(err));
            }
        }
        Ok(())
    }
}

fn name_of(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.as_str()) } else { None })
}

fn kind_of(infos: &[LinkInfo]) -> Kind {
    let mut kind = Kind::Other;
    for i in infos {
        match i {
            LinkInfo::Kind(InfoKind::Bridge) => kind = Kind::Bridge,
            LinkInfo::Data(InfoData::Vxlan(v)) => {
                let (mut vni, mut local, mut port) = (0, Ipv4Addr::UNSPECIFIED, 0);
                for x in v {
                    match x {
                        InfoVxlan::Id(i) => vni = *i,
                        InfoVxlan::Local(a) => local = *a,
                        InfoVxlan::Port(p) => port = *p,
                        _ => {}
                    }
                }
                kind = Kind::Vxlan { vni, local, port };
            }
            _ => {}
        }
    }
    kind
}

/// What this kernel can build, probed by making (and removing) a throw-away link of each
/// kind; each entry is `None` when it works, else why not.
#[derive(Debug)]
pub struct Features {
    pub bridge: Option<String>,
    pub vxlan: Option<String>,
    /// 802.1q tagging: not needed (segments are VXLAN inside sites too), but reported.
    pub vlan: Option<String>,
}

impl Features {
    /// What the fabric cannot do without (bridges, VXLAN).
    pub fn missing(&self) -> Vec<String> {
        [("bridge", &self.bridge), ("vxlan", &self.vxlan)].iter().filter_map(|(k, w)| w.as_ref().map(|w| format!("{k}: {w}"))).collect()
    }
}

/// Probes the kernel's link kinds.
pub async fn features(k: &Kernel) -> Features {
    let link = k.handle.link();
    let probe = "svx0probe";
    let try_add = |msg: LinkMessage| {
        let link = k.handle.link();
        async move { link.add(msg).execute().await.err().map(|e| e.to_string()) }
    };
    let bridge = try_add(LinkBridge::new(probe).build()).await;
    // A VLAN on the probe bridge, when there is one.
    let vlan = match (&bridge, k.index(probe).await) {
        (None, Ok(i)) => try_add(LinkVlan::new("svx0probev", i, 10).build()).await,
        _ => Some("no bridge to probe on".into()),
    };
    if let Ok(i) = k.index(probe).await {
        let _ = link.del(i).execute().await;
    }
    let vxlan = try_add(LinkVxlan::new(probe, 1).port(4789).learning(false).local(Ipv4Addr::LOCALHOST).build()).await;
    if let Ok(i) = k.index(probe).await {
        let _ = link.del(i).execute().await;
    }
    Features { bridge, vxlan, vlan }
}
