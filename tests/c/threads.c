/*
 * threads.c: many threads on one handle while a server dies.
 *
 *   threads SERVERS THREADS PAIRS GATE
 *
 * THREADS threads each do PAIRS put/get pairs (N=3, W=2, R=2) on keys of
 * their own, and check that every get returns the value just put. Once
 * every thread has done 100 pairs the program prints "RUNNING" and waits
 * for a line "KILLED" on standard input (the Go test kills a server in
 * between); threads that reach pair GATE before that line wait for it, so
 * that at least PAIRS - GATE pairs per thread run with the server dead.
 * It ends with "DONE ops=<pairs done> errors=<n> after_kill=<pairs>".
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dkvs.h>

#define WARM 100

static dkvs_t *h;
static int pairs, gate;
static atomic_int killed, errors, done_pairs, after_kill;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int warm_threads; /* threads past WARM pairs, under mu */

static void fail(int t, int i, const char *what, int rc, const char *detail)
{
    atomic_fetch_add(&errors, 1);
    printf("thread %d pair %d: %s: %d (%s) %s\n", t, i, what, rc, dkvs_strerror(rc), detail);
    fflush(stdout);
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    char key[64], value[160];
    for (int i = 0; i < pairs; i++) {
        if (i == WARM) {
            pthread_mutex_lock(&mu);
            warm_threads++;
            pthread_cond_broadcast(&cond);
            pthread_mutex_unlock(&mu);
        }
        if (i == gate) {
            pthread_mutex_lock(&mu);
            while (!atomic_load(&killed))
                pthread_cond_wait(&cond, &mu);
            pthread_mutex_unlock(&mu);
        }
        int after = atomic_load(&killed);
        /* 50 keys per thread, rewritten: each get must see the newest put. */
        snprintf(key, sizeof key, "thread-%d-key-%d", t, i % 50);
        snprintf(value, sizeof value, "value of thread %d pair %d %0100d", t, i, i);
        int rc = dkvs_put(h, key, value, 3, 2);
        if (rc != DKVS_ERR_NONE) {
            fail(t, i, "put", rc, key);
            continue;
        }
        char *got = NULL;
        rc = dkvs_get(h, key, 3, 2, &got);
        if (rc != DKVS_ERR_NONE) {
            fail(t, i, "get", rc, key);
            continue;
        }
        if (strcmp(got, value) != 0)
            fail(t, i, "get returned another value", 0, got);
        dkvs_free(got);
        atomic_fetch_add(&done_pairs, 1);
        if (after)
            atomic_fetch_add(&after_kill, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVERS THREADS PAIRS GATE\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[2]);
    pairs = atoi(argv[3]);
    gate = atoi(argv[4]);
    if (nthreads < 1 || nthreads > 64 || pairs <= WARM || gate <= WARM || gate > pairs) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    /* A deadline of 5 s rather than 500 ms: the test is about quorums with a
     * dead server (whose requests fail at once), not about latency on a
     * loaded machine. */
    int rc = dkvs_open_timeout(argv[1], INT64_C(5000000000), &h);
    if (rc != DKVS_ERR_NONE) {
        printf("dkvs_open: %s\n", dkvs_strerror(rc));
        return 1;
    }
    pthread_t tid[64];
    for (int t = 0; t < nthreads; t++) {
        if (pthread_create(&tid[t], NULL, worker, (void *)(long)t) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    pthread_mutex_lock(&mu);
    while (warm_threads < nthreads)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
    printf("RUNNING\n");
    fflush(stdout);

    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL || strncmp(line, "KILLED", 6) != 0) {
        printf("expected KILLED on standard input\n");
        fflush(stdout);
        exit(1); /* threads may be waiting at the gate */
    }
    pthread_mutex_lock(&mu);
    atomic_store(&killed, 1);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);

    for (int t = 0; t < nthreads; t++)
        pthread_join(tid[t], NULL);
    rc = dkvs_close(h);
    if (rc != DKVS_ERR_NONE)
        printf("dkvs_close: %s\n", dkvs_strerror(rc));
    printf("DONE ops=%d errors=%d after_kill=%d\n", atomic_load(&done_pairs), atomic_load(&errors),
           atomic_load(&after_kill));
    return atomic_load(&errors) == 0 && rc == DKVS_ERR_NONE ? 0 : 1;
}
