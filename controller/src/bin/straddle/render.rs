//! Human and machine forms of a job's traffic matrix.

use serde::Serialize;
use straddle_proto::{CollectiveMode, CollectiveOp, TrafficMatrix};

/// Bytes in binary units, short enough for a table cell.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Jobs up to this many ranks are shown as a full rank × rank table.
pub const TABLE_RANKS: usize = 32;

/// A small job's pairs as dense row-major matrices (bytes, messages).
fn dense(m: &TrafficMatrix) -> (Vec<f64>, Vec<f64>) {
    let n = m.world_size as usize;
    let (mut b, mut msg) = (vec![0.0; n * n], vec![0.0; n * n]);
    for p in &m.pairs {
        let (s, d) = (p.src as usize, p.dst as usize);
        if s < n && d < n {
            b[s * n + d] = p.bytes;
            msg[s * n + d] = p.messages;
        }
    }
    (b, msg)
}

/// The rank × rank table (bytes sent src → dst, with message counts) for small jobs, the
/// largest pairs for big ones, then per-rank totals.
pub fn table(m: &TrafficMatrix) -> String {
    let n = m.world_size as usize;
    let unit = if m.rate { "/s" } else { "" };
    let mut out = String::new();
    let what = if m.rate { format!("rate over the last {} s", m.window_secs) } else { "cumulative".to_string() };
    out.push_str(&format!("job {}  ({} ranks, {what})\n", m.job, n));
    if n <= TABLE_RANKS {
        let (bytes, messages) = dense(m);
        out.push_str("bytes sent, row = source rank, column = destination rank [messages]\n");
        let cell = |i: usize, j: usize| -> String {
            if i == j {
                return "-".into();
            }
            let (b, msg) = (bytes[i * n + j], messages[i * n + j]);
            if b == 0.0 && msg == 0.0 {
                ".".into()
            } else {
                format!("{}{unit} [{}]", human_bytes(b), fmt_count(msg))
            }
        };
        let width = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| cell(i, j).len()).max().unwrap_or(1).max(6);
        out.push_str(&format!("{:>8} ", "src\\dst"));
        for j in 0..n {
            out.push_str(&format!(" {:>width$}", j));
        }
        out.push('\n');
        for i in 0..n {
            out.push_str(&format!("{:>8} ", i));
            for j in 0..n {
                out.push_str(&format!(" {:>width$}", cell(i, j)));
            }
            out.push('\n');
        }
    } else {
        let mut top: Vec<_> = m.pairs.iter().collect();
        top.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
        out.push_str(&format!("{} pairs of ranks talk; the largest:\n", m.total_pairs));
        for p in top.iter().take(20) {
            out.push_str(&format!(
                "  {:>6} -> {:<6} {:>14}  [{} messages]\n",
                p.src,
                p.dst,
                format!("{}{unit}", human_bytes(p.bytes)),
                fmt_count(p.messages)
            ));
        }
    }
    out.push_str(&format!(
        "\n{:>5}  {:<24} {:>14} {:>10} {:>14} {:>12}  {}\n",
        "rank", "node", "sent", "messages", "received", "one-sided", "status"
    ));
    for (i, r) in m.ranks.iter().enumerate() {
        if n > TABLE_RANKS && r.sent_bytes == 0.0 && r.received_bytes == 0.0 && r.reports == 0 {
            continue;
        }
        let node = Some(r.node.as_str()).filter(|s| !s.is_empty()).unwrap_or("?");
        let status = match r {
            r if r.attached => format!("attached, {} reports", r.reports),
            r if r.reports > 0 => format!("detached, {} reports", r.reports),
            _ => "never reported".into(),
        };
        out.push_str(&format!(
            "{:>5}  {:<24} {:>14} {:>10} {:>14} {:>12}  {}\n",
            i,
            node,
            format!("{}{unit}", human_bytes(r.sent_bytes)),
            fmt_count(r.sent_messages),
            format!("{}{unit}", human_bytes(r.received_bytes)),
            format!("{}{unit}", human_bytes(r.rma_bytes)),
            status
        ));
    }
    out.push_str(&format!("total  {}{unit} in {} messages\n", human_bytes(m.total_bytes), fmt_count(m.total_messages)));
    let regrouped: u64 = m.ranks.iter().map(|r| r.regrouped_cross_site_bytes).sum();
    if regrouped > 0 {
        out.push_str(&format!(
            "site-aware collectives sent {} across sites (cumulative, as the shims count it)\n",
            human_bytes(regrouped as f64)
        ));
    }
    out
}

fn state_word(s: i32) -> String {
    straddle_proto::DecisionState::try_from(s).map(|s| s.as_str_name().to_ascii_lowercase()).unwrap_or_else(|_| s.to_string())
}

fn class_word(c: i32) -> String {
    straddle_proto::JobClass::try_from(c).map(|s| s.as_str_name().to_ascii_lowercase().replace('_', "-")).unwrap_or_else(|_| c.to_string())
}

/// One line per decision, for `straddle decisions`.
pub fn decision_line(d: &straddle_proto::Decision) -> String {
    let moves = if d.migrations.is_empty() {
        String::new()
    } else {
        format!(" [{}]", d.migrations.iter().map(|m| format!("{} {}->{}", m.vm, m.from_site, m.to_site)).collect::<Vec<_>>().join(", "))
    };
    format!("#{:<4} {:<16} {:<18} {:<17} {}{}", d.id, d.job, class_word(d.class), state_word(d.state), d.reason, moves)
}

/// One line per migration operation, for `straddle operations`.
pub fn operation_line(o: &straddle_proto::Operation) -> String {
    let state = straddle_proto::OperationState::try_from(o.state)
        .map(|s| s.as_str_name().trim_start_matches("OPERATION_").to_ascii_lowercase().replace('_', " "))
        .unwrap_or_else(|_| o.state.to_string());
    format!("#{:<4} decision #{:<4} {:<16} {:<12} {} -> {}  {}  {}", o.id, o.decision, o.vm, state, o.from_host, o.to_host, o.job, o.detail)
}

/// Everything about one decision, for `straddle explain`.
pub fn explain(d: &straddle_proto::Decision) -> String {
    let mut s = format!(
        "decision #{} at unix ms {}\n  job:     {}\n  class:   {}\n  state:   {}\n  why:     {}\n",
        d.id,
        d.unix_ms,
        d.job,
        class_word(d.class),
        state_word(d.state),
        d.reason
    );
    if !d.migrations.is_empty() {
        s.push_str(&format!("  predicted net gain: {:.1} job-seconds\n  migrations:\n", d.predicted_gain_secs));
        for m in &d.migrations {
            let op = if m.operation == 0 { String::new() } else { format!("  (operation #{})", m.operation) };
            s.push_str(&format!(
                "    {} {}:{} -> {}:{}  ~{:.1} s, ~{:.0} ms downtime{op}\n",
                m.vm, m.from_site, m.from_host, m.to_site, m.to_host, m.predicted_seconds, m.predicted_downtime_ms
            ));
            if let Some(a) = &m.actual {
                s.push_str(&format!(
                    "      actual: {:.1} s, {:.0} ms downtime, {} passes, {:.1} MiB sent at {:.1} MiB/s, dirtying {:.1} MiB/s\n",
                    a.total_seconds,
                    a.downtime_ms,
                    a.passes,
                    a.transferred_bytes / 1048576.0,
                    a.bandwidth_bytes_per_second / 1048576.0,
                    a.dirty_bytes_per_second / 1048576.0
                ));
            }
        }
    }
    s.push_str(&format!("  detail:  {}\n", d.detail));
    s
}

fn fmt_count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[derive(Serialize)]
struct JsonRank<'a> {
    rank: u32,
    node: &'a str,
    attached: bool,
    reports: u64,
    sent_bytes: f64,
    sent_messages: f64,
    received_bytes: f64,
    dropped_records: u64,
    regrouped_cross_site_bytes: u64,
}

#[derive(Serialize)]
struct JsonCommunicator<'a> {
    reporter_rank: u32,
    comm_id: u32,
    world_ranks: &'a [u32],
    inter: bool,
    remote_world_ranks: &'a [u32],
}

#[derive(Serialize)]
struct JsonCollective {
    rank: u32,
    comm_id: u32,
    op: String,
    mode: String,
    /// Rank of the root in the communicator; -1 none, -2 MPI_ROOT, -3 MPI_PROC_NULL.
    root: i32,
    calls: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct JsonPair {
    src: u32,
    dst: u32,
    bytes: f64,
    messages: f64,
    rma_bytes: f64,
    rma_operations: f64,
}

#[derive(Serialize)]
struct JsonMatrix<'a> {
    job: &'a str,
    world_size: u32,
    rate: bool,
    window_secs: f64,
    /// Dense rows for jobs up to `TABLE_RANKS` ranks.
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<Vec<Vec<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<Vec<f64>>>,
    pairs: Vec<JsonPair>,
    total_pairs: u64,
    total_bytes: f64,
    total_messages: f64,
    ranks: Vec<JsonRank<'a>>,
    communicators: Vec<JsonCommunicator<'a>>,
    collectives: Vec<JsonCollective>,
}

/// The same content as JSON: the pairs (and, for small jobs, square matrices as arrays of
/// rows), plus per-rank totals.
pub fn json(m: &TrafficMatrix) -> String {
    let n = m.world_size as usize;
    let small = n <= TABLE_RANKS;
    let (b, msg) = if small { dense(m) } else { (vec![], vec![]) };
    let rows = |v: &[f64]| Some(v.chunks(n.max(1)).map(|r| r.to_vec()).collect::<Vec<_>>());
    let ranks = m
        .ranks
        .iter()
        .map(|r| JsonRank {
            rank: r.rank,
            node: r.node.as_str(),
            attached: r.attached,
            reports: r.reports,
            sent_bytes: r.sent_bytes,
            sent_messages: r.sent_messages,
            received_bytes: r.received_bytes,
            dropped_records: r.dropped_records,
            regrouped_cross_site_bytes: r.regrouped_cross_site_bytes,
        })
        .collect();
    let j = JsonMatrix {
        job: &m.job,
        world_size: m.world_size,
        rate: m.rate,
        window_secs: m.window_secs,
        bytes: if small { rows(&b) } else { None },
        messages: if small { rows(&msg) } else { None },
        pairs: m
            .pairs
            .iter()
            .map(|p| JsonPair {
                src: p.src,
                dst: p.dst,
                bytes: p.bytes,
                messages: p.messages,
                rma_bytes: p.rma_bytes,
                rma_operations: p.rma_operations,
            })
            .collect(),
        total_pairs: m.total_pairs,
        total_bytes: m.total_bytes,
        total_messages: m.total_messages,
        ranks,
        communicators: m
            .communicators
            .iter()
            .filter_map(|c| {
                let i = c.info.as_ref()?;
                Some(JsonCommunicator {
                    reporter_rank: c.reporter_rank,
                    comm_id: i.comm_id,
                    world_ranks: &i.world_ranks,
                    inter: i.inter,
                    remote_world_ranks: &i.remote_world_ranks,
                })
            })
            .collect(),
        collectives: m
            .collectives
            .iter()
            .filter_map(|c| {
                let t = c.traffic.as_ref()?;
                Some(JsonCollective {
                    rank: c.rank,
                    comm_id: t.comm_id,
                    op: CollectiveOp::try_from(t.op).map(|o| o.as_str_name().to_ascii_lowercase()).unwrap_or_else(|_| t.op.to_string()),
                    mode: CollectiveMode::try_from(t.mode)
                        .map(|o| o.as_str_name().to_ascii_lowercase())
                        .unwrap_or_else(|_| t.mode.to_string()),
                    root: t.root,
                    calls: t.calls,
                    bytes: t.bytes,
                })
            })
            .collect(),
    };
    serde_json::to_string_pretty(&j).expect("plain data serialises")
}

/// An agent: where it is, how its host and VMs use it, whether its network is in line.
pub fn agent(a: &straddle_proto::AgentStatus) -> String {
    const MIB: f64 = 1048576.0;
    let mut out = format!(
        "{} (site {}) at {} tunnel {}: seen {:.1} s ago, network {}\n",
        a.host, a.site, a.agent_url, a.vtep, a.seen_secs_ago, a.fabric
    );
    if let Some(u) = &a.usage {
        out.push_str(&format!("  host cpu {:.0}% memory {:.0} MiB\n", u.cpu_utilisation * 100.0, u.memory_used_bytes as f64 / MIB));
        for v in &u.vms {
            out.push_str(&format!(
                "  vm {} cpu {:.0}% of {} vcpus, memory {:.0} MiB, rx {} B tx {} B\n",
                v.vm,
                v.cpu_utilisation * 100.0,
                v.vcpus,
                v.memory_bytes as f64 / MIB,
                v.net_rx_bytes,
                v.net_tx_bytes
            ));
        }
    }
    for n in &a.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrafficMatrix {
        use straddle_proto::{CollectiveSummary, CollectiveTraffic, PairTraffic, RankInfo};
        TrafficMatrix {
            collectives: vec![CollectiveSummary {
                rank: 1,
                traffic: Some(CollectiveTraffic {
                    comm_id: 1,
                    op: CollectiveOp::Allreduce as i32,
                    mode: CollectiveMode::Blocking as i32,
                    root: -1,
                    calls: 3,
                    bytes: 24,
                }),
            }],
            job: "demo".into(),
            world_size: 2,
            pairs: vec![
                PairTraffic { src: 0, dst: 1, bytes: 2048.0, messages: 2.0, ..Default::default() },
                PairTraffic { src: 1, dst: 0, bytes: 10.0, messages: 1.0, ..Default::default() },
            ],
            total_pairs: 2,
            total_bytes: 2058.0,
            total_messages: 3.0,
            ranks: vec![
                RankInfo { rank: 0, sent_bytes: 2048.0, sent_messages: 2.0, received_bytes: 10.0, ..Default::default() },
                RankInfo { rank: 1, sent_bytes: 10.0, sent_messages: 1.0, received_bytes: 2048.0, ..Default::default() },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn big_jobs_show_their_largest_pairs() {
        let mut m = sample();
        m.world_size = 1200;
        m.total_pairs = 5000;
        let t = table(&m);
        assert!(t.contains("5000 pairs of ranks talk") && t.contains("0 -> 1") && t.contains("2.0 KiB"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&json(&m)).unwrap();
        assert!(v.get("bytes").is_none() && v["pairs"][0]["bytes"] == 2048.0, "{v}");
    }

    #[test]
    fn table_shows_cells_and_totals() {
        let t = table(&sample());
        assert!(t.contains("2.0 KiB [2]"), "{t}");
        assert!(t.contains("10 B [1]"), "{t}");
        assert!(t.contains("total  2.0 KiB in 3 messages"), "{t}");
    }

    #[test]
    fn json_has_rows_and_totals() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        assert_eq!(v["bytes"][0][1], 2048.0);
        assert_eq!(v["ranks"][1]["sent_bytes"], 10.0);
        assert_eq!(v["ranks"][1]["received_bytes"], 2048.0);
        assert_eq!(v["collectives"][0]["op"], "allreduce");
        assert_eq!(v["collectives"][0]["mode"], "blocking");
        assert_eq!(v["collectives"][0]["bytes"], 24);
    }
}
