/*
 * dkvs.h - C interface of dkvs, a Dynamo-style replicated key-value store.
 *
 * Link with libdkvs.so (-ldkvs). The library is the Go client of dkvs built
 * as a shared object: it reads servers.txt, places each key on the SHA-1
 * ring and runs every operation against the key's N home servers in
 * parallel, exactly like dkvs-client and the Go package.
 *
 *     #include <dkvs.h>
 *
 *     dkvs_t *h;
 *     int rc = dkvs_open("servers.txt", &h);
 *     if (rc != DKVS_ERR_NONE) { fprintf(stderr, "%s\n", dkvs_strerror(rc)); ... }
 *     rc = dkvs_put(h, "greeting", "hello", 3, 2);       // N=3, W=2
 *     char *v;
 *     rc = dkvs_get(h, "greeting", 3, 2, &v);            // N=3, R=2
 *     if (rc == DKVS_ERR_NONE) { puts(v); dkvs_free(v); }
 *     dkvs_close(h);
 *
 * Conventions of every function below:
 *
 * - Return value: an error code of enum dkvs_error (DKVS_ERR_NONE, 0, on
 *   success). The values are those of the DKVS error table (cs202); a
 *   process that exits with 256 + code gives the shell the exit status of
 *   dkvs-client.
 * - Threads: every function may be called from any number of threads at
 *   once, on the same handle or on different handles. A handle keeps
 *   pipelined connections to the servers that all threads share.
 * - Memory: the library never keeps a pointer the caller passed in after
 *   the call returns (keys and values are copied), and every buffer it hands
 *   out is allocated with malloc in the library and released with
 *   dkvs_free. Nothing returned points into the Go runtime's memory.
 * - Misuse is reported, never fatal: a NULL or closed handle (including a
 *   second dkvs_close), a NULL key, value or out-pointer, N/R/W below 1 or
 *   R/W above N all return DKVS_ERR_INVALID_ARGUMENT. An unexpected failure
 *   inside the library returns DKVS_ERR_RUNTIME instead of crashing.
 * - Quorums: n is the number of home servers of the key (the DKVS default
 *   is 3), w the acknowledgements a write waits for and r the replies a
 *   read waits for (default 2 each). An n larger than the number of servers
 *   in the ring means all of them, and r or w above that number follow n
 *   down: n = w = 5 on a ring of three servers is n = w = 3.
 * - Limits: keys of 1 byte to 64 KiB, values of 0 to 16 MiB (the servers'
 *   defaults; larger gives DKVS_ERR_INVALID_ARGUMENT before anything is
 *   sent).
 * - Deadlines: each request to one server has a deadline (500 ms by
 *   default, see dkvs_open_timeout), so no call blocks for longer than
 *   about that (plus 1 ms per 64 KiB of value).
 * - fork: the library runs the Go runtime; a child process created by
 *   fork() must not use a handle of its parent, and the library cannot be
 *   unloaded with dlclose().
 *
 * Versioning: this header is stable. Functions are only added (with a
 * MINOR version step); existing signatures, error values and semantics do
 * not change within a MAJOR version.
 */
#ifndef DKVS_H
#define DKVS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header; dkvs_version() gives the library's. */
#define DKVS_VERSION_MAJOR 1
#define DKVS_VERSION_MINOR 3
#define DKVS_VERSION_PATCH 0
#define DKVS_VERSION "1.3.0"

/* The defaults of the DKVS command line. */
#define DKVS_DEFAULT_N 3
#define DKVS_DEFAULT_R 2
#define DKVS_DEFAULT_W 2

/*
 * Error codes, equal to the ERR_* values of the DKVS error table.
 * dkvs_strerror gives the message of each.
 */
typedef enum dkvs_error {
    DKVS_ERR_NONE = 0,               /* success */
    DKVS_ERR_IO = -127,              /* servers file missing or unreadable; storage failure on a server */
    DKVS_ERR_RUNTIME = -126,         /* unexpected failure inside the library */
    DKVS_ERR_OUT_OF_MEMORY = -125,   /* malloc failed */
    DKVS_ERR_NETWORK = -124,         /* fewer than R (or W) servers answered in time */
    DKVS_ERR_INVALID_CONFIG = -123,  /* bad servers file */
    DKVS_ERR_INVALID_COMMAND = -122, /* bad command line (command-line tools, dkvs_resolve_args) */
    DKVS_ERR_INVALID_ARGUMENT = -121, /* bad argument: see "Misuse" above; key or value too large */
    DKVS_ERR_ADDRESS = -120,         /* an IP in the servers file is not dotted IPv4 */
    DKVS_ERR_NOT_FOUND = -119,       /* the key is absent or deleted */
    DKVS_ERR_THREADING = -118,       /* threading error (kept for compatibility) */
    /*
     * A write (put or delete) failed after some server may have applied
     * it: one acknowledged it but fewer than w did, or a request was sent
     * and not answered in time. The write may yet become visible, or not.
     * Distinct from DKVS_ERR_NETWORK, which means nothing was applied.
     * Not part of the DKVS table: the command-line tools exit with
     * DKVS_ERR_NETWORK (132) in this case. Since 1.1.
     */
    DKVS_ERR_UNKNOWN_OUTCOME = -100
} dkvs_error_t;

/*
 * Consistency levels: how many of a key's n servers a read waits for (r)
 * or a write needs (w). Since 1.1.
 */
typedef enum dkvs_level {
    DKVS_LEVEL_DEFAULT = 0, /* r and w as given, else min(2, n) */
    DKVS_LEVEL_ONE = 1,     /* 1 */
    DKVS_LEVEL_QUORUM = 2,  /* n / 2 + 1 */
    DKVS_LEVEL_ALL = 3      /* n */
} dkvs_level_t;

/*
 * How one operation is replicated (the dkvs_*_req functions). Zero every
 * field (or pass NULL) for the defaults: n = 3, r = w = 2. Since 1.1.
 *
 * - n: home servers of the key; 0 means 3; above the number of servers
 *   means all of them (r and w follow it down).
 * - r, w: replies a read waits for, acknowledgements a write needs; 0
 *   means from level; a non-zero value wins over level.
 * - level: enum dkvs_level.
 * - linearizable: non-zero asks for the linearizable mode: strict quorums
 *   of a majority (n / 2 + 1) of the key's home servers, no fallback
 *   servers; a read that sees differing versions writes the newest back to
 *   a majority before it returns; a write first reads the highest version
 *   from a majority and writes a strictly higher one. r and w default to
 *   the majority and may not be lower (DKVS_ERR_INVALID_ARGUMENT). An
 *   operation that cannot reach a majority fails with DKVS_ERR_NETWORK (a
 *   write possibly applied: DKVS_ERR_UNKNOWN_OUTCOME); it never answers
 *   from a minority.
 */
typedef struct dkvs_request {
    int n;
    int r;
    int w;
    int level;
    int linearizable;
} dkvs_request_t;

/* A connection to a ring: opaque, created by dkvs_open, ended by dkvs_close. */
typedef struct dkvs dkvs_t;

/*
 * dkvs_version returns the library's version, "MAJOR.MINOR.PATCH" (the
 * DKVS_VERSION its header had when it was built). The string is static:
 * never free it. Thread-safe.
 */
const char *dkvs_version(void);

/*
 * dkvs_strerror returns the message of an error code, as in the DKVS error
 * table: "" for DKVS_ERR_NONE, "Not found" for DKVS_ERR_NOT_FOUND, and so
 * on; "Unknown error" for a value that is not a code. The string is static:
 * never free it. Thread-safe.
 */
const char *dkvs_strerror(int code);

/*
 * dkvs_open reads a servers file (NULL or "" means servers.txt in the
 * current directory) and stores a new handle for that ring in *out. No
 * connection is made until the first operation, so a ring that is down is
 * only noticed then.
 *
 * Ownership: the caller owns the handle and releases it with dkvs_close.
 * On failure *out is set to NULL (when out is not NULL).
 *
 * Errors: DKVS_ERR_IO (file missing or unreadable), DKVS_ERR_INVALID_CONFIG
 * (malformed line, bad port or count, empty file, server listed twice),
 * DKVS_ERR_ADDRESS (an IP that is not dotted IPv4),
 * DKVS_ERR_INVALID_ARGUMENT (out is NULL). Thread-safe.
 */
int dkvs_open(const char *servers_file, dkvs_t **out);

/*
 * dkvs_open_timeout is dkvs_open with the deadline of one request to one
 * server, in nanoseconds (0 means the default, 500 ms; the --timeout of
 * dkvs-client). A negative timeout_ns returns DKVS_ERR_INVALID_ARGUMENT.
 * Otherwise as dkvs_open. Thread-safe.
 */
int dkvs_open_timeout(const char *servers_file, int64_t timeout_ns, dkvs_t **out);

/*
 * Options of dkvs_open_opts. Set the whole struct to zero first (= {0} or
 * memset), then struct_size to sizeof(dkvs_options_t), then the fields
 * you need: a zero field is its default. Later versions of the library
 * only add fields at the end, and read none beyond struct_size, so a
 * program built with this header keeps working with them.
 *
 * The strings are copied (and the files read) during the call.
 */
typedef struct dkvs_options {
    /* sizeof(dkvs_options_t) as the caller was built with it. */
    size_t struct_size;
    /* Deadline of one request to one server in nanoseconds; 0 is 500 ms. */
    int64_t timeout_ns;
    /*
     * TLS (since 1.3.0): the PEM file of the CA that signs the servers'
     * certificates. When set, every connection is TLS 1.3 and a server's
     * certificate must be signed by it and name the server's IP. NULL or
     * "": plaintext.
     */
    const char *tls_ca;
    /*
     * The client's own certificate and private key (PEM files), both or
     * neither, for servers that require a client certificate
     * (dkvs-server --tls-client-cert required) or that take it as the
     * client's identity. They need tls_ca.
     */
    const char *tls_cert;
    const char *tls_key;
    /*
     * Authentication (since 1.3.0), for servers with users (dkvs-server
     * --users): the user's name and its token (the line printed by
     * dkvs-client user add), sent once on each connection. NULL or "":
     * none. A user needs a token. A token the servers refuse, or a key
     * or operation the user has no right to, fails the call with
     * DKVS_ERR_INVALID_CONFIG; nothing is changed.
     */
    const char *user;
    const char *token;
} dkvs_options_t;

/*
 * dkvs_open_opts is dkvs_open with options (see dkvs_options_t); NULL
 * options are the defaults. A server that refuses the TLS handshake, or
 * whose certificate does not verify, counts as a server that does not
 * answer: the operations that need it fail with DKVS_ERR_NETWORK.
 *
 * Errors: as dkvs_open; and DKVS_ERR_INVALID_ARGUMENT (struct_size smaller
 * than the first two fields, a negative timeout_ns), DKVS_ERR_IO (a TLS
 * file missing or unreadable), DKVS_ERR_INVALID_CONFIG (a TLS file that
 * holds no valid PEM certificate or key, a certificate whose key does not
 * match, tls_cert without tls_key or either without tls_ca). Since 1.3.0.
 * Thread-safe.
 */
int dkvs_open_opts(const char *servers_file, const dkvs_options_t *opts, dkvs_t **out);

/*
 * dkvs_close ends a handle. It first waits for calls on the handle still
 * running in other threads to return, then for replica writes still under
 * way (a put returns after W acknowledgements; the other N - W replicas are
 * still being written, each bounded by its deadline), so that a put reaches
 * every live home server before the program goes on or exits. Then it
 * closes the connections. The handle is invalid afterwards: using it again,
 * or closing it a second time, returns DKVS_ERR_INVALID_ARGUMENT.
 *
 * Errors: DKVS_ERR_INVALID_ARGUMENT (NULL, unknown or already closed
 * handle). Thread-safe; calls made on the handle after dkvs_close started
 * return DKVS_ERR_INVALID_ARGUMENT.
 */
int dkvs_close(dkvs_t *h);

/*
 * dkvs_put stores the NUL-terminated value under the NUL-terminated key on
 * the key's n home servers and returns once w of them have acknowledged a
 * durable write (the others are still written in the background;
 * dkvs_close waits for them). The value may be empty (""). key and value
 * are copied: the caller keeps ownership and may reuse them at once.
 *
 * Errors: DKVS_ERR_INVALID_ARGUMENT (bad handle, NULL or empty key, NULL
 * value, n or w below 1, w above n, key or value above the limits, or a
 * server refused the request), DKVS_ERR_NETWORK (fewer than w servers
 * acknowledged in time, and none can have applied it),
 * DKVS_ERR_UNKNOWN_OUTCOME (fewer than w acknowledged, but some server may
 * have applied it), DKVS_ERR_IO (a server failed to store it).
 * Thread-safe.
 */
int dkvs_put(dkvs_t *h, const char *key, const char *value, int n, int w);

/*
 * dkvs_get reads the NUL-terminated key from its n home servers and
 * returns the newest value among the first r of them to answer. On
 * success *value receives a NUL-terminated copy of the value, allocated by
 * the library: the caller owns it and releases it with dkvs_free. On
 * failure *value is set to NULL. A value that itself holds NUL bytes is
 * returned whole, but reads as cut at its first NUL through this call: use
 * dkvs_get_bin for binary values.
 *
 * Errors: DKVS_ERR_NOT_FOUND (the newest answer is "absent" or a deletion),
 * DKVS_ERR_NETWORK (fewer than r servers answered in time),
 * DKVS_ERR_INVALID_ARGUMENT (bad handle, NULL or empty key, NULL value
 * pointer, n or r below 1, r above n, key above the limit),
 * DKVS_ERR_OUT_OF_MEMORY. Thread-safe.
 */
int dkvs_get(dkvs_t *h, const char *key, int n, int r, char **value);

/*
 * dkvs_del deletes the NUL-terminated key: it writes a deletion marker on
 * the key's n home servers and returns once w of them have acknowledged it.
 * Deleting a key that does not exist succeeds.
 *
 * Errors: as dkvs_put (without the value). Thread-safe.
 */
int dkvs_del(dkvs_t *h, const char *key, int n, int w);

/*
 * dkvs_put_bin is dkvs_put for arbitrary bytes: klen bytes at key (NUL
 * bytes allowed; klen must be at least 1) and vlen bytes at value. value
 * may be NULL only when vlen is 0 (an empty value). Both are copied.
 *
 * Errors: as dkvs_put. Thread-safe.
 */
int dkvs_put_bin(dkvs_t *h, const void *key, size_t klen,
                 const void *value, size_t vlen, int n, int w);

/*
 * dkvs_get_bin is dkvs_get for arbitrary bytes: the key is klen bytes at
 * key. On success *value receives a copy of the whole value, allocated by
 * the library and followed by one extra NUL byte that is not counted, and
 * *vlen its length in bytes (an empty value gives a non-NULL *value and
 * *vlen = 0). The caller owns *value and releases it with dkvs_free. On
 * failure *value is set to NULL and *vlen to 0.
 *
 * Errors: as dkvs_get; value or vlen NULL is DKVS_ERR_INVALID_ARGUMENT.
 * Thread-safe.
 */
int dkvs_get_bin(dkvs_t *h, const void *key, size_t klen, int n, int r,
                 void **value, size_t *vlen);

/*
 * dkvs_del_bin is dkvs_del for a key of klen arbitrary bytes.
 *
 * Errors: as dkvs_del. Thread-safe.
 */
int dkvs_del_bin(dkvs_t *h, const void *key, size_t klen, int n, int w);

/*
 * dkvs_put_req is dkvs_put_bin with the replication given by req (NULL:
 * the defaults), e.g. a consistency level or the linearizable mode. The
 * handle's default (dkvs_set_linearizable) applies too.
 *
 * Errors: as dkvs_put; DKVS_ERR_INVALID_ARGUMENT also for a level that is
 * not one of enum dkvs_level, a negative n, r or w, or a linearizable
 * request with r or w below a majority. Thread-safe. Since 1.1.
 */
int dkvs_put_req(dkvs_t *h, const void *key, size_t klen,
                 const void *value, size_t vlen, const dkvs_request_t *req);

/*
 * dkvs_get_req is dkvs_get_bin with the replication given by req (NULL:
 * the defaults). Ownership of *value as dkvs_get_bin.
 *
 * Errors: as dkvs_get_bin, and as dkvs_put_req for req. Thread-safe.
 * Since 1.1.
 */
int dkvs_get_req(dkvs_t *h, const void *key, size_t klen,
                 const dkvs_request_t *req, void **value, size_t *vlen);

/*
 * dkvs_del_req is dkvs_del_bin with the replication given by req (NULL:
 * the defaults).
 *
 * Errors: as dkvs_put_req. Thread-safe. Since 1.1.
 */
int dkvs_del_req(dkvs_t *h, const void *key, size_t klen, const dkvs_request_t *req);

/*
 * One key of a batch call (dkvs_mget, dkvs_mput, dkvs_mdel) and its
 * result. Since 1.3.
 *
 * - key, klen: the key (klen bytes, NUL bytes allowed, at least 1), read
 *   only.
 * - value, vlen: dkvs_mput stores vlen bytes at value (NULL only when vlen
 *   is 0; read only, never modified). dkvs_mget sets them: on success a
 *   copy of the value allocated by the library, followed by one extra NUL
 *   byte that is not counted, which the caller releases with dkvs_free;
 *   on failure NULL and 0. dkvs_mdel ignores them.
 * - rc: set by the call to the key's own error code, the one the single
 *   call (dkvs_get_req, dkvs_put_req, dkvs_del_req) would have returned
 *   for it: DKVS_ERR_NONE, DKVS_ERR_NOT_FOUND, DKVS_ERR_NETWORK,
 *   DKVS_ERR_UNKNOWN_OUTCOME, DKVS_ERR_INVALID_ARGUMENT (NULL or empty
 *   key, key or value above the limits), ...
 */
typedef struct dkvs_item {
    const void *key;
    size_t klen;
    void *value;
    size_t vlen;
    int rc;
} dkvs_item_t;

/*
 * dkvs_mget reads the count keys of items, each with the replication of
 * req (NULL: the defaults) and the quorum semantics of dkvs_get_req, and
 * sets each item's value, vlen and rc. One key failing does not fail the
 * others. The requests of all the keys for one server travel in one
 * message, answered in one: reading many keys this way costs far fewer
 * round trips than as many dkvs_get_req calls. A key may appear more than
 * once.
 *
 * Returns DKVS_ERR_NONE when every item's rc is DKVS_ERR_NONE, else the rc
 * of the first item (in order) that failed. DKVS_ERR_INVALID_ARGUMENT, with
 * every item's rc set to it, for a bad handle, items NULL with a count
 * above 0, a count above 1,048,576 or a bad req (as dkvs_put_req);
 * nothing is sent then. A count of 0 does nothing. Thread-safe. Since 1.3.
 */
int dkvs_mget(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req);

/*
 * dkvs_mput stores the value of each item under its key, each with the
 * replication of req (NULL: the defaults) and the semantics of
 * dkvs_put_req, and sets each item's rc. The writes for one server travel
 * in one message and are made durable with one fsync. Not atomic: some
 * items may be stored and others not (see each rc). A key that appears
 * more than once ends with the value of its last item.
 *
 * Returns and errors as dkvs_mget. Thread-safe. Since 1.3.
 */
int dkvs_mput(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req);

/*
 * dkvs_mdel deletes the key of each item, as dkvs_del_req would, batched
 * as dkvs_mput is, and sets each item's rc.
 *
 * Returns and errors as dkvs_mget. Thread-safe. Since 1.3.
 */
int dkvs_mdel(dkvs_t *h, dkvs_item_t *items, size_t count, const dkvs_request_t *req);

/*
 * dkvs_set_linearizable makes every later operation on the handle
 * linearizable (on non-zero), from any function, as if each request asked
 * for it; 0 turns the default off again (requests may still ask for it).
 * With it on, dkvs_put(h, key, value, 3, 1) fails with
 * DKVS_ERR_INVALID_ARGUMENT: w = 1 is below a majority of 3.
 *
 * Errors: DKVS_ERR_INVALID_ARGUMENT (bad handle). Thread-safe: operations
 * running in other threads use the setting they started with. Since 1.1.
 */
int dkvs_set_linearizable(dkvs_t *h, int on);

/*
 * dkvs_resolve_args applies the rules of the DKVS command line (cs202
 * section 3, as dkvs-client applies them) to the replication flags of one
 * command as the user wrote them: n, r, w and c are the values of -n, -r,
 * -w and -c, NULL for a flag that was not given; linearizable is non-zero
 * for --linearizable. On success *req holds the request to pass to
 * dkvs_put_req, dkvs_get_req or dkvs_del_req: n, r and w set, level
 * DKVS_LEVEL_DEFAULT, linearizable 0 or 1. The rules, checked in this
 * order:
 *
 * - -n, -r and -w are strictly positive whole numbers in decimal digits,
 *   below 255 ("0", "-1", "abc", "1234abc", "+2" and "" are refused).
 * - N is -n, else the largest of the R and W given, else DKVS_DEFAULT_N;
 *   an R or W not given is min(2, N). So -r 1 means N = W = 1, -n 1 means
 *   R = W = 1, -n 7 means R = W = 2. R or W above N is refused.
 * - -c ONE, QUORUM or ALL (any case) sets R and W from N (1, N / 2 + 1,
 *   N) where -r and -w were not given: the numbers win.
 * - -c LINEARIZABLE, or linearizable, asks for the linearizable mode
 *   (see dkvs_request_t): an R or W not given becomes at least a
 *   majority of N, and one given below it is refused.
 *
 * The first rule broken is reported. When msg is not NULL it receives
 * what is wrong, without the code's own message (dkvs_strerror gives
 * that), e.g. "R=3 is larger than N=2", or "" on success: at most
 * msg_size bytes, NUL included, cut to fit. On failure every field of
 * *req is set to 0. No handle is needed: a command-line tool checks its
 * flags before it opens the ring.
 *
 * Errors: DKVS_ERR_INVALID_COMMAND (a rule above is broken),
 * DKVS_ERR_INVALID_ARGUMENT (req is NULL). Thread-safe. Since 1.2.
 */
int dkvs_resolve_args(const char *n, const char *r, const char *w, const char *c,
                      int linearizable, dkvs_request_t *req, char *msg, size_t msg_size);

/*
 * dkvs_free releases a buffer returned by dkvs_get, dkvs_get_bin or
 * dkvs_get_req. NULL is
 * allowed and does nothing. Use it, not free(), for everything the library
 * hands out. Thread-safe.
 */
void dkvs_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* DKVS_H */
