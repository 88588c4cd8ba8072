/* Rank 0 uses up its communicator context ids (duplicating MPI_COMM_SELF until the library
 * refuses), then every rank runs allreduces on MPI_COMM_WORLD and checks them. Under the
 * shim's site-aware collectives, rank 0 cannot build its site communicators: every rank
 * must stay on the library's algorithm, with right results and no abort.
 * Prints "exhaust: N duplicates, M allreduces, F failures" from rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r, n, dups = 0, failures = 0, calls = 48;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    static MPI_Comm held[100000];
    if (r == 0) {
        MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
        while (dups < 100000 && MPI_Comm_dup(MPI_COMM_SELF, &held[dups]) == MPI_SUCCESS) dups++;
    }
    for (int i = 0; i < calls; i++) {
        int v[3] = {r + i, 1, r * r}, s[3];
        MPI_Allreduce(v, s, 3, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (s[0] != n * (n - 1) / 2 + n * i || s[1] != n || s[2] != (n - 1) * n * (2 * n - 1) / 6) failures++;
    }
    int all;
    MPI_Reduce(&failures, &all, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (r == 0) printf("exhaust: %d duplicates, %d allreduces, %d failures\n", dups, calls, all);
    for (int i = 0; i < dups; i++) MPI_Comm_free(&held[i]);
    MPI_Finalize();
    return 0;
}
