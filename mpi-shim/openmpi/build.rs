#[path = "../abi/build_common.rs"]
mod build_common;

fn main() {
    build_common::check_abi("MPICC_OPENMPI", "mpicc.openmpi", "abi_check.c", &[("mpi_large_count", "MPI_Send_c")]);
}
