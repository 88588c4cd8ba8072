//! What a plan costs on the bed: path figures and the event-by-event play of a call.

use super::{sites_of, Plan, Rounds};

/// One kind of path (across the WAN, or inside a site): what a single message of x bytes
/// costs alone, `latency(x) + x / rate` (the parameterised LogP form: a latency that may
/// grow with the size up to 64 KiB, a rate for the bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Latency of an 8-byte message (and smaller), s.
    pub small: f64,
    /// Latency from 64 KiB on, s (in between: linear in the size).
    pub large: f64,
    /// Bytes per second of a message that finds the path free.
    pub rate: f64,
    /// Bytes per second while the path also carries data the other way (each direction's
    /// acknowledgements then share the other direction's shaped queue; the bed sends them
    /// first, but a direction still gets somewhat less than alone).
    pub busy: f64,
}

/// The size where [`Link::large`] takes over.
const KNEE: f64 = 65536.0;

impl Link {
    pub fn nominal(latency: f64, rate: f64) -> Link {
        Link { small: latency, large: latency, rate, busy: rate }
    }

    /// From measured one-way times of single messages of 8 B, 64 KiB and 4 MiB: the rate
    /// from 64 KiB to 4 MiB, the latencies what is left of the two smaller ones (never
    /// below zero). Every measured point comes out exactly unless a latency had to be
    /// raised to zero; `None` when the figures make no sense (a larger
    /// message not slower).
    pub fn calibrated(t8: f64, t64k: f64, t4m: f64) -> Option<Link> {
        let big = 4194304.0;
        let rate = (big - KNEE) / (t4m - t64k);
        let (small, large) = ((t8 - 8.0 / rate).max(0.0), (t64k - KNEE / rate).max(0.0));
        (rate.is_finite() && rate > 0.0 && t8 > 0.0).then_some(Link { small, large, rate, busy: rate })
    }

    /// With the measured time until all of `k` messages of `bytes` each way, started at one
    /// instant in both directions, have arrived: all of them at [`Link::busy`], so the model
    /// gives that time back exactly. Unchanged when the figure makes no sense.
    pub fn with_flows(self, k: usize, bytes: f64, t_all: f64) -> Link {
        let busy = k as f64 * bytes / (t_all - self.latency(bytes));
        if k > 0 && busy.is_finite() && busy > 0.0 {
            Link { busy, ..self }
        } else {
            self
        }
    }

    pub fn latency(&self, x: f64) -> f64 {
        if x >= KNEE {
            self.large
        } else {
            self.small + (self.large - self.small) * ((x - 8.0).max(0.0) / (KNEE - 8.0))
        }
    }

    /// One message alone.
    #[allow(dead_code)] // the model's tests use it; the benchmark plays whole plans
    pub fn alone(&self, x: f64) -> f64 {
        self.latency(x) + x / self.rate
    }
}

/// The bed's path figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Net {
    /// Between sites, per direction (the relay's one queue each way).
    pub wan: Link,
    /// Inside a site, per sender.
    pub lan: Link,
    /// What all in-site messages together can move at once (the CPUs that copy them are
    /// shared by every node of the bed).
    pub host: Host,
}

/// Bytes per second all in-site messages together move on the bed, by message size:
/// `small` up to 1 MiB, `large` from 4 MiB, in between linear in the time per byte (large
/// messages copy through memory rather than cache); infinite when unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host {
    pub small: f64,
    pub large: f64,
}

const HOST_SMALL: f64 = 1048576.0;
const HOST_LARGE: f64 = 4194304.0;

impl Host {
    pub const UNLIMITED: Host = Host { small: f64::INFINITY, large: f64::INFINITY };

    pub fn at(&self, x: f64) -> f64 {
        let f = ((x - HOST_SMALL) / (HOST_LARGE - HOST_SMALL)).clamp(0.0, 1.0);
        1.0 / (1.0 / self.small + (1.0 / self.large - 1.0 / self.small) * f)
    }
}

impl Net {
    /// The bed as configured: 10 ms, 100 Mbit/s (TCP payload of 1448 per 1514-byte frame),
    /// in-site hops of 0.1 ms at 2 Gbit/s.
    pub fn bed(delay_ms: f64, rate_mbit: f64) -> Net {
        Net {
            wan: Link::nominal(delay_ms / 1e3, rate_mbit * 1e6 / 8.0 * 1448.0 / 1514.0),
            lan: Link::nominal(1e-4, 2e9 / 8.0),
            host: Host::UNLIMITED,
        }
    }

    /// With the measured time until all of the in-site messages `flows` (from, to; `bytes`
    /// each, started at one instant, ranks at `site`) have arrived: the [`Net::host`] figure
    /// for that size (`small` up to 1 MiB, else `large`) for which the model gives that time
    /// back (bisection; the model's time falls as it grows). Unlimited when they took no
    /// longer than alone; unchanged when the figure makes no sense.
    pub fn with_host_flows(self, flows: &[(usize, usize)], site: &[usize], bytes: f64, t_all: f64) -> Net {
        let rounds: Rounds = vec![flows.iter().map(|&(a, b)| (a, b, bytes)).collect()];
        let with = |rate: f64| {
            let host = if bytes <= HOST_SMALL { Host { small: rate, ..self.host } } else { Host { large: rate, ..self.host } };
            Net { host, ..self }
        };
        let time = |rate: f64| cost(&rounds, site, &with(rate)).time;
        if flows.is_empty()
            || !t_all.is_finite()
            || t_all <= 0.0
            || flows.iter().any(|&(a, b)| a >= site.len() || b >= site.len() || site[a] != site[b])
        {
            return self;
        }
        if t_all <= time(f64::INFINITY) {
            return with(f64::INFINITY);
        }
        let (mut lo, mut hi) = (1.0, flows.len() as f64 * self.lan.rate);
        if time(hi) > t_all || time(lo) < t_all {
            return self;
        }
        for _ in 0..100 {
            let mid = (lo * hi).sqrt();
            if time(mid) > t_all {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        with(hi)
    }
}

/// What the in-site messages of a call use of [`Net::host`] over time: a step function of
/// bytes per second, from `steps[i].0` until the next step's instant (0 before the first
/// and after the last).
#[derive(Debug, Default)]
struct Shared {
    steps: Vec<(f64, f64)>,
}

impl Shared {
    fn used_at(&self, t: f64) -> f64 {
        match self.steps.iter().rposition(|&(at, _)| at <= t) {
            Some(i) => self.steps[i].1,
            None => 0.0,
        }
    }

    fn cut(&mut self, t: f64) {
        if !self.steps.iter().any(|&(at, _)| at == t) {
            let used = self.used_at(t);
            let i = self.steps.partition_point(|&(at, _)| at < t);
            self.steps.insert(i, (t, used));
        }
    }

    /// Sends `x` bytes from `start` at up to `cap` bytes per second, in what the messages
    /// already placed leave of `total`; returns when the last byte is out. A message placed
    /// earlier keeps its rate (first come, first served for the capacity, not an even
    /// share: while the capacity is the limit nothing of it idles, but the last message may
    /// finish alone at `cap`, later than an even share would have it).
    fn place(&mut self, start: f64, x: f64, cap: f64, total: f64) -> f64 {
        if !total.is_finite() {
            return start + x / cap;
        }
        let (mut t, mut left) = (start, x);
        let mut parts = Vec::new();
        while left > 0.0 {
            let next = self.steps.iter().map(|&(at, _)| at).find(|&at| at > t);
            let rate = cap.min(total - self.used_at(t)).max(0.0);
            let end = if rate > 0.0 { t + left / rate } else { f64::INFINITY };
            match next {
                Some(n) if n < end => {
                    if rate > 0.0 {
                        parts.push((t, n, rate));
                        left -= (n - t) * rate;
                    }
                    t = n;
                }
                _ => {
                    parts.push((t, end, rate));
                    t = end;
                    left = 0.0;
                }
            }
        }
        for (a, b, rate) in parts {
            self.cut(a);
            self.cut(b);
            for step in self.steps.iter_mut().filter(|s| s.0 >= a && s.0 < b) {
                step.1 += rate;
            }
        }
        t
    }
}

/// What one call costs under a placement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Rounds with a message across sites: WAN latencies on the critical path.
    pub wan_hops: usize,
    /// Payload bytes from site 0 to site 1 and back (the first two sites by lowest rank).
    pub ab: f64,
    pub ba: f64,
    /// All payload bytes that crossed between any two sites.
    pub cross: f64,
    /// Predicted seconds.
    pub time: f64,
}

/// One message of a plan while [`cost`] plays it.
struct Flight {
    from: usize,
    to: usize,
    bytes: f64,
    wan: bool,
    /// WAN crossings on the path that brought its sender to it, its own included.
    hops: usize,
    /// Bytes across sites not yet out.
    left: f64,
    /// Inside a site, when its last byte is out (its sender waits for that); when it
    /// arrives, known once it is out.
    out: Option<f64>,
    arrive: Option<f64>,
}

/// How much of one connection's data a WAN direction carries before it turns to the next
/// connection with data: the largest segment a sender's TCP hands down whole (64 KiB, GSO),
/// which the bed's shaper queues and sends as one.
pub const WAN_TURN: f64 = 65536.0;

/// Evaluates `plan` with rank r at site `site[r]`, event by event. Time follows
/// dependencies, not lock step: a rank starts a round once it is ready and posts that round's
/// messages at once; it is ready for the next once every message it takes in the round has
/// arrived and its own messages inside its site are out.
///
/// - **Inside a site** each sender sends one message at a time, at most at the rate of one
///   pair and out of what [`Net::host`] leaves at its size.
/// - **Across sites** a message does not hold its sender (the socket takes it; measured on
///   the bed, a blocking 2 MiB send across returned after 0.3–2.1 ms and its data arrived
///   after 194). Each connection (ordered pair of ranks) carries its messages one after the
///   other. A WAN direction serves the connections that have data in turn, [`WAN_TURN`]
///   bytes at a time, at [`Link::rate`], or [`Link::busy`] while the other direction is
///   carrying data too: messages of up to 64 KiB cross whole in the order they were
///   posted, longer ones share the direction evenly.
///
/// A message arrives its path's latency after its last byte is out. `wan_hops` counts the
/// crossings on the path that finishes last.
pub fn cost(plan: impl Into<Plan>, site: &[usize], net: &Net) -> Cost {
    cost_served(plan, site, net, WAN_TURN)
}

/// [`cost`] with a WAN direction turning to the next connection after `wan_turn` bytes;
/// `f64::INFINITY`: whole messages, first come first served. On the bed, how one
/// direction splits between connections that have data at once depends on each
/// connection's BBR estimate of the path's rate, which follows what that connection
/// carried before: measured on rank 0's seven connections across over 1+7, all at about
/// 100 Mbit/s after the warm-up, then 24-65 for five of them while the library's
/// pairwise reduce-scatter ran, its calls taking anywhere between the two services' times
/// (BENCHMARKS.md). [`cost`] (turns) is the model; the other is printed beside it where
/// they differ.
pub fn cost_served(plan: impl Into<Plan>, site: &[usize], net: &Net, wan_turn: f64) -> Cost {
    use std::collections::{HashMap, VecDeque};
    let plan: Plan = plan.into();
    let (n, rounds) = (site.len(), plan.rounds.len());
    let mut c = Cost::default();
    let order = sites_of(site);
    let (a, b) = (order.first().map(|m| site[m[0]]).unwrap_or(usize::MAX), order.get(1).map(|m| site[m[0]]).unwrap_or(usize::MAX));
    // Every message; what each rank sends in each round; what it must have received before
    // it leaves each round (a message taken at round j, before it leaves round j - 1).
    let mut fl: Vec<Flight> = Vec::new();
    let mut sends = vec![vec![Vec::new(); rounds]; n];
    let mut needs = vec![vec![Vec::new(); rounds]; n];
    for (k, round) in plan.rounds.iter().enumerate() {
        let taken_at = plan.taken_at.get(k).copied().flatten().filter(|&j| j > k);
        for &(from, to, x) in round.iter().filter(|m| m.0 != m.1) {
            let wan = site[from] != site[to];
            if wan {
                c.cross += x;
                if (site[from], site[to]) == (a, b) {
                    c.ab += x;
                } else if (site[from], site[to]) == (b, a) {
                    c.ba += x;
                }
            }
            let leave = match (taken_at, wan) {
                (Some(j), true) => j.min(rounds) - 1,
                _ => k,
            };
            sends[from][k].push(fl.len());
            needs[to][leave].push(fl.len());
            fl.push(Flight { from, to, bytes: x, wan, hops: 0, left: x, out: None, arrive: None });
        }
    }
    if rounds == 0 {
        return c;
    }
    // Per rank: the round it is in or starts next, when it starts it (once known), when it
    // started the one it is in, the crossings behind it, when it was done.
    let mut round = vec![0usize; n];
    let mut starts: Vec<Option<f64>> = vec![Some(0.0); n];
    let mut began: Vec<Option<f64>> = vec![None; n];
    let mut hops = vec![0usize; n];
    let mut done = vec![0.0f64; n];
    let mut lan_free = vec![0.0f64; n];
    let mut host = Shared::default();
    // Each connection's messages in order; per WAN direction (site pair), the connections
    // waiting for their turn and the one being served (its message, bytes left of its turn).
    let mut queue: HashMap<(usize, usize), VecDeque<usize>> = HashMap::new();
    let mut waiting: HashMap<(usize, usize), VecDeque<(usize, usize)>> = HashMap::new();
    let mut serving: HashMap<(usize, usize), (usize, f64)> = HashMap::new();
    // Leaves its round if everything it waits for is known: starts the next at the latest of
    // those instants, or is done.
    let settle = |r: usize,
                  fl: &[Flight],
                  round: &mut [usize],
                  starts: &mut [Option<f64>],
                  began: &mut [Option<f64>],
                  hops: &mut [usize],
                  done: &mut [f64]| {
        let Some(t0) = began[r] else { return };
        let k = round[r];
        let (mut t, mut h) = (t0, hops[r]);
        for &i in &needs[r][k] {
            match fl[i].arrive {
                Some(at) if at > t => (t, h) = (at, fl[i].hops),
                Some(_) => {}
                None => return,
            }
        }
        for &i in sends[r][k].iter().filter(|&&i| !fl[i].wan) {
            match fl[i].out {
                Some(out) => t = t.max(out),
                None => return,
            }
        }
        began[r] = None;
        hops[r] = h;
        round[r] = k + 1;
        if k + 1 < rounds {
            starts[r] = Some(t);
        } else {
            done[r] = t;
        }
    };
    // Gives an idle direction's next waiting connection its turn.
    let turn = |way: (usize, usize),
                fl: &[Flight],
                queue: &HashMap<(usize, usize), VecDeque<usize>>,
                waiting: &mut HashMap<(usize, usize), VecDeque<(usize, usize)>>,
                serving: &mut HashMap<(usize, usize), (usize, f64)>| {
        if serving.contains_key(&way) {
            return;
        }
        if let Some(conn) = waiting.get_mut(&way).and_then(|w| w.pop_front()) {
            let i = queue[&conn][0];
            serving.insert(way, (i, fl[i].left.min(wan_turn)));
        }
    };
    let mut now = 0.0f64;
    loop {
        let rates: Vec<((usize, usize), f64)> = serving
            .keys()
            .map(|&(s, d)| {
                let both = serving.contains_key(&(d, s));
                ((s, d), if both { net.wan.busy } else { net.wan.rate })
            })
            .collect();
        let next_start = starts.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let t = rates.iter().map(|&(way, rate)| now + serving[&way].1 / rate).fold(next_start, f64::min);
        if !t.is_finite() {
            break;
        }
        // Bytes go out until then; the turns that end hand the direction on.
        let mut ended = Vec::new();
        for &(way, rate) in &rates {
            let (i, left) = serving.get_mut(&way).expect("a direction being served");
            if now + *left / rate <= t {
                fl[*i].left -= *left;
                ended.push((way, *i));
            } else {
                fl[*i].left -= (t - now) * rate;
                *left -= (t - now) * rate;
            }
        }
        now = t;
        for (way, i) in ended {
            serving.remove(&way);
            let conn = (fl[i].from, fl[i].to);
            if fl[i].left <= 1e-9 * fl[i].bytes.max(1.0) {
                fl[i].left = 0.0;
                fl[i].arrive = Some(now + net.wan.latency(fl[i].bytes));
                queue.get_mut(&conn).expect("a served connection has a queue").pop_front();
                settle(conn.1, &fl, &mut round, &mut starts, &mut began, &mut hops, &mut done);
            }
            if !queue[&conn].is_empty() {
                waiting.entry(way).or_default().push_back(conn);
            }
            turn(way, &fl, &queue, &mut waiting, &mut serving);
        }
        // Ranks that start a round now post its messages.
        while let Some(r) = (0..n).find(|&r| starts[r].is_some_and(|s| s <= now)) {
            let t0 = starts[r].take().expect("found with a start");
            began[r] = Some(t0);
            let mut touched = vec![r];
            for &i in &sends[r][round[r]] {
                fl[i].hops = hops[r] + fl[i].wan as usize;
                let (to, x) = (fl[i].to, fl[i].bytes);
                if fl[i].wan {
                    let way = (site[r], site[to]);
                    let q = queue.entry((r, to)).or_default();
                    q.push_back(i);
                    if q.len() == 1 {
                        waiting.entry(way).or_default().push_back((r, to));
                    }
                    turn(way, &fl, &queue, &mut waiting, &mut serving);
                } else {
                    let out = host.place(t0.max(lan_free[r]), x, net.lan.rate, net.host.at(x));
                    lan_free[r] = out;
                    fl[i].out = Some(out);
                    fl[i].arrive = Some(out + net.lan.latency(x));
                    touched.push(to);
                }
            }
            for r in touched {
                settle(r, &fl, &mut round, &mut starts, &mut began, &mut hops, &mut done);
            }
        }
    }
    let last = (0..n).max_by(|&i, &j| done[i].partial_cmp(&done[j]).unwrap()).unwrap_or(0);
    c.time = done.get(last).copied().unwrap_or(0.0);
    c.wan_hops = hops.get(last).copied().unwrap_or(0);
    c
}
