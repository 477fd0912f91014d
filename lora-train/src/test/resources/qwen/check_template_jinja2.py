"""Renders the conversations of chats.jsonl.gz with Python's Jinja2, set up as transformers'
apply_chat_template sets it up, and checks that every rendering equals the fixture's "template" text.

The fixture's renderings come from @huggingface/jinja (JavaScript) with Python's strip methods
restored (see make-fixture.mjs); this is the check that the result is what Python gives.
Run from this folder: python3 check_template_jinja2.py
"""
import gzip
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment


def main():
    with gzip.open("tokenizer_config.json.gz", "rt", encoding="utf-8") as f:
        config = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    template = env.from_string(config["chat_template"])
    failures = 0
    count = 0
    with gzip.open("chats.jsonl.gz", "rt", encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            chat = json.loads(line)
            for key, generation_prompt in (("conversation", False), ("prompt", True)):
                text = template.render(messages=chat["messages"], add_generation_prompt=generation_prompt,
                                       tools=None, documents=None, eos_token=config["eos_token"],
                                       pad_token=config["pad_token"])
                count += 1
                if text != chat["template"][key]["text"]:
                    failures += 1
                    print(f"chats.jsonl.gz:{line_number} ({chat['name']}, {key}): Jinja2 renders {text!r}, "
                          f"the fixture has {chat['template'][key]['text']!r}")
    print(f"{count - failures} of {count} renderings equal")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
