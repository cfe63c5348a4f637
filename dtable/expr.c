/* DTable's expression engine (expr.h).
 *
 * Design. dt_expr_parse is a recursive-descent parser that builds a typed tree and checks
 * types as it builds each node, so every error knows its position in the text. Type rules
 * are settled there once: mixed int64/float64 operands get an explicit TOFLOAT node, and the
 * literal null takes its context's type, so evaluation never looks at types row by row.
 *
 * dt_expr_eval walks the tree once per partition, not once per row: each node turns its
 * children's whole columns into a whole column with one tight loop (a column reference is
 * borrowed, not copied; a literal is broadcast). Validity is combined word-wise (the AND of
 * the operands' bitmaps, 64 rows at a time); operations that make nulls of their own (integer
 * overflow, integer division by zero) mark the rows in a byte array inside the loop and clear
 * their bits after it, so the loop stays branch-light. Three-valued and/or/coalesce combine
 * values and validity per row from the bitmaps, still a flat loop. The root's result gets its
 * null rows' values zeroed (column.h: readable 0 / 0.0 / false / "") and loses its bitmap when
 * no row is null. Intermediate columns may hold any value in null rows: every loop is defined
 * for any input (overflow builtins, divisors checked), so no loop needs to branch on
 * validity. */
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define T_NULL ((dt_type_t)-1) /* the literal null before its context types it */

enum kind { K_COL, K_LIT, K_NEG, K_NOT, K_BIN, K_ISNULL, K_NOTNULL, K_FUNC, K_TOFLOAT };

enum op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_AND,
    OP_OR
};

enum fn { F_ABS, F_SQRT, F_FLOOR, F_CEIL, F_ROUND, F_LOWER, F_UPPER, F_LENGTH, F_COALESCE, F_TS };

static const char *const fn_names[] = {"abs",   "sqrt",  "floor",  "ceil",     "round",
                                       "lower", "upper", "length", "coalesce", "ts"};
static const char *const op_names[] = {
    "+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "and", "or"};

typedef struct node {
    enum kind kind;
    int op; /* enum op for K_BIN, enum fn for K_FUNC */
    dt_type_t type;
    int col;    /* K_COL: schema index */
    bool lnull; /* K_LIT: the literal null */
    int64_t i;  /* K_LIT int64 / timestamp / bool */
    double f;   /* K_LIT float64 */
    char *s;    /* K_LIT string */
    size_t slen;
    struct node *a, *b;
    int depth; /* 1 for a leaf: the tree's height from here, bounded by MAX_DEPTH */
} node_t;

/* The deepest tree, and the deepest nesting of the parser's recursion ('(', function
 * arguments, 'not', unary '-'), that an expression may have: parsing, evaluating and freeing
 * recurse once per level, so without a bound a long text (20000 nested parentheses, or a
 * sum of 20000 terms, whose left-associative tree is as deep) overflows the stack. 1000 is
 * SQLite's SQLITE_MAX_EXPR_DEPTH. */
#define MAX_DEPTH 1000

struct dt_expr {
    node_t *root;
    int ncols_used;
    int *cols_used;    /* ascending */
    char **used_names; /* parallel to cols_used, for eval's messages */
    dt_type_t *used_types;
};

/* ---------------------------------------------------------------------------------------- */
/* Parser                                                                                    */

typedef struct parser {
    const char *text;
    size_t pos;
    int ncols;
    const char *const *names;
    const dt_type_t *types;
    bool *used;
    char *err;
    size_t errlen;
    bool failed;
    int nest; /* the recursion levels open, bounded by MAX_DEPTH */
} parser_t;

static void perr(parser_t *p, size_t pos, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = true;
    if (!p->err || p->errlen == 0) return;
    int k = snprintf(p->err, p->errlen, "expression '%s' at %zu: ", p->text, pos);
    if (k < 0 || (size_t)k >= p->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static void node_free(node_t *n) {
    if (!n) return;
    node_free(n->a);
    node_free(n->b);
    dt_free(n->s);
    dt_free(n);
}

static node_t *node_new(parser_t *p, enum kind kind, dt_type_t type) {
    node_t *n = calloc(1, sizeof *n);
    if (!n) {
        perr(p, p->pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->type = type;
    n->depth = 1;
    return n;
}

/* Gives n its children a and b (b may be NULL) and its depth; frees all three and returns
 * NULL when the tree gets deeper than MAX_DEPTH. */
static node_t *adopt(parser_t *p, node_t *n, node_t *a, node_t *b) {
    n->a = a;
    n->b = b;
    int d = a->depth;
    if (b && b->depth > d) d = b->depth;
    n->depth = d + 1;
    if (n->depth > MAX_DEPTH) {
        perr(p, p->pos, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
        node_free(n);
        return NULL;
    }
    return n;
}

/* Opens one level of the parser's recursion; false (an error) past MAX_DEPTH. The caller
 * closes it (p->nest--) when the level returns. */
static bool enter(parser_t *p) {
    if (++p->nest <= MAX_DEPTH) return true;
    perr(p, p->pos, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
    return false;
}

static void skip_ws(parser_t *p) {
    while (p->text[p->pos] && isspace((unsigned char)p->text[p->pos]))
        p->pos++;
}

static bool is_ident_start(char c) {
    return isalpha((unsigned char)c) || c == '_';
}
static bool is_ident_char(char c) {
    return isalnum((unsigned char)c) || c == '_';
}

/* Whether the next token is the keyword kw (case-insensitive, whole word); consumes it if so. */
static bool accept_kw(parser_t *p, const char *kw) {
    skip_ws(p);
    size_t len = strlen(kw);
    const char *t = p->text + p->pos;
    if (strncasecmp(t, kw, len) == 0 && !is_ident_char(t[len])) {
        p->pos += len;
        return true;
    }
    return false;
}

static bool accept(parser_t *p, const char *sym) {
    skip_ws(p);
    size_t len = strlen(sym);
    if (strncmp(p->text + p->pos, sym, len) == 0) {
        p->pos += len;
        return true;
    }
    return false;
}

static bool is_keyword(const char *t, size_t len) {
    static const char *const kws[] = {"and", "or", "not", "is", "null", "true", "false"};
    for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++)
        if (strlen(kws[k]) == len && strncasecmp(t, kws[k], len) == 0) return true;
    return false;
}

/* Describes an operand for a type error: "string 'name'" for a column, "int64" otherwise. */
static void describe(const parser_t *p, const node_t *n, char *buf, size_t len) {
    const char *tn = n->type == T_NULL ? "null" : dt_type_name(n->type);
    if (n->kind == K_COL)
        snprintf(buf, len, "%s '%s'", tn, p->names[n->col]);
    else
        snprintf(buf, len, "%s", tn);
}

static bool is_num(dt_type_t t) {
    return t == DT_INT64 || t == DT_FLOAT64;
}

/* Gives a null literal its context's type (only literals can be T_NULL, see below). */
static void set_null_type(node_t *n, dt_type_t t) {
    if (n->type == T_NULL) n->type = t;
}

static node_t *to_float(parser_t *p, node_t *n) {
    if (n->type == DT_FLOAT64) return n;
    if (n->kind == K_LIT) { /* fold: no node per row for a constant */
        n->f = (double)n->i;
        n->type = DT_FLOAT64;
        return n;
    }
    node_t *c = node_new(p, K_TOFLOAT, DT_FLOAT64);
    if (!c) {
        node_free(n);
        return NULL;
    }
    return adopt(p, c, n, NULL);
}

static node_t *parse_or(parser_t *p);

/* Builds a binary node, checking and settling types; frees a and b on error. */
static node_t *make_bin(parser_t *p, int op, node_t *a, node_t *b, size_t pos) {
    char da[320], db[320];
    if (!a || !b) goto fail;
    if (op == OP_AND || op == OP_OR) {
        set_null_type(a, DT_BOOL);
        set_null_type(b, DT_BOOL);
        if (a->type != DT_BOOL || b->type != DT_BOOL) {
            node_t *bad = a->type != DT_BOOL ? a : b;
            describe(p, bad, da, sizeof da);
            perr(p, pos, "'%s' needs bool operands, got %s", op_names[op], da);
            goto fail;
        }
    } else {
        if (a->type == T_NULL && b->type == T_NULL) {
            set_null_type(a, DT_INT64);
            set_null_type(b, DT_INT64);
        }
        /* null takes the other side's type, except next to a timestamp in timestamp + null,
         * null + timestamp and timestamp - null, where it is the int64 that keeps the result a
         * timestamp */
        bool tsarith = op == OP_ADD || op == OP_SUB;
        set_null_type(a, op == OP_ADD && b->type == DT_TIMESTAMP ? DT_INT64 : b->type);
        set_null_type(b, tsarith && a->type == DT_TIMESTAMP ? DT_INT64 : a->type);
    }
    dt_type_t ta = a->type, tb = b->type, rt;
    describe(p, a, da, sizeof da);
    describe(p, b, db, sizeof db);
    if (op >= OP_EQ && op <= OP_GE) {
        bool ok = (is_num(ta) && is_num(tb)) || (ta == tb && ta != DT_FLOAT64 && ta != DT_INT64);
        if (!ok) {
            perr(p, pos, "cannot compare %s with %s", da, db);
            goto fail;
        }
        if (ta != tb) {
            if (!(a = to_float(p, a)) || !(b = to_float(p, b))) goto fail;
        }
        rt = DT_BOOL;
    } else if (op == OP_AND || op == OP_OR) {
        rt = DT_BOOL;
    } else if (is_num(ta) && is_num(tb)) {
        if (ta != tb) {
            if (!(a = to_float(p, a)) || !(b = to_float(p, b))) goto fail;
        }
        rt = (op == OP_DIV) ? DT_FLOAT64 : a->type;
    } else if (ta == DT_TIMESTAMP && tb == DT_TIMESTAMP && op == OP_SUB) {
        rt = DT_INT64;
    } else if (ta == DT_TIMESTAMP && tb == DT_INT64 && (op == OP_ADD || op == OP_SUB)) {
        rt = DT_TIMESTAMP;
    } else if (ta == DT_INT64 && tb == DT_TIMESTAMP && op == OP_ADD) {
        rt = DT_TIMESTAMP;
    } else {
        perr(p, pos, "cannot apply '%s' to %s and %s", op_names[op], da, db);
        goto fail;
    }
    node_t *n = node_new(p, K_BIN, rt);
    if (!n) goto fail;
    n->op = op;
    return adopt(p, n, a, b);
fail:
    node_free(a);
    node_free(b);
    return NULL;
}

/* A string literal or quoted name starting at p->pos (on the quote q); the text without the
 * quotes, doubled quotes undone, malloc'ed. */
static char *parse_quoted(parser_t *p, char q, size_t *len_out) {
    size_t start = p->pos, k = p->pos + 1, len = 0;
    for (;; k++) {
        if (!p->text[k]) {
            perr(p, start, q == '\'' ? "unterminated string" : "unterminated quoted name");
            return NULL;
        }
        if (p->text[k] == q) {
            if (p->text[k + 1] != q) break;
            k++;
        }
        len++;
    }
    char *s = malloc(len + 1);
    if (!s) {
        perr(p, start, "out of memory");
        return NULL;
    }
    size_t j = 0;
    for (size_t r = start + 1; r < k; r++) {
        s[j++] = p->text[r];
        if (p->text[r] == q) r++;
    }
    s[j] = 0;
    p->pos = k + 1;
    *len_out = len;
    return s;
}

static node_t *parse_column(parser_t *p, const char *name, size_t len, size_t pos) {
    for (int c = 0; c < p->ncols; c++) {
        if (strlen(p->names[c]) == len && memcmp(p->names[c], name, len) == 0) {
            node_t *n = node_new(p, K_COL, p->types[c]);
            if (!n) return NULL;
            n->col = c;
            p->used[c] = true;
            return n;
        }
    }
    char list[1024];
    size_t k = 0;
    list[0] = 0;
    for (int c = 0; c < p->ncols && k < sizeof list; c++) {
        int w = snprintf(list + k, sizeof list - k, "%s%s", c ? ", " : "", p->names[c]);
        if (w < 0) break;
        k += (size_t)w;
    }
    perr(p, pos, "unknown column '%.*s' (columns: %s)", (int)len, name, list);
    return NULL;
}

static node_t *parse_func(parser_t *p, const char *name, size_t len, size_t pos) {
    int f = -1;
    for (int k = 0; k < (int)(sizeof fn_names / sizeof fn_names[0]); k++)
        if (strlen(fn_names[k]) == len && strncasecmp(fn_names[k], name, len) == 0) f = k;
    if (f < 0) {
        perr(p, pos, "unknown function '%.*s'", (int)len, name);
        return NULL;
    }
    /* p->pos is after '(' */
    if (f == F_TS) {
        skip_ws(p);
        size_t spos = p->pos;
        if (p->text[p->pos] != '\'') {
            perr(p, spos, "ts() takes a string literal");
            return NULL;
        }
        size_t slen;
        char *s = parse_quoted(p, '\'', &slen);
        if (!s) return NULL;
        int64_t v;
        bool ok = strlen(s) == slen && dt_parse_timestamp(s, slen, &v);
        if (!ok) perr(p, spos, "invalid timestamp '%s'", s);
        dt_free(s);
        if (!ok) return NULL;
        if (!accept(p, ")")) {
            perr(p, p->pos, "expected ')'");
            return NULL;
        }
        node_t *n = node_new(p, K_LIT, DT_TIMESTAMP);
        if (n) n->i = v;
        return n;
    }
    node_t *args[2] = {NULL, NULL};
    int nargs = 0, want = f == F_COALESCE ? 2 : 1;
    skip_ws(p);
    if (!accept(p, ")")) {
        for (;;) {
            node_t *a = parse_or(p);
            if (!a) goto fail;
            if (nargs < 2)
                args[nargs] = a;
            else
                node_free(a);
            nargs++;
            if (accept(p, ")")) break;
            if (!accept(p, ",")) {
                perr(p, p->pos, "expected ',' or ')'");
                goto fail;
            }
        }
    }
    if (nargs != want) {
        perr(p, pos, "%s() takes %d argument%s, got %d", fn_names[f], want, want > 1 ? "s" : "",
             nargs);
        goto fail;
    }
    node_t *a = args[0], *b = args[1];
    char da[320], db[320];
    dt_type_t rt;
    if (f == F_COALESCE) {
        if (a->type == T_NULL && b->type == T_NULL) set_null_type(a, DT_BOOL);
        set_null_type(a, b->type);
        set_null_type(b, a->type);
        if (is_num(a->type) && is_num(b->type) && a->type != b->type) {
            args[0] = NULL;
            args[1] = NULL;
            if (!(a = to_float(p, a))) {
                node_free(b);
                return NULL;
            }
            if (!(b = to_float(p, b))) {
                node_free(a);
                return NULL;
            }
            args[0] = a;
            args[1] = b;
        }
        if (a->type != b->type) {
            describe(p, a, da, sizeof da);
            describe(p, b, db, sizeof db);
            perr(p, pos, "coalesce() of %s and %s", da, db);
            goto fail;
        }
        rt = a->type;
    } else {
        bool strf = f == F_LOWER || f == F_UPPER || f == F_LENGTH;
        set_null_type(a, strf ? DT_STRING : f == F_SQRT ? DT_FLOAT64 : DT_INT64);
        if (strf ? a->type != DT_STRING : !is_num(a->type)) {
            describe(p, a, da, sizeof da);
            perr(p, pos, "%s() takes a %s, got %s", fn_names[f], strf ? "string" : "number", da);
            goto fail;
        }
        if (f == F_SQRT) {
            args[0] = NULL;
            if (!(a = to_float(p, a))) return NULL;
            args[0] = a;
        }
        rt = f == F_LENGTH ? DT_INT64 : a->type;
    }
    node_t *n = node_new(p, K_FUNC, rt);
    if (!n) goto fail;
    n->op = f;
    return adopt(p, n, a, b);
fail:
    node_free(args[0]);
    node_free(args[1]);
    return NULL;
}

static node_t *parse_number(parser_t *p, bool negate) {
    const char *t = p->text + p->pos;
    size_t k = 0;
    bool isf = false;
    while (isdigit((unsigned char)t[k]))
        k++;
    if (t[k] == '.') {
        isf = true;
        k++;
        while (isdigit((unsigned char)t[k]))
            k++;
    }
    if (t[k] == 'e' || t[k] == 'E') {
        isf = true;
        size_t e = k + 1;
        if (t[e] == '+' || t[e] == '-') e++;
        if (!isdigit((unsigned char)t[e])) {
            perr(p, p->pos, "invalid number '%.*s'", (int)e, t);
            return NULL;
        }
        while (isdigit((unsigned char)t[e]))
            e++;
        k = e;
    }
    if (is_ident_char(t[k]) || (k == 1 && t[0] == '.')) {
        size_t e = k;
        while (is_ident_char(t[e]) || t[e] == '.')
            e++;
        perr(p, p->pos, "invalid number '%.*s'", (int)e, t);
        return NULL;
    }
    node_t *n = node_new(p, K_LIT, isf ? DT_FLOAT64 : DT_INT64);
    if (!n) return NULL;
    if (isf) {
        n->f = strtod(t, NULL);
        if (negate) n->f = -n->f;
    } else {
        uint64_t v = 0;
        bool over = false;
        for (size_t j = 0; j < k; j++) {
            if (v > (UINT64_MAX - 9) / 10) over = true;
            v = v * 10 + (uint64_t)(t[j] - '0');
        }
        uint64_t lim = negate ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (over || v > lim) {
            perr(p, p->pos, "integer %.*s out of range", (int)k, t);
            dt_free(n);
            return NULL;
        }
        n->i = negate ? (int64_t)(0 - v) : (int64_t)v;
    }
    p->pos += k;
    return n;
}

static node_t *parse_primary(parser_t *p) {
    skip_ws(p);
    size_t pos = p->pos;
    const char *t = p->text + pos;
    char c = *t;
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)t[1])))
        return parse_number(p, false);
    if (c == '\'') {
        size_t len;
        char *s = parse_quoted(p, '\'', &len);
        if (!s) return NULL;
        node_t *n = node_new(p, K_LIT, DT_STRING);
        if (!n) {
            dt_free(s);
            return NULL;
        }
        n->s = s;
        n->slen = len;
        return n;
    }
    if (c == '"') {
        size_t len;
        char *s = parse_quoted(p, '"', &len);
        if (!s) return NULL;
        node_t *n = parse_column(p, s, len, pos);
        dt_free(s);
        return n;
    }
    if (c == '(') {
        p->pos++;
        node_t *n = parse_or(p);
        if (!n) return NULL;
        if (!accept(p, ")")) {
            perr(p, p->pos, "expected ')'");
            node_free(n);
            return NULL;
        }
        return n;
    }
    if (is_ident_start(c)) {
        size_t len = 0;
        while (is_ident_char(t[len]))
            len++;
        if (len == 4 && strncasecmp(t, "true", 4) == 0) {
            p->pos += len;
            node_t *n = node_new(p, K_LIT, DT_BOOL);
            if (n) n->i = 1;
            return n;
        }
        if (len == 5 && strncasecmp(t, "false", 5) == 0) {
            p->pos += len;
            return node_new(p, K_LIT, DT_BOOL);
        }
        if (len == 4 && strncasecmp(t, "null", 4) == 0) {
            p->pos += len;
            node_t *n = node_new(p, K_LIT, T_NULL);
            if (n) n->lnull = true;
            return n;
        }
        if (is_keyword(t, len)) {
            perr(p, pos, "expected a value");
            return NULL;
        }
        p->pos += len;
        if (accept(p, "(")) return parse_func(p, t, len, pos);
        return parse_column(p, t, len, pos);
    }
    perr(p, pos, "expected a value");
    return NULL;
}

static node_t *parse_unary(parser_t *p) {
    skip_ws(p);
    size_t pos = p->pos;
    if (p->text[pos] == '-') {
        p->pos++;
        skip_ws(p);
        if (isdigit((unsigned char)p->text[p->pos]) ||
            (p->text[p->pos] == '.' && isdigit((unsigned char)p->text[p->pos + 1])))
            return parse_number(p, true); /* so that -9223372036854775808 is a literal */
        if (!enter(p)) return NULL;
        node_t *a = parse_unary(p);
        p->nest--;
        if (!a) return NULL;
        set_null_type(a, DT_INT64);
        if (!is_num(a->type)) {
            char da[320];
            describe(p, a, da, sizeof da);
            perr(p, pos, "cannot negate %s", da);
            node_free(a);
            return NULL;
        }
        node_t *n = node_new(p, K_NEG, a->type);
        if (!n) {
            node_free(a);
            return NULL;
        }
        return adopt(p, n, a, NULL);
    }
    return parse_primary(p);
}

static node_t *parse_mul(parser_t *p) {
    node_t *a = parse_unary(p);
    while (a) {
        skip_ws(p);
        size_t pos = p->pos;
        int op;
        if (accept(p, "*"))
            op = OP_MUL;
        else if (accept(p, "/"))
            op = OP_DIV;
        else if (accept(p, "%"))
            op = OP_MOD;
        else
            break;
        a = make_bin(p, op, a, parse_unary(p), pos);
    }
    return a;
}

static node_t *parse_add(parser_t *p) {
    node_t *a = parse_mul(p);
    while (a) {
        skip_ws(p);
        size_t pos = p->pos;
        int op;
        if (accept(p, "+"))
            op = OP_ADD;
        else if (accept(p, "-"))
            op = OP_SUB;
        else
            break;
        a = make_bin(p, op, a, parse_mul(p), pos);
    }
    return a;
}

static node_t *parse_cmp(parser_t *p) {
    node_t *a = parse_add(p);
    while (a) {
        skip_ws(p);
        size_t pos = p->pos;
        int op;
        if (accept_kw(p, "is")) {
            bool neg = accept_kw(p, "not");
            if (!accept_kw(p, "null")) {
                skip_ws(p);
                perr(p, p->pos, "expected 'null'");
                node_free(a);
                return NULL;
            }
            set_null_type(a, DT_BOOL);
            node_t *n = node_new(p, neg ? K_NOTNULL : K_ISNULL, DT_BOOL);
            if (!n) {
                node_free(a);
                return NULL;
            }
            a = adopt(p, n, a, NULL);
            continue;
        }
        if (accept(p, "==") || accept(p, "="))
            op = OP_EQ;
        else if (accept(p, "!=") || accept(p, "<>"))
            op = OP_NE;
        else if (accept(p, "<="))
            op = OP_LE;
        else if (accept(p, ">="))
            op = OP_GE;
        else if (accept(p, "<"))
            op = OP_LT;
        else if (accept(p, ">"))
            op = OP_GT;
        else
            break;
        a = make_bin(p, op, a, parse_add(p), pos);
    }
    return a;
}

static node_t *parse_not(parser_t *p) {
    skip_ws(p);
    size_t pos = p->pos;
    if (accept_kw(p, "not")) {
        if (!enter(p)) return NULL;
        node_t *a = parse_not(p);
        p->nest--;
        if (!a) return NULL;
        set_null_type(a, DT_BOOL);
        if (a->type != DT_BOOL) {
            char da[320];
            describe(p, a, da, sizeof da);
            perr(p, pos, "'not' needs a bool operand, got %s", da);
            node_free(a);
            return NULL;
        }
        node_t *n = node_new(p, K_NOT, DT_BOOL);
        if (!n) {
            node_free(a);
            return NULL;
        }
        return adopt(p, n, a, NULL);
    }
    return parse_cmp(p);
}

static node_t *parse_and(parser_t *p) {
    node_t *a = parse_not(p);
    while (a) {
        skip_ws(p);
        size_t pos = p->pos;
        if (!accept_kw(p, "and")) break;
        a = make_bin(p, OP_AND, a, parse_not(p), pos);
    }
    return a;
}

static node_t *parse_or(parser_t *p) {
    if (!enter(p)) return NULL; /* '(' and function arguments recurse through here */
    node_t *a = parse_and(p);
    while (a) {
        skip_ws(p);
        size_t pos = p->pos;
        if (!accept_kw(p, "or")) break;
        a = make_bin(p, OP_OR, a, parse_and(p), pos);
    }
    p->nest--;
    return a;
}

dt_expr_t *dt_expr_parse(const char *text, int ncols, const char *const *names,
                         const dt_type_t *types, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!text || ncols < 0 || (ncols > 0 && (!names || !types))) {
        if (err && errlen) snprintf(err, errlen, "dt_expr_parse: invalid arguments");
        return NULL;
    }
    parser_t p = {
        .text = text, .ncols = ncols, .names = names, .types = types, .err = err, .errlen = errlen};
    p.used = calloc((size_t)ncols + 1, sizeof *p.used);
    if (!p.used) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dt_expr_t *e = NULL;
    node_t *root = parse_or(&p);
    if (root) {
        skip_ws(&p);
        if (text[p.pos]) {
            const char *t = text + p.pos;
            size_t len = 1;
            if (is_ident_char(*t))
                while (is_ident_char(t[len]))
                    len++;
            perr(&p, p.pos, "unexpected '%.*s'", (int)len, t);
            goto done;
        }
        set_null_type(root, DT_BOOL);
        e = calloc(1, sizeof *e);
        if (!e) goto oom;
        e->root = root;
        root = NULL;
        int nu = 0;
        for (int c = 0; c < ncols; c++)
            nu += p.used[c];
        e->cols_used = calloc((size_t)nu + 1, sizeof *e->cols_used);
        e->used_names = calloc((size_t)nu + 1, sizeof *e->used_names);
        e->used_types = calloc((size_t)nu + 1, sizeof *e->used_types);
        if (!e->cols_used || !e->used_names || !e->used_types) goto oom;
        for (int c = 0; c < ncols; c++) {
            if (!p.used[c]) continue;
            e->cols_used[e->ncols_used] = c;
            e->used_types[e->ncols_used] = types[c];
            e->used_names[e->ncols_used] = strdup(names[c]);
            if (!e->used_names[e->ncols_used++]) goto oom;
        }
    }
    goto done;
oom:
    perr(&p, 0, "out of memory");
    dt_expr_free(e);
    e = NULL;
done:
    node_free(root);
    dt_free(p.used);
    return e;
}

void dt_expr_free(dt_expr_t *e) {
    if (!e) return;
    node_free(e->root);
    for (int k = 0; k < e->ncols_used; k++)
        dt_free(e->used_names[k]);
    dt_free(e->used_names);
    dt_free(e->used_types);
    dt_free(e->cols_used);
    dt_free(e);
}

dt_type_t dt_expr_type(const dt_expr_t *e) {
    return e->root->type;
}

const int *dt_expr_columns(const dt_expr_t *e, int *n) {
    *n = e->ncols_used;
    return e->cols_used;
}

/* ---------------------------------------------------------------------------------------- */
/* Evaluation                                                                               */

typedef struct ectx {
    const dt_column_t *cols;
    int64_t n;
} ectx_t;

static size_t bm_bytes(int64_t n) {
    return (size_t)((n + 7) / 8);
}

/* A bitmap of n rows all valid (padding bits clear). */
static uint8_t *bm_ones(int64_t n) {
    size_t nb = bm_bytes(n);
    uint8_t *v = malloc(nb ? nb : 1);
    if (!v) return NULL;
    memset(v, 0xff, nb);
    if (n & 7) v[nb - 1] = (uint8_t)((1u << (n & 7)) - 1);
    return v;
}

/* *out = a AND b (either may be NULL: all valid), word-wise. */
static int bm_and(const uint8_t *a, const uint8_t *b, int64_t n, uint8_t **out) {
    *out = NULL;
    if (!a && !b) return 0;
    size_t nb = bm_bytes(n);
    uint8_t *v = malloc(nb ? nb : 1);
    if (!v) return -ENOMEM;
    if (!a || !b) {
        memcpy(v, a ? a : b, nb);
    } else {
        size_t k = 0;
        for (; k + 8 <= nb; k += 8) {
            uint64_t x, y;
            memcpy(&x, a + k, 8);
            memcpy(&y, b + k, 8);
            x &= y;
            memcpy(v + k, &x, 8);
        }
        for (; k < nb; k++)
            v[k] = a[k] & b[k];
    }
    *out = v;
    return 0;
}

/* Clears the validity of the rows with bad[i] set (allocating the bitmap if needed). */
static int bm_clear_bad(uint8_t **valid, const uint8_t *bad, int64_t n) {
    uint8_t any = 0;
    for (int64_t i = 0; i < n; i++)
        any |= bad[i];
    if (!any) return 0;
    if (!*valid && !(*valid = bm_ones(n))) return -ENOMEM;
    for (int64_t i = 0; i < n; i++)
        (*valid)[i >> 3] &= (uint8_t) ~((unsigned)bad[i] << (i & 7));
    return 0;
}

static bool bm_get(const uint8_t *v, int64_t i) {
    return !v || (v[i >> 3] >> (i & 7) & 1);
}

static size_t elem_size(dt_type_t t) {
    return t == DT_BOOL ? 1 : 8;
}

/* A fixed-width column of n rows, values uninitialized, no bitmap. */
static int col_alloc(dt_column_t *c, dt_type_t t, int64_t n) {
    memset(c, 0, sizeof *c);
    c->type = t;
    c->n = n;
    c->values = dt_alloc(n ? (size_t)n * elem_size(t) : 1);
    return c->values ? 0 : -ENOMEM;
}

static int ev(const node_t *nd, const ectx_t *x, dt_column_t *out, bool *owned);

/* Evaluates both children; on error frees what it made. */
static int ev2(const node_t *nd, const ectx_t *x, dt_column_t *a, bool *oa, dt_column_t *b,
               bool *ob) {
    int rc = ev(nd->a, x, a, oa);
    if (rc) return rc;
    rc = ev(nd->b, x, b, ob);
    if (rc && *oa) dt_column_free(a);
    return rc;
}

static int ev_lit(const node_t *nd, const ectx_t *x, dt_column_t *out) {
    int64_t n = x->n;
    memset(out, 0, sizeof *out);
    out->type = nd->type;
    out->n = n;
    if (nd->type == DT_STRING) {
        size_t len = nd->lnull ? 0 : nd->slen;
        out->offsets = dt_alloc((size_t)(n + 1) * sizeof *out->offsets);
        out->values = dt_alloc(len * (size_t)n + 1);
        if (!out->offsets || !out->values) goto oom;
        for (int64_t i = 0; i <= n; i++)
            out->offsets[i] = i * (int64_t)len;
        for (int64_t i = 0; i < n && len; i++)
            memcpy((char *)out->values + i * len, nd->s, len);
        out->nbytes = len * (size_t)n;
    } else {
        if (col_alloc(out, nd->type, n)) goto oom;
        if (nd->type == DT_FLOAT64) {
            double *v = out->values;
            for (int64_t i = 0; i < n; i++)
                v[i] = nd->lnull ? 0.0 : nd->f;
        } else if (nd->type == DT_BOOL) {
            memset(out->values, nd->lnull ? 0 : (int)nd->i, (size_t)n);
        } else {
            int64_t *v = out->values;
            for (int64_t i = 0; i < n; i++)
                v[i] = nd->lnull ? 0 : nd->i;
        }
    }
    if (nd->lnull) {
        out->valid = calloc(bm_bytes(n) + 1, 1);
        if (!out->valid) goto oom;
    }
    return 0;
oom:
    dt_column_free(out);
    return -ENOMEM;
}

static int cmp_bytes(const uint8_t *a, int64_t la, const uint8_t *b, int64_t lb) {
    int64_t m = la < lb ? la : lb;
    int c = m ? memcmp(a, b, (size_t)m) : 0;
    if (c) return c;
    return (la > lb) - (la < lb);
}

#define CMP_LOOP(T, EXPR)                                                                          \
    do {                                                                                           \
        const T *av = A.values, *bv = B.values;                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T l = av[i], r = bv[i];                                                                \
            rv[i] = (uint8_t)(EXPR);                                                               \
        }                                                                                          \
    } while (0)

static int ev_cmp(int op, const dt_column_t A, const dt_column_t B, int64_t n, uint8_t *rv) {
    if (A.type == DT_STRING) {
        const uint8_t *as = A.values, *bs = B.values;
        for (int64_t i = 0; i < n; i++) {
            int c = cmp_bytes(as + A.offsets[i], A.offsets[i + 1] - A.offsets[i], bs + B.offsets[i],
                              B.offsets[i + 1] - B.offsets[i]);
            switch (op) {
            case OP_EQ:
                rv[i] = c == 0;
                break;
            case OP_NE:
                rv[i] = c != 0;
                break;
            case OP_LT:
                rv[i] = c < 0;
                break;
            case OP_LE:
                rv[i] = c <= 0;
                break;
            case OP_GT:
                rv[i] = c > 0;
                break;
            default:
                rv[i] = c >= 0;
                break;
            }
        }
        return 0;
    }
#define CMP_TYPED(T)                                                                               \
    switch (op) {                                                                                  \
    case OP_EQ:                                                                                    \
        CMP_LOOP(T, l == r);                                                                       \
        break;                                                                                     \
    case OP_NE:                                                                                    \
        CMP_LOOP(T, l != r);                                                                       \
        break;                                                                                     \
    case OP_LT:                                                                                    \
        CMP_LOOP(T, l < r);                                                                        \
        break;                                                                                     \
    case OP_LE:                                                                                    \
        CMP_LOOP(T, l <= r);                                                                       \
        break;                                                                                     \
    case OP_GT:                                                                                    \
        CMP_LOOP(T, l > r);                                                                        \
        break;                                                                                     \
    default:                                                                                       \
        CMP_LOOP(T, l >= r);                                                                       \
        break;                                                                                     \
    }
    if (A.type == DT_FLOAT64) {
        CMP_TYPED(double)
    } else if (A.type == DT_BOOL) {
        CMP_TYPED(uint8_t)
    } else {
        CMP_TYPED(int64_t)
    }
#undef CMP_TYPED
    return 0;
}

/* Integer arithmetic: values in rv, overflowing / undefined rows flagged in bad. */
static void ev_int_arith(int op, const int64_t *a, const int64_t *b, int64_t n, int64_t *rv,
                         uint8_t *bad) {
    switch (op) {
    case OP_ADD:
        for (int64_t i = 0; i < n; i++)
            bad[i] = __builtin_add_overflow(a[i], b[i], &rv[i]);
        break;
    case OP_SUB:
        for (int64_t i = 0; i < n; i++)
            bad[i] = __builtin_sub_overflow(a[i], b[i], &rv[i]);
        break;
    case OP_MUL:
        for (int64_t i = 0; i < n; i++)
            bad[i] = __builtin_mul_overflow(a[i], b[i], &rv[i]);
        break;
    default: /* OP_MOD */
        for (int64_t i = 0; i < n; i++) {
            int64_t d = b[i];
            bad[i] = d == 0;
            /* x % -1 is 0 for every x; INT64_MIN % -1 would trap */
            rv[i] = (d == 0 || d == -1) ? 0 : a[i] % d;
        }
        break;
    }
}

static int ev_bin(const node_t *nd, const ectx_t *x, dt_column_t *out) {
    int64_t n = x->n;
    dt_column_t A, B, R;
    bool oa, ob;
    int rc = ev2(nd, x, &A, &oa, &B, &ob);
    if (rc) return rc;
    uint8_t *bad = NULL;
    memset(&R, 0, sizeof R);
    if (col_alloc(&R, nd->type, n)) goto oom;
    int op = nd->op;
    if (op == OP_AND || op == OP_OR) {
        /* three-valued: a known false (and) / true (or) operand decides the row */
        const uint8_t *av = A.values, *bv = B.values;
        uint8_t *rv = R.values;
        uint8_t dom = op == OP_OR; /* the deciding value */
        if (!A.valid && !B.valid) {
            if (op == OP_AND)
                for (int64_t i = 0; i < n; i++)
                    rv[i] = av[i] & bv[i];
            else
                for (int64_t i = 0; i < n; i++)
                    rv[i] = av[i] | bv[i];
        } else {
            if (!(R.valid = bm_ones(n))) goto oom;
            for (int64_t i = 0; i < n; i++) {
                uint8_t va = bm_get(A.valid, i), vb = bm_get(B.valid, i);
                uint8_t da = va & (av[i] == dom), db = vb & (bv[i] == dom);
                uint8_t valid = (va & vb) | da | db;
                rv[i] = (da | db) ? dom : (uint8_t)(op == OP_AND ? av[i] & bv[i] : av[i] | bv[i]);
                R.valid[i >> 3] &= (uint8_t) ~((unsigned)(!valid) << (i & 7));
            }
        }
        goto ok;
    }
    if (bm_and(A.valid, B.valid, n, &R.valid)) goto oom;
    if (op >= OP_EQ && op <= OP_GE) {
        ev_cmp(op, A, B, n, R.values);
        goto ok;
    }
    if (A.type == DT_FLOAT64) {
        const double *a = A.values, *b = B.values;
        double *rv = R.values;
        switch (op) {
        case OP_ADD:
            for (int64_t i = 0; i < n; i++)
                rv[i] = a[i] + b[i];
            break;
        case OP_SUB:
            for (int64_t i = 0; i < n; i++)
                rv[i] = a[i] - b[i];
            break;
        case OP_MUL:
            for (int64_t i = 0; i < n; i++)
                rv[i] = a[i] * b[i];
            break;
        case OP_DIV:
            for (int64_t i = 0; i < n; i++)
                rv[i] = a[i] / b[i];
            break;
        default:
            for (int64_t i = 0; i < n; i++)
                rv[i] = fmod(a[i], b[i]);
            break;
        }
        goto ok;
    }
    /* int64 and timestamp operands (both stored as int64_t) */
    const int64_t *a = A.values, *b = B.values;
    if (!(bad = dt_alloc(n ? (size_t)n : 1))) goto oom;
    if (op == OP_DIV) {
        double *rv = R.values;
        for (int64_t i = 0; i < n; i++) {
            bad[i] = b[i] == 0;
            rv[i] = (double)a[i] / (double)b[i];
        }
    } else {
        ev_int_arith(op, a, b, n, R.values, bad);
    }
    if (bm_clear_bad(&R.valid, bad, n)) goto oom;
ok:
    dt_free(bad);
    if (oa) dt_column_free(&A);
    if (ob) dt_column_free(&B);
    *out = R;
    return 0;
oom:
    dt_free(bad);
    dt_column_free(&R);
    if (oa) dt_column_free(&A);
    if (ob) dt_column_free(&B);
    return -ENOMEM;
}

/* Copies c's bitmap (or NULL). */
static int bm_dup(const dt_column_t *c, uint8_t **out) {
    return bm_and(c->valid, NULL, c->n, out);
}

static int ev_unary(const node_t *nd, const ectx_t *x, dt_column_t *out) {
    int64_t n = x->n;
    dt_column_t A, R;
    bool oa;
    int rc = ev(nd->a, x, &A, &oa);
    if (rc) return rc;
    uint8_t *bad = NULL;
    memset(&R, 0, sizeof R);
    if (nd->kind == K_ISNULL || nd->kind == K_NOTNULL) {
        if (col_alloc(&R, DT_BOOL, n)) goto oom;
        uint8_t *rv = R.values, want = nd->kind == K_NOTNULL;
        for (int64_t i = 0; i < n; i++)
            rv[i] = bm_get(A.valid, i) == want;
        goto ok;
    }
    if (nd->kind == K_FUNC && (nd->op == F_LOWER || nd->op == F_UPPER)) {
        R.type = DT_STRING;
        R.n = n;
        R.nbytes = A.nbytes;
        R.offsets = dt_alloc((size_t)(n + 1) * sizeof *R.offsets);
        R.values = dt_alloc(A.nbytes + 1);
        if (!R.offsets || !R.values || bm_dup(&A, &R.valid)) goto oom;
        R.offsets[0] = 0; /* a zero-row input may come without offsets */
        if (n) memcpy(R.offsets, A.offsets, (size_t)(n + 1) * sizeof *R.offsets);
        const uint8_t *s = A.values;
        uint8_t *d = R.values;
        if (nd->op == F_LOWER)
            for (size_t k = 0; k < A.nbytes; k++)
                d[k] = (s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k];
        else
            for (size_t k = 0; k < A.nbytes; k++)
                d[k] = (s[k] >= 'a' && s[k] <= 'z') ? s[k] - 32 : s[k];
        goto ok;
    }
    if (col_alloc(&R, nd->type, n) || bm_dup(&A, &R.valid)) goto oom;
    if (nd->kind == K_NOT) {
        const uint8_t *a = A.values;
        uint8_t *rv = R.values;
        for (int64_t i = 0; i < n; i++)
            rv[i] = !a[i];
    } else if (nd->kind == K_TOFLOAT) {
        const int64_t *a = A.values;
        double *rv = R.values;
        for (int64_t i = 0; i < n; i++)
            rv[i] = (double)a[i];
    } else if (nd->kind == K_FUNC && nd->op == F_LENGTH) {
        const uint8_t *s = A.values;
        int64_t *rv = R.values;
        for (int64_t i = 0; i < n; i++) {
            int64_t cnt = 0;
            for (int64_t k = A.offsets[i]; k < A.offsets[i + 1]; k++)
                cnt += (s[k] & 0xc0) != 0x80;
            rv[i] = cnt;
        }
    } else if (A.type == DT_FLOAT64) {
        const double *a = A.values;
        double *rv = R.values;
        int f = nd->kind == K_NEG ? -1 : nd->op;
        switch (f) {
        case -1:
            for (int64_t i = 0; i < n; i++)
                rv[i] = -a[i];
            break;
        case F_ABS:
            for (int64_t i = 0; i < n; i++)
                rv[i] = fabs(a[i]);
            break;
        case F_SQRT:
            for (int64_t i = 0; i < n; i++)
                rv[i] = sqrt(a[i]);
            break;
        case F_FLOOR:
            for (int64_t i = 0; i < n; i++)
                rv[i] = floor(a[i]);
            break;
        case F_CEIL:
            for (int64_t i = 0; i < n; i++)
                rv[i] = ceil(a[i]);
            break;
        default:
            for (int64_t i = 0; i < n; i++)
                rv[i] = round(a[i]);
            break;
        }
    } else { /* int64: unary minus or abs; INT64_MIN has no counterpart */
        const int64_t *a = A.values;
        int64_t *rv = R.values;
        if (!(bad = dt_alloc(n ? (size_t)n : 1))) goto oom;
        if (nd->kind == K_NEG)
            for (int64_t i = 0; i < n; i++)
                bad[i] = __builtin_sub_overflow(0, a[i], &rv[i]);
        else
            for (int64_t i = 0; i < n; i++) {
                bad[i] = a[i] == INT64_MIN;
                rv[i] = a[i] < 0 && !bad[i] ? -a[i] : a[i];
            }
        if (bm_clear_bad(&R.valid, bad, n)) goto oom;
    }
ok:
    dt_free(bad);
    if (oa) dt_column_free(&A);
    *out = R;
    return 0;
oom:
    dt_free(bad);
    dt_column_free(&R);
    if (oa) dt_column_free(&A);
    return -ENOMEM;
}

static int ev_coalesce(const node_t *nd, const ectx_t *x, dt_column_t *out, bool *owned) {
    int64_t n = x->n;
    dt_column_t A, B, R;
    bool oa, ob;
    int rc = ev2(nd, x, &A, &oa, &B, &ob);
    if (rc) return rc;
    memset(&R, 0, sizeof R);
    if (!A.valid) { /* every row of a is there: a passes through, owned or borrowed */
        if (ob) dt_column_free(&B);
        *out = A;
        *owned = oa;
        return 0;
    }
    R.type = nd->type;
    R.n = n;
    if (B.valid) {
        size_t nb = bm_bytes(n);
        if (!(R.valid = malloc(nb ? nb : 1))) goto oom;
        for (size_t k = 0; k < nb; k++)
            R.valid[k] = A.valid[k] | B.valid[k];
    }
    if (nd->type == DT_STRING) {
        R.offsets = dt_alloc((size_t)(n + 1) * sizeof *R.offsets);
        if (!R.offsets) goto oom;
        R.offsets[0] = 0;
        for (int64_t i = 0; i < n; i++) {
            const dt_column_t *s = bm_get(A.valid, i) ? &A : &B;
            R.offsets[i + 1] = R.offsets[i] + s->offsets[i + 1] - s->offsets[i];
        }
        R.nbytes = (size_t)R.offsets[n];
        if (!(R.values = dt_alloc(R.nbytes + 1))) goto oom;
        for (int64_t i = 0; i < n; i++) {
            const dt_column_t *s = bm_get(A.valid, i) ? &A : &B;
            if (R.offsets[i + 1] > R.offsets[i])
                memcpy((char *)R.values + R.offsets[i], (const char *)s->values + s->offsets[i],
                       (size_t)(s->offsets[i + 1] - s->offsets[i]));
        }
    } else {
        size_t es = elem_size(nd->type);
        if (!(R.values = dt_alloc(n ? (size_t)n * es : 1))) goto oom;
        if (es == 1) {
            const uint8_t *a = A.values, *b = B.values;
            uint8_t *r = R.values;
            for (int64_t i = 0; i < n; i++)
                r[i] = bm_get(A.valid, i) ? a[i] : b[i];
        } else {
            const uint64_t *a = A.values, *b = B.values;
            uint64_t *r = R.values;
            for (int64_t i = 0; i < n; i++)
                r[i] = bm_get(A.valid, i) ? a[i] : b[i];
        }
    }
    if (oa) dt_column_free(&A);
    if (ob) dt_column_free(&B);
    *out = R;
    return 0;
oom:
    dt_column_free(&R);
    if (oa) dt_column_free(&A);
    if (ob) dt_column_free(&B);
    return -ENOMEM;
}

static int ev(const node_t *nd, const ectx_t *x, dt_column_t *out, bool *owned) {
    *owned = true;
    switch (nd->kind) {
    case K_COL:
        *out = x->cols[nd->col];
        *owned = false;
        return 0;
    case K_LIT:
        return ev_lit(nd, x, out);
    case K_BIN:
        return ev_bin(nd, x, out);
    case K_FUNC:
        if (nd->op == F_COALESCE) return ev_coalesce(nd, x, out, owned);
        if ((nd->op == F_FLOOR || nd->op == F_CEIL || nd->op == F_ROUND) && nd->type == DT_INT64)
            return ev(nd->a, x, out, owned); /* identity on integers */
        return ev_unary(nd, x, out);
    default:
        return ev_unary(nd, x, out);
    }
}

/* The root's result as column.h wants it: owned buffers, null rows' values zeroed, no bitmap
 * when no row is null. */
static int finish(dt_column_t *c) {
    if (!c->valid) return 0;
    int64_t n = c->n;
    bool any_null = false;
    for (int64_t i = 0; i < n; i++)
        any_null |= !bm_get(c->valid, i);
    if (!any_null) {
        dt_free(c->valid);
        c->valid = NULL;
        return 0;
    }
    if (c->type == DT_STRING) { /* compact: null rows become empty */
        int64_t w = 0;
        char *s = c->values;
        for (int64_t i = 0; i < n; i++) {
            int64_t st = c->offsets[i], len = c->offsets[i + 1] - st;
            if (!bm_get(c->valid, i)) len = 0;
            memmove(s + w, s + st, (size_t)len);
            c->offsets[i] = w;
            w += len;
        }
        c->offsets[n] = w;
        c->nbytes = (size_t)w;
    } else if (c->type == DT_BOOL) {
        uint8_t *v = c->values;
        for (int64_t i = 0; i < n; i++)
            v[i] &= (uint8_t)bm_get(c->valid, i);
    } else { /* 8-byte values; all-zero bits is 0 and 0.0 */
        uint64_t *v = c->values;
        for (int64_t i = 0; i < n; i++)
            v[i] &= -(uint64_t)bm_get(c->valid, i);
    }
    return 0;
}

static int col_copy(const dt_column_t *in, dt_column_t *out) {
    int64_t n = in->n;
    memset(out, 0, sizeof *out);
    out->type = in->type;
    out->n = n;
    size_t vb = in->type == DT_STRING ? in->nbytes : (size_t)n * elem_size(in->type);
    out->values = dt_alloc(vb ? vb : 1);
    if (!out->values || bm_dup(in, &out->valid)) goto oom;
    if (vb) memcpy(out->values, in->values, vb);
    if (in->type == DT_STRING) {
        out->nbytes = in->nbytes;
        out->offsets = dt_alloc((size_t)(n + 1) * sizeof *out->offsets);
        if (!out->offsets) goto oom;
        out->offsets[0] = 0;
        if (n) memcpy(out->offsets, in->offsets, (size_t)(n + 1) * sizeof *out->offsets);
    }
    return 0;
oom:
    dt_column_free(out);
    return -ENOMEM;
}

int dt_expr_eval(const dt_expr_t *e, const dt_column_t *cols, int64_t nrows, dt_column_t *out,
                 char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!e || nrows < 0 || (e->ncols_used && !cols) || !out) {
        if (err && errlen) snprintf(err, errlen, "dt_expr_eval: invalid arguments");
        return -EINVAL;
    }
    for (int k = 0; k < e->ncols_used; k++) {
        const dt_column_t *c = &cols[e->cols_used[k]];
        if (c->type != e->used_types[k] || c->n != nrows ||
            (nrows > 0 && (!c->values || (c->type == DT_STRING && !c->offsets)))) {
            if (err && errlen)
                snprintf(err, errlen,
                         "column '%s' is %s with %lld rows, the expression expects %s with %lld",
                         e->used_names[k], dt_type_name(c->type), (long long)c->n,
                         dt_type_name(e->used_types[k]), (long long)nrows);
            return -EINVAL;
        }
    }
    ectx_t x = {.cols = cols, .n = nrows};
    dt_column_t R;
    bool owned;
    int rc = ev(e->root, &x, &R, &owned);
    if (!rc && !owned) { /* the expression is a bare column: copy it */
        dt_column_t src = R;
        rc = col_copy(&src, &R);
    }
    if (!rc) rc = finish(&R);
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "dt_expr_eval: out of memory");
        return rc;
    }
    *out = R;
    return 0;
}

int64_t dt_filter_select(const dt_column_t *pred, int64_t *rows_out) {
    if (!pred || pred->type != DT_BOOL || pred->n < 0) return -EINVAL;
    const uint8_t *v = pred->values;
    int64_t k = 0;
    /* branch-free: write every row, advance past the kept ones */
    for (int64_t i = 0; i < pred->n; i++) {
        rows_out[k] = i;
        k += (v[i] != 0) & bm_get(pred->valid, i);
    }
    return k;
}

int dt_column_take(const dt_column_t *in, const int64_t *rows, int64_t n, dt_column_t *out) {
    if (!in || n < 0 || (n > 0 && !rows) || !out) return -EINVAL;
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= in->n) return -EINVAL;
    dt_column_t R;
    memset(&R, 0, sizeof R);
    R.type = in->type;
    R.n = n;
    if (in->valid) {
        bool any_null = false;
        for (int64_t i = 0; i < n; i++)
            any_null |= !bm_get(in->valid, rows[i]);
        if (any_null) {
            if (!(R.valid = calloc(bm_bytes(n) + 1, 1))) goto oom;
            for (int64_t i = 0; i < n; i++)
                R.valid[i >> 3] |= (uint8_t)(bm_get(in->valid, rows[i]) << (i & 7));
        }
    }
    if (in->type == DT_STRING) {
        if (!(R.offsets = dt_alloc((size_t)(n + 1) * sizeof *R.offsets))) goto oom;
        R.offsets[0] = 0;
        for (int64_t i = 0; i < n; i++)
            R.offsets[i + 1] = R.offsets[i] + in->offsets[rows[i] + 1] - in->offsets[rows[i]];
        R.nbytes = (size_t)R.offsets[n];
        if (!(R.values = dt_alloc(R.nbytes + 1))) goto oom;
        for (int64_t i = 0; i < n; i++)
            if (R.offsets[i + 1] > R.offsets[i])
                memcpy((char *)R.values + R.offsets[i],
                       (const char *)in->values + in->offsets[rows[i]],
                       (size_t)(R.offsets[i + 1] - R.offsets[i]));
    } else if (in->type == DT_BOOL) {
        if (!(R.values = dt_alloc(n ? (size_t)n : 1))) goto oom;
        const uint8_t *s = in->values;
        uint8_t *d = R.values;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[rows[i]];
    } else {
        if (!(R.values = dt_alloc(n ? (size_t)n * 8 : 1))) goto oom;
        const uint64_t *s = in->values;
        uint64_t *d = R.values;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[rows[i]];
    }
    *out = R;
    return 0;
oom:
    dt_column_free(&R);
    return -ENOMEM;
}
