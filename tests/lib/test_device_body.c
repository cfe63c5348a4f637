/* Device bodies (dagr_kernel_t.gpu) on a test device: a task a device runs calls the device
 * body first, with task->device set and no stream (a test device has none); one answering
 * DAGR_TASK_NEXT hands the task to the CPU bodies, there on the device's copy; host workers
 * call only the CPU bodies. One rank, one test device (DAGR_TEST_DEVICES=1). */
#include <criterion/criterion.h>
#include <dagr/dagr.h>
#include <stdatomic.h>
#include <stdlib.h>

static dagr_ctx_t *ctx;
static dagr_data_t *d;
static atomic_int seen_device = -2; /* task->device the last body saw */
static atomic_int stream_set;       /* a body saw a non-NULL stream */

static void setup(void) {
    setenv("DAGR_TEST_DEVICES", "1", 1);
    setenv("DAGR_THREADS", "1", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_devices(ctx), 1);
    cr_assert_eq(dagr_data_create(ctx, sizeof(uint64_t), 0, &d), DAGR_OK);
}
static void teardown(void) {
    dagr_data_destroy(&d);
    dagr_finalize(&ctx);
}
TestSuite(lib_device_body, .init = setup, .fini = teardown, .timeout = 60);

static void note(const dagr_task_view_t *t) {
    atomic_store(&seen_device, t->device);
    if (t->stream) atomic_store(&stream_set, 1);
}
static dagr_task_result_t cpu_add1(const dagr_task_view_t *t) {
    note(t);
    *(uint64_t *)t->buf[0] += 1;
    return DAGR_TASK_DONE;
}
static dagr_task_result_t dev_add100(const dagr_task_view_t *t) {
    note(t);
    *(uint64_t *)t->buf[0] += 100;
    return DAGR_TASK_DONE;
}
static dagr_task_result_t dev_next(const dagr_task_view_t *t) {
    note(t);
    return DAGR_TASK_NEXT;
}

static uint64_t run(const dagr_kernel_t *k, dagr_where_t where) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = where;
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, k, NULL, 0, 1, acc, &o), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    uint64_t v = 0;
    cr_assert_eq(dagr_fetch(d, &v, 0), DAGR_OK, "%s", dagr_last_error());
    return v;
}

Test(lib_device_body, device_runs_the_device_body) {
    dagr_kernel_t k = {.name = "dev_add100", .cpu = cpu_add1, .gpu = dev_add100};
    cr_expect_eq(run(&k, DAGR_WHERE_DEVICE), 100);
    cr_expect_eq(atomic_load(&seen_device), 0);
    cr_expect_eq(run(&k, DAGR_WHERE_CPU), 101);
    cr_expect_eq(atomic_load(&seen_device), -1);
    cr_expect_eq(run(&k, DAGR_WHERE_DEVICE), 201);
    cr_expect_eq(atomic_load(&stream_set), 0, "a test device gave a stream");
}

Test(lib_device_body, next_hands_over_to_the_cpu_body_on_the_device) {
    dagr_kernel_t k = {.name = "dev_next", .cpu = cpu_add1, .gpu = dev_next};
    cr_expect_eq(run(&k, DAGR_WHERE_DEVICE), 1);
    cr_expect_eq(atomic_load(&seen_device), 0, "the CPU body ran on the device's copy");
    cr_expect_eq(run(&k, DAGR_WHERE_CPU), 2);
    cr_expect_eq(atomic_load(&seen_device), -1);
}

Test(lib_device_body, kernel_without_device_body_runs_cpu_body_on_device) {
    dagr_kernel_t k = {.name = "cpu_only", .cpu = cpu_add1};
    cr_expect_eq(run(&k, DAGR_WHERE_DEVICE), 1);
    cr_expect_eq(atomic_load(&seen_device), 0);
}
