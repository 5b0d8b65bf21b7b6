/*
 * batch.c: the batch calls of dkvs.h (since 1.3), dkvs_mget, dkvs_mput
 * and dkvs_mdel, against a live ring of three servers whose values are
 * limited to 1,000 bytes (--max-value-size 1000).
 *
 *   batch SERVERS
 *
 * Per-key results inside one call (a value the servers refuse, a NULL
 * key, a key absent), values read back, deletions, and misuse of the
 * calls. The Go test runs it with every server up, then again with one
 * killed: the results must be the same (N=3, R=W=2).
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "check.h"

#define COUNT 200

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVERS\n", argv[0]);
        return 2;
    }
    CHECK(DKVS_VERSION_MAJOR == 1 && DKVS_VERSION_MINOR >= 3, "header %s", DKVS_VERSION);
    dkvs_t *h;
    CHECK_RC(dkvs_open(argv[1], &h), DKVS_ERR_NONE);

    static char keys[COUNT + 3][32], values[COUNT + 3][32];
    static char big[2000];
    memset(big, 'x', sizeof big);
    dkvs_item_t items[COUNT + 3];
    memset(items, 0, sizeof items);
    for (int i = 0; i < COUNT; i++) {
        snprintf(keys[i], sizeof keys[i], "cb-%03d", i);
        snprintf(values[i], sizeof values[i], "value-%d", i);
        items[i].key = keys[i];
        items[i].klen = strlen(keys[i]);
        items[i].value = values[i];
        items[i].vlen = strlen(values[i]);
    }
    /* A value above the servers' limit (the library's is 16 MiB: the
     * servers refuse it), a NULL key, and an empty value. */
    items[COUNT].key = "cb-big";
    items[COUNT].klen = 6;
    items[COUNT].value = big;
    items[COUNT].vlen = sizeof big;
    items[COUNT + 1].key = NULL;
    items[COUNT + 1].klen = 3;
    items[COUNT + 2].key = "cb-empty";
    items[COUNT + 2].klen = 8;
    items[COUNT + 2].value = NULL;
    items[COUNT + 2].vlen = 0;
    CHECK_RC(dkvs_mput(h, items, COUNT + 3, NULL), DKVS_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < COUNT; i++)
        CHECK(items[i].rc == DKVS_ERR_NONE, "mput %s: %s", keys[i], dkvs_strerror(items[i].rc));
    CHECK(items[COUNT].rc == DKVS_ERR_INVALID_ARGUMENT, "mput of a value too large: %d", items[COUNT].rc);
    CHECK(items[COUNT + 1].rc == DKVS_ERR_INVALID_ARGUMENT, "mput of a NULL key: %d", items[COUNT + 1].rc);
    CHECK(items[COUNT + 2].rc == DKVS_ERR_NONE, "mput of an empty value: %s", dkvs_strerror(items[COUNT + 2].rc));
    /* The library never modified the values. */
    CHECK(items[0].value == values[0] && strcmp(values[0], "value-0") == 0, "value changed");

    /* Read back, with an absent key among them. */
    dkvs_item_t got[COUNT + 3];
    memset(got, 0, sizeof got);
    for (int i = 0; i < COUNT + 3; i++) {
        got[i].key = items[i].key;
        got[i].klen = items[i].klen;
        got[i].value = (void *)1; /* overwritten by the call */
    }
    got[COUNT].key = "cb-absent";
    got[COUNT].klen = 9;
    CHECK_RC(dkvs_mget(h, got, COUNT + 3, NULL), DKVS_ERR_NOT_FOUND);
    for (int i = 0; i < COUNT; i++) {
        CHECK(got[i].rc == DKVS_ERR_NONE && got[i].vlen == strlen(values[i]) &&
                  memcmp(got[i].value, values[i], got[i].vlen) == 0 && ((char *)got[i].value)[got[i].vlen] == 0,
              "mget %s: %s, %zu bytes", keys[i], dkvs_strerror(got[i].rc), got[i].vlen);
        dkvs_free(got[i].value);
    }
    CHECK(got[COUNT].rc == DKVS_ERR_NOT_FOUND && got[COUNT].value == NULL && got[COUNT].vlen == 0,
          "mget of an absent key: %d", got[COUNT].rc);
    CHECK(got[COUNT + 1].rc == DKVS_ERR_INVALID_ARGUMENT && got[COUNT + 1].value == NULL,
          "mget of a NULL key: %d", got[COUNT + 1].rc);
    CHECK(got[COUNT + 2].rc == DKVS_ERR_NONE && got[COUNT + 2].value != NULL && got[COUNT + 2].vlen == 0,
          "mget of an empty value: %d", got[COUNT + 2].rc);
    dkvs_free(got[COUNT + 2].value);

    /* Delete the first 50, with a replication of ALL for the deletion. */
    dkvs_request_t quorum = {3, 0, 0, DKVS_LEVEL_QUORUM, 0};
    CHECK_RC(dkvs_mdel(h, items, 50, &quorum), DKVS_ERR_NONE);
    for (int i = 0; i < 50; i++)
        CHECK(items[i].rc == DKVS_ERR_NONE, "mdel %s: %d", keys[i], items[i].rc);
    CHECK_RC(dkvs_mget(h, got, 60, &quorum), DKVS_ERR_NOT_FOUND);
    for (int i = 0; i < 60; i++) {
        int want = i < 50 ? DKVS_ERR_NOT_FOUND : DKVS_ERR_NONE;
        CHECK(got[i].rc == want, "mget %s after mdel: %d, want %d", keys[i], got[i].rc, want);
        dkvs_free(got[i].value);
    }
    /* Put them back for the next run. */
    CHECK_RC(dkvs_mput(h, items, 50, NULL), DKVS_ERR_NONE);

    /* Misuse: nothing is sent, every rc says why. */
    dkvs_request_t bad = {3, 0, 0, 9, 0};
    CHECK_RC(dkvs_mget(h, got, 5, &bad), DKVS_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 5; i++)
        CHECK(got[i].rc == DKVS_ERR_INVALID_ARGUMENT && got[i].value == NULL, "bad request, item %d: %d", i, got[i].rc);
    CHECK_RC(dkvs_mput(NULL, items, 5, NULL), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_mget(h, NULL, 5, NULL), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_mdel(h, NULL, 0, NULL), DKVS_ERR_NONE);
    CHECK_RC(dkvs_mget(h, got, (size_t)1 << 40, NULL), DKVS_ERR_INVALID_ARGUMENT);

    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_mget(h, got, 1, NULL), DKVS_ERR_INVALID_ARGUMENT);
    return check_done();
}
