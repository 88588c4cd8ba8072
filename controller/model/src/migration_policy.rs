//! How a running live migration is steered from what the hypervisor reports, in the spirit
//! of Nova's and KubeVirt's policies but driven by measurement: a completion deadline from
//! the bytes to send and the bandwidth actually measured (not a fixed seconds-per-GiB);
//! progress judged per pre-copy pass (libvirt's remaining-bytes figure rises and falls in a
//! saw tooth within a pass, so single samples say nothing); the allowed downtime raised in
//! steps to a ceiling when passes stop shrinking; then abort. Pure: the backend feeds it
//! samples and carries out what it answers.

use crate::migration::precopy;

/// The policy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// The downtime allowed at first (libvirt's default is 300 ms).
    pub initial_downtime_s: f64,
    /// The most downtime the policy will allow.
    pub max_downtime_s: f64,
    /// Steps from the first downtime to the ceiling (geometric).
    pub downtime_steps: u32,
    /// Passes in a row that fail to shrink the dirty set by `min_shrink` before a step.
    pub stalled_passes: u32,
    /// A pass "shrinks" when it is at most this fraction of the pass before it.
    pub min_shrink: f64,
    /// The deadline is this many times the pre-copy estimate at the measured bandwidth...
    pub deadline_factor: f64,
    /// ... and never under this.
    pub deadline_floor_s: f64,
    /// Seconds of copying before the measured bandwidth replaces the planned one.
    pub measure_after_s: f64,
    /// Seconds without a byte moved after which the stream is taken as dead (a cut link:
    /// TCP would retry for many minutes).
    pub stall_s: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            initial_downtime_s: 0.3,
            max_downtime_s: 2.0,
            downtime_steps: 3,
            stalled_passes: 2,
            min_shrink: 0.9,
            deadline_factor: 3.0,
            deadline_floor_s: 20.0,
            measure_after_s: 1.0,
            stall_s: 15.0,
        }
    }
}

/// One progress report of a running migration.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub elapsed_s: f64,
    /// Pre-copy pass, from 1 (the first copies all memory).
    pub pass: u32,
    pub remaining_bytes: f64,
    pub transferred_bytes: f64,
    /// What the copy moves per second now (0: not known yet).
    pub bandwidth_bytes_per_s: f64,
    /// What the guest dirties per second (0: not known).
    pub dirty_bytes_per_s: f64,
}

/// What the backend should do after a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Continue,
    /// Allow this much downtime from now on.
    SetDowntime(f64),
    /// Abort the migration, for this reason; the VM stays where it was.
    Abort(String),
}

/// The steering of one migration.
#[derive(Debug, Clone)]
pub struct Policy {
    cfg: PolicyConfig,
    memory_bytes: f64,
    dirty_bytes_per_s: f64,
    deadline_s: f64,
    measured: bool,
    downtime_s: f64,
    step: u32,
    pass: u32,
    /// The size of the current pass (the most remaining seen in it) and of the last one
    /// judged.
    pass_size: f64,
    last_pass_size: Option<f64>,
    stalled: u32,
    /// The most bytes sent so far, and when that figure last grew.
    sent: f64,
    sent_at: Option<f64>,
}

impl Policy {
    /// For a guest of `memory_bytes` dirtying about `dirty_bytes_per_s`, over a path the
    /// planner expects to carry `link_bytes_per_s`.
    pub fn new(cfg: PolicyConfig, memory_bytes: f64, dirty_bytes_per_s: f64, link_bytes_per_s: f64) -> Policy {
        let deadline_s = deadline(&cfg, memory_bytes, dirty_bytes_per_s, link_bytes_per_s);
        let downtime_s = cfg.initial_downtime_s;
        Policy {
            cfg,
            memory_bytes,
            dirty_bytes_per_s,
            deadline_s,
            measured: false,
            downtime_s,
            step: 0,
            pass: 0,
            pass_size: 0.0,
            last_pass_size: None,
            stalled: 0,
            sent: 0.0,
            sent_at: None,
        }
    }

    /// Seconds from the start after which the migration is aborted.
    pub fn deadline_s(&self) -> f64 {
        self.deadline_s
    }

    /// The downtime allowed now.
    pub fn downtime_s(&self) -> f64 {
        self.downtime_s
    }

    /// Takes one sample; answers what to do.
    pub fn observe(&mut self, s: &Sample) -> Action {
        if !self.measured && s.elapsed_s >= self.cfg.measure_after_s && s.bandwidth_bytes_per_s > 0.0 {
            // The deadline from the bandwidth the copy actually gets (and the dirty rate
            // seen, when reported), counted from the start.
            self.measured = true;
            let dirty = if s.dirty_bytes_per_s > 0.0 { s.dirty_bytes_per_s } else { self.dirty_bytes_per_s };
            self.deadline_s = deadline(&self.cfg, self.memory_bytes, dirty, s.bandwidth_bytes_per_s);
        }
        if self.sent_at.is_none() || s.transferred_bytes > self.sent {
            self.sent = self.sent.max(s.transferred_bytes);
            self.sent_at = Some(s.elapsed_s);
        } else if let Some(at) = self.sent_at.filter(|at| s.elapsed_s - at >= self.cfg.stall_s) {
            return Action::Abort(format!(
                "stalled: no bytes moved for {:.1} s (pass {}, {:.1} MiB sent, {:.1} MiB left); the path to the destination looks cut",
                s.elapsed_s - at,
                s.pass,
                self.sent / MIB,
                s.remaining_bytes / MIB
            ));
        }
        if s.elapsed_s > self.deadline_s {
            return Action::Abort(format!(
                "deadline: {:.1} s passed (from {:.0} MiB at the measured bandwidth), pass {}, {:.1} MiB left",
                self.deadline_s,
                self.memory_bytes / MIB,
                s.pass,
                s.remaining_bytes / MIB
            ));
        }
        if s.pass > self.pass {
            // A pass ended: from pass 2 on (pass 1 copies all memory), judge its size
            // against the pass before.
            if self.pass >= 2 {
                let size = self.pass_size;
                match self.last_pass_size {
                    Some(before) if size > self.cfg.min_shrink * before => self.stalled += 1,
                    Some(_) => self.stalled = 0,
                    None => {}
                }
                self.last_pass_size = Some(size);
            }
            self.pass = s.pass;
            self.pass_size = s.remaining_bytes;
            if self.stalled >= self.cfg.stalled_passes {
                self.stalled = 0;
                if self.step >= self.cfg.downtime_steps {
                    return Action::Abort(format!(
                        "not converging: the dirty set stopped shrinking at {:.1} MiB a pass with {:.0} ms of downtime allowed",
                        self.last_pass_size.unwrap_or(0.0) / MIB,
                        self.downtime_s * 1000.0
                    ));
                }
                self.step += 1;
                let ratio = (self.cfg.max_downtime_s / self.cfg.initial_downtime_s).max(1.0);
                self.downtime_s =
                    self.cfg.initial_downtime_s * ratio.powf(f64::from(self.step) / f64::from(self.cfg.downtime_steps.max(1)));
                return Action::SetDowntime(self.downtime_s);
            }
        } else {
            self.pass_size = self.pass_size.max(s.remaining_bytes);
        }
        Action::Continue
    }
}

const MIB: f64 = 1048576.0;

/// The deadline: `deadline_factor` times the pre-copy estimate at `bandwidth` with the
/// most downtime the policy may allow (or, where pre-copy cannot converge, times the
/// first pass), never under the floor.
fn deadline(cfg: &PolicyConfig, memory_bytes: f64, dirty_bytes_per_s: f64, bandwidth: f64) -> f64 {
    let e = precopy(memory_bytes, dirty_bytes_per_s, bandwidth, cfg.max_downtime_s, 30);
    let basis = if e.converges { e.total_s } else { memory_bytes / bandwidth.max(1.0) };
    (cfg.deadline_factor * basis).max(cfg.deadline_floor_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1073741824.0;

    /// Samples of a migration whose passes have these sizes, 4 samples a pass, each pass's
    /// remaining figure falling from its size to a tenth (the saw tooth).
    fn run(p: &mut Policy, passes: &[f64], bw: f64, secs_per_pass: f64) -> Vec<Action> {
        let mut out = Vec::new();
        let mut t = 0.0;
        for (i, &size) in passes.iter().enumerate() {
            for k in 0..4 {
                let s = Sample {
                    elapsed_s: t,
                    pass: u32::try_from(i + 1).unwrap(),
                    remaining_bytes: size * (1.0 - 0.3 * f64::from(k)),
                    transferred_bytes: t * bw,
                    bandwidth_bytes_per_s: bw,
                    dirty_bytes_per_s: 0.0,
                };
                let a = p.observe(&s);
                if a != Action::Continue {
                    out.push(a);
                }
                t += secs_per_pass / 4.0;
            }
        }
        out
    }

    #[test]
    fn a_converging_migration_is_left_alone() {
        let mut p = Policy::new(PolicyConfig::default(), GIB, 10.0 * MIB, 100.0 * MIB);
        let acts = run(&mut p, &[GIB, 100.0 * MIB, 10.0 * MIB, MIB], 100.0 * MIB, 1.0);
        assert!(acts.is_empty(), "{acts:?}");
    }

    #[test]
    fn the_saw_tooth_inside_a_pass_is_not_judged() {
        // Within every pass the remaining figure falls and the next pass starts higher
        // than the last sample: only pass sizes count, and they shrink.
        let mut p = Policy::new(PolicyConfig::default(), GIB, 0.0, 100.0 * MIB);
        let acts = run(&mut p, &[GIB, 400.0 * MIB, 300.0 * MIB, 200.0 * MIB, 100.0 * MIB], 100.0 * MIB, 1.0);
        assert!(acts.is_empty(), "{acts:?}");
    }

    #[test]
    fn stalled_passes_raise_the_downtime_in_steps_then_abort() {
        let cfg = PolicyConfig { deadline_floor_s: 1e6, ..PolicyConfig::default() };
        let mut p = Policy::new(cfg, GIB, 0.0, 100.0 * MIB);
        // After the first pass, the dirty set stays at 300 MiB a pass.
        let mut sizes = vec![GIB];
        sizes.extend(std::iter::repeat_n(300.0 * MIB, 12));
        let acts = run(&mut p, &sizes, 100.0 * MIB, 1.0);
        let steps: Vec<f64> = acts.iter().filter_map(|a| if let Action::SetDowntime(d) = a { Some(*d) } else { None }).collect();
        assert_eq!(steps.len(), 3, "{acts:?}");
        assert!(steps.windows(2).all(|w| w[1] > w[0]), "rising: {steps:?}");
        assert!((steps[2] - 2.0).abs() < 1e-9, "up to the ceiling: {steps:?}");
        assert!(matches!(acts.last(), Some(Action::Abort(why)) if why.starts_with("not converging")), "{acts:?}");
    }

    #[test]
    fn the_deadline_follows_the_measured_bandwidth() {
        let cfg = PolicyConfig::default();
        // Planned at 1 GiB/s: 1 GiB in about a second, so the floor (20 s) rules.
        let mut p = Policy::new(cfg.clone(), GIB, 0.0, GIB);
        assert_eq!(p.deadline_s(), cfg.deadline_floor_s);
        // The copy only gets 10 MiB/s: about 102 s to copy, so a deadline near 307 s.
        assert_eq!(
            p.observe(&Sample { elapsed_s: 1.5, pass: 1, remaining_bytes: GIB, bandwidth_bytes_per_s: 10.0 * MIB, ..Sample::default() }),
            Action::Continue
        );
        assert!((p.deadline_s() - 307.2).abs() < 1.0, "{}", p.deadline_s());
        let a = p.observe(&Sample {
            elapsed_s: 308.0,
            pass: 1,
            remaining_bytes: 0.5 * GIB,
            transferred_bytes: 0.5 * GIB,
            bandwidth_bytes_per_s: 10.0 * MIB,
            ..Sample::default()
        });
        assert!(matches!(&a, Action::Abort(why) if why.starts_with("deadline")), "{a:?}");
    }

    #[test]
    fn a_stream_that_stops_moving_is_aborted_as_stalled() {
        let cfg = PolicyConfig { deadline_floor_s: 1e6, ..PolicyConfig::default() };
        let mut p = Policy::new(cfg, GIB, 0.0, 100.0 * MIB);
        let at =
            |t: f64, sent: f64| Sample { elapsed_s: t, pass: 1, remaining_bytes: GIB - sent, transferred_bytes: sent, ..Sample::default() };
        // Slow but moving: fine however long the gaps between growth stay under 15 s.
        for (t, sent) in [(0.0, 0.0), (10.0, MIB), (20.0, 2.0 * MIB), (34.0, 3.0 * MIB)] {
            assert_eq!(p.observe(&at(t, sent)), Action::Continue, "{t}");
        }
        assert_eq!(p.observe(&at(48.0, 3.0 * MIB)), Action::Continue);
        let a = p.observe(&at(49.5, 3.0 * MIB));
        assert!(matches!(&a, Action::Abort(why) if why.starts_with("stalled: no bytes moved for 15.5 s")), "{a:?}");
    }

    #[test]
    fn a_guest_dirtying_faster_than_the_link_gets_a_deadline_from_its_first_pass() {
        let p = Policy::new(PolicyConfig::default(), GIB, 200.0 * MIB, 100.0 * MIB);
        // The first pass takes about 10 s: 30 s with the factor.
        assert!((p.deadline_s() - 30.72).abs() < 0.1, "{}", p.deadline_s());
    }
}
