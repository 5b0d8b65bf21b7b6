/*
 * close_waits.c: dkvs_close waits for the replica writes still under way.
 *
 *   close_waits SERVERS
 *
 * With one of the three servers stopped (SIGSTOP) by the Go test, a put
 * with N=3, W=2 and a 30 s deadline returns after the two others
 * acknowledged; the program prints "PUT-DONE", calls dkvs_close, which
 * must not return before the stopped server answers (the test resumes it),
 * and prints "CLOSED".
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>

#include <dkvs.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVERS\n", argv[0]);
        return 2;
    }
    dkvs_t *h;
    int rc = dkvs_open_timeout(argv[1], INT64_C(30000000000), &h);
    if (rc == DKVS_ERR_NONE)
        rc = dkvs_put(h, "close-key", "close-value", 3, 2);
    if (rc != DKVS_ERR_NONE) {
        printf("put: %s\n", dkvs_strerror(rc));
        return 1;
    }
    printf("PUT-DONE\n");
    fflush(stdout);
    rc = dkvs_close(h);
    printf("CLOSED %s\n", rc == DKVS_ERR_NONE ? "ok" : dkvs_strerror(rc));
    fflush(stdout);
    return rc == DKVS_ERR_NONE ? 0 : 1;
}
