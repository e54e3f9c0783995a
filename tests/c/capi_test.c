/*
 * Exercises the C API of libexalate_zabbix against the fake Exalate node:
 * every result code, NULL and non-UTF-8 arguments, out-parameters left
 * untouched on failure, thread-local error text, and one client shared by
 * 8 threads. Built with -std=c99 -Wall -Wextra -Werror; run plain, under
 * valgrind, and built with -fsanitize=address,undefined.
 *
 * usage: capi_test CONFIG [panic]   ("panic": the library has fault injection)
 * The config has nodes demo (the fake node), down (closed port), tls (https
 * to the plain-http node), small (max_response_bytes 600), quick (timeout 1),
 * monitored (a customer monitor endpoint counting 4 errors) and rejected
 * (the same endpoint, a wrong password).
 */
#define _POSIX_C_SOURCE 200809L
#include "exalate_zabbix.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            printf("FAILED line %d: %s (last error: %s)\n", __LINE__, #cond, \
                   exalate_last_error());                                  \
        }                                                                  \
    } while (0)

/* A call's result and error text. */
static void expect(exalate_result got, exalate_result want, const char *text, int line) {
    if (got == want && (text == NULL || strstr(exalate_last_error(), text) != NULL)) {
        passed++;
        return;
    }
    failed++;
    printf("FAILED line %d: got %s, want %s with \"%s\"; last error: %s\n", line,
           exalate_result_name(got), exalate_result_name(want), text ? text : "",
           exalate_last_error());
}
#define EXPECT(call, want, text) expect((call), (want), (text), __LINE__)

static const exalate_client *shared;
static const char *queues[6] = {"syncrequests",  "blobrequests",   "syncresponses",
                                "blobresponses", "errorresponses", "bloberrorresponses"};
static const uint64_t allcontent[6] = {3, 1, 2, 0, 2, 1};

static void *count_worker(void *arg) {
    long id = (long)arg;
    long wrong = 0;
    for (int i = 0; i < 50; i++) {
        int q = (int)((id + i) % 6);
        uint64_t n = 999;
        if (exalate_queue_count(shared, "demo", "AllContent", queues[q], &n) != EXALATE_OK ||
            n != allcontent[q])
            wrong++;
        if (i % 10 == 0) {
            char *json = NULL;
            if (exalate_relation_stats(shared, "demo", "Service Desk", &json) != EXALATE_OK)
                wrong++;
            exalate_string_free(json);
            /* A failure sets this thread's error text only. */
            if (exalate_queue_count(shared, "demo", "Gone", "syncrequests", &n) !=
                    EXALATE_RELATION_NOT_FOUND ||
                strstr(exalate_last_error(), "'Gone'") == NULL)
                wrong++;
        }
    }
    return (void *)wrong;
}

static void *other_thread_error(void *arg) {
    (void)arg;
    /* A new thread has no error yet, whatever other threads did. */
    return (void *)(long)(strcmp(exalate_last_error(), "") == 0);
}

/* A failure's message copied on a thread that then ends. */
static char copied_on_thread[256];

static void *copy_error_then_exit(void *arg) {
    uint64_t n = 0;
    (void)exalate_queue_count((const exalate_client *)arg, "demo", "Gone", "syncrequests", &n);
    size_t needed = 0;
    return (void *)(long)(exalate_last_error_copy(copied_on_thread, sizeof copied_on_thread,
                                                  &needed) == EXALATE_OK &&
                          needed == strlen(copied_on_thread) + 1);
}

static void count_relations(void *userdata, const char *node, const char *relation) {
    int *n = userdata;
    if (strcmp(node, "demo") == 0 && relation[0] != '\0')
        (*n)++;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONFIG [panic]\n", argv[0]);
        return 2;
    }
    int with_panic = argc > 2 && strcmp(argv[2], "panic") == 0;

    CHECK(strcmp(exalate_version(), EXALATE_ZABBIX_VERSION) == 0);

    /* Opening: failures leave *out untouched. */
    exalate_client *client = (exalate_client *)&passed; /* a sentinel */
    EXPECT(exalate_client_open(argv[1], NULL), EXALATE_INVALID_ARGUMENT, "out is NULL");
    EXPECT(exalate_client_open("/nonexistent/exalate.toml", &client), EXALATE_CONFIG_ERROR,
           "config /nonexistent/exalate.toml: cannot read");
    EXPECT(exalate_client_open("\xff.toml", &client), EXALATE_INVALID_ARGUMENT,
           "config_path is not valid UTF-8");
    CHECK(client == (exalate_client *)&passed);
    EXPECT(exalate_client_open(argv[1], &client), EXALATE_OK, NULL);
    CHECK(client != NULL && client != (exalate_client *)&passed);

    /* Counting and NULL / non-UTF-8 arguments. */
    uint64_t n = 12345;
    EXPECT(exalate_queue_count(client, "demo", "AllContent", "syncrequests", &n), EXALATE_OK, NULL);
    CHECK(n == 3);
    n = 12345;
    EXPECT(exalate_queue_count(NULL, "demo", "AllContent", "syncrequests", &n),
           EXALATE_INVALID_ARGUMENT, "client is NULL");
    EXPECT(exalate_queue_count(client, NULL, "AllContent", "syncrequests", &n),
           EXALATE_INVALID_ARGUMENT, "node is NULL");
    EXPECT(exalate_queue_count(client, "demo", NULL, "syncrequests", &n),
           EXALATE_INVALID_ARGUMENT, "relation is NULL");
    EXPECT(exalate_queue_count(client, "demo", "AllContent", NULL, &n),
           EXALATE_INVALID_ARGUMENT, "queue is NULL");
    EXPECT(exalate_queue_count(client, "demo", "AllContent", "syncrequests", NULL),
           EXALATE_INVALID_ARGUMENT, "out is NULL");
    EXPECT(exalate_queue_count(client, "demo", "All\xc3\x28", "syncrequests", &n),
           EXALATE_INVALID_ARGUMENT, "relation is not valid UTF-8");
    CHECK(n == 12345);

    /* One call per result code. */
    EXPECT(exalate_queue_count(client, "staging", "AllContent", "syncrequests", &n),
           EXALATE_UNKNOWN_NODE, "unknown node 'staging'; configured nodes: demo, down");
    EXPECT(exalate_queue_count(client, "", "AllContent", "syncrequests", &n),
           EXALATE_UNKNOWN_NODE, "name one");
    EXPECT(exalate_queue_count(client, "demo", "AllContent", "errors", &n), EXALATE_UNKNOWN_QUEUE,
           "valid queues: syncrequests, blobrequests");
    EXPECT(exalate_queue_count(client, "demo", "Gone", "syncrequests", &n),
           EXALATE_RELATION_NOT_FOUND, "relation not found on the node (HTTP 400");
    EXPECT(exalate_queue_count(client, "demo", "fault-status-401", "syncrequests", &n),
           EXALATE_AUTH_REJECTED, "credentials rejected (HTTP 401)");
    EXPECT(exalate_queue_count(client, "demo", "fault-status-403", "syncrequests", &n),
           EXALATE_NOT_AUTHENTICATED, "not authenticated (HTTP 403)");
    EXPECT(exalate_queue_count(client, "demo", "fault-status-502", "syncrequests", &n),
           EXALATE_NODE_ERROR, "node error (HTTP 502");
    EXPECT(exalate_queue_count(client, "quick", "fault-hang", "syncrequests", &n),
           EXALATE_TIMEOUT, "timeout after 1 s");
    EXPECT(exalate_queue_count(client, "down", "AllContent", "syncrequests", &n),
           EXALATE_CONNECTION_FAILED, "connection refused");
    EXPECT(exalate_queue_count(client, "tls", "AllContent", "syncrequests", &n),
           EXALATE_TLS_ERROR, "TLS failure");
    EXPECT(exalate_queue_count(client, "demo", "fault-malformed", "syncrequests", &n),
           EXALATE_BAD_RESPONSE, "malformed JSON");
    EXPECT(exalate_queue_count(client, "small", "AllContent", "syncrequests", &n),
           EXALATE_RESPONSE_TOO_LARGE, "larger than max_response_bytes (600 bytes)");
    if (with_panic) {
        EXPECT(exalate_queue_count(client, "demo", "exalate-test-panic", "syncrequests", &n),
               EXALATE_INTERNAL_ERROR, "internal error in libexalate_zabbix (injected panic");
        /* The client is still usable after a panic. */
        EXPECT(exalate_queue_count(client, "demo", "AllContent", "blobrequests", &n), EXALATE_OK, NULL);
        CHECK(n == 1);
    }
    CHECK(n == 12345 || with_panic);

    /* Strings out, freed by our free function; untouched on failure. */
    char *json = NULL;
    EXPECT(exalate_queue_get(client, "demo", "AllContent", "errorresponses", &json), EXALATE_OK, NULL);
    CHECK(json != NULL && json[0] == '[' && strstr(json, "\"errorReason\"") != NULL);
    CHECK(json != NULL && strstr(json, "encodedPayload") == NULL);
    exalate_string_free(json);
    json = NULL;
    EXPECT(exalate_relation_stats(client, "demo", "AllContent", &json), EXALATE_OK, NULL);
    CHECK(json != NULL && strncmp(json, "{\"syncrequests\":3,\"blobrequests\":1,", 35) == 0);
    exalate_string_free(json);
    json = NULL;
    EXPECT(exalate_relation_stats(client, "demo", "Gone", &json), EXALATE_RELATION_NOT_FOUND, "'Gone'");
    EXPECT(exalate_queue_get(client, "demo", "AllContent", "errorresponses", NULL),
           EXALATE_INVALID_ARGUMENT, "out_json is NULL");
    CHECK(json == NULL);
    exalate_string_free(NULL);

    int up = -1;
    EXPECT(exalate_node_ping(client, "demo", &up), EXALATE_OK, NULL);
    CHECK(up == 1);
    EXPECT(exalate_node_ping(client, "down", &up), EXALATE_OK, NULL);
    CHECK(up == 0);

    /* Errors on the node, from its customer monitor endpoint. */
    uint64_t errors = 777;
    EXPECT(exalate_node_errors(client, "monitored", &errors), EXALATE_OK, NULL);
    CHECK(errors == 4);
    errors = 777;
    EXPECT(exalate_node_errors(client, "demo", &errors), EXALATE_CONFIG_ERROR,
           "node 'demo': no customer monitor endpoint configured (cmonitor_url)");
    EXPECT(exalate_node_errors(client, "rejected", &errors), EXALATE_AUTH_REJECTED,
           "node 'rejected', customer monitor: credentials rejected (HTTP 401): check cmonitor_user");
    EXPECT(exalate_node_errors(client, "staging", &errors), EXALATE_UNKNOWN_NODE, "unknown node 'staging'");
    EXPECT(exalate_node_errors(client, NULL, &errors), EXALATE_INVALID_ARGUMENT, "node is NULL");
    EXPECT(exalate_node_errors(client, "monitored", NULL), EXALATE_INVALID_ARGUMENT, "out is NULL");
    EXPECT(exalate_node_errors(NULL, "monitored", &errors), EXALATE_INVALID_ARGUMENT, "client is NULL");
    CHECK(errors == 777);

    /* The node as a whole, through Exalate's own API (a login's JWT). */
    uint64_t total = 777;
    EXPECT(exalate_node_queue(client, "platform", "outgoing", &total), EXALATE_OK, NULL);
    CHECK(total == 1500);
    EXPECT(exalate_node_queue(client, "platform", "incoming", &total), EXALATE_OK, NULL);
    CHECK(total == 420);
    total = 777;
    EXPECT(exalate_node_queue(client, "platform", "sideways", &total), EXALATE_INVALID_ARGUMENT,
           "node 'platform': unknown direction 'sideways'; valid directions: outgoing, incoming");
    EXPECT(exalate_node_queue(client, "demo", "outgoing", &total), EXALATE_CONFIG_ERROR,
           "node 'demo': no issuehub 4.0 API credentials configured");
    EXPECT(exalate_node_queue(client, "platform", NULL, &total), EXALATE_INVALID_ARGUMENT, "direction is NULL");
    EXPECT(exalate_node_queue(client, "platform", "outgoing", NULL), EXALATE_INVALID_ARGUMENT, "out is NULL");
    CHECK(total == 777);
    json = NULL;
    EXPECT(exalate_node_connections(client, "platform", &json), EXALATE_OK, NULL);
    CHECK(json != NULL && strstr(json, "{\"name\":\"Jira Cloud/EU\",\"status\":\"DEACTIVATED\",") != NULL);
    exalate_string_free(json);
    json = NULL;
    EXPECT(exalate_node_connections(client, "demo", &json), EXALATE_CONFIG_ERROR,
           "node 'demo': no issuehub 4.0 API credentials configured");
    EXPECT(exalate_node_connections(client, "platform", NULL), EXALATE_INVALID_ARGUMENT, "out_json is NULL");
    CHECK(json == NULL);

    /* The stats hold each queue's oldest event. */
    json = NULL;
    EXPECT(exalate_relation_stats(client, "demo", "AllContent", &json), EXALATE_OK, NULL);
    CHECK(json != NULL && strstr(json, "\"oldest_event_id\":{\"syncrequests\":4,") != NULL);
    exalate_string_free(json);
    json = NULL;

    int relations = 0;
    EXPECT(exalate_for_each_relation(client, count_relations, &relations), EXALATE_OK, NULL);
    CHECK(relations == 3);
    EXPECT(exalate_for_each_relation(client, NULL, NULL), EXALATE_INVALID_ARGUMENT, "callback is NULL");

    EXPECT(exalate_client_set_timeout(client, 0), EXALATE_INVALID_ARGUMENT, "1 to 30");
    EXPECT(exalate_client_set_timeout(client, 5), EXALATE_OK, NULL);

    /* Result names. */
    CHECK(strcmp(exalate_result_name(EXALATE_OK), "EXALATE_OK") == 0);
    CHECK(strcmp(exalate_result_name(EXALATE_RESPONSE_TOO_LARGE), "EXALATE_RESPONSE_TOO_LARGE") == 0);
    CHECK(strcmp(exalate_result_name(EXALATE_INTERNAL_ERROR), "EXALATE_INTERNAL_ERROR") == 0);
    CHECK(strcmp(exalate_result_name(99), "EXALATE_UNKNOWN_RESULT") == 0);
    CHECK(strcmp(exalate_result_name(-1), "EXALATE_UNKNOWN_RESULT") == 0);

    /* A copied message survives later calls and its thread's end. */
    char copy[256];
    size_t needed = 0;
    EXPECT(exalate_queue_count(client, "staging", "AllContent", "syncrequests", &n),
           EXALATE_UNKNOWN_NODE, "unknown node 'staging'");
    EXPECT(exalate_last_error_copy(copy, sizeof copy, &needed), EXALATE_OK, "unknown node 'staging'");
    CHECK(needed == strlen(copy) + 1 && strcmp(copy, exalate_last_error()) == 0);
    EXPECT(exalate_queue_count(client, "demo", "AllContent", "errors", &n), EXALATE_UNKNOWN_QUEUE,
           "valid queues");
    CHECK(strncmp(copy, "unknown node 'staging'", 22) == 0);
    /* Too small: cut and NUL-terminated, the size needed told, the last error kept. */
    char small[8];
    size_t full = 0;
    EXPECT(exalate_last_error_copy(small, sizeof small, &full), EXALATE_INVALID_ARGUMENT,
           "valid queues");
    CHECK(strlen(small) == 7 && strncmp(small, exalate_last_error(), 7) == 0);
    CHECK(full == strlen(exalate_last_error()) + 1);
    EXPECT(exalate_last_error_copy(NULL, 0, &full), EXALATE_INVALID_ARGUMENT, "valid queues");
    CHECK(full == strlen(exalate_last_error()) + 1);
    pthread_t copier;
    void *copied = NULL;
    CHECK(pthread_create(&copier, NULL, copy_error_then_exit, client) == 0);
    pthread_join(copier, &copied);
    CHECK((long)copied == 1 && strstr(copied_on_thread, "relation 'Gone'") != NULL);

    /* The error text is per thread. */
    pthread_t t;
    void *fresh = NULL;
    CHECK(pthread_create(&t, NULL, other_thread_error, NULL) == 0);
    pthread_join(t, &fresh);
    CHECK((long)fresh == 1);

    /* One client, 8 threads at once. */
    shared = client;
    pthread_t workers[8];
    for (long i = 0; i < 8; i++)
        CHECK(pthread_create(&workers[i], NULL, count_worker, (void *)i) == 0);
    for (int i = 0; i < 8; i++) {
        void *wrong = NULL;
        pthread_join(workers[i], &wrong);
        CHECK((long)wrong == 0);
    }

    exalate_client_free(client);
    exalate_client_free(NULL);
    printf("capi: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
