"""Renders chat templates with Python's Jinja2, set up as transformers' apply_chat_template sets it up
(sandboxed, trim_blocks, lstrip_blocks, loop controls, raise_exception, a tojson filter), for
ChatTemplateJinja2Test. Reads {"templates": {name: source}, "cases": [[[role, content], ...], ...],
"tokens": {"bos_token": ...}} on stdin; writes {"name|case|add_generation_prompt": text or "ERROR ..."}."""
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise ValueError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

request = json.load(sys.stdin)
out = {}
for name, source in request["templates"].items():
    template = env.from_string(source)
    for i, case in enumerate(request["cases"]):
        messages = [{"role": role, "content": content} for role, content in case]
        for prompt in (False, True):
            try:
                text = template.render(messages=messages, add_generation_prompt=prompt, **request["tokens"])
            except Exception as e:  # a refusal, or an error of the template
                text = "ERROR " + str(e)
            out[f"{name}|{i}|{str(prompt).lower()}"] = text
json.dump(out, sys.stdout, ensure_ascii=False)
