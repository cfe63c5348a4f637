/* hello_tasks: one value per rank, summed by a chain of tasks on rank 0. */
#include <dagr/dagr.h>
#include <stdio.h>

static dagr_task_result_t fill(const dagr_task_view_t *t) {
    *(double *)t->buf[0] = t->rank + 1; /* runs on the handle's owner */
    return DAGR_TASK_DONE;
}

static dagr_task_result_t add(const dagr_task_view_t *t) {
    *(double *)t->buf[0] += *(const double *)t->buf[1]; /* runs on rank 0, which owns sum */
    return DAGR_TASK_DONE;
}

int main(int argc, char **argv) {
    dagr_ctx_t *ctx;
    if (dagr_init(&argc, &argv, NULL, &ctx) != DAGR_OK) return 1;
    const dagr_kernel_t fill_k = {.name = "fill", .cpu = fill}, add_k = {.name = "add", .cpu = add};
    dagr_data_t *sum, *x;
    dagr_data_create(ctx, sizeof(double), 0, &sum); /* zero-filled, owned by rank 0 */
    for (int r = 0; r < dagr_size(ctx); r++) {
        dagr_data_create(ctx, sizeof(double), r, &x); /* one handle per rank */
        dagr_spawn(ctx, &fill_k, NULL, 0, 1, &(dagr_access_t){x, DAGR_WRITE}, NULL);
        dagr_spawn(ctx, &add_k, NULL, 0, 2, (dagr_access_t[]){{sum, DAGR_RW}, {x, DAGR_READ}},
                   NULL);
        dagr_data_destroy(&x); /* the tasks above still run */
    }
    double total = 0;
    dagr_status_t s = dagr_fetch(sum, &total, 0); /* waits for the tasks */
    if (dagr_rank(ctx) == 0)
        printf("%d ranks: sum = %g (%s)\n", dagr_size(ctx), total, dagr_status_str(s));
    dagr_finalize(&ctx);
    return s == DAGR_OK ? 0 : 1;
}
