/* client-calls - drive the calls ech-chat does not use against $ECH_BASE_URL
 * and print what came back, for t0800:
 *
 *   client-calls completion | completion-stream | embeddings | raw | models
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ech.h"

static int on_text(void *user, const ech_chat_event *ev)
{
    (void)user;
    if (ev->kind == ECH_CHAT_DELTA)
        printf("[%.*s]", (int)ev->len, ev->text);
    else if (ev->kind == ECH_CHAT_FINISH)
        printf("<%s>", ev->finish_reason);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *what = argv[1];
    ech_client *c;
    ech_error err;
    if (ech_client_new(NULL, &c, &err) != ECH_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ech_status s = ECH_ERR_INVALID;
    const char *stop[] = {"\n"};
    if (!strcmp(what, "completion") || !strcmp(what, "completion-stream")) {
        ech_completion_request req = {.prompt = "Once", .sampling = {.max_tokens = 5, .stop = stop, .n_stop = 1}};
        ech_completion_response r;
        bool stream = !strcmp(what, "completion-stream");
        s = ech_client_completion(c, &req, stream ? on_text : NULL, NULL, &r, &err);
        if (s == ECH_OK)
            printf("%s%s|%s|%ld\n", stream ? "\n" : "", r.choices[0].text, r.choices[0].finish_reason,
                   r.usage.total_tokens);
        ech_completion_response_free(&r);
    } else if (!strcmp(what, "embeddings")) {
        const char *in[] = {"a", "b"};
        ech_embedding_request req = {.model = "emb", .input = in, .n_input = 2, .dimensions = 3};
        ech_embedding_response r;
        s = ech_client_embeddings(c, &req, &r, &err);
        for (size_t i = 0; s == ECH_OK && i < r.n; i++) {
            printf("%zu:", r.data[i].index);
            for (size_t k = 0; k < r.data[i].dim; k++)
                printf(" %g", (double)r.data[i].v[k]);
            printf("\n");
        }
        ech_embedding_response_free(&r);
    } else if (!strcmp(what, "raw")) {
        json_object *body = json_tokener_parse("{\"q\":[1,2]}"), *out = NULL;
        s = ech_client_request_json(c, "POST", "/custom", body, &out, &err);
        if (s == ECH_OK)
            printf("%s\n", ech_json_line(out));
        json_object_put(out);
        json_object_put(body);
    } else if (!strcmp(what, "models")) {
        ech_model_list l;
        s = ech_client_models(c, &l, &err);
        for (size_t i = 0; s == ECH_OK && i < l.n; i++)
            printf("%s %s\n", l.v[i].id, l.v[i].owned_by ? l.v[i].owned_by : "-");
        ech_model_list_free(&l);
    }
    if (s != ECH_OK)
        fprintf(stderr, "%s\n", err.msg);
    ech_client_free(c);
    return s == ECH_OK ? 0 : 1;
}
