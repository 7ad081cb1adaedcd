/* vlens enrich: caption images with a BLIP captioner, turn each caption into
 * a rich description with a text LLM, and measure the descriptions
 * (key-element recall, forbidden terms, length range). Text report by
 * default, one JSON document with --json (README: "Enriched descriptions"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "tasks/enrich.h"
#include "tasks/model_paths.h"

#define MAX_FORBID 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: vlens enrich IMAGE... [options]\n"
          "  --captioner DIR        BLIP captioning model (default: models/" VL_DEFAULT_CAPTIONER
          ")\n"
          "  --llm DIR              Qwen2/Qwen3 chat model (default: models/" VL_DEFAULT_LLM ")\n"
          "  --lang en|zh           description language (default en)\n"
          "  --words MIN-MAX        length anchor, words (zh: characters); default 60-120\n"
          "                         (zh 100-200)\n"
          "  --forbid LIST          comma-separated words the description must not use\n"
          "  --keywords FILE        expected key elements, one per line (also asked for in the\n"
          "                         prompt); default: a Shapes World image's manifest objects\n"
          "  --separate             one LLM call per image (default: one call, numbered items)\n"
          "  --think                let Qwen3 think first (default: thinking off)\n"
          "  --reasoning            report the reasoning text too\n"
          "  --temperature T        default 0.6 (0 = greedy)\n"
          "  --top-p P              default 0.95\n"
          "  --seed S               sampling seed (default 0)\n"
          "  --kv-cache f32|f16     LLM KV cache storage, as for generate (default f32)\n"
          "  --activations exact|rounded   LLM products as for generate (default exact)\n"
          "  -n, --max-tokens N     LLM tokens per call (default: from the word range)\n"
          "  --caption-prompt TEXT  text the captioner continues (default: none)\n"
          "  --json                 one JSON document on stdout\n");
}

/* Error line on stderr and, with --json, the error document on stdout. */
static int fail(int json, int status) {
  const char *msg = vl_last_error();
  fprintf(stderr, "vlens: %s%s\n", strncmp(msg, "enrich:", 7) ? "enrich: " : "", msg);
  if (json) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", vl_status_name(vl_last_error_code()));
    cJSON_AddStringToObject(e, "message", msg);
    char *s = cJSON_PrintUnformatted(root);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
  }
  return status;
}

static int num(const char *opt, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !(v >= lo && v <= hi))
    return vl_error(VL_ERR_INVALID, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
  *out = v;
  return 0;
}

/* "a, b,c" -> words (pointers into the modified string s). */
static int split_list(char *s, const char **out, size_t *n) {
  *n = 0;
  for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
    while (*tok == ' ')
      tok++;
    size_t len = strlen(tok);
    while (len && tok[len - 1] == ' ')
      tok[--len] = 0;
    if (!len) continue;
    if (*n == MAX_FORBID) return vl_error(VL_ERR_LIMIT, "--forbid: more than %d words", MAX_FORBID);
    out[(*n)++] = tok;
  }
  if (!*n) return vl_error(VL_ERR_INVALID, "--forbid: no words given");
  return 0;
}

static cJSON *word_array(char *const *w, size_t n) {
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(w[i]));
  return a;
}

static void print_json(const vl_enrich_result *r, const vl_enrich_run_opts *o, const char *cap,
                       const char *llm, double load_ms, int reasoning) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "task", "enrich");
  cJSON_AddStringToObject(root, "captioner", cap);
  cJSON_AddStringToObject(root, "llm", llm);
  cJSON_AddStringToObject(root, "lang", o->prompt.lang == VL_ENRICH_ZH ? "zh" : "en");
  cJSON *words = cJSON_AddArrayToObject(root, "words");
  cJSON_AddItemToArray(words, cJSON_CreateNumber(o->prompt.min_words));
  cJSON_AddItemToArray(words, cJSON_CreateNumber(o->prompt.max_words));
  cJSON_AddItemToObject(root, "forbidden",
                        word_array((char *const *)o->prompt.forbidden, o->prompt.n_forbidden));
  cJSON *items = cJSON_AddArrayToObject(root, "items");
  for (size_t i = 0; i < r->n; i++) {
    const vl_enrich_item *it = &r->items[i];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "image", it->image);
    cJSON_AddStringToObject(j, "caption", it->caption);
    cJSON *el = cJSON_AddObjectToObject(j, "elements");
    cJSON_AddStringToObject(el, "subject", it->elements.subject);
    cJSON_AddStringToObject(el, "scene", it->elements.scene);
    cJSON_AddStringToObject(el, "state", it->elements.state);
    cJSON_AddBoolToObject(el, "shapes_world", it->elements.shapes_world);
    cJSON_AddStringToObject(j, "prompt", it->prompt);
    cJSON_AddStringToObject(j, "description", it->description);
    if (reasoning && it->reasoning) cJSON_AddStringToObject(j, "reasoning", it->reasoning);
    cJSON_AddItemToObject(j, "keywords", word_array(it->keywords.words, it->keywords.n));
    cJSON_AddStringToObject(j, "keywords_source", it->keywords_source);
    cJSON *m = cJSON_AddObjectToObject(j, "metrics");
    cJSON_AddNumberToObject(m, "keywords", (double)it->metrics.n_keywords);
    cJSON_AddNumberToObject(m, "found", (double)it->metrics.n_found);
    cJSON_AddNumberToObject(m, "recall", it->metrics.recall);
    cJSON_AddNumberToObject(m, "forbidden_hits", (double)it->metrics.forbidden_hits);
    cJSON_AddNumberToObject(m, "length", (double)it->metrics.length);
    cJSON_AddBoolToObject(m, "in_range", it->metrics.in_range);
    cJSON_AddItemToArray(items, j);
  }
  const vl_metrics_total *t = &r->total;
  cJSON *a = cJSON_AddObjectToObject(root, "aggregate");
  cJSON_AddNumberToObject(a, "items", (double)t->n_items);
  cJSON_AddNumberToObject(a, "items_found", (double)r->items_found);
  cJSON_AddNumberToObject(a, "mean_recall", t->mean_recall);
  cJSON_AddNumberToObject(a, "keywords", (double)t->keywords);
  cJSON_AddNumberToObject(a, "found", (double)t->found);
  cJSON_AddNumberToObject(a, "micro_recall", t->micro_recall);
  cJSON_AddNumberToObject(a, "forbidden_hits", (double)t->forbidden_hits);
  cJSON_AddNumberToObject(a, "items_with_forbidden", (double)t->items_with_forbidden);
  cJSON_AddNumberToObject(a, "mean_length", t->mean_length);
  cJSON_AddNumberToObject(a, "in_range", (double)t->n_in_range);
  cJSON_AddNumberToObject(a, "in_range_rate", t->in_range_rate);
  cJSON *g = cJSON_AddObjectToObject(root, "llm_usage");
  cJSON_AddNumberToObject(g, "calls", (double)r->llm_calls);
  cJSON_AddNumberToObject(g, "prompt_tokens", (double)r->prompt_tokens);
  cJSON_AddNumberToObject(g, "generated_tokens", (double)r->generated_tokens);
  cJSON *tm = cJSON_AddObjectToObject(root, "timing_ms");
  cJSON_AddNumberToObject(tm, "load", (double)(long long)load_ms);
  cJSON_AddNumberToObject(tm, "caption", (double)(long long)r->caption_ms);
  cJSON_AddNumberToObject(tm, "generate", (double)(long long)r->generate_ms);
  cJSON_AddNumberToObject(tm, "total", (double)(long long)(load_ms + r->total_ms));
  char *s = cJSON_Print(root);
  if (s) printf("%s\n", s);
  free(s);
  cJSON_Delete(root);
}

static void print_text(const vl_enrich_result *r, int reasoning) {
  for (size_t i = 0; i < r->n; i++) {
    const vl_enrich_item *it = &r->items[i];
    const vl_text_metrics *m = &it->metrics;
    printf("%s\n  caption:     %s\n", it->image, it->caption);
    if (reasoning && it->reasoning && *it->reasoning) printf("  reasoning:   %s\n", it->reasoning);
    printf("  description: %s\n", *it->description ? it->description : "(none)");
    printf("  metrics:     recall %zu/%zu (%s), forbidden %zu, length %zu%s\n\n", m->n_found,
           m->n_keywords, it->keywords_source, m->forbidden_hits, m->length,
           m->in_range ? " (in range)" : " (out of range)");
  }
  const vl_metrics_total *t = &r->total;
  printf("%zu images: mean recall %.3f (%zu/%zu keywords), forbidden %zu in %zu items, mean "
         "length %.1f, in range %zu/%zu\n",
         t->n_items, t->mean_recall, t->found, t->keywords, t->forbidden_hits,
         t->items_with_forbidden, t->mean_length, t->n_in_range, t->n_items);
}

int cmd_enrich(int argc, char **argv) {
  int json = 0, reasoning = 0, words_set = 0;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--json")) json = 1;
  const char *cap_dir = NULL, *llm_dir = NULL, *forbid[MAX_FORBID];
  const char **images = calloc((size_t)argc, sizeof *images);
  size_t n_img = 0, n_forbid = 0;
  char *forbid_buf = NULL;
  vl_enrich_run_opts o = vl_enrich_run_defaults();
  int rc = 0;
  if (!images) {
    vl_error(VL_ERR_NOMEM, "out of memory");
    return fail(json, 1);
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    double v;
    int bad = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      goto out;
    } else if (!strcmp(a, "--json")) {
    } else if (!strcmp(a, "--captioner") && has) {
      cap_dir = argv[++i];
    } else if (!strcmp(a, "--llm") && has) {
      llm_dir = argv[++i];
    } else if (!strcmp(a, "--lang") && has) {
      bad = vl_enrich_parse_lang(argv[++i], &o.prompt.lang);
    } else if (!strcmp(a, "--words") && has) {
      bad = vl_enrich_parse_range(argv[++i], &o.prompt.min_words, &o.prompt.max_words);
      words_set = 1;
    } else if (!strcmp(a, "--forbid") && has) {
      free(forbid_buf);
      forbid_buf = strdup(argv[++i]);
      bad = forbid_buf ? split_list(forbid_buf, forbid, &n_forbid)
                       : vl_error(VL_ERR_NOMEM, "out of memory");
    } else if (!strcmp(a, "--keywords") && has) {
      o.keywords_file = argv[++i];
    } else if (!strcmp(a, "--separate")) {
      o.separate = true;
    } else if (!strcmp(a, "--think")) {
      o.prompt.enable_thinking = 1;
    } else if (!strcmp(a, "--reasoning")) {
      reasoning = 1;
      o.keep_reasoning = true;
    } else if (!strcmp(a, "--temperature") && has) {
      if (!(bad = num(a, argv[++i], 0, 100, &v))) o.prompt.temperature = (float)v;
    } else if (!strcmp(a, "--top-p") && has) {
      if (!(bad = num(a, argv[++i], 1e-9, 1, &v))) o.prompt.top_p = (float)v;
    } else if (!strcmp(a, "--seed") && has) {
      if (!(bad = num(a, argv[++i], 0, 9007199254740992.0, &v))) o.seed = (uint64_t)v;
    } else if (!strcmp(a, "--kv-cache") && has) {
      const char *s = argv[++i];
      if (strcmp(s, "f32") && strcmp(s, "f16"))
        bad = vl_error(VL_ERR_INVALID, "--kv-cache: '%s' is not f32 or f16", s);
      o.kv_dtype = strcmp(s, "f16") ? VL_F32 : VL_F16;
    } else if (!strcmp(a, "--activations") && has) {
      const char *s = argv[++i];
      if (strcmp(s, "exact") && strcmp(s, "rounded"))
        bad = vl_error(VL_ERR_INVALID, "--activations: '%s' is not exact or rounded", s);
      o.round_activations = !strcmp(s, "rounded");
    } else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && has) {
      if (!(bad = num(a, argv[++i], 1, 1 << 20, &v))) o.max_tokens = (int)v;
    } else if (!strcmp(a, "--caption-prompt") && has) {
      o.caption_prompt = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      bad = vl_error(VL_ERR_INVALID, "unknown option or missing value: '%s'", a);
    } else {
      images[n_img++] = a;
    }
    if (bad) {
      if (!json) usage(stderr);
      rc = fail(json, 2);
      goto out;
    }
  }
  if (!n_img) {
    vl_error(VL_ERR_INVALID, "no images given (vlens enrich IMAGE... ; --help for options)");
    rc = fail(json, 2);
    goto out;
  }
  if (o.prompt.lang == VL_ENRICH_ZH && !words_set) {
    o.prompt.min_words = 100;
    o.prompt.max_words = 200;
  }
  o.prompt.forbidden = forbid;
  o.prompt.n_forbidden = n_forbid;
  /* missing images fail before minutes of model loading */
  for (size_t i = 0; i < n_img; i++)
    if (access(images[i], R_OK)) {
      vl_error(VL_ERR_IO, "%s: %s", images[i], strerror(errno));
      rc = fail(json, 1);
      goto out;
    }
  char cap_def[4096], llm_def[4096];
  if (!cap_dir) {
    if (vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "--captioner", cap_def, sizeof cap_def)) {
      rc = fail(json, 1);
      goto out;
    }
    cap_dir = cap_def;
  }
  if (!llm_dir) {
    if (vl_model_default_path(VL_DEFAULT_LLM, NULL, "--llm", llm_def, sizeof llm_def)) {
      rc = fail(json, 1);
      goto out;
    }
    llm_dir = llm_def;
  }
  double t0 = vl_now_seconds();
  vl_blip *cap = vl_blip_load(cap_dir);
  if (!cap) vl_error_context("captioner");
  vl_qwen_text *llm = cap ? vl_qwen_text_load(llm_dir) : NULL;
  if (cap && !llm) vl_error_context("LLM");
  vl_tokenizer *tok = llm ? vl_tokenizer_load(llm_dir) : NULL;
  if (llm && !tok) vl_error_context("LLM tokenizer");
  vl_chat_template tmpl = VL_CHAT_QWEN3;
  vl_enrich_result r = {0};
  if (!cap || !llm || !tok || vl_chat_detect_folder(llm_dir, &tmpl)) {
    rc = fail(json, 1);
  } else {
    double load_ms = (vl_now_seconds() - t0) * 1e3;
    vl_log("enrich: captioner %s, LLM %s (%s template), loaded in %.0f ms", cap_dir, llm_dir,
           vl_chat_template_name(tmpl), load_ms);
    if (vl_enrich_run(cap, llm, tok, tmpl, images, n_img, &o, &r)) {
      rc = fail(json, 1);
    } else if (json) {
      print_json(&r, &o, cap_dir, llm_dir, load_ms, reasoning);
    } else {
      print_text(&r, reasoning);
    }
  }
  vl_enrich_result_free(&r);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(llm);
  vl_blip_free(cap);
out:
  free(forbid_buf);
  free(images);
  return rc;
}
