/*
 * bench_get.c: the cost of one dkvs_get (and dkvs_free) through the C ABI.
 *
 *   bench_get SERVERS ITERATIONS
 *
 * Stores a 100-byte value under "bench-key" (N=W=1), warms up with 1000
 * gets, then times ITERATIONS gets with N=R=1 with clock_gettime and prints
 * "iterations=<n> ns_per_get=<ns>".
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dkvs.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SERVERS ITERATIONS\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[2]);
    char value[101];
    memset(value, 'b', 100);
    value[100] = '\0';
    dkvs_t *h;
    int rc = dkvs_open(argv[1], &h);
    if (rc == DKVS_ERR_NONE)
        rc = dkvs_put(h, "bench-key", value, 1, 1);
    for (int i = 0; rc == DKVS_ERR_NONE && i < 1000; i++) {
        char *v;
        rc = dkvs_get(h, "bench-key", 1, 1, &v);
        dkvs_free(v);
    }
    if (rc != DKVS_ERR_NONE) {
        printf("setup: %s\n", dkvs_strerror(rc));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iterations; i++) {
        char *v;
        rc = dkvs_get(h, "bench-key", 1, 1, &v);
        if (rc != DKVS_ERR_NONE) {
            printf("get %ld: %s\n", i, dkvs_strerror(rc));
            return 1;
        }
        dkvs_free(v);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("iterations=%ld ns_per_get=%.0f\n", iterations, ns / (double)iterations);
    dkvs_close(h);
    return 0;
}
