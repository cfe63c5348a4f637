/* The task graph as Graphviz DOT (DAGR_DOT=path), written by rank 0 at finalize.
 *
 * Tasks are boxes labelled by kernel and insertion number, filled with their rank's colour;
 * a transfer is a SEND on the rank holding the data and a RECV on the rank reading it, joined
 * by a dashed red edge labelled with the bytes. Solid edges are the local dependencies each
 * rank inferred. Past max_nodes nodes only the first ones in insertion order are drawn, with a
 * comment and a note node saying how much was left out: a graph of a million nodes is a file
 * no one can render. */
#include "lib_impl.h"

#include <inttypes.h>
#include <stdlib.h>

static const char *const palette[] = {"#8dd3c7", "#ffffb3", "#bebada", "#fb8072",
                                      "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                                      "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"};
#define NCOLOURS (sizeof palette / sizeof palette[0])

static const trace_graph_t *sort_graph; /* qsort has no context argument */

static int by_insertion(const void *pa, const void *pb) {
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    const trace_gnode_t *x = &sort_graph->nodes[a], *y = &sort_graph->nodes[b];
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return (a > b) - (a < b);
}

static void dot_label(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
}

bool dot_write(FILE *f, const trace_graph_t *g, size_t max_nodes) {
    size_t ntask = 0;
    for (size_t i = 0; i < g->n; i++)
        ntask += g->nodes[i].kind == NODE_TASK;
    fprintf(f,
            "// dagr task graph: %zu nodes (%zu tasks, %zu transfer ends) on %d ranks, %zu "
            "edges (%zu cross-rank)\n",
            g->n, ntask, g->n - ntask, g->nranks, g->nedges, g->ncross);
    if (g->truncated)
        fprintf(f, "// dagr: the recorded graph was cut short (DAGR_TRACE_EVENTS per rank)\n");
    bool *shown = calloc(g->n ? g->n : 1, sizeof *shown);
    if (!shown) return false;
    size_t nshown = g->n;
    if (g->n > max_nodes) {
        size_t *order = malloc(g->n * sizeof *order);
        if (!order) {
            free(shown);
            return false;
        }
        for (size_t i = 0; i < g->n; i++)
            order[i] = i;
        sort_graph = g;
        qsort(order, g->n, sizeof *order, by_insertion);
        for (size_t i = 0; i < max_nodes; i++)
            shown[order[i]] = true;
        free(order);
        nshown = max_nodes;
        fprintf(f,
                "// dagr: the graph has %zu nodes, more than the limit of %zu: only the first "
                "%zu in insertion order are drawn, the rest are summarised in the node "
                "\"more\"\n",
                g->n, max_nodes, max_nodes);
    } else {
        for (size_t i = 0; i < g->n; i++)
            shown[i] = true;
    }
    fprintf(f,
            "digraph dagr {\n  graph [rankdir=TB, label=\"dagr task graph: %d ranks; fill "
            "colour = rank",
            g->nranks);
    for (int r = 0; r < g->nranks && r < (int)NCOLOURS; r++)
        fprintf(f, "%s%d %s", r ? ", " : " (", r, palette[r]);
    fprintf(f,
            "%s\", fontname=\"Helvetica\"];\n"
            "  node [style=filled, fontname=\"Helvetica\", fontsize=10];\n",
            g->nranks ? ")" : "");
    for (size_t i = 0; i < g->n; i++) {
        if (!shown[i]) continue;
        const trace_gnode_t *x = &g->nodes[i];
        int r = g->rank_of[i];
        const char *colour = palette[(size_t)r % NCOLOURS];
        if (x->kind == NODE_TASK) {
            fprintf(f, "  n%zu [shape=box, fillcolor=\"%s\", label=\"", i, colour);
            dot_label(f, x->kernel < g->nkernels ? g->kernel_names[x->kernel] : "(kernel)");
            fprintf(f, "\\n#%" PRIu64 " rank %d\"];\n", x->seq, r);
        } else {
            fprintf(f,
                    "  n%zu [shape=cds, fontsize=8, fillcolor=\"%s\", label=\"%s d%" PRIu64
                    " v%" PRIu64 "\\n%s rank %d\"];\n",
                    i, colour, x->kind == NODE_SEND ? "send" : "recv", x->hid, x->ver,
                    x->kind == NODE_SEND ? "to" : "from", x->peer);
        }
    }
    size_t hidden_edges = 0;
    for (size_t e = 0; e < g->nedges; e++) {
        uint64_t a = g->edges[e][0], b = g->edges[e][1];
        if (!shown[a] || !shown[b]) {
            hidden_edges++;
            continue;
        }
        if (e >= g->nedges - g->ncross)
            fprintf(f,
                    "  n%" PRIu64 " -> n%" PRIu64 " [style=dashed, color=\"#c03030\", "
                    "label=\"%" PRIu64 " B\", fontsize=8];\n",
                    a, b, g->nodes[a].bytes);
        else
            fprintf(f, "  n%" PRIu64 " -> n%" PRIu64 ";\n", a, b);
    }
    if (nshown < g->n)
        fprintf(f,
                "  more [shape=note, fillcolor=\"#ffffff\", label=\"... %zu more nodes and %zu "
                "more edges not drawn (limit %zu nodes)\"];\n",
                g->n - nshown, hidden_edges, max_nodes);
    fputs("}\n", f);
    free(shown);
    return !ferror(f);
}
