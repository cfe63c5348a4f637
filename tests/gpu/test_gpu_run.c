/* On a GPU (skipped, as Criterion's skips, where the rank has none: CI, the development VM):
 * a user kernel whose device body is cuBLAS's daxpy queued on task->stream runs on the GPU
 * with the result the CPU body gives, then a CPU task on the same data sees what the GPU
 * wrote; a device body whose CUDA call
 * fails ends the run with DAGR_ERR_GPU and CUDA's message naming the task; a kernel without
 * a device body never runs on a GPU, even with DAGR_WHERE_DEVICE (refused); dagr_gemm (whose
 * tile kernel has a cuBLAS body) runs tiles on the GPU and matches cblas_dgemm, and
 * dagr_potrf, whose updates run there, factors within rounding. One rank. */
#include <criterion/criterion.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cblas.h>
#include <dagr/dagr.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_ctx.h"
TestSuite(gpu_run, .init = setup, .fini = teardown, .timeout = 120);

enum { N = 1 << 20 };

/* y += 2 x over N doubles: buf[0] x, buf[1] y. */
static dagr_task_result_t axpy_cpu(const dagr_task_view_t *t) {
    const double *x = t->buf[0];
    double *y = t->buf[1];
    for (int i = 0; i < N; i++)
        y[i] += 2.0 * x[i];
    return DAGR_TASK_DONE;
}
static dagr_task_result_t axpy_gpu(const dagr_task_view_t *t) {
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cublasCreate failed");
        return DAGR_TASK_ERROR;
    }
    cublasSetStream(h, (cudaStream_t)t->stream);
    const double two = 2.0;
    cublasStatus_t s = cublasDaxpy(h, N, &two, t->buf[0], 1, t->buf[1], 1);
    cudaStreamSynchronize((cudaStream_t)t->stream); /* before the handle goes */
    cublasDestroy(h);
    if (s != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cublasDaxpy: status %d", (int)s);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t AXPY = {"gpu_axpy", axpy_cpu, axpy_gpu, {NULL}};

static void spawn_axpy(dagr_data_t *x, dagr_data_t *y, dagr_where_t where) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = where;
    dagr_access_t acc[2] = {{x, DAGR_READ}, {y, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &AXPY, NULL, 0, 2, acc, &o), DAGR_OK, "%s", dagr_last_error());
}

Test(gpu_run, device_body_matches_cpu_body) {
    static double x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 97, y[i] = 1.0;
    dagr_data_t *hx, *hy;
    cr_assert_eq(dagr_data_attach(ctx, x, sizeof x, 0, &hx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_data_attach(ctx, y, sizeof y, 0, &hy), DAGR_OK, "%s", dagr_last_error());
    for (int k = 0; k < 5; k++) /* the first four on the GPU, the last on the host */
        spawn_axpy(hx, hy, k < 4 ? DAGR_WHERE_DEVICE : DAGR_WHERE_CPU);
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    for (int i = 0; i < N; i++)
        cr_assert_eq(y[i], 1.0 + 10.0 * (i % 97), "y[%d] = %g", i, y[i]);
    uint64_t n = gpu_tasks();
    cr_expect_geq(n, 4, "%llu tasks on the GPU", (unsigned long long)n);
    dagr_data_destroy(&hx);
    dagr_data_destroy(&hy);
}

static dagr_task_result_t bad_gpu(const dagr_task_view_t *t) {
    /* A copy from an address that is no device memory: the stream reports the error. */
    cudaError_t e = cudaMemcpyAsync(t->buf[0], (void *)16, 8, cudaMemcpyDeviceToDevice,
                                    (cudaStream_t)t->stream);
    if (e != cudaSuccess) {
        dagr_task_fail(t, DAGR_ERR_GPU, "%s", cudaGetErrorString(e));
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t BAD = {"gpu_bad_copy", axpy_cpu, bad_gpu, {NULL}};

Test(gpu_run, cuda_error_is_dagr_err_gpu) {
    dagr_data_t *h;
    cr_assert_eq(dagr_data_create(ctx, 64, 0, &h), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = DAGR_WHERE_DEVICE;
    dagr_access_t acc[1] = {{h, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &BAD, NULL, 0, 1, acc, &o), DAGR_OK);
    dagr_status_t s = dagr_wait_all(ctx);
    cr_expect_eq(s, DAGR_ERR_GPU, "%s", dagr_status_str(s));
    cr_expect(strstr(dagr_last_error(), "gpu_bad_copy") != NULL, "%s", dagr_last_error());
    dagr_data_destroy(&h);
}

static dagr_task_result_t cpu_only(const dagr_task_view_t *t) {
    (void)t;
    return DAGR_TASK_DONE;
}

Test(gpu_run, no_device_body_no_gpu) {
    dagr_data_t *h;
    cr_assert_eq(dagr_data_create(ctx, 64, 0, &h), DAGR_OK);
    dagr_kernel_t k = {"gpu_cpu_only", cpu_only, NULL, {NULL}};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = DAGR_WHERE_DEVICE;
    dagr_access_t acc[1] = {{h, DAGR_RW}};
    cr_expect_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, &o), DAGR_ERR_ARG);
    dagr_data_destroy(&h);
}

/* dagr_gemm on 1000 x 1000 doubles in 256 x 256 tiles (sizes that do not divide): some tiles
 * on the GPU, the result against cblas_dgemm within rounding. */
Test(gpu_run, gemm_tiles_on_the_gpu) {
    const int n = 1000, nb = 256;
    dagr_darray_t *A, *B, *C;
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, nb, nb, dagr_grid_2d(1, 1), &A),
                 DAGR_OK);
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, nb, nb, dagr_grid_2d(1, 1), &B),
                 DAGR_OK);
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, nb, nb, dagr_grid_2d(1, 1), &C),
                 DAGR_OK);
    cr_assert_eq(dagr_darray_random(A, 1), DAGR_OK);
    cr_assert_eq(dagr_darray_random(B, 2), DAGR_OK);
    cr_assert_eq(dagr_darray_random(C, 3), DAGR_OK);
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = malloc(sizeof(double) * n * n), *r = malloc(sizeof(double) * n * n);
    cr_assert(a && b && c && r);
    cr_assert_eq(dagr_darray_gather(A, a, n, 0), DAGR_OK);
    cr_assert_eq(dagr_darray_gather(B, b, n, 0), DAGR_OK);
    cr_assert_eq(dagr_darray_gather(C, c, n, 0), DAGR_OK);
    cr_assert_eq(dagr_gemm(DAGR_NO_TRANS, DAGR_TRANS, 1.5, A, B, 0.5, C), DAGR_OK, "%s",
                 dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_darray_gather(C, r, n, 0), DAGR_OK);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.5, a, n, b, n, 0.5, c, n);
    double err = 0, norm = 0;
    for (int i = 0; i < n * n; i++) {
        err = fmax(err, fabs(r[i] - c[i]));
        norm = fmax(norm, fabs(c[i]));
    }
    cr_expect(err <= 1e-12 * n * norm, "max error %g (max |C| %g)", err, norm);
    cr_expect_gt(gpu_tasks(), 0, "no gemm tile ran on the GPU");
    free(a), free(b), free(c), free(r);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
}

/* dagr_potrf on 1000 x 1000 doubles in 256 x 256 tiles: the trailing updates (syrk, gemm)
 * and the panel's trsm have cuBLAS bodies, the diagonal tiles' potrf a cuSOLVER one;
 * || A - L L^T || / || A || within rounding, and some tasks on the GPU. */
Test(gpu_run, potrf_updates_on_the_gpu) {
    const int n = 1000, nb = 256;
    double *b = malloc(sizeof(double) * n * n), *a = malloc(sizeof(double) * n * n);
    double *l = malloc(sizeof(double) * n * n);
    cr_assert(a && b && l);
    srand(7);
    for (int i = 0; i < n * n; i++)
        b[i] = rand() / (double)RAND_MAX - 0.5;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, b, n, b, n, 0.0, a, n);
    for (int i = 0; i < n; i++)
        a[i + (size_t)i * n] += n;
    dagr_darray_t *A;
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, nb, nb, dagr_grid_2d(1, 1), &A),
                 DAGR_OK);
    cr_assert_eq(dagr_darray_scatter(A, a, n, 0), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_potrf(DAGR_LOWER, A), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_darray_gather(A, l, n, 0), DAGR_OK);
    for (int j = 0; j < n; j++) /* the strict upper triangle is not L's */
        for (int i = 0; i < j; i++)
            l[i + (size_t)j * n] = 0;
    double anorm = 0, err = 0;
    for (int i = 0; i < n * n; i++)
        anorm = fmax(anorm, fabs(a[i]));
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, -1.0, l, n, l, n, 1.0, a, n);
    for (int i = 0; i < n * n; i++)
        err = fmax(err, fabs(a[i]));
    cr_expect(err <= 1e-13 * n * anorm, "|| A - L L^T || %g, || A || %g", err, anorm);
    cr_expect_gt(gpu_tasks(), 0, "no update ran on the GPU");
    free(a), free(b), free(l);
    dagr_darray_destroy(&A);
}
