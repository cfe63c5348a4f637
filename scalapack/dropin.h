/* libdagr-scalapack: ScaLAPACK's Fortran entry points (pdgemm_, pdpotrf_, ...) served by
 * dagr, for programs that were written for ScaLAPACK (README, "ScaLAPACK programs, unchanged").
 *
 * Each entry point checks what it can serve, wraps the caller's arrays as DArrays without
 * copying (dagr_darray_from_scalapack, then a view for the submatrix), runs dagr's routine,
 * waits, and returns ScaLAPACK's results. Anything else goes to the real ScaLAPACK, the next
 * definition of the symbol (dlsym RTLD_NEXT), with the caller's own arguments: invalid
 * arguments (so that ScaLAPACK reports them as it always did), empty problems, submatrices
 * that do not start on a block boundary, blocks dagr cannot pair, cases dagr does not
 * implement. Every decision to serve or pass on is made from arguments that ScaLAPACK
 * requires to be the same on every process of the grid, or agreed collectively, so the
 * processes of one call always take the same path.
 *
 * One dagr context per set of processes that a BLACS grid spans, made at the first call on
 * such a grid (collective over the grid only: other processes of the job do not call) and
 * ended by MPI_Finalize, in the order they were made. dagr calls MPI from its own threads, so
 * MPI must run at MPI_THREAD_MULTIPLE: the library defines MPI_Init and MPI_Init_thread, which
 * ask for it whatever the program asked for, and MPI_Finalize, which ends the contexts first
 * (runtime.c). Internal to scalapack/. */
#ifndef DAGR_DROPIN_H
#define DAGR_DROPIN_H

#include <dagr/dagr.h>

#include <stdbool.h>
#include <stddef.h>

#define SP_EXPORT __attribute__((visibility("default")))

/* The routines, in the order of the DAGR_VERBOSE report. */
typedef enum sp_routine {
    SP_GEMM,
    SP_SYRK,
    SP_SYMM,
    SP_TRSM,
    SP_TRMM,
    SP_POTRF,
    SP_POTRS,
    SP_POSV,
    SP_GETRF,
    SP_GETRS,
    SP_GESV,
    SP_GEQRF,
    SP_ORMQR,
    SP_GELS,
    SP_NROUTINES
} sp_routine_t;

/* Why a call went to ScaLAPACK. */
typedef enum sp_reason {
    SP_PASS_ARGS,    /* arguments ScaLAPACK rejects: it reports them */
    SP_PASS_EMPTY,   /* nothing to compute */
    SP_PASS_QUERY,   /* a workspace query (LWORK = -1) */
    SP_PASS_OFFSET,  /* a submatrix not starting on a block boundary */
    SP_PASS_TILES,   /* blocks dagr cannot pair (dagr's message says which) */
    SP_PASS_CASE,    /* a case dagr does not implement */
    SP_PASS_THREADS, /* MPI is not at MPI_THREAD_MULTIPLE */
    SP_PASS_INIT,    /* dagr could not start on the grid */
    SP_NREASONS
} sp_reason_t;

enum { SP_MAX_OPERANDS = 3 };

/* One call, from sp_begin to sp_served or sp_pass. */
typedef struct sp_call {
    sp_routine_t routine;
    dagr_dtype_t dtype;
    dagr_ctx_t *ctx; /* the grid's context */
    int nprow, npcol, myrow, mycol;
    int nops;
    dagr_darray_t *whole[SP_MAX_OPERANDS], *view[SP_MAX_OPERANDS];
} sp_call_t;

/* Descriptor fields (ScaLAPACK's DTYPE_, CTXT_, ... minus one). */
enum { SP_DTYPE, SP_CTXT, SP_M, SP_N, SP_MB, SP_NB, SP_RSRC, SP_CSRC, SP_LLD };

/* Starts a call of routine r on the BLACS grid ctxt. Returns false when it must go to
 * ScaLAPACK: this process is not in the grid (ScaLAPACK returns at once), MPI is not at
 * MPI_THREAD_MULTIPLE, or dagr could not start on the grid (the reason is counted). At the
 * first call on a set of processes, collective over the grid: makes its context. */
bool sp_begin(sp_call_t *c, sp_routine_t r, dagr_dtype_t dtype, int ctxt);

/* A descriptor as ScaLAPACK's type-1 fields (DTYPE_ 1, CTXT_, M_, N_, MB_, NB_, RSRC_, CSRC_,
 * LLD_). PBLAS also takes type 2 (DTYPE_ 2, CTXT_, M_, N_, IMB_, INB_, MB_, NB_, RSRC_, CSRC_,
 * LLD_: a first block of its own size); one whose first block is a whole block is the same
 * array. */
typedef struct sp_desc {
    int d[9];
} sp_desc_t;

/* Checks, from arguments that are the same on every process of the grid, that desc is a
 * descriptor this call can wrap (type 1, or type 2 with IMB_ = MB_ and INB_ = NB_), on the grid
 * of the call, with sizes and blocks in range and the m x n submatrix at (ia, ja) (1-based)
 * inside the array, and gives its type-1 form. Local. */
bool sp_desc_ok(const sp_call_t *c, const int *desc, int ia, int ja, int m, int n, sp_desc_t *out);

/* Wraps the m x n submatrix at (ia, ja) of the array (desc, local) as *out (owned by the
 * call). Returns the reason to pass the call on (OFFSET: not on a block boundary, ARGS: a
 * descriptor ScaLAPACK would reject, found collectively), or SP_NREASONS when wrapped.
 * Collective over the grid. */
sp_reason_t sp_wrap(sp_call_t *c, const sp_desc_t *desc, void *local, int ia, int ja, int m, int n,
                    dagr_darray_t **out);

/* Ends a call that dagr served: releases the wrappers and counts it. */
void sp_served(sp_call_t *c);
/* Ends a call that goes to ScaLAPACK: releases the wrappers (nothing was inserted on them)
 * and counts the reason; detail (may be NULL) is kept for the report. */
void sp_pass(sp_call_t *c, sp_reason_t why, const char *detail);
/* Counts a call that goes to ScaLAPACK before sp_begin (arguments, empty problems): only
 * grid process (0, 0) of ctxt counts, as for every call. */
void sp_pass_early(sp_routine_t r, dagr_dtype_t dtype, int ctxt, sp_reason_t why);

/* Waits for the call's tasks. DAGR_OK, DAGR_ERR_NOT_SPD and DAGR_ERR_SINGULAR are returned
 * (with *column the 1-based column dagr's message names, LAPACK's info); DAGR_ERR_NONFINITE
 * is DAGR_OK (ScaLAPACK returns NaN and Inf without a word). Any other failure cannot be told
 * through ScaLAPACK's interface: the message goes to stderr and the job is aborted. */
dagr_status_t sp_wait(sp_call_t *c, const char *name, int *column);
/* The same for a status returned by an inserting call after some tasks may have gone in:
 * DAGR_OK goes on; anything else is reported and aborts. */
void sp_check_insert(sp_call_t *c, const char *name, dagr_status_t st);

/* The real ScaLAPACK's `name`. Aborts with a message when there is none (no ScaLAPACK
 * after this library in the search order). */
void *sp_next(const char *name);

/* Upper-case first character of a Fortran character argument. */
static inline char sp_char(const char *s) {
    char c = s ? s[0] : 0;
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* A scalar argument (alpha, beta) as a double. */
static inline double sp_scalar(dagr_dtype_t dt, const void *p) {
    return dt == DAGR_DOUBLE ? *(const double *)p : (double)*(const float *)p;
}

#endif
