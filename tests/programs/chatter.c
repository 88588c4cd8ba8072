/* A job that talks to its ring neighbours at a steady pace: `iters` rounds, each a
 * Sendrecv of `bytes` to the next rank then a pause of `pause_ms`. Prints a checksum of
 * everything received, so two runs can be compared. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    long iters = argc > 1 ? atol(argv[1]) : 100;
    long bytes = argc > 2 ? atol(argv[2]) : 65536;
    long pause_ms = argc > 3 ? atol(argv[3]) : 10;
    unsigned char *out = malloc(bytes), *in = malloc(bytes);
    unsigned long sum = 0;
    for (long i = 0; i < iters; i++) {
        for (long b = 0; b < bytes; b++) out[b] = (unsigned char)(r * 31 + i * 7 + b);
        MPI_Sendrecv(out, (int)bytes, MPI_BYTE, (r + 1) % n, 0, in, (int)bytes, MPI_BYTE, (r + n - 1) % n, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        for (long b = 0; b < bytes; b += 4096) sum = sum * 1000003u + in[b];
        struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    unsigned long all = 0;
    MPI_Reduce(&sum, &all, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (r == 0) printf("checksum %lu\n", all);
    free(out);
    free(in);
    MPI_Finalize();
    return 0;
}
