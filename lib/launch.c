/* The launch check: is MPI's world the job the launcher started?
 *
 * A program built with one MPI and started by a launcher that speaks another's process
 * management interface does not fail: each process finds no PMI it knows, initialises as a
 * singleton and runs the whole program alone as rank 0 of 1, and the job exits 0. With
 * Debian's MPICH this happens under `srun --mpi=pmix` (MPICH has no PMIx client), under
 * `srun --mpi=none`, and under OpenMPI's mpiexec. A 64-rank job then computes the same thing
 * 64 times and each copy writes the same files.
 *
 * dagr_init compares MPI_COMM_WORLD's size with the number of processes the launcher says it
 * started, from the most direct source there is:
 *   - PMIx (PMIX_RANK in the environment: srun --mpi=pmix, OpenMPI's mpiexec): the job size
 *     from PMIx_Get(PMIX_JOB_SIZE), when dagr is built with PMIx; else the environment below;
 *   - PMI-1/PMI-2 (PMI_SIZE: MPICH's Hydra mpiexec, srun --mpi=pmi2);
 *   - OpenMPI's launcher (OMPI_COMM_WORLD_SIZE);
 *   - a Slurm step (SLURM_STEP_NUM_TASKS with SLURM_PROCID: srun, whatever the --mpi).
 * Nothing of these (a plain ./prog, or a batch script running the program without a
 * launcher: the batch step exports SLURM_NTASKS and SLURM_PROCID but no SLURM_STEP_*) means a
 * singleton was meant: no check. What each launcher exports was read on Slurm 22.05, MPICH
 * 4.0 and OpenMPI 4.1 (tests/slurm checks the real ones). */
#include "lib_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DAGR_HAVE_PMIX
#include <pmix.h>
#endif

/* A positive integer from the environment, or -1. */
static long env_count(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long n = strtol(v, &end, 10);
    return *end == 0 && n > 0 ? n : -1;
}

static bool env_set(const char *name) {
    const char *v = getenv(name);
    return v && *v;
}

#ifdef DAGR_HAVE_PMIX
/* The job's size from the PMIx server that started this process, or -1. */
static long pmix_job_size(void) {
    pmix_proc_t me, job;
    if (PMIx_Init(&me, NULL, 0) != PMIX_SUCCESS) return -1;
    long n = -1;
    PMIX_PROC_CONSTRUCT(&job);
    PMIX_LOAD_PROCID(&job, me.nspace, PMIX_RANK_WILDCARD);
    pmix_value_t *val = NULL;
    if (PMIx_Get(&job, PMIX_JOB_SIZE, NULL, 0, &val) == PMIX_SUCCESS && val) {
        if (val->type == PMIX_UINT32) n = (long)val->data.uint32;
        PMIX_VALUE_RELEASE(val);
    }
    PMIx_Finalize(NULL, 0);
    return n;
}
#endif

void launch_detect(launch_info_t *l) {
    memset(l, 0, sizeof *l);
    l->expected = -1;
    bool slurm_step = env_set("SLURM_PROCID") && env_count("SLURM_STEP_NUM_TASKS") > 0;
    bool ompi = env_count("OMPI_COMM_WORLD_SIZE") > 0;
    const char *who = slurm_step ? "srun" : ompi ? "OpenMPI's mpiexec" : NULL;

    if (env_set("PMIX_RANK")) {
        snprintf(l->pmi, sizeof l->pmi, "PMIx");
        snprintf(l->launcher, sizeof l->launcher, "%s", who ? who : "a PMIx launcher");
#ifdef DAGR_HAVE_PMIX
        l->expected = pmix_job_size();
        if (l->expected > 0) snprintf(l->source, sizeof l->source, "PMIx_Get(PMIX_JOB_SIZE)");
#endif
    } else if (env_count("PMI_SIZE") > 0) {
        /* Hydra exports MPI_LOCALNRANKS with PMI_SIZE; Slurm's pmi2 plugin does not. Under
         * Hydra inside a Slurm job, the SLURM_STEP_* variables are those of Hydra's own
         * one-task proxy step (SLURM_STEP_NUM_TASKS=1, SLURM_PROCID=0 on every rank), and
         * PMI_JOBID is set too: only PMI_SIZE counts the ranks. */
        bool hydra = env_set("MPI_LOCALNRANKS") || !slurm_step;
        snprintf(l->pmi, sizeof l->pmi, "%s", hydra ? "PMI-1 (Hydra)" : "PMI-2");
        snprintf(l->launcher, sizeof l->launcher, "%s", hydra ? "mpiexec (MPICH's Hydra)" : "srun");
        l->expected = env_count("PMI_SIZE");
        snprintf(l->source, sizeof l->source, "PMI_SIZE");
    } else {
        snprintf(l->pmi, sizeof l->pmi, "none");
        snprintf(l->launcher, sizeof l->launcher, "%s", who ? who : "none");
    }
    if (l->expected <= 0 && ompi) {
        l->expected = env_count("OMPI_COMM_WORLD_SIZE");
        snprintf(l->source, sizeof l->source, "OMPI_COMM_WORLD_SIZE");
    }
    if (l->expected <= 0 && slurm_step) {
        l->expected = env_count("SLURM_STEP_NUM_TASKS");
        snprintf(l->source, sizeof l->source, "SLURM_STEP_NUM_TASKS");
    }
    long tasks = env_count("SLURM_NTASKS");
    l->allocation = tasks > 0 ? tasks : 0;
}

/* "MPICH Version:\t4.0.2\nMPICH Release date: ..." -> "MPICH 4.0.2". */
void launch_library_name(char *out, size_t size) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, "\n,")] = 0;
    size_t o = 0;
    for (const char *p = v; *p && o + 1 < size;) {
        if (!strncmp(p, "Version:", 8)) {
            p += 8;
            continue;
        }
        bool space = *p == ' ' || *p == '\t';
        if (!space || (o && out[o - 1] != ' ')) out[o++] = space ? ' ' : *p;
        p++;
    }
    out[o] = 0;
    if (o == 0) snprintf(out, size, "this MPI");
}

dagr_status_t launch_check(const launch_info_t *l, int world) {
    if (l->expected <= 0 || l->expected == world) return DAGR_OK;
    char lib[96];
    launch_library_name(lib, sizeof lib);
    char fix[256];
    long n = l->expected;
    if (!strcmp(l->launcher, "srun"))
        snprintf(fix, sizeof fix,
                 "launch it with `srun --mpi=pmi2` (%s%s), or with `mpiexec.mpich -n %ld` "
                 "inside the allocation",
                 lib,
                 strcmp(l->pmi, "PMIx") ? " needs a PMI to find its peers" : " has no PMIx client",
                 n);
    else if (!strcmp(l->launcher, "OpenMPI's mpiexec"))
        snprintf(fix, sizeof fix,
                 "launch it with `mpiexec.mpich -n %ld` (Debian's plain mpiexec may be "
                 "OpenMPI's), or `srun --mpi=pmi2` under Slurm",
                 n);
    else
        snprintf(fix, sizeof fix,
                 "launch it with %s's launcher (`mpiexec.mpich -n %ld`), or `srun --mpi=pmi2` "
                 "under Slurm",
                 lib, n);
    return DAGR_ERR(DAGR_ERR_LAUNCH,
                    "mislaunched: %s started %ld processes (%s; %s) but MPI_COMM_WORLD has %d "
                    "rank%s, so each would run the whole program alone; dagr is built with %s: "
                    "%s",
                    l->launcher, n, l->pmi, l->source, world, world == 1 ? "" : "s", lib, fix);
}
