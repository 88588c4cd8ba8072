/* straddle demo: a small stencil-like MPI program whose traffic is easy to read.
 * Each step every rank sends (rank+1) x 16 KiB to its right neighbour and 4 KiB to its
 * left one, rank 0 broadcasts a parameter block, and all ranks agree on a residual. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int steps = argc > 1 ? atoi(argv[1]) : 8;
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    int big = (rank + 1) * 16384, small = 4096;
    char *out = calloc(big, 1), *in = calloc(20 * 16384, 1), *sm = calloc(small, 1), *smin = calloc(small, 1);
    double params[64] = {0}, residual = 0;
    for (int s = 0; s < steps; s++) {
        MPI_Request r[4];
        MPI_Irecv(in, 20 * 16384, MPI_CHAR, left, 1, MPI_COMM_WORLD, &r[0]);
        MPI_Irecv(smin, small, MPI_CHAR, right, 2, MPI_COMM_WORLD, &r[1]);
        MPI_Isend(out, big, MPI_CHAR, right, 1, MPI_COMM_WORLD, &r[2]);
        MPI_Isend(sm, small, MPI_CHAR, left, 2, MPI_COMM_WORLD, &r[3]);
        MPI_Waitall(4, r, MPI_STATUSES_IGNORE);
        if (rank == 0) params[0] = s;
        MPI_Bcast(params, 64, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        double mine = rank + s, sum;
        MPI_Allreduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        residual += sum;
        usleep(500000);
    }
    if (rank == 0) printf("demo done: %d steps on %d ranks, residual %.1f\n", steps, size, residual);
    free(out); free(in); free(sm); free(smin);
    MPI_Finalize();
    return 0;
}
