/* describe.h - GGUF contents as JSON and as text for people.
 *
 * ech-inspect prints these; ech-serve's model endpoints reuse the JSON.
 * "max_items" limits how many elements of an array are rendered (0: all);
 * "max_chars" limits how many bytes of a string are shown in text (0: all).
 */
#ifndef ECH_GGUF_DESCRIBE_H
#define ECH_GGUF_DESCRIBE_H

#include <stdint.h>

#include <json-c/json.h>

#include "gguf/gguf.h"
#include "gguf/summary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each returns a new json-c reference (caller puts it), or NULL on OOM. */
json_object *ech_gguf_value_to_json(const ech_gguf_value *v, uint64_t max_items);
/* {"key", "type", "value"}; arrays add "element_type", "count" and, when
 * cut, "truncated": true. */
json_object *ech_gguf_kv_to_json(const ech_gguf_kv *kv, uint64_t max_items);
/* {"name", "type", "shape", "offset" (absolute, in the file), "bytes"}. */
json_object *ech_gguf_tensor_to_json(const ech_gguf *g, const ech_gguf_tensor *t);
json_object *ech_model_summary_to_json(const ech_model_summary *s);

/* Text for a value: numbers as C prints them, strings quoted with escapes,
 * arrays as "[a, b, ...] (N items)".  Returns a malloc'ed string the caller
 * frees, or NULL on OOM. */
char *ech_gguf_value_to_text(const ech_gguf_value *v, uint64_t max_items, size_t max_chars);

#ifdef __cplusplus
}
#endif
#endif
