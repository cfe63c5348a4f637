/* Results must not depend on where tasks run: the linear algebra routines (gemm, syrk, symm,
 * trmm, trsm, potrf, potrs, posv, getrf, getrs, gesv, geqrf, ormqr, orgqr, gels; QR and gels
 * in both storages), DArray
 * operations and checkpoint/resume on seeded inputs, with whatever test devices the
 * environment asks for (DAGR_TEST_DEVICES). Every result is gathered and hashed; the Criterion test
 * compares the hashes of runs with 0, 1 and 2 devices per rank (bitwise the same results) and
 * checks that the devices ran tasks and evicted copies.
 *
 * Usage: devices P Q N NB CKPT_PATH
 *
 * Prints RANK r RESULT devices ok hash=H dev_tasks=T evictions=E copies_in=I copies_out=O */
#include "scenario.h"

#include <dagr/io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash = 0x243f6a8885a308d3ull;

/* Mixes A's contents (gathered on every rank) into the hash. */
static void mix(const dagr_darray_t *A) {
    double *a = sc_gather(A);
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A), ld = sc_ld(m);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            uint64_t w;
            memcpy(&w, &a[i + j * ld], 8);
            hash = sc_mix(hash ^ w);
        }
    free(a);
}

static void mix_value(double v) {
    uint64_t w;
    memcpy(&w, &v, 8);
    hash = sc_mix(hash ^ w);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: devices P Q N NB CKPT_PATH\n");
        return 2;
    }
    int P = atoi(argv[1]), Q = atoi(argv[2]);
    int64_t N = atoll(argv[3]), NB = atoll(argv[4]);
    const char *ckpt = argv[5];
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    dagr_grid_t g = dagr_grid_2d(P, Q);

    dagr_darray_t *A, *B, *C, *S, *L, *X, *T, *R, *Z;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &A));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, 3, NB, NB, g, &B));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &C));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &S));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &L));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, 3, NB, NB, g, &X));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N + 7, N, NB, NB, g, &T));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N + 7, 3, NB, NB, g, &R));
    SC_TRY(dagr_darray_random(A, 1));
    SC_TRY(dagr_darray_random(B, 2));
    SC_TRY(dagr_darray_random(T, 3));
    SC_TRY(dagr_darray_random(R, 4));

    /* BLAS 3 and DArray element-wise operations. */
    SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_TRANS, 1.0, A, A, 0.0, C));
    SC_TRY(dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 0.5, A, 0.0, S));
    SC_TRY(dagr_darray_copy(B, X));
    SC_TRY(dagr_symm(DAGR_LEFT, DAGR_LOWER, 1.0, S, B, 0.5, X));
    mix(X);
    SC_TRY(dagr_darray_identity(L));
    SC_TRY(dagr_darray_axpby((double)N, L, 1.0, C)); /* C = A A^T + N I: SPD */
    SC_TRY(dagr_darray_copy(C, L));
    mix(C);
    mix(S);

    /* Cholesky, and a solve. */
    SC_TRY(dagr_potrf(DAGR_LOWER, L));
    SC_TRY(dagr_darray_copy(B, X));
    SC_TRY(dagr_potrs(DAGR_LOWER, L, X));
    mix(L);
    mix(X);
    SC_TRY(dagr_trmm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1.0, L, X));
    SC_TRY(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_TRANS, DAGR_NON_UNIT, 2.0, L, X));
    mix(X);

    /* LU with pivoting. */
    dagr_pivots_t *piv = NULL;
    SC_TRY(dagr_darray_copy(A, S));
    SC_TRY(dagr_getrf(S, &piv));
    SC_TRY(dagr_darray_copy(B, X));
    SC_TRY(dagr_getrs(DAGR_NO_TRANS, S, piv, X));
    mix(S);
    mix(X);
    SC_TRY(dagr_pivots_destroy(&piv));
    SC_TRY(dagr_darray_copy(A, S));
    SC_TRY(dagr_darray_copy(B, X));
    SC_TRY(dagr_gesv(S, X));
    mix(X);
    SC_TRY(dagr_darray_copy(C, S));
    SC_TRY(dagr_darray_copy(B, X));
    SC_TRY(dagr_posv(DAGR_UPPER, S, X));
    mix(X);

    /* QR and least squares. */
    dagr_qr_t *qr = NULL;
    SC_TRY(dagr_geqrf(T, &qr));
    SC_TRY(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, T, qr, R));
    mix(T);
    mix(R);
    dagr_darray_t *Qm;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N + 7, N, NB, NB, g, &Qm));
    SC_TRY(dagr_orgqr(T, qr, Qm));
    mix(Qm);
    SC_TRY(dagr_darray_destroy(&Qm));
    SC_TRY(dagr_qr_destroy(&qr));
    SC_TRY(dagr_darray_random(T, 5));
    SC_TRY(dagr_darray_random(R, 6));
    SC_TRY(dagr_gels(T, R));
    mix(R);
    /* QR in LAPACK storage (variant 3): its panel kernels and stacked updates on devices. */
    dagr_linalg_opts_t lo;
    dagr_linalg_opts_init(&lo);
    lo.variant = 3;
    SC_TRY(dagr_darray_random(T, 7));
    SC_TRY(dagr_darray_random(R, 8));
    SC_TRY(dagr_geqrf_ex(T, &qr, &lo));
    SC_TRY(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, T, qr, R));
    mix(T);
    mix(R);
    SC_TRY(dagr_qr_destroy(&qr));
    SC_TRY(dagr_darray_random(T, 9));
    SC_TRY(dagr_darray_random(R, 10));
    SC_TRY(dagr_gels_ex(T, R, &lo));
    mix(R);

    /* Reductions, a transpose and another distribution. */
    double v;
    SC_TRY(dagr_darray_norm(C, DAGR_NORM_FRO, &v));
    mix_value(v);
    SC_TRY(dagr_darray_sum(A, &v));
    mix_value(v);
    SC_TRY(dagr_darray_transpose(A, C));
    SC_TRY(dagr_darray_scale(C, 0.25));
    mix(C);
    SC_TRY(dagr_darray_redistribute(A, NB + 3, NB - 1, dagr_grid_row_cyclic(), &Z));
    mix(Z);

    /* Checkpoint, change, resume: the checkpointed contents come back. */
    SC_TRY(dagr_checkpoint(ctx, ckpt));
    SC_TRY(dagr_darray_scale(A, -3.0));
    SC_TRY(dagr_darray_scale(Z, 7.0));
    SC_TRY(dagr_resume(ctx, ckpt));
    mix(A);
    mix(Z);

    SC_TRY(dagr_wait_all(ctx));
    uint64_t tasks = 0, ev = 0, cin = 0, cout = 0;
    for (int d = 0; d < dagr_devices(ctx); d++) {
        dagr_device_stats_t st;
        SC_TRY(dagr_device_stats(ctx, d, &st));
        tasks += st.tasks;
        ev += st.evictions;
        cin += st.copies_in;
        cout += st.copies_out;
    }
    sc_result("devices", 1,
              "hash=%lld devices=%d dev_tasks=%llu evictions=%llu copies_in=%llu copies_out=%llu",
              (long long)(hash >> 2), dagr_devices(ctx), (unsigned long long)tasks,
              (unsigned long long)ev, (unsigned long long)cin, (unsigned long long)cout);
    dagr_darray_t **all[] = {&A, &B, &C, &S, &L, &X, &T, &R, &Z};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        SC_TRY(dagr_darray_destroy(all[i]));
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
