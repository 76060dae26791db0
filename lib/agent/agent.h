/* agent.h - the agent loop: a model, tools, and a conversation that survives.
 *
 * ech_agent_run calls the model with the conversation and the tools, runs
 * every tool call it asks for (in order), appends the results and calls it
 * again, until the model answers without calling a tool (the final answer),
 * `max_turns` model calls were made, or something fails.  A tool that
 * fails, times out or gets bad arguments does not stop the loop: the model
 * reads what went wrong as the tool's result.
 *
 * With a session file the conversation is written after every step (each
 * model answer, each tool result) to a temporary file that is then renamed
 * over it, so a crash loses at most the step in flight; ech_agent_load picks
 * it up again, and a run after it first answers tool calls left unanswered.
 *
 * Session file: {"format": "echostra-agent-session", "version": 1,
 * "model": ..., "turns": N, "messages": [OpenAI chat messages]}.
 */
#ifndef ECH_AGENT_AGENT_H
#define ECH_AGENT_AGENT_H

#include <json-c/json.h>

#include "agent/tools.h"
#include "core/status.h"
#include "net/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each event is a JSON object with a "type":
 *   message      {turn, role: "assistant", content, tool_calls: [{id, name, arguments}]}
 *   tool_call    {turn, id, name, arguments}
 *   tool_result  {turn, id, name, content, is_error, seconds}
 *   usage        {turn, prompt_tokens, completion_tokens, total_tokens} (after
 *                its message, when the server reports usage)
 *   final        {turns, content}
 * `ev` is borrowed for the call.  Return nonzero to stop the run
 * (ECH_ERR_CANCELED). */
typedef int (*ech_agent_event_fn)(void *user, json_object *ev);

typedef struct ech_agent_opts {
    ech_client *client;          /* borrowed */
    ech_toolset *tools;          /* borrowed; NULL: no tools */
    const char *model;           /* NULL: the client's default */
    int max_turns;               /* model calls per run; 0: 10 */
    ech_sampling sampling;
    const char *session_path;    /* checkpoint file; NULL: none */
    ech_agent_event_fn on_event; /* may be NULL */
    void *user;
} ech_agent_opts;

typedef struct ech_agent ech_agent;

/* A new agent with an empty conversation; the options' strings are copied. */
ech_status ech_agent_new(const ech_agent_opts *o, ech_agent **out, ech_error *err);
void ech_agent_free(ech_agent *a);

/* Replace the conversation with the one in session file `path`. */
ech_status ech_agent_load(ech_agent *a, const char *path, ech_error *err);

/* Append a message with plain text content ("system", "user"). */
ech_status ech_agent_add_message(ech_agent *a, const char *role, const char *content, ech_error *err);

/* The conversation (borrowed). */
json_object *ech_agent_messages(const ech_agent *a);

/* The content of the last message if it is a final answer (an assistant
 * message without tool calls), else NULL; borrowed. */
const char *ech_agent_final(const ech_agent *a);

/* 1 if the last message is an assistant message whose tool calls are not
 * all answered yet (the run was cut short). */
int ech_agent_pending_calls(const ech_agent *a);

/* Run the loop: first answer tool calls a cut-short run left open, then
 * append `task` (may be NULL) as a user message, then call the model.
 * ECH_OK with the final answer in *final (malloc'ed; the caller frees it); ECH_ERR_RANGE when max_turns ran out first; the
 * client's status when a model call failed; ECH_ERR_IO when the session
 * file cannot be written. */
ech_status ech_agent_run(ech_agent *a, const char *task, char **final, ech_error *err);

/* Write the session file now (temporary file, fsync, rename). */
ech_status ech_agent_save(const ech_agent *a, ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
