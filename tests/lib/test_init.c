/* dagr_init / dagr_finalize and who owns MPI (single rank: each test is a singleton MPI
 * process of its own). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <dagr/dagr.h>

static void one_thread(void) {
    setenv("DAGR_THREADS", "1", 1);
}

TestSuite(lib_init, .init = one_thread, .timeout = 60);

static dagr_task_result_t k_inc(const dagr_task_view_t *t) {
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    x++;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_INC = {.name = "init_inc", .cpu = k_inc};

/* Runs n increments on a fresh handle and checks the result. */
static void run_tasks(dagr_ctx_t *ctx, int n) {
    dagr_data_t *h = NULL;
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &h), DAGR_OK, "%s", dagr_last_error());
    for (int i = 0; i < n; i++) {
        dagr_access_t acc[1] = {{h, DAGR_RW}};
        cr_assert_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, NULL), DAGR_OK, "%s",
                     dagr_last_error());
    }
    uint64_t v = 0;
    cr_assert_eq(dagr_fetch(h, &v, 0), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(v, (uint64_t)n);
    cr_assert_eq(dagr_data_destroy(&h), DAGR_OK);
}

Test(lib_init, dagr_owns_mpi) {
    int flag = 1;
    MPI_Initialized(&flag);
    cr_assert_eq(flag, 0, "MPI initialised before the test");
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_not_null(ctx);
    MPI_Initialized(&flag);
    cr_expect_eq(flag, 1);
    int level = -1;
    MPI_Query_thread(&level);
    cr_expect_eq(level, MPI_THREAD_MULTIPLE, "dagr initialised MPI at thread level %d", level);
    cr_expect_eq(dagr_rank(ctx), 0);
    cr_expect_eq(dagr_size(ctx), 1);
    cr_expect_eq(dagr_threads(ctx), 1);
    int cmp = MPI_UNEQUAL;
    MPI_Comm_compare(dagr_comm(ctx), MPI_COMM_WORLD, &cmp);
    cr_expect_eq(cmp, MPI_CONGRUENT, "dagr_comm is not a duplicate of MPI_COMM_WORLD (%d)", cmp);
    run_tasks(ctx, 10);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_null(ctx);
    MPI_Finalized(&flag);
    cr_expect_eq(flag, 1, "dagr_finalize did not finalise the MPI it initialised");
    /* Finalising again is harmless. */
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

Test(lib_init, argc_argv_are_passed) {
    int argc = 1;
    char arg0[] = "test_init";
    char *args[] = {arg0, NULL};
    char **argv = args;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(&argc, &argv, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    run_tasks(ctx, 3);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

Test(lib_init, null_ctx_out) {
    dagr_status_t st = dagr_init(NULL, NULL, NULL, NULL);
    cr_expect_eq(st, DAGR_ERR_ARG, "dagr_init(ctx_out NULL) returned %s", dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), "ctx") != NULL, "message \"%s\"", dagr_last_error());
}

/* The application initialised MPI below MPI_THREAD_MULTIPLE: dagr refuses. */
static void refuse_thread_level(int required) {
    int provided = -1;
    MPI_Init_thread(NULL, NULL, required, &provided);
    cr_assert_lt(provided, MPI_THREAD_MULTIPLE, "MPI gave MULTIPLE when asked for %d", required);
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_expect_eq(st, DAGR_ERR_MPI, "thread level %d: dagr_init returned %s", provided,
                 dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), "thread") != NULL || strstr(dagr_last_error(), "THREAD"),
              "message \"%s\" does not mention the thread level", dagr_last_error());
    cr_expect_eq(ctx, (dagr_ctx_t *)&ctx, "ctx_out changed on error");
    if (st == DAGR_OK) dagr_finalize(&ctx);
    int fin = 1;
    MPI_Finalized(&fin);
    cr_expect_eq(fin, 0, "dagr finalised the application's MPI");
    MPI_Finalize();
}

Test(lib_init, app_mpi_thread_single_is_refused) {
    refuse_thread_level(MPI_THREAD_SINGLE);
}
Test(lib_init, app_mpi_thread_funneled_is_refused) {
    refuse_thread_level(MPI_THREAD_FUNNELED);
}
Test(lib_init, app_mpi_thread_serialized_is_refused) {
    refuse_thread_level(MPI_THREAD_SERIALIZED);
}

Test(lib_init, mpi_already_finalized_is_refused) {
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    MPI_Finalize();
    dagr_ctx_t *ctx = NULL;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_expect_eq(st, DAGR_ERR_MPI, "dagr_init after MPI_Finalize returned %s", dagr_status_str(st));
    cr_expect_null(ctx);
}

Test(lib_init, app_owns_mpi_init_twice) {
    int provided = -1;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    cr_assert_eq(provided, MPI_THREAD_MULTIPLE);
    for (int round = 0; round < 2; round++) {
        dagr_ctx_t *ctx = NULL;
        cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "round %d: %s", round,
                     dagr_last_error());
        run_tasks(ctx, 5 + round);
        cr_expect_eq(dagr_finalize(&ctx), DAGR_OK, "round %d: %s", round, dagr_last_error());
        cr_expect_null(ctx);
        int init = 0, fin = 1;
        MPI_Initialized(&init);
        MPI_Finalized(&fin);
        cr_expect(init == 1 && fin == 0, "round %d: dagr_finalize finalised the app's MPI", round);
        int one = 1, sum = 0;
        cr_expect_eq(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
        cr_expect_eq(sum, 1);
    }
    MPI_Finalize();
}

/* Handles and queues still alive at dagr_finalize are released by it (no crash, no hang),
 * and pending tasks run first: the attached buffer holds their result. */
Test(lib_init, finalize_waits_and_frees_live_handles) {
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    uint64_t buf = 40;
    dagr_data_t *att = NULL, *h = NULL;
    dagr_queue_t *q = NULL;
    cr_assert_eq(dagr_data_attach(ctx, &buf, 8, 0, &att), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 64, 0, &h), DAGR_OK);
    cr_assert_eq(dagr_queue_create(ctx, &q), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.queue = q;
    for (int i = 0; i < 2; i++) {
        dagr_access_t acc[1] = {{att, DAGR_RW}};
        cr_assert_eq(dagr_spawn(ctx, &K_INC, NULL, 0, 1, acc, &o), DAGR_OK);
    }
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(buf, 42, "attached buffer holds %llu after dagr_finalize",
                 (unsigned long long)buf);
}

/* When dagr initialised MPI, dagr_finalize finalised it: MPI cannot start again, so a second
 * dagr_init reports DAGR_ERR_MPI instead of crashing. */
Test(lib_init, init_after_dagr_finalized_mpi_is_refused) {
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_finalize(&ctx), DAGR_OK);
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_expect_eq(st, DAGR_ERR_MPI, "second dagr_init returned %s", dagr_status_str(st));
    cr_expect_null(ctx);
}

/* Two contexts alive at once (the application owns MPI): each runs its own tasks, and a
 * handle or queue of one is refused by the other. */
Test(lib_init, two_contexts_at_once) {
    int provided = -1;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    cr_assert_eq(provided, MPI_THREAD_MULTIPLE);
    dagr_ctx_t *a = NULL, *b = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &a), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &b), DAGR_OK, "%s", dagr_last_error());
    run_tasks(a, 4);
    run_tasks(b, 6);
    dagr_data_t *ha = NULL;
    dagr_queue_t *qa = NULL;
    cr_assert_eq(dagr_data_create(a, 8, 0, &ha), DAGR_OK);
    cr_assert_eq(dagr_queue_create(a, &qa), DAGR_OK);
    dagr_access_t acc[1] = {{ha, DAGR_RW}};
    dagr_status_t st = dagr_spawn(b, &K_INC, NULL, 0, 1, acc, NULL);
    cr_expect_eq(st, DAGR_ERR_ARG, "handle of another context: %s", dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), "context") != NULL, "message \"%s\"", dagr_last_error());
    dagr_data_t *hb = NULL;
    cr_assert_eq(dagr_data_create(b, 8, 0, &hb), DAGR_OK);
    dagr_access_t accb[1] = {{hb, DAGR_RW}};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.queue = qa;
    st = dagr_spawn(b, &K_INC, NULL, 0, 1, accb, &o);
    cr_expect_eq(st, DAGR_ERR_ARG, "queue of another context: %s", dagr_status_str(st));
    run_tasks(b, 2);
    cr_expect_eq(dagr_finalize(&a), DAGR_OK, "%s", dagr_last_error());
    run_tasks(b, 3);
    cr_expect_eq(dagr_finalize(&b), DAGR_OK, "%s", dagr_last_error());
    MPI_Finalize();
}
