/* Model checkpoints: one .safetensors file, or a Hub-layout model folder with
 * model.safetensors or a sharded model.safetensors.index.json
 * ({"weight_map": {"tensor name": "model-00001-of-00002.safetensors", ...}}).
 * Each shard is opened (mmap'd) once; tensors are looked up by name across
 * shards. Tensor pointers stay valid until vl_ckpt_close. Tensors a shard
 * holds beyond what the index lists are kept (and findable). A file that is
 * truncated by someone else while mapped raises SIGBUS on access: the
 * checkpoint files are assumed not to change while open. */
#ifndef VL_IO_CHECKPOINT_H
#define VL_IO_CHECKPOINT_H

#include <stddef.h>

#include "io/safetensors.h"

typedef struct vl_checkpoint vl_checkpoint;

/* path: a .safetensors file or a model folder. NULL + vl_error naming the
 * file: missing weights, missing shards, a tensor the index lists but its
 * shard lacks, a tensor present in two shards, a malformed index. */
vl_checkpoint *vl_ckpt_open(const char *path);
void vl_ckpt_close(vl_checkpoint *ck);

size_t vl_ckpt_count(const vl_checkpoint *ck);
/* Shards in index order (sorted file names), tensors in file order within
 * each shard. NULL if i is out of range. */
const vl_st_tensor *vl_ckpt_at(const vl_checkpoint *ck, size_t i);
/* NULL + VL_ERR_NOTFOUND naming the checkpoint and the tensor. */
const vl_st_tensor *vl_ckpt_find(const vl_checkpoint *ck, const char *name);

/* The model folder (for config.json and friends): the path given when it is
 * a folder, else the directory holding the file ("." when none). */
const char *vl_ckpt_dir(const vl_checkpoint *ck);
/* The path given to vl_ckpt_open. */
const char *vl_ckpt_path(const vl_checkpoint *ck);
size_t vl_ckpt_shard_count(const vl_checkpoint *ck);
const vl_safetensors *vl_ckpt_shard(const vl_checkpoint *ck, size_t i);

#endif
