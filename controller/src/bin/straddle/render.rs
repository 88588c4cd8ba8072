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

/// The rank × rank table (bytes sent src → dst, with message counts), then per-rank totals.
pub fn table(m: &TrafficMatrix) -> String {
    let n = m.world_size as usize;
    let unit = if m.rate { "/s" } else { "" };
    let mut out = String::new();
    let what = if m.rate { format!("rate over the last {} s", m.window_secs) } else { "cumulative".to_string() };
    out.push_str(&format!("job {}  ({} ranks, {what})\n", m.job, n));
    out.push_str("bytes sent, row = source rank, column = destination rank [messages]\n");
    let cell = |i: usize, j: usize| -> String {
        if i == j {
            return "-".into();
        }
        let b = m.bytes.get(i * n + j).copied().unwrap_or(0.0);
        let msg = m.messages.get(i * n + j).copied().unwrap_or(0.0);
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
    out.push_str(&format!(
        "\n{:>5}  {:<24} {:>14} {:>10} {:>14} {:>12}  {}\n",
        "rank", "node", "sent", "messages", "received", "one-sided", "status"
    ));
    for i in 0..n {
        let sent: f64 = (0..n).map(|j| m.bytes[i * n + j]).sum();
        let msgs: f64 = (0..n).map(|j| m.messages[i * n + j]).sum();
        let recv: f64 = (0..n).map(|j| m.bytes[j * n + i]).sum();
        let rma: f64 = (0..n).map(|j| m.rma_bytes[i * n + j]).sum();
        let r = m.ranks.get(i);
        let node = r.map(|r| r.node.as_str()).filter(|s| !s.is_empty()).unwrap_or("?");
        let status = match r {
            Some(r) if r.attached => format!("attached, {} reports", r.reports),
            Some(r) if r.reports > 0 => format!("detached, {} reports", r.reports),
            _ => "never reported".into(),
        };
        out.push_str(&format!(
            "{:>5}  {:<24} {:>14} {:>10} {:>14} {:>12}  {}\n",
            i,
            node,
            format!("{}{unit}", human_bytes(sent)),
            fmt_count(msgs),
            format!("{}{unit}", human_bytes(recv)),
            format!("{}{unit}", human_bytes(rma)),
            status
        ));
    }
    let total: f64 = m.bytes.iter().sum();
    let total_msgs: f64 = m.messages.iter().sum();
    out.push_str(&format!("total  {}{unit} in {} messages\n", human_bytes(total), fmt_count(total_msgs)));
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
struct JsonMatrix<'a> {
    job: &'a str,
    world_size: u32,
    rate: bool,
    window_secs: f64,
    bytes: Vec<Vec<f64>>,
    messages: Vec<Vec<f64>>,
    rma_bytes: Vec<Vec<f64>>,
    rma_operations: Vec<Vec<f64>>,
    ranks: Vec<JsonRank<'a>>,
    communicators: Vec<JsonCommunicator<'a>>,
    collectives: Vec<JsonCollective>,
}

/// The same content as JSON: square matrices as arrays of rows, plus per-rank totals.
pub fn json(m: &TrafficMatrix) -> String {
    let n = m.world_size as usize;
    let rows = |v: &[f64]| v.chunks(n.max(1)).map(|r| r.to_vec()).collect::<Vec<_>>();
    let ranks = (0..n)
        .map(|i| {
            let r = m.ranks.get(i);
            JsonRank {
                rank: u32::try_from(i).unwrap_or(u32::MAX),
                node: r.map(|r| r.node.as_str()).unwrap_or(""),
                attached: r.is_some_and(|r| r.attached),
                reports: r.map(|r| r.reports).unwrap_or(0),
                sent_bytes: (0..n).map(|j| m.bytes[i * n + j]).sum(),
                sent_messages: (0..n).map(|j| m.messages[i * n + j]).sum(),
                received_bytes: (0..n).map(|j| m.bytes[j * n + i]).sum(),
                dropped_records: r.map(|r| r.dropped_records).unwrap_or(0),
                regrouped_cross_site_bytes: r.map(|r| r.regrouped_cross_site_bytes).unwrap_or(0),
            }
        })
        .collect();
    let j = JsonMatrix {
        job: &m.job,
        world_size: m.world_size,
        rate: m.rate,
        window_secs: m.window_secs,
        bytes: rows(&m.bytes),
        messages: rows(&m.messages),
        rma_bytes: rows(&m.rma_bytes),
        rma_operations: rows(&m.rma_operations),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrafficMatrix {
        use straddle_proto::{CollectiveSummary, CollectiveTraffic};
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
            bytes: vec![0.0, 2048.0, 10.0, 0.0],
            messages: vec![0.0, 2.0, 1.0, 0.0],
            rma_bytes: vec![0.0; 4],
            rma_operations: vec![0.0; 4],
            ..Default::default()
        }
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
