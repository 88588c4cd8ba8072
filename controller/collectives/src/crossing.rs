//! What a call's rounds move between sites.

use crate::{visit, Alg, Msg, Op, Size};

/// What one call does across sites: the rounds in which some message crosses (each a WAN
/// latency on the critical path), and the messages and bytes that cross in all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Crossing {
    pub rounds: usize,
    pub messages: usize,
    pub bytes: f64,
}

/// The crossing of `rounds` when `site[i]` is the site of communicator rank i.
pub fn crossing(rounds: &[Vec<Msg>], site: &[usize]) -> Crossing {
    let mut c = Crossing::default();
    for r in rounds {
        let before = c.messages;
        for &(from, to, b) in r {
            if site[from] != site[to] {
                c.messages += 1;
                c.bytes += b;
            }
        }
        c.rounds += usize::from(c.messages > before);
    }
    c
}

/// The crossing of one call of `op` run with `alg`, counted without building its rounds
/// or allocating (the shim asks per call): [`visit`] hands each round's messages over
/// together, so a round that crosses is counted when its first crossing message comes.
pub fn library_crossing(op: Op, alg: Alg, site: &[usize], root: usize, size: Size) -> Crossing {
    let mut c = Crossing::default();
    let mut last_crossed: Option<usize> = None;
    visit(op, alg, site.len(), root, size, &mut |r, (from, to, b)| {
        if site[from] != site[to] {
            c.messages += 1;
            c.bytes += b;
            if last_crossed != Some(r) {
                last_crossed = Some(r);
                c.rounds += 1;
            }
        }
    });
    c
}

/// What one call moves between each pair of sites.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrossSite {
    /// bytes[a][b] and messages[a][b] from site a to site b (a ≠ b).
    pub bytes: Vec<Vec<f64>>,
    pub messages: Vec<Vec<f64>>,
    /// Rounds with at least one cross-site message: WAN latencies on the critical path.
    pub wan_rounds: usize,
}

/// Site-pair traffic of one call's `rounds`; `site[i]` (below `nsites`) is the site of
/// communicator rank i.
pub fn cross_site(rounds: &[Vec<Msg>], site: &[usize], nsites: usize) -> CrossSite {
    let mut c = CrossSite { bytes: vec![vec![0.0; nsites]; nsites], messages: vec![vec![0.0; nsites]; nsites], wan_rounds: 0 };
    for r in rounds {
        let mut wan = false;
        for &(from, to, b) in r {
            let (a, z) = (site[from], site[to]);
            if a != z {
                c.bytes[a][z] += b;
                c.messages[a][z] += 1.0;
                wan = true;
            }
        }
        c.wan_rounds += usize::from(wan);
    }
    c
}
