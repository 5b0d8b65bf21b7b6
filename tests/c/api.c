/*
 * api.c: the functions of dkvs.h against a live ring of three servers.
 *
 *   api SERVERS MISSING BAD_CONFIG BAD_ADDRESS EMPTY_DIR
 *
 * SERVERS is the ring's servers file (the program runs in its directory,
 * so dkvs_open(NULL) finds it as servers.txt); MISSING does not exist;
 * BAD_CONFIG and BAD_ADDRESS are servers files with a bad port and a bad
 * IP; EMPTY_DIR holds no servers.txt. The Go test stored "from-go" before
 * and reads "from-c" after.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static void test_version(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", DKVS_VERSION_MAJOR, DKVS_VERSION_MINOR,
             DKVS_VERSION_PATCH);
    CHECK(strcmp(DKVS_VERSION, want) == 0, "DKVS_VERSION %s, macros say %s", DKVS_VERSION, want);
    CHECK(dkvs_version() != NULL && strcmp(dkvs_version(), DKVS_VERSION) == 0,
          "dkvs_version() %s, header %s", dkvs_version(), DKVS_VERSION);
}

/* The messages of cs202.md section 4. */
static void test_strerror(void)
{
    static const struct {
        int code, value;
        const char *msg;
    } table[] = {
        {DKVS_ERR_NONE, 0, ""},
        {DKVS_ERR_IO, -127, "I/O Error"},
        {DKVS_ERR_RUNTIME, -126, "Runtime error"},
        {DKVS_ERR_OUT_OF_MEMORY, -125, "(re|m|c)alloc failed"},
        {DKVS_ERR_NETWORK, -124, "Network error"},
        {DKVS_ERR_INVALID_CONFIG, -123, "Invalid config"},
        {DKVS_ERR_INVALID_COMMAND, -122, "Invalid command"},
        {DKVS_ERR_INVALID_ARGUMENT, -121, "Invalid argument (internal error)"},
        {DKVS_ERR_ADDRESS, -120, "Invalid address"},
        {DKVS_ERR_NOT_FOUND, -119, "Not found"},
        {DKVS_ERR_THREADING, -118, "Threading error"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK(table[i].code == table[i].value, "code %d, want %d", table[i].code, table[i].value);
        const char *m = dkvs_strerror(table[i].code);
        CHECK(m != NULL && strcmp(m, table[i].msg) == 0, "dkvs_strerror(%d) = \"%s\", want \"%s\"",
              table[i].code, m ? m : "(null)", table[i].msg);
    }
    CHECK(dkvs_strerror(1) != NULL && dkvs_strerror(-1000) != NULL, "unknown codes give NULL");
}

static void test_open(const char *servers, const char *missing, const char *badcfg,
                      const char *badaddr)
{
    dkvs_t *h = (dkvs_t *)&h; /* not NULL, so that resetting it shows */
    CHECK_RC(dkvs_open(missing, &h), DKVS_ERR_IO);
    CHECK(h == NULL, "handle not NULL after a failed open");
    CHECK_RC(dkvs_open(badcfg, &h), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(dkvs_open(badaddr, &h), DKVS_ERR_ADDRESS);
    CHECK_RC(dkvs_open(servers, NULL), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_open_timeout(servers, -1, &h), DKVS_ERR_INVALID_ARGUMENT);
    CHECK(h == NULL, "handle not NULL after a failed open");

    /* NULL and "" mean servers.txt in the current directory (the ring's). */
    CHECK_RC(dkvs_open(NULL, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "open-null", "1", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_open("", &h), DKVS_ERR_NONE);
    char *v = NULL;
    CHECK_RC(dkvs_get(h, "open-null", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "1") == 0, "open-null = %s", v ? v : "(null)");
    dkvs_free(v);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);

    /* An explicit timeout. */
    CHECK_RC(dkvs_open_timeout(servers, INT64_C(2000000000), &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "timeout", "2s", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
}

static void test_put_get(dkvs_t *h)
{
    char *v = NULL;
    CHECK_RC(dkvs_put(h, "greeting", "hello world", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "greeting", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "hello world") == 0, "greeting = %s", v ? v : "(null)");
    dkvs_free(v);

    /* Overwrite: the newest value wins, on every replica. */
    CHECK_RC(dkvs_put(h, "greeting", "bonjour", 3, 3), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "greeting", 3, 3, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "bonjour") == 0, "greeting = %s", v ? v : "(null)");
    dkvs_free(v);

    /* One server, first answer. */
    CHECK_RC(dkvs_get(h, "greeting", 1, 1, &v), DKVS_ERR_NONE);
    dkvs_free(v);

    /* An empty value is a value. */
    CHECK_RC(dkvs_put(h, "empty", "", 3, 2), DKVS_ERR_NONE);
    v = NULL;
    CHECK_RC(dkvs_get(h, "empty", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && v[0] == '\0', "empty value: %s", v ? v : "(null)");
    dkvs_free(v);

    /* Written by the Go client before this program started. */
    void *b = NULL;
    size_t blen = 99;
    CHECK_RC(dkvs_get_bin(h, "from-go", 7, 3, 2, &b, &blen), DKVS_ERR_NONE);
    CHECK(blen == 9 && b != NULL && memcmp(b, "go\0value!", 9) == 0, "from-go: %zu bytes", blen);
    dkvs_free(b);
    /* Read by the Go client after this program exits. */
    CHECK_RC(dkvs_put_bin(h, "from-c", 6, "c\0value\xff", 8, 3, 3), DKVS_ERR_NONE);
}

static void test_not_found(dkvs_t *h)
{
    char *v = (char *)&v;
    CHECK_RC(dkvs_get(h, "never-written", 3, 2, &v), DKVS_ERR_NOT_FOUND);
    CHECK(v == NULL, "value not NULL after NOT_FOUND");
    void *b = &b;
    size_t blen = 7;
    CHECK_RC(dkvs_get_bin(h, "never-written", 13, 3, 2, &b, &blen), DKVS_ERR_NOT_FOUND);
    CHECK(b == NULL && blen == 0, "bin value not reset after NOT_FOUND");
    CHECK_RC(dkvs_get(h, "greet", 3, 2, &v), DKVS_ERR_NOT_FOUND); /* a prefix of greeting */

    /* Deleted keys are not found; deleting an absent key succeeds. */
    CHECK_RC(dkvs_put(h, "doomed", "x", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_del(h, "doomed", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "doomed", 3, 2, &v), DKVS_ERR_NOT_FOUND);
    CHECK_RC(dkvs_del(h, "never-written", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "doomed", "back", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "doomed", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "back") == 0, "doomed = %s", v ? v : "(null)");
    dkvs_free(v);
}

static void test_binary(dkvs_t *h)
{
    static const char key[] = "key\0with\0nuls"; /* 13 bytes */
    static const char val[] = "a\0b\0\0c";       /* 7 bytes */
    void *b = NULL;
    size_t blen = 0;
    CHECK_RC(dkvs_put_bin(h, key, 13, val, 7, 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get_bin(h, key, 13, 3, 2, &b, &blen), DKVS_ERR_NONE);
    CHECK(blen == 7 && b != NULL && memcmp(b, val, 7) == 0, "NUL value: %zu bytes", blen);
    CHECK(b != NULL && ((char *)b)[blen] == '\0', "no NUL after the value");
    dkvs_free(b);
    /* "key" alone is another key. */
    CHECK_RC(dkvs_get_bin(h, key, 3, 3, 2, &b, &blen), DKVS_ERR_NOT_FOUND);
    CHECK_RC(dkvs_del_bin(h, key, 13, 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get_bin(h, key, 13, 3, 2, &b, &blen), DKVS_ERR_NOT_FOUND);

    /* Through the C-string call, the value reads up to its first NUL. */
    char *v = NULL;
    CHECK_RC(dkvs_put_bin(h, "nul", 3, val, 7, 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "nul", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "a") == 0, "C-string view of a NUL value: %s", v ? v : "(null)");
    dkvs_free(v);

    /* An empty binary value, NULL pointer allowed for 0 bytes. */
    CHECK_RC(dkvs_put_bin(h, "empty-bin", 9, NULL, 0, 3, 2), DKVS_ERR_NONE);
    b = NULL;
    blen = 5;
    CHECK_RC(dkvs_get_bin(h, "empty-bin", 9, 3, 2, &b, &blen), DKVS_ERR_NONE);
    CHECK(b != NULL && blen == 0, "empty value: %p, %zu bytes", b, blen);
    dkvs_free(b);
}

static void test_large(dkvs_t *h)
{
    size_t n = 1 << 20;
    unsigned char *big = malloc(n);
    CHECK(big != NULL, "malloc");
    if (big == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 10)); /* NUL bytes included */
    CHECK_RC(dkvs_put_bin(h, "1MiB", 4, big, n, 3, 3), DKVS_ERR_NONE);
    for (int r = 1; r <= 3; r++) {
        void *b = NULL;
        size_t blen = 0;
        CHECK_RC(dkvs_get_bin(h, "1MiB", 4, 3, r, &b, &blen), DKVS_ERR_NONE);
        CHECK(blen == n && b != NULL && memcmp(b, big, n) == 0, "1 MiB value, R=%d: %zu bytes", r,
              blen);
        dkvs_free(b);
    }
    free(big);
}

/* N, W and R above the three servers of the ring mean all of them. */
static void test_above_ring(dkvs_t *h)
{
    char *v = NULL;
    CHECK_RC(dkvs_put(h, "wide", "all", 5, 5), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "wide", "all", 254, 254), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "wide", "all", 1000, 4), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "wide", 7, 7, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "all") == 0, "wide = %s", v ? v : "(null)");
    dkvs_free(v);
    CHECK_RC(dkvs_get(h, "wide", 3, 3, &v), DKVS_ERR_NONE); /* every replica has it */
    dkvs_free(v);
    CHECK_RC(dkvs_del(h, "wide", 10, 10), DKVS_ERR_NONE);
    CHECK_RC(dkvs_get(h, "wide", 3, 3, &v), DKVS_ERR_NOT_FOUND);
}

static void test_invalid(dkvs_t *h)
{
    const int bad = DKVS_ERR_INVALID_ARGUMENT;
    char *v = (char *)&v;
    void *b = &b;
    size_t blen = 3;

    /* NULL key, value, out-pointers. */
    CHECK_RC(dkvs_put(h, NULL, "v", 3, 2), bad);
    CHECK_RC(dkvs_put(h, "k", NULL, 3, 2), bad);
    CHECK_RC(dkvs_get(h, NULL, 3, 2, &v), bad);
    CHECK(v == NULL, "value not reset on a NULL key");
    CHECK_RC(dkvs_get(h, "greeting", 3, 2, NULL), bad);
    CHECK_RC(dkvs_del(h, NULL, 3, 2), bad);
    CHECK_RC(dkvs_put_bin(h, NULL, 1, "v", 1, 3, 2), bad);
    CHECK_RC(dkvs_put_bin(h, "k", 1, NULL, 1, 3, 2), bad);
    CHECK_RC(dkvs_get_bin(h, NULL, 1, 3, 2, &b, &blen), bad);
    CHECK(b == NULL && blen == 0, "bin value not reset on a NULL key");
    CHECK_RC(dkvs_get_bin(h, "greeting", 8, 3, 2, NULL, &blen), bad);
    CHECK_RC(dkvs_get_bin(h, "greeting", 8, 3, 2, &b, NULL), bad);
    CHECK(b == NULL, "value set without a length");
    CHECK_RC(dkvs_del_bin(h, NULL, 1, 3, 2), bad);

    /* Empty keys. */
    CHECK_RC(dkvs_put(h, "", "v", 3, 2), bad);
    CHECK_RC(dkvs_get(h, "", 3, 2, &v), bad);
    CHECK_RC(dkvs_del(h, "", 3, 2), bad);
    CHECK_RC(dkvs_put_bin(h, "k", 0, "v", 1, 3, 2), bad);
    CHECK_RC(dkvs_get_bin(h, "k", 0, 3, 2, &b, &blen), bad);

    /* Bad N, W, R. */
    static const int nq[][2] = {{0, 1}, {1, 0}, {0, 0}, {-1, 1}, {3, -1}, {2, 3}, {1, 2},
                                {-5, -5}};
    for (size_t i = 0; i < sizeof nq / sizeof nq[0]; i++) {
        int n = nq[i][0], q = nq[i][1];
        CHECK_RC(dkvs_put(h, "q", "v", n, q), bad);
        CHECK_RC(dkvs_get(h, "greeting", n, q, &v), bad);
        CHECK(v == NULL, "value set on bad N/R");
        CHECK_RC(dkvs_del(h, "q", n, q), bad);
        CHECK_RC(dkvs_get_bin(h, "greeting", 8, n, q, &b, &blen), bad);
    }
    /* None of them wrote anything. */
    CHECK_RC(dkvs_get(h, "q", 3, 2, &v), DKVS_ERR_NOT_FOUND);

    /* Above the limits: 64 KiB keys, 16 MiB values. */
    size_t klen = (64 << 10) + 1, vlen = (16 << 20) + 1;
    char *big = calloc(1, vlen);
    CHECK(big != NULL, "calloc");
    if (big != NULL) {
        memset(big, 'k', klen);
        CHECK_RC(dkvs_put_bin(h, big, klen, "v", 1, 3, 2), bad);
        CHECK_RC(dkvs_get_bin(h, big, klen, 3, 2, &b, &blen), bad);
        CHECK_RC(dkvs_put_bin(h, "k", 1, big, vlen, 3, 2), bad);
        CHECK_RC(dkvs_put_bin(h, big, 64 << 10, "max key", 7, 3, 2), DKVS_ERR_NONE);
        free(big);
    }

    /* NULL and forged handles. */
    CHECK_RC(dkvs_put(NULL, "k", "v", 3, 2), bad);
    CHECK_RC(dkvs_get(NULL, "greeting", 3, 2, &v), bad);
    CHECK_RC(dkvs_del(NULL, "k", 3, 2), bad);
    CHECK_RC(dkvs_close(NULL), bad);
    dkvs_t *forged = (dkvs_t *)(uintptr_t)0x7fff1234;
    CHECK_RC(dkvs_get(forged, "greeting", 3, 2, &v), bad);
    CHECK_RC(dkvs_close(forged), bad);
    dkvs_free(NULL);
}

/* A handle after dkvs_close, and a second close. */
static void test_closed(const char *servers, dkvs_t *other)
{
    dkvs_t *h = NULL;
    char *v = (char *)&v;
    void *b = &b;
    size_t blen = 3;
    CHECK_RC(dkvs_open(servers, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "closing", "v", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "closing", "w", 3, 2), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get(h, "closing", 3, 2, &v), DKVS_ERR_INVALID_ARGUMENT);
    CHECK(v == NULL, "value set on a closed handle");
    CHECK_RC(dkvs_del(h, "closing", 3, 2), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_put_bin(h, "closing", 7, "w", 1, 3, 2), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_get_bin(h, "closing", 7, 3, 2, &b, &blen), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_del_bin(h, "closing", 7, 3, 2), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_close(h), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_close(h), DKVS_ERR_INVALID_ARGUMENT);
    /* Another handle is not affected, and sees what the closed one wrote. */
    CHECK_RC(dkvs_get(other, "closing", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v != NULL && strcmp(v, "v") == 0, "closing = %s", v ? v : "(null)");
    dkvs_free(v);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s SERVERS MISSING BAD_CONFIG BAD_ADDRESS EMPTY_DIR\n", argv[0]);
        return 2;
    }
    test_version();
    test_strerror();
    test_open(argv[1], argv[2], argv[3], argv[4]);

    dkvs_t *h = NULL;
    CHECK_RC(dkvs_open(argv[1], &h), DKVS_ERR_NONE);
    if (h == NULL)
        return check_done();
    test_put_get(h);
    test_not_found(h);
    test_binary(h);
    test_large(h);
    test_above_ring(h);
    test_invalid(h);
    test_closed(argv[1], h);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);

    /* No servers.txt in the current directory. */
    CHECK(chdir(argv[5]) == 0, "chdir %s", argv[5]);
    CHECK_RC(dkvs_open(NULL, &h), DKVS_ERR_IO);
    CHECK(h == NULL, "handle not NULL after a failed open");
    return check_done();
}
