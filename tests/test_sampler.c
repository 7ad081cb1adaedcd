/* Sampler on hand-made logits: greedy, top-k, top-p, min-p (the allowed set
 * and empirical frequencies over many seeded draws), repetition penalty as
 * transformers applies it, determinism, bad parameters. */
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "models/sampler.h"
#include "test.h"

#define V 6
#define DRAWS 20000

/* probabilities 0.4, 0.25, 0.15, 0.1, 0.06, 0.04 as logits */
static const double P[V] = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};

static void fill(float *x) {
  for (int i = 0; i < V; i++)
    x[i] = (float)log(P[i]) + 3.0f;
}

/* Empirical frequencies of DRAWS samples with params p (temperature 1). */
static void freqs(vl_sampler_params p, double *f) {
  vl_sampler *s = vl_sampler_new(&p, V);
  memset(f, 0, V * sizeof *f);
  if (!s) return;
  for (int d = 0; d < DRAWS; d++) {
    float x[V];
    fill(x);
    int32_t id = vl_sampler_sample(s, x, V, NULL, 0);
    if (id >= 0 && id < V) f[id] += 1.0 / DRAWS;
  }
  vl_sampler_free(s);
}

/* Frequencies must be 0 outside the first `keep` tokens and match the
 * renormalised probabilities inside. */
static void expect_kept(const double *f, int keep) {
  double mass = 0;
  for (int i = 0; i < keep; i++)
    mass += P[i];
  for (int i = 0; i < V; i++) {
    double want = i < keep ? P[i] / mass : 0.0;
    if (i >= keep) CHECK(f[i] == 0.0);
    CHECK_NEAR(f[i], want, 0.015);
  }
}

static vl_sampler_params sampling(void) {
  vl_sampler_params p = vl_sampler_defaults();
  p.temperature = 1.0f;
  p.seed = 1234;
  return p;
}

static void greedy_picks_argmax(void) {
  float x[V] = {0.1f, -2.0f, 3.5f, 3.4f, -INFINITY, NAN};
  vl_sampler_params p = vl_sampler_defaults();
  vl_sampler *s = vl_sampler_new(&p, V);
  REQUIRE(s);
  CHECK(vl_sampler_sample(s, x, V, NULL, 0) == 2);
  vl_sampler_free(s);
  /* top-k = 1 with temperature equals greedy */
  p = sampling();
  p.top_k = 1;
  s = vl_sampler_new(&p, V);
  REQUIRE(s);
  for (int r = 0; r < 50; r++) {
    float y[V];
    for (int i = 0; i < V; i++)
      y[i] = (float)((r * 7 + i * 13) % 11) - 5.0f + 0.01f * (float)i;
    int best = 0;
    for (int i = 1; i < V; i++)
      if (y[i] > y[best]) best = i;
    CHECK(vl_sampler_sample(s, y, V, NULL, 0) == best);
  }
  vl_sampler_free(s);
}

static void full_distribution_matches(void) {
  double f[V];
  freqs(sampling(), f);
  expect_kept(f, V);
}

static void top_k_keeps_k(void) {
  vl_sampler_params p = sampling();
  p.top_k = 3;
  double f[V];
  freqs(p, f);
  expect_kept(f, 3);
}

static void top_p_keeps_smallest_set(void) {
  vl_sampler_params p = sampling();
  double f[V];
  p.top_p = 0.64f; /* 0.4 < 0.64, 0.4+0.25 >= 0.64: keep 2 */
  freqs(p, f);
  expect_kept(f, 2);
  p.top_p = 0.66f; /* needs the third */
  freqs(p, f);
  expect_kept(f, 3);
  p.top_p = 0.3f; /* the top token alone */
  freqs(p, f);
  expect_kept(f, 1);
}

static void min_p_drops_unlikely(void) {
  vl_sampler_params p = sampling();
  double f[V];
  p.min_p = 0.3f; /* cut 0.12: keep 0.4, 0.25, 0.15 */
  freqs(p, f);
  expect_kept(f, 3);
  p.min_p = 0.2f; /* cut 0.08: keep 4 */
  p.top_k = 3;    /* combined with top-k: 3 */
  freqs(p, f);
  expect_kept(f, 3);
}

static void temperature_sharpens(void) {
  vl_sampler_params p = sampling();
  p.temperature = 0.5f; /* p^2 renormalised */
  double f[V], z = 0;
  freqs(p, f);
  for (int i = 0; i < V; i++)
    z += P[i] * P[i];
  for (int i = 0; i < V; i++)
    CHECK_NEAR(f[i], P[i] * P[i] / z, 0.015);
}

static void repetition_penalty_as_hf(void) {
  vl_sampler_params p = vl_sampler_defaults();
  p.repeat_penalty = 2.0f;
  vl_sampler *s = vl_sampler_new(&p, 4);
  REQUIRE(s);
  float x[4] = {2.0f, -2.0f, 1.5f, 0.5f};
  int32_t hist[4] = {0, 1, 1, 0}; /* repeats penalised once */
  CHECK(vl_sampler_sample(s, x, 4, hist, 4) == 2);
  CHECK(x[0] == 1.0f && x[1] == -4.0f && x[2] == 1.5f && x[3] == 0.5f);
  /* the marks are cleared: the next call penalises only its own history */
  float y[4] = {2.0f, -2.0f, 1.5f, 0.5f};
  CHECK(vl_sampler_sample(s, y, 4, NULL, 0) == 0);
  CHECK(y[0] == 2.0f && y[1] == -2.0f);
  vl_sampler_free(s);
}

static void seeded_draws_are_deterministic(void) {
  int32_t a[200], b[200], c[200];
  for (int run = 0; run < 3; run++) {
    vl_sampler_params p = sampling();
    p.seed = run == 2 ? 99 : 1234;
    vl_sampler *s = vl_sampler_new(&p, V);
    REQUIRE(s);
    int32_t *out = run == 0 ? a : run == 1 ? b : c;
    for (int i = 0; i < 200; i++) {
      float x[V];
      fill(x);
      out[i] = vl_sampler_sample(s, x, V, NULL, 0);
    }
    vl_sampler_free(s);
  }
  CHECK(memcmp(a, b, sizeof a) == 0);
  CHECK(memcmp(a, c, sizeof a) != 0);
}

static void bad_parameters_are_refused(void) {
  vl_sampler_params p = vl_sampler_defaults();
  p.temperature = -1;
  CHECK(!vl_sampler_new(&p, V) && strstr(vl_last_error(), "temperature"));
  p = vl_sampler_defaults();
  p.top_p = 0;
  CHECK(!vl_sampler_new(&p, V) && strstr(vl_last_error(), "top-p"));
  p = vl_sampler_defaults();
  p.min_p = 1.5f;
  CHECK(!vl_sampler_new(&p, V) && strstr(vl_last_error(), "min-p"));
  p = vl_sampler_defaults();
  p.repeat_penalty = 0;
  CHECK(!vl_sampler_new(&p, V) && strstr(vl_last_error(), "penalty"));
  p = vl_sampler_defaults();
  p.top_k = -2;
  CHECK(!vl_sampler_new(&p, V) && strstr(vl_last_error(), "top-k"));
  CHECK(!vl_sampler_new(&p, 0));
  p = vl_sampler_defaults();
  vl_sampler *s = vl_sampler_new(&p, V);
  REQUIRE(s);
  float x[V] = {-INFINITY, NAN, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  CHECK(vl_sampler_sample(s, x, V, NULL, 0) < 0 && strstr(vl_last_error(), "finite"));
  CHECK(vl_sampler_sample(s, x, V - 1, NULL, 0) < 0);
  vl_sampler_free(s);
}

int main(void) {
  RUN(greedy_picks_argmax);
  RUN(full_distribution_matches);
  RUN(top_k_keeps_k);
  RUN(top_p_keeps_smallest_set);
  RUN(min_p_drops_unlikely);
  RUN(temperature_sharpens);
  RUN(repetition_penalty_as_hf);
  RUN(seeded_draws_are_deterministic);
  RUN(bad_parameters_are_refused);
  return test_summary();
}
