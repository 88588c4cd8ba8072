/*
 * LD_PRELOAD helper for benchmarks on the test bed (MPICH over UCX): a rank whose UCX
 * progress call found nothing to do STRADDLE_IDLE_POLLS times in a row sleeps
 * STRADDLE_IDLE_SLEEP_US microseconds (defaults 16 and 20) before the next poll.
 *
 * Why: the bed runs every node's rank on the same two cores. Ranks that wait inside a
 * collective busy-poll and take the CPU from the rank that has data to forward, so an
 * in-site hop costs a scheduler time slice (milliseconds) instead of microseconds, and a
 * 10 ms WAN is lost in that noise. On real nodes every rank polls on cores of its own; a
 * short sleep when idle gives the bed that behaviour back at the cost of at most one sleep
 * (tens of microseconds) per hop, the same for every algorithm.
 *
 *   gcc -O2 -shared -fPIC -o libidle_sleep.so idle_sleep.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucp/api/ucp.h>

static unsigned (*real_progress)(ucp_worker_h);
static long idle_polls = -1, sleep_ns;
static __thread long idle;

static void setup(void)
{
    const char *p = getenv("STRADDLE_IDLE_POLLS"), *s = getenv("STRADDLE_IDLE_SLEEP_US");
    sleep_ns = (s ? atol(s) : 20) * 1000;
    idle_polls = p ? atol(p) : 16;
    /* Sleep for what was asked, not the default 50 us of timer slack more. */
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    real_progress = (unsigned (*)(ucp_worker_h))dlsym(RTLD_NEXT, "ucp_worker_progress");
    if (!real_progress) {
        /* UCX loaded with local scope (by an MPI library a plugin brought in with
         * RTLD_LOCAL): not in the global scope, but loaded. */
        void *ucp = dlopen("libucp.so.0", RTLD_NOLOAD | RTLD_LAZY);
        if (ucp) real_progress = (unsigned (*)(ucp_worker_h))dlsym(ucp, "ucp_worker_progress");
    }
}

unsigned ucp_worker_progress(ucp_worker_h worker)
{
    if (idle_polls < 0) setup();
    unsigned n = real_progress(worker);
    if (n) {
        idle = 0;
    } else if (sleep_ns > 0 && ++idle >= idle_polls) {
        struct timespec d = {0, sleep_ns};
        nanosleep(&d, NULL);
    }
    return n;
}
