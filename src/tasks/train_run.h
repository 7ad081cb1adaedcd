/* What the two trainers (vlens train, vlens train-llm) share: folder and
 * atomic file writes, and reading back the state of an earlier run. */
#ifndef VL_TASKS_TRAIN_RUN_H
#define VL_TASKS_TRAIN_RUN_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "io/safetensors.h"

/* mkdir -p; `who` prefixes errors ("train", "train-llm"). */
int vl_train_mkdirs(const char *dir, const char *who);
/* dir/file written through a temporary file and rename. */
int vl_train_write_text(const char *dir, const char *file, const char *text);
/* Prints j into dir/file (atomically) and deletes j; j may be NULL (no memory). */
int vl_train_write_json(const char *dir, const char *file, cJSON *j, const char *who);
int64_t vl_train_argmax(const float *row, int64_t n);
/* The step a checkpoint file records ("vlens_step"), or -1. */
int64_t vl_train_meta_step(const vl_safetensors *st);
/* Opens out_dir/optimizer.safetensors of an earlier run: its saved options
 * (metadata opts_key, owned by *ost), its step, and checks model.safetensors
 * is at the same step (else the run was interrupted while saving). */
int vl_train_open_state(const char *out_dir, const char *who, const char *opts_key,
                        vl_safetensors **ost, const char **opts_json, int64_t *step);

#endif
