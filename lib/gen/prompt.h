/* prompt.h - a chat conversation turned into the model's prompt tokens.
 *
 * Rendering applies the model's chat template (or one given, or ChatML when
 * the model has none) to OpenAI-style messages and tools.  Tokenizing the
 * result turns the template's special-token text (<|im_start|>, <|eot_id|>)
 * into tokens while the text of the messages stays text: a user who types
 * "<|im_start|>" gets those characters, not the control token.
 */
#ifndef ECH_GEN_PROMPT_H
#define ECH_GEN_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "tok/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_prompt_opts {
    json_object *messages;        /* array of {"role", "content", ...} (borrowed) */
    json_object *tools;           /* array of tool definitions, or NULL */
    json_object *vars;            /* extra template variables, or NULL */
    bool add_generation_prompt;
    const char *template_src;     /* a template to use instead of the model's, or NULL */
    size_t template_len;
    const char *template_name;    /* tokenizer.chat_template.NAME, or NULL */
} ech_prompt_opts;

/* Render the conversation for the model in `g`.  *out is malloc'ed (caller
 * frees).  *used_chatml (may be NULL) is set when the model had no template
 * and the built-in ChatML one was used. */
ech_status ech_prompt_render(const ech_gguf *g, const ech_prompt_opts *o, char **out, size_t *len,
                             bool *used_chatml, ech_error *err);

/* Tokenize a rendered prompt: special tokens parsed outside the messages'
 * text, which is found in the rendering in order and kept literal.  BOS is
 * added when the vocabulary asks for it and the text does not begin with it.
 * Tokens are appended to *out. */
ech_status ech_prompt_tokenize(const ech_tokenizer *tk, const char *text, size_t len,
                               json_object *messages, ech_tokens *out, ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
