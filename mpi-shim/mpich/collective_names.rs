// MPICH 4: every collective (Barrier has no large-count form) blocking, nonblocking and persistent, with large-count forms
// (regrouped as the int-count forms are, where their counts fit: `sites/large_count.rs`).
collectives!(c_int, c_int;
    barrier: [MPI_Barrier => PMPI_Barrier via sa_barrier, MPI_Ibarrier => PMPI_Ibarrier, MPI_Barrier_init => PMPI_Barrier_init];
    bcast: [MPI_Bcast => PMPI_Bcast via sa_bcast, MPI_Ibcast => PMPI_Ibcast, MPI_Bcast_init => PMPI_Bcast_init];
    reduce: [MPI_Reduce => PMPI_Reduce via sa_reduce, MPI_Ireduce => PMPI_Ireduce, MPI_Reduce_init => PMPI_Reduce_init];
    allreduce: [MPI_Allreduce => PMPI_Allreduce via sa_allreduce, MPI_Iallreduce => PMPI_Iallreduce, MPI_Allreduce_init => PMPI_Allreduce_init];
    gather: [MPI_Gather => PMPI_Gather via sa_gather, MPI_Igather => PMPI_Igather, MPI_Gather_init => PMPI_Gather_init];
    gatherv: [MPI_Gatherv => PMPI_Gatherv via sa_gatherv, MPI_Igatherv => PMPI_Igatherv, MPI_Gatherv_init => PMPI_Gatherv_init];
    scatter: [MPI_Scatter => PMPI_Scatter via sa_scatter, MPI_Iscatter => PMPI_Iscatter, MPI_Scatter_init => PMPI_Scatter_init];
    scatterv: [MPI_Scatterv => PMPI_Scatterv via sa_scatterv, MPI_Iscatterv => PMPI_Iscatterv, MPI_Scatterv_init => PMPI_Scatterv_init];
    allgather: [MPI_Allgather => PMPI_Allgather via sa_allgather, MPI_Iallgather => PMPI_Iallgather, MPI_Allgather_init => PMPI_Allgather_init];
    allgatherv: [MPI_Allgatherv => PMPI_Allgatherv via sa_allgatherv, MPI_Iallgatherv => PMPI_Iallgatherv, MPI_Allgatherv_init => PMPI_Allgatherv_init];
    alltoall: [MPI_Alltoall => PMPI_Alltoall via sa_alltoall, MPI_Ialltoall => PMPI_Ialltoall, MPI_Alltoall_init => PMPI_Alltoall_init];
    alltoallv: [MPI_Alltoallv => PMPI_Alltoallv via sa_alltoallv, MPI_Ialltoallv => PMPI_Ialltoallv, MPI_Alltoallv_init => PMPI_Alltoallv_init];
    alltoallw: [MPI_Alltoallw => PMPI_Alltoallw, MPI_Ialltoallw => PMPI_Ialltoallw, MPI_Alltoallw_init => PMPI_Alltoallw_init];
    reduce_scatter: [MPI_Reduce_scatter => PMPI_Reduce_scatter via sa_reduce_scatter, MPI_Ireduce_scatter => PMPI_Ireduce_scatter, MPI_Reduce_scatter_init => PMPI_Reduce_scatter_init];
    reduce_scatter_block: [MPI_Reduce_scatter_block => PMPI_Reduce_scatter_block via sa_reduce_scatter_block, MPI_Ireduce_scatter_block => PMPI_Ireduce_scatter_block, MPI_Reduce_scatter_block_init => PMPI_Reduce_scatter_block_init];
    scan: [MPI_Scan => PMPI_Scan via sa_scan, MPI_Iscan => PMPI_Iscan, MPI_Scan_init => PMPI_Scan_init];
    exscan: [MPI_Exscan => PMPI_Exscan via sa_exscan, MPI_Iexscan => PMPI_Iexscan, MPI_Exscan_init => PMPI_Exscan_init];
    neighbor_allgather: [MPI_Neighbor_allgather => PMPI_Neighbor_allgather, MPI_Ineighbor_allgather => PMPI_Ineighbor_allgather, MPI_Neighbor_allgather_init => PMPI_Neighbor_allgather_init];
    neighbor_allgatherv: [MPI_Neighbor_allgatherv => PMPI_Neighbor_allgatherv, MPI_Ineighbor_allgatherv => PMPI_Ineighbor_allgatherv, MPI_Neighbor_allgatherv_init => PMPI_Neighbor_allgatherv_init];
    neighbor_alltoall: [MPI_Neighbor_alltoall => PMPI_Neighbor_alltoall, MPI_Ineighbor_alltoall => PMPI_Ineighbor_alltoall, MPI_Neighbor_alltoall_init => PMPI_Neighbor_alltoall_init];
    neighbor_alltoallv: [MPI_Neighbor_alltoallv => PMPI_Neighbor_alltoallv, MPI_Ineighbor_alltoallv => PMPI_Ineighbor_alltoallv, MPI_Neighbor_alltoallv_init => PMPI_Neighbor_alltoallv_init];
    neighbor_alltoallw: [MPI_Neighbor_alltoallw => PMPI_Neighbor_alltoallw, MPI_Ineighbor_alltoallw => PMPI_Ineighbor_alltoallw, MPI_Neighbor_alltoallw_init => PMPI_Neighbor_alltoallw_init];
);

#[cfg(mpi_large_count)]
mod large_count_collectives {
    #[allow(unused_imports)]
    use super::*;
    collectives!(Count, Aint;
        bcast: [MPI_Bcast_c => PMPI_Bcast_c via sa_bcast_c, MPI_Ibcast_c => PMPI_Ibcast_c, MPI_Bcast_init_c => PMPI_Bcast_init_c];
        reduce: [MPI_Reduce_c => PMPI_Reduce_c via sa_reduce_c, MPI_Ireduce_c => PMPI_Ireduce_c, MPI_Reduce_init_c => PMPI_Reduce_init_c];
        allreduce: [MPI_Allreduce_c => PMPI_Allreduce_c via sa_allreduce_c, MPI_Iallreduce_c => PMPI_Iallreduce_c, MPI_Allreduce_init_c => PMPI_Allreduce_init_c];
        gather: [MPI_Gather_c => PMPI_Gather_c via sa_gather_c, MPI_Igather_c => PMPI_Igather_c, MPI_Gather_init_c => PMPI_Gather_init_c];
        gatherv: [MPI_Gatherv_c => PMPI_Gatherv_c via sa_gatherv_c, MPI_Igatherv_c => PMPI_Igatherv_c, MPI_Gatherv_init_c => PMPI_Gatherv_init_c];
        scatter: [MPI_Scatter_c => PMPI_Scatter_c via sa_scatter_c, MPI_Iscatter_c => PMPI_Iscatter_c, MPI_Scatter_init_c => PMPI_Scatter_init_c];
        scatterv: [MPI_Scatterv_c => PMPI_Scatterv_c via sa_scatterv_c, MPI_Iscatterv_c => PMPI_Iscatterv_c, MPI_Scatterv_init_c => PMPI_Scatterv_init_c];
        allgather: [MPI_Allgather_c => PMPI_Allgather_c via sa_allgather_c, MPI_Iallgather_c => PMPI_Iallgather_c, MPI_Allgather_init_c => PMPI_Allgather_init_c];
        allgatherv: [MPI_Allgatherv_c => PMPI_Allgatherv_c via sa_allgatherv_c, MPI_Iallgatherv_c => PMPI_Iallgatherv_c, MPI_Allgatherv_init_c => PMPI_Allgatherv_init_c];
        alltoall: [MPI_Alltoall_c => PMPI_Alltoall_c via sa_alltoall_c, MPI_Ialltoall_c => PMPI_Ialltoall_c, MPI_Alltoall_init_c => PMPI_Alltoall_init_c];
        alltoallv: [MPI_Alltoallv_c => PMPI_Alltoallv_c via sa_alltoallv_c, MPI_Ialltoallv_c => PMPI_Ialltoallv_c, MPI_Alltoallv_init_c => PMPI_Alltoallv_init_c];
        alltoallw: [MPI_Alltoallw_c => PMPI_Alltoallw_c, MPI_Ialltoallw_c => PMPI_Ialltoallw_c, MPI_Alltoallw_init_c => PMPI_Alltoallw_init_c];
        reduce_scatter: [MPI_Reduce_scatter_c => PMPI_Reduce_scatter_c via sa_reduce_scatter_c, MPI_Ireduce_scatter_c => PMPI_Ireduce_scatter_c, MPI_Reduce_scatter_init_c => PMPI_Reduce_scatter_init_c];
        reduce_scatter_block: [MPI_Reduce_scatter_block_c => PMPI_Reduce_scatter_block_c via sa_reduce_scatter_block_c, MPI_Ireduce_scatter_block_c => PMPI_Ireduce_scatter_block_c, MPI_Reduce_scatter_block_init_c => PMPI_Reduce_scatter_block_init_c];
        scan: [MPI_Scan_c => PMPI_Scan_c via sa_scan_c, MPI_Iscan_c => PMPI_Iscan_c, MPI_Scan_init_c => PMPI_Scan_init_c];
        exscan: [MPI_Exscan_c => PMPI_Exscan_c via sa_exscan_c, MPI_Iexscan_c => PMPI_Iexscan_c, MPI_Exscan_init_c => PMPI_Exscan_init_c];
        neighbor_allgather: [MPI_Neighbor_allgather_c => PMPI_Neighbor_allgather_c, MPI_Ineighbor_allgather_c => PMPI_Ineighbor_allgather_c, MPI_Neighbor_allgather_init_c => PMPI_Neighbor_allgather_init_c];
        neighbor_allgatherv: [MPI_Neighbor_allgatherv_c => PMPI_Neighbor_allgatherv_c, MPI_Ineighbor_allgatherv_c => PMPI_Ineighbor_allgatherv_c, MPI_Neighbor_allgatherv_init_c => PMPI_Neighbor_allgatherv_init_c];
        neighbor_alltoall: [MPI_Neighbor_alltoall_c => PMPI_Neighbor_alltoall_c, MPI_Ineighbor_alltoall_c => PMPI_Ineighbor_alltoall_c, MPI_Neighbor_alltoall_init_c => PMPI_Neighbor_alltoall_init_c];
        neighbor_alltoallv: [MPI_Neighbor_alltoallv_c => PMPI_Neighbor_alltoallv_c, MPI_Ineighbor_alltoallv_c => PMPI_Ineighbor_alltoallv_c, MPI_Neighbor_alltoallv_init_c => PMPI_Neighbor_alltoallv_init_c];
        neighbor_alltoallw: [MPI_Neighbor_alltoallw_c => PMPI_Neighbor_alltoallw_c, MPI_Ineighbor_alltoallw_c => PMPI_Ineighbor_alltoallw_c, MPI_Neighbor_alltoallw_init_c => PMPI_Neighbor_alltoallw_init_c];
    );
}
