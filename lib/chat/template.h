/* template.h - chat templates: the Jinja a model ships to format its prompt.
 *
 * A chat template (tokenizer.chat_template in a GGUF, chat_template in a
 * Hugging Face tokenizer_config.json) turns a conversation into the exact
 * prompt text the model was trained on.  libech compiles it once and renders
 * it with a small sandboxed Jinja interpreter that behaves like Python's
 * jinja2 as Hugging Face transformers configures it (trim_blocks,
 * lstrip_blocks, loop controls, {% generation %}, raise_exception,
 * strftime_now, a tojson that keeps non-ASCII): the output is meant to be
 * byte-identical, and a template that raises fails with jinja2's message.
 *
 * Sandbox: templates cannot read files or the network; recursion depth,
 * loop iterations, memory and output size are bounded, so a hostile template
 * fails with ECH_ERR_RANGE instead of hanging or exhausting memory.
 *
 * Conversations are json-c values (OpenAI-style `messages` and `tools`), so a
 * server can pass request bodies straight in.  The template keeps no pointer
 * to them after rendering.
 */
#ifndef ECH_CHAT_TEMPLATE_H
#define ECH_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/status.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_chat_template ech_chat_template;

/* Compile `len` bytes of Jinja source.  Syntax errors give ECH_ERR_FORMAT
 * with jinja2's message and the line.  Free with ech_chat_template_free.
 * A compiled template is immutable: render it from any number of threads. */
ech_status ech_chat_template_compile(const char *src, size_t len, ech_chat_template **out,
                                     ech_error *err);
void ech_chat_template_free(ech_chat_template *t);

/* What one render sees.  Zero-initialise, then fill what you have. */
typedef struct ech_chat_input {
    json_object *messages;      /* array of {"role", "content", ...}; NULL: undefined */
    json_object *tools;         /* array of tool definitions; NULL: `tools` undefined */
    bool add_generation_prompt; /* end with the assistant's turn header */
    const char *bos_token;      /* NULL: "" */
    const char *eos_token;      /* NULL: "" */
    json_object *vars;          /* object of extra variables (enable_thinking, ...), or NULL */
    int64_t now;                /* strftime_now's time (seconds since 1970, UTC); 0: the
                                   SOURCE_DATE_EPOCH variable (UTC) if set, else the local time */
    size_t max_output;          /* bytes of prompt; 0: 16 MiB */
    size_t max_memory;          /* bytes of working memory; 0: 256 MiB */
    uint64_t max_steps;         /* loop iterations + calls; 0: 10 million */
} ech_chat_input;

/* Render.  On success *out is a malloc'ed NUL-terminated prompt (the caller
 * frees it) of *out_len bytes (out_len may be NULL).  When the template
 * raises (raise_exception, or an error jinja2 would raise: undefined
 * attribute of undefined, bad types...), returns ECH_ERR_INVALID with
 * jinja2's message in err; limits give ECH_ERR_RANGE; *out is NULL then. */
ech_status ech_chat_render(const ech_chat_template *t, const ech_chat_input *in, char **out,
                           size_t *out_len, ech_error *err);

/* The template text stored in a GGUF: tokenizer.chat_template, or with
 * `name` tokenizer.chat_template.NAME (e.g. "tool_use").  *src points into
 * the GGUF.  ECH_ERR_NOT_FOUND when the model has none. */
ech_status ech_chat_gguf_source(const ech_gguf *g, const char *name, ech_str *src, ech_error *err);

/* The texts of the model's BOS and EOS tokens (tokenizer.ggml.tokens at
 * tokenizer.ggml.bos_token_id / eos_token_id); {NULL, 0} when unknown.
 * They point into the GGUF. */
void ech_chat_gguf_special_tokens(const ech_gguf *g, ech_str *bos, ech_str *eos);

/* Compile the GGUF's template (ech_chat_gguf_source + compile). */
ech_status ech_chat_template_from_gguf(const ech_gguf *g, const char *name, ech_chat_template **out,
                                       ech_error *err);

/* A plain ChatML template, for models that ship none (a static string). */
const char *ech_chat_template_chatml(void);

#ifdef __cplusplus
}
#endif
#endif
