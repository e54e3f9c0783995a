/*
 * One client across fork(): it makes a call (so it keeps a pooled
 * connection), then the process forks and parent and child each ask their
 * own queue many times at once. Each must get its own queue's count: a
 * child that reused the parent's connection would read the parent's
 * answers.
 *
 * usage: fork_test CONFIG ROUNDS
 * The config's node "demo" must have relation AllContent with
 * syncrequests = 3 (the parent's) and syncresponses = 2 (the child's), and
 * cache_ttl = 0 (every call asks the node).
 * Prints "parent: N wrong" and "child: N wrong"; exits 0 when both are 0.
 */
#define _POSIX_C_SOURCE 200809L
#include "exalate_zabbix.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int ask(const exalate_client *client, const char *who, const char *queue, uint64_t want,
               int rounds) {
    int wrong = 0;
    for (int i = 0; i < rounds; i++) {
        uint64_t n = 999;
        exalate_result r = exalate_queue_count(client, "demo", "AllContent", queue, &n);
        if (r != EXALATE_OK || n != want) {
            if (wrong < 5)
                printf("%s: %s gave %s, %llu (want %llu): %s\n", who, queue,
                       exalate_result_name(r), (unsigned long long)n, (unsigned long long)want,
                       exalate_last_error());
            wrong++;
        }
    }
    printf("%s: %d wrong\n", who, wrong);
    fflush(stdout);
    return wrong;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fork_test CONFIG ROUNDS\n");
        return 2;
    }
    int rounds = atoi(argv[2]);
    exalate_client *client = NULL;
    if (exalate_client_open(argv[1], &client) != EXALATE_OK) {
        printf("open: %s\n", exalate_last_error());
        return 2;
    }
    uint64_t n = 0;
    if (exalate_queue_count(client, "demo", "AllContent", "syncrequests", &n) != EXALATE_OK ||
        n != 3) {
        printf("first call: %s\n", exalate_last_error());
        return 2;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 2;
    if (child == 0) {
        int wrong = ask(client, "child", "syncresponses", 2, rounds);
        exalate_client_free(client);
        _exit(wrong == 0 ? 0 : 1);
    }
    int wrong = ask(client, "parent", "syncrequests", 3, rounds);
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        wrong++;
    exalate_client_free(client);
    return wrong == 0 ? 0 : 1;
}
