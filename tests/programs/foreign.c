/* Programs modelled on ones written elsewhere (mpi4py's test suite, threaded codes, codes
 * that describe one message with different datatypes), each checked against the library's
 * own result (the same call through PMPI, on identical inputs) or a known value.
 * Usage: foreign SCENARIO [ROUNDS [SIZES | THREADS]]; rank 0 prints "SCENARIO: N cases, M failures"
 * (N: the cases rank 0 ran; M: failures over all ranks); failures are described on stderr.
 *   iagree     mpi4py's testIAgree: on a duplicate of the world, per root a barrier, the
 *              root posts an MPI_Iallreduce before a second barrier and the others after
 *              theirs; plus an Ibcast posted on either side of an allreduce, and blocking
 *              allreduces in between.
 *   threads    MPI_THREAD_MULTIPLE, THREADS (third argument, default 4) threads per rank,
 *              each with its own duplicate of the world, whose first collectives start at
 *              once: Allreduce, Bcast, Allgather.
 *   mixed      one message described with different datatypes on different ranks (a
 *              contiguous 6-int type on some, 6 MPI_INTs on others): Bcast, Gather,
 *              Scatter, Allgather, Alltoall, short and over 1 MiB.
 *   gaps       every regrouped collective with datatypes that have gaps (MPI_INT resized to
 *              extent 8; two ints in a struct with a non-zero lower bound), gaps of the
 *              receive buffers pre-filled and compared byte for byte; SIZES 1: short
 *              counts only, 2: also counts over 1 MiB.
 *   largecount the MPI-4 large-count (_c) forms of every regrouped collective. */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long cases, failures;
static int wrank, wsize;
static pthread_mutex_t tally = PTHREAD_MUTEX_INITIALIZER;

static void check(const char *what, int root, long count, const void *a, const void *b, size_t n) {
    pthread_mutex_lock(&tally);
    cases++;
    if (memcmp(a, b, n) != 0) {
        failures++;
        if (failures <= 20) {
            const unsigned char *x = a, *y = b;
            size_t i = 0;
            while (i < n && x[i] == y[i]) i++;
            fprintf(stderr, "FAIL %s root %d count %ld (world rank %d): first difference at byte %zu of %zu\n", what, root, count, wrank,
                    i, n);
        }
    }
    pthread_mutex_unlock(&tally);
}

static void fill(int *v, size_t n, int r, int k) {
    for (size_t i = 0; i < n; i++) v[i] = (int)((i * 7 + (size_t)r * 13 + (size_t)k * 3) % 1000) + 1;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return p;
}

/* ---- iagree ------------------------------------------------------------------------- */

static void iagree(int rounds) {
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    int r = wrank, n = wsize;
    int v[100], a[100], b[100];
    for (int k = 0; k < rounds; k++) {
        for (int root = 0; root < n; root++) {
            /* mpi4py test_ulfm.py testIAgree, where Comm.Iagree is MPI_Iallreduce(BAND). */
            int flag = ~0 ^ (1 << ((r + k) % 8)), out = 0, want = ~0;
            for (int q = 0; q < n; q++) want &= ~0 ^ (1 << ((q + k) % 8));
            MPI_Request req;
            MPI_Barrier(c);
            if (r == root) MPI_Iallreduce(&flag, &out, 1, MPI_INT, MPI_BAND, c, &req);
            MPI_Barrier(c);
            if (r != root) MPI_Iallreduce(&flag, &out, 1, MPI_INT, MPI_BAND, c, &req);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
            check("iallreduce around barriers", root, 1, &out, &want, sizeof out);
            /* An Ibcast the root posts before a blocking allreduce and the others after it. */
            int bc[4] = {k, root, 7, -1}, bw[4] = {k, root, 7, -1};
            if (r != root) memset(bc, 0, sizeof bc);
            fill(v, 100, r, k);
            if (r == root) MPI_Ibcast(bc, 4, MPI_INT, root, c, &req);
            PMPI_Allreduce(v, a, 100, MPI_INT, MPI_SUM, c);
            MPI_Allreduce(v, b, 100, MPI_INT, MPI_SUM, c);
            if (r != root) MPI_Ibcast(bc, 4, MPI_INT, root, c, &req);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
            check("allreduce between ibcasts", -1, 100, a, b, sizeof a);
            check("ibcast around allreduce", root, 4, bc, bw, sizeof bc);
        }
    }
    MPI_Comm_free(&c);
}

/* ---- threads ------------------------------------------------------------------------ */

#define MAXTHREADS 64
static pthread_barrier_t start_line;
struct job {
    MPI_Comm c;
    int t, rounds;
};

static void *threaded(void *arg) {
    struct job *j = arg;
    int n, r;
    MPI_Comm_size(j->c, &n);
    MPI_Comm_rank(j->c, &r);
    const int counts[3] = {1, 1000, 70000};
    int *v = xmalloc(sizeof(int) * 70000), *a = xmalloc(sizeof(int) * 70000 * n), *b = xmalloc(sizeof(int) * 70000 * n);
    /* Every thread's first collective at once. */
    pthread_barrier_wait(&start_line);
    for (int k = 0; k < j->rounds; k++) {
        int cnt = counts[k % 3];
        fill(v, cnt, r + j->t, k);
        PMPI_Allreduce(v, a, cnt, MPI_INT, MPI_SUM, j->c);
        MPI_Allreduce(v, b, cnt, MPI_INT, MPI_SUM, j->c);
        check("threaded allreduce", -1, cnt, a, b, sizeof(int) * cnt);
        int root = (k + j->t) % n;
        memcpy(a, v, sizeof(int) * cnt), memcpy(b, v, sizeof(int) * cnt);
        PMPI_Bcast(a, cnt, MPI_INT, root, j->c);
        MPI_Bcast(b, cnt, MPI_INT, root, j->c);
        check("threaded bcast", root, cnt, a, b, sizeof(int) * cnt);
        PMPI_Allgather(v, cnt, MPI_INT, a, cnt, MPI_INT, j->c);
        MPI_Allgather(v, cnt, MPI_INT, b, cnt, MPI_INT, j->c);
        check("threaded allgather", -1, cnt, a, b, sizeof(int) * cnt * n);
    }
    free(v), free(a), free(b);
    return NULL;
}

static void threads(int rounds, int nt) {
    struct job jobs[MAXTHREADS];
    pthread_t tid[MAXTHREADS];
    if (nt < 1 || nt > MAXTHREADS) nt = 4;
    pthread_barrier_init(&start_line, NULL, nt);
    for (int t = 0; t < nt; t++) {
        MPI_Comm_dup(MPI_COMM_WORLD, &jobs[t].c);
        jobs[t].t = t, jobs[t].rounds = rounds;
    }
    for (int t = 0; t < nt; t++) pthread_create(&tid[t], NULL, threaded, &jobs[t]);
    for (int t = 0; t < nt; t++) pthread_join(tid[t], NULL);
    for (int t = 0; t < nt; t++) MPI_Comm_free(&jobs[t].c);
    pthread_barrier_destroy(&start_line);
}

/* ---- mixed -------------------------------------------------------------------------- */

static void mixed(int rounds) {
    MPI_Datatype six;
    MPI_Type_contiguous(6, MPI_INT, &six);
    MPI_Type_commit(&six);
    int r = wrank, n = wsize;
    /* This rank's description of `m` six-int units: (count, type). */
#define DESC(rank, m) ((rank) % 2 == 0 ? (m) : 6 * (m)), ((rank) % 2 == 0 ? six : MPI_INT)
    const int units[4] = {1, 1001, 50001, 87382};
    size_t most = (size_t)6 * 87382 * n;
    int *s = xmalloc(sizeof(int) * most), *a = xmalloc(sizeof(int) * most), *b = xmalloc(sizeof(int) * most);
    for (int k = 0; k < rounds; k++) {
        for (int u = 0; u < 4; u++) {
            int m = units[u];
            size_t one = sizeof(int) * 6 * (size_t)m, all = one * n;
            for (int root = 0; root < n; root++) {
                /* The root describes the message as m six-int units, the others as 6m ints
                 * (or the other way round, by parity). */
                fill(a, 6 * (size_t)m, r == root ? 1 : 2, k + root), memcpy(b, a, one);
                int cnt = r == root ? m : 6 * m;
                MPI_Datatype t = r == root ? six : MPI_INT;
                if ((root + k) % 2) cnt = r == root ? 6 * m : m, t = r == root ? MPI_INT : six;
                PMPI_Bcast(a, cnt, t, root, MPI_COMM_WORLD);
                MPI_Bcast(b, cnt, t, root, MPI_COMM_WORLD);
                check("bcast of one message in two datatypes", root, m, a, b, one);
            }
            if (m > 50001) continue;
            int root = k % n;
            fill(s, 6 * (size_t)m * n, r, k);
            memset(a, 0xab, all), memset(b, 0xab, all);
            PMPI_Gather(s, DESC(r, m), a, DESC(r + 1, m), root, MPI_COMM_WORLD);
            MPI_Gather(s, DESC(r, m), b, DESC(r + 1, m), root, MPI_COMM_WORLD);
            if (r == root) check("gather in two datatypes", root, m, a, b, all);
            memset(a, 0xab, one), memset(b, 0xab, one);
            PMPI_Scatter(s, DESC(r + 1, m), a, DESC(r, m), root, MPI_COMM_WORLD);
            MPI_Scatter(s, DESC(r + 1, m), b, DESC(r, m), root, MPI_COMM_WORLD);
            check("scatter in two datatypes", root, m, a, b, one);
            memset(a, 0xab, all), memset(b, 0xab, all);
            PMPI_Allgather(s, DESC(r, m), a, DESC(r + 1, m), MPI_COMM_WORLD);
            MPI_Allgather(s, DESC(r, m), b, DESC(r + 1, m), MPI_COMM_WORLD);
            check("allgather in two datatypes", -1, m, a, b, all);
            if (m > 1001) continue;
            memset(a, 0xab, all), memset(b, 0xab, all);
            PMPI_Alltoall(s, DESC(r, m), a, DESC(r + 1, m), MPI_COMM_WORLD);
            MPI_Alltoall(s, DESC(r, m), b, DESC(r + 1, m), MPI_COMM_WORLD);
            check("alltoall in two datatypes", -1, m, a, b, all);
        }
    }
#undef DESC
    free(s), free(a), free(b);
    MPI_Type_free(&six);
}

/* ---- gaps --------------------------------------------------------------------------- */

/* A datatype with gaps: `ints` ints per element at byte offsets `off` from the element's
 * address, elements `ext` bytes apart. */
struct gapped {
    const char *name;
    MPI_Datatype t;
    MPI_Op sum;
    int ext, ints, off[2];
};
static struct gapped gA, gB;

static void gsum(void *in, void *inout, int *len, struct gapped *g) {
    char *x = in, *y = inout;
    for (int i = 0; i < *len; i++)
        for (int j = 0; j < g->ints; j++) *(int *)(y + (size_t)i * g->ext + g->off[j]) += *(int *)(x + (size_t)i * g->ext + g->off[j]);
}
static void gsumA(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    gsum(in, inout, len, &gA);
}
static void gsumB(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    gsum(in, inout, len, &gB);
}

/* `count` elements of g at `buf`: every byte 0xab (gaps included), the ints deterministic. */
static void gfill(struct gapped *g, char *buf, size_t count, int r, int k) {
    memset(buf, 0xab, count * g->ext);
    for (size_t i = 0; i < count; i++)
        for (int j = 0; j < g->ints; j++) *(int *)(buf + i * g->ext + g->off[j]) = (int)((i * 5 + j + (size_t)r * 11 + k) % 997);
}

static void gaps_with(struct gapped *g, int count, int k) {
    MPI_Comm c = MPI_COMM_WORLD;
    int r = wrank, n = wsize;
    size_t one = (size_t)count * g->ext, all = one * n;
    char *s = xmalloc(all), *a = xmalloc(all), *b = xmalloc(all);
    int *cnts = xmalloc(sizeof(int) * n), *displs = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) cnts[i] = count, displs[i] = i * count;
    char what[96];
#define NAME(op) (snprintf(what, sizeof what, "%s %s", op, g->name), what)
#define RESET(len) (gfill(g, a, (len) / g->ext, r, k), memcpy(b, a, (len)))
    gfill(g, s, (size_t)count * n, r, k + 1);
    for (int root = 0; root < n; root++) {
        RESET(one);
        PMPI_Bcast(a, count, g->t, root, c);
        MPI_Bcast(b, count, g->t, root, c);
        check(NAME("bcast"), root, count, a, b, one);
    }
    for (int root = 0; root < n; root += n - 1) {
        RESET(one);
        PMPI_Reduce(s, a, count, g->t, g->sum, root, c);
        MPI_Reduce(s, b, count, g->t, g->sum, root, c);
        check(NAME("reduce"), root, count, a, b, one);
        RESET(all);
        PMPI_Gather(s, count, g->t, a, count, g->t, root, c);
        MPI_Gather(s, count, g->t, b, count, g->t, root, c);
        check(NAME("gather"), root, count, a, b, all);
        RESET(all);
        PMPI_Gatherv(s, count, g->t, a, cnts, displs, g->t, root, c);
        MPI_Gatherv(s, count, g->t, b, cnts, displs, g->t, root, c);
        check(NAME("gatherv"), root, count, a, b, all);
        RESET(one);
        PMPI_Scatter(s, count, g->t, a, count, g->t, root, c);
        MPI_Scatter(s, count, g->t, b, count, g->t, root, c);
        check(NAME("scatter"), root, count, a, b, one);
        RESET(one);
        PMPI_Scatterv(s, cnts, displs, g->t, a, count, g->t, root, c);
        MPI_Scatterv(s, cnts, displs, g->t, b, count, g->t, root, c);
        check(NAME("scatterv"), root, count, a, b, one);
    }
    RESET(one);
    PMPI_Allreduce(s, a, count, g->t, g->sum, c);
    MPI_Allreduce(s, b, count, g->t, g->sum, c);
    check(NAME("allreduce"), -1, count, a, b, one);
    RESET(all);
    PMPI_Allgather(s, count, g->t, a, count, g->t, c);
    MPI_Allgather(s, count, g->t, b, count, g->t, c);
    check(NAME("allgather"), -1, count, a, b, all);
    RESET(all);
    PMPI_Allgatherv(s, count, g->t, a, cnts, displs, g->t, c);
    MPI_Allgatherv(s, count, g->t, b, cnts, displs, g->t, c);
    check(NAME("allgatherv"), -1, count, a, b, all);
    RESET(all);
    PMPI_Alltoall(s, count, g->t, a, count, g->t, c);
    MPI_Alltoall(s, count, g->t, b, count, g->t, c);
    check(NAME("alltoall"), -1, count, a, b, all);
    RESET(all);
    PMPI_Alltoallv(s, cnts, displs, g->t, a, cnts, displs, g->t, c);
    MPI_Alltoallv(s, cnts, displs, g->t, b, cnts, displs, g->t, c);
    check(NAME("alltoallv"), -1, count, a, b, all);
    RESET(one);
    PMPI_Reduce_scatter_block(s, a, count, g->t, g->sum, c);
    MPI_Reduce_scatter_block(s, b, count, g->t, g->sum, c);
    check(NAME("reduce_scatter_block"), -1, count, a, b, one);
    RESET(one);
    PMPI_Reduce_scatter(s, a, cnts, g->t, g->sum, c);
    MPI_Reduce_scatter(s, b, cnts, g->t, g->sum, c);
    check(NAME("reduce_scatter"), -1, count, a, b, one);
    RESET(one);
    PMPI_Scan(s, a, count, g->t, g->sum, c);
    MPI_Scan(s, b, count, g->t, g->sum, c);
    check(NAME("scan"), -1, count, a, b, one);
    RESET(one);
    PMPI_Exscan(s, a, count, g->t, g->sum, c);
    MPI_Exscan(s, b, count, g->t, g->sum, c);
    /* Rank 0's result is undefined; every other rank's gaps must stay as they were. */
    if (r > 0) check(NAME("exscan"), -1, count, a, b, one);
#undef NAME
#undef RESET
    free(s), free(a), free(b), free(cnts), free(displs);
}

static void gaps(int rounds, int sizes) {
    /* MPI_INT resized to extent 8: four bytes of gap after every int. */
    MPI_Type_create_resized(MPI_INT, 0, 8, &gA.t);
    MPI_Type_commit(&gA.t);
    gA.name = "int extent 8", gA.ext = 8, gA.ints = 1, gA.off[0] = 0;
    MPI_Op_create(gsumA, 1, &gA.sum);
    /* Two ints at 8 and 16, lower bound 4, extent 20: gaps before, between and after. */
    int bl[2] = {1, 1};
    MPI_Aint dis[2] = {8, 16};
    MPI_Datatype ty[2] = {MPI_INT, MPI_INT}, raw;
    MPI_Type_create_struct(2, bl, dis, ty, &raw);
    MPI_Type_create_resized(raw, 4, 20, &gB.t);
    MPI_Type_free(&raw);
    MPI_Type_commit(&gB.t);
    gB.name = "two ints lb 4 extent 20", gB.ext = 20, gB.ints = 2, gB.off[0] = 8, gB.off[1] = 16;
    MPI_Op_create(gsumB, 1, &gB.sum);
    for (int k = 0; k < rounds; k++) {
        gaps_with(&gA, 7, k);
        gaps_with(&gB, 3, k);
        if (sizes > 1) {
            /* Over 1 MiB of data: the pipelined paths. */
            gaps_with(&gA, 262147, k);
            gaps_with(&gB, 131075, k);
        }
    }
    MPI_Op_free(&gA.sum), MPI_Op_free(&gB.sum);
    MPI_Type_free(&gA.t), MPI_Type_free(&gB.t);
}

/* ---- largecount --------------------------------------------------------------------- */

static void largecount(int rounds) {
#if MPI_VERSION >= 4
    MPI_Comm c = MPI_COMM_WORLD;
    int r = wrank, n = wsize;
    const MPI_Count counts[2] = {7, 300001};
    for (int k = 0; k < rounds; k++) {
        for (int ci = 0; ci < 2; ci++) {
            MPI_Count m = counts[ci], all = m * n;
            int *s = xmalloc(sizeof(int) * all), *a = xmalloc(sizeof(int) * all), *b = xmalloc(sizeof(int) * all);
            MPI_Count *cnts = xmalloc(sizeof(MPI_Count) * n);
            MPI_Aint *displs = xmalloc(sizeof(MPI_Aint) * n);
            for (int i = 0; i < n; i++) cnts[i] = m, displs[i] = (MPI_Aint)i * m;
            size_t one = sizeof(int) * m, every = sizeof(int) * all;
            int root = (k + ci) % n;
            fill(s, all, r, k);
/* F(args) through PMPI into a, then through the shim into b (X: the receive buffer). */
#define SAME(what, len, F, ...)                                                                                        \
    do {                                                                                                               \
        memset(a, 0xab, every), memset(b, 0xab, every);                                                                \
        int *X = a;                                                                                                    \
        P##F(__VA_ARGS__);                                                                                             \
        X = b;                                                                                                         \
        F(__VA_ARGS__);                                                                                                \
        check(what, root, m, a, b, len);                                                                               \
    } while (0)
            memcpy(a, s, one), memcpy(b, s, one);
            PMPI_Bcast_c(a, m, MPI_INT, root, c);
            MPI_Bcast_c(b, m, MPI_INT, root, c);
            check("bcast_c", root, m, a, b, one);
            SAME("reduce_c", r == root ? one : 0, MPI_Reduce_c, s, r == root ? X : NULL, m, MPI_INT, MPI_SUM, root, c);
            SAME("allreduce_c", one, MPI_Allreduce_c, s, X, m, MPI_INT, MPI_SUM, c);
            SAME("gather_c", r == root ? every : 0, MPI_Gather_c, s, m, MPI_INT, X, m, MPI_INT, root, c);
            SAME("gatherv_c", r == root ? every : 0, MPI_Gatherv_c, s, m, MPI_INT, X, cnts, displs, MPI_INT, root, c);
            SAME("scatter_c", one, MPI_Scatter_c, s, m, MPI_INT, X, m, MPI_INT, root, c);
            SAME("scatterv_c", one, MPI_Scatterv_c, s, cnts, displs, MPI_INT, X, m, MPI_INT, root, c);
            SAME("allgather_c", every, MPI_Allgather_c, s, m, MPI_INT, X, m, MPI_INT, c);
            SAME("allgatherv_c", every, MPI_Allgatherv_c, s, m, MPI_INT, X, cnts, displs, MPI_INT, c);
            SAME("alltoall_c", every, MPI_Alltoall_c, s, m, MPI_INT, X, m, MPI_INT, c);
            SAME("alltoallv_c", every, MPI_Alltoallv_c, s, cnts, displs, MPI_INT, X, cnts, displs, MPI_INT, c);
            SAME("reduce_scatter_block_c", one, MPI_Reduce_scatter_block_c, s, X, m, MPI_INT, MPI_SUM, c);
            SAME("reduce_scatter_c", one, MPI_Reduce_scatter_c, s, X, cnts, MPI_INT, MPI_SUM, c);
            SAME("scan_c", one, MPI_Scan_c, s, X, m, MPI_INT, MPI_SUM, c);
            SAME("exscan_c", r > 0 ? one : 0, MPI_Exscan_c, s, X, m, MPI_INT, MPI_SUM, c);
#undef SAME
            free(s), free(a), free(b), free(cnts), free(displs);
        }
    }
#else
    (void)rounds;
    if (wrank == 0) fprintf(stderr, "largecount: this MPI has no large-count functions\n");
    failures++;
#endif
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    int rounds = argc > 2 ? atoi(argv[2]) : 1, sizes = argc > 3 ? atoi(argv[3]) : 2;
    int provided;
    MPI_Init_thread(&argc, &argv, strcmp(what, "threads") == 0 ? MPI_THREAD_MULTIPLE : MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    if (strcmp(what, "iagree") == 0) {
        iagree(rounds);
    } else if (strcmp(what, "threads") == 0) {
        if (provided < MPI_THREAD_MULTIPLE) {
            fprintf(stderr, "threads: MPI_THREAD_MULTIPLE not provided\n");
            failures++;
        } else {
            threads(rounds, argc > 3 ? atoi(argv[3]) : 4);
        }
    } else if (strcmp(what, "mixed") == 0) {
        mixed(rounds);
    } else if (strcmp(what, "gaps") == 0) {
        gaps(rounds, sizes);
    } else if (strcmp(what, "largecount") == 0) {
        largecount(rounds);
    } else {
        if (wrank == 0) fprintf(stderr, "unknown scenario %s\n", what);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    long all = 0;
    PMPI_Reduce(&failures, &all, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (wrank == 0) printf("%s: %ld cases, %ld failures\n", what, cases, all);
    MPI_Finalize();
    return 0;
}
