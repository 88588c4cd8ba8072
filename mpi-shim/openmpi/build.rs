include!("../abi/build_common.rs");

fn main() {
    check_abi("MPICC_OPENMPI", "mpicc.openmpi", "abi_check.c", &[("mpi_large_count", "MPI_Send_c")]);
}
