/* client-threads - N threads, each with its own ech_client, each making M
 * chat requests to $ECH_BASE_URL; prints "ok" when every reply came back whole.
 *
 *   client-threads N M
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

static int per_thread;

static void *worker(void *arg)
{
    long failures = 0;
    ech_client *c;   /* created in the thread: the first ech_client_new runs curl's global init once */
    ech_error err;
    if (ech_client_new(NULL, &c, &err) != ECH_OK) {
        fprintf(stderr, "thread %ld: %s\n", (long)(intptr_t)arg, err.msg);
        return (void *)1;
    }
    for (int i = 0; i < per_thread; i++) {
        ech_chat_msg m = {.role = ECH_ROLE_USER, .content = "hi"};
        ech_chat_request req = {.messages = &m, .n_messages = 1};
        ech_chat_response r;
        if (ech_client_chat(c, &req, NULL, NULL, &r, &err) != ECH_OK || r.n_choices != 1 || !r.choices[0].content) {
            fprintf(stderr, "thread %ld request %d: %s\n", (long)(intptr_t)arg, i, err.msg);
            failures++;
        }
        ech_chat_response_free(&r);
    }
    ech_client_free(c);
    return (void *)(intptr_t)(failures != 0);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int n = atoi(argv[1]);
    per_thread = atoi(argv[2]);
    if (n < 1 || n > 64 || per_thread < 1)
        return 2;
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad |= rv != NULL;
    }
    puts(bad ? "failed" : "ok");
    return bad;
}
