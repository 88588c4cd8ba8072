//! Migrations grouped into waves within the per-site and per-link limits.

use std::collections::HashMap;

use super::Move;
use crate::topology::{SiteId, Topology};

/// Groups moves into waves within per-site and per-link limits of concurrent migrations.
pub(super) fn waves(topo: &Topology, moves: &mut [Move]) {
    let mut per_wave_site: Vec<HashMap<SiteId, u32>> = Vec::new();
    let mut per_wave_link: Vec<HashMap<(SiteId, SiteId), u32>> = Vec::new();
    for m in moves.iter_mut() {
        let (a, b) = (topo.site_of_host(m.from), topo.site_of_host(m.to));
        let link = (a.min(b), a.max(b));
        let link_limit = if a == b { u32::MAX } else { topo.link(a, b).map(|l| l.max_concurrent_migrations).unwrap_or(1) };
        let mut w = 0;
        loop {
            if per_wave_site.len() <= w {
                per_wave_site.push(HashMap::new());
                per_wave_link.push(HashMap::new());
            }
            let sa = per_wave_site[w].get(&a).copied().unwrap_or(0);
            let sb = per_wave_site[w].get(&b).copied().unwrap_or(0);
            let l = per_wave_link[w].get(&link).copied().unwrap_or(0);
            if sa < topo.sites[a].max_concurrent_migrations.max(1) && sb < topo.sites[b].max_concurrent_migrations.max(1) && l < link_limit
            {
                *per_wave_site[w].entry(a).or_default() += 1;
                if b != a {
                    *per_wave_site[w].entry(b).or_default() += 1;
                }
                *per_wave_link[w].entry(link).or_default() += 1;
                m.wave = u32::try_from(w).unwrap_or(u32::MAX);
                break;
            }
            w += 1;
        }
    }
}
