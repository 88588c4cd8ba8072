/* The shim's cost on its counting path: blocks of MPI_Send (through the shim) and PMPI_Send
 * (straight to the library) alternate in one process, to MPI_PROC_NULL, which the shim
 * counts as a destination when STRADDLE_COUNT_PROC_NULL=1. Prints one line per block pair:
 *   pair <type> <ns per call via shim> <ns per call direct>
 * Usage: shim_cost PAIRS CALLS_PER_BLOCK */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double block(int via_shim, long calls, MPI_Datatype t, const void *buf) {
    double t0 = now_ns();
    if (via_shim)
        for (long i = 0; i < calls; i++) MPI_Send(buf, 4, t, MPI_PROC_NULL, 0, MPI_COMM_WORLD);
    else
        for (long i = 0; i < calls; i++) PMPI_Send(buf, 4, t, MPI_PROC_NULL, 0, MPI_COMM_WORLD);
    return (now_ns() - t0) / calls;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int pairs = argc > 1 ? atoi(argv[1]) : 31;
    long calls = argc > 2 ? atol(argv[2]) : 200000;
    Dl_info info;
    int interposed = dladdr((void *)&MPI_Send, &info) && info.dli_fname && strstr(info.dli_fname, "straddle");
    printf("interposed %d %s\n", interposed, interposed ? info.dli_fname : "-");
    int buf[64] = {0};
    MPI_Datatype derived;
    MPI_Type_vector(2, 2, 3, MPI_INT, &derived);
    MPI_Type_commit(&derived);
    struct { const char *name; MPI_Datatype t; } types[2] = {{"predefined", MPI_INT}, {"derived", derived}};
    for (int k = 0; k < 2; k++) {
        block(1, calls, types[k].t, buf); /* warm up both paths */
        block(0, calls, types[k].t, buf);
        for (int p = 0; p < pairs; p++) {
            double a, b;
            if (p % 2 == 0) { a = block(1, calls, types[k].t, buf); b = block(0, calls, types[k].t, buf); }
            else { b = block(0, calls, types[k].t, buf); a = block(1, calls, types[k].t, buf); }
            printf("pair %s %.3f %.3f\n", types[k].name, a, b);
        }
    }
    MPI_Type_free(&derived);
    MPI_Finalize();
    return 0;
}
