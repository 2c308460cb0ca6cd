/* The model's option table (model.h nn_model_opts): one row per setting of
 * nn_model_cfg, in the order of the canonical JSON that job_ids hash and
 * checkpoint headers hold. Rows marked OPT_INTERNAL are fitted to the task's
 * data (vocabulary, classes, length, head), not chosen by the user. */
#include "model.h"

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const nn_variant_names[] = {"", "encoder", "twotower", "lm", "hybrid", "looped", "folded", "hmt", NULL};
const char *const nn_variant_help[] = {
    "the task's head: encoder, twotower or lm",
    "pre-norm Transformer encoder, CLS or mean pooling, classifier head (classification tasks)",
    "one shared encoder for both documents, [u, v, u*v, u-v] MLP head (LRA Retrieval)",
    "causal LM head at the scored positions only (recall and NIAH tasks)",
    "one kernel per layer (--kernel a,b,...), head from the task",
    "the layer stack applied --loops times with shared weights, head from the task (--halting act: each "
    "position halts on its own)",
    "lm over segments of --fold-segment tokens, each layer re-evolving a buffer of --fold-buffer past states "
    "(folded context; recall and NIAH tasks)",
    "lm over segments of --hmt-segment tokens with memory embeddings carried between them and recalled by "
    "attention (Hierarchical Memory Transformer; recall and NIAH tasks)",
    NULL,
};
const char *const nn_pos_names[] = {"learned", "sinusoid", "rope", "none", NULL};
const char *const nn_pool_names[] = {"cls", "mean", NULL};
const char *const nn_gating_names[] = {"residual", "gtrxl", NULL};
const char *const nn_halting_names[] = {"none", "act", NULL};

/* --kernel a,b,...: one kernel for every layer, or one per layer. */
static int kernels_set(void *target, const char *text, const char *where)
{
    nn_model_cfg *c = target;
    int n = 0;
    for (const char *p = text;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof c->kernels[0])
            return attn_fail(ATTN_EINVAL, "%s: expected a comma-separated list of names, found '%s'", where, text);
        if (n >= NN_MAX_LAYERS)
            return attn_fail(ATTN_EINVAL, "%s: at most %d items", where, NN_MAX_LAYERS);
        memcpy(c->kernels[n], p, len);
        c->kernels[n][len] = '\0';
        if (!comma)
            break;
        p = comma + 1;
    }
    c->n_kernels = n + 1;
    return 0;
}

static cJSON *kernels_json(const void *target)
{
    const nn_model_cfg *c = target;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < c->n_kernels; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(c->kernels[i]));
    return a;
}

static int kernels_from_json(void *target, const cJSON *x, const char *where)
{
    nn_model_cfg *c = target;
    const cJSON *e;
    if (!cJSON_IsArray(x) || cJSON_GetArraySize(x) < 1 || cJSON_GetArraySize(x) > NN_MAX_LAYERS)
        return attn_fail(ATTN_EINVAL, "%s: expected 1..%d names", where, NN_MAX_LAYERS);
    c->n_kernels = 0;
    cJSON_ArrayForEach(e, x)
    {
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= sizeof c->kernels[0])
            return attn_fail(ATTN_EINVAL, "%s[%d]: expected a kernel name", where, c->n_kernels);
        strcpy(c->kernels[c->n_kernels++], e->valuestring);
    }
    return 0;
}

/* --mask M: parsed, and kept in its canonical spelling (two spellings of one
 * mask are one setting, one job_id). */
static int mask_set(void *target, const char *text, const char *where)
{
    nn_model_cfg *c = target;
    attn_mask m;
    if (attn_mask_parse(text, &m) != 0) {
        char why[256]; /* a copy: attn_fail writes the buffer attn_last_error reads */
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(ATTN_EINVAL, "%s: %s", where, why);
    }
    attn_mask_format(&m, c->mask, sizeof c->mask);
    return 0;
}

/* No key at all without a mask: runs from before the option keep their job_ids
 * (cJSON_AddItemToObject adds nothing for NULL). */
static cJSON *mask_json(const void *target)
{
    const nn_model_cfg *c = target;
    return c->mask[0] ? cJSON_CreateString(c->mask) : NULL;
}

static int mask_from_json(void *target, const cJSON *x, const char *where)
{
    if (!cJSON_IsString(x))
        return attn_fail(ATTN_EINVAL, "%s: expected a mask spec string", where);
    return mask_set(target, x->valuestring, where);
}

attn_mask nn_model_mask(const nn_model_cfg *c)
{
    attn_mask m = attn_mask_default(c->causal ? ATTN_MASK_CAUSAL : ATTN_MASK_FULL);
    if (c->has_eval_mask)
        m = c->eval_mask;
    else if (c->mask[0])
        attn_mask_parse(c->mask, &m); /* canonical text written by mask_set: it parses */
    return m;
}

#define AT(f) offsetof(nn_model_cfg, f)
#define MODEL "model"
const opt_def nn_model_opts[] = {
    {.name = "model", .json = "variant", .type = OPT_ENUM, .offset = AT(variant), .names = nn_variant_names,
     .def = NN_VARIANT_TASK, .group = MODEL, .metavar = "M",
     .help = "encoder | twotower | lm (must match the task) | hybrid | looped | folded | hmt (see 'attnbench list models'); "
             "default: the task's (classify -> encoder, pair -> twotower, LM -> lm)"},
    {.name = "head", .type = OPT_INT32, .offset = AT(head), .flags = OPT_INTERNAL},
    {.name = "vocab", .type = OPT_INT, .offset = AT(vocab), .flags = OPT_INTERNAL},
    {.name = "n_classes", .type = OPT_INT, .offset = AT(n_classes), .flags = OPT_INTERNAL},
    {.name = "max_len", .type = OPT_INT, .offset = AT(max_len), .flags = OPT_INTERNAL},
    {.name = "layers", .type = OPT_INT, .offset = AT(layers), .def = 2, .lo = 1, .hi = NN_MAX_LAYERS,
     .group = MODEL, .metavar = "L", .help = "layers"},
    {.name = "d_model", .type = OPT_INT, .offset = AT(d_model), NN_D_MODEL_RANGE,
     .group = MODEL, .metavar = "C", .help = "model width", .flags = OPT_NO_CONFIG /* a config's grid */},
    {.name = "heads", .type = OPT_INT, .offset = AT(heads), .def = 2, .lo = 1, .hi = 1024, .group = MODEL,
     .metavar = "H", .help = "attention heads"},
    {.name = "heads_kv", .type = OPT_INT, .offset = AT(heads_kv), .def = 0, .def_str = "--heads", .lo = 1,
     .hi = 1024, .group = MODEL, .metavar = "H", .help = "key/value heads (GQA)"},
    {.name = "mlp", .type = OPT_INT, .offset = AT(mlp), .def = 128, .lo = 0, .hi = 1 << 20, .group = MODEL,
     .metavar = "F", .help = "MLP width (0: no MLP sub-layer)"},
    {.name = "causal", .type = OPT_INT32, .offset = AT(causal), .flags = OPT_INTERNAL},
    {.name = "rms", .type = OPT_BOOL, .offset = AT(rms), .group = MODEL, .help = "RMSNorm instead of LayerNorm"},
    {.name = "loops", .type = OPT_INT32, .offset = AT(loops), .def = 1, .lo = 1, .hi = NN_MAX_LOOPS, .group = MODEL,
     .metavar = "n", .help = "looped: the layer stack n times with shared weights (--model looped: at least 2)"},
    /* the fold and halting settings are in the canonical JSON only for their variant: other models keep
     * their job_ids */
    {.name = "fold_segment", .type = OPT_INT, .offset = AT(fold_segment), .def = NN_FOLD_DEFAULT, .lo = 1,
     .hi = 4096, .group = MODEL, .metavar = "C", .json_when = "model", .json_when_is = NN_VARIANT_FOLDED,
     .help = "folded: tokens per segment"},
    {.name = "fold_buffer", .type = OPT_INT, .offset = AT(fold_buffer), .def = NN_FOLD_DEFAULT, .lo = 0,
     .hi = 4096, .group = MODEL, .metavar = "m", .json_when = "model", .json_when_is = NN_VARIANT_FOLDED,
     .help = "folded: past states each layer keeps and re-evolves with the next segment (0: independent segments)"},
    {.name = "hmt_segment", .type = OPT_INT, .offset = AT(hmt_segment), .def = NN_HMT_SEGMENT, .lo = 1, .hi = 4096,
     .group = MODEL, .metavar = "L", .json_when = "model", .json_when_is = NN_VARIANT_HMT,
     .help = "hmt: tokens per segment"},
    {.name = "hmt_summary", .type = OPT_INT, .offset = AT(hmt_summary), .def = NN_HMT_SUMMARY, .lo = 0, .hi = 4096,
     .group = MODEL, .metavar = "j", .json_when = "model", .json_when_is = NN_VARIANT_HMT,
     .help = "hmt: first tokens of a segment its recall query summarises (at most the segment)"},
    {.name = "hmt_sensory", .type = OPT_INT, .offset = AT(hmt_sensory), .def = NN_HMT_SENSORY, .lo = 0, .hi = 4096,
     .group = MODEL, .metavar = "k", .json_when = "model", .json_when_is = NN_VARIANT_HMT,
     .help = "hmt: last tokens of the previous segment prepended to a segment (at most the segment)"},
    {.name = "hmt_memories", .type = OPT_INT, .offset = AT(hmt_memories), .def = NN_HMT_MEMORIES, .lo = 0, .hi = 4096,
     .group = MODEL, .metavar = "N", .json_when = "model", .json_when_is = NN_VARIANT_HMT,
     .help = "hmt: memory embeddings kept (FIFO) and searched by the recall (0 with --hmt-sensory 0: independent "
             "segments)"},
    {.name = "hmt_unroll", .type = OPT_INT, .offset = AT(hmt_unroll), .def = NN_HMT_UNROLL, .lo = 1, .hi = 2,
     .group = MODEL, .metavar = "u", .json_when = "model", .json_when_is = NN_VARIANT_HMT,
     .help = "hmt: segments a segment's loss reaches back: 1 (memories constant) or 2 (also through the newest "
             "memory into the segment that wrote it)"},
    {.name = "tower_mlp", .type = OPT_INT, .offset = AT(tower_mlp), .flags = OPT_INTERNAL},
    {.name = "short_conv", .type = OPT_INT32, .offset = AT(short_conv), .def = 0, .lo = 0, .hi = NN_SHORT_CONV_MAX,
     .group = MODEL, .metavar = "K", .flags = OPT_JSON_OPTIONAL /* older checkpoints have none */,
     .help = "causal depthwise conv of width K + SiLU on q, k, v (DeltaNet: 4; 0: none)"},
    {.name = "dropout", .type = OPT_FLOAT, .offset = AT(dropout), .def = 0, .lo = 0, .hi = 0.95, .group = MODEL,
     .metavar = "p", .help = "dropout on the attention and MLP outputs"},
    {.name = "gating", .type = OPT_ENUM, .offset = AT(gating), .names = nn_gating_names, .def = NN_GATING_RESIDUAL,
     .group = MODEL, .metavar = "G", .flags = OPT_JSON_OMIT_DEFAULT /* residual runs keep their job_ids */,
     .help = "residual (x + s) | gtrxl (GTrXL's GRU-type gate after each sub-layer, z bias -2: starts near the "
             "identity)"},
    {.name = "halting", .type = OPT_ENUM, .offset = AT(halting), .names = nn_halting_names, .def = NN_HALTING_NONE,
     .group = MODEL, .metavar = "none|act", .flags = OPT_JSON_OMIT_DEFAULT /* other models keep their job_ids */,
     .help = "looped only: none (every position takes --loops steps) | act (adaptive computation time: each "
             "position halts by its own halting unit, at most --loops steps; rows add mean ponder steps)"},
    {.name = "ponder_cost", .type = OPT_FLOAT, .offset = AT(ponder_cost), .def = NN_PONDER_COST_DEFAULT, .lo = 0,
     .hi = 10, .group = MODEL, .metavar = "tau", .json_when = "halting", .json_when_is = NN_HALTING_ACT,
     .help = "halting act: weight of the mean ponder N + R in the loss"},
    {.name = "pos", .type = OPT_ENUM, .offset = AT(pos), .names = nn_pos_names, .def = NN_POS_LEARNED,
     .group = MODEL, .help = "positions"},
    {.name = "pool", .type = OPT_ENUM, .offset = AT(pool), .names = nn_pool_names, .def = NN_POOL_CLS,
     .group = MODEL, .help = "pooling of the classifier heads"},
    {.name = "kernel", .json = "kernels", .type = OPT_CUSTOM, .group = MODEL, .metavar = "K[,K...]",
     .flags = OPT_NO_CONFIG | OPT_REQUIRED, /* a config's grid: "kernels" */
     .help = "attention kernel of every layer, or one per layer (a hybrid; see 'attnbench list kernels')",
     .set_text = kernels_set, .to_json = kernels_json, .from_json = kernels_from_json},
    {.name = "mask", .type = OPT_CUSTOM, .group = MODEL, .metavar = "M", .flags = OPT_JSON_OPTIONAL,
     .help = "mask of every layer in training and evaluation ('attnbench list masks'; e.g. block:b=64,keep=0 "
             "for LRA's local attention, global:w=64,g=1 for Longformer's pattern); default: full, causal for "
             "the lm head",
     .set_text = mask_set, .to_json = mask_json, .from_json = mask_from_json},
    {.name = "kernel_params", .cli = "param", .type = OPT_PARAMS, .offset = AT(kparams), .group = MODEL,
     .help = "kernel parameter for every layer (repeatable)"},
    {.name = "attn_dtype", .type = OPT_ENUM, .offset = AT(attn_dtype), .names = attn_dtype_names, .def = ATTN_DT_FP32,
     .group = MODEL, .metavar = "T", .flags = OPT_JSON_OMIT_DEFAULT /* fp32 runs keep their job_ids */,
     .help = "fp32 | bf16 | fp16: operand type of every layer's attention kernel in training and evaluation: Q, K, V, O and, in "
             "training, dO, dQ, dK, dV rounded to it around the kernel call (fp32 accumulation inside); weights, "
             "the rest of the model and the optimizer stay fp32 (docs/dtypes.md; kernels that take bf16/fp16)"},
    {0},
};

void nn_model_cfg_defaults(nn_model_cfg *c)
{
    memset(c, 0, sizeof *c);
    opt_defaults(nn_model_opts, c);
    c->n_kernels = 1;
    strcpy(c->kernels[0], "flash");
}
