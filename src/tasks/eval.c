/* `vlens eval`: captions, entailment and explanation scores on a Shapes World set. */
#include "tasks/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "explain/scoring.h"
#include "io/json.h"
#include "io/shapes_world.h"
#include "tasks/entail.h"

static const char *const k_tpl[5] = {"exists", "exists-sized", "count", "relation", "unknowable"};

const char *vl_eval_template_name(int tpl) { return tpl >= 0 && tpl < 5 ? k_tpl[tpl] : "?"; }

int vl_eval_template_of(const char *t) {
  if (!strncmp(t, "there are ", 10)) return VL_TPL_COUNT;
  if (!strncmp(t, "there is a small ", 17) || !strncmp(t, "there is a large ", 17))
    return VL_TPL_EXISTS_SIZED;
  if (!strncmp(t, "there is a ", 11)) return VL_TPL_EXISTS;
  if (!strncmp(t, "the ", 4)) {
    static const char *const rel[4] = {" is left of ", " is right of ", " is above ", " is below "};
    for (int i = 0; i < 4; i++)
      if (strstr(t, rel[i])) return VL_TPL_RELATION;
    return VL_TPL_UNKNOWABLE;
  }
  return -1;
}

static int label_of(const char *s) {
  for (int l = 0; l < 3; l++)
    if (s && !strcmp(s, vl_entail_label_name(l))) return l;
  return -1;
}

static bool is_colour(const char *w) {
  for (int c = 0; c < VL_COLOR_COUNT; c++)
    if (!strcmp(w, vl_color_name((vl_color)c))) return true;
  return false;
}
static bool is_shape(const char *w) {
  for (int s = 0; s < VL_SHAPE_COUNT; s++)
    if (!strcmp(w, vl_shape_name((vl_shape)s))) return true;
  return false;
}

/* Share of the grid's cell centres inside b: the pointing game of a peak
 * drawn uniformly among the cells. */
static double chance(vl_box b, int gw, int gh, int W, int H) {
  int in = 0;
  for (int r = 0; r < gh; r++)
    for (int c = 0; c < gw; c++)
      in += vl_box_contains(b, (c + 0.5) * W / gw, (r + 0.5) * H / gh);
  return (double)in / (gw * gh);
}

/* The three kinds of targets (eval.h). */
typedef enum { KIND_WORD, KIND_DECISION, KIND_GEN_WORD } target_kind;

static int score_maps(vl_eval_result *res, vl_heatmap **maps, int n, vl_box box, target_kind kind) {
  if (n <= 0) return VL_OK;
  const vl_heatmap *m0 = maps[0];
  vl_eval_score *per = kind == KIND_WORD       ? res->word
                       : kind == KIND_GEN_WORD ? res->gen_word
                                               : res->decision;
  for (int k = 0; k < n; k++) {
    per[k].hits += vl_pointing_hit(maps[k], box);
    per[k].mass += vl_mass_in_box(maps[k], box);
    per[k].n++;
  }
  vl_heatmap *cm = vl_center_baseline_map(m0->gw, m0->gh, m0->image_w, m0->image_h);
  if (!cm) return vl_last_error_code();
  vl_eval_score *c = kind == KIND_WORD       ? &res->center_word
                     : kind == KIND_GEN_WORD ? &res->center_gen_word
                                             : &res->center_decision;
  c->hits += vl_center_pointing_hit(m0->image_w, m0->image_h, box);
  c->mass += vl_mass_in_box(cm, box);
  c->n++;
  *(kind == KIND_WORD       ? &res->chance_word
    : kind == KIND_GEN_WORD ? &res->chance_gen_word
                            : &res->chance_decision) +=
      chance(box, m0->gw, m0->gh, m0->image_w, m0->image_h);
  vl_heatmap_free(cm);
  return VL_OK;
}

static int box_of(const cJSON *line, int obj, vl_box *b, const char *what) {
  const cJSON *bx = cJSON_GetArrayItem(cJSON_GetObjectItem(line, "objects"), obj);
  bx = bx ? cJSON_GetObjectItem(bx, "box") : NULL;
  if (!cJSON_IsArray(bx) || cJSON_GetArraySize(bx) != 4)
    return vl_error(VL_ERR_FORMAT, "%s: object %d has no box [x0, y0, x1, y1]", what, obj);
  double v[4];
  for (int i = 0; i < 4; i++)
    v[i] = cJSON_GetArrayItem(bx, i)->valuedouble;
  *b = vl_box_grow((vl_box){v[0], v[1], v[2], v[3]}, VL_SCORE_GROW_PX);
  return VL_OK;
}

static void faith_add(vl_eval_faith *s, const vl_faithfulness *f, bool random_order) {
  s->deletion_auc += random_order ? f->random_deletion_auc : f->deletion_auc;
  s->insertion_auc += random_order ? f->random_insertion_auc : f->insertion_auc;
  for (int i = 0; i <= VL_FAITH_STEPS; i++) {
    s->deletion[i] += random_order ? f->random_deletion[i] : f->deletion[i];
    s->insertion[i] += random_order ? f->random_insertion[i] : f->insertion[i];
  }
  s->n++;
}

/* Adds one target's curves (n methods); the random order is the same
 * permutation for every method (seeded by the seed alone), so its curves
 * are taken from the first. */
static void faith_score(vl_eval_result *res, const vl_faithfulness *f, int n, bool word) {
  for (int k = 0; k < n; k++)
    faith_add(word ? &res->faith_word[k] : &res->faith_decision[k], &f[k], false);
  faith_add(word ? &res->faith_word_random : &res->faith_decision_random, &f[0], true);
  res->faith_targets++;
}

/* Whether the next target of a kind gets faithfulness curves. */
static bool faith_wanted(const vl_eval_result *res, const vl_explain_cfg *cfg, bool word) {
  int done = word ? res->faith_word_random.n : res->faith_decision_random.n;
  return cfg->faithfulness && (res->faithfulness_max <= 0 || done < res->faithfulness_max);
}

/* Caption words naming colour / shape of phrase i of caption (recorded as
 * given: the gold caption for KIND_WORD, the model's own for KIND_GEN_WORD,
 * where only phrases i with phrase_ok[i] count). */
static int caption_targets(const vl_blip *m, const vl_image *img, const cJSON *line,
                           const char *caption, target_kind kind, const bool *phrase_ok, int n_ok,
                           const vl_explain_cfg *cfg, vl_eval_result *res, const char *what) {
  int64_t *ids = NULL, n = 0;
  int rc = vl_blip_prompt_ids(m, caption, &ids, &n);
  if (rc) return rc;
  vl_blip_rec rec;
  double t0 = vl_now_seconds(), faith_ms = 0;
  rc = vl_blip_record(m, img, ids, n, &rec);
  vl_heatmap **maps = calloc((size_t)cfg->n_methods, sizeof *maps);
  vl_faithfulness *faith = calloc((size_t)cfg->n_methods, sizeof *faith);
  if (!rc && (!maps || !faith)) rc = vl_error(VL_ERR_NOMEM, "out of memory");
  int phrase = -1;
  for (int64_t p = 1; !rc && p < n; p++) {
    const char *raw = vl_tokenizer_id_to_token(m->tok, (int32_t)ids[p]);
    if (!raw) continue;
    if (!strcmp(raw, "a")) phrase++;
    if (phrase < 0 || !(is_colour(raw) || is_shape(raw))) continue;
    if (phrase_ok && (phrase >= n_ok || !phrase_ok[phrase])) continue;
    vl_box box;
    if ((rc = box_of(line, phrase, &box, what))) break;
    int64_t q = p - 1, id = ids[p];
    vl_blip_target t = {1, &q, &id};
    if ((rc = vl_blip_explain(&rec, &t, &cfg->ex, maps))) break;
    res->explain_targets++;
    rc = score_maps(res, maps, cfg->n_methods, box, kind);
    if (!rc && kind == KIND_WORD && faith_wanted(res, cfg, true)) {
      double f0 = vl_now_seconds();
      for (int k = 0; !rc && k < cfg->n_methods; k++)
        rc = vl_blip_faithfulness(&rec, img, &t, maps[k], cfg->ex.seed, &faith[k]);
      if (!rc) faith_score(res, faith, cfg->n_methods, true);
      faith_ms += (vl_now_seconds() - f0) * 1e3;
    }
    for (int k = 0; k < cfg->n_methods; k++) {
      vl_heatmap_free(maps[k]);
      maps[k] = NULL;
    }
  }
  res->ms_faithfulness += faith_ms;
  res->ms_explain += (vl_now_seconds() - t0) * 1e3 - faith_ms;
  free(faith);
  free(maps);
  vl_blip_rec_free(&rec);
  free(ids);
  return rc;
}

/* Phrases of a caption's words: phrase i runs from its i-th "a" to the
 * first shape word after it (size, colour, shape; connectives and
 * punctuation left out). start/len index words; at most max phrases. */
static int phrases_of(char **w, int n, int *start, int *len, int max) {
  int np = 0;
  for (int i = 0; i < n && np < max; i++) {
    if (strcmp(w[i], "a")) continue;
    int e = i + 1;
    while (e < n && !is_shape(w[e]) && strcmp(w[e], "a"))
      e++;
    if (e < n && is_shape(w[e])) {
      start[np] = i;
      len[np++] = e - i + 1;
    }
  }
  return np;
}

#define MAX_PHRASES 16

/* A caption's words and its phrases (phrases_of). */
typedef struct {
  char **w;
  int n, np, start[MAX_PHRASES], len[MAX_PHRASES];
} caption_phrases;

static int split_phrases(const char *text, caption_phrases *c) {
  memset(c, 0, sizeof *c);
  int rc = vl_split_words(text, &c->w, &c->n);
  if (!rc) c->np = phrases_of(c->w, c->n, c->start, c->len, MAX_PHRASES);
  return rc;
}

static void free_phrases(caption_phrases *c) {
  for (int i = 0; i < c->n; i++)
    free(c->w[i]);
  free(c->w);
}

/* Phrase i of a equals phrase j of b. */
static bool same_phrase(const caption_phrases *a, int i, const caption_phrases *b, int j) {
  bool eq = a->len[i] == b->len[j];
  for (int k = 0; eq && k < a->len[i]; k++)
    eq = !strcmp(a->w[a->start[i] + k], b->w[b->start[j] + k]);
  return eq;
}

/* d has g's phrases, as many times each, in another order. */
static bool phrases_reordered(const caption_phrases *d, const caption_phrases *g) {
  bool used[MAX_PHRASES] = {false}, in_order = true;
  if (g->np != d->np || g->np < 2) return false;
  for (int i = 0; i < d->np; i++) { /* match each generated phrase to an unused gold one */
    int hit = -1;
    for (int j = 0; j < g->np && hit < 0; j++)
      if (!used[j] && same_phrase(d, i, g, j)) hit = j;
    if (hit < 0) return false;
    used[hit] = true;
    in_order &= hit == i;
  }
  return !in_order;
}

int vl_eval_phrases_reordered(const char *generated, const char *gold, bool *reordered) {
  caption_phrases g = {0}, d = {0};
  int rc = split_phrases(gold, &g);
  if (!rc) rc = split_phrases(generated, &d);
  *reordered = !rc && phrases_reordered(&d, &g);
  free_phrases(&g);
  free_phrases(&d);
  return rc;
}

static int eval_scene(const vl_blip *m, const char *dir, const cJSON *line, int lineno,
                      const vl_eval_opts *o, const vl_explain_cfg *cfg, vl_eval_result *res) {
  char what[4200], path[4200];
  snprintf(what, sizeof what, "%s/manifest.jsonl:%d", dir, lineno);
  const char *imname = vl_json_str(line, "image", NULL),
             *caption = vl_json_str(line, "caption", NULL);
  const cJSON *hyps = cJSON_GetObjectItem(line, "hypotheses");
  if (!imname || !caption || !cJSON_IsArray(hyps))
    return vl_error(VL_ERR_FORMAT, "%s: needs image, caption and hypotheses", what);
  snprintf(path, sizeof path, "%s/%s", dir, imname);
  vl_image *img = vl_image_load(path, 0);
  if (!img) return vl_last_error_code();
  /* caption */
  vl_describe_opts d = {.explain = "none", .max_length = o->max_length};
  vl_explain_cfg none = {0};
  vl_describe_result dr;
  double t0 = vl_now_seconds();
  int rc = vl_describe(m, img, &d, &none, &dr);
  res->ms_caption += (vl_now_seconds() - t0) * 1e3;
  const bool have_caption = rc == VL_OK;
  caption_phrases g = {0}, gen = {0}; /* the gold caption's and the model's */
  if (!rc) rc = split_phrases(caption, &g);
  if (!rc) rc = split_phrases(dr.text, &gen);
  if (!rc) {
    const bool exact = !strcmp(dr.text, caption);
    res->caption_exact += exact;
    int k = cJSON_GetArraySize(cJSON_GetObjectItem(line, "objects"));
    k = k < 1 ? 1 : k > 4 ? 4 : k;
    res->scenes_by_objects[k - 1]++;
    res->exact_by_objects[k - 1] += exact;
    res->caption_order_only += !exact && phrases_reordered(&gen, &g);
    for (int i = 0; i < g.n; i++) {
      res->caption_words++;
      res->caption_words_right += i < dr.n_words && !strcmp(dr.words[i].text, g.w[i]);
    }
  }
  if (!rc) rc = caption_targets(m, img, line, caption, KIND_WORD, NULL, 0, cfg, res, what);
  if (!rc && cfg->n_methods > 0 && gen.np > 0) { /* the phrases the model itself got right */
    bool ok[MAX_PHRASES]; /* ok[i]: the model's phrase i is the gold phrase i */
    for (int i = 0; i < gen.np; i++)
      ok[i] = i < g.np && same_phrase(&gen, i, &g, i);
    rc = caption_targets(m, img, line, dr.text, KIND_GEN_WORD, ok, gen.np, cfg, res, what);
  }
  free_phrases(&g);
  free_phrases(&gen);
  if (have_caption) vl_describe_result_free(&dr);
  /* entailment */
  for (int h = 0; !rc && h < cJSON_GetArraySize(hyps); h++) {
    const cJSON *hj = cJSON_GetArrayItem(hyps, h);
    const char *text = vl_json_str(hj, "text", NULL);
    int gold = label_of(vl_json_str(hj, "label", NULL));
    if (!text || gold < 0) {
      rc = vl_error(VL_ERR_FORMAT, "%s: hypothesis %d needs text and a label", what, h);
      break;
    }
    const char *ts = vl_json_str(hj, "template", NULL);
    int tpl = -1;
    for (int i = 0; ts && i < 5; i++)
      if (!strcmp(ts, k_tpl[i])) tpl = i;
    if (tpl < 0) tpl = vl_eval_template_of(text);
    const cJSON *refs = cJSON_GetObjectItem(hj, "referents");
    bool scored = cJSON_GetArraySize(refs) == 1 && gold != VL_LABEL_CONTRADICTION;
    vl_entail_result er;
    vl_explain_cfg ec = *cfg;
    ec.faithfulness = scored && faith_wanted(res, cfg, false);
    rc = vl_entail(m, img, text, &ec, scored, &er);
    if (rc) break;
    res->ms_decide += er.ms_decide;
    res->ms_explain += er.ms_explain;
    res->ms_faithfulness += er.ms_faithfulness;
    res->hypotheses++;
    res->correct += er.label == gold;
    res->confusion[gold][er.label]++;
    if (tpl >= 0) {
      res->tpl_n[tpl]++;
      res->tpl_correct[tpl] += er.label == gold;
    }
    if (scored && er.maps) {
      vl_box box;
      rc = box_of(line, cJSON_GetArrayItem(refs, 0)->valueint, &box, what);
      if (!rc) rc = score_maps(res, er.maps, er.n_methods, box, KIND_DECISION);
      if (!rc && er.faith) faith_score(res, er.faith, er.n_methods, false);
      res->explain_targets++;
    }
    vl_entail_result_free(&er);
  }
  vl_image_free(img);
  return rc;
}

int vl_eval(const vl_blip *m, const char *dir, const vl_eval_opts *o, const vl_explain_cfg *cfg_in,
            vl_eval_result *res) {
  memset(res, 0, sizeof *res);
  /* the methods asked for, plus random (the baseline) when missing */
  vl_explain_cfg cfg = *cfg_in;
  const char *names[VL_EVAL_MAX_METHODS];
  int nm = 0;
  bool has_random = false;
  for (int k = 0; k < cfg_in->n_methods && nm < VL_EVAL_MAX_METHODS - 1; k++) {
    names[nm++] = cfg_in->methods[k];
    has_random |= !strcmp(cfg_in->methods[k], "random");
  }
  if (!has_random) names[nm++] = "random";
  cfg.n_methods = nm;
  cfg.ex.methods = names;
  cfg.ex.n_methods = nm;
  res->faithfulness = cfg.faithfulness;
  res->faithfulness_max = cfg.faithfulness ? o->faithfulness_max : 0;
  res->faithfulness_seed = cfg.ex.seed;
  res->n_methods = nm;
  for (int k = 0; k < nm; k++)
    snprintf(res->methods[k], sizeof res->methods[k], "%s", names[k]);

  char path[4200];
  snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return vl_error(VL_ERR_IO,
                    "%s: cannot read the Shapes World manifest (make one with 'vlens "
                    "shapes --out DIR')",
                    path);
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = VL_OK, lineno = 0, total = 0;
  /* the scenes to come, for the progress bar */
  int expected = 0;
  while ((len = getline(&buf, &cap, f)) > 0)
    expected += len > 1;
  rewind(f);
  if (o->max_scenes > 0 && expected > o->max_scenes) expected = o->max_scenes;
  vl_progress pr;
  vl_progress_start(&pr, "eval", expected);
  while (!rc && (len = getline(&buf, &cap, f)) > 0) {
    lineno++;
    if (len <= 1) continue;
    if (o->max_scenes > 0 && total >= o->max_scenes) break;
    cJSON *line = vl_json_parse(buf, (size_t)len, path);
    if (!line) {
      rc = vl_error_context("%s:%d", path, lineno);
      break;
    }
    rc = eval_scene(m, dir, line, lineno, o, &cfg, res);
    cJSON_Delete(line);
    total++;
    res->scenes = total;
    vl_progress_update(&pr, total, NULL);
  }
  vl_progress_end(&pr);
  free(buf);
  fclose(f);
  if (!rc && total == 0) rc = vl_error(VL_ERR_FORMAT, "%s: no scenes", path);
  return rc;
}

static double div0(double a, double b) { return b > 0 ? a / b : 0; }

static void faith_row(FILE *f, const char *name, const vl_eval_faith *w, const vl_eval_faith *d) {
  fprintf(f, "    %-12s %10.3f %10.3f   %10.3f %10.3f\n", name, div0(w->deletion_auc, w->n),
          div0(w->insertion_auc, w->n), div0(d->deletion_auc, d->n), div0(d->insertion_auc, d->n));
}

static void faith_text(FILE *f, const vl_eval_result *r) {
  char lim[64] = "every target";
  if (r->faithfulness_max > 0)
    snprintf(lim, sizeof lim, "at most %d targets of each kind", r->faithfulness_max);
  fprintf(f,
          "\nfaithfulness: mean deletion / insertion AUC, %d steps (caption words: %d targets; "
          "decisions: %d targets; %s)\n"
          "  lower deletion and higher insertion: more faithful; random order: the cells in a "
          "seeded random order\n",
          VL_FAITH_STEPS, r->faith_word_random.n, r->faith_decision_random.n, lim);
  fprintf(f, "    %-12s %10s %10s   %10s %10s\n", "method", "word del", "word ins", "dec del",
          "dec ins");
  for (int k = 0; k < r->n_methods; k++)
    faith_row(f, r->methods[k], &r->faith_word[k], &r->faith_decision[k]);
  faith_row(f, "random order", &r->faith_word_random, &r->faith_decision_random);
}

char *vl_eval_report_text(const vl_eval_result *r, const char *model, const char *dir) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  if (!f) return NULL;
  fprintf(f, "eval: %s on %s, %d scenes\n\n", model, dir, r->scenes);
  fprintf(f, "caption: exact match %d/%d (%.1f%%), word accuracy %.1f%% (%d/%d words)\n",
          r->caption_exact, r->scenes, 100 * div0(r->caption_exact, r->scenes),
          100 * div0(r->caption_words_right, r->caption_words), r->caption_words_right,
          r->caption_words);
  fprintf(f, "  wrong only in the order of their phrases: %d/%d\n", r->caption_order_only,
          r->scenes - r->caption_exact);
  fprintf(f, "  exact match by objects:");
  for (int k = 0; k < 4; k++)
    fprintf(f, " %d: %d/%d (%.1f%%)%s", k + 1, r->exact_by_objects[k], r->scenes_by_objects[k],
            100 * div0(r->exact_by_objects[k], r->scenes_by_objects[k]), k < 3 ? "," : "\n\n");
  fprintf(f, "entailment: accuracy %.1f%% (%d/%d hypotheses)\n",
          100 * div0(r->correct, r->hypotheses), r->correct, r->hypotheses);
  fprintf(f, "  per template:\n");
  for (int t = 0; t < 5; t++)
    fprintf(f, "    %-13s %5.1f%% (%d/%d)\n", k_tpl[t], 100 * div0(r->tpl_correct[t], r->tpl_n[t]),
            r->tpl_correct[t], r->tpl_n[t]);
  fprintf(f, "  confusion matrix (rows gold, columns predicted):\n    %-14s", "");
  for (int p = 0; p < 3; p++)
    fprintf(f, " %13s", vl_entail_label_name(p));
  fprintf(f, "\n");
  for (int g = 0; g < 3; g++) {
    fprintf(f, "    %-14s", vl_entail_label_name(g));
    for (int p = 0; p < 3; p++)
      fprintf(f, " %13d", r->confusion[g][p]);
    fprintf(f, "\n");
  }
  int nw = r->n_methods ? r->word[0].n : 0, nd = r->n_methods ? r->decision[0].n : 0,
      ng = r->n_methods ? r->gen_word[0].n : 0;
  fprintf(f,
          "\nexplanations: pointing game / mass in box (caption words: %d targets; words of "
          "correctly generated phrases: %d targets; decisions: %d targets)\n",
          nw, ng, nd);
  fprintf(f, "    %-12s %10s %10s   %10s %10s   %10s %10s\n", "method", "word pt", "word mass",
          "gen pt", "gen mass", "dec pt", "dec mass");
  for (int k = 0; k < r->n_methods; k++)
    fprintf(
        f, "    %-12s %10.3f %10.3f   %10.3f %10.3f   %10.3f %10.3f\n", r->methods[k],
        div0(r->word[k].hits, r->word[k].n), div0(r->word[k].mass, r->word[k].n),
        div0(r->gen_word[k].hits, r->gen_word[k].n), div0(r->gen_word[k].mass, r->gen_word[k].n),
        div0(r->decision[k].hits, r->decision[k].n), div0(r->decision[k].mass, r->decision[k].n));
  fprintf(f, "    %-12s %10.3f %10.3f   %10.3f %10.3f   %10.3f %10.3f\n", "center",
          div0(r->center_word.hits, nw), div0(r->center_word.mass, nw),
          div0(r->center_gen_word.hits, ng), div0(r->center_gen_word.mass, ng),
          div0(r->center_decision.hits, nd), div0(r->center_decision.mass, nd));
  fprintf(f, "    %-12s %10.3f %10s   %10.3f %10s   %10.3f %10s\n", "chance",
          div0(r->chance_word, nw), "", div0(r->chance_gen_word, ng), "",
          div0(r->chance_decision, nd), "");
  if (r->faithfulness) faith_text(f, r);
  fprintf(f,
          "\nlatency: load %.0f ms, caption %.1f ms/scene, entailment %.1f ms/hypothesis, "
          "explanation %.1f ms/target",
          r->ms_load, div0(r->ms_caption, r->scenes), div0(r->ms_decide, r->hypotheses),
          div0(r->ms_explain, r->explain_targets));
  if (r->faithfulness)
    fprintf(f, ", faithfulness %.0f ms/target", div0(r->ms_faithfulness, r->faith_targets));
  fprintf(f, "\n");
  fclose(f);
  return s;
}

static cJSON *score_json(const vl_eval_score *s) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "pointing_game", div0(s->hits, s->n));
  cJSON_AddNumberToObject(o, "mass_in_box", div0(s->mass, s->n));
  cJSON_AddNumberToObject(o, "targets", s->n);
  return o;
}

static cJSON *faith_curve(const double *sum, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i <= VL_FAITH_STEPS; i++)
    cJSON_AddItemToArray(a, cJSON_CreateNumber(round(div0(sum[i], n) * 1e6) / 1e6));
  return a;
}

static cJSON *faith_json(const vl_eval_faith *s) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "deletion_auc", round(div0(s->deletion_auc, s->n) * 1e6) / 1e6);
  cJSON_AddNumberToObject(o, "insertion_auc", round(div0(s->insertion_auc, s->n) * 1e6) / 1e6);
  cJSON_AddItemToObject(o, "deletion", faith_curve(s->deletion, s->n));
  cJSON_AddItemToObject(o, "insertion", faith_curve(s->insertion, s->n));
  cJSON_AddNumberToObject(o, "targets", s->n);
  return o;
}

cJSON *vl_eval_to_json(const vl_eval_result *r, const char *model, const char *dir) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  cJSON_AddStringToObject(j, "task", "eval");
  cJSON_AddStringToObject(j, "model", model);
  cJSON_AddStringToObject(j, "dir", dir);
  cJSON_AddNumberToObject(j, "scenes", r->scenes);
  cJSON *ml = cJSON_AddArrayToObject(j, "methods");
  for (int k = 0; k < r->n_methods; k++)
    cJSON_AddItemToArray(ml, cJSON_CreateString(r->methods[k]));
  cJSON *c = cJSON_AddObjectToObject(j, "caption");
  cJSON_AddNumberToObject(c, "exact_match", div0(r->caption_exact, r->scenes));
  cJSON_AddNumberToObject(c, "word_accuracy", div0(r->caption_words_right, r->caption_words));
  cJSON_AddNumberToObject(c, "exact", r->caption_exact);
  cJSON_AddNumberToObject(c, "words_right", r->caption_words_right);
  cJSON_AddNumberToObject(c, "words", r->caption_words);
  cJSON_AddNumberToObject(c, "order_only", r->caption_order_only);
  cJSON_AddItemToObject(c, "scenes_by_objects", cJSON_CreateIntArray(r->scenes_by_objects, 4));
  cJSON_AddItemToObject(c, "exact_by_objects", cJSON_CreateIntArray(r->exact_by_objects, 4));
  cJSON *e = cJSON_AddObjectToObject(j, "entailment");
  cJSON_AddNumberToObject(e, "accuracy", div0(r->correct, r->hypotheses));
  cJSON_AddNumberToObject(e, "hypotheses", r->hypotheses);
  cJSON_AddNumberToObject(e, "correct", r->correct);
  cJSON *pt = cJSON_AddObjectToObject(e, "per_template");
  for (int t = 0; t < 5; t++) {
    cJSON *o = cJSON_AddObjectToObject(pt, k_tpl[t]);
    cJSON_AddNumberToObject(o, "accuracy", div0(r->tpl_correct[t], r->tpl_n[t]));
    cJSON_AddNumberToObject(o, "n", r->tpl_n[t]);
    cJSON_AddNumberToObject(o, "correct", r->tpl_correct[t]);
  }
  cJSON *cm = cJSON_AddObjectToObject(e, "confusion");
  cJSON *labels = cJSON_AddArrayToObject(cm, "labels");
  cJSON *mat = cJSON_AddArrayToObject(cm, "matrix");
  for (int g = 0; g < 3; g++) {
    cJSON_AddItemToArray(labels, cJSON_CreateString(vl_entail_label_name(g)));
    cJSON_AddItemToArray(mat, cJSON_CreateIntArray(r->confusion[g], 3));
  }
  cJSON *x = cJSON_AddObjectToObject(j, "explanations");
  cJSON *w = cJSON_AddObjectToObject(x, "caption_words"),
        *g = cJSON_AddObjectToObject(x, "generated_words"),
        *d = cJSON_AddObjectToObject(x, "decisions");
  for (int k = 0; k < r->n_methods; k++) {
    cJSON_AddItemToObject(w, r->methods[k], score_json(&r->word[k]));
    cJSON_AddItemToObject(g, r->methods[k], score_json(&r->gen_word[k]));
    cJSON_AddItemToObject(d, r->methods[k], score_json(&r->decision[k]));
  }
  cJSON_AddItemToObject(w, "center", score_json(&r->center_word));
  cJSON_AddItemToObject(g, "center", score_json(&r->center_gen_word));
  cJSON_AddItemToObject(d, "center", score_json(&r->center_decision));
  int nw = r->n_methods ? r->word[0].n : 0, nd = r->n_methods ? r->decision[0].n : 0,
      ng = r->n_methods ? r->gen_word[0].n : 0;
  cJSON_AddNumberToObject(w, "chance", div0(r->chance_word, nw));
  cJSON_AddNumberToObject(g, "chance", div0(r->chance_gen_word, ng));
  cJSON_AddNumberToObject(d, "chance", div0(r->chance_decision, nd));
  if (r->faithfulness) {
    cJSON *fj = cJSON_AddObjectToObject(j, "faithfulness");
    cJSON_AddNumberToObject(fj, "steps", VL_FAITH_STEPS);
    cJSON_AddNumberToObject(fj, "max_targets", r->faithfulness_max);
    cJSON_AddNumberToObject(fj, "seed", (double)r->faithfulness_seed);
    for (int kind = 0; kind < 2; kind++) {
      const vl_eval_faith *per = kind ? r->faith_decision : r->faith_word;
      const vl_eval_faith *rnd = kind ? &r->faith_decision_random : &r->faith_word_random;
      cJSON *o = cJSON_AddObjectToObject(fj, kind ? "decisions" : "caption_words");
      cJSON_AddNumberToObject(o, "targets", rnd->n);
      cJSON *ms = cJSON_AddObjectToObject(o, "methods");
      for (int k = 0; k < r->n_methods; k++)
        cJSON_AddItemToObject(ms, r->methods[k], faith_json(&per[k]));
      cJSON_AddItemToObject(o, "random_order", faith_json(rnd));
    }
  }
  cJSON *tm = cJSON_AddObjectToObject(j, "timing_ms");
  cJSON_AddNumberToObject(tm, "load", r->ms_load);
  cJSON_AddNumberToObject(tm, "caption_per_scene", div0(r->ms_caption, r->scenes));
  cJSON_AddNumberToObject(tm, "entail_per_hypothesis", div0(r->ms_decide, r->hypotheses));
  cJSON_AddNumberToObject(tm, "explain_per_target", div0(r->ms_explain, r->explain_targets));
  if (r->faithfulness)
    cJSON_AddNumberToObject(tm, "faithfulness_per_target",
                            div0(r->ms_faithfulness, r->faith_targets));
  return j;
}
