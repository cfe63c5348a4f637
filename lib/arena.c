/* The receive arena: a first-fit allocator over the part of this rank's MPI window that
 * other ranks Put tile data into. Free blocks are kept sorted by address and coalesced, so
 * the arena does not fragment under the usual tile workloads (many blocks of a few sizes).
 * It is shared by the communication thread (allocating landing buffers) and the workers
 * (freeing copies that became stale), hence the lock. */
#include "lib_impl.h"

#include <stddef.h>
#include <stdlib.h>

#define ARENA_ALIGN 64

struct arena_block {
    size_t off, size;
    arena_block_t *next;
};

static size_t round_up(size_t n) {
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

dagr_status_t arena_init(arena_t *a, void *base, size_t size) {
    a->base = base;
    a->size = size & ~(size_t)(ARENA_ALIGN - 1);
    a->used = 0;
    a->free_list = NULL;
    pthread_mutex_init(&a->lock, NULL);
    if (a->size == 0) return DAGR_OK;
    a->free_list = malloc(sizeof *a->free_list);
    DAGR_CHECK(a->free_list, DAGR_ERR_NOMEM, "cannot allocate the arena's free list");
    *a->free_list = (arena_block_t){.off = 0, .size = a->size, .next = NULL};
    return DAGR_OK;
}

void arena_fini(arena_t *a) {
    for (arena_block_t *b = a->free_list, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->free_list = NULL;
    pthread_mutex_destroy(&a->lock);
}

bool arena_contains(const arena_t *a, const void *p) {
    const char *c = p;
    return a->size > 0 && c >= a->base && c < a->base + a->size;
}

void *arena_alloc(arena_t *a, size_t bytes) {
    size_t need = round_up(bytes ? bytes : 1);
    void *out = NULL;
    pthread_mutex_lock(&a->lock);
    for (arena_block_t **pp = &a->free_list; *pp; pp = &(*pp)->next) {
        arena_block_t *b = *pp;
        if (b->size < need) continue;
        out = a->base + b->off;
        b->off += need;
        b->size -= need;
        if (b->size == 0) {
            *pp = b->next;
            free(b);
        }
        a->used += need;
        break;
    }
    pthread_mutex_unlock(&a->lock);
    return out;
}

void arena_free(arena_t *a, void *p, size_t bytes) {
    size_t off = (size_t)((char *)p - a->base), size = round_up(bytes ? bytes : 1);
    pthread_mutex_lock(&a->lock);
    a->used -= size;
    arena_block_t **pp = &a->free_list;
    while (*pp && (*pp)->off < off)
        pp = &(*pp)->next;
    arena_block_t *next = *pp;
    /* The previous block is the one whose next pointer is pp (or none at the head). */
    arena_block_t *prev = NULL;
    if (pp != &a->free_list) prev = (arena_block_t *)((char *)pp - offsetof(arena_block_t, next));
    if (prev && prev->off + prev->size == off) {
        prev->size += size;
        if (next && prev->off + prev->size == next->off) {
            prev->size += next->size;
            prev->next = next->next;
            free(next);
        }
    } else if (next && off + size == next->off) {
        next->off = off;
        next->size += size;
    } else {
        arena_block_t *b = malloc(sizeof *b);
        if (b) {
            *b = (arena_block_t){.off = off, .size = size, .next = next};
            *pp = b;
        } /* else: the block is lost to the arena; better than crashing in a free path */
    }
    pthread_mutex_unlock(&a->lock);
}
