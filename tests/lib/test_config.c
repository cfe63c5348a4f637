/* Configuration: dagr_config_init defaults, dagr_task_opts_init defaults, and the
 * DAGR_THREADS environment variable (which overrides the struct). Each test is its own
 * process, so each may call dagr_init once. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dagr/dagr.h>

Test(lib_config, config_init_defaults) {
    dagr_config_t cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    dagr_config_init(&cfg);
    cr_expect(cfg.comm == MPI_COMM_WORLD, "comm is not MPI_COMM_WORLD");
    cr_expect_eq(cfg.threads, 0);
    cr_expect_eq(cfg.comm_arena, 0);
    cr_expect_eq(cfg.max_pending, 0);
    cr_expect_eq(cfg.verbose, 0);
    cr_expect_null(cfg.trace_path);
    cr_expect_null(cfg.dot_path);
    cr_expect_eq(cfg.summary, 0);
    cr_expect_eq(cfg.progress, 0);
    cr_expect_eq(cfg.trace_events, 0);
    cr_expect_eq(cfg.memory_limit, 0);
    cr_expect_null(cfg.spill_dir);
}

Test(lib_config, task_opts_init_defaults) {
    dagr_task_opts_t o;
    memset(&o, 0x5a, sizeof o);
    dagr_task_opts_init(&o);
    cr_expect_eq(o.priority, 0);
    cr_expect_eq(o.rank, -1);
    cr_expect_null(o.queue);
    cr_expect(o.flops == 0.0, "flops %g", o.flops);
}

static dagr_task_result_t flop_body(const dagr_task_view_t *t) {
    (void)t;
    return DAGR_TASK_DONE;
}

/* dagr_init must refuse var=value with DAGR_ERR_ARG, naming the variable, and leave *ctx_out
 * alone. */
static void refuse_env(const char *var, const char *value) {
    setenv(var, value, 1);
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_expect_eq(st, DAGR_ERR_ARG, "%s=\"%s\": dagr_init returned %s", var, value,
                 dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), var) != NULL,
              "%s=\"%s\": message \"%s\" does not name the variable", var, value,
              dagr_last_error());
    if (st == DAGR_OK)
        dagr_finalize(&ctx);
    else
        cr_expect_eq(ctx, (dagr_ctx_t *)&ctx, "ctx_out changed on error");
}

Test(lib_config, env_threads_not_a_number) {
    refuse_env("DAGR_THREADS", "abc");
}
Test(lib_config, env_threads_zero) {
    refuse_env("DAGR_THREADS", "0");
}
Test(lib_config, env_threads_negative) {
    refuse_env("DAGR_THREADS", "-3");
}
Test(lib_config, env_threads_trailing_garbage) {
    refuse_env("DAGR_THREADS", "2x");
}
Test(lib_config, env_comm_arena_not_a_size) {
    refuse_env("DAGR_COMM_ARENA", "lots");
}
Test(lib_config, env_gpus_not_a_number) {
    refuse_env("DAGR_GPUS", "all");
}
Test(lib_config, env_gpus_too_many) {
    refuse_env("DAGR_GPUS", "17");
}
Test(lib_config, env_gpu_memory_zero) {
    refuse_env("DAGR_GPU_MEMORY", "0");
}
Test(lib_config, env_gpu_memory_not_a_size) {
    refuse_env("DAGR_GPU_MEMORY", "most");
}
Test(lib_config, env_max_pending_zero) {
    refuse_env("DAGR_MAX_PENDING", "0");
}
Test(lib_config, env_verbose_two) {
    refuse_env("DAGR_VERBOSE", "2");
}

Test(lib_config, env_summary_two) {
    refuse_env("DAGR_SUMMARY", "2");
}
Test(lib_config, env_progress_word) {
    refuse_env("DAGR_PROGRESS", "yes");
}
/* dagr_init must accept var=value (each test is its own process: MPI is initialised once). */
static void accept_env(const char *var, const char *value) {
    setenv(var, value, 1);
    dagr_ctx_t *ctx = NULL;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_assert_eq(st, DAGR_OK, "%s=\"%s\": %s (%s)", var, value, dagr_status_str(st),
                 dagr_last_error());
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}
Test(lib_config, env_progress_tty) {
    accept_env("DAGR_PROGRESS", "tty");
}
Test(lib_config, env_progress_log) {
    accept_env("DAGR_PROGRESS", "log");
}
Test(lib_config, progress_mode_out_of_range) {
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.progress = DAGR_PROGRESS_LOG + 1;
    dagr_ctx_t *ctx = NULL;
    cr_expect_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "progress") != NULL, "message: %s", dagr_last_error());
}
Test(lib_config, env_trace_events_zero) {
    refuse_env("DAGR_TRACE_EVENTS", "0");
}
Test(lib_config, env_trace_events_garbage) {
    refuse_env("DAGR_TRACE_EVENTS", "12q");
}

Test(lib_config, env_memory_limit_garbage) {
    refuse_env("DAGR_MEMORY_LIMIT", "4Q");
}
Test(lib_config, env_memory_limit_negative) {
    refuse_env("DAGR_MEMORY_LIMIT", "-1G");
}
Test(lib_config, env_memory_limit_zero_is_no_limit) {
    setenv("DAGR_MEMORY_LIMIT", "0", 1);
    setenv("DAGR_SPILL_DIR", "/nonexistent/dagr-spill", 1); /* not used without a limit */
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_memory_stats_t m;
    memset(&m, 0x5a, sizeof m);
    cr_expect_eq(dagr_memory_stats(ctx, &m), DAGR_OK);
    cr_expect(m.limit == 0 && m.resident == 0 && m.peak == 0 && m.spill_writes == 0 &&
                  m.reads == 0 && m.over_limit == 0,
              "stats not all zero without a limit");
    cr_expect_eq(dagr_memory_stats(NULL, &m), DAGR_ERR_ARG);
    cr_expect_eq(dagr_memory_stats(ctx, NULL), DAGR_ERR_ARG);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* dagr_init with a memory limit and spill directory `dir` must fail with `want`, and its
 * message contain `has`. */
static void refuse_spill_dir(const char *dir, dagr_status_t want, const char *has) {
    unsetenv("DAGR_MEMORY_LIMIT");
    unsetenv("DAGR_SPILL_DIR");
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.memory_limit = 1 << 20;
    cfg.spill_dir = dir;
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, &cfg, &ctx);
    cr_expect_eq(st, want, "dagr_init returned %s", dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), has), "message \"%s\" lacks \"%s\"", dagr_last_error(),
              has);
    if (st == DAGR_OK) dagr_finalize(&ctx);
}
/* A directory that cannot hold a file: DAGR_ERR_IO naming it. */
Test(lib_config, spill_dir_missing) {
    refuse_spill_dir("/nonexistent/dagr-spill", DAGR_ERR_IO,
                     "in '/nonexistent/dagr-spill' (DAGR_SPILL_DIR)");
}
Test(lib_config, spill_dir_is_a_file) {
    refuse_spill_dir("/etc/passwd", DAGR_ERR_IO, "in '/etc/passwd' (DAGR_SPILL_DIR)");
}
Test(lib_config, spill_dir_name_too_long) {
    char dir[700];
    memset(dir, 'd', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = 0;
    refuse_spill_dir(dir, DAGR_ERR_ARG, "the spill directory's name is longer than");
}

/* The limit through the struct, the directory through the environment: init opens the
 * spill file (and leaves nothing in the directory), dagr_memory_stats reports the limit. */
Test(lib_config, memory_limit_through_config) {
    char dir[] = "/tmp/dagr-config-spill-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    unsetenv("DAGR_MEMORY_LIMIT");
    setenv("DAGR_SPILL_DIR", dir, 1);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cr_expect_eq(cfg.memory_limit, 0);
    cr_expect_null(cfg.spill_dir);
    cfg.memory_limit = 3 << 20;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_memory_stats_t m;
    cr_expect_eq(dagr_memory_stats(ctx, &m), DAGR_OK);
    cr_expect_eq(m.limit, (size_t)3 << 20);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", dir);
    cr_expect_eq(system(cmd), 0, "the spill directory %s is not empty", dir);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
    cr_expect_eq(rmdir(dir), 0, "cannot remove %s", dir);
}

/* The summary and the trace set through the struct, on one rank: dagr_init copies the paths,
 * and the files exist after dagr_finalize. */
Test(lib_config, trace_through_config) {
    char dir[] = "/tmp/dagr-config-trace-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char trace[128], dot[128];
    snprintf(trace, sizeof trace, "%s/t.json", dir);
    snprintf(dot, sizeof dot, "%s/t.dot", dir);
    char *copy = strdup(trace);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = 1;
    cfg.trace_path = copy;
    cfg.dot_path = dot;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    memset(copy, 'x', strlen(copy)); /* the caller's string need not outlive dagr_init */
    free(copy);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK, "%s", dagr_last_error());
    FILE *f = fopen(trace, "r");
    cr_assert_not_null(f, "no trace file at %s", trace);
    char head[16] = "";
    cr_expect(fgets(head, sizeof head, f) && !strncmp(head, "{\"traceEvents\"", 14), "%s", head);
    fclose(f);
    f = fopen(dot, "r");
    cr_assert_not_null(f, "no DOT file");
    fclose(f);
    remove(trace);
    remove(dot);
    rmdir(dir);
}

Test(lib_config, spawn_rejects_negative_flops) {
    dagr_ctx_t *ctx = NULL;
    setenv("DAGR_THREADS", "1", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_data_t *h = NULL;
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &h), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.flops = -1;
    cr_expect_eq(dagr_spawn(ctx, &(dagr_kernel_t){.name = "k", .cpu = flop_body}, NULL, 0, 1,
                            &(dagr_access_t){h, DAGR_RW}, &o),
                 DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "flops") != NULL, "%s", dagr_last_error());
    dagr_data_destroy(&h);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

Test(lib_config, env_threads_overrides_config) {
    setenv("DAGR_THREADS", "3", 1);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = 1;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_threads(ctx), 3);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

Test(lib_config, config_threads_used_without_env) {
    unsetenv("DAGR_THREADS");
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = 3;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_threads(ctx), 3);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

Test(lib_config, config_threads_negative) {
    unsetenv("DAGR_THREADS");
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = -1;
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, &cfg, &ctx);
    cr_expect_eq(st, DAGR_ERR_ARG, "cfg.threads = -1: dagr_init returned %s", dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), "threads") != NULL, "message \"%s\"", dagr_last_error());
    if (st == DAGR_OK) dagr_finalize(&ctx);
}

Test(lib_config, default_threads_at_least_one) {
    unsetenv("DAGR_THREADS");
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_geq(dagr_threads(ctx), 1);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* verbose = 1: rank 0 prints the chosen configuration at init (the worker count among it). */
static void capture_output(void) {
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int contains(FILE *f, const char *what, char *all, size_t cap) {
    size_t n = 0;
    if (f) {
        fflush(f);
        n = fread(all, 1, cap - 1, f);
    }
    all[n] = '\0';
    return strstr(all, what) != NULL;
}

Test(lib_config, verbose_prints_configuration, .init = capture_output) {
    setenv("DAGR_THREADS", "3", 1);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.verbose = 1;
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_finalize(&ctx), DAGR_OK);
    fflush(stdout);
    fflush(stderr);
    char out[4096], err[4096];
    int in_out = contains(cr_get_redirected_stdout(), "3", out, sizeof out);
    int in_err = contains(cr_get_redirected_stderr(), "3", err, sizeof err);
    cr_expect(in_out || in_err, "nothing naming 3 threads printed: stdout \"%s\" stderr \"%s\"",
              out, err);
}

Test(lib_config, quiet_by_default, .init = capture_output) {
    unsetenv("DAGR_VERBOSE");
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_finalize(&ctx), DAGR_OK);
    fflush(stdout);
    fflush(stderr);
    char out[4096], err[4096];
    contains(cr_get_redirected_stdout(), "", out, sizeof out);
    contains(cr_get_redirected_stderr(), "", err, sizeof err);
    cr_expect(strstr(out, "dagr") == NULL && strstr(err, "dagr") == NULL,
              "printed without verbose: stdout \"%s\" stderr \"%s\"", out, err);
}

/* The test devices' variables (README "Devices"). */
Test(lib_config, env_test_devices_garbage) {
    refuse_env("DAGR_TEST_DEVICES", "two");
}
Test(lib_config, env_test_devices_too_many) {
    refuse_env("DAGR_TEST_DEVICES", "9");
}
Test(lib_config, env_test_device_memory_zero) {
    refuse_env("DAGR_TEST_DEVICE_MEMORY", "0");
}
Test(lib_config, env_test_device_memory_garbage) {
    refuse_env("DAGR_TEST_DEVICE_MEMORY", "4Q");
}
Test(lib_config, env_test_device_delay_negative) {
    refuse_env("DAGR_TEST_DEVICE_DELAY", "-1");
}
Test(lib_config, test_devices_counted_and_reported) {
    setenv("DAGR_TEST_DEVICES", "2", 1);
    setenv("DAGR_TEST_DEVICE_MEMORY", "3M", 1);
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(dagr_devices(ctx), 2);
    dagr_device_stats_t st;
    cr_expect_eq(dagr_device_stats(ctx, 1, &st), DAGR_OK);
    cr_expect_eq(st.memory, (size_t)3 << 20);
    cr_expect_str_eq(st.kind, "test device");
    cr_expect_eq(st.tasks, 0);
    cr_expect_eq(dagr_device_stats(ctx, 2, &st), DAGR_ERR_ARG);
    cr_expect_eq(dagr_device_stats(ctx, -1, &st), DAGR_ERR_ARG);
    cr_expect_eq(dagr_device_stats(ctx, 0, NULL), DAGR_ERR_ARG);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
    cr_expect_eq(dagr_devices(NULL), 0);
}
