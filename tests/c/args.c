/*
 * args.c: dkvs_resolve_args, the command line's replication rules
 * (cs202.md section 3) through dkvs.h. No ring is needed.
 *
 *   args
 */
#include <string.h>

#include "check.h"

/* NG: a flag not given. */
#define NG NULL

static void want_ok(const char *n, const char *r, const char *w, const char *c, int lin,
                    int wn, int wr, int ww, int wlin)
{
    dkvs_request_t req = {-1, -1, -1, -1, -1};
    char msg[128] = "junk";
    CHECK_RC(dkvs_resolve_args(n, r, w, c, lin, &req, msg, sizeof msg), DKVS_ERR_NONE);
    CHECK(req.n == wn && req.r == wr && req.w == ww && req.level == DKVS_LEVEL_DEFAULT && req.linearizable == wlin,
          "-n %s -r %s -w %s -c %s lin %d: n=%d r=%d w=%d level=%d lin=%d, want n=%d r=%d w=%d lin=%d",
          n ? n : "-", r ? r : "-", w ? w : "-", c ? c : "-", lin, req.n, req.r, req.w, req.level,
          req.linearizable, wn, wr, ww, wlin);
    CHECK(msg[0] == '\0', "message on success: %s", msg);
}

static void want_error(const char *n, const char *r, const char *w, const char *c, int lin,
                       const char *want_msg)
{
    dkvs_request_t req = {9, 9, 9, 9, 9};
    char msg[128] = "";
    CHECK_RC(dkvs_resolve_args(n, r, w, c, lin, &req, msg, sizeof msg), DKVS_ERR_INVALID_COMMAND);
    CHECK(strcmp(msg, want_msg) == 0, "message \"%s\", want \"%s\"", msg, want_msg);
    CHECK(req.n == 0 && req.r == 0 && req.w == 0 && req.level == 0 && req.linearizable == 0,
          "request not cleared on failure");
}

int main(void)
{
    /* Defaults, and N from the R and W given (cs202 section 3). */
    want_ok(NG, NG, NG, NG, 0, DKVS_DEFAULT_N, DKVS_DEFAULT_R, DKVS_DEFAULT_W, 0);
    want_ok(NG, "1", NG, NG, 0, 1, 1, 1, 0); /* -r 1 means N=1, W=1 */
    want_ok("1", NG, NG, NG, 0, 1, 1, 1, 0); /* -n 1 means R=W=1 */
    want_ok("7", NG, NG, NG, 0, 7, 2, 2, 0); /* -n 7 means R=W=2 */
    want_ok(NG, "1", "3", NG, 0, 3, 1, 3, 0);
    want_ok("254", "254", NG, NG, 0, 254, 254, 2, 0);
    want_ok(NG, "000000002", NG, NG, 0, 2, 2, 2, 0);

    /* Levels and the linearizable mode. */
    want_ok(NG, NG, NG, "one", 0, 3, 1, 1, 0);
    want_ok("5", NG, NG, "QUORUM", 0, 5, 3, 3, 0);
    want_ok("3", "1", NG, "ALL", 0, 3, 1, 3, 0); /* the numbers win */
    want_ok(NG, NG, NG, "LINEARIZABLE", 0, 3, 2, 2, 1);
    want_ok("5", NG, NG, NG, 1, 5, 3, 3, 1);

    /* Errors, with dkvs-client's messages. */
    want_error("2", "3", NG, NG, 0, "R=3 is larger than N=2");
    want_error("1", NG, "2", NG, 0, "W=2 is larger than N=1");
    want_error(NG, "255", NG, NG, 0, "-r 255: must be below 255");
    want_error(NG, "0", NG, NG, 0, "-r \"0\" is not a strictly positive whole number");
    want_error("-1", NG, NG, NG, 0, "-n \"-1\" is not a strictly positive whole number");
    want_error(NG, NG, "abc", NG, 0, "-w \"abc\" is not a strictly positive whole number");
    want_error(NG, "1234abc", NG, NG, 0, "-r \"1234abc\" is not a strictly positive whole number");
    want_error("", NG, NG, NG, 0, "-n \"\" is not a strictly positive whole number");
    want_error(NG, NG, NG, "SOME", 0, "-c \"SOME\": want ONE, QUORUM, ALL or LINEARIZABLE");
    want_error("3", "1", NG, "LINEARIZABLE", 0,
               "linearizable needs R and W of at least a majority of N=3 (2), got R=1 W=2");
    want_error("3", NG, "1", NG, 1,
               "linearizable needs R and W of at least a majority of N=3 (2), got R=2 W=1");

    /* The message is optional and cut to fit. */
    dkvs_request_t req;
    CHECK_RC(dkvs_resolve_args("2", "3", NG, NG, 0, &req, NULL, 0), DKVS_ERR_INVALID_COMMAND);
    char small[6] = "xxxxx";
    CHECK_RC(dkvs_resolve_args("2", "3", NG, NG, 0, &req, small, sizeof small), DKVS_ERR_INVALID_COMMAND);
    CHECK(strcmp(small, "R=3 i") == 0, "cut message \"%s\"", small);
    char one[1] = {'x'};
    CHECK_RC(dkvs_resolve_args("2", "3", NG, NG, 0, &req, one, sizeof one), DKVS_ERR_INVALID_COMMAND);
    CHECK(one[0] == '\0', "a one-byte buffer holds the NUL");
    char untouched[4] = "abc";
    CHECK_RC(dkvs_resolve_args(NG, NG, NG, NG, 0, &req, untouched, 0), DKVS_ERR_NONE);
    CHECK(strcmp(untouched, "abc") == 0, "a size of 0 wrote \"%s\"", untouched);

    /* Misuse. */
    char msg[64];
    CHECK_RC(dkvs_resolve_args(NG, NG, NG, NG, 0, NULL, msg, sizeof msg), DKVS_ERR_INVALID_ARGUMENT);
    CHECK(msg[0] != '\0', "no message for a NULL request");
    return check_done();
}
