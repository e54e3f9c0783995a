/*
 * A stand-in for zabbix_agentd's module loader (src/libs/zbxmodules/modules.c):
 * dlopen the module with RTLD_NOW, check zbx_module_api_version() == 2, call
 * init, item_list and item_timeout, rewrite the item flags in place as the
 * agent does, then run items with agent-shaped requests (the 6.0 layout,
 * which has `types` after `mtime`) and free every result string with free().
 * Each request is a heap block of exactly sizeof(AGENT_REQUEST), as the
 * agent's, so valgrind sees any read past its end.
 *
 * Built with -DAGENT_REQUEST_TIMEOUT, the request has 7.0's `int timeout`
 * after `types`. Built with -DEXPORT_ITEM_TIMEOUT_MARKER (and -rdynamic), the
 * program exports zbx_validate_item_timeout as a 7.0 agent does.
 *
 * usage: module_host LIB [--list] [--item-timeout=N] [--agent-timeout=N] [CALL...]
 *   CALL is key|param|param...; --item-timeout sets the per-item timeout of
 *   the calls after it (ignored without the field); --agent-timeout hands
 *   the module the agent's Timeout, as the agent does at start (3 until then).
 * Prints one line per call: "OK u <n>", "OK s <str>", "OK t <text>", "FAIL <msg>".
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CF_HAVEPARAMS 0x01
#define CF_MODULE 0x02
#define AR_UINT64 0x01
#define AR_STRING 0x04
#define AR_TEXT 0x08
#define AR_MESSAGE 0x20

typedef struct {
    char *key;
    int nparam;
    char **params;
    uint64_t lastlogsize;
    int mtime;
    int *types; /* 4.4.10 to 6.4 */
#ifdef AGENT_REQUEST_TIMEOUT
    int timeout; /* 7.0+ */
#endif
} AGENT_REQUEST;

#ifdef EXPORT_ITEM_TIMEOUT_MARKER
/* The 7.0 agent's function; only its presence matters to the module. */
int zbx_validate_item_timeout(const char *timeout_str, int *sec_out, char *error, size_t error_len) {
    (void)timeout_str;
    (void)error;
    (void)error_len;
    *sec_out = 3;
    return 0;
}
#endif

static int item_timeout_secs = 0;

typedef struct {
    uint64_t lastlogsize;
    uint64_t ui64;
    double dbl;
    char *str;
    char *text;
    char *msg;
    void *log;
    int type;
    int mtime;
} AGENT_RESULT;

typedef struct {
    char *key;
    unsigned flags;
    int (*function)(AGENT_REQUEST *, AGENT_RESULT *);
    char *test_param;
} ZBX_METRIC;

static int call(ZBX_METRIC *items, char *spec) {
    char *fields[64];
    int n = 0;
    for (char *tok = spec, *bar; n < 64; tok = bar + 1) {
        fields[n++] = tok;
        if ((bar = strchr(tok, '|')) == NULL)
            break;
        *bar = '\0';
    }
    ZBX_METRIC *item = NULL;
    for (ZBX_METRIC *m = items; m->key != NULL; m++)
        if (strcmp(m->key, fields[0]) == 0)
            item = m;
    if (item == NULL) {
        printf("NOKEY %s\n", fields[0]);
        return 1;
    }
    AGENT_REQUEST *req = calloc(1, sizeof(AGENT_REQUEST));
    req->key = strdup(fields[0]);
    req->nparam = n - 1;
    req->params = calloc((size_t)n, sizeof(char *));
    req->types = calloc((size_t)n, sizeof(int));
    for (int i = 1; i < n; i++) {
        req->params[i - 1] = strdup(fields[i]);
        req->types[i - 1] = 1;
    }
#ifdef AGENT_REQUEST_TIMEOUT
    req->timeout = item_timeout_secs;
#endif
    AGENT_RESULT *result = calloc(1, sizeof(AGENT_RESULT));
    int rc = item->function(req, result);
    if (rc == 0 && (result->type & AR_UINT64))
        printf("OK u %llu\n", (unsigned long long)result->ui64);
    else if (rc == 0 && (result->type & AR_STRING))
        printf("OK s %s\n", result->str);
    else if (rc == 0 && (result->type & AR_TEXT))
        printf("OK t %s\n", result->text);
    else if (rc == 1)
        printf("FAIL %s\n", (result->type & AR_MESSAGE) ? result->msg : "(no message)");
    else
        printf("BAD rc=%d type=%d\n", rc, result->type);
    free(result->str);
    free(result->text);
    free(result->msg);
    free(result);
    for (int i = 0; i < req->nparam; i++)
        free(req->params[i]);
    free(req->params);
    free(req->types);
    free(req->key);
    free(req);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIB [--list] [key|param...]...\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    int (*api_version)(void) = (int (*)(void))dlsym(lib, "zbx_module_api_version");
    int (*init)(void) = (int (*)(void))dlsym(lib, "zbx_module_init");
    int (*uninit)(void) = (int (*)(void))dlsym(lib, "zbx_module_uninit");
    ZBX_METRIC *(*item_list)(void) = (ZBX_METRIC * (*)(void)) dlsym(lib, "zbx_module_item_list");
    void (*item_timeout)(int) = (void (*)(int))dlsym(lib, "zbx_module_item_timeout");
    if (!api_version || !init || !uninit || !item_list || !item_timeout) {
        fprintf(stderr, "missing symbol\n");
        return 1;
    }
    if (api_version() != 2) {
        fprintf(stderr, "api version %d\n", api_version());
        return 1;
    }
    if (init() != 0) {
        fprintf(stderr, "init failed\n");
        return 1;
    }
    ZBX_METRIC *items = item_list();
    if (items == NULL) {
        fprintf(stderr, "no item list\n");
        return 1;
    }
    for (ZBX_METRIC *m = items; m->key != NULL; m++) {
        m->flags &= CF_HAVEPARAMS; /* the agent writes into the table */
        m->flags |= CF_MODULE;
    }
    item_timeout(3);
    int failures = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            for (ZBX_METRIC *m = items; m->key != NULL; m++)
                printf("ITEM %s flags=%u test_param=%s\n", m->key, m->flags,
                       m->test_param ? m->test_param : "(null)");
            continue;
        }
        if (strncmp(argv[i], "--item-timeout=", 15) == 0) {
            item_timeout_secs = atoi(argv[i] + 15);
            continue;
        }
        if (strncmp(argv[i], "--agent-timeout=", 16) == 0) {
            item_timeout(atoi(argv[i] + 16));
            continue;
        }
        char *spec = strdup(argv[i]);
        failures += call(items, spec);
        free(spec);
    }
    if (uninit() != 0)
        failures++;
    dlclose(lib);
    return failures ? 1 : 0;
}
