/* ech.h - the public interface of libech, the Echostra core library.
 *
 * Include this one header; it pulls in each concept's header:
 *   core/status.h   status codes, ech_strerror, error details
 *   core/log.h      the diagnostics callback
 *   core/arena.h    bump allocator for scratch memory
 *   core/buf.h      growable byte buffer
 *   core/mapfile.h  read-only file mappings
 *   core/utf8.h     UTF-8 validation and coding
 *   core/json.h     JSON output helpers over json-c
 *   core/digest.h   SHA-256
 *   gguf/types.h    ggml tensor types (block sizes, names)
 *   gguf/gguf.h     validating GGUF reader
 *   gguf/writer.h   GGUF v3 writer
 *   gguf/summary.h  headline facts of a model
 *   gguf/describe.h GGUF contents as JSON and text
 *   net/download.h  resumable, verified model downloads; the model cache
 *   net/client.h    OpenAI-compatible HTTP client: chat, completions, embeddings, models
 *   net/sse_parse.h the text/event-stream (SSE) decoder
 *   tok/tokenizer.h text <-> token ids (SPM, BPE, WordPiece), streaming detokenizer
 *   kernels/kernels.h  block formats, dot products, matmul, CPU dispatch
 *   model/model.h   models (decoders, encoders): hyperparameters and weight views
 *   model/context.h a running sequence: KV cache, decode, logits; encoding whole texts
 *   gen/sampler.h   penalties, top-k/top-p/min-p, temperature, seeded draws
 *   gen/generate.h  the generation loop with UTF-8-safe streaming and stop strings
 *   gen/prompt.h    a chat conversation rendered and tokenized (injection-safe)
 *   gen/embed.h     text embeddings: pooling, normalisation, chunking long texts
 *   chat/template.h chat templates (a sandboxed Jinja interpreter)
 *   index/distance.h vector distance kernels (l2, inner product, cosine)
 *   index/index.h   HNSW vector index: build, search, delete, mmap'ed file
 *   index/vecio.h   embedding readers: NDJSON records and .fvecs
 *   agent/proc.h    child processes for tools (timeouts, process groups)
 *   agent/mcp.h     Model Context Protocol client (stdio, Streamable HTTP)
 *   agent/redact.h  secrets kept out of logs and tool results
 *   agent/tools.h   the tool registry: built-ins, tool files, MCP servers
 *   agent/agent.h   the agent loop and its session file
 *
 * Conventions, everywhere: functions return ech_status (ECH_OK = 0); output
 * parameters come last, then an optional ech_error * for a message.  Whoever
 * allocates frees: a function that returns memory the caller must release
 * says so, and names the function to release it with; every other pointer
 * is borrowed from the object it came from and lives as long as that object.
 * The library never prints, exits or aborts on bad input.
 */
#ifndef ECH_H
#define ECH_H

#include "core/status.h"
#include "core/log.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/mapfile.h"
#include "core/utf8.h"
#include "core/json.h"
#include "core/digest.h"
#include "gguf/types.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "gguf/summary.h"
#include "gguf/describe.h"
#include "kernels/kernels.h"
#include "net/download.h"
#include "net/client.h"
#include "net/sse_parse.h"
#include "tok/tokenizer.h"
#include "model/model.h"
#include "model/context.h"
#include "gen/sampler.h"
#include "gen/generate.h"
#include "gen/prompt.h"
#include "gen/embed.h"
#include "chat/template.h"
#include "index/distance.h"
#include "index/index.h"
#include "index/vecio.h"
#include "agent/proc.h"
#include "agent/mcp.h"
#include "agent/redact.h"
#include "agent/tools.h"
#include "agent/agent.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version ("0.1.0"); a static string. */
const char *ech_version(void);

#ifdef __cplusplus
}
#endif
#endif
