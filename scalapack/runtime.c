/* What every entry point of libdagr-scalapack shares: MPI at MPI_THREAD_MULTIPLE, one dagr
 * context per set of grid processes, wrapping the caller's arrays, the counts that
 * DAGR_VERBOSE prints, and the way to the real ScaLAPACK. See dropin.h. */
#include "dropin.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BLACS (C interface, in libscalapack). */
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cigsum2d(int ctxt, char *scope, char *top, int m, int n, int *a, int lda, int rdest,
              int cdest);

/* ------------------------------------------------------------------------------------------
 * MPI at MPI_THREAD_MULTIPLE
 *
 * dagr's progress and worker threads call MPI while the program's thread is inside ScaLAPACK
 * or its own MPI calls. ScaLAPACK programs start MPI through BLACS (MPI_Init) or ask for
 * MPI_THREAD_SINGLE themselves; these definitions come before MPI's own in the search order
 * (LD_PRELOAD, or linking this library before MPI) and ask for MPI_THREAD_MULTIPLE, which is
 * more than any program asks for, so nothing the program relies on changes.
 * ---------------------------------------------------------------------------------------- */

SP_EXPORT int MPI_Init(int *argc, char ***argv) {
    int provided;
    return PMPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
}

SP_EXPORT int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
    (void)required;
    return PMPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, provided);
}

/* ------------------------------------------------------------------------------------------
 * Counts (kept on grid process (0, 0) of each call, so that a call counts once)
 * ---------------------------------------------------------------------------------------- */

static const char *const routine_name[SP_NROUTINES] = {"gemm",  "syrk",  "symm",  "trsm",  "trmm",
                                                       "potrf", "potrs", "posv",  "getrf", "getrs",
                                                       "gesv",  "geqrf", "ormqr", "gels"};

static const char *const reason_name[SP_NREASONS] = {
    "arguments ScaLAPACK rejects (it reports them)",
    "nothing to compute",
    "a workspace query",
    "a submatrix not starting on a block boundary",
    "blocks dagr cannot pair",
    "a case dagr does not implement",
    "MPI is not at MPI_THREAD_MULTIPLE",
    "dagr could not start on the grid",
};

typedef struct counts {
    long served;
    long passed[SP_NREASONS];
    char detail[SP_NREASONS][160]; /* the first message of each reason */
} counts_t;

static counts_t counts[SP_NROUTINES][2]; /* [routine][0 float, 1 double] */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static counts_t *counts_of(sp_routine_t r, dagr_dtype_t dt) {
    return &counts[r][dt == DAGR_DOUBLE];
}

static void count_pass(sp_routine_t r, dagr_dtype_t dt, sp_reason_t why, const char *detail) {
    pthread_mutex_lock(&lock);
    counts_t *k = counts_of(r, dt);
    if (k->passed[why]++ == 0 && detail) {
        /* a message is cut at the report's width */
        size_t n = strlen(detail), max = sizeof k->detail[why] - 1;
        memcpy(k->detail[why], detail, n < max ? n : max);
        k->detail[why][n < max ? n : max] = 0;
    }
    pthread_mutex_unlock(&lock);
}

static void report(void) {
    const char *v = getenv("DAGR_VERBOSE");
    if (!v || strcmp(v, "1") != 0) return;
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    for (int r = 0; r < SP_NROUTINES; r++) {
        for (int d = 0; d < 2; d++) {
            const counts_t *k = &counts[r][d];
            long passed = 0;
            for (int w = 0; w < SP_NREASONS; w++)
                passed += k->passed[w];
            if (k->served + passed == 0) continue;
            fprintf(stderr,
                    "dagr-scalapack (rank %d): p%c%s_: %ld served by dagr, %ld passed to "
                    "ScaLAPACK\n",
                    me, d ? 'd' : 's', routine_name[r], k->served, passed);
            for (int w = 0; w < SP_NREASONS; w++)
                if (k->passed[w])
                    fprintf(stderr, "    %ld: %s%s%s\n", k->passed[w], reason_name[w],
                            k->detail[w][0] ? ", e.g. " : "", k->detail[w]);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * One dagr context per set of grid processes
 * ---------------------------------------------------------------------------------------- */

typedef struct grid_ctx {
    struct grid_ctx *next; /* in the order they were made */
    int n;
    int *world; /* the processes' ranks in MPI_COMM_WORLD, increasing */
    dagr_ctx_t *ctx;
    char why[200]; /* why dagr could not start (ctx NULL) */
} grid_ctx_t;

static grid_ctx_t *grids, **grids_tail = &grids;

/* Ends every context in the order they were made (each end is collective over its processes,
 * which are all in MPI_Finalize too, so the same order everywhere cannot deadlock), then
 * prints the counts, then ends MPI. Not from an attribute of MPI_COMM_SELF, which MPI_Finalize
 * would call: MPICH no longer guards its progress engine against two threads by then, and
 * dagr's progress thread still calls MPI until its context ends. Fortran's MPI_FINALIZE
 * calls this one too. */
SP_EXPORT int MPI_Finalize(void) {
    for (grid_ctx_t *g = grids, *next; g; g = next) {
        next = g->next;
        if (g->ctx) {
            dagr_status_t s = dagr_finalize(&g->ctx);
            if (s != DAGR_OK)
                fprintf(stderr, "dagr-scalapack: ending dagr failed: %s\n", dagr_last_error());
        }
        free(g->world);
        free(g);
    }
    grids = NULL;
    grids_tail = &grids;
    report();
    return PMPI_Finalize();
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The context of the processes of grid ctxt (this process is in it), made if needed.
 * Collective over the grid. */
static grid_ctx_t *grid_context(int ctxt, int nprow, int npcol, int myrow, int mycol) {
    int n = nprow * npcol, me;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    int *world = calloc((size_t)n, sizeof *world);
    if (!world) return NULL;
    /* Every process learns every other's world rank through the grid itself: the processes
     * outside it do not take part in this call. */
    world[myrow * npcol + mycol] = me + 1;
    Cigsum2d(ctxt, "All", " ", n, 1, world, n, -1, -1);
    for (int i = 0; i < n; i++)
        world[i]--;
    qsort(world, (size_t)n, sizeof *world, cmp_int);

    pthread_mutex_lock(&lock);
    grid_ctx_t *g = grids;
    while (g && !(g->n == n && memcmp(g->world, world, (size_t)n * sizeof *world) == 0))
        g = g->next;
    pthread_mutex_unlock(&lock);
    if (g) {
        free(world);
        return g;
    }

    g = calloc(1, sizeof *g);
    if (!g) {
        free(world);
        return NULL;
    }
    g->n = n;
    g->world = world;
    /* Collective over the group only, as the grid's processes are the ones calling. */
    MPI_Group wg, gg;
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_incl(wg, n, world, &gg);
    int e = MPI_Comm_create_group(MPI_COMM_WORLD, gg, 0x5ca1, &comm);
    MPI_Group_free(&gg);
    MPI_Group_free(&wg);
    if (e != MPI_SUCCESS) {
        snprintf(g->why, sizeof g->why, "MPI_Comm_create_group failed (error %d)", e);
    } else {
        dagr_config_t cfg;
        dagr_config_init(&cfg);
        cfg.comm = comm;
        if (dagr_init(NULL, NULL, &cfg, &g->ctx) != DAGR_OK) {
            snprintf(g->why, sizeof g->why, "%s", dagr_last_error());
            g->ctx = NULL;
        }
        MPI_Comm_free(&comm); /* dagr keeps its own duplicate */
    }
    pthread_mutex_lock(&lock);
    *grids_tail = g;
    grids_tail = &g->next;
    pthread_mutex_unlock(&lock);
    return g;
}

/* ------------------------------------------------------------------------------------------
 * Calls
 * ---------------------------------------------------------------------------------------- */

static bool counts_here(const sp_call_t *c) {
    return c->myrow == 0 && c->mycol == 0;
}

bool sp_begin(sp_call_t *c, sp_routine_t r, dagr_dtype_t dtype, int ctxt) {
    memset(c, 0, sizeof *c);
    c->routine = r;
    c->dtype = dtype;
    Cblacs_gridinfo(ctxt, &c->nprow, &c->npcol, &c->myrow, &c->mycol);
    if (c->nprow <= 0 || c->npcol <= 0 || c->myrow < 0 || c->mycol < 0) {
        c->myrow = c->mycol = -1; /* not in the grid: ScaLAPACK returns at once */
        return false;
    }
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE) {
        if (counts_here(c))
            count_pass(r, dtype, SP_PASS_THREADS,
                       "MPI was started before libdagr-scalapack could ask for "
                       "MPI_THREAD_MULTIPLE (see the README)");
        return false;
    }
    grid_ctx_t *g = grid_context(ctxt, c->nprow, c->npcol, c->myrow, c->mycol);
    if (!g || !g->ctx) {
        if (counts_here(c)) count_pass(r, dtype, SP_PASS_INIT, g ? g->why : "out of memory");
        return false;
    }
    c->ctx = g->ctx;
    return true;
}

void sp_pass_early(sp_routine_t r, dagr_dtype_t dtype, int ctxt, sp_reason_t why) {
    int nprow, npcol, myrow, mycol;
    Cblacs_gridinfo(ctxt, &nprow, &npcol, &myrow, &mycol);
    if (myrow == 0 && mycol == 0) count_pass(r, dtype, why, NULL);
}

bool sp_desc_ok(const sp_call_t *c, const int *desc, int ia, int ja, int m, int n, sp_desc_t *out) {
    if (!desc) return false;
    int *d = out->d;
    if (desc[0] == 1) {
        memcpy(d, desc, 9 * sizeof *d);
    } else if (desc[0] == 2 && desc[4] == desc[6] && desc[5] == desc[7]) {
        int t[9] = {1, desc[1], desc[2], desc[3], desc[6], desc[7], desc[8], desc[9], desc[10]};
        memcpy(d, t, sizeof t);
    } else {
        return false;
    }
    if (d[SP_M] < 0 || d[SP_N] < 0 || d[SP_MB] < 1 || d[SP_NB] < 1) return false;
    if (d[SP_RSRC] < 0 || d[SP_RSRC] >= c->nprow || d[SP_CSRC] < 0 || d[SP_CSRC] >= c->npcol)
        return false;
    int nprow, npcol, myrow, mycol;
    Cblacs_gridinfo(d[SP_CTXT], &nprow, &npcol, &myrow, &mycol);
    if (nprow != c->nprow || npcol != c->npcol || myrow != c->myrow || mycol != c->mycol)
        return false;
    return m >= 0 && n >= 0 && ia >= 1 && ja >= 1 && (long)ia - 1 + m <= d[SP_M] &&
           (long)ja - 1 + n <= d[SP_N];
}

sp_reason_t sp_wrap(sp_call_t *c, const sp_desc_t *desc, void *local, int ia, int ja, int m, int n,
                    dagr_darray_t **out) {
    const int *d = desc->d;
    if ((ia - 1) % d[SP_MB] != 0 || (ja - 1) % d[SP_NB] != 0) return SP_PASS_OFFSET;
    if (c->nops == SP_MAX_OPERANDS) return SP_PASS_CASE;
    dagr_darray_t *whole = NULL, *view = NULL;
    /* Checks LLD_ collectively: it is the one field that differs between processes. */
    if (dagr_darray_from_scalapack(c->ctx, c->dtype, d, local, &whole) != DAGR_OK)
        return SP_PASS_ARGS;
    if (dagr_darray_view(whole, ia - 1, ja - 1, m, n, &view) != DAGR_OK) {
        dagr_darray_destroy(&whole);
        return SP_PASS_ARGS;
    }
    c->whole[c->nops] = whole;
    c->view[c->nops++] = view;
    *out = view;
    return SP_NREASONS;
}

static void release(sp_call_t *c) {
    for (int i = c->nops - 1; i >= 0; i--) {
        dagr_darray_destroy(&c->view[i]);
        dagr_darray_destroy(&c->whole[i]);
    }
    c->nops = 0;
}

void sp_served(sp_call_t *c) {
    release(c);
    if (!counts_here(c)) return;
    pthread_mutex_lock(&lock);
    counts_of(c->routine, c->dtype)->served++;
    pthread_mutex_unlock(&lock);
}

void sp_pass(sp_call_t *c, sp_reason_t why, const char *detail) {
    release(c);
    if (counts_here(c)) count_pass(c->routine, c->dtype, why, detail);
}

static _Noreturn void fail(sp_call_t *c, const char *name, dagr_status_t st) {
    fprintf(stderr,
            "dagr-scalapack: %s failed in dagr (%s): %s; ScaLAPACK's interface has no "
            "way to report this, so the job stops\n",
            name, dagr_status_str(st), dagr_last_error());
    MPI_Abort(c->ctx ? dagr_comm(c->ctx) : MPI_COMM_WORLD, 1);
    abort();
}

void sp_check_insert(sp_call_t *c, const char *name, dagr_status_t st) {
    if (st != DAGR_OK) fail(c, name, st);
}

/* The 1-based column that a NOT_SPD or SINGULAR message names ("... global column 12 ..."). */
static int message_column(void) {
    const char *m = dagr_last_error(), *p = strstr(m, "global column ");
    return p ? (int)strtol(p + strlen("global column "), NULL, 10) : 1;
}

dagr_status_t sp_wait(sp_call_t *c, const char *name, int *column) {
    dagr_status_t st = dagr_wait_all(c->ctx);
    if (st == DAGR_ERR_NONFINITE) return DAGR_OK;
    if (st == DAGR_ERR_NOT_SPD || st == DAGR_ERR_SINGULAR) {
        if (column) *column = message_column();
        return st;
    }
    if (st != DAGR_OK) fail(c, name, st);
    return DAGR_OK;
}

void *sp_next(const char *name) {
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr,
                "dagr-scalapack: %s: there is no ScaLAPACK after libdagr-scalapack in "
                "the search order to pass this call to (link ScaLAPACK too)\n",
                name);
        MPI_Abort(MPI_COMM_WORLD, 1);
        abort();
    }
    return f;
}
