/* Model weights from a Hub-layout checkpoint: shape checks, dtype policy,
 * optional tensors, trainable copies. Uses ../shared/golden/qwen3-a. */
#include <string.h>

#include "base/error.h"
#include "models/weights.h"
#include "test.h"

static void loads_checks_and_names_errors(void) {
  vl_checkpoint *ck = vl_ckpt_open(test_shared_path("golden/qwen3-a"));
  REQUIRE(ck);
  vl_ctx *c = vl_ctx_new();
  vl_weights w = {.ck = ck, .ctx = c};
  vl_tensor *q = vl_weight2(&w, 0, 128, 64, "model.layers.%d.self_attn.q_proj.weight", 0);
  REQUIRE(q);
  CHECK(q->dtype == VL_F32 && q->shape[0] == 128 && q->shape[1] == 64);
  vl_tensor *n = vl_weight1(&w, 0, 32, "model.layers.%d.self_attn.q_norm.weight", 1);
  CHECK(n && n->dtype == VL_F32 && n->numel == 32);

  CHECK(vl_weight2(&w, 0, 64, 128, "model.layers.0.self_attn.q_proj.weight") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "q_proj.weight") && strstr(vl_last_error(), "[64, 128]") &&
        strstr(vl_last_error(), "[128, 64]"));

  CHECK(vl_weight1(&w, 0, 64, "model.layers.0.self_attn.q_proj.bias") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND && strstr(vl_last_error(), "q_proj.bias"));
  vl_clear_error();
  CHECK(vl_weight1(&w, VL_W_OPTIONAL, 64, "model.layers.0.self_attn.q_proj.bias") == NULL);
  CHECK(vl_last_error()[0] == 0);

  vl_weights tw = {.ck = ck, .ctx = c, .trainable = true};
  vl_tensor *e = vl_weight2(&tw, 0, 336, 64, "model.embed_tokens.weight");
  REQUIRE(e);
  CHECK(e->requires_grad && e->grad && e->data != vl_ckpt_find(ck, "model.embed_tokens.weight")->data);
  CHECK(memcmp(e->data, vl_ckpt_find(ck, "model.embed_tokens.weight")->data, 336 * 64 * 4) == 0);
  vl_ctx_free(c);
  vl_ckpt_close(ck);
}

int main(void) {
  RUN(loads_checks_and_names_errors);
  return test_summary();
}
