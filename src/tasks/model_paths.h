/* Where the embedded default models live. A default model is a folder
 * models/<name> (e.g. models/shapes-blip, models/shapes-qwen3) looked for,
 * in order:
 *   1. $VLENS_MODELS/<name> when the variable is set;
 *   2. <dir>/models/<name> for the executable's folder and up to three of
 *      its parents (build/rel/vlens -> the repository root);
 *   3. <exe dir>/../share/vlens/models/<name> (an installed tree);
 *   4. VLENS_DATADIR/models/<name> (compile-time, default
 *      /usr/local/share/vlens).
 * The first folder that holds a config.json wins. */
#ifndef VL_TASKS_MODEL_PATHS_H
#define VL_TASKS_MODEL_PATHS_H

#include <stddef.h>

#define VL_DEFAULT_CAPTIONER "shapes-blip"
#define VL_DEFAULT_LLM "shapes-qwen3"

/* Writes the folder of default model `name` into out[cap]. exe: the
 * executable's path (NULL: /proc/self/exe). option names the command-line
 * option that overrides the default (e.g. "--captioner"), used in the error.
 * VL_OK, or VL_ERR_NOTFOUND with a message naming models/<name>, every place
 * looked in and the option to pass. */
int vl_model_default_path(const char *name, const char *exe, const char *option, char *out,
                          size_t cap);

#endif
