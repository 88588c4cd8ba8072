/* The test bed's MPI check: where each rank runs, an allreduce, 64 KiB around a ring. */
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r, n, len, v, s;
    char host[MPI_MAX_PROCESSOR_NAME];
    static char out[65536], in[65536];
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    MPI_Get_processor_name(host, &len);
    v = r;
    MPI_Allreduce(&v, &s, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Sendrecv(out, sizeof out, MPI_CHAR, (r + 1) % n, 0, in, sizeof in, MPI_CHAR, (r + n - 1) % n, 0, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    printf("rank %d of %d on %s sum %d\n", r, n, host, s);
    MPI_Finalize();
    return 0;
}
