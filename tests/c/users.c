/*
 * users.c: dkvs_open_opts's user and token against a ring over TLS with
 * users.
 *
 *   users SERVERS CA APP_TOKEN
 *
 * The user "app" may read and write keys under "app/" with APP_TOKEN.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <string.h>

#include "check.h"

static const char *servers, *ca, *app_token;

/* open_as opens a handle over TLS as user with token (NULL: none). */
static int open_as(const char *user, const char *token, dkvs_t **h)
{
    dkvs_options_t o = {0};
    o.struct_size = sizeof o;
    o.tls_ca = ca;
    o.user = user;
    o.token = token;
    return dkvs_open_opts(servers, &o, h);
}

static void test_allowed(void)
{
    dkvs_t *h = NULL;
    CHECK_RC(open_as("app", app_token, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "app/c", "from C", 3, 2), DKVS_ERR_NONE);
    char *v = NULL;
    CHECK_RC(dkvs_get(h, "app/c", 3, 2, &v), DKVS_ERR_NONE);
    CHECK(v && strcmp(v, "from C") == 0, "get app/c = %s", v ? v : "(null)");
    dkvs_free(v);
    CHECK_RC(dkvs_del(h, "app/gone", 3, 2), DKVS_ERR_NONE);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
}

/* Each refusal is DKVS_ERR_INVALID_CONFIG and stores nothing. */
static void test_refused(void)
{
    dkvs_t *h = NULL;
    CHECK_RC(open_as("app", app_token, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "etc/c", "x", 3, 2), DKVS_ERR_INVALID_CONFIG);
    char *v = NULL;
    CHECK_RC(dkvs_get(h, "etc/c", 3, 2, &v), DKVS_ERR_INVALID_CONFIG);
    CHECK(v == NULL, "a value after a refusal");
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);

    CHECK_RC(open_as("app", "wrong-token", &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "app/wrong", "x", 3, 2), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);

    CHECK_RC(open_as(NULL, NULL, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "app/anonymous", "x", 3, 2), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);

    CHECK_RC(open_as("app", app_token, &h), DKVS_ERR_NONE);
    const char *keys[] = {"app/wrong", "app/anonymous"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        v = NULL;
        CHECK_RC(dkvs_get(h, keys[i], 3, 2, &v), DKVS_ERR_NOT_FOUND);
        dkvs_free(v);
    }
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
}

static void test_open_errors(void)
{
    dkvs_t *h = (dkvs_t *)1;
    CHECK_RC(open_as("app", NULL, &h), DKVS_ERR_INVALID_CONFIG);
    CHECK(h == NULL, "handle not cleared on failure");
    CHECK_RC(open_as(NULL, app_token, &h), DKVS_ERR_INVALID_CONFIG);

    /* A struct of before the user field: no authentication. */
    dkvs_options_t o = {0};
    o.struct_size = offsetof(dkvs_options_t, user);
    o.tls_ca = ca;
    o.user = "ignored";
    CHECK_RC(dkvs_open_opts(servers, &o, &h), DKVS_ERR_NONE);
    CHECK_RC(dkvs_put(h, "app/old-struct", "x", 3, 2), DKVS_ERR_INVALID_CONFIG);
    CHECK_RC(dkvs_close(h), DKVS_ERR_NONE);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: users SERVERS CA APP_TOKEN\n");
        return 2;
    }
    servers = argv[1];
    ca = argv[2];
    app_token = argv[3];
    test_allowed();
    test_refused();
    test_open_errors();
    return check_done();
}
