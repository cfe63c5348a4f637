/* Bad arguments to the public API (single rank): each call returns exactly DAGR_ERR_ARG, sets
 * dagr_last_error() to a message naming the problem, leaves out-parameters alone, inserts
 * nothing, and leaves the context usable. Limits themselves are accepted. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dagr/dagr.h>

static dagr_ctx_t *ctx;
static dagr_data_t *d; /* 8-byte handle owned by rank 0 */

static void setup(void) {
    setenv("DAGR_THREADS", "1", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "dagr_init: %s", dagr_last_error());
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &d), DAGR_OK, "%s", dagr_last_error());
}

static void teardown(void) {
    if (ctx) dagr_finalize(&ctx);
}

TestSuite(lib_args, .init = setup, .fini = teardown, .timeout = 60);

/* The call must return DAGR_ERR_ARG and the message must contain keyword. */
#define EXPECT_ARG(call, keyword)                                                                  \
    do {                                                                                           \
        dagr_status_t st_ = (call);                                                                \
        const char *msg_ = dagr_last_error();                                                      \
        cr_expect_eq(st_, DAGR_ERR_ARG, "%s returned %d (%s), expected DAGR_ERR_ARG", #call,       \
                     (int)st_, dagr_status_str(st_));                                              \
        cr_expect(msg_ != NULL && strstr(msg_, keyword) != NULL,                                   \
                  "%s: message \"%s\" does not mention \"%s\"", #call, msg_ ? msg_ : "(null)",     \
                  keyword);                                                                        \
    } while (0)

static uint64_t last_seq = UINT64_MAX;

static dagr_task_result_t k_inc(const dagr_task_view_t *t) {
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    x++;
    memcpy(t->buf[0], &x, 8);
    last_seq = t->seq;
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_INC = {.name = "args_inc", .cpu = k_inc, .gpu = NULL};

/* After the bad calls: a real task runs, and it is task #0 (the bad calls inserted nothing). */
static void assert_usable(uint64_t want_value) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    uint64_t v = 0;
    cr_assert_eq(dagr_fetch(d, &v, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(v, want_value, "value %llu, want %llu", (unsigned long long)v,
                 (unsigned long long)want_value);
}

Test(lib_args, null_ctx) {
    dagr_data_t *out = (dagr_data_t *)&out;
    dagr_queue_t *q = (dagr_queue_t *)&q;
    char buf[8];
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    EXPECT_ARG(dagr_data_create(NULL, 8, 0, &out), "ctx");
    EXPECT_ARG(dagr_data_attach(NULL, buf, 8, 0, &out), "ctx");
    EXPECT_ARG(dagr_spawn(NULL, &K_INC, NULL, 0, 1, acc, NULL), "ctx");
    EXPECT_ARG(dagr_queue_create(NULL, &q), "ctx");
    cr_expect_eq(out, (dagr_data_t *)&out, "out-parameter changed on error");
    cr_expect_eq(q, (dagr_queue_t *)&q, "out-parameter changed on error");
    dagr_status_t st = dagr_wait_all(NULL);
    cr_expect_eq(st, DAGR_ERR_ARG, "dagr_wait_all(NULL) returned %s", dagr_status_str(st));
    assert_usable(1);
    cr_expect_eq(last_seq, 0, "the first valid task has seq %llu", (unsigned long long)last_seq);
}

Test(lib_args, null_out) {
    char buf[8];
    EXPECT_ARG(dagr_data_create(ctx, 8, 0, NULL), "out");
    EXPECT_ARG(dagr_data_attach(ctx, buf, 8, 0, NULL), "out");
    EXPECT_ARG(dagr_queue_create(ctx, NULL), "out");
    assert_usable(1);
}

Test(lib_args, null_kernel) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    EXPECT_ARG(dagr_spawn(ctx, NULL, NULL, 0, 1, acc, NULL), "kernel");
    assert_usable(1);
    cr_expect_eq(last_seq, 0, "a refused spawn was counted: first task has seq %llu",
                 (unsigned long long)last_seq);
}

Test(lib_args, kernel_without_cpu_body) {
    dagr_kernel_t k = {.name = "no_body", .cpu = NULL, .gpu = NULL};
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    EXPECT_ARG(dagr_spawn(ctx, &k, NULL, 0, 1, acc, NULL), "cpu");
    assert_usable(1);
}

/* A device body that must not run here: it would add 100. */
static dagr_task_result_t k_dev_add100(const dagr_task_view_t *t) {
    *(uint64_t *)t->buf[0] += 100;
    return DAGR_TASK_DONE;
}

/* Without devices a kernel with a device body runs its CPU body on the host. */
Test(lib_args, kernel_with_device_body_runs_cpu_body_on_host) {
    dagr_kernel_t k = {.name = "dev_body", .cpu = k_inc, .gpu = k_dev_add100};
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    assert_usable(2);
}

Test(lib_args, naccess_out_of_range) {
    dagr_access_t acc[2] = {{d, DAGR_RW}, {d, DAGR_READ}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 0, acc, NULL), "naccess");
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, -1, acc, NULL), "naccess");
    assert_usable(1);
}

Test(lib_args, null_access_array) {
    dagr_status_t st = dagr_spawn(ctx, &K_INC, NULL, 0, 1, NULL, NULL);
    cr_expect_eq(st, DAGR_ERR_ARG, "access NULL: %s", dagr_status_str(st));
    assert_usable(1);
}

Test(lib_args, unknown_mode) {
    dagr_access_t acc[1] = {{d, (dagr_mode_t)0}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), "mode");
    acc[0].mode = (dagr_mode_t)7;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), "mode");
    acc[0].mode = (dagr_mode_t)4;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), "mode");
    acc[0].mode = (dagr_mode_t)-1;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), "mode");
    /* A bad mode in a later access counts as well. */
    dagr_access_t acc2[2] = {{d, DAGR_RW}, {d, (dagr_mode_t)5}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 2, acc2, NULL), "mode");
    assert_usable(1);
}

Test(lib_args, null_data_in_access) {
    dagr_access_t acc[2] = {{d, DAGR_RW}, {NULL, DAGR_READ}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 2, acc, NULL), "data");
    acc[0].data = NULL;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), "data");
    assert_usable(1);
}

Test(lib_args, owner_out_of_range) {
    char buf[8];
    dagr_data_t *out = (dagr_data_t *)&out;
    EXPECT_ARG(dagr_data_create(ctx, 8, -1, &out), "owner");
    EXPECT_ARG(dagr_data_create(ctx, 8, 1, &out), "owner"); /* == size */
    EXPECT_ARG(dagr_data_attach(ctx, buf, 8, -1, &out), "owner");
    EXPECT_ARG(dagr_data_attach(ctx, buf, 8, 1, &out), "owner");
    cr_expect_eq(out, (dagr_data_t *)&out, "out-parameter changed on error");
    assert_usable(1);
}

Test(lib_args, opts_rank_out_of_range) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = 1; /* == size */
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), "rank");
    o.rank = -2;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), "rank");
    assert_usable(1);
}

Test(lib_args, args_null_with_size) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 8, 1, acc, NULL), "args");
    assert_usable(1);
}

Test(lib_args, args_too_large) {
    static char big[DAGR_MAX_ARGS + 1];
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, big, DAGR_MAX_ARGS + 1, 1, acc, NULL), "args");
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, big, SIZE_MAX, 1, acc, NULL), "args");
    assert_usable(1);
}

Test(lib_args, attach_null_ptr_on_owner) {
    dagr_data_t *out = (dagr_data_t *)&out;
    EXPECT_ARG(dagr_data_attach(ctx, NULL, 8, 0, &out), "ptr");
    cr_expect_eq(out, (dagr_data_t *)&out, "out-parameter changed on error");
    assert_usable(1);
}

Test(lib_args, fetch_bad_arguments) {
    uint64_t v;
    EXPECT_ARG(dagr_fetch(d, &v, 1), "root"); /* == size */
    EXPECT_ARG(dagr_fetch(d, &v, -2), "root");
    dagr_status_t st = dagr_fetch(NULL, &v, 0);
    cr_expect_eq(st, DAGR_ERR_ARG, "fetch of NULL data: %s", dagr_status_str(st));
    EXPECT_ARG(dagr_fetch(d, NULL, 0), "dst");
    EXPECT_ARG(dagr_fetch(d, NULL, -1), "dst");
    assert_usable(1);
}

Test(lib_args, spawn_after_refusals_counts_from_zero) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    dagr_access_t bad[1] = {{d, (dagr_mode_t)0}};
    cr_expect_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, bad, NULL), DAGR_ERR_ARG);
    cr_expect_eq(dagr_spawn(ctx, &K_INC, NULL, 8, 1, acc, NULL), DAGR_ERR_ARG);
    cr_expect_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 0, acc, NULL), DAGR_ERR_ARG);
    assert_usable(1);
    cr_expect_eq(last_seq, 0, "refused spawns were counted: first task has seq %llu",
                 (unsigned long long)last_seq);
    assert_usable(2);
    cr_expect_eq(last_seq, 1, "second task has seq %llu", (unsigned long long)last_seq);
}

/* ---- The limits themselves are valid ---- */

/* Accesses of the big task: more than any inline or stack array holds, 50 of them naming a
 * handle a second time (the last one WRITE: merged into RW). */
#define BIG_NACC 200
#define BIG_NH 150
static unsigned char big_args[DAGR_MAX_ARGS];
static int big_ok = -1;

static dagr_task_result_t k_check_big(const dagr_task_view_t *t) {
    big_ok = t->args_size == DAGR_MAX_ARGS && t->args != big_args &&
             memcmp(t->args, big_args, DAGR_MAX_ARGS) == 0 && t->nbuf == BIG_NACC;
    for (int i = BIG_NH; i < BIG_NACC && big_ok; i++)
        big_ok = t->buf[i] == t->buf[i - BIG_NH] && t->bytes[i] == 8;
    uint64_t one = 1;
    memcpy(t->buf[BIG_NACC - 1], &one, 8);
    return DAGR_TASK_DONE;
}

Test(lib_args, limits_are_accepted) {
    static const dagr_kernel_t k = {.name = "args_big", .cpu = k_check_big};
    dagr_data_t *h[BIG_NH];
    dagr_access_t acc[BIG_NACC];
    for (int i = 0; i < BIG_NH; i++)
        cr_assert_eq(dagr_data_create(ctx, 8, 0, &h[i]), DAGR_OK);
    for (int i = 0; i < BIG_NACC; i++)
        acc[i] = (dagr_access_t){h[i % BIG_NH], i == BIG_NACC - 1 ? DAGR_WRITE : DAGR_READ};
    for (int i = 0; i < DAGR_MAX_ARGS; i++)
        big_args[i] = (unsigned char)(i * 7 + 3);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = 0;
    cr_assert_eq(dagr_spawn(ctx, &k, big_args, DAGR_MAX_ARGS, BIG_NACC, acc, &o), DAGR_OK, "%s",
                 dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(big_ok, 1, "the task did not see its %d-byte argument copy and %d buffers",
                 DAGR_MAX_ARGS, BIG_NACC);
    uint64_t v = 0;
    cr_expect_eq(dagr_fetch(h[BIG_NACC - 1 - BIG_NH], &v, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(v, 1, "the merged RW access wrote %llu", (unsigned long long)v);
    /* Zero-byte handles, attach of NULL with 0 bytes, NULL args with size 0. */
    dagr_data_t *z = NULL, *za = NULL;
    cr_expect_eq(dagr_data_create(ctx, 0, 0, &z), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_data_attach(ctx, NULL, 0, 0, &za), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_data_bytes(z), 0);
    cr_expect_eq(dagr_data_owner(za), 0);
    cr_expect_eq(dagr_fetch(z, NULL, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_data_destroy(&z), DAGR_OK);
    cr_expect_null(z);
    cr_expect_eq(dagr_data_destroy(&za), DAGR_OK);
    assert_usable(1);
}

/* A message is recorded for an error, and a successful call does not need to clear it; but
 * a new error replaces it. */
Test(lib_args, last_error_names_file_and_line) {
    dagr_data_t *out = NULL;
    cr_expect_eq(dagr_data_create(ctx, 8, 5, &out), DAGR_ERR_ARG);
    const char *msg = dagr_last_error();
    cr_expect(strstr(msg, ".c:") != NULL, "message \"%s\" has no file:line", msg);
    cr_expect(strstr(msg, "5") != NULL, "message \"%s\" does not show the bad owner 5", msg);
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    cr_expect_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 0, acc, NULL), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "naccess") != NULL, "message \"%s\" not replaced",
              dagr_last_error());
}

/* ---- Kernels with several bodies ---- */

static int bodies_ran[3];

/* Declines odd values (without touching them), increments even ones by 1. */
static dagr_task_result_t k_even_only(const dagr_task_view_t *t) {
    bodies_ran[0]++;
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    if (x % 2) return DAGR_TASK_NEXT;
    x += 1;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

/* Handles anything: adds 101. */
static dagr_task_result_t k_general(const dagr_task_view_t *t) {
    bodies_ran[1]++;
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    x += 101;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_decline(const dagr_task_view_t *t) {
    (void)t;
    bodies_ran[2]++;
    return DAGR_TASK_NEXT;
}

Test(lib_args, next_falls_back_to_the_next_body) {
    static const dagr_kernel_t k = {
        .name = "args_two_bodies", .cpu = k_even_only, .cpu_more = {k_decline, k_general}};
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    /* d = 0: the first body takes it (-> 1); then 1 is odd: declined twice, general (-> 102). */
    cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    uint64_t v = 0;
    cr_assert_eq(dagr_fetch(d, &v, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(v, 102, "value %llu, want 102", (unsigned long long)v);
    cr_expect(bodies_ran[0] == 2 && bodies_ran[2] == 1 && bodies_ran[1] == 1,
              "bodies ran %d, %d, %d times; want 2, 1, 1", bodies_ran[0], bodies_ran[2],
              bodies_ran[1]);
}

Test(lib_args, next_with_no_body_left_fails_the_task) {
    static const dagr_kernel_t k = {
        .name = "args_all_decline", .cpu = k_decline, .cpu_more = {k_decline}};
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    /* A task depending on it is poisoned, not run. */
    cr_assert_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), DAGR_OK, "%s", dagr_last_error());
    dagr_status_t st = dagr_wait_all(ctx);
    const char *msg = dagr_last_error();
    cr_expect_eq(st, DAGR_ERR_TASK, "wait returned %s", dagr_status_str(st));
    cr_expect(strstr(msg, "args_all_decline") && strstr(msg, "DAGR_TASK_NEXT"),
              "message \"%s\" names neither the kernel nor NEXT", msg);
    cr_expect_eq(bodies_ran[2], 2, "the declining bodies ran %d times, want 2", bodies_ran[2]);
    uint64_t v = 1;
    cr_assert_eq(dagr_fetch(d, &v, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(v, 0, "the poisoned task ran (value %llu)", (unsigned long long)v);
}

Test(lib_args, bad_bodies_and_where) {
    dagr_access_t acc[1] = {{d, DAGR_RW}};
    dagr_kernel_t gap = {.name = "args_gap", .cpu = k_inc, .cpu_more = {NULL, k_general}};
    EXPECT_ARG(dagr_spawn(ctx, &gap, NULL, 0, 1, acc, NULL), "cpu_more[1]");
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    cr_expect_eq(o.where, DAGR_WHERE_ANY);
    o.where = DAGR_WHERE_DEVICE;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), "has no device");
    /* A device body does not make a device: still refused. */
    dagr_kernel_t dev = {.name = "args_dev", .cpu = k_inc, .gpu = k_dev_add100};
    EXPECT_ARG(dagr_spawn(ctx, &dev, NULL, 0, 1, acc, &o), "has no device");
    o.where = (dagr_where_t)7;
    EXPECT_ARG(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), "where");
    /* CPU explicitly: runs. */
    o.where = DAGR_WHERE_CPU;
    cr_assert_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), DAGR_OK, "%s", dagr_last_error());
    assert_usable(2);
}
