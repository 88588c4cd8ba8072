// Open MPI 4.1 (MPI 3.1): blocking and nonblocking collectives; no persistent or
// large-count forms exist to intercept.
collectives!(c_int, c_int;
    barrier: [MPI_Barrier => PMPI_Barrier via sa_barrier, MPI_Ibarrier => PMPI_Ibarrier];
    bcast: [MPI_Bcast => PMPI_Bcast via sa_bcast, MPI_Ibcast => PMPI_Ibcast];
    reduce: [MPI_Reduce => PMPI_Reduce via sa_reduce, MPI_Ireduce => PMPI_Ireduce];
    allreduce: [MPI_Allreduce => PMPI_Allreduce via sa_allreduce, MPI_Iallreduce => PMPI_Iallreduce];
    gather: [MPI_Gather => PMPI_Gather via sa_gather, MPI_Igather => PMPI_Igather];
    gatherv: [MPI_Gatherv => PMPI_Gatherv via sa_gatherv, MPI_Igatherv => PMPI_Igatherv];
    scatter: [MPI_Scatter => PMPI_Scatter via sa_scatter, MPI_Iscatter => PMPI_Iscatter];
    scatterv: [MPI_Scatterv => PMPI_Scatterv via sa_scatterv, MPI_Iscatterv => PMPI_Iscatterv];
    allgather: [MPI_Allgather => PMPI_Allgather via sa_allgather, MPI_Iallgather => PMPI_Iallgather];
    allgatherv: [MPI_Allgatherv => PMPI_Allgatherv via sa_allgatherv, MPI_Iallgatherv => PMPI_Iallgatherv];
    alltoall: [MPI_Alltoall => PMPI_Alltoall via sa_alltoall, MPI_Ialltoall => PMPI_Ialltoall];
    alltoallv: [MPI_Alltoallv => PMPI_Alltoallv via sa_alltoallv, MPI_Ialltoallv => PMPI_Ialltoallv];
    alltoallw: [MPI_Alltoallw => PMPI_Alltoallw, MPI_Ialltoallw => PMPI_Ialltoallw];
    reduce_scatter: [MPI_Reduce_scatter => PMPI_Reduce_scatter via sa_reduce_scatter, MPI_Ireduce_scatter => PMPI_Ireduce_scatter];
    reduce_scatter_block: [MPI_Reduce_scatter_block => PMPI_Reduce_scatter_block via sa_reduce_scatter_block, MPI_Ireduce_scatter_block => PMPI_Ireduce_scatter_block];
    scan: [MPI_Scan => PMPI_Scan via sa_scan, MPI_Iscan => PMPI_Iscan];
    exscan: [MPI_Exscan => PMPI_Exscan via sa_exscan, MPI_Iexscan => PMPI_Iexscan];
    neighbor_allgather: [MPI_Neighbor_allgather => PMPI_Neighbor_allgather, MPI_Ineighbor_allgather => PMPI_Ineighbor_allgather];
    neighbor_allgatherv: [MPI_Neighbor_allgatherv => PMPI_Neighbor_allgatherv, MPI_Ineighbor_allgatherv => PMPI_Ineighbor_allgatherv];
    neighbor_alltoall: [MPI_Neighbor_alltoall => PMPI_Neighbor_alltoall, MPI_Ineighbor_alltoall => PMPI_Ineighbor_alltoall];
    neighbor_alltoallv: [MPI_Neighbor_alltoallv => PMPI_Neighbor_alltoallv, MPI_Ineighbor_alltoallv => PMPI_Ineighbor_alltoallv];
    neighbor_alltoallw: [MPI_Neighbor_alltoallw => PMPI_Neighbor_alltoallw, MPI_Ineighbor_alltoallw => PMPI_Ineighbor_alltoallw];
);
