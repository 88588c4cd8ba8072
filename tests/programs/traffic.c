/* A program of known traffic for the shim's exactness tests. Every rank r of N sends
 * the pattern below; tests/src/expect.rs computes the same matrix independently.
 * Usage: traffic LOOPS SLEEP_MS. Prints a checksum of everything received. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long checksum = 0;
static void take(const void *p, int n) {
    const unsigned char *c = p;
    for (int i = 0; i < n; i++) checksum = (checksum * 31 + c[i]) % 1000000007L;
}

/* Sends COUNT elements of TYPE to dest=(r+k)%N and receives the same from (r-k)%N. */
#define PAIR(k) int to = (r + (k)) % N, from = (r - (k) + N) % N

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r, N;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &N);
    int loops = argc > 1 ? atoi(argv[1]) : 0, sleep_ms = argc > 2 ? atoi(argv[2]) : 0;
    static char in[1 << 16], out[1 << 16];
    for (int i = 0; i < (int)sizeof out; i++) out[i] = (char)(i * 7 + r);
    MPI_Status st;
    MPI_Request q[8];

    { /* A: Send (r+1) x 100 chars to r+1 */
        PAIR(1);
        MPI_Irecv(in, 1000, MPI_CHAR, from, 1, MPI_COMM_WORLD, &q[0]);
        MPI_Send(out, 100 * (r + 1), MPI_CHAR, to, 1, MPI_COMM_WORLD);
        MPI_Wait(&q[0], &st);
        take(in, 100 * (from + 1));
    }
    { /* B: Bsend 8 doubles to r+2 */
        PAIR(2);
        static char bbuf[1 << 20];
        MPI_Buffer_attach(bbuf, sizeof bbuf);
        MPI_Irecv(in, 8, MPI_DOUBLE, from, 2, MPI_COMM_WORLD, &q[0]);
        MPI_Bsend(out, 8, MPI_DOUBLE, to, 2, MPI_COMM_WORLD);
        MPI_Wait(&q[0], &st);
        take(in, 64);
        /* E2: Ibsend 20 chars to r+1 (buffer still attached) */
        to = (r + 1) % N; from = (r - 1 + N) % N;
        MPI_Irecv(in, 20, MPI_CHAR, from, 22, MPI_COMM_WORLD, &q[0]);
        MPI_Ibsend(out, 20, MPI_CHAR, to, 22, MPI_COMM_WORLD, &q[1]);
        MPI_Waitall(2, q, MPI_STATUSES_IGNORE);
        take(in, 20);
        void *b; int bs;
        MPI_Buffer_detach(&b, &bs);
    }
    { /* C: Ssend 3 ints to r+3 */
        PAIR(3);
        MPI_Irecv(in, 3, MPI_INT, from, 3, MPI_COMM_WORLD, &q[0]);
        MPI_Ssend(out, 3, MPI_INT, to, 3, MPI_COMM_WORLD);
        MPI_Wait(&q[0], &st);
        take(in, 12);
    }
    { /* D: Rsend 5 chars to r+1, Irsend 40 chars to r+1 (receives posted before a barrier) */
        PAIR(1);
        MPI_Irecv(in, 5, MPI_CHAR, from, 4, MPI_COMM_WORLD, &q[0]);
        MPI_Irecv(in + 100, 40, MPI_CHAR, from, 44, MPI_COMM_WORLD, &q[1]);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Rsend(out, 5, MPI_CHAR, to, 4, MPI_COMM_WORLD);
        MPI_Irsend(out, 40, MPI_CHAR, to, 44, MPI_COMM_WORLD, &q[2]);
        MPI_Waitall(3, q, MPI_STATUSES_IGNORE);
        take(in, 5); take(in + 100, 40);
    }
    { /* E: Isend 10 chars, Issend 30 chars to r+1 */
        PAIR(1);
        MPI_Irecv(in, 10, MPI_CHAR, from, 5, MPI_COMM_WORLD, &q[0]);
        MPI_Irecv(in + 100, 30, MPI_CHAR, from, 55, MPI_COMM_WORLD, &q[1]);
        MPI_Isend(out, 10, MPI_CHAR, to, 5, MPI_COMM_WORLD, &q[2]);
        MPI_Issend(out, 30, MPI_CHAR, to, 55, MPI_COMM_WORLD, &q[3]);
        MPI_Waitall(4, q, MPI_STATUSES_IGNORE);
        take(in, 10); take(in + 100, 30);
    }
    { /* F: persistent Send_init 7 doubles to r+2 (3 x Start), Ssend_init 9 chars to r+3;
         both started twice more with Startall. */
        int to2 = (r + 2) % N, from2 = (r - 2 + N) % N, to3 = (r + 3) % N, from3 = (r - 3 + N) % N;
        MPI_Request p[2];
        MPI_Send_init(out, 7, MPI_DOUBLE, to2, 6, MPI_COMM_WORLD, &p[0]);
        MPI_Ssend_init(out, 9, MPI_CHAR, to3, 66, MPI_COMM_WORLD, &p[1]);
        for (int i = 0; i < 3; i++) {
            MPI_Irecv(in, 7, MPI_DOUBLE, from2, 6, MPI_COMM_WORLD, &q[0]);
            MPI_Start(&p[0]);
            MPI_Wait(&p[0], &st);
            MPI_Wait(&q[0], &st);
            take(in, 56);
        }
        for (int i = 0; i < 2; i++) {
            MPI_Irecv(in, 7, MPI_DOUBLE, from2, 6, MPI_COMM_WORLD, &q[0]);
            MPI_Irecv(in + 100, 9, MPI_CHAR, from3, 66, MPI_COMM_WORLD, &q[1]);
            MPI_Startall(2, p);
            MPI_Waitall(2, p, MPI_STATUSES_IGNORE);
            MPI_Waitall(2, q, MPI_STATUSES_IGNORE);
            take(in, 56); take(in + 100, 9);
        }
        MPI_Request_free(&p[0]);
        MPI_Request_free(&p[1]);
    }
    { /* G: Sendrecv 16 chars to r+1; H: Sendrecv_replace 6 ints to r+3 */
        PAIR(1);
        MPI_Sendrecv(out, 16, MPI_CHAR, to, 7, in, 16, MPI_CHAR, from, 7, MPI_COMM_WORLD, &st);
        take(in, 16);
        int buf[6] = {r, r, r, r, r, r};
        MPI_Sendrecv_replace(buf, 6, MPI_INT, (r + 3) % N, 8, (r + 1) % N, 8, MPI_COMM_WORLD, &st);
        take(buf, 24);
    }
    { /* I: a derived vector type (3 blocks of 2 ints: 24 bytes), 2 of them to r+2 */
        PAIR(2);
        MPI_Datatype v;
        MPI_Type_vector(3, 2, 4, MPI_INT, &v);
        MPI_Type_commit(&v);
        MPI_Irecv(in, 2, v, from, 9, MPI_COMM_WORLD, &q[0]);
        MPI_Send(out, 2, v, to, 9, MPI_COMM_WORLD);
        MPI_Wait(&q[0], &st);
        MPI_Type_free(&v);
        take(in, 48);
    }
    MPI_Comm sub, inter, dup;
    { /* J: split by parity; 33 chars to the next rank of the sub-communicator */
        MPI_Comm_split(MPI_COMM_WORLD, r % 2, r, &sub);
        int sr, sn;
        MPI_Comm_rank(sub, &sr);
        MPI_Comm_size(sub, &sn);
        MPI_Sendrecv(out, 33, MPI_CHAR, (sr + 1) % sn, 10, in, 33, MPI_CHAR, (sr - 1 + sn) % sn, 10, sub, &st);
        take(in, 33);
        /* K: intercommunicator between the parities; 44 chars to the same-index remote rank */
        MPI_Intercomm_create(sub, 0, MPI_COMM_WORLD, r % 2 == 0 ? 1 : 0, 11, &inter);
        MPI_Sendrecv(out, 44, MPI_CHAR, sr, 12, in, 44, MPI_CHAR, sr, 12, inter, &st);
        take(in, 44);
        /* L: a duplicate of the world; 55 chars to r+1 */
        MPI_Comm_dup(MPI_COMM_WORLD, &dup);
        MPI_Sendrecv(out, 55, MPI_CHAR, (r + 1) % N, 13, in, 55, MPI_CHAR, (r - 1 + N) % N, 13, dup, &st);
        take(in, 55);
    }
    { /* M: not network traffic: MPI_PROC_NULL and a send to self */
        MPI_Send(out, 1000, MPI_CHAR, MPI_PROC_NULL, 14, MPI_COMM_WORLD);
        MPI_Sendrecv(out, 77, MPI_CHAR, r, 15, in, 77, MPI_CHAR, r, 15, MPI_COMM_WORLD, &st);
        take(in, 77);
    }
    { /* RMA: Put 4 doubles to r+1, Get 2 doubles from r+2, Accumulate 3 doubles to r+3,
         Get_accumulate 1 double (and 1 back) to r+1. */
        double *base;
        MPI_Win win;
        MPI_Win_allocate(64 * sizeof(double), sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
        for (int i = 0; i < 64; i++) base[i] = r;
        double o[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[8] = {0}, res = 0;
        MPI_Win_fence(0, win);
        MPI_Put(o, 4, MPI_DOUBLE, (r + 1) % N, 0, 4, MPI_DOUBLE, win);
        MPI_Get(g, 2, MPI_DOUBLE, (r + 2) % N, 10, 2, MPI_DOUBLE, win);
        MPI_Win_fence(0, win);
        MPI_Accumulate(o, 3, MPI_DOUBLE, (r + 3) % N, 20, 3, MPI_DOUBLE, MPI_SUM, win);
        MPI_Win_fence(0, win);
        MPI_Get_accumulate(o, 1, MPI_DOUBLE, &res, 1, MPI_DOUBLE, (r + 1) % N, 30, 1, MPI_DOUBLE, MPI_SUM, win);
        MPI_Win_fence(0, win);
        take(g, 16); take(&res, 8); take(base, 64 * sizeof(double));
        MPI_Win_free(&win);
    }
#if MPI_VERSION >= 4
    { /* N: large-count send, 11 chars to r+1 */
        PAIR(1);
        MPI_Irecv(in, 11, MPI_CHAR, from, 16, MPI_COMM_WORLD, &q[0]);
        MPI_Send_c(out, 11, MPI_CHAR, to, 16, MPI_COMM_WORLD);
        MPI_Wait(&q[0], &st);
        take(in, 11);
    }
#endif
    { /* P: communicators freed and created again (handles are recycled) with another
         rank order each time; 3 chars to the next rank of each, which is always r+1. */
        for (int k = 1; k <= 3; k++) {
            MPI_Comm c;
            MPI_Comm_split(MPI_COMM_WORLD, 0, (r + k) % N, &c);
            int cr, cn;
            MPI_Comm_rank(c, &cr);
            MPI_Comm_size(c, &cn);
            MPI_Sendrecv(out, 3, MPI_CHAR, (cr + 1) % cn, 18, in, 3, MPI_CHAR, (cr - 1 + cn) % cn, 18, c, &st);
            take(in, 3);
            MPI_Comm_free(&c);
        }
    }
    { /* Collectives: counted per call, not in the matrix. */
        double x = r, y, v2[2] = {r, r}, w2[2];
        MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Bcast(out, 128, MPI_CHAR, 0, sub);
        take(&y, 8);
        MPI_Request cr;
        MPI_Ibcast(v2, 2, MPI_DOUBLE, 1, MPI_COMM_WORLD, &cr);
        MPI_Wait(&cr, MPI_STATUS_IGNORE);
        take(v2, 16);
#if MPI_VERSION >= 4
        MPI_Allreduce_init(v2, w2, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, MPI_INFO_NULL, &cr);
        for (int i = 0; i < 2; i++) {
            MPI_Start(&cr);
            MPI_Wait(&cr, MPI_STATUS_IGNORE);
        }
        MPI_Request_free(&cr);
        take(w2, 16);
#endif
    }
    /* O: a loop, LOOPS times 8 chars to r+1 with a pause (for tests that kill or stall
       the controller mid-run). */
    for (int i = 0; i < loops; i++) {
        PAIR(1);
        MPI_Sendrecv(out, 8, MPI_CHAR, to, 17, in, 8, MPI_CHAR, from, 17, MPI_COMM_WORLD, &st);
        take(in, 8);
        if (sleep_ms) usleep(sleep_ms * 1000);
    }
    MPI_Comm_free(&dup);
    MPI_Comm_free(&inter);
    MPI_Comm_free(&sub);
    long all[64];
    MPI_Gather(&checksum, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (r == 0) {
        for (int i = 0; i < N; i++) printf("rank %d checksum %ld\n", i, all[i]);
    }
    MPI_Finalize();
    return 0;
}
