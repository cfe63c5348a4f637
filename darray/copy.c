/* Copies between arrays of any tiling and distribution: copy, transpose, redistribution and
 * copied sub-arrays all come down to darray_copy_block. For each destination tile it inserts
 * one task on the tile's owner reading every source tile that overlaps it (in batches of
 * MAX_SRC), so each source tile crosses the network at most once per destination tile. */
#include "darray_impl.h"

#include <stddef.h>
#include <string.h>

/* Source pieces one copy task takes: its arguments describe each one. */
#define MAX_SRC 31

typedef struct src_piece {
    tile_arg_t t;       /* the source tile */
    int64_t r0, c0;     /* first source element copied, in the tile */
    int64_t rows, cols; /* extent in the source's orientation */
    int64_t dr0, dc0;   /* where it lands in the destination tile */
} src_piece_t;

typedef struct copy_args {
    tile_arg_t dst;
    int32_t trans, nsrc;
    src_piece_t src[MAX_SRC];
} copy_args_t;

static void copy_piece(const dagr_tile_t *s, dagr_tile_t *d, const src_piece_t *p, bool trans,
                       size_t es) {
    const char *sb = s->data;
    char *db = d->data;
    if (!trans) {
        for (int64_t c = 0; c < p->cols; c++)
            memcpy(db + (size_t)((p->dr0) + (p->dc0 + c) * d->ld) * es,
                   sb + (size_t)(p->r0 + (p->c0 + c) * s->ld) * es, (size_t)p->rows * es);
        return;
    }
    /* d(dr0 + c, dc0 + r) = s(r0 + r, c0 + c), in blocks so both sides stay in cache. */
    const int64_t B = 32;
    for (int64_t cb = 0; cb < p->cols; cb += B) {
        for (int64_t rb = 0; rb < p->rows; rb += B) {
            int64_t ce = cb + B < p->cols ? cb + B : p->cols,
                    re = rb + B < p->rows ? rb + B : p->rows;
            for (int64_t c = cb; c < ce; c++) {
                for (int64_t r = rb; r < re; r++) {
                    int64_t si = p->r0 + r + (p->c0 + c) * s->ld;
                    int64_t di = p->dr0 + c + (p->dc0 + r) * d->ld;
                    if (es == 8)
                        ((uint64_t *)db)[di] = ((const uint64_t *)sb)[si];
                    else
                        ((uint32_t *)db)[di] = ((const uint32_t *)sb)[si];
                }
            }
        }
    }
}

static dagr_task_result_t k_copy(const dagr_task_view_t *task) {
    const copy_args_t *a = task->args;
    dagr_tile_t d = da_tile_view(task, 0, &a->dst);
    size_t es = dagr_dtype_size(d.dtype);
    for (int k = 0; k < a->nsrc; k++) {
        /* The same source handle may be the destination too (a copy within one array):
         * buffers map one-to-one to accesses, so index k + 1 is this piece's source. */
        dagr_tile_t s = da_tile_view(task, k + 1, &a->src[k].t);
        copy_piece(&s, &d, &a->src[k], a->trans, es);
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t copy_kernel = {.name = "darray_copy", .cpu = k_copy};

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}
static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Inserts the tasks filling destination tile (ti, tj) of B, whose part [br0, br1) x [bc0, bc1)
 * (tile coordinates) receives A's block; A's block origin is (ai, aj) and B's is (bi, bj). */
static dagr_status_t fill_dst_tile(const dagr_darray_t *A, int64_t ai, int64_t aj, dagr_darray_t *B,
                                   int64_t bi, int64_t bj, int64_t ti, int64_t tj, int64_t br0,
                                   int64_t br1, int64_t bc0, int64_t bc1, bool trans) {
    copy_args_t a = {.dst = da_tile_arg(B, ti, tj), .trans = trans};
    dagr_access_t acc[MAX_SRC + 1];
    bool whole = br0 == 0 && bc0 == 0 && br1 == a.dst.rows && bc1 == a.dst.cols;
    bool first = true;
    /* The destination part in block coordinates (row x, column y of the copied block). */
    int64_t x0 = a.dst.i0 + br0 - bi, x1 = a.dst.i0 + br1 - bi;
    int64_t y0 = a.dst.j0 + bc0 - bj, y1 = a.dst.j0 + bc1 - bj;
    /* The source rows and columns that land there (swapped when transposing). */
    int64_t sr0 = ai + (trans ? y0 : x0), sr1 = ai + (trans ? y1 : x1);
    int64_t sc0 = aj + (trans ? x0 : y0), sc1 = aj + (trans ? x1 : y1);
    for (int64_t sj = sc0 / A->nb; sj * A->nb < sc1; sj++) {
        for (int64_t si = sr0 / A->mb; si * A->mb < sr1; si++) {
            tile_arg_t st = da_tile_arg(A, si, sj);
            int64_t r0 = max64(sr0, st.i0), r1 = min64(sr1, st.i0 + st.rows);
            int64_t c0 = max64(sc0, st.j0), c1 = min64(sc1, st.j0 + st.cols);
            src_piece_t p = {
                .t = st, .r0 = r0 - st.i0, .c0 = c0 - st.j0, .rows = r1 - r0, .cols = c1 - c0};
            /* Source element (r, c) is block element (r - ai, c - aj), or its transpose. */
            int64_t x = trans ? c0 - aj : r0 - ai, y = trans ? r0 - ai : c0 - aj;
            p.dr0 = bi + x - a.dst.i0;
            p.dc0 = bj + y - a.dst.j0;
            a.src[a.nsrc] = p;
            acc[1 + a.nsrc] = (dagr_access_t){da_handle(A, si, sj), DAGR_READ};
            a.nsrc++;
            if (a.nsrc == MAX_SRC) {
                acc[0] = (dagr_access_t){da_handle(B, ti, tj),
                                         first && whole ? da_out_mode(B, ti, tj) : DAGR_RW};
                DAGR_TRY(dagr_spawn(B->ctx, &copy_kernel, &a, sizeof a, 1 + a.nsrc, acc, NULL));
                first = false;
                a.nsrc = 0;
            }
        }
    }
    if (a.nsrc == 0) return DAGR_OK;
    acc[0] =
        (dagr_access_t){da_handle(B, ti, tj), first && whole ? da_out_mode(B, ti, tj) : DAGR_RW};
    /* Only the pieces used travel in the argument block. */
    size_t size = offsetof(copy_args_t, src) + (size_t)a.nsrc * sizeof(src_piece_t);
    return dagr_spawn(B->ctx, &copy_kernel, &a, size, 1 + a.nsrc, acc, NULL);
}

dagr_status_t darray_copy_block(const dagr_darray_t *A, int64_t ai, int64_t aj, dagr_darray_t *B,
                                int64_t bi, int64_t bj, int64_t m, int64_t n, bool trans) {
    if (m == 0 || n == 0) return DAGR_OK;
    /* The destination block is m x n, or n x m when transposing. */
    int64_t dm = trans ? n : m, dn = trans ? m : n;
    for (int64_t tj = bj / B->nb; tj * B->nb < bj + dn; tj++) {
        for (int64_t ti = bi / B->mb; ti * B->mb < bi + dm; ti++) {
            int64_t i0 = ti * B->mb, j0 = tj * B->nb;
            int64_t br0 = max64(bi, i0) - i0, br1 = min64(bi + dm, i0 + da_tile_rows(B, ti)) - i0;
            int64_t bc0 = max64(bj, j0) - j0, bc1 = min64(bj + dn, j0 + da_tile_cols(B, tj)) - j0;
            DAGR_TRY(fill_dst_tile(A, ai, aj, B, bi, bj, ti, tj, br0, br1, bc0, bc1, trans));
        }
    }
    return DAGR_OK;
}

/* Store-relative element ranges of two arrays sharing a store overlap? */
static bool overlaps(const dagr_darray_t *A, const dagr_darray_t *B) {
    if (!da_shares(A, B) || A->m == 0 || A->n == 0 || B->m == 0 || B->n == 0) return false;
    int64_t ar = A->ti0 * A->mb, ac = A->tj0 * A->nb, br = B->ti0 * B->mb, bc = B->tj0 * B->nb;
    return ar < br + B->m && br < ar + A->m && ac < bc + B->n && bc < ac + A->n;
}

static dagr_status_t check_copy(const dagr_darray_t *A, const dagr_darray_t *B, bool trans) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_TRY(da_check(B, "B"));
    DAGR_CHECK(A->ctx == B->ctx, DAGR_ERR_ARG, "A and B belong to different contexts");
    DAGR_CHECK(A->dtype == B->dtype, DAGR_ERR_ARG, "A has dtype %d but B has dtype %d",
               (int)A->dtype, (int)B->dtype);
    int64_t m = trans ? A->n : A->m, n = trans ? A->m : A->n;
    DAGR_CHECK(B->m == m && B->n == n, DAGR_ERR_ARG,
               "A is %lldx%lld so B must be %lldx%lld, not %lldx%lld", (long long)A->m,
               (long long)A->n, (long long)m, (long long)n, (long long)B->m, (long long)B->n);
    return DAGR_OK;
}

dagr_status_t dagr_darray_copy(const dagr_darray_t *A, dagr_darray_t *B) {
    DAGR_TRY(check_copy(A, B, false));
    if (A == B || (da_shares(A, B) && A->ti0 == B->ti0 && A->tj0 == B->tj0)) return DAGR_OK;
    DAGR_CHECK(!overlaps(A, B), DAGR_ERR_ARG, "A and B are overlapping views of one array");
    return darray_copy_block(A, 0, 0, B, 0, 0, A->m, A->n, false);
}

dagr_status_t dagr_darray_transpose(const dagr_darray_t *A, dagr_darray_t *B) {
    DAGR_TRY(check_copy(A, B, true));
    DAGR_CHECK(!overlaps(A, B) && A != B, DAGR_ERR_ARG,
               "transpose is out of place: A and B must not share elements");
    return darray_copy_block(A, 0, 0, B, 0, 0, A->m, A->n, true);
}

dagr_status_t dagr_darray_redistribute(const dagr_darray_t *A, int64_t mb, int64_t nb,
                                       dagr_grid_t grid, dagr_darray_t **out) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    dagr_darray_t *B = NULL;
    DAGR_TRY(dagr_darray_create(A->ctx, A->dtype, A->m, A->n, mb, nb, grid, &B));
    dagr_status_t s = darray_copy_block(A, 0, 0, B, 0, 0, A->m, A->n, false);
    if (s != DAGR_OK) {
        dagr_darray_destroy(&B);
        return s;
    }
    *out = B;
    return DAGR_OK;
}

dagr_status_t dagr_darray_subarray(const dagr_darray_t *A, int64_t i0, int64_t j0, int64_t m,
                                   int64_t n, dagr_darray_t **out) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    DAGR_CHECK(m >= 0 && n >= 0 && i0 >= 0 && j0 >= 0 && i0 <= A->m - m && j0 <= A->n - n,
               DAGR_ERR_ARG, "block %lldx%lld at (%lld, %lld) is outside the %lldx%lld array",
               (long long)m, (long long)n, (long long)i0, (long long)j0, (long long)A->m,
               (long long)A->n);
    /* Keep A's grid; a custom distribution knows A's tiles only: use the default. */
    dist_t d;
    int64_t mt = (m + A->mb - 1) / A->mb, nt = (n + A->nb - 1) / A->nb;
    if (A->dist.kind == DAGR_DIST_CUSTOM) {
        DAGR_TRY(dist_resolve(dagr_grid_2d(0, 0), dagr_size(A->ctx), mt, nt, &d));
    } else {
        DAGR_TRY(dist_shift(&A->dist, 0, 0, mt, nt, &d));
    }
    dagr_darray_t *B = NULL;
    dagr_status_t s = darray_new(A->ctx, A->dtype, m, n, A->mb, A->nb, &d, NULL, NULL, &B);
    if (s != DAGR_OK) {
        dist_free(&d);
        return s;
    }
    s = darray_copy_block(A, i0, j0, B, 0, 0, m, n, false);
    if (s != DAGR_OK) {
        dagr_darray_destroy(&B);
        return s;
    }
    *out = B;
    return DAGR_OK;
}
