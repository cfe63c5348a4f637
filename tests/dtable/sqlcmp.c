/* Helpers of the DTable scenarios (sqlcmp.h): generated CSV files, sqlite3 on them, and the
 * comparison of result rows. */
#include "sqlcmp.h"

#include "scenario.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const dagr_coltype_t sq_trips_types[8] = {DAGR_COL_INT64,     DAGR_COL_INT64,   DAGR_COL_STRING,
                                          DAGR_COL_FLOAT64,   DAGR_COL_FLOAT64, DAGR_COL_BOOL,
                                          DAGR_COL_TIMESTAMP, DAGR_COL_STRING};
const dagr_coltype_t sq_dims_types[3] = {DAGR_COL_INT64, DAGR_COL_STRING, DAGR_COL_FLOAT64};

/* ---- generation ---- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int64_t below(uint64_t *s, int64_t n) {
    return (int64_t)(rng_next(s) % (uint64_t)n);
}
static bool chance(uint64_t *s, int pct) {
    return below(s, 100) < pct;
}

static const char *const cats[12] = {"alpha", "beta",    "gamma", "café",
                                     "東京",  "emoji 😀", "a,b",   "say \"hi\"\nbye",
                                     "delta", "epsilon", "zeta",  "Ω"};

/* A string field, quoted when it needs to be (or at random). */
static void put_str(FILE *f, const char *s, uint64_t *rng) {
    if (strpbrk(s, ",\"\r\n") || chance(rng, 10)) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

int sq_gen_trips(const char *path, int64_t nrows, int64_t nkeys, uint64_t seed, bool crlf) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const char *eol = crlf ? "\r\n" : "\n";
    uint64_t s = seed * 0x100000001b3ull + 1;
    fprintf(f, "id,key,cat,fare,tip,flag,ts,note%s", eol);
    for (int64_t i = 0; i < nrows; i++) {
        fprintf(f, "%lld,", (long long)i);
        if (!chance(&s, 3))
            fprintf(f, "%lld",
                    chance(&s, 50) || nkeys < 2 ? 0LL : (long long)(1 + below(&s, nkeys - 1)));
        fputc(',', f);
        if (!chance(&s, 5)) put_str(f, cats[below(&s, 12)], &s);
        fputc(',', f);
        if (!chance(&s, 5)) fprintf(f, "%.6f", (double)below(&s, 100000000) / 1e6);
        fputc(',', f);
        if (!chance(&s, 20)) {
            if (chance(&s, 5))
                fputs("-0.0", f);
            else
                fprintf(f, "%.3f", (double)(below(&s, 20000) - 2000) / 1e3);
        }
        fputc(',', f);
        if (!chance(&s, 5)) fputs(chance(&s, 50) ? "true" : "false", f);
        fputc(',', f);
        if (!chance(&s, 5)) {
            int64_t sec = below(&s, 366LL * 86400);
            int64_t day = sec / 86400, rem = sec % 86400;
            /* 2024 is a leap year: month lengths. */
            static const int md[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
            int m = 0;
            while (day >= md[m])
                day -= md[m++];
            fprintf(f, "2024-%02d-%02dT%02d:%02d:%02dZ", m + 1, (int)day + 1, (int)(rem / 3600),
                    (int)(rem / 60 % 60), (int)(rem % 60));
        }
        fputc(',', f);
        if (!chance(&s, 10)) {
            char note[64];
            int len = 1 + (int)below(&s, 40), k = 0;
            static const char pool[] = "abcdefghij ,\"xyz";
            for (; k < len; k++)
                note[k] = pool[below(&s, (int64_t)sizeof pool - 1)];
            note[k] = 0;
            if (chance(&s, 5)) { /* CRLF inside quotes */
                fputs("\"line\r\n", f);
                for (char *p = note; *p; p++) {
                    if (*p == '"') fputc('"', f);
                    fputc(*p, f);
                }
                fputc('"', f);
            } else {
                put_str(f, note, &s);
            }
        }
        fputs(eol, f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

int sq_gen_dims(const char *path, int64_t nrows, int64_t nkeys, uint64_t seed) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    uint64_t s = seed * 0x100000001b3ull + 7;
    fputs("key,name,weight\n", f);
    for (int64_t i = 0; i < nrows; i++) {
        if (!chance(&s, 2)) {
            int64_t k = i < nkeys ? i : below(&s, nkeys); /* duplicates past nkeys */
            if (chance(&s, 5)) k = below(&s, nkeys);
            fprintf(f, "%lld", (long long)k);
        }
        fputc(',', f);
        if (chance(&s, 10))
            put_str(f, cats[below(&s, 12)], &s);
        else
            fprintf(f, "name_%lld", (long long)i);
        fputc(',', f);
        if (!chance(&s, 5)) fprintf(f, "%.4f", (double)below(&s, 1000000) / 1e4);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- sqlite3 ---- */

static void seterr(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
}

static const char *sql_type(dagr_coltype_t t) {
    switch (t) {
    case DAGR_COL_INT64:
    case DAGR_COL_BOOL:
    case DAGR_COL_TIMESTAMP:
        return "INTEGER";
    case DAGR_COL_FLOAT64:
        return "REAL";
    default:
        return "TEXT";
    }
}

/* The header line of a CSV file: its column names (up to 64), malloc'ed. */
static int header_names(const char *path, char **names, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    int n = 0;
    for (char *tok = strtok(line, ","); tok && n < max; tok = strtok(NULL, ","))
        names[n++] = strdup(tok);
    return n;
}

void sq_rows_free(sq_rows_t *r) {
    for (int64_t k = 0; r->v && k < r->n * r->ncols; k++)
        free(r->v[k].s);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int parse_val(const char *p, size_t n, int type, sq_val_t *v) {
    memset(v, 0, sizeof *v);
    v->type = type;
    if (n == 6 && memcmp(p, "\x01NULL\x01", 6) == 0) {
        v->null = true;
        return 0;
    }
    char buf[128];
    switch (type) {
    case DAGR_COL_STRING:
        v->s = malloc(n + 1);
        if (!v->s) return -1;
        memcpy(v->s, p, n);
        v->s[n] = 0;
        return 0;
    case DAGR_COL_FLOAT64:
        if (n >= sizeof buf) return -1;
        memcpy(buf, p, n);
        buf[n] = 0;
        v->d = strtod(buf, NULL);
        return 0;
    default: /* integers; SQLite may print an integral real ("3.0") */
        if (n >= sizeof buf) return -1;
        memcpy(buf, p, n);
        buf[n] = 0;
        if (strpbrk(buf, ".eE"))
            v->i = (int64_t)llround(strtod(buf, NULL));
        else
            v->i = strtoll(buf, NULL, 10);
        return 0;
    }
}

int sq_query(int ntables, const char *const *paths, const char *const *names, const int *ncols,
             const dagr_coltype_t *const *types, const char *sql, int out_ncols,
             const dagr_coltype_t *out_types, sq_rows_t *out, char *err) {
    memset(out, 0, sizeof *out);
    char script[] = "/tmp/dagr-sq-XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0) return seterr(err, "mkstemp: %s", strerror(errno)), -1;
    FILE *f = fdopen(fd, "w");
    for (int t = 0; t < ntables; t++) {
        char *cn[64];
        int n = header_names(paths[t], cn, 64);
        if (n != ncols[t]) {
            fclose(f);
            unlink(script);
            for (int j = 0; j < n; j++)
                free(cn[j]);
            return seterr(err, "%s: %d header names, %d types", paths[t], n, ncols[t]), -1;
        }
        fprintf(f, "CREATE TABLE \"%s\"(", names[t]);
        for (int j = 0; j < n; j++)
            fprintf(f, "%s\"%s\" %s", j ? ", " : "", cn[j], sql_type(types[t][j]));
        fprintf(f, ");\n.import --csv --skip 1 '%s' \"%s\"\n", paths[t], names[t]);
        for (int j = 0; j < n; j++) {
            fprintf(f, "UPDATE \"%s\" SET \"%s\" = NULL WHERE \"%s\" = '';\n", names[t], cn[j],
                    cn[j]);
            if (types[t][j] == DAGR_COL_BOOL)
                fprintf(f,
                        "UPDATE \"%s\" SET \"%s\" = CASE lower(\"%s\") WHEN 'true' THEN 1 WHEN "
                        "'1' THEN 1 ELSE 0 END WHERE \"%s\" IS NOT NULL;\n",
                        names[t], cn[j], cn[j], cn[j]);
            if (types[t][j] == DAGR_COL_TIMESTAMP)
                fprintf(f,
                        "UPDATE \"%s\" SET \"%s\" = unixepoch(\"%s\") * 1000000 WHERE \"%s\" IS "
                        "NOT NULL;\n",
                        names[t], cn[j], cn[j], cn[j]);
            free(cn[j]);
        }
    }
    fprintf(f, ".mode list\n.separator \"\\037\" \"\\036\"\n.nullvalue \"\\001NULL\\001\"\n%s;\n",
            sql);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sqlite3 -bail :memory: < %s 2>&1", script);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(script);
        return seterr(err, "popen sqlite3: %s", strerror(errno)), -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *o = malloc(cap);
    for (size_t r; o && (r = fread(o + len, 1, cap - len, p)) > 0;) {
        len += r;
        if (len == cap) o = realloc(o, cap *= 2);
    }
    int rc = pclose(p);
    unlink(script);
    if (!o) return seterr(err, "out of memory"), -1;
    if (rc != 0) {
        seterr(err, "sqlite3 failed (%d): %.200s", rc, o);
        free(o);
        return -1;
    }
    out->ncols = out_ncols;
    for (int j = 0; j < out_ncols; j++)
        out->types[j] = out_types[j];
    int64_t nrows = 0;
    for (size_t i = 0; i < len; i++)
        nrows += o[i] == '\036';
    out->v = calloc((size_t)(nrows * out_ncols) + 1, sizeof *out->v);
    size_t at = 0;
    for (int64_t r = 0; r < nrows; r++) {
        char *end = memchr(o + at, '\036', len - at);
        int j = 0;
        for (char *q = o + at;; j++) {
            char *fe = memchr(q, '\037', (size_t)(end - q));
            if (!fe) fe = end;
            if (j >= out_ncols ||
                parse_val(q, (size_t)(fe - q), out_types[j], &out->v[r * out_ncols + j])) {
                out->n = r;
                free(o);
                return seterr(err, "sqlite row %lld: more fields than %d or a bad value",
                              (long long)r, out_ncols),
                       -1;
            }
            if (fe == end) break;
            q = fe + 1;
        }
        if (j + 1 != out_ncols) {
            out->n = r + 1;
            free(o);
            return seterr(err, "sqlite row %lld has %d fields, not %d", (long long)r, j + 1,
                          out_ncols),
                   -1;
        }
        at = (size_t)(end - o) + 1;
        if (at < len && o[at] == '\n') at++; /* sqlite3 may add a newline */
    }
    out->n = nrows;
    free(o);
    return 0;
}

int sq_from_dagr(const dagr_rows_t *r, sq_rows_t *out) {
    memset(out, 0, sizeof *out);
    int nc = dagr_rows_ncols(r);
    int64_t n = dagr_rows_count(r);
    out->ncols = nc;
    out->n = n;
    out->v = calloc((size_t)(n * nc) + 1, sizeof *out->v);
    if (!out->v) return -1;
    for (int j = 0; j < nc; j++) {
        int t = (int)dagr_rows_coltype(r, j);
        out->types[j] = t;
        for (int64_t i = 0; i < n; i++) {
            sq_val_t *v = &out->v[i * nc + j];
            v->type = t;
            if (!dagr_rows_valid(r, j, i)) {
                v->null = true;
                continue;
            }
            switch (t) {
            case DAGR_COL_FLOAT64:
                v->d = dagr_rows_float64(r, j, i);
                break;
            case DAGR_COL_BOOL:
                v->i = dagr_rows_bool(r, j, i);
                break;
            case DAGR_COL_STRING: {
                size_t l;
                const char *s = dagr_rows_string(r, j, i, &l);
                v->s = malloc(l + 1);
                if (!v->s) return -1;
                memcpy(v->s, s, l);
                v->s[l] = 0;
                break;
            }
            default:
                v->i = dagr_rows_int64(r, j, i);
            }
        }
    }
    return 0;
}

/* ---- comparison ---- */

static int sort_ncols;
static int val_cmp(const sq_val_t *a, const sq_val_t *b) {
    if (a->null || b->null) return (int)b->null - (int)a->null; /* nulls first */
    switch (a->type) {
    case DAGR_COL_FLOAT64: {
        double x = a->d == 0 ? 0 : a->d, y = b->d == 0 ? 0 : b->d;
        if (isnan(x) || isnan(y)) return (int)isnan(x) - (int)isnan(y);
        return x < y ? -1 : x > y;
    }
    case DAGR_COL_STRING:
        return strcmp(a->s, b->s);
    default:
        return a->i < b->i ? -1 : a->i > b->i;
    }
}
static int row_cmp(const void *x, const void *y) {
    const sq_val_t *a = x, *b = y;
    for (int j = 0; j < sort_ncols; j++) {
        int c = val_cmp(&a[j], &b[j]);
        if (c) return c;
    }
    return 0;
}

static void show(const sq_val_t *v, char *out, size_t n) {
    if (v->null)
        snprintf(out, n, "NULL");
    else if (v->type == DAGR_COL_FLOAT64)
        snprintf(out, n, "%.17g", v->d);
    else if (v->type == DAGR_COL_STRING)
        snprintf(out, n, "'%.60s'", v->s);
    else
        snprintf(out, n, "%lld", (long long)v->i);
}

int sq_compare(sq_rows_t *a, sq_rows_t *b, bool ordered, double rtol, char *why) {
    if (a->ncols != b->ncols) {
        snprintf(why, 512, "%d columns, sqlite %d", a->ncols, b->ncols);
        return -1;
    }
    for (int j = 0; j < a->ncols; j++)
        if (a->types[j] != b->types[j]) {
            snprintf(why, 512, "column %d has type %d, sqlite's %d", j, a->types[j], b->types[j]);
            return -1;
        }
    if (a->n != b->n) {
        snprintf(why, 512, "%lld rows, sqlite %lld", (long long)a->n, (long long)b->n);
        return -1;
    }
    if (!ordered && a->n > 1) {
        sort_ncols = a->ncols;
        size_t rs = (size_t)a->ncols * sizeof *a->v;
        qsort(a->v, (size_t)a->n, rs, row_cmp);
        qsort(b->v, (size_t)b->n, rs, row_cmp);
    }
    for (int64_t i = 0; i < a->n; i++)
        for (int j = 0; j < a->ncols; j++) {
            const sq_val_t *x = &a->v[i * a->ncols + j], *y = &b->v[i * b->ncols + j];
            bool eq;
            if (x->null || y->null)
                eq = x->null == y->null;
            else if (x->type == DAGR_COL_FLOAT64)
                eq = (isnan(x->d) && isnan(y->d)) ||
                     fabs(x->d - y->d) <= rtol * fmax(fabs(x->d), fabs(y->d)) + 1e-300;
            else
                eq = val_cmp(x, y) == 0;
            if (!eq) {
                char sx[80], sy[80];
                show(x, sx, sizeof sx);
                show(y, sy, sizeof sy);
                snprintf(why, 512, "row %lld column %d: dagr %s, sqlite %s", (long long)i, j, sx,
                         sy);
                return -1;
            }
        }
    return 0;
}

int sq_check_table(dagr_dtable_t *t, int ntables, const char *const *paths,
                   const char *const *names, const int *ncols, const dagr_coltype_t *const *types,
                   const char *sql, bool ordered, double rtol, const char *what) {
    dagr_rows_t *r = NULL;
    dagr_status_t s = dagr_dtable_fetch(t, -1, 0, &r);
    if (!SC_CHECK(s == DAGR_OK, "%s: fetch: %s", what, dagr_last_error())) return 0;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) return 1;
    int nc = dagr_dtable_ncols(t);
    dagr_coltype_t ty[64];
    for (int j = 0; j < nc && j < 64; j++)
        ty[j] = dagr_dtable_coltype(t, j);
    sq_rows_t want, got;
    char err[256], why[512];
    int ok = SC_CHECK(nc <= 64, "%s: %d columns", what, nc) &&
             SC_CHECK(sq_query(ntables, paths, names, ncols, types, sql, nc, ty, &want, err) == 0,
                      "%s: %s", what, err);
    if (ok) {
        ok = SC_CHECK(sq_from_dagr(r, &got) == 0, "%s", what);
        if (ok) {
            ok = SC_CHECK(sq_compare(&got, &want, ordered, rtol, why) == 0, "%s: %s", what, why);
            sq_rows_free(&got);
        }
        sq_rows_free(&want);
    }
    dagr_rows_free(&r);
    return ok;
}

void sq_scratch_dir(char *dir) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        snprintf(dir, 256, "/tmp/dagr-dtable-XXXXXX");
        if (!mkdtemp(dir)) dir[0] = 0;
    }
    MPI_Bcast(dir, 256, MPI_CHAR, 0, MPI_COMM_WORLD);
}
