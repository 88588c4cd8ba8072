//! Generates the straddle.v1 messages and services with a vendored `protoc`, so no
//! hand-installed compiler is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let files = [
        "proto/straddle/v1/telemetry.proto",
        "proto/straddle/v1/operator.proto",
        "proto/straddle/v1/scheduler.proto",
        "proto/straddle/v1/agent.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    tonic_prost_build::configure().compile_protos(&files, &["proto"])?;
    Ok(())
}
