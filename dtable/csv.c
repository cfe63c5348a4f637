/* DTable's CSV reader core (csv.h): splitting a file among ranks, parsing records into
 * columns, inferring column types. No MPI, no runtime: the table layer calls these from tasks.
 *
 * The parallel split. Every rank reads its own byte range [start, end) of the file, cut at an
 * arbitrary offset, and must parse exactly the records that start in it. A record starts at
 * byte 0 (or after the header) and after every LF that lies outside quotes; so the one thing
 * a rank cannot know locally is whether its first byte lies inside a quoted field: a quoted
 * field may hold LFs, and only the quotes before the range decide. This is the problem of the
 * speculative, data-parallel CSV parsers (Mison; ParPaRaw, Stehle and Jacobsen, VLDB 2020):
 * each range is scanned from every state its parser may start in, recording for each start
 * state what the range does (its end state, where its record boundaries are); the per-range
 * summaries, a few bytes each, are then chained from the file's start, whose state is known,
 * and each range learns its true start state and so its true record starts.
 *
 * Why two states suffice, and why the answer is exact. In the dialect we accept (RFC 4180,
 * csv.h), a quote byte occurs only as a quoted field's opening quote, as its closing quote,
 * or as one of a doubled pair inside it. Each of these flips "inside quotes" exactly as the
 * parity of the quotes seen so far does: opening -> odd, a doubled pair -> odd again,
 * closing -> even. So "is byte i inside quotes" is the parity of the quote bytes before i,
 * a function of two states whose transition over a range is "flip when the range holds an
 * odd number of quotes", and an LF is a record boundary exactly when the parity before it is
 * even. The scan computes, in one pass, the parity at every LF; for start state s (0 outside,
 * 1 inside) the LF is a boundary when parity == s. Chaining composes these maps, which is
 * exact: each range's start state is the true parity of the file before it. Lenient dialects
 * (a quote inside an unquoted field read as data, as Python's csv does) break the parity rule
 * and would need the scan to follow the tokenizer's whole automaton; we reject such input
 * instead. A file that breaks the rules is still caught: every range up to the first bad
 * record is split correctly, so the range holding that record starts right and its parse
 * reports it.
 *
 * Parsing a range is then sequential: from its first record start, record by record, until a
 * record starts at or past the range's end. The caller provides the bytes past the end that
 * complete the range's last record: up to the next range's first record start, which the
 * resolved scans give, or as found by dt_csv_record_end on reading on.
 *
 * Columns are built in growable buffers (one per column, rows appended together) and handed
 * over in column.h's layout; the validity bitmap is allocated at the first null, with the
 * rows before it marked valid. Floats are read with strtod_l in a "C" locale of our own, so
 * the process's LC_NUMERIC does not matter; integers, bools and timestamps by hand. Types
 * are inferred by parsing the sample's complete records as strings and trying each type,
 * narrowest first, on every non-null value of a column. */
#include "csv.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dt_csv_opts_init(dt_csv_opts_t *o) {
    if (!o) return;
    o->delim = ',';
    o->quote = '"';
    o->header = false;
    o->nulls = NULL;
    o->nnulls = 0;
    o->line_base = 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int check_opts(const dt_csv_opts_t *o, char *err, size_t errlen) {
    if (!o) {
        set_err(err, errlen, "no options");
        return DT_CSV_EFORMAT;
    }
    if (o->delim == o->quote || o->delim == '\n' || o->delim == '\r' || o->quote == '\n' ||
        o->quote == '\r' || o->delim == '\0' || o->quote == '\0') {
        set_err(err, errlen, "delimiter and quote must differ, be neither CR, LF nor NUL");
        return DT_CSV_EFORMAT;
    }
    if (o->nnulls < 0 || (o->nnulls > 0 && !o->nulls)) {
        set_err(err, errlen, "bad null markers");
        return DT_CSV_EFORMAT;
    }
    return DT_CSV_OK;
}

/* ---- the parallel split ---- */

void dt_csv_scan(const char *buf, size_t len, const dt_csv_opts_t *opts, dt_csv_scan_t *out) {
    const char q = opts ? opts->quote : '"';
    int64_t first[2] = {-1, -1}, last[2] = {-1, -1};
    int par = 0; /* parity of the quotes seen so far */
    int64_t nlf = 0;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t qq = ones * (unsigned char)q, lf = ones * (unsigned char)'\n';
    for (size_t i = 0; i < len; i++) {
        /* Words of 8 bytes holding neither a quote nor an LF (most of them) are skipped whole:
         * a byte of v ^ qq is zero where v holds a quote (the classic has-zero-byte test). */
        while (i + 8 <= len) {
            uint64_t v, a, b;
            memcpy(&v, buf + i, 8);
            a = v ^ qq;
            b = v ^ lf;
            if (((a - ones) & ~a & highs) | ((b - ones) & ~b & highs)) break;
            i += 8;
        }
        if (i >= len) break;
        char c = buf[i];
        if (c == q) {
            par ^= 1;
        } else if (c == '\n') {
            nlf++;
            if (i + 1 == len) continue;
            /* A boundary for start state s when the parity before it equals s. */
            if (first[par] < 0) first[par] = (int64_t)i + 1;
            last[par] = (int64_t)i + 1;
        }
    }
    out->len = (int64_t)len;
    out->nlf = nlf;
    for (int s = 0; s < 2; s++) {
        out->end_in_quotes[s] = (s ^ par) != 0;
        out->ends_record[s] = len > 0 && buf[len - 1] == '\n' && par == s;
        out->first_start[s] = first[s];
        out->last_start[s] = last[s];
    }
}

bool dt_csv_resolve(const dt_csv_scan_t *scans, int nchunks, const dt_csv_opts_t *opts,
                    int64_t *first_start, int64_t *last_start) {
    int state = 0;
    /* Whether the next byte starts a record: the file's first does, unless it is the header's. */
    bool at_record = !(opts && opts->header);
    for (int k = 0; k < nchunks; k++) {
        const dt_csv_scan_t *s = &scans[k];
        if (s->len == 0) { /* passes state and record start on */
            first_start[k] = last_start[k] = -1;
            continue;
        }
        first_start[k] = at_record ? 0 : s->first_start[state];
        last_start[k] = s->last_start[state] >= 0 ? s->last_start[state] : first_start[k];
        at_record = s->ends_record[state];
        state = s->end_in_quotes[state] ? 1 : 0;
    }
    return state == 0;
}

int64_t dt_csv_record_end(const char *buf, size_t len, size_t pos, const dt_csv_opts_t *opts,
                          bool in_quotes) {
    const char q = opts ? opts->quote : '"';
    int par = in_quotes ? 1 : 0;
    for (size_t i = pos; i < len; i++) {
        if (buf[i] == q)
            par ^= 1;
        else if (buf[i] == '\n' && par == 0)
            return (int64_t)i + 1;
    }
    return -1;
}

/* ---- the tokenizer ---- */

typedef struct field {
    const char *p; /* the field's text, in buf or in the scratch buffer */
    size_t n;
    bool quoted;
} field_t;

enum { TERM_DELIM, TERM_EOL, TERM_EOF };

typedef struct tok {
    const char *buf;
    size_t len;
    const dt_csv_opts_t *o;
    char *scratch; /* de-doubled quoted fields, NUL-terminated copies */
    size_t scap;
    /* For messages. */
    char *err;
    size_t errlen;
    int64_t base, recno;
    size_t recpos, begin; /* begin: where dt_csv_parse started, for line numbers */
    const char *const *names;
} tok_t;

static int grow_scratch(tok_t *t, size_t need) {
    if (need <= t->scap) return DT_CSV_OK;
    size_t cap = t->scap ? t->scap : 64;
    while (cap < need)
        cap *= 2;
    char *p = dt_realloc(t->scratch, cap);
    if (!p) return DT_CSV_ENOMEM;
    t->scratch = p;
    t->scap = cap;
    return DT_CSV_OK;
}

/* "record 12 (byte 4711): column 3 ('fare'): " into err, then the rest; "line 40 (byte 4711):
 * ..." when the caller gave the line of its first byte (opts->line_base), counting the LFs
 * from there (only on this error path, so parsing never counts lines). */
static void rec_err(tok_t *t, int col, const char *fmt, ...) {
    if (!t->err || t->errlen == 0) return;
    int w;
    if (t->o->line_base > 0 && t->recpos >= t->begin) {
        int64_t line = t->o->line_base;
        for (const char *p = t->buf + t->begin, *e = t->buf + t->recpos;
             (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
            line++;
        w = snprintf(t->err, t->errlen, "line %lld (byte %lld): ", (long long)line,
                     (long long)(t->base + (int64_t)t->recpos));
    } else {
        w = snprintf(t->err, t->errlen, "record %lld (byte %lld): ", (long long)t->recno,
                     (long long)(t->base + (int64_t)t->recpos));
    }
    size_t at = w > 0 ? (size_t)w : 0;
    if (at < t->errlen && col >= 0) {
        if (t->names && t->names[col])
            w = snprintf(t->err + at, t->errlen - at, "column %d ('%s'): ", col, t->names[col]);
        else
            w = snprintf(t->err + at, t->errlen - at, "column %d: ", col);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at >= t->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err + at, t->errlen - at, fmt, ap);
    va_end(ap);
}

/* The offending text for a message: at most 40 bytes, control bytes as '?', "..." if cut. */
static void shown(const char *p, size_t n, char out[48]) {
    size_t m = n > 40 ? 40 : n;
    for (size_t i = 0; i < m; i++)
        out[i] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
    if (n > 40) memcpy(out + m, "...", 3), m += 3;
    out[m] = '\0';
}

/* Whether a line starting at pos is blank (nothing, or a lone CR, before LF or the end);
 * *next receives where the next line starts. */
static bool blank_line(const tok_t *t, size_t pos, size_t *next) {
    size_t i = pos;
    if (i < t->len && t->buf[i] == '\r') i++;
    if (i == t->len) {
        *next = i;
        return true;
    }
    if (t->buf[i] == '\n') {
        *next = i + 1;
        return true;
    }
    return false;
}

/* Reads the field at *pos (column col, for messages), leaving *pos past its terminator. */
static int read_field(tok_t *t, size_t *pos, int col, field_t *f, int *term) {
    const char *b = t->buf;
    const char q = t->o->quote, d = t->o->delim;
    size_t i = *pos, n = t->len;
    if (i < n && b[i] == q) {
        /* Quoted: up to the closing quote, de-doubling "" (into scratch only if needed). */
        size_t s = ++i, out = 0;
        bool copied = false;
        for (;;) {
            if (i >= n) {
                rec_err(t, col, "unterminated quoted field");
                return DT_CSV_EFORMAT;
            }
            if (b[i] == q) {
                if (i + 1 < n && b[i + 1] == q) {
                    if (!copied) {
                        if (grow_scratch(t, n - s + 1)) return DT_CSV_ENOMEM;
                        memcpy(t->scratch, b + s, i - s);
                        out = i - s;
                        copied = true;
                    }
                    t->scratch[out++] = q;
                    i += 2;
                    continue;
                }
                break;
            }
            if (copied) t->scratch[out++] = b[i];
            i++;
        }
        f->p = copied ? t->scratch : b + s;
        f->n = copied ? out : i - s;
        f->quoted = true;
        i++; /* past the closing quote */
        if (i == n || (b[i] == '\r' && i + 1 == n)) {
            *term = TERM_EOF;
            *pos = n;
        } else if (b[i] == d) {
            *term = TERM_DELIM;
            *pos = i + 1;
        } else if (b[i] == '\n') {
            *term = TERM_EOL;
            *pos = i + 1;
        } else if (b[i] == '\r' && b[i + 1] == '\n') {
            *term = TERM_EOL;
            *pos = i + 2;
        } else {
            char txt[48];
            shown(b + i, 1, txt);
            rec_err(t, col, "'%s' after a closing quote", txt);
            return DT_CSV_EFORMAT;
        }
        return DT_CSV_OK;
    }
    size_t s = i;
    while (i < n && b[i] != d && b[i] != '\n') {
        if (b[i] == q) {
            char txt[48];
            size_t e = i;
            while (e < n && b[e] != d && b[e] != '\n')
                e++;
            shown(b + s, e - s, txt);
            rec_err(t, col, "quote inside the unquoted field '%s'", txt);
            return DT_CSV_EFORMAT;
        }
        i++;
    }
    f->p = b + s;
    f->quoted = false;
    if (i < n && b[i] == d) {
        f->n = i - s;
        *term = TERM_DELIM;
        *pos = i + 1;
        return DT_CSV_OK;
    }
    /* The record's end: a CR before LF (or before the file's end) is the CRLF's. */
    f->n = (i > s && b[i - 1] == '\r') ? i - s - 1 : i - s;
    *term = i < n ? TERM_EOL : TERM_EOF;
    *pos = i < n ? i + 1 : n;
    return DT_CSV_OK;
}

/* ---- conversions ---- */

static bool parse_int64(const char *p, size_t n, int64_t *out, bool *overflow) {
    size_t i = 0;
    bool neg = false;
    *overflow = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
    if (i == n) return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        unsigned dg = (unsigned)(p[i] - '0');
        if (v > (lim - dg) / 10) *overflow = true;
        if (!*overflow) v = v * 10 + dg;
    }
    if (*overflow) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool eq_nocase(const char *p, size_t n, const char *w) {
    size_t m = strlen(w);
    if (m != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != w[i]) return false;
    return true;
}

static bool parse_bool(const char *p, size_t n, uint8_t *out) {
    if (eq_nocase(p, n, "true") || (n == 1 && p[0] == '1')) {
        *out = 1;
        return true;
    }
    if (eq_nocase(p, n, "false") || (n == 1 && p[0] == '0')) {
        *out = 0;
        return true;
    }
    return false;
}

/* Clinger's fast path: [+-]digits[.digits] with at most 19 significant digits, a mantissa
 * below 2^53 and at most 22 decimals is m / 10^k exactly rounded (both are exact doubles, and
 * one IEEE division rounds correctly), which is what strtod gives. False for anything else,
 * which strtod_l then reads. Most CSV floats ("25.313274") take this path. */
static bool fast_float(const char *p, size_t n, double *out) {
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    bool neg = false;
    if (i < n && (p[i] == '-' || p[i] == '+')) neg = p[i++] == '-';
    uint64_t m = 0;
    int digits = 0, frac = 0;
    bool dot = false, any = false;
    for (; i < n; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9') {
            any = true;
            if (m == 0 && c == '0') { /* leading zeros do not count */
                if (dot) frac++;
                continue;
            }
            if (++digits > 19) return false;
            m = m * 10 + (uint64_t)(c - '0');
            if (dot) frac++;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            return false;
        }
    }
    if (!any || frac > 22 || m > ((uint64_t)1 << 53)) return false;
    double v = (double)m / pow10[frac];
    *out = neg ? -v : v;
    return true;
}

/* strtod_l on a NUL-terminated copy; no leading space (strtod would skip it), whole text. */
static int parse_float64(locale_t loc, const char *p, size_t n, double *out, bool *ok) {
    *ok = false;
    if (n == 0 || p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')) return DT_CSV_OK;
    if (fast_float(p, n, out)) {
        *ok = true;
        return DT_CSV_OK;
    }
    char small[64], *s = small;
    if (n >= sizeof small) {
        /* The field may itself live in scratch: copy it out first. */
        char *c = malloc(n + 1);
        if (!c) return DT_CSV_ENOMEM;
        s = c;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    char *end;
    double v = strtod_l(s, &end, loc);
    if (end == s + n) {
        *out = v;
        *ok = true;
    }
    if (s != small) dt_free(s);
    return DT_CSV_OK;
}

/* ---- column builders ---- */

typedef struct colb {
    dt_type_t type;
    void *vals;       /* int64_t / double / uint8_t[cap], or string bytes[bcap] */
    int64_t *offsets; /* strings: cap + 1 */
    size_t nbytes, bcap;
    uint8_t *valid; /* (cap + 7) / 8 bytes once a null was seen */
} colb_t;

typedef struct builder {
    int ncols;
    colb_t *c;
    size_t n, cap;
} builder_t;

static size_t elem_size(dt_type_t t) {
    return t == DT_BOOL ? 1 : t == DT_STRING ? 0 : 8; /* int64, float64, timestamp: 8 */
}

static void builder_free(builder_t *b) {
    if (!b->c) return;
    for (int j = 0; j < b->ncols; j++) {
        dt_free(b->c[j].vals);
        dt_free(b->c[j].offsets);
        dt_free(b->c[j].valid);
    }
    dt_free(b->c);
    b->c = NULL;
}

static int builder_init(builder_t *b, int ncols, const dt_type_t *types) {
    b->ncols = ncols;
    b->n = 0;
    b->cap = 0;
    b->c = calloc((size_t)(ncols > 0 ? ncols : 1), sizeof *b->c);
    if (!b->c) return DT_CSV_ENOMEM;
    for (int j = 0; j < ncols; j++) {
        colb_t *c = &b->c[j];
        c->type = types[j];
        c->offsets = NULL;
        if (c->type == DT_STRING) {
            c->bcap = 64;
            c->vals = malloc(c->bcap);
            c->offsets = malloc(sizeof(int64_t));
            if (!c->vals || !c->offsets) goto nomem;
            c->offsets[0] = 0;
        } else {
            c->vals = malloc(elem_size(c->type)); /* non-NULL even with no rows */
            if (!c->vals) goto nomem;
        }
    }
    return DT_CSV_OK;
nomem:
    builder_free(b);
    return DT_CSV_ENOMEM;
}

/* Room for cap rows in every column (cap > b->cap). */
static int builder_grow(builder_t *b, size_t cap) {
    for (int j = 0; j < b->ncols; j++) {
        colb_t *c = &b->c[j];
        if (c->type == DT_STRING) {
            int64_t *o = dt_realloc(c->offsets, (cap + 1) * sizeof *o);
            if (!o) return DT_CSV_ENOMEM;
            c->offsets = o;
        } else {
            void *v = dt_realloc(c->vals, cap * elem_size(c->type));
            if (!v) return DT_CSV_ENOMEM;
            c->vals = v;
        }
        if (c->valid) {
            uint8_t *v = dt_realloc(c->valid, (cap + 7) / 8);
            if (!v) return DT_CSV_ENOMEM;
            memset(v + (b->cap + 7) / 8, 0, (cap + 7) / 8 - (b->cap + 7) / 8);
            c->valid = v;
        }
    }
    b->cap = cap;
    return DT_CSV_OK;
}

/* Room for one more row in every column. */
static int builder_reserve(builder_t *b) {
    return b->n < b->cap ? DT_CSV_OK : builder_grow(b, b->cap ? b->cap * 2 : 64);
}

static int set_valid(builder_t *b, colb_t *c, size_t row, bool valid) {
    if (!c->valid) {
        if (valid) return DT_CSV_OK;
        c->valid = malloc((b->cap + 7) / 8);
        if (!c->valid) return DT_CSV_ENOMEM;
        memset(c->valid, 0, (b->cap + 7) / 8);
        for (size_t i = 0; i < row; i++)
            c->valid[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    if (valid)
        c->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
    else
        c->valid[row >> 3] &= (uint8_t) ~(1u << (row & 7));
    return DT_CSV_OK;
}

static bool is_null_marker(const dt_csv_opts_t *o, const field_t *f) {
    for (int k = 0; k < o->nnulls; k++) {
        const char *m = o->nulls[k];
        if (m && strlen(m) == f->n && memcmp(m, f->p, f->n) == 0) return true;
    }
    return false;
}

/* The length of the valid UTF-8 prefix of p[0, n) (n when all of it is): RFC 3629, so no
 * overlong forms, no surrogates, nothing past U+10FFFF. ASCII runs go 8 bytes at a time. */
static size_t utf8_prefix(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else
            return i;
        if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* Stores field f as row b->n of column col (room reserved), converting it. */
static int store(tok_t *t, builder_t *b, int col, const field_t *f, locale_t loc) {
    colb_t *c = &b->c[col];
    size_t row = b->n;
    bool null;
    if (c->type == DT_STRING && f->quoted && f->n == 0)
        null = false;
    else
        null = (f->n == 0) || is_null_marker(t->o, f);
    int rc = set_valid(b, c, row, !null);
    if (rc) return rc;
    char txt[48];
    switch (c->type) {
    case DT_STRING: {
        size_t n = null ? 0 : f->n;
        size_t ok = utf8_prefix((const unsigned char *)f->p, n);
        if (ok < n) {
            rec_err(t, col, "invalid UTF-8 at byte %zu of the field", ok);
            return DT_CSV_EFORMAT;
        }
        if (c->nbytes + n > c->bcap) {
            size_t cap = c->bcap;
            while (cap < c->nbytes + n)
                cap *= 2;
            char *v = dt_realloc(c->vals, cap);
            if (!v) return DT_CSV_ENOMEM;
            c->vals = v;
            c->bcap = cap;
        }
        memcpy((char *)c->vals + c->nbytes, f->p, n);
        c->nbytes += n;
        c->offsets[row + 1] = (int64_t)c->nbytes;
        return DT_CSV_OK;
    }
    case DT_INT64:
    case DT_TIMESTAMP: {
        int64_t v = 0;
        bool overflow = false;
        if (!null) {
            bool ok = c->type == DT_INT64 ? parse_int64(f->p, f->n, &v, &overflow)
                                          : dt_parse_timestamp(f->p, f->n, &v);
            if (!ok) {
                shown(f->p, f->n, txt);
                if (overflow)
                    rec_err(t, col, "'%s' is out of int64's range", txt);
                else
                    rec_err(t, col, "'%s' is not a%s %s", txt, c->type == DT_INT64 ? "n" : "",
                            dt_type_name(c->type));
                return DT_CSV_EFORMAT;
            }
        }
        ((int64_t *)c->vals)[row] = v;
        return DT_CSV_OK;
    }
    case DT_FLOAT64: {
        double v = 0.0;
        if (!null) {
            bool ok;
            rc = parse_float64(loc, f->p, f->n, &v, &ok);
            if (rc) return rc;
            if (!ok) {
                shown(f->p, f->n, txt);
                rec_err(t, col, "'%s' is not a float64", txt);
                return DT_CSV_EFORMAT;
            }
        }
        ((double *)c->vals)[row] = v;
        return DT_CSV_OK;
    }
    case DT_BOOL: {
        uint8_t v = 0;
        if (!null && !parse_bool(f->p, f->n, &v)) {
            shown(f->p, f->n, txt);
            rec_err(t, col, "'%s' is not a bool", txt);
            return DT_CSV_EFORMAT;
        }
        ((uint8_t *)c->vals)[row] = v;
        return DT_CSV_OK;
    }
    }
    rec_err(t, col, "unknown column type %d", (int)c->type);
    return DT_CSV_EFORMAT;
}

/* ---- parsing ---- */

static int parse_records(tok_t *t, size_t begin, size_t end_limit, int ncols, builder_t *b,
                         locale_t loc) {
    size_t pos = begin;
    while (pos < end_limit) {
        size_t next;
        if (ncols != 1 && blank_line(t, pos, &next)) {
            pos = next;
            continue;
        }
        t->recno++;
        t->recpos = pos;
        int rc = builder_reserve(b);
        if (rc) return rc;
        int col = 0, term = TERM_DELIM;
        while (term == TERM_DELIM) {
            field_t f;
            rc = read_field(t, &pos, col < ncols ? col : -1, &f, &term);
            if (rc) return rc;
            if (col < ncols) {
                rc = store(t, b, col, &f, loc);
                if (rc) return rc;
            }
            col++;
        }
        if (col != ncols) {
            rec_err(t, -1, "%d field%s, expected %d", col, col == 1 ? "" : "s", ncols);
            return DT_CSV_EFORMAT;
        }
        b->n++;
    }
    return DT_CSV_OK;
}

int dt_csv_parse(const char *buf, size_t len, size_t begin, size_t end_limit, int64_t base,
                 const dt_csv_opts_t *opts, int ncols, const dt_type_t *types,
                 const char *const *names, dt_column_t *cols_out, int64_t *nrows, char *err,
                 size_t errlen) {
    int rc = check_opts(opts, err, errlen);
    if (rc) return rc;
    if ((!buf && len) || begin > end_limit || end_limit > len || ncols < 1 || !types || !cols_out ||
        !nrows) {
        set_err(err, errlen, "bad arguments to dt_csv_parse");
        return DT_CSV_EFORMAT;
    }
    for (int j = 0; j < ncols; j++)
        if ((unsigned)types[j] > DT_TIMESTAMP) {
            set_err(err, errlen, "column %d: unknown type %d", j, (int)types[j]);
            return DT_CSV_EFORMAT;
        }
    locale_t loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!loc) return DT_CSV_ENOMEM;
    tok_t t = {.buf = buf,
               .len = len,
               .o = opts,
               .err = err,
               .errlen = errlen,
               .base = base,
               .begin = begin,
               .names = names};
    builder_t b;
    rc = builder_init(&b, ncols, types);
    if (rc) goto free_locale;
    /* The records can be no more than the LFs before end_limit, plus one: room for them all
     * at once, rather than doubling (each doubling a copy of every column). Quoted newlines
     * only make this an overestimate. */
    size_t lines = 1;
    for (const char *p = buf + begin, *e = buf + end_limit;
         (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
    if (lines > 64 && (rc = builder_grow(&b, lines)) != DT_CSV_OK) {
        builder_free(&b);
        goto free_locale;
    }
    rc = parse_records(&t, begin, end_limit, ncols, &b, loc);
    if (rc) {
        if (rc == DT_CSV_ENOMEM) set_err(err, errlen, "out of memory");
        builder_free(&b);
        goto free_scratch;
    }
    for (int j = 0; j < ncols; j++) {
        colb_t *c = &b.c[j];
        cols_out[j] = (dt_column_t){.type = c->type,
                                    .n = (int64_t)b.n,
                                    .valid = c->valid,
                                    .values = c->vals,
                                    .offsets = c->offsets,
                                    .nbytes = c->type == DT_STRING ? c->nbytes : 0};
    }
    dt_free(b.c);
    *nrows = (int64_t)b.n;
free_scratch:
    dt_free(t.scratch);
free_locale:
    freelocale(loc);
    return rc;
}

/* ---- header and inference ---- */

void dt_csv_names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++)
        dt_free(names[i]);
    dt_free(names);
}

int dt_csv_header(const char *buf, size_t len, bool at_eof, const dt_csv_opts_t *opts, int *ncols,
                  char ***names, size_t *header_end, char *err, size_t errlen) {
    int rc = check_opts(opts, err, errlen);
    if (rc) return rc;
    if ((!buf && len) || !ncols || !names || !header_end) {
        set_err(err, errlen, "bad arguments to dt_csv_header");
        return DT_CSV_EFORMAT;
    }
    if (len == 0 && at_eof) {
        set_err(err, errlen, "the file is empty");
        return DT_CSV_EFORMAT;
    }
    /* Without header, the first record counts the columns: blank lines before it are
     * skipped as dt_csv_parse skips them. A header is the first line, whatever it holds. */
    size_t start = 0, next;
    tok_t t = {.buf = buf, .len = len, .o = opts, .err = err, .errlen = errlen, .recno = 1};
    if (!opts->header) {
        while (start < len && blank_line(&t, start, &next))
            start = next;
        if (start == len && at_eof) {
            set_err(err, errlen, "the file holds no record");
            return DT_CSV_EFORMAT;
        }
    }
    int64_t e = dt_csv_record_end(buf, len, start, opts, false);
    if (e < 0 && !at_eof) {
        set_err(err, errlen, "the first record does not end in the %zu bytes read", len);
        return DT_CSV_EMORE;
    }
    size_t end = e < 0 ? len : (size_t)e;
    t.len = end;
    if (opts->header && blank_line(&t, 0, &next)) {
        set_err(err, errlen, "the header line is blank");
        return DT_CSV_EFORMAT;
    }
    t.recpos = start;
    char **nm = NULL;
    int n = 0, cap = 0, term = TERM_DELIM;
    size_t pos = start;
    while (term == TERM_DELIM) {
        field_t f;
        rc = read_field(&t, &pos, n, &f, &term);
        if (rc) goto fail;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **p = dt_realloc(nm, (size_t)cap * sizeof *p);
            if (!p) goto nomem;
            nm = p;
        }
        char num[32];
        int k = snprintf(num, sizeof num, "c%d", n);
        const char *src = opts->header && f.n > 0 ? f.p : num;
        size_t sn = opts->header && f.n > 0 ? f.n : (size_t)k;
        nm[n] = malloc(sn + 1);
        if (!nm[n]) goto nomem;
        memcpy(nm[n], src, sn);
        nm[n][sn] = '\0';
        n++;
    }
    dt_free(t.scratch);
    *ncols = n;
    *names = nm;
    *header_end = opts->header ? end : 0;
    return DT_CSV_OK;
nomem:
    rc = DT_CSV_ENOMEM;
    set_err(err, errlen, "out of memory");
fail:
    dt_free(t.scratch);
    dt_csv_names_free(nm, n);
    return rc;
}

int dt_csv_infer(const char *sample, size_t len, bool at_eof, const dt_csv_opts_t *opts, int *ncols,
                 dt_type_t **types, char ***names, char *err, size_t errlen) {
    if (!ncols || !types || !names) {
        set_err(err, errlen, "bad arguments to dt_csv_infer");
        return DT_CSV_EFORMAT;
    }
    int n;
    char **nm;
    size_t hend;
    int rc = dt_csv_header(sample, len, at_eof, opts, &n, &nm, &hend, err, errlen);
    if (rc) return rc;
    /* The complete records: up to just past the sample's last LF outside quotes. */
    size_t end = hend;
    if (at_eof) {
        end = len;
    } else {
        for (int64_t e; (e = dt_csv_record_end(sample, len, end, opts, false)) >= 0;)
            end = (size_t)e;
    }
    dt_type_t *ty = malloc((size_t)n * sizeof *ty);
    dt_column_t *cols = calloc((size_t)n, sizeof *cols);
    locale_t loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    int64_t rows = 0;
    if (!ty || !cols || !loc) {
        rc = DT_CSV_ENOMEM;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    for (int j = 0; j < n; j++)
        ty[j] = DT_STRING;
    rc = dt_csv_parse(sample, end, hend, end, 0, opts, n, ty, (const char *const *)nm, cols, &rows,
                      err, errlen);
    if (rc) goto fail;
    static const dt_type_t order[] = {DT_BOOL, DT_INT64, DT_FLOAT64, DT_TIMESTAMP};
    for (int j = 0; j < n; j++) {
        const dt_column_t *c = &cols[j];
        const char *v = c->values;
        bool any = false, fits[4] = {true, true, true, true};
        for (int64_t i = 0; i < rows; i++) {
            if (!dt_valid(c, i)) continue;
            const char *p = v + c->offsets[i];
            size_t m = (size_t)(c->offsets[i + 1] - c->offsets[i]);
            if (m == 0) continue; /* a quoted "": null in every type but string */
            any = true;
            uint8_t bv;
            int64_t iv;
            double dv;
            bool ovf, ok;
            if (fits[0]) fits[0] = parse_bool(p, m, &bv);
            if (fits[1]) fits[1] = parse_int64(p, m, &iv, &ovf);
            if (fits[2]) {
                rc = parse_float64(loc, p, m, &dv, &ok);
                if (rc) {
                    set_err(err, errlen, "out of memory");
                    goto fail;
                }
                fits[2] = ok;
            }
            if (fits[3]) fits[3] = dt_parse_timestamp(p, m, &iv);
        }
        ty[j] = DT_STRING;
        for (int k = 0; any && k < 4; k++)
            if (fits[k]) {
                ty[j] = order[k];
                break;
            }
    }
    for (int j = 0; j < n; j++)
        dt_column_free(&cols[j]);
    dt_free(cols);
    freelocale(loc);
    *ncols = n;
    *types = ty;
    *names = nm;
    return DT_CSV_OK;
fail:
    if (cols)
        for (int j = 0; j < n; j++)
            dt_column_free(&cols[j]);
    dt_free(cols);
    dt_free(ty);
    if (loc) freelocale(loc);
    dt_csv_names_free(nm, n);
    return rc;
}
