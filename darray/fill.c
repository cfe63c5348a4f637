/* Filling arrays: constants, the identity, counter-based random numbers and values computed
 * from global indices. One task per tile, on the tile's owner, writing it whole. */
#include "darray_impl.h"

#include <string.h>

typedef enum fill_kind { FILL_VALUE, FILL_IDENTITY, FILL_RANDOM, FILL_FN } fill_kind_t;

typedef struct fill_args {
    tile_arg_t t;
    int32_t kind;
    double value;
    uint64_t seed;
    dagr_elem_fn fn; /* a local pointer: the task runs on the rank that inserted it */
    void *user;
} fill_args_t;

/* ---- Philox-4x32-10 (Salmon et al., SC'11): a counter-based generator, so element (i, j)
 * gets the same number whatever the tiling. Counter = (i, j), key = seed. ---- */

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

static void philox(uint64_t i, uint64_t j, uint64_t seed, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)i, c1 = (uint32_t)(i >> 32), c2 = (uint32_t)j, c3 = (uint32_t)(j >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static void random_tile(const dagr_tile_t *t, uint64_t seed) {
    for (int64_t c = 0; c < t->cols; c++) {
        for (int64_t r = 0; r < t->rows; r++) {
            uint32_t x[4];
            philox((uint64_t)(t->i0 + r), (uint64_t)(t->j0 + c), seed, x);
            uint64_t bits = ((uint64_t)x[0] << 32) | x[1];
            int64_t k = r + c * t->ld;
            switch (t->dtype) {
            case DAGR_FLOAT:
                ((float *)t->data)[k] = (float)(x[0] >> 8) * 0x1.0p-24f;
                break;
            case DAGR_INT64:
                ((int64_t *)t->data)[k] = (int64_t)(bits >> 2);
                break;
            default:
                ((double *)t->data)[k] = (double)(bits >> 11) * 0x1.0p-53;
                break;
            }
        }
    }
}

static dagr_task_result_t k_fill(const dagr_task_view_t *task) {
    const fill_args_t *a = task->args;
    dagr_tile_t t = da_tile_view(task, 0, &a->t);
    switch ((fill_kind_t)a->kind) {
    case FILL_VALUE:
    case FILL_IDENTITY:
        for (int64_t c = 0; c < t.cols; c++) {
            if (a->value == 0.0 && a->kind == FILL_VALUE) { /* all-zero bits in every dtype */
                memset((char *)t.data + (size_t)(c * t.ld) * dagr_dtype_size(t.dtype), 0,
                       (size_t)t.rows * dagr_dtype_size(t.dtype));
                continue;
            }
            for (int64_t r = 0; r < t.rows; r++) {
                double v = a->kind == FILL_VALUE ? a->value : (t.i0 + r == t.j0 + c ? 1.0 : 0.0);
                da_store(t.data, t.dtype, r + c * t.ld, v);
            }
        }
        break;
    case FILL_RANDOM:
        random_tile(&t, a->seed);
        break;
    case FILL_FN:
        for (int64_t c = 0; c < t.cols; c++)
            for (int64_t r = 0; r < t.rows; r++)
                da_store(t.data, t.dtype, r + c * t.ld, a->fn(t.i0 + r, t.j0 + c, a->user));
        break;
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t fill_kernel = {.name = "darray_fill", .cpu = k_fill};

static dagr_status_t fill(dagr_darray_t *A, fill_args_t a) {
    DAGR_TRY(da_check(A, "A"));
    for (int64_t tj = 0; tj < A->nt; tj++) {
        for (int64_t ti = 0; ti < A->mt; ti++) {
            a.t = da_tile_arg(A, ti, tj);
            dagr_access_t acc = {da_handle(A, ti, tj), da_out_mode(A, ti, tj)};
            DAGR_TRY(dagr_spawn(A->ctx, &fill_kernel, &a, sizeof a, 1, &acc, NULL));
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_darray_zeros(dagr_darray_t *A) {
    return fill(A, (fill_args_t){.kind = FILL_VALUE, .value = 0.0});
}

dagr_status_t dagr_darray_fill(dagr_darray_t *A, double value) {
    return fill(A, (fill_args_t){.kind = FILL_VALUE, .value = value});
}

dagr_status_t dagr_darray_identity(dagr_darray_t *A) {
    return fill(A, (fill_args_t){.kind = FILL_IDENTITY});
}

dagr_status_t dagr_darray_random(dagr_darray_t *A, uint64_t seed) {
    return fill(A, (fill_args_t){.kind = FILL_RANDOM, .seed = seed});
}

dagr_status_t dagr_darray_from_fn(dagr_darray_t *A, dagr_elem_fn fn, void *user) {
    DAGR_CHECK(fn, DAGR_ERR_ARG, "fn is NULL");
    return fill(A, (fill_args_t){.kind = FILL_FN, .fn = fn, .user = user});
}
