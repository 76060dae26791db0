/* lexer.h - template source to tokens (internal).
 *
 * Follows jinja2's lexer with the settings Hugging Face uses: trim_blocks
 * (the first newline after a block or comment tag is dropped), lstrip_blocks
 * (spaces and tabs before a block or comment tag on its own line are
 * dropped), `-` markers that strip all whitespace on that side of a tag, `+`
 * markers that turn lstrip_blocks/trim_blocks off for one tag, newlines
 * normalised to "\n" and one trailing newline of the source removed.
 * Whitespace control is applied here, so the parser sees final text.
 */
#ifndef ECH_CHAT_LEXER_H
#define ECH_CHAT_LEXER_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"

typedef enum {
    TK_EOF, TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP
} ech_jtok_type;

typedef enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ASSIGN,
    OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE,
    OP_COMMA, OP_DOT, OP_COLON, OP_PIPE, OP_SEMICOLON
} ech_jop;

typedef struct ech_jtok {
    uint8_t type, op;
    int line;
    const char *p;    /* TEXT, NAME, STRING (decoded): bytes in the arena */
    size_t n;
    int64_t i;        /* INT */
    double f;         /* FLOAT */
} ech_jtok;

/* Tokenise `src`; the array (ending with TK_EOF) and its strings live in `a`. */
ech_status ech_jlex(ech_arena *a, const char *src, size_t len, ech_jtok **out, size_t *n,
                    ech_error *err);

#endif
