//! How big one call of a collective is.

/// The two sizes the algorithms move: `msg` is the message of a broadcast or reduction, the
/// whole vector of an allreduce, scan or reduce-scatter, and the whole buffer of a gather,
/// scatter or allgather (every rank's block) or of one rank's all-to-all (a block per
/// rank); `block` is one rank's share of it: what a rank contributes to a gather, gets from
/// a scatter, or sends each other rank in an all-to-all. In bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub msg: f64,
    pub block: f64,
}

impl Size {
    /// From the message (or whole buffer) among `n` ranks: a block is its n-th part.
    pub fn of_message(msg: f64, n: usize) -> Size {
        Size { msg, block: msg / n.max(1) as f64 }
    }

    /// From one rank's block among `n` ranks: the whole buffer is n blocks.
    pub fn of_block(block: f64, n: usize) -> Size {
        Size { msg: block * n as f64, block }
    }
}
