/* Public API: thin wrappers that keep internal types behind opaque handles. */
#include "vlens.h"

#include "base/error.h"
#include "base/threads.h"

const char *vlens_version(void) { return VLENS_VERSION; }
const char *vlens_last_error(void) { return vl_last_error(); }
void vlens_set_threads(int n) { vl_threads_set(n); }
