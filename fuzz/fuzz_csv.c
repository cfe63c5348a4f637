/* libFuzzer target for DTable's CSV reader core (dtable/csv.c, csv.h), run by scripts/fuzz.sh.
 *
 * The input's first OPT_BYTES bytes choose the options (delimiter, header, null markers), the
 * number of byte ranges (1..7) and their cut points, how a range's end is found, the sample
 * length for inference and whether the rest is read as raw CSV or as fields to write out as
 * well-quoted CSV. On the file so obtained it checks, beyond ASan/UBSan's memory and UB
 * checks and LeakSanitizer:
 *   - dt_csv_header and dt_csv_infer agree on the columns (count and names);
 *   - whole-file inference (at_eof) succeeds only with types under which the whole file then
 *     parses: inference tried every value;
 *   - the parallel split is exact: the file cut into the ranges, scanned, resolved and parsed
 *     range by range as ranks do (dt_csv_record_end read on in small steps, or directly up to
 *     the next range's first record start; both must agree) gives the same rows and values
 *     as one parse of the whole file when that succeeds, and fails at the same byte when it
 *     fails; this for an all-string schema and for the inferred one;
 *   - for well-quoted input of the right field count, the all-string parse never fails and
 *     gives back every field (nulls as csv.h defines them), and the header's names.
 * A violation abort()s with a message on stderr, which libFuzzer reports as a crash. */
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

#define OPT_BYTES 10
#define MAX_RANGES 7
#define MAX_GEN_COLS 16
#define ERRLEN 512

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_csv: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static void free_cols(dt_column_t *c, int n) {
    for (int j = 0; j < n; j++)
        dt_column_free(&c[j]);
}

/* ---- rows gathered from one or several parses, for comparison ---- */

typedef struct rows {
    int ncols;
    int64_t n;
    dt_column_t *parts; /* nparts * ncols columns, as parsed */
    int nparts;
} rows_t;

static void rows_add(rows_t *r, dt_column_t *cols, int64_t n) {
    r->parts = realloc(r->parts, (size_t)(r->nparts + 1) * (size_t)r->ncols * sizeof *r->parts);
    if (!r->parts) abort();
    memcpy(r->parts + (size_t)r->nparts * (size_t)r->ncols, cols, (size_t)r->ncols * sizeof *cols);
    r->nparts++;
    r->n += n;
}

static void rows_free(rows_t *r) {
    if (r->parts) free_cols(r->parts, r->nparts * r->ncols);
    free(r->parts);
    r->parts = NULL;
    r->nparts = 0;
    r->n = 0;
}

/* Row i of column j, located in its part. */
static const dt_column_t *rows_at(const rows_t *r, int j, int64_t i, int64_t *local) {
    for (int p = 0; p < r->nparts; p++) {
        const dt_column_t *c = &r->parts[(size_t)p * (size_t)r->ncols + (size_t)j];
        if (i < c->n) {
            *local = i;
            return c;
        }
        i -= c->n;
    }
    fail("row index past the parsed rows", NULL);
    return NULL;
}

/* Checks a parsed column's layout (column.h). */
static void check_layout(const dt_column_t *c, dt_type_t t, int64_t n) {
    if (c->type != t || c->n != n) fail("column of the wrong type or length", NULL);
    if (!c->values) fail("column without values", NULL);
    if (t == DT_STRING) {
        if (!c->offsets || c->offsets[0] != 0 || (size_t)c->offsets[n] != c->nbytes)
            fail("bad string offsets", NULL);
        for (int64_t i = 0; i < n; i++)
            if (c->offsets[i + 1] < c->offsets[i]) fail("string offsets decrease", NULL);
    }
    if (t == DT_BOOL)
        for (int64_t i = 0; i < n; i++)
            if (((const uint8_t *)c->values)[i] > 1) fail("bool neither 0 nor 1", NULL);
}

static bool same_value(const dt_column_t *a, int64_t i, const dt_column_t *b, int64_t k) {
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

static void rows_compare(const rows_t *a, const rows_t *b) {
    if (a->n != b->n) fail("the ranges' row count differs from the whole file's", NULL);
    for (int j = 0; j < a->ncols; j++)
        for (int64_t i = 0; i < a->n; i++) {
            int64_t ia, ib;
            const dt_column_t *ca = rows_at(a, j, i, &ia), *cb = rows_at(b, j, i, &ib);
            if (!same_value(ca, ia, cb, ib)) {
                char m[96];
                snprintf(m, sizeof m, "row %lld column %d", (long long)i, j);
                fail("the ranges' value differs from the whole file's", m);
            }
        }
}

/* "(byte N): ..." of a parse message: the part that does not depend on the range. */
static const char *from_byte(const char *err) {
    const char *p = strstr(err, "(byte ");
    return p ? p : err;
}

/* ---- one schema: whole-file parse against the ranges ---- */

typedef struct file {
    const char *p;
    size_t n;
    dt_csv_opts_t o;
    size_t cuts[MAX_RANGES + 1]; /* range k is [cuts[k], cuts[k+1]) */
    int nranges;
    bool read_on; /* find a range's end with dt_csv_record_end rather than the next start */
    bool lines;   /* messages with line numbers (opts.line_base) */
} file_t;

static int64_t count_lf(const char *p, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k;
}

/* Parses the whole file into *whole (rc returned, message in err). */
static int parse_whole(const file_t *f, size_t hend, int ncols, const dt_type_t *ty,
                       const char *const *names, rows_t *whole, char *err) {
    dt_column_t *c = xmalloc((size_t)ncols * sizeof *c);
    int64_t n = -1;
    dt_csv_opts_t o = f->o;
    o.line_base = f->lines ? 1 + count_lf(f->p, hend) : 0;
    int rc = dt_csv_parse(f->p, f->n, hend, f->n, 0, &o, ncols, ty, names, c, &n, err, ERRLEN);
    if (rc == DT_CSV_OK) {
        for (int j = 0; j < ncols; j++)
            check_layout(&c[j], ty[j], n);
        rows_add(whole, c, n);
    }
    free(c);
    return rc;
}

/* Reads f as ranks do. Returns the first failing range's rc (message in err), else 0. */
static int parse_ranges(const file_t *f, int ncols, const dt_type_t *ty, const char *const *names,
                        rows_t *parts, char *err) {
    dt_csv_scan_t sc[MAX_RANGES];
    int64_t first[MAX_RANGES], last[MAX_RANGES];
    int nr = f->nranges;
    for (int k = 0; k < nr; k++) {
        dt_csv_scan(f->p + f->cuts[k], f->cuts[k + 1] - f->cuts[k], &f->o, &sc[k]);
        if (sc[k].nlf != count_lf(f->p + f->cuts[k], f->cuts[k + 1] - f->cuts[k]))
            fail("dt_csv_scan: wrong LF count", NULL);
    }
    dt_csv_resolve(sc, nr, &f->o, first, last);
    size_t expect_start = 0;
    bool have_expect = false;
    int rc = DT_CSV_OK;
    int64_t lf_before = 0; /* LFs in the ranges before k, from the scans */
    for (int k = 0; k < nr; lf_before += sc[k].nlf, k++) {
        size_t ck = f->cuts[k], clen = f->cuts[k + 1] - f->cuts[k];
        if (first[k] < 0) {
            if (last[k] != -1) fail("first_start -1 but last_start not", NULL);
            continue;
        }
        if (!(first[k] <= last[k] && last[k] < (int64_t)clen))
            fail("record starts outside their range", NULL);
        if (have_expect && ck + (size_t)first[k] != expect_start)
            fail("a range's first record start is not where the previous range's end", NULL);
        /* The next range's first record start, or the file's end. */
        size_t next = f->n;
        for (int m = k + 1; m < nr; m++)
            if (first[m] >= 0) {
                next = f->cuts[m] + (size_t)first[m];
                break;
            }
        size_t end = next - ck;
        if (f->read_on) {
            size_t avail = clen;
            for (;;) {
                int64_t e = dt_csv_record_end(f->p + ck, avail, (size_t)last[k], &f->o, false);
                if (e >= 0) {
                    end = (size_t)e;
                    break;
                }
                if (ck + avail == f->n) {
                    end = avail;
                    break;
                }
                avail = avail + 5 < f->n - ck ? avail + 5 : f->n - ck;
            }
            if (end != next - ck)
                fail("dt_csv_record_end disagrees with the next range's first start", NULL);
        }
        expect_start = ck + end;
        have_expect = true;
        if (rc) continue; /* keep checking the split after a failed range */
        dt_column_t *c = xmalloc((size_t)ncols * sizeof *c);
        int64_t n = -1;
        dt_csv_opts_t o = f->o;
        o.line_base = f->lines ? 1 + lf_before + count_lf(f->p + ck, (size_t)first[k]) : 0;
        rc = dt_csv_parse(f->p + ck, end, (size_t)first[k], clen, (int64_t)ck, &o, ncols, ty, names,
                          c, &n, err, ERRLEN);
        if (rc == DT_CSV_OK) {
            for (int j = 0; j < ncols; j++)
                check_layout(&c[j], ty[j], n);
            rows_add(parts, c, n);
        }
        free(c);
    }
    if (have_expect && expect_start != f->n) fail("the last record does not end the file", NULL);
    return rc;
}

/* The whole-file parse against the ranges', for one schema. Returns the whole parse's rc
 * (its message in ew, ERRLEN bytes); *whole keeps its rows when it succeeds. */
static int check_split(const file_t *f, size_t hend, int ncols, const dt_type_t *ty,
                       const char *const *names, rows_t *whole, char *ew) {
    char er[ERRLEN] = "";
    ew[0] = '\0';
    *whole = (rows_t){.ncols = ncols};
    rows_t parts = {.ncols = ncols};
    int rw = parse_whole(f, hend, ncols, ty, names, whole, ew);
    int rr = parse_ranges(f, ncols, ty, names, &parts, er);
    if (rw == DT_CSV_OK) {
        if (rr != DT_CSV_OK) fail("a range fails where the whole file parses", er);
        rows_compare(whole, &parts);
    } else {
        if (rr == DT_CSV_OK) fail("the ranges parse where the whole file fails", ew);
        /* Record numbers count from each range's start; line numbers are the file's. */
        const char *mw = f->lines ? ew : from_byte(ew), *mr = f->lines ? er : from_byte(er);
        if (rw == DT_CSV_EFORMAT && rr == DT_CSV_EFORMAT && strcmp(mw, mr) != 0) {
            fprintf(stderr, "whole:  %s\nranges: %s\n", ew, er);
            fail("the ranges fail elsewhere than the whole file", NULL);
        }
    }
    rows_free(&parts);
    return rw;
}

/* ---- the well-quoted generator ---- */

typedef struct gen {
    char *p;
    size_t n, cap;
} gen_t;

static void put(gen_t *g, const void *s, size_t n) {
    if (n == 0) return;
    if (g->n + n > g->cap) {
        while (g->n + n > g->cap)
            g->cap = g->cap ? 2 * g->cap : 256;
        g->p = realloc(g->p, g->cap);
        if (!g->p) abort();
    }
    memcpy(g->p + g->n, s, n);
    g->n += n;
}

/* The length of the valid UTF-8 prefix of p[0, n) (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), written apart from csv.c's. */
static size_t utf8_ok(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xc2 && c <= 0xdf ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (len == 0 || i + len > n) return i;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

typedef struct fld {
    const uint8_t *p;
    size_t n;
    bool quoted;
} fld_t;

/* Splits data into records (0x01) of fields (0x00), fitted to the first record's field count,
 * and writes them as CSV quoting where needed (and, by the seed, sometimes where not). */
static fld_t *generate(const uint8_t *d, size_t n, const dt_csv_opts_t *o, unsigned seed, bool crlf,
                       bool final_eol, gen_t *g, int *ncols_out, int *nrec_out) {
    int ncols = 1;
    for (size_t i = 0; i < n && d[i] != 1; i++)
        ncols += d[i] == 0;
    if (ncols > MAX_GEN_COLS) ncols = MAX_GEN_COLS;
    int nrec = 1;
    for (size_t i = 0; i < n; i++)
        nrec += d[i] == 1;
    fld_t *f = calloc((size_t)nrec * (size_t)ncols, sizeof *f);
    if (!f) abort();
    size_t i = 0;
    for (int r = 0; r < nrec; r++) {
        int col = 0;
        size_t s = i;
        for (;; i++) {
            if (i == n || d[i] == 0 || d[i] == 1) {
                if (col < ncols) f[r * ncols + col] = (fld_t){d + s, i - s, false};
                col++;
                if (i == n || d[i] == 1) break;
                s = i + 1;
            }
        }
        i++; /* past the record separator */
    }
    for (int r = 0; r < nrec; r++) {
        for (int j = 0; j < ncols; j++) {
            fld_t *x = &f[r * ncols + j];
            bool need = x->n == 0 && (ncols == 1 || (seed + (unsigned)r) % 3 == 0);
            for (size_t k = 0; k < x->n && !need; k++) {
                char c = (char)x->p[k];
                need = c == o->delim || c == o->quote || c == '\n' || c == '\r';
            }
            x->quoted = need || ((seed >> 1) + (unsigned)(r * 7 + j * 3)) % 5 == 0;
            if (j) put(g, &o->delim, 1);
            if (!x->quoted) {
                put(g, x->p, x->n);
                continue;
            }
            put(g, &o->quote, 1);
            for (size_t k = 0; k < x->n; k++) {
                put(g, x->p + k, 1);
                if ((char)x->p[k] == o->quote) put(g, &o->quote, 1);
            }
            put(g, &o->quote, 1);
        }
        if (r + 1 < nrec || final_eol) put(g, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
    }
    *ncols_out = ncols;
    *nrec_out = nrec;
    return f;
}

static bool is_marker(const dt_csv_opts_t *o, const fld_t *x) {
    for (int k = 0; k < o->nnulls; k++)
        if (strlen(o->nulls[k]) == x->n && memcmp(o->nulls[k], x->p, x->n) == 0) return true;
    return false;
}

/* The all-string parse of generated CSV holds exactly the fields written. */
static void check_generated(const rows_t *whole, const fld_t *fl, int ncols, int nrec, bool header,
                            const dt_csv_opts_t *o) {
    int first = header ? 1 : 0;
    if (whole->n != nrec - first) fail("generated CSV: wrong row count", NULL);
    for (int r = first; r < nrec; r++)
        for (int j = 0; j < ncols; j++) {
            const fld_t *x = &fl[r * ncols + j];
            int64_t i;
            const dt_column_t *c = rows_at(whole, j, r - first, &i);
            bool null = x->quoted ? (x->n > 0 && is_marker(o, x)) : (x->n == 0 || is_marker(o, x));
            if (dt_valid(c, i) == null) fail("generated CSV: wrong null", NULL);
            if (null) continue;
            int64_t len = c->offsets[i + 1] - c->offsets[i];
            if ((size_t)len != x->n ||
                (x->n > 0 && memcmp((const char *)c->values + c->offsets[i], x->p, x->n) != 0))
                fail("generated CSV: wrong field value", NULL);
        }
}

static void check_names(char **names, int ncols, const fld_t *fl, bool header) {
    for (int j = 0; j < ncols; j++) {
        char want[32];
        const fld_t *x = &fl[j];
        snprintf(want, sizeof want, "c%d", j);
        if (header && x->n > 0) {
            if (strlen(names[j]) != x->n || memcmp(names[j], x->p, x->n) != 0)
                fail("generated CSV: wrong header name", names[j]);
        } else if (strcmp(names[j], want) != 0) {
            fail("generated CSV: wrong default name", names[j]);
        }
    }
}

/* The typed parse's numbers against the all-string parse's text read with strtod_l and strtoll
 * (csv.c has its own fast paths): the same value, bit for bit, and the same nulls. */
static void check_numbers(const rows_t *str, const rows_t *typed) {
    static locale_t loc;
    if (!loc && !(loc = newlocale(LC_ALL_MASK, "C", (locale_t)0))) abort();
    if (str->n != typed->n) fail("typed and all-string parses differ in rows", NULL);
    for (int j = 0; j < typed->ncols; j++)
        for (int64_t i = 0; i < typed->n; i++) {
            int64_t is, it;
            const dt_column_t *cs = rows_at(str, j, i, &is), *ct = rows_at(typed, j, i, &it);
            if (ct->type != DT_FLOAT64 && ct->type != DT_INT64) break;
            int64_t len = cs->offsets[is + 1] - cs->offsets[is];
            bool null = !dt_valid(cs, is) || len == 0; /* "" is null but in strings */
            if (dt_valid(ct, it) == null) fail("typed and all-string parses differ in nulls", NULL);
            if (null) continue;
            char buf[4200], *end;
            if ((size_t)len >= sizeof buf) continue;
            memcpy(buf, (const char *)cs->values + cs->offsets[is], (size_t)len);
            buf[len] = '\0';
            if (ct->type == DT_FLOAT64) {
                double want = strtod_l(buf, &end, loc), got = ((const double *)ct->values)[it];
                if (!(isnan(want) && isnan(got)) && memcmp(&want, &got, sizeof got) != 0) {
                    fprintf(stderr, "'%s': %.17g, strtod gives %.17g\n", buf, got, want);
                    fail("a float64 differs from strtod's", NULL);
                }
            } else if (strtoll(buf, &end, 10) != ((const int64_t *)ct->values)[it]) {
                fail("an int64 differs from strtoll's", buf);
            }
        }
}

/* ---- the target ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char delims[4] = {',', ';', '|', '\t'};
    static const char *const nulls_na[] = {"NA"};
    static const char *const nulls_empty[] = {""};
    static const char *const nulls_two[] = {"NA", "null"};
    if (size < OPT_BYTES) return 0;
    const uint8_t *opt = data;
    const uint8_t *rest = data + OPT_BYTES;
    size_t nrest = size - OPT_BYTES;

    file_t f = {0};
    dt_csv_opts_init(&f.o);
    f.o.delim = delims[opt[0] & 3];
    f.o.header = (opt[0] >> 2) & 1;
    switch ((opt[0] >> 3) & 3) {
    case 1:
        f.o.nulls = nulls_na, f.o.nnulls = 1;
        break;
    case 2:
        f.o.nulls = nulls_empty, f.o.nnulls = 1;
        break;
    case 3:
        f.o.nulls = nulls_two, f.o.nnulls = 2;
        break;
    }
    bool generated = (opt[0] >> 5) & 1;
    f.read_on = (opt[0] >> 6) & 1;
    f.lines = opt[1] >= 128;
    bool crlf = (opt[0] >> 7) & 1;

    gen_t g = {0};
    fld_t *fl = NULL;
    int gcols = 0, gnrec = 0;
    uint8_t *text = NULL;
    if (generated) {
        /* String fields must be valid UTF-8 (csv.h): bytes that are not become '?'. The
         * separators 0 and 1 are ASCII, so checking the whole checks every field. */
        text = xmalloc(nrest);
        memcpy(text, rest, nrest);
        for (size_t i = 0; (i += utf8_ok(text + i, nrest - i)) < nrest;)
            text[i] = '?';
        fl = generate(text, nrest, &f.o, opt[9] >> 1, crlf, opt[9] & 1, &g, &gcols, &gnrec);
        f.p = g.p ? g.p : "";
        f.n = g.n;
    } else {
        f.p = (const char *)rest;
        f.n = nrest;
    }

    f.nranges = 1 + opt[1] % MAX_RANGES;
    size_t cut[MAX_RANGES];
    for (int k = 0; k < f.nranges - 1; k++)
        cut[k] = (size_t)opt[3 + k] * f.n / 255;
    for (int a = 1; a < f.nranges - 1; a++) /* insertion sort: cut points in order */
        for (int b = a; b > 0 && cut[b - 1] > cut[b]; b--) {
            size_t t = cut[b];
            cut[b] = cut[b - 1];
            cut[b - 1] = t;
        }
    f.cuts[0] = 0;
    for (int k = 0; k < f.nranges - 1; k++)
        f.cuts[k + 1] = cut[k];
    f.cuts[f.nranges] = f.n;

    char err[ERRLEN];
    int hcols = 0;
    char **hnames = NULL;
    size_t hend = 0;
    int rc = dt_csv_header(f.p, f.n, true, &f.o, &hcols, &hnames, &hend, err, ERRLEN);
    if (generated && rc) fail("generated CSV: dt_csv_header fails", err);
    if (rc) goto done;
    if (hcols < 1 || hend > f.n) fail("dt_csv_header: bad result", NULL);
    if (generated) {
        if (hcols != gcols) fail("generated CSV: wrong column count", NULL);
        check_names(hnames, hcols, fl, f.o.header);
    }

    /* Inference on a prefix, as from the sample every rank reads. */
    size_t slen = (size_t)opt[2] * f.n / 255;
    int icols = 0;
    dt_type_t *ity = NULL;
    char **inames = NULL;
    rc = dt_csv_infer(f.p, slen, slen == f.n, &f.o, &icols, &ity, &inames, err, ERRLEN);
    if (rc == DT_CSV_OK) {
        if (icols != hcols) fail("dt_csv_infer and dt_csv_header count columns differently", NULL);
        for (int j = 0; j < hcols; j++)
            if (strcmp(inames[j], hnames[j]) != 0)
                fail("dt_csv_infer and dt_csv_header name a column differently", inames[j]);
    }

    /* All-string schema. */
    dt_type_t *sty = xmalloc((size_t)hcols * sizeof *sty);
    for (int j = 0; j < hcols; j++)
        sty[j] = DT_STRING;
    rows_t whole;
    rc = check_split(&f, hend, hcols, sty, (const char *const *)hnames, &whole, err);
    if (generated) {
        if (rc) fail("generated CSV: the all-string parse fails", err);
        check_generated(&whole, fl, gcols, gnrec, f.o.header, &f.o);
    }
    rows_t strings = whole; /* kept for check_numbers */

    /* The prefix's inferred schema. */
    if (ity) {
        check_split(&f, hend, icols, ity, (const char *const *)inames, &whole, err);
        rows_free(&whole);
    }

    /* Whole-file inference: its types must read the whole file. */
    int wcols = 0;
    dt_type_t *wty = NULL;
    char **wnames = NULL;
    rc = dt_csv_infer(f.p, f.n, true, &f.o, &wcols, &wty, &wnames, err, ERRLEN);
    if (generated && rc) fail("generated CSV: dt_csv_infer fails", err);
    if (rc == DT_CSV_OK) {
        if (wcols != hcols) fail("dt_csv_infer (at_eof) counts columns differently", NULL);
        rc = check_split(&f, hend, wcols, wty, (const char *const *)wnames, &whole, err);
        if (rc) fail("the whole file fails to parse with its own inferred types", err);
        check_numbers(&strings, &whole);
        rows_free(&whole);
    }
    rows_free(&strings);

    dt_csv_names_free(wnames, wcols);
    free(wty);
    free(sty);
    dt_csv_names_free(inames, icols);
    free(ity);
done:
    dt_csv_names_free(hnames, hcols);
    free(fl);
    free(text);
    free(g.p);
    return 0;
}
