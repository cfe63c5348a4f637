/* What the QR files of linalg/ share (geqrf.c: the tile form; qr_householder.c: the LAPACK
 * form). Internal, included after linalg_impl.h. */
#ifndef DAGR_LINALG_QR_IMPL_H
#define DAGR_LINALG_QR_IMPL_H

#include "linalg_impl.h"

/* The two storages of a factor (dagr_qr_t.form). */
enum {
    QR_FORM_TILE = 0, /* variants 1 and 2: per-tile reflectors and their T factors */
    QR_FORM_HH = 1,   /* variant 3: LAPACK's dgeqrf storage, one block reflector per panel */
};

/* One elimination of the tile form (geqrf.c): its kind (GEQRT, TS or TT there), panel k, top
 * tile row p (TS/TT) and the tile row i eliminated or factored. */
typedef struct qr_elim {
    int32_t kind;
    int64_t k, p, i;
} qr_elim_t;

struct dagr_qr {
    dagr_ctx_t *ctx;
    dagr_dtype_t dtype;
    int form;
    int64_t m, n, mb, mt, nt, ib;
    /* tile form */
    int64_t nops;
    qr_elim_t *ops;
    dagr_data_t **tg, **tc; /* T factors of GEQRT / TS-TT of tile (i, k) at [i + k * mt] */
    /* LAPACK form: nk = min(mt, nt) panels; panel k has kk = min(m - k mb, cols of tile
     * column k) reflectors */
    int64_t nk;
    dagr_data_t **T;  /* kk x kk upper triangular block-reflector factor of panel k (dlarft's
                         T, forward columnwise): H_k = I - V T V^T, tau_i = T(i, i) */
    dagr_data_t **Vd; /* rows(k) x kk: the reflectors of diagonal tile (k, k) as a unit lower
                         trapezoid with the ones and zeros stored, so every product is a gemm */
};

/* Number of reflectors of panel k of the factor of A (m x n in mb x mb tiles). */
static inline int64_t qr_hh_kk(const dagr_darray_t *A, int64_t k) {
    int64_t r = A->m - k * A->mb, c = da_tile_cols(A, k);
    return r < c ? r : c;
}

/* qr_factor.c: a factor of A's shape with the arrays of its form allocated (zeroed) and no
 * handle yet; ib is clamped to the tile size. */
dagr_status_t qr_alloc(const dagr_darray_t *A, int form, int64_t ib, dagr_qr_t **out);

/* qr_householder.c. qr is allocated with form QR_FORM_HH and its T and Vd arrays (nk + 1
 * entries, zeroed); these create the handles and insert the tasks. */
dagr_status_t qr_hh_factor(dagr_darray_t *A, dagr_qr_t *qr, int lookahead);
dagr_status_t qr_hh_apply(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                          const dagr_qr_t *qr, dagr_darray_t *C);

/* ---- kernels of the LAPACK form (kernels_qr.c) ----
 *
 *   qr_hh_panel: the stack (lu_op_t from la_stack_op; la_stack_spawn), then T (kk x kk,
 *                WRITE), Vd (rows(k) x kk, WRITE); factors the cols-column stack with
 *                LAPACK's geqrt (LAPACK's dgeqrf reflectors and tau, T of the whole panel),
 *                kk = min(rows, cols); the leading dimensions of T and Vd give their rows.
 *   qr_hh_w:     0 = W (WRITE, or RW when accumulate), then T (READ) when apply_t, then
 *                ntiles pairs (V_s, C_s) (READ), every pair nb rows but the last (last_rows).
 *                LEFT: W (kk x nfree) = sum V_s^T C_s; RIGHT: W (nfree x kk) = sum C_s V_s
 *                (added to W when accumulate); then, when apply_t, W = op(T) W (LEFT) or
 *                W op(T) (RIGHT), op = trans.
 *   qr_hh_sum:   0 = Y (WRITE), 1 = T (READ), 2 .. 1 + ntiles = partial W blocks (READ):
 *                Y = the sum, then op(T) applied as qr_hh_w does.
 *   qr_hh_vdiag: 0 = Vd (WRITE), 1 = the diagonal tile (READ): Vd = its unit lower trapezoid.
 *   qr_hh_setdiag: 0 = T (RW): T(off + s, off + s) = vals[s] for s < cnt.
 *   qr_hh_tgram: 0 = T (RW, tau on its diagonal), 1 .. ntiles = partial Gram blocks
 *                G = V^T V (READ): T's strictly upper part from G and tau (dlarft's
 *                recurrence; G's strictly upper part is all it reads). */
typedef struct hh_op {
    int32_t dtype, side, trans, apply_t, accumulate, ntiles;
    int64_t kk, nfree, nb, last_rows;
} hh_op_t;

#define HH_SETDIAG_MAX 256
typedef struct hh_diag_op {
    int32_t dtype;
    int64_t off, cnt;
    double vals[HH_SETDIAG_MAX];
} hh_diag_op_t;

extern const dagr_kernel_t la_qr_hh_panel_kernel, la_qr_hh_w_kernel, la_qr_hh_sum_kernel,
    la_qr_hh_vdiag_kernel, la_qr_hh_setdiag_kernel, la_qr_hh_tgram_kernel;

#endif
