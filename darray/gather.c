/* Moving whole arrays between a DArray and ordinary column-major buffers (scatter, gather),
 * and single elements (set, get). A buffer on one rank enters the graph as one strided
 * handle per tile over that rank's memory (dagr_data_attach_2d): no packing on our side, and
 * the runtime moves each tile straight between the buffer and the tile's owner. */
#include "darray_impl.h"

#include <stdio.h>
#include <string.h>

typedef struct xfer_args {
    tile_arg_t t;
    const void *src; /* scatter from every rank: this rank's own src (a local pointer) */
    int64_t ld;
} xfer_args_t;

/* buffer 0 <- buffer 1 (both rows x cols, their own ld), or <- src + offset when src is set. */
static dagr_task_result_t k_xfer(const dagr_task_view_t *task) {
    const xfer_args_t *a = task->args;
    size_t es = dagr_dtype_size((dagr_dtype_t)a->t.dtype);
    char *d = task->buf[0];
    const char *s =
        a->src ? (const char *)a->src + (size_t)(a->t.i0 + a->t.j0 * a->ld) * es : task->buf[1];
    size_t sld = a->src ? (size_t)a->ld : task->ld[1];
    for (int64_t c = 0; c < a->t.cols; c++)
        memcpy(d + (size_t)c * task->ld[0] * es, s + (size_t)c * sld * es, (size_t)a->t.rows * es);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t scatter_kernel = {.name = "darray_scatter", .cpu = k_xfer};
static const dagr_kernel_t gather_kernel = {.name = "darray_gather", .cpu = k_xfer};

/* Checks shared by scatter and gather; the NULL-buffer check is agreed across ranks because
 * only the ranks that use the buffer can see it. */
static dagr_status_t check_buffer(const dagr_darray_t *A, const void *buf, int64_t ld, int root,
                                  const char *name) {
    DAGR_TRY(da_check(A, "A"));
    int size = dagr_size(A->ctx), me = dagr_rank(A->ctx);
    DAGR_CHECK(root >= -1 && root < size, DAGR_ERR_ARG, "root %d out of range [-1, %d)", root,
               size);
    DAGR_CHECK(ld >= (A->m > 1 ? A->m : 1), DAGR_ERR_ARG, "ld %lld must be >= max(1, m = %lld)",
               (long long)ld, (long long)A->m);
    bool uses = (root == -1 || root == me) && A->m * A->n > 0;
    dagr_status_t mine = uses && !buf ? DAGR_ERR_ARG : DAGR_OK;
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "gather.c: %s is NULL on rank %d, which must %s it", name, me,
             strcmp(name, "src") ? "write" : "read");
    return ctx_sync(A->ctx, mine, msg);
}

/* One strided handle per tile over buf on rank `rank`, and a task per tile copying between
 * it and the array (to the array when `to_array`). Handles are released at once: tasks
 * already inserted keep them alive, and the release brings gathered data home to buf. */
static dagr_status_t via_handles(dagr_darray_t *A, void *buf, int64_t ld, int rank, bool to_array) {
    bool mine = rank == dagr_rank(A->ctx);
    for (int64_t tj = 0; tj < A->nt; tj++) {
        for (int64_t ti = 0; ti < A->mt; ti++) {
            xfer_args_t a = {.t = da_tile_arg(A, ti, tj)};
            void *p = mine ? (char *)buf + (size_t)(a.t.i0 + a.t.j0 * ld) * A->es : NULL;
            dagr_data_t *h = NULL;
            DAGR_TRY(dagr_data_attach_2d(A->ctx, p, (size_t)a.t.rows, (size_t)a.t.cols, (size_t)ld,
                                         A->es, rank, &h));
            dagr_status_t s;
            if (to_array) {
                dagr_access_t acc[2] = {{da_handle(A, ti, tj), da_out_mode(A, ti, tj)},
                                        {h, DAGR_READ}};
                s = dagr_spawn(A->ctx, &scatter_kernel, &a, sizeof a, 2, acc, NULL);
            } else {
                dagr_access_t acc[2] = {{h, DAGR_WRITE}, {da_handle(A, ti, tj), DAGR_READ}};
                s = dagr_spawn(A->ctx, &gather_kernel, &a, sizeof a, 2, acc, NULL);
            }
            dagr_data_destroy(&h);
            DAGR_TRY(s);
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_darray_scatter(dagr_darray_t *A, const void *src, int64_t ld, int root) {
    DAGR_TRY(check_buffer(A, src, ld, root, "src"));
    if (root >= 0) {
        /* The handles over src are only read, so dagr never writes into it. */
        DAGR_TRY(via_handles(A, (void *)src, ld, root, true));
    } else {
        for (int64_t tj = 0; tj < A->nt; tj++) {
            for (int64_t ti = 0; ti < A->mt; ti++) {
                xfer_args_t a = {.t = da_tile_arg(A, ti, tj), .src = src, .ld = ld};
                dagr_access_t acc = {da_handle(A, ti, tj), da_out_mode(A, ti, tj)};
                DAGR_TRY(dagr_spawn(A->ctx, &scatter_kernel, &a, sizeof a, 1, &acc, NULL));
            }
        }
    }
    return dagr_wait_all(A->ctx);
}

dagr_status_t dagr_darray_gather(const dagr_darray_t *A, void *dst, int64_t ld, int root) {
    DAGR_TRY(check_buffer(A, dst, ld, root, "dst"));
    int size = dagr_size(A->ctx);
    for (int r = 0; r < size; r++)
        if (root == -1 || root == r) DAGR_TRY(via_handles((dagr_darray_t *)A, dst, ld, r, false));
    return dagr_wait_all(A->ctx);
}

/* ---- single elements ---- */

typedef struct elem_args {
    int64_t r, c; /* the element's place in its tile */
    int32_t dtype;
    unsigned char value[8];
} elem_args_t;

static dagr_task_result_t k_set(const dagr_task_view_t *task) {
    const elem_args_t *a = task->args;
    size_t es = dagr_dtype_size((dagr_dtype_t)a->dtype);
    memcpy((char *)task->buf[0] + (size_t)(a->r + a->c * (int64_t)task->ld[0]) * es, a->value, es);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_get(const dagr_task_view_t *task) {
    const elem_args_t *a = task->args;
    size_t es = dagr_dtype_size((dagr_dtype_t)a->dtype);
    memcpy(task->buf[0],
           (const char *)task->buf[1] + (size_t)(a->r + a->c * (int64_t)task->ld[1]) * es, es);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t set_kernel = {.name = "darray_set", .cpu = k_set};
static const dagr_kernel_t get_kernel = {.name = "darray_fetch", .cpu = k_get};

static dagr_status_t check_elem(const dagr_darray_t *A, int64_t i, int64_t j, const void *value) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(value, DAGR_ERR_ARG, "value is NULL");
    DAGR_CHECK(i >= 0 && i < A->m && j >= 0 && j < A->n, DAGR_ERR_ARG,
               "element (%lld, %lld) is outside the %lldx%lld array", (long long)i, (long long)j,
               (long long)A->m, (long long)A->n);
    return DAGR_OK;
}

dagr_status_t dagr_darray_set(dagr_darray_t *A, int64_t i, int64_t j, const void *value) {
    DAGR_TRY(check_elem(A, i, j, value));
    elem_args_t a = {.r = i % A->mb, .c = j % A->nb, .dtype = A->dtype};
    memcpy(a.value, value, A->es);
    dagr_access_t acc = {da_handle(A, i / A->mb, j / A->nb), DAGR_RW};
    return dagr_spawn(A->ctx, &set_kernel, &a, sizeof a, 1, &acc, NULL);
}

dagr_status_t dagr_darray_fetch(const dagr_darray_t *A, int64_t i, int64_t j, void *value) {
    DAGR_TRY(check_elem(A, i, j, value));
    dagr_data_t *tile = da_handle(A, i / A->mb, j / A->nb), *h = NULL;
    DAGR_TRY(dagr_data_create(A->ctx, A->es, dagr_data_owner(tile), &h));
    elem_args_t a = {.r = i % A->mb, .c = j % A->nb, .dtype = A->dtype};
    dagr_access_t acc[2] = {{h, DAGR_WRITE}, {tile, DAGR_READ}};
    dagr_status_t s = dagr_spawn(A->ctx, &get_kernel, &a, sizeof a, 2, acc, NULL);
    if (s == DAGR_OK) s = dagr_fetch(h, value, -1);
    dagr_data_destroy(&h);
    return s;
}
