/*
 * tls.c: dkvs_open_opts against a ring that speaks TLS only and requires
 * client certificates.
 *
 *   tls SERVERS CA CERT KEY OTHER_CA JUNK
 *
 * CA signs the servers' certificates and CERT/KEY (a client's); OTHER_CA
 * is another CA; JUNK is a file that is not PEM.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <string.h>

#include "check.h"

static const char *servers, *ca, *cert, *key, *other_ca, *junk;

/* open_with opens a handle with the TLS files given (NULL: none). */
static int open_with(const char *c, const char *crt, const char *k, dkvs_t **h)
{
    dkvs_options_t o = {0};
    o.struct_size = sizeof o;
    o.tls_ca = c;
    o.tls_cert = crt;
    o.tls_key = k;
    return dkvs_open_opts(servers, &o, h);
}

static void test_round_trip(void)
{
    dkvs_t *h = NULL;
    CHECK_RC(open_with(ca, cert, key, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "c-tls", "secret", 3, 2), DKVS_ERR_NONE);
    char *v = NULL;
    CHECK_RC(dkvs_get(h, "c-tls", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v && strcmp(v, "secret") == 0, "get c-tls = %s", v ? v : "(null)");
    dkvs_free(v);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
}

/* Refused at the handshake: the operations fail with DKVS_ERR_NETWORK. */
static void test_refused(void)
{
    static const struct {
        const char *name, *ca, *cert, *key;
    } cases[] = {
        {"plaintext", NULL, NULL, NULL},
        {"no client certificate", "CA", NULL, NULL},
        {"servers of another CA", "OTHER", "CERT", "KEY"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *c = cases[i].ca == NULL ? NULL : strcmp(cases[i].ca, "CA") == 0 ? ca : other_ca;
        dkvs_t *h = NULL;
        CHECK_RC(open_with(c, cases[i].cert ? cert : NULL, cases[i].key ? key : NULL, &h), DKVS_ERR_NONE);
        char *v = NULL;
        int rc = dkvs_get(h, "c-tls", 3, 2, &v);
        CHECK(rc == DKVS_ERR_NETWORK, "%s: get returned %d (%s), want DKVS_ERR_NETWORK", cases[i].name, rc,
              dkvs_strerror(rc));
        CHECK(v == NULL, "%s: a value after a failure", cases[i].name);
        CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    }
}

static void test_open_errors(void)
{
    dkvs_t *h = (dkvs_t *)1;
    CHECK_RC(open_with("/nonexistent/ca.pem", NULL, NULL, &h), DKVS_ERR_IO);
    CHECK(h == NULL, "handle not cleared on failure");
    CHECK_RC(open_with(junk, NULL, NULL, &h), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(open_with(ca, cert, NULL, &h), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(open_with(NULL, cert, key, &h), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(open_with(ca, cert, junk, &h), DKVS_ERR_INVALID_CONFIG);

    /* An older, smaller struct: the fields it lacks are zero (no TLS). */
    dkvs_options_t o = {0};
    o.struct_size = offsetof(dkvs_options_t, tls_ca);
    o.tls_ca = "/nonexistent/ignored.pem";
    CHECK_RC(dkvs_open_opts(servers, &o, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    o.struct_size = offsetof(dkvs_options_t, timeout_ns);
    CHECK_RC(dkvs_open_opts(servers, &o, &h), DKVS_ERR_INVALID_ARGUMENT);
    o.struct_size = sizeof o;
    o.tls_ca = NULL;
    o.timeout_ns = -1;
    CHECK_RC(dkvs_open_opts(servers, &o, &h), DKVS_ERR_INVALID_ARGUMENT);
    CHECK_RC(dkvs_open_opts(servers, NULL, &h), DKVS_ERR_NONE); /* the defaults */
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_open_opts(servers, NULL, NULL), DKVS_ERR_INVALID_ARGUMENT);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: tls SERVERS CA CERT KEY OTHER_CA JUNK\n");
        return 2;
    }
    servers = argv[1], ca = argv[2], cert = argv[3], key = argv[4], other_ca = argv[5], junk = argv[6];
    test_round_trip();
    test_refused();
    test_open_errors();
    return check_done();
}
