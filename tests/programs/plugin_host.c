/* A program without MPI that reaches MPI through a plugin, the way Python (mpi4py), Julia
 * and R do: dlopen(PLUGIN, RTLD_NOW | RTLD_LOCAL), then the plugin's entry point, which
 * initialises MPI, communicates and finalizes. Built with the plain C compiler and -ldl.
 * Usage: plugin_host PLUGIN ROUNDS. Exits with the plugin's status. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: plugin_host PLUGIN ROUNDS\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "plugin_host: %s\n", dlerror());
        return 2;
    }
    int (*run)(int) = (int (*)(int))dlsym(h, "plugin_run");
    if (!run) {
        fprintf(stderr, "plugin_host: no plugin_run: %s\n", dlerror());
        return 2;
    }
    return run(atoi(argv[2]));
}
