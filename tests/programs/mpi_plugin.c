/* The plugin of plugin_host.c, linked against the MPI library (mpicc -shared -fPIC) and
 * loaded with local scope. plugin_run(ROUNDS): MPI_Init_thread, then per round a ring of
 * 1000-byte sends (rank r to r + 1), an allreduce and broadcast checked against the library
 * (the same call through PMPI), and MPI_Finalize. Rank 0 prints "plugin: N cases, M
 * failures". */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int plugin_run(int rounds) {
    int provided, r, n, cases = 0, failures = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) return 3;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    static char out[1000], in[1000];
    static int v[3000], a[3000], b[3000];
    for (int k = 0; k < rounds; k++) {
        memset(out, r + k, sizeof out);
        MPI_Sendrecv(out, sizeof out, MPI_BYTE, (r + 1) % n, 7, in, sizeof in, MPI_BYTE, (r + n - 1) % n, 7, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        cases++;
        if (in[0] != (char)((r + n - 1) % n + k) || in[999] != in[0]) failures++;
        for (int i = 0; i < 3000; i++) v[i] = (i * 7 + r * 13 + k) % 1000;
        PMPI_Allreduce(v, a, 3000, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(v, b, 3000, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        cases++;
        if (memcmp(a, b, sizeof a)) failures++;
        memcpy(a, v, sizeof a), memcpy(b, v, sizeof b);
        PMPI_Bcast(a, 3000, MPI_INT, k % n, MPI_COMM_WORLD);
        MPI_Bcast(b, 3000, MPI_INT, k % n, MPI_COMM_WORLD);
        cases++;
        if (memcmp(a, b, sizeof a)) failures++;
    }
    int all = 0;
    MPI_Reduce(&failures, &all, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (r == 0) printf("plugin: %d cases, %d failures\n", cases, all);
    MPI_Finalize();
    return 0;
}
