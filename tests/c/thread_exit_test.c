/*
 * Failing calls made while a thread exits, from a pthread key destructor:
 * those run after the thread's Rust thread-locals are gone (where the
 * library keeps the last error), so the error text is lost, but the call
 * must still return its failure code, never abort the process.
 *
 * usage: thread_exit_test CONFIG
 * Prints "destructor: RESULT_NAME ..." lines and exits 0 when every call
 * returned what it should.
 */
#define _POSIX_C_SOURCE 200809L
#include "exalate_zabbix.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_key_t key;
static const char *config;
static int wrong;

static void at_thread_exit(void *value) {
    (void)value;
    exalate_client *client = NULL;
    /* A client that cannot be opened: sets the last error. */
    exalate_result opened = exalate_client_open("/nonexistent/exalate_zabbix.toml", &client);
    printf("destructor: open %s\n", exalate_result_name(opened));
    if (opened != EXALATE_CONFIG_ERROR || client != NULL)
        wrong++;
    /* A NULL argument: fails before any work. */
    exalate_result invalid = exalate_node_ping(NULL, "demo", NULL);
    printf("destructor: ping %s\n", exalate_result_name(invalid));
    if (invalid != EXALATE_INVALID_ARGUMENT)
        wrong++;
    /* A real client, then an unknown node on it. */
    if (exalate_client_open(config, &client) == EXALATE_OK) {
        uint64_t n = 0;
        exalate_result unknown = exalate_queue_count(client, "nosuchnode", "AllContent",
                                                     "syncrequests", &n);
        printf("destructor: count %s\n", exalate_result_name(unknown));
        if (unknown != EXALATE_UNKNOWN_NODE)
            wrong++;
        exalate_client_free(client);
    } else {
        printf("destructor: cannot open %s\n", config);
        wrong++;
    }
    /* The last error is readable (maybe empty), never a crash. */
    const char *text = exalate_last_error();
    char buf[64];
    size_t needed = 0;
    exalate_result copied = exalate_last_error_copy(buf, sizeof buf, &needed);
    printf("destructor: last error \"%s\", copy %s\n", text ? text : "(null)",
           exalate_result_name(copied));
    if (text == NULL)
        wrong++;
}

static void *worker(void *arg) {
    (void)arg;
    /* A failing call first: the thread's last error exists (and so its
     * thread-local, destroyed before the key's destructor runs). */
    exalate_client *client = NULL;
    if (exalate_client_open("/nonexistent/exalate_zabbix.toml", &client) != EXALATE_CONFIG_ERROR)
        wrong++;
    pthread_setspecific(key, &key);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: thread_exit_test CONFIG\n");
        return 2;
    }
    config = argv[1];
    pthread_key_create(&key, at_thread_exit);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 2;
    pthread_join(thread, NULL);
    printf("thread_exit: %d wrong\n", wrong);
    return wrong == 0 ? 0 : 1;
}
