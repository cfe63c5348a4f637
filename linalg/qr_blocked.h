/* The application of compact-WY block reflectors (LAPACK's dgemqrt and dtpmqrt, float and
 * double) written once over a small table of BLAS operations, so that the same code runs on
 * CBLAS (qr_blas_cblas, below: the reference the tests compare with LAPACKE) and on cuBLAS
 * (gpu/cublas.c: the device bodies of the QR tile updates). Every product is a gemm or a
 * triangular multiply (LAPACK's dlarfb/dtprfb, the reflectors' unit triangle by trmm), plus
 * matrix copies and sums. Internal to dagr; includes only public headers, so a test can
 * compile it alone. */
#ifndef DAGR_LINALG_QR_BLOCKED_H
#define DAGR_LINALG_QR_BLOCKED_H

#include <dagr/linalg.h>
#include <stddef.h>
#include <stdint.h>

/* The operations, in column-major storage, on elements of `dtype` (DAGR_FLOAT or
 * DAGR_DOUBLE), leading dimensions in elements. Each returns 0 on success and anything else
 * on failure (the instance keeps its own account of it in ctx); the apply functions stop at
 * the first failure and return that value. Every call has m, n >= 1; leading dimensions are
 * at least the rows of the matrix they describe (and >= 1).
 *   gemm:    C (m x n) = alpha op(A) op(B) + beta C, inner dimension k >= 1 (ta, tb:
 *            DAGR_NO_TRANS or DAGR_TRANS); beta == 0 does not read C.
 *   trmm:    B (m x n) = op(A) B (side DAGR_LEFT, A m x m) or B op(A) (DAGR_RIGHT, A n x n),
 *            A triangular (uplo, trans, diag as BLAS's), in place.
 *   add:     B (m x n) = alpha A + beta B; beta == 0 does not read B (a copy when alpha = 1).
 *   scratch: device or host memory (wherever the others work) of at least `bytes` bytes,
 *            owned by the instance and valid until the next call of scratch; NULL on failure
 *            (the instance keeps the account, as for the others). Called once per apply. */
typedef struct qr_blas {
    void *ctx;
    int32_t dtype;
    int (*gemm)(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                int64_t ldc);
    int (*trmm)(void *ctx, int side, int uplo, int trans, int diag, int64_t m, int64_t n,
                const void *a, int64_t lda, void *b, int64_t ldb);
    int (*add)(void *ctx, int64_t m, int64_t n, double alpha, const void *a, int64_t lda,
               double beta, void *b, int64_t ldb);
    void *(*scratch)(void *ctx, size_t bytes);
} qr_blas_t;

/* C = op(Q) C (side DAGR_LEFT, C m x n) or C op(Q) (DAGR_RIGHT), op = trans, where Q = H(1)
 * ... H(k) is given by dgeqrt's output: the k reflectors in V (m x k for LEFT, n x k for
 * RIGHT; unit lower trapezoidal, only the part below the diagonal read) and T (ib x k: the
 * upper triangular factor of each block of ib reflectors, ib columns each, the last block k
 * mod ib when ib does not divide k), exactly LAPACK's dgemqrt(side, trans, m, n, k, ib, V,
 * ldv, T, ldt, C, ldc). Needs 1 <= ib <= k (k = 0, m = 0 or n = 0: nothing to do). Local. */
int qr_blocked_gemqrt(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t k,
                      int64_t ib, const void *v, int64_t ldv, const void *t, int64_t ldt, void *c,
                      int64_t ldc);

/* [A; B] = op(Q) [A; B] (side DAGR_LEFT: A k x n, B m x n) or [A B] = [A B] op(Q) (DAGR_RIGHT:
 * A m x k, B m x n), op = trans, where Q = H(1) ... H(k) is given by dtpqrt's output: V (m x k
 * for LEFT, n x k for RIGHT) pentagonal, its first rows rectangular and its last l rows upper
 * trapezoidal (0 <= l <= k, l <= the rows of V), and T (ib x k) as for gemqrt: LAPACK's
 * dtpmqrt(side, trans, m, n, k, l, ib, V, ldv, T, ldt, A, lda, B, ldb). Local. */
int qr_blocked_tpmqrt(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t k,
                      int64_t l, int64_t ib, const void *v, int64_t ldv, const void *t, int64_t ldt,
                      void *a, int64_t lda, void *bm, int64_t ldb);

/* The CBLAS instance (host memory): scratch from malloc, kept in the state and freed by
 * qr_blas_cblas_fini. Every operation succeeds; scratch fails only for want of memory. */
typedef struct qr_blas_cblas {
    void *buf;
    size_t bytes;
} qr_blas_cblas_t;

/* Fills *b with the CBLAS operations on `dtype` working with state *s (zeroed here). */
void qr_blas_cblas_init(qr_blas_t *b, qr_blas_cblas_t *s, int32_t dtype);
/* Frees the scratch of *s. */
void qr_blas_cblas_fini(qr_blas_cblas_t *s);

#endif
