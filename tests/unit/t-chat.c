/* t-chat.c - unit tests for the chat-template interpreter (lib/chat/).
 *
 * Byte-for-byte agreement with jinja2 on real templates is checked by
 * tests/t0500-template-jinja2.sh; here: the API, jinja2 behaviours pinned
 * down without Python, the sandbox limits against hostile templates, and
 * reading templates from GGUF files. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ech.h"
#include "tap.h"

/* Render `src` with messages/vars given as JSON text; returns the text
 * (static buffer) or "ERR(<status>): message". */
static const char *render_ex(const char *src, const char *messages, const char *vars, size_t max_out,
                             size_t max_mem)
{
    static char result[4096];
    ech_chat_template *t;
    ech_error err;
    ech_status st = ech_chat_template_compile(src, strlen(src), &t, &err);
    if (st != ECH_OK) {
        snprintf(result, sizeof result, "ERR(%d): %s", (int)st, err.msg);
        return result;
    }
    ech_chat_input in = {
        .messages = messages ? json_tokener_parse(messages) : NULL,
        .vars = vars ? json_tokener_parse(vars) : NULL,
        .bos_token = "<s>",
        .add_generation_prompt = true,
        .now = 1735689600,   /* 2025-01-01 00:00:00 UTC */
        .max_output = max_out,
        .max_memory = max_mem,
    };
    char *out;
    size_t len;
    st = ech_chat_render(t, &in, &out, &len, &err);
    if (st != ECH_OK) {
        snprintf(result, sizeof result, "ERR(%d): %s", (int)st, err.msg);
    } else {
        snprintf(result, sizeof result, "%s", out);
        if (strlen(out) != len)
            snprintf(result, sizeof result, "length mismatch");
        free(out);
    }
    json_object_put(in.messages);
    json_object_put(in.vars);
    ech_chat_template_free(t);
    return result;
}

static const char *render(const char *src, const char *vars)
{
    return render_ex(src, "[{\"role\":\"user\",\"content\":\"hi\"}]", vars, 0, 0);
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static void test_basics(void)
{
    is_str(render("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m['content'] }}{% endfor %}", NULL),
           "<s>user:hi", "variables, loops, attribute and item access");
    is_str(render("{{ add_generation_prompt }} {{ x }}", "{\"x\": [1, \"a\", null, true, 1.5]}"),
           "True [1, 'a', None, True, 1.5]", "Python str() of values");
    is_str(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 1 / 4 }} {{ 2 ** 10 }} {{ 1e16 }} {{ 0.1 + 0.2 }}", NULL),
           "3 -4 2 0.25 1024 1e+16 0.30000000000000004", "Python arithmetic and float repr");
    is_str(render("a\n  {% if true %}\n  b\n  {% endif %}\nc", NULL), "a\n  b\nc",
           "trim_blocks and lstrip_blocks");
    is_str(render("a  {{- ' b ' -}}  c {#- x -#} d\n", NULL), "a b cd", "- markers and comments; one trailing newline dropped");
    is_str(render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set local = i %}{% endfor %}{{ ns.n }}{{ local is defined }}", NULL),
           "6False", "namespace survives the loop, plain set does not");
    is_str(render("{% for i in range(9) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{{ loop.last }}{% endfor %}", NULL),
           "0False2False4False", "break and continue");
    is_str(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{{ caller() if caller is defined }}{% endmacro %}{{ m(1) }}{% call m(2, b=3) %}!{% endcall %}", NULL),
           "1B23!", "macros with defaults, call blocks");
    is_str(render("{{ {'b': 1, 'a': 'é'} | tojson }} {{ [1, {'x': 2}] | tojson(indent=2) }}", NULL),
           "{\"b\": 1, \"a\": \"é\"} [\n  1,\n  {\n    \"x\": 2\n  }\n]", "tojson keeps non-ASCII, indents like json.dumps");
    is_str(render("{{ ('<a>' | safe) + '<b>' }} {{ '<b>' ~ ('x' | safe) }}", NULL), "<a>&lt;b&gt; <b>x",
           "Markup + str escapes the str (markupsafe)");
    is_str(render("{{ strftime_now('%Y-%m-%d %H:%M') }}", NULL), "2025-01-01 00:00", "strftime_now uses the given time");
    is_str(render("{% generation %}{{ 'gen' }}{% set g = 1 %}{% endgeneration %}{{ g is defined }}", NULL), "genFalse",
           "the generation block renders its body in a scope");
    is_str(render("[{{ nope }}][{{ nope | length }}][{{ nope is defined }}][{% for x in nope %}x{% endfor %}]", NULL),
           "[][0][False][]", "undefined prints nothing, has length 0, iterates empty");
    is_str(render("{{ 'A,b , c'.lower().split(',') | map('trim') | join('|') }}", NULL), "a|b|c",
           "methods chain into filters");
}

static void test_errors(void)
{
    is_str(render("{{ raise_exception('No system messages!') }}", NULL), "ERR(3): No system messages!",
           "raise_exception fails with its message (ECH_ERR_INVALID)");
    is_str(render("{{ nope.attr }}", NULL), "ERR(3): 'nope' is undefined", "attribute of undefined raises");
    is_str(render("{{ messages[0].nope.x }}", NULL), "ERR(3): 'dict object' has no attribute 'nope'",
           "jinja2's message for a missing key");
    is_str(render("{{ messages[3].role }}", NULL), "ERR(3): list object has no element 3", "missing element");
    is_str(render("{{ 'a' + 1 }}", NULL), "ERR(3): can only concatenate str (not \"int\") to str", "TypeError text");
    is_str(render("{% set l = [] %}{{ l.append(1) }}", NULL),
           "ERR(3): access to attribute 'append' of 'list' object is unsafe.", "the immutable sandbox");
    ok(starts(render("{% if %}", NULL), "ERR(4): "), "syntax errors give ECH_ERR_FORMAT");
    ok(starts(render("{{ x | no_such_filter }}", NULL), "ERR(4): No filter named 'no_such_filter'."),
       "unknown filter outside an if: a compile error");
    is_str(render("{% if false %}{{ x | no_such_filter }}{% endif %}ok", NULL), "ok",
           "unknown filter inside an if: only fails when reached");
    ok(starts(render("{% include 'x.j2' %}", NULL), "ERR(4): 'include' is not available"), "no file access");
    ok(starts(render("{{ 'unterminated }}", NULL), "ERR(4): "), "unterminated string");
    char lit[400] = "{{ ";   /* fuzz: a 300-digit literal overran the lexer's buffer */
    memset(lit + 3, '4', 300);
    strcpy(lit + 303, ".5 }}");
    ok(starts(render(lit, NULL), "ERR(4): number literal too long"), "overlong number literal");
    ok(starts(render("{% for x in y %}", NULL), "ERR(4): Unexpected end of template"), "unclosed block");
}

static void test_limits(void)
{
    ok(starts(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL), "ERR(7): maximum recursion depth"),
       "unbounded recursion stops (ECH_ERR_RANGE)");
    ok(starts(render("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", NULL),
              "ERR(7): template ran more than"),
       "10^10 loop iterations stop");
    ok(starts(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL),
              "ERR(7): "),
       "so do loops that allocate as they go");
    ok(starts(render_ex("{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}", "[]", NULL, 1000, 0),
              "ERR(7): rendered text exceeds 1000 bytes"),
       "output size is bounded");
    ok(starts(render_ex("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                        "[]", NULL, 0, 1 << 24),
              "ERR(7): template used more than"),
       "memory is bounded (string doubling)");
    ok(starts(render_ex("{{ 'a' * 4000000000 }}", "[]", NULL, 0, 1 << 24), "ERR(7): "), "string repetition is bounded");
    ok(starts(render("{{ range(200000) | length }}", NULL), "ERR(3): Range too big"), "range is capped like jinja2's sandbox");
    char deep[5000];
    memset(deep, '(', 2000);
    strcpy(deep + 2000, "1");
    memset(deep + 2001, ')', 2000);
    deep[4001] = '\0';
    char src[5100];
    snprintf(src, sizeof src, "{{ %s }}", deep);
    ok(starts(render(src, NULL), "ERR(4): template nested too deeply"), "deep nesting is a syntax error, not a crash");
}

static void test_api(void)
{
    ech_chat_template *t;
    ech_error err;
    const char *src = "{{ messages | length }}{% if tools is defined %} {{ tools[0].name }}{% endif %}{{ eos_token }}{{ extra }}";
    ok(ech_chat_template_compile(src, strlen(src), &t, &err) == ECH_OK, "compile");
    json_object *msgs = json_tokener_parse("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]");
    json_object *tools = json_tokener_parse("[{\"name\":\"search\"}]");
    json_object *vars = json_tokener_parse("{\"extra\": \"!\", \"messages\": \"ignored\"}");
    ech_chat_input in = {.messages = msgs, .tools = tools, .eos_token = "</s>", .vars = vars};
    char *out = NULL;
    ok(ech_chat_render(t, &in, &out, NULL, &err) == ECH_OK && out && !strcmp(out, "2 search</s>!"),
       "messages, tools, eos, extra variables (the fixed ones win)");
    free(out);
    in.tools = NULL;
    ok(ech_chat_render(t, &in, &out, NULL, NULL) == ECH_OK && !strcmp(out, "2</s>!"),
       "tools left out is undefined; rendering twice works");
    free(out);
    json_object *notarray = json_object_new_object();
    in.messages = notarray;
    ok(ech_chat_render(t, &in, &out, NULL, &err) == ECH_ERR_INVALID && out == NULL, "messages must be an array");
    json_object_put(notarray);
    json_object_put(msgs);
    json_object_put(tools);
    json_object_put(vars);
    ech_chat_template_free(t);
    ech_chat_template_free(NULL);

    const char *chatml = ech_chat_template_chatml();
    is_str(render(chatml, NULL), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "built-in ChatML");
}

static void test_gguf(void)
{
    ech_gguf_writer *w = ech_gguf_writer_new();
    const char *toks[] = {"<unk>", "<|begin_of_text|>", "<|eot_id|>", "a"};
    ech_gguf_writer_set_str(w, "general.architecture", "llama");
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, 4);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    ech_gguf_writer_set_str(w, "tokenizer.chat_template", "{{ bos_token }}default");
    ech_gguf_writer_set_str(w, "tokenizer.chat_template.tool_use", "tool_use");
    uint8_t *buf;
    size_t size;
    ech_error err;
    ech_gguf *g = NULL;
    ok(ech_gguf_writer_write_mem(w, &buf, &size, &err) == ECH_OK && ech_gguf_parse(buf, size, &g, &err) == ECH_OK,
       "a GGUF with templates");
    ech_gguf_writer_free(w);
    if (!g) {
        free(buf);
        return;
    }
    ech_str bos, eos;
    ech_chat_gguf_special_tokens(g, &bos, &eos);
    ok(bos.len == 17 && !memcmp(bos.ptr, "<|begin_of_text|>", 17) && eos.len == 10 && !memcmp(eos.ptr, "<|eot_id|>", 10),
       "BOS and EOS texts from the vocabulary");
    ech_chat_template *t;
    char *out;
    ech_chat_input in = {.bos_token = "B"};
    ok(ech_chat_template_from_gguf(g, NULL, &t, &err) == ECH_OK && ech_chat_render(t, &in, &out, NULL, &err) == ECH_OK &&
           !strcmp(out, "Bdefault"), "tokenizer.chat_template");
    free(out);
    ech_chat_template_free(t);
    ok(ech_chat_template_from_gguf(g, "tool_use", &t, &err) == ECH_OK && ech_chat_render(t, &in, &out, NULL, &err) == ECH_OK &&
           !strcmp(out, "tool_use"), "tokenizer.chat_template.NAME");
    free(out);
    ech_chat_template_free(t);
    ok(ech_chat_template_from_gguf(g, "nope", &t, &err) == ECH_ERR_NOT_FOUND && t == NULL, "a missing named template");
    ech_gguf_close(g);
    free(buf);
}

static void test_threads_share_template(void)
{
    /* the same compiled template rendered with different inputs gives
     * independent results (no state kept between renders) */
    const char *src = "{% set ns = namespace(c=0) %}{% for m in messages %}{% set ns.c = ns.c + 1 %}{% endfor %}{{ ns.c }}";
    is_str(render_ex(src, "[1,2,3]", NULL, 0, 0), "3", "first render");
    is_str(render_ex(src, "[1]", NULL, 0, 0), "1", "second render starts fresh");
}

int main(void)
{
    test_basics();
    test_errors();
    test_limits();
    test_api();
    test_gguf();
    test_threads_share_template();
    return done_testing();
}
