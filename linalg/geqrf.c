/* Tile Householder QR (as PLASMA's): dagr_geqrf, dagr_ormqr, dagr_orgqr, dagr_gels; and the
 * entry points shared with QR in LAPACK storage (variant 3, qr_householder.c), which a
 * dagr_qr_t's form selects: ormqr, orgqr and gels have one apply path per form.
 *
 * Panel k (tile column k) is reduced to one upper triangle in tile (k, k) by a sequence of
 * eliminations, each a small orthogonal transform that dagr_qr_t records in order:
 *   GEQRT(i)    QR of tile (i, k) alone: R in its upper triangle, the reflectors below it and
 *               their T factor in tg(i, k);
 *   TS(p, i)    the triangle of tile p with the full tile i below it (tpqrt, l = 0): the
 *               reflectors fill tile (i, k), T in tc(i, k);
 *   TT(p, i)    the triangle of tile p with the triangle of tile i (tpqrt, l = rows): the
 *               reflectors fill the upper triangle of tile (i, k) (its lower part keeps those
 *               of GEQRT(i)), T in tc(i, k).
 * Q is the product of these transforms in the order they were made, so ormqr replays the list
 * forwards or backwards. Each transform is applied to the trailing tiles right after it is
 * made (the update tasks), which is all the dependency information the runtime needs.
 *
 * Two reduction trees (opts.variant): flat (2) — GEQRT(k) then TS(k, i) for every i > k, as
 * PLASMA's default; and per-rank tree (1) — each rank reduces its own tiles of the panel with
 * GEQRT on its first one and TS on the others (no communication), then the per-rank triangles
 * are combined by TT in a binary tree, so a tall-skinny panel costs log2(ranks) messages in
 * sequence instead of one per tile. The default (0) takes the tree when the matrix is tall and
 * skinny (mt > 2 nt) and the flat tree otherwise; LAPACK storage (3) is asked for by name.
 *
 * The top tile p of every TS or TT is never the last tile row (it has a smaller index than the
 * tile it eliminates), so with square tiles it holds the panel's full triangle (rows >= the
 * panel's columns).
 *
 * Each routine checks its result for NaN and Inf last (la_check_finite): A for geqrf, C for
 * ormqr, Q for orgqr, B for gels. */
#include "linalg_impl.h"
#include "qr_impl.h"

#include <stdlib.h>

enum { QR_GEQRT = 0, QR_TS = 1, QR_TT = 2 };

enum { QR_VARIANT_AUTO = 0, QR_VARIANT_TREE = 1, QR_VARIANT_FLAT = 2, QR_VARIANT_HH = 3 };

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Rows of the eliminated tile that an elimination's reflectors span: all of them for TS, the
 * triangle's for TT. */
static int64_t elim_rows(const dagr_darray_t *A, const qr_elim_t *e) {
    int64_t r = da_tile_rows(A, e->i);
    return e->kind == QR_TT ? min64(r, da_tile_cols(A, e->k)) : r;
}

/* Applies the transform of elimination e (from the factorization of A) to C: op(H) C for side
 * LEFT, to the tile columns j0.. of C, or C op(H) for RIGHT, to the tile rows j0.. of C. */
static dagr_status_t apply_elim(const dagr_darray_t *A, const dagr_qr_t *qr, const qr_elim_t *e,
                                dagr_side_t side, dagr_op_t trans, dagr_darray_t *C, int64_t j0,
                                int prio_near, int prio_far, int lookahead) {
    int64_t ck = da_tile_cols(A, e->k), i = e->i, p = e->p;
    int64_t jend = side == DAGR_LEFT ? C->nt : C->mt;
    for (int64_t j = j0; j < jend; j++) {
        int prio = j - j0 < lookahead ? prio_near : prio_far;
        /* the C tiles touched: (i, j) and (p, j) on the left, (j, i) and (j, p) on the right */
        int64_t ci = side == DAGR_LEFT ? i : j, cj = side == DAGR_LEFT ? j : i;
        int64_t pi = side == DAGR_LEFT ? p : j, pj = side == DAGR_LEFT ? j : p;
        int64_t free_dim = side == DAGR_LEFT ? da_tile_cols(C, j) : da_tile_rows(C, j);
        qr_op_t op = {.dtype = A->dtype, .side = side, .trans = trans, .ib = qr->ib};
        if (e->kind == QR_GEQRT) {
            op.k = min64(da_tile_rows(A, i), ck);
            op.m = da_tile_rows(C, ci);
            op.n = da_tile_cols(C, cj);
            dagr_access_t acc[3] = {{da_handle(C, ci, cj), DAGR_RW},
                                    {da_handle(A, i, e->k), DAGR_READ},
                                    {qr->tg[i + e->k * qr->mt], DAGR_READ}};
            double fl = 4.0 * (double)op.m * (double)op.n * (double)op.k;
            DAGR_TRY(
                la_spawn_args(&la_gemqrt_kernel, &op, sizeof(qr_op_t), 3, acc, prio, fl, A->ctx));
        } else {
            int64_t v = elim_rows(A, e);
            op.k = ck;
            op.l = e->kind == QR_TT ? v : 0;
            op.m = side == DAGR_LEFT ? v : free_dim;
            op.n = side == DAGR_LEFT ? free_dim : v;
            dagr_access_t acc[4] = {{da_handle(C, ci, cj), DAGR_RW},
                                    {da_handle(C, pi, pj), DAGR_RW},
                                    {da_handle(A, i, e->k), DAGR_READ},
                                    {qr->tc[i + e->k * qr->mt], DAGR_READ}};
            double fl = 4.0 * (double)v * (double)free_dim * (double)ck;
            DAGR_TRY(
                la_spawn_args(&la_tpmqrt_kernel, &op, sizeof(qr_op_t), 4, acc, prio, fl, A->ctx));
        }
    }
    return DAGR_OK;
}

/* Records elimination e, creates its T factor on the owner of the tile it writes, inserts its
 * factor task and the updates of the trailing tile columns. */
static dagr_status_t factor_elim(dagr_darray_t *A, dagr_qr_t *qr, qr_elim_t e, int64_t nk,
                                 int lookahead) {
    int64_t ck = da_tile_cols(A, e.k), slot = e.i + e.k * qr->mt;
    dagr_data_t *h = da_handle(A, e.i, e.k);
    dagr_data_t **t = e.kind == QR_GEQRT ? &qr->tg[slot] : &qr->tc[slot];
    DAGR_TRY(
        dagr_data_create_2d(A->ctx, (size_t)qr->ib, (size_t)A->nb, A->es, dagr_data_owner(h), t));
    qr->ops[qr->nops++] = e;
    /* panels first, then the lookahead columns, then the rest */
    int base = (int)(3 * (nk - e.k));
    qr_op_t op = {.dtype = A->dtype, .n = ck, .ib = qr->ib};
    if (e.kind == QR_GEQRT) {
        op.m = da_tile_rows(A, e.i);
        dagr_access_t acc[2] = {{h, DAGR_RW}, {*t, DAGR_WRITE}};
        double kk = (double)min64(op.m, ck);
        double fl = 2.0 * kk * kk * ((double)op.m + (double)ck - 2.0 * kk / 3.0);
        DAGR_TRY(
            la_spawn_args(&la_geqrt_kernel, &op, sizeof(qr_op_t), 2, acc, base + 2, fl, A->ctx));
    } else {
        op.m = elim_rows(A, &e);
        op.l = e.kind == QR_TT ? op.m : 0;
        dagr_access_t acc[3] = {{h, DAGR_RW}, {da_handle(A, e.p, e.k), DAGR_RW}, {*t, DAGR_WRITE}};
        double fl = 2.0 * (double)op.m * (double)ck * (double)ck;
        DAGR_TRY(
            la_spawn_args(&la_tpqrt_kernel, &op, sizeof(qr_op_t), 3, acc, base + 2, fl, A->ctx));
    }
    return apply_elim(A, qr, &e, DAGR_LEFT, DAGR_TRANS, A, e.k + 1, base + 1, 0, lookahead);
}

/* Reduces panel k by the per-rank tree (see the top of the file). tops and top_of_rank are
 * scratch space of mt and nranks entries. */
static dagr_status_t panel_tree(dagr_darray_t *A, dagr_qr_t *qr, int64_t k, int64_t nk,
                                int lookahead, int64_t *tops, int64_t *top_of_rank, int nranks) {
    for (int r = 0; r < nranks; r++)
        top_of_rank[r] = -1;
    int64_t ntops = 0;
    for (int64_t i = k; i < A->mt; i++) {
        int o = dagr_data_owner(da_handle(A, i, k));
        if (top_of_rank[o] < 0) {
            top_of_rank[o] = i;
            tops[ntops++] = i;
            DAGR_TRY(factor_elim(A, qr, (qr_elim_t){QR_GEQRT, k, i, i}, nk, lookahead));
        } else {
            DAGR_TRY(factor_elim(A, qr, (qr_elim_t){QR_TS, k, top_of_rank[o], i}, nk, lookahead));
        }
    }
    /* tops[] is increasing and tops[0] = k: each pair keeps its upper triangle */
    for (int64_t s = 1; s < ntops; s *= 2)
        for (int64_t a = 0; a + s < ntops; a += 2 * s)
            DAGR_TRY(
                factor_elim(A, qr, (qr_elim_t){QR_TT, k, tops[a], tops[a + s]}, nk, lookahead));
    return DAGR_OK;
}

/* dagr_geqrf_ex without the check of the result (gels checks B only). */
static dagr_status_t qr_factor(dagr_darray_t *A, dagr_qr_t **qr_out,
                               const dagr_linalg_opts_t *opts) {
    DAGR_TRY(la_check_dtype(A, "A"));
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "A has %lld x %lld tiles: QR needs square tiles",
               (long long)A->mb, (long long)A->nb);
    dagr_linalg_opts_t o, d;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD | LA_USES_IB | LA_USES_VARIANT, "dagr_geqrf_ex", &o));
    DAGR_CHECK(o.variant >= 0 && o.variant <= 3, DAGR_ERR_ARG,
               "QR variant %d is unknown (0 = auto, 1 = tree, 2 = flat, 3 = householder)",
               o.variant);
    dagr_linalg_opts_init(&d);
    DAGR_CHECK(o.variant != QR_VARIANT_HH || o.ib == d.ib, DAGR_ERR_ARG,
               "QR variant 3 (householder) does not use opts->ib (its panel is LAPACK's "
               "recursive geqrt3): leave it at its default %d, not %d",
               d.ib, o.ib);
    /* The default stays the tile QR: in paired runs on 2 ranks (n = 4096, nb = 256, see
     * benchmarks/RESULTS.md) the flat tree was faster than variant 3, whose whole-column panel
     * task sits on the critical path where the tile variants pipeline tile by tile. */
    int variant = o.variant;
    if (variant == QR_VARIANT_AUTO) variant = A->mt > 2 * A->nt ? QR_VARIANT_TREE : QR_VARIANT_FLAT;
    dagr_qr_t *qr = NULL;
    DAGR_TRY(qr_alloc(A, variant == QR_VARIANT_HH ? QR_FORM_HH : QR_FORM_TILE, o.ib, &qr));
    if (variant == QR_VARIANT_HH) {
        dagr_status_t st = qr_hh_factor(A, qr, o.lookahead);
        if (st != DAGR_OK) {
            dagr_qr_destroy(&qr);
            return st;
        }
        *qr_out = qr;
        return DAGR_OK;
    }
    int nranks = dagr_size(A->ctx);
    int64_t nk = qr->nk;
    int64_t *tops = calloc((size_t)A->mt + 1, sizeof *tops);
    int64_t *top_of_rank = calloc((size_t)nranks, sizeof *top_of_rank);
    dagr_status_t st = DAGR_OK;
    if (!tops || !top_of_rank) {
        st = DAGR_ERR(DAGR_ERR_NOMEM, "no memory for the QR factor of a %lld x %lld array",
                      (long long)A->m, (long long)A->n);
        goto undo_qr;
    }
    for (int64_t k = 0; k < nk && st == DAGR_OK; k++) {
        if (variant == QR_VARIANT_TREE) {
            st = panel_tree(A, qr, k, nk, o.lookahead, tops, top_of_rank, nranks);
            continue;
        }
        st = factor_elim(A, qr, (qr_elim_t){QR_GEQRT, k, k, k}, nk, o.lookahead);
        for (int64_t i = k + 1; i < A->mt && st == DAGR_OK; i++)
            st = factor_elim(A, qr, (qr_elim_t){QR_TS, k, k, i}, nk, o.lookahead);
    }
    if (st != DAGR_OK) goto undo_qr;
    free(tops);
    free(top_of_rank);
    *qr_out = qr;
    return DAGR_OK;
undo_qr:
    dagr_qr_destroy(&qr);
    free(tops);
    free(top_of_rank);
    return st;
}

/* The T factors are not checked: they are made from the reflectors in A (a NaN or an Inf
 * there shows in A too), and only their upper triangles are meaningful. */
dagr_status_t dagr_geqrf_ex(dagr_darray_t *A, dagr_qr_t **qr_out, const dagr_linalg_opts_t *opts) {
    DAGR_CHECK(qr_out, DAGR_ERR_ARG, "qr_out is NULL");
    dagr_qr_t *qr = NULL;
    DAGR_TRY(qr_factor(A, &qr, opts));
    dagr_status_t st = la_check_finite(A, LA_FULL, NULL, "geqrf");
    if (st != DAGR_OK) {
        dagr_qr_destroy(&qr);
        return st;
    }
    *qr_out = qr;
    return DAGR_OK;
}

dagr_status_t dagr_geqrf(dagr_darray_t *A, dagr_qr_t **qr_out) {
    return dagr_geqrf_ex(A, qr_out, NULL);
}

/* Checks that A is the array qr was made from (as far as shapes tell). */
static dagr_status_t check_qr(const dagr_darray_t *A, const dagr_qr_t *qr) {
    DAGR_TRY(la_check_dtype(A, "A"));
    DAGR_CHECK(qr, DAGR_ERR_ARG, "qr is NULL");
    DAGR_CHECK(A->ctx == qr->ctx && A->dtype == qr->dtype && A->m == qr->m && A->n == qr->n &&
                   A->mb == qr->mb && A->nb == qr->mb,
               DAGR_ERR_ARG,
               "A (%lld x %lld, tiles %lld x %lld) is not the array qr factored (%lld x %lld, "
               "tiles %lld)",
               (long long)A->m, (long long)A->n, (long long)A->mb, (long long)A->nb,
               (long long)qr->m, (long long)qr->n, (long long)qr->mb);
    return DAGR_OK;
}

/* dagr_ormqr without the check of the result (orgqr and gels check theirs). */
static dagr_status_t ormqr_apply(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                                 const dagr_qr_t *qr, dagr_darray_t *C) {
    DAGR_CHECK(side == DAGR_LEFT || side == DAGR_RIGHT, DAGR_ERR_ARG, "side %d is unknown",
               (int)side);
    DAGR_CHECK(trans == DAGR_NO_TRANS || trans == DAGR_TRANS, DAGR_ERR_ARG, "trans %d is unknown",
               (int)trans);
    DAGR_TRY(check_qr(A, qr));
    DAGR_TRY(la_check_same(A, C, "A", "C"));
    DAGR_CHECK(!da_shares(A, C), DAGR_ERR_ARG, "C shares tiles with A");
    if (side == DAGR_LEFT)
        DAGR_CHECK(C->m == A->m && C->mb == A->mb, DAGR_ERR_ARG,
                   "C has %lld rows in tiles of %lld but Q is %lld x %lld in tiles of %lld",
                   (long long)C->m, (long long)C->mb, (long long)A->m, (long long)A->m,
                   (long long)A->mb);
    else
        DAGR_CHECK(C->n == A->m && C->nb == A->mb, DAGR_ERR_ARG,
                   "C has %lld columns in tiles of %lld but Q is %lld x %lld in tiles of %lld",
                   (long long)C->n, (long long)C->nb, (long long)A->m, (long long)A->m,
                   (long long)A->mb);
    if (qr->form == QR_FORM_HH) return qr_hh_apply(side, trans, A, qr, C);
    /* Q = H_1 H_2 ... H_N: Q^T C and C Q take the transforms in the order they were made,
     * Q C and C Q^T in reverse. */
    bool forward = (side == DAGR_LEFT) == (trans == DAGR_TRANS);
    for (int64_t s = 0; s < qr->nops; s++) {
        const qr_elim_t *e = &qr->ops[forward ? s : qr->nops - 1 - s];
        DAGR_TRY(apply_elim(A, qr, e, side, trans, C, 0, 0, 0, 0));
    }
    return DAGR_OK;
}

dagr_status_t dagr_ormqr(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                         const dagr_qr_t *qr, dagr_darray_t *C) {
    return dagr_ormqr_ex(side, trans, A, qr, C, NULL);
}

dagr_status_t dagr_ormqr_ex(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                            const dagr_qr_t *qr, dagr_darray_t *C, const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_ormqr_ex", &o));
    DAGR_TRY(ormqr_apply(side, trans, A, qr, C));
    return la_check_finite(C, LA_FULL, NULL, "ormqr");
}

dagr_status_t dagr_orgqr(const dagr_darray_t *A, const dagr_qr_t *qr, dagr_darray_t *Q) {
    return dagr_orgqr_ex(A, qr, Q, NULL);
}

dagr_status_t dagr_orgqr_ex(const dagr_darray_t *A, const dagr_qr_t *qr, dagr_darray_t *Q,
                            const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_orgqr_ex", &o));
    DAGR_TRY(check_qr(A, qr));
    DAGR_TRY(la_check_same(A, Q, "A", "Q"));
    DAGR_CHECK(Q->m == A->m && Q->mb == A->mb && Q->n <= A->m, DAGR_ERR_ARG,
               "Q is %lld x %lld in tiles of %lld: it needs A's %lld rows in tiles of %lld and "
               "at most as many columns",
               (long long)Q->m, (long long)Q->n, (long long)Q->mb, (long long)A->m,
               (long long)A->mb);
    DAGR_CHECK(!da_shares(A, Q), DAGR_ERR_ARG, "Q shares tiles with A");
    DAGR_TRY(dagr_darray_identity(Q));
    DAGR_TRY(ormqr_apply(DAGR_LEFT, DAGR_NO_TRANS, A, qr, Q));
    return la_check_finite(Q, LA_FULL, NULL, "orgqr");
}

/* The rank check: qr_rdiag on each diagonal tile of R in order (so that the first zero column
 * is the one recorded), on the tile's owner, then gels_info. */
static dagr_status_t check_rank(const dagr_darray_t *A, dagr_data_t *info) {
    for (int64_t k = 0; k < A->nt; k++) {
        rdiag_op_t op = {.dtype = A->dtype, .n = da_tile_cols(A, k), .j0 = k * A->nb};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dagr_data_owner(da_handle(A, k, k));
        dagr_access_t acc[2] = {{info, DAGR_RW}, {da_handle(A, k, k), DAGR_READ}};
        DAGR_TRY(dagr_spawn(A->ctx, &la_qr_rdiag_kernel, &op, sizeof op, 2, acc, &o));
    }
    info_op_t op = {.factor = 'R'};
    dagr_access_t acc = {info, DAGR_RW};
    return dagr_spawn(A->ctx, &la_gels_info_kernel, &op, sizeof op, 1, &acc, NULL);
}

/* X = R^-1 B(0:n, :) by tile back substitution over the upper triangle of A's top n x n. The
 * triangular solves read info too: they run after the rank check and not at all when it
 * failed (no division by a zero diagonal entry). */
static dagr_status_t solve_r(const dagr_darray_t *A, dagr_darray_t *B, dagr_data_t *info) {
    for (int64_t k = A->nt - 1; k >= 0; k--) {
        int64_t ck = da_tile_cols(A, k);
        for (int64_t jb = 0; jb < B->nt; jb++) {
            int64_t cb = da_tile_cols(B, jb);
            tile_op_t op = {.dtype = A->dtype,
                            .side = DAGR_LEFT,
                            .uplo = DAGR_UPPER,
                            .ta = DAGR_NO_TRANS,
                            .diag = DAGR_NON_UNIT,
                            .m = ck,
                            .n = cb,
                            .alpha = 1.0};
            dagr_access_t acc[3] = {
                {da_handle(B, k, jb), DAGR_RW}, {da_handle(A, k, k), DAGR_READ}, {info, DAGR_READ}};
            DAGR_TRY(la_spawn(&la_trsm_kernel, &op, 3, acc, 2, (double)ck * (double)ck * (double)cb,
                              A->ctx));
            for (int64_t i = 0; i < k; i++) {
                tile_op_t g = {.dtype = A->dtype,
                               .ta = DAGR_NO_TRANS,
                               .tb = DAGR_NO_TRANS,
                               .m = da_tile_rows(A, i),
                               .n = cb,
                               .k = ck,
                               .alpha = -1.0,
                               .beta = 1.0};
                dagr_access_t ga[3] = {{da_handle(B, i, jb), DAGR_RW},
                                       {da_handle(A, i, k), DAGR_READ},
                                       {da_handle(B, k, jb), DAGR_READ}};
                DAGR_TRY(la_spawn(&la_gemm_kernel, &g, 3, ga, 1,
                                  2.0 * (double)g.m * (double)cb * (double)ck, A->ctx));
            }
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_gels_ex(dagr_darray_t *A, dagr_darray_t *B, const dagr_linalg_opts_t *opts) {
    DAGR_TRY(la_check_same(A, B, "A", "B"));
    DAGR_CHECK(A->m >= A->n, DAGR_ERR_ARG,
               "A is %lld x %lld: least squares needs m >= n (an overdetermined system)",
               (long long)A->m, (long long)A->n);
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "A has %lld x %lld tiles: QR needs square tiles",
               (long long)A->mb, (long long)A->nb);
    DAGR_CHECK(B->m == A->m && B->mb == A->mb, DAGR_ERR_ARG,
               "B has %lld rows in tiles of %lld but A has %lld rows in tiles of %lld",
               (long long)B->m, (long long)B->mb, (long long)A->m, (long long)A->mb);
    DAGR_CHECK(!da_shares(A, B), DAGR_ERR_ARG, "B shares tiles with A");
    dagr_qr_t *qr = NULL;
    DAGR_TRY(qr_factor(A, &qr, opts));
    dagr_status_t st = ormqr_apply(DAGR_LEFT, DAGR_TRANS, A, qr, B);
    dagr_data_t *info = NULL;
    if (st == DAGR_OK) st = dagr_data_create(A->ctx, sizeof(int64_t), 0, &info);
    if (st == DAGR_OK) st = check_rank(A, info);
    if (st == DAGR_OK) st = solve_r(A, B, info);
    /* the tasks already inserted keep it alive */
    dagr_status_t ds = dagr_data_destroy(&info);
    if (st == DAGR_OK) st = ds;
    /* All of B: rows n.. hold Q^T B's remainder (the residual), as LAPACK's gels leaves it,
     * and a NaN or an Inf in A or B reaches X in rows 0 .. n - 1 anyway. */
    if (st == DAGR_OK) st = la_check_finite(B, LA_FULL, NULL, "gels");
    /* the T factors stay alive until the tasks already inserted have used them */
    dagr_qr_destroy(&qr);
    return st;
}

dagr_status_t dagr_gels(dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_gels_ex(A, B, NULL);
}
