/* index.c - HNSW construction and search, keys, payloads, tombstones.
 *
 * The algorithm is the paper's (Malkov & Yashunin, 2016/2018) with the
 * "heuristic" neighbour selection (a candidate is kept only if it is nearer
 * to the new node than to every neighbour already kept), as hnswlib does it.
 * Construction with several threads takes a mutex per element only around
 * reading or rewriting that element's link list (never two at once, so no
 * lock order to keep), and one global mutex for the entry point.
 * Levels for a batch are drawn before the threads start, in item order.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "index/index_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define PREFETCH(p) __builtin_prefetch(p)
#endif

void ech_index_params_default(ech_index_params *p)
{
    *p = (ech_index_params){.metric = ECH_METRIC_COSINE, .M = 16, .ef_construction = 200, .ef_search = 64,
                            .seed = 100};
}

void ech_index_layout(ech_index *idx)
{
    idx->M0 = 2 * idx->p.M;
    idx->vec_off = 4 + 4 * (size_t)idx->M0;
    idx->block = idx->vec_off + 4 * (size_t)idx->p.dim;
    idx->dist = ech_dist_for(idx->p.metric);
}

ech_status ech_index_check_params(const ech_index_params *p, ech_error *err)
{
    if (!ech_metric_name(p->metric))
        return ech_error_set(err, ECH_ERR_INVALID, "unknown metric %d", (int)p->metric);
    if (p->dim < 1 || p->dim > ECH_INDEX_MAX_DIM)
        return ech_error_set(err, ECH_ERR_INVALID, "dimension %u is out of range (1..%u)", p->dim,
                             ECH_INDEX_MAX_DIM);
    if (p->M < 2 || p->M > ECH_INDEX_MAX_M)
        return ech_error_set(err, ECH_ERR_INVALID, "M %u is out of range (2..%u)", p->M, ECH_INDEX_MAX_M);
    if (p->ef_construction < 1 || p->ef_construction > ECH_INDEX_MAX_EF || p->ef_search < 1 ||
        p->ef_search > ECH_INDEX_MAX_EF)
        return ech_error_set(err, ECH_ERR_INVALID, "ef %u/%u is out of range (1..%u)", p->ef_construction,
                             p->ef_search, ECH_INDEX_MAX_EF);
    return ECH_OK;
}

ech_status ech_index_new(const ech_index_params *p, ech_index **out, ech_error *err)
{
    *out = NULL;
    ech_status st = ech_index_check_params(p, err);
    if (st)
        return st;
    ech_index *idx = calloc(1, sizeof *idx);
    uint32_t *off = calloc(1, sizeof *off);
    if (!idx || !off) {
        free(idx);
        free(off);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    idx->p = *p;
    ech_index_layout(idx);
    idx->upper_off = off;
    idx->entry = ECH_NO_ELEM;
    idx->max_level = -1;
    idx->rng = p->seed ^ 0x9E3779B97F4A7C15ull;
    pthread_mutex_init(&idx->global, NULL);
    *out = idx;
    return ECH_OK;
}

static void free_arrays(ech_index *idx)
{
    if (idx->mapped) {
        ech_mapfile_close(&idx->map);
    } else {
        free(idx->level0);
        free(idx->upper_off);
        free(idx->upper);
        free(idx->keys);
        free(idx->key_off);
        free(idx->key_blob);
        free(idx->pay_off);
        free(idx->pay_blob);
    }
}

void ech_index_free(ech_index *idx)
{
    if (!idx)
        return;
    free_arrays(idx);
    free(idx->tab);
    free(idx->locks);
    pthread_mutex_destroy(&idx->global);
    free(idx);
}

/* ---- growth -------------------------------------------------------------- */

static void *aligned_block(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64))
        return NULL;
    return p;
}

/* Make the index own all of its arrays, with room for `cap` elements. */
static ech_status reserve(ech_index *idx, size_t cap, size_t upper_words, size_t key_bytes, size_t pay_bytes)
{
    size_t n = idx->n;
    if (cap < n)
        cap = n;
    if (idx->mapped || cap > idx->cap) {
        if (cap > SIZE_MAX / idx->block)
            return ECH_ERR_NOMEM;
        uint8_t *l0 = aligned_block(cap * idx->block);
        uint32_t *off = malloc((cap + 1) * sizeof *off);
        if (!l0 || !off) {
            free(l0);
            free(off);
            return ECH_ERR_NOMEM;
        }
        if (n)
            memcpy(l0, idx->level0, n * idx->block);
        memcpy(off, idx->upper_off, (n + 1) * sizeof *off);
        uint64_t *keys = NULL, *key_off = NULL, *pay_off = NULL;
        int fail = 0;
        if (idx->key_kind == ECH_KEY_U64 || idx->key_kind == ECH_KEY_NONE) {
            keys = malloc(cap ? cap * sizeof *keys : 8);
            fail |= !keys;
            if (keys)
                for (size_t i = 0; i < n; i++)
                    keys[i] = idx->keys ? idx->keys[i] : i;
        }
        key_off = malloc((cap + 1) * sizeof *key_off);
        pay_off = malloc((cap + 1) * sizeof *pay_off);
        fail |= !key_off || !pay_off;
        if (fail) {
            free(l0), free(off), free(keys), free(key_off), free(pay_off);
            return ECH_ERR_NOMEM;
        }
        if (idx->key_off)
            memcpy(key_off, idx->key_off, (n + 1) * sizeof *key_off);
        else
            memset(key_off, 0, (n + 1) * sizeof *key_off);
        if (idx->pay_off)
            memcpy(pay_off, idx->pay_off, (n + 1) * sizeof *pay_off);
        else
            memset(pay_off, 0, (n + 1) * sizeof *pay_off);
        if (idx->mapped) {
            /* copy the blobs too, then drop the mapping */
            size_t uw = idx->upper_off[n], kb = idx->key_off ? idx->key_off[n] : 0,
                   pb = idx->pay_off ? idx->pay_off[n] : 0;
            uint32_t *up = malloc(uw ? uw * 4 : 4);
            char *kblob = malloc(kb + 1), *pblob = malloc(pb + 1);
            if (!up || !kblob || !pblob) {
                free(l0), free(off), free(keys), free(key_off), free(pay_off), free(up), free(kblob),
                    free(pblob);
                return ECH_ERR_NOMEM;
            }
            if (uw)
                memcpy(up, idx->upper, uw * 4);
            if (kb)
                memcpy(kblob, idx->key_blob, kb);
            if (pb)
                memcpy(pblob, idx->pay_blob, pb);
            ech_mapfile_close(&idx->map);
            idx->mapped = 0;
            idx->upper = up, idx->upper_cap = uw;
            idx->key_blob = kblob, idx->key_blob_cap = kb;
            idx->pay_blob = pblob, idx->pay_blob_cap = pb;
            idx->level0 = NULL, idx->upper_off = NULL, idx->keys = NULL, idx->key_off = NULL, idx->pay_off = NULL;
        }
        free(idx->level0), free(idx->upper_off), free(idx->keys), free(idx->key_off), free(idx->pay_off);
        idx->level0 = l0, idx->upper_off = off, idx->keys = keys, idx->key_off = key_off, idx->pay_off = pay_off;
        idx->cap = cap;
        free(idx->locks);
        idx->locks = NULL;
    }
    size_t uw = idx->upper_off[n] + upper_words;
    if (uw > idx->upper_cap) {
        uint32_t *up = realloc(idx->upper, uw * 4);
        if (!up)
            return ECH_ERR_NOMEM;
        idx->upper = up, idx->upper_cap = uw;
    }
    size_t kb = idx->key_off[n] + key_bytes;
    if (kb > idx->key_blob_cap || !idx->key_blob) {
        char *p = realloc(idx->key_blob, kb + 1);
        if (!p)
            return ECH_ERR_NOMEM;
        idx->key_blob = p, idx->key_blob_cap = kb;
    }
    size_t pb = idx->pay_off[n] + pay_bytes;
    if (pb > idx->pay_blob_cap || !idx->pay_blob) {
        char *p = realloc(idx->pay_blob, pb + 1);
        if (!p)
            return ECH_ERR_NOMEM;
        idx->pay_blob = p, idx->pay_blob_cap = pb;
    }
    return ECH_OK;
}

/* ---- keys -------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t key_hash(const ech_index_key *k)
{
    if (k->kind == ECH_KEY_U64)
        return mix64(k->num);
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < k->len; i++)
        h = (h ^ (unsigned char)k->str[i]) * 0x100000001B3ull;
    return mix64(h);
}

static int key_eq(const ech_index_key *a, const ech_index_key *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind == ECH_KEY_U64)
        return a->num == b->num;
    return a->len == b->len && (a->len == 0 || memcmp(a->str, b->str, a->len) == 0);
}

void ech_index_key_at(const ech_index *idx, uint32_t elem, ech_index_key *key)
{
    *key = (ech_index_key){.kind = idx->key_kind};
    if (idx->key_kind == ECH_KEY_STRING) {
        key->str = idx->key_blob + idx->key_off[elem];
        key->len = (size_t)(idx->key_off[elem + 1] - idx->key_off[elem]);
    } else {
        key->kind = ECH_KEY_U64;
        key->num = idx->keys ? idx->keys[elem] : elem;
    }
}

/* Open addressing with linear probing over element numbers (ECH_NO_ELEM:
 * empty); capacity a power of two, at most half full. */
static uint32_t *tab_slot(const ech_index *idx, const ech_index_key *k)
{
    size_t mask = idx->tab_cap - 1;
    for (size_t i = (size_t)key_hash(k) & mask;; i = (i + 1) & mask) {
        if (idx->tab[i] == ECH_NO_ELEM)
            return &idx->tab[i];
        ech_index_key other;
        ech_index_key_at((ech_index *)idx, idx->tab[i], &other);
        if (key_eq(k, &other))
            return &idx->tab[i];
    }
}

static ech_status tab_ensure(ech_index *idx, size_t want)
{
    if (idx->tab_valid && (want + 1) * 2 <= idx->tab_cap)
        return ECH_OK;
    size_t cap = 16;
    while (cap < (want + 1) * 2)
        cap *= 2;
    uint32_t *t = malloc(cap * sizeof *t);
    if (!t)
        return ECH_ERR_NOMEM;
    memset(t, 0xFF, cap * sizeof *t);
    free(idx->tab);
    idx->tab = t, idx->tab_cap = cap, idx->tab_used = 0, idx->tab_valid = 1;
    for (size_t i = 0; i < idx->n; i++) {
        if (ech_idx_links0(idx, (uint32_t)i)[0] & ECH_HEAD_DELETED)
            continue;
        ech_index_key k;
        ech_index_key_at(idx, (uint32_t)i, &k);
        *tab_slot(idx, &k) = (uint32_t)i;  /* a later duplicate (hostile file) wins */
        idx->tab_used++;
    }
    return ECH_OK;
}

static void tab_remove(ech_index *idx, uint32_t *slot)
{
    size_t mask = idx->tab_cap - 1, i = (size_t)(slot - idx->tab);
    idx->tab[i] = ECH_NO_ELEM;
    idx->tab_used--;
    /* backward-shift: move later entries of the cluster into the hole */
    for (size_t j = (i + 1) & mask; idx->tab[j] != ECH_NO_ELEM; j = (j + 1) & mask) {
        ech_index_key k;
        ech_index_key_at(idx, idx->tab[j], &k);
        size_t home = (size_t)key_hash(&k) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            idx->tab[i] = idx->tab[j];
            idx->tab[j] = ECH_NO_ELEM;
            i = j;
        }
    }
}

int64_t ech_index_find(ech_index *idx, const ech_index_key *key)
{
    if (key->kind != idx->key_kind || tab_ensure(idx, idx->n - idx->n_deleted))
        return -1;
    uint32_t e = *tab_slot(idx, key);
    return e == ECH_NO_ELEM ? -1 : (int64_t)e;
}

/* ---- accessors ------------------------------------------------------------- */

void ech_index_get_params(const ech_index *idx, ech_index_params *p) { *p = idx->p; }
void ech_index_set_ef_search(ech_index *idx, uint32_t ef)
{
    if (ef >= 1 && ef <= ECH_INDEX_MAX_EF)
        idx->p.ef_search = ef;
}
size_t ech_index_size(const ech_index *idx) { return idx->n; }
size_t ech_index_live(const ech_index *idx) { return idx->n - idx->n_deleted; }
ech_key_kind ech_index_key_kind(const ech_index *idx) { return idx->key_kind; }
int ech_index_max_level(const ech_index *idx) { return idx->max_level; }
const float *ech_index_vector(const ech_index *idx, uint32_t elem) { return ech_idx_vec(idx, elem); }
int ech_index_is_deleted(const ech_index *idx, uint32_t elem)
{
    return (ech_idx_links0(idx, elem)[0] & ECH_HEAD_DELETED) != 0;
}

const char *ech_index_payload(const ech_index *idx, uint32_t elem, size_t *len)
{
    if (!idx->pay_off) {
        *len = 0;
        return NULL;
    }
    size_t a = (size_t)idx->pay_off[elem], b = (size_t)idx->pay_off[elem + 1];
    *len = b - a;
    return b > a ? idx->pay_blob + a : NULL;
}

/* ---- search scratch ------------------------------------------------------ */

typedef struct cand {
    float d;
    uint32_t id;
} cand;

struct ech_index_searcher {
    const ech_index *idx;
    size_t n;
    uint16_t *visited;
    uint16_t epoch;
    cand *res, *cq;          /* max-heap of results, min-heap of candidates */
    size_t nres, ncq, res_cap, cq_cap;
    float *qbuf;
    uint32_t *nbuf;          /* a copied link list (construction) */
    cand *sel;               /* heuristic scratch */
    size_t sel_cap;
    uint64_t ndist;
};

static void res_push(ech_index_searcher *s, float d, uint32_t id)
{
    size_t i = s->nres++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->res[p].d >= d)
            break;
        s->res[i] = s->res[p];
        i = p;
    }
    s->res[i] = (cand){d, id};
}

static void res_pop(ech_index_searcher *s)
{
    cand last = s->res[--s->nres];
    size_t i = 0, n = s->nres;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && s->res[c + 1].d > s->res[c].d)
            c++;
        if (s->res[c].d <= last.d)
            break;
        s->res[i] = s->res[c];
        i = c;
    }
    if (n)
        s->res[i] = last;
}

static int cq_push(ech_index_searcher *s, float d, uint32_t id)
{
    if (s->ncq == s->cq_cap) {
        size_t cap = s->cq_cap * 2;
        cand *p = realloc(s->cq, cap * sizeof *p);
        if (!p)
            return -1;
        s->cq = p, s->cq_cap = cap;
    }
    size_t i = s->ncq++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->cq[p].d <= d)
            break;
        s->cq[i] = s->cq[p];
        i = p;
    }
    s->cq[i] = (cand){d, id};
    return 0;
}

static cand cq_pop(ech_index_searcher *s)
{
    cand top = s->cq[0], last = s->cq[--s->ncq];
    size_t i = 0, n = s->ncq;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && s->cq[c + 1].d < s->cq[c].d)
            c++;
        if (s->cq[c].d >= last.d)
            break;
        s->cq[i] = s->cq[c];
        i = c;
    }
    if (n)
        s->cq[i] = last;
    return top;
}

static void searcher_free(ech_index_searcher *s)
{
    if (!s)
        return;
    free(s->visited);
    free(s->res);
    free(s->cq);
    free(s->qbuf);
    free(s->nbuf);
    free(s->sel);
    free(s);
}

static ech_index_searcher *searcher_make(const ech_index *idx, size_t n, size_t ef)
{
    ech_index_searcher *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->idx = idx;
    s->n = n;
    s->visited = calloc(n ? n : 1, sizeof *s->visited);
    s->res_cap = ef + 2;
    s->res = malloc(s->res_cap * sizeof *s->res);
    s->cq_cap = 2 * ef + 64;
    s->cq = malloc(s->cq_cap * sizeof *s->cq);
    s->qbuf = malloc((size_t)idx->p.dim * sizeof *s->qbuf);
    s->nbuf = malloc(((size_t)idx->M0 + 1) * sizeof *s->nbuf);
    s->sel_cap = ef + (size_t)idx->M0 + 2;
    s->sel = malloc(s->sel_cap * sizeof *s->sel);
    if (!s->visited || !s->res || !s->cq || !s->qbuf || !s->nbuf || !s->sel) {
        searcher_free(s);
        return NULL;
    }
    return s;
}

static int searcher_fit(ech_index_searcher *s, size_t ef)
{
    if (ef + 2 > s->res_cap) {
        cand *r = realloc(s->res, (ef + 2) * sizeof *r);
        if (!r)
            return -1;
        s->res = r, s->res_cap = ef + 2;
    }
    size_t sc = ef + (size_t)s->idx->M0 + 2;
    if (sc > s->sel_cap) {
        cand *p = realloc(s->sel, sc * sizeof *p);
        if (!p)
            return -1;
        s->sel = p, s->sel_cap = sc;
    }
    return 0;
}

static void new_epoch(ech_index_searcher *s)
{
    if (++s->epoch == 0) {
        memset(s->visited, 0, s->n * sizeof *s->visited);
        s->epoch = 1;
    }
}

/* ---- the graph walk ------------------------------------------------------ */

/* Greedy descent from `ep` through levels top..stop+1; returns the element
 * nearest to q found, its distance in *d. */
static uint32_t descend(const ech_index *idx, ech_index_searcher *s, const float *q, uint32_t ep, float *d,
                        int top, int stop)
{
    uint32_t dim = idx->p.dim;
    for (int l = top; l > stop; l--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            const uint32_t *lst = ech_idx_links(idx, ep, l);
            uint32_t cnt;
            if (idx->locking) {
                pthread_mutex_lock(&idx->locks[ep]);
                cnt = lst[0] & ECH_HEAD_COUNT;
                memcpy(s->nbuf, lst + 1, cnt * 4);
                pthread_mutex_unlock(&idx->locks[ep]);
                lst = s->nbuf;
            } else {
                cnt = lst[0] & ECH_HEAD_COUNT;
                lst++;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t c = lst[j];
                float dc = idx->dist(q, ech_idx_vec(idx, c), dim);
                s->ndist++;
                if (dc < *d) {
                    *d = dc;
                    ep = c;
                    changed = 1;
                }
            }
        }
    }
    return ep;
}

#ifndef AHEAD
#define AHEAD 2
#endif

/* All cache lines of element e's vector. */
static inline void prefetch_vec(const ech_index *idx, uint32_t e)
{
    const char *v = (const char *)ech_idx_vec(idx, e);
    size_t bytes = (size_t)idx->p.dim * 4;
    for (size_t o = 0; o < bytes + 63; o += 64)
        PREFETCH(v + (o < bytes ? o : bytes - 1));
}

/* Best-first search of level l from ep with `ef` results, into s->res (a
 * max-heap).  accept_all: construction (tombstones and filters ignored). */
static int search_level(const ech_index *idx, ech_index_searcher *s, const float *q, uint32_t ep, float ep_d,
                        int l, size_t ef, int accept_all, ech_index_filter_fn filter, void *fctx)
{
    uint32_t dim = idx->p.dim;
    uint16_t *vis = s->visited;
    new_epoch(s);
    uint16_t tag = s->epoch;
    s->nres = s->ncq = 0;
    vis[ep] = tag;
    int ep_ok = accept_all || (!(ech_idx_links0(idx, ep)[0] & ECH_HEAD_DELETED) && (!filter || filter(idx, ep, fctx)));
    if (ep_ok)
        res_push(s, ep_d, ep);
    float worst = ep_ok ? ep_d : INFINITY;
    if (cq_push(s, ep_d, ep))
        return -1;
    int locking = idx->locking && l >= 0;
    while (s->ncq) {
        cand c = cq_pop(s);
        if (c.d > worst && s->nres >= ef)
            break;
        const uint32_t *lst = ech_idx_links(idx, c.id, l);
        uint32_t cnt;
        if (locking) {
            pthread_mutex_lock(&idx->locks[c.id]);
            cnt = lst[0] & ECH_HEAD_COUNT;
            memcpy(s->nbuf, lst + 1, cnt * 4);
            pthread_mutex_unlock(&idx->locks[c.id]);
            lst = s->nbuf;
        } else {
            cnt = lst[0] & ECH_HEAD_COUNT;
            lst++;
        }
        /* unvisited neighbours first, then their distances with the
         * vectors a few places ahead already on their way in */
        uint32_t todo[2 * ECH_INDEX_MAX_M];
        uint32_t m = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t e = lst[j];
            if (vis[e] != tag) {
                vis[e] = tag;
                todo[m++] = e;
            }
        }
        for (uint32_t j = 0; j < m && j < AHEAD; j++)
            prefetch_vec(idx, todo[j]);
        for (uint32_t j = 0; j < m; j++) {
            uint32_t e = todo[j];
            if (j + AHEAD < m)
                prefetch_vec(idx, todo[j + AHEAD]);
            float d = idx->dist(q, ech_idx_vec(idx, e), dim);
            if (s->nres < ef || d < worst) {
                if (cq_push(s, d, e))
                    return -1;
                int ok = accept_all ||
                         (!(ech_idx_links0(idx, e)[0] & ECH_HEAD_DELETED) && (!filter || filter(idx, e, fctx)));
                if (ok) {
                    res_push(s, d, e);
                    if (s->nres > ef)
                        res_pop(s);
                    worst = s->res[0].d;
                }
            }
        }
        s->ndist += m;
        /* the next candidate's list is read next */
        if (s->ncq)
            PREFETCH(ech_idx_links(idx, s->cq[0].id, l));
    }
    return 0;
}

/* ---- construction ---------------------------------------------------------- */

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Keep at most m of sel[0..n) (sorted nearest first): a candidate survives
 * if it is nearer to the base than to every survivor.  Returns the count;
 * the survivors are moved to the front. */
static size_t heuristic(const ech_index *idx, cand *sel, size_t n, size_t m)
{
    if (n <= m)
        return n;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        const float *v = ech_idx_vec(idx, sel[i].id);
        int good = 1;
        for (size_t j = 0; j < kept; j++)
            if (idx->dist(v, ech_idx_vec(idx, sel[j].id), idx->p.dim) < sel[i].d) {
                good = 0;
                break;
            }
        if (good)
            sel[kept++] = sel[i];
    }
    return kept;
}

static void lock_elem(const ech_index *idx, uint32_t e)
{
    if (idx->locking)
        pthread_mutex_lock(&idx->locks[e]);
}

static void unlock_elem(const ech_index *idx, uint32_t e)
{
    if (idx->locking)
        pthread_mutex_unlock(&idx->locks[e]);
}

/* Add x to y's list at level l, pruning y's list with the heuristic when
 * it is full. */
static void link_back(ech_index *idx, ech_index_searcher *s, uint32_t y, uint32_t x, float dxy, int l)
{
    size_t mmax = l == 0 ? idx->M0 : idx->p.M;
    lock_elem(idx, y);
    uint32_t *lst = ech_idx_links(idx, y, l);
    uint32_t cnt = lst[0] & ECH_HEAD_COUNT;
    for (uint32_t j = 0; j < cnt; j++)
        if (lst[1 + j] == x) {
            unlock_elem(idx, y);
            return;
        }
    if (cnt < mmax) {
        lst[1 + cnt] = x;
        lst[0] = (lst[0] & ~ECH_HEAD_COUNT) | (cnt + 1);
    } else {
        const float *vy = ech_idx_vec(idx, y);
        cand *sel = s->sel;
        sel[0] = (cand){dxy, x};
        for (uint32_t j = 0; j < cnt; j++) {
            sel[1 + j] = (cand){idx->dist(vy, ech_idx_vec(idx, lst[1 + j]), idx->p.dim), lst[1 + j]};
            s->ndist++;
        }
        qsort(sel, cnt + 1, sizeof *sel, cand_cmp);
        size_t k = heuristic(idx, sel, cnt + 1, mmax);
        for (size_t j = 0; j < k; j++)
            lst[1 + j] = sel[j].id;
        lst[0] = (lst[0] & ~ECH_HEAD_COUNT) | (uint32_t)k;
    }
    unlock_elem(idx, y);
}

static int insert(ech_index *idx, ech_index_searcher *s, uint32_t x)
{
    const float *q = ech_idx_vec(idx, x);
    int level = ech_idx_level(idx, x);
    if (idx->locking)
        pthread_mutex_lock(&idx->global);
    uint32_t ep = idx->entry;
    int top = idx->max_level;
    if (ep == ECH_NO_ELEM) {
        idx->entry = x;
        idx->max_level = level;
        if (idx->locking)
            pthread_mutex_unlock(&idx->global);
        return 0;
    }
    if (idx->locking)
        pthread_mutex_unlock(&idx->global);

    float d = idx->dist(q, ech_idx_vec(idx, ep), idx->p.dim);
    ep = descend(idx, s, q, ep, &d, top, level);
    for (int l = level < top ? level : top; l >= 0; l--) {
        if (search_level(idx, s, q, ep, d, l, idx->p.ef_construction, 1, NULL, NULL))
            return -1;
        size_t n = s->nres;
        memcpy(s->sel, s->res, n * sizeof *s->sel);
        qsort(s->sel, n, sizeof *s->sel, cand_cmp);
        ep = s->sel[0].id;
        d = s->sel[0].d;
        size_t k = heuristic(idx, s->sel, n, idx->p.M);
        uint32_t *mine = ech_idx_links(idx, x, l);
        lock_elem(idx, x);
        for (size_t j = 0; j < k; j++)
            mine[1 + j] = s->sel[j].id;
        mine[0] = (mine[0] & ~ECH_HEAD_COUNT) | (uint32_t)k;
        unlock_elem(idx, x);
        /* link_back reuses s->sel: keep the chosen neighbours apart */
        uint32_t chosen[ECH_INDEX_MAX_M];
        float dch[ECH_INDEX_MAX_M];
        for (size_t j = 0; j < k; j++)
            chosen[j] = s->sel[j].id, dch[j] = s->sel[j].d;
        for (size_t j = 0; j < k; j++)
            link_back(idx, s, chosen[j], x, dch[j], l);
    }
    if (level > top) {
        if (idx->locking)
            pthread_mutex_lock(&idx->global);
        if (level > idx->max_level) {
            idx->max_level = level;
            idx->entry = x;
        }
        if (idx->locking)
            pthread_mutex_unlock(&idx->global);
    }
    return 0;
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    return mix64(z);
}

static int draw_level(ech_index *idx)
{
    double u = (double)(rng_next(&idx->rng) >> 11) * (1.0 / 9007199254740992.0);
    if (u <= 0)
        u = 1e-300;
    double l = -log(u) / log((double)idx->p.M);
    return l >= ECH_INDEX_MAX_LEVEL ? ECH_INDEX_MAX_LEVEL : (int)l;
}

static int bad_vector(const float *v, uint32_t dim, int need_nonzero)
{
    int nonzero = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(v[i]))
            return 1;
        nonzero |= v[i] != 0;
    }
    return need_nonzero && !nonzero ? 2 : 0;
}

static ech_status check_items(ech_index *idx, const ech_index_item *items, size_t n, ech_error *err)
{
    ech_key_kind kind = idx->key_kind;
    for (size_t i = 0; i < n; i++) {
        const ech_index_item *it = &items[i];
        if (kind == ECH_KEY_NONE)
            kind = it->key.kind;
        if (it->key.kind != kind || (kind != ECH_KEY_U64 && kind != ECH_KEY_STRING))
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: %s key in an index of %s keys", i,
                                 it->key.kind == ECH_KEY_STRING ? "a string" : "a number",
                                 kind == ECH_KEY_STRING ? "string" : "number");
        if (kind == ECH_KEY_STRING && (it->key.len == 0 || it->key.len > ECH_INDEX_MAX_KEY))
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: a string key must have 1 to %u bytes", i,
                                 ECH_INDEX_MAX_KEY);
        if (!it->vec)
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: no vector", i);
        int bad = bad_vector(it->vec, idx->p.dim, idx->p.metric == ECH_METRIC_COSINE);
        if (bad == 1)
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: the vector has a NaN or infinite value", i);
        if (bad == 2)
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: a zero vector has no cosine direction", i);
    }
    return ECH_OK;
}

static void describe_key(const ech_index_key *k, char *buf, size_t size)
{
    if (k->kind == ECH_KEY_STRING)
        snprintf(buf, size, "\"%.*s\"", (int)(k->len > 60 ? 60 : k->len), k->str);
    else
        snprintf(buf, size, "%llu", (unsigned long long)k->num);
}

ech_status ech_index_add(ech_index *idx, const ech_index_item *items, size_t n, int threads, ech_error *err)
{
    if (n == 0)
        return ECH_OK;
    if (n > ECH_INDEX_MAX_ELEMENTS - idx->n)
        return ech_error_set(err, ECH_ERR_RANGE, "too many elements");
    ech_status st = check_items(idx, items, n, err);
    if (st)
        return st;
    ech_key_kind kind = idx->key_kind != ECH_KEY_NONE ? idx->key_kind : items[0].key.kind;

    /* duplicates: against the live elements, then within the batch */
    if (idx->key_kind != ECH_KEY_NONE && tab_ensure(idx, idx->n - idx->n_deleted + n))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    size_t bcap = 16;
    while (bcap < 2 * n + 2)
        bcap *= 2;
    uint32_t *batch = malloc(bcap * sizeof *batch);
    if (!batch)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    memset(batch, 0xFF, bcap * sizeof *batch);
    size_t key_bytes = 0, pay_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const ech_index_key *k = &items[i].key;
        char kb[80];
        if (idx->key_kind != ECH_KEY_NONE && *tab_slot(idx, k) != ECH_NO_ELEM) {
            describe_key(k, kb, sizeof kb);
            free(batch);
            return ech_error_set(err, ECH_ERR_INVALID, "item %zu: duplicate id %s (already in the index)", i, kb);
        }
        for (size_t h = (size_t)key_hash(k) & (bcap - 1);; h = (h + 1) & (bcap - 1)) {
            if (batch[h] == ECH_NO_ELEM) {
                batch[h] = (uint32_t)i;
                break;
            }
            if (key_eq(k, &items[batch[h]].key)) {
                const uint32_t first = batch[h];
                describe_key(k, kb, sizeof kb);
                free(batch);
                return ech_error_set(err, ECH_ERR_INVALID, "item %zu: duplicate id %s (also item %u)", i, kb, first);
            }
        }
        if (kind == ECH_KEY_STRING)
            key_bytes += k->len;
        pay_bytes += items[i].payload ? items[i].payload_len : 0;
    }
    free(batch);

    /* levels, drawn in item order */
    uint8_t *levels = malloc(n);
    if (!levels)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    uint64_t rng_saved = idx->rng;
    size_t upper_words = 0;
    for (size_t i = 0; i < n; i++) {
        levels[i] = (uint8_t)draw_level(idx);
        upper_words += (size_t)levels[i] * (idx->p.M + 1);
    }
    if (upper_words + idx->upper_off[idx->n] > UINT32_MAX) {
        idx->rng = rng_saved;
        free(levels);
        return ech_error_set(err, ECH_ERR_RANGE, "too many elements");
    }
    size_t cap = idx->cap;
    if (idx->mapped || cap < idx->n + n) {
        cap = idx->n + n;
        if (cap < idx->cap * 3 / 2)
            cap = idx->cap * 3 / 2;
    }
    if (reserve(idx, cap, upper_words, key_bytes, pay_bytes)) {
        idx->rng = rng_saved;
        free(levels);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for %zu more elements", n);
    }
    idx->key_kind = kind;

    /* write the new elements (from here on only scratch allocation can fail) */
    size_t first = idx->n;
    for (size_t i = 0; i < n; i++) {
        size_t e = first + i;
        uint32_t *blk = ech_idx_links0(idx, (uint32_t)e);
        memset(blk, 0, idx->vec_off);
        float *v = (float *)(void *)((uint8_t *)blk + idx->vec_off);
        memcpy(v, items[i].vec, (size_t)idx->p.dim * sizeof *v);
        if (idx->p.metric == ECH_METRIC_COSINE)
            ech_vec_normalize(v, idx->p.dim);
        uint32_t o = idx->upper_off[e];
        size_t words = (size_t)levels[i] * (idx->p.M + 1);
        if (words) /* no upper pool yet when every level so far is 0 */
            memset(idx->upper + o, 0, words * 4);
        idx->upper_off[e + 1] = o + (uint32_t)words;
        if (kind == ECH_KEY_U64) {
            idx->keys[e] = items[i].key.num;
            idx->key_off[e + 1] = 0;
        } else {
            if (items[i].key.len)
                memcpy(idx->key_blob + idx->key_off[e], items[i].key.str, items[i].key.len);
            idx->key_off[e + 1] = idx->key_off[e] + items[i].key.len;
        }
        size_t pl = items[i].payload ? items[i].payload_len : 0;
        if (pl)
            memcpy(idx->pay_blob + idx->pay_off[e], items[i].payload, pl);
        idx->pay_off[e + 1] = idx->pay_off[e] + pl;
    }
    free(levels);
    size_t total = first + n;
    idx->n = total;
    if (idx->tab_valid) {
        for (size_t e = first; e < total; e++) {
            ech_index_key k;
            ech_index_key_at(idx, (uint32_t)e, &k);
            *tab_slot(idx, &k) = (uint32_t)e;
            idx->tab_used++;
        }
    }

    /* link them */
#ifdef _OPENMP
    int nt = threads > 0 ? threads : omp_get_max_threads();
#else
    int nt = 1;
    (void)threads;
#endif
    if ((size_t)nt > n)
        nt = (int)n;
    if (nt < 1)
        nt = 1;
    int fail = 0;
    size_t start = first;
    ech_index_searcher *s0 = searcher_make(idx, total, idx->p.ef_construction);
    if (!s0)
        fail = 1;
    /* the first elements alone, so that the threads start from a graph */
    size_t serial = nt > 1 ? 256 : n;
    idx->locking = 0;
    for (; !fail && start < total && start < first + serial; start++)
        fail = insert(idx, s0, (uint32_t)start) != 0;
    searcher_free(s0);
    if (!fail && start < total) {
        idx->locks = malloc(total * sizeof *idx->locks);
        if (!idx->locks)
            fail = 1;
        else
            for (size_t i = 0; i < total; i++)
                pthread_mutex_init(&idx->locks[i], NULL);
        idx->locking = 1;
#pragma omp parallel num_threads(nt) if (!fail)
        {
            ech_index_searcher *s = searcher_make(idx, total, idx->p.ef_construction);
            if (!s) {
#pragma omp atomic write
                fail = 1;
            }
#pragma omp for schedule(dynamic, 16)
            for (size_t e = start; e < total; e++)
                if (s && insert(idx, s, (uint32_t)e)) {
#pragma omp atomic write
                    fail = 1;
                }
            searcher_free(s);
        }
        idx->locking = 0;
        if (idx->locks)
            for (size_t i = 0; i < total; i++)
                pthread_mutex_destroy(&idx->locks[i]);
        free(idx->locks);
        idx->locks = NULL;
    }
    if (fail)
        /* the elements are stored but not all linked: searchable, worse recall */
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory while linking the graph");
    return ECH_OK;
}

ech_status ech_index_delete(ech_index *idx, const ech_index_key *key, ech_error *err)
{
    char kb[80];
    describe_key(key, kb, sizeof kb);
    if (key->kind != idx->key_kind)
        return ech_error_set(err, ECH_ERR_NOT_FOUND, "id %s is not in the index", kb);
    if (tab_ensure(idx, idx->n - idx->n_deleted))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    uint32_t *slot = tab_slot(idx, key);
    if (*slot == ECH_NO_ELEM)
        return ech_error_set(err, ECH_ERR_NOT_FOUND, "id %s is not in the index", kb);
    uint32_t e = *slot;
    if (idx->mapped && reserve(idx, idx->n, 0, 0, 0))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_idx_links0(idx, e)[0] |= ECH_HEAD_DELETED;
    idx->n_deleted++;
    tab_remove(idx, tab_slot(idx, key));
    return ECH_OK;
}

ech_status ech_index_compact(const ech_index *idx, int threads, ech_index **out, ech_error *err)
{
    ech_index *c;
    ech_status st = ech_index_new(&idx->p, &c, err);
    if (st)
        return st;
    size_t live = idx->n - idx->n_deleted;
    ech_index_item *items = malloc((live ? live : 1) * sizeof *items);
    if (!items) {
        ech_index_free(c);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    size_t m = 0;
    for (uint32_t e = 0; e < idx->n && m < live; e++) {
        if (ech_index_is_deleted(idx, e))
            continue;
        ech_index_item *it = &items[m++];
        ech_index_key_at(idx, e, &it->key);
        it->vec = ech_idx_vec(idx, e);
        it->payload = ech_index_payload(idx, e, &it->payload_len);
    }
    st = ech_index_add(c, items, m, threads, err);
    free(items);
    if (st) {
        ech_index_free(c);
        return st;
    }
    *out = c;
    return ECH_OK;
}

/* ---- queries ---------------------------------------------------------------- */

ech_status ech_index_searcher_new(const ech_index *idx, ech_index_searcher **out, ech_error *err)
{
    *out = searcher_make(idx, idx->n, idx->p.ef_search);
    return *out ? ECH_OK : ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
}

void ech_index_searcher_free(ech_index_searcher *s) { searcher_free(s); }
uint64_t ech_index_searcher_ndist(const ech_index_searcher *s) { return s->ndist; }

static ech_status prepare_query(const ech_index *idx, float *dst, const float *q, ech_error *err)
{
    if (bad_vector(q, idx->p.dim, 0))
        return ech_error_set(err, ECH_ERR_INVALID, "the query has a NaN or infinite value");
    memcpy(dst, q, (size_t)idx->p.dim * sizeof *dst);
    if (idx->p.metric == ECH_METRIC_COSINE)
        ech_vec_normalize(dst, idx->p.dim);
    return ECH_OK;
}

static void sort_hits(ech_index_hit *hits, const cand *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hits[i] = (ech_index_hit){.elem = c[i].id, .dist = c[i].d};
    for (size_t i = 1; i < n; i++) {
        ech_index_hit h = hits[i];
        size_t j = i;
        while (j > 0 && (hits[j - 1].dist > h.dist || (hits[j - 1].dist == h.dist && hits[j - 1].elem > h.elem))) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j] = h;
    }
}

ech_status ech_index_search(ech_index_searcher *s, const float *query, size_t k, uint32_t ef,
                            ech_index_filter_fn filter, void *filter_ctx, ech_index_hit *hits, size_t *n_hits,
                            ech_error *err)
{
    const ech_index *idx = s->idx;
    *n_hits = 0;
    s->ndist = 0;
    if (s->n != idx->n)
        return ech_error_set(err, ECH_ERR_INVALID, "the searcher was made before the index last changed");
    ech_status st = prepare_query(idx, s->qbuf, query, err);
    if (st || k == 0 || idx->entry == ECH_NO_ELEM)
        return st;
    size_t efs = ef ? ef : idx->p.ef_search;
    if (efs < k)
        efs = k;
    if (searcher_fit(s, efs))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    const float *q = s->qbuf;
    float d = idx->dist(q, ech_idx_vec(idx, idx->entry), idx->p.dim);
    uint32_t ep = descend(idx, s, q, idx->entry, &d, idx->max_level, 0);
    if (search_level(idx, s, q, ep, d, 0, efs, 0, filter, filter_ctx))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    while (s->nres > k)
        res_pop(s);
    sort_hits(hits, s->res, s->nres);
    *n_hits = s->nres;
    return ECH_OK;
}

ech_status ech_index_search_exact(const ech_index *idx, const float *query, size_t k,
                                  ech_index_filter_fn filter, void *filter_ctx, ech_index_hit *hits,
                                  size_t *n_hits, ech_error *err)
{
    *n_hits = 0;
    ech_index_searcher *s = searcher_make(idx, 1, k);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_status st = prepare_query(idx, s->qbuf, query, err);
    if (!st && k) {
        for (uint32_t e = 0; e < idx->n; e++) {
            if (ech_index_is_deleted(idx, e) || (filter && !filter(idx, e, filter_ctx)))
                continue;
            float d = idx->dist(s->qbuf, ech_idx_vec(idx, e), idx->p.dim);
            if (s->nres < k || d < s->res[0].d) {
                res_push(s, d, e);
                if (s->nres > k)
                    res_pop(s);
            }
        }
        sort_hits(hits, s->res, s->nres);
        *n_hits = s->nres;
    }
    searcher_free(s);
    return st;
}
