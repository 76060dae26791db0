/* describe.c - render GGUF metadata and tensors as JSON or text. */
#include "gguf/describe.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

static json_object *scalar_json(const ech_gguf_value *v)
{
    switch (v->type) {
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64:
        return ech_json_u64(v->u);
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64:
        return json_object_new_int64(v->i);
    case ECH_GGUF_F32: return ech_json_float(v->f32);
    case ECH_GGUF_F64: return ech_json_double(v->f64);
    case ECH_GGUF_BOOL: return json_object_new_boolean(v->b);
    case ECH_GGUF_STR: return ech_json_string(v->s.ptr, v->s.len);
    default: return NULL;
    }
}

/* Element i of a fixed-size array as a standalone value. */
static ech_gguf_value array_item(const ech_gguf_array *a, uint64_t i)
{
    ech_gguf_value v = {.type = a->type};
    switch (a->type) {
    case ECH_GGUF_F32: {
        float f;
        memcpy(&f, (const uint8_t *)a->raw + i * 4, 4);
        v.f32 = f;
        break;
    }
    case ECH_GGUF_F64: v.f64 = ech_gguf_array_f64(a, i); break;
    case ECH_GGUF_BOOL: v.b = ech_gguf_array_i64(a, i) != 0; break;
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64:
        v.u = ech_gguf_array_u64(a, i); break;
    case ECH_GGUF_STR: v.s = a->strs[i]; break;
    case ECH_GGUF_ARR: v = a->items[i]; break;
    default: v.i = ech_gguf_array_i64(a, i); break;
    }
    return v;
}

json_object *ech_gguf_value_to_json(const ech_gguf_value *v, uint64_t max_items)
{
    if (v->type != ECH_GGUF_ARR)
        return scalar_json(v);
    const ech_gguf_array *a = &v->a;
    uint64_t n = (max_items && a->n > max_items) ? max_items : a->n;
    json_object *arr = json_object_new_array_ext((int)(n < 1 << 20 ? n : 1 << 20));
    if (!arr)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        ech_gguf_value item = array_item(a, i);
        json_object *j = ech_gguf_value_to_json(&item, max_items);
        if (!j && !(item.type == ECH_GGUF_F32 || item.type == ECH_GGUF_F64)) {
            json_object_put(arr);
            return NULL;
        }
        json_object_array_add(arr, j);
    }
    return arr;
}

json_object *ech_gguf_kv_to_json(const ech_gguf_kv *kv, uint64_t max_items)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "key", ech_json_string(kv->key, strlen(kv->key)));
    json_object_object_add(o, "type", json_object_new_string(ech_gguf_type_name(kv->value.type)));
    if (kv->value.type == ECH_GGUF_ARR) {
        const ech_gguf_array *a = &kv->value.a;
        json_object_object_add(o, "element_type", json_object_new_string(ech_gguf_type_name(a->type)));
        json_object_object_add(o, "count", ech_json_u64(a->n));
        if (max_items && a->n > max_items)
            json_object_object_add(o, "truncated", json_object_new_boolean(1));
    }
    json_object_object_add(o, "value", ech_gguf_value_to_json(&kv->value, max_items));
    return o;
}

json_object *ech_gguf_tensor_to_json(const ech_gguf *g, const ech_gguf_tensor *t)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "name", ech_json_string(t->name, strlen(t->name)));
    json_object_object_add(o, "type", json_object_new_string(ech_type_name(t->type)));
    json_object *shape = json_object_new_array();
    for (uint32_t d = 0; d < t->n_dims; d++)
        json_object_array_add(shape, ech_json_u64(t->ne[d]));
    json_object_object_add(o, "shape", shape);
    json_object_object_add(o, "offset", ech_json_u64(ech_gguf_data_offset(g) + t->offset));
    json_object_object_add(o, "bytes", ech_json_u64(t->nbytes));
    return o;
}

static void add_str(json_object *o, const char *k, ech_str s)
{
    if (s.ptr)
        json_object_object_add(o, k, ech_json_string(s.ptr, s.len));
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
    if (v)
        json_object_object_add(o, k, ech_json_u64(v));
}

json_object *ech_model_summary_to_json(const ech_model_summary *s)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    add_str(o, "architecture", s->architecture);
    add_str(o, "name", s->name);
    json_object_object_add(o, "parameters", ech_json_u64(s->n_params));
    json_object_object_add(o, "tensor_bytes", ech_json_u64(s->tensor_bytes));
    json_object_object_add(o, "bits_per_weight",
                           ech_json_double((double)(int64_t)(s->bits_per_weight * 1000 + 0.5) / 1000));
    if (s->file_type >= 0) {
        json_object_object_add(o, "file_type", json_object_new_int64(s->file_type));
        if (s->file_type_name)
            json_object_object_add(o, "file_type_name", json_object_new_string(s->file_type_name));
    }
    add_u64(o, "context_length", s->context_length);
    add_u64(o, "layers", s->n_layers);
    add_u64(o, "embedding_length", s->n_embd);
    add_u64(o, "heads", s->n_heads);
    add_u64(o, "heads_kv", s->n_heads_kv);
    add_u64(o, "vocab_size", s->n_vocab);
    add_str(o, "tokenizer", s->tokenizer_model);
    json_object_object_add(o, "chat_template", json_object_new_boolean(s->has_chat_template));
    return o;
}

static void text_string(ech_buf *b, ech_str s, size_t max_chars)
{
    size_t n = (max_chars && s.len > max_chars) ? max_chars : s.len;
    ech_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        switch (c) {
        case '\n': ech_buf_puts(b, "\\n"); break;
        case '\t': ech_buf_puts(b, "\\t"); break;
        case '\r': ech_buf_puts(b, "\\r"); break;
        case '"': ech_buf_puts(b, "\\\""); break;
        case '\\': ech_buf_puts(b, "\\\\"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                ech_buf_printf(b, "\\x%02x", c);
            else
                ech_buf_putc(b, (char)c);
        }
    }
    ech_buf_putc(b, '"');
    if (n < s.len)
        ech_buf_printf(b, "... (%zu bytes)", s.len);
}

static void text_value(ech_buf *b, const ech_gguf_value *v, uint64_t max_items, size_t max_chars)
{
    char num[40];
    switch (v->type) {
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64:
        ech_buf_printf(b, "%" PRIu64, v->u); break;
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64:
        ech_buf_printf(b, "%" PRId64, v->i); break;
    case ECH_GGUF_F32: ech_buf_puts(b, ech_format_float(v->f32, num, sizeof num)); break;
    case ECH_GGUF_F64: ech_buf_puts(b, ech_format_double(v->f64, num, sizeof num)); break;
    case ECH_GGUF_BOOL: ech_buf_puts(b, v->b ? "true" : "false"); break;
    case ECH_GGUF_STR: text_string(b, v->s, max_chars); break;
    case ECH_GGUF_ARR: {
        const ech_gguf_array *a = &v->a;
        uint64_t n = (max_items && a->n > max_items) ? max_items : a->n;
        ech_buf_putc(b, '[');
        for (uint64_t i = 0; i < n; i++) {
            if (i)
                ech_buf_puts(b, ", ");
            ech_gguf_value item = array_item(a, i);
            text_value(b, &item, max_items, max_chars);
        }
        if (n < a->n)
            ech_buf_printf(b, ", ...] (%" PRIu64 " items)", a->n);
        else
            ech_buf_putc(b, ']');
        break;
    }
    default:
        ech_buf_puts(b, "?");
    }
}

char *ech_gguf_value_to_text(const ech_gguf_value *v, uint64_t max_items, size_t max_chars)
{
    ech_buf b = {0};
    text_value(&b, v, max_items, max_chars);
    if (!b.data)
        return NULL;
    return ech_buf_steal(&b);
}
