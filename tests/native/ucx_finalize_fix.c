/*
 * LD_PRELOAD shim for MPICH 4.0.2 (ch4:ucx) + UCX 1.13 over TCP: keeps the UCP worker
 * progressing while MPI_Finalize sits in its PMI barrier.
 *
 * Why: MPIDI_UCX_mpi_finalize_hook() calls ucp_disconnect_nb() on every endpoint, spins
 * until those requests complete, then calls MPIR_pmi_barrier() WITHOUT progressing UCX.
 * A UCT/TCP endpoint flush (part of the disconnect) sends a zero-length PUT and waits for
 * the peer's PUT_ACK, which the peer only sends from ucp_worker_progress(). A peer that
 * already finished its own disconnects and sits in the PMI barrier never answers, so the
 * late rank spins forever. (Fixed upstream by pmodels/mpich PR #6596, which drops that
 * barrier; Open MPI progresses UCX during its fence.)
 *
 * What: from the first ucp_disconnect_nb() (MPICH 4.0.2 calls it only in MPI_Finalize), a helper
 * thread calls ucp_worker_progress() until ucp_worker_destroy(). All UCP calls MPICH makes
 * in that window are serialized with the helper by one mutex (the worker is SERIALIZED).
 *
 * The test bed builds it on first use (tests/src/bed/launch.rs) and preloads it into every
 * MPICH rank it launches:
 *   gcc -O2 -shared -fPIC -o libucx_finalize_fix.so ucx_finalize_fix.c -ldl -lpthread
 *   mpiexec ... -genv LD_PRELOAD /path/libucx_finalize_fix.so ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucp/api/ucp.h>

#define MAX_WORKERS 64

/* recursive: UCX callbacks run inside progress may call wrapped UCP functions */
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static ucp_worker_h workers[MAX_WORKERS];
static int nworkers;
static atomic_int helper_on;     /* helper thread running: serialize UCP calls */
static atomic_int helper_stop;
static pthread_t helper;
static int verbose = -1;

#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (!real_##name) real_##name = (__typeof__(&name)) dlsym(RTLD_NEXT, #name)

static void say(const char *msg)
{
    if (verbose < 0) verbose = getenv("FINALIZE_FIX_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "[ucx_finalize_fix] %s\n", msg);
}

static void *helper_main(void *arg)
{
    (void) arg;
    REAL(ucp_worker_progress);
    struct timespec nap = {0, 50 * 1000}; /* 50 us between idle polls */
    while (!atomic_load(&helper_stop)) {
        unsigned n = 0;
        pthread_mutex_lock(&lock);
        for (int i = 0; i < nworkers; i++)
            if (workers[i]) n += real_ucp_worker_progress(workers[i]);
        pthread_mutex_unlock(&lock);
        if (!n) nanosleep(&nap, NULL);
    }
    return NULL;
}

ucs_status_t ucp_worker_create(ucp_context_h context, const ucp_worker_params_t *params,
                               ucp_worker_h *worker_p)
{
    REAL(ucp_worker_create);
    ucs_status_t st = real_ucp_worker_create(context, params, worker_p);
    if (st == UCS_OK) {
        pthread_mutex_lock(&lock);
        if (nworkers < MAX_WORKERS) workers[nworkers++] = *worker_p;
        pthread_mutex_unlock(&lock);
    }
    return st;
}

ucs_status_ptr_t ucp_disconnect_nb(ucp_ep_h ep)
{
    REAL(ucp_disconnect_nb);
    ucs_status_ptr_t r;
    if (atomic_load(&helper_on)) {
        pthread_mutex_lock(&lock);
        r = real_ucp_disconnect_nb(ep);
        pthread_mutex_unlock(&lock);
        return r;
    }
    r = real_ucp_disconnect_nb(ep);
    /* MPICH 4.0.2 calls ucp_disconnect_nb() only from its finalize hook */
    if (nworkers > 0) {
        atomic_store(&helper_on, 1);
        if (pthread_create(&helper, NULL, helper_main, NULL) != 0) {
            atomic_store(&helper_on, 0);
            say("could not start helper thread");
        } else {
            say("helper progress thread started");
        }
    }
    return r;
}

unsigned ucp_worker_progress(ucp_worker_h worker)
{
    REAL(ucp_worker_progress);
    if (!atomic_load(&helper_on)) return real_ucp_worker_progress(worker);
    pthread_mutex_lock(&lock);
    unsigned n = real_ucp_worker_progress(worker);
    pthread_mutex_unlock(&lock);
    return n;
}

int ucp_request_is_completed(void *request)
{
    REAL(ucp_request_is_completed);
    if (!atomic_load(&helper_on)) return real_ucp_request_is_completed(request);
    pthread_mutex_lock(&lock);
    int c = real_ucp_request_is_completed(request);
    pthread_mutex_unlock(&lock);
    return c;
}

ucs_status_t ucp_request_check_status(void *request)
{
    REAL(ucp_request_check_status);
    if (!atomic_load(&helper_on)) return real_ucp_request_check_status(request);
    pthread_mutex_lock(&lock);
    ucs_status_t s = real_ucp_request_check_status(request);
    pthread_mutex_unlock(&lock);
    return s;
}

void ucp_request_release(void *request)
{
    REAL(ucp_request_release);
    if (!atomic_load(&helper_on)) { real_ucp_request_release(request); return; }
    pthread_mutex_lock(&lock);
    real_ucp_request_release(request);
    pthread_mutex_unlock(&lock);
}

void ucp_request_free(void *request)
{
    REAL(ucp_request_free);
    if (!atomic_load(&helper_on)) { real_ucp_request_free(request); return; }
    pthread_mutex_lock(&lock);
    real_ucp_request_free(request);
    pthread_mutex_unlock(&lock);
}

void ucp_worker_destroy(ucp_worker_h worker)
{
    REAL(ucp_worker_destroy);
    if (atomic_load(&helper_on)) {
        atomic_store(&helper_stop, 1);
        pthread_join(helper, NULL);
        atomic_store(&helper_on, 0);
        say("helper progress thread stopped");
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nworkers; i++)
        if (workers[i] == worker) workers[i] = NULL;
    pthread_mutex_unlock(&lock);
    real_ucp_worker_destroy(worker);
}
