/*
 * check.h: the few checking macros of the C tests. Each failed check
 * prints "not ok <file>:<line>: <details>" and the program exits 1 at the
 * end (see check_done); main prints "PASS <n> checks" when all passed.
 */
#ifndef DKVS_TEST_CHECK_H
#define DKVS_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <dkvs.h>

static int check_count, check_failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        check_count++;                                                     \
        if (!(cond)) {                                                     \
            check_failures++;                                              \
            printf("not ok %s:%d: ", __FILE__, __LINE__);                  \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
            fflush(stdout);                                                \
        }                                                                  \
    } while (0)

/* CHECK_RC checks that call returns the error code want. */
#define CHECK_RC(call, want)                                               \
    do {                                                                   \
        int rc_ = (call);                                                  \
        int want_ = (want);                                                \
        CHECK(rc_ == want_, "%s returned %d (%s), want %d (%s)", #call,    \
              rc_, dkvs_strerror(rc_), want_, dkvs_strerror(want_));       \
    } while (0)

/* check_done prints the summary and returns the exit status. */
static inline int check_done(void)
{
    if (check_failures > 0) {
        printf("FAILED %d of %d checks\n", check_failures, check_count);
        return 1;
    }
    printf("PASS %d checks\n", check_count);
    return 0;
}

#endif
