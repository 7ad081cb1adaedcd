/* Chat templates against the official Jinja templates' own output
 * (tests/data/chat, from tools/gen_chat_goldens.py), detection, errors. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/json.h"
#include "test.h"
#include "text/chat.h"

static int template_of(const char *name, vl_chat_template *t) {
  if (!strcmp(name, "qwen2"))
    *t = VL_CHAT_QWEN2;
  else if (!strcmp(name, "qwen2.5"))
    *t = VL_CHAT_QWEN25;
  else if (!strcmp(name, "qwen3"))
    *t = VL_CHAT_QWEN3;
  else
    return -1;
  return 0;
}

static void test_goldens(void) {
  cJSON *root = vl_json_load("tests/data/chat/cases.json");
  REQUIRE(root);
  const cJSON *cases = vl_json_get(root, "cases");
  REQUIRE(cJSON_IsArray(cases));
  int n_cases = 0, n_bad = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const char *name = vl_json_str(c, "name", "?");
    vl_chat_template t;
    REQUIRE(template_of(vl_json_str(c, "template", ""), &t) == 0);
    const cJSON *ms = vl_json_get(c, "messages");
    int n = cJSON_GetArraySize(ms);
    vl_chat_message msgs[16];
    REQUIRE(n > 0 && n <= 16);
    for (int i = 0; i < n; i++) {
      const cJSON *m = cJSON_GetArrayItem(ms, i);
      msgs[i].role = vl_json_str(m, "role", NULL);
      msgs[i].content = vl_json_str(m, "content", NULL);
      msgs[i].reasoning_content = vl_json_str(m, "reasoning_content", NULL);
    }
    vl_chat_options o = vl_chat_default_options();
    o.add_generation_prompt = vl_json_bool(c, "add_generation_prompt", 0);
    const cJSON *et = vl_json_get(c, "enable_thinking");
    o.enable_thinking = cJSON_IsBool(et) ? cJSON_IsTrue(et) : -1;
    char *got = vl_chat_render(t, msgs, (size_t)n, &o);
    char path[512];
    snprintf(path, sizeof path, "tests/data/chat/%s.txt", name);
    size_t len = 0;
    unsigned char *want = test_read_file(path, &len);
    CHECK(got && want);
    if (got && want && (strlen(got) != len || memcmp(got, want, len))) {
      n_bad++;
      printf("  %s differs:\n--- got ---\n%s\n--- want ---\n%s\n", name, got, (char *)want);
    }
    free(got);
    free(want);
    n_cases++;
  }
  CHECK(n_cases >= 100);
  CHECK(n_bad == 0);
  cJSON_Delete(root);
}

/* The real template strings are recognised, each as its own family. */
static void test_detect_templates(void) {
  cJSON *root = vl_json_load("tests/data/chat/cases.json");
  REQUIRE(root);
  const char *names[] = {"qwen2", "qwen2.5", "qwen3"};
  for (int i = 0; i < 3; i++) {
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(vl_json_get(root, "templates"), names[i]);
    REQUIRE(cJSON_IsString(src));
    vl_chat_template t = (vl_chat_template)99, want;
    template_of(names[i], &want);
    CHECK(vl_chat_detect(src->valuestring, "ignored", &t) == VL_OK);
    CHECK(t == want);
    CHECK(!strcmp(vl_chat_template_name(t), names[i]));
  }
  cJSON_Delete(root);
  vl_chat_template t;
  CHECK(vl_chat_detect(NULL, "qwen3", &t) == VL_OK && t == VL_CHAT_QWEN3);
  CHECK(vl_chat_detect("", "qwen2", &t) == VL_OK && t == VL_CHAT_QWEN25);
  CHECK(vl_chat_detect(NULL, "llama", &t) == VL_ERR_UNSUPPORTED);
  CHECK(strstr(vl_last_error(), "llama"));
  CHECK(vl_chat_detect("{{ bos_token }}{% for m in messages %}[INST]{% endfor %}", NULL, &t) ==
        VL_ERR_UNSUPPORTED);
  CHECK(strstr(vl_last_error(), "not one of the known templates"));
  CHECK(vl_chat_detect(NULL, NULL, &t) == VL_ERR_NOTFOUND);
  CHECK(vl_chat_detect(NULL, "qwen3", NULL) == VL_ERR_INVALID);
}

static void write_str(const char *dir, const char *name, const char *text) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  test_write_file(path, text, strlen(text));
}

static void test_detect_folder(void) {
  vl_chat_template t = (vl_chat_template)99;
  /* The shared goldens carry no chat_template: model_type decides. */
  CHECK(vl_chat_detect_folder(test_shared_path("golden/qwen3-a"), &t) == VL_OK);
  CHECK(t == VL_CHAT_QWEN3);
  CHECK(vl_chat_detect_folder(test_shared_path("golden/qwen2-a"), &t) == VL_OK);
  CHECK(t == VL_CHAT_QWEN25);

  char dir[512];
  snprintf(dir, sizeof dir, "%s/chatdir", test_tmpdir());
  mkdir(dir, 0755);
  CHECK(vl_chat_detect_folder(dir, &t) < 0); /* nothing there */
  CHECK(strstr(vl_last_error(), "chatdir"));
  write_str(dir, "config.json", "{\"model_type\": \"qwen3\"}");
  CHECK(vl_chat_detect_folder(dir, &t) == VL_OK && t == VL_CHAT_QWEN3);
  /* A template in tokenizer_config.json wins over model_type. */
  write_str(dir, "tokenizer_config.json",
            "{\"chat_template\": \"{% for message in messages %}{% if loop.first and "
            "messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\\\nYou are a helpful "
            "assistant.<|im_end|>\\\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + "
            "'\\\\n' + message['content'] + '<|im_end|>' + '\\\\n'}}{% endfor %}{% if "
            "add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' }}{% endif %}\"}");
  CHECK(vl_chat_detect_folder(dir, &t) == VL_OK && t == VL_CHAT_QWEN2);
  write_str(dir, "tokenizer_config.json", "{\"chat_template\": \"{{ messages }}\"}");
  CHECK(vl_chat_detect_folder(dir, &t) == VL_ERR_UNSUPPORTED);
  CHECK(strstr(vl_last_error(), "tokenizer_config.json"));
  write_str(dir, "tokenizer_config.json", "{\"chat_template\": ");
  CHECK(vl_chat_detect_folder(dir, &t) == VL_ERR_FORMAT);
  /* chat_template.jinja next to a config without a template. */
  write_str(dir, "tokenizer_config.json", "{}");
  write_str(dir, "chat_template.jinja", "<|im_start|> reasoning_content last_query_index");
  write_str(dir, "config.json", "{\"model_type\": \"qwen2\"}");
  CHECK(vl_chat_detect_folder(dir, &t) == VL_OK && t == VL_CHAT_QWEN3);
}

static void test_render_errors(void) {
  vl_chat_message ok = {"user", "hi", NULL};
  char *s = vl_chat_render(VL_CHAT_QWEN3, &ok, 0, NULL);
  CHECK(!s && vl_last_error_code() == VL_ERR_INVALID && strstr(vl_last_error(), "empty"));
  CHECK(!vl_chat_render(VL_CHAT_QWEN3, NULL, 1, NULL));
  vl_chat_message bad_role[2] = {{"user", "hi", NULL}, {"narrator", "x", NULL}};
  CHECK(!vl_chat_render(VL_CHAT_QWEN25, bad_role, 2, NULL));
  CHECK(strstr(vl_last_error(), "message 1: role 'narrator'"));
  vl_chat_message no_content = {"user", NULL, NULL};
  CHECK(!vl_chat_render(VL_CHAT_QWEN2, &no_content, 1, NULL));
  CHECK(strstr(vl_last_error(), "no content"));
  vl_chat_message no_role = {NULL, "x", NULL};
  CHECK(!vl_chat_render(VL_CHAT_QWEN2, &no_role, 1, NULL));
  CHECK(!vl_chat_render((vl_chat_template)7, &ok, 1, NULL));
  /* Defaults: generation prompt on, enable_thinking not passed. */
  s = vl_chat_render(VL_CHAT_QWEN3, &ok, 1, NULL);
  CHECK(s && !strcmp(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
  free(s);
  /* enable_thinking only changes Qwen3. */
  vl_chat_options o = {1, 0};
  s = vl_chat_render(VL_CHAT_QWEN25, &ok, 1, &o);
  CHECK(s && !strstr(s, "<think>"));
  free(s);
}

int main(void) {
  RUN(test_goldens);
  RUN(test_detect_templates);
  RUN(test_detect_folder);
  RUN(test_render_errors);
  return test_summary();
}
