/* On a GPU (skipped, as Criterion's skips, where the rank has none: CI, the development VM):
 * user kernels whose device bodies are hand-written CUDA kernels (gpu_user_bodies.cu).
 *   user_kernel_on_the_gpu  a __global__ kernel over two handles runs on the GPU, 4 times in
 *                           a chain, and a CPU task after them sees what it wrote;
 *   user_kernel_then_gemm   a __global__ kernel changes A's tiles on the GPU, dagr_gemm (cuBLAS
 *                           tiles) uses them, the result matches cblas_dgemm;
 *   bad_launch, bad_cublas  a device body whose kernel launch fails (4096 threads a block) or
 *                           whose cublasDgemm is refused (lda = 0): the wait returns
 *                           DAGR_ERR_GPU, and the message names the task's kernel and the
 *                           library's error (cudaErrorInvalidConfiguration,
 *                           CUBLAS_STATUS_INVALID_VALUE). One rank. */
#include <criterion/criterion.h>
#include <cblas.h>
#include <dagr/dagr.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_user_bodies.h"

#include "gpu_ctx.h"
TestSuite(gpu_user, .init = setup, .fini = teardown, .timeout = 120);

static dagr_task_result_t axpy_cpu(const dagr_task_view_t *t) {
    const user_axpy_args_t *a = t->args;
    const double *x = t->buf[0];
    double *y = t->buf[1];
    for (int64_t i = 0; i < a->n; i++)
        y[i] += a->a * x[i] + (double)i;
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t AXPY = {"user_axpy", axpy_cpu, user_axpy_gpu, {NULL}};

Test(gpu_user, user_kernel_on_the_gpu) {
    enum { N = 3 << 18 }; /* not a multiple of the block */
    static double x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 101, y[i] = 1.0;
    dagr_data_t *hx, *hy;
    cr_assert_eq(dagr_data_attach(ctx, x, sizeof x, 0, &hx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_data_attach(ctx, y, sizeof y, 0, &hy), DAGR_OK, "%s", dagr_last_error());
    user_axpy_args_t a = {3.0, N};
    for (int k = 0; k < 5; k++) { /* four on the GPU, then one on the host */
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.where = k < 4 ? DAGR_WHERE_DEVICE : DAGR_WHERE_CPU;
        dagr_access_t acc[2] = {{hx, DAGR_READ}, {hy, DAGR_RW}};
        cr_assert_eq(dagr_spawn(ctx, &AXPY, &a, sizeof a, 2, acc, &o), DAGR_OK, "%s",
                     dagr_last_error());
    }
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    for (int i = 0; i < N; i++) /* exact: small integers */
        cr_assert_eq(y[i], 1.0 + 5.0 * (3.0 * (i % 101) + i), "y[%d] = %.17g", i, y[i]);
    cr_expect_geq(gpu_tasks(), 4);
    dagr_data_destroy(&hx);
    dagr_data_destroy(&hy);
}

static dagr_task_result_t shift_cpu(const dagr_task_view_t *t) {
    const user_shift_args_t *a = t->args;
    double *x = t->buf[0];
    const int64_t ld = (int64_t)t->ld[0];
    for (int64_t c = 0; c < a->cols; c++)
        for (int64_t r = 0; r < a->rows; r++)
            x[r + c * ld] = a->alpha * x[r + c * ld] + (a->i0 + r == a->j0 + c ? a->beta : 0);
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t SHIFT = {"user_shift", shift_cpu, user_shift_gpu, {NULL}};

/* A := 0.5 A + 3 I on the GPU, tile by tile, then C := A B^T + 2 C with dagr_gemm, in one
 * graph; against the same computed on the host with cblas_dgemm. Sizes that do not divide. */
Test(gpu_user, user_kernel_then_gemm) {
    const int n = 1100, nb = 256;
    dagr_darray_t *A, *B, *C;
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, nb, nb, dagr_grid_2d(1, 1), &A),
                 DAGR_OK);
    cr_assert_eq(dagr_darray_create_like(A, DAGR_DOUBLE, &B), DAGR_OK);
    cr_assert_eq(dagr_darray_create_like(A, DAGR_DOUBLE, &C), DAGR_OK);
    cr_assert_eq(dagr_darray_random(A, 1), DAGR_OK);
    cr_assert_eq(dagr_darray_random(B, 2), DAGR_OK);
    cr_assert_eq(dagr_darray_random(C, 3), DAGR_OK);
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = malloc(sizeof(double) * n * n), *r = malloc(sizeof(double) * n * n);
    cr_assert(a && b && c && r);
    cr_assert_eq(dagr_darray_gather(A, a, n, 0), DAGR_OK);
    cr_assert_eq(dagr_darray_gather(B, b, n, 0), DAGR_OK);
    cr_assert_eq(dagr_darray_gather(C, c, n, 0), DAGR_OK);
    int64_t tiles = 0;
    for (int64_t tj = 0; tj < dagr_darray_nt(A); tj++)
        for (int64_t ti = 0; ti < dagr_darray_mt(A); ti++, tiles++) {
            user_shift_args_t s = {0.5, 3.0, ti * nb, tj * nb, 0, 0};
            s.rows = n - s.i0 < nb ? n - s.i0 : nb;
            s.cols = n - s.j0 < nb ? n - s.j0 : nb;
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.where = DAGR_WHERE_DEVICE;
            dagr_access_t acc[1] = {{dagr_darray_tile(A, ti, tj), DAGR_RW}};
            cr_assert_eq(dagr_spawn(ctx, &SHIFT, &s, sizeof s, 1, acc, &o), DAGR_OK, "%s",
                         dagr_last_error());
        }
    cr_assert_eq(dagr_gemm(DAGR_NO_TRANS, DAGR_TRANS, 1.0, A, B, 2.0, C), DAGR_OK, "%s",
                 dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_darray_gather(C, r, n, 0), DAGR_OK);
    for (int i = 0; i < n * n; i++)
        a[i] *= 0.5;
    for (int i = 0; i < n; i++)
        a[i + (size_t)i * n] += 3.0;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, a, n, b, n, 2.0, c, n);
    double err = 0, norm = 0;
    for (int i = 0; i < n * n; i++) {
        err = fmax(err, fabs(r[i] - c[i]));
        norm = fmax(norm, fabs(c[i]));
    }
    cr_expect(err <= 1e-12 * n * norm, "max error %g (max |C| %g)", err, norm);
    cr_expect_geq(gpu_tasks(), (uint64_t)tiles, "the user kernel's tasks ran on the GPU");
    free(a), free(b), free(c), free(r);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
}

static dagr_task_result_t nothing_cpu(const dagr_task_view_t *t) {
    (void)t;
    return DAGR_TASK_DONE;
}

/* Runs kernel k on the GPU over one 64 x 64 double handle; expects the wait to fail with
 * DAGR_ERR_GPU and a message holding the kernel's name and `library_error`. */
static void expect_gpu_failure(const dagr_kernel_t *k, const char *library_error) {
    dagr_data_t *h;
    cr_assert_eq(dagr_data_create(ctx, 64 * 64 * sizeof(double), 0, &h), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = DAGR_WHERE_DEVICE;
    dagr_access_t acc[1] = {{h, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, k, NULL, 0, 1, acc, &o), DAGR_OK, "%s", dagr_last_error());
    dagr_status_t s = dagr_wait_all(ctx);
    cr_expect_eq(s, DAGR_ERR_GPU, "%s: %s", dagr_status_str(s), dagr_last_error());
    cr_expect(strstr(dagr_last_error(), k->name) != NULL, "no kernel name in: %s",
              dagr_last_error());
    cr_expect(strstr(dagr_last_error(), library_error) != NULL, "no %s in: %s", library_error,
              dagr_last_error());
    dagr_data_destroy(&h);
}

Test(gpu_user, bad_launch) {
    static const dagr_kernel_t k = {"user_bad_launch", nothing_cpu, user_bad_launch_gpu, {NULL}};
    expect_gpu_failure(&k, "cudaErrorInvalidConfiguration");
}

Test(gpu_user, bad_cublas) {
    static const dagr_kernel_t k = {"user_bad_cublas", nothing_cpu, user_bad_cublas_gpu, {NULL}};
    expect_gpu_failure(&k, "CUBLAS_STATUS_INVALID_VALUE");
}
