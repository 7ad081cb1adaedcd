/* vlens eval on a tiny generated Shapes World set, and the task commands'
 * error path through the CLI binary (build/<variant>/vlens). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "io/shapes_world.h"
#include "tasks/eval.h"
#include "tasks/model_paths.h"
#include "tasks/train.h"
#include "test.h"

static char g_model[1024], g_set[1024];

static int setup(void) {
  if (g_model[0]) return 1;
  snprintf(g_model, sizeof g_model, "%s/tiny", test_tmpdir());
  snprintf(g_set, sizeof g_set, "%s/set", test_tmpdir());
  if (vl_train_init_model(g_model, "tiny", 0, 11) || vl_shapes_write_set(g_set, 9, 10, NULL)) {
    printf("  setup: %s\n", vl_last_error());
    g_model[0] = 0;
    return 0;
  }
  return 1;
}

static void test_eval_numbers_consistent(void) {
  REQUIRE(setup());
  vl_blip *m = vl_blip_load(g_model);
  REQUIRE(m);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam,attention") == VL_OK);
  vl_eval_opts o = {.max_scenes = 0};
  vl_eval_result r;
  int rc = vl_eval(m, g_set, &o, &cfg, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  CHECK(r.scenes == 10);
  CHECK(r.hypotheses == 30);
  int sum = 0, diag = 0, tpl = 0;
  for (int g = 0; g < 3; g++)
    for (int p = 0; p < 3; p++) {
      sum += r.confusion[g][p];
      diag += g == p ? r.confusion[g][p] : 0;
    }
  for (int t = 0; t < 5; t++)
    tpl += r.tpl_n[t];
  CHECK(sum == r.hypotheses && diag == r.correct && tpl == r.hypotheses);
  /* random was added as the baseline; every method saw every target */
  CHECK(r.n_methods == 3 && !strcmp(r.methods[2], "random"));
  /* expected targets from the scenes themselves */
  int words = 0, decisions = 0;
  for (int i = 0; i < 10; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(9, i, NULL);
    REQUIRE(sc);
    words += 2 * sc->n_objects; /* colour + shape word of each phrase */
    for (int h = 0; h < sc->n_hypotheses; h++)
      decisions +=
          sc->hypotheses[h].n_referents == 1 && sc->hypotheses[h].label != VL_LABEL_CONTRADICTION;
    vl_shapes_free(sc);
  }
  for (int k = 0; k < r.n_methods; k++) {
    CHECK(r.word[k].n == words);
    CHECK(r.decision[k].n == decisions);
    CHECK(r.word[k].hits >= 0 && r.word[k].hits <= r.word[k].n);
    CHECK(r.word[k].mass >= 0 && r.word[k].mass <= r.word[k].n + 1e-9);
  }
  CHECK(r.center_word.n == words);
  /* a random peak lands in the box about as often as the box's share of cells */
  double chance = r.chance_word / words, rnd = r.word[2].hits / words;
  CHECK(chance > 0.02 && chance < 0.5);
  CHECK(fabs(rnd - chance) < 0.2);
  char *txt = vl_eval_report_text(&r, "tiny", g_set);
  REQUIRE(txt);
  const char *want[] = {"caption: exact match",
                        "entailment: accuracy",
                        "per template",
                        "relation",
                        "confusion matrix",
                        "pointing game",
                        "gradcam",
                        "random",
                        "center",
                        "chance",
                        "latency"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    CHECK(strstr(txt, want[i]));
  free(txt);
  cJSON *j = vl_eval_to_json(&r, "tiny", g_set);
  REQUIRE(j);
  cJSON *mat = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "entailment"), "confusion"), "matrix");
  CHECK(cJSON_GetArraySize(mat) == 3);
  CHECK(cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "caption_words"), "random"));
  cJSON_Delete(j);
  o.max_scenes = 2;
  REQUIRE(vl_eval(m, g_set, &o, &cfg, &r) == VL_OK);
  CHECK(r.scenes == 2 && r.hypotheses == 6);
  CHECK(vl_eval(m, "/nonexistent-set", &o, &cfg, &r) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "/nonexistent-set/manifest.jsonl"));
  CHECK(vl_eval_template_of("there is a small red circle.") == VL_TPL_EXISTS_SIZED);
  CHECK(vl_eval_template_of("the red circle is left of the blue square.") == VL_TPL_RELATION);
  CHECK(vl_eval_template_of("the red circle is heavy.") == VL_TPL_UNKNOWABLE);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
}

/* Runs the CLI; stdout / stderr into buffers; returns the exit status. */
static int run_cli(const char *args, char *out, size_t on, char *err, size_t en) {
  static char exe[PATH_MAX];
  if (!exe[0]) {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *s = strrchr(exe, '/');
    *s = 0;
    s = strrchr(exe, '/'); /* build/<variant>/tests -> build/<variant> */
    strcpy(s, "/vlens");
  }
  if (access(exe, X_OK)) {
    printf("  %s is not built (make cli)\n", exe);
    return -1;
  }
  char cmd[8192], fo[1200], fe[1200];
  snprintf(fo, sizeof fo, "%s/cli.out", test_tmpdir());
  snprintf(fe, sizeof fe, "%s/cli.err", test_tmpdir());
  snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s", exe, args, fo, fe);
  int st = system(cmd);
  size_t n;
  unsigned char *b = test_read_file(fo, &n);
  snprintf(out, on, "%s", b ? (char *)b : "");
  free(b);
  b = test_read_file(fe, &n);
  snprintf(err, en, "%s", b ? (char *)b : "");
  free(b);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* non-zero exit, ONE line on stderr containing `needle`, and with --json
 * the error document on stdout */
static void expect_error(const char *args, const char *needle) {
  char out[8192], err[8192];
  int st = run_cli(args, out, sizeof out, err, sizeof err);
  CHECK(st > 0);
  const char *nl = strchr(err, '\n');
  CHECK(nl && nl[1] == 0);
  if (!strstr(err, needle)) printf("  '%s' not in: %s", needle, err);
  CHECK(strstr(err, needle));
  if (strstr(args, "--json")) {
    cJSON *j = cJSON_Parse(out);
    CHECK(j && cJSON_GetObjectItem(j, "error"));
    cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(e && cJSON_IsString(cJSON_GetObjectItem(e, "code")) &&
          strstr(cJSON_GetObjectItem(e, "message")->valuestring, needle));
    cJSON_Delete(j);
  }
}

static void test_cli_errors_and_json(void) {
  REQUIRE(setup());
  char a[4096];
  snprintf(a, sizeof a, "describe /nonexistent/img.png -m %s --json", g_model);
  expect_error(a, "/nonexistent/img.png");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m /nonexistent/model --json", g_set);
  expect_error(a, "/nonexistent/model");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m %s --method gradcam,bogus --json", g_set,
           g_model);
  expect_error(a, "bogus");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m %s --layer 7 --json", g_set, g_model);
  expect_error(a, "--layer 7");
  snprintf(a, sizeof a, "entail %s/scene_00001.png -m %s", g_set, g_model);
  expect_error(a, "sentence");
  snprintf(a, sizeof a, "eval /nonexistent-set -m %s --json", g_model);
  expect_error(a, "manifest.jsonl");
  char def[1024];
  if (vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "-m", def, sizeof def) != VL_OK) {
    snprintf(a, sizeof a, "describe %s/scene_00001.png --json", g_set);
    expect_error(a, "models/shapes-blip");
    expect_error(a, "-m DIR");
  }
  /* the happy paths print one valid document */
  char out[1 << 16], err[8192];
  snprintf(a, sizeof a, "entail %s/scene_00001.png \"there is a red circle.\" -m %s --json -q",
           g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  cJSON *j = cJSON_Parse(out);
  REQUIRE(j);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "task")->valuestring, "entail"));
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "gradcam"));
  cJSON_Delete(j);
  snprintf(a, sizeof a, "eval %s -m %s --max-scenes 1", g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  CHECK(strstr(out, "confusion matrix") && strstr(out, "pointing game"));
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_eval_numbers_consistent);
  RUN(test_cli_errors_and_json);
  return test_summary();
}
