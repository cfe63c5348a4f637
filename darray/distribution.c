/* Distributions: which rank owns each tile. Block-cyclic over a p x q grid is the default;
 * the 1-D row- and column-cyclic ones are block-cyclic on size x 1 and 1 x size grids; a
 * custom one is the user's rank_of, evaluated once per tile at creation. */
#include "darray_impl.h"

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

dagr_status_t dist_resolve(dagr_ctx_t *ctx, dagr_grid_t g, int64_t mt, int64_t nt, dist_t *d) {
    int size = dagr_size(ctx);
    memset(d, 0, sizeof *d);
    d->kind = g.dist;
    switch (g.dist) {
    case DAGR_DIST_BLOCK_CYCLIC:
        DAGR_CHECK(g.p >= 0 && g.q >= 0, DAGR_ERR_ARG, "grid %dx%d: p and q must be >= 0", g.p,
                   g.q);
        DAGR_CHECK((g.p == 0) == (g.q == 0), DAGR_ERR_ARG,
                   "grid %dx%d: give both p and q, or neither (0x0 picks the squarest)", g.p, g.q);
        if (g.p == 0) {
            squarest(size, &d->p, &d->q);
        } else {
            DAGR_CHECK((long)g.p * g.q <= size, DAGR_ERR_ARG,
                       "grid %dx%d needs %ld ranks but the context has %d", g.p, g.q,
                       (long)g.p * g.q, size);
            d->p = g.p;
            d->q = g.q;
        }
        return DAGR_OK;
    case DAGR_DIST_ROW_CYCLIC:
        d->kind = DAGR_DIST_BLOCK_CYCLIC;
        d->p = size;
        d->q = 1;
        return DAGR_OK;
    case DAGR_DIST_COL_CYCLIC:
        d->kind = DAGR_DIST_BLOCK_CYCLIC;
        d->p = 1;
        d->q = size;
        return DAGR_OK;
    case DAGR_DIST_CUSTOM:
        DAGR_CHECK(g.rank_of, DAGR_ERR_ARG, "grid: a custom distribution needs rank_of");
        for (int64_t tj = 0; tj < nt; tj++) {
            for (int64_t ti = 0; ti < mt; ti++) {
                int r = g.rank_of(ti, tj, g.user);
                DAGR_CHECK(r >= 0 && r < size, DAGR_ERR_ARG,
                           "grid: rank_of(%lld, %lld) returned %d, outside [0, %d)", (long long)ti,
                           (long long)tj, r, size);
            }
        }
        d->rank_of = g.rank_of;
        d->user = g.user;
        return DAGR_OK;
    }
    return DAGR_ERR(DAGR_ERR_ARG, "grid: unknown distribution %d", (int)g.dist);
}

int dist_rank(const dist_t *d, int64_t ti, int64_t tj) {
    if (d->owners) return d->owners[ti + tj * d->omt];
    if (d->kind == DAGR_DIST_CUSTOM) return d->rank_of(ti, tj, d->user);
    int r = (int)((ti + d->rsrc) % d->p), c = (int)((tj + d->csrc) % d->q);
    return d->pmap ? d->pmap[r * d->q + c] : r * d->q + c;
}

static int *dup_ints(const int *src, size_t n) {
    int *p = malloc((n ? n : 1) * sizeof *p);
    if (p) memcpy(p, src, n * sizeof *p);
    return p;
}

dagr_status_t dist_copy(dist_t *dst, const dist_t *src) {
    *dst = *src;
    dst->pmap = src->pmap ? dup_ints(src->pmap, (size_t)src->p * (size_t)src->q) : NULL;
    dst->owners = src->owners ? dup_ints(src->owners, (size_t)(src->omt * src->ont)) : NULL;
    if ((src->pmap && !dst->pmap) || (src->owners && !dst->owners)) {
        dist_free(dst);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a distribution");
    }
    return DAGR_OK;
}

void dist_free(dist_t *d) {
    free(d->pmap);
    free(d->owners);
    d->pmap = NULL;
    d->owners = NULL;
}
