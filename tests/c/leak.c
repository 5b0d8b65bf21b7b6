/*
 * leak.c: resident memory across many dkvs_get/dkvs_free cycles.
 *
 *   leak SERVERS free|keep WARMUP CYCLES VALUE_SIZE
 *
 * Stores one value of VALUE_SIZE bytes, runs WARMUP get/free cycles, reads
 * VmRSS from /proc/self/status, runs CYCLES more and reads it again. It
 * prints "rss_before_kib=A rss_after_kib=B growth_kib=B-A cycles=C"; the Go
 * test judges the growth. "keep" holds every value until after the second
 * measure (then frees them all): the control run that shows a leak would be
 * seen.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dkvs.h>

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s SERVERS free|keep WARMUP CYCLES VALUE_SIZE\n", argv[0]);
        return 2;
    }
    int keep = strcmp(argv[2], "keep") == 0;
    long warmup = atol(argv[3]), cycles = atol(argv[4]);
    size_t vsize = (size_t)atol(argv[5]);
    char **kept = keep ? calloc((size_t)cycles, sizeof *kept) : NULL;
    char *value = malloc(vsize + 1);
    if (value == NULL || (keep && kept == NULL))
        return 2;
    memset(value, 'v', vsize);
    value[vsize] = '\0';

    dkvs_t *h;
    /* 5 s deadlines: the test is about memory, not latency on a loaded machine. */
    int rc = dkvs_open_timeout(argv[1], INT64_C(5000000000), &h);
    if (rc == DKVS_ERR_NONE)
        rc = dkvs_put(h, "leak-check", value, 3, 3);
    if (rc != DKVS_ERR_NONE) {
        printf("setup: %s\n", dkvs_strerror(rc));
        return 1;
    }
    int failed = 0;
    long before = 0;
    for (long i = 0; i < warmup + cycles; i++) {
        if (i == warmup)
            before = rss_kib();
        char *v = NULL;
        rc = dkvs_get(h, "leak-check", 3, 2, &v);
        if (rc != DKVS_ERR_NONE || strlen(v) != vsize) {
            printf("get %ld: %s\n", i, dkvs_strerror(rc));
            failed = 1;
            break;
        }
        if (keep && i >= warmup)
            kept[i - warmup] = v;
        else
            dkvs_free(v);
    }
    long after = rss_kib();
    if (keep)
        for (long i = 0; i < cycles; i++)
            dkvs_free(kept[i]);
    free(kept);
    free(value);
    dkvs_close(h);
    if (failed || before < 0 || after < 0)
        return 1;
    printf("rss_before_kib=%ld rss_after_kib=%ld growth_kib=%ld cycles=%ld\n", before, after,
           after - before, cycles);
    return 0;
}
