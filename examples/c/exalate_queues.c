/*
 * Prints the queue counts and the pending errors of every relation in the
 * config, through the C API of libexalate_zabbix.
 *
 *   cc -std=c99 exalate_queues.c $(pkg-config --cflags --libs exalate_zabbix) -o exalate_queues
 *   ./exalate_queues [CONFIG]        (default: $EXALATE_ZABBIX_CONFIG or /etc/zabbix/exalate_zabbix.toml)
 */
#include <exalate_zabbix.h>
#include <stdio.h>

static const char *const QUEUES[] = {"syncrequests",  "blobrequests",   "syncresponses",
                                     "blobresponses", "errorresponses", "bloberrorresponses"};

static void report(void *userdata, const char *node, const char *relation) {
    const exalate_client *client = userdata;
    printf("%s / %s\n", node, relation);
    for (size_t i = 0; i < sizeof QUEUES / sizeof QUEUES[0]; i++) {
        uint64_t count = 0;
        exalate_result rc = exalate_queue_count(client, node, relation, QUEUES[i], &count);
        if (rc == EXALATE_OK)
            printf("  %-20s %llu\n", QUEUES[i], (unsigned long long)count);
        else
            printf("  %-20s %s: %s\n", QUEUES[i], exalate_result_name(rc), exalate_last_error());
    }
    char *errors = NULL;
    if (exalate_queue_get(client, node, relation, "errorresponses", &errors) == EXALATE_OK) {
        printf("  pending errors: %s\n", errors);
        exalate_string_free(errors);
    }
}

int main(int argc, char **argv) {
    exalate_client *client = NULL;
    exalate_result rc = exalate_client_open(argc > 1 ? argv[1] : NULL, &client);
    if (rc != EXALATE_OK) {
        fprintf(stderr, "%s: %s\n", exalate_result_name(rc), exalate_last_error());
        return 1;
    }
    printf("libexalate_zabbix %s\n", exalate_version());
    rc = exalate_for_each_relation(client, report, client);
    if (rc != EXALATE_OK)
        fprintf(stderr, "%s: %s\n", exalate_result_name(rc), exalate_last_error());
    exalate_client_free(client);
    return rc == EXALATE_OK ? 0 : 1;
}
