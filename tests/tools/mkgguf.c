/* mkgguf - write synthetic GGUF files for tests and fuzz seeds.
 *
 *   mkgguf OUT.gguf            every metadata type (nested arrays too) and
 *                              one small tensor of every ggml type
 *   mkgguf --vocab OUT.gguf    metadata only, no tensors
 *   mkgguf --align 64 OUT.gguf a non-default alignment
 * Tensor contents are a deterministic byte pattern.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

int main(int argc, char **argv)
{
    int vocab = 0;
    unsigned align = 0;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab"))
            vocab = 1;
        else if (!strcmp(argv[i], "--align") && i + 1 < argc)
            align = (unsigned)atoi(argv[++i]);
        else
            out = argv[i];
    }
    if (!out) {
        fprintf(stderr, "usage: mkgguf [--vocab] [--align N] OUT.gguf\n");
        return 2;
    }
    ech_gguf_writer *w = ech_gguf_writer_new();
    if (!w)
        return 1;
    ech_gguf_writer_set_str(w, "general.architecture", "llama");
    ech_gguf_writer_set_str(w, "general.name", "synthetic \"test\" model\n\xE2\x9C\x93");
    if (align)
        ech_gguf_writer_set_u32(w, "general.alignment", align);
    ech_gguf_writer_set_u32(w, "general.file_type", 15);
    ech_gguf_writer_set_u32(w, "llama.context_length", 4096);
    ech_gguf_writer_set_u32(w, "llama.block_count", 2);
    ech_gguf_writer_set_u32(w, "llama.embedding_length", 256);
    ech_gguf_writer_set_u32(w, "llama.attention.head_count", 8);
    ech_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 2);
    ech_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    ech_gguf_writer_set_f32(w, "llama.rope.freq_base", 500000.0f);
    ech_gguf_value v;
    v = (ech_gguf_value){.type = ECH_GGUF_U8, .u = 200};   ech_gguf_writer_set(w, "test.u8", &v);
    v = (ech_gguf_value){.type = ECH_GGUF_I8, .i = -100};  ech_gguf_writer_set(w, "test.i8", &v);
    v = (ech_gguf_value){.type = ECH_GGUF_U16, .u = 65000}; ech_gguf_writer_set(w, "test.u16", &v);
    v = (ech_gguf_value){.type = ECH_GGUF_I16, .i = -32000}; ech_gguf_writer_set(w, "test.i16", &v);
    ech_gguf_writer_set_i32(w, "test.i32", -2000000000);
    ech_gguf_writer_set_u64(w, "test.u64", UINT64_MAX);
    v = (ech_gguf_value){.type = ECH_GGUF_I64, .i = INT64_MIN}; ech_gguf_writer_set(w, "test.i64", &v);
    v = (ech_gguf_value){.type = ECH_GGUF_F64, .f64 = 3.141592653589793}; ech_gguf_writer_set(w, "test.f64", &v);
    ech_gguf_writer_set_bool(w, "test.bool", true);
    ech_gguf_writer_set_str(w, "test.empty", "");
    int32_t ints[5] = {1, -2, 3, -4, 5};
    ech_gguf_writer_set_array(w, "test.arr_i32", ECH_GGUF_I32, ints, 5);
    float fl[3] = {0.5f, -1.25f, 1e-10f};
    ech_gguf_writer_set_array(w, "test.arr_f32", ECH_GGUF_F32, fl, 3);
    uint8_t bools[3] = {1, 0, 1};
    ech_gguf_writer_set_array(w, "test.arr_bool", ECH_GGUF_BOOL, bools, 3);
    ech_gguf_writer_set_array(w, "test.arr_empty", ECH_GGUF_U64, NULL, 0);
    /* nested: [[1,2],[3]] and [[["deep"]]] */
    int32_t a1[2] = {1, 2}, a2[1] = {3};
    ech_gguf_value inner[2] = {
        {.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_I32, .n = 2, .raw = a1}},
        {.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_I32, .n = 1, .raw = a2}},
    };
    v = (ech_gguf_value){.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_ARR, .n = 2, .items = inner}};
    ech_gguf_writer_set(w, "test.nested", &v);
    ech_str deep_s = {"deep", 4};
    ech_gguf_value l3 = {.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_STR, .n = 1, .strs = &deep_s}};
    ech_gguf_value l2 = {.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_ARR, .n = 1, .items = &l3}};
    v = (ech_gguf_value){.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_ARR, .n = 1, .items = &l2}};
    ech_gguf_writer_set(w, "test.nested_deep", &v);
    /* a small vocabulary */
    enum { NV = 40 };
    char *toks[NV];
    float scores[NV];
    int32_t types[NV];
    for (int i = 0; i < NV; i++) {
        toks[i] = malloc(16);
        snprintf(toks[i], 16, i < 3 ? (i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>") : "\xE2\x96\x81tok%d", i);
        scores[i] = -(float)i;
        types[i] = i < 3 ? 3 : 1;
    }
    ech_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, NV);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.scores", ECH_GGUF_F32, scores, NV);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.token_type", ECH_GGUF_I32, types, NV);
    ech_gguf_writer_set_str(w, "tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
    uint8_t *data = NULL;
    if (!vocab) {
        data = malloc(1 << 16);
        for (int i = 0; i < 1 << 16; i++)
            data[i] = (uint8_t)(i * 131 + 7);
        for (uint32_t t = 0; t < ECH_TYPE_COUNT; t++) {
            const ech_type_info *ti = ech_type_info_get(t);
            if (!ti)
                continue;
            char name[64];
            snprintf(name, sizeof name, "blk.0.%s.weight", ti->name);
            uint64_t ne[2] = {ti->block_size * 2, 3};
            if (ech_gguf_writer_add_tensor(w, name, t, 2, ne, data) != ECH_OK) {
                fprintf(stderr, "mkgguf: cannot add tensor %s\n", name);
                return 1;
            }
        }
        uint64_t ne1[1] = {7};
        ech_gguf_writer_add_tensor(w, "output_norm.weight", ECH_TYPE_F32, 1, ne1, data);
    }
    ech_error err;
    int rc = ech_gguf_writer_write_file(w, out, &err) == ECH_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "mkgguf: %s\n", err.msg);
    ech_gguf_writer_free(w);
    free(data);
    for (int i = 0; i < NV; i++)
        free(toks[i]);
    return rc;
}
