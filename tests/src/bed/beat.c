/* A heartbeat for the test bed's guests: one UDP datagram every 5 ms to HOST PORT, each
 * carrying a sequence number, so an observer outside the guest sees any pause of it (a
 * live migration's switch-over) as a gap in arrival times and in sequence numbers.
 * Built statically and put in the guest's initramfs; usage: beat HOST PORT [PERIOD_US]. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: beat HOST PORT [PERIOD_US]\n");
        return 2;
    }
    long period_ns = (argc > 3 ? atol(argv[3]) : 5000) * 1000L;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
        fprintf(stderr, "beat: bad address %s\n", argv[1]);
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("beat: socket");
        return 1;
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (unsigned long long seq = 0;; seq++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%llu\n", seq);
        /* A lost datagram (no route yet, a full queue) is just a missing beat. */
        (void)sendto(s, msg, (size_t)n, 0, (struct sockaddr *)&to, sizeof to);
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        /* Late wake-ups are not made up: after a pause the beat goes on from now. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec)) next = now;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
}
