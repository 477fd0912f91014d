#!/usr/bin/python3
"""Writes the seed corpora of the fuzz tests (DatasetFuzzTest, ModelConfigFuzzTest, TokenizersFuzzTest):
valid files of every shape the readers accept, and the edge cases the error tests name. Findings of
fuzzing runs are added next to these by hand, named finding-*. Run from this directory:
    /usr/bin/python3 make_fuzz_seeds.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(subdir, name, data):
    d = os.path.join(HERE, subdir)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


# ---- JSONL data -------------------------------------------------------------------------------
JSONL = "data/DatasetFuzzTestInputs/jsonlFile"
chat = json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hello there"}]})
text = json.dumps({"text": "a plain document"})
put(JSONL, "chat", chat + "\n")
put(JSONL, "text", text + "\n")
put(JSONL, "mixed-blank-lines", chat + "\n\n" + text + "\n   \n" + chat)
put(JSONL, "crlf-bom", "\ufeff" + chat + "\r\n" + text + "\r\n")
put(JSONL, "lone-cr", chat + "\r" + text + "\r")
put(JSONL, "latin1-byte", b'{"text": "caf\xe9"}\n')
put(JSONL, "utf16", ("\ufeff" + text + "\n").encode("utf-16-le"))
put(JSONL, "truncated-utf8", b'{"text": "\xe6\x97"}')
put(JSONL, "two-objects-one-line", text + " " + text + "\n")
put(JSONL, "duplicate-key", '{"text": "a", "text": "b"}\n')
put(JSONL, "deep-nesting", "[" * 5000 + "]" * 5000 + "\n")
put(JSONL, "deep-nesting-object", '{"text": ' + '{"a":' * 3000 + '1' + '}' * 3000 + '}\n')
put(JSONL, "long-number", '{"text": ' + "9" * 5000 + '}\n')
put(JSONL, "not-an-object", "[1, 2]\n\"hello\"\n")
put(JSONL, "messages-wrong-types", '{"messages": "hi"}\n{"messages": [5]}\n'
    '{"messages": [{"role": 7, "content": "q"}]}\n{"messages": [{"role": "user", "content": null}]}\n')
put(JSONL, "unknown-role", '{"messages": [{"role": "robot", "content": "x"}]}\n')
put(JSONL, "no-assistant", '{"messages": [{"role": "user", "content": "x"}]}\n')
put(JSONL, "special-token-in-content", '{"messages": [{"role": "assistant", "content": "<|im_end|>"}]}\n')
put(JSONL, "empty-text", '{"text": ""}\n')
put(JSONL, "unpaired-surrogate", '{"text": "\\ud800 x \\udfff"}\n')
put(JSONL, "nul-and-controls", '{"text": "a\\u0000b\\u001f"}\n')
put(JSONL, "empty", "")
put(JSONL, "only-blank", "\n \n\t\n")
put(JSONL, "long-line", json.dumps({"text": "x" * 300}) + "\n")
put(JSONL, "no-field", '{"prompt": "x", "completion": "y"}\n{}\n')

# ---- plain-text corpus ------------------------------------------------------------------------
TEXT = "data/DatasetFuzzTestInputs/textCorpus"
put(TEXT, "paragraphs", "first paragraph\nstill first\n\nsecond\n\n\nthird\n")
put(TEXT, "crlf", "one\r\n\r\ntwo\r\n  \r\nthree")
put(TEXT, "bom", "\ufeffbom first\n\nnext")
put(TEXT, "latin1", b"caf\xe9\n\nnext\n")
put(TEXT, "whitespace-only", " \n\t\n\n")
put(TEXT, "empty", "")
put(TEXT, "long-paragraph", "word " * 200)

# ---- config.json ------------------------------------------------------------------------------
CONFIG = "model/ModelConfigFuzzTestInputs/configJson"
llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32, "hidden_size": 8,
         "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
         "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 64,
         "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False, "bos_token_id": 1,
         "eos_token_id": 2, "torch_dtype": "float32"}
put(CONFIG, "llama", json.dumps(llama, indent=2))
qwen2 = dict(llama, architectures=["Qwen2ForCausalLM"], model_type="qwen2", use_sliding_window=False,
             eos_token_id=[2, 3], tie_word_embeddings=True, rope_theta=1000000.0)
del qwen2["attention_bias"], qwen2["mlp_bias"]
put(CONFIG, "qwen2", json.dumps(qwen2, indent=2))
put(CONFIG, "llama3-rope", json.dumps(dict(llama, rope_scaling={
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16}, head_dim=4)))
put(CONFIG, "linear-rope-old-key", json.dumps(dict(llama, rope_scaling={"type": "linear", "factor": 2.0})))
put(CONFIG, "minimal-model-type-only", json.dumps({k: llama[k] for k in [
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"]}))
put(CONFIG, "unknown-model-type", json.dumps(dict(llama, model_type="mistral")))
put(CONFIG, "mismatched-type", json.dumps(dict(llama, model_type="qwen2")))
put(CONFIG, "string-numbers", json.dumps(dict(llama, rms_norm_eps="1e-6", max_position_embeddings="64")))
put(CONFIG, "heads-do-not-divide", json.dumps(dict(llama, num_attention_heads=3, num_key_value_heads=3)))
put(CONFIG, "kv-heads-do-not-divide", json.dumps(dict(llama, num_key_value_heads=3)))
put(CONFIG, "zero-vocab", json.dumps(dict(llama, vocab_size=0)))
put(CONFIG, "huge-heads", json.dumps(dict(llama, num_attention_heads=65536, head_dim=65536, num_key_value_heads=1)))
put(CONFIG, "infinite-eps", json.dumps(llama).replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e400'))
put(CONFIG, "nan-token", json.dumps(llama).replace('"rope_theta": 10000.0', '"rope_theta": NaN'))
put(CONFIG, "duplicate-key", '{"model_type": "llama", "model_type": "qwen2"}')
put(CONFIG, "trailing", json.dumps(llama) + " {}")
put(CONFIG, "not-utf8", b'{"model_type": "ll\xffama"}')
put(CONFIG, "array", "[1, 2]")
put(CONFIG, "empty", "")

# ---- tokenizer.json ---------------------------------------------------------------------------
TOK = "text/TokenizersFuzzTestInputs/tokenizerJson"


def added(specials, start):
    return [{"id": start + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for i, s in enumerate(specials)]


CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
alphabet = bytes_to_unicode()
byte_tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added(CHATML, 256),
                  "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None, "decoder": byte_level,
                  "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                            "ignore_merges": False, "vocab": {alphabet[b]: b for b in range(256)}, "merges": []}}
put(TOK, "lora4j-byte-tokenizer", json.dumps(byte_tokenizer, indent=2, ensure_ascii=False))

bpe_vocab = {alphabet[b]: b for b in range(256)}
merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r")]
for a, b in merges:
    bpe_vocab[a + b] = len(bpe_vocab)
bpe = dict(byte_tokenizer, added_tokens=added(CHATML, len(bpe_vocab)),
           pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           normalizer={"type": "NFC"},
           model=dict(byte_tokenizer["model"], vocab=bpe_vocab, merges=[a + " " + b for a, b in merges]))
put(TOK, "bpe-merges", json.dumps(bpe, ensure_ascii=False))
put(TOK, "bpe-merges-as-pairs", json.dumps(dict(bpe, model=dict(bpe["model"], merges=[[a, b] for a, b in merges])),
                                           ensure_ascii=False))

wp_vocab = {"[UNK]": 0, "hello": 1, "world": 2, "##lo": 3, "hel": 4, "user": 5, "<": 6, "|": 7}
wordpiece = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added(["[UNK]"], 0)[:1]
             + added(CHATML, 8),
             "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                            "strip_accents": None, "lowercase": True},
             "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": None,
             "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                       "max_input_chars_per_word": 100, "vocab": wp_vocab}}
put(TOK, "wordpiece", json.dumps(wordpiece))

uni_vocab = [["<unk>", 0.0], ["\u2581", -2.0], ["h", -3.0], ["e", -3.0], ["l", -3.0], ["o", -3.0],
             ["\u2581hello", -1.0], ["w", -3.0], ["r", -3.0], ["d", -3.0]]
unigram = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added(CHATML, len(uni_vocab)),
           "normalizer": None,
           "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
           "post_processor": None,
           "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
           "model": {"type": "Unigram", "unk_id": 0, "vocab": uni_vocab, "byte_fallback": False}}
put(TOK, "unigram", json.dumps(unigram, ensure_ascii=False))
put(TOK, "split-regex", json.dumps(dict(wordpiece, pre_tokenizer={
    "type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": False})))
put(TOK, "sequence-normalizer", json.dumps(dict(wordpiece, normalizer={"type": "Sequence", "normalizers": [
    {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": "x"}, "content": "y"}]})))
put(TOK, "template-post-processor", json.dumps(dict(wordpiece, post_processor={
    "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[UNK]", "type_id": 0}},
                                             {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"[UNK]": {"id": "[UNK]", "ids": [0], "tokens": ["[UNK]"]}}})))
put(TOK, "vocab-id-string", json.dumps(dict(wordpiece, model=dict(wordpiece["model"], vocab={"[UNK]": "0"}))))
put(TOK, "vocab-id-huge", json.dumps(dict(wordpiece, model=dict(wordpiece["model"], vocab={"[UNK]": 2147483647}))))
put(TOK, "unknown-model-type", json.dumps(dict(wordpiece, model={"type": "NoSuchModel", "vocab": {"a": 0}})))
put(TOK, "added-token-empty", json.dumps(dict(wordpiece, added_tokens=added([""], 9))))
put(TOK, "unigram-unk-out-of-range", json.dumps(dict(unigram, model=dict(unigram["model"], unk_id=99))))
put(TOK, "unigram-empty", json.dumps(dict(unigram, model=dict(unigram["model"], vocab=[], unk_id=None))))
with open(os.path.join(HERE, "../../../text/tiny-wordlevel/tokenizer.json"), "rb") as f:
    put(TOK, "tiny-wordlevel", f.read())
put(TOK, "not-utf8", b'{"version": "1.0", "model": {"vocab": {"\xff": 0}}}')
put(TOK, "not-json", b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
put(TOK, "top-level-array", "[1]")
put(TOK, "empty", "")
