//! From what exists to what should: the ordered kernel changes, pure. Applying the plan and
//! planning again yields nothing (idempotence), so an agent that restarts reads the host,
//! plans, and changes only what differs — nothing is duplicated, nothing that is right is
//! torn down and rebuilt (the data path keeps running).
//!
//! Order: stale forwarding entries go first (traffic stops going to a host the VM left),
//! then links to remove or replace (VXLAN devices before their bridges), then new bridges,
//! new VXLAN devices, their settings, and last the new forwarding entries.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::state::{Fdb, HostState, Kind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    DelFdb { dev: String, entry: Fdb },
    DelLink { name: String },
    AddBridge { name: String, mtu: u32 },
    AddVxlan { name: String, vni: u32, local: Ipv4Addr, port: u16, mtu: u32 },
    SetMtu { name: String, mtu: u32 },
    SetMaster { name: String, master: String },
    Up { name: String },
    AddFdb { dev: String, entry: Fdb },
}

/// The changes that turn `have` into `want`.
pub fn plan(have: &HostState, want: &HostState) -> Vec<Action> {
    let mut del_fdb = Vec::new();
    let mut del_link = Vec::new();
    let mut add = Vec::new();
    let mut settings = Vec::new();
    let mut add_fdb = Vec::new();
    // Links that exist but must not, or must be rebuilt (a VXLAN device's VNI, address or
    // port cannot change in place).
    let mut rebuilt = BTreeSet::new();
    for (name, h) in &have.links {
        match want.links.get(name) {
            None => del_link.push(name.clone()),
            Some(w) if w.kind != h.kind => {
                del_link.push(name.clone());
                rebuilt.insert(name.clone());
            }
            Some(_) => {}
        }
    }
    // VXLAN devices before bridges: a bridge goes once nothing is enslaved to it.
    del_link.sort_by_key(|n| (!n.starts_with(super::state::VXLAN_PREFIX), n.clone()));
    // New links and the settings of every wanted link.
    for (name, w) in
        want.links.iter().filter(|(_, l)| l.kind == Kind::Bridge).chain(want.links.iter().filter(|(_, l)| l.kind != Kind::Bridge))
    {
        let existing = have.links.get(name).filter(|_| !rebuilt.contains(name));
        match (existing, &w.kind) {
            (None, Kind::Bridge) => add.push(Action::AddBridge { name: name.clone(), mtu: w.mtu }),
            (None, Kind::Vxlan { vni, local, port }) => {
                add.push(Action::AddVxlan { name: name.clone(), vni: *vni, local: *local, port: *port, mtu: w.mtu })
            }
            // Never wanted: nothing to build.
            (None, Kind::Other) => {}
            (Some(h), _) if h.mtu != w.mtu => settings.push(Action::SetMtu { name: name.clone(), mtu: w.mtu }),
            _ => {}
        }
        if let Some(m) = &w.master {
            if existing.and_then(|h| h.master.as_ref()) != Some(m) {
                settings.push(Action::SetMaster { name: name.clone(), master: m.clone() });
            }
        }
        if w.up && !existing.is_some_and(|h| h.up) {
            settings.push(Action::Up { name: name.clone() });
        }
    }
    // Forwarding entries, per VXLAN device.
    let none = BTreeSet::new();
    for dev in have.fdb.keys().chain(want.fdb.keys()).collect::<BTreeSet<_>>() {
        let gone = !want.links.contains_key(dev) || rebuilt.contains(dev);
        let h = if rebuilt.contains(dev) { &none } else { have.fdb.get(dev).unwrap_or(&none) };
        let w = want.fdb.get(dev).unwrap_or(&none);
        if !gone {
            del_fdb.extend(h.difference(w).map(|e| Action::DelFdb { dev: dev.clone(), entry: *e }));
        }
        add_fdb.extend(w.difference(h).map(|e| Action::AddFdb { dev: dev.clone(), entry: *e }));
    }
    let mut out = del_fdb;
    out.extend(del_link.into_iter().map(|name| Action::DelLink { name }));
    out.extend(add);
    out.extend(settings);
    out.extend(add_fdb);
    out
}

/// What applying `actions` to `have` leaves: the plan's own model of its effects, for the
/// tests (the kernel is read back, never modelled, outside them).
#[cfg(test)]
pub fn apply(have: &HostState, actions: &[Action]) -> HostState {
    use super::state::Link;
    let mut s = have.clone();
    for a in actions {
        match a {
            Action::DelFdb { dev, entry } => {
                if let Some(f) = s.fdb.get_mut(dev) {
                    f.remove(entry);
                }
            }
            Action::DelLink { name } => {
                s.links.remove(name);
                s.fdb.remove(name);
                for l in s.links.values_mut() {
                    if l.master.as_deref() == Some(name) {
                        l.master = None;
                    }
                }
            }
            Action::AddBridge { name, mtu } => {
                s.links.insert(name.clone(), Link { kind: Kind::Bridge, mtu: *mtu, master: None, up: false });
            }
            Action::AddVxlan { name, vni, local, port, mtu } => {
                s.links.insert(
                    name.clone(),
                    Link { kind: Kind::Vxlan { vni: *vni, local: *local, port: *port }, mtu: *mtu, master: None, up: false },
                );
                s.fdb.insert(name.clone(), BTreeSet::new());
            }
            Action::SetMtu { name, mtu } => {
                if let Some(l) = s.links.get_mut(name) {
                    l.mtu = *mtu;
                }
            }
            Action::SetMaster { name, master } => {
                if let Some(l) = s.links.get_mut(name) {
                    l.master = Some(master.clone());
                }
            }
            Action::Up { name } => {
                if let Some(l) = s.links.get_mut(name) {
                    l.up = true;
                }
            }
            Action::AddFdb { dev, entry } => {
                s.fdb.entry(dev.clone()).or_default().insert(*entry);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::fabric::tests::fabric;
    use super::super::state::desired;
    use super::*;

    #[test]
    fn from_nothing_everything_is_built_in_order_and_once() {
        let f = fabric();
        let want = desired(&f, "h1").unwrap();
        let p = plan(&HostState::default(), &want);
        let pos = |pred: &dyn Fn(&Action) -> bool| p.iter().position(pred).unwrap();
        assert!(
            pos(&|a| matches!(a, Action::AddBridge { name, .. } if name == "sbr101"))
                < pos(&|a| matches!(a, Action::AddVxlan { name, .. } if name == "svx101"))
        );
        assert!(pos(&|a| matches!(a, Action::SetMaster { name, .. } if name == "svx101")) < pos(&|a| matches!(a, Action::AddFdb { .. })));
        assert_eq!(apply(&HostState::default(), &p), want);
        // Planning again on the result changes nothing.
        assert_eq!(plan(&want, &want), vec![]);
    }

    #[test]
    fn a_member_moving_moves_only_its_entry() {
        let mut f = fabric();
        let before = desired(&f, "h1").unwrap();
        // red's member on h2 moves to h3: on h1 its entry now points at h3, h3 joins the
        // flood list, and nothing else changes.
        f.members[1].host = "h3".into();
        let after = desired(&f, "h1").unwrap();
        let p = plan(&before, &after);
        assert!(p.iter().all(|a| matches!(a, Action::DelFdb { .. } | Action::AddFdb { .. })), "{p:?}");
        assert_eq!(p.iter().filter(|a| matches!(a, Action::DelFdb { .. })).count(), 2, "{p:?}");
        assert_eq!(apply(&before, &p), after);
    }

    #[test]
    fn teardown_removes_vxlan_devices_before_bridges_and_leaves_nothing() {
        let f = fabric();
        let have = desired(&f, "h1").unwrap();
        let p = plan(&have, &HostState::default());
        let names: Vec<&str> = p.iter().filter_map(|a| if let Action::DelLink { name } = a { Some(name.as_str()) } else { None }).collect();
        assert_eq!(names, ["svx101", "svx102", "sbr101", "sbr102"]);
        assert!(!p.iter().any(|a| matches!(a, Action::DelFdb { .. })), "entries go with their device: {p:?}");
        assert_eq!(apply(&have, &p), HostState::default());
    }

    #[test]
    fn a_device_with_the_wrong_vni_is_rebuilt_and_drifted_settings_fixed() {
        let f = fabric();
        let want = desired(&f, "h1").unwrap();
        let mut have = want.clone();
        have.links.get_mut("svx101").unwrap().kind = Kind::Vxlan { vni: 999, local: "192.0.2.1".parse().unwrap(), port: 8472 };
        have.links.get_mut("sbr102").unwrap().mtu = 1500;
        have.links.get_mut("svx102").unwrap().up = false;
        let p = plan(&have, &want);
        assert!(p.contains(&Action::DelLink { name: "svx101".into() }));
        assert!(p.iter().any(|a| matches!(a, Action::AddVxlan { name, vni: 101, port: 4789, .. } if name == "svx101")));
        assert!(p.contains(&Action::SetMtu { name: "sbr102".into(), mtu: 1450 }));
        assert!(p.contains(&Action::Up { name: "svx102".into() }));
        assert_eq!(apply(&have, &p), want);
        assert_eq!(plan(&apply(&have, &p), &want), vec![]);
    }
}
