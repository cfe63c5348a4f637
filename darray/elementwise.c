/* Element-wise work: the user's tile-wise map, and scale / shift / axpby / add / mul. One
 * task per output tile, on the output tile's owner. The built-in operations are written once
 * per dtype (a macro) so that the inner loops are plain, vectorisable C. */
#include "darray_impl.h"

#include <math.h>

#ifdef DAGR_HAVE_NVCC
#include "darray_gpu.h"
#endif

typedef enum ew_op { EW_MAP, EW_SCALE, EW_SHIFT, EW_AXPBY, EW_ADD, EW_MUL } ew_op_t;

typedef struct ew_args {
    int32_t op;
    int32_t bcast;  /* EW_ADD / EW_MUL: the second input is 1 x 1 */
    tile_arg_t out; /* buffer 0 */
    tile_arg_t in;  /* buffer 1 (and 2) */
    double alpha, beta;
    dagr_map_fn fn; /* a local pointer: the task runs on the rank that inserted it */
    void *user;
} ew_args_t;

/* y = alpha x + beta y;  y = alpha y;  y = y + alpha;  z = x + y;  z = x * y (y maybe a
 * broadcast scalar). For int64 the scalars are rounded to integers first. */
#define EW_KERNELS(T, SUFFIX)                                                                      \
    static void axpby_##SUFFIX(const dagr_tile_t *x, dagr_tile_t *y, T alpha, T beta) {            \
        for (int64_t c = 0; c < y->cols; c++) {                                                    \
            const T *xc = (const T *)x->data + c * x->ld;                                          \
            T *yc = (T *)y->data + c * y->ld;                                                      \
            if (beta == 0)                                                                         \
                for (int64_t r = 0; r < y->rows; r++)                                              \
                    yc[r] = alpha * xc[r];                                                         \
            else                                                                                   \
                for (int64_t r = 0; r < y->rows; r++)                                              \
                    yc[r] = alpha * xc[r] + beta * yc[r];                                          \
        }                                                                                          \
    }                                                                                              \
    static void scale_##SUFFIX(dagr_tile_t *y, T alpha, int shift) {                               \
        for (int64_t c = 0; c < y->cols; c++) {                                                    \
            T *yc = (T *)y->data + c * y->ld;                                                      \
            if (shift)                                                                             \
                for (int64_t r = 0; r < y->rows; r++)                                              \
                    yc[r] += alpha;                                                                \
            else                                                                                   \
                for (int64_t r = 0; r < y->rows; r++)                                              \
                    yc[r] *= alpha;                                                                \
        }                                                                                          \
    }                                                                                              \
    static void binop_##SUFFIX(const dagr_tile_t *x, const dagr_tile_t *y, dagr_tile_t *z,         \
                               int mul, int bcast) {                                               \
        T s = *(const T *)y->data;                                                                 \
        for (int64_t c = 0; c < z->cols; c++) {                                                    \
            const T *xc = (const T *)x->data + c * x->ld;                                          \
            const T *yc = (const T *)y->data + (bcast ? 0 : c * y->ld);                            \
            T *zc = (T *)z->data + c * z->ld;                                                      \
            if (bcast && mul)                                                                      \
                for (int64_t r = 0; r < z->rows; r++)                                              \
                    zc[r] = xc[r] * s;                                                             \
            else if (bcast)                                                                        \
                for (int64_t r = 0; r < z->rows; r++)                                              \
                    zc[r] = xc[r] + s;                                                             \
            else if (mul)                                                                          \
                for (int64_t r = 0; r < z->rows; r++)                                              \
                    zc[r] = xc[r] * yc[r];                                                         \
            else                                                                                   \
                for (int64_t r = 0; r < z->rows; r++)                                              \
                    zc[r] = xc[r] + yc[r];                                                         \
        }                                                                                          \
    }

EW_KERNELS(double, d)
EW_KERNELS(float, s)
EW_KERNELS(int64_t, i)

static dagr_task_result_t k_ew(const dagr_task_view_t *task) {
    const ew_args_t *a = task->args;
    dagr_tile_t out = da_tile_view(task, 0, &a->out);
    dagr_tile_t in = task->nbuf > 1 ? da_tile_view(task, 1, &a->in) : out;
    dagr_tile_t in2 = task->nbuf > 2 ? da_tile_view(task, 2, &a->in) : out;
    int64_t ia = llround(a->alpha), ib = llround(a->beta);
    switch ((ew_op_t)a->op) {
    case EW_MAP:
        a->fn(&in, &out, a->user);
        break;
    case EW_SCALE:
    case EW_SHIFT: {
        int shift = a->op == EW_SHIFT;
        if (out.dtype == DAGR_DOUBLE) scale_d(&out, a->alpha, shift);
        if (out.dtype == DAGR_FLOAT) scale_s(&out, (float)a->alpha, shift);
        if (out.dtype == DAGR_INT64) scale_i(&out, ia, shift);
        break;
    }
    case EW_AXPBY:
        if (out.dtype == DAGR_DOUBLE) axpby_d(&in, &out, a->alpha, a->beta);
        if (out.dtype == DAGR_FLOAT) axpby_s(&in, &out, (float)a->alpha, (float)a->beta);
        if (out.dtype == DAGR_INT64) axpby_i(&in, &out, ia, ib);
        break;
    case EW_ADD:
    case EW_MUL: {
        /* buffers: 0 = C, 1 = A, 2 = B; B's tile has 1 x 1 shape when broadcast */
        dagr_tile_t b = in2;
        b.ld = a->bcast ? 1 : in2.ld;
        int mul = a->op == EW_MUL;
        if (out.dtype == DAGR_DOUBLE) binop_d(&in, &b, &out, mul, a->bcast);
        if (out.dtype == DAGR_FLOAT) binop_s(&in, &b, &out, mul, a->bcast);
        if (out.dtype == DAGR_INT64) binop_i(&in, &b, &out, mul, a->bcast);
        break;
    }
    }
    return DAGR_TASK_DONE;
}

#ifdef DAGR_HAVE_NVCC
/* The device body of the built-in operations (not of map, whose function is the caller's CPU
 * code): on a GPU, gpu/darray_ops.cu's kernel on the task's stream; on a test device NEXT,
 * and the CPU body runs on the device's copies. */
static dagr_task_result_t k_ew_gpu(const dagr_task_view_t *task) {
    if (!task->stream) return DAGR_TASK_NEXT;
    const ew_args_t *a = task->args;
    dagr_tile_t out = da_tile_view(task, 0, &a->out);
    dagr_tile_t in = task->nbuf > 1 ? da_tile_view(task, 1, &a->in) : out;
    dagr_tile_t in2 = task->nbuf > 2 ? da_tile_view(task, 2, &a->in) : out;
    int op = a->op == EW_SCALE   ? GPU_EW_SCALE
             : a->op == EW_SHIFT ? GPU_EW_SHIFT
             : a->op == EW_AXPBY ? GPU_EW_AXPBY
             : a->op == EW_ADD   ? GPU_EW_ADD
                                 : GPU_EW_MUL;
    gpu_ew_t g = {.op = op,
                  .dtype = out.dtype,
                  .bcast = a->bcast,
                  .rows = out.rows,
                  .cols = out.cols,
                  .z = out.data,
                  .x = in.data,
                  .y = in2.data,
                  .ldz = (size_t)out.ld,
                  .ldx = (size_t)in.ld,
                  .ldy = a->bcast ? 1 : (size_t)in2.ld,
                  .alpha = a->alpha,
                  .beta = a->beta,
                  .ialpha = llround(a->alpha),
                  .ibeta = llround(a->beta)};
    int e = gpu_da_ew(task->stream, &g);
    if (e == 0) return DAGR_TASK_DONE;
    dagr_task_fail(task, DAGR_ERR_GPU, "element-wise kernel: %s", gpu_da_error(e));
    return DAGR_TASK_ERROR;
}
#define EW_GPU k_ew_gpu
#else
#define EW_GPU NULL
#endif

static const dagr_kernel_t map_kernel = {.name = "darray_map", .cpu = k_ew};
static const dagr_kernel_t scale_kernel = {.name = "darray_scale", .cpu = k_ew, .gpu = EW_GPU};
static const dagr_kernel_t axpby_kernel = {.name = "darray_axpby", .cpu = k_ew, .gpu = EW_GPU};
static const dagr_kernel_t binop_kernel = {.name = "darray_binop", .cpu = k_ew, .gpu = EW_GPU};

/* Inserts one task per tile of out: out's tile (RW when `reads_out`, else as da_out_mode
 * says), then X's matching tile and Y's (or Y's only tile when broadcast), when given. */
static dagr_status_t ew_spawn(const dagr_kernel_t *k, ew_args_t a, dagr_darray_t *out,
                              bool reads_out, const dagr_darray_t *X, const dagr_darray_t *Y) {
    for (int64_t tj = 0; tj < out->nt; tj++) {
        for (int64_t ti = 0; ti < out->mt; ti++) {
            dagr_access_t acc[3];
            int n = 0;
            acc[n++] = (dagr_access_t){da_handle(out, ti, tj),
                                       reads_out ? DAGR_RW : da_out_mode(out, ti, tj)};
            a.out = da_tile_arg(out, ti, tj);
            if (X) {
                acc[n++] = (dagr_access_t){da_handle(X, ti, tj), DAGR_READ};
                a.in = da_tile_arg(X, ti, tj);
            }
            if (Y)
                acc[n++] =
                    (dagr_access_t){a.bcast ? da_handle(Y, 0, 0) : da_handle(Y, ti, tj), DAGR_READ};
            DAGR_TRY(dagr_spawn(out->ctx, k, &a, sizeof a, n, acc, NULL));
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_darray_map(const dagr_darray_t *A, dagr_darray_t *B, dagr_map_fn fn,
                              void *user) {
    DAGR_TRY(da_check_same_tiles(A, B, "A", "B"));
    DAGR_CHECK(fn, DAGR_ERR_ARG, "fn is NULL");
    /* An in-place map reads what it writes; otherwise B's old contents are not needed. */
    ew_args_t a = {.op = EW_MAP, .fn = fn, .user = user};
    return ew_spawn(&map_kernel, a, B, A == B, A, NULL);
}

dagr_status_t dagr_darray_scale(dagr_darray_t *A, double alpha) {
    DAGR_TRY(da_check(A, "A"));
    return ew_spawn(&scale_kernel, (ew_args_t){.op = EW_SCALE, .alpha = alpha}, A, true, NULL,
                    NULL);
}

dagr_status_t dagr_darray_shift(dagr_darray_t *A, double alpha) {
    DAGR_TRY(da_check(A, "A"));
    return ew_spawn(&scale_kernel, (ew_args_t){.op = EW_SHIFT, .alpha = alpha}, A, true, NULL,
                    NULL);
}

static dagr_status_t check_dtypes(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                                  const char *b) {
    DAGR_CHECK(A->dtype == B->dtype, DAGR_ERR_ARG, "%s has dtype %d but %s has dtype %d", a,
               (int)A->dtype, b, (int)B->dtype);
    return DAGR_OK;
}

dagr_status_t dagr_darray_axpby(double alpha, const dagr_darray_t *X, double beta,
                                dagr_darray_t *Y) {
    DAGR_TRY(da_check_same_tiles(X, Y, "X", "Y"));
    DAGR_TRY(check_dtypes(X, Y, "X", "Y"));
    ew_args_t a = {.op = EW_AXPBY, .alpha = alpha, .beta = beta};
    return ew_spawn(&axpby_kernel, a, Y, beta != 0.0 || X == Y, X, NULL);
}

static dagr_status_t binop(const dagr_darray_t *A, const dagr_darray_t *B, dagr_darray_t *C,
                           ew_op_t op) {
    DAGR_TRY(da_check_same_tiles(A, C, "A", "C"));
    DAGR_TRY(da_check(B, "B"));
    bool bcast = B->m == 1 && B->n == 1;
    if (!bcast) DAGR_TRY(da_check_same_tiles(A, B, "A", "B"));
    DAGR_CHECK(A->ctx == B->ctx, DAGR_ERR_ARG, "A and B belong to different contexts");
    DAGR_TRY(check_dtypes(A, B, "A", "B"));
    DAGR_TRY(check_dtypes(A, C, "A", "C"));
    ew_args_t a = {.op = op, .bcast = bcast};
    return ew_spawn(&binop_kernel, a, C, C == A || C == B, A, B);
}

dagr_status_t dagr_darray_add(const dagr_darray_t *A, const dagr_darray_t *B, dagr_darray_t *C) {
    return binop(A, B, C, EW_ADD);
}

dagr_status_t dagr_darray_mul(const dagr_darray_t *A, const dagr_darray_t *B, dagr_darray_t *C) {
    return binop(A, B, C, EW_MUL);
}
