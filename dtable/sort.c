/* Sorting a table (dagr_dtable_sort): sample-based range partitioning, all in the graph.
 *
 *   1. a sample task per input partition p writes evenly spaced rows' keys, with p, the row's
 *      position and the number of rows each sample stands for, to a small handle;
 *   2. one splitter task (rank 0) sorts every sample and picks nout - 1 splitters where the
 *      samples' cumulative weight crosses q / nout of the rows;
 *   3. a route task per input partition sends each row to the number of splitters below it
 *      and writes one bucket per destination (as dt_shuffle does, but the route needs p);
 *   4. a sort task per destination q concatenates the buckets (p, q) for p = 0, 1, ... and
 *      sorts them stably.
 * Rows are ordered by (keys, p, position) everywhere (splitters included), a total order
 * that is the stable order: so equal keys may spread over several destinations (a key that
 * holds half the rows keeps the partitions balanced) and still come out in input order.
 *
 * The order of values: int64 and timestamps as numbers; float64 as numbers with -0.0 = 0.0
 * and NaN greater than every number (+inf included; so first when descending), every NaN
 * alike, as PostgreSQL and DuckDB order them (SQLite has no NaN); bool false < true; strings
 * bytewise (memcmp; a prefix before the longer string). Nulls come last in either direction.
 *
 * The local sort is least-significant key first: one stable pass per key, the last key first.
 * A pass moves its null rows to the end and sorts the others by a 64-bit key whose unsigned
 * order is the column's order (descending: its complement) with an LSD radix sort (bytes
 * every key shares skipped); strings by their first 8 bytes the same way, then each run of
 * equal 8 bytes by the next 8, up to 32 bytes, then a merge sort with memcmp. No comparison
 * through a function pointer anywhere. */
#include "dtable_impl.h"

#include "expr.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A task's arguments: the whole struct, by value. */
#define SORT_MAX_KEYS 256
typedef struct sort_spec {
    int32_t p;      /* the task's partition: the input for sample and route tasks */
    int32_t nparts; /* input partitions */
    int32_t nout;   /* destinations */
    int32_t nkeys;
    int32_t key[SORT_MAX_KEYS]; /* the keys' column indices in the table */
    uint8_t desc[SORT_MAX_KEYS];
} sort_spec_t;

/* ------------------------------------------------------------------------------------------
 * The local sort
 * ---------------------------------------------------------------------------------------- */

typedef struct pair {
    uint64_t k;
    int64_t i;
} pair_t;

/* A float64 as an unsigned key of the same order: -0.0 as 0.0, every NaN above +inf. */
static inline uint64_t f64_key(double x) {
    uint64_t b;
    if (x == 0) x = 0.0;
    memcpy(&b, &x, sizeof b);
    if (x != x) b = 0x7ff8000000000000ull;
    return b >> 63 ? ~b : b | (1ull << 63);
}

/* Row i of a fixed-width column as an unsigned key of the same order (not for loops over
 * many rows: those switch on the type once, fill_keys). */
static inline uint64_t num_key(const dt_column_t *c, int64_t i) {
    switch (c->type) {
    case DT_FLOAT64:
        return f64_key(((const double *)c->values)[i]);
    case DT_BOOL:
        return ((const uint8_t *)c->values)[i] != 0;
    default:
        return (uint64_t)((const int64_t *)c->values)[i] ^ (1ull << 63);
    }
}

/* Bytes [at, at + 8) of string row i, big-endian, zeros past its end: their unsigned order
 * is memcmp's. */
static inline uint64_t str_chunk(const dt_column_t *c, int64_t i, int64_t at) {
    const unsigned char *s = (const unsigned char *)c->values + c->offsets[i] + at;
    int64_t len = c->offsets[i + 1] - c->offsets[i] - at;
    uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len >= 8) {
        memcpy(&v, s, sizeof v);
        return __builtin_bswap64(v);
    }
#endif
    for (int j = 0; j < 8; j++)
        v = v << 8 | (j < len ? s[j] : 0u);
    return v;
}

static inline int64_t str_len(const dt_column_t *c, int64_t i) {
    return c->offsets[i + 1] - c->offsets[i];
}

/* memcmp order of string row i of a and row j of b: < 0, 0, > 0. */
static inline int str_cmp(const dt_column_t *a, int64_t i, const dt_column_t *b, int64_t j) {
    int64_t la = str_len(a, i), lb = str_len(b, j);
    int r = memcmp((const char *)a->values + a->offsets[i], (const char *)b->values + b->offsets[j],
                   (size_t)(la < lb ? la : lb));
    return r ? r : (la > lb) - (la < lb);
}

/* Sorts a[0, n) by k, stably: LSD radix a byte at a time, skipping the bytes every key
 * shares. tmp holds n pairs. Returns the buffer the result is in (a or tmp). */
static pair_t *radix_sort(pair_t *a, pair_t *tmp, int64_t n) {
    if (n < 48) {
        for (int64_t i = 1; i < n; i++) {
            pair_t x = a[i];
            int64_t j = i;
            for (; j > 0 && a[j - 1].k > x.k; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return a;
    }
    static _Thread_local int64_t h[8][256];
    memset(h, 0, sizeof h);
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = a[i].k;
        for (int d = 0; d < 8; d++)
            h[d][(k >> (8 * d)) & 255]++;
    }
    for (int d = 0; d < 8; d++) {
        int sh = 8 * d;
        if (h[d][(a[0].k >> sh) & 255] == n) continue; /* every key has this byte */
        int64_t at = 0;
        for (int b = 0; b < 256; b++) {
            int64_t c = h[d][b];
            h[d][b] = at;
            at += c;
        }
        int64_t *pos = h[d];
        for (int64_t i = 0; i < n; i++)
            tmp[pos[(a[i].k >> sh) & 255]++] = a[i];
        pair_t *s = a;
        a = tmp;
        tmp = s;
    }
    return a;
}

/* Scratch of a local sort of n rows. */
typedef struct scratch {
    pair_t *pa, *pb;
    int64_t *tmp;
} scratch_t;

/* perm[0, m) sorted stably by string c, comparing whole strings (merge sort; runs of 16 by
 * insertion first). desc reverses. */
static void merge_sort_str(const dt_column_t *c, bool desc, int64_t *perm, int64_t m,
                           int64_t *tmp) {
    const int64_t run = 16;
    for (int64_t lo = 0; lo < m; lo += run) {
        int64_t hi = lo + run < m ? lo + run : m;
        for (int64_t i = lo + 1; i < hi; i++) {
            int64_t x = perm[i], j = i;
            for (; j > lo; j--) {
                int r = str_cmp(c, perm[j - 1], c, x);
                if (!(desc ? r < 0 : r > 0)) break;
                perm[j] = perm[j - 1];
            }
            perm[j] = x;
        }
    }
    int64_t *src = perm, *dst = tmp;
    for (int64_t w = run; w < m; w *= 2) {
        for (int64_t lo = 0; lo < m; lo += 2 * w) {
            int64_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                int r = str_cmp(c, src[j], c, src[i]);
                dst[o++] = (desc ? r > 0 : r < 0) ? src[j++] : src[i++]; /* ties: the left */
            }
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        int64_t *s = src;
        src = dst;
        dst = s;
    }
    if (src != perm) memcpy(perm, src, (size_t)m * sizeof *perm);
}

/* perm[0, m) (non-null rows of string column c, all equal in bytes [0, at)) sorted stably:
 * by bytes [at, at + 8), then each run of equal ones by the next 8 bytes, or by length when
 * no string of the run goes on. Past 32 bytes, a merge sort. */
static void sort_strings(const dt_column_t *c, bool desc, int64_t *perm, int64_t m, int64_t at,
                         scratch_t *s) {
    if (m < 2) return;
    if (at >= 32) {
        merge_sort_str(c, desc, perm, m, s->tmp);
        return;
    }
    uint64_t flip = desc ? ~0ull : 0;
    for (int64_t j = 0; j < m; j++)
        s->pa[j] = (pair_t){str_chunk(c, perm[j], at) ^ flip, perm[j]};
    pair_t *r = radix_sort(s->pa, s->pb, m);
    for (int64_t j = 0; j < m; j++)
        perm[j] = r[j].i;
    for (int64_t j = 0; j < m;) {
        uint64_t k = str_chunk(c, perm[j], at);
        bool more = str_len(c, perm[j]) > at + 8;
        int64_t e = j + 1;
        for (; e < m && str_chunk(c, perm[e], at) == k; e++)
            more |= str_len(c, perm[e]) > at + 8;
        if (e - j > 1) {
            if (more) {
                sort_strings(c, desc, perm + j, e - j, at + 8, s);
            } else { /* equal bytes, zeros past the ends: shorter first */
                for (int64_t q = j; q < e; q++)
                    s->pa[q - j] = (pair_t){(uint64_t)str_len(c, perm[q]) ^ flip, perm[q]};
                r = radix_sort(s->pa, s->pb, e - j);
                for (int64_t q = j; q < e; q++)
                    perm[q] = r[q - j].i;
            }
        }
        j = e;
    }
}

/* Sorts perm[0, n) (rows of c) stably by c, nulls last. */
static void sort_pass(const dt_column_t *c, bool desc, int64_t *perm, int64_t n, scratch_t *s) {
    int64_t m = n;
    if (c->valid) { /* the nulls to the end, in their order */
        int64_t z = 0;
        m = 0;
        for (int64_t j = 0; j < n; j++) {
            int64_t r = perm[j];
            if (dt_valid(c, r))
                perm[m++] = r;
            else
                s->tmp[z++] = r;
        }
        memcpy(perm + m, s->tmp, (size_t)z * sizeof *perm);
    }
    if (c->type == DT_STRING) {
        sort_strings(c, desc, perm, m, 0, s);
        return;
    }
    uint64_t flip = desc ? ~0ull : 0;
    pair_t *pa = s->pa;
    switch (c->type) {
    case DT_FLOAT64: {
        const double *v = c->values;
        for (int64_t j = 0; j < m; j++)
            pa[j] = (pair_t){f64_key(v[perm[j]]) ^ flip, perm[j]};
        break;
    }
    case DT_BOOL: {
        const uint8_t *v = c->values;
        for (int64_t j = 0; j < m; j++)
            pa[j] = (pair_t){(uint64_t)(v[perm[j]] != 0) ^ flip, perm[j]};
        break;
    }
    default: {
        const int64_t *v = c->values;
        for (int64_t j = 0; j < m; j++)
            pa[j] = (pair_t){((uint64_t)v[perm[j]] ^ (1ull << 63)) ^ flip, perm[j]};
        break;
    }
    }
    pair_t *r = radix_sort(pa, s->pb, m);
    for (int64_t j = 0; j < m; j++)
        perm[j] = r[j].i;
}

/* The stable order of rows [0, n) of cols by the columns keys[0, nkeys) (desc per key) into
 * perm. Returns 0 or -ENOMEM. */
static int sort_perm(const dt_column_t *cols, int nkeys, const int32_t *keys, const uint8_t *desc,
                     int64_t n, int64_t *perm) {
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    if (n < 2) return 0;
    scratch_t s = {dt_alloc((size_t)n * sizeof(pair_t)), dt_alloc((size_t)n * sizeof(pair_t)),
                   dt_alloc((size_t)n * sizeof(int64_t))};
    int rc = s.pa && s.pb && s.tmp ? 0 : -ENOMEM;
    for (int k = nkeys - 1; rc == 0 && k >= 0; k--)
        sort_pass(&cols[keys[k]], desc[k] != 0, perm, n, &s);
    dt_free(s.pa);
    dt_free(s.pb);
    dt_free(s.tmp);
    return rc;
}

/* Row i of the key columns a against row j of b (nkeys each): < 0, 0, > 0 in the sort's
 * order, nulls last. */
static int cmp_rows(const dt_column_t *const *a, int64_t i, const dt_column_t *const *b, int64_t j,
                    int nkeys, const uint8_t *desc) {
    for (int k = 0; k < nkeys; k++) {
        bool va = dt_valid(a[k], i), vb = dt_valid(b[k], j);
        if (!va || !vb) {
            if (va != vb) return va ? -1 : 1;
            continue;
        }
        int r;
        if (a[k]->type == DT_STRING) {
            r = str_cmp(a[k], i, b[k], j);
        } else {
            uint64_t x = num_key(a[k], i), y = num_key(b[k], j);
            r = (x > y) - (x < y);
        }
        if (r) return desc[k] ? -r : r;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The tasks
 * ---------------------------------------------------------------------------------------- */

/* Checks that a partition with rows has the key columns; fails the task otherwise (a
 * partition not of our tables: never from our tasks). */
static bool check_keys(const dagr_task_view_t *task, const sort_spec_t *sp, const dt_part_t *in) {
    for (int k = 0; in->nrows > 0 && k < sp->nkeys; k++)
        if (sp->key[k] >= in->ncols) {
            dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: a partition has %d columns, key %d is %d",
                           in->ncols, k, sp->key[k]);
            return false;
        }
    return true;
}

/* A new int64 / float64 column of n rows, values uninitialised; false when out of memory. */
static bool column_alloc(dt_column_t *c, dt_type_t type, int64_t n) {
    *c = (dt_column_t){.type = type, .n = n};
    c->values = dt_alloc((size_t)n * 8);
    return c->values != NULL;
}

/* Sample task: input 0 is partition p, output 1 its sample: the key columns at evenly spaced
 * rows, then _p (p), _i (the row) and _w (the rows each sample stands for). */
static dagr_task_result_t sample_task(const dagr_task_view_t *task) {
    sort_spec_t sp;
    memcpy(&sp, task->args, sizeof sp);
    dt_part_t in;
    if (!dt_task_view(task, 0, &in)) return DAGR_TASK_ERROR;
    bool ok = check_keys(task, &sp, &in);
    int nc = sp.nkeys + 3;
    int64_t n = in.nrows;
    /* About 256 samples per destination over all inputs, at least 256 per input. */
    int64_t want = (256 * (int64_t)sp.nout + sp.nparts - 1) / sp.nparts;
    want = want < 256 ? 256 : want > 65536 ? 65536 : want;
    int64_t S = n < want ? n : want;
    dt_column_t *cols = calloc((size_t)nc, sizeof *cols);
    const char **names = calloc((size_t)nc, sizeof *names);
    int made = 0;
    if (ok && (!cols || !names)) ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    if (ok && column_alloc(&cols[sp.nkeys], DT_INT64, S) &&
        column_alloc(&cols[sp.nkeys + 1], DT_INT64, S) &&
        column_alloc(&cols[sp.nkeys + 2], DT_FLOAT64, S)) {
        int64_t *pc = cols[sp.nkeys].values, *ic = cols[sp.nkeys + 1].values;
        double *wc = cols[sp.nkeys + 2].values;
        for (int64_t s = 0; s < S; s++) {
            pc[s] = sp.p;
            ic[s] = (int64_t)((__int128)(2 * s + 1) * n / (2 * S));
            wc[s] = (double)n / (double)S;
        }
        for (; made < sp.nkeys; made++) {
            /* (an empty partition's sample: columns of no row, of any type) */
            int rc = n == 0 ? (column_alloc(&cols[made], DT_INT64, 0) ? 0 : -ENOMEM)
                            : dt_column_take(&in.cols[sp.key[made]], ic, S, &cols[made]);
            if (rc) {
                ok = (dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, "sort: sampling failed"),
                      false);
                break;
            }
            names[made] = n == 0 ? "_k" : in.names[sp.key[made]];
        }
        names[sp.nkeys] = "_p";
        names[sp.nkeys + 1] = "_i";
        names[sp.nkeys + 2] = "_w";
        if (ok) ok = dt_task_write(task, 1, nc, names, cols);
    } else if (ok) {
        ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    }
    for (int j = 0; cols && j < nc; j++)
        if (j < made || j >= sp.nkeys) dt_column_free(&cols[j]);
    dt_free(cols);
    dt_free(names);
    dt_part_free(&in);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t sample_kernel = {"dtable_sort_sample", sample_task, NULL, {NULL}};

/* Views inputs [0, n) of a task into parts (n entries). False (task failed) on error, with
 * the views made freed. */
static bool view_all(const dagr_task_view_t *task, int n, dt_part_t *parts) {
    for (int i = 0; i < n; i++)
        if (!dt_task_view(task, i, &parts[i])) {
            while (i-- > 0)
                dt_part_free(&parts[i]);
            return false;
        }
    return true;
}

/* The columns of parts[0, n) (all of ncols columns of the same types) concatenated into cols
 * (owned); 0 or -ENOMEM / -EINVAL. */
static int concat_parts(const dt_part_t *parts, int n, int ncols, dt_column_t *cols) {
    const dt_column_t **src = malloc(((size_t)n + 1) * sizeof *src);
    if (!src) return -ENOMEM;
    int rc = 0, j = 0;
    for (; rc == 0 && j < ncols; j++) {
        for (int i = 0; i < n; i++)
            src[i] = &parts[i].cols[j];
        rc = dt_column_concat(src, n, parts[0].cols[j].type, &cols[j]);
    }
    if (rc)
        for (j -= 2; j >= 0; j--)
            dt_column_free(&cols[j]);
    dt_free(src);
    return rc;
}

/* Splitter task (rank 0): inputs 0 .. nparts - 1 the samples, output nparts the splitters:
 * the key columns, _p and _i of nout - 1 sampled rows (fewer when there are no samples), in
 * order. */
static dagr_task_result_t splitter_task(const dagr_task_view_t *task) {
    sort_spec_t sp;
    memcpy(&sp, task->args, sizeof sp);
    int np = sp.nparts, nk = sp.nkeys, nc = nk + 3;
    dt_part_t *parts = calloc((size_t)np, sizeof *parts);
    if (!parts) return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    if (!view_all(task, np, parts)) {
        dt_free(parts);
        return DAGR_TASK_ERROR;
    }
    /* The samples with rows (an empty partition's columns may be of no use: some writers
     * give empty partitions placeholder types), or sample 0 when none has any. */
    dt_part_t *use = calloc((size_t)np, sizeof *use);
    int nuse = 0;
    bool ok = use != NULL;
    if (!ok) dt_task_fail_code(task, -ENOMEM, 0, NULL);
    for (int i = 0; ok && i < np; i++)
        if (parts[i].nrows > 0 || (i == np - 1 && nuse == 0)) use[nuse++] = parts[i];
    for (int i = 0; ok && i < nuse; i++) {
        bool same = use[i].ncols == nc && use[i].cols[nc - 1].type == DT_FLOAT64;
        for (int j = 0; same && j < nc; j++)
            same = use[i].cols[j].type == use[0].cols[j].type;
        if (!same)
            ok = (dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: samples of different columns"),
                  false);
    }
    dt_column_t *cols = calloc((size_t)nc, sizeof *cols), out[SORT_MAX_KEYS + 2];
    const char *names[SORT_MAX_KEYS + 2];
    int32_t idx[SORT_MAX_KEYS];
    int64_t *perm = NULL, *sel = NULL;
    bool have = false;
    int made = 0;
    if (ok && !cols) ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    if (ok) {
        int rc = concat_parts(use, nuse, nc, cols);
        if (rc) ok = (dt_task_fail_code(task, rc, DAGR_ERR_FORMAT, "sort: samples differ"), false);
        have = ok;
    }
    int64_t m = have ? cols[0].n : 0, ns = 0;
    if (ok) {
        perm = malloc(((size_t)m + 1) * sizeof *perm);
        sel = malloc((size_t)sp.nout * sizeof *sel);
        for (int k = 0; k < nk; k++)
            idx[k] = k;
        if (!perm || !sel || sort_perm(cols, nk, idx, sp.desc, m, perm))
            ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    }
    if (ok) {
        /* Splitter q (1 <= q < nout) is the sample where the cumulative weight reaches
         * q / nout of the total; a row goes to the number of splitters below it. */
        const double *w = cols[nc - 1].values;
        double total = 0, acc = 0;
        for (int64_t j = 0; j < m; j++)
            total += w[j];
        int q = 1;
        for (int64_t j = 0; j < m && q < sp.nout; j++) {
            acc += w[perm[j]];
            while (q < sp.nout && acc >= total * q / sp.nout) {
                sel[ns++] = perm[j];
                q++;
            }
        }
        for (; made < nk + 2; made++) {
            int rc = dt_column_take(&cols[made], sel, ns, &out[made]);
            if (rc) {
                ok = (dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, "sort: splitters"), false);
                break;
            }
            names[made] = use[0].names[made];
        }
        if (ok) ok = dt_task_write(task, np, nk + 2, names, out);
    }
    for (int j = 0; j < made; j++)
        dt_column_free(&out[j]);
    for (int j = 0; have && j < nc; j++)
        dt_column_free(&cols[j]);
    dt_free(cols);
    dt_free(perm);
    dt_free(sel);
    dt_free(use);
    for (int i = 0; i < np; i++)
        dt_part_free(&parts[i]);
    dt_free(parts);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t splitter_kernel = {"dtable_sort_splitters", splitter_task, NULL, {NULL}};

/* Route task: input 0 partition p, input 1 the splitters, outputs 2 .. 2 + nout - 1 the
 * buckets (p, q): each row to the number of splitters below it in the (keys, p, row) order,
 * in input order within a bucket. */
static dagr_task_result_t route_task(const dagr_task_view_t *task) {
    sort_spec_t sp;
    memcpy(&sp, task->args, sizeof sp);
    int nk = sp.nkeys, nout = sp.nout;
    dt_part_t v[2];
    if (!view_all(task, 2, v)) return DAGR_TASK_ERROR;
    const dt_part_t *in = &v[0], *spl = &v[1];
    bool ok = check_keys(task, &sp, in);
    if (ok && (spl->ncols != nk + 2 || (spl->nrows && spl->cols[nk].type != DT_INT64)))
        ok = (dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: splitters of %d columns", spl->ncols),
              false);
    const dt_column_t *a[SORT_MAX_KEYS], *b[SORT_MAX_KEYS];
    for (int k = 0; ok && k < nk; k++) {
        a[k] = &in->cols[sp.key[k]];
        b[k] = &spl->cols[k];
        if (spl->nrows && in->nrows && a[k]->type != b[k]->type)
            ok = (dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: splitter types differ"), false);
    }
    size_t n = (size_t)in->nrows;
    uint32_t *dest = dt_alloc((n + 1) * sizeof *dest);
    if (ok && !dest) ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    if (ok) {
        int64_t ns = spl->nrows;
        const int64_t *sp_p = ns ? spl->cols[nk].values : NULL;
        const int64_t *sp_i = ns ? spl->cols[nk + 1].values : NULL;
        uint64_t *sk = NULL;
        if (nk == 1 && a[0]->type != DT_STRING && ns > 0 && (sk = malloc((size_t)ns * 8))) {
            /* One fixed-width key: compare (null, order key, p, row) tuples, no calls. */
            uint64_t flip = sp.desc[0] ? ~0ull : 0;
            for (int64_t m = 0; m < ns; m++)
                sk[m] = dt_valid(b[0], m) ? num_key(b[0], m) ^ flip : 0;
            for (size_t i = 0; i < n; i++) {
                bool rn = !dt_valid(a[0], (int64_t)i);
                uint64_t rk = rn ? 0 : num_key(a[0], (int64_t)i) ^ flip;
                int64_t lo = 0, hi = ns;
                while (lo < hi) {
                    int64_t mid = lo + (hi - lo) / 2;
                    bool sn = !dt_valid(b[0], mid);
                    bool below = sn != rn        ? rn
                                 : sk[mid] != rk ? sk[mid] < rk
                                                 : (sp_p[mid] != sp.p ? sp_p[mid] < sp.p
                                                                      : sp_i[mid] < (int64_t)i);
                    if (below)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                dest[i] = (uint32_t)lo;
            }
        }
        for (size_t i = 0; !sk && i < n; i++) {
            int64_t lo = 0, hi = ns;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                int c = cmp_rows(b, mid, a, (int64_t)i, nk, sp.desc);
                if (c == 0)
                    c = sp_p[mid] != sp.p ? (sp_p[mid] > sp.p) - (sp_p[mid] < sp.p)
                                          : (sp_i[mid] > (int64_t)i) - (sp_i[mid] < (int64_t)i);
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            dest[i] = (uint32_t)lo;
        }
        dt_free(sk);
    }
    if (ok) ok = dt_scatter(task, 2, nout, in->ncols, in->names, in->cols, (int64_t)n, dest);
    dt_free(dest);
    dt_part_free(&v[0]);
    dt_part_free(&v[1]);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t route_kernel = {"dtable_sort_route", route_task, NULL, {NULL}};

/* Sort task: inputs 0 .. nall - 1 the buckets (p, q) for p = 0, 1, ... (or the one input
 * partition), output nall partition q of the result: their rows, sorted, gathered straight
 * into the output (from the one input with rows, or from the inputs concatenated). */
static dagr_task_result_t local_sort_task(const dagr_task_view_t *task) {
    sort_spec_t sp;
    memcpy(&sp, task->args, sizeof sp);
    int nall = task->nbuf - 1;
    dt_part_t *all = calloc((size_t)nall, sizeof *all), *parts = calloc((size_t)nall, sizeof *all);
    if (!all || !parts || !view_all(task, nall, all)) {
        if (!all || !parts) dt_task_fail_code(task, -ENOMEM, 0, NULL);
        dt_free(all);
        dt_free(parts);
        return DAGR_TASK_ERROR;
    }
    /* The inputs with rows (an empty partition's columns may be placeholders: some writers
     * type empty partitions loosely), or input 0 when none has any. */
    int nin = 0;
    for (int i = 0; i < nall; i++)
        if (all[i].nrows > 0 || (i == nall - 1 && nin == 0)) parts[nin++] = all[i];
    int nc = parts[0].ncols;
    bool ok = true;
    for (int i = 0; ok && i < nin; i++)
        if (parts[i].ncols != nc)
            ok = (dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: buckets of %d and %d columns", nc,
                                 parts[i].ncols),
                  false);
    for (int i = 0; ok && i < nin; i++)
        ok = check_keys(task, &sp, &parts[i]);
    for (int i = 1; ok && i < nin; i++)
        for (int j = 0; ok && j < nc; j++)
            if (parts[i].cols[j].type != parts[0].cols[j].type)
                ok = (dagr_task_fail(task, DAGR_ERR_FORMAT, "sort: buckets' column %d differ", j),
                      false);
    /* cols: the rows of every input, as one set of columns. */
    dt_column_t *cols = NULL;
    const dt_column_t **src = calloc((size_t)nin + 1, sizeof *src);
    int64_t *perm = NULL, n = 0;
    int made = 0;
    if (ok && !src) ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    if (ok && nin == 1) {
        cols = parts[0].cols;
    } else if (ok) {
        cols = calloc((size_t)nc + 1, sizeof *cols);
        if (!cols) ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
        for (; ok && made < nc; made++) {
            for (int i = 0; i < nin; i++)
                src[i] = &parts[i].cols[made];
            int rc = dt_column_concat(src, nin, src[0]->type, &cols[made]);
            if (rc) ok = (dt_task_fail_code(task, rc, 0, NULL), false);
        }
    }
    for (int i = 0; ok && i < nin; i++)
        n += parts[i].nrows;
    if (ok) {
        perm = dt_alloc(((size_t)n + 1) * sizeof *perm);
        if (!perm || sort_perm(cols, sp.nkeys, sp.key, sp.desc, n, perm))
            ok = (dt_task_fail_code(task, -ENOMEM, 0, NULL), false);
    }
    if (ok) ok = dt_task_write_rows(task, nall, nc, parts[0].names, cols, perm, n);
    if (nin > 1 && cols) {
        for (int j = 0; j < made; j++)
            dt_column_free(&cols[j]);
        dt_free(cols);
    }
    dt_free(src);
    dt_free(perm);
    for (int i = 0; i < nall; i++)
        dt_part_free(&all[i]);
    dt_free(all);
    dt_free(parts);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t local_sort_kernel = {"dtable_sort_local", local_sort_task, NULL, {NULL}};

/* ------------------------------------------------------------------------------------------
 * The call
 * ---------------------------------------------------------------------------------------- */

static dagr_status_t spawn_on(dagr_ctx_t *ctx, const dagr_kernel_t *k, const sort_spec_t *sp,
                              int naccess, const dagr_access_t *acc, int rank) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = rank;
    return dagr_spawn(ctx, k, sp, sizeof *sp, naccess, acc, &o);
}

/* Inserts the sample, splitter, route and sort tasks of t into r (nparts >= 2). */
static dagr_status_t spawn_sort(dagr_dtable_t *t, sort_spec_t *sp, dagr_dtable_t *r) {
    dagr_ctx_t *ctx = t->ctx;
    int np = t->nparts, nout = r->nparts;
    size_t nb = (size_t)np * (size_t)nout;
    dagr_data_t **samples = calloc((size_t)np, sizeof *samples), *splitters = NULL;
    dagr_data_t **buckets = calloc(nb, sizeof *buckets);
    int nacc = (np > nout ? np : nout) + 2;
    dagr_access_t *acc = calloc((size_t)nacc, sizeof *acc);
    dagr_status_t s =
        samples && buckets && acc ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "sort: out of memory");
    for (int p = 0; p < np && s == DAGR_OK; p++)
        s = dagr_data_create_dynamic(ctx, dt_part_rank(ctx, p), &samples[p]);
    if (s == DAGR_OK) s = dagr_data_create_dynamic(ctx, 0, &splitters);
    for (size_t k = 0; k < nb && s == DAGR_OK; k++)
        s = dagr_data_create_dynamic(ctx, dt_part_rank(ctx, (int)(k % (size_t)nout)), &buckets[k]);
    for (int p = 0; p < np && s == DAGR_OK; p++) {
        sp->p = p;
        acc[0] = (dagr_access_t){t->parts[p], DAGR_READ};
        acc[1] = (dagr_access_t){samples[p], DAGR_WRITE};
        s = spawn_on(ctx, &sample_kernel, sp, 2, acc, dt_part_rank(ctx, p));
    }
    if (s == DAGR_OK) {
        sp->p = 0;
        for (int p = 0; p < np; p++)
            acc[p] = (dagr_access_t){samples[p], DAGR_READ};
        acc[np] = (dagr_access_t){splitters, DAGR_WRITE};
        s = spawn_on(ctx, &splitter_kernel, sp, np + 1, acc, 0);
    }
    for (int p = 0; p < np && s == DAGR_OK; p++) {
        sp->p = p;
        acc[0] = (dagr_access_t){t->parts[p], DAGR_READ};
        acc[1] = (dagr_access_t){splitters, DAGR_READ};
        for (int q = 0; q < nout; q++)
            acc[2 + q] = (dagr_access_t){buckets[(size_t)p * (size_t)nout + (size_t)q], DAGR_WRITE};
        s = spawn_on(ctx, &route_kernel, sp, 2 + nout, acc, dt_part_rank(ctx, p));
    }
    for (int q = 0; q < nout && s == DAGR_OK; q++) {
        sp->p = q;
        for (int p = 0; p < np; p++)
            acc[p] = (dagr_access_t){buckets[(size_t)p * (size_t)nout + (size_t)q], DAGR_READ};
        acc[np] = (dagr_access_t){r->parts[q], DAGR_WRITE};
        s = spawn_on(ctx, &local_sort_kernel, sp, np + 1, acc, dt_part_rank(ctx, q));
    }
    /* The tasks inserted keep what they use; the handles go once they have run. */
    for (int p = 0; samples && p < np; p++)
        dagr_data_destroy(&samples[p]);
    dagr_data_destroy(&splitters);
    for (size_t k = 0; buckets && k < nb; k++)
        dagr_data_destroy(&buckets[k]);
    dt_free(samples);
    dt_free(buckets);
    dt_free(acc);
    return s;
}

dagr_status_t dagr_dtable_sort(dagr_dtable_t *t, int nkeys, const char *const *keys,
                               const bool *descending, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "sort: the table"));
    DAGR_CHECK(keys && out, DAGR_ERR_ARG, "sort: keys or out is NULL");
    DAGR_CHECK(nkeys >= 1 && nkeys <= SORT_MAX_KEYS, DAGR_ERR_ARG,
               "sort: nkeys (%d) must be at least 1 and at most %d", nkeys, SORT_MAX_KEYS);
    static_assert(sizeof(sort_spec_t) <= DAGR_MAX_ARGS, "sort_spec_t fits a task's arguments");
    sort_spec_t *sp = calloc(1, sizeof *sp);
    DAGR_CHECK(sp, DAGR_ERR_NOMEM, "sort: out of memory");
    sp->nparts = t->nparts;
    sp->nout = t->nparts;
    sp->nkeys = nkeys;
    dagr_status_t s = DAGR_OK;
    for (int k = 0; k < nkeys && s == DAGR_OK; k++) {
        int j = -1;
        s = dt_find_col(t, keys[k], "sort", &j);
        sp->key[k] = j;
        sp->desc[k] = descending && descending[k];
    }
    dagr_dtable_t *r = NULL;
    if (s == DAGR_OK)
        s = dt_table_new(t->ctx, t->ncols, (const char *const *)t->names, t->types, t->nparts, &r);
    if (s == DAGR_OK && t->nparts == 1) { /* one partition: a local sort */
        dagr_access_t acc[2] = {{t->parts[0], DAGR_READ}, {r->parts[0], DAGR_WRITE}};
        s = spawn_on(t->ctx, &local_sort_kernel, sp, 2, acc, dt_part_rank(t->ctx, 0));
    } else if (s == DAGR_OK && t->nparts > 1) {
        s = spawn_sort(t, sp, r);
    }
    dt_free(sp);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&r);
        return s;
    }
    r->known_rows = t->known_rows;
    *out = r;
    return DAGR_OK;
}
