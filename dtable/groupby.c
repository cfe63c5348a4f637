/* Group-by with aggregates (dagr_dtable_groupby_agg, include/dagr/dtable.h). Two stages in
 * the graph and no collective call, so a chain read -> filter -> group needs no wait:
 *   1. a partial task per input partition groups its rows (an open-addressing hash table over
 *      dt_hash_rows' hashes) and writes one row per group: the keys and each aggregate's
 *      state (an int64 sum as a 128-bit integer in two int64 columns, a float64 sum, counts,
 *      the min/max value); for each COUNT_DISTINCT it also writes the partition's distinct
 *      (keys, value) pairs, nulls left out. It writes them straight into one bucket per
 *      destination (dt_scatter; the destination its keys' hash picks, dt_route_of), so the
 *      partial rows are never a table of their own; the runtime moves each bucket to its
 *      destination's rank;
 *   2. a merge task per destination groups the partial rows it receives, folds the states
 *      and counts the pairs it has not seen, and writes the final partition.
 * Distinct counts cannot be added up from partial counts: the pairs travel instead.
 *
 * int64 sums are exact (128 bits: 2^64 rows of int64 values cannot overflow them) and turn
 * null only when the group's total does not fit int64, whatever order the rows came in.
 * float64 sums are plain left-to-right sums within a partition, then over partitions. */
#include "dtable_impl.h"

#include "expr.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 gb_i128;
__extension__ typedef unsigned __int128 gb_u128;

#define GB_MAX_KEYS 64 /* dt_route_hash's limit */

/* One aggregate as tasks see it. */
typedef struct gb_agg {
    int32_t op;    /* dagr_agg_op_t */
    int32_t col;   /* input column, -1 for COUNT_ALL */
    int32_t type;  /* that column's type (DT_INT64 for COUNT_ALL) */
    int32_t state; /* its first state column in the partial table, counted after the keys */
    int32_t dist;  /* COUNT_DISTINCT: which pairs table, else -1 */
} gb_agg_t;

/* The fixed head of the tasks' argument block; then int32 keys[nkeys] (input columns),
 * gb_agg_t aggs[naggs], and the result's schema (dt_args_schema). */
typedef struct gb_head {
    int32_t nkeys, naggs, ndist, nstate, nparts;
} gb_head_t;

/* The state columns an aggregate keeps in the partial table. */
static int state_count(int op, dt_type_t ty) {
    switch (op) {
    case DAGR_AGG_SUM:
    case DAGR_AGG_MEAN:
        return ty == DT_INT64 ? 3 : 2; /* (low, high, count) or (sum, count) */
    case DAGR_AGG_COUNT:
    case DAGR_AGG_COUNT_ALL:
    case DAGR_AGG_MIN:
    case DAGR_AGG_MAX:
        return 1;
    default:
        return 0; /* COUNT_DISTINCT: its pairs */
    }
}

static void state_types(const gb_agg_t *a, dt_type_t *st) {
    int n = state_count(a->op, (dt_type_t)a->type);
    if (a->op == DAGR_AGG_MIN || a->op == DAGR_AGG_MAX) {
        st[0] = (dt_type_t)a->type;
        return;
    }
    for (int k = 0; k < n; k++)
        st[k] = DT_INT64;
    if ((a->op == DAGR_AGG_SUM || a->op == DAGR_AGG_MEAN) && a->type == DT_FLOAT64)
        st[0] = DT_FLOAT64;
}

static dt_type_t result_type(int op, dt_type_t ty) {
    switch (op) {
    case DAGR_AGG_SUM:
    case DAGR_AGG_MIN:
    case DAGR_AGG_MAX:
        return ty;
    case DAGR_AGG_MEAN:
        return DT_FLOAT64;
    default:
        return DT_INT64;
    }
}

static const char *op_name(int op) {
    static const char *const names[] = {"sum", "count", "count_all",     "mean",
                                        "min", "max",   "count_distinct"};
    return op >= 0 && op <= DAGR_AGG_COUNT_DISTINCT ? names[op] : "?";
}

/* dt_alloc's memory, zeroed (calloc's would be malloc's). */
static void *big_calloc(size_t n, size_t size) {
    void *p = dt_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

/* ---- the hash table of groups ---- */

enum { GT_I64, GT_ANY }; /* one int64/timestamp key compared inline; anything else */

/* Groups of the rows of cols on key columns keys[0, nkeys). A slot holds the high 32 bits of
 * the group's hash (a tag that saves most key comparisons) and the group's number + 1 (0:
 * empty); it is indexed by the hash's low bits, which the shuffle (routing by the high bits)
 * leaves balanced. The load stays at most 1/2. */
typedef struct gtab {
    const dt_column_t *cols;
    const int *keys;
    int nkeys, kind;
    uint64_t *slot, mask;
    uint64_t *ghash; /* per group: its hash */
    int64_t *rep;    /* per group: its first row */
    int64_t ng, gcap;
} gtab_t;

static void gt_free(gtab_t *g) {
    dt_free(g->slot);
    dt_free(g->ghash);
    dt_free(g->rep);
    memset(g, 0, sizeof *g);
}

/* A table for the rows of cols, at most nmax groups, with slots for about `expect` groups
 * to start with. The group arrays get room for nmax at once: malloc'ed pages cost nothing
 * until written, and they never need copying. */
static int gt_init(gtab_t *g, const dt_column_t *cols, int nkeys, const int *keys, int64_t nmax,
                   int64_t expect) {
    memset(g, 0, sizeof *g);
    g->cols = cols;
    g->keys = keys;
    g->nkeys = nkeys;
    dt_type_t t0 = cols[keys[0]].type;
    g->kind = nkeys == 1 && (t0 == DT_INT64 || t0 == DT_TIMESTAMP) ? GT_I64 : GT_ANY;
    g->mask = 1023;
    while ((int64_t)g->mask < 2 * expect)
        g->mask = g->mask * 2 + 1;
    g->gcap = nmax;
    g->slot = big_calloc(g->mask + 1, sizeof *g->slot);
    g->ghash = dt_alloc(((size_t)nmax + 1) * sizeof *g->ghash);
    g->rep = dt_alloc(((size_t)nmax + 1) * sizeof *g->rep);
    if (!g->slot || !g->ghash || !g->rep) {
        gt_free(g);
        return -ENOMEM;
    }
    return 0;
}

/* Doubles the slots and puts every group back. */
static int gt_grow(gtab_t *g) {
    uint64_t mask = g->mask * 2 + 1;
    uint64_t *slot = big_calloc(mask + 1, sizeof *slot);
    if (!slot) return -ENOMEM;
    for (int64_t k = 0; k < g->ng; k++) {
        uint64_t h = g->ghash[k], s = h & mask;
        while (slot[s])
            s = (s + 1) & mask;
        slot[s] = (h >> 32 << 32) | (uint64_t)(k + 1);
    }
    dt_free(g->slot);
    g->slot = slot;
    g->mask = mask;
    return 0;
}

static inline bool gt_eq(const gtab_t *g, int kind, int64_t a, int64_t b) {
    if (kind == GT_I64) {
        const dt_column_t *c = &g->cols[g->keys[0]];
        bool va = dt_valid(c, a), vb = dt_valid(c, b);
        return va == vb &&
               (!va || ((const int64_t *)c->values)[a] == ((const int64_t *)c->values)[b]);
    }
    return dt_keys_equal(g->cols, g->keys, a, g->cols, g->keys, b, g->nkeys, true);
}

/* gid[i0 + i] = the group of row i0 + i for i in [0, m), h[i] its hash; new groups are
 * added. kind is a constant at each call so that the compiler makes one loop per kind. */
static inline int gt_group_kind(gtab_t *g, int kind, const uint64_t *h, int64_t i0, int64_t m,
                                uint32_t *gid) {
    for (int64_t i = 0; i < m; i++) {
        uint64_t hi = h[i], tag = hi >> 32 << 32, s = hi & g->mask;
        int64_t row = i0 + i;
        for (;;) {
            uint64_t e = g->slot[s];
            if (e == 0) {
                if ((uint64_t)(g->ng + 1) * 2 > g->mask + 1) {
                    if (gt_grow(g)) return -ENOMEM;
                    s = hi & g->mask;
                    while (g->slot[s])
                        s = (s + 1) & g->mask;
                }
                g->ghash[g->ng] = hi;
                g->rep[g->ng] = row;
                g->slot[s] = tag | (uint64_t)(g->ng + 1);
                gid[row] = (uint32_t)g->ng++;
                break;
            }
            if ((e & ~0xffffffffull) == tag) {
                int64_t k = (int64_t)(uint32_t)e - 1;
                if (gt_eq(g, kind, g->rep[k], row)) {
                    gid[row] = (uint32_t)k;
                    break;
                }
            }
            s = (s + 1) & g->mask;
        }
    }
    return 0;
}

/* The group whose keys equal row i of ocols on okeys (hash h), or -1. */
static int64_t gt_find(const gtab_t *g, const dt_column_t *ocols, const int *okeys, int64_t i,
                       uint64_t h) {
    uint64_t tag = h >> 32 << 32, s = h & g->mask;
    for (;;) {
        uint64_t e = g->slot[s];
        if (e == 0) return -1;
        if ((e & ~0xffffffffull) == tag) {
            int64_t k = (int64_t)(uint32_t)e - 1;
            if (dt_keys_equal(g->cols, g->keys, g->rep[k], ocols, okeys, i, g->nkeys, true))
                return k;
        }
        s = (s + 1) & g->mask;
    }
}

enum { HCHUNK = 4096 }; /* rows hashed at a time (a multiple of 8: bitmaps stay aligned) */

/* Groups rows [0, n) of cols on keys: *g holds the groups, gid (malloc'ed, n entries) each
 * row's. expect: the groups to make room for at once (the table grows past them). Returns 0
 * or -ENOMEM. */
static int group_rows(const dt_column_t *cols, int nkeys, const int *keys, int64_t n,
                      int64_t expect, gtab_t *g, uint32_t **gid) {
    uint64_t h[HCHUNK];
    *gid = dt_alloc(((size_t)n + 1) * sizeof **gid);
    int rc = *gid ? gt_init(g, cols, nkeys, keys, n, expect < n ? expect : n) : -ENOMEM;
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += HCHUNK) {
        int64_t m = n - i0 < HCHUNK ? n - i0 : HCHUNK;
        dt_hash_window(cols, nkeys, keys, i0, m, h);
        rc = g->kind == GT_I64 ? gt_group_kind(g, GT_I64, h, i0, m, *gid)
                               : gt_group_kind(g, GT_ANY, h, i0, m, *gid);
        if (rc) gt_free(g);
    }
    if (rc) {
        dt_free(*gid);
        *gid = NULL;
    }
    return rc;
}

/* ---- columns ---- */

static int col_new(dt_column_t *c, dt_type_t ty, int64_t n) {
    memset(c, 0, sizeof *c);
    c->type = ty;
    c->n = n;
    c->values = big_calloc((size_t)n + 1, ty == DT_BOOL ? 1 : 8);
    return c->values ? 0 : -ENOMEM;
}

/* Makes row i of c null (a bitmap appears, all valid, the first time). */
static int col_null(dt_column_t *c, int64_t i) {
    if (!c->valid) {
        size_t b = ((size_t)c->n + 7) / 8 + 1;
        if (!(c->valid = malloc(b))) return -ENOMEM;
        memset(c->valid, 0xff, b);
    }
    c->valid[i >> 3] &= (uint8_t) ~(1u << (i & 7));
    return 0;
}

static inline bool bit(const uint8_t *v, int64_t i) {
    return v[i >> 3] >> (i & 7) & 1;
}

/* Rows best[0, ng) of c into *out, null where best is -1. */
static int take_or_null(const dt_column_t *c, const int64_t *best, int64_t ng, dt_column_t *out) {
    int64_t *rows = big_calloc((size_t)ng + 1, sizeof *rows);
    if (!rows) return -ENOMEM;
    bool any = false;
    for (int64_t g = 0; g < ng; g++) {
        rows[g] = best[g] < 0 ? 0 : best[g];
        any |= best[g] < 0;
    }
    int rc = dt_column_take(c, rows, ng, out);
    dt_free(rows);
    for (int64_t g = 0; rc == 0 && any && g < ng; g++)
        if (best[g] < 0) rc = col_null(out, g);
    if (rc) dt_column_free(out);
    return rc;
}

/* a < b in the order of MIN/MAX: numbers, NaN above every number; strings bytewise, a prefix
 * first. */
static inline int cmp_str(const dt_column_t *c, int64_t a, int64_t b) {
    int64_t la = c->offsets[a + 1] - c->offsets[a], lb = c->offsets[b + 1] - c->offsets[b];
    int r = memcmp((const char *)c->values + c->offsets[a], (const char *)c->values + c->offsets[b],
                   (size_t)(la < lb ? la : lb));
    return r ? r : (la > lb) - (la < lb);
}

/* best[g] = the row of the least (or greatest) non-null value of c among the rows of group
 * g, the first such row on ties; -1 when the group has none. */
static void minmax_rows(const dt_column_t *c, const uint32_t *gid, int64_t n, bool is_max,
                        int64_t ng, int64_t *best) {
    for (int64_t g = 0; g < ng; g++)
        best[g] = -1;
    for (int64_t i = 0; i < n; i++) {
        if (!dt_valid(c, i)) continue;
        uint32_t g = gid[i];
        int64_t b = best[g];
        if (b < 0) {
            best[g] = i;
            continue;
        }
        bool better;
        switch (c->type) {
        case DT_FLOAT64: {
            double x = ((const double *)c->values)[i], y = ((const double *)c->values)[b];
            better = is_max ? x > y || (isnan(x) && !isnan(y)) : x < y || (isnan(y) && !isnan(x));
            break;
        }
        case DT_STRING: {
            int r = cmp_str(c, i, b);
            better = is_max ? r > 0 : r < 0;
            break;
        }
        default: {
            int64_t x = ((const int64_t *)c->values)[i], y = ((const int64_t *)c->values)[b];
            better = is_max ? x > y : x < y;
            break;
        }
        }
        if (better) best[g] = i;
    }
}

/* ---- partial aggregation ---- */

/* Aggregate a's state columns st[] for the ng groups of rows gid[0, n) of the input column
 * c (NULL for COUNT_ALL). */
static int raw_states(const gb_agg_t *a, const dt_column_t *c, const uint32_t *gid, int64_t n,
                      int64_t ng, dt_column_t *st) {
    dt_type_t sty[3];
    int ns = state_count(a->op, (dt_type_t)a->type);
    state_types(a, sty);
    int rc = 0;
    if (a->op == DAGR_AGG_MIN || a->op == DAGR_AGG_MAX) {
        int64_t *best = dt_alloc(((size_t)ng + 1) * sizeof *best);
        if (!best) return -ENOMEM;
        minmax_rows(c, gid, n, a->op == DAGR_AGG_MAX, ng, best);
        rc = take_or_null(c, best, ng, &st[0]);
        dt_free(best);
        return rc;
    }
    for (int k = 0; k < ns && rc == 0; k++)
        rc = col_new(&st[k], sty[k], ng);
    if (rc) {
        for (int k = 0; k < ns; k++)
            dt_column_free(&st[k]);
        return rc;
    }
    int64_t *cnt = st[ns - 1].values;
    const uint8_t *valid = c ? c->valid : NULL;
    if (a->op == DAGR_AGG_COUNT_ALL || (a->op == DAGR_AGG_COUNT && !valid)) {
        for (int64_t i = 0; i < n; i++)
            cnt[gid[i]]++;
    } else if (a->op == DAGR_AGG_COUNT) {
        for (int64_t i = 0; i < n; i++)
            cnt[gid[i]] += bit(valid, i);
    } else if (a->type == DT_FLOAT64) { /* SUM, MEAN */
        const double *v = c->values;
        double *s = st[0].values;
        if (!valid) {
            for (int64_t i = 0; i < n; i++) {
                s[gid[i]] += v[i];
                cnt[gid[i]]++;
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                if (bit(valid, i)) {
                    s[gid[i]] += v[i];
                    cnt[gid[i]]++;
                }
        }
    } else { /* SUM, MEAN of int64: 128-bit sums, written as low and high words */
        const int64_t *v = c->values;
        gb_i128 *s = big_calloc((size_t)ng + 1, sizeof *s);
        if (!s) {
            for (int k = 0; k < ns; k++)
                dt_column_free(&st[k]);
            return -ENOMEM;
        }
        if (!valid) {
            for (int64_t i = 0; i < n; i++) {
                s[gid[i]] += v[i];
                cnt[gid[i]]++;
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                if (bit(valid, i)) {
                    s[gid[i]] += v[i];
                    cnt[gid[i]]++;
                }
        }
        int64_t *lo = st[0].values, *hi = st[1].values;
        for (int64_t g = 0; g < ng; g++) {
            lo[g] = (int64_t)(uint64_t)s[g];
            hi[g] = (int64_t)(s[g] >> 64);
        }
        dt_free(s);
    }
    return 0;
}

/* ---- task arguments ---- */

typedef struct gb_plan {
    gb_head_t h;
    int keys[GB_MAX_KEYS];
    gb_agg_t *aggs;
    int rncols; /* the result's schema (merge tasks) */
    const char **rnames;
    dt_type_t *rtypes;
} gb_plan_t;

static void plan_free(gb_plan_t *pl) {
    dt_free(pl->aggs);
    dt_free(pl->rnames);
    dt_free(pl->rtypes);
}

static bool plan_read(const dagr_task_view_t *task, gb_plan_t *pl) {
    memset(pl, 0, sizeof *pl);
    dt_argr_t r;
    dt_argr_init(&r, task);
    dt_argr_get(&r, &pl->h, sizeof pl->h);
    for (int k = 0; k < pl->h.nkeys; k++) {
        int32_t j;
        dt_argr_get(&r, &j, sizeof j);
        pl->keys[k] = j;
    }
    pl->aggs = malloc(((size_t)pl->h.naggs + 1) * sizeof *pl->aggs);
    if (!pl->aggs) return false;
    for (int a = 0; a < pl->h.naggs; a++)
        dt_argr_get(&r, &pl->aggs[a], sizeof pl->aggs[a]);
    if (!dt_argr_schema(&r, &pl->rncols, &pl->rnames, &pl->rtypes)) {
        dt_free(pl->aggs);
        pl->aggs = NULL;
        return false;
    }
    return true;
}

/* The partial table's state column names: "_s0", "_s1", ... into buf (16 bytes each). */
static void state_names(int nstate, char (*buf)[16], const char **names) {
    for (int k = 0; k < nstate; k++) {
        snprintf(buf[k], 16, "_s%d", k);
        names[k] = buf[k];
    }
}

/* Checks that partition p has ncols columns of the types given. */
static bool check_part(const dagr_task_view_t *task, const dt_part_t *p, int ncols, const int *idx,
                       const dt_type_t *types, const char *what) {
    if (p->ncols != ncols && !idx) {
        dagr_task_fail(task, DAGR_ERR_FORMAT, "groupby_agg: %s has %d columns, not %d", what,
                       p->ncols, ncols);
        return false;
    }
    for (int k = 0; k < ncols; k++) {
        int j = idx ? idx[k] : k;
        if (j >= p->ncols || p->cols[j].type != types[k]) {
            dagr_task_fail(task, DAGR_ERR_FORMAT,
                           "groupby_agg: %s does not have the table's schema (column %d)", what, j);
            return false;
        }
    }
    if (p->nrows >= (int64_t)UINT32_MAX) {
        dagr_task_fail(task, DAGR_ERR_ARG,
                       "groupby_agg: %s has %lld rows; a partition may hold at most %lld", what,
                       (long long)p->nrows, (long long)UINT32_MAX - 1);
        return false;
    }
    return true;
}

/* The destinations (dt_route_of) of rows [0, n) of cols, whose first nk columns are the keys;
 * *dest is malloc'ed. */
static int route_rows(const dt_column_t *cols, int64_t n, int nk, int nout, uint32_t **dest) {
    int idx[GB_MAX_KEYS];
    for (int k = 0; k < nk; k++)
        idx[k] = k;
    if (!(*dest = dt_alloc(((size_t)n + 1) * sizeof **dest))) return -ENOMEM;
    uint64_t h[HCHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += HCHUNK) {
        int64_t m = n - i0 < HCHUNK ? n - i0 : HCHUNK;
        dt_hash_window(cols, nk, idx, i0, m, h);
        for (int64_t i = 0; i < m; i++)
            (*dest)[i0 + i] = dt_route_of(h[i], (uint32_t)nout);
    }
    return 0;
}

/* Accesses: the input partition; then the buckets (p, q) of the partial states for every q;
 * then those of each COUNT_DISTINCT's pairs. */
static dagr_task_result_t partial_task(const dagr_task_view_t *task) {
    gb_plan_t pl;
    if (!plan_read(task, &pl)) return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    int nk = pl.h.nkeys, ns = pl.h.nstate, ncol = nk + ns, nout = pl.h.nparts;
    dt_part_t in;
    if (!dt_task_view(task, 0, &in)) {
        plan_free(&pl);
        return DAGR_TASK_ERROR;
    }
    bool ok = false;
    int rc = 0;
    gtab_t g = {0};
    uint32_t *gid = NULL;
    dt_column_t *out = calloc((size_t)ncol + 2, sizeof *out);
    const char **names = calloc((size_t)ncol + 2, sizeof *names);
    char(*sbuf)[16] = calloc((size_t)ns + 1, sizeof *sbuf);
    dt_type_t *kt = calloc((size_t)nk + 1, sizeof *kt);
    int pk[GB_MAX_KEYS + 1];
    if (!out || !names || !sbuf || !kt) {
        rc = -ENOMEM;
        goto done;
    }
    for (int k = 0; k < nk; k++)
        kt[k] = pl.rtypes[k];
    if (!check_part(task, &in, nk, pl.keys, kt, "an input partition")) goto done;
    for (int a = 0; a < pl.h.naggs; a++) {
        const gb_agg_t *ag = &pl.aggs[a];
        dt_type_t ty = (dt_type_t)ag->type;
        int col = ag->col;
        if (col >= 0 && !check_part(task, &in, 1, &col, &ty, "an input partition")) goto done;
    }
    int64_t n = in.nrows;
    if ((rc = group_rows(in.cols, nk, pl.keys, n, 1 << 14, &g, &gid))) goto done;
    for (int k = 0; k < nk; k++) {
        names[k] = in.names[pl.keys[k]];
        if ((rc = dt_column_take(&in.cols[pl.keys[k]], g.rep, g.ng, &out[k]))) goto done;
    }
    state_names(ns, sbuf, names + nk);
    for (int a = 0; a < pl.h.naggs; a++) {
        const gb_agg_t *ag = &pl.aggs[a];
        if (ag->op == DAGR_AGG_COUNT_DISTINCT) continue;
        const dt_column_t *c = ag->col >= 0 ? &in.cols[ag->col] : NULL;
        if ((rc = raw_states(ag, c, gid, n, g.ng, &out[nk + ag->state]))) goto done;
    }
    uint32_t *dest = malloc(((size_t)g.ng + 1) * sizeof *dest);
    if (!dest) {
        rc = -ENOMEM;
        goto done;
    }
    for (int64_t k = 0; k < g.ng; k++)
        dest[k] = dt_route_of(g.ghash[k], (uint32_t)nout);
    bool wrote = dt_scatter(task, 1, nout, ncol, names, out, g.ng, dest);
    dt_free(dest);
    if (!wrote) goto done;
    for (int j = 0; j < ncol; j++)
        dt_column_free(&out[j]);

    /* The distinct (keys, value) pairs of each COUNT_DISTINCT, non-null values only. */
    for (int k = 0; k < nk; k++)
        pk[k] = pl.keys[k];
    for (int a = 0; a < pl.h.naggs; a++) {
        const gb_agg_t *ag = &pl.aggs[a];
        if (ag->op != DAGR_AGG_COUNT_DISTINCT) continue;
        pk[nk] = ag->col;
        gtab_t d;
        uint32_t *did;
        if ((rc = group_rows(in.cols, nk + 1, pk, n, 1 << 14, &d, &did))) goto done;
        dt_free(did);
        const dt_column_t *v = &in.cols[ag->col];
        int64_t m = 0;
        for (int64_t r = 0; r < d.ng; r++)
            if (dt_valid(v, d.rep[r])) d.rep[m++] = d.rep[r];
        for (int k = 0; k <= nk && rc == 0; k++)
            rc = dt_column_take(&in.cols[pk[k]], d.rep, m, &out[k]);
        gt_free(&d);
        if (rc) goto done;
        const char *pn[GB_MAX_KEYS + 1];
        for (int k = 0; k < nk; k++)
            pn[k] = names[k];
        pn[nk] = "_v";
        uint32_t *pdest;
        bool w = false;
        if ((rc = route_rows(out, m, nk, nout, &pdest)) == 0) {
            w = dt_scatter(task, 1 + (1 + ag->dist) * nout, nout, nk + 1, pn, out, m, pdest);
            dt_free(pdest);
        }
        for (int k = 0; k <= nk; k++)
            dt_column_free(&out[k]);
        if (rc || !w) goto done;
    }
    ok = true;
done:
    if (rc) dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, "groupby_agg: partial aggregation");
    for (int j = 0; out && j < ncol; j++)
        dt_column_free(&out[j]);
    gt_free(&g);
    dt_free(gid);
    dt_free(out);
    dt_free(names);
    dt_free(sbuf);
    dt_free(kt);
    dt_part_free(&in);
    plan_free(&pl);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t partial_kernel = {"dtable_groupby_partial", partial_task, NULL, {NULL}};

/* ---- merging ---- */

/* The final column of aggregate a (not COUNT_DISTINCT) from its state columns st over rows
 * gid[0, n) of the partial rows, ng groups. */
static int merge_states(const gb_agg_t *a, const dt_column_t *st, const uint32_t *gid, int64_t n,
                        int64_t ng, dt_column_t *res) {
    if (a->op == DAGR_AGG_MIN || a->op == DAGR_AGG_MAX) {
        int64_t *best = dt_alloc(((size_t)ng + 1) * sizeof *best);
        if (!best) return -ENOMEM;
        minmax_rows(&st[0], gid, n, a->op == DAGR_AGG_MAX, ng, best);
        int rc = take_or_null(&st[0], best, ng, res);
        dt_free(best);
        return rc;
    }
    dt_type_t rty = result_type(a->op, (dt_type_t)a->type);
    if (col_new(res, rty, ng)) return -ENOMEM;
    int ns = state_count(a->op, (dt_type_t)a->type);
    const int64_t *c = st[ns - 1].values;
    if (a->op == DAGR_AGG_COUNT || a->op == DAGR_AGG_COUNT_ALL) {
        int64_t *r = res->values;
        for (int64_t i = 0; i < n; i++)
            r[gid[i]] += c[i];
        return 0;
    }
    /* SUM, MEAN. float64 sums add up in the result itself. */
    int64_t *cnt = big_calloc((size_t)ng + 1, sizeof *cnt);
    gb_i128 *si = a->type == DT_INT64 ? big_calloc((size_t)ng + 1, sizeof *si) : NULL;
    double *sd = a->type == DT_FLOAT64 ? res->values : NULL;
    int rc = 0;
    if (!cnt || (!si && !sd)) {
        rc = -ENOMEM;
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        cnt[gid[i]] += c[i];
    if (si) {
        const int64_t *lo = st[0].values, *hi = st[1].values;
        for (int64_t i = 0; i < n; i++)
            si[gid[i]] += (gb_i128)(((gb_u128)(uint64_t)hi[i] << 64) | (uint64_t)lo[i]);
    } else {
        const double *s = st[0].values;
        for (int64_t i = 0; i < n; i++)
            sd[gid[i]] += s[i];
    }
    for (int64_t g = 0; g < ng && rc == 0; g++) {
        if (cnt[g] == 0) {
            rc = col_null(res, g);
        } else if (a->op == DAGR_AGG_MEAN) {
            ((double *)res->values)[g] = (si ? (double)si[g] : sd[g]) / (double)cnt[g];
        } else if (sd) {
            continue;
        } else if (si[g] < INT64_MIN || si[g] > INT64_MAX) {
            rc = col_null(res, g); /* the sum overflows int64 */
        } else {
            ((int64_t *)res->values)[g] = (int64_t)si[g];
        }
    }
out:
    dt_free(cnt);
    dt_free(si);
    if (rc) dt_column_free(res);
    return rc;
}

/* Column j of parts[0, np), all of type ty, one after another in *out (new). */
static int concat_col(const dt_part_t *parts, int np, int j, dt_type_t ty, dt_column_t *out) {
    const dt_column_t **src = malloc(((size_t)np + 1) * sizeof *src);
    if (!src) return -ENOMEM;
    for (int p = 0; p < np; p++)
        src[p] = &parts[p].cols[j];
    int rc = dt_column_concat(src, np, ty, out);
    dt_free(src);
    return rc;
}

/* The ncols columns of parts[0, np) (each checked to have the types given) one after
 * another in cols: copies (*owned true), or views of the one part with rows when no other
 * has any (*owned false: the common case of a single partition needs no copy). */
static int concat_parts(const dt_part_t *parts, int np, int ncols, const dt_type_t *types,
                        dt_column_t *cols, bool *owned) {
    int with_rows = 0, only = 0;
    for (int p = 0; p < np; p++)
        if (parts[p].nrows > 0) {
            with_rows++;
            only = p;
        }
    if (with_rows <= 1) {
        for (int j = 0; j < ncols; j++)
            cols[j] = parts[only].cols[j];
        *owned = false;
        return 0;
    }
    int rc = 0, j = 0;
    for (; j < ncols && rc == 0; j++)
        rc = concat_col(parts, np, j, types[j], &cols[j]);
    if (rc)
        for (int k = 0; k < j - 1; k++)
            dt_column_free(&cols[k]);
    *owned = rc == 0;
    return rc;
}

/* The distinct count of each group of g from the pairs D (nk key columns, then the value,
 * every partition's pairs one after another): the pairs are deduplicated again and each
 * counted in its group, into *res (int64, g->ng rows). */
static int count_pairs(const gtab_t *g, const dt_column_t *D, int nk, dt_column_t *res) {
    int idx[GB_MAX_KEYS + 1];
    for (int k = 0; k <= nk; k++)
        idx[k] = k;
    int64_t m = D[0].n;
    gtab_t d;
    uint32_t *did;
    int rc = group_rows(D, nk + 1, idx, m, m, &d, &did);
    if (rc) return rc;
    rc = col_new(res, DT_INT64, g->ng);
    if (rc == 0) {
        /* A pair is new where it is its group's first row; its keys find the group. */
        uint64_t h[HCHUNK];
        int64_t *cnt = res->values;
        for (int64_t i0 = 0; i0 < m && rc == 0; i0 += HCHUNK) {
            int64_t w = m - i0 < HCHUNK ? m - i0 : HCHUNK;
            dt_hash_window(D, nk, idx, i0, w, h);
            for (int64_t i = i0; i < i0 + w && rc == 0; i++) {
                if (d.rep[did[i]] != i) continue;
                int64_t grp = gt_find(g, D, idx, i, h[i - i0]);
                if (grp < 0)
                    rc = -EINVAL; /* a pair without its group: never */
                else
                    cnt[grp]++;
            }
        }
        if (rc) dt_column_free(res);
    }
    dt_free(did);
    gt_free(&d);
    return rc;
}

/* Accesses: bucket (p, q) of the partial table for every p, then those of each pairs table,
 * then the result's partition q. */
static dagr_task_result_t merge_task(const dagr_task_view_t *task) {
    gb_plan_t pl;
    if (!plan_read(task, &pl)) return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    int nk = pl.h.nkeys, ns = pl.h.nstate, np = pl.h.nparts, nd = pl.h.ndist;
    int nin = np * (1 + nd), ncol = nk + ns;
    dt_part_t *parts = calloc((size_t)nin + 1, sizeof *parts);
    dt_type_t *ptypes = calloc((size_t)ncol + 2, sizeof *ptypes);
    dt_column_t *C = calloc((size_t)ncol + 2, sizeof *C);
    dt_column_t *res = calloc((size_t)pl.rncols + 1, sizeof *res);
    dt_column_t D[GB_MAX_KEYS + 1];
    uint32_t *gid = NULL;
    gtab_t g = {0};
    int nv = 0, rc = 0, idx[GB_MAX_KEYS + 1];
    bool ok = false, have_c = false;
    memset(D, 0, sizeof D);
    if (!parts || !ptypes || !C || !res) {
        rc = -ENOMEM;
        goto done;
    }
    for (int k = 0; k < nk; k++) {
        ptypes[k] = pl.rtypes[k];
        idx[k] = k;
    }
    for (int a = 0; a < pl.h.naggs; a++)
        if (pl.aggs[a].op != DAGR_AGG_COUNT_DISTINCT)
            state_types(&pl.aggs[a], ptypes + nk + pl.aggs[a].state);
    for (; nv < nin; nv++)
        if (!dt_task_view(task, nv, &parts[nv])) goto done;
    for (int p = 0; p < np; p++)
        if (!check_part(task, &parts[p], ncol, NULL, ptypes, "a partial bucket")) goto done;
    if ((rc = concat_parts(parts, np, ncol, ptypes, C, &have_c))) goto done;
    int64_t n = C[0].n;
    if (n >= (int64_t)UINT32_MAX) {
        dagr_task_fail(task, DAGR_ERR_ARG,
                       "groupby_agg: %lld partial rows meet in one partition; at most %lld",
                       (long long)n, (long long)UINT32_MAX - 1);
        goto done;
    }
    if ((rc = group_rows(C, nk, idx, n, n, &g, &gid))) goto done;
    for (int k = 0; k < nk; k++)
        if ((rc = dt_column_take(&C[k], g.rep, g.ng, &res[k]))) goto done;
    for (int a = 0; a < pl.h.naggs; a++) {
        const gb_agg_t *ag = &pl.aggs[a];
        if (ag->op == DAGR_AGG_COUNT_DISTINCT) {
            const dt_part_t *dp = &parts[np * (1 + ag->dist)];
            ptypes[nk] = (dt_type_t)ag->type;
            for (int p = 0; p < np; p++)
                if (!check_part(task, &dp[p], nk + 1, NULL, ptypes, "a distinct bucket")) goto done;
            bool downed;
            if ((rc = concat_parts(dp, np, nk + 1, ptypes, D, &downed))) goto done;
            rc = count_pairs(&g, D, nk, &res[nk + a]);
            for (int k = 0; downed && k <= nk; k++)
                dt_column_free(&D[k]);
            if (rc) goto done;
            continue;
        }
        if ((rc = merge_states(ag, &C[nk + ag->state], gid, n, g.ng, &res[nk + a]))) goto done;
    }
    ok = dt_task_write(task, nin, pl.rncols, pl.rnames, res);
done:
    if (rc) dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, "groupby_agg: merging failed");
    for (int j = 0; res && j < pl.rncols; j++)
        dt_column_free(&res[j]);
    for (int j = 0; have_c && j < ncol; j++)
        dt_column_free(&C[j]);
    for (int p = 0; p < nv; p++)
        dt_part_free(&parts[p]);
    gt_free(&g);
    dt_free(gid);
    dt_free(parts);
    dt_free(ptypes);
    dt_free(C);
    dt_free(res);
    plan_free(&pl);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t merge_kernel = {"dtable_groupby_merge", merge_task, NULL, {NULL}};

/* ---- the call ---- */

/* Checks aggregate i against t and fills *ga (but state and dist) and its result name
 * (malloc'ed) into *name. */
static dagr_status_t check_agg(const dagr_dtable_t *t, int i, const dagr_agg_t *a, gb_agg_t *ga,
                               char **name) {
    DAGR_CHECK(a->op >= DAGR_AGG_SUM && a->op <= DAGR_AGG_COUNT_DISTINCT, DAGR_ERR_ARG,
               "groupby_agg: aggregate %d: unknown op %d", i, (int)a->op);
    const char *on = op_name(a->op);
    ga->op = a->op;
    ga->col = -1;
    ga->type = DT_INT64;
    ga->dist = -1;
    ga->state = 0;
    if (a->op == DAGR_AGG_COUNT_ALL) {
        DAGR_CHECK(!a->column, DAGR_ERR_ARG,
                   "groupby_agg: aggregate %d: count_all counts rows and takes no column "
                   "(column must be NULL, not '%s')",
                   i, a->column);
    } else {
        DAGR_CHECK(a->column, DAGR_ERR_ARG, "groupby_agg: aggregate %d: %s needs a column", i, on);
        int j;
        DAGR_TRY(dt_find_col(t, a->column, "groupby_agg", &j));
        ga->col = j;
        ga->type = t->types[j];
        dt_type_t ty = t->types[j];
        if (a->op == DAGR_AGG_SUM || a->op == DAGR_AGG_MEAN)
            DAGR_CHECK(ty == DT_INT64 || ty == DT_FLOAT64, DAGR_ERR_ARG,
                       "groupby_agg: aggregate %d: %s of '%s', a %s column (%s takes int64 or "
                       "float64)",
                       i, on, a->column, dt_type_name(ty), on);
        if (a->op == DAGR_AGG_MIN || a->op == DAGR_AGG_MAX)
            DAGR_CHECK(ty != DT_BOOL, DAGR_ERR_ARG,
                       "groupby_agg: aggregate %d: %s of '%s', a bool column (%s takes any type "
                       "but bool)",
                       i, on, a->column, on);
    }
    if (a->as) {
        DAGR_CHECK(a->as[0], DAGR_ERR_ARG, "groupby_agg: aggregate %d: the name 'as' is empty", i);
        *name = strdup(a->as);
    } else if (a->op == DAGR_AGG_COUNT_ALL) {
        *name = strdup("count");
    } else {
        size_t len = strlen(on) + strlen(a->column) + 2;
        *name = malloc(len);
        if (*name) snprintf(*name, len, "%s_%s", on, a->column);
    }
    DAGR_CHECK(*name, DAGR_ERR_NOMEM, "out of memory");
    return DAGR_OK;
}

/* Inserts the tasks: partial per partition (writing its buckets), merge per destination. */
static dagr_status_t insert_tasks(dagr_dtable_t *t, const gb_plan_t *pl, const dt_args_t *args,
                                  char *const *rnames, dagr_dtable_t **out) {
    dagr_ctx_t *ctx = t->ctx;
    int nd = pl->h.ndist, np = t->nparts, nout = np;
    dagr_data_t ***bk = calloc((size_t)nd + 1, sizeof *bk); /* [0]: states; 1 + d: pairs */
    int nacc = np * (1 + nd) + 1, npacc = 1 + (1 + nd) * nout;
    dagr_access_t *acc = calloc((size_t)(nacc > npacc ? nacc : npacc) + 1, sizeof *acc);
    dagr_dtable_t *r = NULL;
    dagr_status_t s = bk && acc ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int d = 0; d <= nd && s == DAGR_OK; d++)
        s = dt_buckets_new(ctx, np, nout, &bk[d]);
    for (int p = 0; p < np && s == DAGR_OK; p++) {
        acc[0] = (dagr_access_t){t->parts[p], DAGR_READ};
        for (int d = 0; d <= nd; d++)
            for (int q = 0; q < nout; q++)
                acc[1 + d * nout + q] =
                    (dagr_access_t){bk[d][(size_t)p * (size_t)nout + (size_t)q], DAGR_WRITE};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &partial_kernel, args->buf, args->n, npacc, acc, &o);
    }
    if (s == DAGR_OK)
        s = dt_table_new(ctx, pl->rncols, (const char *const *)rnames, pl->rtypes, nout, &r);
    for (int q = 0; q < nout && s == DAGR_OK; q++) {
        for (int d = 0; d <= nd; d++)
            for (int p = 0; p < np; p++)
                acc[d * np + p] =
                    (dagr_access_t){bk[d][(size_t)p * (size_t)nout + (size_t)q], DAGR_READ};
        acc[nacc - 1] = (dagr_access_t){r->parts[q], DAGR_WRITE};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(ctx, q);
        s = dagr_spawn(ctx, &merge_kernel, args->buf, args->n, nacc, acc, &o);
    }
    for (int d = 0; bk && d <= nd; d++)
        if (bk[d]) dt_buckets_free(t, nout, bk[d]);
    dt_free(bk);
    dt_free(acc);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&r);
        return s;
    }
    *out = r;
    return DAGR_OK;
}

dagr_status_t dagr_dtable_groupby_agg(dagr_dtable_t *t, int nkeys, const char *const *keys,
                                      int naggs, const dagr_agg_t *aggs, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "groupby_agg: the table"));
    DAGR_CHECK(keys && out, DAGR_ERR_ARG, "groupby_agg: keys or out is NULL");
    DAGR_CHECK(nkeys >= 1 && nkeys <= GB_MAX_KEYS, DAGR_ERR_ARG,
               "groupby_agg: nkeys is %d (1 to %d keys)", nkeys, GB_MAX_KEYS);
    DAGR_CHECK(naggs >= 0, DAGR_ERR_ARG, "groupby_agg: naggs is %d (< 0)", naggs);
    DAGR_CHECK(naggs == 0 || aggs, DAGR_ERR_ARG, "groupby_agg: aggs is NULL with naggs %d", naggs);
    DAGR_CHECK(t->nparts >= 1, DAGR_ERR_INTERNAL, "groupby_agg: a table of no partition");
    gb_plan_t pl;
    memset(&pl, 0, sizeof pl);
    pl.h.nkeys = nkeys;
    pl.h.naggs = naggs;
    pl.h.nparts = t->nparts;
    pl.rncols = nkeys + naggs;
    pl.aggs = calloc((size_t)naggs + 1, sizeof *pl.aggs);
    char **rnames = calloc((size_t)pl.rncols + 1, sizeof *rnames);
    pl.rtypes = calloc((size_t)pl.rncols + 1, sizeof *pl.rtypes);
    dt_args_t *args = calloc(1, sizeof *args);
    dagr_status_t s = pl.aggs && rnames && pl.rtypes && args
                          ? DAGR_OK
                          : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int k = 0; k < nkeys && s == DAGR_OK; k++) {
        s = dt_find_col(t, keys[k], "groupby_agg: key", &pl.keys[k]);
        if (s != DAGR_OK) break;
        rnames[k] = strdup(t->names[pl.keys[k]]);
        pl.rtypes[k] = t->types[pl.keys[k]];
        if (!rnames[k]) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    for (int a = 0; a < naggs && s == DAGR_OK; a++) {
        gb_agg_t *ga = &pl.aggs[a];
        s = check_agg(t, a, &aggs[a], ga, &rnames[nkeys + a]);
        if (s != DAGR_OK) break;
        pl.rtypes[nkeys + a] = result_type(ga->op, (dt_type_t)ga->type);
        ga->state = pl.h.nstate;
        pl.h.nstate += state_count(ga->op, (dt_type_t)ga->type);
        if (ga->op == DAGR_AGG_COUNT_DISTINCT) ga->dist = pl.h.ndist++;
    }
    /* Result names: the keys' and the aggregates', each once. */
    for (int j = 0; j < pl.rncols && s == DAGR_OK; j++)
        for (int k = 0; k < j && s == DAGR_OK; k++)
            if (strcmp(rnames[j], rnames[k]) == 0)
                s = DAGR_ERR(DAGR_ERR_ARG,
                             "groupby_agg: the result would have two columns named '%s' (name "
                             "the aggregates with 'as')",
                             rnames[j]);
    if (s == DAGR_OK) {
        dt_args_put(args, &pl.h, sizeof pl.h);
        for (int k = 0; k < nkeys; k++) {
            int32_t j = pl.keys[k];
            dt_args_put(args, &j, sizeof j);
        }
        dt_args_put(args, pl.aggs, (size_t)naggs * sizeof *pl.aggs);
        dt_args_schema(args, pl.rncols, rnames, pl.rtypes);
        if (args->overflow)
            s = DAGR_ERR(DAGR_ERR_ARG,
                         "groupby_agg: %d keys and %d aggregates with their names take more "
                         "than a task's %d argument bytes",
                         nkeys, naggs, DAGR_MAX_ARGS);
    }
    if (s == DAGR_OK) s = insert_tasks(t, &pl, args, rnames, out);
    for (int j = 0; rnames && j < pl.rncols; j++)
        dt_free(rnames[j]);
    dt_free(rnames);
    dt_free(pl.aggs);
    dt_free(pl.rtypes);
    dt_free(args);
    return s;
}
