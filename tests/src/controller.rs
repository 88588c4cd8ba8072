//! The controller as a real process, and a gRPC client for queries.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use straddle_proto::traffic_client::TrafficClient;
use straddle_proto::{TrafficMatrix, TrafficRequest};

pub struct ControllerProcess {
    child: Child,
    pub addr: String,
    stderr_log: std::path::PathBuf,
}

impl ControllerProcess {
    /// Starts `straddle controller` on a free loopback port.
    pub fn start() -> ControllerProcess {
        Self::start_on("127.0.0.1:0")
    }

    /// Starts `straddle controller` listening on `listen`.
    pub fn start_on(listen: &str) -> ControllerProcess {
        Self::start_with(listen, &[])
    }

    /// Starts `straddle controller` with extra arguments (topology, ...). A `--token T` among
    /// them is given the way the controller takes it: in the environment, never argv.
    pub fn start_with(listen: &str, extra: &[&str]) -> ControllerProcess {
        Self::start_bin(&crate::paths::controller_bin(), listen, extra)
    }

    /// `start_with`, running the `straddle` binary at `bin` (another build, for
    /// before-and-after comparisons).
    pub fn start_bin(bin: &std::path::Path, listen: &str, extra: &[&str]) -> ControllerProcess {
        Self::start_cmd(Command::new(bin), listen, extra)
    }

    /// `start_with`, in network namespace `ns` (`ip netns exec` execs it: the pid is the
    /// controller's).
    pub fn start_in(ns: &str, listen: &str, extra: &[&str]) -> ControllerProcess {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(crate::paths::controller_bin());
        Self::start_cmd(c, listen, extra)
    }

    fn start_cmd(mut cmd: Command, listen: &str, extra: &[&str]) -> ControllerProcess {
        let log = crate::paths::target_dir().join(format!(
            "controller-{}-{}.log",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let (extra, token) = split_token(extra);
        let mut child = cmd
            .args(["controller", "--listen", listen])
            .args(&extra)
            .env_remove("STRADDLE_TOKEN")
            .envs(token.map(|t| ("STRADDLE_TOKEN", t)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("controller log"))
            .spawn()
            .expect("start the controller");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("controller's first line");
        let addr = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
        assert!(addr.contains(':'), "controller did not say where it listens: {line:?}");
        ControllerProcess { child, addr, stderr_log: log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks it to stop (SIGINT, as Ctrl-C) and waits up to 10 s for it to exit.
    pub fn stop(&mut self) -> bool {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the controller logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.stderr_log);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// One job's cumulative traffic, or the controller's status.
pub fn traffic(url: &str, job: &str) -> Result<TrafficMatrix, tonic::Status> {
    traffic_with(url, None, job)
}

/// `traffic`, presenting `token` (an operator token or the job's credential).
pub fn traffic_with(url: &str, token: Option<&str>, job: &str) -> Result<TrafficMatrix, tonic::Status> {
    runtime().block_on(async {
        let mut c = TrafficClient::connect(url.to_string()).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut req = tonic::Request::new(TrafficRequest { job: job.to_string(), rate_window_secs: 0, max_pairs: 0 });
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(c.get_traffic(req).await?.into_inner())
    })
}

/// A job's traffic as dense row-major matrices (bytes, messages), from the reply's pairs.
pub fn dense(m: &TrafficMatrix) -> (Vec<f64>, Vec<f64>) {
    (dense_of(m, |p| p.bytes), dense_of(m, |p| p.messages))
}

/// One value of every pair as a dense row-major matrix.
pub fn dense_of(m: &TrafficMatrix, f: impl Fn(&straddle_proto::PairTraffic) -> f64) -> Vec<f64> {
    let n = m.world_size as usize;
    let mut out = vec![0.0; n * n];
    for p in &m.pairs {
        out[p.src as usize * n + p.dst as usize] = f(p);
    }
    out
}

/// Polls until `done` holds for the job's traffic (reports arrive asynchronously).
pub fn wait_for(url: &str, job: &str, timeout: Duration, done: impl Fn(&TrafficMatrix) -> bool) -> TrafficMatrix {
    wait_for_with(url, None, job, timeout, done)
}

/// `wait_for`, presenting `token`.
pub fn wait_for_with(url: &str, token: Option<&str>, job: &str, timeout: Duration, done: impl Fn(&TrafficMatrix) -> bool) -> TrafficMatrix {
    let start = Instant::now();
    loop {
        let m = traffic_with(url, token, job);
        match &m {
            Ok(m) if done(m) => return m.clone(),
            // Waiting does not cure a refusal: say so at once.
            Err(s) if matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                panic!("job {job}: the controller refuses to show its traffic: {s}")
            }
            _ => {}
        }
        if start.elapsed() > timeout {
            return m.unwrap_or_else(|s| panic!("job {job} never appeared: {s}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Site maps a fake rank received: (rank, epoch, rank → site).
pub type SeenMap = (u32, u64, Vec<u32>);

/// Plays `world` ranks of `job` against the controller at `url` until `until`: each
/// attaches, reports `bytes_per_s` to the next rank (in 64 KiB messages) every 200 ms and
/// collects the site maps pushed to it. Returns every map received.
pub fn drive_ranks(url: &str, job: &str, world: u32, bytes_per_s: u64, until: Instant) -> Vec<SeenMap> {
    drive_ranks_with(url, None, job, world, bytes_per_s, until)
}

/// `drive_ranks`, presenting `token` (the job's credential or an operator token).
pub fn drive_ranks_with(url: &str, token: Option<&str>, job: &str, world: u32, bytes_per_s: u64, until: Instant) -> Vec<SeenMap> {
    use straddle_proto::telemetry_client::TelemetryClient;
    use straddle_proto::{controller_message, shim_message, Hello, PeerTraffic, Report, ShimMessage};
    let maps: std::sync::Arc<std::sync::Mutex<Vec<SeenMap>>> = Default::default();
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for rank in 0..world {
            let (url, job, maps, token) = (url.to_string(), job.to_string(), maps.clone(), token.map(str::to_string));
            tasks.push(tokio::spawn(async move {
                let Ok(mut c) = TelemetryClient::connect(url).await else { return };
                let (tx, rx) = tokio::sync::mpsc::channel(8);
                let hello = Hello { job, rank, world_size: world, node: format!("vm{rank}"), incarnation: 1, ..Default::default() };
                tx.send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).await.unwrap();
                let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                if let Some(t) = &token {
                    req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                let Ok(resp) = c.attach(req).await else { return };
                let mut inbound = resp.into_inner();
                let reader = tokio::spawn(async move {
                    while let Ok(Some(m)) = inbound.message().await {
                        if let Some(controller_message::Body::SiteMap(s)) = m.body {
                            maps.lock().unwrap().push((rank, s.epoch, s.rank_site));
                        }
                    }
                });
                let mut seq = 0;
                while Instant::now() < until {
                    seq += 1;
                    let bytes = seq * bytes_per_s / 5;
                    let peers =
                        vec![PeerTraffic { dest: (rank + 1) % world, p2p_bytes: bytes, p2p_messages: bytes / 65536, ..Default::default() }];
                    let r = ShimMessage { body: Some(shim_message::Body::Report(Report { seq, peers, ..Default::default() })) };
                    if tx.send(r).await.is_err() || reader.is_finished() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                drop(tx);
                let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let v = maps.lock().unwrap().clone();
    v
}

/// Two sites, tokyo and sapporo, joined at 1 Gbit/s and 10 ms, with VMs v0, v1 on tokyo
/// and v2, v3 on sapporo of `mib` MiB each, plus `extra` lines of VMs.
pub fn two_site_topology(mib: u32, extra: &str) -> String {
    format!(
        "sites:\n  - {{name: tokyo, hosts: [{{name: t1, vm_capacity: 4}}]}}\n  - {{name: sapporo, hosts: [{{name: s1, vm_capacity: 4}}]}}\n\
         links:\n  - {{between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10}}\nvms:\n\
         \x20 - {{name: v0, host: t1, memory_mib: {mib}}}\n  - {{name: v1, host: t1, memory_mib: {mib}}}\n\
         \x20 - {{name: v2, host: s1, memory_mib: {mib}}}\n  - {{name: v3, host: s1, memory_mib: {mib}}}\n{extra}"
    )
}

/// Runs the operator CLI against `url` with `token` (none: without one); returns whether
/// it succeeded and what it printed.
pub fn cli(url: &str, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut c = std::process::Command::new(crate::paths::controller_bin());
    let (args, inline) = split_token(args);
    c.args(&args).args(["--controller", url]).env_remove("STRADDLE_TOKEN");
    if let Some(t) = inline.or(token) {
        c.env("STRADDLE_TOKEN", t);
    }
    let o = c.output().expect("run straddle");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// `straddle ARGS --controller URL` run in network namespace `ns`, presenting `token`.
pub fn cli_in(ns: &str, url: &str, token: &str, args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(crate::paths::controller_bin())
        .args(args)
        .args(["--controller", url])
        .env("STRADDLE_TOKEN", token)
        .output()
        .expect("run straddle");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// Submits `job` on `vms` through the CLI with the operator `token`; returns the job's
/// credential (what its ranks present as STRADDLE_JOB_TOKEN).
pub fn submit(url: &str, token: &str, job: &str, vms: &str) -> String {
    let (ok, out) = cli(url, Some(token), &["submit", job, "--vms", vms]);
    assert!(ok, "submit {job}: {out}");
    out.lines().find_map(|l| l.strip_prefix("job token: ")).unwrap_or_else(|| panic!("no job token in {out:?}")).trim().to_string()
}

/// Takes `--token T` out of `args`: tokens travel in the environment (`STRADDLE_TOKEN`),
/// never on a command line every local user can read.
pub fn split_token<'a>(args: &[&'a str]) -> (Vec<&'a str>, Option<&'a str>) {
    let mut out = Vec::with_capacity(args.len());
    let mut token = None;
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        if a == "--token" {
            token = it.next().copied();
        } else {
            out.push(a);
        }
    }
    (out, token)
}

/// A CA and a certificate for 127.0.0.1 it signed (openssl): (ca.pem, server.pem, server.key).
pub fn certs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=straddle test CA",
    ]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// Decision `id` as the operator API gives it (with its migrations' outcomes and
/// measurements), through the gRPC client with the operator `token`.
pub fn explain(url: &str, token: &str, id: u64) -> Result<straddle_proto::Decision, tonic::Status> {
    use straddle_proto::operator_client::OperatorClient;
    runtime().block_on(async {
        let mut c = OperatorClient::connect(url.to_string()).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut req = tonic::Request::new(straddle_proto::ExplainRequest { decision_id: id });
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        Ok(c.explain(req).await?.into_inner())
    })
}
