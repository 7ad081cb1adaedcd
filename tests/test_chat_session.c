/* Multi-turn chat over the tiny golden ../shared/golden/qwen3-a (random
 * weights: the replies are gibberish, so the checks are on what is sent to
 * the model): turn 2's prompt is the chat template over the whole history,
 * the KV cache is reused for the common prefix and gives the same tokens as
 * a fresh run, /reset forgets, and the think filter hides reasoning. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tasks/chat_session.h"
#include "test.h"
#include "text/reasoning.h"

#define MODEL "golden/qwen3-a"

typedef struct {
  int32_t ids[64];
  int n;
} id_log;

static int log_ids(void *user, int32_t id, const char *text, size_t len) {
  id_log *l = user;
  if (l->n < 64) l->ids[l->n++] = id;
  return 0;
}

static void test_two_turns_and_reset(void) {
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(MODEL));
  vl_tokenizer *tok = vl_tokenizer_load(test_shared_path(MODEL));
  REQUIRE(m && tok);
  vl_chat_template t;
  REQUIRE(vl_chat_detect_folder(test_shared_path(MODEL), &t) == VL_OK);
  CHECK(t == VL_CHAT_QWEN3);
  vl_chat_session_opts o = vl_chat_session_default_opts();
  o.system = "Be brief.";
  o.gen.max_tokens = 6;
  o.gen.ignore_eos = true; /* random weights: a fixed number of tokens */
  vl_chat_session *s = vl_chat_session_new(m, tok, t, &o);
  REQUIRE(s);
  CHECK(!strcmp(vl_chat_session_last_prompt(s), ""));

  char *r1 = NULL;
  vl_generate_stats st;
  id_log l1 = {0};
  REQUIRE(vl_chat_session_send(s, "hello there", log_ids, &l1, &r1, &st) == VL_OK);
  CHECK(st.n_generated == 6 && l1.n == 6);
  CHECK(vl_chat_session_reused(s) == 0);
  size_t n;
  const vl_chat_message *msgs = vl_chat_session_messages(s, &n);
  REQUIRE(n == 3);
  CHECK(!strcmp(msgs[0].role, "system") && !strcmp(msgs[0].content, "Be brief."));
  CHECK(!strcmp(msgs[1].role, "user") && !strcmp(msgs[1].content, "hello there"));
  CHECK(!strcmp(msgs[2].role, "assistant"));
  /* the stored answer is the reply's answer part */
  char *ans = vl_reasoning_answer(r1);
  REQUIRE(ans);
  CHECK(!strcmp(msgs[2].content, ans));
  free(ans);

  /* turn 1's prompt is the template over system + user */
  vl_chat_options co = {1, 0};
  char *want1 = vl_chat_render(t, msgs, 2, &co);
  REQUIRE(want1);
  CHECK(!strcmp(vl_chat_session_last_prompt(s), want1));
  free(want1);

  char *r2 = NULL;
  id_log l2 = {0};
  REQUIRE(vl_chat_session_send(s, "and again?", log_ids, &l2, &r2, &st) == VL_OK);
  msgs = vl_chat_session_messages(s, &n);
  REQUIRE(n == 5);
  char *want2 = vl_chat_render(t, msgs, 4, &co);
  REQUIRE(want2);
  CHECK(!strcmp(vl_chat_session_last_prompt(s), want2));
  CHECK(strstr(want2, "hello there") && strstr(want2, "and again?"));
  /* the common prefix (system + first user turn at least) came from the cache */
  int32_t *ids = NULL;
  size_t nids = 0;
  REQUIRE(vl_tokenizer_encode(tok, want2, strlen(want2), 0, &ids, &nids) == VL_OK);
  CHECK(st.n_prompt == nids);
  CHECK(vl_chat_session_reused(s) > 10 && vl_chat_session_reused(s) < nids);
  /* ... and the reply is what a fresh greedy run on the full prompt gives */
  vl_generate_opts go = {.sampling = vl_sampler_defaults(), .max_tokens = 6, .ignore_eos = true};
  int32_t *fresh = NULL;
  size_t nf = 0;
  REQUIRE(vl_generate(m, tok, ids, nids, &go, NULL, NULL, &fresh, &nf, NULL) == VL_OK);
  CHECK(nf == 6 && l2.n == 6);
  for (size_t i = 0; i < nf && (int)i < l2.n; i++)
    CHECK(fresh[i] == l2.ids[i]);
  free(fresh);
  free(ids);
  free(want2);

  /* /reset: only the system prompt stays; the next prompt is a first turn */
  vl_chat_session_reset(s);
  msgs = vl_chat_session_messages(s, &n);
  CHECK(n == 1 && !strcmp(msgs[0].role, "system"));
  char *r3 = NULL;
  REQUIRE(vl_chat_session_send(s, "and again?", NULL, NULL, &r3, NULL) == VL_OK);
  msgs = vl_chat_session_messages(s, &n);
  CHECK(n == 3);
  CHECK(!strstr(vl_chat_session_last_prompt(s), "hello there"));
  char *want3 = vl_chat_render(t, msgs, 2, &co);
  CHECK(want3 && !strcmp(vl_chat_session_last_prompt(s), want3));
  free(want3);
  free(r1);
  free(r2);
  free(r3);
  vl_chat_session_free(s);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

static void test_errors(void) {
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(MODEL));
  vl_tokenizer *tok = vl_tokenizer_load(test_shared_path(MODEL));
  REQUIRE(m && tok);
  CHECK(vl_chat_session_new(m, NULL, VL_CHAT_QWEN3, NULL) == NULL);
  vl_chat_session_opts o = vl_chat_session_default_opts();
  o.gen.max_tokens = 0;
  CHECK(vl_chat_session_new(m, tok, VL_CHAT_QWEN3, &o) == NULL);
  /* a context too small for the prompt: an error, history unchanged */
  o = vl_chat_session_default_opts();
  o.context = 8;
  vl_chat_session *s = vl_chat_session_new(m, tok, VL_CHAT_QWEN3, &o);
  REQUIRE(s);
  CHECK(vl_chat_session_send(s, "a message longer than eight tokens for sure", NULL, NULL, NULL,
                             NULL) == VL_ERR_LIMIT);
  CHECK(strstr(vl_last_error(), "/reset") != NULL);
  size_t n;
  vl_chat_session_messages(s, &n);
  CHECK(n == 0);
  vl_chat_session_free(s);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

/* Feeds text in pieces of k bytes through the filter. */
static void filtered(const char *text, size_t k, char *out) {
  vl_think_filter f = {0};
  size_t w = 0, n = strlen(text);
  for (size_t at = 0; at < n; at += k)
    w += vl_think_filter_feed(&f, text + at, n - at < k ? n - at : k, 0, out + w);
  w += vl_think_filter_feed(&f, "", 0, 1, out + w);
  out[w] = 0;
}

static void test_think_filter(void) {
  char out[256];
  const char *cases[][2] = {
      {"<think>\nlet me see\n</think>\n\nThe answer.", "The answer."},
      {"plain text, no tags", "plain text, no tags"},
      {"<think>never closed", ""},
      {"a < b and <thin", "a < b and <thin"},
      {"x<think>y</think>z", "xz"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t k = 1; k <= 9; k += 4) {
      filtered(cases[c][0], k, out);
      if (strcmp(out, cases[c][1])) printf("  case %zu k=%zu: got '%s'\n", c, k, out);
      CHECK(!strcmp(out, cases[c][1]));
    }
}

int main(void) {
  RUN(test_two_turns_and_reset);
  RUN(test_errors);
  RUN(test_think_filter);
  return test_summary();
}
