/* CUDA kernels of DArray's element-wise operations and of the per-tile step of its reductions
 * (darray_ops.cu), for the device bodies in darray/elementwise.c and darray/reduce.c. They
 * queue their work on the task's stream and return at once: 0, or the CUDA error (cudaError_t)
 * of the launch, whose name and message gpu_da_error gives. Built only when the library is
 * built with CUDA and nvcc (DAGR_HAVE_NVCC). Tiles are column-major with a leading dimension
 * (device copies are packed: ld = rows). */
#ifndef DAGR_GPU_DARRAY_GPU_H
#define DAGR_GPU_DARRAY_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What gpu_da_ew computes; mirrors darray/elementwise.c's operations. */
typedef enum gpu_ew_op {
    GPU_EW_SCALE = 0, /* z = alpha z */
    GPU_EW_SHIFT = 1, /* z = z + alpha */
    GPU_EW_AXPBY = 2, /* z = alpha x + beta z (beta == 0: z is not read) */
    GPU_EW_ADD = 3,   /* z = x + y (y a 1 x 1 tile when bcast) */
    GPU_EW_MUL = 4,   /* z = x * y (y a 1 x 1 tile when bcast) */
} gpu_ew_op_t;

typedef struct gpu_ew {
    int op;    /* gpu_ew_op_t */
    int dtype; /* dagr_dtype_t: DAGR_FLOAT, DAGR_DOUBLE or DAGR_INT64 */
    int bcast;
    int64_t rows, cols;
    void *z;
    const void *x, *y;
    size_t ldz, ldx, ldy;
    double alpha, beta;      /* for float and double */
    long long ialpha, ibeta; /* for int64 (the scalars rounded, as on the CPU) */
} gpu_ew_t;

int gpu_da_ew(void *stream, const gpu_ew_t *a);

/* The partial result of a reduction over one tile (darray/reduce.c's STEP_TILE) into `out` (a
 * device buffer): op is a dagr_reduce_t; SUM, MIN, MAX, NORM_MAX write one value (the int64 sum
 * of an int64 tile as int64 bits, wrapping), NORM_FRO a (scale, ssq) pair, NORM_ONE the `cols`
 * column sums of |x|, NORM_INF the `rows` row sums. NaN propagates as on the CPU. */
int gpu_da_reduce_tile(void *stream, int op, int dtype, const void *x, size_t ldx, int64_t rows,
                       int64_t cols, double *out);

/* "name: message" of a CUDA error code these functions returned. */
const char *gpu_da_error(int err);

#ifdef __cplusplus
}
#endif

#endif
