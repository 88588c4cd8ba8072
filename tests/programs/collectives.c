/* Every collective the shim can run site-aware, checked against the library's own result
 * (the same call through PMPI, on identical inputs) on shapes that break naive code:
 * the world and MPI_Comm_split sub-communicators (one in reversed order, one with holes),
 * odd counts, MPI_IN_PLACE, a non-contiguous vector type, a struct type with a gap, a
 * non-commutative user op (2x2 matrix product) and commutative ones on the struct and vector.
 * Usage: collectives ROUNDS [PAUSE_MS [SIZES]]. Rank 0 prints "collectives: N cases, M
 * failures"; failures are described on stderr. PAUSE_MS sleeps between rounds (for map
 * changes); SIZES (1-4, default 4) limits the counts tried to the first few of 1, 7, 250, 2001;
 * with all four, every round also runs scans, exscans, reduces and broadcasts of vectors over 1 MiB
 * (which the shim pipelines in uneven pieces). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static long cases, failures;
static int wrank;
static MPI_Datatype vec2, pair_t, mat_t;
static MPI_Op matmul, pairsum, vecmax;

typedef struct {
    int a;
    double b;
} pair;

static void matmul_fn(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    int *x = in, *y = inout;
    for (int i = 0; i < *len; i++, x += 4, y += 4) {
        /* Exact mod 65521 (64-bit products): associative, so any grouping gives one result. */
        long long a0 = x[0], a1 = x[1], a2 = x[2], a3 = x[3];
        int r0 = (int)((a0 * y[0] + a1 * y[2]) % 65521), r1 = (int)((a0 * y[1] + a1 * y[3]) % 65521);
        int r2 = (int)((a2 * y[0] + a3 * y[2]) % 65521), r3 = (int)((a2 * y[1] + a3 * y[3]) % 65521);
        y[0] = r0, y[1] = r1, y[2] = r2, y[3] = r3;
    }
}

/* Elementwise max over vec2 elements (two ints three apart; the middle int is a gap). */
static void vecmax_fn(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    int *x = in, *y = inout;
    for (int i = 0; i < *len; i++, x += 3, y += 3) {
        if (x[0] > y[0]) y[0] = x[0];
        if (x[2] > y[2]) y[2] = x[2];
    }
}

static void pairsum_fn(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    pair *x = in, *y = inout;
    for (int i = 0; i < *len; i++) y[i].a += x[i].a, y[i].b += x[i].b;
}

static void check(const char *what, int root, int count, MPI_Comm c, const void *a, const void *b, size_t n) {
    cases++;
    if (memcmp(a, b, n) != 0) {
        failures++;
        int cn, cr;
        MPI_Comm_size(c, &cn);
        MPI_Comm_rank(c, &cr);
        if (failures <= 20)
            fprintf(stderr, "FAIL %s root %d count %d on a communicator of %d (rank %d, world %d)\n", what, root, count, cn, cr, wrank);
    }
}

/* Deterministic inputs: element i of rank r's buffer in round k. */
static void fill_int(int *v, size_t n, int r, int k, int salt) {
    for (size_t i = 0; i < n; i++) v[i] = (int)((i * 7 + r * 13 + k * 3 + salt) % 1000) + 1;
}
static void fill_mat(int *v, size_t n, int r, int k) {
    for (size_t i = 0; i < n; i++) {
        v[4 * i] = (int)(r + i + k) % 7 + 1, v[4 * i + 1] = (int)(r * 3 + i) % 5;
        v[4 * i + 2] = (int)(r + 2 * i) % 3, v[4 * i + 3] = (int)(r * i + k) % 11 + 1;
    }
}
static void fill_pair(pair *v, size_t n, int r, int k) {
    memset(v, 0, n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i].a = r + (int)i + k, v[i].b = r * 0.5 + (double)i;
}

#define MAXN 8
#define MAXC 2100
static int sa[MAXN * MAXC * 4], sb[MAXN * MAXC * 4], ra[MAXN * MAXC * 4], rb[MAXN * MAXC * 4];
static pair pa[MAXN * MAXC], pb[MAXN * MAXC], pra[MAXN * MAXC], prb[MAXN * MAXC];

static void reset(void) {
    memset(ra, 0xab, sizeof ra);
    memset(rb, 0xab, sizeof rb);
    memset(pra, 0xab, sizeof pra);
    memset(prb, 0xab, sizeof prb);
}

static void rounds_on(MPI_Comm c, int k, int count) {
    int n, r;
    MPI_Comm_size(c, &n);
    MPI_Comm_rank(c, &r);
    size_t all = (size_t)n * count;
    int roots[3] = {0, n - 1, n / 2};

    MPI_Barrier(c);

    /* Bcast: ints, and the vector type (2 ints in 3 slots). */
    for (int root = 0; root < n; root++) {
        reset();
        fill_int(ra, count, r == root ? 1 : 2, k, root);
        memcpy(rb, ra, sizeof(int) * count);
        PMPI_Bcast(ra, count, MPI_INT, root, c);
        MPI_Bcast(rb, count, MPI_INT, root, c);
        check("bcast int", root, count, c, ra, rb, sizeof(int) * count);
        int vc = count / 3 + 1;
        reset();
        fill_int(ra, 3 * vc, r == root ? 1 : 2, k, root + 5);
        memcpy(rb, ra, sizeof(int) * 3 * vc);
        PMPI_Bcast(ra, vc, vec2, root, c);
        MPI_Bcast(rb, vc, vec2, root, c);
        check("bcast vector", root, vc, c, ra, rb, sizeof(int) * 3 * vc);
    }

    for (int ri = 0; ri < 3; ri++) {
        int root = roots[ri];
        /* Reduce: sum, in place at the root, a non-commutative op, a user op on a struct. */
        reset();
        fill_int(sa, count, r, k, 1);
        PMPI_Reduce(sa, ra, count, MPI_INT, MPI_SUM, root, c);
        MPI_Reduce(sa, rb, count, MPI_INT, MPI_SUM, root, c);
        if (r == root) check("reduce sum", root, count, c, ra, rb, sizeof(int) * count);
        /* (The reference is out of place, and long in-place reductions go to root 0 only:
         * MPICH 4.0.2 itself crashes on in-place reductions of long messages to another
         * root, and the shim passes calls it does not regroup to the library unchanged.) */
        if (root == 0 || count <= 250) {
            reset();
            fill_int(sa, count, r, k, 2);
            fill_int(rb, count, r, k, 2);
            PMPI_Reduce(sa, ra, count, MPI_INT, MPI_MAX, root, c);
            MPI_Reduce(r == root ? MPI_IN_PLACE : rb, r == root ? rb : NULL, count, MPI_INT, MPI_MAX, root, c);
            if (r == root) check("reduce in place", root, count, c, ra, rb, sizeof(int) * count);
        }
        int mc = count / 4 + 1;
        reset();
        fill_mat(sa, mc, r, k);
        PMPI_Reduce(sa, ra, mc, mat_t, matmul, root, c);
        MPI_Reduce(sa, rb, mc, mat_t, matmul, root, c);
        if (r == root) check("reduce non-commutative", root, mc, c, ra, rb, sizeof(int) * 4 * mc);
        reset();
        fill_pair(pa, count, r, k);
        PMPI_Reduce(pa, pra, count, pair_t, pairsum, root, c);
        MPI_Reduce(pa, prb, count, pair_t, pairsum, root, c);
        if (r == root) check("reduce struct", root, count, c, pra, prb, sizeof(pair) * count);

        /* Gather: ints; the vector type received as ints; in place at the root. */
        reset();
        fill_int(sa, count, r, k, 3);
        PMPI_Gather(sa, count, MPI_INT, ra, count, MPI_INT, root, c);
        MPI_Gather(sa, count, MPI_INT, rb, count, MPI_INT, root, c);
        if (r == root) check("gather int", root, count, c, ra, rb, sizeof(int) * all);
        int vc = count / 2 + 1;
        reset();
        fill_int(sa, 3 * vc, r, k, 4);
        PMPI_Gather(sa, vc, vec2, ra, 2 * vc, MPI_INT, root, c);
        MPI_Gather(sa, vc, vec2, rb, 2 * vc, MPI_INT, root, c);
        if (r == root) check("gather vector", root, vc, c, ra, rb, sizeof(int) * 2 * vc * n);
        reset();
        fill_int(ra + r * count, count, r, k, 5);
        fill_int(rb + r * count, count, r, k, 5);
        PMPI_Gather(r == root ? MPI_IN_PLACE : ra + r * count, count, MPI_INT, ra, count, MPI_INT, root, c);
        MPI_Gather(r == root ? MPI_IN_PLACE : rb + r * count, count, MPI_INT, rb, count, MPI_INT, root, c);
        if (r == root) check("gather in place", root, count, c, ra, rb, sizeof(int) * all);

        /* Gatherv: counts vary by rank, blocks land in reverse order with gaps. */
        int cnt[MAXN], dsp[MAXN], tot = 0;
        for (int i = n - 1; i >= 0; i--) cnt[i] = count / (i + 1) + i % 3, dsp[i] = tot, tot += cnt[i] + 1;
        reset();
        fill_int(sa, cnt[r], r, k, 6);
        PMPI_Gatherv(sa, cnt[r], MPI_INT, ra, cnt, dsp, MPI_INT, root, c);
        MPI_Gatherv(sa, cnt[r], MPI_INT, rb, cnt, dsp, MPI_INT, root, c);
        if (r == root) check("gatherv", root, count, c, ra, rb, sizeof(int) * tot);
        reset();
        fill_int(ra + dsp[r], cnt[r], r, k, 7);
        fill_int(rb + dsp[r], cnt[r], r, k, 7);
        PMPI_Gatherv(r == root ? MPI_IN_PLACE : ra + dsp[r], cnt[r], MPI_INT, ra, cnt, dsp, MPI_INT, root, c);
        MPI_Gatherv(r == root ? MPI_IN_PLACE : rb + dsp[r], cnt[r], MPI_INT, rb, cnt, dsp, MPI_INT, root, c);
        if (r == root) check("gatherv in place", root, count, c, ra, rb, sizeof(int) * tot);

        /* Scatter, Scatterv, in place at the root; the vector type scattered as ints. */
        reset();
        fill_int(sa, all, root, k, 8);
        PMPI_Scatter(sa, count, MPI_INT, ra, count, MPI_INT, root, c);
        MPI_Scatter(sa, count, MPI_INT, rb, count, MPI_INT, root, c);
        check("scatter int", root, count, c, ra, rb, sizeof(int) * count);
        reset();
        fill_int(sa, 3 * vc * n, root, k, 9);
        PMPI_Scatter(sa, vc, vec2, ra, 2 * vc, MPI_INT, root, c);
        MPI_Scatter(sa, vc, vec2, rb, 2 * vc, MPI_INT, root, c);
        check("scatter vector", root, vc, c, ra, rb, sizeof(int) * 2 * vc);
        reset();
        fill_int(sa, all, root, k, 10);
        memcpy(ra, sa, sizeof(int) * all);
        memcpy(rb, sa, sizeof(int) * all);
        PMPI_Scatter(ra, count, MPI_INT, r == root ? MPI_IN_PLACE : ra, count, MPI_INT, root, c);
        MPI_Scatter(rb, count, MPI_INT, r == root ? MPI_IN_PLACE : rb, count, MPI_INT, root, c);
        check("scatter in place", root, count, c, ra, rb, sizeof(int) * all);
        reset();
        fill_int(sa, tot, root, k, 11);
        PMPI_Scatterv(sa, cnt, dsp, MPI_INT, ra, cnt[r], MPI_INT, root, c);
        MPI_Scatterv(sa, cnt, dsp, MPI_INT, rb, cnt[r], MPI_INT, root, c);
        check("scatterv", root, count, c, ra, rb, sizeof(int) * cnt[r]);
        reset();
        fill_int(ra, tot, root, k, 12);
        memcpy(rb, ra, sizeof(int) * tot);
        PMPI_Scatterv(ra, cnt, dsp, MPI_INT, r == root ? MPI_IN_PLACE : ra, cnt[r], MPI_INT, root, c);
        MPI_Scatterv(rb, cnt, dsp, MPI_INT, r == root ? MPI_IN_PLACE : rb, cnt[r], MPI_INT, root, c);
        check("scatterv in place", root, count, c, ra, rb, sizeof(int) * (r == root ? tot : cnt[r]));
    }

    /* Allreduce: sum, in place, non-commutative, a user op on the struct type (predefined
     * ops do not take non-contiguous types in every library). */
    reset();
    fill_int(sa, count, r, k, 13);
    PMPI_Allreduce(sa, ra, count, MPI_INT, MPI_SUM, c);
    MPI_Allreduce(sa, rb, count, MPI_INT, MPI_SUM, c);
    check("allreduce sum", -1, count, c, ra, rb, sizeof(int) * count);
    reset();
    fill_int(ra, count, r, k, 14);
    fill_int(rb, count, r, k, 14);
    PMPI_Allreduce(MPI_IN_PLACE, ra, count, MPI_INT, MPI_BXOR, c);
    MPI_Allreduce(MPI_IN_PLACE, rb, count, MPI_INT, MPI_BXOR, c);
    check("allreduce in place", -1, count, c, ra, rb, sizeof(int) * count);
    int mc = count / 4 + 1;
    reset();
    fill_mat(sa, mc, r, k);
    PMPI_Allreduce(sa, ra, mc, mat_t, matmul, c);
    MPI_Allreduce(sa, rb, mc, mat_t, matmul, c);
    check("allreduce non-commutative", -1, mc, c, ra, rb, sizeof(int) * 4 * mc);
    int vc = count / 3 + 1;
    reset();
    fill_pair(pa, count, r, k);
    PMPI_Allreduce(pa, pra, count, pair_t, pairsum, c);
    MPI_Allreduce(pa, prb, count, pair_t, pairsum, c);
    check("allreduce struct", -1, count, c, pra, prb, sizeof(pair) * count);

    /* Allgather(v): ints, vector sent as ints, in place. */
    reset();
    fill_int(sa, count, r, k, 16);
    PMPI_Allgather(sa, count, MPI_INT, ra, count, MPI_INT, c);
    MPI_Allgather(sa, count, MPI_INT, rb, count, MPI_INT, c);
    check("allgather int", -1, count, c, ra, rb, sizeof(int) * all);
    reset();
    fill_int(sa, 3 * vc, r, k, 17);
    PMPI_Allgather(sa, vc, vec2, ra, 2 * vc, MPI_INT, c);
    MPI_Allgather(sa, vc, vec2, rb, 2 * vc, MPI_INT, c);
    check("allgather vector", -1, vc, c, ra, rb, sizeof(int) * 2 * vc * n);
    reset();
    fill_int(ra + r * count, count, r, k, 18);
    fill_int(rb + r * count, count, r, k, 18);
    PMPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ra, count, MPI_INT, c);
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rb, count, MPI_INT, c);
    check("allgather in place", -1, count, c, ra, rb, sizeof(int) * all);
    int cnt[MAXN], dsp[MAXN], tot = 0;
    for (int i = n - 1; i >= 0; i--) cnt[i] = count / (i + 1) + i % 3, dsp[i] = tot, tot += cnt[i] + 2;
    reset();
    fill_int(sa, cnt[r], r, k, 19);
    PMPI_Allgatherv(sa, cnt[r], MPI_INT, ra, cnt, dsp, MPI_INT, c);
    MPI_Allgatherv(sa, cnt[r], MPI_INT, rb, cnt, dsp, MPI_INT, c);
    check("allgatherv", -1, count, c, ra, rb, sizeof(int) * tot);
    reset();
    fill_int(ra + dsp[r], cnt[r], r, k, 20);
    fill_int(rb + dsp[r], cnt[r], r, k, 20);
    PMPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ra, cnt, dsp, MPI_INT, c);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rb, cnt, dsp, MPI_INT, c);
    check("allgatherv in place", -1, count, c, ra, rb, sizeof(int) * tot);

    /* Alltoall(v): ints, vector sent as ints, in place, varying counts with gaps. */
    int bc = count / n + 1;
    reset();
    fill_int(sa, bc * n, r, k, 21);
    PMPI_Alltoall(sa, bc, MPI_INT, ra, bc, MPI_INT, c);
    MPI_Alltoall(sa, bc, MPI_INT, rb, bc, MPI_INT, c);
    check("alltoall int", -1, bc, c, ra, rb, sizeof(int) * bc * n);
    reset();
    fill_int(sa, 3 * bc * n, r, k, 22);
    PMPI_Alltoall(sa, bc, vec2, ra, 2 * bc, MPI_INT, c);
    MPI_Alltoall(sa, bc, vec2, rb, 2 * bc, MPI_INT, c);
    check("alltoall vector", -1, bc, c, ra, rb, sizeof(int) * 2 * bc * n);
    reset();
    fill_int(ra, bc * n, r, k, 23);
    fill_int(rb, bc * n, r, k, 23);
    PMPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ra, bc, MPI_INT, c);
    MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rb, bc, MPI_INT, c);
    check("alltoall in place", -1, bc, c, ra, rb, sizeof(int) * bc * n);
    int scnt[MAXN], sdsp[MAXN], rcnt[MAXN], rdsp[MAXN], st = 0, rt = 0;
    for (int d = n - 1; d >= 0; d--) {
        scnt[d] = (r + d) % 3 + bc, sdsp[d] = st, st += scnt[d] + 1;
        rcnt[d] = (d + r) % 3 + bc, rdsp[d] = rt, rt += rcnt[d] + 3;
    }
    reset();
    fill_int(sa, st, r, k, 24);
    PMPI_Alltoallv(sa, scnt, sdsp, MPI_INT, ra, rcnt, rdsp, MPI_INT, c);
    MPI_Alltoallv(sa, scnt, sdsp, MPI_INT, rb, rcnt, rdsp, MPI_INT, c);
    check("alltoallv", -1, bc, c, ra, rb, sizeof(int) * rt);

    /* Reduce_scatter(_block): sum, in place, non-commutative. */
    reset();
    fill_int(sa, all, r, k, 25);
    PMPI_Reduce_scatter_block(sa, ra, count, MPI_INT, MPI_SUM, c);
    MPI_Reduce_scatter_block(sa, rb, count, MPI_INT, MPI_SUM, c);
    check("reduce_scatter_block", -1, count, c, ra, rb, sizeof(int) * count);
    reset();
    fill_int(ra, all, r, k, 26);
    fill_int(rb, all, r, k, 26);
    PMPI_Reduce_scatter_block(MPI_IN_PLACE, ra, count, MPI_INT, MPI_SUM, c);
    MPI_Reduce_scatter_block(MPI_IN_PLACE, rb, count, MPI_INT, MPI_SUM, c);
    check("reduce_scatter_block in place", -1, count, c, ra, rb, sizeof(int) * count);
    int mb = count / 8 + 1;
    reset();
    fill_mat(sa, mb * n, r, k);
    PMPI_Reduce_scatter_block(sa, ra, mb, mat_t, matmul, c);
    MPI_Reduce_scatter_block(sa, rb, mb, mat_t, matmul, c);
    check("reduce_scatter_block non-commutative", -1, mb, c, ra, rb, sizeof(int) * 4 * mb);
    int rs[MAXN], rtot = 0;
    for (int i = 0; i < n; i++) rs[i] = (count + i) % 5 + count / n, rtot += rs[i];
    reset();
    fill_int(sa, rtot, r, k, 27);
    PMPI_Reduce_scatter(sa, ra, rs, MPI_INT, MPI_SUM, c);
    MPI_Reduce_scatter(sa, rb, rs, MPI_INT, MPI_SUM, c);
    check("reduce_scatter", -1, count, c, ra, rb, sizeof(int) * rs[r]);
    reset();
    fill_int(ra, rtot, r, k, 28);
    fill_int(rb, rtot, r, k, 28);
    PMPI_Reduce_scatter(MPI_IN_PLACE, ra, rs, MPI_INT, MPI_MIN, c);
    MPI_Reduce_scatter(MPI_IN_PLACE, rb, rs, MPI_INT, MPI_MIN, c);
    check("reduce_scatter in place", -1, count, c, ra, rb, sizeof(int) * rs[r]);

    /* Scan, Exscan: sum, in place, non-commutative (rank 0's exscan result is undefined). */
    reset();
    fill_int(sa, count, r, k, 29);
    PMPI_Scan(sa, ra, count, MPI_INT, MPI_SUM, c);
    MPI_Scan(sa, rb, count, MPI_INT, MPI_SUM, c);
    check("scan sum", -1, count, c, ra, rb, sizeof(int) * count);
    reset();
    fill_mat(ra, mc, r, k);
    fill_mat(rb, mc, r, k);
    PMPI_Scan(MPI_IN_PLACE, ra, mc, mat_t, matmul, c);
    MPI_Scan(MPI_IN_PLACE, rb, mc, mat_t, matmul, c);
    check("scan non-commutative in place", -1, mc, c, ra, rb, sizeof(int) * 4 * mc);
    reset();
    fill_int(sa, count, r, k, 30);
    PMPI_Exscan(sa, ra, count, MPI_INT, MPI_SUM, c);
    MPI_Exscan(sa, rb, count, MPI_INT, MPI_SUM, c);
    if (r > 0) check("exscan sum", -1, count, c, ra, rb, sizeof(int) * count);
    reset();
    fill_mat(ra, mc, r, k);
    fill_mat(rb, mc, r, k);
    PMPI_Exscan(MPI_IN_PLACE, ra, mc, mat_t, matmul, c);
    MPI_Exscan(MPI_IN_PLACE, rb, mc, mat_t, matmul, c);
    if (r > 0) check("exscan non-commutative in place", -1, mc, c, ra, rb, sizeof(int) * 4 * mc);
}

/* Scans, exscans, allgathers, reduce-scatters, allreduces, reduces and broadcasts of vectors just over 1 MiB (odd counts: uneven
 * pieces): int sum, the
 * non-commutative matrix product in place, the vector type with gaps and the struct type with a
 * gap under commutative user ops. Results compared byte for byte, gaps included. */
static void long_reductions(MPI_Comm c, int k) {
    int n, r;
    MPI_Comm_size(c, &n);
    MPI_Comm_rank(c, &r);
    size_t ni = (1u << 18) + 3, nm = (1u << 16) + 5, nv = (1u << 17) + 7, np = (1u << 17) + 9;
    size_t words = 3 * nv > 4 * nm ? 3 * nv : 4 * nm;
    int *s = malloc(words * sizeof(int)), *a = malloc(words * sizeof(int)), *b = malloc(words * sizeof(int));
    pair *ps = malloc(np * sizeof(pair)), *pa_ = malloc(np * sizeof(pair)), *pb_ = malloc(np * sizeof(pair));
    if (!s || !a || !b || !ps || !pa_ || !pb_) MPI_Abort(MPI_COMM_WORLD, 3);
#define LONG_RESET()                                                                                                   \
    do {                                                                                                               \
        memset(a, 0xab, words * sizeof(int));                                                                          \
        memset(b, 0xab, words * sizeof(int));                                                                          \
    } while (0)
    for (int ex = 0; ex < 2; ex++) {
        int (*lib)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm) = ex ? PMPI_Exscan : PMPI_Scan;
        int (*shim)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm) = ex ? MPI_Exscan : MPI_Scan;
        int check_me = !ex || r > 0;
        LONG_RESET();
        fill_int(s, ni, r, k, 40 + ex);
        lib(s, a, (int)ni, MPI_INT, MPI_SUM, c);
        shim(s, b, (int)ni, MPI_INT, MPI_SUM, c);
        if (check_me) check(ex ? "long exscan sum" : "long scan sum", -1, (int)ni, c, a, b, sizeof(int) * ni);
        LONG_RESET();
        fill_mat(a, nm, r, k);
        fill_mat(b, nm, r, k);
        lib(MPI_IN_PLACE, a, (int)nm, mat_t, matmul, c);
        shim(MPI_IN_PLACE, b, (int)nm, mat_t, matmul, c);
        if (check_me) check(ex ? "long exscan non-commutative in place" : "long scan non-commutative in place", -1, (int)nm, c, a, b, sizeof(int) * 4 * nm);
        LONG_RESET();
        fill_int(s, 3 * nv, r, k, 42 + ex);
        lib(s, a, (int)nv, vec2, vecmax, c);
        shim(s, b, (int)nv, vec2, vecmax, c);
        if (check_me) check(ex ? "long exscan vector type" : "long scan vector type", -1, (int)nv, c, a, b, sizeof(int) * 3 * nv);
        fill_pair(ps, np, r, k);
        memset(pa_, 0xab, np * sizeof(pair));
        memset(pb_, 0xab, np * sizeof(pair));
        lib(ps, pa_, (int)np, pair_t, pairsum, c);
        shim(ps, pb_, (int)np, pair_t, pairsum, c);
        if (check_me) check(ex ? "long exscan struct type" : "long scan struct type", -1, (int)np, c, pa_, pb_, sizeof(pair) * np);
    }
    /* Allgather(v) of about 3 MiB in all (each site's share of 1 MiB or more goes across in
     * pieces where two sites have four ranks or more): ints, a vector type sent as ints, in
     * place, and uneven counts with gaps. */
    {
        size_t gw = 3u << 18;
        int *gs = malloc(gw * sizeof(int)), *ga = malloc(gw * sizeof(int)), *gb = malloc(gw * sizeof(int));
        if (!gs || !ga || !gb) MPI_Abort(MPI_COMM_WORLD, 3);
        int c1 = (int)(gw / n) - 5, vc = (int)(gw / (2 * n)) - 2;
        int cnt[MAXN], dsp[MAXN], tot = 0;
        for (int i = 0; i < n; i++) cnt[i] = c1 - 7 * i, dsp[i] = tot, tot += cnt[i] + 2;
#define GATHER_RESET() (memset(ga, 0xab, gw * sizeof(int)), memset(gb, 0xab, gw * sizeof(int)))
        GATHER_RESET();
        fill_int(gs, c1, r, k, 44);
        PMPI_Allgather(gs, c1, MPI_INT, ga, c1, MPI_INT, c);
        MPI_Allgather(gs, c1, MPI_INT, gb, c1, MPI_INT, c);
        check("long allgather int", -1, c1, c, ga, gb, sizeof(int) * c1 * n);
        GATHER_RESET();
        fill_int(gs, 3 * vc, r, k, 45);
        PMPI_Allgather(gs, vc, vec2, ga, 2 * vc, MPI_INT, c);
        MPI_Allgather(gs, vc, vec2, gb, 2 * vc, MPI_INT, c);
        check("long allgather vector", -1, vc, c, ga, gb, sizeof(int) * 2 * vc * n);
        GATHER_RESET();
        fill_int(ga + (size_t)r * c1, c1, r, k, 46);
        fill_int(gb + (size_t)r * c1, c1, r, k, 46);
        PMPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ga, c1, MPI_INT, c);
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gb, c1, MPI_INT, c);
        check("long allgather in place", -1, c1, c, ga, gb, sizeof(int) * c1 * n);
        GATHER_RESET();
        fill_int(gs, cnt[r], r, k, 47);
        PMPI_Allgatherv(gs, cnt[r], MPI_INT, ga, cnt, dsp, MPI_INT, c);
        MPI_Allgatherv(gs, cnt[r], MPI_INT, gb, cnt, dsp, MPI_INT, c);
        check("long allgatherv", -1, cnt[r], c, ga, gb, sizeof(int) * tot);
#undef GATHER_RESET
        free(gs), free(ga), free(gb);
    }
    /* Reduce_scatter(_block) of 1 MiB or more in all: int sum, int minimum in place, the
     * non-commutative matrix product, and the struct type with a gap under a user op with
     * uneven counts. */
    {
        int cb = (int)(words / n) - 3, mb = (int)(nm / n), rs[MAXN], rtot = 0;
        for (int i = 0; i < n; i++) rs[i] = (int)((np - 6 * n) / n) + 3 * (i % 3), rtot += rs[i];
        LONG_RESET();
        fill_int(s, (size_t)cb * n, r, k, 56);
        PMPI_Reduce_scatter_block(s, a, cb, MPI_INT, MPI_SUM, c);
        MPI_Reduce_scatter_block(s, b, cb, MPI_INT, MPI_SUM, c);
        check("long reduce_scatter_block sum", -1, cb, c, a, b, sizeof(int) * cb);
        LONG_RESET();
        fill_int(a, (size_t)cb * n, r, k, 57);
        fill_int(b, (size_t)cb * n, r, k, 57);
        PMPI_Reduce_scatter_block(MPI_IN_PLACE, a, cb, MPI_INT, MPI_MIN, c);
        MPI_Reduce_scatter_block(MPI_IN_PLACE, b, cb, MPI_INT, MPI_MIN, c);
        check("long reduce_scatter_block in place", -1, cb, c, a, b, sizeof(int) * cb);
        LONG_RESET();
        fill_mat(s, (size_t)mb * n, r, k);
        PMPI_Reduce_scatter_block(s, a, mb, mat_t, matmul, c);
        MPI_Reduce_scatter_block(s, b, mb, mat_t, matmul, c);
        check("long reduce_scatter_block non-commutative", -1, mb, c, a, b, sizeof(int) * 4 * mb);
        fill_pair(ps, (size_t)rtot, r, k);
        memset(pa_, 0xab, np * sizeof(pair));
        memset(pb_, 0xab, np * sizeof(pair));
        PMPI_Reduce_scatter(ps, pa_, rs, pair_t, pairsum, c);
        MPI_Reduce_scatter(ps, pb_, rs, pair_t, pairsum, c);
        check("long reduce_scatter struct type", -1, rs[r], c, pa_, pb_, sizeof(pair) * rs[r]);
    }
    /* Allreduce: the same types and operations. */
    LONG_RESET();
    fill_int(s, ni, r, k, 48);
    PMPI_Allreduce(s, a, (int)ni, MPI_INT, MPI_SUM, c);
    MPI_Allreduce(s, b, (int)ni, MPI_INT, MPI_SUM, c);
    check("long allreduce sum", -1, (int)ni, c, a, b, sizeof(int) * ni);
    LONG_RESET();
    fill_mat(a, nm, r, k);
    fill_mat(b, nm, r, k);
    PMPI_Allreduce(MPI_IN_PLACE, a, (int)nm, mat_t, matmul, c);
    MPI_Allreduce(MPI_IN_PLACE, b, (int)nm, mat_t, matmul, c);
    check("long allreduce non-commutative in place", -1, (int)nm, c, a, b, sizeof(int) * 4 * nm);
    LONG_RESET();
    fill_int(s, 3 * nv, r, k, 49);
    PMPI_Allreduce(s, a, (int)nv, vec2, vecmax, c);
    MPI_Allreduce(s, b, (int)nv, vec2, vecmax, c);
    check("long allreduce vector type", -1, (int)nv, c, a, b, sizeof(int) * 3 * nv);
    fill_pair(ps, np, r, k);
    memset(pa_, 0xab, np * sizeof(pair));
    memset(pb_, 0xab, np * sizeof(pair));
    PMPI_Allreduce(ps, pa_, (int)np, pair_t, pairsum, c);
    MPI_Allreduce(ps, pb_, (int)np, pair_t, pairsum, c);
    check("long allreduce struct type", -1, (int)np, c, pa_, pb_, sizeof(pair) * np);
    /* Reduce (the same types and operations) and Bcast (int, the vector type with gaps),
     * rooted at the first rank and at the last (on the other site where there are two). */
    int roots[2] = {0, n - 1};
    for (int ri = 0; ri < 2; ri++) {
        int root = roots[ri];
        LONG_RESET();
        fill_int(s, ni, r, k, 50 + root);
        PMPI_Reduce(s, a, (int)ni, MPI_INT, MPI_SUM, root, c);
        MPI_Reduce(s, b, (int)ni, MPI_INT, MPI_SUM, root, c);
        if (r == root) check("long reduce sum", root, (int)ni, c, a, b, sizeof(int) * ni);
        LONG_RESET();
        fill_mat(s, nm, r, k);
        if (r == root) fill_mat(a, nm, r, k), fill_mat(b, nm, r, k);
        PMPI_Reduce(r == root ? MPI_IN_PLACE : s, a, (int)nm, mat_t, matmul, root, c);
        MPI_Reduce(r == root ? MPI_IN_PLACE : s, b, (int)nm, mat_t, matmul, root, c);
        if (r == root) check("long reduce non-commutative in place", root, (int)nm, c, a, b, sizeof(int) * 4 * nm);
        LONG_RESET();
        fill_int(s, 3 * nv, r, k, 52 + root);
        PMPI_Reduce(s, a, (int)nv, vec2, vecmax, root, c);
        MPI_Reduce(s, b, (int)nv, vec2, vecmax, root, c);
        if (r == root) check("long reduce vector type", root, (int)nv, c, a, b, sizeof(int) * 3 * nv);
        fill_pair(ps, np, r, k);
        memset(pa_, 0xab, np * sizeof(pair));
        memset(pb_, 0xab, np * sizeof(pair));
        PMPI_Reduce(ps, pa_, (int)np, pair_t, pairsum, root, c);
        MPI_Reduce(ps, pb_, (int)np, pair_t, pairsum, root, c);
        if (r == root) check("long reduce struct type", root, (int)np, c, pa_, pb_, sizeof(pair) * np);
        LONG_RESET();
        fill_int(a, ni, r == root ? 1 : 2, k, 54 + root);
        memcpy(b, a, sizeof(int) * ni);
        PMPI_Bcast(a, (int)ni, MPI_INT, root, c);
        MPI_Bcast(b, (int)ni, MPI_INT, root, c);
        check("long bcast int", root, (int)ni, c, a, b, sizeof(int) * ni);
        LONG_RESET();
        fill_int(a, 3 * nv, r == root ? 1 : 2, k, 55 + root);
        memcpy(b, a, sizeof(int) * 3 * nv);
        PMPI_Bcast(a, (int)nv, vec2, root, c);
        MPI_Bcast(b, (int)nv, vec2, root, c);
        check("long bcast vector type", root, (int)nv, c, a, b, sizeof(int) * 3 * nv);
    }
#undef LONG_RESET
    free(s), free(a), free(b), free(ps), free(pa_), free(pb_);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int n;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (n > MAXN) MPI_Abort(MPI_COMM_WORLD, 2);
    int rounds = argc > 1 ? atoi(argv[1]) : 2;
    int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
    int nsizes = argc > 3 ? atoi(argv[3]) : 4;
    if (nsizes < 1 || nsizes > 4) nsizes = 4;
    MPI_Type_vector(2, 1, 2, MPI_INT, &vec2);
    MPI_Type_commit(&vec2);
    MPI_Type_contiguous(4, MPI_INT, &mat_t);
    MPI_Type_commit(&mat_t);
    int bl[2] = {1, 1};
    MPI_Aint dp[2] = {offsetof(pair, a), offsetof(pair, b)};
    MPI_Datatype ty[2] = {MPI_INT, MPI_DOUBLE};
    MPI_Type_create_struct(2, bl, dp, ty, &pair_t);
    MPI_Type_commit(&pair_t);
    MPI_Op_create(matmul_fn, 0, &matmul);
    MPI_Op_create(pairsum_fn, 1, &pairsum);
    MPI_Op_create(vecmax_fn, 1, &vecmax);
    MPI_Comm halves, holes;
    MPI_Comm_split(MPI_COMM_WORLD, wrank < n / 2, n - wrank, &halves); /* reversed order inside */
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 3 == 1 ? MPI_UNDEFINED : 0, wrank, &holes);
    int counts[4] = {1, 7, 250, 2001};
    for (int k = 0; k < rounds; k++) {
        MPI_Comm comms[3] = {MPI_COMM_WORLD, halves, holes};
        for (int c = 0; c < 3; c++) {
            if (comms[c] == MPI_COMM_NULL) continue;
            for (int s = 0; s < nsizes; s++) rounds_on(comms[c], k, counts[s]);
            if (nsizes == 4) long_reductions(comms[c], k);
        }
        if (pause_ms > 0) usleep(pause_ms * 1000);
    }
    long mine[2] = {cases, failures}, sum[2];
    PMPI_Reduce(mine, sum, 2, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (wrank == 0) printf("collectives: %ld cases, %ld failures\n", sum[0], sum[1]);
    if (holes != MPI_COMM_NULL) MPI_Comm_free(&holes);
    MPI_Comm_free(&halves);
    MPI_Op_free(&matmul);
    MPI_Op_free(&pairsum);
    MPI_Op_free(&vecmax);
    MPI_Type_free(&vec2);
    MPI_Type_free(&mat_t);
    MPI_Type_free(&pair_t);
    MPI_Finalize();
    return 0;
}
