/* The launch check, dagr_job_info and the stop signals, in one process (each test is its own
 * process, so each may call dagr_init once). The launchers' environments are set by hand
 * here, as each launcher sets them (tests/slurm runs the real srun, sbatch and OpenMPI's
 * mpiexec); the process itself is an MPI singleton, as a mislaunched process is. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <dagr/dagr.h>

/* Clears what a launcher could have left in the environment (the test may run under one). */
static void clean_env(void) {
    static const char *const vars[] = {"PMIX_RANK",
                                       "PMIX_NAMESPACE",
                                       "PMI_SIZE",
                                       "PMI_RANK",
                                       "PMI_FD",
                                       "PMI_JOBID",
                                       "OMPI_COMM_WORLD_SIZE",
                                       "SLURM_PROCID",
                                       "SLURM_STEP_NUM_TASKS",
                                       "DAGR_STOP_SIGNALS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

/* dagr_init must fail with DAGR_ERR_LAUNCH, leave *ctx_out alone, and say each of `has`. */
static void refuse(const char *const *has, int nhas) {
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_assert_eq(st, DAGR_ERR_LAUNCH, "dagr_init returned %s: %s", dagr_status_str(st),
                 dagr_last_error());
    cr_expect_eq(ctx, (dagr_ctx_t *)&ctx, "ctx_out changed on error");
    for (int i = 0; i < nhas; i++)
        cr_expect(strstr(dagr_last_error(), has[i]), "the message does not say '%s': %s", has[i],
                  dagr_last_error());
}

/* dagr_init must succeed, and dagr_job_info name the launcher. */
static void accept(const char *launcher) {
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_job_info_t j;
    cr_assert_eq(dagr_job_info(ctx, &j), DAGR_OK);
    cr_expect_str_eq(j.launcher, launcher);
    cr_expect_eq(j.ranks, 1);
    dagr_finalize(&ctx);
}

Test(lib_launch, openmpi_mpiexec_of_an_mpich_program) {
    clean_env();
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    const char *has[] = {"OpenMPI's mpiexec", "started 3 processes", "MPI_COMM_WORLD has 1 rank",
                         "mpiexec.mpich -n 3", "OMPI_COMM_WORLD_SIZE"};
    refuse(has, 5);
}

Test(lib_launch, srun_without_pmi) {
    clean_env();
    setenv("SLURM_PROCID", "2", 1);
    setenv("SLURM_STEP_NUM_TASKS", "4", 1);
    const char *has[] = {"srun started 4 processes", "srun --mpi=pmi2", "SLURM_STEP_NUM_TASKS"};
    refuse(has, 3);
}

/* PMIX_RANK without a PMIx server to ask (PMIx_Init fails at once): the Slurm step's size
 * decides. */
Test(lib_launch, srun_pmix_without_server, .timeout = 30) {
    clean_env();
    setenv("PMIX_RANK", "1", 1);
    setenv("PMIX_NAMESPACE", "slurm.pmix.1.0", 1);
    setenv("SLURM_PROCID", "1", 1);
    setenv("SLURM_STEP_NUM_TASKS", "4", 1);
    const char *has[] = {"srun started 4 processes", "PMIx", "srun --mpi=pmi2"};
    refuse(has, 3);
}

Test(lib_launch, pmi_size_mismatch) {
    clean_env();
    setenv("PMI_SIZE", "2", 1);
    const char *has[] = {"started 2 processes", "PMI_SIZE", "mpiexec.mpich -n 2"};
    refuse(has, 3);
}

/* Hydra inside a Slurm job: the Slurm step is Hydra's one-task proxy step; PMI_SIZE counts. */
Test(lib_launch, hydra_inside_slurm_counts_pmi_size) {
    clean_env();
    setenv("PMI_SIZE", "3", 1);
    setenv("PMI_JOBID", "12.0", 1);
    setenv("MPI_LOCALNRANKS", "3", 1);
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_STEP_NUM_TASKS", "1", 1);
    const char *has[] = {"mpiexec (MPICH's Hydra) started 3 processes", "PMI_SIZE"};
    refuse(has, 2);
}

/* srun --mpi=pmi2 exports PMI_SIZE without MPI_LOCALNRANKS. */
Test(lib_launch, srun_pmi2_named) {
    clean_env();
    setenv("PMI_SIZE", "2", 1);
    setenv("PMI_JOBID", "12.0", 1);
    setenv("SLURM_PROCID", "1", 1);
    setenv("SLURM_STEP_NUM_TASKS", "2", 1);
    const char *has[] = {"srun started 2 processes", "PMI-2"};
    refuse(has, 2);
}

/* A batch script running the program without a launcher: no step variables, no check; the
 * job's task count is reported (dagr-info notes the unused tasks). */
Test(lib_launch, batch_step_without_launcher) {
    clean_env();
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_PROCID", "0", 1);
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_job_info_t j;
    dagr_job_info(ctx, &j);
    cr_expect_str_eq(j.launcher, "none");
    cr_expect_eq(j.slurm_tasks, 4, "the allocation's tasks: %d", j.slurm_tasks);
    dagr_finalize(&ctx);
}

Test(lib_launch, one_task_srun_step_is_fine) {
    clean_env();
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_STEP_NUM_TASKS", "1", 1);
    accept("srun");
}

Test(lib_launch, no_launcher_is_a_singleton) {
    clean_env();
    accept("none");
}

/* Values that are not counts are no evidence either way. */
Test(lib_launch, garbage_counts_are_ignored) {
    clean_env();
    setenv("OMPI_COMM_WORLD_SIZE", "x3", 1);
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_STEP_NUM_TASKS", "-4", 1);
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_finalize(&ctx);
}

Test(lib_launch, job_info) {
    clean_env();
    setenv("DAGR_THREADS", "3", 1);
    setenv("DAGR_MEMORY_LIMIT", "64M", 1);
    setenv("DAGR_STOP_SIGNALS", "sigusr1, 15", 1);
    /* No GPU here (CI, this machine): asking for some is no error; the rank has none and
     * says why. */
    setenv("DAGR_GPUS", "2", 1);
    setenv("DAGR_GPU_MEMORY", "8G", 1);
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_job_info_t j;
    cr_assert_eq(dagr_job_info(ctx, &j), DAGR_OK);
    cr_expect_eq(j.ranks, 1);
    cr_expect_eq(j.nodes, 1);
    cr_expect_eq(j.ranks_on_node, 1);
    cr_expect_eq(j.max_ranks_per_node, 1);
    cr_expect_eq(j.threads, 3);
    cr_expect_eq(j.devices, 0);
    cr_expect(strstr(j.mpi_library, "MPICH"), "mpi_library '%s'", j.mpi_library);
    cr_expect_str_eq(j.thread_level, "MPI_THREAD_MULTIPLE");
    cr_expect_str_eq(j.pmi, "none");
    cr_expect_eq(j.slurm_tasks, 0);
    cr_expect_eq(j.memory_limit, (size_t)64 << 20);
    cr_expect(j.spill_dir != NULL);
    cr_expect(j.node_memory > ((size_t)64 << 20), "node_memory %zu", j.node_memory);
    cr_expect(j.comm_arena > 0);
    cr_expect_str_eq(j.stop_signals, "USR1,TERM");
    cr_expect_eq(j.gpus, 0);
    cr_expect(j.gpu_note && *j.gpu_note, "no note saying why there is no GPU");
    cr_expect_eq(dagr_job_info(NULL, &j), DAGR_ERR_ARG);
    cr_expect_eq(dagr_job_info(ctx, NULL), DAGR_ERR_ARG);
    dagr_finalize(&ctx);
}

/* A stop signal is caught while the context lives, turns dagr_stop_requested true for good,
 * and the signal's previous action is back after dagr_finalize. */
Test(lib_launch, stop_signal_caught_and_released) {
    clean_env();
    static volatile sig_atomic_t mine;
    struct sigaction sa = {0}, now;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR2, &sa, NULL);
    (void)mine;
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.stop_signals = "USR2,TERM";
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect(!dagr_stop_requested(ctx));
    cr_expect(!dagr_stop_requested(ctx));
    raise(SIGUSR2); /* would be ignored without dagr */
    cr_expect(!dagr_stop_requested(ctx), "the answer comes a call late");
    cr_expect(dagr_stop_requested(ctx));
    cr_expect(dagr_stop_requested(ctx), "the request is forgotten");
    raise(SIGTERM); /* caught too: the process goes on */
    cr_expect(dagr_stop_requested(ctx));
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
    sigaction(SIGUSR2, NULL, &now);
    cr_expect(now.sa_handler == SIG_IGN, "SIGUSR2's action was not restored");
    sigaction(SIGTERM, NULL, &now);
    cr_expect(now.sa_handler == SIG_DFL, "SIGTERM's action was not restored");
    cr_expect(dagr_stop_requested(NULL), "a NULL context must end a loop");
}

/* The environment overrides the struct, and "" turns the signals off. */
Test(lib_launch, stop_signals_env_off) {
    clean_env();
    setenv("DAGR_STOP_SIGNALS", "", 1);
    struct sigaction ign = {0}, now;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGUSR2, &ign, NULL);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.stop_signals = "USR2";
    dagr_ctx_t *ctx = NULL;
    cr_assert_eq(dagr_init(NULL, NULL, &cfg, &ctx), DAGR_OK, "%s", dagr_last_error());
    sigaction(SIGUSR2, NULL, &now);
    cr_expect(now.sa_handler == SIG_IGN, "SIGUSR2 is caught although DAGR_STOP_SIGNALS=\"\"");
    dagr_job_info_t j;
    dagr_job_info(ctx, &j);
    cr_expect_str_eq(j.stop_signals, "");
    raise(SIGUSR2);
    cr_expect(!dagr_stop_requested(ctx));
    cr_expect(!dagr_stop_requested(ctx));
    dagr_finalize(&ctx);
}

static void refuse_signals(const char *spec, const char *has) {
    clean_env();
    setenv("DAGR_STOP_SIGNALS", spec, 1);
    dagr_ctx_t *ctx = (dagr_ctx_t *)&ctx;
    dagr_status_t st = dagr_init(NULL, NULL, NULL, &ctx);
    cr_expect_eq(st, DAGR_ERR_ARG, "'%s': %s", spec, dagr_status_str(st));
    cr_expect(strstr(dagr_last_error(), "DAGR_STOP_SIGNALS"), "'%s': %s", spec, dagr_last_error());
    cr_expect(strstr(dagr_last_error(), has), "'%s' does not say '%s': %s", spec, has,
              dagr_last_error());
    if (st == DAGR_OK) dagr_finalize(&ctx);
}

Test(lib_launch, stop_signals_refused) {
    refuse_signals("USR1,KILL", "'KILL'");
}
Test(lib_launch, stop_signals_refused_fault) {
    refuse_signals("SEGV", "'SEGV'");
}
Test(lib_launch, stop_signals_refused_number) {
    refuse_signals("9", "'9'");
}
Test(lib_launch, stop_signals_refused_word) {
    refuse_signals("USR1;TERM", "'USR1;TERM'");
}
