/* `atlas` trains: a tiny two-layer LM with the ATLAS memory in every layer
 * (a window of 4 tokens) learns multi-query associative recall well above
 * chance in a few hundred steps (tests/memory_train.h says what the run is). */
#include "memory_train.h"

Test(atlas_train, tiny_mqar_model_beats_chance, .timeout = 180) { tiny_mqar_beats_chance("atlas", "window=4 chunk=16"); }
