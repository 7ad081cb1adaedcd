#include <stdio.h>

#include "base/error.h"
#include "cli/cli.h"

int cmd_inspect(int argc, char **argv) {
  (void)argc;
  (void)argv;
  vl_error(VL_ERR_UNSUPPORTED, "inspect is being written");
  return cli_fail("inspect");
}
