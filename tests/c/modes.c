/*
 * modes.c: consistency levels, the linearizable mode and unknown write
 * outcomes through dkvs.h (since 1.1), against a live ring of three
 * servers.
 *
 *   modes SERVERS
 *
 * The program talks to the Go test on stdout/stdin: it prints
 * "KILL-ONE" and waits for a line once a server is killed, then
 * "KILL-ALL" and waits for a line once every server is.
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "check.h"

static void wait_for_go(const char *what)
{
    char line[64];
    printf("%s\n", what);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        CHECK(0, "no answer from the test after %s", what);
}

static int get_str(dkvs_t *h, const char *key, const dkvs_request_t *req, char *out, size_t cap)
{
    void *v = NULL;
    size_t n = 0;
    int rc = dkvs_get_req(h, key, strlen(key), req, &v, &n);
    out[0] = 0;
    if (rc == DKVS_ERR_NONE) {
        snprintf(out, cap, "%.*s", (int)n, (char *)v);
        dkvs_free(v);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVERS\n", argv[0]);
        return 2;
    }
    CHECK(DKVS_VERSION_MAJOR == 1 && DKVS_VERSION_MINOR >= 1, "header %s", DKVS_VERSION);
    CHECK(strcmp(dkvs_strerror(DKVS_ERR_UNKNOWN_OUTCOME), "Outcome unknown") == 0, "strerror %s",
          dkvs_strerror(DKVS_ERR_UNKNOWN_OUTCOME));
    dkvs_t *h;
    CHECK_RC(dkvs_open(argv[1], &h), DKVS_ERR_NONE);
    char buf[256];

    /* Levels: ALL writes every replica, ONE reads from any. */
    dkvs_request_t all = {3, 0, 0, DKVS_LEVEL_ALL, 0};
    dkvs_request_t one = {3, 0, 0, DKVS_LEVEL_ONE, 0};
    dkvs_request_t quorum = {3, 0, 0, DKVS_LEVEL_QUORUM, 0};
    CHECK_RC(dkvs_put_req(h, "lvl", 3, "all", 3, &all), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lvl", &all, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK(strcmp(buf, "all") == 0, "get ALL: %s", buf);
    CHECK_RC(get_str(h, "lvl", &one, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lvl", &quorum, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lvl", NULL, buf, sizeof buf), DKVS_ERR_NONE); /* defaults */
    dkvs_request_t numbers_win = {3, 1, 0, DKVS_LEVEL_ALL, 0};
    CHECK_RC(get_str(h, "lvl", &numbers_win, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK_RC(dkvs_del_req(h, "lvl", 3, &quorum), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lvl", &all, buf, sizeof buf), DKVS_ERR_NOT_FOUND);

    /* Linearizable, per request. */
    dkvs_request_t lin = {3, 0, 0, DKVS_LEVEL_DEFAULT, 1};
    CHECK_RC(dkvs_put_req(h, "lin", 3, "v1", 2, &lin), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lin", &lin, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK(strcmp(buf, "v1") == 0, "linearizable get: %s", buf);
    dkvs_request_t lin_all = {3, 0, 0, DKVS_LEVEL_ALL, 1};
    CHECK_RC(dkvs_put_req(h, "lin", 3, "v2", 2, &lin_all), DKVS_ERR_NONE);

    /* Bad requests. */
    dkvs_request_t bad_level = {3, 0, 0, 7, 0};
    dkvs_request_t negative = {-1, 0, 0, 0, 0};
    dkvs_request_t r_above_n = {2, 3, 0, 0, 0};
    dkvs_request_t lin_minority = {3, 1, 1, 0, 1};
    dkvs_request_t lin_one = {3, 0, 0, DKVS_LEVEL_ONE, 1};
    void *v = NULL;
    size_t vlen = 0;
    CHECK_RC(dkvs_put_req(h, "k", 1, "v", 1, &bad_level), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_put_req(h, "k", 1, "v", 1, &negative), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get_req(h, "k", 1, &r_above_n, &v, &vlen), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_put_req(h, "k", 1, "v", 1, &lin_minority), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get_req(h, "k", 1, &lin_one, &v, &vlen), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get_req(h, NULL, 1, &lin, &v, &vlen), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get_req(h, "k", 1, &lin, NULL, &vlen), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_del_req(h, "", 0, &lin), DKVS_ERR_INVALID_ARGUMENT);
    CHECK(v == NULL && vlen == 0, "out-pointers not reset on failure");

    /* The handle's default. */
    CHECK_RC(dkvs_set_linearizable(h, 1), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "k", "v", 3, 1), DKVS_ERR_INVALID_ARGUMENT); /* w=1 below a majority */
    CHECK_RC(dkvs_put(h, "k", "v", 3, 2), DKVS_ERR_NONE);
    char *s = NULL;
    CHECK_RC(dkvs_get(h, "k", 3, 2, &s), DKVS_ERR_NONE);
    dkvs_free(s);
    CHECK_RC(dkvs_set_linearizable(h, 0), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "k", "v", 3, 1), DKVS_ERR_NONE);

    /* One server down: linearizable operations still have their majority;
     * a write that needs all three is acknowledged by two and may have
     * been applied: its outcome is unknown, not a clean failure. */
    wait_for_go("KILL-ONE");
    CHECK_RC(dkvs_put_req(h, "lin", 3, "v3", 2, &lin), DKVS_ERR_NONE);
    CHECK_RC(get_str(h, "lin", &lin, buf, sizeof buf), DKVS_ERR_NONE);
    CHECK(strcmp(buf, "v3") == 0, "linearizable get with a server down: %s", buf);
    CHECK_RC(dkvs_put_req(h, "u", 1, "v", 1, &all), DKVS_ERR_UNKNOWN_OUTCOME);
    CHECK_RC(dkvs_del(h, "u", 3, 3), DKVS_ERR_UNKNOWN_OUTCOME);

    /* Every server down. A read fails cleanly. A write from a handle that
     * reaches no server at all cannot have been applied: a clean failure.
     * (A write sent on a connection whose server died a moment ago, before
     * this handle saw it close, may have been read: unknown is then the
     * truthful answer, so the writes go through a new handle.) */
    wait_for_go("KILL-ALL");
    CHECK_RC(get_str(h, "lin", &lin, buf, sizeof buf), DKVS_ERR_NETWORK);
    dkvs_t *fresh;
    CHECK_RC(dkvs_open(argv[1], &fresh), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(fresh, "c", "v", 3, 1), DKVS_ERR_NETWORK);
    CHECK_RC(dkvs_put_req(fresh, "c", 1, "v", 1, &lin), DKVS_ERR_NETWORK);
    CHECK_RC(get_str(fresh, "lin", &lin, buf, sizeof buf), DKVS_ERR_NETWORK);
    CHECK_RC(dkvs_close(fresh), DKVS_ERR_NONE);

    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_set_linearizable(h, 1), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_put_req(h, "k", 1, "v", 1, NULL), DKVS_ERR_INVALID_ARGUMENT);
    return check_done();
}
