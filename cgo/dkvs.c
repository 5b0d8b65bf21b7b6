/*
 * The public functions of libdkvs.so, those of include/dkvs.h. Including
 * the header here makes the compiler check each definition against it.
 * They do what needs no Go (static strings, free, strlen of C strings) and
 * pass everything else to the Go functions of main.go (dkvsgo_*), which
 * check the arguments and run the Go client.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dkvs.h"
#include "_cgo_export.h"

/* Internal to the library: malloc that may return NULL (see main.go). */
__attribute__((visibility("hidden"))) void *dkvsgo_alloc(size_t n)
{
    return malloc(n);
}

const char *dkvs_version(void)
{
    return DKVS_VERSION;
}

const char *dkvs_strerror(int code)
{
    switch (code) {
    case DKVS_ERR_NONE: return "";
    case DKVS_ERR_IO: return "I/O Error";
    case DKVS_ERR_RUNTIME: return "Runtime error";
    case DKVS_ERR_OUT_OF_MEMORY: return "(re|m|c)alloc failed";
    case DKVS_ERR_NETWORK: return "Network error";
    case DKVS_ERR_INVALID_CONFIG: return "Invalid config";
    case DKVS_ERR_INVALID_COMMAND: return "Invalid command";
    case DKVS_ERR_INVALID_ARGUMENT: return "Invalid argument (internal error)";
    case DKVS_ERR_ADDRESS: return "Invalid address";
    case DKVS_ERR_NOT_FOUND: return "Not found";
    case DKVS_ERR_THREADING: return "Threading error";
    case DKVS_ERR_UNKNOWN_OUTCOME: return "Outcome unknown";
    }
    return "Unknown error";
}

int dkvs_open(const char *servers_file, dkvs_t **out)
{
    return dkvs_open_timeout(servers_file, 0, out);
}

int dkvs_open_timeout(const char *servers_file, int64_t timeout_ns, dkvs_t **out)
{
    dkvs_options_t o = {0};
    o.struct_size = sizeof o;
    o.timeout_ns = timeout_ns;
    return dkvs_open_opts(servers_file, &o, out);
}

int dkvs_open_opts(const char *servers_file, const dkvs_options_t *opts, dkvs_t **out)
{
    /* The caller's struct may be older (smaller) than this one: the
     * fields it does not have are zero. */
    dkvs_options_t o = {0};
    if (out)
        *out = NULL;
    if (opts) {
        if (opts->struct_size < offsetof(dkvs_options_t, tls_ca))
            return DKVS_ERR_INVALID_ARGUMENT;
        memcpy(&o, opts, opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
    }
    uintptr_t id = 0;
    int rc = dkvsgo_open((char *)servers_file, o.timeout_ns, (char *)o.tls_ca, (char *)o.tls_cert,
                         (char *)o.tls_key, (char *)o.user, (char *)o.token, out ? &id : NULL);
    if (out)
        *out = rc == DKVS_ERR_NONE ? (dkvs_t *)id : NULL;
    return rc;
}

int dkvs_close(dkvs_t *h)
{
    return dkvsgo_close((uintptr_t)h);
}

int dkvs_put(dkvs_t *h, const char *key, const char *value, int n, int w)
{
    if (key == NULL || value == NULL)
        return DKVS_ERR_INVALID_ARGUMENT;
    return dkvs_put_bin(h, key, strlen(key), value, strlen(value), n, w);
}

int dkvs_get(dkvs_t *h, const char *key, int n, int r, char **value)
{
    if (value)
        *value = NULL;
    if (key == NULL || value == NULL)
        return DKVS_ERR_INVALID_ARGUMENT;
    void *v = NULL;
    size_t vlen = 0;
    int rc = dkvs_get_bin(h, key, strlen(key), n, r, &v, &vlen);
    *value = v;
    return rc;
}

int dkvs_del(dkvs_t *h, const char *key, int n, int w)
{
    if (key == NULL)
        return DKVS_ERR_INVALID_ARGUMENT;
    return dkvs_del_bin(h, key, strlen(key), n, w);
}

int dkvs_put_bin(dkvs_t *h, const void *key, size_t klen,
                 const void *value, size_t vlen, int n, int w)
{
    return dkvsgo_put((uintptr_t)h, (void *)key, klen, (void *)value, vlen, n, w);
}

int dkvs_get_bin(dkvs_t *h, const void *key, size_t klen, int n, int r,
                 void **value, size_t *vlen)
{
    return dkvsgo_get((uintptr_t)h, (void *)key, klen, n, r, value, vlen);
}

int dkvs_del_bin(dkvs_t *h, const void *key, size_t klen, int n, int w)
{
    return dkvsgo_del((uintptr_t)h, (void *)key, klen, n, w);
}

int dkvs_put_req(dkvs_t *h, const void *key, size_t klen,
                 const void *value, size_t vlen, const dkvs_request_t *req)
{
    dkvs_request_t def = {0, 0, 0, 0, 0};
    if (!req)
        req = &def;
    return dkvsgo_put_req((uintptr_t)h, (void *)key, klen, (void *)value, vlen,
                          req->n, req->r, req->w, req->level, req->linearizable);
}

int dkvs_get_req(dkvs_t *h, const void *key, size_t klen,
                 const dkvs_request_t *req, void **value, size_t *vlen)
{
    dkvs_request_t def = {0, 0, 0, 0, 0};
    if (!req)
        req = &def;
    return dkvsgo_get_req((uintptr_t)h, (void *)key, klen,
                          req->n, req->r, req->w, req->level, req->linearizable, value, vlen);
}

int dkvs_del_req(dkvs_t *h, const void *key, size_t klen, const dkvs_request_t *req)
{
    dkvs_request_t def = {0, 0, 0, 0, 0};
    if (!req)
        req = &def;
    return dkvsgo_del_req((uintptr_t)h, (void *)key, klen,
                          req->n, req->r, req->w, req->level, req->linearizable);
}

int dkvs_resolve_args(const char *n, const char *r, const char *w, const char *c,
                      int linearizable, dkvs_request_t *req, char *msg, size_t msg_size)
{
    int rn = 0, rr = 0, rw = 0, rlin = 0;
    int rc = dkvsgo_resolve_args((char *)n, (char *)r, (char *)w, (char *)c, linearizable,
                                 req ? &rn : NULL, &rr, &rw, &rlin, msg, msg_size);
    if (req) {
        req->n = rn;
        req->r = rr;
        req->w = rw;
        req->level = DKVS_LEVEL_DEFAULT;
        req->linearizable = rlin;
    }
    return rc;
}

int dkvs_set_linearizable(dkvs_t *h, int on)
{
    return dkvsgo_set_linearizable((uintptr_t)h, on);
}

void dkvs_free(void *p)
{
    free(p);
}

/* The batch calls: the Go side walks the items array (C memory). Their
 * kinds, as dkvsgo_batch (batch.go) takes them. */
enum { DKVSGO_BATCH_GET = 1, DKVSGO_BATCH_PUT = 2, DKVSGO_BATCH_DEL = 3 };

static int batch(int kind, dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req)
{
    dkvs_request_t def = {0, 0, 0, 0, 0};
    if (!req)
        req = &def;
    return dkvsgo_batch(kind, (uintptr_t)h, items, count,
                        req->n, req->r, req->w, req->level, req->linearizable);
}

int dkvs_mget(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req)
{
    return batch(DKVSGO_BATCH_GET, h, items, count, req);
}

int dkvs_mput(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req)
{
    return batch(DKVSGO_BATCH_PUT, h, items, count, req);
}

int dkvs_mdel(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req)
{
    return batch(DKVSGO_BATCH_DEL, h, items, count, req);
}
