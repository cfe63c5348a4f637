/* Distributions: which rank owns each tile of an mt x nt grid of tiles, for darray/'s tiles and
 * dtable/'s row partitions alike (lib/module.h has the contract). Block-cyclic ones (the 1-D
 * kinds included) are arithmetic on the grid; a custom one is turned into a table when
 * resolved, so that the user's rank_of is called at creation only and every later question
 * (who owns a tile, which tiles a rank owns) is answered in O(1) without calling back. */
#include "module.h"

#include <stdlib.h>
#include <string.h>

dagr_grid_t dagr_grid_2d(int p, int q) {
    return (dagr_grid_t){.dist = DAGR_DIST_BLOCK_CYCLIC, .p = p, .q = q};
}
dagr_grid_t dagr_grid_row_cyclic(void) {
    return (dagr_grid_t){.dist = DAGR_DIST_ROW_CYCLIC};
}
dagr_grid_t dagr_grid_col_cyclic(void) {
    return (dagr_grid_t){.dist = DAGR_DIST_COL_CYCLIC};
}
dagr_grid_t dagr_grid_custom(dagr_rank_of_fn rank_of, void *user) {
    return (dagr_grid_t){.dist = DAGR_DIST_CUSTOM, .rank_of = rank_of, .user = user};
}

/* The squarest p x q = size with p <= q. */
static void squarest(int size, int *p, int *q) {
    int best = 1;
    for (int d = 1; (long)d * d <= size; d++)
        if (size % d == 0) best = d;
    *p = best;
    *q = size / best;
}

/* malloc of n elements of es bytes, never of 0 bytes (an empty grid of tiles still gets a
 * pointer, so that NULL means only failure). */
static void *alloc_n(int64_t n, size_t es) {
    return malloc((size_t)(n > 0 ? n : 1) * es);
}

/* ---------------------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------------------- */

/* A table for `size` ranks and mt x nt tiles, with its owner array allocated (unfilled). */
static dagr_status_t table_new(int size, int64_t mt, int64_t nt, dist_t *d) {
    *d = (dist_t){.kind = DAGR_DIST_CUSTOM, .size = size, .mt = mt, .nt = nt};
    d->owner = alloc_n(mt * nt, sizeof *d->owner);
    DAGR_CHECK(d->owner, DAGR_ERR_NOMEM, "cannot allocate a distribution of %lldx%lld tiles",
               (long long)mt, (long long)nt);
    return DAGR_OK;
}

/* Indexes d's filled owner array by rank: a counting sort of the tile numbers by owner. The
 * numbers are visited in increasing order, so each rank's list comes out column-major. On
 * failure the caller frees d. */
static dagr_status_t table_index(dist_t *d) {
    int64_t n = d->mt * d->nt;
    d->first = calloc((size_t)d->size + 1, sizeof *d->first);
    d->tiles = alloc_n(n, sizeof *d->tiles);
    d->slot = alloc_n(n, sizeof *d->slot);
    int64_t *next = alloc_n(d->size, sizeof *next);
    if (!d->first || !d->tiles || !d->slot || !next) {
        free(next);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a distribution of %lldx%lld tiles",
                        (long long)d->mt, (long long)d->nt);
    }
    for (int64_t t = 0; t < n; t++)
        d->first[d->owner[t] + 1]++;
    for (int r = 0; r < d->size; r++) {
        d->first[r + 1] += d->first[r];
        next[r] = d->first[r];
    }
    for (int64_t t = 0; t < n; t++) {
        int r = d->owner[t];
        d->slot[t] = next[r] - d->first[r];
        d->tiles[next[r]++] = t;
    }
    free(next);
    return DAGR_OK;
}

/* Asks rank_of for every tile (column by column, the first bad answer is the error) and makes
 * the table. */
static dagr_status_t resolve_custom(dagr_grid_t g, int size, int64_t mt, int64_t nt, dist_t *out) {
    dist_t d;
    DAGR_TRY(table_new(size, mt, nt, &d));
    dagr_status_t s = DAGR_OK;
    for (int64_t tj = 0; tj < nt && s == DAGR_OK; tj++) {
        for (int64_t ti = 0; ti < mt; ti++) {
            int r = g.rank_of(ti, tj, g.user);
            if (r < 0 || r >= size) {
                s = DAGR_ERR(DAGR_ERR_ARG, "grid: rank_of(%lld, %lld) returned %d, outside [0, %d)",
                             (long long)ti, (long long)tj, r, size);
                break;
            }
            d.owner[ti + tj * mt] = r;
        }
    }
    if (s == DAGR_OK) s = table_index(&d);
    if (s != DAGR_OK) {
        dist_free(&d);
        return s;
    }
    *out = d;
    return DAGR_OK;
}

/* ---------------------------------------------------------------------------------------
 * Making, copying, freeing
 * ------------------------------------------------------------------------------------- */

dagr_status_t dist_resolve(dagr_grid_t g, int size, int64_t mt, int64_t nt, dist_t *out) {
    DAGR_CHECK(size > 0, DAGR_ERR_ARG, "distribution over %d ranks: size must be > 0", size);
    DAGR_CHECK(mt >= 0 && nt >= 0, DAGR_ERR_ARG,
               "distribution of %lldx%lld tiles: mt and nt must be >= 0", (long long)mt,
               (long long)nt);
    switch (g.dist) {
    case DAGR_DIST_BLOCK_CYCLIC: {
        DAGR_CHECK(g.p >= 0 && g.q >= 0, DAGR_ERR_ARG, "grid %dx%d: p and q must be >= 0", g.p,
                   g.q);
        DAGR_CHECK((g.p == 0) == (g.q == 0), DAGR_ERR_ARG,
                   "grid %dx%d: give both p and q, or neither (0x0 picks the squarest)", g.p, g.q);
        int p = g.p, q = g.q;
        if (p == 0)
            squarest(size, &p, &q);
        else
            DAGR_CHECK((long)p * q <= size, DAGR_ERR_ARG,
                       "grid %dx%d needs %ld ranks but the context has %d", p, q, (long)p * q,
                       size);
        return dist_block_cyclic(size, mt, nt, p, q, 0, 0, NULL, out);
    }
    case DAGR_DIST_ROW_CYCLIC:
        return dist_block_cyclic(size, mt, nt, size, 1, 0, 0, NULL, out);
    case DAGR_DIST_COL_CYCLIC:
        return dist_block_cyclic(size, mt, nt, 1, size, 0, 0, NULL, out);
    case DAGR_DIST_CUSTOM:
        DAGR_CHECK(g.rank_of, DAGR_ERR_ARG, "grid: a custom distribution needs rank_of");
        return resolve_custom(g, size, mt, nt, out);
    }
    return DAGR_ERR(DAGR_ERR_ARG, "grid: unknown distribution %d", (int)g.dist);
}

dagr_status_t dist_block_cyclic(int size, int64_t mt, int64_t nt, int p, int q, int rsrc, int csrc,
                                const int *pmap, dist_t *out) {
    DAGR_CHECK(size > 0 && mt >= 0 && nt >= 0, DAGR_ERR_ARG,
               "distribution of %lldx%lld tiles over %d ranks: bad sizes", (long long)mt,
               (long long)nt, size);
    DAGR_CHECK(p > 0 && q > 0 && (long)p * q <= size, DAGR_ERR_ARG,
               "grid %dx%d does not fit in %d ranks", p, q, size);
    DAGR_CHECK(rsrc >= 0 && rsrc < p && csrc >= 0 && csrc < q, DAGR_ERR_ARG,
               "grid process (%d, %d) of tile (0, 0) is outside the %dx%d grid", rsrc, csrc, p, q);
    dist_t d = {.kind = DAGR_DIST_BLOCK_CYCLIC,
                .size = size,
                .mt = mt,
                .nt = nt,
                .p = p,
                .q = q,
                .rsrc = rsrc,
                .csrc = csrc};
    if (pmap) {
        int n = p * q;
        d.pmap = alloc_n(n, sizeof *d.pmap);
        d.gpos = alloc_n(size, sizeof *d.gpos);
        if (!d.pmap || !d.gpos) {
            dist_free(&d);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a %dx%d process map", p, q);
        }
        for (int r = 0; r < size; r++)
            d.gpos[r] = -1;
        for (int g = 0; g < n; g++) {
            int r = pmap[g];
            dagr_status_t s = DAGR_OK;
            if (r < 0 || r >= size)
                s = DAGR_ERR(DAGR_ERR_ARG,
                             "process map: grid process (%d, %d) is rank %d, outside [0, %d)",
                             g / q, g % q, r, size);
            else if (d.gpos[r] >= 0)
                s = DAGR_ERR(DAGR_ERR_ARG,
                             "process map: grid processes (%d, %d) and (%d, %d) are both rank %d",
                             d.gpos[r] / q, d.gpos[r] % q, g / q, g % q, r);
            if (s != DAGR_OK) {
                dist_free(&d);
                return s;
            }
            d.pmap[g] = r;
            d.gpos[r] = g;
        }
    }
    *out = d;
    return DAGR_OK;
}

dagr_status_t dist_shift(const dist_t *d, int64_t ti0, int64_t tj0, int64_t mt, int64_t nt,
                         dist_t *out) {
    DAGR_CHECK(ti0 >= 0 && tj0 >= 0 && mt >= 0 && nt >= 0, DAGR_ERR_ARG,
               "block of %lldx%lld tiles at (%lld, %lld): negative", (long long)mt, (long long)nt,
               (long long)ti0, (long long)tj0);
    if (d->kind == DAGR_DIST_BLOCK_CYCLIC)
        return dist_block_cyclic(d->size, mt, nt, d->p, d->q, (int)((ti0 + d->rsrc) % d->p),
                                 (int)((tj0 + d->csrc) % d->q), d->pmap, out);
    DAGR_CHECK(ti0 + mt <= d->mt && tj0 + nt <= d->nt, DAGR_ERR_ARG,
               "block of %lldx%lld tiles at (%lld, %lld) is outside the %lldx%lld tiles of a "
               "custom distribution",
               (long long)mt, (long long)nt, (long long)ti0, (long long)tj0, (long long)d->mt,
               (long long)d->nt);
    dist_t s;
    DAGR_TRY(table_new(d->size, mt, nt, &s));
    for (int64_t tj = 0; tj < nt; tj++)
        for (int64_t ti = 0; ti < mt; ti++)
            s.owner[ti + tj * mt] = d->owner[(ti0 + ti) + (tj0 + tj) * d->mt];
    dagr_status_t st = table_index(&s);
    if (st != DAGR_OK) {
        dist_free(&s);
        return st;
    }
    *out = s;
    return DAGR_OK;
}

dagr_status_t dist_copy(const dist_t *d, dist_t *out) {
    return dist_shift(d, 0, 0, d->mt, d->nt, out);
}

void dist_free(dist_t *d) {
    free(d->pmap);
    free(d->gpos);
    free(d->owner);
    free(d->first);
    free(d->tiles);
    free(d->slot);
    d->pmap = d->gpos = d->owner = NULL;
    d->first = d->tiles = d->slot = NULL;
}

/* ---------------------------------------------------------------------------------------
 * Questions
 * ------------------------------------------------------------------------------------- */

int dist_grid_rank(const dist_t *d, int r, int c) {
    return d->pmap ? d->pmap[r * d->q + c] : r * d->q + c;
}

/* Block-cyclic: rank's grid process (r, c); false for a rank outside the grid. */
static bool grid_pos(const dist_t *d, int rank, int *r, int *c) {
    if (rank < 0 || rank >= d->size) return false;
    int g = d->gpos ? d->gpos[rank] : rank < d->p * d->q ? rank : -1;
    if (g < 0) return false;
    *r = g / d->q;
    *c = g % d->q;
    return true;
}

/* Block-cyclic, along one dimension of n tiles over np grid processes whose process src holds
 * tile 0: the first tile on process x, and how many it holds. */
static int64_t first_on(int x, int src, int np) {
    return (x - src + np) % np;
}
static int64_t count_on(int64_t n, int x, int src, int np) {
    int64_t f = first_on(x, src, np);
    return f < n ? (n - 1 - f) / np + 1 : 0;
}

int dist_rank_of(const dist_t *d, int64_t ti, int64_t tj) {
    if (ti < 0 || tj < 0 || ti >= d->mt || tj >= d->nt) return -1;
    if (d->kind == DAGR_DIST_CUSTOM) return d->owner[ti + tj * d->mt];
    return dist_grid_rank(d, (int)((ti + d->rsrc) % d->p), (int)((tj + d->csrc) % d->q));
}

int64_t dist_tile_of(const dist_t *d, int64_t ti, int64_t tj) {
    if (ti < 0 || tj < 0 || ti >= d->mt || tj >= d->nt) return -1;
    if (d->kind == DAGR_DIST_CUSTOM) return d->slot[ti + tj * d->mt];
    /* The owner's tiles along each dimension are first, first + p, ... with first < p, so
     * tile ti is its (ti / p)-th there. */
    int r = (int)((ti + d->rsrc) % d->p);
    return ti / d->p + (tj / d->q) * count_on(d->mt, r, d->rsrc, d->p);
}

int64_t dist_local_count(const dist_t *d, int rank) {
    if (rank < 0 || rank >= d->size) return 0;
    if (d->kind == DAGR_DIST_CUSTOM) return d->first[rank + 1] - d->first[rank];
    int r, c;
    if (!grid_pos(d, rank, &r, &c)) return 0;
    return count_on(d->mt, r, d->rsrc, d->p) * count_on(d->nt, c, d->csrc, d->q);
}

bool dist_local_tile(const dist_t *d, int rank, int64_t k, int64_t *ti, int64_t *tj) {
    if (k < 0 || k >= dist_local_count(d, rank)) return false;
    if (d->kind == DAGR_DIST_CUSTOM) {
        int64_t t = d->tiles[d->first[rank] + k];
        *ti = t % d->mt;
        *tj = t / d->mt;
        return true;
    }
    int r = 0, c = 0;
    grid_pos(d, rank, &r, &c); /* in the grid: the count above was not 0 */
    int64_t lr = count_on(d->mt, r, d->rsrc, d->p);
    *ti = first_on(r, d->rsrc, d->p) + (k % lr) * d->p;
    *tj = first_on(c, d->csrc, d->q) + (k / lr) * d->q;
    return true;
}
