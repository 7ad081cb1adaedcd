/* CLI subcommands. Each returns the process exit status; only the CLI prints
 * errors (vl_last_error()) and exits. */
#ifndef VL_CLI_CLI_H
#define VL_CLI_CLI_H

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} vl_command;

/* Prints "vlens: <what>: <last error>" on stderr and returns 1. */
int cli_fail(const char *what);
/* Common options: --threads N / -t N and --quiet, removed from argv.
 * Returns the new argc. */
int cli_common_options(int argc, char **argv);

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_shapes(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_train_llm(int argc, char **argv);
int cmd_describe(int argc, char **argv);
int cmd_entail(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_enrich(int argc, char **argv);
int cmd_bpe_train(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
