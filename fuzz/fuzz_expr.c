/* libFuzzer target for DTable's expression engine (dtable/expr.c, expr.h), run by
 * scripts/fuzz.sh.
 *
 * The input is an expression's text up to the first NUL byte, then data bytes (the whole
 * input again when there is no NUL). The text is parsed against a fixed schema of six
 * columns, two of them with names that need quoting. When it parses, the data give a
 * partition of n rows (0..64): every column's values (edge values such as INT64_MIN, -0.0,
 * nan and inf often), null bitmaps or none, and strings, with exactly the buffer sizes
 * column.h states, so that ASan sees any read past them. Beyond ASan/UBSan/LeakSanitizer it
 * checks that:
 *   - dt_expr_columns lists distinct schema indices in ascending order;
 *   - dt_expr_eval succeeds with a column of dt_expr_type's type and n rows in column.h's
 *     layout: bools 0 or 1, string offsets from 0 to nbytes, a bitmap only when a row is null,
 *     null rows holding 0 / 0.0 / false / "";
 *   - evaluating row by row (each row taken alone with dt_column_take) gives the same values
 *     and nulls as evaluating the partition at once;
 *   - a column of the wrong length is refused with -EINVAL;
 *   - for a bool result, dt_filter_select picks exactly the true rows, and dt_column_take of
 *     them from every column gives those rows.
 * A violation abort()s with a message on stderr, which libFuzzer reports as a crash. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

#define NCOLS 6
#define MAX_ROWS 64
#define ERRLEN 512

static const char *const names[NCOLS] = {"i", "f", "b", "s", "t", "my col"};
static const dt_type_t types[NCOLS] = {DT_INT64,  DT_FLOAT64,   DT_BOOL,
                                       DT_STRING, DT_TIMESTAMP, DT_INT64};

static void fail(const char *what, const char *expr) {
    fprintf(stderr, "fuzz_expr: %s (expression '%s')\n", what, expr);
    abort();
}

/* The data bytes, read cyclically (zeros when there are none). */
typedef struct src {
    const uint8_t *p;
    size_t n, at;
} src_t;

static uint8_t byte(src_t *s) {
    if (s->n == 0) return 0;
    uint8_t b = s->p[s->at % s->n];
    s->at++;
    return b;
}

static uint64_t word(src_t *s) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | byte(s);
    return v;
}

static int64_t gen_int(src_t *s) {
    static const int64_t edge[] = {
        0,  1, -1, 2, INT64_MIN,    INT64_MAX,     INT64_MIN + 1, INT64_MAX - 1,
        10, 7, -7, 3, 4294967296LL, -4294967296LL, 3037000500LL};
    uint8_t b = byte(s);
    if (b < 64) return edge[b % (sizeof edge / sizeof *edge)];
    if (b < 224) return (int8_t)byte(s);
    return (int64_t)word(s);
}

static double gen_float(src_t *s) {
    static const double edge[] = {0.0,
                                  -0.0,
                                  1.0,
                                  -1.0,
                                  0.5,
                                  -0.5,
                                  1.5,
                                  2.5,
                                  -2.5,
                                  1e308,
                                  -1e308,
                                  4.9e-324,
                                  9.2233720368547758e18,
                                  -9.2233720368547758e18};
    uint8_t b = byte(s);
    if (b < 16) return b & 1 ? -INFINITY : INFINITY;
    if (b < 24) return NAN;
    if (b < 96) return edge[b % (sizeof edge / sizeof *edge)];
    if (b < 224) return (int8_t)byte(s) / 4.0;
    uint64_t w = word(s);
    double d;
    memcpy(&d, &w, sizeof d);
    return d;
}

static int64_t gen_ts(src_t *s) {
    static const int64_t edge[] = {0, 1704164645000000LL, 86400000000LL, -1, INT64_MIN, INT64_MAX};
    uint8_t b = byte(s);
    if (b < 64) return edge[b % (sizeof edge / sizeof *edge)];
    if (b < 192) {
        uint8_t hi = byte(s), lo = byte(s);
        return (int64_t)(int16_t)(hi << 8 | lo) * 1000000;
    }
    return (int64_t)word(s);
}

/* A column of type t and n rows from the data, buffers of exactly column.h's sizes. */
static void gen_column(src_t *s, dt_type_t t, int64_t n, dt_column_t *c) {
    memset(c, 0, sizeof *c);
    c->type = t;
    c->n = n;
    uint8_t mode = byte(s);
    if (mode & 1) { /* a bitmap, maybe with no null row (allowed, if not what eval makes) */
        size_t nb = (size_t)(n + 7) / 8;
        c->valid = malloc(nb ? nb : 1);
        if (!c->valid) abort();
        for (size_t k = 0; k < nb; k++)
            c->valid[k] = mode & 2 ? 0xff : byte(s);
    }
    if (t == DT_STRING) {
        static const char *const pieces[] = {"",
                                             "a",
                                             "A",
                                             "abc",
                                             "ABC",
                                             "\xc3\xa9",
                                             "\xe2\x82\xac",
                                             "'",
                                             " ",
                                             "\xff",
                                             "zz",
                                             "\xf0\x9f\x98\x80"};
        c->offsets = malloc((size_t)(n + 1) * sizeof *c->offsets);
        char *buf = malloc((size_t)n * 16 + 1);
        if (!c->offsets || !buf) abort();
        size_t w = 0;
        c->offsets[0] = 0;
        for (int64_t i = 0; i < n; i++) {
            int k = byte(s) % 4;
            for (int m = 0; m < k; m++) {
                uint8_t b = byte(s);
                const char *pc = pieces[b % (sizeof pieces / sizeof *pieces)];
                size_t l = b >= 240 ? 1 : strlen(pc);
                if (b >= 240)
                    buf[w] = (char)byte(s);
                else
                    memcpy(buf + w, pc, l);
                w += l;
            }
            c->offsets[i + 1] = (int64_t)w;
        }
        c->nbytes = w;
        c->values = malloc(w ? w : 1);
        if (!c->values) abort();
        memcpy(c->values, buf, w);
        free(buf);
        return;
    }
    size_t es = t == DT_BOOL ? 1 : 8;
    c->values = malloc(n ? (size_t)n * es : 1);
    if (!c->values) abort();
    for (int64_t i = 0; i < n; i++) {
        switch (t) {
        case DT_INT64:
            ((int64_t *)c->values)[i] = gen_int(s);
            break;
        case DT_FLOAT64:
            ((double *)c->values)[i] = gen_float(s);
            break;
        case DT_BOOL:
            ((uint8_t *)c->values)[i] = byte(s) & 1;
            break;
        case DT_TIMESTAMP:
            ((int64_t *)c->values)[i] = gen_ts(s);
            break;
        default:
            break;
        }
    }
}

/* Whether row i of a and row k of b hold the same value (or are both null). */
static bool same_row(const dt_column_t *a, int64_t i, const dt_column_t *b, int64_t k) {
    bool va = dt_valid(a, i), vb = dt_valid(b, k);
    if (va != vb) return false;
    if (!va) return true;
    switch (a->type) {
    case DT_INT64:
    case DT_TIMESTAMP:
        return ((const int64_t *)a->values)[i] == ((const int64_t *)b->values)[k];
    case DT_FLOAT64: {
        double x = ((const double *)a->values)[i], y = ((const double *)b->values)[k];
        return (isnan(x) && isnan(y)) || memcmp(&x, &y, sizeof x) == 0;
    }
    case DT_BOOL:
        return ((const uint8_t *)a->values)[i] == ((const uint8_t *)b->values)[k];
    case DT_STRING: {
        int64_t la = a->offsets[i + 1] - a->offsets[i], lb = b->offsets[k + 1] - b->offsets[k];
        return la == lb && memcmp((const char *)a->values + a->offsets[i],
                                  (const char *)b->values + b->offsets[k], (size_t)la) == 0;
    }
    }
    return false;
}

/* The result's layout, as dt_expr_eval promises it. */
static void check_result(const dt_column_t *r, dt_type_t t, int64_t n, const char *text) {
    if (r->type != t) fail("result of another type than dt_expr_type", text);
    if (r->n != n) fail("result of another length than the partition", text);
    if (n > 0 && !r->values) fail("result without values", text);
    bool any_null = false;
    for (int64_t i = 0; i < n; i++)
        any_null |= !dt_valid(r, i);
    if (r->valid && !any_null) fail("result with a bitmap but no null row", text);
    if (t == DT_STRING) {
        if (!r->offsets || r->offsets[0] != 0 || (size_t)r->offsets[n] != r->nbytes)
            fail("bad string offsets", text);
        for (int64_t i = 0; i < n; i++) {
            if (r->offsets[i + 1] < r->offsets[i]) fail("string offsets decrease", text);
            if (!dt_valid(r, i) && r->offsets[i + 1] != r->offsets[i])
                fail("null string row not empty", text);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        bool v = dt_valid(r, i);
        if (t == DT_BOOL) {
            uint8_t b = ((const uint8_t *)r->values)[i];
            if (b > 1 || (!v && b != 0))
                fail("bool result neither 0 nor 1, or null not false", text);
        } else if (!v) {
            uint64_t w;
            memcpy(&w, (const char *)r->values + 8 * i, 8);
            if (w != 0) fail("null row not zeroed", text);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(tlen + 1);
    if (!text) abort();
    memcpy(text, data, tlen);
    text[tlen] = '\0';
    src_t s = {.p = nul ? nul + 1 : data, .n = nul ? size - tlen - 1 : size};

    char err[ERRLEN];
    dt_expr_t *e = dt_expr_parse(text, NCOLS, names, types, err, sizeof err);
    if (!e) {
        if (!memchr(err, '\0', sizeof err) || err[0] == '\0')
            fail("parse error without message", text);
        free(text);
        return 0;
    }
    dt_type_t rt = dt_expr_type(e);
    if ((unsigned)rt > DT_TIMESTAMP) fail("unknown result type", text);
    int nu;
    const int *used = dt_expr_columns(e, &nu);
    if (nu < 0 || nu > NCOLS) fail("bad column count", text);
    for (int k = 0; k < nu; k++)
        if (used[k] < 0 || used[k] >= NCOLS || (k > 0 && used[k] <= used[k - 1]))
            fail("dt_expr_columns not ascending distinct schema indices", text);

    int64_t n = byte(&s) % (MAX_ROWS + 1);
    dt_column_t cols[NCOLS];
    for (int j = 0; j < NCOLS; j++)
        gen_column(&s, types[j], n, &cols[j]);

    dt_column_t r;
    if (dt_expr_eval(e, cols, n, &r, err, sizeof err) != 0) fail("dt_expr_eval fails", text);
    check_result(&r, rt, n, text);

    /* A partition whose columns are one row longer than announced is refused. */
    if (nu > 0) {
        dt_column_t bad[NCOLS];
        memcpy(bad, cols, sizeof bad);
        dt_column_t dummy = {0};
        if (dt_expr_eval(e, bad, n + 1, &dummy, err, sizeof err) != -EINVAL)
            fail("a column of the wrong length is not refused", text);
    }

    /* Row by row: each row taken alone gives the same value. */
    for (int64_t i = 0; i < n; i++) {
        dt_column_t one[NCOLS], r1;
        for (int j = 0; j < NCOLS; j++)
            if (dt_column_take(&cols[j], &i, 1, &one[j]) != 0) fail("dt_column_take fails", text);
        if (dt_expr_eval(e, one, 1, &r1, err, sizeof err) != 0)
            fail("dt_expr_eval fails on one row", text);
        check_result(&r1, rt, 1, text);
        if (!same_row(&r, i, &r1, 0)) {
            fprintf(stderr, "row %lld of %lld\n", (long long)i, (long long)n);
            fail("one row alone evaluates differently", text);
        }
        dt_column_free(&r1);
        for (int j = 0; j < NCOLS; j++)
            dt_column_free(&one[j]);
    }

    if (rt == DT_BOOL) {
        int64_t *sel = malloc((size_t)(n ? n : 1) * sizeof *sel);
        if (!sel) abort();
        int64_t k = dt_filter_select(&r, sel);
        if (k < 0 || k > n) fail("dt_filter_select: bad count", text);
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (dt_valid(&r, i) && ((const uint8_t *)r.values)[i]) {
                if (m >= k || sel[m] != i) fail("dt_filter_select: wrong rows", text);
                m++;
            }
        if (m != k) fail("dt_filter_select: wrong count", text);
        for (int j = 0; j <= NCOLS; j++) {
            const dt_column_t *in = j < NCOLS ? &cols[j] : &r;
            dt_column_t out;
            if (dt_column_take(in, sel, k, &out) != 0) fail("dt_column_take fails", text);
            if (out.type != in->type || out.n != k) fail("dt_column_take: bad shape", text);
            for (int64_t q = 0; q < k; q++)
                if (!same_row(in, sel[q], &out, q)) fail("dt_column_take: wrong row", text);
            dt_column_free(&out);
        }
        int64_t badrow = n;
        dt_column_t out;
        if (dt_column_take(&r, &badrow, 1, &out) != -EINVAL)
            fail("dt_column_take of a row out of range is not refused", text);
        free(sel);
    }

    dt_column_free(&r);
    for (int j = 0; j < NCOLS; j++)
        dt_column_free(&cols[j]);
    dt_expr_free(e);
    free(text);
    return 0;
}
