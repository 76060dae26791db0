/* chat-client.c - ask an OpenAI-compatible server one question with libech's
 * client: stream the answer, run the one tool the model may call, and send
 * the result back for the final answer.
 *
 *   cc chat-client.c $(pkg-config --cflags --libs libech) -o chat-client
 *   ECH_BASE_URL=http://127.0.0.1:8080/v1 ./chat-client "What time is it?"
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ech.h>

static int print_delta(void *user, const ech_chat_event *ev)
{
    (void)user;
    if (ev->kind == ECH_CHAT_DELTA)
        fwrite(ev->text, 1, ev->len, stdout);
    else if (ev->kind == ECH_CHAT_TOOL_CALL)   /* complete: all fragments joined */
        fprintf(stderr, "[the model calls %s(%s)]\n", ev->tool_call->name, ev->tool_call->arguments);
    fflush(stdout);
    return 0;   /* nonzero would stop the stream */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s QUESTION\n", argv[0]);
        return 2;
    }
    ech_client *c;
    ech_error err;
    /* NULL options: base URL, key and model from ECH_BASE_URL, ECH_API_KEY,
     * ECH_MODEL (or OPENAI_*); 600 s timeout, 2 retries */
    if (ech_client_new(NULL, &c, &err) != ECH_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    json_object *schema = json_tokener_parse("{\"type\":\"object\",\"properties\":{}}");
    ech_chat_tool clock_tool = {.name = "current_time", .description = "The current UTC time", .parameters = schema};
    ech_chat_msg msgs[4] = {
        {.role = ECH_ROLE_SYSTEM, .content = "Answer briefly."},
        {.role = ECH_ROLE_USER, .content = argv[1]},
    };
    ech_chat_request req = {.messages = msgs, .n_messages = 2, .tools = &clock_tool, .n_tools = 1,
                            .sampling = {.max_tokens = 256}};
    ech_chat_response first = {0}, second = {0};
    int rc = 1;
    if (ech_client_chat(c, &req, print_delta, NULL, &first, &err) != ECH_OK)
        goto fail;
    const ech_chat_choice *ch = first.n_choices ? &first.choices[0] : NULL;
    if (ch && ch->n_tool_calls) {
        /* the assistant's turn with its call, then our answer to the call */
        char now[64];
        time_t t = time(NULL);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        msgs[2] = (ech_chat_msg){.role = ECH_ROLE_ASSISTANT, .content = ch->content,
                                 .tool_calls = ch->tool_calls, .n_tool_calls = 1};
        msgs[3] = (ech_chat_msg){.role = ECH_ROLE_TOOL, .tool_call_id = ch->tool_calls[0].id, .content = now};
        req.n_messages = 4;
        if (ech_client_chat(c, &req, print_delta, NULL, &second, &err) != ECH_OK)
            goto fail;
    }
    printf("\n");
    rc = 0;
fail:
    if (rc) {
        /* err.msg says it all; the typed details are there for programs */
        const ech_client_error *e = ech_client_last_error(c);
        fprintf(stderr, "%s (kind: %s, HTTP %d)\n", err.msg, ech_client_error_kind_name(e->kind), e->http_status);
    }
    ech_chat_response_free(&first);
    ech_chat_response_free(&second);
    json_object_put(schema);
    ech_client_free(c);
    return rc;
}
