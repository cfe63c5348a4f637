/* Stop signals across ranks (dagr_stop_requested).
 *
 * Usage: stop RANK STEP SIGNAL
 *
 * Every rank runs steps of a small computation (each step updates one 8-byte handle per
 * rank from its neighbour's) and asks dagr_stop_requested after each. Rank RANK sends itself
 * SIGNAL (a name: USR1, TERM) with kill() at step STEP, while that step's tasks run. Every
 * rank must see the request first after step STEP + 1 (the answer lags one call), the same
 * step on all, and none before; the handles must then hold what STEP + 2 steps compute. Runs with
 * DAGR_STOP_SIGNALS=USR1,TERM (set by the test).
 *
 * Prints RANK r RESULT stop ok|FAIL steps=N */
#include "scenario.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STEPS 200

static dagr_task_result_t step_body(const dagr_task_view_t *t) {
    uint64_t *x = t->buf[0];
    *x = *x * 3 + (t->nbuf > 1 ? *(const uint64_t *)t->buf[1] : 0) + 1;
    return DAGR_TASK_DONE;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: stop RANK STEP SIGNAL\n");
        return 2;
    }
    int who = atoi(argv[1]), at = atoi(argv[2]);
    int sig = !strcmp(argv[3], "TERM") ? SIGTERM : !strcmp(argv[3], "USR1") ? SIGUSR1 : 0;
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int rank = dagr_rank(ctx), n = dagr_size(ctx);
    sc_set_rank(rank);
    SC_CHECK(sig, "unknown signal %s", argv[3]);

    dagr_data_t *h[64];
    SC_CHECK(n <= 64, "too many ranks");
    for (int r = 0; r < n; r++)
        SC_TRY(dagr_data_create(ctx, sizeof(uint64_t), r, &h[r]));
    const dagr_kernel_t k = {.name = "step", .cpu = step_body};
    uint64_t want[64] = {0}; /* the serial replay: the tasks run in insertion order */
    int stopped = -1;
    for (int step = 0; step < MAX_STEPS; step++) {
        for (int r = 0; r < n; r++) {
            dagr_access_t acc[2] = {{h[r], DAGR_RW}, {h[(r + 1) % n], DAGR_READ}};
            SC_TRY(dagr_spawn(ctx, &k, NULL, 0, n > 1 ? 2 : 1, acc, NULL));
            want[r] = want[r] * 3 + (n > 1 ? want[(r + 1) % n] : 0) + 1;
        }
        if (rank == who && step == at && sig) kill(getpid(), sig);
        if (dagr_stop_requested(ctx)) {
            stopped = step;
            break;
        }
    }
    /* The answer lags one call (dagr/runtime.h): the signal came before the call of step at. */
    SC_CHECK(stopped == at + 1, "stopped after step %d, the signal came at step %d", stopped, at);
    for (int r = 0; r < n; r++) {
        uint64_t got = 0;
        SC_TRY(dagr_fetch(h[r], &got, -1));
        SC_CHECK(got == want[r], "handle %d holds %llu, want %llu", r, (unsigned long long)got,
                 (unsigned long long)want[r]);
    }
    sc_result("stop", sc_failures() == 0, "steps=%d", stopped + 1);
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
