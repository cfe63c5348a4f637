/* Joins (dtable.h): a hash join per destination partition after a hash shuffle of both sides
 * on their keys, or, when the right side is broadcast, one join per left partition where it
 * lies (the left side does not move).
 *
 * Both modes run one task body (join_task): its inputs are some left partitions (the left
 * buckets (p, q) of every p, or left partition p) and the right rows (the right buckets
 * (p', q) of every p', or the rows a broadcast's build task gathered on this rank), its
 * output one result partition. It builds an open-addressing hash table over the right rows
 * (one slot per distinct key, the rows of equal keys chained) or, broadcasting, reads the one
 * its rank's build task made (one build per rank, not per partition: a million-row right
 * side hashed once), probes it with the left rows a chunk at a time, collects the (left row,
 * right row) pairs, and gathers the result's columns from them, -1 standing for the missing
 * side of an outer join's unmatched row (a null). RIGHT and FULL joins never broadcast: each
 * right row must be seen by one task, which emits it if nothing matched it.
 *
 * Equal keys of the same type hash alike on both sides (dt_hash_rows), so equal keys meet in
 * one destination. A row with a null key never matches, so the shuffle spreads such rows
 * over the destinations instead of sending them all where the null hash points. */
#include "dtable_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOIN_MAX_KEYS 64 /* dt_route_hash's limit */

void dagr_join_opts_init(dagr_join_opts_t *o) {
    if (!o) return;
    o->kind = DAGR_JOIN_INNER;
    o->right_suffix = "_right";
    o->broadcast = -1;
    o->broadcast_rows = 1000000;
}

static const char *kind_name(dagr_join_kind_t k) {
    static const char *const names[] = {"inner", "left", "right", "full", "semi", "anti"};
    return (unsigned)k <= DAGR_JOIN_ANTI ? names[k] : "?";
}

/* ---- the task's argument block ----
 * join_hdr_t, then int32 left key indices [nkeys], right key indices [nkeys], then the
 * result's schema (dt_args_schema; a build task: the right table's). Inputs: buf[0, nl) left,
 * buf[nl, nl + nr) right, buf[nl + nr] the hash table when prebuilt, then the result
 * partition (a build task: nl = 0, its output the hash table). */
typedef struct join_hdr {
    int32_t kind, nkeys;
    int32_t nl, nr;       /* left and right inputs */
    int32_t lcols, rcols; /* the left and right tables' column counts */
    int32_t prebuilt;     /* 1: a build task's hash table follows the right inputs */
    int32_t pad;
} join_hdr_t;

/* ---- gathering rows into result columns ---- */

/* rows[0, n) of src, in order; a row -1 (only where missing) or src NULL gives a null. With
 * srcs (several right inputs read where they are), row i is rows[i] of srcs[in[i]]. */
typedef struct seg {
    const dt_column_t *src;
    const int64_t *rows;
    int64_t n;
    bool missing; /* rows may hold -1 */
    bool ident;   /* rows are 0, 1, ..., src->n - 1: a plain copy */
    const dt_column_t *const *srcs;
    const int32_t *in;
} seg_t;

/* Bits [0, n) of src (NULL: all set) into dst at bit k. */
static void copy_bits(uint8_t *dst, int64_t k, const uint8_t *src, int64_t n) {
    int64_t i = 0;
    if (k % 8 == 0) {
        size_t whole = (size_t)(n / 8);
        if (src)
            memcpy(dst + k / 8, src, whole);
        else
            memset(dst + k / 8, 0xff, whole);
        i = (int64_t)whole * 8;
    }
    for (; i < n; i++) {
        unsigned v = !src || (src[i >> 3] >> (i & 7) & 1);
        dst[(k + i) >> 3] |= (uint8_t)(v << ((k + i) & 7));
    }
}

/* What the result's layout needs of the segments one after another, before gather_into
 * fills them in: whether a row is null, and (strings) their bytes. */
static void gather_measure(dt_type_t type, const seg_t *segs, int ns, bool *nulls, size_t *sbytes) {
    bool nul = false;
    size_t sb = 0;
    for (int s = 0; s < ns; s++) {
        const seg_t *g = &segs[s];
        const dt_column_t *c = g->src;
        if (g->n == 0) continue;
        if (g->srcs) {
            for (int64_t i = 0; i < g->n; i++) {
                int64_t r = g->rows[i];
                const dt_column_t *ci = r >= 0 ? g->srcs[g->in[i]] : NULL;
                nul |= !ci || !dt_valid(ci, r);
                if (ci && type == DT_STRING) sb += (size_t)(ci->offsets[r + 1] - ci->offsets[r]);
            }
            continue;
        }
        if (!c) {
            nul = true;
            continue;
        }
        if (!nul && (c->valid || g->missing)) {
            for (int64_t i = 0; i < g->n && !nul; i++) {
                int64_t r = g->ident ? i : g->rows[i];
                nul = r < 0 || !dt_valid(c, r);
            }
        }
        if (type != DT_STRING) continue;
        const int64_t *so = c->offsets;
        if (g->ident) {
            sb += (size_t)(so[g->n] - so[0]);
            continue;
        }
        for (int64_t i = 0; i < g->n; i++)
            if (g->rows[i] >= 0) sb += (size_t)(so[g->rows[i] + 1] - so[g->rows[i]]);
    }
    *nulls = nul;
    *sbytes = sb;
}

/* A segment of several sources into R from row k on (gather_into's). */
static void gather_srcs(const seg_t *g, dt_column_t *R, int64_t k) {
    for (int64_t i = 0; i < g->n; i++) {
        int64_t r = g->rows[i], at = k + i;
        const dt_column_t *c = r >= 0 ? g->srcs[g->in[i]] : NULL;
        if (R->valid && c && dt_valid(c, r)) R->valid[at >> 3] |= (uint8_t)(1u << (at & 7));
        if (R->type == DT_STRING) {
            int64_t o = R->offsets[at], l = c ? c->offsets[r + 1] - c->offsets[r] : 0;
            if (l > 0)
                memcpy((char *)R->values + o, (const char *)c->values + c->offsets[r], (size_t)l);
            R->offsets[at + 1] = o + l;
        } else if (R->type == DT_BOOL) {
            ((uint8_t *)R->values)[at] = c ? ((const uint8_t *)c->values)[r] : 0;
        } else {
            ((uint64_t *)R->values)[at] = c ? ((const uint64_t *)c->values)[r] : 0;
        }
    }
}

/* The segments one after another into R, a column placed in a partition (dt_part_place) as
 * gather_measure measured them. */
static void gather_into(const seg_t *segs, int ns, dt_column_t *R) {
    int64_t k = 0;
    if (R->type == DT_STRING) R->offsets[0] = 0;
    for (int s = 0; s < ns; k += segs[s].n, s++) {
        const seg_t *g = &segs[s];
        const dt_column_t *c = g->src;
        const int64_t *rows = g->rows;
        if (g->srcs) {
            gather_srcs(g, R, k);
            continue;
        }
        if (R->valid && c) { /* a missing source leaves its rows' bits 0: null */
            if (g->ident) {
                copy_bits(R->valid, k, c->valid, g->n);
            } else {
                for (int64_t i = 0; i < g->n; i++) {
                    unsigned v = rows[i] >= 0 && dt_valid(c, rows[i]);
                    R->valid[(k + i) >> 3] |= (uint8_t)(v << ((k + i) & 7));
                }
            }
        }
        if (R->type == DT_STRING) {
            int64_t *off = R->offsets + k, at = off[0];
            char *d = R->values;
            if (!c) {
                for (int64_t i = 0; i < g->n; i++)
                    off[i + 1] = at;
                continue;
            }
            const int64_t *so = c->offsets;
            const char *sv = c->values;
            if (g->ident) {
                int64_t base = so[0];
                if (so[g->n] > base) memcpy(d + at, sv + base, (size_t)(so[g->n] - base));
                for (int64_t i = 0; i < g->n; i++)
                    off[i + 1] = at + so[i + 1] - base;
                continue;
            }
            for (int64_t i = 0; i < g->n; i++) {
                int64_t r = rows[i], l = r >= 0 ? so[r + 1] - so[r] : 0;
                if (l > 0) memcpy(d + at, sv + so[r], (size_t)l);
                off[i + 1] = at += l;
            }
        } else if (R->type == DT_BOOL) {
            uint8_t *d = (uint8_t *)R->values + k;
            const uint8_t *v = c ? c->values : NULL;
            if (!c)
                memset(d, 0, (size_t)g->n);
            else if (g->ident)
                memcpy(d, v, (size_t)g->n);
            else
                for (int64_t i = 0; i < g->n; i++)
                    d[i] = rows[i] >= 0 ? v[rows[i]] : 0;
        } else { /* int64, float64, timestamp: 8 bytes, copied as such */
            uint64_t *d = (uint64_t *)R->values + k;
            const uint64_t *v = c ? c->values : NULL;
            if (!c)
                memset(d, 0, (size_t)g->n * 8);
            else if (g->ident)
                memcpy(d, v, (size_t)g->n * 8);
            else if (g->missing)
                for (int64_t i = 0; i < g->n; i++)
                    d[i] = rows[i] >= 0 ? v[rows[i]] : 0;
            else
                for (int64_t i = 0; i < g->n; i++)
                    d[i] = v[rows[i]];
        }
    }
}

/* Writes output i of a task: ncols columns (types in cols[j].type) of n rows, column j the
 * segments segs(j) (ns(j) of them) one after another, gathered straight into the partition.
 * seg_of fills segs with column j's and returns how many; segs has room for the most any
 * column has. On failure fails the task and returns false. */
typedef int (*seg_fn)(const void *ctx, int j, seg_t *segs);
static bool write_gathered(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                           dt_column_t *cols, int64_t n, seg_fn seg_of, const void *ctx,
                           seg_t *segs) {
    bool *nulls = malloc(((size_t)ncols + 1) * sizeof *nulls);
    size_t *sbytes = malloc(((size_t)ncols + 1) * sizeof *sbytes);
    bool ok = nulls && sbytes;
    if (!ok) dt_task_fail_code(task, -ENOMEM, 0, NULL);
    for (int j = 0; ok && j < ncols; j++)
        gather_measure(cols[j].type, segs, seg_of(ctx, j, segs), &nulls[j], &sbytes[j]);
    if (ok) ok = dt_task_place(task, i, ncols, names, cols, n, nulls, sbytes);
    for (int j = 0; ok && j < ncols; j++)
        gather_into(segs, seg_of(ctx, j, segs), &cols[j]);
    dt_free(nulls);
    dt_free(sbytes);
    return ok;
}

/* ---- the hash table over the right rows ---- */

/* A slot: the head of the chain of right rows of one key (-1: empty), and a tag: the key
 * itself when the key is one int64 or timestamp column (compared in the slot, without a
 * second cache miss into the column), else the rows' hash. */
typedef struct slot {
    uint64_t tag;
    int64_t head;
} slot_t;

typedef struct table {
    slot_t *slots;
    uint64_t mask;
    int64_t *next; /* the next right row of the same key, -1 at the chain's end */
    bool fast;     /* one int64/timestamp key: tags are keys */
    bool owned;    /* slots and next malloc'ed here (not a build task's buffer) */
} table_t;

/* Whether row i of cols has a null in one of the keys. */
static inline bool key_null(const dt_column_t *cols, const int *keys, int nkeys, int64_t i) {
    for (int k = 0; k < nkeys; k++)
        if (!dt_valid(&cols[keys[k]], i)) return true;
    return false;
}

static bool keys_nullable(const dt_column_t *cols, const int *keys, int nkeys) {
    for (int k = 0; k < nkeys; k++)
        if (cols[keys[k]].valid) return true;
    return false;
}

enum { CHUNK = 4096 }; /* a multiple of 8 (dt_hash_window) */

/* The slots of a table of n rows: a power of two, at most half full. */
static uint64_t table_cap(int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap <<= 1;
    return cap;
}

/* Whether tags are keys: one int64 or timestamp key. */
static bool table_fast(int nkeys, const dt_type_t *keytypes) {
    return nkeys == 1 && (keytypes[0] == DT_INT64 || keytypes[0] == DT_TIMESTAMP);
}

/* ---- the right side: its inputs where they are ---- */

/* The right inputs with rows, one after another, read in place (no concatenated copy): right
 * row r is row r - start[k] of input k = rset_find(r). */
typedef struct rset {
    int n;                    /* inputs with rows */
    const dt_column_t **cols; /* n: each one's columns */
    int64_t *start;           /* n + 1 */
} rset_t;

/* The inputs in[0, nin) with rows. 0 or -ENOMEM (free with rset_free either way). */
static int rset_init(rset_t *s, const dt_part_t *in, int nin) {
    s->n = 0;
    s->cols = malloc(((size_t)nin + 1) * sizeof *s->cols);
    s->start = malloc(((size_t)nin + 2) * sizeof *s->start);
    if (!s->cols || !s->start) return -ENOMEM;
    s->start[0] = 0;
    for (int p = 0; p < nin; p++)
        if (in[p].nrows > 0) {
            s->cols[s->n] = in[p].cols;
            s->start[s->n + 1] = s->start[s->n] + in[p].nrows;
            s->n++;
        }
    return 0;
}

static void rset_free(rset_t *s) {
    dt_free(s->cols);
    dt_free(s->start);
}

static inline int64_t rset_rows(const rset_t *s) {
    return s->start[s->n];
}

/* The input holding right row r (0 <= r < rset_rows). */
static inline int rset_find(const rset_t *s, int64_t r) {
    int lo = 0, hi = s->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->start[mid] <= r)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Whether row i of cols (keys akeys) and right row r have equal keys. */
static bool rset_keys_equal(const dt_column_t *cols, const int *akeys, int64_t i, const rset_t *R,
                            const int *rkeys, int64_t r, int nkeys) {
    int k = rset_find(R, r);
    return dt_keys_equal(cols, akeys, i, R->cols[k], rkeys, r - R->start[k], nkeys, false);
}

/* Fills t (slots: table_cap(n) entries, next: n, mask set) with the n right rows of R (keys
 * rkeys; fast: table_fast). Rows with a null key are left out (they match nothing). 0 or
 * -ENOMEM. */
static int table_fill(table_t *t, const rset_t *R, const int *rkeys, int nkeys, bool fast) {
    int64_t n = rset_rows(R);
    uint64_t *h = dt_alloc(((size_t)n + 1) * sizeof *h);
    if (!h) return -ENOMEM;
    t->fast = fast;
    for (uint64_t s = 0; s <= t->mask; s++)
        t->slots[s].head = -1;
    for (int k = 0; k < R->n; k++)
        for (int64_t i0 = 0, nk = R->start[k + 1] - R->start[k]; i0 < nk; i0 += CHUNK) {
            int64_t m = nk - i0 < CHUNK ? nk - i0 : CHUNK;
            dt_hash_window(R->cols[k], nkeys, rkeys, i0, m, h + R->start[k] + i0);
        }
    /* Backwards, each row put at its chain's head: chains list the rows in ascending order. */
    for (int k = R->n - 1; k >= 0; k--) {
        const dt_column_t *cols = R->cols[k];
        bool nullable = keys_nullable(cols, rkeys, nkeys);
        const int64_t *kv = fast ? cols[rkeys[0]].values : NULL;
        for (int64_t i = R->start[k + 1] - R->start[k] - 1; i >= 0; i--) {
            int64_t r = R->start[k] + i;
            t->next[r] = -1;
            if (nullable && key_null(cols, rkeys, nkeys, i)) continue;
            uint64_t tag = fast ? (uint64_t)kv[i] : h[r];
            for (uint64_t s = h[r] & t->mask;; s = (s + 1) & t->mask) {
                slot_t *sl = &t->slots[s];
                if (sl->head < 0) {
                    sl->tag = tag;
                    sl->head = r;
                    break;
                }
                if (sl->tag == tag &&
                    (fast || rset_keys_equal(cols, rkeys, i, R, rkeys, sl->head, nkeys))) {
                    t->next[r] = sl->head;
                    sl->head = r;
                    break;
                }
            }
        }
    }
    dt_free(h);
    return 0;
}

/* A table of its own over the right rows of R. 0 or -ENOMEM. */
static int table_build(table_t *t, const rset_t *R, const int *rkeys, int nkeys, bool fast) {
    int64_t n = rset_rows(R);
    uint64_t cap = table_cap(n);
    t->mask = cap - 1;
    t->owned = true;
    t->slots = dt_alloc(cap * sizeof *t->slots);
    t->next = dt_alloc(((size_t)n + 1) * sizeof *t->next);
    if (!t->slots || !t->next) return -ENOMEM;
    return table_fill(t, R, rkeys, nkeys, fast);
}

static void table_free(table_t *t) {
    if (!t->owned) return;
    dt_free(t->slots);
    dt_free(t->next);
}

/* A hash table in a handle (a broadcast's build task writes one per rank; the probe tasks of
 * that rank read it in place): ht_hdr_t, slots[cap], next[nrows]. */
#define HT_MAGIC 0x31544a44u /* "DJT1" */
typedef struct ht_hdr {
    uint32_t magic, fast;
    int64_t nrows;
    uint64_t cap, pad;
} ht_hdr_t;

static size_t ht_bytes(int64_t n, uint64_t cap) {
    return sizeof(ht_hdr_t) + cap * sizeof(slot_t) + (size_t)n * sizeof(int64_t);
}

/* The table in buf[0, bytes) over nrows right rows, in place (*copy: an aligned copy made
 * when buf is not 8-byte aligned, to free). False when it is not such a table. */
static bool ht_view(const void *buf, size_t bytes, int64_t nrows, table_t *t, void **copy) {
    ht_hdr_t h;
    *copy = NULL;
    if (bytes < sizeof h) return false;
    memcpy(&h, buf, sizeof h);
    if (h.magic != HT_MAGIC || h.nrows != nrows || h.cap < 16 || (h.cap & (h.cap - 1)) ||
        h.cap > ((size_t)1 << 58) || bytes != ht_bytes(nrows, h.cap))
        return false;
    const char *p = buf;
    if ((uintptr_t)p % 8) {
        if (!(*copy = dt_alloc(bytes))) return false;
        memcpy(*copy, buf, bytes);
        p = *copy;
    }
    t->slots = (slot_t *)(p + sizeof h);
    t->next = (int64_t *)(p + sizeof h + h.cap * sizeof(slot_t));
    t->mask = h.cap - 1;
    t->fast = h.fast != 0;
    t->owned = false;
    return true;
}

/* ---- (left row, right row) pairs ---- */

typedef struct pairs {
    int64_t *l, *r;
    int64_t n, cap;
} pairs_t;

static int pairs_grow(pairs_t *p, int64_t need) {
    if (need <= p->cap) return 0;
    int64_t cap = p->cap ? p->cap : 1024;
    while (cap < need)
        cap *= 2;
    int64_t *l = dt_realloc(p->l, (size_t)cap * sizeof *l);
    if (!l) return -ENOMEM;
    p->l = l;
    int64_t *r = dt_realloc(p->r, (size_t)cap * sizeof *r);
    if (!r) return -ENOMEM;
    p->r = r;
    p->cap = cap;
    return 0;
}

/* Appends a pair; 0 or -ENOMEM. */
static inline int pairs_put(pairs_t *p, int64_t l, int64_t r) {
    if (p->n == p->cap && pairs_grow(p, p->n + 1)) return -ENOMEM;
    p->l[p->n] = l;
    p->r[p->n] = r;
    p->n++;
    return 0;
}

/* The chain head of left row i (keys lkeys of L) in t, or -1. */
static inline int64_t table_find(const table_t *t, const dt_column_t *L, const int *lkeys,
                                 const rset_t *R, const int *rkeys, int nkeys, int64_t i,
                                 uint64_t h, uint64_t tag) {
    for (uint64_t s = h & t->mask;; s = (s + 1) & t->mask) {
        const slot_t *sl = &t->slots[s];
        if (sl->head < 0) return -1;
        if (sl->tag == tag && (t->fast || rset_keys_equal(L, lkeys, i, R, rkeys, sl->head, nkeys)))
            return sl->head;
    }
}

/* Probes t with rows [0, n) of L, appending the pairs the kind asks for to *P (left rows
 * relative to L; right -1 where none matches) and marking matched right rows. 0 or -ENOMEM. */
static int probe(const table_t *t, int64_t nright, const dt_column_t *L, const int *lkeys,
                 const rset_t *R, const int *rkeys, int nkeys, int64_t n, dagr_join_kind_t kind,
                 uint8_t *matched, pairs_t *P) {
    uint64_t h[CHUNK];
    bool nullable = keys_nullable(L, lkeys, nkeys);
    const int64_t *kv = t->fast ? L[lkeys[0]].values : NULL;
    bool keep_unmatched = kind == DAGR_JOIN_LEFT || kind == DAGR_JOIN_FULL;
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (nright == 0) { /* nothing matches: only the kinds keeping unmatched left rows */
            if (keep_unmatched || kind == DAGR_JOIN_ANTI)
                for (int64_t i = i0; i < i0 + m; i++)
                    if (pairs_put(P, i, -1)) return -ENOMEM;
            continue;
        }
        dt_hash_window(L, nkeys, lkeys, i0, m, h);
        for (int64_t j = 0; j < m; j++) {
            int64_t i = i0 + j;
            if (j + 8 < m) __builtin_prefetch(&t->slots[h[j + 8] & t->mask]);
            int64_t r = -1;
            if (!nullable || !key_null(L, lkeys, nkeys, i))
                r = table_find(t, L, lkeys, R, rkeys, nkeys, i, h[j],
                               t->fast ? (uint64_t)kv[i] : h[j]);
            int e = 0;
            switch (kind) {
            case DAGR_JOIN_SEMI:
                if (r >= 0) e = pairs_put(P, i, -1);
                break;
            case DAGR_JOIN_ANTI:
                if (r < 0) e = pairs_put(P, i, -1);
                break;
            default:
                if (r < 0 && keep_unmatched) e = pairs_put(P, i, -1);
                for (; r >= 0 && !e; r = t->next[r]) {
                    e = pairs_put(P, i, r);
                    if (matched) matched[r] = 1;
                }
            }
            if (e) return e;
        }
    }
    return 0;
}

/* ---- the join task ---- */

/* Whether partition p (of ncols expected columns, key types keytypes at keys) can be read;
 * an empty buffer (no column, no row) is an empty partition. Fails the task if not. */
static bool part_ok(const dagr_task_view_t *task, const dt_part_t *p, int ncols, const int *keys,
                    int nkeys, const dt_type_t *keytypes, const char *side) {
    if (p->ncols == 0 && p->nrows == 0) return true;
    if (p->ncols != ncols) {
        dagr_task_fail(task, DAGR_ERR_FORMAT, "join: a %s partition has %d columns, not %d", side,
                       p->ncols, ncols);
        return false;
    }
    for (int k = 0; k < nkeys; k++)
        if (p->cols[keys[k]].type != keytypes[k]) {
            dagr_task_fail(task, DAGR_ERR_FORMAT, "join: a %s partition's key '%s' is %s, not %s",
                           side, p->names[keys[k]], dt_type_name(p->cols[keys[k]].type),
                           dt_type_name(keytypes[k]));
            return false;
        }
    return true;
}

/* Reads a task's header and key lists; the rest of the args is a schema. */
static void read_hdr(dt_argr_t *ar, const dagr_task_view_t *task, join_hdr_t *a, int *lkeys,
                     int *rkeys) {
    dt_argr_init(ar, task);
    dt_argr_get(ar, a, sizeof *a);
    for (int k = 0; k < a->nkeys; k++) {
        int32_t v;
        dt_argr_get(ar, &v, sizeof v);
        lkeys[k] = v;
    }
    for (int k = 0; k < a->nkeys; k++) {
        int32_t v;
        dt_argr_get(ar, &v, sizeof v);
        rkeys[k] = v;
    }
}

#define ANY_TYPE ((dt_type_t)-1) /* types_ok: a column nobody reads */

/* Checks that every column of the inputs with rows, in[0, n) (of one side), is of the type
 * types gives it (ANY_TYPE: any); fails the task if not. */
static bool types_ok(const dagr_task_view_t *task, const dt_part_t *in, int n, int ncols,
                     const dt_type_t *types, const char *side) {
    for (int p = 0; p < n; p++)
        for (int j = 0; in[p].nrows > 0 && j < ncols; j++)
            if (types[j] != ANY_TYPE && in[p].cols[j].type != types[j]) {
                dagr_task_fail(
                    task, DAGR_ERR_FORMAT, "join: a %s partition's column '%s' is %s, not %s", side,
                    in[p].names[j], dt_type_name(in[p].cols[j].type), dt_type_name(types[j]));
                return false;
            }
    return true;
}

/* A broadcast's build task, one per rank holding left partitions: the hash table over the rows
 * of every right partition (its one output), which that rank's join tasks share; they read
 * the right partitions where they are. Args: header (nl 0), keys, the right table's schema. */
static dagr_task_result_t build_task(const dagr_task_view_t *task) {
    dt_argr_t ar;
    join_hdr_t a;
    int lkeys[JOIN_MAX_KEYS], rkeys[JOIN_MAX_KEYS];
    read_hdr(&ar, task, &a, lkeys, rkeys);
    int rnc;
    const char **rnames = NULL;
    dt_type_t *rtypes = NULL;
    if (!dt_argr_schema(&ar, &rnc, &rnames, &rtypes))
        return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    dt_type_t keytypes[JOIN_MAX_KEYS];
    for (int k = 0; k < a.nkeys; k++)
        keytypes[k] = rtypes[rkeys[k]];
    int nviewed = 0;
    bool ok = false;
    rset_t R = {0};
    dt_part_t *in = calloc((size_t)a.nr + 1, sizeof *in);
    if (!in) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        goto out;
    }
    for (; nviewed < a.nr; nviewed++)
        if (!dt_task_view(task, nviewed, &in[nviewed]) ||
            !part_ok(task, &in[nviewed], rnc, rkeys, a.nkeys, keytypes, "right"))
            goto out;
    if (!types_ok(task, in, a.nr, rnc, rtypes, "right")) goto out;
    if (rset_init(&R, in, a.nr)) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        goto out;
    }
    /* The table, filled in place in the output. */
    int64_t nright = rset_rows(&R);
    uint64_t cap = table_cap(nright);
    bool fast = table_fast(a.nkeys, keytypes);
    if (dagr_task_resize(task, a.nr, ht_bytes(nright, cap)) != DAGR_OK) goto out;
    char *p = task->buf[a.nr];
    ht_hdr_t h = {HT_MAGIC, fast, nright, cap, 0};
    memcpy(p, &h, sizeof h);
    table_t t = {.slots = (slot_t *)(p + sizeof h),
                 .next = (int64_t *)(p + sizeof h + cap * sizeof(slot_t)),
                 .mask = cap - 1};
    int code = table_fill(&t, &R, rkeys, a.nkeys, fast);
    if (code) {
        dt_task_fail_code(task, code, DAGR_ERR_INTERNAL, "join: building the hash table failed");
        goto out;
    }
    ok = true;
out:
    for (int q = 0; q < nviewed; q++)
        dt_part_free(&in[q]);
    rset_free(&R);
    dt_free(in);
    dt_free(rnames);
    dt_free(rtypes);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t build_kernel = {"dtable_join_build", build_task, NULL, {NULL}};

/* seg_fn over a join task's pairs: result column j. A left column is each left input's rows,
 * then (RIGHT, FULL) the unmatched right rows' keys in the key columns and nulls in the
 * others; a left input whose rows all come out once, in order, is copied whole. A right
 * column (not a key) is the right rows of every pair, null where none matched. Right rows
 * are read where they are: from the one right input, or (several) through rin/rloc. */
typedef struct join_segs {
    const dt_part_t *L;
    int nl, lcols;
    const int64_t *lstart; /* nl + 1: where each left input's pairs start; then the tail */
    const bool *ident_in;
    const pairs_t *P;
    int64_t tail;
    const rset_t *R;
    const int32_t *rin; /* R->n > 1: pair i's right input (-1: none) and its row there */
    const int64_t *rloc;
    const dt_column_t **srcs; /* R->n entries, filled per column */
    const int *lkeys, *rkeys;
    int nkeys, nother;
    const int *rother;
    bool right_missing; /* LEFT, FULL: right rows may be -1 */
} join_segs_t;

/* The segment of right column c over pairs [from, from + n) of P. */
static seg_t right_seg(const join_segs_t *o, int c, int64_t from, int64_t n, bool missing) {
    if (o->R->n == 0) return (seg_t){NULL, NULL, n, missing, false, NULL, NULL};
    if (o->R->n == 1)
        return (seg_t){&o->R->cols[0][c], o->P->r + from, n, missing, false, NULL, NULL};
    for (int k = 0; k < o->R->n; k++)
        o->srcs[k] = &o->R->cols[k][c];
    return (seg_t){NULL, o->rloc + from, n, missing, false, o->srcs, o->rin + from};
}

static int join_seg(const void *ctx, int j, seg_t *segs) {
    const join_segs_t *o = ctx;
    if (j >= o->lcols) {
        if (o->P->n == 0) return 0;
        segs[0] = right_seg(o, o->rother[j - o->lcols], 0, o->P->n, o->right_missing);
        return 1;
    }
    int ns = 0;
    for (int p = 0; p < o->nl; p++) {
        int64_t n = o->lstart[p + 1] - o->lstart[p];
        if (n > 0)
            segs[ns++] = (seg_t){
                &o->L[p].cols[j], o->P->l + o->lstart[p], n, false, o->ident_in[p], NULL, NULL};
    }
    if (o->tail > 0) {
        int key = -1;
        for (int k = 0; k < o->nkeys && key < 0; k++)
            if (o->lkeys[k] == j) key = o->rkeys[k];
        segs[ns++] = key >= 0 ? right_seg(o, key, o->lstart[o->nl], o->tail, false)
                              : (seg_t){NULL, NULL, o->tail, false, false, NULL, NULL};
    }
    return ns;
}

/* Join task: inputs nl left partitions, nr right ones (read where they are), the hash table
 * when prebuilt (a broadcast's build task's), output the result partition. */
static dagr_task_result_t join_task(const dagr_task_view_t *task) {
    dt_argr_t ar;
    join_hdr_t a;
    int lkeys[JOIN_MAX_KEYS], rkeys[JOIN_MAX_KEYS];
    read_hdr(&ar, task, &a, lkeys, rkeys);
    int onc;
    const char **onames = NULL;
    dt_type_t *otypes = NULL;
    if (!dt_argr_schema(&ar, &onc, &onames, &otypes))
        return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    dagr_join_kind_t kind = (dagr_join_kind_t)a.kind;
    dt_type_t keytypes[JOIN_MAX_KEYS];
    for (int k = 0; k < a.nkeys; k++)
        keytypes[k] = otypes[lkeys[k]];

    int nin = a.nl + a.nr, nviewed = 0, outi = nin + (a.prebuilt ? 1 : 0);
    dt_part_t *in = calloc((size_t)nin + 1, sizeof *in);
    dt_column_t *out = calloc((size_t)onc + 1, sizeof *out);
    int *rother = malloc(((size_t)a.rcols + 1) * sizeof *rother); /* right non-key columns */
    dt_type_t *rtypes = malloc(((size_t)a.rcols + 1) * sizeof *rtypes);
    seg_t *segs = malloc(((size_t)a.nl + 2) * sizeof *segs);
    int64_t *lstart = malloc(((size_t)a.nl + 1) * sizeof *lstart);
    bool *ident_in = malloc(((size_t)a.nl + 1) * sizeof *ident_in);
    const dt_column_t **srcs = malloc(((size_t)a.nr + 1) * sizeof *srcs);
    void *htcopy = NULL;
    table_t t = {0};
    rset_t R = {0};
    pairs_t P = {0};
    uint8_t *matched = NULL;
    int32_t *rin = NULL;
    int64_t *rloc = NULL;
    bool ok = false;
    int code = 0;
    if (!in || !out || !rother || !rtypes || !segs || !lstart || !ident_in || !srcs) {
        code = -ENOMEM;
        goto fail;
    }
    for (; nviewed < nin; nviewed++) {
        bool left = nviewed < a.nl;
        if (!dt_task_view(task, nviewed, &in[nviewed])) goto out;
        if (!part_ok(task, &in[nviewed], left ? a.lcols : a.rcols, left ? lkeys : rkeys, a.nkeys,
                     keytypes, left ? "left" : "right"))
            goto out;
    }
    dt_part_t *L = in;
    if ((code = rset_init(&R, in + a.nl, a.nr))) goto fail;
    int64_t nright = rset_rows(&R);
    bool semi = kind == DAGR_JOIN_SEMI || kind == DAGR_JOIN_ANTI;
    int nother = 0;
    for (int j = 0; j < a.rcols; j++) {
        int k = 0;
        while (k < a.nkeys && rkeys[k] != j)
            k++;
        if (k < a.nkeys) {
            rtypes[j] = keytypes[k];
        } else {
            /* Of the type the result gives it (gather reads it as such); not read by SEMI and
             * ANTI, whose result has no right column. */
            rtypes[j] = semi || a.lcols + nother >= onc ? ANY_TYPE : otypes[a.lcols + nother];
            rother[nother++] = j;
        }
    }
    if (onc != a.lcols + (semi ? 0 : nother)) {
        dagr_task_fail(task, DAGR_ERR_INTERNAL, "join: %d result columns for %d + %d", onc, a.lcols,
                       nother);
        goto out;
    }
    if (!types_ok(task, in, a.nl, a.lcols, otypes, "left") ||
        !types_ok(task, in + a.nl, a.nr, a.rcols, rtypes, "right"))
        goto out;

    bool fast = table_fast(a.nkeys, keytypes);
    if (a.prebuilt) {
        if (!ht_view(task->buf[nin], task->bytes[nin], nright, &t, &htcopy)) {
            dagr_task_fail(task, DAGR_ERR_FORMAT,
                           "join: input %d is not the hash table of %lld "
                           "right rows",
                           nin, (long long)nright);
            goto out;
        }
    } else if (nright > 0 && (code = table_build(&t, &R, rkeys, a.nkeys, fast))) {
        goto fail;
    }
    bool outer_right = kind == DAGR_JOIN_RIGHT || kind == DAGR_JOIN_FULL;
    if (outer_right && !(matched = calloc((size_t)nright + 1, 1))) {
        code = -ENOMEM;
        goto fail;
    }
    for (int p = 0; p < a.nl; p++) {
        lstart[p] = P.n;
        if (L[p].nrows > 0 && (code = probe(&t, nright, L[p].cols, lkeys, &R, rkeys, a.nkeys,
                                            L[p].nrows, kind, matched, &P)))
            goto fail;
    }
    lstart[a.nl] = P.n;
    if (outer_right) { /* the right rows nothing matched, the left side missing */
        int64_t unmatched = 0;
        for (int64_t r = 0; r < nright; r++)
            unmatched += !matched[r];
        if ((code = pairs_grow(&P, P.n + unmatched))) goto fail;
        for (int64_t r = 0; r < nright; r++)
            if (!matched[r]) pairs_put(&P, -1, r); /* room made above */
    }
    int64_t tail = P.n - lstart[a.nl];
    /* Several right inputs: each pair's input and row there, found once for every column. */
    if (R.n > 1 && P.n > 0) {
        rin = dt_alloc((size_t)P.n * sizeof *rin);
        rloc = dt_alloc((size_t)P.n * sizeof *rloc);
        if (!rin || !rloc) {
            code = -ENOMEM;
            goto fail;
        }
        for (int64_t i = 0; i < P.n; i++) {
            int64_t r = P.r[i];
            int k = r >= 0 ? rset_find(&R, r) : -1;
            rin[i] = k;
            rloc[i] = r >= 0 ? r - R.start[k] : -1;
        }
    }

    /* The result (join_seg): a left input whose rows all come out once, in order (each
     * matched once), is copied whole. */
    for (int p = 0; p < a.nl; p++) {
        int64_t n = lstart[p + 1] - lstart[p];
        bool ident = n == L[p].nrows;
        for (int64_t i = 0; ident && i < n; i++)
            ident = P.l[lstart[p] + i] == i;
        ident_in[p] = ident;
    }
    for (int j = 0; j < onc; j++)
        out[j].type = otypes[j];
    join_segs_t js = {L,
                      a.nl,
                      a.lcols,
                      lstart,
                      ident_in,
                      &P,
                      tail,
                      &R,
                      rin,
                      rloc,
                      srcs,
                      lkeys,
                      rkeys,
                      a.nkeys,
                      semi ? 0 : nother,
                      rother,
                      kind == DAGR_JOIN_LEFT || kind == DAGR_JOIN_FULL};
    ok = write_gathered(task, outi, onc, onames, out, P.n, join_seg, &js, segs);
    goto out;
fail:
    dt_task_fail_code(task, code, DAGR_ERR_INTERNAL, "join failed");
out:
    for (int p = 0; p < nviewed; p++)
        dt_part_free(&in[p]);
    table_free(&t);
    rset_free(&R);
    dt_free(htcopy);
    dt_free(P.l);
    dt_free(P.r);
    dt_free(matched);
    dt_free(rin);
    dt_free(rloc);
    dt_free(in);
    dt_free(out);
    dt_free(rother);
    dt_free(rtypes);
    dt_free(segs);
    dt_free(lstart);
    dt_free(ident_in);
    dt_free(srcs);
    dt_free(onames);
    dt_free(otypes);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t join_kernel = {"dtable_join", join_task, NULL, {NULL}};

/* The hash shuffle's route, except that a row with a null key (which matches nothing, but
 * which outer and anti joins keep) goes to a destination picked by its row number. */
static int join_route(const dt_part_t *in, const void *args, size_t args_size, int nextra,
                      const dt_part_t *extra, uint32_t nout, uint32_t *dest, char *err) {
    int rc = dt_route_hash(in, args, args_size, nextra, extra, nout, dest, err);
    if (rc) return rc;
    int32_t nk;
    memcpy(&nk, args, sizeof nk);
    for (int k = 0; k < nk; k++) {
        int32_t j;
        memcpy(&j, (const char *)args + 4 + 4 * k, 4);
        const dt_column_t *c = &in->cols[j];
        if (c->valid)
            for (int64_t i = 0; i < in->nrows; i++)
                if (!dt_valid(c, i)) dest[i] = (uint32_t)((uint64_t)i % nout);
    }
    return 0;
}

/* ---- the call ---- */

/* The result's schema: the left columns, then (not SEMI/ANTI) the right non-key ones, a
 * right name the left has taking the suffix. DAGR_ERR_ARG when names still collide. */
static dagr_status_t result_schema(const dagr_dtable_t *l, const dagr_dtable_t *r, int nkeys,
                                   const int *rk, dagr_join_kind_t kind, const char *suffix,
                                   int *ncols, char ***names, dt_type_t **types) {
    int n = l->ncols + (kind == DAGR_JOIN_SEMI || kind == DAGR_JOIN_ANTI ? 0 : r->ncols);
    char **nm = calloc((size_t)n + 1, sizeof *nm);
    dt_type_t *ty = calloc((size_t)n + 1, sizeof *ty);
    dagr_status_t s = nm && ty ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    int c = 0;
    for (int j = 0; j < l->ncols && s == DAGR_OK; j++, c++) {
        ty[c] = l->types[j];
        if (!(nm[c] = strdup(l->names[j]))) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    for (int j = 0; c < n && j < r->ncols && s == DAGR_OK; j++) {
        bool key = false;
        for (int k = 0; k < nkeys; k++)
            key |= rk[k] == j;
        if (key) continue;
        bool clash = dagr_dtable_colindex(l, r->names[j]) >= 0;
        size_t len = strlen(r->names[j]) + (clash ? strlen(suffix) : 0) + 1;
        if (!(nm[c] = malloc(len))) {
            s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(nm[c], len, "%s%s", r->names[j], clash ? suffix : "");
        ty[c++] = r->types[j];
    }
    n = c;
    for (int a = 0; a < n && s == DAGR_OK; a++)
        for (int b = a + 1; b < n && s == DAGR_OK; b++)
            if (strcmp(nm[a], nm[b]) == 0)
                s = DAGR_ERR(DAGR_ERR_ARG,
                             "join: the result would have two columns named '%s' (right_suffix "
                             "'%s'); rename a column or choose another suffix",
                             nm[a], suffix);
    if (s != DAGR_OK) {
        for (int j = 0; nm && j < n; j++)
            dt_free(nm[j]);
        dt_free(nm);
        dt_free(ty);
        return s;
    }
    *ncols = n;
    *names = nm;
    *types = ty;
    return DAGR_OK;
}

static void free_names(int n, char **names) {
    for (int j = 0; names && j < n; j++)
        dt_free(names[j]);
    dt_free(names);
}

/* Spawns the join task writing out->parts[q] from the nl left and nr right handles given. */
static dagr_status_t spawn_join(dagr_dtable_t *res, int q, const dt_args_t *args, int nl,
                                dagr_data_t *const *lh, ptrdiff_t lstride, int nr,
                                dagr_data_t *const *rh, ptrdiff_t rstride, dagr_data_t *table) {
    int n = nl + nr + (table ? 1 : 0);
    dagr_access_t *acc = malloc(((size_t)n + 1) * sizeof *acc);
    DAGR_CHECK(acc, DAGR_ERR_NOMEM, "out of memory");
    for (int p = 0; p < nl; p++)
        acc[p] = (dagr_access_t){lh[p * lstride], DAGR_READ};
    for (int p = 0; p < nr; p++)
        acc[nl + p] = (dagr_access_t){rh[p * rstride], DAGR_READ};
    if (table) acc[nl + nr] = (dagr_access_t){table, DAGR_READ};
    acc[n] = (dagr_access_t){res->parts[q], DAGR_WRITE};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = dt_part_rank(res->ctx, q);
    dagr_status_t s = dagr_spawn(res->ctx, &join_kernel, args->buf, args->n, n + 1, acc, &o);
    dt_free(acc);
    return s;
}

/* The broadcast: on each rank holding left partitions, one build task hashes the rows of every
 * right partition once; each left partition's join task reads the right partitions (the
 * rank's copies of other ranks') and its rank's table, so the left side never moves and the
 * right side moves once per rank. */
static dagr_status_t broadcast_join(dagr_dtable_t *left, dagr_dtable_t *right, int nkeys,
                                    const int *lk, const int *rk, const dt_args_t *args,
                                    dagr_dtable_t *res) {
    dagr_ctx_t *ctx = left->ctx;
    int size = dagr_size(ctx), nb = left->nparts < size ? left->nparts : size;
    if (nb == 0) return DAGR_OK;
    dt_args_t *ba = calloc(1, sizeof *ba);
    dagr_data_t **h = calloc((size_t)nb, sizeof *h); /* rank r's table */
    dagr_access_t *acc = calloc((size_t)right->nparts + 1, sizeof *acc);
    dagr_status_t s = ba && h && acc ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    if (s == DAGR_OK) {
        join_hdr_t hd = {.nkeys = nkeys, .nr = right->nparts, .rcols = right->ncols};
        dt_args_put(ba, &hd, sizeof hd);
        for (int k = 0; k < nkeys; k++) {
            int32_t v = lk[k];
            dt_args_put(ba, &v, sizeof v);
        }
        for (int k = 0; k < nkeys; k++) {
            int32_t v = rk[k];
            dt_args_put(ba, &v, sizeof v);
        }
        s = dt_args_schema(ba, right->ncols, right->names, right->types);
    }
    for (int r = 0; r < nb && s == DAGR_OK; r++) {
        s = dagr_data_create_dynamic(ctx, r, &h[r]);
        for (int p = 0; p < right->nparts; p++)
            acc[p] = (dagr_access_t){right->parts[p], DAGR_READ};
        acc[right->nparts] = (dagr_access_t){h[r], DAGR_WRITE};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = r;
        if (s == DAGR_OK)
            s = dagr_spawn(ctx, &build_kernel, ba->buf, ba->n, right->nparts + 1, acc, &o);
    }
    for (int p = 0; p < left->nparts && s == DAGR_OK; p++)
        s = spawn_join(res, p, args, 1, &left->parts[p], 1, right->nparts, right->parts, 1,
                       h[dt_part_rank(ctx, p)]);
    for (int k = 0; h && k < nb; k++)
        dagr_data_destroy(&h[k]);
    dt_free(h);
    dt_free(acc);
    dt_free(ba);
    return s;
}

dagr_status_t dagr_dtable_join(dagr_dtable_t *left, dagr_dtable_t *right, int nkeys,
                               const char *const *left_keys, const char *const *right_keys,
                               const dagr_join_opts_t *opts, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(left, "join: the left table"));
    DAGR_TRY(dt_check(right, "join: the right table"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "join: out is NULL");
    DAGR_CHECK(left->ctx == right->ctx, DAGR_ERR_ARG,
               "join: the left and right tables belong to different contexts");
    DAGR_CHECK(nkeys >= 1 && nkeys <= JOIN_MAX_KEYS, DAGR_ERR_ARG, "join: nkeys is %d (1 to %d)",
               nkeys, JOIN_MAX_KEYS);
    DAGR_CHECK(left_keys && right_keys, DAGR_ERR_ARG, "join: left_keys or right_keys is NULL");
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    if (opts) o = *opts;
    DAGR_CHECK((unsigned)o.kind <= DAGR_JOIN_ANTI, DAGR_ERR_ARG, "join: unknown kind %d",
               (int)o.kind);
    DAGR_CHECK(o.right_suffix, DAGR_ERR_ARG, "join: opts->right_suffix is NULL");
    DAGR_CHECK(o.broadcast >= -1 && o.broadcast <= 1, DAGR_ERR_ARG,
               "join: opts->broadcast is %d (-1 auto, 0 never, 1 the right table)", o.broadcast);
    DAGR_CHECK(o.broadcast_rows >= 0, DAGR_ERR_ARG, "join: opts->broadcast_rows is %lld (< 0)",
               (long long)o.broadcast_rows);
    bool outer_right = o.kind == DAGR_JOIN_RIGHT || o.kind == DAGR_JOIN_FULL;
    DAGR_CHECK(!(o.broadcast == 1 && outer_right), DAGR_ERR_ARG,
               "join: a %s join cannot broadcast the right table (its unmatched rows would come "
               "out once per left partition); use broadcast 0 or -1",
               kind_name(o.kind));
    int lk[JOIN_MAX_KEYS], rk[JOIN_MAX_KEYS];
    for (int k = 0; k < nkeys; k++) {
        DAGR_TRY(dt_find_col(left, left_keys[k], "join: left key", &lk[k]));
        DAGR_TRY(dt_find_col(right, right_keys[k], "join: right key", &rk[k]));
        DAGR_CHECK(left->types[lk[k]] == right->types[rk[k]], DAGR_ERR_ARG,
                   "join: key %d: left '%s' is %s but right '%s' is %s (keys must be of one "
                   "type)",
                   k, left_keys[k], dt_type_name(left->types[lk[k]]), right_keys[k],
                   dt_type_name(right->types[rk[k]]));
    }
    int onc;
    char **onames;
    dt_type_t *otypes;
    DAGR_TRY(result_schema(left, right, nkeys, rk, o.kind, o.right_suffix, &onc, &onames, &otypes));
    bool bcast = o.broadcast == 1 || (o.broadcast == -1 && !outer_right && right->known_rows >= 0 &&
                                      right->known_rows <= o.broadcast_rows);
    int nout = bcast ? left->nparts : (left->nparts > right->nparts ? left->nparts : right->nparts);
    if (!bcast && nout < 1) nout = 1;

    dt_args_t *args = calloc(1, sizeof *args);
    dagr_status_t s = args ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    if (s == DAGR_OK) {
        join_hdr_t h = {.kind = (int32_t)o.kind,
                        .nkeys = nkeys,
                        .nl = bcast ? 1 : left->nparts,
                        .nr = right->nparts,
                        .lcols = left->ncols,
                        .rcols = right->ncols,
                        .prebuilt = bcast};
        dt_args_put(args, &h, sizeof h);
        for (int k = 0; k < nkeys; k++) {
            int32_t v = lk[k];
            dt_args_put(args, &v, sizeof v);
        }
        for (int k = 0; k < nkeys; k++) {
            int32_t v = rk[k];
            dt_args_put(args, &v, sizeof v);
        }
        s = dt_args_schema(args, onc, onames, otypes);
    }
    dagr_dtable_t *res = NULL;
    if (s == DAGR_OK)
        s = dt_table_new(left->ctx, onc, (const char *const *)onames, otypes, nout, &res);
    free_names(onc, onames);
    dt_free(otypes);
    if (s == DAGR_OK && bcast) {
        s = broadcast_join(left, right, nkeys, lk, rk, args, res);
    } else if (s == DAGR_OK) {
        int32_t route[1 + JOIN_MAX_KEYS];
        dagr_data_t **lb = NULL, **rb = NULL;
        route[0] = nkeys;
        for (int k = 0; k < nkeys; k++)
            route[1 + k] = lk[k];
        s = dt_shuffle(left, nout, join_route, route, (size_t)(1 + nkeys) * 4, 0, NULL, &lb);
        for (int k = 0; k < nkeys; k++)
            route[1 + k] = rk[k];
        if (s == DAGR_OK)
            s = dt_shuffle(right, nout, join_route, route, (size_t)(1 + nkeys) * 4, 0, NULL, &rb);
        /* Destination q reads the buckets (p, q): lb[p * nout + q] for every p. */
        for (int q = 0; q < nout && s == DAGR_OK; q++)
            s = spawn_join(res, q, args, left->nparts, lb ? lb + q : NULL, nout, right->nparts,
                           rb ? rb + q : NULL, nout, NULL);
        if (lb) dt_buckets_free(left, nout, lb);
        if (rb) dt_buckets_free(right, nout, rb);
    }
    dt_free(args);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&res);
        return s;
    }
    *out = res;
    return DAGR_OK;
}
