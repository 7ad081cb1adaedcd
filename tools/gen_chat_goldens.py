#!/usr/bin/python3
"""Renders the official Qwen2 / Qwen2.5 / Qwen3 chat templates (Jinja, as
transformers' apply_chat_template does: trim_blocks, lstrip_blocks) for a set
of conversations and writes tests/data/chat/cases.json plus one
<name>.txt per case with the exact expected prompt. tests/test_chat.c
renders the same cases in C and compares bytes.

The templates are the `chat_template` strings of Qwen/Qwen2-7B-Instruct,
Qwen/Qwen2.5-7B-Instruct and Qwen/Qwen3-0.6B tokenizer_config.json (the
golden folders in ../shared/golden carry none, so they are copied here).

Run: /usr/bin/python3 tools/gen_chat_goldens.py   (needs python3-jinja2)
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

QWEN3 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

TEMPLATES = {"qwen2": QWEN2, "qwen2.5": QWEN25, "qwen3": QWEN3}


def U(c):
    return {"role": "user", "content": c}


def A(c, reasoning=None):
    m = {"role": "assistant", "content": c}
    if reasoning is not None:
        m["reasoning_content"] = reasoning
    return m


def S(c):
    return {"role": "system", "content": c}


def T(c):
    return {"role": "tool", "content": c}


CONVERSATIONS = {
    "single": [U("Describe the image: a large red circle.")],
    "system": [S("You write vivid descriptions."), U("Hello!")],
    "multi": [U("Hi"), A("Hello! How can I help?"), U("Describe a cat.")],
    "multi_sys": [S("Be brief."), U("One"), A("Two"), U("Three"), A("Four")],
    "think_history": [
        U("What is 2+2?"),
        A("<think>\nsimple sum\n</think>\n\n4"),
        U("And 3+3?"),
        A("<think>\nagain\n</think>\n\n6"),
    ],
    "think_last_user": [U("Q1"), A("<think>r1</think>A1"), U("Q2")],
    "reasoning_field": [U("Q"), A("\n\nAnswer text", reasoning="\nI thought.\n\n")],
    "reasoning_field_empty": [U("Q"), A("Answer", reasoning=""), U("Q2"), A("A2", reasoning="")],
    "tools": [
        U("Weather?"),
        A("Calling the tool."),
        T("sunny"),
        T("22C"),
        A("<think>ok</think>\n\nIt is sunny."),
    ],
    "tool_response_user": [
        U("Start"),
        A("<think>plan</think>step"),
        U("<tool_response>\nx\n</tool_response>"),
        A("<think>\nmore\n</think>done"),
    ],
    "mid_system": [U("a"), S("late system"), U("b")],
    "unicode": [U("描述这张图片：一个红色的圆。"), A("好的。")],
    "empty_content": [U(""), A("")],
    "nested_think": [U("q"), A("<think>a<think>b</think>c</think>\n\nd")],
    "newline_edges": [S("\nsys\n"), U("\n\nu\n"), A("\n\nplain\n")],
}

OPTIONS = {
    "gen": {"add_generation_prompt": True},
    "nogen": {"add_generation_prompt": False},
    "nothink": {"add_generation_prompt": True, "enable_thinking": False},
    "think": {"add_generation_prompt": True, "enable_thinking": True},
}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "chat")
    os.makedirs(out_dir, exist_ok=True)
    # transformers' settings for chat templates
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    cases = []
    for tname, src in TEMPLATES.items():
        tpl = env.from_string(src)
        for cname, msgs in CONVERSATIONS.items():
            for oname, opts in OPTIONS.items():
                if tname != "qwen3" and oname in ("think", "nothink") and cname != "single":
                    continue
                if tname == "qwen2" and any(m["role"] == "tool" for m in msgs):
                    continue  # the Qwen2 template has no tool role
                text = tpl.render(messages=msgs, **opts)
                name = "%s__%s__%s" % (tname.replace(".", ""), cname, oname)
                with open(os.path.join(out_dir, name + ".txt"), "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                cases.append({"name": name, "template": tname, "messages": msgs,
                              "add_generation_prompt": opts["add_generation_prompt"],
                              "enable_thinking": opts.get("enable_thinking")})
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"templates": TEMPLATES, "cases": cases}, f, ensure_ascii=False, indent=1)
    print("%d cases written to %s" % (len(cases), out_dir), file=sys.stderr)


if __name__ == "__main__":
    main()
