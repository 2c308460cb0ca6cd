/* A model config as JSON (libcjson), for checkpoint headers: what `attnbench
 * eval --checkpoint` needs to rebuild the model the weights belong to. */
#ifndef NN_MODEL_JSON_H
#define NN_MODEL_JSON_H

#include "model.h"

#include <cjson/cJSON.h>

cJSON *nn_model_cfg_to_json(const nn_model_cfg *c);
/* Strict: every field of nn_model_opts present with the right type (except
 * those older checkpoints lack, such as "short_conv": 0); errors name the field. */
int nn_model_cfg_from_json(const cJSON *o, const char *where, nn_model_cfg *c);

#endif
