/* `titans` trains: a tiny two-layer LM with the Titans memory in every layer
 * (the linear memory, and the two-layer MLP memory) learns multi-query
 * associative recall well above chance in a few hundred steps
 * (tests/memory_train.h says what the run is). */
#include "memory_train.h"

Test(titans_train, tiny_mqar_model_beats_chance, .timeout = 180) { tiny_mqar_beats_chance("titans", NULL); }

Test(titans_train, mlp_memory_tiny_mqar_model_beats_chance, .timeout = 300)
{
    tiny_mqar_beats_chance("titans", "memory=mlp");
}
