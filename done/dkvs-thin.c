/*
 * dkvs-thin: get, put and del on a dkvs ring from the shell, through
 * libdkvs.so.
 *
 *     dkvs-thin [--servers FILE] [--timeout D] [--linearizable] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
 *               [--user NAME (--token-file FILE | --token T)]
 *               <command> [-r R] [-w W] [-n N] [-c C] -- <arguments>
 *
 * It keeps the command line, outputs and exit codes of dkvs-client for
 * these commands (cs202.md sections 3 and 4): flags are parsed the way Go's
 * flag package parses them for dkvs-client ("-n 3", "-n=3", "--n 3"; "--"
 * ends the flags; "-h" and "--help" print the usage), the library applies
 * the same rules to give N, R and W (dkvs_resolve_args: this program has
 * no copy of them), the same environment variables apply (DKVS_SERVERS,
 * DKVS_TIMEOUT, DKVS_N, DKVS_R, DKVS_W) and the errors are checked in the
 * same order; -c LEVEL and --linearizable (DKVS_CONSISTENCY,
 * DKVS_LINEARIZABLE) set the consistency as they do for dkvs-client, and
 * --tls-ca, --tls-cert, --tls-key (DKVS_TLS_CA, DKVS_TLS_CERT,
 * DKVS_TLS_KEY) make it talk TLS (dkvs_open_opts), and --user with
 * --token-file or --token (DKVS_USER, DKVS_TOKEN_FILE, DKVS_TOKEN)
 * authenticate it to servers with users. It
 * prints "OK", "OK <value>" or "FAIL"; every error prints
 * "ERROR: <message>" on standard error and the usage on standard output,
 * and exits with 256 + code.
 *
 * Build (make does it): cc -std=c11 -Iinclude -o done/dkvs-thin
 * done/dkvs-thin.c -Ldone -ldkvs -Wl,-rpath,'$ORIGIN'
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dkvs.h>

static const char usage_text[] =
    "Usage: dkvs-thin [global options] <command> [-r R] [-w W] [-n N] -- <arguments>\n"
    "\n"
    "The thin C client of dkvs: get, put and del through libdkvs.so, with the\n"
    "command line, outputs and exit codes of dkvs-client.\n"
    "\n"
    "Commands:\n"
    "  get     -- key                  print \"OK <value>\"\n"
    "  put     -- key value            store value under key (the value may be empty)\n"
    "  del     -- key                  delete key\n"
    "  help                            print this text\n"
    "\n"
    "Flags of every command (after the command, before \"--\"; also from the\n"
    "environment as DKVS_N, DKVS_R and DKVS_W):\n"
    "  -n N    home servers of the key (default 3, or the largest of the R and W given)\n"
    "  -r R    replies a read waits for (default min(2, N))\n"
    "  -w W    acknowledgements a write waits for (default min(2, N))\n"
    "  -c C    consistency: ONE (R=W=1), QUORUM (N/2+1), ALL (N), or LINEARIZABLE\n"
    "          (strict majority quorums on home servers); -r and -w win over -c\n"
    "\n"
    "Global options (before the command; also from the environment):\n"
    "  --servers FILE   servers file (default servers.txt)         DKVS_SERVERS\n"
    "  --timeout D      deadline of one request to one server      DKVS_TIMEOUT\n"
    "                   (default 500ms)\n"
    "  --linearizable   every operation in linearizable mode       DKVS_LINEARIZABLE\n"
    "  --tls-ca FILE    talk TLS 1.3 to the servers, whose         DKVS_TLS_CA\n"
    "                   certificates this CA file (PEM) signs\n"
    "  --tls-cert FILE  with --tls-key: the client certificate     DKVS_TLS_CERT\n"
    "  --tls-key FILE   (PEM) to present                           DKVS_TLS_KEY\n"
    "  --user NAME      authenticate as NAME to servers with users DKVS_USER\n"
    "  --token-file F   the user's token, first line of F          DKVS_TOKEN_FILE\n"
    "  --token T        the user's token                           DKVS_TOKEN\n"
    "\n"
    "On success a command prints OK (or its output) and exits 0. A failed operation\n"
    "prints FAIL; every error prints \"ERROR: <message>\" on standard error and exits\n"
    "256+code: 129 ERR_IO, 132 ERR_NETWORK, 133 ERR_INVALID_CONFIG,\n"
    "134 ERR_INVALID_COMMAND, 135 ERR_INVALID_ARGUMENT, 136 ERR_ADDRESS,\n"
    "137 ERR_NOT_FOUND. A wrong token, or a key the user has no right to, exits 133.\n";

/* An error: its code and the details printed after the code's message. */
struct error {
    int code;
    char detail[512];
};

static int set_error(struct error *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return code;
}

static int exit_status(int code)
{
    return code == DKVS_ERR_NONE ? 0 : (256 + code) & 0xff;
}

/* report prints the error as dkvs-client does and returns the exit status. */
static int report(const struct error *e)
{
    fflush(stdout);
    if (e->detail[0] != '\0')
        fprintf(stderr, "ERROR: %s: %s\n", dkvs_strerror(e->code), e->detail);
    else
        fprintf(stderr, "ERROR: %s\n", dkvs_strerror(e->code));
    fputs(usage_text, stdout);
    fflush(stdout);
    return exit_status(e->code);
}

static int usage_error(struct error *e, const char *fmt, ...)
{
    va_list ap;
    e->code = DKVS_ERR_INVALID_COMMAND;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return e->code;
}

/*
 * parse_duration parses a Go duration ("500ms", "1.5s", "1h2m", "0") the
 * way time.ParseDuration does; it returns 0 and stores nanoseconds in *out,
 * or -1.
 */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", UINT64_C(60000000000)},
        {"h", UINT64_C(3600000000000)},
    };
    const uint64_t limit = UINT64_C(1) << 63;
    uint64_t d = 0;
    int neg = 0;

    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return -1;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > limit / 10)
                return -1;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > limit)
                return -1;
        }
        int pre = s != start;
        int post = 0;
        if (*s == '.') {
            s++;
            start = s;
            int overflow = 0;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow)
                    continue;
                if (f > (limit - 1) / 10) {
                    overflow = 1;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(*s - '0');
                if (y > limit) {
                    overflow = 1;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = s != start;
        }
        if (!pre && !post)
            return -1;
        size_t ulen = 0;
        while (s[ulen] != '\0' && s[ulen] != '.' && !(s[ulen] >= '0' && s[ulen] <= '9'))
            ulen++;
        if (ulen == 0)
            return -1;
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].name) == ulen && strncmp(s, units[i].name, ulen) == 0)
                unit = units[i].ns;
        if (unit == 0)
            return -1;
        s += ulen;
        if (v > limit / unit)
            return -1;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > limit)
                return -1;
        }
        d += v;
        if (d > limit)
            return -1;
    }
    if (neg) {
        *out = d == limit ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > limit - 1)
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* A flag of Go's flag package. */
struct flag {
    const char *name;
    const char *value; /* NULL: not given */
    int is_duration;   /* the value must parse as a duration */
    int is_bool;       /* takes no value unless written -name=value */
};

/* parse_bool parses a value as Go's strconv.ParseBool; -1 if invalid. */
static int parse_bool(const char *s)
{
    static const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0)
            return 1;
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

enum { PARSE_OK, PARSE_HELP, PARSE_ERROR };

/*
 * parse_flags parses flags from argv[*i] on, as Go's flag.FlagSet.Parse:
 * it stops when the arguments run out, at the first word that is not a
 * flag ("-" and words not starting with "-"), or after "--", which it
 * consumes. "-name value", "-name=value", and the same with "--" are
 * flags; an undefined "-h" or "-help" asks for the usage.
 */
static int parse_flags(int argc, char **argv, int *i, struct flag *flags, size_t nflags,
                       struct error *e)
{
    while (*i < argc) {
        const char *s = argv[*i];
        if (strlen(s) < 2 || s[0] != '-')
            return PARSE_OK;
        size_t minuses = 1;
        if (s[1] == '-') {
            minuses = 2;
            if (s[2] == '\0') {
                (*i)++;
                return PARSE_OK;
            }
        }
        const char *name = s + minuses;
        if (name[0] == '\0' || name[0] == '-' || name[0] == '=') {
            usage_error(e, "bad flag syntax: %s", s);
            return PARSE_ERROR;
        }
        (*i)++;
        const char *eq = strchr(name + 1, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        struct flag *f = NULL;
        for (size_t k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0)
                f = &flags[k];
        if (f == NULL) {
            if ((nlen == 4 && strncmp(name, "help", 4) == 0) || (nlen == 1 && name[0] == 'h'))
                return PARSE_HELP;
            usage_error(e, "flag provided but not defined: -%.*s", (int)nlen, name);
            return PARSE_ERROR;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (f->is_bool) {
            value = "true";
        } else if (*i < argc) {
            value = argv[(*i)++];
        } else {
            usage_error(e, "flag needs an argument: -%s", f->name);
            return PARSE_ERROR;
        }
        int64_t ns;
        if (f->is_duration && parse_duration(value, &ns) != 0) {
            usage_error(e, "invalid value \"%s\" for flag -%s: parse error", value, f->name);
            return PARSE_ERROR;
        }
        if (f->is_bool && parse_bool(value) < 0) {
            usage_error(e, "invalid boolean value \"%s\" for -%s: parse error", value, f->name);
            return PARSE_ERROR;
        }
        f->value = value;
    }
    return PARSE_OK;
}

/* print_ok prints "OK" or "OK <value>" and a newline, as one write. */
static int print_ok(const void *value, size_t vlen, int with_value, struct error *e)
{
    fputs("OK", stdout);
    if (with_value) {
        fputc(' ', stdout);
        fwrite(value, 1, vlen, stdout);
    }
    fputc('\n', stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        return set_error(e, DKVS_ERR_RUNTIME, "write standard output");
    return 0;
}

/* read_token reads the first line of path, without its line end or
 * surrounding spaces, into buf. */
static int read_token(const char *path, char *buf, size_t size, struct error *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return set_error(e, DKVS_ERR_IO, "--token-file \"%s\": cannot open", path);
    if (!fgets(buf, (int)size, f))
        buf[0] = '\0';
    fclose(f);
    size_t n = strcspn(buf, "\r\n");
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    size_t start = strspn(buf, " \t");
    memmove(buf, buf + start, n - start + 1);
    if (buf[0] == '\0')
        return set_error(e, DKVS_ERR_INVALID_CONFIG, "--token-file \"%s\": empty", path);
    return 0;
}

int main(int argc, char **argv)
{
    struct error e = {0, ""};
    struct flag global[] = {{"servers", NULL, 0, 0}, {"timeout", NULL, 1, 0}, {"linearizable", NULL, 0, 1},
                            {"tls-ca", NULL, 0, 0}, {"tls-cert", NULL, 0, 0}, {"tls-key", NULL, 0, 0},
                            {"user", NULL, 0, 0}, {"token-file", NULL, 0, 0}, {"token", NULL, 0, 0}};
    struct flag *servers = &global[0], *timeout = &global[1], *linearizable = &global[2];
    struct flag *tls_ca = &global[3], *tls_cert = &global[4], *tls_key = &global[5];
    struct flag *user = &global[6], *token_file = &global[7], *token = &global[8];
    int i = 1;

    /* The environment gives the defaults; the command line overrides it. */
    servers->value = getenv("DKVS_SERVERS");
    tls_ca->value = getenv("DKVS_TLS_CA");
    tls_cert->value = getenv("DKVS_TLS_CERT");
    tls_key->value = getenv("DKVS_TLS_KEY");
    user->value = getenv("DKVS_USER");
    token_file->value = getenv("DKVS_TOKEN_FILE");
    token->value = getenv("DKVS_TOKEN");
    const char *env_timeout = getenv("DKVS_TIMEOUT");
    if (env_timeout && env_timeout[0] != '\0') {
        int64_t ns;
        if (parse_duration(env_timeout, &ns) != 0) {
            usage_error(&e, "could not parse \"%s\" as duration value from environment variable "
                            "\"DKVS_TIMEOUT\" for flag timeout", env_timeout);
            return report(&e);
        }
        timeout->value = env_timeout;
    }
    const char *env_lin = getenv("DKVS_LINEARIZABLE");
    if (env_lin && env_lin[0] != '\0') {
        if (parse_bool(env_lin) < 0) {
            usage_error(&e, "could not parse \"%s\" as bool value from environment variable "
                            "\"DKVS_LINEARIZABLE\" for flag linearizable", env_lin);
            return report(&e);
        }
        linearizable->value = env_lin;
    }

    switch (parse_flags(argc, argv, &i, global, 9, &e)) {
    case PARSE_HELP:
        fputs(usage_text, stdout);
        return 0;
    case PARSE_ERROR:
        return report(&e);
    }
    if (i >= argc) {
        usage_error(&e, "no command");
        return report(&e);
    }
    const char *cmd = argv[i++];
    int nargs;
    if (strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) {
        nargs = 1;
    } else if (strcmp(cmd, "put") == 0) {
        nargs = 2;
    } else if (strcmp(cmd, "help") == 0) {
        nargs = -1;
    } else {
        usage_error(&e, "unknown command \"%s\"", cmd);
        return report(&e);
    }

    struct flag qflags[] = {
        {"n", getenv("DKVS_N"), 0, 0},
        {"r", getenv("DKVS_R"), 0, 0},
        {"w", getenv("DKVS_W"), 0, 0},
        {"c", getenv("DKVS_CONSISTENCY"), 0, 0},
    };
    int first = i;
    switch (parse_flags(argc, argv, &i, qflags, 4, &e)) {
    case PARSE_HELP:
        fputs(usage_text, stdout);
        return 0;
    case PARSE_ERROR:
        return report(&e);
    }
    /* Only flags come between the command and "--": the flags stop at the
     * first other word, which is an error unless a "--" came just before. */
    int terminated = i > first && strcmp(argv[i - 1], "--") == 0;
    if (!terminated && i < argc) {
        usage_error(&e, "\"%s\" before \"--\" is not a flag", argv[i]);
        return report(&e);
    }
    char **args = argv + i;
    int got = argc - i;
    if (nargs < 0) { /* help */
        fputs(usage_text, stdout);
        return 0;
    }
    if (got != nargs) {
        usage_error(&e, "want %s after \"--\", got %d arguments", nargs == 1 ? "key" : "key value", got);
        return report(&e);
    }

    dkvs_request_t req;
    int lin = linearizable->value && parse_bool(linearizable->value) == 1;
    int rc = dkvs_resolve_args(qflags[0].value, qflags[1].value, qflags[2].value, qflags[3].value, lin,
                               &req, e.detail, sizeof e.detail);
    if (rc != DKVS_ERR_NONE) {
        e.code = rc;
        return report(&e);
    }

    int64_t timeout_ns = 0; /* not given: the library's default */
    if (timeout->value) {
        parse_duration(timeout->value, &timeout_ns); /* checked while parsing */
        if (timeout_ns <= 0) {
            usage_error(&e, "--timeout must be positive");
            return report(&e);
        }
    }

    const char *file = servers->value ? servers->value : "";
    int with_tls = (tls_ca->value && tls_ca->value[0]) || (tls_cert->value && tls_cert->value[0]) ||
                   (tls_key->value && tls_key->value[0]);
    if (with_tls && !(tls_ca->value && tls_ca->value[0])) {
        usage_error(&e, "--tls-cert and --tls-key need --tls-ca, the CA that signs the servers' certificates");
        return report(&e);
    }
    if (with_tls && (!tls_cert->value || !tls_cert->value[0]) != (!tls_key->value || !tls_key->value[0])) {
        usage_error(&e, "--tls-cert and --tls-key go together");
        return report(&e);
    }
    char token_buf[1024];
    const char *tok = token->value && token->value[0] ? token->value : NULL;
    if (tok && token_file->value && token_file->value[0]) {
        usage_error(&e, "--token and --token-file: give one");
        return report(&e);
    }
    if (!tok && token_file->value && token_file->value[0]) {
        if (read_token(token_file->value, token_buf, sizeof token_buf, &e) != 0)
            return report(&e);
        tok = token_buf;
    }
    int with_user = user->value && user->value[0];
    if (with_user != (tok != NULL)) {
        usage_error(&e, with_user ? "--user needs --token-file or --token (DKVS_TOKEN_FILE, DKVS_TOKEN)"
                                  : "a token needs --user (DKVS_USER)");
        return report(&e);
    }
    dkvs_options_t opts = {0};
    opts.struct_size = sizeof opts;
    opts.user = with_user ? user->value : NULL;
    opts.token = tok;
    opts.timeout_ns = timeout_ns;
    opts.tls_ca = tls_ca->value;
    opts.tls_cert = tls_cert->value;
    opts.tls_key = tls_key->value;
    dkvs_t *h = NULL;
    rc = dkvs_open_opts(file, &opts, &h);
    if (rc != DKVS_ERR_NONE) {
        /* Which file was wrong: the servers file opens without TLS? */
        dkvs_options_t plain = {0};
        plain.struct_size = sizeof plain;
        if (with_tls && dkvs_open_opts(file, &plain, &h) == DKVS_ERR_NONE) {
            dkvs_close(h);
            set_error(&e, rc, "TLS files: --tls-ca \"%s\"%s%s%s", tls_ca->value,
                      tls_cert->value ? ", --tls-cert \"" : "", tls_cert->value ? tls_cert->value : "",
                      tls_cert->value ? "\"" : "");
        } else {
            set_error(&e, rc, "servers file \"%s\"", file[0] ? file : "servers.txt");
        }
        return report(&e);
    }

    const char *key = args[0];
    if (strcmp(cmd, "get") == 0) {
        void *value = NULL;
        size_t vlen = 0;
        rc = dkvs_get_req(h, key, strlen(key), &req, &value, &vlen);
        if (rc == DKVS_ERR_NONE) {
            rc = print_ok(value, vlen, 1, &e);
            dkvs_free(value);
        } else {
            set_error(&e, rc, "get \"%s\"", key);
        }
    } else if (strcmp(cmd, "put") == 0) {
        rc = dkvs_put_req(h, key, strlen(key), args[1], strlen(args[1]), &req);
        if (rc == DKVS_ERR_NONE)
            rc = print_ok(NULL, 0, 0, &e);
        else
            set_error(&e, rc, "put \"%s\"", key);
    } else {
        rc = dkvs_del_req(h, key, strlen(key), &req);
        if (rc == DKVS_ERR_NONE)
            rc = print_ok(NULL, 0, 0, &e);
        else
            set_error(&e, rc, "del \"%s\"", key);
    }
    /* Waits for the replica writes still under way, so that a put reaches
     * every live home server before the process exits. */
    dkvs_close(h);
    if (rc != DKVS_ERR_NONE) {
        if (rc == DKVS_ERR_UNKNOWN_OUTCOME) {
            /* dkvs-client exits ERR_NETWORK and says the outcome is unknown. */
            e.code = DKVS_ERR_NETWORK;
            strncat(e.detail, ": outcome unknown", sizeof e.detail - strlen(e.detail) - 1);
        }
        fputs("FAIL\n", stdout);
        return report(&e);
    }
    return 0;
}
