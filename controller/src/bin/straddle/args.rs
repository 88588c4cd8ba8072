//! The command line: the controller's settings and the operator, scheduler and traffic
//! commands. Tokens come from a file or the environment, never the command line (where
//! every local user would read them in the process list).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "straddle", version, about = "Place MPI jobs across sites by what they actually send")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// How a command reaches the controller.
#[derive(Args, Clone)]
pub struct Conn {
    /// The controller (`host:port` or `http://host:port`).
    #[arg(long, default_value = "127.0.0.1:50051", env = "STRADDLE_CONTROLLER", global = true)]
    pub controller: String,
    /// File holding the token for calls that change placement (else $STRADDLE_TOKEN).
    #[arg(long, env = "STRADDLE_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// The CA that signed the controller's certificate (for an https:// controller).
    #[arg(long, env = "STRADDLE_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// This client's certificate and key, for a controller that asks for mutual TLS.
    #[arg(long, env = "STRADDLE_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "STRADDLE_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ControllerArgs {
    #[arg(long, default_value = "127.0.0.1:50051", env = "STRADDLE_LISTEN")]
    pub listen: SocketAddr,
    /// Sites, hosts, links and VMs (YAML, see docs/topology.md); needed to admit jobs.
    #[arg(long, env = "STRADDLE_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    /// Keep jobs, placements, epochs, decisions and operations in this file, restored at start.
    #[arg(long, env = "STRADDLE_STATE")]
    pub state: Option<PathBuf>,
    /// File holding the token callers must present to change placement (else $STRADDLE_TOKEN).
    #[arg(long, env = "STRADDLE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// File holding the fabric token the controller and its agents share (else
    /// $STRADDLE_FABRIC_TOKEN); without one, no agent may register.
    #[arg(long, env = "STRADDLE_FABRIC_TOKEN_FILE")]
    pub fabric_token_file: Option<PathBuf>,
    /// Seconds between an agent's usage reports.
    #[arg(long, default_value_t = 2.0)]
    pub agent_heartbeat: f64,
    /// The MTU between the agents' tunnel endpoints (1440 when the segments ride the
    /// encrypted tunnel); the segments' frames get 50 bytes less.
    #[arg(long, default_value_t = 1500)]
    pub underlay_mtu: u32,
    /// Serve TLS with this certificate (PEM); needs --tls-key.
    #[arg(long, env = "STRADDLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "STRADDLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Callers must show a certificate this CA signed (mutual TLS); needs --tls-cert.
    #[arg(long, env = "STRADDLE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Listen beyond loopback without a token (anyone who reaches it may change placement).
    #[arg(long)]
    pub allow_insecure: bool,
    /// Refuse ranks of jobs no scheduler submitted (default: observe every job; always so
    /// once a token is set).
    #[arg(long)]
    pub submitted_only: bool,
    /// What the planner does with its plans (default: the stored mode, else automatic).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Seconds between rounds of the decision loop.
    #[arg(long, default_value_t = 5.0)]
    pub decide_every: f64,
    /// Traffic rates are taken over this many trailing seconds (1 to 60).
    #[arg(long, default_value_t = 10)]
    pub window: u64,
    /// Network-intensive above this predicted slowdown when spanning sites (0.1 = 10%).
    #[arg(long, default_value_t = 0.10)]
    pub threshold: f64,
    /// Classify by the predicted slowdown (model) or the paper's 10 MB/s rule (paper).
    #[arg(long, value_enum, default_value_t = PolicyArg::Model)]
    pub policy: PolicyArg,
    /// Minimum seconds a job keeps its class.
    #[arg(long, default_value_t = 60.0)]
    pub dwell: f64,
    /// Minimum seconds between two migrations of one VM.
    #[arg(long, default_value_t = 300.0)]
    pub cooldown: f64,
    /// A started migration may run at least this many seconds (3 × its prediction when more).
    #[arg(long, default_value_t = 120.0)]
    pub migration_timeout: f64,
    /// Largest world size a job may have.
    #[arg(long, default_value_t = 65_536)]
    pub max_world_size: u32,
    /// Most jobs tracked at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_jobs: usize,
    /// Seconds after which a job no scheduler owns is forgotten once no rank is attached.
    #[arg(long, default_value_t = 3600.0)]
    pub forget_after: f64,
    /// What moves VMs: a simulation of the topology's VMs, or the hosts' libvirt daemons
    /// (each host's `libvirt_uri` in the topology).
    #[arg(long, value_enum, default_value_t = HypervisorArg::Sim)]
    pub hypervisor: HypervisorArg,
    /// Seconds between rounds of discovery with a real hypervisor: which host runs which
    /// VM (VMs moved, destroyed or started by hand are noticed) and their dirty rates.
    #[arg(long, default_value_t = 10.0)]
    pub discover_every: f64,
    /// Most downtime a libvirt migration may be allowed, in ms, after its steps up from the
    /// first 300 ms when passes stop shrinking.
    #[arg(long, default_value_t = 2000.0)]
    pub max_downtime_ms: f64,
    /// Do not let QEMU throttle a guest whose dirty rate outruns the link (auto-converge).
    #[arg(long)]
    pub no_auto_converge: bool,
    /// Switch a libvirt migration that cannot converge to post-copy instead of aborting it.
    /// A link that fails after the switch loses the VM: its memory is then split between
    /// the hosts.
    #[arg(long)]
    pub postcopy: bool,
    /// Encrypt libvirt's migration streams (the daemons need TLS certificates for it).
    #[arg(long)]
    pub migration_tls: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HypervisorArg {
    Sim,
    Libvirt,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the controller (gRPC; loopback by default).
    Controller(ControllerArgs),
    /// Watch the planner's decisions (the log so far, then live).
    Decisions {
        #[arg(long, default_value = "")]
        job: String,
        /// Keep following new decisions.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Explain one decision: why, what it predicted, what happened.
    Explain {
        id: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// Where every VM runs (optionally of one job).
    Placements {
        #[arg(long, default_value = "")]
        job: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Migrations in flight.
    Operations {
        #[command(flatten)]
        conn: Conn,
    },
    /// Whether the controller's tasks run.
    Health {
        #[command(flatten)]
        conn: Conn,
    },
    /// The hosts' agents: registration, usage (host and per VM), their network's state.
    Agents {
        #[command(flatten)]
        conn: Conn,
    },
    /// Operator overrides: pin/unpin a VM, drain/undrain a site, set the mode, approve/reject a plan.
    Override {
        #[command(subcommand)]
        what: Override,
        #[command(flatten)]
        conn: Conn,
    },
    /// Build or tear down a networked cluster of the topology through the hosts' agents.
    Cluster {
        #[command(subcommand)]
        what: ClusterCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Submit a job: its ranks run on these VMs, in rank order. Prints the credential its
    /// ranks present (STRADDLE_JOB_TOKEN), or writes it to --token-out.
    Submit {
        job: String,
        #[arg(long, value_delimiter = ',', required = true)]
        vms: Vec<String>,
        #[arg(long, default_value = "")]
        cluster: String,
        /// Write the job's credential to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Submit a scenario file (YAML: jobs with arrival times).
    Scenario {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancel a job.
    Cancel {
        job: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a job's rank × rank traffic matrix and per-rank totals.
    Traffic {
        job: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show rates over this many trailing seconds instead of cumulative totals.
        #[arg(long, value_name = "SECS")]
        rate: Option<u32>,
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the jobs the controller knows.
    Jobs {
        #[command(flatten)]
        conn: Conn,
    },
    /// Check a state file against a topology without starting (exit 1 if damaged).
    State {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        topology: PathBuf,
    },
    /// Run a real MPI program under the shim with a live controller and show its traffic.
    Demo {
        #[arg(long, value_enum, default_value_t = Mpi::Mpich)]
        mpi: Mpi,
        #[arg(long, default_value_t = 4)]
        ranks: u32,
        #[arg(long, default_value_t = 8)]
        steps: u32,
    },
}

#[derive(Subcommand)]
pub enum Override {
    Pin { vm: String },
    Unpin { vm: String },
    Drain { site: String },
    Undrain { site: String },
    Mode { mode: Mode },
    Approve { id: u64 },
    Reject { id: u64 },
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Its segment on every host with a member, then each member VM defined and started.
    Build {
        cluster: String,
        /// The guest's kernel and initramfs (paths on the hosts).
        #[arg(long)]
        kernel: String,
        #[arg(long)]
        initrd: String,
        /// More kernel arguments (the node's addresses are added).
        #[arg(long, default_value = "")]
        cmdline: String,
        #[arg(long, default_value_t = 1)]
        vcpus: u32,
    },
    /// Stop and remove its VMs; its segments go with the last member.
    Down { cluster: String },
}

#[derive(Clone, Copy, ValueEnum, Debug, PartialEq, Eq)]
pub enum Mode {
    Automatic,
    DryRun,
    Approve,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    Model,
    Paper,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Mpi {
    Mpich,
    Openmpi,
}
