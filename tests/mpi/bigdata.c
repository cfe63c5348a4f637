/* Large-handle scenario: data of several MiB (and odd sizes) moving between ranks.
 *
 * Usage: bigdata [ROUNDS]
 *
 * Handles of 1 MiB, 3 MiB + 5 bytes and 64 KiB - 1 byte, owned by different ranks. In each
 * round a task on rank (round % size) rewrites every handle from its previous contents (RW),
 * a task on the next rank checks every byte of what it reads against the expected pattern and
 * records the result in a small handle it owns, and a reader on every rank sums a handle.
 * The program keeps the expected contents; after the rounds every handle is fetched to every
 * rank and compared, and the attached one is compared on its owner.
 * Prints RANK r RESULT bigdata ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB 3
static const size_t big_bytes[NB] = {1u << 20, 3u * (1u << 20) + 5, (1u << 16) - 1};

/* Round r's contents of handle k: byte j = f(k, r, j). */
static unsigned char pattern(int k, int r, size_t j) {
    return (unsigned char)((j * 131u + (size_t)k * 17u + (size_t)r * 29u + (j >> 9)) & 0xffu);
}

typedef struct targs {
    int32_t round;
    int32_t k[NB];
} targs_t;

/* RW on every handle: contents of round r-1 become those of round r (checked as it goes). */
static dagr_task_result_t k_step(const dagr_task_view_t *t) {
    targs_t a;
    memcpy(&a, t->args, sizeof a);
    long bad = 0;
    for (int i = 0; i < t->nbuf; i++) {
        unsigned char *p = t->buf[i];
        for (size_t j = 0; j < t->bytes[i]; j++) {
            if (a.round > 0 && p[j] != pattern(a.k[i], a.round - 1, j)) bad++;
            p[j] = pattern(a.k[i], a.round, j);
        }
    }
    if (bad) {
        dagr_task_fail(t, DAGR_ERR_NUMERICAL, "round %d: %ld bytes were not round %d's", a.round,
                       bad, a.round - 1);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

/* READ every big handle, WRITE the count of wrong bytes into the last access (8 bytes). */
static dagr_task_result_t k_check(const dagr_task_view_t *t) {
    targs_t a;
    memcpy(&a, t->args, sizeof a);
    uint64_t bad = 0;
    for (int i = 0; i < t->nbuf - 1; i++) {
        const unsigned char *p = t->buf[i];
        for (size_t j = 0; j < t->bytes[i]; j++)
            bad += p[j] != pattern(a.k[i], a.round, j);
    }
    memcpy(t->buf[t->nbuf - 1], &bad, 8);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_STEP = {.name = "big_step", .cpu = k_step};
static const dagr_kernel_t K_CHECK = {.name = "big_check", .cpu = k_check};

#define MAXROUNDS 16

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 6;
    if (rounds > MAXROUNDS) rounds = MAXROUNDS;
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);

    dagr_data_t *h[NB], *bad[MAXROUNDS];
    unsigned char *attached = NULL;
    const int att_owner = (1 % size);
    for (int k = 0; k < NB; k++) {
        int owner = (k + 1) % size;
        if (k == 1) {
            if (rank == att_owner) attached = calloc(1, big_bytes[k]);
            SC_TRY(dagr_data_attach(ctx, attached, big_bytes[k], att_owner, &h[k]));
        } else {
            SC_TRY(dagr_data_create(ctx, big_bytes[k], owner, &h[k]));
        }
    }
    targs_t a = {.round = 0, .k = {0, 1, 2}};
    for (int r = 0; r < rounds; r++) {
        a.round = r;
        dagr_access_t acc[NB + 1];
        for (int k = 0; k < NB; k++)
            acc[k] = (dagr_access_t){h[k], DAGR_RW};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = r % size;
        SC_TRY(dagr_spawn(ctx, &K_STEP, &a, sizeof a, NB, acc, &o));
        int checker = (r + 1) % size;
        SC_TRY(dagr_data_create(ctx, 8, checker, &bad[r]));
        for (int k = 0; k < NB; k++)
            acc[k].mode = DAGR_READ;
        acc[NB] = (dagr_access_t){bad[r], DAGR_WRITE};
        SC_TRY(dagr_spawn(ctx, &K_CHECK, &a, sizeof a, NB + 1, acc, NULL));
    }
    dagr_status_t st = dagr_wait_all(ctx);
    int ok = SC_EXPECT_STATUS(st, DAGR_OK);
    for (int r = 0; r < rounds; r++) {
        uint64_t b = 99;
        ok &= SC_EXPECT_STATUS(dagr_fetch(bad[r], &b, -1), DAGR_OK);
        ok &= SC_CHECK(b == 0, "round %d: the checker on rank %d saw %llu wrong bytes", r,
                       (r + 1) % size, (unsigned long long)b);
    }
    for (int k = 0; k < NB; k++) {
        unsigned char *dst = malloc(big_bytes[k]);
        memset(dst, 0xEE, big_bytes[k]);
        ok &= SC_EXPECT_STATUS(dagr_fetch(h[k], dst, -1), DAGR_OK);
        size_t wrong = 0;
        for (size_t j = 0; j < big_bytes[k]; j++)
            wrong += dst[j] != pattern(k, rounds - 1, j);
        ok &= SC_CHECK(wrong == 0, "handle %d (%zu bytes): %zu bytes differ after fetch", k,
                       big_bytes[k], wrong);
        free(dst);
    }
    if (attached) {
        size_t wrong = 0;
        for (size_t j = 0; j < big_bytes[1]; j++)
            wrong += attached[j] != pattern(1, rounds - 1, j);
        ok &= SC_CHECK(wrong == 0, "attached buffer: %zu bytes differ", wrong);
    }
    sc_result("bigdata", ok, "size=%d rounds=%d status=%s", size, rounds, dagr_status_str(st));
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    free(attached);
    return sc_exit_code();
}
