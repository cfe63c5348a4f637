/* Stencils with halo exchange: dagr_darray_stencil.
 *
 * One "darray_stencil" task per tile of B, on B's tile owner. It copies A's matching tile plus
 * a halo of `radius` elements on every side into a padded scratch buffer, then calls the
 * user's function on it. The halo comes from the neighbouring tiles of A, or from the
 * boundary rule where it falls outside the array.
 *
 * The boundary rule is a map from a global index g (any integer) to an index of the array, or
 * to "none" (a zero), applied to rows and columns separately: element (gi, gj) of the padded
 * tile is A(map_m(gi), map_n(gj)), or 0 when either is none. For an array of size s:
 *   ZERO     g outside [0, s) is none;
 *   WRAP     g mod s (periodic);
 *   CLAMP    the nearest of 0 and s - 1;
 *   REFLECT  mirrored about the edge element without repeating it (numpy's 'reflect': a[-1] =
 *            a[1], a[s] = a[s - 2]), folded again and again for indices further out, so it is
 *            periodic with period 2s - 2 and works for any radius. For s = 1 there is nothing
 *            to mirror and every index maps to the only element (as CLAMP does); for s = 2 it
 *            alternates a[0], a[1], a[0], ...
 *
 * Because the map is separable, the A elements one tile's halo needs form a product of a set
 * of source tile rows and a set of source tile columns; for each source tile only the bounding
 * box of the rows and columns used is needed (a "piece"). A piece that is a whole tile, or a
 * tile already on the B tile's rank, is read directly. Any other piece is cut out on the
 * source tile's owner by a small "darray_halo" task into a temporary handle owned by that rank,
 * so that only halo strips (radius rows or columns, and corners) cross the network. The
 * temporary handle is destroyed right after the tasks using it are inserted: the runtime keeps
 * it alive until they have run.
 *
 * A task's arguments describe at most MAX_SRC pieces of A (besides B's tile), so one tile's
 * halo may come from at most MAX_SRC pieces; a radius needing more (a radius many tiles wide) is
 * refused with DAGR_ERR_UNSUPPORTED before anything is inserted. */
#include "darray_impl.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SRC 31

/* ---- the boundary map ---- */

/* The array index global index g stands for in an array of `size` elements, or -1 (zero). */
static int64_t boundary_map(int64_t g, int64_t size, dagr_boundary_t b) {
    if (g >= 0 && g < size) return g;
    switch (b) {
    case DAGR_BOUNDARY_WRAP:
        g %= size;
        return g < 0 ? g + size : g;
    case DAGR_BOUNDARY_CLAMP:
        return g < 0 ? 0 : size - 1;
    case DAGR_BOUNDARY_REFLECT: {
        if (size == 1) return 0;
        int64_t period = 2 * size - 2;
        g %= period;
        if (g < 0) g += period;
        return g < size ? g : period - g;
    }
    default:
        return -1;
    }
}

/* The source tiles (along one dimension) that global indices [g0, g0 + len) map to, each with
 * the bounding range [lo, hi) of the array indices used in it. */
typedef struct dim_groups {
    int n;
    int64_t tile[MAX_SRC];
    int64_t lo[MAX_SRC], hi[MAX_SRC];
} dim_groups_t;

/* Fills d for the range [g0, g0 + len) over an array of `size` elements in tiles of ts.
 * Returns false when more than MAX_SRC source tiles are needed. */
static bool dim_groups(int64_t g0, int64_t len, int64_t size, int64_t ts, dagr_boundary_t b,
                       dim_groups_t *d) {
    d->n = 0;
    /* The set of array indices hit is what matters, not the order: narrow the range walked
     * so that the cost stays bounded for any radius. ZERO and CLAMP hit exactly the part of
     * the range inside the array (CLAMP's extra indices 0 and size - 1 are in it, since the
     * range always covers a tile). WRAP and REFLECT hit every index once the range spans a
     * period. */
    int64_t period = b == DAGR_BOUNDARY_WRAP ? size : size == 1 ? 1 : 2 * size - 2;
    bool clipped = b == DAGR_BOUNDARY_ZERO || b == DAGR_BOUNDARY_CLAMP;
    if (clipped || len >= period) {
        int64_t lo = 0, hi = size;
        if (clipped) {
            lo = g0 > 0 ? g0 : 0;
            hi = g0 + len < size ? g0 + len : size;
        }
        for (int64_t t = lo / ts; t * ts < hi; t++) {
            if (d->n == MAX_SRC) return false;
            d->tile[d->n] = t;
            d->lo[d->n] = t * ts > lo ? t * ts : lo;
            d->hi[d->n] = (t + 1) * ts < hi ? (t + 1) * ts : hi;
            d->n++;
        }
        return true;
    }
    int last = -1;
    for (int64_t g = g0; g < g0 + len; g++) {
        int64_t s = boundary_map(g, size, b), t = s / ts;
        int k = last;
        if (k < 0 || d->tile[k] != t) {
            for (k = 0; k < d->n && d->tile[k] != t; k++)
                ;
            if (k == d->n) {
                if (d->n == MAX_SRC) return false;
                d->tile[k] = t, d->lo[k] = s, d->hi[k] = s + 1;
                d->n++;
            }
            last = k;
        }
        if (s < d->lo[k]) d->lo[k] = s;
        if (s >= d->hi[k]) d->hi[k] = s + 1;
    }
    return true;
}

/* ---- tasks ---- */

/* Where one piece's buffer puts array element (i, j): at (i - r0) + (j - c0) * ld, with ld
 * taken from the task view when 0 (a tile of A read directly). */
typedef struct piece {
    int64_t r0, c0, ld;
} piece_t;

typedef struct stencil_args {
    tile_arg_t out; /* B's tile: buffer 0 */
    tile_arg_t in;  /* A's matching tile (shape, origin and dtype of what fn sees) */
    int64_t m, n, mb, nb;
    int32_t radius, boundary;
    int32_t nrg, ncg; /* pieces: row group i, column group j is buffer 1 + i + j * nrg */
    int64_t rtile[MAX_SRC], ctile[MAX_SRC];
    piece_t piece[MAX_SRC];
    dagr_stencil_fn fn; /* a local pointer: the task runs on the rank that inserted it */
    void *user;
} stencil_args_t;

/* Fills map[p] with the array index of global index g0 + p (or -1) and grp[p] with the group
 * holding it, for p in [0, len). */
static void map_dim(int64_t g0, int64_t len, int64_t size, int64_t ts, dagr_boundary_t b,
                    const int64_t *tiles, int ntiles, int64_t *map, int32_t *grp) {
    int k = 0;
    for (int64_t p = 0; p < len; p++) {
        int64_t s = boundary_map(g0 + p, size, b);
        map[p] = s;
        grp[p] = -1;
        if (s < 0) continue;
        int64_t t = s / ts;
        if (tiles[k] != t)
            for (k = 0; k < ntiles - 1 && tiles[k] != t; k++)
                ;
        grp[p] = k;
    }
}

static dagr_task_result_t k_stencil(const dagr_task_view_t *task) {
    const stencil_args_t *a = task->args;
    const dagr_boundary_t b = (dagr_boundary_t)a->boundary;
    const int64_t r = a->radius, rows = a->in.rows, cols = a->in.cols;
    const int64_t pr = rows + 2 * r, pc = cols + 2 * r;
    const size_t es = dagr_dtype_size((dagr_dtype_t)a->in.dtype);
    /* Scratch per task: the padded tile, then the row and column maps. */
    size_t data_bytes = ((size_t)pr * (size_t)pc * es + 63) & ~(size_t)63;
    size_t map_bytes = (size_t)(pr + pc) * (sizeof(int64_t) + sizeof(int32_t));
    char *scratch = malloc(data_bytes + map_bytes);
    if (!scratch) {
        dagr_task_fail(task, DAGR_ERR_NOMEM, "stencil: no memory for a %lldx%lld padded tile",
                       (long long)pr, (long long)pc);
        return DAGR_TASK_ERROR;
    }
    char *pad = scratch;
    int64_t *rmap = (int64_t *)(scratch + data_bytes), *cmap = rmap + pr;
    int32_t *rgrp = (int32_t *)(cmap + pc), *cgrp = rgrp + pr;
    map_dim(a->in.i0 - r, pr, a->m, a->mb, b, a->rtile, a->nrg, rmap, rgrp);
    map_dim(a->in.j0 - r, pc, a->n, a->nb, b, a->ctile, a->ncg, cmap, cgrp);

    for (int64_t q = 0; q < pc; q++) {
        char *dst = pad + (size_t)(q * pr) * es;
        if (cmap[q] < 0) {
            memset(dst, 0, (size_t)pr * es);
            continue;
        }
        int64_t p = 0;
        while (p < pr) {
            /* A run of rows from one piece, consecutive in A: one memcpy. */
            int64_t e = p + 1;
            if (rmap[p] < 0) {
                while (e < pr && rmap[e] < 0)
                    e++;
                memset(dst + (size_t)p * es, 0, (size_t)(e - p) * es);
                p = e;
                continue;
            }
            while (e < pr && rgrp[e] == rgrp[p] && rmap[e] == rmap[e - 1] + 1)
                e++;
            int k = rgrp[p] + cgrp[q] * a->nrg;
            const piece_t *pc_ = &a->piece[k];
            int64_t ld = pc_->ld ? pc_->ld : (int64_t)task->ld[1 + k];
            const char *src = (const char *)task->buf[1 + k] +
                              (size_t)((rmap[p] - pc_->r0) + (cmap[q] - pc_->c0) * ld) * es;
            memcpy(dst + (size_t)p * es, src, (size_t)(e - p) * es);
            p = e;
        }
    }

    dagr_tile_t in = {.data = pad + (size_t)(r + r * pr) * es,
                      .dtype = (dagr_dtype_t)a->in.dtype,
                      .rows = rows,
                      .cols = cols,
                      .ld = pr,
                      .i0 = a->in.i0,
                      .j0 = a->in.j0};
    dagr_tile_t out = da_tile_view(task, 0, &a->out);
    a->fn(&in, &out, a->user);
    free(scratch);
    return DAGR_TASK_DONE;
}

typedef struct halo_args {
    tile_arg_t src;         /* A's tile: buffer 1 */
    int64_t r0, c0;         /* first element cut out, in the tile */
    int64_t rows, cols, es; /* the strip, packed into buffer 0 with ld = rows */
} halo_args_t;

static dagr_task_result_t k_halo(const dagr_task_view_t *task) {
    const halo_args_t *a = task->args;
    dagr_tile_t s = da_tile_view(task, 1, &a->src);
    char *dst = task->buf[0];
    const size_t es = (size_t)a->es;
    for (int64_t c = 0; c < a->cols; c++)
        memcpy(dst + (size_t)(c * a->rows) * es,
               (const char *)s.data + (size_t)(a->r0 + (a->c0 + c) * s.ld) * es,
               (size_t)a->rows * es);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t stencil_kernel = {.name = "darray_stencil", .cpu = k_stencil};
static const dagr_kernel_t halo_kernel = {.name = "darray_halo", .cpu = k_halo};

/* ---- insertion ---- */

/* Inserts the tasks computing B's tile (ti, tj); rg and cg are its source groups. */
static dagr_status_t stencil_tile(const dagr_darray_t *A, dagr_darray_t *B, int64_t ti, int64_t tj,
                                  int radius, dagr_boundary_t boundary, dagr_stencil_fn fn,
                                  void *user, const dim_groups_t *rg, const dim_groups_t *cg) {
    stencil_args_t a = {.out = da_tile_arg(B, ti, tj),
                        .in = da_tile_arg(A, ti, tj),
                        .m = A->m,
                        .n = A->n,
                        .mb = A->mb,
                        .nb = A->nb,
                        .radius = radius,
                        .boundary = boundary,
                        .nrg = rg->n,
                        .ncg = cg->n,
                        .fn = fn,
                        .user = user};
    memcpy(a.rtile, rg->tile, sizeof a.rtile);
    memcpy(a.ctile, cg->tile, sizeof a.ctile);
    dagr_access_t acc[MAX_SRC + 1];
    dagr_data_t *tmp[MAX_SRC];
    int ntmp = 0;
    dagr_status_t s = DAGR_OK;
    dagr_task_opts_t halo_opts;
    dagr_task_opts_init(&halo_opts);
    halo_opts.priority = 1; /* strips feed other ranks' tasks: cut them out first */
    const int here = dagr_data_owner(da_handle(B, ti, tj));

    acc[0] = (dagr_access_t){da_handle(B, ti, tj), da_out_mode(B, ti, tj)};
    for (int j = 0; j < cg->n; j++) {
        for (int i = 0; i < rg->n; i++) {
            int k = i + j * rg->n;
            int64_t si = rg->tile[i], sj = cg->tile[j];
            dagr_data_t *h = da_handle(A, si, sj);
            tile_arg_t st = da_tile_arg(A, si, sj);
            int64_t rows = rg->hi[i] - rg->lo[i], cols = cg->hi[j] - cg->lo[j];
            bool whole = rows == st.rows && cols == st.cols;
            if (whole || dagr_data_owner(h) == here) {
                a.piece[k] = (piece_t){.r0 = st.i0, .c0 = st.j0, .ld = 0};
                acc[1 + k] = (dagr_access_t){h, DAGR_READ};
                continue;
            }
            halo_args_t ha = {.src = st,
                              .r0 = rg->lo[i] - st.i0,
                              .c0 = cg->lo[j] - st.j0,
                              .rows = rows,
                              .cols = cols,
                              .es = (int64_t)A->es};
            s = dagr_data_create(A->ctx, (size_t)(rows * cols) * A->es, dagr_data_owner(h),
                                 &tmp[ntmp]);
            if (s != DAGR_OK) goto destroy_tmp;
            dagr_data_t *t = tmp[ntmp++];
            dagr_access_t hacc[2] = {{t, DAGR_WRITE}, {h, DAGR_READ}};
            s = dagr_spawn(A->ctx, &halo_kernel, &ha, sizeof ha, 2, hacc, &halo_opts);
            if (s != DAGR_OK) goto destroy_tmp;
            a.piece[k] = (piece_t){.r0 = rg->lo[i], .c0 = cg->lo[j], .ld = rows};
            acc[1 + k] = (dagr_access_t){t, DAGR_READ};
        }
    }
    s = dagr_spawn(A->ctx, &stencil_kernel, &a, sizeof a, 1 + rg->n * cg->n, acc, NULL);
destroy_tmp:
    for (int k = 0; k < ntmp; k++) {
        dagr_status_t d = dagr_data_destroy(&tmp[k]);
        if (s == DAGR_OK) s = d;
    }
    return s;
}

dagr_status_t dagr_darray_stencil(const dagr_darray_t *A, int radius, dagr_boundary_t boundary,
                                  dagr_stencil_fn fn, void *user, dagr_darray_t *B) {
    DAGR_TRY(da_check_same_tiles(A, B, "A", "B"));
    DAGR_CHECK(fn, DAGR_ERR_ARG, "fn is NULL");
    DAGR_CHECK(radius >= 0, DAGR_ERR_ARG, "radius %d must be >= 0", radius);
    DAGR_CHECK(boundary == DAGR_BOUNDARY_ZERO || boundary == DAGR_BOUNDARY_WRAP ||
                   boundary == DAGR_BOUNDARY_CLAMP || boundary == DAGR_BOUNDARY_REFLECT,
               DAGR_ERR_ARG, "boundary %d is not a dagr_boundary_t", (int)boundary);
    DAGR_CHECK(A != B, DAGR_ERR_ARG, "B is A: a stencil cannot work in place");
    DAGR_CHECK(!da_shares(A, B), DAGR_ERR_ARG,
               "B shares tiles with A (a view of the same array): a stencil cannot work in place");
    if (A->m == 0 || A->n == 0) return DAGR_OK;

    /* The padded tile must be addressable. */
    double pad = ((double)A->mb + 2.0 * radius) * ((double)A->nb + 2.0 * radius) * (double)A->es;
    DAGR_CHECK(pad < (double)(INT64_MAX / 4), DAGR_ERR_ARG,
               "radius %d is too large: a padded %lldx%lld tile would take %g bytes", radius,
               (long long)A->mb, (long long)A->nb, pad);

    /* Refuse, before inserting anything, a radius whose halo needs more pieces than a task may
     * read. Every tile row meets every tile column, so the worst tile is the product of the
     * worst tile row and the worst tile column. */
    dim_groups_t *rg = malloc((size_t)(A->mt + A->nt) * sizeof *rg);
    DAGR_CHECK(rg, DAGR_ERR_NOMEM, "stencil: no memory for %lld halo descriptions",
               (long long)(A->mt + A->nt));
    dim_groups_t *cg = rg + A->mt;
    int64_t maxr = 0, maxc = 0;
    bool fits = true;
    for (int64_t ti = 0; ti < A->mt && fits; ti++) {
        fits = dim_groups(ti * A->mb - radius, da_tile_rows(A, ti) + 2 * (int64_t)radius, A->m,
                          A->mb, boundary, &rg[ti]);
        maxr = rg[ti].n > maxr ? rg[ti].n : maxr;
    }
    for (int64_t tj = 0; tj < A->nt && fits; tj++) {
        fits = dim_groups(tj * A->nb - radius, da_tile_cols(A, tj) + 2 * (int64_t)radius, A->n,
                          A->nb, boundary, &cg[tj]);
        maxc = cg[tj].n > maxc ? cg[tj].n : maxc;
    }
    if (!fits || maxr * maxc > MAX_SRC) {
        free(rg);
        return DAGR_ERR(DAGR_ERR_UNSUPPORTED,
                        "radius %d with %lldx%lld tiles: a tile and its halo would span %s%lld "
                        "source tiles, more than the %d one task may read (use larger tiles)",
                        radius, (long long)A->mb, (long long)A->nb, fits ? "" : "over ",
                        (long long)(fits ? maxr * maxc : MAX_SRC), MAX_SRC);
    }

    dagr_status_t s = DAGR_OK;
    for (int64_t tj = 0; tj < A->nt && s == DAGR_OK; tj++)
        for (int64_t ti = 0; ti < A->mt && s == DAGR_OK; ti++)
            s = stencil_tile(A, B, ti, tj, radius, boundary, fn, user, &rg[ti], &cg[tj]);
    free(rg);
    return s;
}
