/* Broadcasts every root can make, on the world and on sub-communicators, small to large;
 * prints a checksum of everything each rank received. Run with and without the shim's
 * site-aware collectives: the output must not change. Usage: bcast ROUNDS */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static long sum(const int *v, int n, long acc) {
    for (int i = 0; i < n; i++) acc = (acc * 131 + v[i]) % 1000000007L;
    return acc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    int rounds = argc > 1 ? atoi(argv[1]) : 2;
    static int buf[50000];
    long acc = 0;
    MPI_Comm halves, odd;
    MPI_Comm_split(MPI_COMM_WORLD, r < n / 2, n - r, &halves); /* reversed order inside */
    MPI_Comm_split(MPI_COMM_WORLD, r % 3 == 0 ? MPI_UNDEFINED : 0, r, &odd);
    int sizes[3] = {1, 1000, 50000};
    for (int k = 0; k < rounds; k++) {
        MPI_Comm comms[3] = {MPI_COMM_WORLD, halves, odd};
        for (int c = 0; c < 3; c++) {
            if (comms[c] == MPI_COMM_NULL) continue;
            int cn, cr;
            MPI_Comm_size(comms[c], &cn);
            MPI_Comm_rank(comms[c], &cr);
            for (int root = 0; root < cn; root++) {
                for (int s = 0; s < 3; s++) {
                    for (int i = 0; i < sizes[s]; i++) buf[i] = cr == root ? (i * 7 + root * 13 + k + c) : -1;
                    MPI_Bcast(buf, sizes[s], MPI_INT, root, comms[c]);
                    acc = sum(buf, sizes[s], acc);
                }
            }
        }
    }
    long all[64];
    MPI_Gather(&acc, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (r == 0)
        for (int i = 0; i < n; i++) printf("rank %d checksum %ld\n", i, all[i]);
    if (odd != MPI_COMM_NULL) MPI_Comm_free(&odd);
    MPI_Comm_free(&halves);
    MPI_Finalize();
    return 0;
}
