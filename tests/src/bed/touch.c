/* A guest that dirties memory as fast as it can, whatever its CPU speed: it writes one
 * byte in every 4 KiB page of MIB mebibytes, round after round, each round a new value, so
 * every page is dirty again for a live migration (and changed for dirty-rate sampling)
 * after a few thousand writes. Built statically for the test bed's guests; usage:
 * touch MIB. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: touch MIB\n");
        return 2;
    }
    size_t len = (size_t)atol(argv[1]) << 20;
    volatile unsigned char *m = malloc(len);
    if (m == NULL) {
        perror("touch: malloc");
        return 1;
    }
    for (unsigned char round = 1;; round++) {
        for (size_t i = 0; i < len; i += 4096) m[i] = round;
    }
}
